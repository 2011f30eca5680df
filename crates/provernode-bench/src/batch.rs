//! Batch rows: N inner proofs, then one aggregate of them (issue 21).
//!
//! Per backend, the inner job is proved `max(N)` times with distinct inputs
//! (fibonacci n = 10, 11, …, so every claim differs) in the kind that
//! backend's aggregates verify (RISC Zero succinct, SP1 compressed, trace's
//! execution record), each verified once untimed and once timed; then, for
//! each N, the first N are aggregated. A row holds what N separate proofs
//! cost (prove, verify, bytes) beside what the one aggregate costs (prove,
//! verify, bytes, peak memory), so the break-even N of verification reads
//! off the table.
//!
//! Rows where a size was too long to run are never invented: the renderer
//! adds **projections**, labelled as such, from two measured sizes of the
//! same backend (the cost of one more claim is their slope).

use std::collections::BTreeMap;
use std::time::Instant;

use provernode_backends::Registry;
use provernode_core::aggregate::AggregateInput;
use provernode_core::{BackendError, Limits, ProofEnvelope, ProveOptions};
use serde::{Deserialize, Serialize};

use crate::measure::{host, peak_rss_bytes, reset_peak_rss, seconds, settings_from};
use crate::render::{Machines, SettingsLegend};
use crate::{BenchError, Target};

/// The sizes the table shows for every backend (measured or projected).
pub const STANDARD_SIZES: [u32; 4] = [4, 8, 32, 64];

/// One measured batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    pub backend: String,
    pub backend_version: String,
    /// The kind of the inner proofs and of the aggregate.
    pub proof_kind: String,
    /// The inner job (`fibonacci n=10+i`).
    pub inner: String,
    pub n: u32,
    /// Proving the N inner proofs, one after another.
    pub inner_prove_seconds: f64,
    /// Verifying the N inner proofs separately.
    pub inner_verify_seconds: f64,
    pub inner_proof_bytes: u64,
    pub aggregate_prove_seconds: f64,
    pub aggregate_verify_seconds: f64,
    pub aggregate_proof_bytes: u64,
    pub aggregate_cycles: u64,
    /// The process's peak resident memory while proving the aggregate.
    pub aggregate_peak_rss_bytes: Option<u64>,
    pub host: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

type BatchKey = (String, String, BTreeMap<String, String>, String, u32, String);

impl BatchRow {
    fn key(&self) -> BatchKey {
        (
            self.backend.clone(),
            self.proof_kind.clone(),
            self.settings.clone(),
            self.inner.clone(),
            self.n,
            self.host.clone(),
        )
    }
}

/// `old` with every row of `new`, replacing rows with the same key.
pub fn merge_batches(old: Vec<BatchRow>, new: &[BatchRow]) -> Vec<BatchRow> {
    let mut out: Vec<BatchRow> = old
        .into_iter()
        .filter(|o| !new.iter().any(|n| n.key() == o.key()))
        .collect();
    out.extend_from_slice(new);
    out
}

pub fn load_batches(path: &std::path::Path) -> Result<Vec<BatchRow>, BenchError> {
    crate::results::load_rows(path, "batch results file", "--batch-results")
}

pub fn save_batches(path: &std::path::Path, rows: &[BatchRow]) -> Result<(), BenchError> {
    crate::results::save_rows(path, rows)
}

