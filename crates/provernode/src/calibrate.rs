//! `provernode calibrate`: proves a fixed program on each backend here and
//! records the proving rate (cycles per second) in the node's queue
//! database, where it sizes the timeouts of tasks that name none
//! (`provernode_core::TimeoutRule`). The node also keeps the rate up to
//! date from its own finished attempts; calibrating gives it one before
//! the first long task, as a prover measures itself before it bids.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use provernode_core::{Abi, ProveOptions};
use provernode_store::{PgStore, SqliteOptions, SqliteStore, Store};

#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// The embedded node's data directory (its queue database is updated; the node may run).
    #[arg(
        long,
        required_unless_present = "database_url",
        conflicts_with = "database_url"
    )]
    pub data_dir: Option<PathBuf>,
    /// The cluster's PostgreSQL database, as the brokers use it.
    #[arg(long, env = "PROVERNODE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Backends to calibrate (repeatable). Default: every backend available here.
    #[arg(long = "backend")]
    pub backends: Vec<String>,
    /// The proof kind to calibrate (applies to every backend named). Default: each backend's
    /// default kind.
    #[arg(long)]
    pub proof_kind: Option<String>,
    /// Only print the rates the node has, without proving anything.
    #[arg(long)]
    pub show: bool,
}

/// The fixed program: fibonacci, with an input sized per backend so the
/// proof is long enough to measure and short enough to wait for.
fn calibration_input(backend: &str) -> u32 {
    match backend {
        "trace" => 2_000_000,
        _ => 20_000,
    }
}

async fn open(args: &CalibrateArgs) -> Result<Arc<dyn Store>> {
    if let Some(url) = &args.database_url {
        return Ok(Arc::new(PgStore::connect(url, 2).await?));
    }
    let Some(dir) = &args.data_dir else {
        bail!("give --data-dir (the embedded node) or --database-url (a cluster)")
    };
    let db = dir.join(provernode_node::QUEUE_FILE);
    if !db.is_file() {
        bail!(
            "there is no node queue database at {} (start the node on that data directory once first)",
            db.display()
        );
    }
    Ok(Arc::new(SqliteStore::open(&db, &SqliteOptions::default()).await?))
}

pub async fn run(args: &CalibrateArgs) -> Result<()> {
    let store = open(args).await?;
    if !args.show {
        let registry = provernode_backends::Registry::default();
        let names: Vec<String> = if args.backends.is_empty() {
            registry.available().map(|b| b.name().to_owned()).collect()
        } else {
            args.backends.clone()
        };
        for name in names {
            let backend = registry.get(&name)?;
            backend
                .available()
                .with_context(|| format!("backend {name} cannot run here"))?;
            let kind = backend.resolve_proof_kind(args.proof_kind.as_deref())?;
            let abi = if backend.abis().contains(&Abi::Risc0) {
                Abi::Risc0
            } else {
                Abi::Sp1
            };
            let guest = provernode_guests::find("fibonacci").context("the fibonacci guest is built in")?;
            let program = guest.program(abi);
            let n = calibration_input(&name);
            let options = ProveOptions {
                proof_kind: Some(kind.to_owned()),
                ..ProveOptions::default()
            };
            eprintln!("calibrating {name} ({kind}): proving fibonacci n = {n} ...");
            let measured = tokio::task::spawn_blocking(move || {
                backend.warm_up()?;
                backend.set_up(&program)?;
                let started = Instant::now();
                let envelope = backend.prove(&program, &n.to_le_bytes(), &options)?;
                Ok::<_, provernode_core::BackendError>((envelope.cycles, started.elapsed()))
            })
            .await
            .context("the calibration proof panicked")?;
            let (cycles, took) = measured.with_context(|| format!("calibrating {name}"))?;
            let rate = cycles as f64 / took.as_secs_f64().max(1e-3);
            store.record_rate(&name, kind, rate, "calibrate").await?;
            eprintln!(
                "{name} ({kind}): {cycles} cycles in {:.2} s: {rate:.0} cycles a second",
                took.as_secs_f64()
            );
        }
    }
    let rates = store.proving_rates().await?;
    if rates.is_empty() {
        println!(
            "no proving rate is known yet: run `provernode calibrate` without --show, or let tasks finish"
        );
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::ASCII_MARKDOWN).set_header(vec![
        "backend",
        "proof kind",
        "cycles/s",
        "from",
        "a 10 M-cycle task's timeout",
    ]);
    for r in rates {
        let rule = provernode_core::TimeoutRule {
            cycles_per_sec: r.cycles_per_sec,
            floor: std::time::Duration::ZERO,
        };
        let from = if r.source == "calibrate" {
            "calibrate".to_owned()
        } else {
            format!("{} attempts", r.samples)
        };
        table.add_row(vec![
            r.backend,
            r.proof_kind,
            format!("{:.0}", r.cycles_per_sec),
            from,
            format!("{:.0} s", rule.timeout_for(10_000_000).as_secs_f64()),
        ]);
    }
    println!("{table}");
    Ok(())
}
