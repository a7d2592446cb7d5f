//! What a flood of bad keys costs, and what it leaves in the log.
//!
//! Every refusal counts against the caller's address (an IPv6 address as its /64: one
//! host usually holds the whole network) and, for a known key, against that key. Past
//! the allowance the answer is 429 `rate_limited` instead, and an address over its
//! allowance gets that answer before any database work: a key the cache does not know
//! is not looked up for it. A key the cache knows costs no database work anyway, so a
//! working key keeps working from such an address (a neighbour behind the same NAT is
//! not locked out by someone else's scanner).
//!
//! Keys are 190-bit random strings, so this is not what stops guessing: it keeps a
//! scanner or a misconfigured client from costing the server or filling its log. The
//! log gets one line per address or key per minute, with counts (at most
//! [`MAX_TRACKED`] + 1 lines); never a line per refusal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Limiter<K> = governor::DefaultKeyedRateLimiter<K>;

/// At most this many addresses or keys are tracked between flushes; beyond it counts go
/// to one "other" line, and penalties are forgotten (memory stays bounded under a flood
/// from many addresses).
const MAX_TRACKED: usize = 1_000;

/// An address past its allowance is penalised for at least this long, and again with
/// every request it makes meanwhile: a flood stays on the cheap path until it stops.
const PENALTY: Duration = Duration::from_secs(10);

/// At most this many addresses are penalised at once (about 4 MB).
const MAX_PENALISED: usize = 100_000;

/// Who a refusal is counted against in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Address(IpAddr),
    Key(String),
    /// Past [`MAX_TRACKED`] subjects in one interval.
    Other,
}

pub struct Refusals {
    by_address: Limiter<IpAddr>,
    by_key: Limiter<String>,
    /// Addresses over their allowance, until when (checked before any database work).
    penalised: Mutex<HashMap<IpAddr, Instant>>,
    /// Refusals since the last flush, per subject and code (for the log).
    counts: Mutex<HashMap<(Subject, &'static str), u64>>,
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refusals")
    }
}

impl Default for Refusals {
    /// Per address: 60 refusals at once, then one a second. Per key: 120 at once, then
    /// ten a second (a key is shared by every instance of an app, which may all retry).
    fn default() -> Self {
        let quota = |burst: u32, per_sec: u32| {
            let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::Quota::per_second(per_sec).allow_burst(burst)
        };
        Self {
            by_address: governor::RateLimiter::keyed(quota(60, 1)),
            by_key: governor::RateLimiter::keyed(quota(120, 10)),
            penalised: Mutex::default(),
            counts: Mutex::default(),
        }
    }
}

/// The address a limit applies to: an IPv6 address as its /64.
pub fn scope(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into())
        }
        other => other,
    }
}

fn wait_secs(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    use governor::clock::Clock as _;
    not_until
        .wait_time_from(governor::clock::DefaultClock::default().now())
        .as_secs()
        .max(1)
}

impl Refusals {
    /// Seconds `ip` must wait when it is over its allowance (no database work is done
    /// for it until then), else `None`.
    pub fn penalty(&self, ip: IpAddr) -> Option<u64> {
        let scope = scope(ip);
        let map = self.penalised.lock().ok()?;
        let until = map.get(&scope)?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }

    /// Answers a request from a penalised address without looking its key up: counted
    /// as `rate_limited`, and the penalty starts again. Returns the seconds to wait.
    pub fn refuse_penalised(&self, ip: IpAddr) -> u64 {
        let scope = scope(ip);
        self.note(Subject::Address(scope), "rate_limited");
        if let Ok(mut map) = self.penalised.lock() {
            map.insert(scope, Instant::now() + PENALTY);
        }
        PENALTY.as_secs()
    }

    /// Counts a refusal with `code` from `ip` (and of `key_id` when the key is known);
    /// `Some(seconds to wait)` when either is past its allowance: the answer is then
    /// 429 instead.
    pub fn count(&self, ip: IpAddr, key_id: Option<&str>, code: &'static str) -> Option<u64> {
        let scope = scope(ip);
        let subject = match key_id {
            Some(k) => Subject::Key(k.to_owned()),
            None => Subject::Address(scope),
        };
        let by_address = self
            .by_address
            .check_key(&scope)
            .err()
            .map(|n| wait_secs(&n));
        if let Some(wait) = by_address {
            if let Ok(mut map) = self.penalised.lock() {
                if map.len() >= MAX_PENALISED {
                    let now = Instant::now();
                    map.retain(|_, until| *until > now);
                }
                // Still full of live penalties: this address goes unrecorded (it is still
                // answered 429 here) rather than every other one being forgotten.
                if map.len() < MAX_PENALISED {
                    let until = Instant::now() + Duration::from_secs(wait).max(PENALTY);
                    map.insert(scope, until);
                }
            }
        }
        let by_key = key_id.and_then(|k| {
            self.by_key
                .check_key(&k.to_owned())
                .err()
                .map(|n| wait_secs(&n))
        });
        let wait = by_address.max(by_key);
        // The log counts what was answered.
        self.note(subject, if wait.is_some() { "rate_limited" } else { code });
        wait
    }

