//! The audit log as an auditor meets it (issue 11): `tether admin audit verify` through the
//! real binary on a real data dir names each kind of tampering, and an export checks offline
//! by the README's algorithm, written again here from the README alone.

mod common;

use std::path::{Path, PathBuf};

use common::bin::{fails, ok, run as tether};
use ring::signature::{ED25519, UnparsedPublicKey};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

/// A data dir whose log holds seven records, all written by the binary.
fn logged_dir(home: &Path) -> PathBuf {
    let data = home.join("hub");
    let data_s = data.to_str().expect("utf8");
    ok(&tether(
        home,
        &[
            "admin",
            "--data",
            data_s,
            "create-user",
            "ann",
            "--role",
            "admin",
            "--team",
            "Desk",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ],
        Some("plum tractor violet 7\n"),
    ));
    for _ in 0..6 {
        ok(&tether(
            home,
            &["admin", "--data", data_s, "unlock-user", "ann"],
            None,
        ));
    }
    data
}

fn verify(home: &Path, data: &Path) -> std::process::Output {
    tether(
        home,
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "audit",
            "verify",
        ],
        None,
    )
}

/// The database with its append-only guards removed, as a tamperer would.
fn tamper(data: &Path) -> Connection {
    let conn = Connection::open(data.join("hub.sqlite3")).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete;",
    )
    .expect("drop the guards");
    conn
}

/// The README's canonical bytes: the previous link, then id, at, actor, actor_email, team_id,
/// action, target, detail; each present field as `s` + u64 big-endian length + UTF-8, an
/// absent one as `n`.
fn canonical(prev: &str, r: &serde_json::Value) -> Vec<u8> {
    let id = r["id"].as_i64().expect("id").to_string();
    let mut out = Vec::new();
    let mut put = |v: Option<&str>| match v {
        Some(s) => {
            out.push(b's');
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.push(b'n'),
    };
    put(Some(prev));
    put(Some(&id));
    for field in [
        "at",
        "actor",
        "actor_email",
        "team_id",
        "action",
        "target",
        "detail",
    ] {
        put(r[field].as_str());
    }
    out
}

/// Recompute every link (plain SHA-256) from record `from` on, as someone without the key would.
fn recompute_plain(conn: &Connection, from: i64) {
    let mut prev: String = conn
        .query_row("SELECT hash FROM audit WHERE id = ?1", [from - 1], |r| {
            r.get(0)
        })
        .expect("prev");
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM audit WHERE id >= ?1 ORDER BY id")
        .expect("prepare")
        .query_map([from], |r| r.get(0))
        .expect("ids")
        .collect::<Result<_, _>>()
        .expect("ids");
    for id in ids {
        let row: serde_json::Value = conn
            .query_row(
                "SELECT id, at, actor, actor_email, team_id, action, target, detail FROM audit WHERE id = ?1",
                [id],
                |r| {
                    Ok(serde_json::json!({
                        "id": r.get::<_, i64>(0)?, "at": r.get::<_, String>(1)?,
                        "actor": r.get::<_, String>(2)?, "actor_email": r.get::<_, Option<String>>(3)?,
                        "team_id": r.get::<_, Option<String>>(4)?, "action": r.get::<_, String>(5)?,
                        "target": r.get::<_, Option<String>>(6)?, "detail": r.get::<_, String>(7)?,
                    }))
                },
            )
            .expect("row");
        let hash = hex::encode(Sha256::digest(canonical(&prev, &row)));
        conn.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
            params![id, prev, hash],
        )
        .expect("rewrite");
        prev = hash;
    }
}

#[test]
fn verify_names_each_kind_of_tampering_through_the_binary() {
    type Tamper = fn(&Path);
    let cases: [(&str, Tamper, &str); 6] = [
        (
            "truncation",
            |d| {
                tamper(d)
                    .execute("DELETE FROM audit WHERE id > 5", [])
                    .expect("cut");
            },
            "truncated: 2 records cut from the end",
        ),
        (
            "deletion",
            |d| {
                tamper(d)
                    .execute("DELETE FROM audit WHERE id = 3", [])
                    .expect("delete");
            },
            "deleted: record 3 is missing",
        ),
        (
            "reordering",
            |d| {
                // Rows 3 and 4 trade places: each keeps its content and links, not its id.
                let conn = tamper(d);
                conn.execute_batch(
                    "UPDATE audit SET id = -3 WHERE id = 3; UPDATE audit SET id = 3 WHERE id = 4; \
                     UPDATE audit SET id = 4 WHERE id = -3;",
                )
                .expect("swap");
            },
            "reordered: records 3-4",
        ),
        (
            "edit",
            |d| {
                tamper(d)
                    .execute(
                        "UPDATE audit SET detail = '{\"name\":\"mallory\"}' WHERE id = 4",
                        [],
                    )
                    .expect("edit");
            },
            "edited: record 4 ",
        ),
        (
            "recomputed chain",
            |d| {
                let conn = tamper(d);
                conn.execute(
                    "UPDATE audit SET detail = '{\"name\":\"mallory\"}' WHERE id = 4",
                    [],
                )
                .expect("edit");
                recompute_plain(&conn, 4);
            },
            "recomputed chain: records 4-7",
        ),
        (
            "missing head",
            |d| std::fs::remove_file(d.join("audit.head")).expect("remove head"),
            "head missing",
        ),
    ];
    for (what, spoil, named) in cases {
        let home = tempfile::tempdir().expect("home");
        let data = logged_dir(home.path());
        let intact = ok(&verify(home.path(), &data));
        assert!(intact.contains("intact: 7 records"), "{what}: {intact}");
        spoil(&data);
        let err = fails(&verify(home.path(), &data));
        assert!(err.contains("NOT intact"), "{what}: {err}");
        assert!(err.contains(named), "{what}: expected {named:?} in {err}");
    }
}

