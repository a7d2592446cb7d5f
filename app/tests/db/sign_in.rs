//! Sign-in throttling, TOTP, emailed codes and invitations.

use super::*;

#[tokio::test]
async fn throttling_grows_and_ends_on_its_own() {
    on_both(|db| async move {
        let s = SecuritySettings {
            throttle_account_attempts: 2,
            throttle_ip_attempts: 100,
            throttle_max_delay_secs: 8,
            ..SecuritySettings::default()
        };
        let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
        let other_ip: std::net::IpAddr = "203.0.113.1".parse().unwrap();
        let mut now = 1_000_000;
        // Two free attempts, the third sets a 1 s delay.
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 1
            })
        );
        // The same account from another address is not slowed (the real user gets in).
        throttle::attempt(&db, &s, now, "ada@example.com", other_ip, None)
            .await
            .unwrap();
        // Delays double: 2 s, then 4 s, then capped at 8 s.
        now += 1;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 2
            })
        );
        now += 2;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        now += 4;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        now += 8;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        assert_eq!(
            throttle::attempt(&db, &s, now, "ada@example.com", ip, None).await,
            Err(AppError::RateLimited {
                retry_after_secs: 8
            })
        );
        // The lock ends on its own; a success forgets the account's failures.
        now += 8;
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::succeeded(&db, &s, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        throttle::attempt(&db, &s, now, "ada@example.com", ip, None)
            .await
            .unwrap();
        // Parallel attempts are counted one by one: of ten at once, at most the free
        // ones and the one that sets the delay get through.
        let fresh = "grace@example.com";
        let results = futures_join_all(&db, &s, now, fresh, ip, 10).await;
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 3, "{results:?}");
        // No email or address is stored in the clear.
        let rows: Vec<(String,)> = sqlx::query_as("select scope from sign_in_throttle")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert!(rows.iter().all(|(k,)| k.len() == 64 && !k.contains('@')));
    })
    .await;
}

#[tokio::test]
async fn totp_enrolment_and_single_use_codes() {
    on_both(|db| async move {
        let key = [7u8; 32];
        let o = Origin::default();
        let uid = add_user(&db, "t@example.com", UserStatus::Active).await;
        let now = 1_800_000_000;
        assert!(!totp::is_enrolled(&db, uid).await.unwrap());
        let p = totp::start(&db, &key, now, uid, "t@example.com").await.unwrap();
        assert!(p.otpauth_url.starts_with("otpauth://totp/Keyward:t%40example.com?"), "{}", p.otpauth_url);
        assert!(p.qr_svg.contains("<svg"));
        // The seed at rest is not the secret in any readable form.
        let (enc,): (String,) = sqlx::query_as("select secret_enc from user_totp where user_id = $1")
            .bind(uid).fetch_one(&db.pool).await.unwrap();
        assert!(!enc.contains(&p.secret_base32));
        let secret = totp_rs::Secret::Encoded(p.secret_base32.clone()).to_bytes().unwrap();

        // A wrong code does not confirm; the right one does and gives 10 recovery codes.
        let core = core_at(&db, now);
        let cx = Ctx::new(&core, &o);
        assert!(totp::confirm(&cx, uid, "t@example.com", "000000").await.is_err() || totp::code_at(&secret, now) == "000000");
        let codes = totp::confirm(&cx, uid, "t@example.com", &totp::code_at(&secret, now)).await.unwrap();
        assert_eq!(codes.len(), 10);
        assert!(totp::is_enrolled(&db, uid).await.unwrap());
        // Starting again while enrolled is refused.
        assert!(matches!(totp::start(&db, &key, now, uid, "t@example.com").await, Err(AppError::Conflict(_))));

        // The code used to confirm cannot sign in (same step); the next step's can, once,
        // even when submitted twice at the same instant.
        let same = totp::code_at(&secret, now);
        assert_eq!(totp::verify(&db, &key, now, uid, &same).await.unwrap(), None);
        let next = totp::code_at(&secret, now + 30);
        let (a, b) = tokio::join!(
            totp::verify(&db, &key, now + 30, uid, &next),
            totp::verify(&db, &key, now + 30, uid, &next),
        );
        let accepted = [a.unwrap(), b.unwrap()].iter().filter(|r| r.is_some()).count();
        assert_eq!(accepted, 1);
        // Two steps away: refused.
        assert_eq!(totp::verify(&db, &key, now + 30, uid, &totp::code_at(&secret, now + 120)).await.unwrap(), None);

        // Recovery codes: each once, case and dashes ignored.
        let rc = codes[0].to_uppercase().replace('-', "");
        assert_eq!(totp::verify(&db, &key, now + 60, uid, &rc).await.unwrap(), Some("recovery_code"));
        assert_eq!(totp::verify(&db, &key, now + 60, uid, &codes[0]).await.unwrap(), None);
        assert_eq!(totp::recovery_codes_left(&db, uid).await.unwrap(), 9);

        // A seed encrypted for one user does not open as another's.
        let other = add_user(&db, "u@example.com", UserStatus::Active).await;
        sqlx::query("insert into user_totp (user_id, secret_enc, confirmed_at, last_step, created_at, updated_at) values ($1, $2, 1, -1, 1, 1)")
            .bind(other).bind(&enc).execute(&db.pool).await.unwrap();
        assert_eq!(totp::verify(&db, &key, now + 90, other, &totp::code_at(&secret, now + 90)).await, Err(AppError::Internal));
    })
    .await;
}

