//! SMS: sender numbers and their keys, SMS messages through both gateway forms (test
//! doubles on loopback that check the signature or the basic auth), SMS sign-in codes.

use super::access::{make_app, make_key, pairs, post_fn};
use super::api::call;
use super::*;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What a gateway double got: (headers, body), in arrival order.
type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A gateway double on a free loopback port: accepts every POST to `path`, except that
/// an SMS to `refuse` gets a 400 (as a gateway refusing a number does).
async fn gateway(path: &'static str, refuse: &'static str) -> (String, Got) {
    let got: Got = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let refused = body.contains(refuse) || body.contains(&refuse.replace('+', "%2B"));
                seen.lock().unwrap().push((headers, body));
                if refused {
                    (http::StatusCode::BAD_REQUEST, "invalid number")
                } else {
                    (http::StatusCode::CREATED, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

/// Waits (up to 15 s) until the double holds `n` requests.
async fn wait_for(got: &Got, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} requests, not {n}",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const GATEWAY_SECRET: &str = "gateway-secret-0123456789";

/// Adds a sender number to an app; returns (key id, secret).
async fn add_number(s: &Server, owner: &str, app: i64, number: &str) -> (String, String) {
    let r = post_fn(
        s,
        Some(owner),
        "/fn/channels/numbers/add",
        &pairs(&[
            ("app_id", &app.to_string()),
            ("number", number),
            ("environment", "live"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    (
        v["key_id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

/// Messages go out without approval (Settings > Messages).
async fn no_approval(s: &Server, owner: &str) {
    let r = post_fn(
        s,
        Some(owner),
        "/fn/settings/messages/save",
        &pairs(&[
            ("approval_required", "not_required"),
            ("approvals_needed", "1"),
            ("pending_expiry_hours", "72"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn wait_status(s: &Server, key: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, v) = call(
            s,
            "GET",
            &format!("/api/v1/messages/{id}"),
            Some(key),
            None,
            &[],
        )
        .await;
        if v["status"] == status || Instant::now() > deadline {
            assert_eq!(v["status"], status, "{v}\n{}", s.log());
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_sms_key_sends_only_from_its_number_and_each_recipient_gets_one_signed_request() {
    let (base, got) = gateway("/sms", "+447911123456").await;
    let url = format!("{base}/sms");
    let s = Server::start(&[
        ("KEYWARD_SMS_URL", url.as_str()),
        ("KEYWARD_SMS_SECRET", GATEWAY_SECRET),
    ])
    .await;
    let owner = s.sign_in().await;
    no_approval(&s, &owner).await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let other = make_app(&s, &owner, "Other", "").await;
    let (key1, sms1) = add_number(&s, &owner, app, "+90 555 123 45 67").await;
    let (_, sms2) = add_number(&s, &owner, app, "+14155552671").await;

    // The app's page lists its numbers.
    let apps: Value = post_fn(&s, Some(&owner), "/fn/apps/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let listed = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app)
        .unwrap()["sender_numbers"]
        .clone();
    assert_eq!(listed, json!(["+14155552671", "+905551234567"]));
    // The number is unique in the deployment and must be a real E.164 number.
    for (number, app_id) in [
        ("+905551234567", other),
        ("+999123", app),
        ("05551234567", app),
    ] {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/channels/numbers/add",
            &pairs(&[
                ("app_id", &app_id.to_string()),
                ("number", number),
                ("environment", "live"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 400, "{number}");
    }

    let sms = |from: &str, to: Value| json!({ "app_id": app, "channel": "sms", "from": from, "to": to, "body": "Your code is ready." });
    // Outside its number, channel or app, or any other route: channel_not_allowed.
    for (body, what) in [
        (
            sms("+14155552671", json!(["+905559876543"])),
            "another number",
        ),
        (
            json!({ "app_id": app, "channel": "email", "recipients": ["a@example.com"], "subject": "s", "body": "b" }),
            "email",
        ),
        (
            json!({ "app_id": other, "channel": "sms", "from": "+905551234567", "to": ["+905559876543"], "body": "b" }),
            "another app",
        ),
    ] {
        let (st, _, v) = call(&s, "POST", "/api/v1/messages", Some(&sms1), Some(body), &[]).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (403, Some("channel_not_allowed")),
            "{what}: {v}"
        );
    }
    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&sms1), None, &[]).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("channel_not_allowed"))
    );

    // Malformed numbers, too many (also as repeats), premium-rate and landline numbers,
    // numbers given as email recipients, a webhook URL on an SMS: 400.
    let fifty_one: Vec<String> = (0..51).map(|i| format!("+9055512345{i:02}")).collect();
    let repeats: Vec<&str> = vec!["+905559876543"; 51];
    for body in [
        sms("+905551234567", json!(repeats)),
        sms("+905551234567", json!(["+449098790000"])),
        sms("+905551234567", json!(["+442071234567"])),
        json!({ "app_id": app, "channel": "sms", "from": "+905551234567", "to": ["+905559876543"], "webhook_url": "https://hooks.example.com/x", "body": "b" }),
        sms("+905551234567", json!(["not a number"])),
        sms("+905551234567", json!(fifty_one)),
        sms("+905551234567", json!([])),
        json!({ "app_id": app, "channel": "sms", "from": "+905551234567", "recipients": ["+905559876543"], "body": "b" }),
    ] {
        let (st, _, v) = call(
            &s,
            "POST",
            "/api/v1/messages",
            Some(&sms1),
            Some(body.clone()),
            &[],
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "{v}"
        );
        // The field is named as this body names it.
        let fields = v["error"]["details"]["fields"].as_object().unwrap();
        let named: Vec<&str> = fields.keys().map(String::as_str).collect();
        let expected = if body.get("webhook_url").is_some() {
            "webhook_url"
        } else if body.get("recipients").is_some() {
            "recipients"
        } else {
            "to"
        };
        assert_eq!(named, [expected], "{v}");
    }
    // A REST key may send from any of its app's numbers, never from another app's.
    let rest = make_key(&s, &owner, other, 3).await;
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&rest),
        Some(json!({ "app_id": other, "channel": "sms", "from": "+905551234567", "to": ["+905559876543"], "body": "b" })),
        &[],
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"]["details"]["fields"]["from"].is_string(), "{v}");

    // Two recipients (one written twice, in another spelling): two requests, signed.
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&sms1),
        Some(sms(
            "+905551234567",
            json!(["+90 555 987 65 43", "+905559876543", "+14155552671"]),
        )),
        &[],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let m = wait_status(&s, &sms1, &id, "sent").await;
    assert_eq!(m["sender"], "+905551234567");
    assert_eq!(m["recipients"], json!(["+905559876543", "+14155552671"]));
    wait_for(&got, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let all = got.lock().unwrap();
        assert_eq!(all.len(), 2, "once per recipient");
        for (i, (h, body)) in all.iter().enumerate() {
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["id"], format!("{id}-{}", i + 1));
            assert_eq!(v["from"], "+905551234567");
            assert_eq!(v["body"], "Your code is ready.");
            assert_eq!(h["x-keyward-delivery"], v["id"].as_str().unwrap());
            let ts: i64 = h["x-keyward-timestamp"].to_str().unwrap().parse().unwrap();
            let want = app::core::messages::delivery::signature(
                GATEWAY_SECRET.as_bytes(),
                ts,
                body.as_bytes(),
            );
            assert_eq!(h["x-keyward-signature"].to_str().unwrap(), want);
            assert!(!body.contains(&sms1), "never a key");
        }
        let to: Vec<Value> = all
            .iter()
            .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["to"].clone())
            .collect();
        assert_eq!(to, vec![json!("+905559876543"), json!("+14155552671")]);
    }

    // A number the gateway refuses (4xx) fails the message at once, not retried.
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&sms2),
        Some(sms("+14155552671", json!(["+447911123456"]))),
        &[],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let failed = wait_status(&s, &sms2, v["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["attempts"], 1);
    assert!(
        failed["last_error"].as_str().unwrap().contains("HTTP 400"),
        "{failed}"
    );

    // Removing the number revokes its key at once.
    let numbers: Value = post_fn(&s, Some(&owner), "/fn/channels/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let n = numbers["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key_id"] == key1.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/numbers/remove",
        &pairs(&[("id", &n.to_string()), ("confirm", "yes")]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&sms1),
        Some(sms("+905551234567", json!(["+905559876543"]))),
        &[],
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("key_revoked")),
        "{v}"
    );
}

#[tokio::test]
async fn the_twilio_form_posts_an_approved_sms_once_to_the_messages_api_with_basic_auth() {
    let (base, got) = gateway(
        "/2010-04-01/Accounts/AC0123abcd/Messages.json",
        "+447911123456",
    )
    .await;
    let host = base.trim_start_matches("http://");
    let url = format!("twilio+http://AC0123abcd:tok456secret@{host}");
    let s = Server::start(&[("KEYWARD_SMS_URL", url.as_str())]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let (_, key) = add_number(&s, &owner, app, "+14155552671").await;
    // An Approver (not the author) must approve it first (the default).
    let (_, approver) = access::make_user(&s, &owner, "approver@example.com", 4).await;
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(json!({ "app_id": app, "channel": "sms", "from": "+14155552671", "to": ["+905559876543"], "body": "Hello & welcome" })),
        &[],
    )
    .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (202, Some("pending_approval")),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        got.lock().unwrap().is_empty(),
        "nothing leaves before approval"
    );
    let (_, _, m) = call(
        &s,
        "GET",
        &format!("/api/v1/messages/{id}"),
        Some(&key),
        None,
        &[],
    )
    .await;
    let hash = m["payload_hash"].as_str().unwrap().to_owned();
    // Two approvals at once (one of them a repeat): the message goes once.
    let approve = || {
        let (s, approver, id, hash) = (&s, approver.clone(), id.clone(), hash.clone());
        async move {
            post_fn(
                s,
                Some(&approver),
                "/fn/approvals/approve",
                &pairs(&[("id", &id), ("payload_hash", &hash)]),
            )
            .await
            .status()
            .as_u16()
        }
    };
    let (a, b) = tokio::join!(approve(), approve());
    assert_eq!([a, b].iter().filter(|c| **c == 200).count(), 1, "{a} {b}");
    wait_status(&s, &key, &id, "sent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = got.lock().unwrap();
    assert_eq!(all.len(), 1, "delivered once");
    let (h, body) = &all[0];
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("AC0123abcd:tok456secret");
    assert_eq!(
        h["authorization"].to_str().unwrap(),
        format!("Basic {basic}")
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("To"), Some("+905559876543"));
    assert_eq!(field("From"), Some("+14155552671"));
    assert_eq!(field("Body"), Some("Hello & welcome"));
}

#[tokio::test]
async fn a_confirmed_phone_receives_the_sign_in_code_by_sms_and_email_remains_a_choice() {
    let (base, got) = gateway("/sms", "never").await;
    let url = format!("{base}/sms");
    let s = Server::start(&[
        ("KEYWARD_SMS_URL", url.as_str()),
        ("KEYWARD_SMS_SECRET", GATEWAY_SECRET),
    ])
    .await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Auth", "").await;
    add_number(&s, &owner, app, "+14155552671").await;
    // SMS codes need a sender number named in Settings > General.
    let mut form = access::default_settings_form();
    form.push(("accept_sms_code".into(), "true".into()));
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &form).await;
    assert_eq!(r.status(), 400, "no sender number chosen");
    form.retain(|(k, _)| k != "second_factor");
    form.push(("second_factor".into(), "required".into()));
    form.push(("sms_code_from".into(), "+14155552671".into()));
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let code_in = |n: usize| {
        let all = got.lock().unwrap();
        let v: Value = serde_json::from_str(&all[n].1).unwrap();
        let text = v["body"].as_str().unwrap().to_owned();
        let at = text.find("code").unwrap();
        let digits: String = text[at..]
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect();
        (
            v["to"].as_str().unwrap().to_owned(),
            v["from"].as_str().unwrap().to_owned(),
            digits,
        )
    };
    // SMS codes only, while the one saving has no phone: refused (they could not sign in
    // again).
    let mut sms_only: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k != "accept_email_code" && k != "accept_totp")
        .cloned()
        .collect();
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &sms_only).await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    // Confirm a phone: a code goes to it; a wrong code does not confirm it.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/account/phone/start",
        &pairs(&[("number", "+44 7911 123456")]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_for(&got, 1).await;
    let (to, from, code) = code_in(0);
    assert_eq!(
        (to.as_str(), from.as_str()),
        ("+447911123456", "+14155552671")
    );
    let confirm = |code: String| {
        let (s, owner) = (&s, owner.clone());
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/account/phone/confirm",
                &pairs(&[("number", "+447911123456"), ("code", &code)]),
            )
            .await
            .status()
            .as_u16()
        }
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(confirm(wrong.into()).await, 400);
    assert_eq!(confirm(code).await, 200);
    assert_eq!(
        mails_to(
            &s,
            "owner@example.com",
            "A phone number was added to your account"
        )
        .len(),
        1
    );
    // With the phone confirmed, SMS codes alone are fine; then email codes again too.
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &sms_only).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    sms_only.push(("accept_email_code".into(), "true".into()));
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &sms_only).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The number codes come from cannot be removed while it sends them.
    let list: Value = post_fn(&s, Some(&owner), "/fn/channels/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let id = list["numbers"][0]["id"].as_i64().unwrap();
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/numbers/remove",
        &pairs(&[("id", &id.to_string()), ("confirm", "yes")]),
    )
    .await;
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());

    // Sign in again: the code comes by SMS to the confirmed phone.
    let r = client()
        .post(s.url("/fn/auth/login"))
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pending = session_cookie(&r).unwrap();
    let step: Value = post_fn(&s, Some(&pending), "/fn/auth/pending", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(step["method"], "sms");
    assert_eq!(step["others"], json!(["email"]));
    assert_eq!(step["phone"], "+44••••••3456");
    wait_for(&got, 2).await;
    let (to, _, code) = code_in(1);
    assert_eq!(to, "+447911123456");
    // Switching to email sends a code there instead (after the resend wait).
    let r = post_fn(
        &s,
        Some(&pending),
        "/fn/auth/resend",
        &pairs(&[("method", "email")]),
    )
    .await;
    assert_eq!(r.status(), 429, "the resend wait applies to a switch too");
    let r = post_fn(
        &s,
        Some(&pending),
        "/fn/auth/resend",
        &pairs(&[("method", "carrier pigeon")]),
    )
    .await;
    assert_eq!(r.status(), 400);
    // The SMS code signs in.
    let r = post_fn(
        &s,
        Some(&pending),
        "/fn/auth/verify",
        &pairs(&[("code", &code)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", s.log());
    let signed_in = session_cookie(&r).unwrap();
    let me: Value = post_fn(&s, Some(&signed_in), "/fn/auth/me", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "owner@example.com");
}

#[tokio::test]
async fn a_plain_form_post_that_adds_a_number_shows_its_keys_secret_in_the_answer() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Texts", "").await;
    // A browser without JavaScript posts the form itself and follows no script.
    let r = client()
        .post(s.url("/fn/channels/numbers/add"))
        .header("origin", &s.base)
        .header("cookie", &owner)
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", s.url("/channels"))
        .form(&pairs(&[
            ("app_id", &app.to_string()),
            ("number", "+447911123456"),
            ("environment", "live"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no redirect: the secret would be lost");
    assert!(r.headers().get("location").is_none());
    assert_eq!(r.headers()["cache-control"], "no-store, no-transform");
    let html = r.text().await.unwrap();
    let start = html.find("value=\"kw_live_").unwrap() + "value=\"".len();
    let secret = &html[start..start + 46];
    assert!(html.contains("Copy your new channel key now"), "{html}");
    assert!(html.contains("href=\"/channels#row-key_"), "{html}");
    // It is the key's own: it authenticates (and is kept to its channel).
    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(secret), None, &[]).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("channel_not_allowed"))
    );
}

#[tokio::test]
async fn a_number_row_holds_no_form_until_opened_and_a_refused_removal_comes_back_open() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Texts", "").await;
    add_number(&s, &owner, app, "+447911123456").await;
    let list: Value = post_fn(&s, Some(&owner), "/fn/channels/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let id = list["numbers"][0]["id"].as_i64().unwrap();
    let row = format!("number-{id}");
    // Closed: a link to the page with the row open, and no form of its own.
    let page = overview::page(&s, &owner, "/channels").await;
    let start = page.find(&format!(r#"<tr id="row-{row}""#)).unwrap();
    let tr = &page[start..start + page[start..].find("</tr>").unwrap()];
    assert!(!tr.contains("<form"), "{tr}");
    assert!(
        tr.contains(&format!(r#"href="/channels?manage={row}#row-{row}""#)),
        "{tr}"
    );
    assert!(tr.contains(r#"aria-label="Manage +447911123456""#), "{tr}");
    // Opened by the address: the remove dialog's form is there.
    let open = overview::page(&s, &owner, &format!("/channels?manage={row}")).await;
    assert!(
        open.contains(&format!(r#"id="remove-number-{id}""#)),
        "{open}"
    );
    // Removed without the box ticked, from /channels without `manage`: the page comes
    // back with that row open, its dialog open beside the error, and nothing removed.
    let r = client()
        .post(s.url("/fn/channels/numbers/remove"))
        .header("origin", &s.base)
        .header("accept", "text/html")
        .header("referer", s.url("/channels"))
        .header("cookie", &owner)
        .form(&pairs(&[("id", &id.to_string())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    // (The open row's form is drawn: it holds the remove dialog, open beside the error.)
    assert!(
        html.contains(&format!(
            r#"id="remove-number-{id}" aria-labelledby="remove-number-{id}-title" class="dialog" open"#
        )),
        "{html}"
    );
    assert!(html.contains("Tick the box to confirm"), "{html}");
    let list: Value = post_fn(&s, Some(&owner), "/fn/channels/list", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["numbers"].as_array().unwrap().len(), 1);
}
