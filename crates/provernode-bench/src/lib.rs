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

mod batch;
mod measure;
mod plots;
mod render;
mod results;

use std::collections::BTreeMap;

use provernode_core::BackendError;
use serde::{Deserialize, Serialize};

pub use batch::{
    batch_markdown, load_batches, merge_batches, per_claim, run_batches, save_batches, splice_batches,
    with_projections, BatchRow, PerClaim, BATCH_BEGIN, BATCH_END, STANDARD_SIZES,
};
pub use measure::{host, run_target, settings_from, Paid};
pub use plots::{plot_aggregate_cost, plot_prove_time};
pub use render::{markdown, splice, TABLE_BEGIN, TABLE_END};
pub use results::{load, merge, save};

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

#[cfg(test)]
mod tests {
    use super::measure::{describe_host, seconds};
    use super::*;
    use provernode_backends::Registry;

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
