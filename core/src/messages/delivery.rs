//! The outbox worker: delivers `queued` messages once, over SMTP or to a webhook.
//!
//! Claim: one statement moves one due row from `queued` to `sending`, adds one to
//! `attempts` and leases the row until `now + lease` (twice the delivery timeout plus
//! 10 s). On PostgreSQL the row is picked with `for update skip locked`, so several
//! instances each take different rows; on SQLite the statement runs under the single
//! writer lock. A `sending` row whose lease ran out (its worker died) is due again.
//!
//! Finish: the result is written with a conditional update that names the attempt
//! number it claimed (`where status = 'sending' and attempts = $n`), so a worker that
//! lost its lease cannot overwrite a newer attempt's outcome.
//!
//! The guarantee: a message is handed to the SMTP server or the webhook by one worker
//! at a time, and after a recorded success never again. If the process dies after the
//! receiver accepted the message but before `sent` is written, the lease runs out and
//! the message is sent again: the receiver then gets a second copy with the same
//! `Message-ID: <msg_…@host>` (email) or the same `X-Keyward-Delivery` header and body
//! `id` (webhook), which it can use to drop the duplicate. No delivery system can do
//! better without the receiver's help; README says so too.
//!
//! Failures: a permanent one (an address or a 4xx answer other than 408/429, or an
//! SMTP 5xx) marks the message `failed` at once; others retry with back-off (10 s,
//! 20 s, 40 s, … at most 1 h) up to `MAX_ATTEMPTS`.

use crate::{
    audit::{self, Actor, Event, Origin},
    infra::crypto,
    infra::db::{Backend, Db},
    infra::mail::{MailError, UserMail},
    infra::outbound,
    messages::webhooks,
    state::{Core, Services},
};
use std::time::Duration;

pub const MAX_ATTEMPTS: i64 = 6;

/// The lease a claim takes for a given delivery timeout.
pub fn lease(timeout: Duration) -> i64 {
    2 * timeout.as_secs() as i64 + 10
}

/// Back-off before attempt `n + 1` after `n` failed attempts.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (10_i64 << exp).min(3600)
}

/// A claimed message.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub message_id: String,
    pub app_id: i64,
    pub channel: String,
    pub recipients: String,
    pub webhook_id: Option<i64>,
    /// SMS: the sender number.
    pub sender: Option<String>,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    /// SMS: recipients reached by earlier attempts (this attempt goes on from there).
    pub delivered: i64,
    pub created_at: i64,
}

const CLAIM_SQLITE: &str = "update messages set status = 'sending', attempts = attempts + 1, lease_until = $2, updated_at = $1 \
     where id = (select id from messages where (status = 'queued' and next_attempt_at <= $1) \
       or (status = 'sending' and lease_until <= $1) order by id limit 1) \
     returning id, message_id, app_id, channel, recipients, webhook_id, sender, subject, body, attempts, delivered, created_at";

const CLAIM_POSTGRES: &str = "update messages set status = 'sending', attempts = attempts + 1, lease_until = $2, updated_at = $1 \
     where id = (select id from messages where (status = 'queued' and next_attempt_at <= $1) \
       or (status = 'sending' and lease_until <= $1) order by id limit 1 for update skip locked) \
     and (status = 'queued' or (status = 'sending' and lease_until <= $1)) \
     returning id, message_id, app_id, channel, recipients, webhook_id, sender, subject, body, attempts, delivered, created_at";

/// Claims one due message, if any.
pub async fn claim(db: &Db, now: i64, lease_secs: i64) -> Result<Option<Claimed>, sqlx::Error> {
    let sql = match db.backend {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_POSTGRES,
    };
    sqlx::query_as(sql)
        .bind(now)
        .bind(now + lease_secs)
        .fetch_optional(&db.pool)
        .await
}

/// Why an attempt failed.
#[derive(Debug)]
pub struct Failure {
    pub permanent: bool,
    pub error: String,
}

