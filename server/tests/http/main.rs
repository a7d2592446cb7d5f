//! HTTP tests against the real `keyward` binary, started on a free loopback port with a
//! fresh database. One test binary with modules, so it links once.
// Tests: an unwrap that fails is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod alerts;
mod api;
mod audit;
mod bundle;
mod channels;
mod cli;
mod edges;
mod events;
mod forms;
mod health;
mod key_page;
mod leaks;
mod lifecycle;
mod messages;
mod metrics;
mod overview;
mod panel_security;
mod privilege;
mod second_factor;
mod security;
mod sign_in;
mod sms;
mod workflows;

use std::{
    io::Write as _,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    log: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `keyward serve` on SQLite (unless `env` sets KEYWARD_DATABASE_URL) with an
    /// Owner `owner@example.com` / PASSWORD.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = env
            .iter()
            .find(|(k, _)| *k == "KEYWARD_DATABASE_URL")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("keyward.db").display()));
        let port = free_port();
        let log = dir.path().join("server.log");
        write_bundle(&dir.path().join("site/pkg"));
        let mut cmd = command(&dir, &db_url);
        cmd.env("KEYWARD_LISTEN", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .args([
                "admin",
                "create",
                "--email",
                "owner@example.com",
                "--name",
                "Olive",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        feed(out, PASSWORD);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, port) = serve_own_port(&dir, &db_url, &env, &log, port).await;
        let s = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            db_url,
            log,
            env,
            port,
        };
        s.wait_healthy().await;
        s
    }

    /// Kills the process at once (SIGKILL: no graceful shutdown), then starts it again
    /// on the same database and, unless another test's server took it meanwhile, the
    /// same port.
    pub async fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, port) =
            serve_own_port(&self.dir, &self.db_url, &self.env, &self.log, self.port).await;
        self.child = child;
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        self.wait_healthy().await;
    }

    /// Stops the process the way an orchestrator does (SIGTERM: graceful shutdown) and
    /// waits for it to exit.
    pub fn stop_gracefully(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = client().get(self.url("/healthz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not start:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db_url).await.unwrap()
    }

    /// Posts the sign-in form as a browser without JavaScript would.
    pub async fn login_form(
        &self,
        email: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = client()
            .post(self.url("/fn/auth/login"))
            .header("accept", "text/html")
            .header("origin", &self.base)
            .header("referer", self.url("/login"))
            .form(&[("email", email), ("password", password)]);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Asserts that `r` (a plain sign-in form post) was refused with the one generic
    /// message, the sign-in page drawn again with the email as typed and no password.
    pub async fn refused_sign_in(r: reqwest::Response, email: &str, password: &str) {
        assert_eq!(r.status(), 400);
        let html = r.text().await.unwrap();
        assert!(html.contains("Incorrect email or password."), "{html}");
        let typed = html_escape::encode_double_quoted_attribute(email);
        assert!(html.contains(&format!(r#"value="{typed}""#)), "{html}");
        if !password.is_empty() {
            assert!(!html.contains(password), "{html}");
        }
    }

    /// Signs in the Owner and returns the session cookie (`name=value`).
    pub async fn sign_in(&self) -> String {
        let r = self.login_form("owner@example.com", PASSWORD, &[]).await;
        assert_eq!(r.status(), 302, "{}", self.log());
        assert_eq!(r.headers()["location"], "/");
        session_cookie(&r).expect("sign-in sets the session cookie")
    }
}

/// A second `keyward serve` on the same database (another port), stopped on drop.
pub struct Instance {
    child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts another instance on `db_url`, in this server's folder, and waits for it.
    pub async fn second_instance(&self, db_url: &str) -> Instance {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(2);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("server-{n}.log"));
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "KEYWARD_DATABASE_URL")
            .cloned()
            .collect();
        let (child, port) = serve_own_port(&self.dir, db_url, &env, &log, free_port()).await;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client().get(format!("{base}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the second instance did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Instance { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `keyward serve` on `port` and returns once this very process listens there.
/// A port found free by `free_port` can be taken by another test's server before ours
/// binds it: two servers were once started on one port, and a test talked to the other
/// test's server and database. The process's own "listening" line in its own log is
/// the proof; a port lost to that race is replaced by another.
async fn serve_own_port(
    dir: &tempfile::TempDir,
    db_url: &str,
    env: &[(String, String)],
    log: &std::path::Path,
    mut port: u16,
) -> (Child, u16) {
    for _ in 0..5 {
        let from = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0) as usize;
        let mut child = spawn_serve(dir, db_url, port, env, log);
        let listening = format!("keyward: listening on http://127.0.0.1:{port}\n");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = std::fs::read(log).unwrap_or_default();
            let ours = String::from_utf8_lossy(all.get(from..).unwrap_or_default());
            if ours.contains(&listening) {
                return (child, port);
            }
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    ours.contains("cannot listen"),
                    "keyward serve exited ({status}) before listening:\n{ours}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "keyward serve did not listen within 20 s:\n{ours}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        port = free_port();
    }
    panic!("keyward serve found no free port in 5 tries");
}

fn spawn_serve(
    dir: &tempfile::TempDir,
    db_url: &str,
    port: u16,
    env: &[(String, String)],
    log: &std::path::Path,
) -> Child {
    let mut cmd = command(dir, db_url);
    cmd.env("KEYWARD_LISTEN", format!("127.0.0.1:{port}"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    cmd.arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn command(dir: &tempfile::TempDir, db_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYWARD_DATABASE_URL", db_url)
        .env("KEYWARD_LOG", "info")
        .env("LEPTOS_SITE_ROOT", dir.path().join("site"));
    cmd
}

pub fn feed(mut child: Child, input: &str) {
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{input}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "admin create failed: {out:?}");
}

/// The content-addressed bundle of every test server: what `scripts/build.sh` writes (a
/// folder named by its content holding the main module, the stylesheet, the pages'
/// chunks and their manifest), with recognisable stand-ins for the files and their
/// compressed forms.
pub const BUNDLE: &str = "keyward-00112233aabbccdd";

/// A page's chunk in the stand-in bundle.
pub const CHUNK: &str = "split_overview_0";

fn write_bundle(pkg: &std::path::Path) {
    let dir = pkg.join(BUNDLE);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(pkg.join("keyward.css"), "body{}").unwrap();
    for f in [
        "keyward.js",
        "keyward.wasm",
        "keyward.css",
        "__wasm_split.js",
        &format!("{CHUNK}.wasm"),
    ] {
        let ext = f.rsplit('.').next().unwrap();
        std::fs::write(dir.join(f), format!("plain {ext}")).unwrap();
        std::fs::write(dir.join(format!("{f}.br")), format!("brotli {ext}")).unwrap();
        std::fs::write(dir.join(format!("{f}.gz")), format!("gzip {ext}")).unwrap();
    }
    // A manifest naming a file outside the bundle: never linked (the real one is tried
    // by the browser tests, whose bundle is built).
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"not_a_page":["../../keyward.db"]}"#,
    )
    .unwrap();
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `keyward_session=…` pair from a response's Set-Cookie, if any.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    set_cookie(r).map(|c| c.split(';').next().unwrap().to_owned())
}

pub fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("keyward_session=") || c.starts_with("__Host-keyward_session="))
}

/// A fresh PostgreSQL database for one test (when KEYWARD_TEST_POSTGRES_URL is set);
/// `drop` removes it.
pub struct PgDb {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> Option<Self> {
        let Ok(admin) = std::env::var("KEYWARD_TEST_POSTGRES_URL") else {
            eprintln!("KEYWARD_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("kw_http_{}_{}", std::process::id(), free_port());
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        sqlx::query(&format!("create database {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let base = admin.split('?').next().unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        Some(Self { admin, name, url })
    }

    pub async fn drop(self) {
        let pool = sqlx::AnyPool::connect(&self.admin).await.unwrap();
        sqlx::query(&format!(
            "drop database if exists {} with (force)",
            self.name
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
}

/// Runs `f` against a server on SQLite, then (when KEYWARD_TEST_POSTGRES_URL is set) on
/// a fresh PostgreSQL database; `f` gets the extra environment for `Server::start`.
pub async fn on_sqlite_and_postgres<F, Fut>(f: F)
where
    F: Fn(Vec<(String, String)>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f(Vec::new()).await;
    if let Some(pg) = PgDb::create().await {
        f(vec![("KEYWARD_DATABASE_URL".into(), pg.url.clone())]).await;
        pg.drop().await;
    }
}

/// `Server::start` with owned environment pairs.
pub async fn start_with(env: &[(String, String)], more: &[(&str, &str)]) -> Server {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(more);
    Server::start(&all).await
}

/// The mail files in a server's development outbox, oldest first.
pub fn outbox(s: &Server) -> Vec<String> {
    let dir = s.dir.path().join("outbox");
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

/// The mails to `to` whose subject is `subject`.
pub fn mails_to(s: &Server, to: &str, subject: &str) -> Vec<String> {
    outbox(s)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {to}")) && m.contains(&format!("Subject: {subject}")))
        .collect()
}
