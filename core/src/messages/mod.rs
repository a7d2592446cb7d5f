//! Messages and the four-eyes rule: the domain code behind `/messages`, `/approvals`
//! and `POST /api/v1/messages`.
//!
//! Flow: a message is written (panel or REST key; its author is the user, also when a
//! key of theirs wrote it). When Settings > Messages require approval for its app it
//! waits in `pending_approval`, else it goes straight to `queued`. An approval is a row
//! bound to the payload's SHA-256: editing the message changes the hash, so earlier
//! approvals stop counting. When the approvals of the current payload reach the number
//! needed the message becomes `queued`, and the outbox worker (`core::messages::delivery`)
//! delivers it once.
//!
//! Rules, each enforced here (not in the page):
//! - the author never approves or rejects their own message, whatever their role, from
//!   any session; approvals are made by a person signed in to the panel, never by a key;
//! - the approver holds `message.approve` at that moment (the `Grant` is built from the
//!   role's permissions read on this request);
//! - the approval names the payload hash the approver was shown: a message edited since
//!   is refused, so nobody approves text they did not see;
//! - an expired message cannot be approved;
//! - concurrent decisions take turns on the message's row (a conditional update is the
//!   first statement of each decision's transaction: PostgreSQL's row lock, SQLite's
//!   write lock), so two approvers at once are counted exactly and the move to `queued`
//!   happens once.

pub mod delivery;
pub mod events;
pub mod webhooks;

use crate::{
    access::{Grant, Principal, Subject},
    audit::{self, Actor, Event, Origin},
    infra::db::{Db, OnUnique as _},
    infra::mail::Mail,
    state::Services,
};
use model::error::AppError;
use model::messages::{ComposeApp, HistoryEntry, MessageDetail, MessageInfo, WebhookChoice};
use model::roles::Permission;
use sha2::{Digest, Sha256};

pub const MAX_SUBJECT_CHARS: usize = 200;
/// The largest body, in bytes (a request is also capped by `KEYWARD_MAX_BODY_BYTES`).
pub const MAX_BODY_BYTES: usize = 32 * 1024;
pub const MAX_RECIPIENTS: usize = 50;
/// The longest SMS text, in UTF-16 units (Twilio's limit of 1,600 characters).
pub const MAX_SMS_CHARS: usize = 1600;
pub const MAX_REASON_CHARS: usize = 500;

/// A message as typed.
pub struct Draft<'a> {
    pub app_id: i64,
    pub channel: &'a str,
    /// Email: addresses, one per line or comma-separated.
    pub recipients: &'a str,
    /// Webhook: one of the app's registered URLs.
    pub webhook_url: &'a str,
    /// SMS: one of the app's sender numbers.
    pub sender: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// A pending message's new payload (its app and channel stay).
pub struct Revision<'a> {
    pub recipients: &'a str,
    pub webhook_url: &'a str,
    pub sender: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// What will be sent, validated.
struct Payload {
    channel: &'static str,
    recipients: Vec<String>,
    webhook: Option<(i64, String)>,
    /// SMS: the sender number.
    sender: Option<String>,
    subject: String,
    body: String,
}

impl Payload {
    fn hash(&self, app_id: i64) -> String {
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        field(&app_id.to_string());
        field(self.channel);
        field(&self.recipients.join("\n"));
        // The webhook by its id, not its URL: the hash is shown to people who may not
        // see the URL, and a hash of it would let them test guesses of its path.
        let webhook = self.webhook.as_ref().map(|w| format!("#{}", w.0));
        field(webhook.as_deref().unwrap_or_default());
        field(&self.subject);
        field(&self.body);
        // Only SMS have a sender: the hashes of other messages stay what they were.
        if let Some(sender) = &self.sender {
            field(sender);
        }
        hex::encode(h.finalize())
    }
}

fn parse_recipients(text: &str) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    for (i, entry) in text.split(['\n', ',', ';']).enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let addr: lettre::Address = entry.parse().map_err(|_| {
            AppError::validation(
                "recipients",
                format!(
                    "Entry {} ({}) is not an email address.",
                    i + 1,
                    entry.chars().take(80).collect::<String>()
                ),
            )
        })?;
        let addr = addr.to_string();
        if !out.iter().any(|a| a.eq_ignore_ascii_case(&addr)) {
            out.push(addr);
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(AppError::validation(
                "recipients",
                format!("At most {MAX_RECIPIENTS} recipients."),
            ));
        }
    }
    if out.is_empty() {
        return Err(AppError::validation(
            "recipients",
            "Enter at least one email address.",
        ));
    }
    Ok(out)
}

