//! Configuration: defaults, then `keyward.toml`, then `KEYWARD_*` environment variables,
//! then `KEYWARD_*_FILE` for secrets (the file's content, trimmed).
//!
//! Every value is read as text first and then validated here, so a malformed value stops
//! start-up with a message that names the variable and says what is expected.

use figment::{
    providers::{Format, Toml},
    Figment,
};
use ipnet::IpNet;
use serde::Deserialize;
use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub enum MasterKey {
    /// Given by `KEYWARD_MASTER_KEY` / `_FILE`.
    Given(Secret<[u8; 32]>),
    /// Development only: generated on first start and kept beside the database.
    GenerateBeside(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: Secret<String>,
    pub public_url: PublicUrl,
    pub env: RunMode,
    pub smtp_url: Option<Secret<String>>,
    pub mail_from: String,
    /// Development without SMTP: where mail is written as `.eml` files.
    pub outbox_dir: PathBuf,
    pub master_key: MasterKey,
    pub trusted_proxies: Vec<IpNet>,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub max_body_bytes: usize,
    /// How long one delivery attempt (SMTP or webhook) may take; a claimed message is
    /// leased to its worker for twice this plus 10 s.
    pub delivery_timeout: Duration,
    /// `KEYWARD_OUTBOUND_PROXY`: the only proxy webhooks (and other outbound HTTP) go
    /// through; the environment's `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are ignored.
    pub outbound_proxy: Option<Secret<String>>,
    /// `KEYWARD_METRICS_TOKEN`: the bearer token `/metrics` asks for; unset, `/metrics`
    /// answers loopback clients only.
    pub metrics_token: Option<Secret<String>>,
    /// `KEYWARD_SMS_URL` (and `KEYWARD_SMS_SECRET`): where SMS go.
    pub sms: SmsTarget,
    /// Unknown `KEYWARD_*` variables (likely typos), for the caller to log.
    pub warnings: Vec<String>,
}

/// Settings, as their `keyward.toml` keys (`KEYWARD_` + uppercase in the environment).
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_url_file",
    "public_url",
    "env",
    "smtp_url",
    "smtp_url_file",
    "mail_from",
    "outbox_dir",
    "master_key",
    "master_key_file",
    "trusted_proxies",
    "session_idle_minutes",
    "session_absolute_hours",
    "max_body_bytes",
    "delivery_timeout_seconds",
    "outbound_proxy",
    "metrics_token",
    "metrics_token_file",
    "sms_url",
    "sms_url_file",
    "sms_secret",
    "sms_secret_file",
];

/// `KEYWARD_*` variables read elsewhere (config file path, log filter).
const OTHER_ENV: &[&str] = &["CONFIG", "LOG"];

/// The URL users reach: its origin is what cross-origin checks compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub url: String,
    pub origin: String,
    pub https: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        message: message.into(),
    }
}

/// Every setting as text, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    database_url: Option<String>,
    database_url_file: Option<String>,
    public_url: Option<String>,
    env: Option<String>,
    smtp_url: Option<String>,
    smtp_url_file: Option<String>,
    mail_from: Option<String>,
    outbox_dir: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    trusted_proxies: Option<StringOrList>,
    session_idle_minutes: Option<StringOrNumber>,
    session_absolute_hours: Option<StringOrNumber>,
    max_body_bytes: Option<StringOrNumber>,
    delivery_timeout_seconds: Option<StringOrNumber>,
    outbound_proxy: Option<String>,
    metrics_token: Option<String>,
    metrics_token_file: Option<String>,
    sms_url: Option<String>,
    sms_url_file: Option<String>,
    sms_secret: Option<String>,
    sms_secret_file: Option<String>,
}

