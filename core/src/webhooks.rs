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

use super::{
    access::Grant,
    audit::{self, Event, Origin},
    crypto,
    db::{is_unique_violation, Db},
    delivery::webhook_aad,
};
use model::error::AppError;
use model::roles::Permission;
use rand::{distributions::Alphanumeric, Rng as _};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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
    if let Some(ip) = literal_ip(&parsed) {
        if forbidden(ip) {
            return Err(bad(&format!(
                "Webhooks cannot go to {ip}: unspecified, link-local (e.g. cloud metadata), multicast and broadcast addresses are refused."
            )));
        }
    }
    Ok(url.to_owned())
}

/// The URL's host when it is an IP address (such a host is not resolved). The parser
/// has already normalised other spellings of an address (`http://2852039166/`,
/// `http://0xa9.254.169.254/`) to dotted form.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The IPv4 address an IPv6 address carries in one of its spellings: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96` and the
/// local-use `64:ff9b:1::/48`), 6to4 (`2002:aabb:ccdd::/16`) and Teredo's client
/// (`2001:0::/32`, stored inverted).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let o = v6.octets();
    let seg = v6.segments();
    let last = || std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(last());
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
    {
        return Some(last());
    }
    if seg[0] == 0x2002 {
        return Some(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some(std::net::Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]));
    }
    None
}

/// True for the addresses a webhook never goes to (see the module's doc), in every
/// spelling: an IPv6 address that carries an IPv4 one is judged by both.
pub fn forbidden(ip: IpAddr) -> bool {
    const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    // Cloud metadata services outside the link-local range (Alibaba Cloud's).
    const METADATA_V4: [std::net::Ipv4Addr; 1] = [std::net::Ipv4Addr::new(100, 100, 100, 200)];
    let v4_forbidden = |v4: std::net::Ipv4Addr| {
        v4.octets()[0] == 0
            || v4.is_link_local()
            || v4.is_multicast()
            || v4.is_broadcast()
            || METADATA_V4.contains(&v4)
    };
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_unicast_link_local()
                || v6.is_multicast()
                || v6 == AWS_METADATA_V6
                || embedded_ipv4(v6).is_some_and(v4_forbidden)
        }
    }
}

/// Resolves `host` and checks every address it has (used when a proxy, not Keyward,
/// will connect: all of them must be allowed, since the proxy may pick any).
pub async fn check_host(host: &str, port: u16) -> Result<(), String> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return if forbidden(ip) {
            Err(format!("{host} is an address webhooks may not reach"))
        } else {
            Ok(())
        };
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if found.is_empty() || found.iter().any(|a| forbidden(a.ip())) {
        return Err(format!(
            "{host} resolves to an address webhooks may not reach (unspecified, link-local, multicast or broadcast)"
        ));
    }
    Ok(())
}

/// The HTTP client for outbound requests (webhooks): never the environment's proxy
/// variables; `KEYWARD_OUTBOUND_PROXY` when set (then [`check_host`] must run before
/// each request, since the proxy resolves the name); else direct, through
/// [`AllowedHosts`]. No redirects.
pub fn outbound_client(
    proxy: Option<&str>,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let b = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(AllowedHosts));
    match proxy {
        Some(p) => b.proxy(reqwest::Proxy::all(p)?).build(),
        None => b.build(),
    }
}

/// The resolver webhook deliveries use: the system's, minus the forbidden addresses; a
/// host that resolves to nothing else is an error.
pub struct AllowedHosts;

impl reqwest::dns::Resolve for AllowedHosts {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs = allowed(&host, found)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The resolved addresses a webhook may go to, or why there are none.
fn allowed(
    host: &str,
    found: impl Iterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = found.filter(|a| !forbidden(a.ip())).collect();
    if addrs.is_empty() {
        return Err(format!(
            "{host} resolves only to addresses webhooks may not reach (unspecified, link-local, multicast or broadcast)"
        )
        .into());
    }
    Ok(addrs)
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
    let secret = new_secret();
    let sealed = crypto::seal(master_key, &webhook_aad(app_id, &url), secret.as_bytes());
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    let app: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(app_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(AppError::internal)?;
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
    .await
    .map_err(AppError::internal)?;
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
        .map_err(|e| {
            if is_unique_violation(&e) {
                AppError::Conflict("This URL was just registered; try again.".into())
            } else {
                AppError::internal(e)
            }
        })?;
        "webhook.registered"
    };
    let ev = Event::success(
        p.actor(),
        action,
        origin,
        Some(url.clone()),
        serde_json::json!({ "app_id": app_id }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
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
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    let r = sqlx::query(
        "update webhook_endpoints set removed_at = $3, updated_at = $3 \
         where app_id = $1 and url = $2 and removed_at is null",
    )
    .bind(app_id)
    .bind(url.trim())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(AppError::internal)?;
    if r.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    let ev = Event::success(
        p.actor(),
        "webhook.removed",
        origin,
        Some(url.trim().to_owned()),
        serde_json::json!({ "app_id": app_id }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn never_to_link_local_metadata_multicast_or_unspecified_addresses() {
        use super::{allowed, forbidden};
        for ip in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "::",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            // The same metadata address in IPv6's other spellings of IPv4.
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "64:ff9b::ffff:ffff",
            "100.100.100.200",
            "::ffff:100.100.100.200",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.10",
            "203.0.113.7",
            "::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "2002:0a00:0001::1",
        ] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/hook",
            "http://[::ffff:a9fe:a9fe]/hook",
            "http://0.0.0.0:8080/",
            "http://2852039166/",
            "http://0xa9.254.169.254/",
        ] {
            assert!(parse_url(url).is_err(), "{url}");
        }
        assert!(parse_url("http://10.0.0.5:8080/hooks").is_ok());
        // A name that resolves to a metadata address and nothing else is refused; the
        // allowed addresses of a mixed answer are kept.
        let sock = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(allowed("evil.example", [sock("169.254.169.254:0")].into_iter()).is_err());
        assert_eq!(
            allowed(
                "mixed.example",
                [sock("169.254.169.254:0"), sock("10.0.0.5:0")].into_iter()
            )
            .unwrap(),
            [sock("10.0.0.5:0")]
        );
    }

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
