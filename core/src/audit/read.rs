//! Reading the audit log: the filtered, paged list of `/audit` and its CSV export (for
//! holders of `audit.view`), and the walk over the hash chain that says whether any
//! event was edited, deleted or inserted since it was recorded.
//!
//! Every filter is answered from an index walked newest first (`seq`, and
//! `actor_type, actor_id`, `action`, `target`, `ip`, each with `seq`); a combination
//! that may read many rows before a page is full takes a scan slot, like the keys
//! table's search.

use super::Stored;
use crate::access::Grant;
use crate::infra::db::Db;
use model::audit::{AuditEntry, AuditFilter, AuditPage, ChainBreak, ChainState, AUDIT_PAGE};
use model::error::AppError;
use model::roles::Permission;

/// Rows read per query while walking the chain (memory stays bounded however long the
/// log is).
const WALK_CHUNK: i64 = 1000;

enum Arg {
    Int(i64),
    Text(String),
}

/// The filters, checked and turned into SQL conditions on `audit_events`.
struct Conditions {
    sql: String,
    args: Vec<Arg>,
    /// True when a page may need many rows read (not one indexed equality).
    scans: bool,
}

async fn conditions(db: &Db, f: &AuditFilter) -> Result<Conditions, AppError> {
    let mut c = Conditions {
        sql: String::new(),
        args: Vec::new(),
        scans: false,
    };
    let add = |c: &mut Conditions, cond: &str, arg: Arg| {
        c.args.push(arg);
        c.sql.push_str(&format!(
            " and {}",
            cond.replace('#', &format!("${}", c.args.len()))
        ));
    };
    let field = |v: &str, name: &str, max: usize| -> Result<Option<String>, AppError> {
        let v = v.trim();
        if v.chars().count() > max {
            return Err(AppError::validation(
                name,
                format!("Enter at most {max} characters."),
            ));
        }
        Ok(Some(v.to_owned()).filter(|v| !v.is_empty()))
    };
    let mut equalities = 0;
    if let Some(actor) = field(&f.actor, "actor", 254)? {
        equalities += 1;
        match actor.to_ascii_lowercase().as_str() {
            // Without an actor id the (actor_type, actor_id, seq) index gives no `seq`
            // order: a page sorts every such event, so it takes a scan slot.
            "system" | "keyward" => {
                add(&mut c, "actor_type = #", Arg::Text("system".into()));
                c.scans = true;
            }
            "anonymous" | "not signed in" => {
                add(&mut c, "actor_type = #", Arg::Text("anonymous".into()));
                c.scans = true;
            }
            _ if crate::keys::format::is_key_id(&actor) => {
                add(&mut c, "actor_type = #", Arg::Text("key".into()));
                add(&mut c, "actor_id = #", Arg::Text(actor));
            }
            _ => {
                let email = crate::identity::address::normalise_email(&actor).map_err(|_| {
                    AppError::validation(
                        "actor",
                        "Enter a user's email, a key ID (key_…), system or anonymous.",
                    )
                })?;
                let user: Option<(i64,)> = sqlx::query_as("select id from users where email = $1")
                    .bind(&email)
                    .fetch_optional(&db.pool)
                    .await?;
                let Some((id,)) = user else {
                    return Err(AppError::validation("actor", "No user has this address."));
                };
                add(&mut c, "actor_type = #", Arg::Text("user".into()));
                add(&mut c, "actor_id = #", Arg::Text(id.to_string()));
            }
        }
    }
    if let Some(action) = field(&f.action, "action", 64)? {
        if !action
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.' || ch == '_')
        {
            return Err(AppError::validation(
                "action",
                "Enter an action such as api_key.created, or its area such as api_key.",
            ));
        }
        equalities += 1;
        // Every action names its area before a dot (`api_key.created`): an area alone
        // (`api_key`, as typed) means all of its actions, as `api_key.` does.
        let action = if action.contains('.') {
            action
        } else {
            format!("{action}.")
        };
        if action.ends_with('.') {
            // Every action under a prefix: a range on the index (the byte after '.' is
            // '/', and no action holds it).
            let end = format!("{}/", action.trim_end_matches('.'));
            add(&mut c, "action >= #", Arg::Text(action));
            add(&mut c, "action < #", Arg::Text(end));
            c.scans = true;
        } else {
            add(&mut c, "action = #", Arg::Text(action));
        }
    }
    if let Some(target) = field(&f.target, "target", 254)? {
        equalities += 1;
        add(&mut c, "target = #", Arg::Text(target));
    }
    match f.outcome.trim() {
        "" => {}
        o @ ("success" | "failure") => {
            add(&mut c, "outcome = #", Arg::Text(o.to_owned()));
            c.scans = true;
        }
        _ => {
            return Err(AppError::validation(
                "outcome",
                "Choose success or failure.",
            ))
        }
    }
    if let Some(ip) = field(&f.ip, "ip", 64)? {
        let ip: std::net::IpAddr = ip.parse().map_err(|_| {
            AppError::validation("ip", "Enter one IPv4 or IPv6 address, such as 203.0.113.7.")
        })?;
        equalities += 1;
        // As recorded: an IPv4 address seen through an IPv6 socket is stored as IPv4.
        add(&mut c, "ip = #", Arg::Text(ip.to_canonical().to_string()));
    }
    let day = |v: &str, name: &str| -> Result<Option<i64>, AppError> {
        match v.trim() {
            "" => Ok(None),
            // Four-digit years only (no sign, no year 0).
            v if v.len() != 10
                || !v.starts_with(|c: char| c.is_ascii_digit())
                || v.starts_with("0000") =>
            {
                Err(AppError::validation(name, "Enter a date as YYYY-MM-DD."))
            }
            v => time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
                .map_err(|_| AppError::validation(name, "Enter a date as YYYY-MM-DD.")),
        }
    };
    let from = day(&f.from, "from")?;
    let to = day(&f.to, "to")?.map(|t| t + 86_400);
    if let (Some(a), Some(b)) = (from, to) {
        if a >= b {
            return Err(AppError::validation(
                "to",
                "The last day comes before the first.",
            ));
        }
    }
    if let Some(from) = from {
        add(&mut c, "occurred_at >= #", Arg::Int(from));
        c.scans = true;
    }
    if let Some(to) = to {
        add(&mut c, "occurred_at < #", Arg::Int(to));
        c.scans = true;
    }
    // Two equalities are answered by one index and a filter on the other.
    if equalities > 1 {
        c.scans = true;
    }
    Ok(c)
}

