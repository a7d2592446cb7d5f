//! Migrations, users, sessions, the audit chain and the signed-in user.

use super::*;

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

/// A write that waits out SQLite's busy timeout behind another writer's lock is "busy,
/// try again" (503 with Retry-After), not an internal error.
#[tokio::test]
async fn a_locked_database_is_unavailable_not_internal() {
    use sqlx::{Connection as _, Executor as _};
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("locked.db").display()
    );
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    holder.execute("create table t (x integer)").await.unwrap();
    holder.execute("begin exclusive").await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    other.execute("pragma busy_timeout = 0").await.unwrap();
    let err = other.execute("insert into t values (1)").await.unwrap_err();
    let e = AppError::from(err);
    assert_eq!(
        (e.status(), e.code(), e.retry_after()),
        (503, "unavailable", Some(5))
    );
    // Another database error stays internal.
    let e = AppError::from(holder.execute("select * from missing").await.unwrap_err());
    assert_eq!(e.status(), 500);
}