/// SMS recipients: E.164 numbers, one per line or comma-separated, at most
/// [`MAX_RECIPIENTS`], repeats dropped.
fn parse_numbers(text: &str) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    for (i, entry) in text.split(['\n', ',', ';']).enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let number = crate::infra::phone::mobile("recipients", entry)
            .map_err(|e| AppError::validation("recipients", format!("Entry {}: {e}", i + 1)))?;
        if !out.contains(&number) {
            out.push(number);
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(AppError::validation(
                "recipients",
                format!("At most {MAX_RECIPIENTS} recipients."),
            ));
        }
    }
    if out.is_empty() {
        return Err(AppError::validation(
            "recipients",
            "Enter at least one phone number.",
        ));
    }
    Ok(out)
}

/// A message as typed, to be checked by [`validate`].
struct Typed<'a> {
    app_id: i64,
    channel: &'a str,
    recipients: &'a str,
    webhook_url: &'a str,
    sender: &'a str,
    subject: &'a str,
    body: &'a str,
}

async fn validate(st: &Services, t: &Typed<'_>) -> Result<Payload, AppError> {
    let db = &st.db;
    let (app_id, channel, recipients, webhook_url, body) =
        (t.app_id, t.channel, t.recipients, t.webhook_url, t.body);
    // An SMS has no subject line; a title for the list is optional.
    let subject = if channel == "sms" && t.subject.trim().is_empty() {
        String::new()
    } else {
        crate::infra::text::label("subject", t.subject, MAX_SUBJECT_CHARS, "A subject")?
    };
    let subject = subject.as_str();
    if body.trim().is_empty() {
        return Err(AppError::validation("body", "Enter the message."));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(AppError::validation(
            "body",
            format!(
                "The message is {} bytes; the limit is {MAX_BODY_BYTES}.",
                body.len()
            ),
        ));
    }
    // Counted as gateways bill them: UTF-16 units (an emoji is two).
    if channel == "sms" && body.encode_utf16().count() > MAX_SMS_CHARS {
        return Err(AppError::validation(
            "body",
            format!("An SMS has at most {MAX_SMS_CHARS} characters (an emoji counts as two)."),
        ));
    }
    if channel != "sms" && !t.sender.trim().is_empty() {
        return Err(AppError::validation(
            "from",
            "A sender number is only for SMS.",
        ));
    }
    if channel != "webhook" && !webhook_url.trim().is_empty() {
        return Err(AppError::validation(
            "webhook_url",
            "A webhook URL is only for the webhook channel.",
        ));
    }
    let mut sender = None;
    let (channel, recipients, webhook) = match channel {
        "email" => ("email", parse_recipients(recipients)?, None),
        "sms" => {
            if !crate::infra::sms::available(&st.config) {
                return Err(AppError::validation(
                    "channel",
                    "SMS cannot be sent from this server: no SMS gateway is configured (KEYWARD_SMS_URL).",
                ));
            }
            let numbers = crate::channels::numbers::of_app(db, app_id).await?;
            let from = crate::infra::phone::e164("from", t.sender).ok();
            sender = Some(from.filter(|f| numbers.contains(f)).ok_or_else(|| {
                AppError::validation(
                    "from",
                    if numbers.is_empty() {
                        "This app has no sender numbers: add one on the Channels page first."
                            .to_owned()
                    } else {
                        format!(
                            "Send from one of this app's numbers: {}.",
                            numbers.join(", ")
                        )
                    },
                )
            })?);
            ("sms", parse_numbers(recipients)?, None)
        }
        "webhook" => {
            let url = webhook_url.trim();
            // The exact URL (REST), or `#` and the webhook's id (the compose form, which
            // never sees the URL).
            let row: Option<(i64, String)> = match url
                .strip_prefix('#')
                .and_then(|id| id.parse::<i64>().ok())
            {
                Some(id) => sqlx::query_as(
                    "select id, url from webhook_endpoints where app_id = $1 and id = $2 and removed_at is null",
                )
                .bind(app_id)
                .bind(id)
                .fetch_optional(&db.pool)
                .await?,
                None => sqlx::query_as(
                    "select id, url from webhook_endpoints where app_id = $1 and url = $2 and removed_at is null",
                )
                .bind(app_id)
                .bind(url)
                .fetch_optional(&db.pool)
                .await?,
            };
            let w = row.ok_or_else(|| {
                AppError::validation(
                    "webhook_url",
                    "Choose one of the webhook URLs registered for this app (Apps page).",
                )
            })?;
            ("webhook", Vec::new(), Some(w))
        }
        _ => {
            return Err(AppError::validation(
                "channel",
                "Choose a channel: email, webhook or SMS.",
            ))
        }
    };
    Ok(Payload {
        channel,
        recipients,
        webhook,
        sender,
        subject: subject.to_owned(),
        body: body.replace("\r\n", "\n"),
    })
}

