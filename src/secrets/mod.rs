//! Making and checking secrets.
//!
//! - Passwords: argon2id with at least OWASP's parameters (m = 19 MiB, t = 2, p = 1), PHC strings.
//! - Tokens (login tokens, workstation keys, enrolment tokens): 256 random bits from the OS's
//!   CSPRNG, shown once, stored only as SHA-256 hashes (they are high-entropy, so a fast hash is
//!   right; a slow one would only cost CPU).
//! - Secrets the hub must read back (TOTP secrets, codes for resending): sealed, see [`seal`].
//! - Comparisons of secrets: constant time (`subtle`).

pub mod seal;
pub mod totp;
pub mod work;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Argon2id memory cost in KiB (OWASP minimum: 19 MiB).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// Shortest and longest technician password accepted.
pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("sealing failed")]
    Seal,
}

fn argon2() -> Result<Argon2<'static>, SecretError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Fill `buf` from the OS's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf).map_err(|e| SecretError::Random(e.to_string()))
}

/// A new random token: 32 bytes (256 bits), URL-safe base64 without padding (43 characters).
pub fn new_token() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A short random identifier for records (`cl_`, `ws_` ...): 80 bits, lowercase base32-ish.
/// Unguessable, so ids reveal nothing about how many records exist.
pub fn new_id(prefix: &str) -> Result<String, SecretError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    let body: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    Ok(format!("{prefix}_{body}"))
}

/// The stored form of a token: hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare two secrets (or their hashes) in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Hash a password with argon2id and a fresh random salt. Slow on purpose: call it through
/// [`work::bounded`].
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    let argon = argon2()?;
    let output = run_argon2(&argon, password, salt.as_salt(), Params::DEFAULT_OUTPUT_LEN)
        .map_err(|e| SecretError::Hash(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon
            .params()
            .try_into()
            .map_err(|e: argon2::password_hash::Error| SecretError::Hash(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Check a password against a stored PHC string. The comparison inside is constant time
/// (`Output`'s equality). A malformed stored hash counts as a mismatch.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        version,
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    // Only hashes this program made are stored; a forged huge one must not cost gigabytes.
    if params.m_cost() > 4 * ARGON2_M_KIB {
        return false;
    }
    let argon = Argon2::new(algorithm, version, params);
    run_argon2(&argon, password, salt, expected.len()).is_ok_and(|computed| computed == expected)
}

/// One argon2 run into an output of `len` bytes, on memory [`work::with_blocks`] lends (kept
/// on the per-core threads, so runs do not churn 19 MiB allocations that glibc then keeps).
fn run_argon2(
    argon: &Argon2<'_>,
    password: &str,
    salt: argon2::password_hash::Salt<'_>,
    len: usize,
) -> Result<argon2::password_hash::Output, argon2::password_hash::Error> {
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf)?;
    work::count_run();
    let blocks = argon.params().block_count();
    argon2::password_hash::Output::init_with(len, |out| {
        work::with_blocks(blocks, |memory| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
        })
        .map_err(Into::into)
    })
}

/// A PHC string of a random password: verifying against it costs what a real check costs, so
/// an unknown user name takes as long to refuse as a wrong password.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = new_token().unwrap_or_else(|_| "dummy-password-for-timing".to_owned());
        hash_password(&random).unwrap_or_default()
    })
}

/// Why a technician password is refused, or `None` when it is acceptable.
/// Rules: 12 to 128 characters, no composition rules, common passwords refused.
pub fn password_problem(password: &str) -> Option<String> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Some(format!(
            "the password must have at least {PASSWORD_MIN} characters"
        ));
    }
    if len > PASSWORD_MAX {
        return Some(format!(
            "the password must have at most {PASSWORD_MAX} characters"
        ));
    }
    let lower = password.to_lowercase();
    let first = lower.chars().next();
    if lower.chars().all(|c| Some(c) == first) {
        return Some("the password repeats one character: choose another".into());
    }
    if is_run(&lower) {
        return Some("the password is a simple sequence: choose another".into());
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Some(
            "the password is on the list of commonly used passwords: choose another".into(),
        );
    }
    None
}

/// Ascending or descending runs of characters like `123456789012` or `abcdefghijkl`.
fn is_run(s: &str) -> bool {
    let bytes = s.as_bytes();
    let step = |d: i16| {
        bytes
            .windows(2)
            .all(|w| (i16::from(w[1]) - i16::from(w[0])).rem_euclid(10) == d.rem_euclid(10))
    };
    bytes.iter().all(u8::is_ascii_digit) && (step(1) || step(-1))
        || bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
        || bytes.windows(2).all(|w| w[0] == w[1].wrapping_add(1))
}

/// Common passwords of 12 or more characters (from public breach-frequency lists).
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123123123123",
    "111111111111",
    "000000000000",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "qwertyuiopasdfgh",
    "qwerty123456",
    "1qaz2wsx3edc",
    "1q2w3e4r5t6y",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "administrator",
    "adminadmin123",
    "trustno1trustno1",
    "sunshine1234",
    "princess1234",
    "football1234",
    "baseball1234",
    "monkey123456",
    "dragon123456",
    "abc123abc123",
    "passw0rd1234",
    "changeme1234",
    "correcthorsebatterystaple",
    "p@ssw0rd1234",
    "password!234",
    "superman1234",
    "asdfghjkl123",
    "zaq12wsxcde3",
    "q1w2e3r4t5y6",
    "starwars1234",
    "whatever1234",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made before the memory was lent (by the crate's own hasher) still verify, and
    /// the crate's own verifier accepts ours.
    #[test]
    fn hashes_match_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(b"sixteen byte sal").expect("salt");
        let theirs = argon2()
            .expect("argon2")
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password("correct horse battery", &theirs));
        assert!(!verify_password("correct horse batterz", &theirs));
        let ours = hash_password("correct horse battery").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn password_hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        let again = hash_password("correct horse battery").expect("hash");
        assert_ne!(hash, again, "each hash has its own salt");
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_eq!(a.len(), 43, "256 bits in unpadded base64");
        assert_ne!(a, b);
        let h = hash_token(&a);
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_token(&a));
        assert_ne!(h, hash_token(&b));
        assert!(!h.contains(&a));
    }

    #[test]
    fn ids_have_prefix_and_80_bits() {
        let id = new_id("ws").expect("id");
        assert!(id.starts_with("ws_"));
        assert_eq!(id.len(), 3 + 16);
        assert_ne!(id, new_id("ws").expect("id"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn password_rules() {
        assert!(password_problem("short").is_some());
        assert!(password_problem(&"x".repeat(129)).is_some());
        assert!(password_problem("aaaaaaaaaaaa").is_some());
        assert!(password_problem("123456789012").is_some());
        assert!(password_problem("987654321098").is_some());
        assert!(password_problem("abcdefghijklm").is_some());
        assert!(
            password_problem("Password1234").is_some(),
            "common, case-insensitively"
        );
        assert_eq!(password_problem("plum tractor violet 7"), None);
        assert_eq!(password_problem(&"ab".repeat(64)), None, "128 is allowed");
    }
}
