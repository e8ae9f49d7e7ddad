//! The audit log's hash chain.
//!
//! Each record's hash is SHA-256 over its previous record's hash and its own fields, in the
//! exact text form they are stored in, so any change to a stored row, a deletion or a
//! re-ordering breaks the chain at the first affected record.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The stored text of one record, as hashed.
#[derive(Debug, Clone, Copy)]
pub struct AuditFields<'a> {
    pub id: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub actor_email: Option<&'a str>,
    pub team_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: &'a str,
}

/// Hash of a record chained to `prev_hash` (hex). Fields are length-prefixed so no two
/// different records share an input.
pub fn chain_hash(prev_hash: &str, f: &AuditFields<'_>) -> String {
    let mut h = Sha256::new();
    let id = f.id.to_string();
    let parts: [Option<&str>; 9] = [
        Some(prev_hash),
        Some(&id),
        Some(f.at),
        Some(f.actor),
        f.actor_email,
        f.team_id,
        Some(f.action),
        f.target,
        Some(f.detail),
    ];
    for part in parts {
        match part {
            Some(s) => {
                h.update(b"s");
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            None => h.update(b"n"),
        }
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AuditFields<'static> {
        AuditFields {
            id: 1,
            at: "2026-11-22T10:00:00.000000Z",
            actor: "ann",
            actor_email: Some("ann@example.com"),
            team_id: None,
            action: "login.ok",
            target: None,
            detail: "{}",
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_the_link() {
        let base = chain_hash(GENESIS, &fields());
        assert_eq!(base, chain_hash(GENESIS, &fields()), "deterministic");
        assert_ne!(base, chain_hash(&"1".repeat(64), &fields()));
        let changed = [
            AuditFields { id: 2, ..fields() },
            AuditFields {
                at: "2026-11-22T10:00:00.000001Z",
                ..fields()
            },
            AuditFields {
                actor: "bob",
                ..fields()
            },
            AuditFields {
                actor_email: None,
                ..fields()
            },
            AuditFields {
                team_id: Some(""),
                ..fields()
            },
            AuditFields {
                action: "login.fail",
                ..fields()
            },
            AuditFields {
                target: Some("x"),
                ..fields()
            },
            AuditFields {
                detail: "{\"a\":1}",
                ..fields()
            },
        ];
        for f in changed {
            assert_ne!(base, chain_hash(GENESIS, &f), "{f:?}");
        }
    }
}