#[derive(sqlx::FromRow)]
struct Row {
    message_id: String,
    app_id: i64,
    app: String,
    channel: String,
    recipients: String,
    webhook_url: Option<String>,
    webhook_id: Option<i64>,
    sender: Option<String>,
    subject: String,
    body: String,
    payload_hash: String,
    status: String,
    author_id: i64,
    author: String,
    created_by_key: Option<String>,
    approvals_needed: i64,
    approvals: i64,
    expires_at: Option<i64>,
    attempts: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

/// An approval `ma` counts only while its approver is active and holds
/// `message.approve` now: someone disabled or demoted since no longer makes up one of
/// the distinct people a message needs. (Built-in roles holding the permission: Owner,
/// Admin, Approver; checked against the catalogue by a test.)
macro_rules! approval_counts {
    () => {
        "exists (select 1 from users au where au.id = ma.approver_id and au.status = 'active' \
         and (au.role_id in (1, 2, 4) or exists (select 1 from role_permissions rp \
         where rp.role_id = au.role_id and rp.permission = 'message.approve')))"
    };
}

const SELECT: &str = concat!(
    "select m.message_id, m.app_id, a.name as app, m.channel, m.recipients, w.url as webhook_url, m.webhook_id, m.sender, \
     m.subject, m.body, m.payload_hash, m.status, m.author_id, u.email as author, m.created_by_key, m.approvals_needed, \
     (select count(distinct ma.approver_id) from message_approvals ma where ma.message_id = m.id \
       and ma.payload_hash = m.payload_hash and ma.decision = 'approved' and ",
    approval_counts!(),
    ") as approvals, \
     m.expires_at, m.attempts, m.last_error, m.created_at, m.sent_at \
     from messages m join apps a on a.id = m.app_id join users u on u.id = m.author_id \
     left join webhook_endpoints w on w.id = m.webhook_id"
);

impl From<Row> for MessageInfo {
    fn from(r: Row) -> Self {
        Self {
            id: r.message_id,
            app_id: r.app_id,
            app: r.app,
            channel: r.channel,
            recipients: r
                .recipients
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            webhook_url: r.webhook_url,
            webhook_ref: r.webhook_id.map(|id| format!("#{id}")),
            sender: r.sender,
            subject: r.subject,
            body: r.body,
            payload_hash: r.payload_hash,
            status: r.status,
            author_id: r.author_id,
            author: r.author,
            created_by_key: r.created_by_key,
            approvals_needed: r.approvals_needed,
            approvals: r.approvals,
            expires_at: r.expires_at,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        }
    }
}

async fn find(db: &Db, message_id: &str) -> Result<Option<MessageInfo>, AppError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where m.message_id = $1"))
        .bind(message_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(Into::into))
}

/// What `p` sees of `m`: everything, but the webhook's whole URL only with
/// `app.manage` (its path often carries a secret); others see its origin and `/…`.
fn seen_by(p: &Principal, mut m: MessageInfo) -> MessageInfo {
    if !p.has(Permission::AppManage) {
        m.webhook_url = m.webhook_url.map(|u| format!("{}/…", origin_of(&u)));
    }
    m
}

/// Who may see a message: its author, and everyone holding `message.approve`; a key,
/// only its own app's (`Principal::acts_for_app`).
fn can_see(p: &Principal, m: &MessageInfo) -> bool {
    p.acts_for_app(m.app_id) && (m.author_id == p.user_id() || p.has(Permission::MessageApprove))
}

/// A message the principal may see, else `NotFound` (never "exists but hidden").
pub async fn visible(db: &Db, p: &Principal, message_id: &str) -> Result<MessageInfo, AppError> {
    match find(db, message_id).await? {
        Some(m) if can_see(p, &m) => Ok(seen_by(p, m)),
        _ => Err(AppError::NotFound),
    }
}

/// Messages per page of `/messages`.
pub const PAGE: i64 = 50;

