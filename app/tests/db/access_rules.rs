//! Roles, permissions and the rules on users.

use super::*;

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

/// The roles a form offers for a key are exactly those the server accepts: within the
/// viewer's and within the key's owner's.
#[tokio::test]
async fn a_keys_role_choices_are_within_its_owners_role() {
    on_both(|db| async move {
        let admin = user_with_role(&db, "admin@example.com", BuiltinRole::Admin.id()).await;
        let dev = user_with_role(&db, "dev@example.com", BuiltinRole::Developer.id()).await;
        let viewer = user_with_role(&db, "viewer@example.com", BuiltinRole::Viewer.id()).await;
        let pa = principal(&db, admin).await;
        let ids = |v: Vec<(i64, String)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        let own = ids(app::core::keys::role_choices(&db, &pa, admin)
            .await
            .unwrap());
        let devs = ids(app::core::keys::role_choices(&db, &pa, dev).await.unwrap());
        let viewers = ids(app::core::keys::role_choices(&db, &pa, viewer)
            .await
            .unwrap());
        // An Admin gives their own keys any role but Owner; a Developer's keys only
        // roles within Developer; a Viewer's only Viewer.
        assert!(own.contains(&BuiltinRole::Admin.id()) && !own.contains(&BuiltinRole::Owner.id()));
        assert!(
            devs.contains(&BuiltinRole::Developer.id()) && !devs.contains(&BuiltinRole::Admin.id())
        );
        assert_eq!(viewers, [BuiltinRole::Viewer.id()]);
        // Each offered role is accepted by the rule that checks a change, each other refused.
        let owner_perms = principal_role_perms(&db, BuiltinRole::Developer.id()).await;
        for r in roles::list(&db).await.unwrap() {
            let perms = r.permissions.iter().copied().collect();
            let accepted = access::may_set_key_role(
                &pa,
                BuiltinRole::Developer.id(),
                &owner_perms,
                r.id,
                &perms,
            )
            .is_ok();
            assert_eq!(accepted, devs.contains(&r.id), "{}", r.name);
        }
    })
    .await;
}
