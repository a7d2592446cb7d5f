//! Outgoing mail: SMTP through lettre (`KEYWARD_SMTP_URL`), or, in development without
//! SMTP, a local outbox folder of `.eml` files (`KEYWARD_OUTBOX_DIR`, default `outbox`).
//! Production without SMTP does not start (see `config`).
//!
//! Every message has a plain-text and an HTML part. Recipients are normalised addresses
//! and subjects are Keyward's own text; lettre encodes headers, so no user text can add
//! a header.

use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use std::path::PathBuf;

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Outbox(p) => format!("outbox {}", p.display()),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &kind)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The server refused for good (5xx): retrying will not help.
    #[error("SMTP refused: {0}")]
    SmtpPermanent(String),
    #[error("outbox: {0}")]
    Outbox(String),
}

/// One message: the same content as text and as HTML.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
}

impl MailError {
    /// True when retrying the same message cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Address(_) | Self::Build(_) | Self::SmtpPermanent(_)
        )
    }
}

/// A message a user wrote (the outbox worker sends it): plain text, several
/// recipients, and a fixed Message-ID so that a receiver can drop a duplicate.
pub struct UserMail<'a> {
    /// Without angle brackets, e.g. `msg_…@keyward.example.com`.
    pub message_id: &'a str,
    pub to: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
}

impl Mailer {
    pub async fn send_user_mail(&self, mail: UserMail<'_>) -> Result<(), MailError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .message_id(Some(format!("<{}>", mail.message_id)))
            .subject(mail.subject);
        for to in mail.to {
            let to: Mailbox = to
                .parse()
                .map_err(|e| MailError::Address(format!("{to}: {e}")))?;
            b = b.to(to);
        }
        let msg = b
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.to_owned())
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.deliver(msg).await.map(drop)
    }

    /// The mailer the configuration describes.
    pub fn from_config(config: &crate::infra::config::Config) -> Result<Self, MailError> {
        Self::new(
            config.smtp_url.as_ref().map(|s| s.expose().as_str()),
            &config.mail_from,
            config.outbox_dir.clone(),
        )
    }

    pub fn new(smtp_url: Option<&str>, from: &str, outbox: PathBuf) -> Result<Self, MailError> {
        let from: Mailbox = format!("Keyward <{from}>")
            .parse()
            .map_err(|e| MailError::Address(format!("{from}: {e}")))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Smtp(e.to_string()))?
                    .timeout(Some(std::time::Duration::from_secs(15)))
                    .build(),
            ),
            None => Transport::Outbox(outbox),
        };
        Ok(Self { from, transport })
    }

    pub async fn send(&self, mail: Mail<'_>) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Address(format!("{}: {e}", mail.to)))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html),
                    ),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        self.deliver(msg).await.map(drop)
    }

    /// Sends the `send-test-email` message to `to`; says where it went (the SMTP
    /// server, or the outbox file written).
    pub async fn send_test(&self, to: &str, public_url: &str) -> Result<String, MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Address(format!("{to}: {e}")))?;
        let text = format!(
            "This is a test message from Keyward at {public_url}.\n\n\
             Mail from this server reaches you: sign-in codes, invitations and approval \
             requests will arrive the same way.\n"
        );
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject("Keyward test message")
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok(match self.deliver(msg).await? {
            Some(path) => format!(
                "Wrote a test message for {to} to the development outbox: {} (no SMTP is configured; `keyward outbox` lists it)",
                path.display()
            ),
            None => format!("The SMTP server accepted a test message for {to}."),
        })
    }

    /// Returns the outbox file written, when mail goes to the outbox.
    async fn deliver(&self, msg: Message) -> Result<Option<PathBuf>, MailError> {
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(msg).await.map_err(|e| {
                    if e.is_permanent() {
                        MailError::SmtpPermanent(e.to_string())
                    } else {
                        MailError::Smtp(e.to_string())
                    }
                })?;
            }
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Outbox(format!("{}: {e}", dir.display())))?;
                let name = format!(
                    "{}-{:08x}.eml",
                    time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
                    rand::random::<u32>()
                );
                let path = dir.join(name);
                tokio::fs::write(&path, msg.formatted())
                    .await
                    .map_err(|e| MailError::Outbox(format!("{}: {e}", path.display())))?;
                // Codes and links travel in these files: readable by their owner only.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let private = std::fs::Permissions::from_mode(0o600);
                    tokio::fs::set_permissions(&path, private)
                        .await
                        .map_err(|e| MailError::Outbox(format!("{}: {e}", path.display())))?;
                }
                tracing::info!(path = %path.display(), "mail written to the development outbox");
                return Ok(Some(path));
            }
        }
        Ok(None)
    }
}
