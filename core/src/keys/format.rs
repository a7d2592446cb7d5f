//! The key format of PRODUCT.md.
//!
//! Secret keys: `kw_live_` or `kw_test_`, 32 base62 characters from the OS CSPRNG
//! (about 190 bits), then 6 base62 characters of the CRC32 of everything before them.
//! Public SDK keys: `kwpub_live_` / `kwpub_test_`, same body and checksum. The checksum
//! lets the server (and secret scanners) refuse a mistyped or made-up key without
//! touching the database. At rest only the SHA-256 of the secret is kept, with its last
//! four characters as a hint. Key ids (`key_` + 16 base32) are public and safe to log.

use rand::Rng as _;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
pub const BODY_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// Whether a key is a server secret or a public SDK key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Secret,
    Public,
}

fn prefix(vis: Visibility, env: Environment) -> &'static str {
    match (vis, env) {
        (Visibility::Secret, Environment::Live) => "kw_live_",
        (Visibility::Secret, Environment::Test) => "kw_test_",
        (Visibility::Public, Environment::Live) => "kwpub_live_",
        (Visibility::Public, Environment::Test) => "kwpub_test_",
    }
}

fn checksum_bytes(text: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(text.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn checksum(text: &str) -> String {
    checksum_bytes(text)
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

/// A new key: prefix, 32 random base62 characters, checksum.
pub fn generate(vis: Visibility, env: Environment) -> String {
    let mut rng = rand::rngs::OsRng;
    let mut s = String::with_capacity(prefix(vis, env).len() + BODY_LEN + CHECKSUM_LEN);
    s.push_str(prefix(vis, env));
    for _ in 0..BODY_LEN {
        s.push(BASE62[rng.gen_range(0..62)] as char);
    }
    let c = checksum(&s);
    s.push_str(&c);
    s
}

/// Whether `text` is as long as a key (secret or public) is: a cheap first refusal.
pub fn has_key_length(text: &str) -> bool {
    let body = BODY_LEN + CHECKSUM_LEN;
    text.len() == "kw_live_".len() + body || text.len() == "kwpub_live_".len() + body
}

/// The kind and environment of a well-formed key with a valid checksum; `None` for
/// anything else (checked without any database work).
pub fn parse(key: &str) -> Option<(Visibility, Environment)> {
    let (vis, env, rest) = if let Some(r) = key.strip_prefix("kw_live_") {
        (Visibility::Secret, Environment::Live, r)
    } else if let Some(r) = key.strip_prefix("kw_test_") {
        (Visibility::Secret, Environment::Test, r)
    } else if let Some(r) = key.strip_prefix("kwpub_live_") {
        (Visibility::Public, Environment::Live, r)
    } else if let Some(r) = key.strip_prefix("kwpub_test_") {
        (Visibility::Public, Environment::Test, r)
    } else {
        return None;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (head, sum) = key.split_at(key.len() - CHECKSUM_LEN);
    // Compared without making a string: every request's key passes here.
    (checksum_bytes(head) == sum.as_bytes()).then_some((vis, env))
}

/// What is stored: the SHA-256 of the key, hex.
pub fn hash(key: &str) -> String {
    hex::encode(digest(key))
}

/// The SHA-256 of a key as bytes (the verification cache's key; `hash` is its hex form,
/// as stored).
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The last four characters, shown as a hint.
pub fn last4(key: &str) -> String {
    key[key.len().saturating_sub(4)..].to_owned()
}

/// A public key id: `key_` + 16 base32 characters (80 random bits).
pub fn new_key_id() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut s = String::from("key_");
    for _ in 0..16 {
        s.push(BASE32[rng.gen_range(0..32)] as char);
    }
    s
}

pub fn is_key_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("key_") && s[4..].bytes().all(|b| BASE32.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for (vis, env, p) in [
            (Visibility::Secret, Environment::Live, "kw_live_"),
            (Visibility::Secret, Environment::Test, "kw_test_"),
            (Visibility::Public, Environment::Live, "kwpub_live_"),
            (Visibility::Public, Environment::Test, "kwpub_test_"),
        ] {
            let k = generate(vis, env);
            assert!(k.starts_with(p));
            assert_eq!(k.len(), p.len() + 32 + 6);
            assert_eq!(parse(&k), Some((vis, env)));
        }
        assert_ne!(
            generate(Visibility::Secret, Environment::Live),
            generate(Visibility::Secret, Environment::Live)
        );
    }

    #[test]
    fn any_changed_character_fails_the_checksum() {
        let k = generate(Visibility::Secret, Environment::Live);
        for i in 8..k.len() {
            let mut b = k.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let altered = String::from_utf8(b).unwrap();
            assert_eq!(parse(&altered), None, "position {i}");
        }
        for bad in [
            "",
            "kw_live_",
            "kw_prod_aaaa",
            "Bearer kw_live_x",
            &k[..k.len() - 1],
            &format!("{k}0"),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // The checksum is CRC32 (0xcd8c0401 here, from Python's zlib) in 6 base62 digits.
        assert_eq!(
            checksum("kw_live_00000000000000000000000000000000"),
            "3lNZlx"
        );
        assert_eq!(
            parse("kw_live_000000000000000000000000000000003lNZlx"),
            Some((Visibility::Secret, Environment::Live))
        );
    }

    #[test]
    fn ids_hashes_and_hints() {
        let id = new_key_id();
        assert!(is_key_id(&id), "{id}");
        assert!(!is_key_id("key_ABCDEFGHIJKLMNOP"));
        let k = generate(Visibility::Secret, Environment::Test);
        assert_eq!(hash(&k).len(), 64);
        assert_eq!(last4(&k), &k[k.len() - 4..]);
    }
}
