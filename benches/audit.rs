//! What the keyed audit chain costs: one append (a transaction, the head read and checked, a
//! keyed link, the new head signed and written beside the database), and `verify` over a log
//! of 10,000 records. On a temporary data dir, so the disk is the machine's own.
//!
//! `cargo bench --bench audit`

use criterion::{Criterion, criterion_group, criterion_main};
use tether::hub::audit::{AuditEvent, AuditKeys, read_head, write_head};
use tether::hub::store::{NewAudit, SqliteStore, Store};
use tether::secrets::seal::SealKey;

fn record() -> NewAudit {
    NewAudit {
        at: chrono::Utc::now(),
        actor: "ann".into(),
        actor_email: Some("ann@example.com".into()),
        team_id: Some("tm_1".into()),
        action: AuditEvent::LoginOk,
        target: None,
        detail: serde_json::json!({ "from": "192.0.2.7", "method": "password+totp" }),
    }
}

fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open_dir(dir.path()).expect("store");
    c.bench_function("audit append (keyed link + signed head)", |b| {
        b.iter(|| store.append_audit(record()).expect("append"));
    });

    // Where an append's time goes: the head's three steps on their own.
    let keys = AuditKeys::derive(&SealKey::generate().expect("key")).expect("keys");
    let link = "ab".repeat(32);
    let head = keys.sign_head(1, &link, 1, "2026-01-01T00:00:00.000000Z");
    let mut parts = c.benchmark_group("audit head");
    parts.bench_function("sign", |b| {
        b.iter(|| keys.sign_head(1, &link, 1, "2026-01-01T00:00:00.000000Z"));
    });
    let dir = tempfile::tempdir().expect("dir");
    parts.bench_function("write", |b| {
        b.iter(|| write_head(dir.path(), &head).expect("write"));
    });
    parts.bench_function("read and check", |b| {
        b.iter(|| read_head(dir.path(), keys.public_key()));
    });
    parts.finish();

    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open_dir(dir.path()).expect("store");
    for _ in 0..10_000 {
        store.append_audit(record()).expect("append");
    }
    let mut group = c.benchmark_group("audit verify");
    group.sample_size(10);
    group.bench_function("10k records", |b| {
        b.iter(|| assert!(store.verify_audit().expect("verify").intact()));
    });
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
