//! Backends side by side: the same guest inputs proved and verified by each
//! backend, with the figures an operator chooses a backend by (cycles, prove
//! time, verify time, proof size, peak memory, start-up and set-up costs).
//!
//! Everything runs in this process, one target after another, so start-up
//! and set-up are measured as a warm worker pays them: once per process and
//! once per program. Peak memory is the process's high-water mark, reset
//! before each proof (Linux `clear_refs`), so it includes what the backend
//! keeps resident (SP1's prover) as a worker process would.
//!
//! Results are rows of JSON kept in a file and merged by (backend, kind,
//! settings, program, input), so a long table can be filled in several
//! runs; the Markdown table is rendered from that file. A row records the
//! environment variables that tune its backend (segment size, worker
//! pools), so a run with other settings adds rows beside the defaults'
//! instead of replacing them.
//!
//! Architecture invariant: the bench only calls the `Backend` trait through
//! the registry; it never reaches into a backend's crate.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use provernode_backends::Registry;
use provernode_core::{Abi, BackendError, Limits, ProveOptions};
use serde::{Deserialize, Serialize};

/// One guest input to prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub program: String,
    /// How the input reads in the table (`n=10`, `rounds=1000`).
    pub input_label: String,
    pub input: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    UnknownBackend(#[from] provernode_backends::UnknownBackend),
    #[error(transparent)]
    Unavailable(#[from] provernode_core::Unavailable),
    #[error("unknown job set `{0}`; use `standard` or `quick`")]
    UnknownJobSet(String),
    #[error("cannot encode the input of {program} {label}: {reason}")]
    Input {
        program: String,
        label: String,
        reason: String,
    },
    /// `job` reads like `risc0 (composite) on fibonacci n=10`.
    #[error("{job}: {source}")]
    Backend {
        job: String,
        #[source]
        source: Box<BackendError>,
    },
    #[error("{job}: its output differs from trace's ({output}, trace {expected})")]
    OutputDiffers {
        job: String,
        output: String,
        expected: String,
    },
    #[error("the results file {path}: {reason}")]
    Results { path: String, reason: String },
}

fn job(program: &str, label: String, args: provernode_guests::InputArgs) -> Result<Job, BenchError> {
    let guest = provernode_guests::find(program).ok_or_else(|| BenchError::Input {
        program: program.into(),
        label: label.clone(),
        reason: "no such built-in guest".into(),
    })?;
    let input = guest.encode_input(&args).map_err(|e| BenchError::Input {
        program: program.into(),
        label: label.clone(),
        reason: e.to_string(),
    })?;
    Ok(Job {
        program: program.into(),
        input_label: label,
        input,
    })
}

/// The jobs of a named set: `standard` (the table in docs/backends.md:
/// fibonacci n = 10, 50, 100, 10^4, 10^5 and sha256-chain 10 and 1,000
/// rounds) or `quick` (fibonacci n = 10 and sha256-chain 10 rounds).
pub fn jobs(set: &str) -> Result<Vec<Job>, BenchError> {
    let (fib, rounds): (&[u32], &[u32]) = match set {
        "standard" => (&[10, 50, 100, 10_000, 100_000], &[10, 1000]),
        "quick" => (&[10], &[10]),
        other => return Err(BenchError::UnknownJobSet(other.into())),
    };
    let mut out = Vec::new();
    for &n in fib {
        let args = provernode_guests::InputArgs {
            n: Some(n),
            ..Default::default()
        };
        out.push(job("fibonacci", format!("n={n}"), args)?);
    }
    for &r in rounds {
        let args = provernode_guests::InputArgs {
            rounds: Some(r),
            ..Default::default()
        };
        out.push(job("sha256-chain", format!("rounds={r}"), args)?);
    }
    Ok(out)
}

/// A backend and one of its proof kinds (`risc0:succinct`); no kind means
/// the backend's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub backend: String,
    pub kind: Option<String>,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (backend, kind) = match s.split_once(':') {
            Some((b, k)) => (b, Some(k.to_owned())),
            None => (s, None),
        };
        if backend.is_empty() || kind.as_deref() == Some("") {
            return Err(format!(
                "{s:?} is not BACKEND or BACKEND:KIND (for example risc0:succinct)"
            ));
        }
        Ok(Target {
            backend: backend.into(),
            kind,
        })
    }
}