/// Where SMS go (`KEYWARD_SMS_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsTarget {
    /// Development without a gateway: JSON files in the outbox folder.
    Outbox,
    /// Production without a gateway: SMS cannot be sent (the SMS channel and SMS codes
    /// say so instead of accepting what would never leave).
    Off,
    /// `https://…` (or `http://` to a loopback address): one JSON POST per recipient,
    /// signed with `KEYWARD_SMS_SECRET` like webhooks.
    Signed { url: String, secret: Secret<String> },
    /// `twilio://ACCOUNT_SID:AUTH_TOKEN@HOST` (`twilio+http://` to a loopback test
    /// double): Twilio's Messages API at `base` (`https://HOST`).
    Twilio {
        base: String,
        account_sid: String,
        auth_token: Secret<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Number(i64),
    Text(String),
}

impl StringOrNumber {
    fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

impl Config {
    /// Loads from `keyward.toml` in the working directory (or `KEYWARD_CONFIG`) and the
    /// process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let path = std::env::var("KEYWARD_CONFIG").unwrap_or_else(|_| "keyward.toml".into());
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_sources(Some(PathBuf::from(path)), &env)
    }

    /// Loads from an optional TOML file and the given environment (tests pass their own).
    pub fn from_sources(
        toml: Option<PathBuf>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(path) = toml.as_ref().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(&path.display().to_string(), format!("cannot read: {e}")))?;
            fig = fig.merge(Toml::string(&text));
        }
        // `KEYWARD_X` → key `x`, as figment's `Env::prefixed("KEYWARD_")` would name it, but
        // from an explicit list so tests pass their own environment without global state.
        let mut env_fig = Figment::new();
        let mut warnings = Vec::new();
        for (k, v) in env {
            if let Some(name) = k.strip_prefix("KEYWARD_") {
                let key = name.to_ascii_lowercase();
                if KNOWN_KEYS.contains(&key.as_str()) {
                    env_fig = env_fig.merge((key, v.clone()));
                } else if !OTHER_ENV.contains(&name)
                    && !name.starts_with("TEST_")
                    && !name.starts_with("E2E_")
                {
                    warnings.push(format!("{k} is not a Keyward setting and is ignored"));
                }
            }
        }
        fig = fig.merge(env_fig);
        let raw: Raw = fig.extract().map_err(|e| {
            let key = e.path.join(".");
            let var = if key.is_empty() {
                "configuration".to_owned()
            } else {
                format!("KEYWARD_{}", key.to_ascii_uppercase())
            };
            let msg = match &e.kind {
                figment::error::Kind::UnknownField(f, _) => {
                    format!("unknown setting `{f}` (KEYWARD_{})", f.to_ascii_uppercase())
                }
                other => other.to_string(),
            };
            err(&var, msg)
        })?;
        let mut config = Self::validate(raw)?;
        config.warnings = warnings;
        Ok(config)
    }

    fn validate(raw: Raw) -> Result<Self, ConfigError> {
        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            err(
                "KEYWARD_LISTEN",
                format!(
                    "`{listen_text}` is not an address:port such as 127.0.0.1:3000 or [::]:3000"
                ),
            )
        })?;

        let env = match raw.env.as_deref().map(str::trim) {
            None | Some("development") => RunMode::Development,
            Some("production") => RunMode::Production,
            Some(other) => {
                return Err(err(
                    "KEYWARD_ENV",
                    format!("`{other}` is neither `development` nor `production`"),
                ))
            }
        };

        let database_url = secret_or_file(
            "KEYWARD_DATABASE_URL",
            raw.database_url,
            raw.database_url_file,
        )?
        .unwrap_or_else(|| "sqlite://keyward.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "KEYWARD_DATABASE_URL",
                "expected `sqlite://path` or `postgres://user@host/db`",
            ));
        }

        let public_text = raw.public_url.unwrap_or_else(|| format!("http://{listen}"));
        let public_url = parse_public_url(&public_text)?;

        let smtp_url = secret_or_file("KEYWARD_SMTP_URL", raw.smtp_url, raw.smtp_url_file)?;
        if let Some(url) = &smtp_url {
            let ok = (url.starts_with("smtp://") || url.starts_with("smtps://"))
                && url.len() > "smtp://".len() + 1
                && lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).is_ok();
            if !ok {
                return Err(err(
                    "KEYWARD_SMTP_URL",
                    "expected `smtp://host:port` or `smtps://user:pass@host:port`",
                ));
            }
        }
        if env == RunMode::Production && smtp_url.is_none() {
            return Err(err(
                "KEYWARD_SMTP_URL",
                "required in production (KEYWARD_ENV=production): set it to `smtp://host:port` or `smtps://user:pass@host:port`",
            ));
        }

        let mail_from = raw.mail_from.unwrap_or_else(|| "keyward@localhost".into());
        let mf = mail_from.trim();
        if mf.contains(['\r', '\n', '<', '>', ','])
            || mf.split('@').count() != 2
            || mf.starts_with('@')
            || mf.ends_with('@')
        {
            return Err(err(
                "KEYWARD_MAIL_FROM",
                format!("`{mail_from}` is not a single email address such as keyward@example.com"),
            ));
        }

        let master_key = match secret_or_file("KEYWARD_MASTER_KEY", raw.master_key, raw.master_key_file)? {
            Some(text) => MasterKey::Given(Secret::new(decode_master_key(&text)?)),
            None if env == RunMode::Production => {
                return Err(err(
                    "KEYWARD_MASTER_KEY",
                    "required in production: generate one with `openssl rand -base64 32` and set KEYWARD_MASTER_KEY or KEYWARD_MASTER_KEY_FILE",
                ))
            }
            None => MasterKey::GenerateBeside(master_key_path(&database_url)),
        };

        let proxies: Vec<String> = match raw.trusted_proxies {
            None => vec![],
            Some(StringOrList::One(s)) => s
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(StringOrList::Many(v)) => v,
        };
        let trusted_proxies = proxies
            .iter()
            .map(|p| {
                parse_cidr(p).ok_or_else(|| {
                    err(
                        "KEYWARD_TRUSTED_PROXIES",
                        format!("`{p}` is not an IP address or CIDR such as 10.0.0.0/8 or ::1/128"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let session_idle = Duration::from_secs(
            60 * positive(
                "KEYWARD_SESSION_IDLE_MINUTES",
                raw.session_idle_minutes,
                30,
                24 * 60,
            )?,
        );
        let session_absolute = Duration::from_secs(
            3600 * positive(
                "KEYWARD_SESSION_ABSOLUTE_HOURS",
                raw.session_absolute_hours,
                12,
                24 * 30,
            )?,
        );
        let max_body_bytes = positive(
            "KEYWARD_MAX_BODY_BYTES",
            raw.max_body_bytes,
            // Room for the largest form at its fields' `maxlength`, percent-encoded.
            512 * 1024,
            16 * 1024 * 1024,
        )? as usize;
        let delivery_timeout = Duration::from_secs(positive(
            "KEYWARD_DELIVERY_TIMEOUT_SECONDS",
            raw.delivery_timeout_seconds,
            30,
            600,
        )?);

        let outbound_proxy = match raw.outbound_proxy.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => {
                let ok = reqwest::Url::parse(p)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
                if ok.is_none() {
                    return Err(err(
                        "KEYWARD_OUTBOUND_PROXY",
                        "expected a proxy URL such as http://proxy.internal:3128",
                    ));
                }
                Some(Secret::new(p.to_owned()))
            }
        };

        let metrics_token = secret_or_file(
            "KEYWARD_METRICS_TOKEN",
            raw.metrics_token,
            raw.metrics_token_file,
        )?;
        if let Some(t) = &metrics_token {
            // Sent in a header by a scraper's configuration: printable ASCII, no spaces,
            // long enough not to be guessed.
            if t.len() < 16 || t.len() > 512 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(err(
                    "KEYWARD_METRICS_TOKEN",
                    "expected 16 to 512 printable characters without spaces; generate one with `openssl rand -hex 32`",
                ));
            }
        }

        let sms_url = secret_or_file("KEYWARD_SMS_URL", raw.sms_url, raw.sms_url_file)?;
        let sms_secret = secret_or_file("KEYWARD_SMS_SECRET", raw.sms_secret, raw.sms_secret_file)?;
        let sms = sms_target(env, sms_url.as_deref(), sms_secret)?;

        Ok(Self {
            sms,
            metrics_token: metrics_token.map(Secret::new),
            outbound_proxy,
            listen,
            database_url: Secret::new(database_url),
            public_url,
            env,
            smtp_url: smtp_url.map(Secret::new),
            mail_from: mf.to_owned(),
            outbox_dir: raw
                .outbox_dir
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| "outbox".into())
                .into(),
            master_key,
            trusted_proxies,
            session_idle,
            session_absolute,
            max_body_bytes,
            delivery_timeout,
            warnings: Vec::new(),
        })
    }
}

fn positive(
    var: &str,
    v: Option<StringOrNumber>,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let text = v.text();
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(err(
            var,
            format!("`{text}` is not a whole number from 1 to {max}"),
        )),
    }
}

