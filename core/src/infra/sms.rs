//! The SMS gateway (`KEYWARD_SMS_URL`): where one SMS to one number goes.
//!
//! - A signed JSON gateway (`https://…`, or `http://` to loopback): `POST` of
//!   `{"id","to","from","body"}` with `X-Keyward-Timestamp` and `X-Keyward-Signature`
//!   (HMAC-SHA256 with `KEYWARD_SMS_SECRET` over `timestamp.body`, as webhooks), any 2xx
//!   accepted. `id` is the same on every attempt, for the gateway to drop repeats.
//! - Twilio (`twilio://SID:TOKEN@HOST`): `POST /2010-04-01/Accounts/{SID}/Messages.json`
//!   with the form fields `To`, `From`, `Body` and HTTP basic auth.
//! - Unset in development: a JSON file in the outbox folder (`keyward outbox` lists it);
//!   unset in production: nothing can be sent, and callers say so before accepting.
//!
//! A 4xx answer other than 408 and 429 is a permanent failure (the number or the text
//! is refused and trying again will not help); anything else may be retried. Requests go
//! through `KEYWARD_OUTBOUND_PROXY` when it is set, never through the environment's.

use crate::infra::config::{Config, SmsTarget};
use crate::infra::{crypto, outbound};

/// One SMS to one number.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sms<'a> {
    /// Stable across attempts (`msg_…-1` for a message's first recipient).
    pub id: &'a str,
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
}

/// Why an SMS was not accepted.
#[derive(Debug)]
pub struct SmsError {
    pub permanent: bool,
    pub error: String,
}

fn transient(error: impl Into<String>) -> SmsError {
    SmsError {
        permanent: false,
        error: error.into(),
    }
}

/// Whether SMS can be sent at all (a gateway, or the development outbox).
pub fn available(config: &Config) -> bool {
    config.sms != SmsTarget::Off
}

/// Hands one SMS to the gateway; `now` is the signature's timestamp.
pub async fn send(config: &Config, now: i64, sms: &Sms<'_>) -> Result<(), SmsError> {
    let timeout = config.delivery_timeout;
    let proxy = config.outbound_proxy.as_ref().map(|p| p.expose().as_str());
    let client = || outbound::outbound_client(proxy, timeout).map_err(|e| transient(e.to_string()));
    let res = match &config.sms {
        SmsTarget::Off => {
            return Err(SmsError {
                permanent: true,
                error: "no SMS gateway is configured (KEYWARD_SMS_URL)".into(),
            })
        }
        SmsTarget::Outbox => return to_outbox(&config.outbox_dir, sms).await,
        SmsTarget::Signed { url, secret } => {
            let body = serde_json::to_vec(sms).map_err(|e| transient(e.to_string()))?;
            client()?
                .post(url)
                .header("content-type", "application/json")
                .header("user-agent", "Keyward-SMS/1")
                .header("x-keyward-delivery", sms.id)
                .header("x-keyward-timestamp", now.to_string())
                .header(
                    "x-keyward-signature",
                    crypto::signature(secret.expose().as_bytes(), now, &body),
                )
                .body(body)
                .send()
                .await
        }
        SmsTarget::Twilio {
            base,
            account_sid,
            auth_token,
        } => {
            let url = format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json");
            client()?
                .post(url)
                .basic_auth(account_sid, Some(auth_token.expose()))
                .header("user-agent", "Keyward-SMS/1")
                .form(&[("To", sms.to), ("From", sms.from), ("Body", sms.body)])
                .send()
                .await
        }
    };
    // Errors without the URL: a Twilio URL names the account.
    let res = res.map_err(|e| transient(format!("SMS gateway: {}", e.without_url())))?;
    let status = res.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(SmsError {
            permanent: status.is_client_error() && status != 408 && status != 429,
            error: format!("SMS gateway: HTTP {}", status.as_u16()),
        })
    }
}

/// Development: the SMS as a JSON file in the outbox (`…-sms.json`, named by time like
/// the mail there).
async fn to_outbox(dir: &std::path::Path, sms: &Sms<'_>) -> Result<(), SmsError> {
    let fail = |e: std::io::Error| SmsError {
        permanent: false,
        error: format!("outbox {}: {e}", dir.display()),
    };
    tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    let name = format!(
        "{}-{:08x}-sms.json",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
        rand::random::<u32>()
    );
    let body = serde_json::to_vec_pretty(sms).map_err(|e| transient(e.to_string()))?;
    let path = dir.join(name);
    tokio::fs::write(&path, body).await.map_err(fail)?;
    // Codes travel in these files: readable by their owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let private = std::fs::Permissions::from_mode(0o600);
        tokio::fs::set_permissions(&path, private)
            .await
            .map_err(fail)?;
    }
    tracing::info!(path = %path.display(), "SMS written to the development outbox");
    Ok(())
}
