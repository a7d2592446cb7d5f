//! Subcommands: `serve` (default), `migrate`, `admin create`, `healthcheck`,
//! `send-test-email`, `outbox`, `scan`, `audit verify`, `routes`, `master-key rotate`.

use crate::setup::{open_db, CliError};
use app::core::{
    audit::Origin,
    identity::users::{self, Registration},
    infra::clock::Clock,
    infra::config::Config,
    infra::db::Db,
    infra::password::Hasher,
};
use app::{error::AppError, roles::BuiltinRole};
use clap::{Parser, Subcommand};
use std::{io::Read as _, path::PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "keyward",
    version,
    about = "Issues, guards and audits API keys"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the panel and REST API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage panel users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Ask the running server's /healthz (for container health checks).
    Healthcheck,
    /// Send a test message with the configured mail settings (SMTP, or the development
    /// outbox when none is configured) and say where it went.
    SendTestEmail {
        #[arg(long)]
        to: String,
    },
    /// List the development outbox (mail written when no SMTP server is configured),
    /// oldest first.
    Outbox {
        /// Print the newest message whole instead (e.g. to read a sign-in code).
        #[arg(long)]
        last: bool,
    },
    /// Look for Keyward secret keys in files (for pre-commit hooks and CI): prints
    /// FILE:LINE for each (never the secret), with the key's id when this instance's
    /// database knows it, and exits 1 when any was found.
    Scan {
        /// Files or folders (searched recursively; symbolic links are not followed).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List every panel page and server function the binary serves (one per line:
    /// KIND METHOD PATH), e.g. to review what is exposed.
    Routes,
    /// The master key that seals TOTP seeds, webhook secrets and revealable keys.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
}

#[derive(Subcommand, Debug)]
enum MasterKeyCommand {
    /// Re-seal everything sealed with the current master key with the key in FILE
    /// (base64 of 32 bytes, e.g. `openssl rand -base64 32 > FILE`), in one
    /// transaction. Stop every instance first; start them again with the new key.
    Rotate {
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the hash chain over every event and say whether it is intact; exits 1
    /// when an event was edited, deleted or inserted (and says which, and how).
    Verify,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an Owner. The password is read from --password-file, else from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Display name (defaults to the part of the email before the @).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `master-key rotate`: re-seals with the key in `file`; a development key kept beside
/// the database is replaced by it once the database is committed.
async fn rotate_master_key(config: &Config, file: &std::path::Path) -> Result<(), CliError> {
    use app::core::infra::config::MasterKey;
    if !file.is_file() {
        return Err(msg(format!(
            "the new key file {} does not exist or is not a file",
            file.display()
        )));
    }
    // (An existing file is read and checked, never created.)
    let new = crate::setup::load_master_key(&MasterKey::GenerateBeside(file.to_path_buf()))?;
    let old = crate::setup::load_master_key(&config.master_key)?;
    let db = open_db(config).await?;
    let now = Clock::system().now();
    let done = app::core::master_key::rotate(&db, now, old.expose(), new.expose())
        .await
        .map_err(|e| msg(e.to_string()))?;
    db.pool.close().await;
    println!(
        "Re-sealed {} TOTP seeds, {} webhook secrets and {} channel keys with the new master key.",
        done.totp_seeds, done.webhook_secrets, done.channel_keys
    );
    match &config.master_key {
        MasterKey::GenerateBeside(path) => {
            let staged = path.with_extension("master-key.new");
            let write = || -> std::io::Result<()> {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD;
                let _ = std::fs::remove_file(&staged);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&staged)?;
                let text = format!("{}\n", b64.encode(new.expose()));
                std::io::Write::write_all(&mut f, text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&staged, path)
            };
            write()
                .map_err(|e| {
                    msg(format!(
                        "the database now needs the new key, but {} could not be replaced ({e}): copy {} there before starting Keyward",
                        path.display(),
                        file.display()
                    ))
                })?;
            println!("The development key {} now holds the new key.", path.display());
        }
        MasterKey::Given(_) => println!(
            "Start every instance with the new key (KEYWARD_MASTER_KEY or KEYWARD_MASTER_KEY_FILE): the old one no longer opens what was re-sealed."
        ),
    }
    Ok(())
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    if matches!(cli.command, Some(Command::Routes)) {
        for line in crate::http::router::listing() {
            println!("{line}");
        }
        return Ok(());
    }
    let config = Config::load()?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::serve::serve(config).await,
        Command::Migrate => {
            let db = open_db(&config).await?;
            eprintln!(
                "keyward: database at {} is up to date",
                app::core::infra::db::describe(config.database_url.expose())
            );
            db.pool.close().await;
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password_file,
                    name,
                },
        } => {
            let db = open_db(&config).await?;
            let password = read_password(password_file)?;
            let id = create_owner(
                &db,
                &config,
                &Hasher::new(1),
                &Clock::system(),
                &email,
                name.as_deref(),
                &password,
            )
            .await?;
            println!(
                "Created Owner {} (user id {id}). Sign in at {}/login",
                email.trim().to_lowercase(),
                config.public_url.url
            );
            Ok(())
        }
        Command::Healthcheck => crate::http::health::check(&config).await,
        Command::Scan { paths } => crate::scan::run(&config, &paths).await,
        Command::MasterKey {
            command: MasterKeyCommand::Rotate { new_key_file },
        } => rotate_master_key(&config, &new_key_file).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let db = open_db(&config).await?;
            let state = app::core::audit::read::verify(&db)
                .await
                .map_err(|e| msg(format!("reading the audit log failed: {e}")))?;
            db.pool.close().await;
            match state.broken {
                None => {
                    println!("{}", state.sentence());
                    Ok(())
                }
                Some(_) => Err(msg(state.sentence())),
            }
        }
        Command::SendTestEmail { to } => {
            let mailer = app::core::infra::mail::Mailer::from_config(&config)
                .map_err(|e| msg(format!("mail configuration: {e}")))?;
            let done = mailer
                .send_test(to.trim(), &config.public_url.url)
                .await
                .map_err(|e| msg(format!("the test message was not sent: {e}")))?;
            println!("{done}");
            Ok(())
        }
        Command::Outbox { last } => {
            if config.smtp_url.is_some() {
                eprintln!(
                    "keyward: KEYWARD_SMTP_URL is set: mail goes over SMTP, not to the outbox"
                );
            }
            show_outbox(&config.outbox_dir, last)
        }
        Command::Routes => Ok(()),
    }
}

