//! Channel keys under their policies: who creates them, how many, reveal, regenerate.

use super::*;
use app::core::channels::{self, NewChannelKey};
use app::core::keys::format::Environment;

async fn setup(db: &Db, now: i64) -> (Core, Principal, Principal, i64) {
    let core = core_at(db, now);
    let owner = principal(
        db,
        user_with_role(db, "owner@example.com", BuiltinRole::Owner.id()).await,
    )
    .await;
    let dev = principal(
        db,
        user_with_role(db, "dev@example.com", BuiltinRole::Developer.id()).await,
    )
    .await;
    let o = Origin::default();
    let app_id = app::core::keys::apps::create_app(
        &Ctx::new(&core, &o),
        &owner.require(Permission::AppManage).unwrap(),
        &app_input("Billing"),
    )
    .await
    .unwrap();
    (core, owner, dev, app_id)
}

fn new<'a>(channel: &'a str, name: &'a str, app_id: i64) -> NewChannelKey<'a> {
    NewChannelKey {
        channel,
        name,
        app_id,
        environment: Environment::Live,
        expires_at: None,
        networks: Vec::new(),
        events: vec!["send".into()],
    }
}

#[tokio::test]
async fn whatsapp_keys_are_for_channel_managers_and_at_most_three_even_at_once() {
    on_both(|db| async move {
        let now = 1_800_000_000;
        let (core, owner, dev, app_id) = setup(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        fn g(p: &Principal) -> access::Grant<'_> {
            p.require(Permission::ApiKeyView).unwrap()
        }
        // A Developer holds no channel.key.manage.
        let refused = channels::create(&cx, &g(&dev), &new("whatsapp", "wa", app_id)).await;
        assert!(matches!(refused, Err(AppError::Refused(_))), "{refused:?}");
        // Four at once: three are made.
        let go = g(&owner);
        let ks = [
            new("whatsapp", "a", app_id),
            new("whatsapp", "b", app_id),
            new("whatsapp", "c", app_id),
            new("whatsapp", "d", app_id),
        ];
        let (a, b, c, d) = tokio::join!(
            channels::create(&cx, &go, &ks[0]),
            channels::create(&cx, &go, &ks[1]),
            channels::create(&cx, &go, &ks[2]),
            channels::create(&cx, &go, &ks[3]),
        );
        let made = [&a, &b, &c, &d].iter().filter(|r| r.is_ok()).count();
        assert_eq!(made, 3, "{a:?} {b:?} {c:?} {d:?}");
        let over = [a, b, c, d].into_iter().find(Result::is_err).unwrap();
        assert!(matches!(over, Err(AppError::Conflict(_))), "{over:?}");
        // The Developer may make email keys (api.key.create), many.
        let (k, secret) = channels::create(&cx, &g(&dev), &new("email", "mail", app_id))
            .await
            .unwrap();
        assert_eq!(
            (k.kind.as_str(), k.channel.as_deref()),
            ("channel", Some("email"))
        );
        assert_eq!(k.key_events, vec!["send"]);
        // Verified as a channel key: it may send email, nothing else.
        let v = app::core::keys::verify::lookup(&db, &core.keys, &secret)
            .await
            .unwrap()
            .unwrap();
        assert!(v.channel_allows("send", Some("email")));
        assert!(!v.channel_allows("send", Some("webhook")));
        assert!(!v.channel_allows("status", None));
        assert!(v.principal().unwrap().has(Permission::MessageCreate));
        assert!(!v.principal().unwrap().has(Permission::ApiKeyView));
        // Shown once: no reveal.
        let shown = channels::reveal(&cx, &g(&dev), &k.key_id).await;
        assert!(matches!(shown, Err(AppError::Refused(_))), "{shown:?}");
        // Demoted to Viewer (no api.key.create): the key yields nothing new to its owner
        // (no regenerate), but they may still revoke it.
        sqlx::query("update users set role_id = $2 where id = $1")
            .bind(dev.user_id())
            .bind(BuiltinRole::Viewer.id())
            .execute(&db.pool)
            .await
            .unwrap();
        let viewer = principal(&db, dev.user_id()).await;
        let regen = channels::regenerate(&cx, &g(&viewer), &k.key_id, 0).await;
        assert!(matches!(regen, Err(AppError::Refused(_))), "{regen:?}");
        channels::revoke(&cx, &g(&viewer), &k.key_id, "no longer mine")
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_revealable_key_opens_to_its_owner_and_managers_and_rcs_is_never_regenerated() {
    on_both(|db| async move {
        let now = 1_800_000_000;
        let (core, owner, dev, app_id) = setup(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        fn g(p: &Principal) -> access::Grant<'_> {
            p.require(Permission::ApiKeyView).unwrap()
        }
        let (rcs, secret) = channels::create(&cx, &g(&owner), &new("rcs", "rcs", app_id)).await.unwrap();
        assert_eq!(rcs.key_events, vec!["send", "status"]);
        // Exactly one for the deployment.
        let second = channels::create(&cx, &g(&owner), &new("rcs", "again", app_id)).await;
        assert!(matches!(second, Err(AppError::Conflict(_))), "{second:?}");
        // Sealed, not stored in the clear; opened for its owner, audited.
        let (sealed,): (Option<String>,) =
            sqlx::query_as("select secret_sealed from api_keys where key_id = $1")
                .bind(&rcs.key_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(sealed.is_some_and(|s| !s.contains(&secret[8..])));
        assert_eq!(channels::reveal(&cx, &g(&owner), &rcs.key_id).await.unwrap(), secret);
        let (audited,): (i64,) = sqlx::query_as(
            "select count(*) from audit_events where action = 'channel_key.revealed' and target = $1",
        )
        .bind(&rcs.key_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(audited, 1);
        // Someone else's key, without channel.key.manage: as if it did not exist.
        let theirs = channels::reveal(&cx, &g(&dev), &rcs.key_id).await;
        assert!(matches!(theirs, Err(AppError::NotFound)), "{theirs:?}");
        // A sealed secret opens only for its own key id.
        let (other, _) = channels::create(&cx, &g(&owner), &new("whatsapp", "wa", app_id)).await.unwrap();
        sqlx::query("update api_keys set secret_sealed = (select secret_sealed from api_keys where key_id = $1) where key_id = $2")
            .bind(&rcs.key_id)
            .bind(&other.key_id)
            .execute(&db.pool)
            .await
            .unwrap();
        assert!(channels::reveal(&cx, &g(&owner), &other.key_id).await.is_err());
        // RCS: never regenerated; WhatsApp: regenerated, the old key stops.
        let regen = channels::regenerate(&cx, &g(&owner), &rcs.key_id, 0).await;
        assert!(matches!(regen, Err(AppError::Refused(_))), "{regen:?}");
        let (wa, wa_secret) = channels::create(&cx, &g(&owner), &new("whatsapp", "wa2", app_id)).await.unwrap();
        let (fresh, fresh_secret) = channels::regenerate(&cx, &g(&owner), &wa.key_id, 0).await.unwrap();
        assert_ne!(fresh_secret, wa_secret);
        assert_eq!(fresh.channel.as_deref(), Some("whatsapp"));
        let old = app::core::keys::verify::lookup(&db, &core.keys, &wa_secret).await.unwrap().unwrap();
        assert!(old.refusal(now).is_some(), "the regenerated key stops at once");
        // With a grace period the old key works until then (never past its own
        // expiry), is not revealed again and is replaced once.
        let (wa3, wa3_secret) = channels::create(&cx, &g(&owner), &new("whatsapp", "wa3", app_id)).await.unwrap();
        let (_, _) = channels::regenerate(&cx, &g(&owner), &wa3.key_id, 3600).await.unwrap();
        let kept = app::core::keys::verify::lookup(&db, &core.keys, &wa3_secret).await.unwrap().unwrap();
        assert!(kept.refusal(now).is_none(), "works during its grace period");
        assert!(kept.refusal(now + 3601).is_some(), "and not after it");
        let (sealed,): (Option<String>,) = sqlx::query_as("select secret_sealed from api_keys where key_id = $1")
            .bind(&wa3.key_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(sealed, None);
        for again in [
            channels::regenerate(&cx, &g(&owner), &wa3.key_id, 0).await.map(|_| ()),
            channels::reveal(&cx, &g(&owner), &wa3.key_id).await.map(|_| ()),
        ] {
            assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
        }
        assert!(matches!(
            channels::regenerate(&cx, &g(&owner), &wa3.key_id, 8 * 86_400).await,
            Err(AppError::Validation { .. })
        ));
        channels::revoke(&cx, &g(&owner), &wa3.key_id, "early").await.unwrap();
        // A key acts in its owner's name: a manager (channel.key.manage) neither reveals
        // nor regenerates someone else's key, and revokes it only when holding every
        // permission its owner holds (an Owner's key only as an Owner).
        let admin = principal(&db, user_with_role(&db, "admin@example.com", BuiltinRole::Admin.id()).await).await;
        let (mail, _) = channels::create(&cx, &g(&dev), &new("email", "mail", app_id)).await.unwrap();
        let (owners, _) = channels::create(&cx, &g(&owner), &new("email", "owner's", app_id)).await.unwrap();
        for key in [&mail.key_id, &owners.key_id] {
            let regen = channels::regenerate(&cx, &g(&admin), key, 0).await;
            assert!(matches!(regen, Err(AppError::Refused(_))), "{regen:?}");
            let reveal = channels::reveal(&cx, &g(&admin), key).await;
            assert!(matches!(reveal, Err(AppError::Refused(_))), "{reveal:?}");
        }
        let over = channels::revoke(&cx, &g(&admin), &owners.key_id, "takeover").await;
        assert!(matches!(over, Err(AppError::Refused(_))), "{over:?}");
        channels::revoke(&cx, &g(&admin), &mail.key_id, "left the team").await.unwrap();
        channels::revoke(&cx, &g(&owner), &owners.key_id, "done").await.unwrap();
        // A revoked or regenerated key keeps no sealed secret.
        let (gone,): (i64,) = sqlx::query_as(
            "select count(*) from api_keys where revoked_at is not null and secret_sealed is not null",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(gone, 0);
        // Settings > Channels: a policy out of range is refused.
        let bad = model::settings::ChannelPolicy {
            per: "planet".into(),
            ..Default::default()
        };
        assert!(app::core::settings::check_channel("email", bad).is_err());
        // SMS keys stay one per number whatever the form says.
        let many = model::settings::ChannelPolicy {
            max_active: 5,
            ..model::settings::ChannelSettings::sms_preset()
        };
        assert!(app::core::settings::check_channel("sms", many).is_err());
    })
    .await;
}

#[tokio::test]
async fn channels_list_a_few_keys_each_and_one_channel_a_page_at_a_time() {
    on_both(|db| async move {
        let now = 1_800_000_000;
        let (core, owner, dev, app_id) = setup(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        fn g(p: &Principal) -> access::Grant<'_> {
            p.require(Permission::ApiKeyView).unwrap()
        }
        // 55 email keys of the Owner's (at most 10 active at once: all but the last
        // five are revoked to make room; a listing shows every status) and one of the
        // Developer's.
        let mut made = Vec::new();
        for i in 0..55 {
            let name = format!("mail-{i:02}");
            let (k, _) = channels::create(&cx, &g(&owner), &new("email", &name, app_id))
                .await
                .unwrap();
            if i < 50 {
                channels::revoke(&cx, &g(&owner), &k.key_id, "room")
                    .await
                    .unwrap();
            }
            made.push(k.key_id);
        }
        let (dev_key, _) = channels::create(&cx, &g(&dev), &new("email", "dev-mail", app_id))
            .await
            .unwrap();
        let ids = |v: &channels::ChannelView| -> Vec<String> {
            v.keys.iter().map(|k| k.key_id.clone()).collect()
        };
        // Every channel: the newest few keys of each, and a sign there are more.
        let all = channels::list(&db, now, &owner, &channels::ChannelQuery::default())
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|v| v.channel).collect::<Vec<_>>(),
            channels::CHANNELS
        );
        let email = &all[0];
        let mut newest: Vec<String> = made.iter().rev().cloned().collect();
        newest.insert(0, dev_key.key_id.clone());
        assert_eq!(ids(email), newest[..channels::PREVIEW_KEYS as usize]);
        assert!(email.next.is_some());
        assert!(all[1..]
            .iter()
            .all(|v| v.keys.is_empty() && v.next.is_none()));
        // One channel: 50 a page, then the rest after the last one shown.
        fn one<'a>(after: Option<&'a str>, q: Option<&'a str>) -> channels::ChannelQuery<'a> {
            channels::ChannelQuery {
                channel: Some("email"),
                q,
                after,
            }
        }
        let first = channels::list(&db, now, &owner, &one(None, None))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(ids(&first[0]), newest[..50]);
        let cursor = first[0].next.clone().unwrap();
        let cursor = cursor.as_str();
        assert_eq!(cursor, newest[49]);
        let second = channels::list(&db, now, &owner, &one(Some(cursor), None))
            .await
            .unwrap();
        assert_eq!(ids(&second[0]), newest[50..]);
        assert_eq!(second[0].next, None);
        // A search by name, by key ID, by owner's email.
        let by_name = channels::list(&db, now, &owner, &one(None, Some("MAIL-0")))
            .await
            .unwrap();
        assert_eq!(by_name[0].keys.len(), 10);
        let by_owner = channels::list(&db, now, &owner, &one(None, Some("dev@")))
            .await
            .unwrap();
        assert_eq!(ids(&by_owner[0]), vec![dev_key.key_id.clone()]);
        // A Developer (no api.key.view_all, no channel.key.manage) sees their own only.
        let theirs = channels::list(&db, now, &dev, &channels::ChannelQuery::default())
            .await
            .unwrap();
        assert_eq!(ids(&theirs[0]), vec![dev_key.key_id.clone()]);
        let searched = channels::list(&db, now, &dev, &one(None, Some("mail-")))
            .await
            .unwrap();
        assert!(searched[0].keys.is_empty());
        // A channel that does not exist, a page without its channel, a bad cursor.
        for bad in [
            channels::ChannelQuery {
                channel: Some("fax"),
                ..Default::default()
            },
            channels::ChannelQuery {
                after: Some(cursor),
                ..Default::default()
            },
            one(Some("key_nope"), None),
        ] {
            let r = channels::list(&db, now, &owner, &bad).await;
            assert!(matches!(r, Err(AppError::Validation { .. })), "{r:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn with_key_approval_on_a_new_channel_key_waits_for_someone_else() {
    on_both(|db| async move {
        use app::core::keys::{lifecycle, verified::Refusal};
        let now = 1_800_000_000;
        let (core, owner, dev, app_id) = setup(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        let mut k = app::core::settings::keys(&db).await.unwrap();
        k.require_approval = true;
        app::core::settings::save_keys(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &k,
        )
        .await
        .unwrap();
        // A Developer's email key is written pending and refused until approved.
        let (key, secret) = channels::create(
            &cx,
            &dev.require(Permission::ApiKeyView).unwrap(),
            &new("email", "mail", app_id),
        )
        .await
        .unwrap();
        assert_eq!(key.status, "pending");
        let v = app::core::keys::verify::lookup(&db, &core.keys, &secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.refusal(now), Some(Refusal::Pending));
        // Listed for the Owner, who holds message.create, what the key would do; never
        // approved by its own owner.
        assert_eq!(
            lifecycle::queue(&db, now, &owner)
                .await
                .unwrap()
                .iter()
                .map(|k| k.key_id.clone())
                .collect::<Vec<_>>(),
            vec![key.key_id.clone()]
        );
        let own = lifecycle::approve(
            &cx,
            &dev.require(Permission::ApiKeyView).unwrap(),
            &key.key_id,
        )
        .await;
        assert!(own.is_err(), "{own:?}");
        let approved = lifecycle::approve(
            &cx,
            &owner.require(Permission::ApiKeyApprove).unwrap(),
            &key.key_id,
        )
        .await
        .unwrap();
        assert_eq!(approved.status, "active");
        core.keys.bump();
        let v = app::core::keys::verify::lookup(&db, &core.keys, &secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.refusal(now), None);
        // Its regeneration does not wait: the key it replaces was approved.
        let (fresh, _) = channels::regenerate(
            &cx,
            &dev.require(Permission::ApiKeyView).unwrap(),
            &key.key_id,
            0,
        )
        .await
        .unwrap();
        assert_eq!(fresh.status, "active");
    })
    .await;
}
