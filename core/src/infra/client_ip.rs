//! The client's address, the one function every IP check uses.
//!
//! The address is the socket peer. Only when the peer is a configured trusted proxy is
//! `X-Forwarded-For` believed, and then read from the right: each proxy appends the
//! address it saw, so the right-most hop that is not itself a trusted proxy is the first
//! address no one we trust could have been lied to about. Anything to its left was
//! written by the client and is ignored. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is
//! normalised to IPv4 so that allow-lists written in IPv4 match.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let mut current = normalise(peer);
    if !is_trusted(current, trusted) {
        return current;
    }
    // Every X-Forwarded-For header, in order, as one list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match parse_hop(hop).map(normalise) {
            Some(ip) if is_trusted(ip, trusted) => current = ip,
            Some(ip) => return ip,
            // A hop a trusted proxy wrote but that is not an address: stop at the last
            // address we can vouch for rather than guess further left.
            None => return current,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in xff {
            m.append("x-forwarded-for", v.parse().unwrap());
        }
        m
    }
    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_the_header() {
        let got = client_addr(ip("203.0.113.9"), &h(&["10.0.0.1"]), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("203.0.113.9"));
        let got = client_addr(ip("203.0.113.9"), &h(&["1.1.1.1"]), &[]);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_uses_right_most_untrusted_hop() {
        let t = nets(&["10.0.0.0/8"]);
        // The client forged "6.6.6.6"; the proxy appended the real address.
        let got = client_addr(ip("10.0.0.2"), &h(&["6.6.6.6, 198.51.100.7"]), &t);
        assert_eq!(got, ip("198.51.100.7"));
        // Several proxies: skip every trusted hop.
        let got = client_addr(ip("10.0.0.2"), &h(&["6.6.6.6, 198.51.100.7, 10.1.1.1"]), &t);
        assert_eq!(got, ip("198.51.100.7"));
        // Several headers are one list.
        let got = client_addr(
            ip("10.0.0.2"),
            &h(&["6.6.6.6", "198.51.100.7, 10.9.9.9"]),
            &t,
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn trusted_peer_without_header_or_all_trusted() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h(&[]), &t), ip("10.0.0.2"));
        assert_eq!(
            client_addr(ip("10.0.0.2"), &h(&["10.0.0.3, 10.0.0.4"]), &t),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn garbage_hop_stops_at_the_last_trusted_address() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_addr(ip("10.0.0.2"), &h(&["1.2.3.4, nonsense"]), &t),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_and_ports() {
        let t = nets(&["::1/128", "fd00::/8"]);
        assert_eq!(
            client_addr(ip("::1"), &h(&["[2001:db8::5]:443"]), &t),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_addr(ip("fd00::1"), &h(&["2001:db8::6, fd00::2"]), &t),
            ip("2001:db8::6")
        );
        assert_eq!(
            client_addr(ip("::1"), &h(&["192.0.2.1:8080"]), &t),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn mapped_ipv6_is_normalised() {
        // A mapped peer matches an IPv4 trusted range...
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_addr(ip("::ffff:10.0.0.2"), &h(&["::ffff:198.51.100.7"]), &t),
            ip("198.51.100.7")
        );
        // ...and is reported as IPv4 when untrusted.
        assert_eq!(
            client_addr(ip("::ffff:203.0.113.1"), &h(&[]), &[]),
            ip("203.0.113.1")
        );
        // A mapped hop that is trusted is skipped.
        assert_eq!(
            client_addr(ip("10.0.0.2"), &h(&["198.51.100.7, ::ffff:10.3.3.3"]), &t),
            ip("198.51.100.7")
        );
    }
}