/// The README's offline check, from the export alone and the pinned public key.
fn offline_check(export: &str, pinned: &[u8]) -> Result<u64, String> {
    let mut lines = export
        .lines()
        .map(serde_json::from_str::<serde_json::Value>);
    let header = lines.next().ok_or("empty")?.map_err(|e| e.to_string())?;
    let key = hex::decode(header["chain_key"].as_str().ok_or("no chain key")?)
        .map_err(|e| e.to_string())?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut expected_id = header["first_id"].as_i64().ok_or("first_id")?;
    let mut prev = header["prev_hash"].as_str().ok_or("prev_hash")?.to_owned();
    let mut head = None;
    let mut n = 0;
    for line in lines {
        let line = line.map_err(|e| e.to_string())?;
        match line["type"].as_str() {
            Some("record") => {
                let id = line["id"].as_i64().ok_or("id")?;
                if id != expected_id || line["prev_hash"] != prev.as_str() {
                    return Err(format!("record {id} is out of place"));
                }
                let link = hex::encode(ring::hmac::sign(&key, &canonical(&prev, &line)));
                if line["link"] != "hmac-sha256" || line["hash"] != link.as_str() {
                    return Err(format!("record {id} does not match its link"));
                }
                prev = link;
                expected_id += 1;
                n += 1;
            }
            Some("head") => head = Some(line),
            other => return Err(format!("unexpected line {other:?}")),
        }
    }
    let head = head.ok_or("no head")?;
    let signed = format!(
        "tether-audit-head-v1\n{}\n{}\n{}\n{}",
        head["count"],
        head["last"].as_str().ok_or("last")?,
        head["keyed_from"],
        head["at"].as_str().ok_or("at")?
    );
    let signature =
        hex::decode(head["signature"].as_str().ok_or("signature")?).map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&ED25519, pinned)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the head is not signed by the pinned key")?;
    if head["count"].as_i64() != Some(expected_id - 1) || head["last"] != prev.as_str() {
        return Err("the records do not end where the signed head does".into());
    }
    Ok(n)
}

#[test]
fn an_export_checks_offline_and_a_tampered_one_does_not() {
    let home = tempfile::tempdir().expect("home");
    let data = logged_dir(home.path());
    let data_s = data.to_str().expect("utf8");
    let pinned = ok(&verify(home.path(), &data));
    let public_key = pinned
        .rsplit("head signed by ")
        .next()
        .expect("public key")
        .trim()
        .to_owned();
    let file = home.path().join("audit.jsonl");
    let file_s = file.to_str().expect("utf8");
    let out = tether(
        home.path(),
        &[
            "admin",
            "--data",
            data_s,
            "audit",
            "export",
            "--with-key",
            "--out",
            file_s,
        ],
        None,
    );
    ok(&out);
    let export = std::fs::read_to_string(&file).expect("read export");
    // Seven records and the export's own, with the key it handed out.
    assert_eq!(
        offline_check(&export, &hex::decode(&public_key).expect("hex")),
        Ok(8)
    );
    assert!(export.contains("audit.export_with_key"), "{export}");
    let check = |path: &str| {
        tether(
            home.path(),
            &["admin", "audit", "check", path, "--public-key", &public_key],
            None,
        )
    };
    assert!(ok(&check(file_s)).contains("intact: 8 records"));

    // Another hub's key does not check it.
    assert!(offline_check(&export, &[7u8; 32]).is_err());
    // One record edited in the file: both checks refuse it.
    let tampered = export.replacen("\"actor\":\"admin-cli\"", "\"actor\":\"mallory\"", 1);
    assert_ne!(tampered, export);
    assert!(offline_check(&tampered, &hex::decode(&public_key).expect("hex")).is_err());
    let bad = home.path().join("tampered.jsonl");
    std::fs::write(&bad, &tampered).expect("write");
    let err = fails(&check(bad.to_str().expect("utf8")));
    assert!(err.contains("edited: record 1 "), "{err}");
    // The last records cut from the file: the signed head still counts them.
    let cut: Vec<&str> = export.lines().collect();
    let cut = [&cut[..cut.len() - 3], &cut[cut.len() - 1..]]
        .concat()
        .join("\n");
    assert!(offline_check(&cut, &hex::decode(&public_key).expect("hex")).is_err());
    std::fs::write(&bad, &cut).expect("write");
    let err = fails(&check(bad.to_str().expect("utf8")));
    assert!(
        err.contains("truncated: 2 records cut from the end"),
        "{err}"
    );
}
