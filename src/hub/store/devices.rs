//! Trusted devices (OWASP's "device cookies", issue 11 point 5): a console that logged in as a
//! user presents the same device token at that user's later logins; the hub keeps only its
//! SHA-256, bound to the user. A login presenting a trusted device token for its name is
//! checked ahead of every other login and is not held back by the lock-out that attempts from
//! elsewhere build on the name, so a flood or a guesser cannot keep the user out.

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::protocol::UserId;

/// Devices kept per user: the least recently used beyond this are forgotten.
pub const DEVICES_PER_USER: u32 = 32;

/// What the hub keeps of trusted devices. Device tokens arrive hashed (SHA-256).
pub trait DeviceStore {
    /// The hashes of the devices trusted for the user named `name` and not expired at `now`
    /// (at most [`DEVICES_PER_USER`]); empty for a name nobody holds. The caller compares them
    /// with the presented one in constant time.
    fn trusted_devices(&self, name: &str, now: DateTime<Utc>) -> StoreResult<Vec<String>>;

    /// Trust a device for `user` after a successful login, or renew it: its failures clear and
    /// it expires at `expires_at`. A device already trusted for someone else is left alone.
    /// Keeps the user's [`DEVICES_PER_USER`] most recently used devices.
    fn trust_device(
        &self,
        device_hash: &str,
        user: &UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// A wrong password from a trusted device: counted; at `max` in a row the device is no
    /// longer trusted (a stolen device token buys a few guesses, no more). Returns the count.
    fn trusted_device_failed(&self, device_hash: &str, max: u32) -> StoreResult<u32>;
}
