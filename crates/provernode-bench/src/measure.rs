//! Measuring: one target's jobs proved and verified in this process, with
//! the clock, the process's peak memory and the host described.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use provernode_backends::Registry;
use provernode_core::{Abi, BackendError, Limits, ProveOptions};

use crate::{BenchError, Job, Row, Target};

/// Which environment variables tune a backend's speed or memory: our own
/// knobs and those its prover reads itself (SP1's `SP1_WORKER_*` pools and
/// `ELEMENT_THRESHOLD`; rayon's thread count for every backend).
fn tunes(backend: &str, name: &str) -> bool {
    // A results file is shared; keys and credentials never go into it.
    let secret = ["KEY", "TOKEN", "SECRET", "PASSWORD", "URL"]
        .iter()
        .any(|s| name.to_ascii_uppercase().contains(s));
    let ours = match backend {
        "risc0" => name.starts_with("PROVERNODE_RISC0_") || name.starts_with("RISC0_"),
        "sp1" => {
            name.starts_with("PROVERNODE_SP1_") || name.starts_with("SP1_") || name == "ELEMENT_THRESHOLD"
        }
        _ => false,
    };
    !secret && (ours || name == "RAYON_NUM_THREADS")
}

/// The settings a row of `backend` records, picked from `vars` (the
/// process's environment in a run).
pub fn settings_from(
    backend: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(name, _)| tunes(backend, name))
        .collect()
}

/// Seconds rounded to the nanosecond: finer digits are noise, and a value
/// with at most nine decimals reads back from the JSON file bit for bit
/// (an average's 17 significant digits did not always: serde_json parses
/// long decimals to within one ulp, so a saved row could differ from the
/// measured one and count as a second run in the fixed-cost ranges).
pub(crate) fn seconds(s: f64) -> f64 {
    (s * 1e9).round() / 1e9
}

/// Clears the process's peak-RSS mark; false where that is not possible.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU count and model, and memory, so a table says what it was measured
/// on: the memory decides whether a proof fits at all (SP1's large ones).
pub fn host() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    describe_host(cpus, &cpuinfo, &meminfo)
}

/// [`host`] from the CPU count and the text of `/proc/cpuinfo` and
/// `/proc/meminfo`: `2 × Intel(R) Xeon(R) Processor, 23 GiB`.
pub(crate) fn describe_host(cpus: usize, cpuinfo: &str, meminfo: &str) -> String {
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let memory_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok());
    match memory_kib {
        Some(kib) => format!("{cpus} × {model}, {} GiB", (kib as f64 / 1048576.0).round()),
        None => format!("{cpus} × {model}"),
    }
}

/// The fixed costs already paid in this process: a backend is started once
/// and keeps each program's keys for every proof kind, so a later target of
/// the same backend cannot measure them again.
#[derive(Debug, Default)]
pub struct Paid {
    started: BTreeSet<String>,
    set_up: BTreeSet<(String, String)>,
}

/// Proves and verifies every job on one target, calling `on_row` as each
/// finishes (a long run reports as it goes). Every proof is checked: it
/// must verify, and its public output must equal trace's. `paid` carries
/// what earlier targets of this process already paid.
pub fn run_target(
    registry: &Registry,
    target: &Target,
    jobs: &[Job],
    verify_runs: u32,
    paid: &mut Paid,
    mut on_row: impl FnMut(&Row),
) -> Result<Vec<Row>, BenchError> {
    let backend = registry.get(&target.backend)?;
    backend.available()?;
    let kind = target
        .kind
        .clone()
        .or_else(|| backend.proof_kinds().first().map(|k| (*k).to_owned()))
        .unwrap_or_default();
    let trace = registry.get("trace")?;
    let host = host();
    let settings = settings_from(&target.backend, std::env::vars());
    let describe = |job: &Job| {
        format!(
            "{} ({kind}) on {} {}",
            target.backend, job.program, job.input_label
        )
    };
    let fail = |job: &Job, source: BackendError| BenchError::Backend {
        job: describe(job),
        source: Box::new(source),
    };

    let started = Instant::now();
    if let Some(first) = jobs.first() {
        backend.warm_up().map_err(|e| fail(first, e))?;
    }
    let startup_seconds = paid
        .started
        .insert(target.backend.clone())
        .then(|| seconds(started.elapsed().as_secs_f64()));

    let mut setups: BTreeMap<String, Option<f64>> = BTreeMap::new();
    let mut rows = Vec::new();
    for job in jobs {
        let guest = provernode_guests::find(&job.program).ok_or_else(|| BenchError::Input {
            program: job.program.clone(),
            label: job.input_label.clone(),
            reason: "no such built-in guest".into(),
        })?;
        let abi = backend.abis().first().copied().unwrap_or(Abi::Risc0);
        let program = guest.program(abi);
        if !setups.contains_key(&job.program) {
            let started = Instant::now();
            backend.set_up(&program).map_err(|e| fail(job, e))?;
            let first = paid.set_up.insert((target.backend.clone(), job.program.clone()));
            setups.insert(
                job.program.clone(),
                first.then(|| seconds(started.elapsed().as_secs_f64())),
            );
        }
        let expected = trace
            .execute(&program, &job.input, &Limits::default())
            .map_err(|e| fail(job, e))?
            .public_output;
        let options = ProveOptions {
            proof_kind: Some(kind.clone()),
            ..ProveOptions::default()
        };
        let can_reset = reset_peak_rss();
        let started = Instant::now();
        let envelope = backend
            .prove(&program, &job.input, &options)
            .map_err(|e| fail(job, e))?;
        let prove_seconds = seconds(started.elapsed().as_secs_f64());
        let peak = if can_reset { peak_rss_bytes() } else { None };
        if envelope.public_output != expected {
            return Err(BenchError::OutputDiffers {
                job: describe(job),
                output: hex::encode(&envelope.public_output),
                expected: hex::encode(&expected),
            });
        }
        // One untimed verification first (it may compute and cache keys),
        // then the timed runs.
        backend.verify(&envelope).map_err(|e| fail(job, e))?;
        let started = Instant::now();
        for _ in 0..verify_runs {
            backend.verify(&envelope).map_err(|e| fail(job, e))?;
        }
        let verify_seconds_avg = seconds(started.elapsed().as_secs_f64() / f64::from(verify_runs.max(1)));
        let proof_bytes = envelope.encode().map_err(|e| fail(job, e.into()))?.len() as u64;
        let row = Row {
            backend: target.backend.clone(),
            backend_version: envelope.backend_version.clone(),
            proof_kind: envelope.proof_kind.clone(),
            program: job.program.clone(),
            input: job.input_label.clone(),
            cycles: envelope.cycles,
            prove_seconds,
            verify_seconds_avg,
            verify_runs,
            proof_bytes,
            peak_rss_bytes: peak,
            startup_seconds,
            setup_seconds: setups.get(&job.program).copied().flatten(),
            host: host.clone(),
            settings: settings.clone(),
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}
