//! The message workflow and the panel's plumbing under attack: approvals count only
//! people who may approve now; a webhook's URL stays with app managers; a message's
//! history holds only its own events; Settings > Messages refuses forms that would
//! change what they do not show; made-up session cookies write nothing; a stray second
//! step does not sign a session out.

use super::access::{make_app, make_key, make_role, make_user, pairs, post_fn};
use super::*;
use serde_json::Value;

const APPROVER: i64 = 4;
const DEVELOPER: i64 = 3;

async fn save_messages(s: &Server, owner: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = pairs(&[
        ("approval_required", "required"),
        ("approvals_needed", "2"),
        ("pending_expiry_hours", "72"),
    ]);
    form.extend(pairs(extra));
    post_fn(s, Some(owner), "/fn/settings/messages/save", &form).await
}

async fn write(s: &Server, dev: &str, app: i64, fields: &[(&str, &str)]) -> Value {
    let mut form = pairs(&[
        ("app_id", &app.to_string()),
        ("subject", "Hi"),
        ("body", "hello"),
    ]);
    form.extend(pairs(fields));
    let r = post_fn(s, Some(dev), "/fn/messages/create", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_approval_stops_counting_when_its_approver_is_disabled_or_loses_the_permission() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let app = make_app(&s, &owner, "Billing", "").await;
        assert_eq!(save_messages(&s, &owner, &[]).await.status(), 200);
        let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
        let (ap1_id, ap1) = make_user(&s, &owner, "ap1@example.com", APPROVER).await;
        let (_, ap2) = make_user(&s, &owner, "ap2@example.com", APPROVER).await;
        let m = write(
            &s,
            &dev,
            app,
            &[("channel", "email"), ("recipients", "c@example.org")],
        )
        .await;
        let (id, hash) = (
            m["id"].as_str().unwrap(),
            m["payload_hash"].as_str().unwrap(),
        );
        let approve = |who: String| {
            let s = &s;
            async move {
                post_fn(
                    s,
                    Some(&who),
                    "/fn/approvals/approve",
                    &pairs(&[("id", id), ("payload_hash", hash)]),
                )
                .await
                .json::<Value>()
                .await
                .unwrap()
            }
        };
        assert_eq!(approve(ap1).await["approvals"], 1);
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/users/set_enabled",
            &pairs(&[("user_id", &ap1_id.to_string()), ("enabled", "false")]),
        )
        .await;
        assert_eq!(r.status(), 200);
        // The second approval makes one that still counts: not two people.
        let after = approve(ap2).await;
        assert_eq!(
            (after["status"].as_str(), after["approvals"].as_i64()),
            (Some("pending_approval"), Some(1)),
            "{after}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_webhook_url_stays_with_app_managers_once_a_message_exists() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let url = "https://hooks.example.test/t/s3cr3tpathtoken";
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[("app_id", &app.to_string()), ("url", url)]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
    let m = write(
        &s,
        &dev,
        app,
        &[("channel", "webhook"), ("webhook_url", "#1")],
    )
    .await;
    assert!(!m.to_string().contains("s3cr3tpathtoken"), "{m}");
    assert_eq!(m["webhook_url"], "https://hooks.example.test/…");
    assert_eq!(m["webhook_ref"], "#1");
    let id = m["id"].as_str().unwrap();
    for (path, form) in [
        ("/fn/messages/list", vec![]),
        ("/fn/messages/get", pairs(&[("id", id)])),
    ] {
        let body = post_fn(&s, Some(&dev), path, &form)
            .await
            .text()
            .await
            .unwrap();
        assert!(!body.contains("s3cr3tpathtoken"), "{path}: {body}");
    }
    let page = client()
        .get(s.url(&format!("/messages/{id}")))
        .header("cookie", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("s3cr3tpathtoken"));
    // The author edits it through the reference, never having seen the URL.
    let r = post_fn(
        &s,
        Some(&dev),
        "/fn/messages/edit",
        &pairs(&[
            ("id", id),
            ("webhook_url", "#1"),
            ("subject", "Hi again"),
            ("body", "hello"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // An app manager sees the whole URL.
    let body = post_fn(&s, Some(&owner), "/fn/messages/get", &pairs(&[("id", id)]))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("s3cr3tpathtoken"));
}

#[tokio::test]
async fn a_message_history_holds_only_its_own_events() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let m = write(
        &s,
        &owner,
        app,
        &[("channel", "email"), ("recipients", "c@example.org")],
    )
    .await;
    let id = m["id"].as_str().unwrap();
    // An app and a role named like the message: their events are not its history.
    make_app(&s, &owner, id, "").await;
    make_role(&s, &owner, id, &[]).await;
    let v: Value = post_fn(&s, Some(&owner), "/fn/messages/get", &pairs(&[("id", id)]))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().all(|a| a.starts_with("message.")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn settings_for_messages_refuse_a_form_that_would_change_what_it_does_not_show() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let a = make_app(&s, &owner, "A", "").await;
    let b = make_app(&s, &owner, "B", "").await;
    let rule = |app: i64, r: &str| format!("{app}={r}");
    let (ra, rb) = (rule(a, "not_required"), rule(b, "default"));
    let r = save_messages(&s, &owner, &[("overrides[]", &ra), ("overrides[]", &rb)]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // One app twice, or one app left out: refused, nothing changes.
    let twice = rule(a, "required");
    for form in [
        vec![
            ("overrides[]", ra.as_str()),
            ("overrides[]", twice.as_str()),
            ("overrides[]", rb.as_str()),
        ],
        vec![("overrides[]", rb.as_str())],
    ] {
        let r = save_messages(&s, &owner, &form).await;
        assert_eq!(r.status(), 400, "{form:?}");
    }
    // No rules sent at all: the saved ones stay.
    assert_eq!(save_messages(&s, &owner, &[]).await.status(), 200);
    let v: Value = post_fn(&s, Some(&owner), "/fn/settings/general", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["messages"]["app_overrides"],
        serde_json::json!([[a, false]]),
        "{v}"
    );
}

#[tokio::test]
async fn made_up_session_cookies_write_nothing_and_a_stray_second_step_keeps_a_session() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let pool = s.db().await;
    let count = || async {
        let (n,): (i64,) = sqlx::query_as("select count(*) from sessions")
            .fetch_one(&s.db().await)
            .await
            .unwrap();
        n
    };
    let before = count().await;
    use base64::Engine as _;
    for i in 0..4 {
        // Well-formed session ids (16 bytes, base64url) that no server ever issued.
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("made-up-id-{i:05}"));
        for page in ["/login", "/invite/whatever"] {
            let r = client()
                .get(s.url(page))
                .header("cookie", format!("keyward_session={id}"))
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{page}");
        }
    }
    assert_eq!(
        count().await,
        before,
        "no row for an empty anonymous session"
    );
    drop(pool);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/auth/verify",
        &pairs(&[("code", "123456")]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_fn(&s, Some(&owner), "/fn/auth/me", &[]).await;
    assert_eq!(r.status(), 200, "still signed in");
}

#[tokio::test]
async fn a_key_in_a_refused_url_never_reaches_the_log() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 3).await;
    for path in [
        format!("/api/v1/keys/{key}"),
        format!("/api/v1/{key}"),
        format!("/api/v1/whoami;{key}"),
    ] {
        let r = client()
            .delete(s.url(&path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = &key["kw_live_".len()..];
    assert!(!s.log().contains(body), "the server log holds the key");
}
