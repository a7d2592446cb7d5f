//! Messages, approvals and delivery.

use super::*;

#[tokio::test]
async fn parallel_approvals_queue_a_message_once_and_one_worker_claims_it() {
    on_both(|db| async move {
        use app::core::{messages, messages::delivery};
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
            &Ctx::new(&st, &o),
            &owner.require(Permission::SettingsManage).unwrap(),
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
        let revision = |subject, body| messages::Revision {
            recipients: "customer@example.net",
            webhook_url: "",
            sender: "",
            subject,
            body,
        };
        let fixed = revision("Invoice (fixed)", "Your invoice is ready.");
        let edited = messages::edit(&st, &ga, &o, &m.id, &fixed).await.unwrap();
        assert_ne!(edited.payload_hash, m.payload_hash);
        assert_eq!(edited.approvals, 0);
        assert!(matches!(
            messages::approve(&st, &gc, &o, &m.id, &m.payload_hash).await,
            Err(AppError::Conflict(_))
        ));
        // Edited back to the text B approved: B's approval stays void.
        let original = revision("Invoice", "Your invoice is ready.");
        let back = messages::edit(&st, &ga, &o, &m.id, &original)
            .await
            .unwrap();
        assert_eq!(back.payload_hash, m.payload_hash);
        assert_eq!(back.approvals, 0, "a voided approval does not come back");
        let edited = messages::edit(&st, &ga, &o, &m.id, &fixed).await.unwrap();
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
                messages::edit(&st, &ga, &o, &m.id, &revision("Too late", "x")).await,
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
            1,
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
            1,
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
        use app::core::{messages, messages::delivery, settings};
        let (st, _dir, app_id) = message_state(&db, Clock::fixed(1_800_000_000)).await;
        let o = Origin::default();
        let owner = principal(&db, 1).await;
        let mut s = settings::messages(&db).await.unwrap();
        s.app_overrides = vec![(app_id, false)];
        settings::save_messages(
            &Ctx::new(&st, &o),
            &owner.require(Permission::SettingsManage).unwrap(),
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
async fn a_removed_webhook_url_is_not_offered_named_or_delivered_to() {
    on_both(|db| async move {
        use app::core::{messages, messages::delivery, messages::webhooks, settings};
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
        let at_t = Ctx {
            st: &st,
            now: t,
            origin: &o,
        };
        settings::save_messages(&at_t, &gs, &s).await.unwrap();
        let gm = owner.require(Permission::MessageCreate).unwrap();
        let hook = |subject| messages::Draft {
            channel: "webhook",
            recipients: "",
            webhook_url: url,
            sender: "",
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
            &messages::Draft {
                webhook_url: meta,
                sender: "",
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
