//! Sealing secrets the hub must read back (TOTP secrets, one-time passwords kept for resending,
//! outbox bodies).
//!
//! One AEAD, XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`), with a random 24-byte nonce
//! from the OS's CSPRNG per value (192 bits: random nonces never collide in practice). One
//! 256-bit key, in the hub's data dir as `seal.key` (32 raw bytes, mode 0600, made at first
//! start), never in the database: a copy of the database alone reveals nothing sealed. A key
//! file that others may read, or that is not exactly 32 bytes, is refused with an error that
//! says what to do; the hub does not start on it.
//!
//! Every value is sealed for a [`Purpose`] that names its row (`totp:<user id>`,
//! `otp:<code id>`, `outbox:<code id>`), bound in as associated data: a sealed value copied
//! into another row, or into another column, does not open.

use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

use super::{SecretError, random_bytes};

/// The key's file name in the hub's data dir.
pub const KEY_FILE: &str = "seal.key";
/// Bytes of the key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (XChaCha20).
pub const NONCE_LEN: usize = 24;

/// What a sealed value is, and whose: its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// A technician's TOTP secret (pending or active), by user id.
    Totp(&'a str),
    /// A one-time password kept for resending, by its id.
    Otp(&'a str),
    /// The body of a message in the outbox, by the id of the code it carries.
    Outbox(&'a str),
}

impl Purpose<'_> {
    /// The associated data: `totp:<id>`, `otp:<id>`, `outbox:<id>`.
    pub fn aad(&self) -> Vec<u8> {
        let (kind, id) = match self {
            Self::Totp(id) => ("totp", id),
            Self::Otp(id) => ("otp", id),
            Self::Outbox(id) => ("outbox", id),
        };
        format!("{kind}:{id}").into_bytes()
    }
}

/// Why the key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SealKeyError {
    #[error("cannot read or create the sealing key {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the sealing key {} is readable by others (mode {mode:03o}): it must be owner-only \
         (chmod 600 {}); if others could read it, treat sealed secrets as exposed",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "the sealing key {} is {len} bytes, not {KEY_LEN}: restore it from your backup (without \
         it, active 2FA and stored codes cannot be read)",
        path.display()
    )]
    Size { path: PathBuf, len: u64 },
    #[error(transparent)]
    Random(#[from] SecretError),
}