/// One measured (backend, kind, program, input).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub backend: String,
    pub backend_version: String,
    pub proof_kind: String,
    pub program: String,
    pub input: String,
    pub cycles: u64,
    pub prove_seconds: f64,
    pub verify_seconds_avg: f64,
    pub verify_runs: u32,
    /// The whole envelope as `provernode prove` writes it.
    pub proof_bytes: u64,
    /// The process's peak resident memory during the proof; `None` where
    /// the platform cannot reset the high-water mark.
    pub peak_rss_bytes: Option<u64>,
    /// The backend's start-up in this run (paid once per process); `None`
    /// where an earlier target of the same run (another proof kind of this
    /// backend) had paid it, so this one could not measure it.
    pub startup_seconds: Option<f64>,
    /// This program's set-up in this run (paid once per program per
    /// process); `None` where an earlier target of the run had paid it.
    pub setup_seconds: Option<f64>,
    /// Where it was measured: CPU count and model, and the machine's memory
    /// (see [`host`]). Rows of different machines sit side by side.
    pub host: String,
    /// The environment variables that tune this backend, as the run saw
    /// them (see [`settings_from`]); empty means the backend's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// What identifies a measurement: a later run replaces a row with the same key.
type RowKey = (String, String, BTreeMap<String, String>, String, String, String);

impl Row {
    fn key(&self) -> RowKey {
        (
            self.backend.clone(),
            self.proof_kind.clone(),
            self.settings.clone(),
            self.program.clone(),
            self.input.clone(),
            self.host.clone(),
        )
    }
}

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
fn seconds(s: f64) -> f64 {
    (s * 1e9).round() / 1e9
}

/// Clears the process's peak-RSS mark; false where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_rss_bytes() -> Option<u64> {
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
fn describe_host(cpus: usize, cpuinfo: &str, meminfo: &str) -> String {
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

/// Reads a results file; a missing file is an empty one.
pub fn load(path: &std::path::Path) -> Result<Vec<Row>, BenchError> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BenchError::Results {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BenchError::Results {
            path: path.display().to_string(),
            reason: format!("not a bench results file ({e}); move it away or pick another --results path"),
        }),
    }
}

/// `old` with every row of `new` added, replacing rows with the same
/// (backend, kind, settings, program, input, host).
pub fn merge(old: Vec<Row>, new: &[Row]) -> Vec<Row> {
    let mut out: Vec<Row> = old
        .into_iter()
        .filter(|o| !new.iter().any(|n| n.key() == o.key()))
        .collect();
    out.extend_from_slice(new);
    out
}