/// The messages the principal may see, newest first, a page at a time: at most
/// [`PAGE`] older than the message `before` (none, or one they may not see: the
/// newest), and whether there are more.
pub async fn list(
    db: &Db,
    p: &Principal,
    before: Option<&str>,
) -> Result<(Vec<MessageInfo>, bool), AppError> {
    if before.is_some_and(|b| !is_message_id(b)) {
        return Err(AppError::validation("before", "Not a message ID."));
    }
    // Everyone's with message.approve, else their own (-1 matches no author).
    let author = if p.has(Permission::MessageApprove) {
        -1
    } else {
        p.user_id()
    };
    let mut rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where ($1 = -1 or m.author_id = $1) \
         and m.id < coalesce((select id from messages where message_id = $2 and ($1 = -1 or author_id = $1)), {}) \
         order by m.id desc limit $3",
        i64::MAX
    ))
    .bind(author)
    .bind(before.unwrap_or_default())
    .bind(PAGE + 1)
    .fetch_all(&db.pool)
    .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    Ok((
        rows.into_iter().map(|r| seen_by(p, r.into())).collect(),
        more,
    ))
}

/// `p`'s own latest messages, newest first (the overview's "my messages").
pub async fn recent_own(db: &Db, p: &Principal, limit: i64) -> Result<Vec<MessageInfo>, AppError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where m.author_id = $1 order by m.id desc limit $2"
    ))
    .bind(p.user_id())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|r| seen_by(p, r.into())).collect())
}

/// The approver's queue: pending, unexpired messages written by someone else, oldest
/// first (at most 500).
pub async fn queue(db: &Db, now: i64, p: &Principal) -> Result<Vec<MessageInfo>, AppError> {
    Ok(queue_head(db, now, p, 500).await?.0)
}

/// The first `limit` messages of `p`'s queue and how many wait in all (the overview:
/// a count, and a few rows rather than every payload).
pub async fn queue_head(
    db: &Db,
    now: i64,
    p: &Principal,
    limit: i64,
) -> Result<(Vec<MessageInfo>, i64), AppError> {
    const WAITING: &str = "m.status = 'pending_approval' and m.author_id <> $1 \
         and (m.expires_at is null or m.expires_at > $2)";
    let rows: Vec<Row> =
        sqlx::query_as(&format!("{SELECT} where {WAITING} order by m.id limit $3"))
            .bind(p.user_id())
            .bind(now)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?;
    let (waiting,): (i64,) =
        sqlx::query_as(&format!("select count(*) from messages m where {WAITING}"))
            .bind(p.user_id())
            .bind(now)
            .fetch_one(&db.pool)
            .await?;
    Ok((
        rows.into_iter().map(|r| seen_by(p, r.into())).collect(),
        waiting,
    ))
}

/// How many of `p`'s own messages wait for someone else's approval (the approvals
/// page says so: its queue never lists them, since nobody approves their own).
pub async fn own_waiting(db: &Db, now: i64, p: &Principal) -> Result<i64, AppError> {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from messages where status = 'pending_approval' and author_id = $1 \
         and (expires_at is null or expires_at > $2)",
    )
    .bind(p.user_id())
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// Why `p` may not decide on `m` now, if they may not.
fn decide_blocked(p: &Principal, m: &MessageInfo, now: i64) -> Option<&'static str> {
    if !matches!(p.subject, Subject::User(_)) {
        Some("Approvals are made by a person signed in to the panel, never with an API key.")
    } else if m.author_id == p.user_id() {
        Some("You wrote this message: another approver must decide on it.")
    } else if m.status != "pending_approval" {
        Some("This message is no longer waiting for approval.")
    } else if m.expires_at.is_some_and(|e| e <= now) {
        Some("This message expired before it was approved.")
    } else {
        None
    }
}

/// A message's page: the message, its history, what the viewer may do.
pub async fn detail(
    db: &Db,
    now: i64,
    p: &Principal,
    message_id: &str,
) -> Result<MessageDetail, AppError> {
    let message = visible(db, p, message_id).await?;
    type HistoryRow = (i64, String, String, Option<String>, Option<String>, String);
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "select e.occurred_at, e.action, e.actor_type, e.actor_id, u.email, e.details from audit_events e \
         left join users u on e.actor_type = 'user' and e.actor_id = cast(u.id as text) \
         where e.target = $1 and e.action like 'message.%' order by e.seq",
    )
    .bind(&message.id)
    .fetch_all(&db.pool)
    .await?;
    let history = rows
        .into_iter()
        .map(|(at, action, kind, id, email, details)| HistoryEntry {
            at,
            action,
            actor: match kind.as_str() {
                "user" => email.or(id).unwrap_or_default(),
                "key" => id.unwrap_or_default(),
                _ => "Keyward".into(),
            },
            details: history_details(&details),
        })
        .collect();
    let blocked = decide_blocked(p, &message, now);
    Ok(MessageDetail {
        can_edit: message.author_id == p.user_id()
            && p.has(Permission::MessageCreate)
            && message.status == "pending_approval",
        can_decide: p.has(Permission::MessageApprove) && blocked.is_none(),
        decide_blocked: p
            .has(Permission::MessageApprove)
            .then_some(blocked)
            .flatten()
            .map(str::to_owned),
        message,
        history,
    })
}

