//! Privilege, against the binary on SQLite and PostgreSQL: a key does what its role
//! allows *and* its owner may do now; only the owner rolls a key and the new key stays
//! theirs; nobody acts on a user who holds a permission they lack, nor edits the role
//! they hold; the browser gets only the app configuration the viewer may see.

use super::access::{lift_key_limit, make_app, make_key, make_role, make_user, pairs, post_fn};
use super::api::{call, error_code};
use super::*;
use serde_json::{json, Value};

const OWNER: i64 = 1;
const ADMIN: i64 = 2;
const DEVELOPER: i64 = 3;
const VIEWER: i64 = 5;

async fn whoami(s: &Server, key: &str) -> Value {
    let (st, _, v) = call(s, "GET", "/api/v1/whoami", Some(key), None, &[]).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn perms(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    p.sort();
    p
}

async fn set_role(s: &Server, cookie: &str, user_id: i64, role_id: i64) -> reqwest::Response {
    post_fn(
        s,
        Some(cookie),
        "/fn/users/set_role",
        &pairs(&[
            ("user_id", &user_id.to_string()),
            ("role_id", &role_id.to_string()),
        ]),
    )
    .await
}

#[tokio::test]
async fn a_key_does_only_what_its_owner_may_do_now() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        lift_key_limit(&s, &owner).await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let owner_key = make_key(&s, &owner, app, DEVELOPER).await;
        let owner_key_id = whoami(&s, &owner_key).await["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (admin_id, admin) = make_user(&s, &owner, "admin@example.com", ADMIN).await;
        let key = make_key(&s, &admin, app, ADMIN).await;
        assert!(perms(&whoami(&s, &key).await).contains(&"api.key.view_all".to_owned()));

        // The Owner demotes the admin to Viewer: the key made before now does only what
        // a Viewer may, at its very next request.
        assert_eq!(set_role(&s, &owner, admin_id, VIEWER).await.status(), 200);
        assert_eq!(
            perms(&whoami(&s, &key).await),
            vec!["api.key.view", "audit.view"],
            "whoami shows the effective permissions"
        );
        let (st, _, v) = call(&s, "GET", "/api/v1/keys", Some(&key), None, &[]).await;
        assert_eq!(st, 200);
        assert!(
            !v.to_string().contains(&owner_key_id),
            "no longer everyone's keys: {v}"
        );
        let (st, h, v) = call(
            &s,
            "POST",
            "/api/v1/keys",
            Some(&key),
            Some(json!({"name":"x","app_id":app,"environment":"live","role_id":ADMIN})),
            &[],
        )
        .await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (403, "insufficient_permissions")
        );
        let (st, _, _) = call(
            &s,
            "DELETE",
            &format!("/api/v1/keys/{owner_key_id}"),
            Some(&key),
            Some(json!({"reason":"x"})),
            &[],
        )
        .await;
        assert_eq!(st, 403, "cannot revoke another user's key any more");

        // A permission added to a custom role does not widen a key beyond its owner.
        let readers = make_role(&s, &owner, "Readers", &["api.key.view"]).await;
        let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
        let dev_key = make_key(&s, &dev, app, readers).await;
        let mut form = pairs(&[("role[]", &readers.to_string())]);
        for p in ["api.key.view", "api.key.view_all", "user.manage"] {
            form.push(("grant[]".into(), format!("{readers}:{p}")));
        }
        let r = post_fn(&s, Some(&owner), "/fn/roles/save", &form).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(perms(&whoami(&s, &dev_key).await), vec!["api.key.view"]);
    })
    .await;
}

