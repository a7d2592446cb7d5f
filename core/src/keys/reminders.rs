//! Expiry reminders: the owner of a REST key is mailed 7 days and 1 day before it
//! expires, once each, with the key's name, app, id, when it expires and how to roll
//! it.
//!
//! A reminder is claimed by the statement that marks it sent (`reminded_7d_at`,
//! `reminded_1d_at`), with `for update skip locked` on PostgreSQL and the single
//! writer on SQLite: however many instances run the job, and across restarts, each
//! reminder goes once (a process that dies between the claim and the mail loses that
//! one mail rather than sending it twice). Not reminded: revoked keys, keys already
//! rolled (their replacement is the key to watch), keys whose whole lifetime is
//! shorter than the reminder's lead (a 7-day key gets no "7 days left" at its
//! creation), and keys without an active owner.

use crate::infra::db::Backend;
use crate::infra::mail::Mail;
use crate::state::Core;
use model::error::AppError;

/// The two reminders: how long before the expiry, the column that marks it sent, and
/// how the mail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lead {
    Week,
    Day,
}

impl Lead {
    pub const ALL: [Lead; 2] = [Lead::Week, Lead::Day];

    fn secs(self) -> i64 {
        match self {
            Lead::Week => 7 * 86_400,
            Lead::Day => 86_400,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Lead::Week => "reminded_7d_at",
            Lead::Day => "reminded_1d_at",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Lead::Week => "in 7 days",
            Lead::Day => "tomorrow",
        }
    }
}

/// Keys one claim takes.
const CLAIM: i64 = 50;

/// A reminder sent: which key, which lead, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub key_id: String,
    pub lead: Lead,
    pub to: String,
}

fn claim_sql(backend: Backend, lead: Lead) -> String {
    let col = lead.column();
    // A key due for the 1-day reminder is past the 7-day one: it is marked too, so a
    // job that was down for a week sends the nearer reminder only.
    let also = match lead {
        Lead::Day => ", reminded_7d_at = coalesce(reminded_7d_at, $1)",
        Lead::Week => "",
    };
    let lock = match backend {
        Backend::Postgres => " for update of k skip locked",
        Backend::Sqlite => "",
    };
    format!(
        "update api_keys set {col} = $1{also}, updated_at = $1 where id in (\
           select k.id from api_keys k join users u on u.id = k.owner_id \
           where k.kind = 'rest' and k.revoked_at is null and k.replaced_by is null and k.disabled_at is null \
           and k.expires_at > $1 and k.expires_at <= $1 + $2 \
           and k.expires_at - k.created_at > $2 and k.{col} is null \
           and u.status = 'active' order by k.expires_at limit $3{lock}) \
         and {col} is null \
         returning key_id, name, app_id, owner_id, expires_at"
    )
}

/// Sends every reminder due now; returns what it sent.
pub async fn run(st: &Core) -> Result<Vec<Sent>, AppError> {
    let mut sent = Vec::new();
    // The nearer reminder first: a key due for both gets only it.
    for lead in [Lead::Day, Lead::Week] {
        loop {
            let now = st.clock.now();
            let rows: Vec<(String, String, i64, i64, i64)> =
                sqlx::query_as(&claim_sql(st.db.backend, lead))
                    .bind(now)
                    .bind(lead.secs())
                    .bind(CLAIM)
                    .fetch_all(&st.db.pool)
                    .await?;
            if rows.is_empty() {
                break;
            }
            for (key_id, name, app_id, owner_id, expires_at) in rows {
                let owner: Option<(String,)> =
                    sqlx::query_as("select email from users where id = $1")
                        .bind(owner_id)
                        .fetch_optional(&st.db.pool)
                        .await?;
                let app: Option<(String,)> = sqlx::query_as("select name from apps where id = $1")
                    .bind(app_id)
                    .fetch_optional(&st.db.pool)
                    .await?;
                let Some((to,)) = owner else { continue };
                let app = app.map(|(a,)| a).unwrap_or_default();
                let (subject, text, html) = render(
                    &st.config.public_url.url,
                    lead,
                    &key_id,
                    &name,
                    &app,
                    expires_at,
                );
                let mail = Mail {
                    to: &to,
                    subject: &subject,
                    text,
                    html,
                };
                if let Err(e) = st.mailer.send(mail).await {
                    tracing::warn!(error = %e, key_id = %key_id, "an expiry reminder was not sent");
                    continue;
                }
                let days_left = lead.secs() / 86_400;
                let mut conn = st.db.pool.acquire().await?;
                let extra = serde_json::json!({ "days_left": days_left });
                if let Err(e) = crate::messages::events::key_event(
                    &mut conn,
                    now,
                    "key.expiring",
                    &key_id,
                    extra,
                )
                .await
                {
                    tracing::warn!(error = %e, key_id = %key_id, "the key.expiring event was not queued");
                }
                sent.push(Sent { key_id, lead, to });
            }
        }
    }
    Ok(sent)
}

/// The reminder: (subject, text, html).
pub fn render(
    public_url: &str,
    lead: Lead,
    key_id: &str,
    name: &str,
    app: &str,
    expires_at: i64,
) -> (String, String, String) {
    let when = time::OffsetDateTime::from_unix_timestamp(expires_at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default();
    let link = format!("{}/keys/{key_id}", public_url.trim_end_matches('/'));
    let subject = format!("Your API key \"{name}\" expires {}", lead.words());
    let what = format!(
        "Your API key \"{name}\" ({key_id}) for {app} expires {}, at {when}. Requests made with it will then be refused.",
        lead.words()
    );
    let how = "To keep what uses it working, roll it on its page: you get a new secret at once, and the old one can keep working for a grace period while you put the new one in place.";
    let text = format!("{what}\n\n{how}\n\n{link}\n");
    let html = maud::html! {
        p { (what) }
        p { (how) }
        p { a href=(link) { "Open the key's page" } }
    }
    .into_string();
    (subject, text, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_names_the_key_its_app_when_and_how_to_roll_it() {
        let (subject, text, html) = render(
            "https://keys.example.com/",
            Lead::Day,
            "key_abcdefghijklmnop",
            "<checkout>",
            "Billing",
            1_800_000_000,
        );
        assert_eq!(subject, "Your API key \"<checkout>\" expires tomorrow");
        assert!(text.contains("key_abcdefghijklmnop"));
        assert!(text.contains("for Billing"));
        assert!(text.contains("2027-01-15 08:00 UTC"), "{text}");
        assert!(text.contains("https://keys.example.com/keys/key_abcdefghijklmnop"));
        assert!(text.contains("roll it"));
        assert!(html.contains("&lt;checkout&gt;"), "escaped in HTML: {html}");
    }
}
