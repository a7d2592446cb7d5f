//! Sign-in under attack, against the binary: wrong second-step codes count against the
//! account across sign-ins (a correct password does not clear them) and alert its
//! owner; emailed codes are capped; a browser that signed in before keeps its own
//! allowance while the account is throttled for everyone else; IPv6 addresses count
//! per /64; the owner hears of a sign-in from a new browser.

use super::access::{default_settings_form, make_user, pairs, post_fn};
use super::*;

/// Saves Settings > General as the signed-in Owner (fresh sudo) with `changes`.
async fn settings(s: &Server, owner: &str, changes: &[(&str, &str)]) {
    let mut form = default_settings_form();
    for (k, v) in changes {
        form.retain(|(fk, _)| fk != k);
        form.push((k.to_string(), v.to_string()));
    }
    let r = post_fn(s, Some(owner), "/fn/settings/general/save", &form).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The password step as a script would post it (JSON answers, real statuses); returns
/// the response.
async fn password_step(
    s: &Server,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(s.url("/fn/auth/login"))
        .form(&[("email", email), ("password", password)]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn cookie_pair(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

async fn verify(s: &Server, session: &str, code: &str) -> u16 {
    post_fn(
        s,
        Some(session),
        "/fn/auth/verify",
        &pairs(&[("code", code)]),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn second_step_failures_count_across_sign_ins_and_alert_the_owner() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    settings(&s, &owner, &[("second_factor", "required")]).await;
    let pending = || async {
        let r = password_step(&s, "owner@example.com", PASSWORD, &[]).await;
        assert_eq!(r.status(), 200, "{}", s.log());
        session_cookie(&r).unwrap()
    };
    // Five wrong codes in a first sign-in.
    let first = pending().await;
    for _ in 0..5 {
        assert_eq!(verify(&s, &first, "000000").await, 400);
    }
    // The owner is told that someone has the password.
    let alerts = mails_to(
        &s,
        "owner@example.com",
        "Someone who knows your password is trying to sign in",
    );
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].contains("127.0.0.1") && alerts[0].contains("If this was not you"));
    // A new sign-in with the right password does not clear them: within three tries
    // the account waits (five free tries would follow if it had been cleared).
    let within_three = |session: String, xff: &'static str| {
        let s = &s;
        async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let r = client()
                    .post(s.url("/fn/auth/verify"))
                    .header("cookie", &session)
                    .header("origin", &s.base)
                    .header("x-forwarded-for", xff)
                    .form(&[("code", "000000")])
                    .send()
                    .await
                    .unwrap();
                seen.push(r.status().as_u16());
                if r.status() == 429 {
                    break;
                }
            }
            seen
        }
    };
    let seen = within_three(pending().await, "127.0.0.1").await;
    assert_eq!(seen.last(), Some(&429), "{seen:?}");
    // Nor from another address.
    let seen = within_three(pending().await, "203.0.113.50").await;
    assert_eq!(seen.last(), Some(&429), "{seen:?}");
    let alerts = mails_to(
        &s,
        "owner@example.com",
        "Someone who knows your password is trying to sign in",
    );
    assert_eq!(alerts.len(), 1, "one alert per run of failures");
}

#[tokio::test]
async fn emailed_codes_are_capped_per_account_per_hour() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    settings(&s, &owner, &[("second_factor", "required")]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            password_step(&s, "owner@example.com", PASSWORD, &[])
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 200, 429, 429],
        "{}",
        s.log()
    );
    assert_eq!(
        mails_to(&s, "owner@example.com", "Your Keyward sign-in code").len(),
        5
    );
}

