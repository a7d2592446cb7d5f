//! Password hashing: argon2id with m=19456 KiB, t=2, p=1 (OWASP's recommendation).
//!
//! Hashing costs ~20 MiB and tens of milliseconds of CPU, so it runs on the blocking pool
//! behind a semaphore: a burst of sign-in attempts queues instead of exhausting memory or
//! starving the async workers. Each permit has its own preallocated argon2 memory,
//! reused by every hash it runs: the allocator never sees a 19 MiB request per sign-in,
//! so memory stays at permits × 19 MiB however many sign-ins come (with a fresh block
//! per hash, glibc's per-thread arenas kept every one of them). Passwords over 128 bytes are refused before any hashing,
//! so a huge "password" cannot be used to burn CPU. Verification of an unknown user runs
//! against a fixed dummy hash, so every failure takes about the same time.

use argon2::{
    password_hash::{Output, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// Passwords are 12 to 128 characters (not bytes: a 64-character CJK password is fine),
/// and at most 512 bytes of UTF-8 (so argon2's input stays small).
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_PASSWORD_BYTES: usize = 512;
pub const MIN_PASSWORD_CHARS: usize = 12;

/// True for a password over either limit; checked before any hashing, so a huge input
/// costs no CPU.
pub fn is_too_long(password: &str) -> bool {
    password.len() > MAX_PASSWORD_BYTES || password.chars().count() > MAX_PASSWORD_CHARS
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("Passwords are at most {MAX_PASSWORD_CHARS} characters long.")]
    TooLong,
    #[error("Passwords are at least {MIN_PASSWORD_CHARS} characters long.")]
    TooShort,
    #[error("This password is on a list of commonly used passwords. Choose another.")]
    Common,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Common passwords (12 characters or more, lowercased) shipped with Keyward: an
/// immutable embedded list, parsed once.
static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("common-passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });

/// True when the password (compared case-insensitively) is on the shipped list.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

#[allow(
    clippy::expect_used,
    reason = "the parameters are constants argon2 accepts"
)]
fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid")
}

/// The most a stored hash may ask for (in KiB, passes, lanes); above them it does not
/// verify.
const MAX_M_COST: u32 = 65_536;
const MAX_T_COST: u32 = 10;
const MAX_P_COST: u32 = 4;

/// Argon2's working memory, sized for [`params`].
type Memory = Vec<Block>;

fn new_memory(blocks: usize) -> Memory {
    vec![Block::default(); blocks]
}

/// Hashes `password` with a new salt into a PHC string, in `memory`.
fn hash_in(password: &[u8], memory: &mut Memory) -> Result<String, PasswordError> {
    let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let params = params();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| err(&e))?;
    let mut out = [0u8; 32];
    if memory.len() < params.block_count() {
        *memory = new_memory(params.block_count());
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, &mut memory[..])
        .map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// True when `password` hashes to `phc` (with the parameters `phc` names), in `memory`;
/// the comparison takes the same time wherever the hashes differ.
fn verify_in(password: &[u8], phc: &str, memory: &mut Memory) -> Result<bool, PasswordError> {
    let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| err(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::Hash(
            "the stored hash has no salt or output".into(),
        ));
    };
    // Only what Keyward writes is verified: argon2id, version 19, and costs no higher
    // than `MAX_*` (a stored hash must not make a sign-in allocate or spin without bound).
    let params = Params::try_from(&parsed).map_err(|e| err(&e))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT
        || parsed.version != Some(Version::V0x13.into())
        || params.m_cost() > MAX_M_COST
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        tracing::warn!("a stored password hash has parameters Keyward does not verify");
        return Ok(false);
    }
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| err(&e))?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    if memory.len() < params.block_count() {
        // More memory than today's parameters (within the caps): a buffer of its own,
        // so the pool keeps its size.
        let mut own = new_memory(params.block_count());
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, &mut own[..])
    } else {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, &mut memory[..])
    }
    .map_err(|e| err(&e))?;
    let computed = Output::new(&out).map_err(|e| err(&e))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// Checks a new password as NIST 800-63B asks: length 12..=128 characters, not a
/// commonly used password, and no composition rules.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if is_too_long(password) {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if is_common(password) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// One argon2 memory per permit, made on first use and reused for good.
    memories: Arc<Mutex<Vec<Memory>>>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("permits", &self.permits.available_permits())
            .finish()
    }
}

