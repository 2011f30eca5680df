//! The metrics every role exports: one catalogue (name, type, help) so that
//! every family has `# HELP`, durations are histograms with buckets that
//! span a trivial trace proof to a multi-hour RISC Zero one, and the build
//! is labelled (`provernode_build_info`).
//!
//! The names are used where things happen (agent, worker supervisor, broker,
//! store); this list is what `deploy/grafana` and `deploy/prometheus` are
//! checked against (`tests/dashboards.rs`), so a metric renamed in code and
//! not here fails a test.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds, from a trace proof (milliseconds) to a long split proof (hours).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
    1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric provernode exports: name, kind, help. Labels are in the help.
pub const CATALOGUE: &[(&str, Kind, &str)] = &[
    ("provernode_build_info", Kind::Gauge, "Always 1; labels: version, commit, backends (built in), role."),
    ("provernode_tasks", Kind::Gauge, "Tasks by state in the shared store, read at scrape time: the whole queue's (a cluster's brokers all report the same numbers; aggregate with max, not sum). Label: state."),
    ("provernode_tasks_submitted_total", Kind::Counter, "Tasks accepted by this node or broker's API."),
    ("provernode_queue_wait_seconds", Kind::Histogram, "From submission to the first attempt's start. Labels: backend, proof_kind."),
    ("provernode_attempts_total", Kind::Counter, "Attempts ended, by outcome: succeeded, or the cause (timeout, out_of_memory, crashed, backend_error, guest_panic, invalid_input, deadline_passed, ...). Labels: backend, proof_kind, outcome."),
    ("provernode_attempt_duration_seconds", Kind::Histogram, "Wall time of an attempt, start to report. Labels: backend, proof_kind, outcome."),
    ("provernode_prove_seconds", Kind::Histogram, "Time a worker took to produce a proof. Labels: backend, proof_kind."),
    ("provernode_verify_seconds", Kind::Histogram, "Time this process took to check a worker's proof before reporting it. Labels: backend, proof_kind, outcome (verified, rejected)."),
    ("provernode_cycles_proved_total", Kind::Counter, "Guest cycles of accepted proofs. Labels: backend, proof_kind."),
    ("provernode_attempts_released_total", Kind::Counter, "Attempts handed back to the queue uncharged. Label: reason (machine_fault, shutdown)."),
    ("provernode_worker_crashes_total", Kind::Counter, "Worker processes that died during an attempt, by signal. Labels: backend, signal."),
    ("provernode_worker_starts_total", Kind::Counter, "Worker processes started. Label: backend."),
    ("provernode_worker_recycles_total", Kind::Counter, "Warm workers replaced after an attempt. Labels: backend, reason (limits: attempts or resident memory past the --warm-max-* limits; backend_asked)."),
    ("provernode_idle_workers_replaced_total", Kind::Counter, "Idle warm workers found dead or hung and replaced, uncharged."),
    ("provernode_idle_workers_retired_total", Kind::Counter, "Idle warm workers stopped to free memory for another attempt. Label: reason."),
    ("provernode_worker_memory_held_bytes", Kind::Gauge, "Memory reserved by this node's or agent's workers: the sum of their cgroup limits, idle warm workers included."),
    ("provernode_worker_memory_used_bytes", Kind::Gauge, "Memory this node's or agent's workers use, sampled every 5 s: their cgroups' usage, or their processes' resident memory under the watchdog."),
    ("provernode_leases_lost_total", Kind::Counter, "Leases that expired without a heartbeat (the holder died or was cut off), swept by this node or broker."),
    ("provernode_results_accepted_total", Kind::Counter, "Results reported by agents and stored by this broker."),
    ("provernode_results_rejected_total", Kind::Counter, "Results reported by agents that this broker refused (did not verify, or were for another task)."),
    ("provernode_split_parts_reproved_total", Kind::Counter, "Parts of a split proof whose stored proof was damaged and which were proved again."),
    ("provernode_http_accept_errors_total", Kind::Counter, "Errors accepting HTTP connections (for example, out of file descriptors)."),
    ("provernode_http_connections_refused_total", Kind::Counter, "HTTP connections refused at once because --max-http-connections were open."),
    ("provernode_store_disk_full_errors_total", Kind::Counter, "Writes the store refused because its disk was full."),
    ("provernode_programs_stored_total", Kind::Counter, "Programs stored for the first time through PUT /v1/programs."),
    ("provernode_artifacts", Kind::Gauge, "Artifacts in this node's or agent's manifest."),
    ("provernode_artifacts_failing", Kind::Gauge, "Artifacts with no good copy after the last verification (readiness is false while above 0)."),
    ("provernode_artifacts_repaired_total", Kind::Counter, "Artifact copies found damaged or missing and rewritten from the other copy (or, for a program, from the database). Labels: kind, copy (primary, backup)."),
    ("provernode_artifacts_dropped_total", Kind::Counter, "Cached keys (kind keys) whose copies were both bad, dropped from the store; the backend sets them up again when it next needs them. Label: kind."),
    ("provernode_artifacts_verify_seconds", Kind::Gauge, "How long the last verification of every artifact took."),
    ("provernode_artifacts_verified_bytes", Kind::Gauge, "Bytes hashed by the last verification (both copies of every artifact)."),
    ("provernode_store_connections_discarded_total", Kind::Counter, "Database connections discarded after an interrupted transaction."),
];

/// Installs the Prometheus recorder for this process, describes every
/// metric and sets `provernode_build_info`. `None` if a recorder is already
/// installed (tests that start two roles in one process).
pub fn install(role: &'static str) -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .ok()?
        .install_recorder()
        .ok()?;
    for (name, kind, help) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help),
        }
    }
    metrics::gauge!(
        "provernode_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => crate::GIT_COMMIT,
        "backends" => provernode_backends::built_in().join(","),
        "role" => role
    )
    .set(1.0);
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names_and_histograms_are_in_seconds() {
        let mut seen = std::collections::HashSet::new();
        for (name, kind, help) in CATALOGUE {
            assert!(seen.insert(name), "{name} listed twice");
            assert!(name.starts_with("provernode_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!(!help.is_empty(), "{name} has no help");
            if *kind == Kind::Counter {
                assert!(name.ends_with("_total"), "counter {name} must end in _total");
            }
            if *kind == Kind::Histogram {
                assert!(
                    name.ends_with("_seconds"),
                    "histogram {name} must be in seconds to get buckets"
                );
            }
        }
        assert!(SECONDS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