/// The key that seals secrets at rest. Its `Debug` is redacted.
#[derive(Clone)]
pub struct SealKey([u8; KEY_LEN]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the OS's CSPRNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; KEY_LEN];
        random_bytes(&mut key)?;
        Ok(Self(key))
    }

    /// Read `dir/seal.key`, or make it (owner-only) at first start. Refuses a file others may
    /// read or write, and one of the wrong size.
    pub fn load_or_create(dir: &Path) -> Result<Self, SealKeyError> {
        let path = dir.join(KEY_FILE);
        let io = |source| SealKeyError::Io {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                crate::paths::create_private_dir(dir).map_err(io)?;
                crate::paths::write_private(&path, &key.0).map_err(io)?;
                return Ok(key);
            }
            Err(e) => return Err(io(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SealKeyError::Mode { path, mode });
            }
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(SealKeyError::Size {
                path,
                len: meta.len(),
            });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| SealKeyError::Size {
            path: path.clone(),
            len: b.len() as u64,
        })?;
        Ok(Self(key))
    }

    /// Seal `plain` for `purpose`: hex of a random nonce and the ciphertext with its tag.
    pub fn seal(&self, purpose: Purpose<'_>, plain: &[u8]) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let aad = purpose.aad();
        let sealed = XChaCha20Poly1305::new(&self.0.into())
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// Open what [`seal`](Self::seal) made for the same purpose; `None` when it was sealed for
    /// another purpose or row, under another key, or was altered.
    pub fn open(&self, purpose: Purpose<'_>, sealed: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = purpose.aad();
        XChaCha20Poly1305::new(&self.0.into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()
    }

    /// [`open`](Self::open) for text.
    pub fn open_text(&self, purpose: Purpose<'_>, sealed: &str) -> Option<String> {
        String::from_utf8(self.open(purpose, sealed)?).ok()
    }

    /// A 256-bit key for another use, derived by HKDF-SHA256 (RFC 5869) with `label` as its
    /// info: keys of different labels are independent, and none reveals this key.
    pub fn derive(&self, label: &str) -> [u8; KEY_LEN] {
        use ring::hkdf;
        let mut out = [0u8; KEY_LEN];
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tether-seal-derive").extract(&self.0);
        // Expanding to one SHA-256 output (32 bytes) cannot fail: ring refuses only more than
        // 255 outputs.
        if let Ok(okm) = prk.expand(&[label.as_bytes()], hkdf::HKDF_SHA256) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    /// A keyed hash of `data` (HMAC-SHA256) under a subkey of this key bound to `label`, for
    /// secrets the hub only compares and whose space is small (six-digit codes): without
    /// `seal.key`, a copy of the database does not reveal them by trying every value.
    pub fn keyed_hash(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let subkey = hmac_sha256(&self.0, format!("tether-subkey:{label}").as_bytes());
        hmac_sha256(&subkey, data)
    }
}

/// HMAC-SHA256 (RFC 2104) for keys up to one block, which is all this module uses.
fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let (mut ipad, mut opad) = ([0x36u8; BLOCK], [0x5cu8; BLOCK]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_and_purpose() {
        let key = SealKey::generate().expect("key");
        let sealed = key.seal(Purpose::Otp("otp_1"), b"ABCDEFGH").expect("seal");
        assert!(!sealed.contains(&hex::encode(b"ABCDEFGH")));
        assert_eq!(
            key.open(Purpose::Otp("otp_1"), &sealed).as_deref(),
            Some(&b"ABCDEFGH"[..])
        );
        assert_eq!(
            key.open_text(Purpose::Otp("otp_1"), &sealed).as_deref(),
            Some("ABCDEFGH")
        );
        // Random nonces: the same value sealed twice differs.
        let again = key.seal(Purpose::Otp("otp_1"), b"ABCDEFGH").expect("seal");
        assert_ne!(sealed, again);
        assert_eq!(sealed.len(), 2 * (NONCE_LEN + 8 + 16));
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2 uses a 4-byte key; zero-padding it to 32 bytes is the same key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keyed_hashes_depend_on_key_label_and_data() {
        let key = SealKey::generate().expect("key");
        let a = key.keyed_hash("guest-code", b"123456");
        assert_eq!(a, key.keyed_hash("guest-code", b"123456"));
        assert_ne!(a, key.keyed_hash("other", b"123456"));
        assert_ne!(a, key.keyed_hash("guest-code", b"123457"));
        let other = SealKey::generate().expect("other");
        assert_ne!(a, other.keyed_hash("guest-code", b"123456"));
    }

    #[test]
    fn derived_keys_depend_on_key_and_label() {
        let key = SealKey::generate().expect("key");
        let a = key.derive("tether/audit/chain/v1");
        assert_eq!(a, key.derive("tether/audit/chain/v1"));
        assert_ne!(a, key.derive("tether/audit/head/v1"));
        assert_ne!(a, key.0);
        assert_ne!(
            a,
            SealKey::generate()
                .expect("other")
                .derive("tether/audit/chain/v1")
        );
    }

    #[test]
    fn another_key_does_not_open() {
        let key = SealKey::generate().expect("key");
        let sealed = key.seal(Purpose::Totp("us_1"), b"secret").expect("seal");
        let other = SealKey::generate().expect("other");
        assert_eq!(other.open(Purpose::Totp("us_1"), &sealed), None);
    }

    #[test]
    fn another_purpose_or_row_does_not_open() {
        let key = SealKey::generate().expect("key");
        let sealed = key.seal(Purpose::Otp("x1"), b"code").expect("seal");
        assert_eq!(key.open(Purpose::Otp("x2"), &sealed), None, "another row");
        assert_eq!(
            key.open(Purpose::Outbox("x1"), &sealed),
            None,
            "another use"
        );
        assert_eq!(key.open(Purpose::Totp("x1"), &sealed), None, "another use");
        assert_eq!(Purpose::Totp("us_1").aad(), b"totp:us_1");
        assert_eq!(Purpose::Otp("otp_1").aad(), b"otp:otp_1");
        assert_eq!(Purpose::Outbox("otp_1").aad(), b"outbox:otp_1");
    }

    #[test]
    fn altered_or_malformed_values_do_not_open() {
        let key = SealKey::generate().expect("key");
        let purpose = Purpose::Outbox("otp_1");
        let sealed = key.seal(purpose, b"the body").expect("seal");
        let bytes = hex::decode(&sealed).expect("hex");
        // A flipped bit anywhere: nonce, ciphertext, tag.
        for at in [0, NONCE_LEN, bytes.len() - 1] {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x01;
            assert_eq!(key.open(purpose, &hex::encode(tampered)), None, "at {at}");
        }
        assert_eq!(key.open(purpose, &sealed[..sealed.len() - 2]), None, "cut");
        assert_eq!(key.open(purpose, "zz"), None, "not hex");
        assert_eq!(key.open(purpose, &hex::encode([0u8; 10])), None, "short");
        assert_eq!(key.open(purpose, ""), None);
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let hub = dir.path().join("hub");
        let a = SealKey::load_or_create(&hub).expect("create");
        let b = SealKey::load_or_create(&hub).expect("load");
        assert_eq!(a.0, b.0);
        let path = hub.join(KEY_FILE);
        assert_eq!(std::fs::read(&path).expect("read"), a.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{a:?}").contains(&hex::encode(a.0)));
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KEY_FILE);
        for len in [0usize, 31, 33, 64] {
            crate::paths::write_private(&path, &vec![7u8; len]).expect("write");
            let err = SealKey::load_or_create(dir.path()).expect_err("wrong size");
            assert!(matches!(err, SealKeyError::Size { .. }), "{len}: {err}");
            assert!(err.to_string().contains(&format!("{len} bytes, not 32")));
        }
        // Nothing was overwritten.
        assert_eq!(std::fs::read(&path).expect("read").len(), 64);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let made = SealKey::load_or_create(dir.path()).expect("create");
        let path = dir.path().join(KEY_FILE);
        for mode in [0o644, 0o640, 0o604, 0o660, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let err = SealKey::load_or_create(dir.path()).expect_err("loose mode");
            assert!(matches!(err, SealKeyError::Mode { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        let read_only = SealKey::load_or_create(dir.path()).expect("owner read-only is fine");
        assert_eq!(read_only.0, made.0);
    }
}
