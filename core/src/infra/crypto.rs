//! Data encrypted at rest (TOTP seeds; later revealable channel keys): XChaCha20-Poly1305
//! with the server's master key, a random 192-bit nonce per value, and associated data
//! naming what the value is and whose it is, so a ciphertext copied onto another row
//! does not decrypt.

use base64::Engine as _;
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rand::RngCore as _;

#[derive(Debug, thiserror::Error)]
#[error("encrypted value cannot be opened (wrong master key, or the data was altered)")]
pub struct OpenError;

/// Encrypts `plaintext`; the result is base64 of nonce ‖ ciphertext ‖ tag.
#[allow(
    clippy::expect_used,
    reason = "encrypting an in-memory buffer with a 32-byte key cannot fail"
)]
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> String {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    base64::engine::general_purpose::STANDARD.encode(out)
}

pub fn open(key: &[u8; 32], aad: &[u8], sealed: &str) -> Result<Vec<u8>, OpenError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| OpenError)?;
    if raw.len() < 24 + 16 {
        return Err(OpenError);
    }
    let (nonce, ct) = raw.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let key = [9u8; 32];
        let sealed = seal(&key, b"totp:1", b"seed bytes");
        assert_ne!(sealed, seal(&key, b"totp:1", b"seed bytes"), "fresh nonce");
        assert_eq!(open(&key, b"totp:1", &sealed).unwrap(), b"seed bytes");
        assert!(open(&key, b"totp:2", &sealed).is_err(), "bound to its row");
        assert!(open(&[8u8; 32], b"totp:1", &sealed).is_err());
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        bytes[30] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(open(&key, b"totp:1", &altered).is_err());
        assert!(open(&key, b"totp:1", "short").is_err());
    }
}

/// A tag binding `parts` to this deployment and to `purpose`: for values the server hands
/// to the browser and takes back unchanged (a form's error carried in a redirect), so
/// that a value someone else wrote is told apart. HMAC-SHA256 under a key derived from
/// the master key for `purpose`; 128 bits, base64url.
#[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
pub fn tag(master_key: &[u8; 32], purpose: &str, parts: &[&str]) -> String {
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mut derive =
        <HmacSha256 as Mac>::new_from_slice(master_key).expect("HMAC takes any key length");
    derive.update(b"keyward tag v1\0");
    derive.update(purpose.as_bytes());
    let key = derive.finalize().into_bytes();
    let mut m = <HmacSha256 as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p.as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&m.finalize().into_bytes()[..16])
}

/// `X-Keyward-Signature` of webhooks and the SMS gateway: `sha256=` + hex HMAC-SHA256
/// over `timestamp.body`.
#[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `claimed` is `tag(master_key, purpose, parts)` (compared in constant time).
pub fn tag_matches(master_key: &[u8; 32], purpose: &str, parts: &[&str], claimed: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    let want = tag(master_key, purpose, parts);
    want.len() == claimed.len() && bool::from(want.as_bytes().ct_eq(claimed.as_bytes()))
}

#[cfg(test)]
mod tag_tests {
    use super::{tag, tag_matches};

    #[test]
    fn a_tag_matches_its_own_parts_only() {
        let (k, other) = ([7u8; 32], [8u8; 32]);
        let t = tag(&k, "form error", &["/keys", "boom"]);
        assert!(tag_matches(&k, "form error", &["/keys", "boom"], &t));
        assert!(!tag_matches(&k, "form error", &["/keys", "boom!"], &t));
        assert!(
            !tag_matches(&k, "form error", &["/keysb", "oom"], &t),
            "parts are delimited"
        );
        assert!(!tag_matches(&k, "another purpose", &["/keys", "boom"], &t));
        assert!(!tag_matches(&other, "form error", &["/keys", "boom"], &t));
        assert!(!tag_matches(&k, "form error", &["/keys", "boom"], ""));
    }
}

/// Whether `claimed` is the configured secret `want` (a bearer token), compared as
/// SHA-256 digests in constant time: neither the bytes nor the length leak through
/// timing.
pub fn secret_matches(want: &str, claimed: &str) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    let a = sha2::Sha256::digest(want.as_bytes());
    let b = sha2::Sha256::digest(claimed.as_bytes());
    bool::from(a.ct_eq(&b))
}