impl From<MailError> for Failure {
    fn from(e: MailError) -> Self {
        Self {
            permanent: e.is_permanent(),
            error: e.to_string(),
        }
    }
}

fn transient(error: impl Into<String>) -> Failure {
    Failure {
        permanent: false,
        error: error.into(),
    }
}

/// The `Message-ID` of a message: stable across attempts.
pub fn message_id_header(message_id: &str, public_url: &str) -> String {
    let host = public_url
        .split("://")
        .nth(1)
        .unwrap_or("localhost")
        .split(['/', ':'])
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("{message_id}@{host}")
}

/// `scheme://host[:port]` of a URL, for messages that must not show its path.
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "a webhook".to_owned())
}

pub use crate::infra::crypto::signature;

/// One attempt at sending a claimed message.
pub async fn send(st: &Services, c: &Claimed) -> Result<(), Failure> {
    let timeout = st.config.delivery_timeout;
    let attempt = async {
        match c.channel.as_str() {
            "email" => {
                let to: Vec<String> = c
                    .recipients
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                let mid = message_id_header(&c.message_id, &st.config.public_url.url);
                st.mailer
                    .send_user_mail(UserMail {
                        message_id: &mid,
                        to: &to,
                        subject: &c.subject,
                        body: &c.body,
                    })
                    .await
                    .map_err(Failure::from)
            }
            "webhook" => send_webhook(st, c, timeout).await,
            "sms" => send_sms(st, c).await,
            other => Err(Failure {
                permanent: true,
                error: format!("unknown channel {other}"),
            }),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(transient(format!(
            "no answer within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn send_webhook(st: &Services, c: &Claimed, timeout: Duration) -> Result<(), Failure> {
    let body = serde_json::to_vec(&serde_json::json!({
        "id": c.message_id,
        "app_id": c.app_id,
        "subject": c.subject,
        "body": c.body,
        "created_at": c.created_at,
    }))
    .map_err(|e| transient(e.to_string()))?;
    let to = Signed {
        webhook_id: c.webhook_id.unwrap_or_default(),
        delivery: &c.message_id,
        event: None,
        body,
    };
    post_signed(st, &to, timeout).await
}

/// An SMS: one request per recipient, from where earlier attempts stopped. Each
/// recipient reached is written down at once (under this attempt's claim), so a retry
/// after a failure or a crash sends only to those not reached; the gateway's `id`
/// (`msg_…-N`) is the same on every attempt, for it to drop a repeat the crash window
/// can still cause.
async fn send_sms(st: &Services, c: &Claimed) -> Result<(), Failure> {
    let from = c.sender.clone().unwrap_or_default();
    let registered: Option<(i64,)> =
        sqlx::query_as("select id from sender_numbers where app_id = $1 and number = $2")
            .bind(c.app_id)
            .bind(&from)
            .fetch_optional(&st.db.pool)
            .await
            .map_err(|e| transient(format!("database: {e}")))?;
    if registered.is_none() {
        return Err(Failure {
            permanent: true,
            error: format!("{from} is no longer a sender number of this app"),
        });
    }
    let to: Vec<&str> = c.recipients.lines().filter(|l| !l.is_empty()).collect();
    let done = usize::try_from(c.delivered).unwrap_or(0);
    for (i, number) in to.iter().enumerate().skip(done) {
        let id = format!("{}-{}", c.message_id, i + 1);
        let sms = crate::infra::sms::Sms {
            id: &id,
            to: number,
            from: &from,
            body: &c.body,
        };
        crate::infra::sms::send(&st.config, st.clock.now(), &sms)
            .await
            .map_err(|e| Failure {
                permanent: e.permanent,
                error: format!("recipient {} ({number}): {}", i + 1, e.error),
            })?;
        let kept = sqlx::query(
            "update messages set delivered = $3, updated_at = $4 where id = $1 and status = 'sending' and attempts = $2",
        )
        .bind(c.id)
        .bind(c.attempts)
        .bind(i as i64 + 1)
        .bind(st.clock.now())
        .execute(&st.db.pool)
        .await
        .map_err(|e| transient(format!("database: {e}")))?;
        if kept.rows_affected() != 1 {
            return Err(transient(
                "the claim was lost (another worker took the message over)",
            ));
        }
    }
    Ok(())
}

/// A signed POST to a registered webhook URL: a message, or an event.
pub struct Signed<'a> {
    pub webhook_id: i64,
    /// `X-Keyward-Delivery`: the same on every attempt, for the receiver to drop
    /// repeats.
    pub delivery: &'a str,
    /// `X-Keyward-Event`, for events.
    pub event: Option<&'a str>,
    pub body: Vec<u8>,
}

/// POSTs `to.body` to the registered URL `to.webhook_id`, signed with its secret
/// (`X-Keyward-Timestamp`, `X-Keyward-Signature`); any 2xx is success, a 4xx other than
/// 408 and 429 a permanent failure.
pub async fn post_signed(st: &Services, to: &Signed<'_>, timeout: Duration) -> Result<(), Failure> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "select app_id, url, secret_sealed from webhook_endpoints where id = $1 and removed_at is null",
    )
    .bind(to.webhook_id)
    .fetch_optional(&st.db.pool)
    .await
    .map_err(|e| transient(format!("database: {e}")))?;
    let Some((app_id, url, sealed)) = row else {
        return Err(Failure {
            permanent: true,
            error: "the webhook URL was removed from the app before this was sent".into(),
        });
    };
    // A URL registered before the address rule, or an IP host (never resolved): the rule
    // is checked here too; a name's addresses are filtered by the resolver.
    let target = reqwest::Url::parse(&url).map_err(|e| Failure {
        permanent: true,
        error: format!("the webhook URL is not valid: {e}"),
    })?;
    if outbound::literal_ip(&target).is_some_and(outbound::forbidden) {
        return Err(Failure {
            permanent: true,
            error: format!("webhooks may not go to {url} (a link-local, multicast, broadcast or unspecified address)"),
        });
    }
    let secret = crypto::open(
        st.master_key.expose(),
        &webhooks::webhook_aad(app_id, &url),
        &sealed,
    )
    .map_err(|_| Failure {
        permanent: true,
        error: "the webhook secret cannot be opened with this master key".into(),
    })?;
    let ts = st.clock.now();
    let proxy = st
        .config
        .outbound_proxy
        .as_ref()
        .map(|p| p.expose().as_str());
    if proxy.is_some() {
        // The proxy resolves the name, not us: check every address it has first.
        let host = target.host_str().unwrap_or_default().to_owned();
        let port = target.port_or_known_default().unwrap_or(443);
        outbound::check_host(&host, port).await.map_err(transient)?;
    }
    let client = outbound::outbound_client(proxy, timeout).map_err(|e| transient(e.to_string()))?;
    let mut req = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "Keyward-Webhook/1")
        .header("x-keyward-delivery", to.delivery)
        .header("x-keyward-timestamp", ts.to_string())
        .header("x-keyward-signature", signature(&secret, ts, &to.body));
    if let Some(event) = to.event {
        req = req.header("x-keyward-event", event);
    }
    let res = req
        .body(to.body.clone())
        .send()
        .await
        // The error without the URL: it is shown to the message's author, and a webhook's
        // path may carry a secret.
        .map_err(|e| {
            transient(format!(
                "POST to {}/…: {}",
                origin_of(&url),
                e.without_url()
            ))
        })?;
    let status = res.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(Failure {
            permanent: status.is_client_error() && status != 408 && status != 429,
            error: format!("POST to {}/…: HTTP {}", origin_of(&url), status.as_u16()),
        })
    }
}

/// Records the outcome of attempt `c.attempts`, with its audit row.
pub async fn finish(
    db: &Db,
    now: i64,
    c: &Claimed,
    result: &Result<(), Failure>,
) -> Result<(), sqlx::Error> {
    let (status, next, error, action) = match result {
        Ok(()) => ("sent", None, None, "message.sent"),
        Err(f) if !f.permanent && c.attempts < MAX_ATTEMPTS => (
            "queued",
            Some(now + backoff(c.attempts)),
            Some(f.error.as_str()),
            "message.attempt_failed",
        ),
        Err(f) => ("failed", None, Some(f.error.as_str()), "message.failed"),
    };
    crate::infra::metrics::DELIVERIES.count(match status {
        "queued" => "retry",
        other => other,
    });
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update messages set status = $3, next_attempt_at = $4, last_error = $5, lease_until = null, \
         sent_at = case when $3 = 'sent' then $6 else sent_at end, updated_at = $6 \
         where id = $1 and status = 'sending' and attempts = $2",
    )
    .bind(c.id)
    .bind(c.attempts)
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        // The lease ran out and another worker took the message over: its outcome wins.
        tracing::warn!(message = %c.message_id, attempt = c.attempts, "delivery outcome dropped: the claim was lost");
        return tx.rollback().await;
    }
    let mut ev = Event::success(
        Actor::System,
        action,
        &Origin::default(),
        Some(c.message_id.clone()),
        serde_json::json!({ "attempt": c.attempts, "error": error, "status": status }),
    );
    if status != "sent" {
        ev.outcome = audit::Outcome::Failure;
    }
    audit::commit(tx, now, &ev).await
}

