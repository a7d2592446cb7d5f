//! SMS: sender numbers and their one key each, SMS messages (validation, delivery to the
//! development outbox, a retry going on from where it stopped), phone confirmation and
//! the SMS second factor.

use super::*;
use app::core::channels::numbers::{self, NewNumber};
use app::core::keys::format::Environment;
use app::core::messages::{self, delivery, Draft};

/// Services whose SMS and mail go to a temporary outbox (development, no gateway), an
/// Owner, and an app; returns them and the outbox folder.
async fn setup(db: &Db, now: i64) -> (Core, Principal, i64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox").display().to_string();
    let config = Config::from_sources(None, &[("KEYWARD_OUTBOX_DIR".into(), outbox)]).unwrap();
    let mailer =
        Arc::new(Mailer::new(None, "keyward@localhost", dir.path().join("outbox")).unwrap());
    let core = Core::build(
        config,
        db.clone(),
        Clock::fixed(now),
        Secret::new([7; 32]),
        |s| {
            s.mailer = mailer;
        },
    );
    let owner = principal(
        db,
        user_with_role(db, "owner@example.com", BuiltinRole::Owner.id()).await,
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
    (core, owner, app_id, dir)
}

fn number(app_id: i64, n: &str) -> NewNumber<'_> {
    NewNumber {
        app_id,
        number: n,
        environment: Environment::Live,
        networks: Vec::new(),
    }
}

