//! What a node's `/readyz` reports beyond its store: whether it accepts
//! work, and the conditions that degrade it (a worker cannot be started, the
//! broker cannot verify a backend, ...), each with its reason. Shared by the
//! parts that find such conditions and the API that reports them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Readiness {
    accepting: AtomicBool,
    problems: Mutex<BTreeMap<String, String>>,
    notes: Mutex<BTreeMap<String, String>>,
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// True once workers run and until the node starts draining.
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
    }

    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Marks `check` as failing, with why and what to do.
    pub fn degrade(&self, check: &str, reason: impl Into<String>) {
        if let Ok(mut p) = self.problems.lock() {
            p.insert(check.to_owned(), reason.into());
        }
    }

    /// Marks `check` as passing again.
    pub fn recover(&self, check: &str) {
        if let Ok(mut p) = self.problems.lock() {
            p.remove(check);
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

    /// The failing checks and their reasons, by name.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.problems
            .lock()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
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
    }
}
