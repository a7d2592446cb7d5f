//! Key expiry and rolls, and the overview's key panels.

use super::*;

#[tokio::test]
async fn keys_expire_on_the_second_and_rolls_end_at_the_deadline() {
    on_both(|db| async move {
        use app::core::keys::{self, format::Environment, verified::Refusal, NewKey};
        let o = Origin::default();
        let now = 1_800_000_000;
        let core = core_at(&db, now);
        let cx = Ctx::new(&core, &o);
        let cache = &core.keys;
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let app_id = keys::apps::create_app(
            &cx,
            &p.require(Permission::AppManage).unwrap(),
            &app_input("Billing"),
        )
        .await
        .unwrap();
        let g = p.require(Permission::ApiKeyCreate).unwrap();
        let t = now + 7 * 86_400;
        let (info, secret) = keys::create_key(
            &cx,
            &g,
            &NewKey {
                name: "seven days",
                app_id,
                environment: Environment::Live,
                role_id: BuiltinRole::Developer.id(),
                expires_at: Some(t),
                networks: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(info.expires_at, Some(t));
        let k = keys::verify::lookup(&db, cache, &secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k.refusal(t - 1), None);
        assert_eq!(k.refusal(t), Some(Refusal::Expired));
        assert_eq!(k.refusal(t + 1), Some(Refusal::Expired));

        // Roll with a day of grace: the old key works until the deadline, then not.
        let gu = p.require(Permission::ApiKeyUpdate).unwrap();
        let (new, new_secret) = keys::roll(&cx, &gu, &info.key_id, 86_400).await.unwrap();
        assert_eq!(
            new.expires_at,
            Some(t),
            "rolled at once: the same lifetime from now"
        );
        let old = keys::verify::lookup(&db, cache, &secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.refusal(now + 86_400 - 1), None);
        assert_eq!(old.refusal(now + 86_400 + 1), Some(Refusal::Expired));
        assert_eq!(
            keys::verify::lookup(&db, cache, &new_secret)
                .await
                .unwrap()
                .unwrap()
                .refusal(now + 86_400 + 1),
            None
        );

        // Revoked: refused at once, even though the cache held the key.
        let gd = p.require(Permission::ApiKeyDelete).unwrap();
        let later = Ctx {
            now: now + 10,
            ..cx
        };
        keys::revoke(&later, &gd, &new.key_id, "rotated")
            .await
            .unwrap();
        assert_eq!(
            keys::verify::lookup(&db, cache, &new_secret)
                .await
                .unwrap()
                .unwrap()
                .refusal(now + 11),
            Some(Refusal::Revoked)
        );

        // Last use is written in batches.
        let k = keys::verify::lookup(&db, cache, &secret)
            .await
            .unwrap()
            .unwrap();
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
        let from: std::net::IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            cache.refused(&info.key_id, "ip_not_allowed", from);
        }
        cache.refused(&info.key_id, "insufficient_permissions", from);
        assert_eq!(cache.flush_refused(&db, now + 7).await.unwrap().len(), 1);
        assert!(cache.flush_refused(&db, now + 8).await.unwrap().is_empty());
        let (details,): (String,) =
            sqlx::query_as("select details from audit_events where action = 'api_key.refused'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let d: serde_json::Value = serde_json::from_str(&details).unwrap();
        assert_eq!(d["requests"], 4);
        assert_eq!(d["by_code"]["ip_not_allowed"], 3);
        assert_eq!(d["addresses"], serde_json::json!(["198.51.100.7"]));

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

#[tokio::test]
async fn a_rolled_key_lasts_its_lifetime_again_from_the_roll() {
    on_both(|db| async move {
        use app::core::keys::{self, format::Environment, NewKey};
        let o = Origin::default();
        let (now, day) = (1_800_000_000, 86_400);
        let core = core_at(&db, now);
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let cx = Ctx::new(&core, &o);
        let app_id = keys::apps::create_app(
            &cx,
            &p.require(Permission::AppManage).unwrap(),
            &app_input("Billing"),
        )
        .await
        .unwrap();
        let (info, _) = keys::create_key(
            &cx,
            &p.require(Permission::ApiKeyCreate).unwrap(),
            &NewKey {
                name: "seven days",
                app_id,
                environment: Environment::Live,
                role_id: BuiltinRole::Developer.id(),
                expires_at: Some(now + 7 * day),
                networks: Vec::new(),
            },
        )
        .await
        .unwrap();
        // Rolled on its sixth day: the new key lasts seven days from the roll, not one.
        let later = Ctx {
            now: now + 6 * day,
            ..cx
        };
        let gu = p.require(Permission::ApiKeyUpdate).unwrap();
        let (new, _) = keys::roll(&later, &gu, &info.key_id, 0).await.unwrap();
        assert_eq!(new.expires_at, Some(now + 13 * day));
    })
    .await;
}

#[tokio::test]
async fn overview_lists_own_and_expiring_keys_and_recent_failed_authentication() {
    on_both(|db| async move {
        use app::core::keys::{self, format::Environment, NewKey};
        let o = Origin::default();
        let now = 1_800_000_000;
        let core = core_at(&db, now);
        let day = 86_400;
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let (po, pd) = (principal(&db, owner).await, principal(&db, dev).await);
        let app_id = keys::apps::create_app(
            &Ctx::new(&core, &o),
            &po.require(Permission::AppManage).unwrap(),
            &app_input("Billing"),
        )
        .await
        .unwrap();
        let make = |p: Principal, name: &'static str, expires_at: Option<i64>| {
            let (core, o) = (core.clone(), o.clone());
            async move {
                let g = p.require(Permission::ApiKeyCreate).unwrap();
                let new = NewKey {
                    name,
                    app_id,
                    environment: Environment::Test,
                    role_id: BuiltinRole::Developer.id(),
                    expires_at,
                    networks: Vec::new(),
                };
                keys::create_key(&Ctx::new(&core, &o), &g, &new)
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
        keys::revoke(&Ctx::new(&core, &o), &gd, &revoked, "leaked")
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

        // Search: in names and owners' emails, whatever the case; a key ID exactly; the
        // text as typed (a `%` or `_` is no wildcard); never past what the viewer sees.
        let q = |s: &str| KeyFilter {
            q: Some(s.to_owned()),
            ..Default::default()
        };
        assert_eq!(
            list(po.clone(), q("SOON")).await.0,
            ["owner soon", "dev soon"]
        );
        assert_eq!(
            list(po.clone(), q("dev@")).await.0,
            ["dev revoked", "dev never", "dev later", "dev soon"]
        );
        assert_eq!(list(pd.clone(), q("owner")).await.0, Vec::<String>::new());
        assert!(list(po.clone(), q("%")).await.0.is_empty());
        assert!(list(po.clone(), q("_")).await.0.is_empty());
        let some_id = keys::list_keys(&db, now, &po, &q("never"))
            .await
            .unwrap()
            .keys[0]
            .key_id
            .clone();
        assert_eq!(list(po.clone(), q(&some_id)).await.0, ["dev never"]);
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
            KeyFilter {
                q: Some("x".repeat(101)),
                ..Default::default()
            },
            KeyFilter {
                q: Some("a\u{0}b".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                keys::list_keys(&db, now, &po, &bad).await,
                Err(AppError::Validation { .. })
            ));
        }

        // Sorts: each a total order (the id breaks ties) that pages, two keys at a time,
        // continue exactly; never-expiring and never-used keys last.
        let sorted = |sort: &'static str| {
            let (db, po) = (db.clone(), po.clone());
            async move {
                let (mut all, mut after) = (Vec::new(), None);
                loop {
                    let f = KeyFilter {
                        sort: Some(sort.to_owned()),
                        limit: Some(2),
                        after: after.take(),
                        ..Default::default()
                    };
                    let page = keys::list_keys(&db, now + 2 * day, &po, &f).await.unwrap();
                    all.extend(names(page.keys));
                    match page.next {
                        Some(n) => after = Some(n),
                        None => return all,
                    }
                }
            }
        };
        let newest = [
            "owner soon",
            "dev revoked",
            "dev never",
            "dev later",
            "dev soon",
        ];
        assert_eq!(sorted("newest").await, newest);
        let mut oldest = newest;
        oldest.reverse();
        assert_eq!(sorted("oldest").await, oldest);
        assert_eq!(
            sorted("name").await,
            [
                "dev later",
                "dev never",
                "dev revoked",
                "dev soon",
                "owner soon"
            ]
        );
        assert_eq!(
            sorted("expires").await,
            [
                "owner soon",
                "dev revoked",
                "dev soon",
                "dev later",
                "dev never"
            ]
        );
        // None used yet: all tie, newest first.
        assert_eq!(sorted("last_used").await, newest);
        assert!(matches!(
            keys::list_keys(
                &db,
                now,
                &po,
                &KeyFilter {
                    sort: Some("price".into()),
                    ..Default::default()
                }
            )
            .await,
            Err(AppError::Validation { .. })
        ));

        // Searches share a few scan slots: with every slot taken (a burst of searches
        // in flight), another search is refused with 429 after a short wait instead of
        // queueing for a pooled connection; the plain list, an indexed read, still works.
        let mut held = Vec::new();
        for someone in 1_000.. {
            match db.scans.enter(someone).await {
                Ok(slot) => held.push(slot),
                Err(_) => break,
            }
        }
        assert!(!held.is_empty());
        for busy in [q("soon"), f("active")] {
            assert!(matches!(
                keys::list_keys(&db, now, &po, &busy).await,
                Err(AppError::RateLimited { .. })
            ));
        }
        assert_eq!(list(pd.clone(), KeyFilter::default()).await.0.len(), 4);
        drop(held);
        assert_eq!(list(po.clone(), q("SOON")).await.0.len(), 2);

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
async fn a_leak_report_revokes_its_key_once_however_many_workers_race() {
    on_both(|db| async move {
        use app::core::keys::leaks;
        let now = 1_800_000_000;
        let (core, p, app_id) = owner_with_app(&db, now).await;
        let (info, secret) = new_key(&core, &p, app_id, "leaky", None).await;
        let ip: std::net::IpAddr = "203.0.113.4".parse().unwrap();
        // The same key reported three times (twice in one report), and junk.
        for tokens in [
            vec![secret.clone(), secret.clone(), "junk".to_owned()],
            vec![format!(" {secret} ")],
        ] {
            assert_eq!(
                leaks::report(&core, now, ip, &tokens).await.unwrap(),
                tokens.len()
            );
        }
        let (stored,): (i64,) = sqlx::query_as("select count(*) from leak_reports")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(stored, 2, "one row per distinct valid token per report");
        // Three workers at once: one revocation, one audit row.
        let (a, b, c) = tokio::join!(leaks::work(&core), leaks::work(&core), leaks::work(&core));
        assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 1);
        let (reason, revoked_by): (Option<String>, Option<i64>) =
            sqlx::query_as("select revoke_reason, revoked_by from api_keys where key_id = $1")
                .bind(&info.key_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(reason.as_deref(), Some("Reported as leaked"));
        assert_eq!(revoked_by, None);
        let (events, ip_seen): (i64, Option<String>) = sqlx::query_as(
            "select count(*), max(ip) from audit_events where action = 'api_key.leaked'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!((events, ip_seen.as_deref()), (1, Some("203.0.113.4")));
        let (pending,): (i64,) =
            sqlx::query_as("select count(*) from leak_reports where done_at is null")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(pending, 0);
        assert_eq!(leaks::work(&core).await.unwrap(), 0);
        // Handled reports are kept 30 days, then pruned.
        assert_eq!(leaks::prune(&db, now + 29 * 86_400).await.unwrap(), 0);
        assert_eq!(leaks::prune(&db, now + 31 * 86_400).await.unwrap(), 2);
    })
    .await;
}

#[tokio::test]
async fn with_the_flag_setting_a_leaked_key_is_flagged_once_and_keeps_working() {
    on_both(|db| async move {
        use app::core::keys::{self, leaks};
        let now = 1_800_000_000;
        let (core, p, app_id) = owner_with_app(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        let flag = model::settings::KeySettings {
            leak_action: "flag".into(),
            ..Default::default()
        };
        app::core::settings::save_keys(&cx, &p.require(Permission::SettingsManage).unwrap(), &flag)
            .await
            .unwrap();
        let (info, secret) = new_key(&core, &p, app_id, "leaky", None).await;
        let ip: std::net::IpAddr = "203.0.113.4".parse().unwrap();
        for _ in 0..2 {
            leaks::report(&core, now, ip, std::slice::from_ref(&secret))
                .await
                .unwrap();
            leaks::work(&core).await.unwrap();
        }
        let k = keys::visible_key(&db, now, &p, &info.key_id).await.unwrap();
        assert_eq!(k.status, "active");
        assert_eq!(k.leak_flagged_at, Some(now));
        let v = keys::verify::lookup(&db, &core.keys, &secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.refusal(now + 1), None, "a flagged key keeps working");
        let rows: Vec<(String,)> =
            sqlx::query_as("select details from audit_events where action = 'api_key.leaked'")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(rows.len(), 1, "flagged once");
        assert!(rows[0].0.contains("\"action\":\"flagged\""));
        // Out of the choices: refused.
        let bad = model::settings::KeySettings {
            leak_action: "ignore".into(),
            ..Default::default()
        };
        assert!(app::core::settings::check_keys(bad).is_err());
    })
    .await;
}

#[tokio::test]
async fn expiry_reminders_go_once_at_seven_days_and_at_one_day() {
    on_both(|db| async move {
        use app::core::keys::reminders;
        let t0 = 1_800_000_000;
        let day = 86_400;
        let (core, p, app_id) = owner_with_app(&db, t0).await;
        let mut ids = Vec::new();
        for (name, days) in [("month", 30), ("week", 7), ("revoked", 30), ("rolled", 30)] {
            let (info, _) = new_key(&core, &p, app_id, name, Some(t0 + days * day)).await;
            ids.push(info.key_id);
        }
        sqlx::query("update api_keys set revoked_at = $2 where key_id = $1")
            .bind(&ids[2])
            .bind(t0)
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("update api_keys set replaced_by = 'key_aaaaaaaaaaaaaaaa' where key_id = $1")
            .bind(&ids[3])
            .execute(&db.pool)
            .await
            .unwrap();
        let sent = |r: Vec<reminders::Sent>| {
            r.into_iter()
                .map(|s| (s.key_id, s.lead, s.to))
                .collect::<Vec<_>>()
        };
        // Nothing is due yet; the 7-day key gets no "7 days left" at its creation.
        assert_eq!(sent(reminders::run(&core).await.unwrap()), vec![]);
        // 7 days (less a second) before the month key expires: its first reminder, once,
        // however many runners race.
        core.clock.advance(23 * day + 1);
        let (a, b, c) = tokio::join!(
            reminders::run(&core),
            reminders::run(&core),
            reminders::run(&core)
        );
        let mut all = sent(a.unwrap());
        all.extend(sent(b.unwrap()));
        all.extend(sent(c.unwrap()));
        assert_eq!(
            all,
            vec![(
                ids[0].clone(),
                reminders::Lead::Week,
                "owner@example.com".to_owned()
            )]
        );
        assert_eq!(sent(reminders::run(&core).await.unwrap()), vec![]);
        // The day before: the second, once.
        core.clock.advance(6 * day);
        assert_eq!(
            sent(reminders::run(&core).await.unwrap()),
            vec![(
                ids[0].clone(),
                reminders::Lead::Day,
                "owner@example.com".to_owned()
            )]
        );
        assert_eq!(sent(reminders::run(&core).await.unwrap()), vec![]);
        // The week key expired before the clock reached its day-before reminder; the
        // revoked and the rolled key are never reminded.
        let (week_day,): (Option<i64>,) =
            sqlx::query_as("select reminded_1d_at from api_keys where key_id = $1")
                .bind(&ids[1])
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(
            week_day, None,
            "it expired at day 7, before the clock got there"
        );
        let (n,): (i64,) = sqlx::query_as(
            "select count(*) from api_keys where key_id in ($1, $2) \
             and (reminded_7d_at is not null or reminded_1d_at is not null)",
        )
        .bind(&ids[2])
        .bind(&ids[3])
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(n, 0);
    })
    .await;
}

#[tokio::test]
async fn a_short_lived_key_gets_only_the_reminder_its_lifetime_allows() {
    on_both(|db| async move {
        use app::core::keys::reminders;
        let t0 = 1_800_000_000;
        let day = 86_400;
        let (core, p, app_id) = owner_with_app(&db, t0).await;
        let (info, _) = new_key(&core, &p, app_id, "week", Some(t0 + 7 * day)).await;
        assert!(reminders::run(&core).await.unwrap().is_empty());
        core.clock.advance(6 * day + 60);
        let got = reminders::run(&core).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].key_id.as_str(), got[0].lead),
            (info.key_id.as_str(), reminders::Lead::Day)
        );
    })
    .await;
}

/// A fresh Owner's services at `now` (a fixed clock), their principal, and an app.
#[tokio::test]
async fn usage_is_counted_in_memory_written_in_batches_and_summed_across_instances() {
    on_both(|db| async move {
        use app::core::keys::{self, usage, verify::Door};
        let now = 1_800_001_234;
        let hour = usage::hour_of(now);
        assert_eq!(hour, 1_800_000_000);
        let (core, p, app_id) = owner_with_app(&db, now).await;
        let (info, secret) = new_key(&core, &p, app_id, "busy", None).await;
        let (other, _) = new_key(&core, &p, app_id, "idle", None).await;
        let ip: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        // Two instances: two caches over one database.
        let a = keys::cache::KeyCache::default();
        let b = keys::cache::KeyCache::default();
        let accept = |cache: &keys::cache::KeyCache, n: usize| {
            let (db, cache, secret) = (db.clone(), cache.clone(), secret.clone());
            async move {
                for _ in 0..n {
                    let k = keys::verify::verify(&db, &cache, Some(&secret), ip, now, Door::Server)
                        .await
                        .unwrap()
                        .unwrap();
                    k.accepted();
                }
            }
        };
        // Requests served by other threads count too (each thread has its own copy). The
        // key is read into the cache here first: the threads need no database.
        keys::verify::verify(&db, &a, Some(&secret), ip, now, Door::Server)
            .await
            .unwrap()
            .unwrap();
        let on_threads: Vec<_> = (0..3)
            .map(|_| {
                let (db, cache, secret) = (db.clone(), a.clone(), secret.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        for _ in 0..4 {
                            keys::verify::verify(&db, &cache, Some(&secret), ip, now, Door::Server)
                                .await
                                .unwrap()
                                .unwrap()
                                .accepted();
                        }
                    });
                })
            })
            .collect();
        for t in on_threads {
            t.join().unwrap();
        }
        accept(&a, 5).await;
        accept(&b, 7).await;
        b.refused(&info.key_id, "ip_not_allowed", ip);
        b.refused(&info.key_id, "ip_not_allowed", ip);
        a.refused(&info.key_id, "insufficient_permissions", ip);
        let count = |code: &'static str| {
            let db = db.clone();
            let key_id = info.key_id.clone();
            async move {
                let n: Option<(i64,)> = sqlx::query_as(
                    "select requests from key_usage where key_id = $1 and hour = $2 and code = $3",
                )
                .bind(&key_id)
                .bind(hour)
                .bind(code)
                .fetch_optional(&db.pool)
                .await
                .unwrap();
                n.map(|(n,)| n)
            }
        };
        // Nothing is written per request.
        assert_eq!(count(usage::ACCEPTED).await, None);
        // Both instances write their batch; the rows are the sums.
        assert_eq!(a.flush_usage(&db, now).await.unwrap(), 2);
        assert_eq!(b.flush_usage(&db, now + 5).await.unwrap(), 2);
        assert_eq!(count(usage::ACCEPTED).await, Some(12 + 5 + 7));
        assert_eq!(count("ip_not_allowed").await, Some(2));
        assert_eq!(count("insufficient_permissions").await, Some(1));
        // Counts are written once; the audit of refusals is separate and still to come.
        assert_eq!(a.flush_usage(&db, now + 10).await.unwrap(), 0);
        assert_eq!(b.flush_refused(&db, now + 10).await.unwrap().len(), 1);
        assert_eq!(b.flush_usage(&db, now + 10).await.unwrap(), 0);
        accept(&a, 1).await;
        assert_eq!(a.flush_usage(&db, now + 15).await.unwrap(), 1);
        assert_eq!(count(usage::ACCEPTED).await, Some(25));

        // Read back per hour and per day, with the refusals that were audited.
        let u = usage::of_key(&db, &info.key_id, now + 3600).await.unwrap();
        assert_eq!(u.hours.len(), 48);
        assert_eq!(u.days.len(), 90);
        let last_hours: Vec<_> = u.hours[46..]
            .iter()
            .map(|b| (b.start, b.accepted, b.refused))
            .collect();
        assert_eq!(last_hours, [(hour, 25, 3), (hour + 3600, 0, 0)]);
        assert_eq!(
            u.hours[46].by_code,
            [
                ("insufficient_permissions".to_owned(), 1),
                ("ip_not_allowed".to_owned(), 2)
            ]
        );
        let today = u.days.last().unwrap();
        assert_eq!((today.accepted, today.refused), (25, 3));
        assert_eq!(u.recent_refusals.len(), 1);
        assert_eq!(u.recent_refusals[0].addresses, ["192.0.2.10"]);
        assert_eq!(u.recent_refusals[0].requests, 2);
        // Another key's usage is its own.
        let idle = usage::of_key(&db, &other.key_id, now).await.unwrap();
        assert!(idle.hours.iter().all(|b| b.accepted + b.refused == 0));

        // Kept 90 days, then pruned.
        assert_eq!(usage::prune(&db, now + 89 * 86_400).await.unwrap(), 0);
        assert_eq!(
            usage::prune(&db, hour + 90 * 86_400 + 3600).await.unwrap(),
            3
        );
        assert_eq!(count(usage::ACCEPTED).await, None);
    })
    .await;
}

#[tokio::test]
async fn usage_a_failed_write_could_not_add_is_kept_for_the_next_flush() {
    let t = TestDb::sqlite().await;
    let db = t.db.clone();
    use app::core::keys::{self, usage, verify::Door};
    let now = 1_800_000_000;
    let (core, p, app_id) = owner_with_app(&db, now).await;
    let (info, secret) = new_key(&core, &p, app_id, "busy", None).await;
    let cache = keys::cache::KeyCache::default();
    let ip: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    for _ in 0..3 {
        keys::verify::verify(&db, &cache, Some(&secret), ip, now, Door::Server)
            .await
            .unwrap()
            .unwrap()
            .accepted();
    }
    sqlx::query("alter table key_usage rename to key_usage_away")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(cache.flush_usage(&db, now).await.is_err());
    sqlx::query("alter table key_usage_away rename to key_usage")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(cache.flush_usage(&db, now).await.unwrap(), 1);
    let (n,): (i64,) =
        sqlx::query_as("select requests from key_usage where key_id = $1 and code = $2")
            .bind(&info.key_id)
            .bind(usage::ACCEPTED)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(n, 3);
    t.finish().await;
}

#[tokio::test]
async fn an_alert_goes_once_per_window_however_many_instances_count() {
    on_both(|db| async move {
        use app::core::audit::alerts;
        // Defaults: 100 refusals of a key in 10 minutes; 10 failed sign-ins in 15.
        let now = 1_800_000_005; // 5 s into a 10-minute window
        let (core, _p, app_id) = owner_with_app(&db, now).await;
        let (info, _) = new_key(&core, &_p, app_id, "busy", None).await;
        let alerts_sent = |target: String| {
            let db = db.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as(
                    "select count(*) from audit_events where action = 'auth.alert' and target = $1",
                )
                .bind(&target)
                .fetch_one(&db.pool)
                .await
                .unwrap();
                n
            }
        };
        // Two instances add their batches at once: one of them crosses 100.
        let k = &info.key_id;
        let from = || Some("192.0.2.1".to_owned());
        let (a, b) = tokio::join!(
            alerts::key_refused(&core, now, k, 60, from()),
            alerts::key_refused(&core, now + 1, k, 60, from())
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(alerts_sent(k.clone()).await, 1);
        alerts::key_refused(&core, now + 2, k, 500, from())
            .await
            .unwrap();
        assert_eq!(alerts_sent(k.clone()).await, 1, "once per window");
        // The next window starts counting again.
        alerts::key_refused(&core, now + 600, k, 99, from())
            .await
            .unwrap();
        assert_eq!(alerts_sent(k.clone()).await, 1);
        alerts::key_refused(&core, now + 601, k, 1, from())
            .await
            .unwrap();
        assert_eq!(alerts_sent(k.clone()).await, 2);

        // Failed sign-ins of one account: the tenth sends it.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let o = Origin::default();
        for i in 0..12 {
            alerts::sign_in_failed(&core, now + i, &o, dev, "dev@example.com", true)
                .await
                .unwrap();
            let expected = i64::from(i >= 9);
            assert_eq!(
                alerts_sent("dev@example.com".into()).await,
                expected,
                "after {}",
                i + 1
            );
        }
        // Counts are pruned after two days.
        assert!(alerts::prune(&db, now + 3 * 86_400).await.unwrap() >= 3);
    })
    .await;
}

/// Saves Settings > Keys as `p` (no password check: that is the panel's).
async fn set_keys(core: &Core, p: &Principal, k: model::settings::KeySettings) {
    let o = Origin::default();
    let k = app::core::settings::check_keys(k).unwrap();
    app::core::settings::save_keys(
        &Ctx::new(core, &o),
        &p.require(Permission::SettingsManage).unwrap(),
        &k,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn keys_unused_for_n_days_are_disabled_once_and_work_again_when_enabled() {
    on_both(|db| async move {
        use app::core::keys::{self, lifecycle, verified::Refusal};
        let (t0, day) = (1_800_000_000, 86_400);
        let (core, p, app_id) = owner_with_app(&db, t0).await;
        let o = Origin::default();
        let (never, never_secret) = new_key(&core, &p, app_id, "never used", None).await;
        let (used, _) = new_key(&core, &p, app_id, "used", None).await;
        let (gone, _) = new_key(&core, &p, app_id, "revoked", None).await;
        sqlx::query("update api_keys set last_used_at = $2 where key_id = $1")
            .bind(&used.key_id)
            .bind(t0 + 10 * day)
            .execute(&db.pool)
            .await
            .unwrap();
        keys::revoke(
            &Ctx::new(&core, &o),
            &p.require(Permission::ApiKeyDelete).unwrap(),
            &gone.key_id,
            "",
        )
        .await
        .unwrap();
        let ids = |d: Vec<lifecycle::Disabled>| d.into_iter().map(|d| d.key_id).collect::<Vec<_>>();
        // Off by default: nothing is disabled, however old.
        core.clock.advance(30 * day - 1);
        assert!(lifecycle::disable_unused(&core).await.unwrap().is_empty());
        set_keys(&core, &p, model::settings::KeySettings { disable_unused_days: 30, ..Default::default() }).await;
        assert!(lifecycle::disable_unused(&core).await.unwrap().is_empty(), "a second short");
        // 30 days after its creation the never-used key goes, once however many
        // runners race; the key used on day 10 and the revoked one stay as they are.
        core.clock.advance(1);
        let (a, b, c) = tokio::join!(
            lifecycle::disable_unused(&core),
            lifecycle::disable_unused(&core),
            lifecycle::disable_unused(&core)
        );
        let mut all = ids(a.unwrap());
        all.extend(ids(b.unwrap()));
        all.extend(ids(c.unwrap()));
        assert_eq!(all, vec![never.key_id.clone()]);
        let (audited,): (i64,) = sqlx::query_as(
            "select count(*) from audit_events where action = 'api_key.disabled' and actor_type = 'system' and target = $1",
        )
        .bind(&never.key_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(audited, 1);
        let now = core.clock.now();
        let k = keys::visible_key(&db, now, &p, &never.key_id).await.unwrap();
        assert_eq!((k.status.as_str(), k.disabled_at), ("disabled", Some(now)));
        let v = keys::verify::lookup(&db, &core.keys, &never_secret).await.unwrap().unwrap();
        assert_eq!(v.refusal(now), Some(Refusal::Disabled));
        // Its own status in the list's filters; "active" leaves it out.
        let listed = |status: &str| {
            let f = model::keys::KeyFilter { status: Some(status.into()), ..Default::default() };
            let (db, p) = (db.clone(), p.clone());
            async move {
                keys::list_keys(&db, now, &p, &f).await.unwrap().keys.into_iter().map(|k| k.name).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed("disabled").await, vec!["never used"]);
        assert_eq!(listed("active").await, vec!["used"]);
        // Day 40: the key last used on day 10.
        core.clock.advance(10 * day);
        assert_eq!(ids(lifecycle::disable_unused(&core).await.unwrap()), vec![used.key_id.clone()]);
        // Enabled again: it works at once, and disuse counts from now.
        let gu = p.require(Permission::ApiKeyUpdate).unwrap();
        let back = lifecycle::enable(&Ctx::new(&core, &o), &gu, &never.key_id).await.unwrap();
        assert_eq!(back.status, "active");
        let v = keys::verify::lookup(&db, &core.keys, &never_secret).await.unwrap().unwrap();
        assert_eq!(v.refusal(core.clock.now()), None);
        let again = lifecycle::enable(&Ctx::new(&core, &o), &gu, &never.key_id).await;
        assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
        core.clock.advance(30 * day - 1);
        assert!(lifecycle::disable_unused(&core).await.unwrap().is_empty());
        core.clock.advance(1);
        assert_eq!(ids(lifecycle::disable_unused(&core).await.unwrap()), vec![never.key_id.clone()]);
        // Within the policy: with one active key allowed per user and app, a disabled
        // key is not enabled while another is active.
        lifecycle::enable(&Ctx::new(&core, &o), &gu, &used.key_id).await.unwrap();
        set_keys(&core, &p, model::settings::KeySettings { max_active_per_user_per_app: 1, disable_unused_days: 30, ..Default::default() }).await;
        let over = lifecycle::enable(&Ctx::new(&core, &o), &gu, &never.key_id).await;
        assert!(matches!(over, Err(AppError::Conflict(_))), "{over:?}");
        // Days below a week are refused: a weekly job's key must never be disabled.
        let short = model::settings::KeySettings { disable_unused_days: 3, ..Default::default() };
        assert!(app::core::settings::check_keys(short).is_err());
    })
    .await;
}

#[tokio::test]
async fn with_approval_required_a_new_key_waits_until_someone_else_approves_it() {
    on_both(|db| async move {
        use app::core::keys::{self, lifecycle, verified::Refusal};
        let t0 = 1_800_000_000;
        let (core, owner, app_id) = owner_with_app(&db, t0).await;
        let o = Origin::default();
        set_keys(&core, &owner, model::settings::KeySettings { require_approval: true, ..Default::default() }).await;
        let admin = principal(&db, user_with_role(&db, "admin@example.com", BuiltinRole::Admin.id()).await).await;
        let admin2 = principal(&db, user_with_role(&db, "admin2@example.com", BuiltinRole::Admin.id()).await).await;
        // Someone who may approve keys but not create them.
        let narrow = roles::create(
            &db,
            t0,
            &owner.require(Permission::RoleManage).unwrap(),
            &o,
            "key approver",
            &[Permission::ApiKeyView, Permission::ApiKeyApprove].into_iter().collect(),
        )
        .await
        .unwrap();
        let narrow = principal(&db, user_with_role(&db, "narrow@example.com", narrow).await).await;

        let dev = principal(&db, user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await).await;
        // Who is told that a key waits: every holder of api.key.approve, custom roles too.
        let told: Vec<String> = users::holders_of(&db, Permission::ApiKeyApprove, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(
            told,
            ["owner@example.com", "admin@example.com", "admin2@example.com", "narrow@example.com"]
        );
        let (info, secret) = new_key(&core, &dev, app_id, "needs approval", None).await;
        assert_eq!(info.status, "pending");
        let v = keys::verify::lookup(&db, &core.keys, &secret).await.unwrap().unwrap();
        assert_eq!(v.refusal(t0), Some(Refusal::Pending));
        let cx = Ctx::new(&core, &o);
        fn ga(p: &Principal) -> access::Grant<'_> {
            p.require(Permission::ApiKeyApprove).unwrap()
        }
        // Never by its owner, never by someone who could not give its role.
        let (own_key, _) = new_key(&core, &owner, app_id, "the owner's", None).await;
        let own = lifecycle::approve(&cx, &ga(&owner), &own_key.key_id).await;
        assert!(matches!(own, Err(AppError::Refused(_))), "{own:?}");
        let less = lifecycle::approve(&cx, &ga(&narrow), &info.key_id).await;
        assert!(matches!(less, Err(AppError::Refused(_))), "{less:?}");
        // The queue lists what its viewer may decide on: not their own keys, not keys
        // beyond them.
        assert_eq!(
            lifecycle::queue(&db, t0, &owner).await.unwrap().iter().map(|k| k.key_id.clone()).collect::<Vec<_>>(),
            vec![info.key_id.clone()]
        );
        assert!(lifecycle::queue(&db, t0, &narrow).await.unwrap().is_empty());
        assert_eq!(lifecycle::queue(&db, t0, &admin).await.unwrap().len(), 2);
        // An admin approves the Owner's key (approving harms nobody) but may not reject
        // it (a revocation of the key of someone holding more).
        let up = lifecycle::reject(&cx, &ga(&admin), &own_key.key_id, "no").await;
        assert!(matches!(up, Err(AppError::Refused(_))), "{up:?}");
        lifecycle::approve(&cx, &ga(&admin), &own_key.key_id).await.unwrap();
        // Rejection needs a reason.
        let bare = lifecycle::reject(&cx, &ga(&admin), &info.key_id, "  ").await;
        assert!(matches!(bare, Err(AppError::Validation { .. })), "{bare:?}");
        // Two admins at once, one approving and one rejecting: one decision holds.
        let (g1, g2) = (ga(&admin), ga(&admin2));
        let (a, b) = tokio::join!(
            lifecycle::approve(&cx, &g1, &info.key_id),
            lifecycle::reject(&cx, &g2, &info.key_id, "not needed")
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
        let k = keys::visible_key(&db, t0, &dev, &info.key_id).await.unwrap();
        let v = keys::verify::lookup(&db, &core.keys, &secret).await.unwrap().unwrap();
        if a.is_ok() {
            assert_eq!((k.status.as_str(), k.approved_by.as_deref()), ("active", Some("admin@example.com")));
            assert_eq!(v.refusal(t0), None, "it works once approved");
        } else {
            assert_eq!(k.status, "revoked");
            assert_eq!(k.revoke_reason.as_deref(), Some("Not approved: not needed"));
            assert_eq!(v.refusal(t0), Some(Refusal::Revoked));
        }
        let (decisions,): (i64,) = sqlx::query_as(
            "select count(*) from audit_events where action in ('api_key.approved', 'api_key.rejected') and target = $1",
        )
        .bind(&info.key_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(decisions, 1);
        let info = own_key;
        let twice = lifecycle::approve(&cx, &ga(&admin), &info.key_id).await;
        assert!(matches!(twice, Err(AppError::Conflict(_))), "{twice:?}");

        // An approved key's roll makes a replacement that works at once.
        let (second, _) = new_key(&core, &owner, app_id, "to roll", None).await;
        lifecycle::approve(&cx, &ga(&admin), &second.key_id).await.unwrap();
        let (rolled, _) = keys::roll(&cx, &owner.require(Permission::ApiKeyUpdate).unwrap(), &second.key_id, 3600)
            .await
            .unwrap();
        assert_eq!(rolled.status, "active");
        // A pending key cannot be rolled nor edited, only withdrawn.
        let (third, _) = new_key(&core, &owner, app_id, "third", None).await;
        let roll = keys::roll(&cx, &owner.require(Permission::ApiKeyUpdate).unwrap(), &third.key_id, 0).await;
        assert!(matches!(roll, Err(AppError::Conflict(_))), "{roll:?}");
        keys::revoke(&cx, &owner.require(Permission::ApiKeyDelete).unwrap(), &third.key_id, "withdrawn")
            .await
            .unwrap();
        assert!(lifecycle::queue(&db, t0, &admin).await.unwrap().is_empty());
        // Raising an approved key's role, or widening its allow-list, sends it back for
        // approval; a rename or a narrower list does not.
        let gu = owner.require(Permission::ApiKeyUpdate).unwrap();
        let nets = |t: &str| Some(keys::parse_networks("networks", t).unwrap());
        let change = |role_id, networks| keys::KeyChange {
            key_id: &rolled.key_id,
            name: Some("renamed"),
            role_id,
            networks,
        };
        let k = keys::update(&cx, &gu, &change(None, nets("10.0.0.0/8"))).await.unwrap();
        assert_eq!(k.status, "active", "any address → one range is narrower");
        let k = keys::update(&cx, &gu, &change(None, nets("10.0.0.0/8\n192.0.2.0/24"))).await.unwrap();
        assert_eq!(k.status, "pending", "a new range is wider");
        lifecycle::approve(&cx, &ga(&admin), &rolled.key_id).await.unwrap();
        let k = keys::update(&cx, &gu, &change(Some(BuiltinRole::Admin.id()), None)).await.unwrap();
        assert_eq!(k.status, "pending", "a role with more permissions");
        // Saved as it was: nothing written, nothing audited.
        let updates = |db: Db| async move {
            let (n,): (i64,) =
                sqlx::query_as("select count(*) from audit_events where action = 'api_key.updated'")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            n
        };
        lifecycle::approve(&cx, &ga(&admin), &rolled.key_id).await.unwrap();
        let before = updates(db.clone()).await;
        let same = keys::update(&cx, &gu, &change(None, None)).await.unwrap();
        assert_eq!((same.name.as_str(), same.status.as_str()), ("renamed", "active"));
        assert_eq!(updates(db.clone()).await, before, "a save without a change is not audited");
    })
    .await;
}

#[tokio::test]
async fn key_events_are_queued_with_their_change_only_for_subscribed_urls() {
    on_both(|db| async move {
        use app::core::messages::{events, webhooks};
        let t0 = 1_800_000_000;
        let (core, p, app_id) = owner_with_app(&db, t0).await;
        let o = Origin::default();
        let manage = p.require(Permission::AppManage).unwrap();
        let (a, b) = ("https://hooks.example.com/a", "https://hooks.example.com/b");
        for url in [a, b] {
            webhooks::register(&db, t0, core.master_key.expose(), &manage, &o, app_id, url)
                .await
                .unwrap();
        }
        let subscribe = |url: &'static str, evs: &[&str]| {
            let evs: Vec<String> = evs.iter().map(|e| (*e).to_owned()).collect();
            let (db, manage, o) = (db.clone(), manage, o.clone());
            async move { events::subscribe(&db, t0, &manage, &o, app_id, url, &evs).await }
        };
        assert_eq!(
            subscribe(a, &["key.revoked", "key.created", "key.created"]).await.unwrap(),
            vec!["key.revoked", "key.created"]
        );
        subscribe(b, &["key.revoked"]).await.unwrap();
        assert!(matches!(
            subscribe(a, &["key.deleted"]).await,
            Err(AppError::Validation { .. })
        ));
        assert!(matches!(
            subscribe("https://hooks.example.com/unknown", &[]).await,
            Err(AppError::NotFound)
        ));
        let queued = |db: Db| async move {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "select d.event, w.url, d.payload from event_deliveries d join webhook_endpoints w on w.id = d.webhook_id order by d.id",
            )
            .fetch_all(&db.pool)
            .await
            .unwrap();
            rows
        };
        let (info, secret) = new_key(&core, &p, app_id, "evented", None).await;
        let rows = queued(db.clone()).await;
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("key.created", a));
        assert!(rows[0].2.contains(&info.key_id) && !rows[0].2.contains(&secret));
        // A change that fails writes no event: revoking twice is one revocation.
        let gd = p.require(Permission::ApiKeyDelete).unwrap();
        let cx = Ctx::new(&core, &o);
        app::core::keys::revoke(&cx, &gd, &info.key_id, "done").await.unwrap();
        assert!(app::core::keys::revoke(&cx, &gd, &info.key_id, "again").await.is_err());
        let rows = queued(db.clone()).await;
        let revoked: Vec<_> = rows.iter().filter(|r| r.0 == "key.revoked").map(|r| r.1.as_str()).collect();
        assert_eq!(revoked, vec![a, b], "one event, to each subscribed URL");
        // The same event id for both URLs.
        let ids: Vec<(String,)> = sqlx::query_as(
            "select distinct event_id from event_deliveries where event = 'key.revoked'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(ids.len(), 1);
        // A removed URL is sent nothing more.
        webhooks::remove(&db, t0, &manage, &o, app_id, b).await.unwrap();
        let (other, _) = new_key(&core, &p, app_id, "second", None).await;
        app::core::keys::revoke(&cx, &gd, &other.key_id, "").await.unwrap();
        let rows = queued(db.clone()).await;
        assert_eq!(rows.iter().filter(|r| r.1 == b).count(), 1);
        assert_eq!(rows.iter().filter(|r| r.0 == "key.revoked" && r.1 == a).count(), 2);
        // Registered again, the URL starts with no events (its old ones went with it).
        webhooks::register(&db, t0, core.master_key.expose(), &manage, &o, app_id, b)
            .await
            .unwrap();
        let subs = events::subscriptions(&db).await.unwrap();
        assert!(subs.iter().all(|(_, url, _)| url == a), "{subs:?}");
    })
    .await;
}

async fn owner_with_app(db: &Db, now: i64) -> (Core, Principal, i64) {
    let core = core_at(db, now);
    let owner = user_with_role(db, "owner@example.com", BuiltinRole::Owner.id()).await;
    let p = principal(db, owner).await;
    let o = Origin::default();
    let app_id = app::core::keys::apps::create_app(
        &Ctx::new(&core, &o),
        &p.require(Permission::AppManage).unwrap(),
        &app_input("Billing"),
    )
    .await
    .unwrap();
    (core, p, app_id)
}

/// A live Developer key of `p`'s, expiring at `expires_at`: its info and secret.
async fn new_key(
    core: &Core,
    p: &Principal,
    app_id: i64,
    name: &str,
    expires_at: Option<i64>,
) -> (app::keys::KeyInfo, String) {
    let o = Origin::default();
    app::core::keys::create_key(
        &Ctx::new(core, &o),
        &p.require(Permission::ApiKeyCreate).unwrap(),
        &app::core::keys::NewKey {
            name,
            app_id,
            environment: app::core::keys::format::Environment::Live,
            role_id: BuiltinRole::Developer.id(),
            expires_at,
            networks: Vec::new(),
        },
    )
    .await
    .unwrap()
}