#[tokio::test]
async fn email_codes_are_single_use_bound_and_burnt() {
    on_both(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "keyward@example.com", dir.path().join("outbox")).unwrap();
        let o = Origin {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        let uid = add_user(&db, "e@example.com", UserStatus::Active).await;
        let now = 1_800_000_000;
        let send = email_code::Send {
            user_id: uid,
            email: "e@example.com",
            via: email_code::Via::Email(&mailer),
            purpose: email_code::Purpose::SignIn,
        };
        email_code::issue(
            &db,
            now,
            &send,
            &email_code::Attempt {
                id: "attempt-a",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        // Resending at once is throttled.
        assert!(matches!(
            email_code::issue(
                &db,
                now + 5,
                &send,
                &email_code::Attempt {
                    id: "attempt-a",
                    device: None
                },
                &o
            )
            .await,
            Err(AppError::RateLimited {
                retry_after_secs: 25
            })
        ));
        // Bound to its attempt.
        assert!(!email_code::check(&db, now, uid, "attempt-b", &code)
            .await
            .unwrap());
        // Twice at the same instant: accepted once.
        let (a, b) = tokio::join!(
            email_code::check(&db, now + 1, uid, "attempt-a", &code),
            email_code::check(&db, now + 1, uid, "attempt-a", &code),
        );
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);

        // Expiry after 10 minutes.
        email_code::issue(
            &db,
            now,
            &send,
            &email_code::Attempt {
                id: "attempt-c",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        assert!(!email_code::check(&db, now + 600, uid, "attempt-c", &code)
            .await
            .unwrap());

        // Five wrong tries burn the code: the right one is refused afterwards.
        email_code::issue(
            &db,
            now,
            &send,
            &email_code::Attempt {
                id: "attempt-d",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let code = read_code(dir.path());
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            assert!(!email_code::check(&db, now + 1, uid, "attempt-d", wrong)
                .await
                .unwrap());
        }
        assert!(!email_code::check(&db, now + 2, uid, "attempt-d", &code)
            .await
            .unwrap());
        // A resend replaces the old code.
        email_code::issue(
            &db,
            now + 40,
            &send,
            &email_code::Attempt {
                id: "attempt-d",
                device: None,
            },
            &o,
        )
        .await
        .unwrap();
        let fresh = read_code(dir.path());
        assert!(email_code::check(&db, now + 41, uid, "attempt-d", &fresh)
            .await
            .unwrap());
    })
    .await;
}

#[tokio::test]
async fn invitation_links_expire_after_72_hours() {
    on_both(|db| async move {
        use app::core::identity::invitations::{self, Invite, LinkState};
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "keyward@example.com", dir.path().join("outbox")).unwrap();
        let config = Config::from_sources(None, &[]).unwrap();
        let o = Origin::default();
        let owner = user_with_role(&db, "owner@example.com", BuiltinRole::Owner.id()).await;
        let p = principal(&db, owner).await;
        let g = p.require(Permission::UserManage).unwrap();
        let now = 1_800_000_000;
        let inv = Invite { email: "late@example.com", display_name: None, role_id: BuiltinRole::Viewer.id() };
        invitations::invite(&db, &config, &mailer, now, &g, &o, &inv).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let mail = std::fs::read_to_string(files.last().unwrap()).unwrap();
        let at = mail.find("/invite/").unwrap() + "/invite/".len();
        let token: String = mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        assert_eq!(token.len(), 43);
        // The token is not stored; its hash is.
        let (n,): (i64,) = sqlx::query_as("select count(*) from invitations where token_hash = $1")
            .bind(&token).fetch_one(&db.pool).await.unwrap();
        assert_eq!(n, 0);
        let last_second = now + invitations::VALID_SECS - 1;
        assert_eq!(
            invitations::lookup(&db, last_second, &token).await.unwrap(),
            LinkState::Valid { email: "late@example.com".into(), display_name: "late".into() }
        );
        let expired = now + invitations::VALID_SECS;
        assert_eq!(invitations::lookup(&db, expired, &token).await.unwrap(), LinkState::Expired);
        let hasher = Hasher::new(1);
        let r = invitations::accept(&db, &config, &hasher, expired, &o, &late(&token)).await;
        assert!(matches!(r, Err(AppError::Validation { ref message, .. }) if message.contains("expired")), "{r:?}");
        // Within the time it works, once.
        invitations::accept(&db, &config, &hasher, last_second, &o, &late(&token)).await.unwrap();
        assert_eq!(invitations::lookup(&db, last_second, &token).await.unwrap(), LinkState::Used);
        let u = users::find_by_email(&db, "late@example.com").await.unwrap().unwrap();
        assert_eq!((u.status, u.role_id, u.display_name.as_str()), (UserStatus::Active, BuiltinRole::Viewer.id(), "Late"));
    })
    .await;
}
