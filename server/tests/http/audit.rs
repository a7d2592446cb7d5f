//! The audit page, its CSV export and `keyward audit verify`, against the real binary.

use super::access::{make_app, make_user, pairs, post_fn};
use super::*;

async fn get(s: &Server, cookie: &str, path: &str) -> reqwest::Response {
    client()
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The export's rows, parsed by the `csv` crate (header row first).
async fn export(s: &Server, cookie: &str, query: &str) -> Vec<Vec<String>> {
    let r = get(s, cookie, &format!("/audit/export.csv{query}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"keyward-audit-"),
        "{disposition}"
    );
    let body = r.bytes().await.unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&body[..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn the_audit_page_lists_filters_and_refuses_a_bad_filter_beside_its_field() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let _ = s
        .login_form("owner@example.com", "wrong password", &[])
        .await;
    let r = get(&s, &owner, "/audit").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Audit log"), "{html}");
    assert!(html.contains("auth.sign_in"));
    assert!(html.contains("owner@example.com"));
    assert!(
        html.contains(r#"href="/audit""#),
        "the navigation links the page"
    );
    // Only the failures.
    let html = get(&s, &owner, "/audit?outcome=failure")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("status-failed"));
    assert!(!html.contains(">success<"), "{html}");
    // The export link carries the page's filters.
    assert!(html.contains(r#"href="/audit/export.csv?outcome=failure""#));
    // A filter the server refuses: 400, the message beside its field, the form kept.
    let r = get(&s, &owner, "/audit?ip=not-an-address&action=auth.").await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"aria-invalid="true""#), "{html}");
    assert!(html.contains(r#"aria-describedby="f-ip-error""#));
    assert!(html.contains(r#"id="f-ip-error""#));
    assert!(
        html.contains(r#"value="not-an-address""#),
        "what was typed stays"
    );
    // The chain on request.
    let html = get(&s, &owner, "/audit?verify=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Intact: all"), "{html}");
}

#[tokio::test]
async fn the_csv_export_quotes_neutralises_formulas_and_is_audited() {
    let s = Server::start(&[]).await;
    // A sign-in whose browser name is a spreadsheet formula with a comma and quotes.
    let ua = r#"=HYPERLINK("http://evil.example/?a,b","click")"#;
    let r = s
        .login_form("owner@example.com", PASSWORD, &[("user-agent", ua)])
        .await;
    let owner = session_cookie(&r).unwrap();
    let rows = export(&s, &owner, "?action=auth.sign_in").await;
    assert_eq!(
        rows[0],
        [
            "seq",
            "time_utc",
            "actor_type",
            "actor",
            "action",
            "target",
            "ip",
            "user_agent",
            "outcome",
            "details"
        ]
    );
    let row = rows
        .iter()
        .find(|r| r[7].contains("HYPERLINK"))
        .expect("the sign-in with that browser is exported");
    assert_eq!(row[7], format!("'{ua}"), "the formula is text, whole");
    assert_eq!(row[4], "auth.sign_in");
    assert_eq!(row[6], "127.0.0.1");
    assert!(row[1].ends_with('Z'), "{}", row[1]);
    // Every exported row matches the filter, newest first.
    assert!(rows[1..].iter().all(|r| r[4] == "auth.sign_in"));
    let seqs: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    // Asked for gzip (as every browser does), the same file compressed, whole.
    let r = client()
        .get(s.url("/audit/export.csv?action=auth.sign_in"))
        .header("cookie", &owner)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let gz = r.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
        .expect("a complete gzip stream");
    let unzipped: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(unzipped, rows);
    // The export is in the log: who, from where, with which filters.
    let all = export(&s, &owner, "?action=audit.exported").await;
    assert_eq!(all.len(), 4, "the three exports so far: {all:?}");
    assert_eq!(all[3][3], "owner@example.com");
    assert!(all[3][9].contains("auth.sign_in"), "{}", all[3][9]);
    // A refused filter is a 400 with the reason, and no file.
    let r = get(&s, &owner, "/audit/export.csv?from=someday").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("YYYY-MM-DD"));
}

#[tokio::test]
async fn only_holders_of_audit_view_read_the_log() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    // Developer: no audit.view.
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let r = get(&s, &dev, "/audit/export.csv").await;
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains("auth.sign_in"));
    let r = get(&s, &dev, "/audit").await;
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(!html.contains("auth.sign_in"));
    assert!(
        !html.contains(r#"href="/audit""#),
        "not in a Developer's navigation"
    );
    let r = post_fn(&s, Some(&dev), "/fn/audit/list", &[]).await;
    assert_eq!(r.status(), 403);
    // Viewer: audit.view.
    let (_, viewer) = make_user(&s, &owner, "viewer@example.com", 5).await;
    assert_eq!(get(&s, &viewer, "/audit").await.status(), 200);
    assert_eq!(get(&s, &viewer, "/audit/export.csv").await.status(), 200);
    // Signed out: to the sign-in page, and back here afterwards.
    let r = client()
        .get(s.url("/audit/export.csv?outcome=failure"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login"), "{to}");
}

#[tokio::test]
async fn keyward_audit_verify_exits_non_zero_when_an_event_was_edited() {
    let s = Server::start(&[]).await;
    let _owner = s.sign_in().await;
    let verify = || {
        command(&s.dir, &s.db_url)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Intact: all"));
    let pool = s.db().await;
    sqlx::query("update audit_events set ip = '203.0.113.66' where seq = 1")
        .execute(&pool)
        .await
        .unwrap();
    let out = verify();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Broken at event 1: its contents were changed"),
        "{err}"
    );
}

#[tokio::test]
async fn the_export_refuses_what_the_page_would_and_a_download_started_elsewhere() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let exports = |pool: sqlx::AnyPool| async move {
        let (n,): (i64,) =
            sqlx::query_as("select count(*) from audit_events where action = 'audit.exported'")
                .fetch_one(&pool)
                .await
                .unwrap();
        n
    };
    // A filter given twice, or a broken page link: 400, and no export is recorded.
    for query in ["?action=auth.&action=user.", "?before=0"] {
        let r = get(&s, &owner, &format!("/audit/export.csv{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
    }
    assert_eq!(exports(s.db().await).await, 0);
    // Another site navigating the user's browser here.
    let r = client()
        .get(s.url("/audit/export.csv"))
        .header("cookie", &owner)
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(exports(s.db().await).await, 0);
}

#[tokio::test]
async fn a_webhook_url_in_the_log_shows_only_its_origin() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Hooks", "").await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[
            ("app_id", &app.to_string()),
            ("url", "https://hooks.example.com/x?token=SECRETTOKEN123"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, viewer) = make_user(&s, &owner, "viewer@example.com", 5).await;
    let html = get(&s, &viewer, "/audit?action=webhook.")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("https://hooks.example.com/…"), "{html}");
    assert!(!html.contains("SECRETTOKEN123"));
    let csv = export(&s, &viewer, "?action=webhook.").await;
    assert!(csv.iter().all(|r| !r.join(",").contains("SECRETTOKEN123")));
    assert_eq!(csv[1][5], "https://hooks.example.com/…");
}

#[tokio::test]
async fn a_sign_in_that_cannot_be_audited_leaves_nobody_signed_in() {
    let s = Server::start(&[]).await;
    // A row in the way of the next audit event: the sign-in's audit write fails.
    let pool = s.db().await;
    let (head,): (i64,) = sqlx::query_as("select seq from audit_chain where id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into audit_events (seq, occurred_at, actor_type, action, outcome, details, \
         prev_hash, hash, created_at, updated_at) values ($1, 0, 'system', 'x', 'success', \
         '{}', '', '', 0, 0)",
    )
    .bind(head + 1)
    .execute(&pool)
    .await
    .unwrap();
    let r = s.login_form("owner@example.com", PASSWORD, &[]).await;
    if let Some(cookie) = session_cookie(&r) {
        let r = get(&s, &cookie, "/").await;
        assert_eq!(
            r.status(),
            303,
            "the session outlived its unaudited sign-in"
        );
    }
}
