//! Claims per second of each store alone (no HTTP, no workers): SQLite, and
//! PostgreSQL on a throwaway local server (`test-postgres`, fsync off, so
//! the figure is the database's work, not the disk's):
//!
//!   cargo bench -p provernode-store --bench claims
//!
//! Each measured iteration is one atomic claim (task picked and lease written,
//! attempt row inserted, ELF and input read back), at both durability levels.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use provernode_core::{Abi, ProgramId, TaskLimits};
use provernode_store::{ClaimRequest, NewTask, PgStore, SqliteOptions, SqliteStore, Store, Synchronous};

fn task(i: u64) -> NewTask {
    let elf = vec![0x7f; 9616];
    NewTask {
        program_id: ProgramId::of_elf(&elf),
        program_name: "fibonacci".into(),
        abi: Abi::Risc0,
        elf,
        input: i.to_le_bytes().to_vec(),
        backend: "trace".into(),
        proof_kind: None,
        limits: TaskLimits::default(),
        priority: 0,
        deadline_ms: None,
        idempotency_key: None,
        depends_on: Vec::new(),
    }
}

fn claims(c: &mut Criterion) {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let pg = test_postgres::TempPostgres::start().unwrap_or_else(|e| panic!("{e}"));
    let pg_url = pg.create_database().unwrap_or_else(|e| panic!("{e}"));
    let mut stores: Vec<(&str, Box<dyn Store>)> = Vec::new();
    for (label, sync, file) in [
        ("sqlite/synchronous=full", Synchronous::Full, "full.sqlite"),
        ("sqlite/synchronous=normal", Synchronous::Normal, "normal.sqlite"),
    ] {
        let options = SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        };
        let store = rt
            .block_on(SqliteStore::open(&dir.path().join(file), &options))
            .unwrap_or_else(|e| panic!("open: {e}"));
        stores.push((label, Box::new(store)));
    }
    let pg_store = rt
        .block_on(PgStore::connect(&pg_url, 4))
        .unwrap_or_else(|e| panic!("postgres: {e}"));
    stores.push(("postgres", Box::new(pg_store)));
    let request = ClaimRequest {
        owner: "bench/w0".into(),
        backends: vec!["trace".into()],
        lease_ttl_ms: 60_000,
        max_memory_bytes: None,
    };
    let mut group = c.benchmark_group("claim");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (label, store) in &stores {
        let mut next = 0u64;
        group.bench_function(label.to_string(), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    for _ in 0..iters {
                        next += 1;
                        store
                            .submit(task(next))
                            .await
                            .unwrap_or_else(|e| panic!("submit: {e}"));
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        let lease = store
                            .claim(&request)
                            .await
                            .unwrap_or_else(|e| panic!("claim: {e}"));
                        assert!(lease.is_some(), "queue ran dry");
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, claims);
criterion_main!(benches);
