use super::access::{make_app, make_key, pairs, post_fn};
use super::api::call;
use super::*;

fn run(
    dir: &tempfile::TempDir,
    db_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut cmd = command(dir, db_url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("k.db").display())
}

#[test]
fn malformed_config_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    for (var, value) in [
        ("KEYWARD_LISTEN", "localhost"),
        ("KEYWARD_ENV", "staging"),
        ("KEYWARD_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("KEYWARD_PUBLIC_URL", "keys.example.com"),
        ("KEYWARD_MASTER_KEY", "not base64!"),
    ] {
        let out = run(&dir, &db, &[(var, value)], &["serve"], None);
        assert!(!out.status.success(), "{var}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}: {err}");
    }
    // A malformed keyward.toml too.
    std::fs::write(dir.path().join("keyward.toml"), "listen = [\n").unwrap();
    let out = run(&dir, &db, &[], &["migrate"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("configuration error"));
}

#[test]
fn production_without_smtp_or_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &dir,
        &sqlite(&dir),
        &[("KEYWARD_ENV", "production")],
        &["serve"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYWARD_SMTP_URL"));
    let out = run(
        &dir,
        &sqlite(&dir),
        &[
            ("KEYWARD_ENV", "production"),
            ("KEYWARD_SMTP_URL", "smtp://127.0.0.1:2525"),
        ],
        &["serve"],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KEYWARD_MASTER_KEY") && err.contains("openssl rand -base64 32"),
        "{err}"
    );
}

#[test]
fn unreachable_database_is_a_clear_error_and_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("postgres://keyward:s3cret@127.0.0.1:{port}/keyward");
    let out = run(&dir, &url, &[], &["migrate"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot open the database at postgres://…@127.0.0.1:{port}/keyward"
        )),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "the password leaked: {err}");
    // A SQLite file in a folder that does not exist.
    let out = run(
        &dir,
        "sqlite:///nonexistent/dir/k.db",
        &[],
        &["migrate"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the database"));
}

#[test]
fn admin_create_from_stdin_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let out = run(
        &dir,
        &db,
        &[],
        &["admin", "create", "--email", "Ada@Example.com"],
        Some("correct horse battery\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created Owner ada@example.com"));

    let pw = dir.path().join("pw");
    std::fs::write(&pw, "another long password\n").unwrap();
    let out = run(
        &dir,
        &db,
        &[],
        &[
            "admin",
            "create",
            "--email",
            "bob@example.com",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");

    // Duplicate (compared case-insensitively), short password, bad email: refused with a reason.
    let out = run(
        &dir,
        &db,
        &[],
        &["admin", "create", "--email", "ADA@example.com"],
        Some("correct horse battery\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = run(
        &dir,
        &db,
        &[],
        &["admin", "create", "--email", "c@example.com"],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    let out = run(
        &dir,
        &db,
        &[],
        &["admin", "create", "--email", "c@example.com"],
        Some(&format!("{}\n", "x".repeat(129))),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 128"));
    let out = run(
        &dir,
        &db,
        &[],
        &["admin", "create", "--email", "a@b.com, c@d.com"],
        Some("correct horse battery\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email"));
}

#[tokio::test]
async fn healthcheck_command() {
    let s = Server::start(&[]).await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let out = run(
        &s.dir,
        &s.db_url,
        &[("KEYWARD_LISTEN", &format!("127.0.0.1:{port}"))],
        &["healthcheck"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    // A port held by something that is not Keyward (so no other test's server can take
    // it meanwhile): it closes every connection without an answer.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in other.incoming() {
            drop(conn);
        }
    });
    let out = run(
        &s.dir,
        &s.db_url,
        &[("KEYWARD_LISTEN", &format!("127.0.0.1:{other_port}"))],
        &["healthcheck"],
        None,
    );
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_email_goes_over_smtp_or_to_the_outbox_that_the_cli_lists() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // Development without SMTP: an .eml in the outbox, listed and shown by `outbox`.
    let out = run(&dir, &db, &[], &["outbox"], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("is empty"), "{out:?}");
    let out = run(
        &dir,
        &db,
        &[],
        &["send-test-email", "--to", "ops@example.com"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("development outbox"), "{out:?}");
    let out = run(&dir, &db, &[], &["outbox"], None);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains("to ops@example.com"), "{listing}");
    assert!(listing.contains("Keyward test message"), "{listing}");
    let out = run(&dir, &db, &[], &["outbox", "--last"], None);
    let mail = text(&out.stdout);
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(
        mail.contains("This is a test message from Keyward"),
        "{mail}"
    );

    // A bad address: a clear error, nothing written.
    let out = run(
        &dir,
        &db,
        &[],
        &["send-test-email", "--to", "not an address"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid address"), "{out:?}");

    // SMTP: the server receives it.
    let sink = messages::SmtpSink::start().await;
    let url = sink.url();
    // (`run` blocks its thread: the test runs on several so that the sink can answer.)
    let out = run(
        &dir,
        &db,
        &[("KEYWARD_SMTP_URL", &url)],
        &["send-test-email", "--to", "ops@example.com"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("SMTP server accepted"),
        "{out:?}"
    );
    assert_eq!(sink.to("ops@example.com").len(), 1);

    // An SMTP server that is not there: a clear error and a failing exit code.
    let down = format!("smtp://127.0.0.1:{}", free_port());
    let out = run(
        &dir,
        &db,
        &[("KEYWARD_SMTP_URL", &down)],
        &["send-test-email", "--to", "ops@example.com"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the test message was not sent"),
        "{out:?}"
    );
}

#[tokio::test]
async fn scan_finds_exactly_the_real_key_says_where_and_never_prints_it() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 3).await;
    let (_, _, me) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    let key_id = me["key_id"].as_str().unwrap().to_owned();
    let src = tempfile::tempdir().unwrap();
    let mut typo = key.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    std::fs::create_dir(src.path().join("config")).unwrap();
    std::fs::write(
        src.path().join("config/app.env"),
        format!("# settings\nNAME=billing\nKEYWARD_KEY={key}\n"),
    )
    .unwrap();
    std::fs::write(
        src.path().join("README.md"),
        format!("Example: {typo}\nkw_live_your_key_here\nnothing else\n"),
    )
    .unwrap();
    let scan = |db_url: &str, path: &std::path::Path| {
        run(&s.dir, db_url, &[], &["scan", path.to_str().unwrap()], None)
    };
    let out = scan(&s.db_url, src.path());
    assert!(!out.status.success(), "a key found fails the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![format!(
            "{}:3: Keyward secret key kw_live_…{} ({key_id}, active)",
            src.path().join("config/app.env").display(),
            &key[key.len() - 4..]
        )],
        "exactly the real key"
    );
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !all.contains(&key[8..key.len() - 4]),
        "the secret is never printed"
    );
    // Nothing found: exit 0.
    let out = scan(&s.db_url, &src.path().join("README.md"));
    assert!(out.status.success(), "{out:?}");
    // Without a database the key is still found, and no database file is made.
    let elsewhere = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", elsewhere.path().join("none.db").display());
    let out = scan(&missing, src.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("app.env:3: Keyward secret key"));
    assert!(!elsewhere.path().join("none.db").exists());
}

#[tokio::test]
async fn master_key_rotate_reseals_everything_in_one_go_and_the_server_opens_it_after() {
    use base64::Engine as _;
    let mut s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // Something sealed of two kinds: a webhook secret and a revealable channel key.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[
            ("app_id", &app.to_string()),
            ("url", "https://hooks.example.com/k"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let app_s = app.to_string();
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/create",
        &pairs(&[
            ("channel", "rcs"),
            ("name", "rcs"),
            ("app_id", &app_s),
            ("environment", "live"),
            ("expiry", "never"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    let (key_id, secret) = (
        v["key_id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    );
    let new_key = s.dir.path().join("new.key");
    std::fs::write(
        &new_key,
        base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
    )
    .unwrap();
    let rotate = |file: &std::path::Path| {
        run(
            &s.dir,
            &s.db_url,
            &[],
            &[
                "master-key",
                "rotate",
                "--new-key-file",
                file.to_str().unwrap(),
            ],
            None,
        )
    };
    let out = rotate(&new_key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Re-sealed 0 TOTP seeds, 1 webhook secrets and 1 channel keys"),
        "{stdout}"
    );
    // The instance still running with the old key seals nothing more (503) and opens
    // nothing (503) until it is restarted with the new key.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/create",
        &pairs(&[
            ("channel", "whatsapp"),
            ("name", "late"),
            ("app_id", &app_s),
            ("environment", "live"),
            ("expiry", "never"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/reveal",
        &pairs(&[("key_id", &key_id)]),
    )
    .await;
    assert_eq!(r.status(), 503);
    // Again with the same key: refused, nothing changed.
    let out = rotate(&new_key);
    assert!(!out.status.success());
    // The development key file keeps its owner-only mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(s.dir.path().join("keyward.db.master-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Restarted, the server reads the new key and opens the channel key with it.
    s.kill_and_restart().await;
    let owner = s.sign_in().await;
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/reveal",
        &pairs(&[("key_id", &key_id)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["secret"], secret.as_str());
    let db = s.db().await;
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from audit_events where action = 'master_key.rotated'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(n, 1);
}
