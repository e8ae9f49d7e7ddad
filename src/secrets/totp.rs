//! Technician 2FA: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) on `totp-rs`, the
//! otpauth URI an authenticator app scans.
//!
//! The hub must keep each TOTP secret to verify codes, so it cannot keep only a hash. It keeps
//! it sealed by [`super::seal`] (purpose `totp:<user id>`) under the hub's `seal.key`, never in
//! the database: a copy of the database alone (a backup, a dump) reveals no secret. The secret
//! is shown once, at enrolment; it is never logged or returned again.

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
}
