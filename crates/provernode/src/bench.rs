//! `provernode bench`: wiring for `provernode-bench` (targets, files, output).

use anyhow::{bail, Context, Result};
use provernode_backends::Registry;
use provernode_bench::{BatchRow, Row, Target};

use crate::cli::BenchArgs;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.render_only && args.markdown.is_none() && args.plots.is_none() {
        bail!("--render-only renders into --markdown FILE or --plots DIR; give one");
    }
    let mut rows: Vec<Row> = match &args.results {
        Some(path) => provernode_bench::load(path)?,
        None => Vec::new(),
    };
    let mut batches: Vec<BatchRow> = match &args.batch_results {
        Some(path) => provernode_bench::load_batches(path)?,
        None => Vec::new(),
    };
    if !args.render_only && !args.batches.is_empty() {
        batches = run_batches(args, batches)?;
    } else if !args.render_only {
        let registry = Registry::default();
        let targets = targets(args, &registry);
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
        // Jobs done of all, and the time so far, on a terminal (stderr);
        // rows print through it so the two do not garble each other.
        let progress = {
            use std::io::IsTerminal;
            let bar = if std::io::stderr().is_terminal() {
                indicatif::ProgressBar::new((jobs.len() * targets.len()) as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} jobs, {elapsed} {msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            bar
        };
        println!("backend\tkind\tprogram\tinput\tcycles\tprove_s\tverify_s_avg\tproof_bytes\tpeak_rss_bytes\tstartup_s\tsetup_s");
        for target in &targets {
            progress.set_message(format!("proving on {}", target_name(target)));
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
                    progress.inc(1);
                    progress.suspend(|| {
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
                        )
                    });
                })
                .with_context(|| format!("bench target {}", target_name(target)))?;
            if let Some(e) = save_error {
                return Err(e.into());
            }
            rows = provernode_bench::merge(rows, &measured);
        }
        progress.finish_and_clear();
    }
    if let Some(path) = &args.markdown {
        // Only the marked table is rewritten; the prose around it stays.
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut text = provernode_bench::splice(existing.as_deref(), &provernode_bench::markdown(&rows));
        if !batches.is_empty() {
            text = provernode_bench::splice_batches(Some(&text), &provernode_bench::batch_markdown(&batches));
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if !rows.is_empty() {
            provernode_bench::plot_prove_time(&rows, &dir.join("prove-time-vs-cycles.svg"))?;
        }
        if !batches.is_empty() {
            provernode_bench::plot_aggregate_cost(&batches, &dir.join("aggregate-cost-vs-n.svg"))?;
        }
    }
    Ok(())
}

/// Measures `--batch` sizes on every target, saving after each row.
fn run_batches(args: &BenchArgs, mut batches: Vec<BatchRow>) -> Result<Vec<BatchRow>> {
    let registry = Registry::default();
    let targets = targets(args, &registry);
    eprintln!(
        "bench: batches of {:?} on {} target(s), on {}",
        args.batches,
        targets.len(),
        provernode_bench::host()
    );
    println!("backend\tkind\tN\tinner_prove_s\tinner_verify_s\tinner_bytes\taggregate_prove_s\taggregate_verify_s\taggregate_bytes\taggregate_cycles\tpeak_rss_bytes");
    for target in &targets {
        let mut save_error = None;
        let measured = provernode_bench::run_batches(&registry, target, &args.batches, |r| {
            batches = provernode_bench::merge_batches(std::mem::take(&mut batches), std::slice::from_ref(r));
            if let Some(path) = &args.batch_results {
                if let Err(e) = provernode_bench::save_batches(path, &batches) {
                    save_error.get_or_insert(e);
                }
            }
            println!(
                "{}\t{}\t{}\t{:.3}\t{:.6}\t{}\t{:.3}\t{:.6}\t{}\t{}\t{}",
                r.backend,
                r.proof_kind,
                r.n,
                r.inner_prove_seconds,
                r.inner_verify_seconds,
                r.inner_proof_bytes,
                r.aggregate_prove_seconds,
                r.aggregate_verify_seconds,
                r.aggregate_proof_bytes,
                r.aggregate_cycles,
                r.aggregate_peak_rss_bytes
                    .map_or_else(|| "n/a".into(), |b| b.to_string()),
            );
        })
        .with_context(|| format!("bench batches on {}", target_name(target)))?;
        if let Some(e) = save_error {
            return Err(e.into());
        }
        batches = provernode_bench::merge_batches(batches, &measured);
    }
    Ok(batches)
}

/// A fixed cost for the tab-separated output: `paid` where an earlier
/// target of this run paid it.
fn seconds_or_paid(s: Option<f64>) -> String {
    s.map_or_else(|| "paid".into(), |s| format!("{s:.3}"))
}

/// The targets asked for, or every available backend with its default kind.
fn targets(args: &BenchArgs, registry: &Registry) -> Vec<Target> {
    if !args.targets.is_empty() {
        return args.targets.clone();
    }
    registry
        .available()
        .map(|b| Target {
            backend: b.name().into(),
            kind: None,
        })
        .collect()
}

fn target_name(t: &Target) -> String {
    match &t.kind {
        Some(k) => format!("{}:{k}", t.backend),
        None => t.backend.clone(),
    }
}
