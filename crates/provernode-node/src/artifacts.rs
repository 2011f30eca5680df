//! A node's or agent's artifacts at start: the store opened, the programs
//! of the queue kept in it, every copy verified in the background while
//! readiness says so, and what cannot be used kept from claims.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use clap::Args;
use provernode_artifacts::{ArtifactStore, Finding, Report};
use provernode_core::ComponentStatus as Status;
use provernode_core::{ProgramId, Readiness};
use provernode_store::Store;

use crate::NodeError;

/// The readiness component of the artifacts.
pub const COMPONENT: &str = "artifacts";

/// Where the artifacts and their backup copies live.
#[derive(Args, Debug, Clone, Default)]
pub struct ArtifactFlags {
    /// The artifact store: the manifest and the primary copy of every file a backend needs
    /// beyond this binary [default: artifacts/ in the data (or scratch) directory].
    #[arg(long, value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// The backup copy of every artifact, which repairs a damaged primary; put it on another
    /// disk where there is one [default: artifacts-backup/ beside the artifacts].
    #[arg(long, value_name = "DIR")]
    pub artifacts_backup_dir: Option<PathBuf>,
}

impl ArtifactFlags {
    /// The primary and backup directories, defaulting under `base`.
    pub fn dirs(&self, base: &Path) -> (PathBuf, PathBuf) {
        let primary = self
            .artifacts_dir
            .clone()
            .unwrap_or_else(|| base.join("artifacts"));
        let backup = self.artifacts_backup_dir.clone().unwrap_or_else(|| {
            primary
                .parent()
                .map(|p| p.join("artifacts-backup"))
                .unwrap_or_else(|| PathBuf::from("artifacts-backup"))
        });
        (primary, backup)
    }

    pub fn open(&self, base: &Path) -> Result<ArtifactStore, NodeError> {
        let (primary, backup) = self.dirs(base);
        ArtifactStore::open(&primary, &backup, crate::version_line())
            .map_err(|e| NodeError::Artifacts(e.to_string()))
    }
}

/// The name of a program's artifact.
pub fn program_artifact(id: &ProgramId) -> String {
    format!("program/{id}")
}

/// Opens the store and verifies it in the background: readiness is
/// failing (and backends that need an artifact are not claimed) until the
/// verification ends; then it says what was found. With `programs`, every
/// program of the queue is kept as an artifact too, and a program artifact
/// with no good copy is rewritten from the database.
pub fn start(
    store: Arc<ArtifactStore>,
    readiness: Arc<Readiness>,
    blocked: Arc<RwLock<Vec<String>>>,
    programs: Option<Arc<dyn Store>>,
) -> tokio::task::JoinHandle<()> {
    let needed: Vec<String> = store
        .list()
        .map(|l| l.into_iter().filter_map(|e| e.needed_by).collect())
        .unwrap_or_default();
    if let Ok(mut b) = blocked.write() {
        *b = needed;
    }
    readiness.set(
        COMPONENT,
        Status::Failing,
        "verifying the artifacts' SHA-256 (tasks of backends that need one wait until it is done)",
    );
    tokio::spawn(async move {
        let queue = programs.as_deref();
        if let Some(queue) = queue {
            if let Err(e) = mirror_programs(&store, queue).await {
                tracing::warn!(error = %e, "could not keep the queue's programs in the artifact store");
            }
        }
        let mut report = match check(&store, None, queue).await {
            Ok(r) => r,
            Err(why) => {
                tracing::error!("{why}");
                readiness.set(COMPONENT, Status::Failing, why);
                return;
            }
        };
        record_repairs(&report);
        apply(&report, &readiness, &blocked);
        // While an artifact has no good copy, look at it again now and then:
        // an operator who imports a good copy (`provernode artifacts
        // import`) needs no restart. Only the failed ones are hashed again,
        // and only what that finds is counted (the rest was counted once).
        loop {
            let failed: Vec<String> = report.failed().map(|e| e.name.clone()).collect();
            if failed.is_empty() {
                return;
            }
            tokio::time::sleep(RECHECK).await;
            let Ok(again) = check(&store, Some(failed.clone()), queue).await else {
                continue;
            };
            record_repairs(&again);
            // An entry gone from the manifest (removed) is no longer failed.
            report.findings.retain(|(e, _)| !failed.contains(&e.name));
            report.findings.extend(again.findings);
            apply(&report, &readiness, &blocked);
        }
    })
}

/// How often artifacts with no good copy are looked at again.
const RECHECK: Duration = Duration::from_secs(5);

/// Programs written into the artifact store per manifest write.
const MIRROR_BATCH: usize = 64;

/// Verifies `only` these artifacts (all, with progress in the log, when
/// `None`) on a blocking thread, then rewrites programs with no good copy
/// from the queue's database.
async fn check(
    store: &Arc<ArtifactStore>,
    only: Option<Vec<String>>,
    queue: Option<&dyn Store>,
) -> Result<Report, String> {
    let verifier = store.clone();
    let report = tokio::task::spawn_blocking(move || match &only {
        None => verify_logged(&verifier),
        Some(names) => verifier.verify_some(Some(names), &mut |_| {}),
    })
    .await
    .map_err(|e| format!("the verification of the artifacts stopped: {e}"))?
    .map_err(|e| format!("cannot verify the artifacts: {e}"))?;
    Ok(match queue {
        Some(queue) => repair_programs(store, queue, report).await,
        None => report,
    })
}