#[tokio::test]
async fn a_key_role_is_never_set_above_its_owner_or_its_setter() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        lift_key_limit(&s, &owner).await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let (_, admin) = make_user(&s, &owner, "admin@example.com", ADMIN).await;
        let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
        let dev_key = make_key(&s, &dev, app, DEVELOPER).await;
        let dev_key_id = whoami(&s, &dev_key).await["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // An Admin cannot lift a Developer's key to the Admin role: not by the panel…
        let r = post_fn(
            &s,
            Some(&admin),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &dev_key_id),
                ("name", "k"),
                ("role_id", &ADMIN.to_string()),
            ]),
        )
        .await;
        assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
        // …nor with an Admin key over REST.
        let admin_key = make_key(&s, &admin, app, ADMIN).await;
        let (st, h, v) = call(
            &s,
            "PATCH",
            &format!("/api/v1/keys/{dev_key_id}"),
            Some(&admin_key),
            Some(json!({"role_id": ADMIN})),
            &[],
        )
        .await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "validation_failed")
        );
        assert!(v.to_string().contains("owner"), "{v}");
        // Nobody makes an Owner-role key but an Owner for themselves.
        let (st, _, _) = call(
            &s,
            "POST",
            "/api/v1/keys",
            Some(&admin_key),
            Some(json!({"name":"x","app_id":app,"environment":"live","role_id":OWNER})),
            &[],
        )
        .await;
        assert_eq!(st, 403);
        // Nor to Viewer, which holds audit.view that a Developer lacks.
        let (st, _, _) = call(
            &s,
            "PATCH",
            &format!("/api/v1/keys/{dev_key_id}"),
            Some(&admin_key),
            Some(json!({"role_id": VIEWER})),
            &[],
        )
        .await;
        assert_eq!(st, 400);
        // Within the owner's permissions it works.
        let readers = make_role(&s, &owner, "Readers", &["api.key.view"]).await;
        let (st, _, v) = call(
            &s,
            "PATCH",
            &format!("/api/v1/keys/{dev_key_id}"),
            Some(&admin_key),
            Some(json!({"role_id": readers})),
            &[],
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(perms(&whoami(&s, &dev_key).await), vec!["api.key.view"]);
    })
    .await;
}

#[tokio::test]
async fn only_the_owner_rolls_and_the_new_key_keeps_owner_and_role() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        lift_key_limit(&s, &owner).await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let victim_key = make_key(&s, &owner, app, ADMIN).await;
        let victim_id = whoami(&s, &victim_key).await["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Someone who may update (not create) keys and see everyone's.
        let updaters = make_role(
            &s,
            &owner,
            "Updaters",
            &["api.key.view", "api.key.view_all", "api.key.update"],
        )
        .await;
        let (_, upd) = make_user(&s, &owner, "upd@example.com", updaters).await;
        let r = post_fn(
            &s,
            Some(&upd),
            "/fn/keys/roll",
            &pairs(&[("key_id", &victim_id), ("grace", "0")]),
        )
        .await;
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("revoke"));
        // An Admin's key over REST: refused the same way.
        let (_, admin) = make_user(&s, &owner, "admin@example.com", ADMIN).await;
        let admin_key = make_key(&s, &admin, app, ADMIN).await;
        let (st, h, v) = call(
            &s,
            "POST",
            &format!("/api/v1/keys/{victim_id}/roll"),
            Some(&admin_key),
            Some(json!({"grace_seconds": 0})),
            &[],
        )
        .await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (403, "insufficient_permissions")
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("revoke"),
            "{v}"
        );
        // The victim's key still works.
        whoami(&s, &victim_key).await;
        // The owner rolls it: the new key is theirs, with the same role.
        let (st, _, v) = call(
            &s,
            "POST",
            &format!("/api/v1/keys/{victim_id}/roll"),
            Some(&victim_key),
            Some(json!({"grace_seconds": 60})),
            &[],
        )
        .await;
        assert_eq!(st, 201, "{v}");
        let new = whoami(&s, v["secret"].as_str().unwrap()).await;
        assert_eq!(new["owner"]["email"], "owner@example.com", "{new}");
        assert_eq!(v["key"]["role_id"], ADMIN, "{v}");
        // Its owner is told, with where it came from.
        assert!(!mails_to(&s, "owner@example.com", "One of your API keys was rolled").is_empty());
    })
    .await;
}

