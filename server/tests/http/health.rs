use super::*;
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener as TokioListener, TcpStream},
    task::JoinHandle,
};

#[tokio::test]
async fn healthz_and_readyz_on_sqlite() {
    let s = Server::start(&[]).await;
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The database file was created on first start.
    assert!(s.dir.path().join("keyward.db").exists());
}

/// A TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    task: JoinHandle<()>,
}

async fn proxy(port: u16, upstream: String) -> Proxy {
    let listener = TokioListener::bind(("127.0.0.1", port)).await.unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect(upstream).await {
                    let _ = copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    Proxy { task }
}

// Multi-threaded: the proxy must keep running while the test blocks on child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database_without_a_restart() {
    let Ok(admin) = std::env::var("KEYWARD_TEST_POSTGRES_URL") else {
        eprintln!("KEYWARD_TEST_POSTGRES_URL not set: skipped");
        return;
    };
    // A fresh database, reached through a proxy on a port we control.
    sqlx::any::install_default_drivers();
    let name = format!("kw_http_{}", free_port());
    let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&pool)
        .await
        .unwrap();
    let hostport = admin
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let user = admin
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let pport = free_port();
    let url = format!("postgres://{user}@127.0.0.1:{pport}/{name}");

    let p = proxy(pport, hostport.clone()).await;
    let s = Server::start(&[("KEYWARD_DATABASE_URL", &url)]).await;
    let ready = || async {
        client()
            .get(s.url("/readyz"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ready().await, 200);

    // Cut the database off: listener and every open connection.
    p.task.abort();
    let _ = p.task.await;
    // Connections already open outlive the listener: end them on the PostgreSQL side.
    sqlx::query(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let mut saw_503 = false;
    for _ in 0..40 {
        if ready().await == 503 {
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(saw_503, "readyz never reported the database down");
    // The process is still up.
    assert_eq!(
        client()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Bring it back: ready again, same process.
    let _p = proxy(pport, hostport).await;
    let mut back = false;
    for _ in 0..40 {
        if ready().await == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "readyz did not recover:\n{}", s.log());
    drop(s);
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request() {
    let s = Server::start(&[
        ("KEYWARD_LOG_FORMAT", "json"),
        ("KEYWARD_LOG", "info,keyward::access=debug"),
    ])
    .await;
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A line with fields of its own, from inside a request: a failed sign-in.
    let r = s
        .login_form("owner@example.com", "wrong \"password\"\nforged line", &[])
        .await;
    assert_eq!(r.status(), 400, "the form again with the error");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log();
    let mut lines = Vec::new();
    for line in log.lines() {
        if line.starts_with("keyward: ") {
            continue; // the start-up notice on standard error, not a log line
        }
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(v["level"].is_string() && v["target"].is_string(), "{line}");
        lines.push(v);
    }
    let access = lines
        .iter()
        .find(|v| v["target"] == "keyward::access" && v["request_id"] == rid.as_str())
        .expect("the access line of the /healthz request");
    assert_eq!(access["path"], "/healthz");
    assert_eq!(access["route"], "/healthz");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert!(access["latency_ms"].as_f64().unwrap() >= 0.0);
    let failed = lines
        .iter()
        .find(|v| v["message"] == "sign-in failed")
        .expect("the failed sign-in's line");
    assert_eq!(failed["reason"], "wrong_password");
    assert_eq!(failed["path"], "/fn/auth/login");
    assert!(!log.contains("forged line"), "the password is never logged");
}

#[test]
fn an_unknown_log_format_stops_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let out = command(&dir, &url)
        .env("KEYWARD_LOG_FORMAT", "xml")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("KEYWARD_LOG_FORMAT must be text or json, not \"xml\""));
}
