//! Tasks and attempts: the queue's vocabulary, shared by the store, the
//! broker, the agent and the client.

use std::fmt;
use std::str::FromStr;

/// Where a task is in its life. `Succeeded`, `Failed`, `Cancelled` and
/// `Quarantined` are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    Queued,
    Leased,
    Succeeded,
    Failed,
    Cancelled,
    Quarantined,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Queued,
        TaskState::Leased,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Leased => "leased",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Quarantined => "quarantined",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskState::Queued | TaskState::Leased)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown task state {s:?}; expected one of queued, leased, succeeded, failed, cancelled, quarantined")
            })
    }
}

/// Why an attempt ended without a proof, or why a task ended without one.
/// A closed list: every failed, cancelled or quarantined task carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The attempt ran past its wall-clock limit and was killed.
    Timeout,
    /// The attempt's process passed its memory limit and was killed.
    OutOfMemory,
    /// The worker process died from this signal (or exited abnormally: 0).
    Crashed(i32),
    /// The program rejected its input; retrying cannot help.
    InvalidInput,
    /// The guest panicked (or failed a hint check): deterministic, so
    /// retrying cannot help. The attempt's message carries the panic text.
    GuestPanic,
    /// The backend failed (guest fault, prover error, proof that does not verify).
    BackendError,
    /// The lease expired or was taken back before a result came in.
    LeaseLost,
    /// Someone cancelled the task.
    Cancelled,
    /// The task's deadline passed before it could finish.
    DeadlinePassed,
    /// A task it depends on (an aggregate's inner proof) ended failed,
    /// cancelled or quarantined, so its input can never be assembled. The
    /// detail names that task.
    DependencyFailed,
}

impl Cause {
    /// Whether another attempt could end differently. `BackendError` is
    /// decided per attempt (a guest fault is permanent, a prover error is not).
    pub fn retryable_by_default(self) -> bool {
        matches!(
            self,
            Cause::Timeout | Cause::OutOfMemory | Cause::Crashed(_) | Cause::LeaseLost
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Timeout => f.write_str("timeout"),
            Cause::OutOfMemory => f.write_str("out_of_memory"),
            Cause::Crashed(sig) => write!(f, "crashed({sig})"),
            Cause::InvalidInput => f.write_str("invalid_input"),
            Cause::GuestPanic => f.write_str("guest_panic"),
            Cause::BackendError => f.write_str("backend_error"),
            Cause::LeaseLost => f.write_str("lease_lost"),
            Cause::Cancelled => f.write_str("cancelled"),
            Cause::DeadlinePassed => f.write_str("deadline_passed"),
            Cause::DependencyFailed => f.write_str("dependency_failed"),
        }
    }
}

impl FromStr for Cause {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "timeout" => Cause::Timeout,
            "out_of_memory" => Cause::OutOfMemory,
            "invalid_input" => Cause::InvalidInput,
            "guest_panic" => Cause::GuestPanic,
            "backend_error" => Cause::BackendError,
            "lease_lost" => Cause::LeaseLost,
            "cancelled" => Cause::Cancelled,
            "deadline_passed" => Cause::DeadlinePassed,
            "dependency_failed" => Cause::DependencyFailed,
            other => {
                let sig = other
                    .strip_prefix("crashed(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("unknown cause {other:?}"))?;
                Cause::Crashed(sig)
            }
        })
    }
}

/// Per-task limits. Guest limits bound the program inside the backend;
/// attempt limits bound the worker process from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskLimits {
    pub max_cycles: u64,
    pub max_guest_memory_bytes: u64,
    /// Wall-clock limit of one attempt.
    pub timeout_ms: u64,
    /// Memory limit of the worker process running one attempt.
    pub memory_limit_bytes: u64,
    /// Attempts before the task is quarantined.
    pub max_attempts: u32,
    /// The task named no timeout: `timeout_ms` is the node's default, and
    /// an attempt gets longer when its cycle count and the measured proving
    /// rate say it needs it ([`TimeoutRule`]).
    pub timeout_from_rate: bool,
}

impl Default for TaskLimits {
    fn default() -> Self {
        TaskLimits {
            max_cycles: crate::Limits::DEFAULT_MAX_CYCLES,
            max_guest_memory_bytes: crate::Limits::DEFAULT_MAX_MEMORY_BYTES,
            timeout_ms: 10 * 60 * 1000,
            memory_limit_bytes: 4 << 30,
            max_attempts: 3,
            timeout_from_rate: false,
        }
    }
}

/// How an attempt's timeout follows from its cycle count when its task
/// named none (issue 22): `allowance + factor × cycles / rate`, never below
/// the default the task got, never above 7 days. The rate is the node's
/// measured proving rate for the backend and proof kind (cycles per second
/// from its own finished attempts, or from `provernode calibrate`); the
/// factor covers a slower machine in the cluster, a busier moment and the
/// variance between programs; the allowance covers an attempt's fixed
/// costs (loading the program, the final recursion of a succinct proof).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeoutRule {
    pub cycles_per_sec: f64,
    /// What the task got without a rate (the node's or backend's default).
    pub floor: std::time::Duration,
}

impl TimeoutRule {
    pub const SAFETY_FACTOR: f64 = 3.0;
    pub const ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(60);
    pub const MOST: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

    pub fn timeout_for(&self, cycles: u64) -> std::time::Duration {
        if !(self.cycles_per_sec.is_finite() && self.cycles_per_sec > 0.0) {
            return self.floor;
        }
        let secs = Self::SAFETY_FACTOR * cycles as f64 / self.cycles_per_sec;
        let sized = Self::ALLOWANCE.saturating_add(std::time::Duration::from_secs_f64(
            secs.min(Self::MOST.as_secs_f64()),
        ));
        sized.clamp(self.floor.min(Self::MOST), Self::MOST.max(self.floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_follows_cycles_and_rate_but_never_drops_below_the_default() {
        use std::time::Duration;
        let rule = TimeoutRule {
            cycles_per_sec: 1_000.0,
            floor: Duration::from_secs(900),
        };
        // 7.5 M cycles at 1,000 a second: 3 × 7,500 s + 60 s.
        assert_eq!(rule.timeout_for(7_500_000), Duration::from_secs(22_560));
        assert_eq!(
            rule.timeout_for(1_000),
            Duration::from_secs(900),
            "the default stays"
        );
        assert_eq!(rule.timeout_for(u64::MAX), TimeoutRule::MOST);
        let unknown = TimeoutRule {
            cycles_per_sec: 0.0,
            ..rule
        };
        assert_eq!(unknown.timeout_for(7_500_000), Duration::from_secs(900));
    }

    #[test]
    fn causes_round_trip_through_their_names() {
        for c in [
            Cause::Timeout,
            Cause::OutOfMemory,
            Cause::Crashed(9),
            Cause::Crashed(6),
            Cause::InvalidInput,
            Cause::BackendError,
            Cause::LeaseLost,
            Cause::Cancelled,
            Cause::DeadlinePassed,
            Cause::DependencyFailed,
        ] {
            assert_eq!(c.to_string().parse::<Cause>(), Ok(c));
        }
        assert_eq!(Cause::Crashed(9).to_string(), "crashed(9)");
        assert!("crashed(x)".parse::<Cause>().is_err());
        assert!("exploded".parse::<Cause>().is_err());
    }

    #[test]
    fn states_round_trip_and_know_which_are_terminal() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>(), Ok(s));
        }
        assert!(!TaskState::Queued.is_terminal());
        assert!(!TaskState::Leased.is_terminal());
        assert!(TaskState::Quarantined.is_terminal());
    }
}