/// The parts of an audit row's details worth showing in a message's history.
fn history_details(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    ["reason", "error", "approvals", "status", "attempt"]
        .iter()
        .filter_map(|k| {
            v.get(*k).map(|x| match x {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The apps a message can be written for, with their webhooks (by reference, never the
/// URL: see `WebhookChoice`) and rule.
pub async fn compose_apps(db: &Db) -> Result<Vec<ComposeApp>, AppError> {
    let apps = crate::keys::apps::app_choices(db).await?;
    let hooks: Vec<(i64, i64, String)> = sqlx::query_as(
        "select id, app_id, url from webhook_endpoints where removed_at is null order by id",
    )
    .fetch_all(&db.pool)
    .await?;
    let settings = crate::settings::messages(db).await?;
    let numbers: Vec<(i64, String)> =
        sqlx::query_as("select app_id, number from sender_numbers order by number")
            .fetch_all(&db.pool)
            .await?;
    Ok(apps
        .into_iter()
        .map(|a| ComposeApp {
            approval_required: settings.required_for(a.id),
            sender_numbers: numbers
                .iter()
                .filter(|(app, _)| *app == a.id)
                .map(|(_, n)| n.clone())
                .collect(),
            webhooks: hooks
                .iter()
                .filter(|(_, app, _)| *app == a.id)
                .map(|(id, _, url)| WebhookChoice {
                    reference: format!("#{id}"),
                    label: format!("{}/… (#{id})", origin_of(url)),
                })
                .collect(),
            id: a.id,
            name: a.name,
        })
        .collect())
}

/// `scheme://host[:port]` of a URL (the whole text when it does not parse).
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "a webhook".to_owned())
}

/// `msg_` + 16 base32 characters.
fn is_message_id(s: &str) -> bool {
    s.strip_prefix("msg_")
        .is_some_and(|rest| crate::keys::format::is_key_id(&format!("key_{rest}")))
}

fn new_message_id() -> String {
    // Same alphabet and length as key ids: `msg_` + 16 base32 characters.
    let id = crate::keys::format::new_key_id();
    format!("msg_{}", id.trim_start_matches("key_"))
}

/// Writes a message: pending approval or queued, per Settings > Messages.
pub async fn create(
    st: &Services,
    grant: &Grant<'_>,
    origin: &Origin,
    d: &Draft<'_>,
) -> Result<MessageInfo, AppError> {
    let p = grant.ensure(Permission::MessageCreate)?;
    p.require_app(d.app_id)?;
    let db = &st.db;
    let now = st.clock.now();
    let exists: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(d.app_id)
        .fetch_optional(&db.pool)
        .await?;
    if exists.is_none() {
        return Err(AppError::validation("app_id", "Choose an app that exists."));
    }
    let payload = validate(
        st,
        &Typed {
            app_id: d.app_id,
            channel: d.channel,
            recipients: d.recipients,
            webhook_url: d.webhook_url,
            sender: d.sender,
            subject: d.subject,
            body: d.body,
        },
    )
    .await?;
    let settings = crate::settings::messages(db).await?;
    let required = settings.required_for(d.app_id);
    let (status, expires_at, next_attempt) = if required {
        (
            "pending_approval",
            Some(now + i64::from(settings.pending_expiry_hours) * 3600),
            None,
        )
    } else {
        ("queued", None, Some(now))
    };
    let key = match &p.subject {
        Subject::Key { key_id, .. } => Some(key_id.clone()),
        Subject::User(_) => None,
    };
    let message_id = new_message_id();
    let hash = payload.hash(d.app_id);
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "insert into messages (message_id, app_id, channel, recipients, webhook_id, subject, body, payload_hash, status, \
         author_id, created_by_key, approvals_needed, expires_at, attempts, next_attempt_at, sender, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $16, $15, $15)",
    )
    .bind(&message_id)
    .bind(d.app_id)
    .bind(payload.channel)
    .bind(payload.recipients.join("\n"))
    .bind(payload.webhook.as_ref().map(|w| w.0))
    .bind(&payload.subject)
    .bind(&payload.body)
    .bind(&hash)
    .bind(status)
    .bind(p.user_id())
    .bind(&key)
    .bind(i64::from(settings.approvals_needed))
    .bind(expires_at)
    .bind(next_attempt)
    .bind(now)
    .bind(&payload.sender)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        "message.created",
        origin,
        Some(message_id.clone()),
        serde_json::json!({ "app_id": d.app_id, "channel": payload.channel, "status": status, "payload_hash": hash }),
    );
    audit::commit(tx, now, &ev).await?;
    let m = find(db, &message_id).await?.ok_or(AppError::Internal)?;
    if required {
        notify_approvers(st, &m);
    } else {
        st.outbox.notify_one();
    }
    let m = seen_by(p, m);
    Ok(m)
}

/// Changes a pending message (its author only). The payload hash changes, so approvals
/// given so far no longer count.
pub async fn edit(
    st: &Services,
    grant: &Grant<'_>,
    origin: &Origin,
    message_id: &str,
    r: &Revision<'_>,
) -> Result<MessageInfo, AppError> {
    let p = grant.ensure(Permission::MessageCreate)?;
    let db = &st.db;
    let now = st.clock.now();
    let m = visible(db, p, message_id).await?;
    if m.author_id != p.user_id() {
        return Err(AppError::Forbidden);
    }
    let payload = validate(
        st,
        &Typed {
            app_id: m.app_id,
            channel: &m.channel,
            recipients: r.recipients,
            webhook_url: r.webhook_url,
            sender: r.sender,
            subject: r.subject,
            body: r.body,
        },
    )
    .await?;
    let hash = payload.hash(m.app_id);
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update messages set recipients = $2, webhook_id = $3, subject = $4, body = $5, payload_hash = $6, updated_at = $7, sender = $9 \
         where message_id = $1 and status = 'pending_approval' and author_id = $8",
    )
    .bind(message_id)
    .bind(payload.recipients.join("\n"))
    .bind(payload.webhook.as_ref().map(|w| w.0))
    .bind(&payload.subject)
    .bind(&payload.body)
    .bind(&hash)
    .bind(now)
    .bind(p.user_id())
    .bind(&payload.sender)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "Only a message that waits for approval can be edited.".into(),
        ));
    }
    // Earlier approvals are void for good: editing the text back to what they saw does
    // not bring them back (each approver must look again). The audit log keeps them.
    sqlx::query(
        "delete from message_approvals where message_id = (select id from messages where message_id = $1)",
    )
    .bind(message_id)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        "message.edited",
        origin,
        Some(message_id.to_owned()),
        serde_json::json!({ "from": m.payload_hash, "payload_hash": hash, "approvals_voided": m.approvals }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(seen_by(
        p,
        find(db, message_id).await?.ok_or(AppError::Internal)?,
    ))
}

