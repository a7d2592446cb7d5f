//! Subcommands: `serve` (default), `migrate`, `admin create`, `healthcheck`.

use app::core::{
    audit::{Actor, Origin},
    clock::Clock,
    config::{Config, ConfigError},
    db::{Db, DbError},
    password::Hasher,
    users::{self, Registration},
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
    /// List every panel page and server function the binary serves (one per line:
    /// KIND METHOD PATH), e.g. to review what is exposed.
    Routes,
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

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Message(String),
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    if matches!(cli.command, Some(Command::Routes)) {
        for line in crate::router::listing() {
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
                app::core::db::describe(config.database_url.expose())
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
        Command::Healthcheck => crate::health::check(&config).await,
        Command::Routes => Ok(()),
    }
}

/// Connects and migrates, with messages that say what to do.
pub async fn open_db(config: &Config) -> Result<Db, CliError> {
    let db = Db::connect(config.database_url.expose()).await?;
    db.migrate().await?;
    Ok(db)
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
        Actor::System,
        &Origin::default(),
        "cli",
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