/// Hashes every copy, logging progress every few seconds.
pub fn verify_logged(store: &ArtifactStore) -> Result<Report, provernode_artifacts::ArtifactError> {
    let mut last = Instant::now();
    let report = store.verify(&mut |p| {
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            tracing::info!(
                artifact = p.name,
                done_mib = p.bytes_done >> 20,
                total_mib = p.bytes_total >> 20,
                "verifying artifacts"
            );
        }
    })?;
    let mib = report.bytes_hashed as f64 / f64::from(1 << 20);
    let secs = report.elapsed.as_secs_f64();
    tracing::info!(
        artifacts = report.findings.len(),
        mib = format!("{mib:.1}"),
        secs = format!("{secs:.2}"),
        mib_per_sec = format!("{:.0}", if secs > 0.0 { mib / secs } else { 0.0 }),
        "artifacts verified"
    );
    Ok(report)
}

/// Every program the queue holds is an artifact too (written once, in
/// batches: one manifest write per batch).
async fn mirror_programs(store: &Arc<ArtifactStore>, queue: &dyn Store) -> Result<(), String> {
    let have: std::collections::HashSet<String> = store
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let missing: Vec<ProgramId> = queue
        .program_ids()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|id| !have.contains(&program_artifact(id)))
        .collect();
    for chunk in missing.chunks(MIRROR_BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for id in chunk {
            if let Some((_, elf)) = queue.program_elf(id).await.map_err(|e| e.to_string())? {
                batch.push((program_artifact(id), elf));
            }
        }
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.put_many("program", &batch))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes one program of the queue into the artifact store.
pub async fn keep_program(
    store: &Arc<ArtifactStore>,
    queue: &dyn Store,
    id: &ProgramId,
) -> Result<(), String> {
    let Some((_, elf)) = queue.program_elf(id).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let store = store.clone();
    let name = program_artifact(id);
    tokio::task::spawn_blocking(move || store.put(&name, "program", &elf, None).map(|_| ()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// A program artifact with no good copy is written again from the
/// database, which checks the program against its id as it reads it.
async fn repair_programs(store: &Arc<ArtifactStore>, queue: &dyn Store, mut report: Report) -> Report {
    for (entry, finding) in report.findings.iter_mut() {
        if entry.kind != "program" || !matches!(finding, Finding::Failed { .. }) {
            continue;
        }
        let Some(id) = entry
            .name
            .strip_prefix("program/")
            .and_then(|h| h.parse().ok())
            .map(ProgramId)
        else {
            continue;
        };
        match keep_program(store, queue, &id).await {
            Ok(()) => {
                tracing::warn!(artifact = %entry.name, "both copies of a program artifact were bad; rewritten from the database");
                *finding = Finding::Repaired {
                    copy: provernode_artifacts::Copy::Primary,
                    why: "both copies were bad; rewritten from the database".into(),
                };
            }
            Err(e) => {
                tracing::error!(artifact = %entry.name, error = %e, "cannot rewrite a program artifact from the database")
            }
        }
    }
    report
}

/// Counts and logs what one verification repaired: called once per
/// verification, never again for the same findings.
fn record_repairs(report: &Report) {
    for (entry, copy, why) in report.repaired() {
        metrics::counter!("provernode_artifacts_repaired_total", "kind" => entry.kind.clone(), "copy" => copy.to_string())
            .increment(1);
        tracing::warn!(artifact = %entry.name, %copy, why, "artifact copy repaired");
    }
    for (entry, finding) in &report.findings {
        if let Finding::Dropped { primary, backup } = finding {
            metrics::counter!("provernode_artifacts_dropped_total", "kind" => entry.kind.clone())
                .increment(1);
            tracing::warn!(artifact = %entry.name, primary = %primary, backup = %backup, "cached keys had no good copy and are dropped; the backend sets them up again when it next needs them");
        }
    }
    if let Some((copy, why)) = &report.manifest_repaired {
        tracing::warn!(%copy, why = %why, "the artifact manifest's copy was bad and is rewritten from the other");
    }
}

/// Readiness, gauges and claims from what is known of every artifact.
pub fn apply(report: &Report, readiness: &Readiness, blocked: &RwLock<Vec<String>>) {
    metrics::gauge!("provernode_artifacts").set(report.findings.len() as f64);
    metrics::gauge!("provernode_artifacts_failing").set(report.failed().count() as f64);
    metrics::gauge!("provernode_artifacts_verify_seconds").set(report.elapsed.as_secs_f64());
    metrics::gauge!("provernode_artifacts_verified_bytes").set(report.bytes_hashed as f64);
    let blocked_now = report.blocked_backends();
    let detail = match report.failure_summary() {
        Some(summary) if blocked_now.is_empty() => summary,
        Some(summary) => format!(
            "{summary}; tasks of {} are not claimed until then",
            blocked_now.join(", ")
        ),
        None => {
            readiness.set(
                COMPONENT,
                Status::Ok,
                format!("{} artifacts verified", report.findings.len()),
            );
            String::new()
        }
    };
    if let Ok(mut b) = blocked.write() {
        *b = blocked_now;
    }
    if detail.is_empty() {
        return;
    }
    // Logged when it changes, not at every look while it stays the same.
    let same = readiness
        .components()
        .get(COMPONENT)
        .is_some_and(|c| c.detail == detail);
    if !same {
        tracing::error!("{detail}");
    }
    readiness.set(COMPONENT, Status::Failing, detail);
}
