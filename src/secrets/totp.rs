//! Technician 2FA: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) on `totp-rs`, the
//! otpauth URI an authenticator app scans, and the sealing of TOTP secrets at rest.
//!
//! The hub must keep each TOTP secret to verify codes, so it cannot keep only a hash. It keeps
//! it sealed (XChaCha20-Poly1305, the user id as associated data) under a 256-bit key that
//! lives in the hub's data dir (`twofa.key`, mode 0600), never in the database: a copy of the
//! database alone (a backup, a dump) reveals no secret. The secret is shown once, at
//! enrolment; it is never logged or returned again.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use totp_rs::{Algorithm, Builder, Totp};

use super::{SecretError, constant_time_eq, random_bytes};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Bytes of a new secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "Tether";

/// A TOTP secret's raw bytes. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A new secret from the OS's CSPRNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        random_bytes(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// From the base32 form shown at enrolment (what an authenticator app reads).
    pub fn from_base32(text: &str) -> Option<Self> {
        totp_rs::Secret::try_from_base32(text.trim())
            .ok()
            .map(|s| Self(s.as_ref().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, digits: u8, step: u64, account: &str) -> Result<Totp, SecretError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(digits)
            .with_step_duration(step)
            .with_skew(0)
            .with_secret(self.0.clone())
            .with_account_name(account.replace(':', "_"))
            .with_issuer(Some(ISSUER))
            .build()
            .map_err(|e| SecretError::Hash(format!("totp: {e}")))
    }

    /// The code of step `counter` (time / 30) with `digits` digits.
    pub fn code_for_step(&self, counter: u64, digits: u8) -> Result<String, SecretError> {
        // Step length 1 makes the "time" the counter itself: HOTP (RFC 4226) of `counter`.
        Ok(self.totp(digits, 1, "x")?.generate(counter).to_string())
    }

    /// The 6-digit code at `unix` seconds.
    pub fn code_at(&self, unix: u64) -> Result<String, SecretError> {
        self.code_for_step(unix / STEP_SECS, DIGITS)
    }

    /// `otpauth://totp/Tether:<account>?secret=...&issuer=Tether`.
    pub fn otpauth_uri(&self, account: &str) -> Result<String, SecretError> {
        self.totp(DIGITS, STEP_SECS, account)?
            .to_url()
            .map_err(|e| SecretError::Hash(format!("otpauth uri: {e}")))
    }

    /// The secret in base32 (what people type into an app by hand).
    pub fn base32(&self) -> Result<String, SecretError> {
        Ok(self.totp(DIGITS, STEP_SECS, "x")?.secret().to_base32())
    }
}

/// The step a code is valid for at `unix` seconds: the current step or the previous one (a
/// code typed just before the boundary), never the next, never older. Compared in constant
/// time; a code that is not 6 ASCII digits matches nothing.
pub fn matching_step(secret: &TotpSecret, code: &str, unix: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix / STEP_SECS;
    let mut found = None;
    // Both candidates are always computed, so timing does not say which one matched.
    for step in [Some(now), now.checked_sub(1)].into_iter().flatten() {
        let expected = secret.code_for_step(step, DIGITS).ok()?;
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The key that seals TOTP secrets at rest.
#[derive(Clone)]
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

/// Its file name in the hub's data dir.
pub const KEY_FILE: &str = "twofa.key";

impl SealingKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        random_bytes(&mut key)?;
        Ok(Self(key))
    }

    /// Read `dir/twofa.key` (hex), creating it (mode 0600) at first start.
    pub fn load_or_create(dir: &std::path::Path) -> std::io::Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).ok().and_then(|b| {
                    let arr: Option<[u8; 32]> = b.try_into().ok();
                    arr
                });
                bytes.map(Self).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a 64-digit hex key", path.display()),
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate().map_err(std::io::Error::other)?;
                crate::paths::create_private_dir(dir)?;
                crate::paths::write_private(&path, hex::encode(key.0).as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// Seal a secret for `user`: hex of a random 24-byte nonce and the ciphertext.
    pub fn seal(&self, user: &str, secret: &TotpSecret) -> Result<String, SecretError> {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let mut nonce = [0u8; 24];
        random_bytes(&mut nonce)?;
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: secret.as_bytes(),
                    aad: user.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Hash("cannot seal a TOTP secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// Open what `seal` made for the same user; `None` when it was made for another user, with
    /// another key, or was altered.
    pub fn open(&self, user: &str, sealed: &str) -> Option<TotpSecret> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, body) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: user.as_bytes(),
                },
            )
            .ok()
            .map(TotpSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (seed "12345678901234567890", 8 digits).
    #[test]
    fn rfc6238_appendix_b_sha1() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                secret.code_for_step(time / 30, 8).expect("code"),
                code,
                "t={time}"
            );
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0 to 9.
    #[test]
    fn rfc4226_appendix_d() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                secret.code_for_step(counter as u64, 6).expect("code"),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn current_and_previous_step_only() {
        let secret = TotpSecret::generate().expect("secret");
        let t = 1_700_000_010u64; // 10 s into a step
        let now = t / 30;
        let code = |step: u64| secret.code_for_step(step, 6).expect("code");
        assert_eq!(matching_step(&secret, &code(now), t), Some(now));
        assert_eq!(matching_step(&secret, &code(now - 1), t), Some(now - 1));
        assert_eq!(matching_step(&secret, &code(now - 2), t), None);
        assert_eq!(matching_step(&secret, &code(now + 1), t), None);
        assert_eq!(matching_step(&secret, "12345", t), None);
        assert_eq!(matching_step(&secret, "+12345", t), None);
        assert_eq!(matching_step(&secret, "abcdef", t), None);
        // At t < 30 there is no previous step, and nothing underflows.
        assert_eq!(matching_step(&secret, &code(0), 5), Some(0));
    }

    #[test]
    fn new_secrets_are_160_bits_and_random() {
        let a = TotpSecret::generate().expect("a");
        let b = TotpSecret::generate().expect("b");
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.base32().expect("b32")));
    }

    #[test]
    fn otpauth_uri_carries_the_secret_and_issuer() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.otpauth_uri("alice").expect("uri");
        assert_eq!(
            uri,
            "otpauth://totp/Tether:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tether"
        );
        assert_eq!(
            TotpSecret::from_base32(&secret.base32().expect("b32")),
            Some(secret)
        );
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let key = SealingKey::generate().expect("key");
        let secret = TotpSecret::generate().expect("secret");
        let sealed = key.seal("us_1", &secret).expect("seal");
        assert!(!sealed.contains(&hex::encode(secret.as_bytes())));
        assert_eq!(key.open("us_1", &sealed), Some(secret.clone()));
        assert_eq!(key.open("us_2", &sealed), None, "bound to its user");
        let other = SealingKey::generate().expect("other");
        assert_eq!(other.open("us_1", &sealed), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("hex");
        assert_eq!(key.open("us_1", &tampered), None);
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let a = SealingKey::load_or_create(dir.path()).expect("create");
        let b = SealingKey::load_or_create(dir.path()).expect("load");
        assert_eq!(a.0, b.0);
        std::fs::write(dir.path().join(KEY_FILE), "nonsense").expect("write");
        assert!(SealingKey::load_or_create(dir.path()).is_err());
    }
}
