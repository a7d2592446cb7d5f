//! Settings > Alerts: failed sign-ins of one account and refused requests of one key,
//! past the threshold within the window, mail the account (or the key's owner) and the
//! administrators once per window, at a real SMTP server, and are audited and listed
//! on the overview.

use super::access::{make_app, make_key, make_user, pairs, post_fn};
use super::messages::SmtpSink;
use super::*;

fn unfold(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The mails to `to` whose text contains `what`, waiting up to 10 s for at least `n`.
async fn mails(smtp: &SmtpSink, to: &str, what: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got: Vec<String> = smtp
            .to(to)
            .into_iter()
            .map(|m| unfold(&m))
            .filter(|m| m.contains(what))
            .collect();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn alerts_mail_once_per_window_past_the_threshold() {
    let smtp = SmtpSink::start().await;
    let s = Server::start(&[("KEYWARD_SMTP_URL", &smtp.url())]).await;
    let owner = s.sign_in().await;
    let _ = make_user(&s, &owner, "admin@example.com", 2).await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;

    // Out of range: refused beside its field, nothing saved.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/settings/alerts/save",
        &pairs(&[
            ("key_refusals", "5"),
            ("key_window_minutes", "0"),
            ("sign_in_failures", "3"),
            ("sign_in_window_minutes", "60"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 400);
    // A Developer may not change them.
    let form = pairs(&[
        ("key_refusals", "5"),
        ("key_window_minutes", "60"),
        ("sign_in_failures", "3"),
        ("sign_in_window_minutes", "60"),
    ]);
    let r = post_fn(&s, Some(&dev), "/fn/settings/alerts/save", &form).await;
    assert_eq!(r.status(), 403);
    let r = post_fn(&s, Some(&owner), "/fn/settings/alerts/save", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Failed sign-ins of the developer's account: the third sends the alert, the
    // fourth nothing more.
    for _ in 0..4 {
        let r = s
            .login_form("dev@example.com", "not the password at all", &[])
            .await;
        // Sent back to the form (a browser without JavaScript), never signed in.
        assert!(r.headers().get("location").is_none_or(|l| l != "/"));
        assert!(session_cookie(&r).is_none());
    }
    const SIGN_INS: &str = "Alert: repeated failed sign-ins";
    let to_dev = mails(&smtp, "dev@example.com", SIGN_INS, 1).await;
    assert_eq!(to_dev.len(), 1, "{to_dev:?}");
    assert!(to_dev[0].contains("3 sign-in steps to your account failed within 60 minutes"));
    let to_admin = mails(&smtp, "admin@example.com", SIGN_INS, 1).await;
    assert_eq!(to_admin.len(), 1);
    assert!(to_admin[0].contains("the account dev@example.com"));
    assert_eq!(
        mails(&smtp, "owner@example.com", SIGN_INS, 1).await.len(),
        1
    );

    // Refused requests of one key: its allow-list excludes this address.
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &dev, app, 3).await;
    let me: serde_json::Value = client()
        .get(s.url("/api/v1/whoami"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = me["key_id"].as_str().unwrap().to_owned();
    let r = post_fn(
        &s,
        Some(&dev),
        "/fn/keys/update",
        &pairs(&[
            ("key_id", &key_id),
            ("name", "test key"),
            ("role_id", "3"),
            ("networks", "203.0.113.0/24"),
            ("set_networks", "yes"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let refuse = |n: usize| {
        let (s, key) = (&s, key.clone());
        async move {
            for _ in 0..n {
                let r = client()
                    .get(s.url("/api/v1/whoami"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 403);
            }
        }
    };
    refuse(7).await;
    const KEY: &str = "Alert: an API key is being refused";
    let to_dev = mails(&smtp, "dev@example.com", KEY, 1).await;
    assert_eq!(to_dev.len(), 1);
    assert!(to_dev[0].contains(&key_id) && to_dev[0].contains(&format!("/keys/{key_id}")));
    assert!(!to_dev[0].contains(&key[8..]), "never the secret");
    let to_admin = mails(&smtp, "admin@example.com", KEY, 1).await;
    assert_eq!(to_admin.len(), 1);
    assert!(to_admin[0].contains(&format!("({key_id}) of dev@example.com was refused")));
    // More refusals in the same window: no second alert.
    refuse(7).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(mails(&smtp, "dev@example.com", KEY, 2).await.len(), 1);

    // Audited as the system's act, and listed on the overview.
    let pool = s.db().await;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select actor_type, target from audit_events where action = 'auth.alert' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("system".to_owned(), Some("dev@example.com".to_owned())),
            ("system".to_owned(), Some(key_id.clone())),
        ]
    );
    let html = client()
        .get(s.url("/"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Alert sent: a key refused past the threshold"));
    assert!(html.contains("Alert sent: failed sign-ins past the threshold"));
}

#[tokio::test]
async fn alert_mails_never_hold_a_sign_in_and_admins_get_at_most_ten_per_window() {
    let smtp = SmtpSink::start().await;
    let s = Server::start(&[("KEYWARD_SMTP_URL", &smtp.url())]).await;
    let owner = s.sign_in().await;
    let form = pairs(&[
        ("key_refusals", "100"),
        ("key_window_minutes", "10"),
        ("sign_in_failures", "2"),
        ("sign_in_window_minutes", "60"),
    ]);
    let r = post_fn(&s, Some(&owner), "/fn/settings/alerts/save", &form).await;
    assert_eq!(r.status(), 200);
    for i in 0..11 {
        let _ = make_user(&s, &owner, &format!("u{i}@example.com"), 3).await;
    }
    let fail = |email: String| {
        let s = &s;
        async move {
            let started = Instant::now();
            let r = s.login_form(&email, "not the password at all", &[]).await;
            assert!(session_cookie(&r).is_none());
            started.elapsed()
        }
    };
    // A mail server that never answers: the failed sign-in that trips the alert is
    // answered as soon as any other (the alert's mails go in the background), so its
    // timing says nothing about whether the account exists.
    smtp.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    fail("u0@example.com".into()).await;
    let tripping = fail("u0@example.com".into()).await;
    assert!(tripping < Duration::from_millis(1500), "{tripping:?}");
    smtp.stall.store(false, std::sync::atomic::Ordering::SeqCst);

    // Cycling through accounts: each account hears of its own alert, the administrators
    // of at most ten per window (all are audited).
    for i in 1..11 {
        fail(format!("u{i}@example.com")).await;
        fail(format!("u{i}@example.com")).await;
    }
    const SIGN_INS: &str = "Alert: repeated failed sign-ins";
    assert_eq!(mails(&smtp, "u10@example.com", SIGN_INS, 1).await.len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to_owner = mails(&smtp, "owner@example.com", SIGN_INS, 11).await;
    // u0's went to the stalled server (delivered later, or not); u1..u9 fill the
    // budget of ten with it, and u10's is not mailed to the administrators.
    assert!((9..=10).contains(&to_owner.len()), "{}", to_owner.len());
    assert!(to_owner.iter().all(|m| !m.contains("u10@example.com")));
    let (alerts,): (i64,) =
        sqlx::query_as("select count(*) from audit_events where action = 'auth.alert'")
            .fetch_one(&s.db().await)
            .await
            .unwrap();
    assert_eq!(alerts, 11);
}