fn read_password(file: Option<PathBuf>) -> Result<String, CliError> {
    let mut text = String::new();
    match file {
        Some(path) => {
            text = std::fs::read_to_string(&path).map_err(|e| {
                msg(format!(
                    "cannot read --password-file {}: {e}",
                    path.display()
                ))
            })?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("Password for the new Owner (input is shown; prefer --password-file): ");
            }
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .map_err(|e| msg(format!("cannot read the password from standard input: {e}")))?;
        }
    }
    // One trailing newline belongs to the file or the terminal, not to the password.
    let pw = text
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&text);
    Ok(pw.to_owned())
}

pub async fn create_owner(
    db: &Db,
    config: &Config,
    hasher: &Hasher,
    clock: &Clock,
    email: &str,
    name: Option<&str>,
    password: &str,
) -> Result<i64, CliError> {
    let r = Registration {
        email,
        display_name: name,
        password,
        role_id: BuiltinRole::Owner.id(),
    };
    users::register(
        db,
        config,
        hasher,
        clock.now(),
        users::Registrar::Cli,
        &Origin::default(),
        &r,
    )
    .await
    .map_err(|e| match e {
        AppError::Validation { field, message } => {
            let flag = match field.as_str() {
                "email" => "--email",
                "display_name" => "--name",
                _ => "password",
            };
            msg(format!("{flag}: {message}"))
        }
        AppError::Internal => msg("database error (see the log above)"),
        other => msg(other.to_string()),
    })
}

/// Lists the outbox's mail (`.eml`) and SMS (`-sms.json`) files (their names start with
/// the time written, so name order is time order), or prints the newest whole.
fn show_outbox(dir: &std::path::Path, last: bool) -> Result<(), CliError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "eml")
                    || p.to_string_lossy().ends_with("-sms.json")
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(msg(format!(
                "cannot read the outbox {}: {e}",
                dir.display()
            )))
        }
    };
    files.sort();
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| msg(format!("cannot read {}: {e}", p.display())))
    };
    let Some(newest) = files.last() else {
        println!("The outbox {} is empty.", dir.display());
        return Ok(());
    };
    if last {
        print!("{}", read(newest)?.replace("\r\n", "\n"));
        return Ok(());
    }
    for f in &files {
        let eml = read(f)?;
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with("-sms.json") {
            let sms: serde_json::Value = serde_json::from_str(&eml).unwrap_or_default();
            let field = |k: &str| sms.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            println!("{name}  SMS  to {}  from {}", field("to"), field("from"));
            continue;
        }
        println!(
            "{name}  {}  to {}  {}",
            header(&eml, "Date"),
            header(&eml, "To"),
            header(&eml, "Subject")
        );
    }
    Ok(())
}

/// A header's value from a message's header block ("" when absent).
fn header<'a>(eml: &'a str, name: &str) -> &'a str {
    eml.lines()
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("")
}
