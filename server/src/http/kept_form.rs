//! A form refused after a plain post (no JavaScript) is drawn again with what the user
//! typed in it: the server draws the form's page anew (with the error beside its field)
//! and this writes the submitted values back into that one form, whatever page or form
//! it is, so no form has to remember its own values.
//!
//! Never written back: passwords, one-time codes, hidden fields the server filled in
//! (such as a fresh form token) and file inputs. Every value is written as text by the HTML
//! rewriter (escaped), never as markup.

use lol_html::html_content::{ContentType, Element};
use lol_html::{element, rewrite_str, RewriteStrSettings};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Fields whose value is never written back into a page, whatever their input type.
const NEVER_KEPT: [&str; 6] = [
    "form_token",
    "password",
    "current_password",
    "new_password",
    "code",
    "secret",
];

/// Input types that carry no text the user typed (or must not be shown again).
const NOT_TEXT: [&str; 7] = [
    "hidden", "password", "file", "submit", "button", "reset", "image",
];

/// The `meta` element naming the page's own address: the form's page is served as the
/// answer to the post (its address in the browser is the server function's), and the
/// page's script puts the page's address back (`history.replaceState`), so the browser's
/// router, a reload and the back button see the form's page.
pub const PAGE_META: &str = "kw-page";

/// Runs `f` on the shared `state` when `el`'s end tag is read (never for an element
/// without one).
fn at_end<T: 'static>(
    el: &mut Element<'_, '_>,
    state: &Rc<RefCell<T>>,
    f: impl FnOnce(&mut T) + 'static,
) {
    let state = state.clone();
    let handler: lol_html::EndTagHandler<'static> = Box::new(move |_| {
        f(&mut state.borrow_mut());
        Ok(())
    });
    if let Some(handlers) = el.end_tag_handlers() {
        handlers.push(handler);
    }
}

/// `value` as the rewriter takes an attribute's value: it escapes `"` itself but reads
/// entities, so a typed `&quot;` would come back as `"` (and `<`, `>` are escaped as
/// well, though harmless inside a quoted value).
fn attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn kept(name: &str) -> bool {
    !name.is_empty() && !NEVER_KEPT.contains(&name)
}

/// True for an element that must be left as the server drew it.
fn secret_or_disabled(el: &Element<'_, '_>) -> bool {
    el.has_attribute("disabled")
        || el.get_attribute("autocomplete").is_some_and(|a| {
            matches!(
                a.as_str(),
                "one-time-code" | "current-password" | "new-password"
            )
        })
}