impl Hasher {
    /// `concurrency` hashes at once (each holds its ~19 MiB for the process's life).
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memories: Arc::default(),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if is_too_long(password) {
            return Err(PasswordError::TooLong);
        }
        let password = password.to_owned();
        self.run(move |memory| hash_in(password.as_bytes(), memory))
            .await
    }

    /// True when `password` matches `hash`. With `hash = None` (unknown user) the same work
    /// is done against a dummy hash and the answer is false.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        if is_too_long(password) {
            return Ok(false);
        }
        let password = password.to_owned();
        let known = hash.is_some();
        let hash = hash
            .map(str::to_owned)
            .unwrap_or_else(|| dummy_hash().to_owned());
        self.run(move |memory| {
            let ok = verify_in(password.as_bytes(), &hash, memory)?;
            Ok(ok && known)
        })
        .await
    }

    /// Runs `f` on the blocking pool with a permit and that permit's memory (taken from
    /// the pool, or made once when the pool has none yet; given back afterwards).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        // The permit goes into the blocking task: a request dropped while its hash runs
        // (the client went away) does not free a permit for another hash while this
        // one still holds its memory.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let memories = self.memories.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = memories.lock().ok().and_then(|mut m| m.pop());
            let mut memory = taken.unwrap_or_else(|| new_memory(params().block_count()));
            let result = f(&mut memory);
            if let Ok(mut m) = memories.lock() {
                m.push(memory);
            }
            result
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
    }
}

/// A hash of a random password, made once per process, with the same parameters as real ones.
#[allow(
    clippy::expect_used,
    reason = "hashing a fixed-size random password with valid parameters cannot fail"
)]
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        use rand::RngCore as _;
        let mut pw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut pw);
        hash_in(&pw, &mut new_memory(params().block_count()))
            .expect("hashing random bytes succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_password_rules() {
        assert_eq!(check_new_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            check_new_password(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
        // 12 characters that are more than 12 bytes still count as 12.
        assert!(check_new_password("ééééééééééé").is_err());
        assert!(check_new_password("éééééééééééé").is_ok());
        assert!(check_new_password("correct horse battery").is_ok());
        assert!(check_new_password(&"x".repeat(128)).is_ok());
        // Limits count characters: 64 CJK characters (192 bytes) are a fine password,
        // 128 four-byte characters (512 bytes) too; one more character is not.
        assert!(check_new_password(&"鍵".repeat(64)).is_ok());
        assert!(check_new_password(&"🔑".repeat(128)).is_ok());
        assert_eq!(
            check_new_password(&"鍵".repeat(129)),
            Err(PasswordError::TooLong)
        );
        // On the shipped list, whatever the case.
        assert_eq!(
            check_new_password("123456789012"),
            Err(PasswordError::Common)
        );
        assert_eq!(
            check_new_password("PasswordPassword"),
            Err(PasswordError::Common)
        );
        assert!(COMMON.len() > 40_000);
    }

    #[tokio::test]
    async fn hash_uses_the_required_parameters_and_verifies() {
        let h = Hasher::new(2);
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(h
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        assert!(!h.verify("wrong horse battery", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
        assert_eq!(h.hash(&"x".repeat(129)).await, Err(PasswordError::TooLong));
        assert!(!h.verify(&"x".repeat(129), Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_verify_and_memory_is_reused() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let h = Hasher::new(1);
        assert!(h
            .verify("correct horse battery", Some(&theirs))
            .await
            .unwrap());
        assert!(!h
            .verify("correct horse batterx", Some(&theirs))
            .await
            .unwrap());
        // One permit: one memory, made once and kept.
        h.hash("another long password").await.unwrap();
        assert_eq!(h.memories.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_stored_hash_of_another_kind_or_beyond_the_caps_never_verifies() {
        use argon2::password_hash::PasswordHasher as _;
        let h = Hasher::new(1);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let make = |alg, m, t, p| {
            Argon2::new(alg, Version::V0x13, Params::new(m, t, p, None).unwrap())
                .hash_password(b"correct horse battery", &salt)
                .unwrap()
                .to_string()
        };
        for hash in [
            make(Algorithm::Argon2i, 19_456, 2, 1),
            make(Algorithm::Argon2d, 19_456, 2, 1),
            make(Algorithm::Argon2id, 19_456, 11, 1),
            make(Algorithm::Argon2id, 65_537, 1, 1),
        ] {
            assert!(
                !h.verify("correct horse battery", Some(&hash))
                    .await
                    .unwrap(),
                "{hash}"
            );
        }
        // Within the caps but above today's memory: verifies, and the pool keeps its size.
        let bigger = make(Algorithm::Argon2id, 32_768, 1, 1);
        assert!(h
            .verify("correct horse battery", Some(&bigger))
            .await
            .unwrap());
        let sizes: Vec<usize> = h.memories.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [19_456]);
    }

    #[tokio::test]
    async fn a_request_dropped_mid_hash_keeps_its_permit_until_the_hash_ends() {
        let h = Hasher::new(1);
        let hashing = h.hash("a long enough password");
        // Start it, then drop it while the blocking task runs.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(5), hashing).await;
        assert_eq!(
            h.permits.available_permits(),
            0,
            "the running hash holds the permit"
        );
        h.hash("another long password").await.unwrap();
        assert_eq!(
            h.memories.lock().unwrap().len(),
            1,
            "never more memories than permits"
        );
    }
}
