//! Create forms are acted on once per rendered form (a double click, a resent post, two
//! requests at the same instant make one key), and a chosen expiry date ends where the
//! browser is.

use super::access::{lift_key_limit, make_app, make_user, pairs, post_fn};
use super::*;
use serde_json::Value;

async fn form_token(s: &Server, cookie: &str) -> String {
    let r = post_fn(s, Some(cookie), "/fn/form/token", &[]).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn key_form(app: i64, name: &str, token: &str, expiry: &str) -> Vec<(String, String)> {
    pairs(&[
        ("name", name),
        ("app_id", &app.to_string()),
        ("environment", "live"),
        ("role_id", "3"),
        ("expiry", expiry),
        ("form_token", token),
    ])
}

async fn keys_named(s: &Server, name: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("select count(*) from api_keys where name = $1")
        .bind(name)
        .fetch_one(&s.db().await)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_create_form_is_acted_on_once_and_a_replay_names_what_the_first_made() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let app = make_app(&s, &owner, "Billing", "").await;

        // Sent twice (a double click without JavaScript, a resent post): one key, and
        // the second answer names it.
        let t = form_token(&s, &owner).await;
        let form = key_form(app, "once", &t, "7");
        let first = post_fn(&s, Some(&owner), "/fn/keys/create", &form).await;
        assert_eq!(first.status(), 200);
        let made: Value = first.json().await.unwrap();
        let again = post_fn(&s, Some(&owner), "/fn/keys/create", &form).await;
        assert_eq!(again.status(), 409);
        let text = again.text().await.unwrap();
        assert!(
            text.contains(made["key"]["key_id"].as_str().unwrap()),
            "{text}"
        );
        assert!(!text.contains(made["secret"].as_str().unwrap()));
        assert_eq!(keys_named(&s, "once").await, 1);

        // Two at the same instant: one wins.
        let t = form_token(&s, &owner).await;
        let form = key_form(app, "raced", &t, "7");
        let (a, b) = tokio::join!(
            post_fn(&s, Some(&owner), "/fn/keys/create", &form),
            post_fn(&s, Some(&owner), "/fn/keys/create", &form)
        );
        let mut codes = [a.status().as_u16(), b.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 409]);
        assert_eq!(keys_named(&s, "raced").await, 1);

        // A refused submission gives its token back: the corrected form goes through.
        let t = form_token(&s, &owner).await;
        let bad = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &key_form(app, "fixed", &t, "fortnight"),
        )
        .await;
        assert_eq!(bad.status(), 400);
        let good = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &key_form(app, "fixed", &t, "30"),
        )
        .await;
        assert_eq!(good.status(), 200);

        // The other create forms too: an app.
        let t = form_token(&s, &owner).await;
        let app_form = pairs(&[("name", "Shop"), ("form_token", &t)]);
        assert_eq!(
            post_fn(&s, Some(&owner), "/fn/apps/create", &app_form)
                .await
                .status(),
            200
        );
        let again = post_fn(&s, Some(&owner), "/fn/apps/create", &app_form).await;
        assert_eq!(again.status(), 409);
        assert!(again.text().await.unwrap().contains("Shop"));

        // A token that this server did not make is refused, not ignored.
        let forged = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &key_form(app, "forged", "not-a-token", "7"),
        )
        .await;
        assert_eq!(forged.status(), 400);
        assert_eq!(keys_named(&s, "forged").await, 0);

        // Tokens are for signed-in users only.
        assert_eq!(post_fn(&s, None, "/fn/form/token", &[]).await.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn the_rendered_form_carries_its_token_for_a_browser_without_javascript() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    make_app(&s, &owner, "Billing", "").await;
    for page in ["/keys", "/apps", "/users", "/roles", "/messages"] {
        let html = client()
            .get(s.url(page))
            .header("cookie", &owner)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = html
            .find(r#"name="form_token" value=""#)
            .unwrap_or_else(|| panic!("{page} has no form token"));
        let value: String = html[at + r#"name="form_token" value=""#.len()..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        assert_eq!(value.len(), 22, "{page}: {value}");
    }
}

#[tokio::test]
async fn a_chosen_date_ends_where_the_browser_is_within_real_time_zones() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // 2030-01-15 ends at 2030-01-16 00:00 UTC.
    let utc_end: i64 = 1_894_752_000;
    let create = |end: String| {
        let s = &s;
        let owner = &owner;
        async move {
            let mut form = key_form(app, "dated", "", "date");
            form.extend(pairs(&[
                ("expiry_date", "2030-01-15"),
                ("expiry_end", &end),
            ]));
            post_fn(s, Some(owner), "/fn/keys/create", &form).await
        }
    };
    // Istanbul (UTC+3): the day ends three hours before it does in UTC.
    let r = create((utc_end - 3 * 3600).to_string()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["key"]["expires_at"], utc_end - 3 * 3600);
    // No time zone said: the end of the day in UTC.
    let v: Value = create(String::new()).await.json().await.unwrap();
    assert_eq!(v["key"]["expires_at"], utc_end);
    // An end that no time zone has for that date (UTC-13, or another day) is refused.
    for end in [utc_end + 13 * 3600, utc_end - 15 * 3600, utc_end + 86_400] {
        assert_eq!(create(end.to_string()).await.status(), 400, "{end}");
    }
    assert_eq!(create("soon".into()).await.status(), 400);
}

#[tokio::test]
async fn a_closed_row_holds_no_form_and_its_manage_link_opens_that_row() {
    // A browser examines every form field of a page as it loads: a closed row's
    // actions are drawn only when opened, and without JavaScript "Manage" links to the
    // page with that row open (filters kept, scrolled to the row).
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &key_form(app, name, "", "7"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let (id,): (String,) = sqlx::query_as("select key_id from api_keys where name = $1")
            .bind(name)
            .fetch_one(&s.db().await)
            .await
            .unwrap();
        ids.push(id);
    }
    let rows = |path: String| {
        let (s, owner) = (&s, &owner);
        async move {
            let html = overview::page(s, owner, &path).await;
            let (from, to) = (html.find("<tbody").unwrap(), html.find("</tbody>").unwrap());
            html[from..to].to_owned()
        }
    };
    let closed = rows("/keys?environment=live".into()).await;
    for field in ["<form", "<input", "<select", "<textarea"] {
        assert!(!closed.contains(field), "{field} in a closed row: {closed}");
    }
    let (a, b) = (&ids[0], &ids[1]);
    assert!(
        closed.contains(&format!(
            "href=\"/keys?environment=live&amp;manage={a}#row-{a}\""
        )),
        "{closed}"
    );
    let open = rows(format!("/keys?environment=live&manage={a}")).await;
    assert_eq!(open.matches("<details open").count(), 1, "{open}");
    assert!(open.contains(&format!("id=\"revoke-{a}\"")), "{open}");
    assert!(open.contains(&format!("id=\"roll-{a}\"")));
    assert!(!open.contains(&format!("id=\"revoke-{b}\"")));
}

#[tokio::test]
async fn a_row_form_sent_from_the_plain_table_comes_back_open_in_its_row() {
    // A refused post from a row whose Referer is the plain table (a tab opened before
    // rows closed, a hand-made post) comes back with that row open and what was typed;
    // a finished one goes back to the row it was sent from, not the page's top.
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/create",
        &key_form(app, "worker", "", "7"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (a,): (String,) = sqlx::query_as("select key_id from api_keys where name = 'worker'")
        .fetch_one(&s.db().await)
        .await
        .unwrap();
    let refused = pairs(&[("key_id", &a), ("reason", "typed before the refusal")]);
    let r = plain_post(
        &s,
        &owner,
        "/fn/keys/revoke",
        "/keys?status=active",
        &refused,
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("Tick the box to confirm"), "{html}");
    assert!(html.contains("typed before the refusal"), "{html}");
    assert_eq!(html.matches("<details open").count(), 1, "{html}");
    let address = page_address(&html);
    assert!(address.starts_with("/keys?status=active&"), "{address}");
    assert!(address.ends_with(&format!("&manage={a}")), "{address}");
    // Its forms name the page with the row open.
    let from: String =
        form_urlencoded::byte_serialize(format!("/keys?status=active&manage={a}").as_bytes())
            .collect();
    assert!(
        html.contains(&format!(r#"action="/fn/keys/revoke?__from={from}""#)),
        "{html}"
    );
    // A key the page does not list opens nothing: the redirect with the error, as
    // before.
    let other = pairs(&[("key_id", "key_aaaaaaaaaaaaaaaa"), ("reason", "x")]);
    let r = plain_post(&s, &owner, "/fn/keys/revoke", "/keys", &other).await;
    assert!(r.status().is_redirection(), "{}", r.status());

    let done = pairs(&[("key_id", &a), ("reason", "done"), ("confirm", "yes")]);
    let back = format!("/keys?status=revoked&manage={a}");
    let r = plain_post(&s, &owner, "/fn/keys/revoke", &back, &done).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], format!("{back}#row-{a}").as_str());
}

#[tokio::test]
async fn a_page_of_sixty_keys_renders_on_the_server() {
    // The server renders the whole table without JavaScript; a row's view once
    // overflowed a runtime thread's stack, which aborted the process.
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    lift_key_limit(&s, &owner).await;
    for i in 0..60 {
        let name = format!("key number {i} with a long name that wraps on a phone");
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &key_form(app, &name, "", "7"),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let r = client()
        .get(s.url("/keys"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(
        html.matches("<summary aria-label=\"Manage key_").count(),
        50
    );
    assert!(
        html.contains("in 7 days") || html.contains("in 6 days"),
        "relative expiry"
    );
}

/// The address a form's page answered to a plain post names as its own
/// (`<meta name="kw-page">`).
fn page_address(html: &str) -> String {
    let (_, rest) = html
        .split_once(r#"<meta name="kw-page" content=""#)
        .unwrap_or_else(|| panic!("no page address: {html}"));
    let (content, _) = rest.split_once('"').unwrap();
    content.replace("&amp;", "&")
}

/// A plain form post (no JavaScript), as a browser sends it from `referer`.
async fn plain_post(
    s: &Server,
    cookie: &str,
    path: &str,
    referer: &str,
    form: &[(String, String)],
) -> reqwest::Response {
    client()
        .post(s.url(path))
        .header("origin", &s.base)
        .header("accept", "text/html")
        .header("referer", s.url(referer))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_plain_form_comes_back_with_what_was_typed() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let t = form_token(&s, &owner).await;

    // A key form with a bad expiry: the page comes back as the answer (400), the error
    // beside its field, and every typed value in the form, the dialog open.
    let mut form = key_form(app, r#"billing "prod" <eu>"#, &t, "fortnight");
    form.retain(|(k, _)| k != "role_id");
    form.extend(pairs(&[
        ("role_id", "5"),
        ("environment", "test"),
        (
            "networks",
            "10.0.0.0/8\n</textarea><script>alert(1)</script>",
        ),
    ]));
    form.retain(|(k, v)| !(k == "environment" && v == "live"));
    let r = plain_post(&s, &owner, "/fn/keys/create", "/keys", &form).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("Choose when the key expires."), "{html}");
    assert!(
        html.contains(r#"value="billing &quot;prod&quot; &lt;eu&gt;""#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="5" selected="">"#), "{html}");
    assert!(
        html.contains(r#"<option value="test" selected="">"#),
        "{html}"
    );
    assert!(
        html.contains(
            "10.0.0.0/8\n&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;</textarea>"
        ),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(
        html.contains(
            r#"<dialog id="create-key" aria-labelledby="create-key-title" class="dialog" open="">"#
        ),
        "{html}"
    );
    // The page's own form token, not the one sent (which the refusal gave back).
    assert!(!html.contains(&format!(r#"value="{t}""#)));
    assert_eq!(keys_named(&s, r#"billing "prod" <eu>"#).await, 0);

    // Another form on another page: an app named as one that exists.
    let t = form_token(&s, &owner).await;
    let app_form = |name: &str| {
        pairs(&[
            ("name", name),
            ("networks", "192.0.2.0/24"),
            ("form_token", &t),
        ])
    };
    let r = plain_post(&s, &owner, "/fn/apps/create", "/apps", &app_form("billing")).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"value="billing""#), "{html}");
    assert!(html.contains("192.0.2.0/24</textarea>"), "{html}");
    // Each error keeps its own status: the same form sent again after it made its app
    // is a conflict (409).
    let r = plain_post(&s, &owner, "/fn/apps/create", "/apps", &app_form("Shop")).await;
    assert!(r.status().is_redirection());
    let r = plain_post(&s, &owner, "/fn/apps/create", "/apps", &app_form("Shop")).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains(r#"value="Shop""#));

    // A password is never written back (the sudo form of the account page).
    let r = plain_post(
        &s,
        &owner,
        "/fn/account/password",
        "/account",
        &pairs(&[
            ("current_password", "wrong password"),
            ("new_password", "new password 123"),
            ("confirm_password", "new password 123"),
        ]),
    )
    .await;
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("wrong password") && !html.contains("new password 123"),
        "{html}"
    );

    // The drawn page is at the server function's address in the browser, so the next
    // form sent from it has that as its Referer: its forms name their page instead,
    // and a second refusal, then the corrected form, go where they belong.
    let action = r#"action="/fn/apps/create?__from=%2Fapps""#;
    let t = form_token(&s, &owner).await;
    let bad = pairs(&[
        ("name", "Ledger"),
        ("networks", "nowhere"),
        ("form_token", &t),
    ]);
    let r = plain_post(&s, &owner, "/fn/apps/create", "/apps", &bad).await;
    let html = r.text().await.unwrap();
    assert!(html.contains(action), "{html}");
    let r = plain_post(
        &s,
        &owner,
        "/fn/apps/create?__from=%2Fapps",
        "/fn/apps/create",
        &bad,
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"value="Ledger""#) && html.contains(action),
        "{html}"
    );
    let good = pairs(&[("name", "Ledger"), ("networks", ""), ("form_token", &t)]);
    let r = plain_post(
        &s,
        &owner,
        "/fn/apps/create?__from=%2Fapps",
        "/fn/apps/create",
        &good,
    )
    .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/apps"));
    // A page named that is not a page is not drawn (nor run): the export of the audit
    // log, a server function.
    for from in [
        "%2Faudit%2Fexport.csv",
        "%2Ffn%2Fapps%2Fcreate",
        "%2F%2Fevil.example",
    ] {
        let t = form_token(&s, &owner).await;
        let bad = pairs(&[
            ("name", "Ledger"),
            ("networks", "nowhere"),
            ("form_token", &t),
        ]);
        let path = format!("/fn/apps/create?__from={from}");
        let r = plain_post(&s, &owner, &path, "/audit/export.csv", &bad).await;
        assert!(r.status().is_redirection(), "{from}: {}", r.status());
    }
    let (exports,): (i64,) =
        sqlx::query_as("select count(*) from audit_events where action = 'audit.exported'")
            .fetch_one(&s.db().await)
            .await
            .unwrap();
    assert_eq!(exports, 0);
    // The server function's address opened as a page (a bookmark of the answer).
    let r = client()
        .get(s.url("/fn/apps/create"))
        .header("accept", "text/html")
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/");

    // With JavaScript (no `Accept: text/html`): the error as JSON, as before.
    let t = form_token(&s, &owner).await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/create",
        &key_form(app, "x", &t, "fortnight"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

#[tokio::test]
async fn a_form_error_in_the_address_shows_only_when_this_server_put_it_there() {
    use base64::Engine as _;
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    make_app(&s, &owner, "Billing", "").await;
    let page = |path: String| {
        let (s, owner) = (&s, owner.clone());
        async move {
            client()
                .get(s.url(&path))
                .header("cookie", owner)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    // Someone else's link with an error of their own wording: not shown.
    let lure = base64::engine::general_purpose::STANDARD
        .encode(r#"{"Conflict":"Keyward moved: sign in at https://evil.example"}"#);
    let forged: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("__path", "/fn/keys/create")
        .append_pair("__err", &lure)
        .finish();
    for path in ["/login", "/keys"] {
        // (Sign-in is drawn for someone signed out: the signed in go on to the panel.)
        let html = if path == "/login" {
            let r = client().get(s.url(&format!("{path}?{forged}"))).send();
            r.await.unwrap().text().await.unwrap()
        } else {
            page(format!("{path}?{forged}")).await
        };
        assert!(!html.contains("evil.example"));
        // The page names the address it was drawn for (without the error), for its
        // script to put in the browser's location before the browser reads the error.
        assert_eq!(page_address(&html), path);
    }

    // A real error of a plain form post comes back signed and is shown.
    let post = |referer: &str| {
        let referer = referer.to_owned();
        let (s, owner) = (&s, owner.clone());
        async move {
            client()
                .post(s.url("/fn/keys/create"))
                .header("origin", &s.base)
                .header("accept", "text/html")
                .header("referer", referer.replace("BASE", &s.base))
                .header("cookie", owner)
                .form(&key_form(1, "bad", "", "fortnight"))
                .send()
                .await
                .unwrap()
        }
    };
    // (It is answered with the form's page itself; the page names its own address.)
    let r = post("BASE/keys").await;
    assert_eq!(r.status(), 400);
    let location = page_address(&r.text().await.unwrap());
    assert!(
        location.starts_with("/keys?") && location.contains("__sig="),
        "{location}"
    );
    assert!(page(location.clone())
        .await
        .contains("Choose when the key expires."));
    // Its signature does not carry over to another error.
    let other = location.replace(
        "__path=%2Ffn%2Fkeys%2Fcreate",
        "__path=%2Ffn%2Fapps%2Fcreate",
    );
    assert_ne!(other, location);
    assert!(!page(other).await.contains("Choose when the key expires."));
    // Nor to another page or another person (a signed error made with one's own form
    // is no lure for someone else).
    assert!(!page(location.replacen("/keys?", "/apps?", 1))
        .await
        .contains("Choose when the key expires."));
    let (_, someone) = make_user(&s, &owner, "dev@example.com", 3).await;
    let theirs = client()
        .get(s.url(&location))
        .header("cookie", someone)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains("Choose when the key expires."));
    // A second failure sent from the page that shows the first: the newest error only.
    let r = post(&format!("BASE{location}")).await;
    let again = page_address(&r.text().await.unwrap());
    assert_eq!(again.matches("__err=").count(), 1, "{again}");
    assert!(page(again).await.contains("Choose when the key expires."));

    // A Referer of another site (or a script URL) never becomes the redirect.
    for referer in [
        "https://evil.example/keys",
        "javascript:alert(1)",
        "//evil.example/x",
    ] {
        let r = post(referer).await;
        assert_eq!(r.headers()["location"], "/", "{referer}");
    }
}

#[tokio::test]
async fn submissions_that_never_finished_are_capped_per_user() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // As many claims as requests cut off while running would leave.
    let db = s.db().await;
    for i in 0..100 {
        sqlx::query(
            "insert into form_submissions (token_hash, user_id, made, created_at, updated_at) \
             values ($1, 1, null, $2, $2)",
        )
        .bind(format!("cut-off-{i}"))
        .bind(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        )
        .execute(&db)
        .await
        .unwrap();
    }
    let t = form_token(&s, &owner).await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/create",
        &key_form(app, "one more", &t, "7"),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(keys_named(&s, "one more").await, 0);
}

#[tokio::test]
async fn a_form_sent_without_one_of_its_fields_names_that_field() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let t = form_token(&s, &owner).await;
    let mut form = key_form(app, "no role", &t, "7");
    form.retain(|(k, _)| k != "role_id");

    // With JavaScript: the error is the field's, in plain words (no parser's text).
    let r = post_fn(&s, Some(&owner), "/fn/keys/create", &form).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["Validation"]["field"], "role_id", "{e}");
    assert_eq!(
        e["Validation"]["message"],
        "Required: the form was sent without its role_id field."
    );

    // Without: the page comes back with the message beside the role select.
    let r = plain_post(&s, &owner, "/fn/keys/create", "/keys", &form).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Required: the form was sent without its role_id field."),
        "{html}"
    );
    assert!(!html.contains("missing field"), "{html}");
    assert_eq!(keys_named(&s, "no role").await, 0);
}

#[tokio::test]
async fn a_wrong_password_on_a_settings_form_is_named_beside_the_password_field() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let form = pairs(&[
        ("key_refusals", "50"),
        ("key_window_minutes", "10"),
        ("sign_in_failures", "10"),
        ("sign_in_window_minutes", "15"),
        ("password", "certainly not the password"),
    ]);
    let r = plain_post(&s, &owner, "/fn/settings/alerts/save", "/settings", &form).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    // The alerts form's password field says it is wrong, and names the message.
    assert!(
        html.contains(r#"<p id="alerts-sudo-error" class="field-error">Incorrect password."#),
        "{html}"
    );
    let (_, field) = html
        .split_once(r#"id="alerts-sudo-password""#)
        .expect("the alerts form's password field");
    let field = &field[..field.find('>').unwrap()];
    assert!(field.contains(r#"aria-invalid="true""#), "{field}");
    assert!(
        field.contains(r#"aria-describedby="alerts-sudo-error alerts-sudo-hint""#),
        "{field}"
    );
    // The other settings forms' password fields are not marked.
    assert!(!html.contains(r#"id="keys-sudo-error""#), "{html}");
}
