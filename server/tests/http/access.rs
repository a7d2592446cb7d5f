//! The guard on every door. The endpoint list comes from the binary itself
//! (`keyward routes`: the router's pages and the server-function registry), and the
//! test fails when the table below does not name each one, so a new endpoint cannot
//! be added without saying which permission it needs.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// A permission, by its catalogue name.
    Perm(&'static str),
}

/// Ids the sample bodies point at, created by the test before it runs the table.
struct Fixture {
    bare_role: i64,
    bare_user: i64,
    app_id: i64,
}

/// A signed-in session and an API key with the same role.
struct Cred {
    cookie: String,
    key: String,
}

const NO_KEY_ID: &str = "key_aaaaaaaaaaaaaaaa";
const NO_MESSAGE_ID: &str = "msg_aaaaaaaaaaaaaaaa";

/// Every endpoint with what it needs and a well-formed body whose action is within the
/// needed permission (so "with it" must not be 403).
type Form = Vec<(String, String)>;

fn table(f: &Fixture) -> BTreeMap<&'static str, (Need, Form)> {
    let kv = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>()
    };
    let none = Vec::new();
    let mut t = BTreeMap::new();
    t.insert("page GET /login", (Need::Public, none.clone()));
    t.insert("page GET /", (Need::SignedIn, none.clone()));
    t.insert("page GET /login/verify", (Need::Public, none.clone()));
    t.insert("fn POST /fn/auth/pending", (Need::Public, none.clone()));
    t.insert("fn POST /fn/auth/signed_in", (Need::Public, none.clone()));
    t.insert("page GET /keys", (Need::Perm("api.key.view"), none.clone()));
    t.insert("page GET /apps", (Need::Perm("app.manage"), none.clone()));
    t.insert(
        "page GET /apps/{id}",
        (Need::Perm("app.manage"), none.clone()),
    );
    t.insert(
        "page GET /keys/{key_id}",
        (Need::Perm("api.key.view"), none.clone()),
    );
    t.insert(
        "fn POST /fn/keys/get",
        (
            Need::Perm("api.key.view"),
            kv(&[("key_id", NO_KEY_ID.into())]),
        ),
    );
    t.insert(
        "fn POST /fn/keys/list",
        (Need::Perm("api.key.view"), none.clone()),
    );
    t.insert(
        "fn POST /fn/keys/create",
        (
            Need::Perm("api.key.create"),
            kv(&[
                ("name", "table key".into()),
                ("app_id", f.app_id.to_string()),
                ("environment", "test".into()),
                ("role_id", f.bare_role.to_string()),
                ("expiry", "7".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/keys/revoke",
        (
            Need::Perm("api.key.delete"),
            kv(&[("key_id", NO_KEY_ID.into()), ("confirm", "yes".into())]),
        ),
    );
    t.insert(
        "page GET /channels",
        (Need::Perm("api.key.view"), none.clone()),
    );
    t.insert(
        "fn POST /fn/channels/list",
        (Need::Perm("api.key.view"), none.clone()),
    );
    t.insert(
        "fn POST /fn/channels/create",
        (
            Need::Perm("api.key.create"),
            kv(&[
                ("channel", "email".into()),
                ("name", "Table".into()),
                ("app_id", f.app_id.to_string()),
                ("environment", "live".into()),
                ("expiry", "90".into()),
                ("events[]", "send".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/reveal",
        (
            Need::Perm("api.key.view"),
            kv(&[("key_id", NO_KEY_ID.into())]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/regenerate",
        (
            Need::Perm("api.key.view"),
            kv(&[("key_id", NO_KEY_ID.into())]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/revoke",
        (
            Need::Perm("api.key.view"),
            kv(&[("key_id", NO_KEY_ID.into()), ("confirm", "yes".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/numbers/add",
        (
            Need::Perm("app.manage"),
            kv(&[
                ("app_id", f.app_id.to_string()),
                ("number", "+1 555".into()),
                ("environment", "live".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/numbers/key",
        (
            Need::Perm("app.manage"),
            kv(&[("id", "99999".into()), ("environment", "live".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/channels/numbers/remove",
        (
            Need::Perm("app.manage"),
            kv(&[("id", "99999".into()), ("confirm", "yes".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/settings/channels/save",
        (
            Need::Perm("settings.manage"),
            kv(&[
                ("channel", "email".into()),
                ("create_permission", "api.key.create".into()),
                ("max_active", "10".into()),
                ("per", "user".into()),
                ("reveal", "false".into()),
                ("regenerate", "true".into()),
                ("max_expiry_days", "0".into()),
                ("require_networks", "false".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/keys/enable",
        (
            Need::Perm("api.key.update"),
            kv(&[("key_id", NO_KEY_ID.into())]),
        ),
    );
    t.insert(
        "fn POST /fn/approvals/key",
        (
            Need::Perm("api.key.approve"),
            kv(&[("key_id", NO_KEY_ID.into()), ("decision", "approve".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/approvals/view",
        (Need::Perm("message.approve"), none.clone()),
    );
    t.insert(
        "fn POST /fn/keys/roll",
        (
            Need::Perm("api.key.update"),
            kv(&[("key_id", NO_KEY_ID.into()), ("grace", "0".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/keys/update",
        (
            Need::Perm("api.key.update"),
            kv(&[
                ("key_id", NO_KEY_ID.into()),
                ("name", "x".into()),
                ("role_id", f.bare_role.to_string()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/list",
        (Need::Perm("app.manage"), none.clone()),
    );
    t.insert(
        "fn POST /fn/apps/create",
        (
            Need::Perm("app.manage"),
            kv(&[("name", "Table app".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/update",
        (
            Need::Perm("app.manage"),
            kv(&[("id", "99999".into()), ("name", "x".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/regenerate_sdk_key",
        (
            Need::Perm("app.manage"),
            kv(&[("app_id", "99999".into()), ("environment", "live".into())]),
        ),
    );
    t.insert(
        "rest POST /api/v1/sdk/events",
        (
            Need::SignedIn,
            vec![("json".to_owned(), r#"{"name":"table"}"#.to_owned())],
        ),
    );
    // REST: the body is JSON (in the "json" entry); the credential is a Bearer key.
    let json = |v: serde_json::Value| vec![("json".to_owned(), v.to_string())];
    t.insert("rest GET /api/v1/whoami", (Need::SignedIn, none.clone()));
    t.insert(
        "rest GET /api/v1/openapi.json",
        (Need::Public, none.clone()),
    );
    t.insert("page GET /api", (Need::SignedIn, none.clone()));
    t.insert("fn POST /fn/api/doc", (Need::SignedIn, none.clone()));
    t.insert("fn POST /fn/form/token", (Need::SignedIn, none.clone()));
    t.insert(
        "rest GET /api/v1/keys",
        (Need::Perm("api.key.view"), none.clone()),
    );
    t.insert(
        "rest POST /api/v1/keys",
        (
            Need::Perm("api.key.create"),
            json(serde_json::json!({ "name": "rest key", "app_id": f.app_id, "environment": "test" })),
        ),
    );
    t.insert(
        "rest PATCH /api/v1/keys/{key_id}",
        (
            Need::Perm("api.key.update"),
            json(serde_json::json!({ "name": "x" })),
        ),
    );
    t.insert(
        "rest DELETE /api/v1/keys/{key_id}",
        (Need::Perm("api.key.delete"), none.clone()),
    );
    t.insert(
        "rest POST /api/v1/keys/{key_id}/roll",
        (
            Need::Perm("api.key.update"),
            json(serde_json::json!({ "grace_seconds": 0 })),
        ),
    );
    t.insert("page GET /invite/{token}", (Need::Public, none.clone()));
    t.insert(
        "fn POST /fn/invite/get",
        (Need::Public, kv(&[("token", "no-such-token".into())])),
    );
    t.insert(
        "fn POST /fn/invite/accept",
        (
            Need::Public,
            kv(&[
                ("token", "no-such-token".into()),
                ("display_name", "X".into()),
                ("password", "a long enough password".into()),
                ("confirm_password", "a long enough password".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/users/invite",
        (
            Need::Perm("user.manage"),
            kv(&[
                ("email", "invited@example.com".into()),
                ("display_name", "I".into()),
                ("role_id", f.bare_role.to_string()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/auth/verify",
        (Need::Public, kv(&[("code", "123456".into())])),
    );
    t.insert("fn POST /fn/auth/resend", (Need::Public, none.clone()));
    t.insert(
        "fn POST /fn/auth/sudo",
        (
            Need::SignedIn,
            kv(&[("password", "not the password".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/auth/sudo_status",
        (Need::SignedIn, none.clone()),
    );
    t.insert("fn POST /fn/account/totp", (Need::SignedIn, none.clone()));
    t.insert(
        "fn POST /fn/account/totp/start",
        (Need::SignedIn, none.clone()),
    );
    t.insert("fn POST /fn/account/phone", (Need::SignedIn, none.clone()));
    t.insert(
        "fn POST /fn/account/phone/start",
        (Need::SignedIn, kv(&[("number", "+1 555".into())])),
    );
    t.insert(
        "fn POST /fn/account/phone/confirm",
        (
            Need::SignedIn,
            kv(&[
                ("number", "+447911123456".into()),
                ("code", "000000".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/account/phone/remove",
        (Need::SignedIn, none.clone()),
    );
    t.insert(
        "fn POST /fn/account/totp/confirm",
        (Need::SignedIn, kv(&[("code", "000000".into())])),
    );
    t.insert(
        "fn POST /fn/users/reset_2fa",
        (
            Need::Perm("user.manage"),
            kv(&[("user_id", "99999".into())]),
        ),
    );
    t.insert("page GET /users", (Need::Perm("user.manage"), none.clone()));
    t.insert("page GET /roles", (Need::Perm("role.manage"), none.clone()));
    t.insert(
        "page GET /settings",
        (Need::Perm("settings.manage"), none.clone()),
    );
    t.insert("page GET /account", (Need::SignedIn, none.clone()));
    t.insert(
        "fn POST /fn/settings/keys/save",
        (
            Need::Perm("settings.manage"),
            kv(&[
                ("max_active_per_user_per_app", "10".into()),
                ("max_expiry_days", "0".into()),
                ("default_expiry", "90".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/settings/alerts/save",
        (
            Need::Perm("settings.manage"),
            kv(&[
                ("key_refusals", "100".into()),
                ("key_window_minutes", "10".into()),
                ("sign_in_failures", "10".into()),
                ("sign_in_window_minutes", "15".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/settings/messages/save",
        (
            Need::Perm("settings.manage"),
            kv(&[
                ("approval_required", "required".into()),
                ("approvals_needed", "1".into()),
                ("pending_expiry_hours", "72".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/webhooks/remove",
        (
            Need::Perm("app.manage"),
            kv(&[
                ("app_id", f.app_id.to_string()),
                ("url", "https://hooks.example.com/not-registered".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/webhooks/events",
        (
            Need::Perm("app.manage"),
            kv(&[
                ("app_id", f.app_id.to_string()),
                ("url", "https://hooks.example.com/not-registered".into()),
                ("events[]", "key.created".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/apps/webhooks/register",
        (
            Need::Perm("app.manage"),
            kv(&[
                ("app_id", f.app_id.to_string()),
                ("url", "https://hooks.example.com/table".into()),
            ]),
        ),
    );
    // Messages: seeing them needs message.create (own) or message.approve (all); the
    // table checks with message.create (the approver's door is tested in messages.rs).
    let message_form = || {
        kv(&[
            ("app_id", f.app_id.to_string()),
            ("channel", "email".into()),
            ("recipients", "someone@example.net".into()),
            ("subject", "Table".into()),
            ("body", "Hello".into()),
        ])
    };
    t.insert(
        "page GET /messages",
        (Need::Perm("message.create"), none.clone()),
    );
    t.insert(
        "page GET /messages/{id}",
        (Need::Perm("message.create"), none.clone()),
    );
    t.insert(
        "page GET /approvals",
        (Need::Perm("message.approve"), none.clone()),
    );
    t.insert(
        "fn POST /fn/messages/list",
        (Need::Perm("message.create"), none.clone()),
    );
    t.insert(
        "fn POST /fn/messages/get",
        (
            Need::Perm("message.create"),
            kv(&[("id", NO_MESSAGE_ID.into())]),
        ),
    );
    t.insert(
        "fn POST /fn/messages/create",
        (Need::Perm("message.create"), message_form()),
    );
    t.insert(
        "fn POST /fn/messages/edit",
        (
            Need::Perm("message.create"),
            kv(&[
                ("id", NO_MESSAGE_ID.into()),
                ("recipients", "someone@example.net".into()),
                ("subject", "Table".into()),
                ("body", "Hello".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/approvals/list",
        (Need::Perm("message.approve"), none.clone()),
    );
    t.insert(
        "fn POST /fn/approvals/approve",
        (
            Need::Perm("message.approve"),
            kv(&[("id", NO_MESSAGE_ID.into()), ("payload_hash", "x".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/approvals/reject",
        (
            Need::Perm("message.approve"),
            kv(&[
                ("id", NO_MESSAGE_ID.into()),
                ("payload_hash", "x".into()),
                ("reason", "no".into()),
            ]),
        ),
    );
    t.insert(
        "rest POST /api/v1/messages",
        (
            Need::Perm("message.create"),
            json(serde_json::json!({ "app_id": f.app_id, "channel": "email", "recipients": ["someone@example.net"], "subject": "Table", "body": "Hello" })),
        ),
    );
    t.insert(
        "rest GET /api/v1/messages/{id}",
        (Need::Perm("message.create"), none.clone()),
    );
    t.insert(
        "fn POST /fn/settings/general",
        (Need::Perm("settings.manage"), none.clone()),
    );
    t.insert(
        "fn POST /fn/settings/general/save",
        (Need::Perm("settings.manage"), default_settings_form()),
    );
    t.insert(
        "fn POST /fn/account/sessions",
        (Need::SignedIn, none.clone()),
    );
    t.insert(
        "fn POST /fn/account/end_session",
        (Need::SignedIn, kv(&[("id", "no-such-session".into())])),
    );
    t.insert(
        "fn POST /fn/account/password",
        (
            Need::SignedIn,
            kv(&[
                ("current_password", "not the password".into()),
                ("new_password", "another long password".into()),
                ("confirm_password", "another long password".into()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/auth/login",
        (
            Need::Public,
            kv(&[("email", "x@example.com".into()), ("password", "x".into())]),
        ),
    );
    t.insert("fn POST /fn/auth/logout", (Need::Public, none.clone()));
    t.insert("fn POST /fn/auth/me", (Need::SignedIn, none.clone()));
    t.insert("fn POST /fn/overview/get", (Need::SignedIn, none.clone()));
    t.insert("page GET /audit", (Need::Perm("audit.view"), none.clone()));
    t.insert(
        "page GET /audit/export.csv",
        (Need::Perm("audit.view"), none.clone()),
    );
    t.insert(
        "fn POST /fn/audit/list",
        (Need::Perm("audit.view"), none.clone()),
    );
    // Anyone may report a leaked key (the answer never says what matched).
    t.insert(
        "rest POST /api/v1/leaks",
        (
            Need::Public,
            vec![("json".to_owned(), r#"{"tokens":["table"]}"#.to_owned())],
        ),
    );
    t.insert(
        "fn POST /fn/roles/list",
        (Need::Perm("role.manage"), none.clone()),
    );
    t.insert(
        "fn POST /fn/roles/create",
        (
            Need::Perm("role.manage"),
            kv(&[("name", "Table test role".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/roles/rename",
        (
            Need::Perm("role.manage"),
            kv(&[("id", "99999".into()), ("name", "x".into())]),
        ),
    );
    t.insert(
        "fn POST /fn/roles/delete",
        (Need::Perm("role.manage"), kv(&[("id", "99999".into())])),
    );
    t.insert(
        "fn POST /fn/roles/save",
        (
            Need::Perm("role.manage"),
            kv(&[("role[]", f.bare_role.to_string())]),
        ),
    );
    t.insert(
        "fn POST /fn/users/list",
        (Need::Perm("user.manage"), none.clone()),
    );
    t.insert(
        "fn POST /fn/users/create",
        (
            Need::Perm("user.manage"),
            kv(&[
                ("email", "table@example.com".into()),
                ("display_name", "T".into()),
                ("password", "a long enough password".into()),
                ("role_id", f.bare_role.to_string()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/users/set_role",
        (
            Need::Perm("user.manage"),
            kv(&[
                ("user_id", f.bare_user.to_string()),
                ("role_id", f.bare_role.to_string()),
            ]),
        ),
    );
    t.insert(
        "fn POST /fn/users/set_enabled",
        (
            Need::Perm("user.manage"),
            kv(&[("user_id", "99999".into()), ("enabled", "true".into())]),
        ),
    );
    t
}

/// Settings > General as the page posts it, with the defaults.
pub fn default_settings_form() -> Form {
    pairs(&[
        ("second_factor", "off"),
        ("accept_totp", "true"),
        ("accept_email_code", "true"),
        ("allowed_domains", ""),
        ("panel_networks", ""),
        ("session_idle_minutes", "30"),
        ("session_absolute_hours", "12"),
        ("throttle_account_attempts", "5"),
        ("throttle_ip_attempts", "50"),
        ("throttle_max_delay_secs", "900"),
    ])
}

pub fn routes(s: &Server) -> Vec<String> {
    let out = command(&s.dir, &s.db_url).arg("routes").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Posts a server function as the panel's JavaScript would.
pub async fn post_fn(
    s: &Server,
    cookie: Option<&str>,
    path: &str,
    form: &[(String, String)],
) -> reqwest::Response {
    let mut req = client()
        .post(s.url(path))
        .header("origin", &s.base)
        .form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates a role holding `perms` (through the panel's own server function) and returns its id.
pub async fn make_role(s: &Server, owner: &str, name: &str, perms: &[&str]) -> i64 {
    let mut form = pairs(&[("name", name)]);
    form.extend(
        perms
            .iter()
            .map(|p| ("permission[]".to_owned(), p.to_string())),
    );
    let r = post_fn(s, Some(owner), "/fn/roles/create", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// Creates an active user with `role_id` and returns (id, signed-in cookie).
pub async fn make_user(s: &Server, owner: &str, email: &str, role_id: i64) -> (i64, String) {
    let form = pairs(&[
        ("email", email),
        ("display_name", "Test user"),
        ("password", PASSWORD),
        ("role_id", &role_id.to_string()),
    ]);
    let r = post_fn(s, Some(owner), "/fn/users/create", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id: i64 = r.json().await.unwrap();
    let r = s.login_form(email, PASSWORD, &[]).await;
    assert_eq!(r.status(), 302, "{}", s.log());
    (id, session_cookie(&r).unwrap())
}

async fn status_of(s: &Server, cred: Option<&Cred>, line: &str, body: &[(String, String)]) -> u16 {
    let mut parts = line.splitn(3, ' ');
    let (kind, method, path) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    match kind {
        "page" => {
            let path = path
                .replace("{id}", NO_MESSAGE_ID)
                .replace("{key_id}", NO_KEY_ID);
            let mut req = client().get(s.url(&path));
            if let Some(c) = cred {
                req = req.header("cookie", &c.cookie);
            }
            req.send().await.unwrap().status().as_u16()
        }
        "rest" => {
            let url = s.url(
                &path
                    .replace("{key_id}", NO_KEY_ID)
                    .replace("{id}", NO_MESSAGE_ID),
            );
            let mut req = client().request(method.parse().unwrap(), url);
            if let Some(c) = cred {
                req = req.bearer_auth(&c.key);
            }
            if let Some((_, j)) = body.iter().find(|(k, _)| k == "json") {
                req = req
                    .header("content-type", "application/json")
                    .body(j.clone());
            }
            req.send().await.unwrap().status().as_u16()
        }
        _ => post_fn(s, cred.map(|c| c.cookie.as_str()), path, body)
            .await
            .status()
            .as_u16(),
    }
}

/// Makes an app through the panel's server function; returns its id.
pub async fn make_app(s: &Server, owner: &str, name: &str, networks: &str) -> i64 {
    let r = post_fn(
        s,
        Some(owner),
        "/fn/apps/create",
        &pairs(&[("name", name), ("networks", networks)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// Lets every user hold up to 1,000 active keys per app (Settings > Keys).
pub async fn lift_key_limit(s: &Server, owner: &str) {
    let r = post_fn(
        s,
        Some(owner),
        "/fn/settings/keys/save",
        &pairs(&[
            ("max_active_per_user_per_app", "1000"),
            ("max_expiry_days", "0"),
            ("default_expiry", "90"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Makes a REST key through the panel's server function; returns its secret.
pub async fn make_key(s: &Server, cookie: &str, app_id: i64, role_id: i64) -> String {
    let r = post_fn(
        s,
        Some(cookie),
        "/fn/keys/create",
        &pairs(&[
            ("name", "test key"),
            ("app_id", &app_id.to_string()),
            ("environment", "live"),
            ("role_id", &role_id.to_string()),
            ("expiry", "never"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_endpoint_checks_sign_in_and_permission() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let bare_role = make_role(&s, &owner, "Nothing", &[]).await;
    let (bare_user, bare_cookie) = make_user(&s, &owner, "bare@example.com", bare_role).await;
    let app_id = make_app(&s, &owner, "Table app 0", "").await;
    // The Owner makes a key for every permission holder below: lift the per-app limit.
    lift_key_limit(&s, &owner).await;
    let bare = Cred {
        cookie: bare_cookie,
        key: make_key(&s, &owner, app_id, bare_role).await,
    };
    let f = Fixture {
        bare_role,
        bare_user,
        app_id,
    };
    let table = table(&f);

    // The table names exactly the endpoints the binary serves.
    let listed: BTreeSet<String> = routes(&s).into_iter().collect();
    let known: BTreeSet<String> = table.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        listed, known,
        "every endpoint needs a row in this table (and every row an endpoint)"
    );

    // One user per permission the table uses, holding only that permission.
    let mut holders: BTreeMap<&str, Cred> = BTreeMap::new();
    for (need, _) in table.values() {
        if let Need::Perm(p) = need {
            if !holders.contains_key(p) {
                let role = make_role(&s, &owner, &format!("Only {p}"), &[p]).await;
                let email = format!("{}@example.com", p.replace('.', "-"));
                let (_, cookie) = make_user(&s, &owner, &email, role).await;
                let key = make_key(&s, &owner, app_id, role).await;
                holders.insert(p, Cred { cookie, key });
            }
        }
    }

    for (line, (need, body)) in &table {
        let anon = status_of(&s, None, line, body).await;
        if *need == Need::Public {
            // (Not posted with a session: sign-out would end it.)
            assert!(![401, 403].contains(&anon), "{line}: signed out got {anon}");
            continue;
        }
        let nothing = status_of(&s, Some(&bare), line, body).await;
        let signed_out = match () {
            _ if line.starts_with("page") => 303,
            _ => 401,
        };
        match need {
            Need::Public => unreachable!(),
            Need::SignedIn => {
                assert_eq!(anon, signed_out, "{line}: signed out");
                assert!(
                    ![401, 403].contains(&nothing),
                    "{line}: signed in got {nothing}"
                );
            }
            Need::Perm(p) => {
                assert_eq!(anon, signed_out, "{line}: signed out");
                assert_eq!(nothing, 403, "{line}: signed in without {p}");
                let with = status_of(&s, holders.get(p), line, body).await;
                assert!(
                    ![401, 403].contains(&with) && with < 500,
                    "{line}: with {p} got {with}\n{}",
                    s.log()
                );
            }
        }
    }
}

#[tokio::test]
async fn escalation_by_hand_is_refused() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    // A manager of roles and users who may see their own keys only.
    let mgr_role = make_role(
        &s,
        &owner,
        "Manager",
        &["role.manage", "user.manage", "api.key.view"],
    )
    .await;
    let (mgr_id, mgr) = make_user(&s, &owner, "mgr@example.com", mgr_role).await;
    let dev_role = 3; // built-in Developer
    let (dev_id, _) = make_user(&s, &owner, "dev@example.com", dev_role).await;
    let owner_id = 1;

    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        // a role with a permission the manager lacks
        (
            "/fn/roles/create",
            pairs(&[("name", "Spy"), ("permission[]", "api.key.view_all")]),
        ),
        // the same through the matrix, on the manager's own role
        (
            "/fn/roles/save",
            pairs(&[
                ("role[]", &mgr_role.to_string()),
                ("grant[]", &format!("{mgr_role}:role.manage")),
                ("grant[]", &format!("{mgr_role}:user.manage")),
                ("grant[]", &format!("{mgr_role}:api.key.view")),
                ("grant[]", &format!("{mgr_role}:settings.manage")),
            ]),
        ),
        // assigning a role above one's own, and the Owner role
        (
            "/fn/users/set_role",
            pairs(&[("user_id", &dev_id.to_string()), ("role_id", "2")]),
        ),
        (
            "/fn/users/set_role",
            pairs(&[("user_id", &dev_id.to_string()), ("role_id", "1")]),
        ),
        // creating an Admin
        (
            "/fn/users/create",
            pairs(&[
                ("email", "evil@example.com"),
                ("display_name", "E"),
                ("password", PASSWORD),
                ("role_id", "2"),
            ]),
        ),
        // demoting or disabling the Owner
        (
            "/fn/users/set_role",
            pairs(&[
                ("user_id", &owner_id.to_string()),
                ("role_id", &mgr_role.to_string()),
            ]),
        ),
        (
            "/fn/users/set_enabled",
            pairs(&[("user_id", &owner_id.to_string()), ("enabled", "false")]),
        ),
    ];
    for (path, form) in &cases {
        let r = post_fn(&s, Some(&mgr), path, form).await;
        assert_eq!(r.status(), 403, "{path} {form:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        // Plain Forbidden, or Forbidden with its reason (acting on a user who holds
        // more, editing one's own role).
        assert!(
            body == serde_json::json!("Forbidden") || body["Refused"].is_string(),
            "{path}: {body}"
        );
    }

    // Own role: refused with a message, even with injected fields.
    let r = post_fn(
        &s,
        Some(&mgr),
        "/fn/users/set_role",
        &pairs(&[
            ("user_id", &mgr_id.to_string()),
            ("role_id", &mgr_role.to_string()),
            ("owner_id", "1"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("your own role"));

    // Injected fields are ignored: `role_id` on a role creation, `owner_id` anywhere.
    let r = post_fn(
        &s,
        Some(&mgr),
        "/fn/roles/create",
        &pairs(&[
            ("name", "Helpers"),
            ("permission[]", "api.key.view"),
            ("role_id", "1"),
            ("owner_id", "1"),
            ("builtin", "owner"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let id: i64 = r.json().await.unwrap();
    let pool = s.db().await;
    let (builtin, perms): (Option<String>, i64) = sqlx::query_as(
        "select r.builtin, (select count(*) from role_permissions p where p.role_id = r.id) from roles r where r.id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((builtin, perms), (None, 1));

    // Nothing changed for the people the refused requests aimed at.
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("select id, role_id, status from users order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(rows.contains(&(owner_id, 1, "active".into())), "{rows:?}");
    assert!(
        rows.contains(&(dev_id, dev_role, "active".into())),
        "{rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r.1 == 2),
        "no Admin was made: {rows:?}"
    );
}

#[tokio::test]
async fn a_removed_permission_is_enforced_at_the_next_request() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let role = make_role(&s, &owner, "Managers", &["user.manage"]).await;
    let (_, mgr) = make_user(&s, &owner, "m@example.com", role).await;
    let r = post_fn(&s, Some(&mgr), "/fn/users/list", &[]).await;
    assert_eq!(r.status(), 200);
    // The Owner clears the role's permissions in the matrix.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/roles/save",
        &pairs(&[("role[]", &role.to_string())]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post_fn(&s, Some(&mgr), "/fn/users/list", &[]).await;
    assert_eq!(r.status(), 403);
    let r = client()
        .get(s.url("/users"))
        .header("cookie", &mgr)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The navigation no longer offers the section.
    let html = client()
        .get(s.url("/"))
        .header("cookie", &mgr)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(r#"href="/users""#), "{html}");

    // Disabling a user ends their sessions at once.
    let (victim_id, victim) = make_user(&s, &owner, "v@example.com", 3).await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/set_enabled",
        &pairs(&[("user_id", &victim_id.to_string()), ("enabled", "false")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post_fn(&s, Some(&victim), "/fn/auth/me", &[]).await;
    assert_eq!(r.status(), 401);
    let pool = s.db().await;
    let (n,): (i64,) = sqlx::query_as("select count(*) from sessions where user_id = $1")
        .bind(victim_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