/// Locks a pending message's row for a decision (the first statement of the
/// transaction), returning (row id, author, payload hash, approvals needed, expiry).
async fn lock_pending(
    tx: &mut sqlx::AnyConnection,
    db: &Db,
    now: i64,
    message_id: &str,
) -> Result<(i64, i64, String, i64, Option<i64>), AppError> {
    let row: Option<(i64, i64, String, i64, Option<i64>)> = sqlx::query_as(
        "update messages set updated_at = $2 where message_id = $1 and status = 'pending_approval' \
         returning id, author_id, payload_hash, approvals_needed, expires_at",
    )
    .bind(message_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some(r) => Ok(r),
        None => Err(match find(db, message_id).await? {
            None => AppError::NotFound,
            Some(m) => AppError::Conflict(format!(
                "This message is no longer waiting for approval (it is {}).",
                m.status.replace('_', " ")
            )),
        }),
    }
}

/// Checks the rules every decision shares (see the module's documentation).
fn check_decider(
    p: &Principal,
    author_id: i64,
    hash: &str,
    seen_hash: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), AppError> {
    if !matches!(p.subject, Subject::User(_)) {
        tracing::warn!(subject = ?p.subject, "an API key tried to decide on a message");
        return Err(AppError::Forbidden);
    }
    if author_id == p.user_id() {
        return Err(AppError::validation(
            "approval",
            "You wrote this message: another approver must decide on it.",
        ));
    }
    if expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::Conflict(
            "This message expired before it was approved; its author can write it again.".into(),
        ));
    }
    if hash != seen_hash {
        return Err(AppError::Conflict(
            "This message was edited since you opened it. Read it again before deciding.".into(),
        ));
    }
    Ok(())
}