/// Measures `sizes` batches on `target` (its kind, or the backend's
/// aggregate kind). `on_row` sees each row as it is measured.
pub fn run_batches(
    registry: &Registry,
    target: &Target,
    sizes: &[u32],
    mut on_row: impl FnMut(&BatchRow),
) -> Result<Vec<BatchRow>, BenchError> {
    let backend = registry.get(&target.backend)?;
    backend.available()?;
    let kind = target
        .kind
        .clone()
        .or_else(|| backend.aggregate_proof_kind().map(str::to_owned))
        .or_else(|| backend.proof_kinds().first().map(|k| (*k).to_owned()))
        .unwrap_or_default();
    let abi = backend
        .abis()
        .first()
        .copied()
        .unwrap_or(provernode_core::Abi::Risc0);
    let fail = |what: String, source: BackendError| BenchError::Backend {
        job: format!("{} ({kind}) batch: {what}", target.backend),
        source: Box::new(source),
    };
    let fibonacci = provernode_guests::find("fibonacci")
        .ok_or_else(|| BenchError::UnknownJobSet("fibonacci".into()))?
        .program(abi);
    let aggregate = provernode_guests::find(provernode_guests::AGGREGATE)
        .ok_or_else(|| BenchError::UnknownJobSet(provernode_guests::AGGREGATE.into()))?
        .program(abi);
    let options = ProveOptions {
        proof_kind: Some(kind.clone()),
        ..ProveOptions::default()
    };
    backend.warm_up().map_err(|e| fail("start-up".into(), e))?;
    backend
        .set_up(&fibonacci)
        .map_err(|e| fail("fibonacci set-up".into(), e))?;
    backend
        .set_up(&aggregate)
        .map_err(|e| fail("aggregate set-up".into(), e))?;

    struct Inner {
        envelope: ProofEnvelope,
        prove_seconds: f64,
        verify_seconds: f64,
        bytes: u64,
    }
    let most = sizes.iter().copied().max().unwrap_or(0);
    let mut inner = Vec::with_capacity(most as usize);
    for i in 0..most {
        let n = 10 + i;
        let started = Instant::now();
        let envelope = backend
            .prove(&fibonacci, &n.to_le_bytes(), &options)
            .map_err(|e| fail(format!("inner proof {i} (fibonacci n={n})"), e))?;
        let prove_seconds = started.elapsed().as_secs_f64();
        backend
            .verify(&envelope)
            .map_err(|e| fail(format!("inner proof {i}"), e))?;
        let started = Instant::now();
        backend
            .verify(&envelope)
            .map_err(|e| fail(format!("inner proof {i}"), e))?;
        let verify_seconds = started.elapsed().as_secs_f64();
        let bytes = envelope
            .encode()
            .map_err(|e| fail("encode".into(), e.into()))?
            .len() as u64;
        inner.push(Inner {
            envelope,
            prove_seconds,
            verify_seconds,
            bytes,
        });
    }
    let host = host();
    let settings = settings_from(&target.backend, std::env::vars());
    let mut rows = Vec::new();
    for &n in sizes {
        let batch = &inner[..n as usize];
        let input = AggregateInput {
            inner: batch.iter().map(|i| i.envelope.clone()).collect(),
        }
        .encode()
        .map_err(|e| BenchError::Input {
            program: "aggregate".into(),
            label: format!("N={n}"),
            reason: e.to_string(),
        })?;
        let can_reset = reset_peak_rss();
        let started = Instant::now();
        let envelope = backend
            .prove(&aggregate, &input, &options)
            .map_err(|e| fail(format!("aggregate of {n}"), e))?;
        let aggregate_prove_seconds = seconds(started.elapsed().as_secs_f64());
        let peak = if can_reset { peak_rss_bytes() } else { None };
        backend
            .verify_within(&envelope, &Limits::default())
            .map_err(|e| fail(format!("aggregate of {n}"), e))?;
        let started = Instant::now();
        backend
            .verify(&envelope)
            .map_err(|e| fail(format!("aggregate of {n}"), e))?;
        let aggregate_verify_seconds = seconds(started.elapsed().as_secs_f64());
        let row = BatchRow {
            backend: target.backend.clone(),
            backend_version: envelope.backend_version.clone(),
            proof_kind: envelope.proof_kind.clone(),
            inner: "fibonacci n=10+i".into(),
            n,
            inner_prove_seconds: seconds(batch.iter().map(|i| i.prove_seconds).sum()),
            inner_verify_seconds: seconds(batch.iter().map(|i| i.verify_seconds).sum()),
            inner_proof_bytes: batch.iter().map(|i| i.bytes).sum(),
            aggregate_prove_seconds,
            aggregate_verify_seconds,
            aggregate_proof_bytes: envelope
                .encode()
                .map_err(|e| fail("encode".into(), e.into()))?
                .len() as u64,
            aggregate_cycles: envelope.cycles,
            aggregate_peak_rss_bytes: peak,
            host: host.clone(),
            settings: settings.clone(),
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// What one more claim costs an aggregate, from two measured sizes of one
/// (backend, kind, settings, inner, host): the slope between the smallest
/// and the largest measured N.
#[derive(Clone, Debug, PartialEq)]
pub struct PerClaim {
    pub prove_seconds: f64,
    pub bytes: f64,
    pub verify_seconds: f64,
    /// Below this many claims, N separate verifications are cheaper.
    pub break_even_n: Option<u32>,
}

/// Rows that differ only in N: backend, kind, settings, inner job, host.
type GroupKey = (String, String, BTreeMap<String, String>, String, String);

fn group(rows: &[BatchRow]) -> BTreeMap<GroupKey, Vec<&BatchRow>> {
    let mut groups: BTreeMap<_, Vec<&BatchRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((
                r.backend.clone(),
                r.proof_kind.clone(),
                r.settings.clone(),
                r.inner.clone(),
                r.host.clone(),
            ))
            .or_default()
            .push(r);
    }
    for g in groups.values_mut() {
        g.sort_by_key(|r| r.n);
    }
    groups
}

pub fn per_claim(group: &[&BatchRow]) -> Option<PerClaim> {
    let (first, last) = (group.first()?, group.last()?);
    if last.n <= first.n {
        return None;
    }
    let dn = f64::from(last.n - first.n);
    let verify_one = last.inner_verify_seconds / f64::from(last.n);
    let prove_seconds = (last.aggregate_prove_seconds - first.aggregate_prove_seconds) / dn;
    let verify_seconds = (last.aggregate_verify_seconds - first.aggregate_verify_seconds) / dn;
    // Verifying the aggregate costs a + b·N against N·v for N proofs.
    let fixed = first.aggregate_verify_seconds - verify_seconds * f64::from(first.n);
    let break_even_n =
        (verify_one > verify_seconds).then(|| (fixed / (verify_one - verify_seconds)).ceil().max(1.0) as u32);
    Some(PerClaim {
        prove_seconds,
        bytes: (last.aggregate_proof_bytes as f64 - first.aggregate_proof_bytes as f64) / dn,
        verify_seconds,
        break_even_n,
    })
}

/// The measured rows and, for the standard sizes nobody measured, rows
/// projected from the per-claim cost (marked `false`).
pub fn with_projections(rows: &[BatchRow]) -> Vec<(BatchRow, bool)> {
    let mut out = Vec::new();
    for g in group(rows).values() {
        out.extend(g.iter().map(|r| ((*r).clone(), true)));
        let (Some(per), Some(last)) = (per_claim(g), g.last()) else {
            continue;
        };
        let per_inner_prove = last.inner_prove_seconds / f64::from(last.n);
        let per_inner_verify = last.inner_verify_seconds / f64::from(last.n);
        let per_inner_bytes = last.inner_proof_bytes as f64 / f64::from(last.n);
        let per_cycles = if g.len() >= 2 {
            (last.aggregate_cycles as f64 - g[0].aggregate_cycles as f64) / f64::from(last.n - g[0].n)
        } else {
            0.0
        };
        for n in STANDARD_SIZES
            .into_iter()
            .filter(|n| !g.iter().any(|r| r.n == *n) && *n > last.n)
        {
            let more = f64::from(n - last.n);
            let mut p = (*last).clone();
            p.n = n;
            p.inner_prove_seconds = seconds(per_inner_prove * f64::from(n));
            p.inner_verify_seconds = seconds(per_inner_verify * f64::from(n));
            p.inner_proof_bytes = (per_inner_bytes * f64::from(n)) as u64;
            p.aggregate_prove_seconds = seconds(last.aggregate_prove_seconds + per.prove_seconds * more);
            p.aggregate_verify_seconds = seconds(last.aggregate_verify_seconds + per.verify_seconds * more);
            p.aggregate_proof_bytes = (last.aggregate_proof_bytes as f64 + per.bytes * more).max(0.0) as u64;
            p.aggregate_cycles = (last.aggregate_cycles as f64 + per_cycles * more) as u64;
            p.aggregate_peak_rss_bytes = None;
            out.push((p, false));
        }
    }
    out
}

pub const BATCH_BEGIN: &str = "<!-- provernode bench: batch table begin -->";
pub const BATCH_END: &str = "<!-- provernode bench: batch table end -->";

fn duration(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

fn size(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn memory(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / f64::from(1 << 30))
    } else {
        format!("{:.0} MiB", b as f64 / f64::from(1 << 20))
    }
}

/// The batch table and the per-claim summary, in Markdown.
pub fn batch_markdown(rows: &[BatchRow]) -> String {
    // Rows of several machines get a `machine` column and a legend, as in
    // the backend table; projections keep their own machine's number, since
    // a slope is taken within one machine's rows only (see `group`).
    let machines = Machines::of(rows.iter().map(|r| r.host.as_str()));
    // Rows under other settings (SP1's worker pools) say so, lettered as in
    // the backend table, with their own legend under this one.
    let legend = SettingsLegend::of(rows.iter().map(|r| &r.settings));
    let mut md = String::new();
    md.push_str(&format!(
        "| backend | kind |{} N | | N proofs: prove | N proofs: verify | N proofs: bytes | aggregate: prove | aggregate: verify | aggregate: bytes | aggregate: cycles | aggregate: peak memory |\n",
        machines.header()
    ));
    md.push_str(&format!(
        "|---|---|{}---|---|---|---|---|---|---|---|---|---|\n",
        machines.separator()
    ));
    let mut all = with_projections(rows);
    // cached: the key holds a formatted label, built once a row
    all.sort_by_cached_key(|(r, _)| {
        (
            ["trace", "risc0", "sp1"]
                .iter()
                .position(|b| *b == r.backend)
                .unwrap_or(usize::MAX),
            // a settings' rows together, after the defaults'
            legend.kind(&r.proof_kind, &r.settings),
            r.n,
            machines.index(&r.host),
        )
    });
    for (r, measured) in &all {
        md.push_str(&format!(
            "| {} | {} |{} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.backend,
            legend.kind(&r.proof_kind, &r.settings),
            machines.cell(machines.index(&r.host)),
            r.n,
            if *measured { "measured" } else { "**projection**" },
            duration(r.inner_prove_seconds),
            duration(r.inner_verify_seconds),
            size(r.inner_proof_bytes),
            duration(r.aggregate_prove_seconds),
            duration(r.aggregate_verify_seconds),
            size(r.aggregate_proof_bytes),
            r.aggregate_cycles,
            r.aggregate_peak_rss_bytes.map_or("–".to_owned(), memory),
        ));
    }
    md.push_str(
        "\nOne more claim, from the smallest and largest measured N of each backend (the slope):\n\n",
    );
    md.push_str(&format!(
        "| backend | kind |{} prove per claim | bytes per claim | verify per claim | break-even N (verification) |\n|---|---|{}---|---|---|---|\n",
        machines.header(),
        machines.separator()
    ));
    for g in group(rows).values() {
        let (Some(first), Some(per)) = (g.first(), per_claim(g)) else {
            continue;
        };
        md.push_str(&format!(
            "| {} | {} |{} {} | {:.0} B | {} | {} |\n",
            first.backend,
            legend.kind(&first.proof_kind, &first.settings),
            machines.cell(machines.index(&first.host)),
            duration(per.prove_seconds),
            per.bytes,
            duration(per.verify_seconds.max(0.0)),
            per.break_even_n.map_or(
                "never (an aggregate's verify grows as fast)".to_owned(),
                |n| format!("N ≥ {n}")
            ),
        ));
    }
    md.push_str(&machines.render());
    md.push_str(&legend.render());
    md
}

/// `doc` with the text between the batch markers replaced by `table`.
pub fn splice_batches(doc: Option<&str>, table: &str) -> String {
    crate::render::splice_between(doc, table, BATCH_BEGIN, BATCH_END)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u32, prove: f64, verify: f64, bytes: u64) -> BatchRow {
        BatchRow {
            backend: "risc0".into(),
            backend_version: "3".into(),
            proof_kind: "succinct".into(),
            inner: "fibonacci n=10+i".into(),
            n,
            inner_prove_seconds: 60.0 * f64::from(n),
            inner_verify_seconds: 0.02 * f64::from(n),
            inner_proof_bytes: 250_000 * u64::from(n),
            aggregate_prove_seconds: prove,
            aggregate_verify_seconds: verify,
            aggregate_proof_bytes: bytes,
            aggregate_cycles: 10_000 * u64::from(n),
            aggregate_peak_rss_bytes: Some(1 << 30),
            host: "2 × CPU, 23 GiB".into(),
            settings: BTreeMap::new(),
        }
    }

    #[test]
    fn one_more_claim_is_the_slope_and_projections_say_so() {
        let rows = [row(4, 200.0, 0.021, 260_000), row(8, 400.0, 0.021, 260_000)];
        let groups = group(&rows);
        let per = per_claim(groups.values().next().unwrap()).unwrap();
        assert_eq!(per.prove_seconds, 50.0);
        assert_eq!(per.bytes, 0.0);
        // 0.021 s for the aggregate against 0.02 s a proof: two proofs.
        assert_eq!(per.break_even_n, Some(2));
        let all = with_projections(&rows);
        let projected: Vec<_> = all.iter().filter(|(_, m)| !m).map(|(r, _)| r.n).collect();
        assert_eq!(projected, [32, 64]);
        let r64 = &all.iter().find(|(r, _)| r.n == 64).unwrap().0;
        assert_eq!(r64.aggregate_prove_seconds, 400.0 + 50.0 * 56.0);
        assert_eq!(r64.aggregate_peak_rss_bytes, None, "memory is never projected");
        let md = batch_markdown(&rows);
        assert!(md.contains("| risc0 | succinct | 64 | **projection** |"), "{md}");
        assert!(md.contains("| risc0 | succinct | 4 | measured |"), "{md}");
        assert!(md.contains("N ≥ 2"), "{md}");
    }

    #[test]
    fn rows_of_two_machines_say_which_and_slopes_stay_within_one() {
        let mut other = row(8, 900.0, 0.021, 260_000);
        other.host = "2 × Other CPU, 24 GiB".into();
        let rows = [
            row(4, 200.0, 0.021, 260_000),
            row(8, 400.0, 0.021, 260_000),
            other,
        ];
        let md = batch_markdown(&rows);
        // Two measured rows make machine 1; the lone row is machine 2.
        assert!(md.contains("| risc0 | succinct | 1 | 8 | measured | "), "{md}");
        assert!(md.contains("| risc0 | succinct | 2 | 8 | measured | "), "{md}");
        assert!(
            md.contains("| risc0 | succinct | 1 | 64 | **projection** |"),
            "{md}"
        );
        // One size on machine 2: no slope, so nothing projected from it.
        assert!(!md.contains("| risc0 | succinct | 2 | 64 |"), "{md}");
        assert!(md.contains("\nMachine 1: 2 × CPU, 23 GiB.\n"), "{md}");
        assert!(md.contains("\nMachine 2: 2 × Other CPU, 24 GiB.\n"), "{md}");
        assert!(!md.contains("Measured on"), "{md}");
    }

    #[test]
    fn rows_under_other_settings_say_so_and_slope_apart() {
        let tuned = |n, prove| {
            let mut r = row(n, prove, 0.021, 260_000);
            r.settings = BTreeMap::from([("SP1_WORKER_NUM_CORE_WORKERS".to_owned(), "1".to_owned())]);
            r
        };
        let rows = [
            row(4, 200.0, 0.021, 260_000),
            row(8, 400.0, 0.021, 260_000),
            tuned(2, 100.0),
            tuned(4, 300.0),
        ];
        let md = batch_markdown(&rows);
        assert!(
            md.contains("| risc0 | succinct (settings A) | 2 | measured | "),
            "{md}"
        );
        assert!(md.contains("| risc0 | succinct | 4 | measured | "), "{md}");
        assert!(
            md.contains("\nSettings A: `SP1_WORKER_NUM_CORE_WORKERS=1`.\n"),
            "{md}"
        );
        // Each settings has its own slope: 50 s a claim by default, 100 s tuned.
        assert!(md.contains("| risc0 | succinct | 50.0 s |"), "{md}");
        assert!(md.contains("| risc0 | succinct (settings A) | 100 s |"), "{md}");
    }

    #[test]
    fn a_single_size_projects_nothing() {
        let rows = [row(4, 200.0, 0.021, 260_000)];
        assert!(with_projections(&rows).iter().all(|(_, m)| *m));
    }

    #[test]
    fn trace_batches_are_measured_and_their_aggregates_verify() {
        let registry = Registry::default();
        let rows = run_batches(&registry, &"trace".parse().unwrap(), &[2, 3], |_| {}).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows
            .iter()
            .all(|r| r.aggregate_cycles > 0 && r.aggregate_proof_bytes > 0));
        assert!(rows[1].inner_proof_bytes > rows[0].inner_proof_bytes);
        let merged = merge_batches(rows.clone(), &rows[..1]);
        assert_eq!(merged.len(), 2, "the same key replaces");
    }
}