#[tokio::test]
async fn nobody_acts_on_a_user_who_holds_more_nor_edits_their_own_role() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let helpdesk = make_role(
            &s,
            &owner,
            "Helpdesk",
            &["user.manage", "api.key.view", "audit.view", "role.manage"],
        )
        .await;
        let (_, help) = make_user(&s, &owner, "help@example.com", helpdesk).await;
        let (admin_id, _) = make_user(&s, &owner, "admin@example.com", ADMIN).await;
        let (viewer_id, _) = make_user(&s, &owner, "viewer@example.com", VIEWER).await;
        let act = |path: &'static str, user: i64, extra: Option<(&'static str, String)>| {
            let (s, help) = (&s, help.clone());
            async move {
                let mut form = pairs(&[("user_id", &user.to_string())]);
                form.extend(extra.map(|(k, v)| (k.to_owned(), v)));
                post_fn(s, Some(&help), path, &form).await
            }
        };
        // Not on the Admin, who holds what Helpdesk lacks.
        for (path, extra) in [
            (
                "/fn/users/set_enabled",
                Some(("enabled", "false".to_owned())),
            ),
            ("/fn/users/set_role", Some(("role_id", VIEWER.to_string()))),
            ("/fn/users/reset_2fa", None),
        ] {
            let r = act(path, admin_id, extra).await;
            assert_eq!(r.status(), 403, "{path}: {}", r.text().await.unwrap());
        }
        // On a Viewer, whose permissions Helpdesk holds, it works.
        let r = act(
            "/fn/users/set_enabled",
            viewer_id,
            Some(("enabled", "false".into())),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        // A role editor cannot change the role they hold.
        let mut form = pairs(&[("role[]", &helpdesk.to_string())]);
        for p in [
            "user.manage",
            "api.key.view",
            "audit.view",
            "role.manage",
            "message.create",
        ] {
            form.push(("grant[]".into(), format!("{helpdesk}:{p}")));
        }
        let r = post_fn(&s, Some(&help), "/fn/roles/save", &form).await;
        assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
        let r = post_fn(
            &s,
            Some(&help),
            "/fn/roles/rename",
            &pairs(&[("id", &helpdesk.to_string()), ("name", "Superdesk")]),
        )
        .await;
        assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
        // Nor a role whose holders hold more than the editor: stripping it would demote
        // them by the back door; renaming or deleting it neither.
        let big = make_role(
            &s,
            &owner,
            "Big",
            &["api.key.view", "user.manage", "settings.manage"],
        )
        .await;
        make_user(&s, &owner, "big@example.com", big).await;
        let strip = pairs(&[
            ("role[]", &big.to_string()),
            ("grant[]", &format!("{big}:api.key.view")),
        ]);
        for (path, form) in [
            ("/fn/roles/save", strip),
            (
                "/fn/roles/rename",
                pairs(&[("id", &big.to_string()), ("name", "Small")]),
            ),
            ("/fn/roles/delete", pairs(&[("id", &big.to_string())])),
        ] {
            let r = post_fn(&s, Some(&help), path, &form).await;
            assert_eq!(r.status(), 403, "{path}: {}", r.text().await.unwrap());
        }
        // A role within the editor's permissions can be edited.
        let small = make_role(&s, &owner, "Small", &["api.key.view"]).await;
        let r = post_fn(
            &s,
            Some(&help),
            "/fn/roles/save",
            &pairs(&[
                ("role[]", &small.to_string()),
                ("grant[]", &format!("{small}:audit.view")),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn role_and_user_changes_ask_for_the_password_when_it_is_stale() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let role = make_role(&s, &owner, "Readers", &["api.key.view"]).await;
    let (uid, _) = make_user(&s, &owner, "u@example.com", VIEWER).await;
    panel_security::age_sudo(&s).await;
    for (path, form) in [
        (
            "/fn/users/set_role",
            pairs(&[
                ("user_id", &uid.to_string()),
                ("role_id", &role.to_string()),
            ]),
        ),
        (
            "/fn/users/set_enabled",
            pairs(&[("user_id", &uid.to_string()), ("enabled", "false")]),
        ),
        (
            "/fn/roles/rename",
            pairs(&[("id", &role.to_string()), ("name", "Other")]),
        ),
        ("/fn/roles/delete", pairs(&[("id", &role.to_string())])),
        ("/fn/roles/create", pairs(&[("name", "Another")])),
        (
            "/fn/users/create",
            pairs(&[
                ("email", "n@example.com"),
                ("display_name", "N"),
                ("password", PASSWORD),
                ("role_id", "5"),
            ]),
        ),
    ] {
        let r = post_fn(&s, Some(&owner), path, &form).await;
        assert_eq!(r.status(), 400, "{path}");
        assert!(
            r.text().await.unwrap().contains("Confirm your password"),
            "{path}"
        );
    }
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/auth/sudo",
        &pairs(&[("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/set_role",
        &pairs(&[
            ("user_id", &uid.to_string()),
            ("role_id", &role.to_string()),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn the_keys_page_sends_no_app_configuration_to_those_who_may_not_see_it() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "10.9.8.0/24").await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[
            ("app_id", &app.to_string()),
            ("url", "https://hooks.example.test/t/s3cr3tpathtoken"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
    let leaks = |body: &str| {
        ["s3cr3tpathtoken", "10.9.8.0/24", "kwpub_"]
            .into_iter()
            .filter(|needle| body.contains(needle))
            .collect::<Vec<_>>()
    };
    let r = post_fn(&s, Some(&dev), "/fn/keys/list", &[]).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Billing"),
        "the app is still a choice: {body}"
    );
    assert_eq!(leaks(&body), Vec::<&str>::new(), "{body}");
    // The rendered page and its hydration data neither.
    let page = client()
        .get(s.url("/keys"))
        .header("cookie", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Billing"));
    assert_eq!(leaks(&page), Vec::<&str>::new());
    // The app's manager does see them, on /apps.
    let page = client()
        .get(s.url("/apps"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(leaks(&page).len(), 3, "the test's needles are real");
    // A composer chooses a webhook by its origin and number; its URL (and the secret in
    // its path) is not sent to them, on the messages page nor by its server function.
    let r = post_fn(&s, Some(&dev), "/fn/messages/list", &[]).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("https://hooks.example.test/…"), "{body}");
    assert_eq!(leaks(&body), Vec::<&str>::new(), "{body}");
    let page = client()
        .get(s.url("/messages"))
        .header("cookie", &dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(leaks(&page), Vec::<&str>::new());
}

/// Two instances on one PostgreSQL: an owner demoted on one has their keys cut down on
/// the other within a second (the users trigger now fires on a role change).
#[tokio::test]
async fn a_demotion_on_one_instance_cuts_the_owner_s_keys_on_another() {
    let Some(pg) = PgDb::create().await else {
        return;
    };
    let a = Server::start(&[("KEYWARD_DATABASE_URL", &pg.url)]).await;
    let owner = a.sign_in().await;
    let app = make_app(&a, &owner, "Billing", "").await;
    let (admin_id, admin) = make_user(&a, &owner, "admin@example.com", ADMIN).await;
    let key = make_key(&a, &admin, app, ADMIN).await;
    let b = a.second_instance(&pg.url).await;
    let perms_on_b = || async {
        let v: Value = client()
            .get(format!("{}/api/v1/whoami", b.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        perms(&v)
    };
    assert!(
        perms_on_b().await.contains(&"user.manage".to_owned()),
        "B has cached the key"
    );
    assert_eq!(set_role(&a, &owner, admin_id, VIEWER).await.status(), 200);
    let at = Instant::now();
    while perms_on_b().await != vec!["api.key.view", "audit.view"] {
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "B still grants the old role after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
    drop(a);
    pg.drop().await;
}

#[tokio::test]
async fn nobody_changes_or_revokes_a_key_of_someone_who_holds_more() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        lift_key_limit(&s, &owner).await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let owner_key = make_key(&s, &owner, app, OWNER).await;
        let owner_key_id = whoami(&s, &owner_key).await["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let keymgr = make_role(
            &s,
            &owner,
            "KeyMgr",
            &[
                "api.key.view",
                "api.key.view_all",
                "api.key.update",
                "api.key.delete",
                "api.key.create",
            ],
        )
        .await;
        let (_, km) = make_user(&s, &owner, "km@example.com", keymgr).await;
        let r = post_fn(
            &s,
            Some(&km),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &owner_key_id),
                ("name", "x"),
                ("role_id", &keymgr.to_string()),
            ]),
        )
        .await;
        assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
        let r = post_fn(
            &s,
            Some(&km),
            "/fn/keys/revoke",
            &pairs(&[
                ("key_id", &owner_key_id),
                ("confirm", "yes"),
                ("reason", "x"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
        let km_key = make_key(&s, &km, app, keymgr).await;
        let (st, h, v) = call(
            &s,
            "DELETE",
            &format!("/api/v1/keys/{owner_key_id}"),
            Some(&km_key),
            Some(json!({"reason": "x"})),
            &[],
        )
        .await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (403, "insufficient_permissions")
        );
        assert_eq!(
            perms(&whoami(&s, &owner_key).await).len(),
            14,
            "the Owner's key is untouched"
        );
        // A key of someone holding no more than the manager: allowed.
        let readers = make_role(&s, &owner, "Readers", &["api.key.view", "api.key.create"]).await;
        let (_, reader) = make_user(&s, &owner, "r@example.com", readers).await;
        let reader_key = make_key(&s, &reader, app, readers).await;
        let reader_key_id = whoami(&s, &reader_key).await["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (st, _, v) = call(
            &s,
            "DELETE",
            &format!("/api/v1/keys/{reader_key_id}"),
            Some(&km_key),
            Some(json!({"reason": "x"})),
            &[],
        )
        .await;
        assert_eq!(st, 200, "{v}");
    })
    .await;
}

#[tokio::test]
async fn a_role_change_racing_a_promotion_never_overwrites_it() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let nothing = make_role(&s, &owner, "Nothing", &[]).await;
    let usermgr = make_role(&s, &owner, "UserMgr", &["user.manage", "api.key.view"]).await;
    let (_, um) = make_user(&s, &owner, "um@example.com", usermgr).await;
    let (target, _) = make_user(&s, &owner, "t@example.com", nothing).await;
    let pool = s.db().await;
    for round in 0..20 {
        sqlx::query("update users set role_id = $1 where id = $2")
            .bind(nothing)
            .bind(target)
            .execute(&pool)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            set_role(&s, &owner, target, ADMIN),
            set_role(&s, &um, target, usermgr)
        );
        let (a, b) = (a.status().as_u16(), b.status().as_u16());
        // Both may succeed one after the other (the manager's change first, then the
        // promotion). What must never happen: the promotion answered 200 and the
        // manager's change, checked against the old role, then overwrote it.
        let _ = b;
        let (role,): (i64,) = sqlx::query_as("select role_id from users where id = $1")
            .bind(target)
            .fetch_one(&pool)
            .await
            .unwrap();
        if a == 200 {
            assert_eq!(role, ADMIN, "round {round}");
        }
    }
}

#[tokio::test]
async fn an_invited_user_disabled_and_enabled_again_is_still_invited() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/invite",
        &pairs(&[
            ("email", "inv@example.com"),
            ("display_name", "Inv"),
            ("role_id", "5"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let pool = s.db().await;
    let (id,): (i64,) = sqlx::query_as("select id from users where email = 'inv@example.com'")
        .fetch_one(&pool)
        .await
        .unwrap();
    for enabled in ["false", "true"] {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/users/set_enabled",
            &pairs(&[("user_id", &id.to_string()), ("enabled", enabled)]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let (status,): (String,) = sqlx::query_as("select status from users where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "invited");
    // The old link died with the disabling; a new invitation works.
    let (live,): (i64,) = sqlx::query_as(
        "select count(*) from invitations where user_id = $1 and accepted_at is null and expires_at > 2000000000",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(live, 0);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/invite",
        &pairs(&[
            ("email", "inv@example.com"),
            ("display_name", "Inv"),
            ("role_id", "5"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Accepting an invitation checks the rules again: the inviter must still be active
/// and able to give the role, and the address's domain still allowed.
#[tokio::test]
async fn an_invitation_is_worth_no_more_than_its_inviter_is_now() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let (admin_id, admin) = make_user(&s, &owner, "admin@example.com", ADMIN).await;
    let invite = |by: String, email: &'static str, role: i64| {
        let s = &s;
        async move {
            let r = post_fn(
                s,
                Some(&by),
                "/fn/users/invite",
                &pairs(&[
                    ("email", email),
                    ("display_name", "X"),
                    ("role_id", &role.to_string()),
                ]),
            )
            .await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            panel_security::invitation_link(s, email)
        }
    };
    let accept = |link: String| {
        let s = &s;
        async move {
            let token = link.rsplit('/').next().unwrap().to_owned();
            post_fn(
                s,
                None,
                "/fn/invite/accept",
                &pairs(&[
                    ("token", &token),
                    ("display_name", "X"),
                    ("password", PASSWORD),
                    ("confirm_password", PASSWORD),
                ]),
            )
            .await
            .status()
            .as_u16()
        }
    };
    // The Admin invites an Admin, then is disabled: the link no longer works.
    let link = invite(admin.clone(), "alt@example.com", ADMIN).await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/set_enabled",
        &pairs(&[("user_id", &admin_id.to_string()), ("enabled", "false")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(accept(link).await, 400);
    // Demoted instead of disabled: the same.
    let (mgr_id, mgr) = make_user(&s, &owner, "mgr@example.com", ADMIN).await;
    let link = invite(mgr, "alt2@example.com", ADMIN).await;
    assert_eq!(set_role(&s, &owner, mgr_id, VIEWER).await.status(), 200);
    assert_eq!(accept(link).await, 400);
    // A domain no longer allowed: refused like a sign-in.
    let link = invite(owner.clone(), "out@other.test", VIEWER).await;
    let mut form = access::default_settings_form();
    form.retain(|(k, _)| k != "allowed_domains");
    form.push(("allowed_domains".into(), "example.com".into()));
    let r = post_fn(&s, Some(&owner), "/fn/settings/general/save", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(accept(link).await, 400);
    // An invitation whose inviter still may: accepted.
    let link = invite(owner.clone(), "fine@example.com", VIEWER).await;
    assert_eq!(accept(link).await, 200);
}

#[tokio::test]
async fn rolling_again_and_again_does_not_pass_the_active_key_limit() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/settings/keys/save",
        &pairs(&[
            ("max_active_per_user_per_app", "1"),
            ("max_expiry_days", "0"),
            ("default_expiry", "90"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, DEVELOPER).await;
    let key_id = whoami(&s, &key).await["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let roll = |id: String, grace: &'static str| {
        let (s, owner) = (&s, owner.clone());
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/keys/roll",
                &pairs(&[("key_id", &id), ("grace", grace)]),
            )
            .await
        }
    };
    // One roll with a grace period: the old key keeps working meanwhile.
    let r = roll(key_id, "604800").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let new_id = v["key"]["key_id"].as_str().unwrap().to_owned();
    // Rolling the new one with a grace too would make three working keys: refused.
    let r = roll(new_id.clone(), "604800").await;
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
}