/// Approves the payload `seen_hash` of a pending message. Returns the message (queued
/// when this approval completed the count).
pub async fn approve(
    st: &Services,
    grant: &Grant<'_>,
    origin: &Origin,
    message_id: &str,
    seen_hash: &str,
) -> Result<MessageInfo, AppError> {
    let p = grant.ensure(Permission::MessageApprove)?;
    let db = &st.db;
    let now = st.clock.now();
    let mut tx = db.pool.begin().await?;
    let (id, author_id, hash, needed, expires_at) =
        lock_pending(&mut tx, db, now, message_id).await?;
    check_decider(p, author_id, &hash, seen_hash, expires_at, now)?;
    let inserted = sqlx::query(
        "insert into message_approvals (message_id, approver_id, payload_hash, decision, reason, created_at, updated_at) \
         values ($1, $2, $3, 'approved', '', $4, $4)",
    )
    .bind(id)
    .bind(p.user_id())
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await;
    inserted.on_unique(|| AppError::Conflict("You already approved this message.".into()))?;
    let (count,): (i64,) = sqlx::query_as(concat!(
        "select count(distinct ma.approver_id) from message_approvals ma \
         where ma.message_id = $1 and ma.payload_hash = $2 and ma.decision = 'approved' and ",
        approval_counts!()
    ))
    .bind(id)
    .bind(&hash)
    .fetch_one(&mut *tx)
    .await?;
    let complete = count >= needed;
    if complete {
        sqlx::query(
            "update messages set status = 'queued', next_attempt_at = $2, decided_at = $2, updated_at = $2 \
             where id = $1 and status = 'pending_approval'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let ev = Event::success(
        p.actor(),
        "message.approved",
        origin,
        Some(message_id.to_owned()),
        serde_json::json!({ "payload_hash": hash, "approvals": format!("{count} of {needed}") }),
    );
    audit::commit(tx, now, &ev).await?;
    let m = find(db, message_id).await?.ok_or(AppError::Internal)?;
    if complete {
        st.outbox.notify_one();
        notify_author(st, &m, "approved", None);
    }
    Ok(seen_by(p, m))
}

/// Rejects a pending message with a reason: it will never be sent.
pub async fn reject(
    st: &Services,
    grant: &Grant<'_>,
    origin: &Origin,
    message_id: &str,
    seen_hash: &str,
    reason: &str,
) -> Result<MessageInfo, AppError> {
    let p = grant.ensure(Permission::MessageApprove)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::validation(
            "reason",
            "Say why, so the author can fix it.",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AppError::validation(
            "reason",
            format!("At most {MAX_REASON_CHARS} characters."),
        ));
    }
    let db = &st.db;
    let now = st.clock.now();
    let mut tx = db.pool.begin().await?;
    let (id, author_id, hash, _, expires_at) = lock_pending(&mut tx, db, now, message_id).await?;
    check_decider(p, author_id, &hash, seen_hash, expires_at, now)?;
    sqlx::query(
        "insert into message_approvals (message_id, approver_id, payload_hash, decision, reason, created_at, updated_at) \
         values ($1, $2, $3, 'rejected', $4, $5, $5)",
    )
    .bind(id)
    .bind(p.user_id())
    .bind(&hash)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update messages set status = 'rejected', decided_at = $2, updated_at = $2 where id = $1 and status = 'pending_approval'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        "message.rejected",
        origin,
        Some(message_id.to_owned()),
        serde_json::json!({ "payload_hash": hash, "reason": reason }),
    );
    audit::commit(tx, now, &ev).await?;
    let m = find(db, message_id).await?.ok_or(AppError::Internal)?;
    notify_author(st, &m, "rejected", Some(reason));
    Ok(seen_by(p, m))
}