type EntryRow = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// At most `limit` events matching `f`, newest first, older than `before` (a `seq`).
async fn rows(
    db: &Db,
    c: &Conditions,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, AppError> {
    let mut sql = "select seq, occurred_at, actor_type, actor_id, action, target, ip, \
                   user_agent, outcome, details from audit_events where 1 = 1"
        .to_owned();
    sql.push_str(&c.sql);
    let mut n = c.args.len();
    if before.is_some() {
        n += 1;
        sql.push_str(&format!(" and seq < ${n}"));
    }
    sql.push_str(&format!(" order by seq desc limit ${}", n + 1));
    let mut q = sqlx::query_as::<_, EntryRow>(&sql);
    for a in &c.args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(t) => q.bind(t.clone()),
        };
    }
    if let Some(b) = before {
        q = q.bind(b);
    }
    let rows = q.bind(limit).fetch_all(&db.pool).await?;
    // Users named by their email: one query for the page, by primary key.
    let mut ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.2 == "user")
        .filter_map(|r| r.3.as_deref()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut emails = std::collections::HashMap::new();
    if !ids.is_empty() {
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let found: Vec<(i64, String)> =
            sqlx::query_as(&format!("select id, email from users where id in ({list})"))
                .fetch_all(&db.pool)
                .await?;
        emails.extend(found);
    }
    Ok(rows
        .into_iter()
        .map(
            |(seq, at, actor_type, actor_id, action, target, ip, user_agent, outcome, details)| {
                let actor = match (actor_type.as_str(), actor_id) {
                    ("user", Some(id)) => id
                        .parse::<i64>()
                        .ok()
                        .and_then(|n| emails.get(&n).cloned())
                        .unwrap_or_else(|| format!("user {id}")),
                    ("key", Some(id)) => id,
                    ("system", _) => "Keyward".to_owned(),
                    ("anonymous", _) => "not signed in".to_owned(),
                    (t, Some(id)) => format!("{t} {id}"),
                    (t, None) => t.to_owned(),
                };
                let target = shown_target(&action, target);
                AuditEntry {
                    seq,
                    at,
                    actor_type,
                    actor,
                    action,
                    target,
                    ip,
                    browser: user_agent
                        .as_deref()
                        .map(|ua| crate::infra::user_agent::describe_browser(Some(ua))),
                    user_agent,
                    outcome,
                    details,
                }
            },
        )
        .collect())
}

/// A webhook's URL may carry a token in its path or query: the log shows its origin
/// only, as the messages page does (the row itself, and its hash, keep what was
/// recorded).
fn shown_target(action: &str, target: Option<String>) -> Option<String> {
    match target {
        Some(t) if action.starts_with("webhook.") => Some(
            reqwest::Url::parse(&t)
                .map(|u| format!("{}/…", u.origin().ascii_serialization()))
                .unwrap_or_else(|_| "a webhook".to_owned()),
        ),
        t => t,
    }
}

