//! Device tokens: the OWASP "device cookie" that lets a browser which has completed a
//! sign-in to an account keep its own sign-in allowance while the account is under
//! attack from elsewhere (see `throttle`).
//!
//! A token is `tag.nonce.issued.mac`: `tag` names the account without revealing it
//! (a keyed hash of the normalised email), `nonce` is 128 random bits that identify
//! the device for throttling, `issued` is when it was made, and `mac` is
//! HMAC-SHA256 with a key derived from the master key over all of that. Only Keyward
//! can make one, and only at a completed sign-in; it is good for a year. One cookie
//! holds the tokens of up to five accounts.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// How long a device token is honoured.
pub const VALID_SECS: i64 = 365 * 86_400;
/// Tokens (accounts) one browser's cookie keeps.
const MAX_TOKENS: usize = 5;
/// Cookie names (the `__Host-` one with an https public URL).
pub const COOKIE: &str = "keyward_device";
pub const SECURE_COOKIE: &str = "__Host-keyward_device";

pub fn cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

type HmacSha256 = Hmac<Sha256>;

#[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
fn mac(master_key: &[u8; 32], parts: &[&str]) -> HmacSha256 {
    // A key of its own, derived from the master key, so no other use of the master key
    // can produce a device MAC.
    let mut derive = HmacSha256::new_from_slice(master_key).expect("HMAC takes any key length");
    derive.update(b"keyward device token v1");
    let key = derive.finalize().into_bytes();
    let mut m = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"\0");
    }
    m
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn tag(master_key: &[u8; 32], account: &str) -> String {
    b64(&mac(master_key, &["account", account])
        .finalize()
        .into_bytes()[..12])
}

/// A new token for `account` (the normalised email).
pub fn issue(master_key: &[u8; 32], account: &str, now: i64) -> String {
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let (tag, nonce, issued) = (tag(master_key, account), b64(&nonce), now.to_string());
    let sig = mac(master_key, &["token", &tag, &nonce, &issued]).finalize();
    format!("{tag}.{nonce}.{issued}.{}", b64(&sig.into_bytes()))
}

/// The device id (nonce) of the cookie's valid token for `account`, if it has one.
pub fn check(master_key: &[u8; 32], account: &str, cookie: &str, now: i64) -> Option<String> {
    let want = tag(master_key, account);
    cookie.split('~').find_map(|token| {
        let mut it = token.split('.');
        let (t, nonce, issued, sig) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || t != want || nonce.len() > 32 {
            return None;
        }
        let at: i64 = issued.parse().ok()?;
        if at > now + 300 || now - at > VALID_SECS {
            return None;
        }
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .ok()?;
        // verify_slice compares in constant time.
        mac(master_key, &["token", t, nonce, issued])
            .verify_slice(&sig)
            .ok()?;
        Some(nonce.to_owned())
    })
}

/// The cookie value after a sign-in to `account`: its new token first, then the tokens
/// of other accounts the cookie held (at most five in all; well-formed ones only).
pub fn with_token(master_key: &[u8; 32], account: &str, old: Option<&str>, now: i64) -> String {
    let mine = tag(master_key, account);
    let mut tokens = vec![issue(master_key, account, now)];
    if let Some(old) = old {
        tokens.extend(
            old.split('~')
                .filter(|t| {
                    t.len() <= 200
                        && t.split('.').count() == 4
                        && !t.starts_with(&format!("{mine}."))
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                })
                .take(MAX_TOKENS - 1)
                .map(str::to_owned),
        );
    }
    tokens.join("~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_account_only_and_cannot_be_forged() {
        let k = [7u8; 32];
        let now = 1_800_000_000;
        let t = issue(&k, "ada@example.com", now);
        let id = check(&k, "ada@example.com", &t, now + 10).unwrap();
        assert!(t.contains(&id));
        assert!(check(&k, "bob@example.com", &t, now).is_none());
        assert!(check(&[8u8; 32], "ada@example.com", &t, now).is_none());
        assert!(check(&k, "ada@example.com", &t, now + VALID_SECS + 1).is_none());
        // Any change to the token breaks its MAC.
        let mut parts: Vec<&str> = t.split('.').collect();
        let later = (now + 1000).to_string();
        parts[2] = &later;
        assert!(check(&k, "ada@example.com", &parts.join("."), now + 1000).is_none());
        assert!(check(&k, "ada@example.com", "garbage", now).is_none());
        assert!(check(&k, "ada@example.com", "", now).is_none());
    }

    #[test]
    fn one_cookie_keeps_several_accounts() {
        let k = [7u8; 32];
        let now = 1_800_000_000;
        let c = with_token(&k, "ada@example.com", None, now);
        let c = with_token(&k, "bob@example.com", Some(&c), now);
        let c = with_token(&k, "ada@example.com", Some(&c), now);
        assert_eq!(c.split('~').count(), 2);
        assert!(check(&k, "ada@example.com", &c, now).is_some());
        assert!(check(&k, "bob@example.com", &c, now).is_some());
        let c = with_token(&k, "eve@example.com", Some("x;y=z~<script>"), now);
        assert_eq!(c.split('~').count(), 1);
    }
}