/// Whether `host` (as a URL gives it) is a loopback address or `localhost`.
fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `KEYWARD_SMS_URL` and `KEYWARD_SMS_SECRET`, checked (see [`SmsTarget`]).
fn sms_target(
    env: RunMode,
    url: Option<&str>,
    secret: Option<String>,
) -> Result<SmsTarget, ConfigError> {
    const FORMS: &str = "expected `https://…` (or `http://` to a loopback address), `twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com` or `twilio+http://SID:TOKEN@127.0.0.1:PORT`";
    let Some(text) = url.filter(|u| !u.is_empty()) else {
        if secret.is_some() {
            return Err(err(
                "KEYWARD_SMS_SECRET",
                "set only with KEYWARD_SMS_URL (an https:// gateway)",
            ));
        }
        return Ok(match env {
            RunMode::Development => SmsTarget::Outbox,
            RunMode::Production => SmsTarget::Off,
        });
    };
    let u = reqwest::Url::parse(text).map_err(|_| err("KEYWARD_SMS_URL", FORMS))?;
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err("KEYWARD_SMS_URL", FORMS))?
        .to_owned();
    match u.scheme() {
        "https" | "http" => {
            if u.scheme() == "http" && !is_loopback_host(&host) {
                return Err(err(
                    "KEYWARD_SMS_URL",
                    "http:// only to a loopback address (a local test double); use https:// for a gateway",
                ));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(err(
                    "KEYWARD_SMS_URL",
                    "no user or password in a signed gateway's URL: requests are signed with KEYWARD_SMS_SECRET",
                ));
            }
            let secret = secret.ok_or_else(|| {
                err(
                    "KEYWARD_SMS_SECRET",
                    "required with an https:// KEYWARD_SMS_URL (requests are signed with it); generate one with `openssl rand -hex 32`",
                )
            })?;
            if secret.len() < 16
                || secret.len() > 512
                || !secret.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(err(
                    "KEYWARD_SMS_SECRET",
                    "expected 16 to 512 printable characters without spaces; generate one with `openssl rand -hex 32`",
                ));
            }
            Ok(SmsTarget::Signed {
                url: text.to_owned(),
                secret: Secret::new(secret),
            })
        }
        "twilio" | "twilio+http" => {
            if secret.is_some() {
                return Err(err(
                    "KEYWARD_SMS_SECRET",
                    "not used with twilio:// (the auth token is in the URL)",
                ));
            }
            let plain = u.scheme() == "twilio+http";
            if plain && !is_loopback_host(&host) {
                return Err(err(
                    "KEYWARD_SMS_URL",
                    "twilio+http:// only to a loopback address (a local test double)",
                ));
            }
            let (sid, token) = (
                u.username().to_owned(),
                u.password().unwrap_or_default().to_owned(),
            );
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| err("KEYWARD_SMS_URL", FORMS))
            };
            let (sid, token) = (decode(&sid)?, decode(&token)?);
            let word = |s: &str| {
                !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
            };
            if !word(&sid) || !word(&token) {
                return Err(err(
                    "KEYWARD_SMS_URL",
                    "expected twilio://ACCOUNT_SID:AUTH_TOKEN@HOST with the account SID and auth token (letters and digits)",
                ));
            }
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let scheme = if plain { "http" } else { "https" };
            Ok(SmsTarget::Twilio {
                base: format!("{scheme}://{host}{port}"),
                account_sid: sid,
                auth_token: Secret::new(token),
            })
        }
        _ => Err(err("KEYWARD_SMS_URL", FORMS)),
    }
}

