//! Messages end to end through the binary: the REST door, approvals from panel
//! sessions, delivery counted at a real SMTP server (a small one below, speaking the
//! protocol over TCP), and a restart in the middle of a delivery.

use super::access::{make_app, make_key, make_role, make_user, pairs, post_fn};
use super::api::{call, error_code};
use super::*;
use serde_json::{json, Value};
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// An SMTP server on a free loopback port that keeps every message it accepts. While
/// `stall` is set it accepts connections and never answers (a hung mail server).
pub(crate) struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<String>>>,
    pub(crate) stall: Arc<AtomicBool>,
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stall = Arc::new(AtomicBool::new(false));
        let (m, st) = (mails.clone(), stall.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (m, st) = (m.clone(), st.clone());
                tokio::spawn(async move {
                    if st.load(Ordering::SeqCst) {
                        // Hold the connection open without a greeting.
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        drop(sock);
                        return;
                    }
                    let _ = session(sock, m).await;
                });
            }
        });
        Self { port, mails, stall }
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Messages accepted for `to`.
    pub(crate) fn to(&self, to: &str) -> Vec<String> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
            })
            .cloned()
            .collect()
    }

    pub(crate) async fn wait_for(&self, to: &str, n: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.to(to);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn session(
    sock: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 sink ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
            "DATA" => {
                w.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                mails.lock().unwrap().push(data);
                w.write_all(b"250 accepted\r\n").await?;
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => w.write_all(b"250 OK\r\n").await?,
        }
    }
    Ok(())
}

const CUSTOMER: &str = "customer@example.net";

fn message(app_id: i64, subject: &str) -> Value {
    json!({ "app_id": app_id, "channel": "email", "recipients": [CUSTOMER], "subject": subject, "body": "Your invoice is ready." })
}