/// The SMS in the outbox, oldest first, as JSON.
fn sms_in(dir: &tempfile::TempDir) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("-sms.json"))
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_sender_number_has_exactly_one_key_which_goes_when_the_number_goes() {
    on_both(|db| async move {
        let (core, owner, app_id, _dir) = setup(&db, 1_800_000_000).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        let g = owner.require(Permission::AppManage).unwrap();
        let (n, key, secret) = numbers::add(&cx, &g, &number(app_id, " +90 (555) 123-45-67 "))
            .await
            .unwrap();
        assert_eq!(n.number, "+905551234567");
        assert_eq!(n.key_id.as_deref(), Some(key.key_id.as_str()));
        assert_eq!(
            (key.channel.as_deref(), key.sender.as_deref()),
            (Some("sms"), Some("+905551234567"))
        );
        assert!(secret.starts_with("kw_live_"));
        // The same number again, in any spelling or for another app: refused.
        let again = numbers::add(&cx, &g, &number(app_id, "+905551234567")).await;
        assert!(
            matches!(&again, Err(AppError::Validation { field, .. }) if field == "number"),
            "{again:?}"
        );
        for bad in ["05551234567", "+1", "+90555", "+9055512345678901"] {
            let r = numbers::add(&cx, &g, &number(app_id, bad)).await;
            assert!(
                matches!(r, Err(AppError::Validation { .. })),
                "{bad}: {r:?}"
            );
        }
        // One key per number: a second one is refused while the first is active.
        let second = numbers::new_key(&cx, &g, n.id, Environment::Live, Vec::new()).await;
        assert!(matches!(second, Err(AppError::Conflict(_))), "{second:?}");
        // SMS keys are not made by hand.
        let by_hand = app::core::channels::create(
            &cx,
            &owner.require(Permission::ApiKeyView).unwrap(),
            &app::core::channels::NewChannelKey {
                channel: "sms",
                name: "x",
                app_id,
                environment: Environment::Live,
                expires_at: None,
                networks: Vec::new(),
                events: Vec::new(),
            },
        )
        .await;
        assert!(matches!(by_hand, Err(AppError::Refused(_))), "{by_hand:?}");
        // Removing the number revokes its key in the same transaction, audited.
        numbers::remove(&cx, &g, n.id).await.unwrap();
        let (revoked,): (Option<i64>,) =
            sqlx::query_as("select revoked_at from api_keys where key_id = $1")
                .bind(&key.key_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(revoked.is_some());
        assert!(numbers::list(&db, 1_800_000_000, &owner)
            .await
            .unwrap()
            .is_empty());
        // Taking Settings > General's lock did not save them: unsaved settings keep
        // following the configuration.
        let (saved,): (i64,) =
            sqlx::query_as("select count(*) from settings where name = 'security'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(saved, 0);
        let acts = actions(&db).await;
        assert!(acts.contains(&"sender_number.added".to_owned()));
        assert!(acts.contains(&"sender_number.removed".to_owned()));
        let gone = numbers::new_key(&cx, &g, n.id, Environment::Live, Vec::new()).await;
        assert!(matches!(gone, Err(AppError::NotFound)), "{gone:?}");
        // A new key for a number and its removal at the same moment: never an active key
        // left for a number that is gone.
        for round in 0..4 {
            let text = format!("+4479111234{round:02}");
            let (n, key, _) = numbers::add(&cx, &g, &number(app_id, &text)).await.unwrap();
            app::core::channels::revoke(
                &cx,
                &owner.require(Permission::ApiKeyView).unwrap(),
                &key.key_id,
                "",
            )
            .await
            .unwrap();
            let (made, removed) = tokio::join!(
                numbers::new_key(&cx, &g, n.id, Environment::Live, Vec::new()),
                numbers::remove(&cx, &g, n.id),
            );
            assert!(removed.is_ok(), "{removed:?}");
            assert!(
                made.is_ok() || matches!(made, Err(AppError::NotFound)),
                "{made:?}"
            );
            let (orphans,): (i64,) = sqlx::query_as(
                "select count(*) from api_keys where channel = 'sms' and revoked_at is null \
                 and sender not in (select number from sender_numbers)",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert_eq!(orphans, 0, "round {round}");
        }
        // Regenerated with a grace period: the number names its new key (the old one
        // works on until then), and a second key for it waits for the old one to end.
        {
            let (n, key, _) = numbers::add(&cx, &g, &number(app_id, "+447911123599"))
                .await
                .unwrap();
            let view = owner.require(Permission::ApiKeyView).unwrap();
            let (fresh, _) = app::core::channels::regenerate(&cx, &view, &key.key_id, 3600)
                .await
                .unwrap();
            let listed = numbers::list(&db, 1_800_000_000, &owner).await.unwrap();
            let listed = listed.iter().find(|l| l.id == n.id).unwrap();
            assert_eq!(listed.key_id.as_deref(), Some(fresh.key_id.as_str()));
            app::core::channels::revoke(&cx, &view, &fresh.key_id, "wrong one")
                .await
                .unwrap();
            let listed = numbers::list(&db, 1_800_000_000, &owner).await.unwrap();
            let listed = listed.iter().find(|l| l.id == n.id).unwrap();
            assert_eq!(
                listed.key_id, None,
                "a replaced key is not the number's key"
            );
            numbers::remove(&cx, &g, n.id).await.unwrap();
        }
        // Regenerating a number's key as the number is removed: the same.
        for round in 0..4 {
            let text = format!("+4479111235{round:02}");
            let (n, key, _) = numbers::add(&cx, &g, &number(app_id, &text)).await.unwrap();
            let view = owner.require(Permission::ApiKeyView).unwrap();
            let (made, removed) = tokio::join!(
                app::core::channels::regenerate(&cx, &view, &key.key_id, 0),
                numbers::remove(&cx, &g, n.id),
            );
            assert!(removed.is_ok(), "{removed:?}");
            assert!(
                made.is_ok() || matches!(made, Err(AppError::NotFound | AppError::Conflict(_))),
                "{made:?}"
            );
            let (orphans,): (i64,) = sqlx::query_as(
                "select count(*) from api_keys where channel = 'sms' and revoked_at is null \
                 and sender not in (select number from sender_numbers)",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert_eq!(orphans, 0, "regenerate round {round}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_number_whose_key_expired_has_no_key_and_can_be_given_a_new_one() {
    on_both(|db| async move {
        let now = 1_800_000_000;
        let (core, owner, app_id, _dir) = setup(&db, now).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        let g = owner.require(Permission::AppManage).unwrap();
        let (n, key, _) = numbers::add(&cx, &g, &number(app_id, "+905551230000"))
            .await
            .unwrap();
        // The key reaches its expiry (a policy's maximum) without being revoked.
        sqlx::query("update api_keys set expires_at = $2 where key_id = $1")
            .bind(&key.key_id)
            .bind(now - 1)
            .execute(&db.pool)
            .await
            .unwrap();
        let listed = numbers::list(&db, now, &owner).await.unwrap();
        assert_eq!(
            listed[0].key_id, None,
            "an expired key is not the number's key"
        );
        // Before its expiry, the same row still names it.
        let earlier = numbers::list(&db, now - 2, &owner).await.unwrap();
        assert_eq!(earlier[0].key_id.as_deref(), Some(key.key_id.as_str()));
        // "Make its key" makes another, which the number then names.
        let (fresh, _) = numbers::new_key(&cx, &g, n.id, Environment::Live, Vec::new())
            .await
            .unwrap();
        let listed = numbers::list(&db, now, &owner).await.unwrap();
        assert_eq!(listed[0].key_id.as_deref(), Some(fresh.key_id.as_str()));
    })
    .await;
}

fn sms<'a>(app_id: i64, from: &'a str, to: &'a str) -> Draft<'a> {
    Draft {
        app_id,
        channel: "sms",
        recipients: to,
        webhook_url: "",
        sender: from,
        subject: "",
        body: "Your parcel arrives today.",
    }
}

#[tokio::test]
async fn an_sms_goes_from_one_of_its_apps_numbers_to_each_recipient_once() {
    on_both(|db| async move {
        let (core, owner, app_id, dir) = setup(&db, 1_800_000_000).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        numbers::add(
            &cx,
            &owner.require(Permission::AppManage).unwrap(),
            &number(app_id, "+905551234567"),
        )
        .await
        .unwrap();
        let g = owner.require(Permission::MessageCreate).unwrap();
        // From a number that is not the app's; to something that is not a number.
        let r =
            messages::create(&core, &g, &o, &sms(app_id, "+14155552671", "+905559876543")).await;
        assert!(
            matches!(&r, Err(AppError::Validation { field, .. }) if field == "from"),
            "{r:?}"
        );
        let r = messages::create(
            &core,
            &g,
            &o,
            &sms(app_id, "+905551234567", "+90555, hello"),
        )
        .await;
        assert!(
            matches!(&r, Err(AppError::Validation { field, .. }) if field == "recipients"),
            "{r:?}"
        );
        let long = "x".repeat(messages::MAX_SMS_CHARS + 1);
        let mut too_long = sms(app_id, "+905551234567", "+905559876543");
        too_long.body = &long;
        let r = messages::create(&core, &g, &o, &too_long).await;
        assert!(
            matches!(&r, Err(AppError::Validation { field, .. }) if field == "body"),
            "{r:?}"
        );
        // Approval is on by default: an approver (not the author) approves it.
        let m = messages::create(
            &core,
            &g,
            &o,
            &sms(
                app_id,
                "+905551234567",
                "+905559876543\n+14155552671\n+90 555 987 65 43",
            ),
        )
        .await
        .unwrap();
        assert_eq!(m.status, "pending_approval");
        assert_eq!(m.recipients, ["+905559876543", "+14155552671"]);
        assert_eq!(m.sender.as_deref(), Some("+905551234567"));
        let approver = principal(
            &db,
            user_with_role(&db, "approver@example.com", BuiltinRole::Approver.id()).await,
        )
        .await;
        let m = messages::approve(
            &core,
            &approver.require(Permission::MessageApprove).unwrap(),
            &o,
            &m.id,
            &m.payload_hash,
        )
        .await
        .unwrap();
        assert_eq!(m.status, "queued");
        assert_eq!(delivery::run_once(&core).await.unwrap(), 1);
        assert_eq!(status_of(&db, &m.id).await.0, "sent");
        let sent = sms_in(&dir);
        assert_eq!(sent.len(), 2, "{sent:?}");
        for (i, (s, to)) in sent
            .iter()
            .zip(["+905559876543", "+14155552671"])
            .enumerate()
        {
            assert_eq!(s["id"], format!("{}-{}", m.id, i + 1));
            assert_eq!(
                (s["to"].as_str(), s["from"].as_str()),
                (Some(to), Some("+905551234567"))
            );
            assert_eq!(s["body"], "Your parcel arrives today.");
        }
        assert_eq!(delivery::run_once(&core).await.unwrap(), 0, "sent once");
    })
    .await;
}

#[tokio::test]
async fn an_sms_retry_sends_only_to_the_recipients_not_reached_yet() {
    on_both(|db| async move {
        let (core, owner, app_id, dir) = setup(&db, 1_800_000_000).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        numbers::add(
            &cx,
            &owner.require(Permission::AppManage).unwrap(),
            &number(app_id, "+905551234567"),
        )
        .await
        .unwrap();
        sqlx::query("insert into settings (name, value, created_at, updated_at) values ('messages', '{\"approval_required\":false}', 0, 0)")
            .execute(&db.pool)
            .await
            .unwrap();
        let m = messages::create(
            &core,
            &owner.require(Permission::MessageCreate).unwrap(),
            &o,
            &sms(app_id, "+905551234567", "+905559876543, +14155552671, +447911123456"),
        )
        .await
        .unwrap();
        assert_eq!(m.status, "queued");
        // An earlier attempt reached the first recipient, then its worker died.
        sqlx::query("update messages set delivered = 1 where message_id = $1")
            .bind(&m.id)
            .execute(&db.pool)
            .await
            .unwrap();
        delivery::run_once(&core).await.unwrap();
        let sent: Vec<String> = sms_in(&dir)
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(sent, [format!("{}-2", m.id), format!("{}-3", m.id)]);
        let (delivered,): (i64,) = sqlx::query_as("select delivered from messages where message_id = $1")
            .bind(&m.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(delivered, 3);
        // A number removed before its SMS went: the message fails, nothing is sent.
        let n = numbers::list(&db, 1_800_000_000, &owner).await.unwrap();
        let m2 = messages::create(
            &core,
            &owner.require(Permission::MessageCreate).unwrap(),
            &o,
            &sms(app_id, "+905551234567", "+905559876543"),
        )
        .await
        .unwrap();
        numbers::remove(&cx, &owner.require(Permission::AppManage).unwrap(), n[0].id)
            .await
            .unwrap();
        delivery::run_once(&core).await.unwrap();
        assert_eq!(status_of(&db, &m2.id).await.0, "failed");
        assert_eq!(sms_in(&dir).len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_phone_is_confirmed_by_the_code_sent_to_it_and_then_offered_as_a_second_factor() {
    on_both(|db| async move {
        let (core, owner, app_id, dir) = setup(&db, 1_800_000_000).await;
        let o = Origin::default();
        let cx = Ctx::new(&core, &o);
        numbers::add(
            &cx,
            &owner.require(Permission::AppManage).unwrap(),
            &number(app_id, "+14155552671"),
        )
        .await
        .unwrap();
        use app::core::identity::{phone, sign_in};
        let uid = owner.user_id();
        // SMS codes off (the default): no code is sent.
        let off = phone::start(&cx, uid, "owner@example.com", "+447911123456").await;
        assert!(matches!(off, Err(AppError::Refused(_))), "{off:?}");
        let settings = SecuritySettings {
            second_factor_required: true,
            accept_sms_code: true,
            sms_code_from: "+14155552671".into(),
            ..Default::default()
        };
        app::core::settings::save_security(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &settings,
        )
        .await
        .unwrap();
        let stored = phone::start(&cx, uid, "owner@example.com", "+44 7911 123456")
            .await
            .unwrap();
        assert_eq!(stored, "+447911123456");
        let sent = sms_in(&dir);
        let text = sent.last().unwrap()["body"].as_str().unwrap().to_owned();
        let code: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
        assert_eq!(sent.last().unwrap()["from"], "+14155552671");
        // The code confirms that number only.
        let other = phone::confirm(&cx, uid, "owner@example.com", "+905551234567", &code).await;
        assert!(
            matches!(other, Err(AppError::Validation { .. })),
            "{other:?}"
        );
        phone::confirm(&cx, uid, "owner@example.com", "+447911123456", &code)
            .await
            .unwrap();
        assert_eq!(
            phone::confirmed(&db, uid).await.unwrap().as_deref(),
            Some("+447911123456")
        );
        // Used once.
        let twice = phone::confirm(&cx, uid, "owner@example.com", "+447911123456", &code).await;
        assert!(twice.is_err());
        let f = sign_in::factors_of(&cx, &settings, uid).await.unwrap();
        assert_eq!(
            f,
            [app::auth::SecondFactor::Sms, app::auth::SecondFactor::Email]
        );
        // Email codes not accepted: SMS only.
        let sms_only = SecuritySettings {
            accept_email_code: false,
            ..settings.clone()
        };
        app::core::settings::save_security(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &sms_only,
        )
        .await
        .unwrap();
        let f = sign_in::factors_of(&cx, &sms_only, uid).await.unwrap();
        assert_eq!(f, [app::auth::SecondFactor::Sms]);
        // Required, SMS only: the phone is the owner's last factor, so it stays; and the
        // owner could not save rules that shut themselves out.
        let required_sms_only = sms_only.clone();
        assert!(required_sms_only.second_factor_required);
        app::core::settings::save_security(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &required_sms_only,
        )
        .await
        .unwrap();
        let last = phone::remove(&cx, uid, "owner@example.com").await;
        assert!(matches!(last, Err(AppError::Conflict(_))), "{last:?}");
        let other_domain = SecuritySettings {
            allowed_domains: vec!["other.example".into()],
            ..required_sms_only.clone()
        };
        let blocked = sign_in::save_security_settings(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &other_domain,
        )
        .await;
        assert!(
            matches!(&blocked, Err(AppError::Validation { field, .. }) if field == "allowed_domains"),
            "{blocked:?}"
        );
        // With email codes accepted again, the phone may go.
        app::core::settings::save_security(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &SecuritySettings {
                accept_email_code: true,
                ..sms_only.clone()
            },
        )
        .await
        .unwrap();
        phone::remove(&cx, uid, "owner@example.com").await.unwrap();
        assert!(sign_in::factors_of(&cx, &sms_only, uid)
            .await
            .unwrap()
            .is_empty());
        // An admin's reset of a user's second factors takes their phone too.
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        sqlx::query(
            "update users set phone = '+447911123499', phone_confirmed_at = 1 where id = $1",
        )
        .bind(dev)
        .execute(&db.pool)
        .await
        .unwrap();
        totp::reset(&cx, &owner.require(Permission::UserManage).unwrap(), dev)
            .await
            .unwrap();
        assert!(phone::confirmed(&db, dev).await.unwrap().is_none());
        // The number codes come from cannot be removed while it sends them.
        let n = numbers::list(&db, 1_800_000_000, &owner).await.unwrap();
        let busy =
            numbers::remove(&cx, &owner.require(Permission::AppManage).unwrap(), n[0].id).await;
        assert!(matches!(busy, Err(AppError::Conflict(_))), "{busy:?}");
        let off = SecuritySettings {
            accept_sms_code: false,
            ..sms_only.clone()
        };
        app::core::settings::save_security(
            &cx,
            &owner.require(Permission::SettingsManage).unwrap(),
            &SecuritySettings {
                accept_email_code: true,
                ..off
            },
        )
        .await
        .unwrap();
        // Once SMS codes are off it can go, and with it the codes' sender.
        // (Turned on again first, to see the sender go with the number.)
        let on_again = SecuritySettings {
            accept_email_code: true,
            ..sms_only.clone()
        };
        // The number codes come from, removed: SMS codes stop (none sent from it).
        assert!(phone::code_sender(&cx).await.unwrap().is_none());
        assert!(phone::code_sender_under(&cx, &on_again)
            .await
            .unwrap()
            .is_some());
        numbers::remove(&cx, &owner.require(Permission::AppManage).unwrap(), n[0].id)
            .await
            .unwrap();
        assert!(phone::code_sender_under(&cx, &on_again)
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn the_messages_table_rebuild_keeps_foreign_keys_enforced() {
    on_both(|db| async move {
        // An approval of a message that does not exist is refused (SQLite rebuilt the
        // messages table with foreign keys off; they are on again and still point at it).
        let bad = sqlx::query(
            "insert into message_approvals (message_id, approver_id, payload_hash, decision, reason, created_at, updated_at) \
             values (999999, 999999, 'x', 'approved', '', 0, 0)",
        )
        .execute(&db.pool)
        .await;
        assert!(bad.is_err());
    })
    .await;
}