    /// Counts a refusal for the log only.
    pub fn note(&self, subject: Subject, code: &'static str) {
        let Ok(mut m) = self.counts.lock() else {
            return;
        };
        let subject = if m.len() >= MAX_TRACKED && !m.contains_key(&(subject.clone(), code)) {
            Subject::Other
        } else {
            subject
        };
        *m.entry((subject, code)).or_insert(0) += 1;
    }

    /// The refusals counted since the last call, per subject and code (sorted), and
    /// forgets them; also drops penalties that have ended and the limiters' idle state.
    pub fn take_counts(&self) -> Vec<(Subject, &'static str, u64)> {
        if let Ok(mut map) = self.penalised.lock() {
            let now = Instant::now();
            map.retain(|_, until| *until > now);
        }
        self.by_address.retain_recent();
        self.by_key.retain_recent();
        let taken = match self.counts.lock() {
            Ok(mut m) => std::mem::take(&mut *m),
            Err(_) => return Vec::new(),
        };
        let mut out: Vec<_> = taken.into_iter().map(|((s, c), n)| (s, c, n)).collect();
        out.sort();
        out
    }

    /// Writes the counts since the last call to the log: one line per address or key.
    pub fn log_counts(&self) {
        let mut lines: std::collections::BTreeMap<Subject, Vec<(&'static str, u64)>> =
            Default::default();
        for (subject, code, n) in self.take_counts() {
            lines.entry(subject).or_default().push((code, n));
        }
        for (subject, codes) in lines {
            let total: u64 = codes.iter().map(|(_, n)| n).sum();
            let by_code = codes
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect::<Vec<_>>()
                .join(" ");
            match subject {
                Subject::Address(ip) => {
                    tracing::info!(%ip, total, by_code, "API requests refused");
                }
                Subject::Key(key_id) => {
                    tracing::info!(key_id, total, by_code, "API requests refused");
                }
                Subject::Other => {
                    tracing::info!(total, by_code, "API requests refused (other addresses)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_past_its_allowance_is_penalised_and_counted_once_per_code() {
        let r = Refusals::default();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert_eq!(r.penalty(ip), None);
        let answers: Vec<_> = (0..61)
            .map(|_| r.count(ip, None, "invalid_api_key"))
            .collect();
        assert!(answers[..60].iter().all(Option::is_none));
        assert!(
            answers[60].is_some(),
            "the 61st refusal in a burst is rate limited"
        );
        // The whole /64 is one address.
        assert!(r.penalty(neighbour).is_some());
        assert!(r.penalty("2001:db9::1".parse().unwrap()).is_none());
        let counts = r.take_counts();
        let me = Subject::Address(scope(ip));
        assert_eq!(
            counts,
            [(me.clone(), "invalid_api_key", 60), (me, "rate_limited", 1)]
        );
        assert!(r.take_counts().is_empty(), "counts are taken once");
    }

    #[test]
    fn a_known_key_counts_against_itself_from_every_address() {
        let r = Refusals::default();
        let answers: Vec<_> = (0..121u32)
            .map(|i| {
                let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
                r.count(ip, Some("key_aaaaaaaaaaaaaaaa"), "key_revoked")
            })
            .collect();
        assert!(answers[..120].iter().all(Option::is_none));
        assert!(answers[120].is_some(), "past the key's burst: rate limited");
    }

    #[test]
    fn the_log_keeps_a_bounded_number_of_subjects() {
        let r = Refusals::default();
        for i in 0..(MAX_TRACKED as u32 + 50) {
            r.count(IpAddr::from(i.to_be_bytes()), None, "invalid_api_key");
        }
        let counts = r.take_counts();
        assert_eq!(counts.len(), MAX_TRACKED + 1);
        assert_eq!(
            counts.last().map(|c| (&c.0, c.2)),
            Some((&Subject::Other, 50))
        );
    }
}