fn secret_or_file(
    var: &str,
    value: Option<String>,
    file: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(err(
            var,
            format!("set either {var} or {var}_FILE, not both"),
        )),
        (Some(v), None) => Ok(Some(v.trim().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| err(&format!("{var}_FILE"), format!("cannot read `{path}`: {e}"))),
        (None, None) => Ok(None),
    }
}

fn decode_master_key(text: &str) -> Result<[u8; 32], ConfigError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| {
            err(
                "KEYWARD_MASTER_KEY",
                "not valid base64; generate one with `openssl rand -base64 32`",
            )
        })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        err(
            "KEYWARD_MASTER_KEY",
            format!(
                "decodes to {} bytes, expected 32; generate one with `openssl rand -base64 32`",
                b.len()
            ),
        )
    })
}

fn master_key_path(database_url: &str) -> PathBuf {
    match crate::infra::db::sqlite_path(database_url) {
        Some(db) => {
            let mut p = db.into_os_string();
            p.push(".master-key");
            PathBuf::from(p)
        }
        None => PathBuf::from("keyward.master-key"),
    }
}

fn parse_public_url(text: &str) -> Result<PublicUrl, ConfigError> {
    let t = text.trim().trim_end_matches('/');
    let bad = || {
        err(
            "KEYWARD_PUBLIC_URL",
            format!("`{text}` is not an http(s) URL such as https://keys.example.com"),
        )
    };
    let (https, rest) = if let Some(r) = t.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = t.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return Err(bad());
    }
    let scheme = if https { "https" } else { "http" };
    // Browsers send the origin without the default port.
    let host_lc = host.to_ascii_lowercase();
    let host_norm = match (
        https,
        host_lc.strip_suffix(":443"),
        host_lc.strip_suffix(":80"),
    ) {
        (true, Some(h), _) => h.to_owned(),
        (false, _, Some(h)) => h.to_owned(),
        _ => host_lc,
    };
    Ok(PublicUrl {
        url: t.to_owned(),
        origin: format!("{scheme}://{host_norm}"),
        https,
    })
}