/// Writes a results file atomically.
pub fn save(path: &std::path::Path, rows: &[Row]) -> Result<(), BenchError> {
    let err = |reason: String| BenchError::Results {
        path: path.display().to_string(),
        reason,
    };
    let json = serde_json::to_vec_pretty(rows).map_err(|e| err(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

/// Table order: program, input size (n=100 after n=50), backend, kind,
/// settings (then the machine, see [`Machines`]).
fn order(row: &Row) -> (String, u64, usize, String, BTreeMap<String, String>) {
    let backend = ["trace", "risc0", "sp1"]
        .iter()
        .position(|b| *b == row.backend)
        .unwrap_or(usize::MAX);
    let size = row
        .input
        .split_once('=')
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(u64::MAX);
    (
        row.program.clone(),
        size,
        backend,
        row.proof_kind.clone(),
        row.settings.clone(),
    )
}

/// The non-default settings of a table, lettered A, B, … in a stable
/// order: a kind cell says `composite (settings A)` and a legend under the
/// tables lists each, so a long list (SP1's worker pools) does not widen
/// every row.
struct SettingsLegend<'a>(Vec<&'a BTreeMap<String, String>>);

impl<'a> SettingsLegend<'a> {
    fn of(rows: &[&'a Row]) -> Self {
        let distinct: BTreeSet<&BTreeMap<String, String>> = rows
            .iter()
            .map(|r| &r.settings)
            .filter(|s| !s.is_empty())
            .collect();
        SettingsLegend(distinct.into_iter().collect())
    }

    fn letter(i: usize) -> String {
        // 26 letters, then A1, B1, …: far more variants than a table holds.
        let (round, at) = (i / 26, i % 26);
        let letter = char::from(b'A' + at as u8);
        if round == 0 {
            letter.to_string()
        } else {
            format!("{letter}{round}")
        }
    }

    fn kind(&self, proof_kind: &str, settings: &BTreeMap<String, String>) -> String {
        match self.0.iter().position(|s| *s == settings) {
            Some(i) => format!("{proof_kind} (settings {})", Self::letter(i)),
            None => proof_kind.to_owned(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (i, settings) in self.0.iter().enumerate() {
            let list: Vec<String> = settings.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
            out.push_str(&format!("\nSettings {}: {}.\n", Self::letter(i), list.join(", ")));
        }
        out
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn human_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// Seconds (as `f64` bits) measured in one or more runs: the one value, or
/// the range and how many runs; none where another proof kind paid it.
fn seconds_range(bits: &BTreeSet<u64>) -> String {
    let mut values: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => "paid by another kind".into(),
        [one] => human_seconds(*one),
        [low, .., high] => {
            let (low, high) = (human_seconds(*low), human_seconds(*high));
            // Runs that differ below the display precision read as one value.
            if low == high {
                format!("{low} ({} runs)", values.len())
            } else {
                format!("{low}–{high} ({} runs)", values.len())
            }
        }
    }
}

/// The machines of a table, numbered by how many of its rows each measured
/// (the machine of most rows is 1; a tie goes by name), so adding a few rows
/// from another machine does not renumber the rest. With one machine the
/// table says so under it; with several, a `machine` column says where each
/// row was measured and a legend says what each machine is.
struct Machines<'a>(Vec<&'a str>);

impl<'a> Machines<'a> {
    fn of(rows: &[&'a Row]) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows {
            *counts.entry(r.host.as_str()).or_default() += 1;
        }
        let mut hosts: Vec<(&str, usize)> = counts.into_iter().collect();
        hosts.sort_by_key(|(host, count)| (std::cmp::Reverse(*count), *host));
        Machines(hosts.into_iter().map(|(host, _)| host).collect())
    }

    fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// The extra header cells, separator cells and row cell: empty for one machine.
    fn header(&self) -> &'static str {
        if self.several() {
            " machine |"
        } else {
            ""
        }
    }

    fn separator(&self) -> &'static str {
        if self.several() {
            "---|"
        } else {
            ""
        }
    }

    /// The machine's place in the legend (every row's host is in it).
    fn index(&self, host: &str) -> usize {
        self.0.iter().position(|h| *h == host).unwrap_or(usize::MAX)
    }

    fn cell(&self, index: usize) -> String {
        if self.several() {
            format!(" {} |", index.saturating_add(1))
        } else {
            String::new()
        }
    }

    fn render(&self) -> String {
        match self.0.as_slice() {
            [] => String::new(),
            [one] => format!("\nMeasured on: {one}.\n"),
            several => several
                .iter()
                .enumerate()
                .map(|(i, host)| format!("\nMachine {}: {host}.\n", i + 1))
                .collect(),
        }
    }
}

/// The results as Markdown: one table of proofs, one of fixed costs.
pub fn markdown(rows: &[Row]) -> String {
    let mut rows: Vec<&Row> = rows.iter().collect();
    let machines = Machines::of(&rows);
    rows.sort_by_key(|r| (order(r), machines.index(&r.host)));
    let legend = SettingsLegend::of(&rows);
    let mut out = String::new();
    out.push_str(&format!(
        "| program | input | backend | kind |{} cycles | prove | verify (avg) | proof size | peak memory |\n",
        machines.header()
    ));
    out.push_str(&format!(
        "|---|---|---|---|{}---:|---:|---:|---:|---:|\n",
        machines.separator()
    ));
    for r in &rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |{} {} | {} | {} (×{}) | {} | {} |\n",
            r.program,
            r.input,
            r.backend,
            legend.kind(&r.proof_kind, &r.settings),
            machines.cell(machines.index(&r.host)),
            r.cycles,
            human_seconds(r.prove_seconds),
            human_seconds(r.verify_seconds_avg),
            r.verify_runs,
            human_bytes(r.proof_bytes),
            r.peak_rss_bytes.map_or_else(|| "n/a".into(), human_bytes),
        ));
    }
    // Fixed costs: one line per (backend, kind, settings, machine, program),
    // over every run that paid them (rows of one run share its figures):
    // start-up varies from run to run, so the table gives the range.
    type Measured = (BTreeSet<u64>, BTreeSet<u64>);
    type FixedKey<'a> = (
        usize,
        &'a str,
        &'a str,
        &'a BTreeMap<String, String>,
        usize,
        &'a str,
    );
    let mut fixed: BTreeMap<FixedKey, Measured> = BTreeMap::new();
    for r in &rows {
        let key = (
            order(r).2,
            r.backend.as_str(),
            r.proof_kind.as_str(),
            &r.settings,
            machines.index(&r.host),
            r.program.as_str(),
        );
        let (startups, setups) = fixed.entry(key).or_default();
        startups.extend(r.startup_seconds.map(f64::to_bits));
        setups.extend(r.setup_seconds.map(f64::to_bits));
    }
    out.push_str(&format!(
        "\n| backend | kind |{} program | start-up (per process) | set-up (per program) |\n",
        machines.header()
    ));
    out.push_str(&format!("|---|---|{}---|---:|---:|\n", machines.separator()));
    for ((_, backend, kind, settings, machine, program), (startups, setups)) in &fixed {
        out.push_str(&format!(
            "| {backend} | {} |{} {program} | {} | {} |\n",
            legend.kind(kind, settings),
            machines.cell(*machine),
            seconds_range(startups),
            seconds_range(setups)
        ));
    }
    out.push_str(&legend.render());
    out.push_str(&machines.render());
    out
}

