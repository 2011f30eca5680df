//! What the slots' workers hold against the agent's memory budget, and which
//! backend each one is warm for.
//!
//! A warm worker keeps what its backend started between attempts (SP1: a
//! prover of about 7 GB), so while it idles it still counts against the
//! budget, at its memory limit, as a running attempt does. Counting only
//! running attempts let an idle SP1 worker and a new attempt beside it pass
//! the budget together, into the kernel's OOM killer.
//!
//! Two rules keep the warm workers useful without letting them starve work:
//! - **Warm first**: for a backend whose start-up is costly, a slot leaves
//!   that backend's tasks to another slot whose worker idles warm for it,
//!   instead of starting a second prover (minutes) beside an idle one.
//! - **Idle memory yields**: a task may take the memory of another slot's
//!   idle worker, which that slot then retires, but only once that slot has
//!   asked for work itself and found none it could take; so a warm worker's
//!   own slot always gets the first look at the queue.
//!
//! The state is plain data behind the agent's lock, so the rules are tested
//! here without processes.

/// One slot's share of the budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hold {
    /// The memory limit of the slot's worker, or of the attempt it is
    /// starting; 0 when it has none.
    pub bytes: u64,
    /// The backend of the worker's last attempt: what it is warm for.
    pub warm_for: Option<String>,
    /// An attempt is running.
    pub busy: bool,
    /// Idle, and its last claim found nothing it could take: its memory may
    /// go to another slot's task.
    pub found_nothing: bool,
    /// Another slot's task took this idle worker's memory: the slot must
    /// retire its worker, and that task waits until it has.
    pub evict: bool,
}

/// What a slot may ask the work source for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub backends: Vec<String>,
    pub max_memory_bytes: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Pool {
    /// The most the slots' memory limits may add up to (`None`: no budget).
    budget: Option<u64>,
    /// Backends whose start-up is costly enough to keep their tasks on the
    /// slot already warm for them.
    warm_first: Vec<String>,
    holds: Vec<Hold>,
}

impl Pool {
    pub fn new(budget: Option<u64>, warm_first: Vec<String>, slots: usize) -> Pool {
        Pool {
            budget,
            warm_first,
            holds: vec![Hold::default(); slots],
        }
    }

    /// The memory limits of every slot's worker (or starting attempt), added up.
    pub fn held_bytes(&self) -> u64 {
        self.holds.iter().map(|h| h.bytes).sum()
    }

    /// Workers alive and warm for `backend`, running or idle.
    pub fn warm_for(&self, backend: &str) -> usize {
        self.holds
            .iter()
            .filter(|h| h.bytes > 0 && h.warm_for.as_deref() == Some(backend))
            .count()
    }

    #[cfg(test)]
    pub fn hold(&self, slot: usize) -> &Hold {
        &self.holds[slot]
    }