/// Which of the page's forms sent `sent` (the first whose action is `action` and none of
/// whose hidden fields, the form token aside, was sent with another value than the one
/// it has on the page: of a table's per-row forms, the row's own), and the `dialog` it
/// and `details` it sits in.
fn find(html: &str, action: &str, sent: &[(String, String)]) -> Option<Found> {
    #[derive(Default)]
    struct Scan {
        forms: usize,
        current: Option<usize>,
        matches: bool,
        chosen: Option<Found>,
        dialogs: usize,
        dialog: Option<usize>,
        details: usize,
        /// The `details` elements open around the element being read.
        around: Vec<usize>,
        /// The options of each select of the form being read, by the select's name.
        options: HashMap<String, Vec<String>>,
        select: Option<String>,
    }
    let scan = Rc::new(RefCell::new(Scan::default()));
    let (s1, s2, s3, s4, s5, s6) = (
        scan.clone(),
        scan.clone(),
        scan.clone(),
        scan.clone(),
        scan.clone(),
        scan.clone(),
    );
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                element!("details", move |el| {
                    let mut s = s4.borrow_mut();
                    let index = s.details;
                    s.details += 1;
                    s.around.push(index);
                    at_end(el, &s4, |s| {
                        s.around.pop();
                    });
                    Ok(())
                }),
                element!("dialog", move |el| {
                    let mut s = s1.borrow_mut();
                    s.dialog = Some(s.dialogs);
                    s.dialogs += 1;
                    at_end(el, &s1, |s| {
                        s.dialog = None;
                    });
                    Ok(())
                }),
                element!("form", move |el| {
                    if el.get_attribute("action").as_deref() != Some(action) {
                        return Ok(());
                    }
                    let mut s = s2.borrow_mut();
                    let index = s.forms;
                    s.forms += 1;
                    s.current = Some(index);
                    s.matches = true;
                    s.options.clear();
                    at_end(el, &s2, move |s| {
                        if s.matches && s.chosen.is_none() {
                            s.chosen = Some(Found {
                                form: index,
                                dialog: s.dialog,
                                details: s.around.clone(),
                                options: std::mem::take(&mut s.options),
                            });
                        }
                        s.current = None;
                    });
                    Ok(())
                }),
                element!("select", move |el| {
                    let mut s = s5.borrow_mut();
                    if s.current.is_none() {
                        return Ok(());
                    }
                    s.select = el.get_attribute("name");
                    at_end(el, &s5, |s| {
                        s.select = None;
                    });
                    Ok(())
                }),
                element!("option", move |el| {
                    let mut s = s6.borrow_mut();
                    if let (Some(name), Some(value)) = (s.select.clone(), el.get_attribute("value"))
                    {
                        s.options.entry(name).or_default().push(value);
                    }
                    Ok(())
                }),
                element!("input[type=hidden]", move |el| {
                    let mut s = s3.borrow_mut();
                    if s.current.is_none() {
                        return Ok(());
                    }
                    let name = el.get_attribute("name").unwrap_or_default();
                    if name.is_empty() || name == "form_token" {
                        return Ok(());
                    }
                    // A row's own id must have been sent, once, as it is on the page
                    // (another row's, a missing or a repeated one is not this form); a
                    // field the page's script fills in (drawn empty) says nothing.
                    let value = el.get_attribute("value").unwrap_or_default();
                    let mut sent_as = sent.iter().filter(|(k, _)| *k == name).map(|(_, v)| v);
                    let once =
                        matches!((sent_as.next(), sent_as.next()), (Some(v), None) if *v == value);
                    if !value.is_empty() && !once {
                        s.matches = false;
                    }
                    Ok(())
                }),
            ],
            ..RewriteStrSettings::new()
        },
    )
    .ok()?;
    let chosen = scan.borrow_mut().chosen.take();
    chosen
}

/// The form that sent a refused post, as `find` found it on its page.
struct Found {
    /// Its index among the page's forms of the same action.
    form: usize,
    /// The `dialog` it sits in.
    dialog: Option<usize>,
    /// The `details` it sits in (a table row's "Manage"), outermost first.
    details: Vec<usize>,
    /// The options of each of its selects, by the select's name.
    options: HashMap<String, Vec<String>>,
}

