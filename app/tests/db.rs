//! Database tests: migrations and every query, each on a fresh database, on SQLite always
//! and on PostgreSQL when KEYWARD_TEST_POSTGRES_URL is set (scripts/test.sh sets it; CI
//! requires it).
#![cfg(feature = "ssr")]

use app::core::{
    access::{self, Principal},
    audit::Origin,
    password::Hasher,
    roles,
};
use app::core::{
    audit::{self, Actor, Event, Outcome},
    clock::Clock,
    config::{Config, Secret},
    db::Db,
    session_store::{id_hash, DbSessionStore, USER_ID_KEY},
    state::Core,
    users::{self, NewUser, UserError, UserStatus},
};
use app::core::{email_code, mail::Mailer, throttle, totp};
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

#[tokio::test]
async fn migrations_apply_and_are_idempotent() {
    on_both(|db| async move {
        db.migrate().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("select count(*) from audit_chain")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(db.ping().await);
    })
    .await;
}

#[tokio::test]
async fn users_queries() {
    on_both(|db| async move {
        assert_eq!(users::count(&db).await.unwrap(), 0);
        let id = add_user(&db, "ada@example.com", UserStatus::Active).await;
        assert_eq!(users::count(&db).await.unwrap(), 1);
        let u = users::find_by_email(&db, "ada@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.id, id);
        assert_eq!(u.status, UserStatus::Active);
        assert_eq!((u.role_id, u.role_name.as_str()), (1, "Owner"));
        assert_eq!(u.last_login_at, None);
        assert!(users::find_by_email(&db, "nobody@example.com")
            .await
            .unwrap()
            .is_none());
        assert!(users::find_by_id(&db, id + 1000).await.unwrap().is_none());

        // The unique index decides: a second user with the same email is refused.
        let mut conn = db.pool.acquire().await.unwrap();
        let dup = users::create(
            &mut conn,
            1,
            &NewUser {
                email: "ada@example.com",
                display_name: "x",
                password_hash: "x",
                role_id: 1,
                status: UserStatus::Active,
            },
        )
        .await;
        assert!(matches!(dup, Err(UserError::EmailTaken)), "{dup:?}");
        drop(conn);

        users::touch_last_login(&db, id, 5_000).await.unwrap();
        assert!(users::set_status(&db, id, UserStatus::Disabled, 6_000)
            .await
            .unwrap());
        let u = users::find_by_id(&db, id).await.unwrap().unwrap();
        assert_eq!(u.last_login_at, Some(5_000));
        assert_eq!(u.status, UserStatus::Disabled);
        assert!(!users::set_status(&db, id + 1000, UserStatus::Active, 1)
            .await
            .unwrap());
        // Debug never prints the hash.
        assert!(!format!("{u:?}").contains("argon2"));
    })
    .await;
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

#[tokio::test]
async fn session_store_queries() {
    on_both(|db| async move {
        let store = DbSessionStore::new(db.clone());
        let uid = add_user(&db, "s@example.com", UserStatus::Active).await;
        let mut r = record(Some(uid), 600);
        store.create(&mut r).await.unwrap();

        // Only the hash of the ID is stored.
        let (stored, user_id): (String, Option<i64>) =
            sqlx::query_as("select id_hash, user_id from sessions")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(stored, id_hash(&r.id));
        assert_ne!(stored, r.id.to_string());
        assert_eq!(user_id, Some(uid));

        let loaded = store.load(&r.id).await.unwrap().unwrap();
        assert_eq!(loaded.data, r.data);
        assert_eq!(
            loaded.expiry_date.unix_timestamp(),
            r.expiry_date.unix_timestamp()
        );

        r.data.insert("k".into(), serde_json::json!("v"));
        store.save(&r).await.unwrap();
        assert_eq!(
            store.load(&r.id).await.unwrap().unwrap().data.get("k"),
            Some(&serde_json::json!("v"))
        );

        // An expired session is not loaded, and the sweep deletes it.
        let mut old = record(Some(uid), -10);
        store.create(&mut old).await.unwrap();
        assert!(store.load(&old.id).await.unwrap().is_none());
        store.delete_expired().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("select count(*) from sessions")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);

        // Ending all of a user's sessions; a signed-in session deleted elsewhere is not
        // resurrected by a late save.
        let mut other = record(Some(uid), 600);
        store.create(&mut other).await.unwrap();
        assert_eq!(store.delete_for_user(uid).await.unwrap(), 2);
        store.save(&r).await.unwrap();
        assert!(store.load(&r.id).await.unwrap().is_none());

        let mut anon = record(None, 600);
        store.create(&mut anon).await.unwrap();
        store.delete(&anon.id).await.unwrap();
        assert!(store.load(&anon.id).await.unwrap().is_none());
    })
    .await;
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

#[tokio::test]
async fn audit_chain_links_and_detects_tampering() {
    on_both(|db| async move {
        for i in 0..5 {
            audit::record(&db, 100 + i, &event("auth.sign_in"))
                .await
                .unwrap();
        }
        // Concurrent writers take turns: no fork, no duplicate sequence number.
        let mut tasks = Vec::new();
        for i in 0..12 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                audit::record(&db, 200 + i, &event("auth.sign_out")).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (n, max): (i64, i64) = sqlx::query_as("select count(*), max(seq) from audit_events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!((n, max), (17, 17));
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);

        sqlx::query("update audit_events set outcome = 'failure' where seq = 9")
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(audit::verify_chain(&db).await.unwrap(), Some(9));
        sqlx::query("update audit_events set outcome = 'success' where seq = 9")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("delete from audit_events where seq = 4")
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(audit::verify_chain(&db).await.unwrap(), Some(5));
    })
    .await;
}

#[tokio::test]
async fn audit_rolls_back_with_its_transaction() {
    on_both(|db| async move {
        let mut tx = db.pool.begin().await.unwrap();
        audit::record_in(&mut tx, 1, &event("x")).await.unwrap();
        tx.rollback().await.unwrap();
        audit::record(&db, 2, &event("y")).await.unwrap();
        let rows: Vec<(i64, String)> = sqlx::query_as("select seq, action from audit_events")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, vec![(1, "y".to_owned())]);
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);
    })
    .await;
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

#[tokio::test]
async fn current_user_enforces_absolute_timeout_and_status() {
    on_both(|db| async move {
        let clock = Clock::fixed(1_800_000_000);
        let st = state(db.clone(), clock.clone());
        let uid = add_user(&db, "t@example.com", UserStatus::Active).await;
        let absolute = st.config.session_absolute.as_secs() as i64;

        let session = Session::new(None, Arc::new(st.sessions.clone()), None);
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_none());
        session.insert(USER_ID_KEY, uid).await.unwrap();
        session
            .insert(app::auth::ssr::AUTH_AT_KEY, clock.now())
            .await
            .unwrap();
        let me = app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .unwrap()
            .me;
        assert_eq!(me.id, uid);
        assert_eq!(me.session_ends_at, clock.now() + absolute);

        // Active every 20 minutes (inside the idle timeout) up to one second before the
        // absolute limit: still in. At the limit: out, session emptied.
        let start = clock.now();
        while clock.now() + 1200 < start + absolute - 1 {
            clock.advance(1200);
            assert!(app::auth::ssr::current_user(&st, &session)
                .await
                .unwrap()
                .is_some());
        }
        clock.advance(start + absolute - 1 - clock.now());
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_some());
        clock.advance(1);
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_none());
        assert!(session.is_empty().await);

        // A disabled user's session ends at the next request.
        let session = Session::new(None, Arc::new(st.sessions.clone()), None);
        session.insert(USER_ID_KEY, uid).await.unwrap();
        session
            .insert(app::auth::ssr::AUTH_AT_KEY, clock.now())
            .await
            .unwrap();
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_some());
        // Idle: the configured minutes without a request end it (one second less does not).
        let idle = st.config.session_idle.as_secs() as i64;
        clock.advance(idle);
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_some());
        clock.advance(idle + 1);
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_none());

        let session = Session::new(None, Arc::new(st.sessions.clone()), None);
        session.insert(USER_ID_KEY, uid).await.unwrap();
        session
            .insert(app::auth::ssr::AUTH_AT_KEY, clock.now())
            .await
            .unwrap();
        users::set_status(&db, uid, UserStatus::Disabled, clock.now())
            .await
            .unwrap();
        assert!(app::auth::ssr::current_user(&st, &session)
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn throttling_grows_and_ends_on_its_own() {
    on_both(|db| async move {
        let s = SecuritySettings {
            throttle_account_attempts: 2,
            throttle_ip_attempts: 100,
            throttle_max_delay_secs: 8,
            ..SecuritySettings::default()
        };
        let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
        let other_ip: std::net::IpAddr = "203.0.113.1".parse().unwrap();
        let mut now = 1_000_000;
        // Two free attempts, the third sets a 1 s delay.
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 1
            })
        );
        // The same account from another address is not slowed (the real user gets in).
        throttle::attempt(&db, &s, now, "ada@example.com", other_ip, None)
            .await
            .unwrap();
        // Delays double: 2 s, then 4 s, then capped at 8 s.
        now += 1;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 2
            })
        );
        now += 2;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        now += 4;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        now += 8;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 8
            })
        );
        // The lock ends on its own; a success forgets the account's failures.
        now += 8;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::succeeded(&db, &s, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        // Parallel attempts are counted one by one: of ten at once, at most the free
        // ones and the one that sets the delay get through.
        let fresh = "grace@example.com";
        let results = futures_join_all(&db, &s, now, fresh, ip, 10).await;
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 3, "{results:?}");
        // No email or address is stored in the clear.
        let rows: Vec<(String,)> = sqlx::query_as("select scope from sign_in_throttle")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert!(rows.iter().all(|(k,)| k.len() == 64 && !k.contains('@')));
    })
    .await;
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

