//! Outbound HTTP (webhooks, the SMS gateway): where Keyward may connect, and the
//! client that keeps to it.
//!
//! Any host an admin registers is allowed, including loopback and private ranges (a
//! self-hosted Keyward's webhooks normally go to the organisation's own services), but
//! never an unspecified, link-local, multicast or broadcast address. Link-local is where
//! cloud metadata services answer (169.254.169.254, fd00:ec2::254), so a request can
//! never be pointed at the instance's credentials. The rule is checked on every address
//! a host resolves to when the request is made (so a DNS name cannot be repointed there
//! later).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

#[cfg(test)]
mod tests {
    #[test]
    fn never_to_link_local_metadata_multicast_or_unspecified_addresses() {
        use super::{allowed, forbidden, literal_ip};
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
            let u = reqwest::Url::parse(url).unwrap();
            assert!(literal_ip(&u).is_some_and(forbidden), "{url}");
        }
        let private = reqwest::Url::parse("http://10.0.0.5:8080/hooks").unwrap();
        assert!(!literal_ip(&private).is_some_and(forbidden));
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
}
