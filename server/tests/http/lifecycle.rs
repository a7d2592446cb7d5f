//! The key lifecycle through both doors: approval before a key works (Settings > Keys),
//! and keys disabled for disuse enabled again on their page.

use super::access::{make_app, make_key, make_user, pairs, post_fn};
use super::api::{call, error_code};
use super::*;
use serde_json::Value;

async fn save_key_settings(s: &Server, owner: &str, approval: &str) {
    let r = post_fn(
        s,
        Some(owner),
        "/fn/settings/keys/save",
        &pairs(&[
            ("max_active_per_user_per_app", "10"),
            ("max_expiry_days", "0"),
            ("default_expiry", "90"),
            ("require_approval", approval),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The key IDs in `cookie`'s approval queue.
async fn queue(s: &Server, cookie: &str) -> Vec<String> {
    let r = post_fn(s, Some(cookie), "/fn/approvals/view", &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn whoami(s: &Server, key: &str) -> (u16, String) {
    let (st, h, v) = call(s, "GET", "/api/v1/whoami", Some(key), None, &[]).await;
    if st == 200 {
        return (st, String::new());
    }
    (st, error_code(st, &h, &v))
}

async fn decide(
    s: &Server,
    cookie: &str,
    key_id: &str,
    decision: &str,
    reason: &str,
) -> reqwest::Response {
    post_fn(
        s,
        Some(cookie),
        "/fn/approvals/key",
        &pairs(&[
            ("key_id", key_id),
            ("decision", decision),
            ("reason", reason),
        ]),
    )
    .await
}

#[tokio::test]
async fn with_approval_required_a_new_key_is_refused_until_someone_else_approves_it() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let (_, admin) = make_user(&s, &owner, "admin@example.com", 2).await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let app = make_app(&s, &owner, "Billing", "").await;
    save_key_settings(&s, &owner, "required").await;

    let dev_key = make_key(&s, &dev, app, 3).await;
    assert_eq!(whoami(&s, &dev_key).await, (401, "key_pending".into()));
    // Everyone who may approve is told, not its owner.
    let waiting = "An API key is waiting for your approval";
    let deadline = Instant::now() + Duration::from_secs(5);
    while mails_to(&s, "admin@example.com", waiting).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mails_to(&s, "admin@example.com", waiting).len(), 1);
    assert_eq!(mails_to(&s, "owner@example.com", waiting).len(), 1);
    assert!(mails_to(&s, "dev@example.com", waiting).is_empty());
    let own_key = make_key(&s, &owner, app, 3).await;
    // Each waits in the queue of everyone who may approve it but its owner.
    let for_admin = queue(&s, &admin).await;
    assert_eq!(for_admin.len(), 2, "{for_admin:?}");
    let for_owner = queue(&s, &owner).await;
    assert_eq!(for_owner.len(), 1);
    let dev_id = for_owner[0].clone();
    // The overview points approvers at the queue.
    let home = client()
        .get(s.url("/"))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("2 new keys are waiting for your approval"),
        "{home}"
    );
    let own_id = for_admin.iter().find(|k| **k != dev_id).unwrap().clone();
    // A Developer holds no api.key.approve: the queue and the decision are refused.
    assert_eq!(
        post_fn(&s, Some(&dev), "/fn/approvals/view", &[])
            .await
            .status(),
        403
    );
    assert_eq!(decide(&s, &dev, &dev_id, "approve", "").await.status(), 403);
    // The owner of a key does not approve it, whatever they hold.
    let r = decide(&s, &owner, &own_id, "approve", "").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("your own key"));

    // Approved by someone else: it works, and its owner is told.
    let r = decide(&s, &owner, &dev_id, "approve", "").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(whoami(&s, &dev_key).await.0, 200);
    assert_eq!(
        mails_to(&s, "dev@example.com", "Your API key was approved").len(),
        1
    );
    assert_eq!(
        decide(&s, &admin, &dev_id, "approve", "").await.status(),
        409,
        "decided once"
    );

    // The Owner's key: an Admin may approve it but not reject it (a rejection revokes,
    // and nobody revokes the key of someone who holds more).
    let r = decide(&s, &admin, &own_id, "reject", "no").await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("holds permissions you do not"));
    assert_eq!(
        decide(&s, &admin, &own_id, "approve", "").await.status(),
        200
    );
    assert_eq!(whoami(&s, &own_key).await.0, 200);

    // Rejected with a reason (none: 400): revoked for good, its owner told why.
    let second = make_key(&s, &dev, app, 3).await;
    let second_id = queue(&s, &admin).await.pop().unwrap();
    assert_eq!(
        decide(&s, &admin, &second_id, "reject", " ").await.status(),
        400
    );
    let r = decide(&s, &admin, &second_id, "reject", "use the test app").await;
    assert_eq!(r.status(), 200);
    assert_eq!(whoami(&s, &second).await, (401, "key_revoked".into()));
    let mail = mails_to(&s, "dev@example.com", "Your API key was not approved");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("use the test app"));
    assert!(queue(&s, &admin).await.is_empty());

    // Off again: new keys work at once.
    save_key_settings(&s, &owner, "off").await;
    let key = make_key(&s, &dev, app, 3).await;
    assert_eq!(whoami(&s, &key).await.0, 200);
    // The contract names the refusal.
    let doc = client()
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(doc.contains("key_pending") && doc.contains("key_disabled"));
}

#[tokio::test]
async fn a_disabled_key_is_refused_until_its_owner_enables_it_on_its_page() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let (_, other) = make_user(&s, &owner, "other@example.com", 3).await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &dev, app, 3).await;
    // As the job leaves it (the job itself is tested on both databases with a clock).
    let db = s.db().await;
    sqlx::query("update api_keys set disabled_at = created_at")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(whoami(&s, &key).await, (401, "key_disabled".into()));
    let r = post_fn(
        &s,
        Some(&dev),
        "/fn/keys/list",
        &pairs(&[("status", "disabled")]),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let key_id = v["keys"][0]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(v["keys"][0]["status"], "disabled");
    let page = client()
        .get(s.url(&format!("/keys/{key_id}")))
        .header("cookie", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Disabled because it went unused"));
    assert!(page.contains("Enable this key"));
    let enable = |cookie: String| {
        let (s, key_id) = (&s, key_id.clone());
        async move {
            post_fn(
                s,
                Some(&cookie),
                "/fn/keys/enable",
                &pairs(&[("key_id", &key_id)]),
            )
            .await
            .status()
        }
    };
    // Someone else's key, not visible to them: as if it did not exist.
    assert_eq!(enable(other).await, 404);
    assert_eq!(enable(dev.clone()).await, 200);
    assert_eq!(whoami(&s, &key).await.0, 200);
    assert_eq!(enable(dev).await, 409, "already enabled");
}