fn before(f: &AuditFilter) -> Result<Option<i64>, AppError> {
    match f.before.trim() {
        "" => Ok(None),
        b => b
            .parse::<i64>()
            .ok()
            .filter(|b| *b > 0)
            .map(Some)
            .ok_or_else(|| AppError::validation("before", "This page link is broken.")),
    }
}

/// A page of `/audit`: the events matching `f`, newest first.
pub async fn list(db: &Db, grant: &Grant<'_>, f: &AuditFilter) -> Result<AuditPage, AppError> {
    let p = grant.ensure(Permission::AuditView)?;
    let c = conditions(db, f).await?;
    let before = before(f)?;
    let _slot = if c.scans {
        Some(db.scans.enter(p.user_id()).await?)
    } else {
        None
    };
    let mut entries = rows(db, &c, before, AUDIT_PAGE + 1).await?;
    let more = entries.len() as i64 > AUDIT_PAGE;
    entries.truncate(AUDIT_PAGE as usize);
    let next = more.then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(AuditPage { entries, next })
}

/// The export of the events matching `f`, read a chunk at a time (newest first), so
/// that a long export neither holds memory nor a connection between chunks.
pub struct Export {
    db: Db,
    user_id: i64,
    c: Conditions,
    before: Option<i64>,
    done: bool,
}

/// Rows per chunk of an export.
const EXPORT_CHUNK: i64 = 500;

impl Export {
    /// Checks the permission and the filters, and audits the export (who took which
    /// events, from where) before anything is read.
    pub async fn start(
        db: &Db,
        now: i64,
        grant: &Grant<'_>,
        origin: &super::Origin,
        f: &AuditFilter,
    ) -> Result<Self, AppError> {
        let p = grant.ensure(Permission::AuditView)?;
        let c = conditions(db, f).await?;
        let before = before(f)?;
        let filters: serde_json::Map<String, serde_json::Value> = f
            .query()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        let ev = super::Event::success(
            super::Actor::User(p.user_id()),
            "audit.exported",
            origin,
            None,
            serde_json::json!({ "filters": filters, "before": f.before.trim() }),
        );
        super::record(db, now, &ev).await?;
        Ok(Self {
            db: db.clone(),
            user_id: p.user_id(),
            c,
            before,
            done: false,
        })
    }

