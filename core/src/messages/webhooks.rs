//! Webhook URLs an admin registers for an app (`/apps`, `app.manage`). A message on the
//! webhook channel names one of them; nobody types a free URL into a message, so a
//! message author cannot make Keyward POST to an address of their choosing.
//!
//! Where a webhook may go: any host an admin registers, including loopback and private
//! ranges (a self-hosted Keyward's webhooks normally go to the organisation's own
//! services), but never an unspecified, link-local, multicast or broadcast address.
//! Link-local is where cloud metadata services answer (169.254.169.254, fd00:ec2::254),
//! so a webhook can never be pointed at the instance's credentials. The rule is checked
//! on the URL when it is registered and on every address its host resolves to when a
//! message is sent (so a DNS name cannot be repointed there later).
//!
//! Each URL gets its own signing secret (`whsec_` + 32 base62 characters): sealed with
//! the master key at rest (the worker needs it to sign), shown once to the admin who
//! registers or regenerates it, so they can set it on the receiving side.

use crate::{
    access::Grant,
    audit::{self, Event, Origin},
    infra::db::{Db, OnUnique as _},
    infra::{crypto, outbound},
};
use model::error::AppError;
use model::roles::Permission;
use rand::{distributions::Alphanumeric, Rng as _};

pub const MAX_URL_CHARS: usize = 2000;

/// Checks a webhook URL: absolute `https://` (or `http://`), a host, no credentials.
pub fn parse_url(input: &str) -> Result<String, AppError> {
    let url = input.trim();
    let bad = |m: &str| AppError::validation("url", m.to_owned());
    if url.chars().count() > MAX_URL_CHARS || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad("A URL has at most 2000 characters and no spaces."));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("The URL must start with https:// (or http://)."))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad(
            "The URL needs a host, e.g. https://hooks.example.com/keyward.",
        ));
    }
    if authority.contains('@') {
        return Err(bad("The URL must not hold a user name or password."));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| bad(&format!("The URL is not valid: {e}.")))?;
    if let Some(ip) = outbound::literal_ip(&parsed) {
        if outbound::forbidden(ip) {
            return Err(bad(&format!(
                "Webhooks cannot go to {ip}: unspecified, link-local (e.g. cloud metadata), multicast and broadcast addresses are refused."
            )));
        }
    }
    Ok(url.to_owned())
}

/// The additional data a webhook secret is sealed with (binds it to its row).
pub fn webhook_aad(app_id: i64, url: &str) -> Vec<u8> {
    format!("webhook:{app_id}:{url}").into_bytes()
}

fn new_secret() -> String {
    let body: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("whsec_{body}")
}

/// Registers a URL for an app, or gives a registered one a new secret. Returns the
/// secret (the only time it is shown).
pub async fn register(
    db: &Db,
    now: i64,
    master_key: &[u8; 32],
    grant: &Grant<'_>,
    origin: &Origin,
    app_id: i64,
    url: &str,
) -> Result<String, AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let url = parse_url(url)?;
    crate::infra::sealing::ensure_current(db, now, master_key).await?;
    let secret = new_secret();
    let sealed = crypto::seal(master_key, &webhook_aad(app_id, &url), secret.as_bytes());
    let mut tx = db.pool.begin().await?;
    let app: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(app_id)
        .fetch_optional(&mut *tx)
        .await?;
    if app.is_none() {
        return Err(AppError::NotFound);
    }
    let updated = sqlx::query(
        "update webhook_endpoints set secret_sealed = $3, removed_at = null, updated_at = $4 \
         where app_id = $1 and url = $2",
    )
    .bind(app_id)
    .bind(&url)
    .bind(&sealed)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let action = if updated.rows_affected() == 1 {
        "webhook.secret_regenerated"
    } else {
        sqlx::query(
            "insert into webhook_endpoints (app_id, url, secret_sealed, created_by, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(app_id)
        .bind(&url)
        .bind(&sealed)
        .bind(p.user_id())
        .bind(now)
        .execute(&mut *tx)
        .await
        .on_unique(|| AppError::Conflict("This URL was just registered; try again.".into()))?;
        "webhook.registered"
    };
    let ev = Event::success(
        p.actor(),
        action,
        origin,
        Some(url.clone()),
        serde_json::json!({ "app_id": app_id }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(secret)
}

/// Removes a registered URL from an app: no longer offered, no new message may name it,
/// and a message not yet sent to it fails (the delivery worker finds it removed).
pub async fn remove(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    app_id: i64,
    url: &str,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update webhook_endpoints set removed_at = $3, updated_at = $3 \
         where app_id = $1 and url = $2 and removed_at is null",
    )
    .bind(app_id)
    .bind(url.trim())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    // Its event subscriptions go with it: registering the URL again starts from none.
    sqlx::query(
        "delete from event_subscriptions where webhook_id in \
         (select id from webhook_endpoints where app_id = $1 and url = $2)",
    )
    .bind(app_id)
    .bind(url.trim())
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        "webhook.removed",
        origin,
        Some(url.trim().to_owned()),
        serde_json::json!({ "app_id": app_id }),
    );
    audit::commit(tx, now, &ev).await.map_err(AppError::from)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn only_plain_http_urls_with_a_host() {
        assert!(parse_url("https://hooks.example.com/keyward").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/x").is_ok());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("https://user:pw@example.com/").is_err());
        assert!(parse_url("https:///path").is_err());
        assert!(parse_url("https://exa mple.com").is_err());
        assert!(parse_url("javascript:alert(1)").is_err());
    }
}
