//! Database tests: migrations and every query, each on a fresh database, on SQLite always
//! and on PostgreSQL when KEYWARD_TEST_POSTGRES_URL is set (scripts/test.sh sets it; CI
//! requires it).
// Tests: an unwrap that fails is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "ssr")]

use app::core::{
    access::{self, Principal},
    audit::Origin,
    identity::roles,
    infra::password::Hasher,
};
use app::core::{
    audit::{self, Actor, Event, Outcome},
    identity::users::{self, NewUser, UserError, UserStatus},
    infra::clock::Clock,
    infra::config::{Config, Secret},
    infra::db::Db,
    infra::session_store::{id_hash, DbSessionStore, USER_ID_KEY},
    state::{Core, Ctx},
};
use app::core::{identity::email_code, identity::throttle, identity::totp, infra::mail::Mailer};
use app::settings::SecuritySettings;
use app::state::AppState;
use app::{
    error::AppError,
    roles::{BuiltinRole, Permission},
};
use std::collections::{BTreeMap, BTreeSet};
use std::{future::Future, sync::Arc};
use tower_sessions::{
    session::{Id, Record},
    ExpiredDeletion as _, Session, SessionStore as _,
};

/// A fresh migrated database; dropped (PostgreSQL) or deleted (SQLite) afterwards.
struct TestDb {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl TestDb {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    async fn postgres() -> Option<Self> {
        let admin = std::env::var("KEYWARD_TEST_POSTGRES_URL").ok()?;
        let name = format!("kw_test_{:016x}", rand_u64());
        let admin_db = Db::connect(&admin)
            .await
            .expect("KEYWARD_TEST_POSTGRES_URL is set but PostgreSQL is not reachable");
        sqlx::query(&format!("create database {name}"))
            .execute(&admin_db.pool)
            .await
            .unwrap();
        admin_db.pool.close().await;
        let base = admin.split('?').next().unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        Some(Self {
            db,
            _dir: None,
            pg_drop: Some((admin, name)),
        })
    }

    async fn finish(self) {
        self.db.pool.close().await;
        if let Some((admin, name)) = self.pg_drop {
            let admin_db = Db::connect(&admin).await.unwrap();
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&admin_db.pool)
                .await
                .unwrap();
        }
    }
}

mod access_rules;
mod approvals;
mod audit_log;
mod channels;
mod foundation;
mod key_lifecycle;
mod sign_in;
mod sms;

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// Runs `f` on a fresh SQLite database, then on a fresh PostgreSQL one when configured.
async fn on_both<F, Fut>(f: F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let t = TestDb::sqlite().await;
    f(t.db.clone()).await;
    t.finish().await;
    match TestDb::postgres().await {
        Some(t) => {
            f(t.db.clone()).await;
            t.finish().await;
        }
        None => eprintln!("KEYWARD_TEST_POSTGRES_URL not set: PostgreSQL half skipped"),
    }
}

async fn add_user(db: &Db, email: &str, status: UserStatus) -> i64 {
    let mut conn = db.pool.acquire().await.unwrap();
    users::create(
        &mut conn,
        1_000,
        &NewUser {
            email,
            display_name: "Test",
            password_hash: "$argon2id$x",
            role_id: 1,
            status,
        },
    )
    .await
    .unwrap()
}

fn record(uid: Option<i64>, expires_in: i64) -> Record {
    let mut data = std::collections::HashMap::new();
    if let Some(uid) = uid {
        data.insert(USER_ID_KEY.to_owned(), serde_json::json!(uid));
    }
    Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::seconds(expires_in),
    }
}

fn event(action: &str) -> Event<'_> {
    Event {
        actor: Actor::User(7),
        action,
        target: Some("ada@example.com".into()),
        ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
        outcome: Outcome::Success,
        details: serde_json::json!({"k": 1}),
    }
}

fn state(db: Db, clock: Clock) -> AppState {
    let options = leptos::config::LeptosOptions::builder()
        .output_name("keyward")
        .build();
    let config = Config::from_sources(None, &[]).unwrap();
    AppState::new(
        options,
        Core::new(config, db, clock, Secret::new([7; 32])),
        Default::default(),
    )
}

