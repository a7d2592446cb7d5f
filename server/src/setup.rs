//! What every command starts from: its error type, the database (connected and
//! migrated) and the master key.

use app::core::{
    infra::config::{Config, ConfigError, MasterKey, Secret},
    infra::db::{Db, DbError},
};
use base64::Engine as _;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Message(String),
}

/// Connects and migrates, with messages that say what to do.
pub async fn open_db(config: &Config) -> Result<Db, CliError> {
    let db = Db::connect(config.database_url.expose()).await?;
    db.migrate().await?;
    Ok(db)
}

/// The given key, or (development) the key kept beside the database, generated on first start.
pub fn load_master_key(mk: &MasterKey) -> Result<Secret<[u8; 32]>, CliError> {
    let path = match mk {
        MasterKey::Given(k) => return Ok(k.clone()),
        MasterKey::GenerateBeside(p) => p,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Message(format!(
                "cannot read the master key {}: {e}",
                path.display()
            ))
        })?;
        let bytes = b64.decode(text.trim()).map_err(|_| {
            CliError::Message(format!(
                "the master key file {} is not base64",
                path.display()
            ))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            CliError::Message(format!(
                "the master key file {} does not hold 32 bytes",
                path.display()
            ))
        })?;
        return Ok(Secret::new(key));
    }
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| {
        CliError::Message(format!(
            "cannot create the development master key {}: {e}",
            path.display()
        ))
    })?;
    std::io::Write::write_all(&mut f, format!("{}\n", b64.encode(key)).as_bytes())
        .map_err(|e| CliError::Message(e.to_string()))?;
    tracing::warn!(path = %path.display(), "generated a development master key; in production set KEYWARD_MASTER_KEY");
    Ok(Secret::new(key))
}
