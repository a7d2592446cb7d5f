//! `keyward scan PATH…`: finds Keyward secret keys in files (see `core::keys::scan`)
//! and says where, never what: FILE:LINE, the key's prefix and last four characters,
//! and its id and status when this instance's database knows it. Exits 1 when it found
//! any, so a pre-commit hook or a CI step fails.
//!
//! The database is only read: a SQLite file is opened read-only and only if it exists
//! (scanning a checkout must not create one there); a database that cannot be opened
//! leaves the ids out, with a note.

use crate::setup::CliError;
use app::core::infra::{config::Config, db::Db};
use app::core::keys::scan;
use std::path::PathBuf;

/// Files larger than this are skipped, with a note (a key sits in source, config and
/// logs, not in disk images).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

async fn open_read_only(config: &Config) -> Option<Db> {
    let url = config.database_url.expose();
    let url = if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or_default();
        if !std::path::Path::new(path).exists() {
            return None;
        }
        format!("sqlite://{path}?mode=ro")
    } else {
        url.clone()
    };
    match Db::connect(&url).await {
        Ok(db) => Some(db),
        Err(e) => {
            eprintln!("keyward: key ids left out: {e}");
            None
        }
    }
}

pub async fn run(config: &Config, paths: &[PathBuf]) -> Result<(), CliError> {
    let db = open_read_only(config).await;
    let mut found = 0usize;
    for root in paths {
        if !root.exists() {
            return Err(CliError::Message(format!(
                "{}: no such file or folder",
                root.display()
            )));
        }
        for entry in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("keyward: skipped: {e}");
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            if entry.metadata().map(|m| m.len()).unwrap_or(0) > MAX_FILE_BYTES {
                eprintln!("keyward: skipped {} (larger than 64 MiB)", path.display());
                continue;
            }
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("keyward: skipped {}: {e}", path.display());
                    continue;
                }
            };
            for hit in scan::find(&bytes) {
                found += 1;
                let known = match &db {
                    Some(db) => describe(db, &hit.key).await,
                    None => String::new(),
                };
                println!(
                    "{}:{}: Keyward secret key {}{known}",
                    path.display(),
                    hit.line,
                    scan::redacted(&hit.key)
                );
            }
        }
    }
    if let Some(db) = db {
        db.pool.close().await;
    }
    match found {
        0 => Ok(()),
        1 => Err(CliError::Message("found 1 Keyward secret key".into())),
        n => Err(CliError::Message(format!("found {n} Keyward secret keys"))),
    }
}

/// ` (key_…, active)` when the database knows the key, ` (not a key of this
/// instance)` when it does not.
async fn describe(db: &Db, key: &str) -> String {
    match scan::known(db, key).await {
        Ok(Some((id, false))) => format!(" ({id}, active)"),
        Ok(Some((id, true))) => format!(" ({id}, revoked)"),
        Ok(None) => " (not a key of this instance)".into(),
        Err(_) => String::new(),
    }
}