    /// Other slots' idle workers whose memory a task of `slot` may take.
    fn evictable(&self, slot: usize) -> impl Iterator<Item = usize> + '_ {
        self.holds.iter().enumerate().filter_map(move |(j, h)| {
            (j != slot && h.bytes > 0 && !h.busy && !h.evict && h.found_nothing).then_some(j)
        })
    }

    /// Memory promised to slots other than `slot`. A worker being retired
    /// no longer counts: its memory is promised to the task that evicted it,
    /// which starts only once it is gone.
    fn committed_by_others(&self, slot: usize) -> u64 {
        self.holds
            .iter()
            .enumerate()
            .filter(|(j, h)| *j != slot && !h.evict)
            .map(|(_, h)| h.bytes)
            .sum()
    }

    /// What `slot` may claim: the agent's backends less those another idle
    /// slot is warm for (where start-up is costly and this slot is not warm
    /// for them itself), and the memory it can have: the budget less what
    /// other slots hold, plus what their idle workers may give back. Its own
    /// worker's memory is its to reuse (the worker is replaced when a task
    /// needs another limit).
    pub fn plan(&self, slot: usize, backends: &[String], cap: Option<u64>) -> Plan {
        let own = self.holds[slot].warm_for.as_deref();
        let warm_elsewhere = |backend: &str| {
            self.holds.iter().enumerate().any(|(j, h)| {
                j != slot && h.bytes > 0 && !h.busy && !h.evict && h.warm_for.as_deref() == Some(backend)
            })
        };
        let backends = backends
            .iter()
            .filter(|b| !self.warm_first.contains(b) || own == Some(b.as_str()) || !warm_elsewhere(b))
            .cloned()
            .collect();
        let max_memory_bytes = match self.budget {
            None => cap,
            Some(budget) => {
                let reclaimable: u64 = self.evictable(slot).map(|j| self.holds[j].bytes).sum();
                let room = budget.saturating_sub(self.committed_by_others(slot)) + reclaimable;
                Some(cap.map_or(room, |c| c.min(room)))
            }
        };
        Plan {
            backends,
            max_memory_bytes,
        }
    }

    /// `slot` claimed an attempt that needs `need` bytes: it holds them from
    /// now on. Returns the slots whose idle workers must be retired first to
    /// stay within the budget (workers warm for a cheap backend before those
    /// with a costly start-up, larger first).
    pub fn admit(&mut self, slot: usize, need: u64, backend: &str) -> Vec<usize> {
        self.holds[slot] = Hold {
            bytes: need,
            warm_for: Some(backend.to_owned()),
            busy: true,
            found_nothing: false,
            evict: false,
        };
        let Some(budget) = self.budget else {
            return Vec::new();
        };
        let mut candidates: Vec<usize> = self.evictable(slot).collect();
        candidates.sort_by_key(|&j| {
            let h = &self.holds[j];
            let costly = h.warm_for.as_ref().is_some_and(|b| self.warm_first.contains(b));
            (costly, std::cmp::Reverse(h.bytes))
        });
        let mut evicted = Vec::new();
        for j in candidates {
            if need + self.committed_by_others(slot) <= budget {
                break;
            }
            self.holds[j].evict = true;
            evicted.push(j);
        }
        evicted
    }

    /// `slot`'s claim found nothing. Returns whether its idle worker's
    /// memory has just become available to other slots (wake them).
    pub fn found_nothing(&mut self, slot: usize) -> bool {
        let h = &mut self.holds[slot];
        let newly = !h.found_nothing && h.bytes > 0;
        h.found_nothing = true;
        newly
    }

    /// `slot`'s attempt has ended; its worker, when it is still alive (warm),
    /// keeps holding its memory limit.
    pub fn finished(&mut self, slot: usize, worker_limit: Option<u64>, backend: &str) {
        self.holds[slot] = match worker_limit {
            Some(bytes) => Hold {
                bytes,
                warm_for: Some(backend.to_owned()),
                ..Hold::default()
            },
            None => Hold::default(),
        };
    }

    /// Whether `slot` must retire its idle worker for another slot's task.
    pub fn must_retire(&self, slot: usize) -> bool {
        self.holds[slot].evict
    }

    /// `slot` has no worker any more.
    pub fn retired(&mut self, slot: usize) {
        self.holds[slot] = Hold::default();
    }

    /// Whether any of `evicted` still has its worker.
    pub fn still_held(&self, evicted: &[usize]) -> bool {
        evicted.iter().any(|&j| self.holds[j].evict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn pool(budget: Option<u64>, slots: usize) -> Pool {
        Pool::new(budget, names(&["sp1"]), slots)
    }

    #[test]
    fn an_idle_warm_worker_counts_against_the_budget() {
        let mut p = pool(Some(22 * GIB), 2);
        assert!(p.admit(0, 14 * GIB, "sp1").is_empty());
        p.finished(0, Some(14 * GIB), "sp1");
        // Slot 0 has not looked for work since: its worker is not yet
        // evictable, so slot 1 has only what is left.
        let plan = p.plan(1, &names(&["trace", "sp1"]), None);
        assert_eq!(plan.max_memory_bytes, Some(8 * GIB));
        // Slot 0 itself may use its own worker's memory again.
        assert_eq!(p.plan(0, &names(&["sp1"]), None).max_memory_bytes, Some(22 * GIB));
    }

    #[test]
    fn a_costly_backend_s_tasks_go_to_the_slot_warm_for_it() {
        let mut p = pool(None, 2);
        p.admit(0, 14 * GIB, "sp1");
        // While slot 0 proves, slot 1 may take SP1 tasks too (a second prover).
        assert_eq!(
            p.plan(1, &names(&["trace", "sp1"]), None).backends,
            names(&["trace", "sp1"])
        );
        p.finished(0, Some(14 * GIB), "sp1");
        // Once slot 0 idles warm, slot 1 leaves SP1 to it ...
        assert_eq!(
            p.plan(1, &names(&["trace", "sp1"]), None).backends,
            names(&["trace"])
        );
        assert_eq!(
            p.plan(0, &names(&["trace", "sp1"]), None).backends,
            names(&["trace", "sp1"])
        );
        // ... but not cheap backends, and not when it is warm for SP1 itself.
        p.admit(1, GIB, "sp1");
        p.finished(1, Some(GIB), "sp1");
        assert_eq!(
            p.plan(1, &names(&["trace", "sp1"]), None).backends,
            names(&["trace", "sp1"])
        );
        let mut cheap = pool(None, 2);
        cheap.finished(0, Some(GIB), "trace");
        assert_eq!(
            cheap.plan(1, &names(&["trace"]), None).backends,
            names(&["trace"])
        );
    }

    #[test]
    fn idle_memory_goes_to_work_once_its_own_slot_found_none() {
        let mut p = pool(Some(22 * GIB), 2);
        p.admit(0, 14 * GIB, "sp1");
        p.finished(0, Some(14 * GIB), "sp1");
        assert!(
            p.found_nothing(0),
            "the first empty claim makes the memory available"
        );
        assert!(!p.found_nothing(0), "and only the first");
        let plan = p.plan(1, &names(&["trace", "risc0", "sp1"]), Some(16 * GIB));
        assert_eq!(plan.backends, names(&["trace", "risc0"]));
        assert_eq!(plan.max_memory_bytes, Some(16 * GIB), "capped by the claim limit");
        // A 10 GiB risc0 task does not fit beside the idle SP1 worker: it goes.
        assert_eq!(p.admit(1, 10 * GIB, "risc0"), vec![0]);
        assert!(p.must_retire(0) && p.still_held(&[0]));
        // What slot 0 held is promised to slot 1 now, not to anyone else.
        assert_eq!(p.plan(0, &names(&["sp1"]), None).max_memory_bytes, Some(12 * GIB));
        assert_eq!(p.held_bytes(), 24 * GIB, "until slot 0's worker is gone");
        p.retired(0);
        assert!(!p.still_held(&[0]));
        assert_eq!(p.held_bytes(), 10 * GIB);
        assert_eq!(p.hold(1).bytes, 10 * GIB);
    }

    #[test]
    fn only_what_is_needed_is_evicted_cheap_workers_first() {
        let mut p = pool(Some(20 * GIB), 4);
        for (slot, gib, backend) in [(0, 8, "sp1"), (1, 4, "trace"), (2, 2, "trace")] {
            p.admit(slot, gib * GIB, backend);
            p.finished(slot, Some(gib * GIB), backend);
            p.found_nothing(slot);
        }
        // 6 GiB free; 9 GiB needed: the 4 GiB trace worker goes, the others stay.
        assert_eq!(p.admit(3, 9 * GIB, "risc0"), vec![1]);
        assert_eq!((p.must_retire(0), p.must_retire(2)), (false, false), "{p:?}");
        // A busy worker is never evicted, and nothing is when it all fits.
        let mut q = pool(Some(20 * GIB), 2);
        q.admit(0, 8 * GIB, "trace");
        assert!(q.admit(1, 8 * GIB, "trace").is_empty());
    }

    #[test]
    fn without_a_budget_memory_is_capped_only_by_the_claim_limit() {
        let mut p = pool(None, 2);
        p.admit(0, 14 * GIB, "sp1");
        assert_eq!(p.plan(1, &names(&["sp1"]), Some(GIB)).max_memory_bytes, Some(GIB));
        assert_eq!(p.plan(1, &names(&["sp1"]), None).max_memory_bytes, None);
        assert!(p.admit(1, 100 * GIB, "sp1").is_empty());
    }
}