    /// The next chunk (empty at the end).
    pub async fn next_chunk(&mut self) -> Result<Vec<AuditEntry>, AppError> {
        if self.done {
            return Ok(Vec::new());
        }
        // A chunk waits its turn for a scan slot (the same user loading the page, or
        // others searching) rather than cutting a download short; a slot still refused
        // after half a minute ends the export.
        let mut tries = 0;
        let _slot = loop {
            if !self.c.scans {
                break None;
            }
            match self.db.scans.enter(self.user_id).await {
                Ok(slot) => break Some(slot),
                Err(AppError::RateLimited { .. }) if tries < 60 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let chunk = rows(&self.db, &self.c, self.before, EXPORT_CHUNK).await?;
        self.done = (chunk.len() as i64) < EXPORT_CHUNK;
        self.before = chunk.last().map(|e| e.seq);
        Ok(chunk)
    }
}

/// The columns of the CSV export.
pub const CSV_HEADER: [&str; 10] = [
    "seq",
    "time_utc",
    "actor_type",
    "actor",
    "action",
    "target",
    "ip",
    "user_agent",
    "outcome",
    "details",
];

/// One event as CSV cells, each neutralised against formula injection.
pub fn csv_cells(e: &AuditEntry) -> [String; 10] {
    let time = time::OffsetDateTime::from_unix_timestamp(e.at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| e.at.to_string());
    [
        e.seq.to_string(),
        time,
        e.actor_type.clone(),
        e.actor.clone(),
        e.action.clone(),
        e.target.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.outcome.clone(),
        e.details.clone(),
    ]
    .map(|s| neutralise_cell(&s))
}

/// CSV text (RFC 4180 quoting, by the `csv` crate) of the header row, when `header`,
/// then of `entries`.
pub fn csv_bytes(header: bool, entries: &[AuditEntry]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing into memory fails only on invalid UTF-8, which a String cannot hold.
    if header {
        let _ = w.write_record(CSV_HEADER);
    }
    for e in entries {
        let _ = w.write_record(csv_cells(e));
    }
    w.into_inner().unwrap_or_default()
}

/// A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or with a tab or a
/// carriage return before one) as a formula: such a cell is written with a leading `'`,
/// which spreadsheets show as text.
pub fn neutralise_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// Walks the whole chain, a chunk at a time, from the first event to the head that
/// was current when the walk began (events recorded meanwhile are left for the next
/// walk). Finds an event edited (its hash no longer follows from its contents), one
/// deleted or inserted (a gap in the numbers, or a link to a hash that is not its
/// predecessor's), and events cut off the end (the head names a later event).
pub async fn verify(db: &Db) -> Result<ChainState, sqlx::Error> {
    let (head_seq, head_hash): (i64, String) =
        sqlx::query_as("select seq, last_hash from audit_chain where id = 1")
            .fetch_one(&db.pool)
            .await?;
    let mut prev_hash = "0".repeat(64);
    let mut prev_seq = 0;
    let mut events = 0;
    let broken = |seq: i64, reason: String, events: i64, intact_to: i64| ChainState {
        events,
        intact_to,
        broken: Some(ChainBreak { seq, reason }),
    };
    loop {
        type Row = (
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        let chunk: Vec<Row> = sqlx::query_as(
            "select seq, occurred_at, actor_type, actor_id, action, target, ip, user_agent, \
             outcome, details, prev_hash, hash from audit_events where seq > $1 and seq <= $2 \
             order by seq limit $3",
        )
        .bind(prev_seq)
        .bind(head_seq)
        .bind(WALK_CHUNK)
        .fetch_all(&db.pool)
        .await?;
        let last_chunk = (chunk.len() as i64) < WALK_CHUNK;
        for (seq, at, at_type, aid, action, target, ip, ua, outcome, details, linked, hash) in chunk
        {
            if seq != prev_seq + 1 {
                let missing = if seq == prev_seq + 2 {
                    format!("event {} is missing (deleted).", prev_seq + 1)
                } else {
                    format!(
                        "events {} to {} are missing (deleted).",
                        prev_seq + 1,
                        seq - 1
                    )
                };
                return Ok(broken(seq, missing, events, prev_seq));
            }
            if linked != prev_hash {
                return Ok(broken(
                    seq,
                    "it does not link to the event before it (one was replaced or inserted)."
                        .into(),
                    events,
                    prev_seq,
                ));
            }
            let want = Stored {
                actor_type: &at_type,
                actor_id: aid.as_deref(),
                action: &action,
                target: target.as_deref(),
                ip: ip.as_deref(),
                user_agent: ua.as_deref(),
                outcome: &outcome,
                details: &details,
            }
            .hash(&prev_hash, seq, at);
            if hash != want {
                return Ok(broken(
                    seq,
                    "its contents were changed after it was recorded.".into(),
                    events,
                    prev_seq,
                ));
            }
            events += 1;
            prev_seq = seq;
            prev_hash = hash;
        }
        if last_chunk {
            break;
        }
    }
    // Rows outside 1..=head: numbered before the first event, or past the head (inserted
    // after it, or the head moved back over events that were then changed).
    let (low, high): (Option<i64>, Option<i64>) =
        sqlx::query_as("select min(seq), max(seq) from audit_events")
            .fetch_one(&db.pool)
            .await?;
    if let Some(low) = low.filter(|l| *l < 1) {
        return Ok(broken(
            low,
            "it is numbered before the first event (inserted).".into(),
            events,
            prev_seq,
        ));
    }
    if let Some(high) = high.filter(|h| *h > head_seq) {
        // Events recorded since the walk began are past the head read then: look again.
        let (now_head,): (i64,) = sqlx::query_as("select seq from audit_chain where id = 1")
            .fetch_one(&db.pool)
            .await?;
        if high > now_head {
            return Ok(broken(
                now_head + 1,
                format!(
                    "events up to {high} are past the chain's head ({now_head}): inserted, or \
                     the head was moved back."
                ),
                events,
                prev_seq,
            ));
        }
    }
    if prev_seq != head_seq {
        let reason = if prev_seq + 1 == head_seq {
            format!("the last event ({head_seq}) is missing (deleted).")
        } else {
            format!(
                "the last events ({} to {head_seq}) are missing (deleted).",
                prev_seq + 1
            )
        };
        return Ok(broken(prev_seq + 1, reason, events, prev_seq));
    }
    if head_seq > 0 && head_hash != prev_hash {
        return Ok(broken(
            head_seq,
            "the chain's head does not name this event's hash (it was changed).".into(),
            events - 1,
            head_seq - 1,
        ));
    }
    Ok(ChainState {
        events,
        intact_to: prev_seq,
        broken: None,
    })
}

/// The chain's state for a holder of `audit.view`: one walk at a time per instance
/// (a walk reads every event), apart from the scan slots that searches use.
pub async fn check(db: &Db, grant: &Grant<'_>) -> Result<ChainState, AppError> {
    let p = grant.ensure(Permission::AuditView)?;
    let _slot = db.walks.enter(p.user_id()).await?;
    Ok(verify(db).await?)
}