/// Marks the part of a document that `provernode bench --markdown` rewrites.
pub const TABLE_BEGIN: &str = "<!-- provernode bench: begin (generated; edit around it) -->";
pub const TABLE_END: &str = "<!-- provernode bench: end -->";

/// `document` with the text between the markers replaced by `table`; the
/// table alone, between markers, when the document has none (a new file).
pub fn splice(document: Option<&str>, table: &str) -> String {
    let block = format!("{TABLE_BEGIN}\n{table}{TABLE_END}\n");
    let Some(doc) = document else {
        return block;
    };
    match (doc.find(TABLE_BEGIN), doc.find(TABLE_END)) {
        (Some(a), Some(b)) if a < b => {
            let after = &doc[b + TABLE_END.len()..];
            format!(
                "{}{block}{}",
                &doc[..a],
                after.strip_prefix('\n').unwrap_or(after)
            )
        }
        _ => format!("{doc}\n{block}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_the_form() {
        assert_eq!(
            "risc0:succinct".parse::<Target>(),
            Ok(Target {
                backend: "risc0".into(),
                kind: Some("succinct".into())
            })
        );
        assert_eq!("trace".parse::<Target>().unwrap().kind, None);
        assert!("risc0:".parse::<Target>().unwrap_err().contains("BACKEND:KIND"));
    }

    #[test]
    fn the_standard_set_is_the_issue_s_table() {
        let labels: Vec<String> = jobs("standard")
            .unwrap()
            .iter()
            .map(|j| format!("{} {}", j.program, j.input_label))
            .collect();
        assert_eq!(
            labels,
            [
                "fibonacci n=10",
                "fibonacci n=50",
                "fibonacci n=100",
                "fibonacci n=10000",
                "fibonacci n=100000",
                "sha256-chain rounds=10",
                "sha256-chain rounds=1000"
            ]
        );
        assert!(matches!(jobs("huge"), Err(BenchError::UnknownJobSet(_))));
    }

    #[test]
    fn trace_rows_are_measured_verified_merged_and_rendered() {
        let registry = Registry::default();
        let target: Target = "trace".parse().unwrap();
        let mut seen = 0;
        let mut paid = Paid::default();
        let rows = run_target(&registry, &target, &jobs("quick").unwrap(), 3, &mut paid, |_| {
            seen += 1
        })
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(rows[0].program, "fibonacci");
        assert!(rows
            .iter()
            .all(|r| r.cycles > 0 && r.proof_bytes > 0 && r.verify_runs == 3));

        let mut again = rows[0].clone();
        again.prove_seconds = 99.0;
        let merged = merge(rows.clone(), std::slice::from_ref(&again));
        assert_eq!(merged.len(), 2, "same key replaces");
        assert!(merged.iter().any(|r| r.prove_seconds == 99.0));

        let dir = std::env::temp_dir().join(format!("pn-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        assert!(load(&path).unwrap().is_empty());
        save(&path, &merged).unwrap();
        assert_eq!(load(&path).unwrap(), merged);
        std::fs::write(&path, "garbage").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("not a bench results file"));
        std::fs::remove_dir_all(&dir).unwrap();

        let md = markdown(&merged);
        assert!(
            md.contains("| fibonacci | n=10 | trace | execution-record |"),
            "{md}"
        );
        assert!(md.contains("start-up (per process)"));
    }

    #[test]
    fn fixed_costs_paid_by_an_earlier_target_are_not_reported_as_measured() {
        let registry = Registry::default();
        let target: Target = "trace".parse().unwrap();
        let quick = jobs("quick").unwrap();
        let mut paid = Paid::default();
        let first = run_target(&registry, &target, &quick, 1, &mut paid, |_| {}).unwrap();
        assert!(first
            .iter()
            .all(|r| r.startup_seconds.is_some() && r.setup_seconds.is_some()));
        let again = run_target(&registry, &target, &quick, 1, &mut paid, |_| {}).unwrap();
        assert!(again
            .iter()
            .all(|r| r.startup_seconds.is_none() && r.setup_seconds.is_none()));
        let md = markdown(&again);
        assert!(
            md.contains(
                "| trace | execution-record | fibonacci | paid by another kind | paid by another kind |"
            ),
            "{md}"
        );

        // Runs that measured different start-ups show the range.
        let mut slow = first[0].clone();
        slow.input = "n=50".into();
        slow.startup_seconds = Some(240.0);
        let mut fast = first[0].clone();
        fast.startup_seconds = Some(118.0);
        let md = markdown(&[fast.clone(), slow]);
        assert!(md.contains("| 118.0 s–240.0 s (2 runs) |"), "{md}");

        // Runs that differ only below the display precision read as one value.
        let mut close = fast.clone();
        close.input = "n=50".into();
        close.startup_seconds = Some(118.01);
        let md = markdown(&[fast, close]);
        assert!(md.contains("| 118.0 s (2 runs) |"), "{md}");
    }

    #[test]
    fn rows_under_other_settings_sit_beside_the_defaults_and_say_so() {
        let vars = [
            ("PROVERNODE_RISC0_SEGMENT_PO2", "18"),
            ("RISC0_DEV_MODE", "0"),
            ("SP1_WORKER_NUM_CORE_WORKERS", "1"),
            ("SP1_PRIVATE_KEY", "0xsecret"),
            ("ELEMENT_THRESHOLD", "201326592"),
            ("RAYON_NUM_THREADS", "2"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let risc0 = settings_from("risc0", vars.clone());
        assert_eq!(
            risc0.keys().collect::<Vec<_>>(),
            [
                "PROVERNODE_RISC0_SEGMENT_PO2",
                "RAYON_NUM_THREADS",
                "RISC0_DEV_MODE"
            ]
        );
        let sp1 = settings_from("sp1", vars.clone());
        assert_eq!(
            sp1.keys().collect::<Vec<_>>(),
            [
                "ELEMENT_THRESHOLD",
                "RAYON_NUM_THREADS",
                "SP1_WORKER_NUM_CORE_WORKERS"
            ],
            "no key or credential goes into a results file"
        );
        assert!(settings_from("trace", vars).keys().eq(["RAYON_NUM_THREADS"]));

        let registry = Registry::default();
        let mut paid = Paid::default();
        let quick = jobs("quick").unwrap();
        let mut defaults =
            run_target(&registry, &"trace".parse().unwrap(), &quick, 1, &mut paid, |_| {}).unwrap();
        // Whatever this test's own environment holds, these stand for defaults.
        defaults.iter_mut().for_each(|r| r.settings.clear());
        let mut tuned = defaults[0].clone();
        tuned.settings = BTreeMap::from([("RAYON_NUM_THREADS".to_owned(), "1".to_owned())]);
        tuned.prove_seconds = 7.0;
        let merged = merge(defaults.clone(), std::slice::from_ref(&tuned));
        assert_eq!(merged.len(), defaults.len() + 1, "other settings add a row");
        let md = markdown(&merged);
        assert!(
            md.contains("| fibonacci | n=10 | trace | execution-record | ")
                && md.contains(&format!(
                    "| fibonacci | n=10 | trace | execution-record (settings A) | {} | 7.0 s |",
                    tuned.cycles
                )),
            "{md}"
        );
        assert!(
            md.contains("| trace | execution-record (settings A) | fibonacci |")
                && md.contains("\nSettings A: `RAYON_NUM_THREADS=1`.\n"),
            "{md}"
        );

        // Files written before rows had settings still load, as defaults.
        let mut old = serde_json::to_value(&defaults[0]).unwrap();
        assert!(old.get("settings").is_none(), "no settings, no field");
        old.as_object_mut().unwrap().remove("settings");
        let back: Row = serde_json::from_value(old).unwrap();
        assert!(back.settings.is_empty());
    }

    #[test]
    fn a_host_names_its_cpus_and_memory() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 9454 48-Core Processor\nflags\t: fpu\n";
        let meminfo = "MemTotal:       24598548 kB\nMemFree:        1 kB\n";
        assert_eq!(
            describe_host(16, cpuinfo, meminfo),
            "16 × AMD EPYC 9454 48-Core Processor, 23 GiB"
        );
        assert_eq!(describe_host(2, "", ""), "2 × unknown CPU");
        assert!(host().contains(" × "));
    }

    #[test]
    fn rows_from_other_machines_sit_beside_and_say_where() {
        let registry = Registry::default();
        let mut paid = Paid::default();
        let quick = jobs("quick").unwrap();
        let mut here =
            run_target(&registry, &"trace".parse().unwrap(), &quick, 1, &mut paid, |_| {}).unwrap();
        here.iter_mut()
            .for_each(|r| r.host = "2 × Small CPU, 23 GiB".into());
        let md = markdown(&here);
        assert!(!md.contains("machine"), "one machine needs no column: {md}");
        assert!(md.ends_with("\nMeasured on: 2 × Small CPU, 23 GiB.\n"), "{md}");

        let mut there = here[0].clone();
        there.host = "16 × Big CPU, 125 GiB".into();
        there.prove_seconds = 3.0;
        there.startup_seconds = Some(40.0);
        let merged = merge(here.clone(), std::slice::from_ref(&there));
        assert_eq!(merged.len(), here.len() + 1, "another machine adds a row");
        let md = markdown(&merged);
        assert!(
            md.contains("| program | input | backend | kind | machine | cycles |")
                && md.contains(&format!(
                    "| fibonacci | n=10 | trace | execution-record | 1 | {} |",
                    here[0].cycles
                ))
                && md.contains(&format!(
                    "| fibonacci | n=10 | trace | execution-record | 2 | {} | 3.0 s |",
                    there.cycles
                )),
            "{md}"
        );
        assert!(
            md.contains("| backend | kind | machine | program |")
                && md.contains("| trace | execution-record | 2 | fibonacci | 40.0 s |"),
            "{md}"
        );
        assert!(
            md.contains("\nMachine 1: 2 × Small CPU, 23 GiB.\n")
                && md.contains("\nMachine 2: 16 × Big CPU, 125 GiB.\n")
                && !md.contains("Measured on"),
            "{md}"
        );
        // A later run on the second machine replaces only that machine's row.
        let mut again = there.clone();
        again.prove_seconds = 2.0;
        let merged = merge(merged, std::slice::from_ref(&again));
        assert_eq!(merged.len(), here.len() + 1);
        assert!(merged.iter().any(|r| r.prove_seconds == 2.0));
        assert!(!merged.iter().any(|r| r.prove_seconds == 3.0));
    }

    #[test]
    fn measured_seconds_read_back_from_the_results_file_bit_for_bit() {
        // Averages of many runs, as `verify_seconds_avg` computes them.
        for runs in 1..200u32 {
            for total in [0.1183525, 0.0947744, 1.5, 27.637_492_113, 1966.8] {
                let value = seconds(total / f64::from(runs));
                let text = serde_json::to_string(&value).unwrap();
                let back: f64 = serde_json::from_str(&text).unwrap();
                assert_eq!(back.to_bits(), value.to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn splice_rewrites_only_the_marked_table() {
        let fresh = splice(None, "| t |\n");
        assert!(fresh.starts_with(TABLE_BEGIN) && fresh.contains("| t |"));
        let doc = format!("# Title\n\ntext\n\n{fresh}\nmore text\n");
        let again = splice(Some(&doc), "| u |\n");
        assert!(again.contains("| u |") && !again.contains("| t |"), "{again}");
        assert!(
            again.starts_with("# Title\n\ntext\n\n") && again.ends_with("\nmore text\n"),
            "{again}"
        );
        let unmarked = splice(Some("# Doc\n"), "| v |\n");
        assert!(unmarked.starts_with("# Doc\n") && unmarked.contains("| v |"));
    }

    #[test]
    fn the_committed_table_is_the_committed_results_rendered() {
        // docs/backends.md is generated from docs/backends.json; a hand edit
        // of one without the other would publish figures nobody measured.
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let rows = load(&docs.join("backends.json")).unwrap();
        assert!(!rows.is_empty());
        let page = std::fs::read_to_string(docs.join("backends.md")).unwrap();
        assert_eq!(
            splice(Some(&page), &markdown(&rows)),
            page,
            "docs/backends.md is out of date: run `provernode bench --results docs/backends.json --markdown docs/backends.md --render-only`"
        );
    }

    #[test]
    fn an_unknown_backend_is_refused_with_the_known_ones() {
        let err = run_target(
            &Registry::default(),
            &"nexus".parse().unwrap(),
            &[],
            1,
            &mut Paid::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("trace, risc0, sp1"), "{err}");
    }
}
