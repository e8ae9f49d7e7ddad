//! What the keyed audit chain costs: one append (a transaction, the head read and checked, a
//! keyed link, the new head signed and written beside the database), and `verify` over a log
//! of 10,000 records. On a temporary data dir, so the disk is the machine's own.
//!
//! `cargo bench --bench audit`

use criterion::{Criterion, criterion_group, criterion_main};
use tether::hub::audit::AuditEvent;
use tether::hub::store::{NewAudit, SqliteStore, Store};

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
