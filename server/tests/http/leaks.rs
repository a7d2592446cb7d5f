//! `POST /api/v1/leaks`: a reported key is revoked soon after, its owner and the
//! administrators are mailed at a real SMTP server, and the answer never says what
//! matched.

use super::access::{make_app, make_key, make_user};
use super::api::{call, error_code};
use super::messages::SmtpSink;
use super::*;
use serde_json::json;

const LEAKED: &str = "reported as leaked and revoked";

/// A mail's text with quoted-printable soft line breaks undone.
fn unfold(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

#[tokio::test]
async fn a_reported_key_is_revoked_once_and_its_owner_and_the_admins_are_mailed() {
    let smtp = SmtpSink::start().await;
    let s = Server::start(&[("KEYWARD_SMTP_URL", &smtp.url())]).await;
    let owner = s.sign_in().await;
    let _ = make_user(&s, &owner, "admin@example.com", 2).await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &dev, app, 3).await;
    let other = make_key(&s, &dev, app, 3).await;
    let (st, _, me) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!(st, 200);
    let key_id = me["key_id"].as_str().unwrap().to_owned();

    // The real key among junk: a look-alike with a bad checksum and plain text.
    let mut bad = key.clone();
    bad.replace_range(10..11, if &key[10..11] == "A" { "B" } else { "A" });
    let report = |tokens: Vec<String>| {
        let s = &s;
        async move {
            call(
                s,
                "POST",
                "/api/v1/leaks",
                None,
                Some(json!({ "tokens": tokens })),
                &[],
            )
            .await
        }
    };
    let (st, _, with_key) = report(vec![bad.clone(), key.clone(), "hello".into()]).await;
    assert_eq!(st, 202, "{with_key}");
    // The same answer for a report that holds no key at all.
    let (st2, _, without) = report(vec![bad.clone(), "a".into(), "hello".into()]).await;
    assert_eq!((st2, &without), (202, &with_key));
    assert_eq!(with_key, json!({ "received": 3 }));

    // Revoked within seconds, by the worker.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
        if st == 401 {
            assert_eq!(error_code(st, &h, &v), "key_revoked");
            break;
        }
        assert!(Instant::now() < deadline, "the reported key still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other key of the same owner still works.
    let (st, _, _) = call(&s, "GET", "/api/v1/whoami", Some(&other), None, &[]).await;
    assert_eq!(st, 200);

    // Mail: the owner of the key, and every Owner and Admin, once each.
    let leaked_mail = |to: &str| {
        smtp.to(to)
            .into_iter()
            .map(|m| unfold(&m))
            .filter(|m| m.contains(LEAKED))
            .collect::<Vec<_>>()
    };
    for to in ["dev@example.com", "owner@example.com", "admin@example.com"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while leaked_mail(to).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = leaked_mail(to);
        assert_eq!(got.len(), 1, "{to}: {got:?}");
        assert!(got[0].contains(&key_id), "{to}");
        assert!(got[0].contains("127.0.0.1"), "the reporter's address: {to}");
        assert!(!got[0].contains(&key[8..]), "never the secret");
    }
    assert!(leaked_mail("admin@example.com")[0].contains("dev@example.com"));

    // Reported again: nothing more happens.
    let (st, _, _) = report(vec![key.clone()]).await;
    assert_eq!(st, 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(leaked_mail("dev@example.com").len(), 1);

    // Audited once, as the system's act, with the reporter's address; never the token.
    let pool = s.db().await;
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "select actor_type, target, ip from audit_events where action = 'api_key.leaked'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(
            "system".to_owned(),
            Some(key_id.clone()),
            Some("127.0.0.1".to_owned())
        )]
    );
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from leak_reports where token_hash like '%kw_%' or reporter_ip like '%kw_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert!(
        !s.log().contains(&key[8..]),
        "the log never holds the secret"
    );
}

#[tokio::test]
async fn leak_reports_are_bounded_and_limited_per_address() {
    let s = Server::start(&[]).await;
    let post = |body: serde_json::Value| {
        let s = &s;
        async move { call(s, "POST", "/api/v1/leaks", None, Some(body), &[]).await }
    };
    for (body, why) in [
        (json!({ "tokens": [] }), "no token"),
        (json!({ "tokens": vec!["x"; 101] }), "more than 100 tokens"),
        (json!({ "tokens": ["x".repeat(201)] }), "a token too long"),
        (json!({ "tokens": ["x"], "also": 1 }), "an unknown field"),
        (json!({ "tokens": "kw_live_x" }), "not a list"),
    ] {
        let (st, h, v) = post(body).await;
        assert_eq!(st, 400, "{why}: {v}");
        assert_eq!(error_code(st, &h, &v), "validation_failed", "{why}");
    }
    // A megabyte: refused before it is read whole.
    let (st, h, v) = post(json!({ "tokens": ["x".repeat(1_000_000)] })).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(error_code(st, &h, &v), "payload_too_large");
    // Ten reports at once from one address, then one every 6 seconds.
    let mut limited = None;
    for i in 0..15 {
        let (st, h, v) = post(json!({ "tokens": ["hello"] })).await;
        if st == 429 {
            assert_eq!(error_code(st, &h, &v), "rate_limited");
            assert!(h.contains_key("retry-after"));
            limited = Some(i);
            break;
        }
        assert_eq!(st, 202, "{v}");
    }
    assert!(limited.is_some(), "never limited");
}