/// Delivers every due message, one at a time; returns how many attempts were made.
pub async fn run_once(st: &Services) -> Result<usize, sqlx::Error> {
    let lease_secs = lease(st.config.delivery_timeout);
    let mut n = 0;
    while let Some(c) = claim(&st.db, st.clock.now(), lease_secs).await? {
        tracing::info!(message = %c.message_id, attempt = c.attempts, channel = %c.channel, "delivering");
        let result = send(st, &c).await;
        if let Err(f) = &result {
            tracing::warn!(message = %c.message_id, attempt = c.attempts, error = %f.error, "delivery failed");
        }
        finish(&st.db, st.clock.now(), &c, &result).await?;
        n += 1;
    }
    Ok(n)
}

/// The background loop: delivers due messages when woken (a message was queued) or
/// every 2 s, and expires pending messages every 30 s. (Events: `events::worker`.)
pub async fn worker(st: Core) {
    let mut last_expiry = 0;
    loop {
        let now = st.clock.now();
        if now - last_expiry >= 30 {
            last_expiry = now;
            if let Err(e) = crate::messages::expire_pending(&st.db, now).await {
                tracing::warn!(error = %e, "expiring pending messages failed");
            }
        }
        if let Err(e) = run_once(&st).await {
            tracing::warn!(error = %e, "the outbox worker hit a database error");
        }
        tokio::select! {
            _ = st.outbox.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Messages waiting, per status (`pending_approval`, `queued`, `sending`), zeros
/// included: the outbox's depth for `/metrics`.
pub async fn outbox_depth(db: &Db) -> Result<Vec<(&'static str, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select status, count(*) from messages where status in ('pending_approval', 'queued', 'sending') group by status",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(["pending_approval", "queued", "sending"]
        .into_iter()
        .map(|s| {
            let n = rows.iter().find(|(r, _)| r == s).map_or(0, |(_, n)| *n);
            (s, n)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(2), 20);
        assert_eq!(backoff(5), 160);
        assert_eq!(backoff(30), 3600);
    }

    #[test]
    fn message_id_uses_the_public_host() {
        assert_eq!(
            message_id_header("msg_x", "https://keys.example.com:8443/panel"),
            "msg_x@keys.example.com"
        );
        assert_eq!(message_id_header("msg_x", "nonsense"), "msg_x@localhost");
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        // Expected value from Python's hmac module: hmac.new(b"secret", b"1.{}", sha256).
        let s = signature(b"secret", 1, b"{}");
        assert_eq!(
            s,
            "sha256=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
        assert_ne!(s, signature(b"secret", 2, b"{}"));
        assert_ne!(s, signature(b"other", 1, b"{}"));
    }
}
