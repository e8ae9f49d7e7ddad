//! SQLite side of trusted devices: see `store::devices`. Revocation (disable, remove, 2FA
//! reset) is a trigger on the revocation log, so every path that ends a user's logins for those
//! reasons forgets their devices in the same transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, StoreResult, db, ts};
use crate::hub::store::devices::{DEVICES_PER_USER, DeviceStore};
use crate::protocol::UserId;

impl DeviceStore for SqliteStore {
    fn trusted_devices(&self, name: &str, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.device_hash FROM trusted_devices d JOIN users u ON u.id = d.user_id \
                 WHERE u.name = ?1 AND d.expires_at > ?2 LIMIT ?3",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![name, ts(now), DEVICES_PER_USER], |r| r.get(0))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn trust_device(
        &self,
        device_hash: &str,
        user: &UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.in_tx(|tx| trust_device(tx, device_hash, user, now, expires_at))
    }

    fn trusted_device_failed(&self, device_hash: &str, max: u32) -> StoreResult<u32> {
        self.in_tx(|tx| trusted_device_failed(tx, device_hash, max))
    }
}

/// As [`DeviceStore::trust_device`], on a connection inside the caller's transaction (a login
/// commits it with its token and its audit record).
pub(super) fn trust_device(
    conn: &Connection,
    device_hash: &str,
    user: &UserId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO trusted_devices (device_hash, user_id, last_login_at, expires_at, failures) \
         VALUES (?1, ?2, ?3, ?4, 0) \
         ON CONFLICT(device_hash) DO UPDATE SET last_login_at = ?3, expires_at = ?4, failures = 0 \
         WHERE user_id = ?2",
        params![device_hash, user, ts(now), ts(expires_at)],
    )
    .map_err(db)?;
    conn.execute(
        "DELETE FROM trusted_devices WHERE user_id = ?1 AND (expires_at <= ?2 OR device_hash NOT IN \
         (SELECT device_hash FROM trusted_devices WHERE user_id = ?1 \
          ORDER BY last_login_at DESC LIMIT ?3))",
        params![user, ts(now), DEVICES_PER_USER],
    )
    .map_err(db)?;
    Ok(())
}

/// As [`DeviceStore::trusted_device_failed`], inside the caller's transaction (a failed login
/// commits it with the name's count and the audit record).
pub(super) fn trusted_device_failed(
    conn: &Connection,
    device_hash: &str,
    max: u32,
) -> StoreResult<u32> {
    let failures: Option<u32> = conn
        .query_row(
            "UPDATE trusted_devices SET failures = failures + 1 WHERE device_hash = ?1 \
             RETURNING failures",
            [device_hash],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let failures = failures.unwrap_or(0);
    if failures >= max {
        conn.execute(
            "DELETE FROM trusted_devices WHERE device_hash = ?1",
            [device_hash],
        )
        .map_err(db)?;
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use crate::hub::store::devices::{DEVICES_PER_USER, DeviceStore};
    use crate::hub::store::users::{Revocation, UserStore};
    use crate::hub::store::{NewUser, SqliteStore, Store};
    use crate::protocol::Role;

    fn store_with(
        names: &[&str],
    ) -> (tempfile::TempDir, SqliteStore, Vec<crate::protocol::UserId>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_dir(dir.path()).expect("store");
        let ids = names
            .iter()
            .map(|name| {
                store
                    .create_user(NewUser {
                        name: (*name).into(),
                        email: format!("{name}@example.com"),
                        role: Role::Technician,
                        team: "t".into(),
                        password_hash: "x".into(),
                    })
                    .expect("user")
                    .id
            })
            .collect();
        (dir, store, ids)
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_device_is_trusted_for_its_user_only_until_it_expires() {
        let (_dir, store, ids) = store_with(&["ann", "bob"]);
        let later = now() + chrono::Duration::days(1);
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("trust");
        assert_eq!(store.trusted_devices("ann", now()).expect("read"), ["h1"]);
        assert!(
            store
                .trusted_devices("bob", now())
                .expect("read")
                .is_empty()
        );
        assert!(
            store
                .trusted_devices("nobody", now())
                .expect("read")
                .is_empty()
        );
        // Bob logging in with Ann's device token does not take it over.
        store
            .trust_device("h1", &ids[1], now(), later)
            .expect("trust");
        assert!(
            store
                .trusted_devices("bob", now())
                .expect("read")
                .is_empty()
        );
        assert!(
            store
                .trusted_devices("ann", later)
                .expect("read")
                .is_empty(),
            "expired"
        );
    }

    #[test]
    fn wrong_passwords_from_a_device_end_its_trust_and_a_success_clears_them() {
        let (_dir, store, ids) = store_with(&["ann"]);
        let later = now() + chrono::Duration::days(1);
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("trust");
        assert_eq!(store.trusted_device_failed("h1", 3).expect("count"), 1);
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("renew");
        assert_eq!(
            store.trusted_device_failed("h1", 3).expect("count"),
            1,
            "cleared"
        );
        assert_eq!(store.trusted_device_failed("h1", 3).expect("count"), 2);
        assert_eq!(store.trusted_device_failed("h1", 3).expect("count"), 3);
        assert!(
            store
                .trusted_devices("ann", now())
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_user_keeps_a_bounded_number_of_devices() {
        let (_dir, store, ids) = store_with(&["ann"]);
        let later = now() + chrono::Duration::days(1);
        for i in 0..=DEVICES_PER_USER {
            let at = now() + chrono::Duration::seconds(i.into());
            store
                .trust_device(&format!("h{i}"), &ids[0], at, later)
                .expect("trust");
        }
        let kept = store.trusted_devices("ann", now()).expect("read");
        assert_eq!(kept.len(), DEVICES_PER_USER as usize);
        assert!(
            !kept.contains(&"h0".to_owned()),
            "the least recently used goes"
        );
    }

    #[test]
    fn disabling_removing_and_resetting_2fa_forget_devices_and_the_failure_lock_does_not() {
        let (_dir, store, ids) = store_with(&["ann"]);
        let later = now() + chrono::Duration::days(1);
        let trusted = || {
            !store
                .trusted_devices("ann", now())
                .expect("read")
                .is_empty()
        };
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("trust");
        // Reaching the failure lock revokes logins, not devices: else a guesser could end them.
        for _ in 0..crate::hub::MAX_FAILED_LOGINS {
            store.record_login_failure(&ids[0], None).expect("failure");
        }
        assert!(trusted(), "kept through the failure lock");
        store.set_user_disabled(&ids[0], true).expect("disable");
        assert!(!trusted(), "disabling forgets devices");
        store.set_user_disabled(&ids[0], false).expect("enable");
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("trust");
        store
            .revoke_user_logins(&ids[0], Revocation::TwoFactorReset)
            .expect("reset");
        assert!(!trusted(), "a 2FA reset forgets devices");
        store
            .trust_device("h1", &ids[0], now(), later)
            .expect("trust");
        store.remove_user(&ids[0]).expect("remove");
        assert!(!trusted(), "removal forgets devices");
    }
}