// ---- roles, permissions and the rules on users ----

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

#[tokio::test]
async fn custom_roles_and_the_matrix() {
    on_both(|db| async move {
        let o = Origin::default();
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let g = p.require(Permission::RoleManage).unwrap();
        let id = roles::create(
            &db,
            10,
            &g,
            &o,
            " Auditor ",
            &perms(&[Permission::AuditView]),
        )
        .await
        .unwrap();
        assert!(id > 5, "custom ids follow the five built-in ones");
        // Names are unique case-insensitively.
        let dup = roles::create(&db, 10, &g, &o, "auditor", &perms(&[])).await;
        assert!(
            matches!(dup, Err(AppError::Validation { ref field, .. }) if field == "name"),
            "{dup:?}"
        );
        let list = roles::list(&db).await.unwrap();
        assert_eq!(list.len(), 6);
        assert_eq!(list[0].name, "Owner");
        let auditor = list.iter().find(|r| r.id == id).unwrap();
        assert_eq!((auditor.name.as_str(), auditor.builtin), ("Auditor", false));
        assert_eq!(auditor.permissions, vec![Permission::AuditView]);

        // A user holding the role gets exactly its permissions, and a change to the role
        // is seen at the very next lookup (no cache).
        let viewer = user_with_role(&db, "aud@example.com", id).await;
        assert_eq!(
            principal(&db, viewer).await.permissions(),
            &perms(&[Permission::AuditView])
        );
        let mut wanted = BTreeMap::new();
        wanted.insert(id, perms(&[Permission::ApiKeyView]));
        assert_eq!(
            roles::save_matrix(&db, 11, &g, &o, &wanted).await.unwrap(),
            1
        );
        assert_eq!(
            principal(&db, viewer).await.permissions(),
            &perms(&[Permission::ApiKeyView])
        );
        // Saving the same again changes nothing.
        assert_eq!(
            roles::save_matrix(&db, 12, &g, &o, &wanted).await.unwrap(),
            0
        );

        // Built-in roles are read-only.
        let mut builtin = BTreeMap::new();
        builtin.insert(BuiltinRole::Viewer.id(), perms(&[]));
        assert!(matches!(
            roles::save_matrix(&db, 12, &g, &o, &builtin).await,
            Err(AppError::Validation { .. })
        ));
        assert!(matches!(
            roles::rename(&db, 12, &g, &o, BuiltinRole::Admin.id(), "Boss").await,
            Err(AppError::Validation { .. })
        ));
        assert!(matches!(
            roles::delete(&db, 12, &g, &o, BuiltinRole::Viewer.id()).await,
            Err(AppError::Validation { .. })
        ));
        assert!(matches!(
            roles::delete(&db, 12, &g, &o, 9_999).await,
            Err(AppError::NotFound)
        ));

        roles::rename(&db, 13, &g, &o, id, "Auditors")
            .await
            .unwrap();
        // Deleting is refused while the role is assigned, with the count.
        match roles::delete(&db, 14, &g, &o, id).await {
            Err(AppError::Conflict(m)) => assert!(m.contains("assigned to 1 user"), "{m}"),
            other => panic!("{other:?}"),
        }
        users::set_status(&db, viewer, UserStatus::Disabled, 15)
            .await
            .unwrap();
        sqlx::query("update users set role_id = 5 where id = $1")
            .bind(viewer)
            .execute(&db.pool)
            .await
            .unwrap();
        roles::delete(&db, 16, &g, &o, id).await.unwrap();
        assert_eq!(roles::list(&db).await.unwrap().len(), 5);
        assert_eq!(
            actions(&db).await,
            [
                "role.created",
                "role.permissions_changed",
                "role.renamed",
                "role.deleted"
            ]
        );
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    on_both(|db| async move {
        let o = Origin::default();
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let po = principal(&db, owner).await;
        let go = po.require(Permission::RoleManage).unwrap();
        // A "Manager" may manage roles and users, and view keys, but not see all keys.
        let manager_role = roles::create(
            &db,
            1,
            &go,
            &o,
            "Manager",
            &perms(&[
                Permission::RoleManage,
                Permission::UserManage,
                Permission::ApiKeyView,
            ]),
        )
        .await
        .unwrap();
        let manager = user_with_role(&db, "m@example.com", manager_role).await;
        let pm = principal(&db, manager).await;
        let gm = pm.require(Permission::RoleManage).unwrap();

        // Creating a role with a permission the manager lacks: refused.
        let r = roles::create(&db, 2, &gm, &o, "Spy", &perms(&[Permission::ApiKeyViewAll])).await;
        assert_eq!(r, Err(AppError::Forbidden));
        // Adding one through the matrix: refused, and nothing is saved.
        let mine = roles::create(&db, 2, &gm, &o, "Helper", &perms(&[Permission::ApiKeyView]))
            .await
            .unwrap();
        let mut wanted = BTreeMap::new();
        wanted.insert(
            mine,
            perms(&[Permission::ApiKeyView, Permission::SettingsManage]),
        );
        assert_eq!(
            roles::save_matrix(&db, 3, &gm, &o, &wanted).await,
            Err(AppError::Forbidden)
        );
        assert_eq!(
            principal_role_perms(&db, mine).await,
            perms(&[Permission::ApiKeyView])
        );
        // Removing is always allowed.
        wanted.insert(mine, perms(&[]));
        assert_eq!(roles::save_matrix(&db, 3, &gm, &o, &wanted).await, Ok(1));

        // Assigning a role above one's own: refused (Admin holds everything).
        let gu = pm.require(Permission::UserManage).unwrap();
        let helper = user_with_role(&db, "helper@example.com", mine).await;
        assert_eq!(
            users::change_role(&db, 4, &gu, &o, helper, BuiltinRole::Admin.id()).await,
            Err(AppError::Forbidden)
        );
        // Nor acting on someone who holds a permission the manager lacks (a Developer
        // holds api.key.create), whatever the new role.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        assert!(matches!(
            users::change_role(&db, 4, &gu, &o, dev, mine).await,
            Err(AppError::Refused(_))
        ));
        // ... also when creating a user.
        let hasher = Hasher::new(1);
        let reg = users::Registration {
            email: "new@example.com",
            display_name: None,
            password: "a long enough password",
            role_id: BuiltinRole::Admin.id(),
        };
        assert_eq!(
            users::create_user(
                &db,
                &Config::from_sources(None, &[]).unwrap(),
                &hasher,
                4,
                &gu,
                &o,
                &reg
            )
            .await,
            Err(AppError::Forbidden)
        );
        // Within one's own permissions, on someone holding no more, it works.
        users::change_role(&db, 4, &gu, &o, helper, manager_role)
            .await
            .unwrap();
        // Nobody changes their own role or status.
        assert!(matches!(
            users::change_role(&db, 5, &gu, &o, manager, mine).await,
            Err(AppError::Validation { .. })
        ));
        assert!(matches!(
            users::set_enabled(
                &db,
                &DbSessionStore::new(db.clone()),
                5,
                &gu,
                &o,
                manager,
                false
            )
            .await,
            Err(AppError::Validation { .. })
        ));
        // A grant for another permission does not open a write.
        assert!(users::change_role(&db, 5, &gm, &o, helper, mine)
            .await
            .is_err());
        assert_eq!(
            users::find_by_id(&db, helper)
                .await
                .unwrap()
                .unwrap()
                .role_id,
            manager_role
        );
    })
    .await;
}

