//! The overview page: each panel shows what the signed-in user's role opens, from the
//! real data (keys, approvals, messages, failed authentication).

use super::access::{lift_key_limit, make_app, make_user, pairs, post_fn};
use super::*;

/// Built-in role ids (seeded with fixed ids).
const DEVELOPER: i64 = 3;
const VIEWER: i64 = 5;

/// Writes an email message through the panel's server function.
async fn compose(s: &Server, cookie: &str, app_id: i64, subject: &str) {
    let r = post_fn(
        s,
        Some(cookie),
        "/fn/messages/create",
        &pairs(&[
            ("app_id", &app_id.to_string()),
            ("channel", "email"),
            ("recipients", "ops@example.net"),
            ("subject", subject),
            ("body", "Hello."),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// A panel page's HTML (200 asserted).
pub(super) async fn page(s: &Server, cookie: &str, path: &str) -> String {
    let r = client()
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn overview_shows_keys_approvals_messages_and_failed_sign_ins_by_role() {
    let s = Server::start(&[]).await;
    // A failed sign-in: the Owner (audit.view) sees it among the alerts.
    let r = s
        .login_form("owner@example.com", "not the password at all", &[])
        .await;
    assert_eq!(r.status(), 400);
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;

    // A developer with a key expiring in 7 days and a message waiting for approval.
    let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
    let r = post_fn(
        &s,
        Some(&dev),
        "/fn/keys/create",
        &pairs(&[
            ("name", "deploy bot"),
            ("app_id", &app_id.to_string()),
            ("environment", "live"),
            ("role_id", &DEVELOPER.to_string()),
            ("expiry", "7"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    compose(&s, &dev, app_id, "Quarterly rotation").await;

    let html = page(&s, &dev, "/").await;
    assert!(html.contains("My API keys"), "{html}");
    assert!(html.contains("You hold 1 active API key."), "{html}");
    assert!(html.contains("deploy bot"), "{html}");
    assert!(html.contains("Keys expiring soon"), "{html}");
    assert!(
        html.contains("Your keys that expire in the next 14 days"),
        "{html}"
    );
    assert!(html.contains("My latest messages"), "{html}");
    assert!(html.contains("Quarterly rotation"), "{html}");
    assert!(html.contains("pending approval"), "{html}");
    // Not opened by a Developer's role.
    assert!(!html.contains("Pending approvals"), "{html}");
    assert!(!html.contains("Failed authentication"), "{html}");

    let html = page(&s, &owner, "/").await;
    assert!(html.contains("You hold no active API keys."), "{html}");
    // With api.key.view_all the expiring panel lists everyone's keys.
    assert!(
        html.contains("Keys that expire in the next 14 days"),
        "{html}"
    );
    assert!(html.contains("deploy bot"), "{html}");
    assert!(html.contains("Pending approvals"), "{html}");
    assert!(
        html.contains("1 message is waiting for your approval."),
        "{html}"
    );
    assert!(html.contains("Quarterly rotation"), "{html}");
    assert!(html.contains("Failed authentication"), "{html}");
    assert!(html.contains("Sign-in failed"), "{html}");
    assert!(html.contains("wrong password"), "{html}");

    // A Viewer: keys (api.key.view) and alerts (audit.view), nothing about messages.
    let (_, viewer) = make_user(&s, &owner, "viewer@example.com", VIEWER).await;
    let r = post_fn(&s, Some(&viewer), "/fn/overview/get", &[]).await;
    assert_eq!(r.status(), 200);
    let data: serde_json::Value = r.json().await.unwrap();
    assert!(data["approvals"].is_null(), "{data}");
    assert!(data["my_messages"].is_null(), "{data}");
    assert_eq!(data["my_keys"][1], 0, "{data}");
    assert_eq!(data["alerts"]["failed_sign_ins"], 1, "{data}");
    assert!(!data["expiring_all"].as_bool().unwrap(), "{data}");

    // /messages pages by 50, newest first, with a plain link to the older ones.
    for i in 0..50 {
        compose(&s, &dev, app_id, &format!("Note {i}")).await;
    }
    let html = page(&s, &dev, "/messages").await;
    assert!(
        html.contains("Note 49") && html.contains("Note 0"),
        "{html}"
    );
    assert!(
        !html.contains("Quarterly rotation"),
        "the 51st is on the next page"
    );
    let at = html
        .find("/messages?before=")
        .expect("a link to older messages");
    let href: String = html[at..].chars().take_while(|c| *c != '"').collect();
    let html = page(&s, &dev, &href).await;
    assert!(html.contains("Quarterly rotation"), "{html}");
    assert!(!html.contains("Note 0<"), "{html}");
    assert!(!html.contains("Older messages"), "{html}");
    assert!(html.contains("Newest messages"), "{html}");

    // /keys pages by 50 too, keeping its filters in the page links.
    lift_key_limit(&s, &owner).await;
    for i in 0..50 {
        let name = format!("service {i}");
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/create",
            &pairs(&[
                ("name", &name),
                ("app_id", &app_id.to_string()),
                ("environment", "live"),
                ("role_id", &DEVELOPER.to_string()),
                ("expiry", "never"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let html = page(&s, &owner, "/keys?environment=live").await;
    assert!(
        html.contains("service 49") && html.contains("service 0"),
        "{html}"
    );
    assert!(
        !html.contains("deploy bot"),
        "the 51st key is on the next page"
    );
    let at = html
        .find("/keys?environment=live&amp;after=")
        .expect("a link to older keys");
    let href: String = html[at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .replace("&amp;", "&");
    let html = page(&s, &owner, &href).await;
    assert!(html.contains("deploy bot"), "{html}");
    assert!(!html.contains("service 0"), "{html}");
    assert!(!html.contains("Next page"), "{html}");
    // Sorted by name (a header link): A to Z across pages, the filter kept in the links.
    let html = page(&s, &owner, "/keys?environment=live").await;
    assert!(
        html.contains("href=\"/keys?environment=live&amp;sort=name\""),
        "{html}"
    );
    let html = page(&s, &owner, "/keys?environment=live&sort=name").await;
    assert!(html.contains("aria-sort=\"ascending\""), "{html}");
    let first = html.find("deploy bot").expect("deploy bot first");
    assert!(first < html.find("service 0").unwrap(), "{html}");
    // "service 9" sorts after "service 49": the 51st, on the next page.
    assert!(!html.contains("service 9<"), "{html}");
    let at = html
        .find("/keys?environment=live&amp;sort=name&amp;after=")
        .expect("a link to the next page in the same order");
    let href: String = html[at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .replace("&amp;", "&");
    let html = page(&s, &owner, &href).await;
    assert!(
        html.contains("service 9<") && !html.contains("deploy bot"),
        "{html}"
    );
    // A hand-edited filter gets a clear refusal, not an empty page.
    for (path, says) in [
        (
            "/keys?status=gone",
            "Choose active, pending, disabled, revoked or expired.",
        ),
        ("/keys?app=abc", "Choose an app."),
        ("/messages?before=x", "Not a message ID."),
    ] {
        let r = client()
            .get(s.url(path))
            .header("cookie", &owner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("This address asks for something invalid"),
            "{html}"
        );
        assert!(html.contains(says), "{path}: {html}");
    }
    // The filter applies on the server: no test keys exist.
    let html = page(&s, &owner, "/keys?environment=test").await;
    assert!(html.contains("No keys to show."), "{html}");
}

#[tokio::test]
async fn a_user_with_thousands_of_keys_sees_a_capped_count_and_the_newest() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Fleet", "").await;
    let db = s.db().await;
    let (owner_id,): (i64,) =
        sqlx::query_as("select id from users where email = 'owner@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    // 1,001 active keys, the newest named "newest fleet key".
    sqlx::query(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 1001) \
         insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, \
           secret_hash, last4, networks, created_at, updated_at) \
         select 'key_fleet' || printf('%011d', i), 'rest', $1, 'live', $2, \
           case when i = 1001 then 'newest fleet key' else 'fleet key' end, 3, \
           lower(hex(randomblob(32))), 'xxxx', '', i, i from n",
    )
    .bind(app_id)
    .bind(owner_id)
    .execute(&db)
    .await
    .unwrap();
    let html = page(&s, &owner, "/").await;
    assert!(
        html.contains("You hold more than 1000 active API keys; the 10 newest:"),
        "{html}"
    );
    assert!(html.contains("newest fleet key"), "{html}");
}

#[tokio::test]
async fn pages_draw_times_in_the_zone_the_browser_named() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    // India has one offset all year (no daylight saving time to make the test flaky).
    let html = page(&s, &format!("{owner}; kw_tz=Asia/Kolkata"), "/").await;
    assert!(html.contains(" UTC+5:30"), "no local time in: {html}");
    // A made-up, hostile or malformed zone is UTC, never an error or a file read.
    for zone in [
        "Mars/Olympus_Mons",
        "../../../../etc/passwd",
        "%2e%2e%2fetc",
        "Asia/Kolkata\"x",
    ] {
        let html = page(&s, &format!("{owner}; kw_tz={zone}"), "/").await;
        assert!(!html.contains(" UTC+"), "{zone}: {html}");
        assert!(
            html.contains(" UTC<") || html.contains(" UTC "),
            "{zone}: no UTC time in the page"
        );
    }
    // Without the cookie (a first visit, no JavaScript): UTC.
    let html = page(&s, &owner, "/").await;
    assert!(!html.contains(" UTC+") && !html.contains(" UTC-"));
}

#[tokio::test]
async fn a_chosen_date_ends_in_the_zone_the_browser_named_when_no_script_said() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Dated", "").await;
    let create = |cookie: String, name: &'static str| {
        let s = &s;
        async move {
            let r = post_fn(
                s,
                Some(&cookie),
                "/fn/keys/create",
                &pairs(&[
                    ("name", name),
                    ("app_id", &app_id.to_string()),
                    ("environment", "live"),
                    ("role_id", &DEVELOPER.to_string()),
                    ("expiry", "date"),
                    ("expiry_date", "2030-01-15"),
                ]),
            )
            .await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            let v: serde_json::Value = r.json().await.unwrap();
            v["key"]["expires_at"].as_i64().unwrap()
        }
    };
    // Kolkata (UTC+5:30): that day ends at 18:30 UTC.
    assert_eq!(
        create(format!("{owner}; kw_tz=Asia/Kolkata"), "kolkata").await,
        1_894_732_200
    );
    // No zone known: the end of the UTC day.
    assert_eq!(create(owner.clone(), "utc").await, 1_894_752_000);
}