/// `html` (the form's page) with `sent` written back into the form that sent it (see
/// `find`), the dialog and the `details` holding that form open, and the page's address
/// (`page`) in a `meta` element. Every form of the page that posts to a server function
/// names the page it is on (`?__from=` and `from`, the page's address without the
/// error): the browser's address is the server function's, so its `Referer` cannot.
/// `None` when the page has no such form (the page is then better reached by the
/// redirect Leptos made).
pub fn fill(
    html: &str,
    action: &str,
    sent: &[(String, String)],
    page: &str,
    from: &str,
) -> Option<String> {
    let Found {
        form: target,
        dialog,
        details,
        options,
    } = find(html, action, sent)?;
    let from: String = form_urlencoded::byte_serialize(from.as_bytes()).collect();
    let values = |name: &str| -> Vec<&str> {
        sent.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    #[derive(Default)]
    struct Fill {
        forms: usize,
        dialogs: usize,
        details: usize,
        inside: bool,
        /// How many inputs of each name were filled: the n-th gets the n-th value.
        used: HashMap<String, usize>,
        /// The values chosen in the select being drawn.
        select: Option<Vec<String>>,
    }
    let state = Rc::new(RefCell::new(Fill::default()));
    let (s1, s2, s3, s4, s5, s6, s7) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let meta = page_meta(page);
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                element!("head", move |el| {
                    el.append(&meta, ContentType::Html);
                    Ok(())
                }),
                element!("dialog", move |el| {
                    let mut s = s1.borrow_mut();
                    if Some(s.dialogs) == dialog {
                        el.set_attribute("open", "")?;
                    }
                    s.dialogs += 1;
                    Ok(())
                }),
                element!("details", move |el| {
                    let mut s = s7.borrow_mut();
                    if details.contains(&s.details) {
                        el.set_attribute("open", "")?;
                    }
                    s.details += 1;
                    Ok(())
                }),
                element!("form", move |el| {
                    let own = el.get_attribute("action").unwrap_or_default();
                    if own.starts_with("/fn/") && !own.contains('?') {
                        el.set_attribute("action", &attribute(&format!("{own}?__from={from}")))?;
                    }
                    if own != action {
                        return Ok(());
                    }
                    let mut s = s2.borrow_mut();
                    let index = s.forms;
                    s.forms += 1;
                    if index != target {
                        return Ok(());
                    }
                    s.inside = true;
                    at_end(el, &s2, |s| {
                        s.inside = false;
                    });
                    Ok(())
                }),
                element!("input", move |el| {
                    let mut s = s3.borrow_mut();
                    let name = el.get_attribute("name").unwrap_or_default();
                    if !s.inside || !kept(&name) || secret_or_disabled(el) {
                        return Ok(());
                    }
                    let kind = el
                        .get_attribute("type")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    // A hidden field is the server's, unless it was drawn empty: one the
                    // page's script fills in (a sign-in's page to return to, the end of
                    // the chosen day), which the server could not know.
                    let hidden_blank = kind == "hidden"
                        && el.get_attribute("value").unwrap_or_default().is_empty();
                    if NOT_TEXT.contains(&kind.as_str()) && !hidden_blank {
                        return Ok(());
                    }
                    if kind == "checkbox" || kind == "radio" {
                        let own = el.get_attribute("value").unwrap_or_else(|| "on".into());
                        if values(&name).contains(&own.as_str()) {
                            el.set_attribute("checked", "")?;
                        } else {
                            el.remove_attribute("checked");
                        }
                        return Ok(());
                    }
                    let n = s.used.entry(name.clone()).or_default();
                    if let Some(value) = values(&name).get(*n) {
                        el.set_attribute("value", &attribute(value))?;
                    }
                    *n += 1;
                    Ok(())
                }),
                element!("textarea", move |el| {
                    let mut s = s4.borrow_mut();
                    let name = el.get_attribute("name").unwrap_or_default();
                    if !s.inside || !kept(&name) || secret_or_disabled(el) {
                        return Ok(());
                    }
                    let n = s.used.entry(name.clone()).or_default();
                    if let Some(value) = values(&name).get(*n) {
                        // A line break right after `<textarea>` is dropped by the parser
                        // (browsers send line breaks as CR LF).
                        let text = if value.starts_with('\n') || value.starts_with("\r\n") {
                            format!("\n{value}")
                        } else {
                            (*value).to_owned()
                        };
                        el.set_inner_content(&text, ContentType::Text);
                    }
                    *n += 1;
                    Ok(())
                }),
                element!("select", move |el| {
                    let mut s = s5.borrow_mut();
                    let name = el.get_attribute("name").unwrap_or_default();
                    if !s.inside || !kept(&name) || secret_or_disabled(el) {
                        return Ok(());
                    }
                    // Only a choice the select still offers: a value it no longer has
                    // (a role deleted meanwhile) leaves the server's own choice, not the
                    // first option (which would read as the choice made).
                    let offered = options.get(&name);
                    let chosen: Vec<String> = values(&name)
                        .into_iter()
                        .filter(|v| offered.is_some_and(|o| o.iter().any(|o| o == v)))
                        .map(str::to_owned)
                        .collect();
                    if chosen.is_empty() {
                        return Ok(());
                    }
                    s.select = Some(chosen);
                    at_end(el, &s5, |s| {
                        s.select = None;
                    });
                    Ok(())
                }),
                element!("option", move |el| {
                    let s = s6.borrow();
                    let (Some(chosen), Some(own)) = (&s.select, el.get_attribute("value")) else {
                        return Ok(());
                    };
                    if chosen.contains(&own) {
                        el.set_attribute("selected", "")?;
                    } else {
                        el.remove_attribute("selected");
                    }
                    Ok(())
                }),
            ],
            ..RewriteStrSettings::new()
        },
    )
    .ok()
}