async fn approve(s: &Server, cookie: &str, id: &str, hash: &str) -> (u16, String) {
    let r = post_fn(
        s,
        Some(cookie),
        "/fn/approvals/approve",
        &pairs(&[("id", id), ("payload_hash", hash)]),
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(s: &Server, key: &str, id: &str) -> Value {
    let (st, _, v) = call(
        s,
        "GET",
        &format!("/api/v1/messages/{id}"),
        Some(key),
        None,
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Waits until a message reaches `status` (the worker runs every 2 s or when woken).
async fn wait_status(s: &Server, key: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = get(s, key, id).await;
        if v["status"] == status || Instant::now() > deadline {
            assert_eq!(v["status"], status, "{v}\n{}", s.log());
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_alone_sends_nothing_and_parallel_approvals_deliver_once_sqlite() {
    a_key_alone_sends_nothing_and_parallel_approvals_deliver_once(&[(
        "KEYWARD_MAX_BODY_BYTES",
        "65536",
    )])
    .await;
}

#[tokio::test]
async fn a_key_alone_sends_nothing_and_parallel_approvals_deliver_once_postgres() {
    if let Some(pg) = PgDb::create().await {
        a_key_alone_sends_nothing_and_parallel_approvals_deliver_once(&[
            ("KEYWARD_DATABASE_URL", &pg.url),
            ("KEYWARD_MAX_BODY_BYTES", "65536"),
        ])
        .await;
        pg.drop().await;
    }
}

async fn a_key_alone_sends_nothing_and_parallel_approvals_deliver_once(db: &[(&str, &str)]) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let mut env = vec![("KEYWARD_SMTP_URL", url.as_str())];
    env.extend_from_slice(db);
    let s = Server::start(&env).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    // The author may approve messages too (just never their own).
    let both = make_role(
        &s,
        &owner,
        "Writes and approves",
        &[
            "message.create",
            "message.approve",
            "api.key.view",
            "api.key.create",
        ],
    )
    .await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", both).await;
    let dev_key = make_key(&s, &dev, app_id, both).await;
    let (_, b) = make_user(&s, &owner, "b@example.com", 4).await;
    let (_, c) = make_user(&s, &owner, "c@example.com", 4).await;

    // The REST door: 202 pending_approval.
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&dev_key),
        Some(message(app_id, "Invoice")),
        &[],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["status"], "pending_approval");
    assert!(h.get("x-request-id").is_some());
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_"));
    let m = get(&s, &dev_key, &id).await;
    assert_eq!(m["subject"], "Invoice");
    assert_eq!(
        m["created_by_key"].as_str().map(|k| k.starts_with("key_")),
        Some(true)
    );
    let hash = m["payload_hash"].as_str().unwrap().to_owned();
    // Everyone else who may approve is emailed (once each); the author, who holds
    // message.approve too, is not.
    let waits = |to: &str| {
        sink.to(to)
            .iter()
            .filter(|m| m.contains("waits for your approval"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ["owner@example.com", "b@example.com", "c@example.com"]
        .iter()
        .any(|to| waits(to) == 0)
    {
        assert!(Instant::now() < deadline, "approvers were not emailed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for to in ["owner@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(waits(to), 1, "{to}");
    }
    assert_eq!(
        waits("dev@example.com"),
        0,
        "the author is not asked to approve"
    );
    // The author's approvals page: their message is not in their queue, and the page
    // says it waits for someone else.
    let r = post_fn(&s, Some(&dev), "/fn/approvals/view", &[]).await;
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["messages"], json!([]), "{view}");
    assert_eq!(view["own_waiting"], 1, "{view}");
    let r = post_fn(&s, Some(&b), "/fn/approvals/view", &[]).await;
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["messages"][0]["id"], id.as_str(), "{view}");
    assert_eq!(view["own_waiting"], 0, "{view}");

    // Contract errors.
    let mut bad = message(app_id, "");
    bad["recipients"] = json!(["not an address"]);
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&dev_key),
        Some(bad),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed"),
        "{v}"
    );
    assert!(v["error"]["details"]["fields"].is_object(), "{v}");
    let mut huge = message(app_id, "Huge");
    huge["body"] = json!("x".repeat(70 * 1024));
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&dev_key),
        Some(huge),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (413, "payload_too_large"),
        "{v}"
    );
    let approver_key = make_key(&s, &owner, app_id, 4).await;
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&approver_key),
        Some(message(app_id, "x")),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions")
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("message.create"));
    let (_, other_dev) = make_user(&s, &owner, "other@example.com", 3).await;
    let other_key = make_key(&s, &other_dev, app_id, 3).await;
    let (st, _, _) = call(
        &s,
        "GET",
        &format!("/api/v1/messages/{id}"),
        Some(&other_key),
        None,
        &[],
    )
    .await;
    assert_eq!(st, 404, "another developer does not see it");
    // No REST route approves: a stolen key cannot finish the job.
    let (st, h, v) = call(
        &s,
        "POST",
        &format!("/api/v1/messages/{id}/approve"),
        Some(&dev_key),
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (404, "not_found"));

    // The author, in the panel and from a second session, is refused.
    let (st, body) = approve(&s, &dev, &id, &hash).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("You wrote this message"), "{body}");
    let r = s.login_form("dev@example.com", PASSWORD, &[]).await;
    let dev2 = session_cookie(&r).unwrap();
    assert_eq!(approve(&s, &dev2, &id, &hash).await.0, 400);
    assert_eq!(get(&s, &dev_key, &id).await["status"], "pending_approval");

    // Two approvers at the same moment: one approval, one refusal, one mail.
    let (rb, rc) = tokio::join!(approve(&s, &b, &id, &hash), approve(&s, &c, &id, &hash));
    let mut codes = [rb.0, rc.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{rb:?} {rc:?}");
    wait_status(&s, &dev_key, &id, "sent").await;
    let got = sink.wait_for(CUSTOMER, 1, 10).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains(&format!("Message-ID: <{id}@127.0.0.1>")),
        "{}",
        got[0]
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.to(CUSTOMER).len(), 1, "delivered exactly once");
    // (The author's other mail is about their account: a new browser, a new key.)
    let decisions: Vec<String> = sink
        .to("dev@example.com")
        .into_iter()
        .filter(|m| m.contains("Subject: Your message was"))
        .collect();
    assert_eq!(decisions.len(), 1, "the author is told");

    // Two approvals needed: one does not send.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/settings/messages/save",
        &pairs(&[
            ("approval_required", "required"),
            ("approvals_needed", "2"),
            ("pending_expiry_hours", "72"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&dev_key),
        Some(message(app_id, "Second")),
        &[],
    )
    .await;
    let id2 = v["id"].as_str().unwrap().to_owned();
    let hash2 = get(&s, &dev_key, &id2).await["payload_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(approve(&s, &b, &id2, &hash2).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m2 = get(&s, &dev_key, &id2).await;
    assert_eq!(
        (m2["status"].as_str(), m2["approvals"].as_i64()),
        (Some("pending_approval"), Some(1))
    );
    assert_eq!(
        sink.to(CUSTOMER).len(),
        1,
        "one approval of two sends nothing"
    );
    assert_eq!(approve(&s, &c, &id2, &hash2).await.0, 200);
    wait_status(&s, &dev_key, &id2, "sent").await;
    assert_eq!(sink.wait_for(CUSTOMER, 2, 10).await.len(), 2);
}

#[tokio::test]
async fn an_approver_who_lost_the_permission_is_refused() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    let role = make_role(&s, &owner, "Reviewers", &["message.approve"]).await;
    let (_, rev) = make_user(&s, &owner, "rev@example.com", role).await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let r = post_fn(
        &s,
        Some(&dev),
        "/fn/messages/create",
        &pairs(&[
            ("app_id", &app_id.to_string()),
            ("channel", "email"),
            ("recipients", CUSTOMER),
            ("subject", "Invoice"),
            ("body", "Hello"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    let (id, hash) = (
        m["id"].as_str().unwrap(),
        m["payload_hash"].as_str().unwrap(),
    );
    // The role loses message.approve after the message was written.
    sqlx::query("delete from role_permissions where role_id = $1")
        .bind(role)
        .execute(&s.db().await)
        .await
        .unwrap();
    assert_eq!(approve(&s, &rev, id, hash).await.0, 403);
}

/// A key acts for its app: it writes and reads that app's messages only, even when its
/// owner (here the Owner, with every permission) may write for every app in the panel.
/// Another app's allow-list, numbers and webhooks are not the key's to use.
#[tokio::test]
async fn a_key_writes_and_reads_only_its_own_apps_messages() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let billing = make_app(&s, &owner, "Billing", "").await;
    // Locked to an address nobody calls from: only the panel may write for it.
    let locked = make_app(&s, &owner, "Locked", "192.0.2.1/32").await;
    let key = make_key(&s, &owner, billing, 1).await;

    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(message(locked, "Elsewhere")),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions"),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("app {billing}")),
        "{v}"
    );

    // The owner writes one for the locked app in the panel; the key cannot read it.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/messages/create",
        &pairs(&[
            ("app_id", &locked.to_string()),
            ("channel", "email"),
            ("recipients", CUSTOMER),
            ("subject", "Panel only"),
            ("body", "Hello"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let other: Value = r.json().await.unwrap();
    let (st, h, v) = call(
        &s,
        "GET",
        &format!("/api/v1/messages/{}", other["id"].as_str().unwrap()),
        Some(&key),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (404, "not_found"),
        "{v}"
    );

    // Its own app's: written and read.
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(message(billing, "Invoice")),
        &[],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let m = get(&s, &key, v["id"].as_str().unwrap()).await;
    assert_eq!(m["app_id"], billing);
}

/// The messages list's `before` cursor names only a message the viewer may see: someone
/// else's is an unknown cursor (the newest page), so the page tells nothing of it.
#[tokio::test]
async fn the_messages_cursor_tells_nothing_of_others_messages() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    let (_, ann) = make_user(&s, &owner, "ann@example.com", 3).await;
    let (_, bob) = make_user(&s, &owner, "bob@example.com", 3).await;
    let write = |cookie: String, subject: &'static str| {
        let s = &s;
        async move {
            let r = post_fn(
                s,
                Some(&cookie),
                "/fn/messages/create",
                &pairs(&[
                    ("app_id", &app_id.to_string()),
                    ("channel", "email"),
                    ("recipients", CUSTOMER),
                    ("subject", subject),
                    ("body", "Hello"),
                ]),
            )
            .await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    write(ann.clone(), "first").await;
    let bobs = write(bob.clone(), "bob's").await;
    write(ann.clone(), "second").await;
    let list = |before: String| {
        let (s, ann) = (&s, ann.clone());
        async move {
            let r = post_fn(
                s,
                Some(&ann),
                "/fn/messages/list",
                &pairs(&[("before", &before)]),
            )
            .await;
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["subject"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let unknown = list("msg_aaaaaaaaaaaaaaaa".to_owned()).await;
    assert_eq!(unknown, ["second", "first"]);
    assert_eq!(list(bobs).await, unknown);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_delivery_delivers_once_sqlite() {
    a_restart_in_the_middle_of_a_delivery_delivers_once(&[]).await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_delivery_delivers_once_postgres() {
    if let Some(pg) = PgDb::create().await {
        a_restart_in_the_middle_of_a_delivery_delivers_once(&[("KEYWARD_DATABASE_URL", &pg.url)])
            .await;
        pg.drop().await;
    }
}

async fn a_restart_in_the_middle_of_a_delivery_delivers_once(db: &[(&str, &str)]) {
    let sink = SmtpSink::start().await;
    sink.stall.store(true, Ordering::SeqCst);
    let url = sink.url();
    let mut env = vec![
        ("KEYWARD_SMTP_URL", url.as_str()),
        ("KEYWARD_DELIVERY_TIMEOUT_SECONDS", "2"),
    ];
    env.extend_from_slice(db);
    let mut s = Server::start(&env).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/settings/messages/save",
        &pairs(&[
            ("approval_required", "not_required"),
            ("approvals_needed", "1"),
            ("pending_expiry_hours", "72"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let key = make_key(&s, &owner, app_id, 1).await;
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(message(app_id, "Once")),
        &[],
    )
    .await;
    assert_eq!((st, v["status"].as_str()), (202, Some("queued")), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    // The worker claims it and hangs on the mail server: kill the process right there.
    let pool = s.db().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status,): (String,) =
            sqlx::query_as("select status from messages where message_id = $1")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap();
        if status == "sending" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never claimed: {status}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill_and_restart().await;
    sink.stall.store(false, Ordering::SeqCst);

    // After the dead worker's lease (2 × 2 s + 10 s) the new process delivers it, once.
    let got = sink.wait_for(CUSTOMER, 1, 30).await;
    assert_eq!(got.len(), 1, "{}", s.log());
    let v = wait_status(&s, &key, &id, "sent").await;
    assert_eq!(v["attempts"], 2, "{v}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.to(CUSTOMER).len(), 1);
}
