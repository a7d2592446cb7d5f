//! Reading the audit log: the page's filters and paging, the export's chunks, and the
//! chain walk that says what broke where.

use super::*;
use app::core::audit::read::{self, Export};
use model::audit::AuditFilter;

const KEY: &str = "key_abcdefghijklmnop";

fn ev<'a>(actor: Actor<'a>, action: &'a str, target: &str, ip: &str, ok: bool) -> Event<'a> {
    Event {
        actor,
        action,
        target: Some(target.to_owned()),
        ip: Some(ip.to_owned()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
        outcome: if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        details: serde_json::json!({}),
    }
}

fn seqs(page: &model::audit::AuditPage) -> Vec<i64> {
    page.entries.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn the_audit_page_filters_on_each_field_newest_first() {
    on_both(|db| async move {
        let admin = user_with_role(&db, "ada@example.com", BuiltinRole::Admin.id()).await;
        let p = principal(&db, admin).await;
        let g = p.require(Permission::AuditView).unwrap();
        // 1..=6, a day apart from 2026-01-01 00:00 UTC.
        let day0 = 1_767_225_600;
        let events = [
            ev(
                Actor::User(admin),
                "api_key.created",
                KEY,
                "192.0.2.1",
                true,
            ),
            ev(Actor::Key(KEY), "message.created", "42", "192.0.2.2", true),
            ev(
                Actor::Anonymous,
                "auth.sign_in",
                "ada@example.com",
                "2001:db8::1",
                false,
            ),
            ev(
                Actor::User(admin),
                "api_key.revoked",
                KEY,
                "192.0.2.1",
                true,
            ),
            ev(Actor::System, "message.expired", "42", "192.0.2.9", true),
            ev(
                Actor::User(admin),
                "user.invited",
                "bob@example.com",
                "192.0.2.1",
                true,
            ),
        ];
        for (i, e) in events.iter().enumerate() {
            audit::record(&db, day0 + i as i64 * 86_400, e)
                .await
                .unwrap();
        }
        let all = read::list(&db, &g, &AuditFilter::default()).await.unwrap();
        assert_eq!(seqs(&all), vec![6, 5, 4, 3, 2, 1]);
        assert_eq!(
            all.entries[0].actor, "ada@example.com",
            "a user is named by their email"
        );
        assert_eq!(all.entries[1].actor, "Keyward");
        assert_eq!(all.entries[3].actor, "not signed in");
        assert_eq!(all.entries[4].actor, KEY);
        assert_eq!(all.entries[0].browser.as_deref(), Some("Firefox on Linux"));
        let f = |set: fn(&mut AuditFilter)| {
            let mut f = AuditFilter::default();
            set(&mut f);
            f
        };
        let cases: Vec<(AuditFilter, Vec<i64>)> = vec![
            (f(|f| f.actor = " ADA@example.com ".into()), vec![6, 4, 1]),
            (f(|f| f.actor = "key_abcdefghijklmnop".into()), vec![2]),
            (f(|f| f.actor = "system".into()), vec![5]),
            (f(|f| f.actor = "anonymous".into()), vec![3]),
            (f(|f| f.action = "api_key.revoked".into()), vec![4]),
            (f(|f| f.action = "api_key.".into()), vec![4, 1]),
            (f(|f| f.action = "message.".into()), vec![5, 2]),
            // An area alone: all of its actions, as with the dot.
            (f(|f| f.action = "api_key".into()), vec![4, 1]),
            (f(|f| f.target = KEY.into()), vec![4, 1]),
            (f(|f| f.outcome = "failure".into()), vec![3]),
            (f(|f| f.ip = "192.0.2.1".into()), vec![6, 4, 1]),
            // The same address however it is written.
            (f(|f| f.ip = "2001:DB8:0::1".into()), vec![3]),
            // An IPv4 address written as IPv4-mapped IPv6.
            (f(|f| f.ip = "::ffff:192.0.2.1".into()), vec![6, 4, 1]),
            (f(|f| f.from = "2026-01-03".into()), vec![6, 5, 4, 3]),
            (f(|f| f.to = "2026-01-02".into()), vec![2, 1]),
            (
                f(|f| {
                    f.from = "2026-01-02".into();
                    f.to = "2026-01-04".into();
                }),
                vec![4, 3, 2],
            ),
            (
                f(|f| {
                    f.actor = "ada@example.com".into();
                    f.target = KEY.into();
                }),
                vec![4, 1],
            ),
        ];
        for (filter, want) in cases {
            let got = read::list(&db, &g, &filter).await.unwrap();
            assert_eq!(seqs(&got), want, "{filter:?}");
        }
        // Refusals name their field.
        for (filter, field) in [
            (f(|f| f.actor = "nobody@example.com".into()), "actor"),
            (f(|f| f.actor = "not an email".into()), "actor"),
            (f(|f| f.action = "x' or 1=1 --".into()), "action"),
            (f(|f| f.outcome = "maybe".into()), "outcome"),
            (f(|f| f.ip = "192.0.2.0/24".into()), "ip"),
            (f(|f| f.from = "yesterday".into()), "from"),
            (f(|f| f.from = "+2026-01-01".into()), "from"),
            (f(|f| f.to = "0000-01-01".into()), "to"),
            (
                f(|f| {
                    f.from = "2026-01-05".into();
                    f.to = "2026-01-01".into();
                }),
                "to",
            ),
            (f(|f| f.target = "x".repeat(1_000_000)), "target"),
            (f(|f| f.before = "-3".into()), "before"),
        ] {
            let got = read::list(&db, &g, &filter).await;
            assert!(
                matches!(&got, Err(AppError::Validation { field: f, .. }) if f == field),
                "{field}: {got:?}"
            );
        }
        // Without audit.view there is no grant to read with.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        assert!(principal(&db, dev)
            .await
            .require(Permission::AuditView)
            .is_err());
    })
    .await;
}

#[tokio::test]
async fn audit_pages_continue_exactly_and_the_export_reads_every_row_in_chunks() {
    on_both(|db| async move {
        let admin = user_with_role(&db, "ada@example.com", BuiltinRole::Admin.id()).await;
        let p = principal(&db, admin).await;
        let g = p.require(Permission::AuditView).unwrap();
        // 1,203 events in one transaction each would be slow on PostgreSQL: a few
        // transactions of many.
        let n = 1_203;
        for chunk in 0..3 {
            let mut tx = db.pool.begin().await.unwrap();
            for i in 0..401 {
                let action = if (chunk * 401 + i) % 3 == 0 {
                    "auth.sign_in"
                } else {
                    "auth.sign_out"
                };
                audit::record_in(
                    &mut tx,
                    100 + i,
                    &ev(Actor::User(admin), action, "t", "192.0.2.1", true),
                )
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }
        // Paging: every event once, newest first.
        let mut seen = Vec::new();
        let mut f = AuditFilter::default();
        loop {
            let page = read::list(&db, &g, &f).await.unwrap();
            assert!(page.entries.len() as i64 <= model::audit::AUDIT_PAGE);
            seen.extend(seqs(&page));
            match page.next {
                Some(next) => f.before = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, (1..=n).rev().collect::<Vec<_>>());
        // The export of a filter: every matching row, across chunks, newest first.
        let filter = AuditFilter {
            action: "auth.sign_in".into(),
            ..Default::default()
        };
        let mut x = Export::start(&db, 5_000, &g, &Origin::default(), &filter)
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            let chunk = x.next_chunk().await.unwrap();
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk.into_iter().map(|e| e.seq));
        }
        let want: Vec<i64> = (1..=n).rev().filter(|s| (s - 1) % 3 == 0).collect();
        assert_eq!(got, want);
        // The export itself is in the log, with its filters.
        let (action, details): (String, String) =
            sqlx::query_as("select action, details from audit_events order by seq desc limit 1")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(action, "audit.exported");
        assert!(details.contains("auth.sign_in"), "{details}");
        assert_eq!(audit::verify_chain(&db).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn the_chain_walk_says_which_event_broke_and_how() {
    on_both(|db| async move {
        assert_eq!(
            read::verify(&db).await.unwrap().sentence(),
            "The audit log is empty."
        );
        for i in 0..8 {
            audit::record(&db, 100 + i, &event("auth.sign_in"))
                .await
                .unwrap();
        }
        let ok = read::verify(&db).await.unwrap();
        assert_eq!((ok.events, ok.intact_to, ok.broken), (8, 8, None));
        let exec = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).execute(&db.pool).await.unwrap() }
        };
        let broken = || {
            let db = db.clone();
            async move {
                let s = read::verify(&db).await.unwrap();
                let b = s.broken.clone().expect("the walk finds the break");
                (b.seq, b.reason, s.intact_to)
            }
        };
        // An edited event.
        exec("update audit_events set ip = '203.0.113.5' where seq = 3").await;
        let (seq, reason, intact) = broken().await;
        assert_eq!((seq, intact), (3, 2));
        assert!(reason.contains("changed"), "{reason}");
        exec("update audit_events set ip = '192.0.2.1' where seq = 3").await;
        assert_eq!(read::verify(&db).await.unwrap().broken, None);
        // The last events cut off: the head still names them.
        exec("delete from audit_events where seq >= 7").await;
        let (seq, reason, _) = broken().await;
        assert_eq!(seq, 7);
        assert!(reason.contains("7 to 8"), "{reason}");
        // An event deleted in the middle.
        exec("delete from audit_events where seq = 4").await;
        let (seq, reason, _) = broken().await;
        assert_eq!(seq, 5);
        assert!(reason.contains("event 4 is missing"), "{reason}");
    })
    .await;
}

#[tokio::test]
async fn the_chain_walk_sees_rows_outside_the_head_and_a_head_moved_back() {
    on_both(|db| async move {
        for i in 0..6 {
            audit::record(&db, 100 + i, &event("auth.sign_in"))
                .await
                .unwrap();
        }
        let exec = |sql: &'static str| {
            let db = db.clone();
            async move { sqlx::query(sql).execute(&db.pool).await.unwrap() }
        };
        let broken_at = || {
            let db = db.clone();
            async move { read::verify(&db).await.unwrap().broken.map(|b| (b.seq, b.reason)) }
        };
        // A row past the head.
        exec("insert into audit_events (seq, occurred_at, actor_type, action, outcome, details, prev_hash, hash, created_at, updated_at) values (9, 0, 'system', 'x', 'success', '{}', '', '', 0, 0)").await;
        let (seq, reason) = broken_at().await.expect("a row past the head");
        assert_eq!(seq, 7);
        assert!(reason.contains("past the chain's head"), "{reason}");
        exec("delete from audit_events where seq = 9").await;
        // A row numbered before the first.
        exec("insert into audit_events (seq, occurred_at, actor_type, action, outcome, details, prev_hash, hash, created_at, updated_at) values (-3, 0, 'system', 'x', 'success', '{}', '', '', 0, 0)").await;
        assert_eq!(broken_at().await.map(|b| b.0), Some(-3));
        exec("delete from audit_events where seq = -3").await;
        assert_eq!(broken_at().await, None);
        // The head moved back over events (which may then be changed freely).
        exec("update audit_chain set seq = 0").await;
        let (seq, reason) = broken_at().await.expect("a head moved back to the start");
        assert_eq!(seq, 1);
        assert!(reason.contains("past the chain's head (0)"), "{reason}");
    })
    .await;
}