fn page_meta(page: &str) -> String {
    format!(
        r#"<meta name="{PAGE_META}" content="{}">"#,
        html_escape::encode_double_quoted_attribute(page)
    )
}

/// `html` with its address (`page`) named in the `meta` element the page's script reads
/// before the browser's router does: for a page asked for with a form's error in its
/// address that the server did not show (not signed by it, or too old), the browser
/// must not read that error either.
pub fn name_page(html: &str, page: &str) -> Option<String> {
    let meta = page_meta(page);
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![element!("head", move |el| {
                el.append(&meta, ContentType::Html);
                Ok(())
            })],
            ..RewriteStrSettings::new()
        },
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::fill;

    fn sent(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const PAGE: &str = r#"<!DOCTYPE html><html><head><title>t</title></head><body>
<form action="/fn/other"><input name="name" value="keep me"></form>
<dialog id="d"><form action="/fn/keys/create" method="post">
<input type="hidden" name="form_token" value="fresh">
<input type="hidden" name="expiry_end" value="">
<input name="name" type="text">
<input name="password" type="password">
<input name="code" autocomplete="one-time-code">
<select name="role_id"><option value="3" selected>Developer</option><option value="5">Viewer</option></select>
<input type="checkbox" name="perm" value="a" checked><input type="checkbox" name="perm" value="b">
<textarea name="networks"></textarea>
</form></dialog>
</body></html>"#;

    #[test]
    fn what_was_typed_comes_back_in_the_form_that_sent_it_and_nothing_else() {
        let out = fill(
            PAGE,
            "/fn/keys/create",
            &sent(&[
                ("form_token", "old"),
                ("expiry_end", "1900000000"),
                ("name", "billing"),
                ("password", "hunter2"),
                ("code", "123456"),
                ("role_id", "5"),
                ("perm", "b"),
                ("networks", "10.0.0.0/8"),
            ]),
            "/keys?__err=x",
            "/keys",
        )
        .unwrap();
        assert!(
            out.contains(r#"<input name="name" type="text" value="billing">"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<option value="3">Developer</option><option value="5" selected="">"#),
            "{out}"
        );
        assert!(out.contains(r#"<input type="checkbox" name="perm" value="a"><input type="checkbox" name="perm" value="b" checked="">"#), "{out}");
        assert!(
            out.contains(r#"<textarea name="networks">10.0.0.0/8</textarea>"#),
            "{out}"
        );
        assert!(out.contains(r#"<dialog id="d" open="">"#), "{out}");
        assert!(
            out.contains(r#"<meta name="kw-page" content="/keys?__err=x">"#),
            "{out}"
        );
        // A hidden field drawn empty (the page's script fills it) takes what was sent.
        assert!(
            out.contains(r#"<input type="hidden" name="expiry_end" value="1900000000">"#),
            "{out}"
        );
        // Never written back: the server's fresh token stays, no password, no code.
        assert!(out.contains(r#"value="fresh""#));
        assert!(!out.contains("old") && !out.contains("hunter2") && !out.contains("123456"));
        // Another form on the page keeps its own value.
        assert!(out.contains(r#"<input name="name" value="keep me">"#));
    }

    #[test]
    fn hostile_values_stay_text() {
        let out = fill(
            PAGE,
            "/fn/keys/create",
            &sent(&[
                ("name", r#""><script>alert(1)</script>"#),
                ("networks", "</textarea><script>alert(2)</script>"),
                ("role_id", r#"5"><script>"#),
            ]),
            r#"/keys?"><script>"#,
            r#"/keys?"><script>"#,
        )
        .unwrap();
        assert!(!out.contains("<script"), "{out}");
        assert!(
            out.contains("&lt;/textarea&gt;&lt;script&gt;alert(2)"),
            "{out}"
        );
        // A value the select does not offer leaves the server's own choice (not the
        // first option, which a browser shows when none is selected).
        assert!(!out.contains(r#"value="5" selected"#));
        assert!(
            out.contains(r#"<option value="3" selected>Developer"#),
            "{out}"
        );
    }

    #[test]
    fn of_several_forms_of_one_action_the_row_that_sent_it_is_filled() {
        let page = r#"<html><head></head><body>
<details class="row-actions"><summary>Manage</summary><form action="/fn/keys/rename"><input type="hidden" name="key_id" value="key_a"><input type="hidden" name="form_token" value="t1"><input name="name" value="A"></form></details>
<details class="row-actions"><summary>Manage</summary><form action="/fn/keys/rename"><input type="hidden" name="key_id" value="key_b"><input type="hidden" name="form_token" value="t2"><input name="name" value="B"></form></details>
</body></html>"#;
        let rename = |pairs: &[(&str, &str)]| {
            fill(
                page,
                "/fn/keys/rename",
                &sent(pairs),
                "/keys?__err=x",
                "/keys",
            )
        };
        let out = rename(&[("key_id", "key_b"), ("form_token", "t0"), ("name", "typed")]).unwrap();
        assert!(
            out.contains(r#"<details class="row-actions"><summary>Manage</summary><form action="/fn/keys/rename?__from=%2Fkeys"><input type="hidden" name="key_id" value="key_a"><input type="hidden" name="form_token" value="t1"><input name="name" value="A">"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<details class="row-actions" open=""><summary>Manage</summary><form action="/fn/keys/rename?__from=%2Fkeys"><input type="hidden" name="key_id" value="key_b"><input type="hidden" name="form_token" value="t2"><input name="name" value="typed">"#),
            "{out}"
        );
        // A row that is not on the page, a missing or a repeated id: no row is the one.
        assert!(rename(&[("key_id", "key_z"), ("name", "typed")]).is_none());
        assert!(rename(&[("name", "typed")]).is_none());
        assert!(rename(&[("key_id", "key_a"), ("key_id", "key_b"), ("name", "typed")]).is_none());
        assert!(fill(page, "/fn/keys/create", &sent(&[]), "/keys", "/keys").is_none());
    }

    #[test]
    fn every_server_function_form_names_the_page_it_is_on() {
        let out = fill(
            PAGE,
            "/fn/keys/create",
            &sent(&[("name", "x")]),
            "/keys?status=active&__err=x",
            "/keys?status=active&q=a b",
        )
        .unwrap();
        assert!(
            out.contains(r#"<form action="/fn/other?__from=%2Fkeys%3Fstatus%3Dactive%26q%3Da+b">"#),
            "{out}"
        );
        assert!(out.contains(r#"<form action="/fn/keys/create?__from=%2Fkeys%3Fstatus%3Dactive%26q%3Da+b" method="post">"#), "{out}");
    }

    #[test]
    fn typed_entities_stay_as_typed() {
        let out = fill(
            PAGE,
            "/fn/keys/create",
            &sent(&[("name", "a&quot;b & c")]),
            "/",
            "/",
        )
        .unwrap();
        assert!(out.contains(r#"value="a&amp;quot;b &amp; c""#), "{out}");
    }

    #[test]
    fn a_leading_line_break_survives_the_textarea() {
        for typed in ["\n10.0.0.1", "\r\n10.0.0.1"] {
            let out = fill(
                PAGE,
                "/fn/keys/create",
                &sent(&[("networks", typed)]),
                "/",
                "/",
            )
            .unwrap();
            assert!(
                out.contains(&format!("<textarea name=\"networks\">\n{typed}</textarea>")),
                "{out}"
            );
        }
    }

    #[test]
    fn a_page_names_its_own_address() {
        let out = super::name_page(PAGE, r#"/keys?a=1&b="2""#).unwrap();
        assert!(
            out.contains(r#"<title>t</title><meta name="kw-page" content="/keys?a=1&amp;b=&quot;2&quot;"></head>"#),
            "{out}"
        );
    }
}
