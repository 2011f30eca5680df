//! `provernode bench`: wiring for `provernode-bench` (targets, files, output).

use anyhow::{bail, Context, Result};
use provernode_backends::Registry;
use provernode_bench::{Row, Target};

use crate::cli::BenchArgs;

pub fn run(args: &BenchArgs) -> Result<()> {
    let mut rows: Vec<Row> = match &args.results {
        Some(path) => provernode_bench::load(path)?,
        None => Vec::new(),
    };
    if !args.render_only {
        let registry = Registry::default();
        let targets: Vec<Target> = if args.targets.is_empty() {
            registry
                .available()
                .map(|b| Target {
                    backend: b.name().into(),
                    kind: None,
                })
                .collect()
        } else {
            args.targets.clone()
        };
        let mut jobs = provernode_bench::jobs(args.jobs.name())?;
        jobs.retain(|j| {
            (args.programs.is_empty() || args.programs.contains(&j.program))
                && (args.inputs.is_empty() || args.inputs.contains(&j.input_label))
        });
        if jobs.is_empty() {
            bail!(
                "no job of set `{}` matches --program {:?} --input {:?}; `--jobs standard` has fibonacci n=10,50,100,10000,100000 and sha256-chain rounds=10,1000",
                args.jobs.name(),
                args.programs,
                args.inputs
            );
        }
        eprintln!(
            "bench: {} job(s) on {} target(s), {} timed verification(s) each, on {}",
            jobs.len(),
            targets.len(),
            args.verify_runs,
            provernode_bench::host()
        );
        for target in &targets {
            let settings = provernode_bench::settings_from(&target.backend, std::env::vars());
            if !settings.is_empty() {
                let list: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!(
                    "bench: {} runs with {} (recorded in its rows, which sit beside the defaults' rows)",
                    target_name(target),
                    list.join(" ")
                );
            }
        }
        let mut paid = provernode_bench::Paid::default();
        println!("backend\tkind\tprogram\tinput\tcycles\tprove_s\tverify_s_avg\tproof_bytes\tpeak_rss_bytes\tstartup_s\tsetup_s");
        for target in &targets {
            let results = args.results.as_deref();
            let mut saved = rows.clone();
            let mut save_error = None;
            let measured =
                provernode_bench::run_target(&registry, target, &jobs, args.verify_runs, &mut paid, |r| {
                    // Saved after every row: a run of hours keeps what it measured
                    // even if it is stopped.
                    saved = provernode_bench::merge(std::mem::take(&mut saved), std::slice::from_ref(r));
                    if let Some(path) = results {
                        if let Err(e) = provernode_bench::save(path, &saved) {
                            save_error.get_or_insert(e);
                        }
                    }
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{:.3}\t{:.6}\t{}\t{}\t{}\t{}",
                        r.backend,
                        r.proof_kind,
                        r.program,
                        r.input,
                        r.cycles,
                        r.prove_seconds,
                        r.verify_seconds_avg,
                        r.proof_bytes,
                        r.peak_rss_bytes.map_or_else(|| "n/a".into(), |b| b.to_string()),
                        seconds_or_paid(r.startup_seconds),
                        seconds_or_paid(r.setup_seconds)
                    );
                })
                .with_context(|| format!("bench target {}", target_name(target)))?;
            if let Some(e) = save_error {
                return Err(e.into());
            }
            rows = provernode_bench::merge(rows, &measured);
        }
    }
    if let Some(path) = &args.markdown {
        // Only the marked table is rewritten; the prose around it stays.
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let text = provernode_bench::splice(existing.as_deref(), &provernode_bench::markdown(&rows));
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A fixed cost for the tab-separated output: `paid` where an earlier
/// target of this run paid it.
fn seconds_or_paid(s: Option<f64>) -> String {
    s.map_or_else(|| "paid".into(), |s| format!("{s:.3}"))
}

fn target_name(t: &Target) -> String {
    match &t.kind {
        Some(k) => format!("{}:{k}", t.backend),
        None => t.backend.clone(),
    }
}