#[tokio::test]
async fn a_browser_that_signed_in_before_keeps_its_allowance_during_an_attack() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    settings(
        &s,
        &owner,
        &[
            ("throttle_account_attempts", "1"),
            ("throttle_max_delay_secs", "600"),
        ],
    )
    .await;
    // The real user's browser signs in once and keeps its device cookie.
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.7")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let device = cookie_pair(&r, "keyward_device").expect("a device cookie after sign-in");
    // An attacker sprays wrong passwords from rotating addresses until the account is
    // throttled for everyone.
    let mut last = 0;
    for i in 0..40 {
        let xff = format!("203.0.113.{}", i + 1);
        last = password_step(
            &s,
            "owner@example.com",
            "wrong password!!",
            &[("x-forwarded-for", &xff)],
        )
        .await
        .status()
        .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "the account-wide scope is armed");
    // A few more, so the account-wide delay outlasts this test however slow the machine
    // (delays double with each attempt: 1, 2, 4 … seconds).
    for i in 40..48 {
        let xff = format!("203.0.113.{}", i + 1);
        password_step(
            &s,
            "owner@example.com",
            "wrong password!!",
            &[("x-forwarded-for", &xff)],
        )
        .await;
    }
    // A new browser, even with the right password, waits…
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "192.0.2.99")],
    )
    .await;
    assert_eq!(r.status(), 429);
    // A forged device cookie is worth nothing. (Checked before the real sign-in below:
    // that one hashes a password, which on a loaded machine can outlast the first
    // delays, while these refusals cost nothing.)
    let forged = format!("{}x", device);
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.8"), ("cookie", &forged)],
    )
    .await;
    assert_eq!(r.status(), 429);
    // The known browser signs in at once, from its own address.
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.7"), ("cookie", &device)],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn ipv6_addresses_are_counted_per_64() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    settings(
        &s,
        &owner,
        &[
            ("throttle_ip_attempts", "3"),
            ("throttle_max_delay_secs", "600"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 1..=6 {
        // Another address of the same /64 and another (unknown) account each time.
        let xff = format!("2001:db8:1:2::{i:x}");
        let email = format!("nobody{i}@example.com");
        statuses.push(
            password_step(&s, &email, "wrong password!!", &[("x-forwarded-for", &xff)])
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(
        statuses.contains(&429),
        "one /64 is one address: {statuses:?}"
    );
    // Another /64 is not held back.
    let r = password_step(
        &s,
        "nobody9@example.com",
        "wrong password!!",
        &[("x-forwarded-for", "2001:db8:1:3::1")],
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_owner_hears_of_a_new_browser_and_of_account_changes() {
    let s = Server::start(&[]).await;
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
        )],
    )
    .await;
    assert_eq!(r.status(), 200);
    let device = cookie_pair(&r, "keyward_device").unwrap();
    let new_browser = "New sign-in to your Keyward account";
    let mails = mails_to(&s, "owner@example.com", new_browser);
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Chrome on Linux") && mails[0].contains("127.0.0.1"),
        "{}",
        mails[0]
    );
    // The same browser again: no new mail.
    let r = password_step(&s, "owner@example.com", PASSWORD, &[("cookie", &device)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(mails_to(&s, "owner@example.com", new_browser).len(), 1);
    // A key created in the owner's name.
    let session = session_cookie(&r).unwrap();
    let app = access::make_app(&s, &session, "Billing", "").await;
    access::make_key(&s, &session, app, 3).await;
    assert_eq!(
        mails_to(
            &s,
            "owner@example.com",
            "A new API key was created in your name"
        )
        .len(),
        1
    );
    // A password change.
    let r = post_fn(
        &s,
        Some(&session),
        "/fn/account/password",
        &pairs(&[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
            ("confirm_password", "a brand new passphrase"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        mails_to(&s, "owner@example.com", "Your Keyward password was changed").len(),
        1
    );
}

#[tokio::test]
async fn someone_with_the_password_cannot_lock_the_owner_s_browser_out_of_the_second_step() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    settings(&s, &owner, &[("second_factor", "required")]).await;
    // The owner's browser signs in once (password, then the emailed code).
    let r = password_step(&s, "owner@example.com", PASSWORD, &[]).await;
    assert_eq!(r.status(), 200);
    let pending = session_cookie(&r).unwrap();
    let mail = mails_to(&s, "owner@example.com", "Your Keyward sign-in code")
        .pop()
        .unwrap();
    let at = mail.find("sign-in code is ").unwrap() + "sign-in code is ".len();
    let code = mail[at..at + 6].to_owned();
    let r = post_fn(
        &s,
        Some(&pending),
        "/fn/auth/verify",
        &pairs(&[("code", &code)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let device = cookie_pair(&r, "keyward_device").expect("a device cookie after the second step");
    // Someone with the password, elsewhere, fails codes and uses up the code mails.
    for i in 0..6 {
        let xff = format!("203.0.113.{}", i + 1);
        let r = password_step(
            &s,
            "owner@example.com",
            PASSWORD,
            &[("x-forwarded-for", &xff)],
        )
        .await;
        if r.status() != 200 {
            assert_eq!(r.status(), 429);
            continue;
        }
        let attacker = session_cookie(&r).unwrap();
        for _ in 0..3 {
            post_fn(
                &s,
                Some(&attacker),
                "/fn/auth/verify",
                &pairs(&[("code", "000000")]),
            )
            .await;
        }
    }
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "203.0.113.99")],
    )
    .await;
    assert_eq!(
        r.status(),
        429,
        "the account is held back for everyone else"
    );
    // The owner's browser still gets a code and signs in.
    let before = mails_to(&s, "owner@example.com", "Your Keyward sign-in code").len();
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.7"), ("cookie", &device)],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let pending = session_cookie(&r).unwrap();
    let mails = mails_to(&s, "owner@example.com", "Your Keyward sign-in code");
    assert_eq!(mails.len(), before + 1);
    let mail = mails.last().unwrap();
    let at = mail.find("sign-in code is ").unwrap() + "sign-in code is ".len();
    let code = mail[at..at + 6].to_owned();
    let r = client()
        .post(s.url("/fn/auth/verify"))
        .header("origin", &s.base)
        .header("cookie", format!("{pending}; {device}"))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_password_change_ends_every_device_token_but_the_changing_browser_s() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    settings(
        &s,
        &owner,
        &[
            ("throttle_account_attempts", "1"),
            ("throttle_max_delay_secs", "600"),
        ],
    )
    .await;
    // Two browsers signed in once: the old one (someone who once knew the password)
    // and the owner's, which then changes the password.
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.1")],
    )
    .await;
    let old_device = cookie_pair(&r, "keyward_device").unwrap();
    let r = password_step(
        &s,
        "owner@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.2")],
    )
    .await;
    let session = session_cookie(&r).unwrap();
    let new_password = "another long passphrase";
    let r = post_fn(
        &s,
        Some(&session),
        "/fn/account/password",
        &pairs(&[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("confirm_password", new_password),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let device = cookie_pair(&r, "keyward_device").expect("the changing browser's new token");
    // The account is then throttled for everyone else.
    let mut last = 0;
    for i in 0..40 {
        let xff = format!("203.0.113.{}", i + 1);
        last = password_step(
            &s,
            "owner@example.com",
            "wrong password!!",
            &[("x-forwarded-for", &xff)],
        )
        .await
        .status()
        .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    // The old token no longer has an allowance of its own…
    let r = password_step(
        &s,
        "owner@example.com",
        "a guess at the new one",
        &[("x-forwarded-for", "198.51.100.1"), ("cookie", &old_device)],
    )
    .await;
    assert_eq!(r.status(), 429);
    // …the owner's browser does.
    let r = password_step(
        &s,
        "owner@example.com",
        new_password,
        &[("x-forwarded-for", "198.51.100.2"), ("cookie", &device)],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn setting_up_an_authenticator_asks_for_a_stale_password() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    panel_security::age_sudo(&s).await;
    let r = post_fn(&s, Some(&owner), "/fn/account/totp/start", &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Confirm your password"));
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/account/totp/confirm",
        &pairs(&[("code", "123456")]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/auth/sudo",
        &pairs(&[("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post_fn(&s, Some(&owner), "/fn/account/totp/start", &[]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn device_tokens_made_before_a_second_factor_was_required_no_longer_count() {
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    make_user(&s, &owner, "v@example.com", 5).await;
    // While the password alone signs in, anyone with it can collect device tokens.
    let r = password_step(
        &s,
        "v@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.9")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let early = cookie_pair(&r, "keyward_device").unwrap();
    // Then a second factor is required: tokens made without one are void.
    settings(
        &s,
        &owner,
        &[
            ("second_factor", "required"),
            ("throttle_account_attempts", "1"),
            ("throttle_max_delay_secs", "600"),
        ],
    )
    .await;
    let mut last = 0;
    for i in 0..40 {
        let xff = format!("203.0.113.{}", i + 1);
        last = password_step(
            &s,
            "v@example.com",
            "wrong password!!",
            &[("x-forwarded-for", &xff)],
        )
        .await
        .status()
        .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    let r = password_step(
        &s,
        "v@example.com",
        PASSWORD,
        &[("x-forwarded-for", "198.51.100.9"), ("cookie", &early)],
    )
    .await;
    assert_eq!(
        r.status(),
        429,
        "the early token has no allowance of its own any more"
    );
}
