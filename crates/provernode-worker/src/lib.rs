//! Child-process isolation for proof attempts.
//!
//! The parent side ([`Slot`]) owns at most one `provernode worker` child at a
//! time, in its own process group, and hands it attempts through request and
//! response files in a private directory (mode 0700, on tmpfs when
//! `/dev/shm` exists). A worker may stay warm across attempts and is
//! recycled after a number of attempts or past a resident-memory threshold.
//! Each attempt runs under a wall-clock limit (the whole process group is
//! killed) and a memory limit enforced from outside the child: a cgroup
//! (v2 `memory.max` or v1 `memory.limit_in_bytes`) where one can be created,
//! otherwise a watchdog on resident memory. Every way an attempt can end is
//! classified into one [`Cause`](provernode_core::Cause).
//!
//! The child side ([`child::serve`]) reads requests, runs the backend and
//! writes responses; it never touches the queue.
//!
//! Architecture invariant: a proof is never computed in the node's own
//! process; whatever a backend does (abort, leak, exhaust memory, hang) ends
//! one child, never its parent.

pub mod child;
mod environment;
mod memlimit;
mod orphans;
mod protocol;
mod supervisor;

pub use environment::{passes_to_worker, worker_environment};
pub use memlimit::{detect_limiter, workers_memory_used, LimiterKind};
pub use orphans::{reap_orphans, ReapReport};
pub use protocol::{AttemptSpec, PROTOCOL_PREFIX};
pub use supervisor::{scratch_root, AttemptResult, ExitHook, Slot, SlotConfig, StopReason, WorkerMode};