/// An address (`10.1.2.3`, `::1`) or a CIDR (`10.0.0.0/8`).
pub fn parse_cidr(text: &str) -> Option<IpNet> {
    let t = text.trim();
    let net = match t.parse::<IpNet>() {
        // A range written from another address than its first (`1.2.3.4/0`) is refused,
        // not silently widened: the writer may have meant the single address.
        Ok(n) if n.trunc() != n => return None,
        Ok(n) => n,
        Err(_) => IpNet::from(t.parse::<std::net::IpAddr>().ok()?),
    };
    Some(ipv4_form(net))
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it names: client
/// addresses are compared in IPv4 form, so the mapped form would never match.
fn ipv4_form(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_from_their_first_address_and_mapped_ones_as_ipv4() {
        let p = |t: &str| parse_cidr(t).map(|n| n.to_string());
        assert_eq!(p("10.0.0.0/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(p(" 192.0.2.7 ").as_deref(), Some("192.0.2.7/32"));
        assert_eq!(p("2001:db8::/32").as_deref(), Some("2001:db8::/32"));
        assert_eq!(p("1.2.3.4/0"), None, "host bits under the prefix");
        assert_eq!(p("10.1.2.3/8"), None);
        assert_eq!(p("::ffff:1.2.3.4/128").as_deref(), Some("1.2.3.4/32"));
        assert_eq!(p("::ffff:10.0.0.0/104").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(p("::ffff:1.2.3.4").as_deref(), Some("1.2.3.4/32"));
        assert_eq!(p("nonsense"), None);
    }

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(None, &env)
    }

    #[test]
    fn the_sms_gateway_is_one_of_its_forms_and_plain_http_only_to_loopback() {
        let sms = |env: &[(&str, &str)]| load(env).map(|c| c.sms);
        let secret = ("KEYWARD_SMS_SECRET", "0123456789abcdef0123");
        assert_eq!(sms(&[]).unwrap(), SmsTarget::Outbox);
        let prod = [
            ("KEYWARD_ENV", "production"),
            ("KEYWARD_SMTP_URL", "smtp://mail:25"),
            (
                "KEYWARD_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ];
        assert_eq!(sms(&prod).unwrap(), SmsTarget::Off);
        assert!(matches!(
            sms(&[("KEYWARD_SMS_URL", "https://sms.example.com/send"), secret]).unwrap(),
            SmsTarget::Signed { .. }
        ));
        assert!(matches!(
            sms(&[("KEYWARD_SMS_URL", "http://127.0.0.1:9000/sms"), secret]).unwrap(),
            SmsTarget::Signed { .. }
        ));
        match sms(&[("KEYWARD_SMS_URL", "twilio://AC12ab:tok3en@api.twilio.com")]) {
            Ok(SmsTarget::Twilio {
                base, account_sid, ..
            }) => {
                assert_eq!(
                    (base.as_str(), account_sid.as_str()),
                    ("https://api.twilio.com", "AC12ab")
                );
            }
            other => panic!("{other:?}"),
        }
        for (url, var) in [
            ("http://sms.example.com/send", "KEYWARD_SMS_URL"),
            ("https://sms.example.com/send", "KEYWARD_SMS_SECRET"),
            ("twilio+http://AC1:tok@sms.example.com", "KEYWARD_SMS_URL"),
            ("twilio://api.twilio.com", "KEYWARD_SMS_URL"),
            ("ftp://sms.example.com", "KEYWARD_SMS_URL"),
            ("not a url", "KEYWARD_SMS_URL"),
            ("https://user:pw@sms.example.com", "KEYWARD_SMS_URL"),
        ] {
            let with_secret = url.starts_with("http://") || url.contains("user:pw");
            let env: Vec<(&str, &str)> = if with_secret {
                vec![("KEYWARD_SMS_URL", url), secret]
            } else {
                vec![("KEYWARD_SMS_URL", url)]
            };
            let e = sms(&env).unwrap_err();
            assert_eq!(e.var, var, "{url}: {}", e.message);
        }
        let short = sms(&[
            ("KEYWARD_SMS_URL", "https://sms.example.com"),
            ("KEYWARD_SMS_SECRET", "short"),
        ]);
        assert_eq!(short.unwrap_err().var, "KEYWARD_SMS_SECRET");
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url.expose(), "sqlite://keyward.db");
        assert_eq!(c.public_url.url, "http://127.0.0.1:3000");
        assert_eq!(c.env, RunMode::Development);
        assert!(c.smtp_url.is_none());
        assert_eq!(c.mail_from, "keyward@localhost");
        assert!(
            matches!(c.master_key, MasterKey::GenerateBeside(ref p) if p.ends_with("keyward.db.master-key"))
        );
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let e = load(&[("KEYWARD_LISTEN", "localhost")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_LISTEN");
        let e = load(&[("KEYWARD_ENV", "staging")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_ENV");
        let e = load(&[("KEYWARD_PUBLIC_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_PUBLIC_URL");
        let e = load(&[("KEYWARD_TRUSTED_PROXIES", "10.0.0.0/8, banana")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_TRUSTED_PROXIES");
        assert!(e.message.contains("banana"));
        let e = load(&[("KEYWARD_MASTER_KEY", "c2hvcnQ=")]).unwrap_err();
        assert!(e.message.contains("expected 32"), "{e}");
        let e = load(&[("KEYWARD_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_DATABASE_URL");
        let e = load(&[("KEYWARD_SMTP_URL", "http://mail")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_SMTP_URL");
        let e = load(&[("KEYWARD_MAIL_FROM", "a@b\r\nBcc: x@y")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_MAIL_FROM");
        let e = load(&[("KEYWARD_SESSION_IDLE_MINUTES", "0")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_SESSION_IDLE_MINUTES");
        let e = load(&[("KEYWARD_OUTBOUND_PROXY", "proxy:3128")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_OUTBOUND_PROXY");
        let c = load(&[("KEYWARD_OUTBOUND_PROXY", "http://proxy.internal:3128")]).unwrap();
        assert_eq!(
            c.outbound_proxy.map(|p| p.expose().clone()).as_deref(),
            Some("http://proxy.internal:3128")
        );
        for bad in [
            "short",
            "has a space in it somewhere",
            "tab\tinside-a-long-token",
        ] {
            let e = load(&[("KEYWARD_METRICS_TOKEN", bad)]).unwrap_err();
            assert_eq!(e.var, "KEYWARD_METRICS_TOKEN");
        }
        let c = load(&[("KEYWARD_METRICS_TOKEN", "0123456789abcdef0123")]).unwrap();
        assert_eq!(
            c.metrics_token.map(|t| t.expose().clone()).as_deref(),
            Some("0123456789abcdef0123")
        );
        let c = load(&[("KEYWARD_LISTN", "1")]).unwrap();
        assert_eq!(
            c.warnings,
            vec!["KEYWARD_LISTN is not a Keyward setting and is ignored".to_owned()]
        );
    }

    #[test]
    fn production_requires_smtp_and_master_key() {
        let e = load(&[("KEYWARD_ENV", "production")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_SMTP_URL");
        let e = load(&[
            ("KEYWARD_ENV", "production"),
            ("KEYWARD_SMTP_URL", "smtp://mail:25"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "KEYWARD_MASTER_KEY");
        assert!(e.message.contains("openssl rand -base64 32"));
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = load(&[
            ("KEYWARD_ENV", "production"),
            ("KEYWARD_SMTP_URL", "smtp://mail:25"),
            ("KEYWARD_MASTER_KEY", key),
        ])
        .unwrap();
        assert!(matches!(c.master_key, MasterKey::Given(_)));
    }

    #[test]
    fn secrets_are_redacted_and_read_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db");
        std::fs::write(&f, "postgres://u:hunter2@db/keyward\n").unwrap();
        let c = load(&[("KEYWARD_DATABASE_URL_FILE", f.to_str().unwrap())]).unwrap();
        assert_eq!(c.database_url.expose(), "postgres://u:hunter2@db/keyward");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
        let e = load(&[
            ("KEYWARD_DATABASE_URL", "sqlite://a"),
            ("KEYWARD_DATABASE_URL_FILE", "/x"),
        ])
        .unwrap_err();
        assert!(e.message.contains("not both"));
        let e = load(&[("KEYWARD_MASTER_KEY_FILE", "/nonexistent/key")]).unwrap_err();
        assert_eq!(e.var, "KEYWARD_MASTER_KEY_FILE");
    }

    #[test]
    fn toml_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keyward.toml");
        std::fs::write(&f, "listen = \"0.0.0.0:8080\"\nmail_from = \"keys@example.com\"\ntrusted_proxies = [\"10.0.0.1\"]\n").unwrap();
        let env = vec![("KEYWARD_LISTEN".to_string(), "127.0.0.1:9000".to_string())];
        let c = Config::from_sources(Some(f.clone()), &env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.mail_from, "keys@example.com");
        assert_eq!(
            c.trusted_proxies,
            vec!["10.0.0.1/32".parse::<IpNet>().unwrap()]
        );
        std::fs::write(&f, "listen = [1, 2").unwrap();
        assert!(Config::from_sources(Some(f), &[]).is_err());
    }

    #[test]
    fn public_url_origin_and_https() {
        let c = load(&[("KEYWARD_PUBLIC_URL", "https://Keys.Example.com:443/")]).unwrap();
        assert_eq!(c.public_url.origin, "https://keys.example.com");
        assert!(c.public_url.https);
    }
}
