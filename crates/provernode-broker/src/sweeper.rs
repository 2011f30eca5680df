use std::sync::Arc;
use std::time::Duration;

use provernode_store::Store;
use tokio::sync::watch;

/// Sweeps expired leases and passed deadlines every `every` until `stop`
/// turns true. Safe to run in several brokers at once: each sweep is one
/// transaction of guarded statements.
pub async fn sweep_forever(store: Arc<dyn Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match store.sweep().await {
            Ok(report) if !report.is_empty() => {
                metrics::counter!("provernode_leases_lost_total")
                    .increment(report.requeued.len() as u64 + report.quarantined.len() as u64);
                tracing::warn!(
                    requeued = ?report.requeued,
                    quarantined = ?report.quarantined,
                    deadline_passed = ?report.deadline_passed,
                    "sweep ended expired leases and passed deadlines"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "sweep failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