/// Marks pending messages past their deadline `expired`, each with its audit row.
pub async fn expire_pending(db: &Db, now: i64) -> Result<usize, sqlx::Error> {
    let due: Vec<(String,)> = sqlx::query_as(
        "select message_id from messages where status = 'pending_approval' and expires_at <= $1 limit 500",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let mut n = 0;
    for (message_id,) in due {
        let mut tx = db.pool.begin().await?;
        let r = sqlx::query(
            "update messages set status = 'expired', decided_at = $2, updated_at = $2 \
             where message_id = $1 and status = 'pending_approval' and expires_at <= $2",
        )
        .bind(&message_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 1 {
            let ev = Event::success(
                Actor::System,
                "message.expired",
                &Origin::default(),
                Some(message_id),
                serde_json::json!({}),
            );
            audit::record_in(&mut tx, now, &ev).await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}

/// Emails everyone who may approve `m` (active users holding `message.approve`, never
/// its author), in the background: a mail failure is logged, it never undoes the write.
fn notify_approvers(st: &Services, m: &MessageInfo) {
    let (db, mailer, config) = (st.db.clone(), st.mailer.clone(), st.config.clone());
    let m = m.clone();
    tokio::spawn(async move {
        let users: Vec<(i64, String, i64)> = match sqlx::query_as(
            "select id, email, role_id from users where status = 'active' and id <> $1",
        )
        .bind(m.author_id)
        .fetch_all(&db.pool)
        .await
        {
            Ok(u) => u,
            Err(e) => return tracing::warn!(error = %e, "listing approvers failed"),
        };
        let link = message_link(&config, &m);
        // Each role's permissions read once, however many users hold it.
        let mut approves = std::collections::HashMap::new();
        for (_, email, role_id) in users {
            if let std::collections::hash_map::Entry::Vacant(v) = approves.entry(role_id) {
                match crate::access::role_permissions(&db, role_id).await {
                    Ok(perms) => v.insert(perms.contains(&Permission::MessageApprove)),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a role failed");
                        continue;
                    }
                };
            }
            if !approves[&role_id] {
                continue;
            }
            let text = format!(
                "{} wrote a message for {} that waits for your approval:\n\n  {}\n\nReview it: {link}\n",
                m.author, m.app, m.subject
            );
            let html = maud::html! {
                p { (m.author) " wrote a message for " (m.app) " that waits for your approval:" }
                p { b { (m.subject) } }
                p { a href=(link) { "Review it" } }
            }
            .into_string();
            let mail = Mail {
                to: &email,
                subject: "A message waits for your approval",
                text,
                html,
            };
            if let Err(e) = mailer.send(mail).await {
                tracing::warn!(error = %e, message = %m.id, "emailing an approver failed");
            }
        }
    });
}

/// The message's page, as a link in mail.
fn message_link(config: &crate::infra::config::Config, m: &MessageInfo) -> String {
    format!(
        "{}/messages/{}",
        config.public_url.url.trim_end_matches('/'),
        m.id
    )
}

/// Emails the author that their message was decided.
fn notify_author(st: &Services, m: &MessageInfo, decision: &'static str, reason: Option<&str>) {
    let (mailer, config) = (st.mailer.clone(), st.config.clone());
    let m = m.clone();
    let reason = reason.map(str::to_owned);
    tokio::spawn(async move {
        let link = message_link(&config, &m);
        let why = reason
            .as_deref()
            .map(|r| format!("\nReason: {r}\n"))
            .unwrap_or_default();
        let text = format!(
            "Your message \"{}\" was {decision}.\n{why}\n{link}\n",
            m.subject
        );
        let html = maud::html! {
            p { "Your message " b { (m.subject) } " was " (decision) "." }
            @if let Some(r) = &reason { p { "Reason: " (r) } }
            p { a href=(link) { "Open it" } }
        }
        .into_string();
        let subject = format!("Your message was {decision}");
        let mail = Mail {
            to: &m.author,
            subject: &subject,
            text,
            html,
        };
        if let Err(e) = mailer.send(mail).await {
            tracing::warn!(error = %e, message = %m.id, "emailing the author failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::parse_recipients;
    const APPROVER_BUILTINS: [i64; 3] = [1, 2, 4];
    use model::roles::{BuiltinRole, Permission};

    #[test]
    fn the_payload_hash_names_a_webhook_by_id_not_by_url() {
        let p = |id: i64, url: &str| super::Payload {
            channel: "webhook",
            recipients: Vec::new(),
            webhook: Some((id, url.to_owned())),
            sender: None,
            subject: "s".into(),
            body: "b".into(),
        };
        let a = p(1, "https://hooks.example.com/secret-a").hash(7);
        assert_eq!(a, p(1, "https://hooks.example.com/other").hash(7));
        assert_ne!(a, p(2, "https://hooks.example.com/secret-a").hash(7));
    }

    #[test]
    fn an_sms_payload_hash_binds_its_sender_number() {
        let p = |from: &str| super::Payload {
            channel: "sms",
            recipients: vec!["+905559876543".into()],
            webhook: None,
            sender: Some(from.to_owned()),
            subject: String::new(),
            body: "b".into(),
        };
        assert_ne!(p("+905551234567").hash(7), p("+14155552671").hash(7));
    }

    #[test]
    fn the_builtin_approver_roles_in_sql_match_the_catalogue() {
        let holders: Vec<i64> = BuiltinRole::ALL
            .into_iter()
            .filter(|r| r.permissions().contains(&Permission::MessageApprove))
            .map(BuiltinRole::id)
            .collect();
        assert_eq!(holders, APPROVER_BUILTINS);
        assert!(approval_counts!().contains("in (1, 2, 4)"));
    }

    #[test]
    fn recipients_are_checked_and_deduplicated() {
        assert_eq!(
            parse_recipients("a@example.com, b@example.com\nA@example.com").unwrap(),
            vec!["a@example.com", "b@example.com"]
        );
        assert!(parse_recipients("not an address").is_err());
        assert!(parse_recipients("a@example.com\r\nBcc: x@evil.test").is_err());
        assert!(parse_recipients("  ").is_err());
    }
}