async fn futures_join_all(
    db: &Db,
    s: &SecuritySettings,
    now: i64,
    account: &str,
    ip: std::net::IpAddr,
    n: usize,
) -> Vec<Result<(), AppError>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (db, s, account) = (db.clone(), s.clone(), account.to_owned());
        set.spawn(async move { throttle::attempt(&db, &s, now, &account, ip, None).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

async fn principal(db: &Db, user_id: i64) -> Principal {
    let u = users::find_by_id(db, user_id).await.unwrap().unwrap();
    let perms = access::role_permissions(db, u.role_id).await.unwrap();
    Principal::user(u.id, u.role_id, perms)
}

async fn user_with_role(db: &Db, email: &str, role_id: i64) -> i64 {
    let mut conn = db.pool.acquire().await.unwrap();
    users::create(
        &mut conn,
        1_000,
        &NewUser {
            email,
            display_name: "Test",
            password_hash: "$argon2id$x",
            role_id,
            status: UserStatus::Active,
        },
    )
    .await
    .unwrap()
}

fn perms(list: &[Permission]) -> BTreeSet<Permission> {
    list.iter().copied().collect()
}

async fn actions(db: &Db) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("select action from audit_events order by seq")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

async fn principal_role_perms(db: &Db, role_id: i64) -> BTreeSet<Permission> {
    access::role_permissions(db, role_id).await.unwrap()
}

/// The code in the newest message of a development outbox (text and HTML parts both
/// carry it).
fn read_code(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mail = std::fs::read_to_string(files.last().unwrap()).unwrap();
    assert!(mail.contains("Subject: Your Keyward sign-in code"));
    assert!(mail.contains("Content-Type: text/html"));
    let at = mail.find("sign-in code is ").unwrap() + "sign-in code is ".len();
    mail[at..at + 6].to_owned()
}

/// A state whose mail goes to a temporary outbox, with an app "Billing"; returns the
/// state, the outbox folder and the app id.
async fn message_state(db: &Db, clock: Clock) -> (AppState, tempfile::TempDir, i64) {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Arc::new(Mailer::new(None, "keyward@localhost", dir.path().to_owned()).unwrap());
    let options = leptos::config::LeptosOptions::builder()
        .output_name("keyward")
        .build();
    let config = Config::from_sources(None, &[]).unwrap();
    let st = AppState::new(
        options,
        Core::build(config, db.clone(), clock, Secret::new([7; 32]), |s| {
            s.mailer = mailer;
        }),
        Default::default(),
    );
    let owner = user_with_role(db, "owner@example.com", BuiltinRole::Owner.id()).await;
    let p = principal(db, owner).await;
    let o = Origin::default();
    let app_id = app::core::keys::apps::create_app(
        &Ctx::new(&st, &o),
        &p.require(Permission::AppManage).unwrap(),
        &app_input("Billing"),
    )
    .await
    .unwrap();
    (st, dir, app_id)
}

fn draft(app_id: i64, subject: &str) -> app::core::messages::Draft<'_> {
    app::core::messages::Draft {
        app_id,
        channel: "email",
        recipients: "customer@example.net",
        webhook_url: "",
        sender: "",
        subject,
        body: "Your invoice is ready.",
    }
}

async fn status_of(db: &Db, message_id: &str) -> (String, i64) {
    sqlx::query_as("select status, attempts from messages where message_id = $1")
        .bind(message_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Services on `db` whose clock stands at `now` and whose mail goes to a throwaway outbox.
fn core_at(db: &Db, now: i64) -> Core {
    let config = Config::from_sources(None, &[]).unwrap();
    Core::build(
        config,
        db.clone(),
        Clock::fixed(now),
        Secret::new([7; 32]),
        |s| {
            s.mailer = Arc::new(test_mailer());
        },
    )
}

fn app_input(name: &str) -> app::core::keys::apps::AppInput<'_> {
    app::core::keys::apps::AppInput {
        name,
        networks: Vec::new(),
    }
}

/// A mailer writing to a throwaway outbox (notifications are not what these tests check).
fn test_mailer() -> Mailer {
    let dir = std::env::temp_dir().join(format!("keyward-db-test-outbox-{}", std::process::id()));
    Mailer::new(None, "keyward@example.com", dir).unwrap()
}

fn late(token: &str) -> app::core::identity::invitations::Acceptance<'_> {
    app::core::identity::invitations::Acceptance {
        token,
        display_name: "Late",
        password: "a long enough password",
    }
}