async fn principal_role_perms(db: &Db, role_id: i64) -> BTreeSet<Permission> {
    access::role_permissions(db, role_id).await.unwrap()
}

#[tokio::test]
async fn owners_are_changed_only_by_owners_and_one_always_remains() {
    on_both(|db| async move {
        let o = Origin::default();
        let sessions = DbSessionStore::new(db.clone());
        let a = user_with_role(&db, "a@example.com", BuiltinRole::Owner.id()).await;
        let admin = user_with_role(&db, "admin@example.com", BuiltinRole::Admin.id()).await;
        let pa = principal(&db, a).await;
        let ga = pa.require(Permission::UserManage).unwrap();
        let pad = principal(&db, admin).await;
        let gad = pad.require(Permission::UserManage).unwrap();

        // An Admin cannot make an Owner, nor demote or disable one.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        assert_eq!(
            users::change_role(&db, 1, &gad, &o, dev, BuiltinRole::Owner.id()).await,
            Err(AppError::Forbidden)
        );
        assert_eq!(
            users::change_role(&db, 1, &gad, &o, a, BuiltinRole::Viewer.id()).await,
            Err(AppError::Forbidden)
        );
        assert_eq!(
            users::set_enabled(&db, &sessions, 1, &gad, &o, a, false).await,
            Err(AppError::Forbidden)
        );

        // The Owner makes a second Owner.
        let b = user_with_role(&db, "b@example.com", BuiltinRole::Developer.id()).await;
        users::change_role(&db, 2, &ga, &o, b, BuiltinRole::Owner.id())
            .await
            .unwrap();
        let pb = principal(&db, b).await;
        let gb = pb.require(Permission::UserManage).unwrap();

        // Both demote each other at the same moment: exactly one succeeds.
        let (r1, r2) = tokio::join!(
            users::change_role(&db, 3, &ga, &o, b, BuiltinRole::Viewer.id()),
            users::change_role(&db, 3, &gb, &o, a, BuiltinRole::Viewer.id()),
        );
        assert!(r1.is_ok() != r2.is_ok(), "{r1:?} {r2:?}");
        let (owners,): (i64,) =
            sqlx::query_as("select count(*) from users where role_id = 1 and status = 'active'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(owners, 1);
        let failed = if r1.is_err() { r1 } else { r2 };
        assert!(
            matches!(failed, Err(AppError::Conflict(ref m)) if m.contains("last active Owner")),
            "{failed:?}"
        );

        // The remaining Owner cannot be disabled or demoted by the Admin, nor by an Owner.
        let (last,): (i64,) = sqlx::query_as("select id from users where role_id = 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let pl = principal(&db, last).await;
        let gl = pl.require(Permission::UserManage).unwrap();
        let other = if last == a { b } else { a };
        // (re-promote the other to test disable of the last one from a second Owner)
        users::change_role(&db, 4, &gl, &o, other, BuiltinRole::Owner.id())
            .await
            .unwrap();
        let po2 = principal(&db, other).await;
        let go2 = po2.require(Permission::UserManage).unwrap();
        users::set_enabled(&db, &sessions, 5, &go2, &o, last, false)
            .await
            .unwrap();
        // `other` is now the only active Owner. Even a principal that still believes it
        // is an Owner (here `last`'s, taken before it was disabled) cannot disable or
        // demote it: the database condition decides, not the caller's view.
        assert!(matches!(
            users::set_enabled(&db, &sessions, 6, &gl, &o, other, false).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            users::change_role(&db, 6, &gl, &o, other, BuiltinRole::Viewer.id()).await,
            Err(AppError::Conflict(_))
        ));
        let (active_owners,): (i64,) =
            sqlx::query_as("select count(*) from users where role_id = 1 and status = 'active'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(active_owners, 1);
        // Re-enabling works and is audited.
        users::set_enabled(&db, &sessions, 7, &go2, &o, last, true)
            .await
            .unwrap();
        let acts = actions(&db).await;
        assert!(acts.contains(&"user.role_changed".to_owned()));
        assert!(acts.contains(&"user.disabled".to_owned()));
        assert!(acts.contains(&"user.enabled".to_owned()));
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);
    })
    .await;
}

// ---- second factor ----

#[tokio::test]
async fn totp_enrolment_and_single_use_codes() {
    on_both(|db| async move {
        let key = [3u8; 32];
        let o = Origin::default();
        let uid = add_user(&db, "t@example.com", UserStatus::Active).await;
        let now = 1_800_000_000;
        assert!(!totp::is_enrolled(&db, uid).await.unwrap());
        let p = totp::start(&db, &key, now, uid, "t@example.com").await.unwrap();
        assert!(p.otpauth_url.starts_with("otpauth://totp/Keyward:t%40example.com?"), "{}", p.otpauth_url);
        assert!(p.qr_svg.contains("<svg"));
        // The seed at rest is not the secret in any readable form.
        let (enc,): (String,) = sqlx::query_as("select secret_enc from user_totp where user_id = $1")
            .bind(uid).fetch_one(&db.pool).await.unwrap();
        assert!(!enc.contains(&p.secret_base32));
        let secret = totp_rs::Secret::Encoded(p.secret_base32.clone()).to_bytes().unwrap();

        // A wrong code does not confirm; the right one does and gives 10 recovery codes.
        assert!(totp::confirm(&db, &key, now, uid, &o, "000000").await.is_err() || totp::code_at(&secret, now) == "000000");
        let codes = totp::confirm(&db, &key, now, uid, &o, &totp::code_at(&secret, now)).await.unwrap();
        assert_eq!(codes.len(), 10);
        assert!(totp::is_enrolled(&db, uid).await.unwrap());
        // Starting again while enrolled is refused.
        assert!(matches!(totp::start(&db, &key, now, uid, "t@example.com").await, Err(AppError::Conflict(_))));

        // The code used to confirm cannot sign in (same step); the next step's can, once,
        // even when submitted twice at the same instant.
        let same = totp::code_at(&secret, now);
        assert_eq!(totp::verify(&db, &key, now, uid, &same).await.unwrap(), None);
        let next = totp::code_at(&secret, now + 30);
        let (a, b) = tokio::join!(
            totp::verify(&db, &key, now + 30, uid, &next),
            totp::verify(&db, &key, now + 30, uid, &next),
        );
        let accepted = [a.unwrap(), b.unwrap()].iter().filter(|r| r.is_some()).count();
        assert_eq!(accepted, 1);
        // Two steps away: refused.
        assert_eq!(totp::verify(&db, &key, now + 30, uid, &totp::code_at(&secret, now + 120)).await.unwrap(), None);

        // Recovery codes: each once, case and dashes ignored.
        let rc = codes[0].to_uppercase().replace('-', "");
        assert_eq!(totp::verify(&db, &key, now + 60, uid, &rc).await.unwrap(), Some("recovery_code"));
        assert_eq!(totp::verify(&db, &key, now + 60, uid, &codes[0]).await.unwrap(), None);
        assert_eq!(totp::recovery_codes_left(&db, uid).await.unwrap(), 9);

        // A seed encrypted for one user does not open as another's.
        let other = add_user(&db, "u@example.com", UserStatus::Active).await;
        sqlx::query("insert into user_totp (user_id, secret_enc, confirmed_at, last_step, created_at, updated_at) values ($1, $2, 1, -1, 1, 1)")
            .bind(other).bind(&enc).execute(&db.pool).await.unwrap();
        assert_eq!(totp::verify(&db, &key, now + 90, other, &totp::code_at(&secret, now + 90)).await, Err(AppError::Internal));
    })
    .await;
}

#[tokio::test]
async fn email_codes_are_single_use_bound_and_burnt() {
    on_both(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "keyward@example.com", dir.path().join("outbox")).unwrap();
        let o = Origin {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        let uid = add_user(&db, "e@example.com", UserStatus::Active).await;
        let now = 1_800_000_000;
        email_code::issue(
            &db,
            &mailer,
            now,
            uid,
            "e@example.com",
            &email_code::Attempt {
                id: "attempt-a",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        // Resending at once is throttled.
        assert!(matches!(
            email_code::issue(
                &db,
                &mailer,
                now + 5,
                uid,
                "e@example.com",
                &email_code::Attempt {
                    id: "attempt-a",
                    device: None
                },
                &o
            )
            .await,
            Err(AppError::RateLimited {
                retry_after_secs: 25
            })
        ));
        // Bound to its attempt.
        assert!(!email_code::check(&db, now, uid, "attempt-b", &code)
            .await
            .unwrap());
        // Twice at the same instant: accepted once.
        let (a, b) = tokio::join!(
            email_code::check(&db, now + 1, uid, "attempt-a", &code),
            email_code::check(&db, now + 1, uid, "attempt-a", &code),
        );
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);

        // Expiry after 10 minutes.
        email_code::issue(
            &db,
            &mailer,
            now,
            uid,
            "e@example.com",
            &email_code::Attempt {
                id: "attempt-c",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        assert!(!email_code::check(&db, now + 600, uid, "attempt-c", &code)
            .await
            .unwrap());

        // Five wrong tries burn the code: the right one is refused afterwards.
        email_code::issue(
            &db,
            &mailer,
            now,
            uid,
            "e@example.com",
            &email_code::Attempt {
                id: "attempt-d",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            assert!(!email_code::check(&db, now + 1, uid, "attempt-d", wrong)
                .await
                .unwrap());
        }
        assert!(!email_code::check(&db, now + 2, uid, "attempt-d", &code)
            .await
            .unwrap());
        // A resend replaces the old code.
        email_code::issue(
            &db,
            &mailer,
            now + 40,
            uid,
            "e@example.com",
            &email_code::Attempt {
                id: "attempt-d",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let fresh = read_code(dir.path());
        assert!(email_code::check(&db, now + 41, uid, "attempt-d", &fresh)
            .await
            .unwrap());
    })
    .await;
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

#[tokio::test]
async fn invitation_links_expire_after_72_hours() {
    on_both(|db| async move {
        use app::core::invitations::{self, Invite, LinkState};
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "keyward@example.com", dir.path().join("outbox")).unwrap();
        let config = Config::from_sources(None, &[]).unwrap();
        let o = Origin::default();
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let g = p.require(Permission::UserManage).unwrap();
        let now = 1_800_000_000;
        let inv = Invite { email: "late@example.com", display_name: None, role_id: BuiltinRole::Viewer.id() };
        invitations::invite(&db, &config, &mailer, now, &g, &o, "Olive", &inv).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let mail = std::fs::read_to_string(files.last().unwrap()).unwrap();
        let at = mail.find("/invite/").unwrap() + "/invite/".len();
        let token: String = mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        assert_eq!(token.len(), 43);
        // The token is not stored; its hash is.
        let (n,): (i64,) = sqlx::query_as("select count(*) from invitations where token_hash = $1")
            .bind(&token).fetch_one(&db.pool).await.unwrap();
        assert_eq!(n, 0);
        let last_second = now + invitations::VALID_SECS - 1;
        assert_eq!(
            invitations::lookup(&db, last_second, &token).await.unwrap(),
            LinkState::Valid { email: "late@example.com".into() }
        );
        let expired = now + invitations::VALID_SECS;
        assert_eq!(invitations::lookup(&db, expired, &token).await.unwrap(), LinkState::Expired);
        let hasher = Hasher::new(1);
        let r = invitations::accept(&db, &config, &hasher, expired, &o, &late(&token)).await;
        assert!(matches!(r, Err(AppError::Validation { ref message, .. }) if message.contains("expired")), "{r:?}");
        // Within the time it works, once.
        invitations::accept(&db, &config, &hasher, last_second, &o, &late(&token)).await.unwrap();
        assert_eq!(invitations::lookup(&db, last_second, &token).await.unwrap(), LinkState::Used);
        let u = users::find_by_email(&db, "late@example.com").await.unwrap().unwrap();
        assert_eq!((u.status, u.role_id, u.display_name.as_str()), (UserStatus::Active, BuiltinRole::Viewer.id(), "Late"));
    })
    .await;
}

#[tokio::test]
async fn keys_expire_on_the_second_and_rolls_end_at_the_deadline() {
    on_both(|db| async move {
        use app::core::keys::{self, KeyCache, NewKey, Refusal};
        let o = Origin::default();
        let cache = KeyCache::default();
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let now = 1_800_000_000;
        let app_id = keys::create_app(
            &db,
            &cache,
            now,
            &p.require(Permission::AppManage).unwrap(),
            &o,
            "Billing",
            "",
        )
        .await
        .unwrap();
        let g = p.require(Permission::ApiKeyCreate).unwrap();
        let t = now + 7 * 86_400;
        let (info, secret) = keys::create_key(
            &db,
            &cache,
            &test_mailer(),
            now,
            &g,
            &o,
            &NewKey {
                name: "seven days",
                app_id,
                environment: "live",
                role_id: BuiltinRole::Developer.id(),
                expires_at: Some(t),
                networks: "",
            },
        )
        .await
        .unwrap();
        assert_eq!(info.expires_at, Some(t));
        let k = keys::lookup(&db, &cache, &secret).await.unwrap().unwrap();
        assert_eq!(k.refusal(t - 1), None);
        assert_eq!(k.refusal(t), Some(Refusal::Expired));
        assert_eq!(k.refusal(t + 1), Some(Refusal::Expired));

        // Roll with a day of grace: the old key works until the deadline, then not.
        let gu = p.require(Permission::ApiKeyUpdate).unwrap();
        let (new, new_secret) = keys::roll(
            &db,
            &cache,
            &test_mailer(),
            now,
            &gu,
            &o,
            &info.key_id,
            86_400,
        )
        .await
        .unwrap();
        assert_eq!(new.expires_at, Some(t), "the new key keeps every setting");
        let old = keys::lookup(&db, &cache, &secret).await.unwrap().unwrap();
        assert_eq!(old.refusal(now + 86_400 - 1), None);
        assert_eq!(old.refusal(now + 86_400 + 1), Some(Refusal::Expired));
        assert_eq!(
            keys::lookup(&db, &cache, &new_secret)
                .await
                .unwrap()
                .unwrap()
                .refusal(now + 86_400 + 1),
            None
        );

        // Revoked: refused at once, even though the cache held the key.
        let gd = p.require(Permission::ApiKeyDelete).unwrap();
        keys::revoke(&db, &cache, now + 10, &gd, &o, &new.key_id, "rotated")
            .await
            .unwrap();
        assert_eq!(
            keys::lookup(&db, &cache, &new_secret)
                .await
                .unwrap()
                .unwrap()
                .refusal(now + 11),
            Some(Refusal::Revoked)
        );

        // Last use is written in batches.
        let k = keys::lookup(&db, &cache, &secret).await.unwrap().unwrap();
        assert_eq!(k.key_id, info.key_id);
        cache.touch(&k, now + 5, "192.0.2.1".parse().unwrap());
        cache.touch(&k, now + 6, "192.0.2.2".parse().unwrap());
        // Within the same second only the first use is noted (the map is written once).
        cache.touch(&k, now + 6, "192.0.2.3".parse().unwrap());
        assert_eq!(cache.flush_last_used(&db).await.unwrap(), 1);
        let (at, ip): (Option<i64>, Option<String>) =
            sqlx::query_as("select last_used_at, last_used_ip from api_keys where key_id = $1")
                .bind(&info.key_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!((at, ip.as_deref()), (Some(now + 6), Some("192.0.2.2")));
        assert_eq!(cache.flush_last_used(&db).await.unwrap(), 0);

        // Refused requests are audited per key in batches, with counts per code.
        for _ in 0..3 {
            cache.refused(&info.key_id, "ip_not_allowed");
        }
        cache.refused(&info.key_id, "insufficient_permissions");
        assert_eq!(cache.flush_refused(&db, now + 7).await.unwrap(), 1);
        assert_eq!(cache.flush_refused(&db, now + 8).await.unwrap(), 0);
        let (details,): (String,) =
            sqlx::query_as("select details from audit_events where action = 'api_key.refused'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let d: serde_json::Value = serde_json::from_str(&details).unwrap();
        assert_eq!(d["requests"], 4);
        assert_eq!(d["by_code"]["ip_not_allowed"], 3);

        // A Developer sees only their own keys; view_all sees all.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let pd = principal(&db, dev).await;
        let all = Default::default();
        assert!(keys::list_keys(&db, now, &pd, &all)
            .await
            .unwrap()
            .keys
            .is_empty());
        assert_eq!(
            keys::list_keys(&db, now, &p, &all)
                .await
                .unwrap()
                .keys
                .len(),
            2
        );
        assert!(matches!(
            keys::visible_key(&db, now, &pd, &info.key_id).await,
            Err(AppError::NotFound)
        ));
    })
    .await;
}

// ---- messages and approvals ----

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
            s.mailer = mailer
        }),
        Default::default(),
    );
    let owner = user_with_role(db, "owner@example.com", BuiltinRole::Owner.id()).await;
    let p = principal(db, owner).await;
    let app_id = app::core::keys::create_app(
        db,
        &st.keys,
        st.clock.now(),
        &p.require(Permission::AppManage).unwrap(),
        &Origin::default(),
        "Billing",
        "",
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

#[tokio::test]
async fn parallel_approvals_queue_a_message_once_and_one_worker_claims_it() {
    on_both(|db| async move {
        use app::core::{delivery, messages};
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let o = Origin::default();
        let author = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let b = user_with_role(&db, "b@example.com", BuiltinRole::Approver.id()).await;
        let c = user_with_role(&db, "c@example.com", BuiltinRole::Approver.id()).await;
        let pa = principal(&db, author).await;
        let m = messages::create(
            &st,
            &pa.require(Permission::MessageCreate).unwrap(),
            &o,
            &draft(app_id, "Invoice"),
        )
        .await
        .unwrap();
        assert_eq!(m.status, "pending_approval");
        assert!(m.id.starts_with("msg_"));
        // It waits in the approvers' queue (counted even beyond the rows asked for),
        // never in its author's.
        let t = st.clock.now();
        let (rows, waiting) = messages::queue_head(&db, t, &principal(&db, b).await, 0)
            .await
            .unwrap();
        assert_eq!((rows.len(), waiting), (0, 1));
        let (rows, waiting) = messages::queue_head(&db, t, &principal(&db, b).await, 5)
            .await
            .unwrap();
        assert_eq!((rows[0].id.as_str(), waiting), (m.id.as_str(), 1));
        assert_eq!(messages::queue_head(&db, t, &pa, 5).await.unwrap().1, 0);

        // Two approvers click at the same moment: one approval completes it, the other
        // is told it is no longer waiting.
        let mut set = tokio::task::JoinSet::new();
        for who in [b, c] {
            let (st, db, id, hash) = (st.clone(), db.clone(), m.id.clone(), m.payload_hash.clone());
            set.spawn(async move {
                let p = principal(&db, who).await;
                let g = p.require(Permission::MessageApprove).unwrap();
                messages::approve(&st, &g, &Origin::default(), &id, &hash)
                    .await
                    .map(|m| m.status)
            });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            results.push(r.unwrap());
        }
        assert_eq!(
            results
                .iter()
                .filter(|r| r.as_deref() == Ok("queued"))
                .count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(AppError::Conflict(_)))),
            "{results:?}"
        );
        assert_eq!(status_of(&db, &m.id).await.0, "queued");

        // Two workers claim at once: exactly one gets it.
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..2 {
            let db = db.clone();
            set.spawn(async move { delivery::claim(&db, 1_800_000_000, 70).await.unwrap() });
        }
        let mut claims = Vec::new();
        while let Some(r) = set.join_next().await {
            claims.extend(r.unwrap());
        }
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].message_id, m.id);
        assert_eq!(status_of(&db, &m.id).await, ("sending".into(), 1));
    })
    .await;
}

#[tokio::test]
async fn two_approvals_needed_and_an_edit_voids_earlier_ones() {
    on_both(|db| async move {
        use app::core::{messages, settings};
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let o = Origin::default();
        let owner = principal(&db, 1).await;
        let mut s = settings::messages(&db).await.unwrap();
        s.approvals_needed = 2;
        settings::save_messages(
            &db,
            1_800_000_000,
            &owner.require(Permission::SettingsManage).unwrap(),
            &o,
            &s,
        )
        .await
        .unwrap();
        let author = principal(
            &db,
            user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await,
        )
        .await;
        let b = principal(
            &db,
            user_with_role(&db, "b@example.com", BuiltinRole::Approver.id()).await,
        )
        .await;
        let c = principal(
            &db,
            user_with_role(&db, "c@example.com", BuiltinRole::Approver.id()).await,
        )
        .await;
        let ga = author.require(Permission::MessageCreate).unwrap();
        let (gb, gc) = (
            b.require(Permission::MessageApprove).unwrap(),
            c.require(Permission::MessageApprove).unwrap(),
        );
        let m = messages::create(&st, &ga, &o, &draft(app_id, "Invoice"))
            .await
            .unwrap();
        let m1 = messages::approve(&st, &gb, &o, &m.id, &m.payload_hash)
            .await
            .unwrap();
        assert_eq!(
            (m1.status.as_str(), m1.approvals),
            ("pending_approval", 1),
            "one of two does not send"
        );
        assert!(
            matches!(
                messages::approve(&st, &gb, &o, &m.id, &m.payload_hash).await,
                Err(AppError::Conflict(_))
            ),
            "the same approver counts once"
        );

        // The author edits: B's approval no longer counts, and an approval of the old
        // text is refused.
        let edited = messages::edit(
            &st,
            &ga,
            &o,
            &m.id,
            "customer@example.net",
            "",
            "Invoice (fixed)",
            "Your invoice is ready.",
        )
        .await
        .unwrap();
        assert_ne!(edited.payload_hash, m.payload_hash);
        assert_eq!(edited.approvals, 0);
        assert!(matches!(
            messages::approve(&st, &gc, &o, &m.id, &m.payload_hash).await,
            Err(AppError::Conflict(_))
        ));
        let m2 = messages::approve(&st, &gc, &o, &m.id, &edited.payload_hash)
            .await
            .unwrap();
        assert_eq!((m2.status.as_str(), m2.approvals), ("pending_approval", 1));
        let m3 = messages::approve(&st, &gb, &o, &m.id, &edited.payload_hash)
            .await
            .unwrap();
        assert_eq!((m3.status.as_str(), m3.approvals), ("queued", 2));
        assert!(
            matches!(
                messages::edit(
                    &st,
                    &ga,
                    &o,
                    &m.id,
                    "customer@example.net",
                    "",
                    "Too late",
                    "x"
                )
                .await,
                Err(AppError::Conflict(_))
            ),
            "a queued message cannot be edited"
        );
        let acts = actions(&db).await;
        for a in ["message.created", "message.approved", "message.edited"] {
            assert!(acts.iter().any(|x| x == a), "{a} audited: {acts:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn authors_never_approve_their_own_and_approvers_need_the_permission_now() {
    on_both(|db| async move {
        use app::core::messages;
        let clock = Clock::fixed(1_800_000_000);
        let (st, _dir, app_id) = message_state(&db, clock.clone()).await;
        let o = Origin::default();
        // The Owner holds every permission, message.approve included.
        let owner = principal(&db, 1).await;
        let m = messages::create(
            &st,
            &owner.require(Permission::MessageCreate).unwrap(),
            &o,
            &draft(app_id, "Mine"),
        )
        .await
        .unwrap();
        let own = messages::approve(
            &st,
            &owner.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
        )
        .await;
        assert!(matches!(own, Err(AppError::Validation { .. })), "{own:?}");
        let own = messages::reject(
            &st,
            &owner.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
            "no",
        )
        .await;
        assert!(matches!(own, Err(AppError::Validation { .. })), "{own:?}");
        // The author's API key (acting for the author): refused.
        let as_key = Principal::key(
            "key_AAAAAAAAAAAAAAAA".into(),
            1,
            BuiltinRole::Owner.id(),
            BuiltinRole::Owner.id(),
            owner.permissions().clone(),
        );
        let r = messages::approve(
            &st,
            &as_key.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
        )
        .await;
        assert_eq!(r, Err(AppError::Forbidden));
        // Nor any other user's key: approvals are made by people in the panel.
        let other = user_with_role(&db, "ann@example.com", BuiltinRole::Approver.id()).await;
        let key_of_other = Principal::key(
            "key_BBBBBBBBBBBBBBBB".into(),
            other,
            BuiltinRole::Approver.id(),
            BuiltinRole::Approver.id(),
            perms(&[Permission::MessageApprove]),
        );
        let r = messages::approve(
            &st,
            &key_of_other.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
        )
        .await;
        assert_eq!(r, Err(AppError::Forbidden));

        // A custom role loses message.approve after the message was written: its holder
        // is refused (permissions are read at the moment of approving).
        let role = roles::create(
            &db,
            1_800_000_000,
            &owner.require(Permission::RoleManage).unwrap(),
            &o,
            "Reviewers",
            &perms(&[Permission::MessageApprove]),
        )
        .await
        .unwrap();
        let rev = user_with_role(&db, "rev@example.com", role).await;
        assert!(principal(&db, rev).await.has(Permission::MessageApprove));
        sqlx::query("delete from role_permissions where role_id = $1")
            .bind(role)
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            principal(&db, rev)
                .await
                .require(Permission::MessageApprove)
                .err(),
            Some(AppError::Forbidden)
        );

        // Expired: cannot be approved, and the sweep marks it with an audit row.
        let ann = principal(&db, other).await;
        clock.advance(72 * 3600);
        let r = messages::approve(
            &st,
            &ann.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
        )
        .await;
        assert!(matches!(r, Err(AppError::Conflict(_))), "{r:?}");
        assert_eq!(messages::expire_pending(&db, clock.now()).await.unwrap(), 1);
        assert_eq!(status_of(&db, &m.id).await.0, "expired");
        assert!(actions(&db).await.iter().any(|a| a == "message.expired"));
    })
    .await;
}

#[tokio::test]
async fn delivery_retries_with_back_off_and_a_lost_claim_cannot_overwrite() {
    on_both(|db| async move {
        use app::core::{delivery, messages, settings};
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let o = Origin::default();
        let owner = principal(&db, 1).await;
        let mut s = settings::messages(&db).await.unwrap();
        s.app_overrides = vec![(app_id, false)];
        settings::save_messages(
            &db,
            1_800_000_000,
            &owner.require(Permission::SettingsManage).unwrap(),
            &o,
            &s,
        )
        .await
        .unwrap();
        let m = messages::create(
            &st,
            &owner.require(Permission::MessageCreate).unwrap(),
            &o,
            &draft(app_id, "No approval"),
        )
        .await
        .unwrap();
        assert_eq!(m.status, "queued", "this app's override: no approval");
        let t = 1_800_000_000;
        let c1 = delivery::claim(&db, t, 70).await.unwrap().unwrap();
        let fail = Err(delivery::Failure {
            permanent: false,
            error: "421 try later".into(),
        });
        delivery::finish(&db, t, &c1, &fail).await.unwrap();
        assert_eq!(status_of(&db, &m.id).await, ("queued".into(), 1));
        assert!(
            delivery::claim(&db, t + 9, 70).await.unwrap().is_none(),
            "back-off"
        );
        let c2 = delivery::claim(&db, t + 10, 70).await.unwrap().unwrap();
        assert_eq!(c2.attempts, 2);
        // The worker dies: after the lease another claim takes it over, and the first
        // worker's late outcome is dropped.
        assert!(
            delivery::claim(&db, t + 79, 70).await.unwrap().is_none(),
            "leased"
        );
        let c3 = delivery::claim(&db, t + 80, 70).await.unwrap().unwrap();
        assert_eq!(c3.attempts, 3);
        delivery::finish(&db, t + 81, &c2, &Ok(())).await.unwrap();
        assert_eq!(
            status_of(&db, &m.id).await.0,
            "sending",
            "the lost claim wrote nothing"
        );
        delivery::finish(&db, t + 81, &c3, &Ok(())).await.unwrap();
        assert_eq!(status_of(&db, &m.id).await, ("sent".into(), 3));
        assert!(
            delivery::claim(&db, t + 10_000, 70)
                .await
                .unwrap()
                .is_none(),
            "sent is final"
        );
        // A permanent failure ends at once.
        let m2 = messages::create(
            &st,
            &owner.require(Permission::MessageCreate).unwrap(),
            &o,
            &draft(app_id, "Bad"),
        )
        .await
        .unwrap();
        let c = delivery::claim(&db, t + 20_000, 70).await.unwrap().unwrap();
        assert_eq!(c.message_id, m2.id);
        delivery::finish(
            &db,
            t + 20_000,
            &c,
            &Err(delivery::Failure {
                permanent: true,
                error: "550 no such user".into(),
            }),
        )
        .await
        .unwrap();
        assert_eq!(status_of(&db, &m2.id).await.0, "failed");
        let acts = actions(&db).await;
        for a in ["message.attempt_failed", "message.sent", "message.failed"] {
            assert!(acts.iter().any(|x| x == a), "{a} audited: {acts:?}");
        }
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_is_final() {
    on_both(|db| async move {
        use app::core::messages;
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let o = Origin::default();
        let author = principal(
            &db,
            user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await,
        )
        .await;
        let b = principal(
            &db,
            user_with_role(&db, "b@example.com", BuiltinRole::Approver.id()).await,
        )
        .await;
        let gb = b.require(Permission::MessageApprove).unwrap();
        let m = messages::create(
            &st,
            &author.require(Permission::MessageCreate).unwrap(),
            &o,
            &draft(app_id, "Promo"),
        )
        .await
        .unwrap();
        assert!(matches!(
            messages::reject(&st, &gb, &o, &m.id, &m.payload_hash, "  ").await,
            Err(AppError::Validation { .. })
        ));
        let r = messages::reject(&st, &gb, &o, &m.id, &m.payload_hash, "Wrong audience")
            .await
            .unwrap();
        assert_eq!(r.status, "rejected");
        assert!(matches!(
            messages::approve(&st, &gb, &o, &m.id, &m.payload_hash).await,
            Err(AppError::Conflict(_))
        ));
        // The history shows who rejected it and why.
        let d = messages::detail(&db, 1_800_000_000, &author, &m.id)
            .await
            .unwrap();
        let rejected = d
            .history
            .iter()
            .find(|h| h.action == "message.rejected")
            .unwrap();
        assert_eq!(rejected.actor, "b@example.com");
        assert!(rejected.details.contains("Wrong audience"), "{rejected:?}");
        assert!(!d.can_edit, "a rejected message is not edited");
    })
    .await;
}

#[tokio::test]
async fn overview_lists_own_and_expiring_keys_and_recent_failed_authentication() {
    on_both(|db| async move {
        use app::core::keys::{self, KeyCache, NewKey};
        let o = Origin::default();
        let cache = KeyCache::default();
        let now = 1_800_000_000;
        let day = 86_400;
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let (po, pd) = (principal(&db, owner).await, principal(&db, dev).await);
        let app_id = keys::create_app(
            &db,
            &cache,
            now,
            &po.require(Permission::AppManage).unwrap(),
            &o,
            "Billing",
            "",
        )
        .await
        .unwrap();
        let make = |p: Principal, name: &'static str, expires_at: Option<i64>| {
            let (db, cache, o) = (db.clone(), cache.clone(), o.clone());
            async move {
                let g = p.require(Permission::ApiKeyCreate).unwrap();
                let new = NewKey {
                    name,
                    app_id,
                    environment: "test",
                    role_id: BuiltinRole::Developer.id(),
                    expires_at,
                    networks: "",
                };
                keys::create_key(&db, &cache, &test_mailer(), now, &g, &o, &new)
                    .await
                    .unwrap()
                    .0
                    .key_id
            }
        };
        make(pd.clone(), "dev soon", Some(now + 3 * day)).await;
        make(pd.clone(), "dev later", Some(now + 60 * day)).await;
        make(pd.clone(), "dev never", None).await;
        let revoked = make(pd.clone(), "dev revoked", Some(now + 2 * day)).await;
        let gd = pd.require(Permission::ApiKeyDelete).unwrap();
        keys::revoke(&db, &cache, now, &gd, &o, &revoked, "leaked")
            .await
            .unwrap();
        make(po.clone(), "owner soon", Some(now + day)).await;
        let names = |v: Vec<app::keys::KeyInfo>| v.into_iter().map(|k| k.name).collect::<Vec<_>>();
        let soon = now + 14 * day;

        // A developer sees their own active keys (newest first) and only their own expiring.
        let (mine, total, expiring) = keys::overview(&db, now, soon, &pd, 10).await.unwrap();
        assert_eq!(names(mine), ["dev never", "dev later", "dev soon"]);
        assert_eq!(total, 3);
        assert_eq!(names(expiring), ["dev soon"]);
        // The limit bounds the rows, not the count.
        let (mine, total, _) = keys::overview(&db, now, soon, &pd, 2).await.unwrap();
        assert_eq!((mine.len(), total), (2, 3));
        // With api.key.view_all: everyone's expiring keys, soonest first.
        let (mine, total, expiring) = keys::overview(&db, now, soon, &po, 10).await.unwrap();
        assert_eq!((names(mine), total), (vec!["owner soon".to_owned()], 1));
        assert_eq!(names(expiring), ["owner soon", "dev soon"]);
        // Once expired, a key is neither "mine" (active) nor "expiring".
        let later = now + 4 * day;
        let (mine, total, expiring) = keys::overview(&db, later, later + 14 * day, &pd, 10)
            .await
            .unwrap();
        assert_eq!(
            (names(mine), total),
            (vec!["dev never".to_owned(), "dev later".to_owned()], 2)
        );
        assert!(expiring.is_empty());
        // The keys page: filters and pages (newest first), by the same rules of who sees what.
        use app::keys::KeyFilter;
        let list = |p: Principal, f: KeyFilter| {
            let db = db.clone();
            async move {
                let page = keys::list_keys(&db, now + 2 * day, &p, &f).await.unwrap();
                (names(page.keys), page.next)
            }
        };
        let f = |status: &str| KeyFilter {
            status: Some(status.to_owned()),
            ..Default::default()
        };
        assert_eq!(list(pd.clone(), f("revoked")).await.0, ["dev revoked"]);
        assert_eq!(list(po.clone(), f("expired")).await.0, ["owner soon"]);
        assert_eq!(
            list(po.clone(), f("active")).await.0,
            ["dev never", "dev later", "dev soon"]
        );
        let first = KeyFilter {
            limit: Some(3),
            ..Default::default()
        };
        let (page1, next) = list(po.clone(), first.clone()).await;
        assert_eq!(page1, ["owner soon", "dev revoked", "dev never"]);
        let (page2, end) = list(
            po.clone(),
            KeyFilter {
                after: next,
                ..first.clone()
            },
        )
        .await;
        assert_eq!(
            (page2, end),
            (vec!["dev later".to_owned(), "dev soon".to_owned()], None)
        );
        let other_app = KeyFilter {
            app_id: Some(app_id + 1),
            ..Default::default()
        };
        assert!(list(po.clone(), other_app).await.0.is_empty());
        for bad in [
            KeyFilter {
                status: Some("gone".into()),
                ..Default::default()
            },
            KeyFilter {
                environment: Some("prod".into()),
                ..Default::default()
            },
            KeyFilter {
                limit: Some(0),
                ..Default::default()
            },
            KeyFilter {
                limit: Some(501),
                ..Default::default()
            },
            KeyFilter {
                after: Some("key_' or 1=1".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                keys::list_keys(&db, now, &po, &bad).await,
                Err(AppError::Validation { .. })
            ));
        }

        // Without api.key.view there is nothing to show.
        let bare = Principal::user(dev, BuiltinRole::Viewer.id(), Default::default());
        assert!(matches!(
            keys::overview(&db, now, soon, &bare, 10).await,
            Err(AppError::Forbidden)
        ));

        // Failed authentication of the last day: sign-in steps and refused key requests,
        // not successes, not other failures, not older ones.
        let at = |action: &'static str, outcome: Outcome, when: i64| {
            let db = db.clone();
            async move {
                let mut ev = event(action);
                ev.outcome = outcome;
                audit::record(&db, when, &ev).await.unwrap();
            }
        };
        at("auth.sign_in", Outcome::Failure, now - 2 * day).await;
        at("auth.sign_in", Outcome::Failure, now - 100).await;
        at("auth.sign_in", Outcome::Success, now - 90).await;
        at("message.failed", Outcome::Failure, now - 80).await;
        at("auth.code_failed", Outcome::Failure, now - 70).await;
        at("api_key.refused", Outcome::Failure, now - 60).await;
        let rows = audit::auth_failures(&db, now - day, 500).await.unwrap();
        let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            ["api_key.refused", "auth.code_failed", "auth.sign_in"]
        );
        assert_eq!(
            audit::auth_failures(&db, now - day, 1).await.unwrap().len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn a_removed_webhook_url_is_not_offered_named_or_delivered_to() {
    on_both(|db| async move {
        use app::core::{delivery, messages, settings, webhooks};
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let (o, t) = (Origin::default(), 1_800_000_000);
        let owner = principal(&db, 1).await;
        let manage = owner.require(Permission::AppManage).unwrap();
        let url = "https://hooks.example.com/billing";
        webhooks::register(&db, t, st.master_key.expose(), &manage, &o, app_id, url)
            .await
            .unwrap();
        let offered = |db: Db| async move {
            messages::compose_apps(&db).await.unwrap()[0]
                .webhooks
                .iter()
                .map(|w| w.label.clone())
                .collect::<Vec<_>>()
        };
        // Offered by origin and number: the path is not shown.
        assert_eq!(
            offered(db.clone()).await,
            ["https://hooks.example.com/… (#1)"]
        );
        // Sent without approval, so it waits in the outbox.
        let mut s = settings::messages(&db).await.unwrap();
        s.app_overrides = vec![(app_id, false)];
        let gs = owner.require(Permission::SettingsManage).unwrap();
        settings::save_messages(&db, t, &gs, &o, &s).await.unwrap();
        let gm = owner.require(Permission::MessageCreate).unwrap();
        let hook = |subject| app::core::messages::Draft {
            channel: "webhook",
            recipients: "",
            webhook_url: url,
            ..draft(app_id, subject)
        };
        let m = messages::create(&st, &gm, &o, &hook("Queued"))
            .await
            .unwrap();
        assert_eq!(m.status, "queued");

        webhooks::remove(&db, t, &manage, &o, app_id, url)
            .await
            .unwrap();
        assert!(offered(db.clone()).await.is_empty());
        assert!(matches!(
            webhooks::remove(&db, t, &manage, &o, app_id, url).await,
            Err(AppError::NotFound)
        ));
        assert!(matches!(
            messages::create(&st, &gm, &o, &hook("After")).await,
            Err(AppError::Validation { field, .. }) if field == "webhook_url"
        ));
        // The queued message fails for good, saying why (nothing is POSTed).
        let c = delivery::claim(&db, t, 70).await.unwrap().unwrap();
        let sent = delivery::send(&st, &c).await;
        let err = sent.as_ref().unwrap_err();
        assert!(
            err.permanent && err.error.contains("removed"),
            "{}",
            err.error
        );
        delivery::finish(&db, t, &c, &sent).await.unwrap();
        assert_eq!(status_of(&db, &m.id).await.0, "failed");
        assert_eq!(
            actions(&db)
                .await
                .iter()
                .filter(|a| *a == "webhook.removed")
                .count(),
            1
        );

        // A URL that points at a metadata address (registered before the address rule,
        // say) is never POSTed to: the message fails for good, saying why.
        let meta = "http://169.254.169.254/latest/meta-data/";
        assert!(matches!(
            webhooks::register(&db, t, st.master_key.expose(), &manage, &o, app_id, meta).await,
            Err(AppError::Validation { .. })
        ));
        sqlx::query("update webhook_endpoints set url = $1, removed_at = null where url = $2")
            .bind(meta)
            .bind(url)
            .execute(&db.pool)
            .await
            .unwrap();
        let m = messages::create(
            &st,
            &gm,
            &o,
            &app::core::messages::Draft {
                webhook_url: meta,
                ..hook("Metadata")
            },
        )
        .await
        .unwrap();
        let c = delivery::claim(&db, t, 70).await.unwrap().unwrap();
        let sent = delivery::send(&st, &c).await;
        let err = sent.as_ref().unwrap_err();
        assert!(
            err.permanent && err.error.contains("may not go to"),
            "{}",
            err.error
        );
        delivery::finish(&db, t, &c, &sent).await.unwrap();
        assert_eq!(status_of(&db, &m.id).await.0, "failed");
        sqlx::query("update webhook_endpoints set url = $1, removed_at = $2 where url = $3")
            .bind(url)
            .bind(t)
            .bind(meta)
            .execute(&db.pool)
            .await
            .unwrap();

        // Registering it again brings it back (with a new secret).
        webhooks::register(&db, t, st.master_key.expose(), &manage, &o, app_id, url)
            .await
            .unwrap();
        assert_eq!(offered(db.clone()).await.len(), 1);
        messages::create(&st, &gm, &o, &hook("Again"))
            .await
            .unwrap();
    })
    .await;
}

/// A mailer writing to a throwaway outbox (notifications are not what these tests check).
fn test_mailer() -> Mailer {
    let dir = std::env::temp_dir().join(format!("keyward-db-test-outbox-{}", std::process::id()));
    Mailer::new(None, "keyward@example.com", dir).unwrap()
}

fn late(token: &str) -> app::core::invitations::Acceptance<'_> {
    app::core::invitations::Acceptance {
        token,
        display_name: "Late",
        password: "a long enough password",
    }
}
