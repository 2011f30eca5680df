//! What a node's `/readyz` reports beyond its store: whether it accepts
//! work, and the conditions that degrade it (a worker cannot be started, the
//! broker cannot verify a backend, ...), each with its reason. Shared by the
//! parts that find such conditions and the API that reports them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A component's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    /// Working, with less than it should (a backend unavailable, claims
    /// retrying): the node is still ready.
    Degraded,
    /// Not working: the node is not ready.
    Failing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failing => "failing",
        }
    }
}

/// One component as `/readyz` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub status: Status,
    /// When the status last changed, milliseconds since the epoch.
    pub since_ms: i64,
    /// What was found now.
    pub detail: String,
    /// The last problem seen, kept after recovery, and when.
    pub last_error: Option<(i64, String)>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The component of the node's or agent's worker slots.
pub const WORKERS: &str = "workers";

#[derive(Debug, Default)]
pub struct Readiness {
    accepting: AtomicBool,
    components: Mutex<BTreeMap<String, Component>>,
    notes: Mutex<BTreeMap<String, String>>,
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// True once workers run and until the node starts draining; the
    /// `workers` component follows (a fault found by the slots stays until
    /// they recover from it).
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
        if accepting {
            self.recover(WORKERS);
            let known = self
                .components
                .lock()
                .map(|c| c.contains_key(WORKERS))
                .unwrap_or(true);
            if !known {
                self.set(WORKERS, Status::Ok, "running");
            }
        } else {
            self.set(
                WORKERS,
                Status::Failing,
                "not accepting work (starting or draining)",
            );
        }
    }

    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Records what a component is now; `since` moves only when its status
    /// changes, and anything but `Ok` becomes its last error.
    pub fn set(&self, name: &str, status: Status, detail: impl Into<String>) {
        let detail = detail.into();
        let now = now_ms();
        if let Ok(mut c) = self.components.lock() {
            let entry = c.entry(name.to_owned()).or_insert_with(|| Component {
                status,
                since_ms: now,
                detail: String::new(),
                last_error: None,
            });
            if entry.status != status {
                entry.status = status;
                entry.since_ms = now;
            }
            if status != Status::Ok {
                entry.last_error = Some((now, detail.clone()));
            }
            entry.detail = detail;
        }
    }

    /// Marks `check` as failing, with why and what to do.
    pub fn degrade(&self, check: &str, reason: impl Into<String>) {
        self.set(check, Status::Failing, reason);
    }

    /// Marks `check` as passing again.
    pub fn recover(&self, check: &str) {
        let failing = self
            .components
            .lock()
            .map(|c| c.get(check).is_some_and(|c| c.status != Status::Ok))
            .unwrap_or(false);
        if failing {
            self.set(check, Status::Ok, "recovered");
        }
    }

    /// Something an operator must know that does not make the node unready
    /// (a broker trusting its agents' verification), shown with the checks.
    pub fn note(&self, check: &str, text: impl Into<String>) {
        if let Ok(mut n) = self.notes.lock() {
            n.insert(check.to_owned(), text.into());
        }
    }

    /// The notes, by name.
    pub fn notes(&self) -> Vec<(String, String)> {
        self.notes
            .lock()
            .map(|n| n.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The failing components and their reasons, by name.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.components
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, c)| c.status == Status::Failing)
                    .map(|(k, c)| (k.clone(), c.detail.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every component, by name.
    pub fn components(&self) -> BTreeMap<String, Component> {
        self.components.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_and_go_by_name() {
        let r = Readiness::new();
        assert!(!r.accepting());
        r.set_accepting(true);
        r.degrade("workers", "cannot start a worker: Too many open files");
        r.degrade("workers", "cannot start a worker: No space left on device");
        assert_eq!(
            r.problems(),
            vec![(
                "workers".into(),
                "cannot start a worker: No space left on device".into()
            )]
        );
        r.recover("workers");
        assert!(r.problems().is_empty());
        // The last error stays, with the recovery's time as `since`.
        let c = &r.components()["workers"];
        assert_eq!(c.status, Status::Ok);
        assert!(c.last_error.as_ref().unwrap().1.contains("No space left"));
    }

    #[test]
    fn since_moves_only_when_the_status_changes() {
        let r = Readiness::new();
        r.set("store", Status::Ok, "answers");
        let first = r.components()["store"].since_ms;
        std::thread::sleep(std::time::Duration::from_millis(5));
        r.set("store", Status::Ok, "answers again");
        assert_eq!(r.components()["store"].since_ms, first);
        r.set("store", Status::Degraded, "slow");
        assert!(r.components()["store"].since_ms > first);
        assert!(r.problems().is_empty(), "degraded is not failing");
    }
}
