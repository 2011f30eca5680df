//! The `sp1` backend: Succinct's SP1 zkVM (sp1-sdk 6.x, CPU prover) proving
//! the same RV64IM guest ELFs the trace backend executes.
//!
//! Built only with the `prove` feature: sp1's crates take about 25
//! CPU-minutes to build and need `protoc` with its well-known types
//! (`libprotobuf-dev`). Without it this crate is empty and the registry
//! lists `sp1` as unavailable, saying how to build it.
//!
//! Costs shape the design: starting SP1's CPU prover takes minutes and
//! gigabytes, and setting up one program's keys tens of seconds, while
//! executing a guest takes milliseconds. So the prover is started once per
//! process (on the first proof, or ahead of it through `Backend::warm_up`),
//! proving keys are kept per program, and execution and verification use
//! SP1's light node, which starts in seconds. The node runs SP1 in a
//! warm worker so that all of this survives from one attempt to the next.
//!
//! Proof kinds: `core` and `compressed`. Groth16 and PLONK need gnark and
//! circuit files downloaded at run time; they are reported unavailable with
//! that reason, never faked.
//!
//! The proof bytes are `PNSP1\0\0\0`, u16 version, u32 + the user ELF, then
//! the bincode `SP1ProofWithPublicValues`. The ELF travels with the proof so
//! that a verifier with nothing but the envelope can recompute the
//! verifying key of the program the envelope names.
//!
//! A program's verifying key can be saved and loaded (`keys`): the worker
//! keeps it in the node's artifact store, so a new worker skips the set-up.
//!
//! Architecture invariant: like every backend, no queue, network or files,
//! except SP1's own shared memory in `/dev/shm`, which [`leftovers`] reclaims
//! after dead processes (it is not behind `prove`, so the workspace tests
//! cover it).

use std::time::Duration;

pub mod keys;
pub mod leftovers;
#[cfg(feature = "prove")]
mod prove;

#[cfg(feature = "prove")]
pub use prove::Sp1Backend;

/// The registry name.
pub const BACKEND_NAME: &str = "sp1";

/// Proof kinds this backend makes, the default first.
pub const PROOF_KINDS: &[&str] = &["core", "compressed"];

/// The proving process's memory below which SP1 proofs of this kind fail
/// (`None`: the default kind). Peaks measured on the CPU prover
/// (docs/backends.md): core 10-12 GB, compressed 18 GB, with about 7 GB of
/// that the prover itself. Programs of several full shards need far more
/// (sha256-chain 1,000 rounds: 33-36 GiB), which no floor can know before
/// the program runs. Here, outside the `prove` feature, so that a broker
/// built without SP1 still gives SP1 tasks what they need.
pub fn min_memory_bytes(proof_kind: Option<&str>) -> u64 {
    match proof_kind {
        Some("compressed") => 20 << 30,
        _ => 14 << 30,
    }
}

/// The attempt time limit an SP1 task of this kind gets at least when it
/// asks for none: about twice the slowest one-shard proof measured on 2
/// shared cores (compressed: 995 s, the first in its process; core: 220 s,
/// within the node's 600 s default).
pub fn min_default_timeout(proof_kind: Option<&str>) -> Duration {
    match proof_kind {
        Some("compressed") => Duration::from_secs(2000),
        _ => Duration::ZERO,
    }
}

/// SP1's proving pools and their queues, which it sizes for large machines
/// (4 core provers, 8 recursion provers, ...) and reads from the
/// environment of the proving process (sp1-prover's `worker/config.rs`).
pub const WORKER_POOL_VARIABLES: &[&str] = &[
    "SP1_WORKER_CORE_BUFFER_SIZE",
    "SP1_WORKER_NUM_CORE_WORKERS",
    "SP1_WORKER_NUM_PREPARE_REDUCE_WORKERS",
    "SP1_WORKER_NUM_RECURSION_EXECUTOR_WORKERS",
    "SP1_WORKER_NUM_RECURSION_PROVER_WORKERS",
    "SP1_WORKER_NUM_SETUP_WORKERS",
    "SP1_WORKER_NUM_SPLICING_WORKERS",
    "SP1_WORKER_PREPARE_REDUCE_BUFFER_SIZE",
    "SP1_WORKER_RECURSION_EXECUTOR_BUFFER_SIZE",
    "SP1_WORKER_RECURSION_PROVER_BUFFER_SIZE",
    "SP1_WORKER_SETUP_BUFFER_SIZE",
    "SP1_WORKER_SPLICING_BUFFER_SIZE",
];

/// One attempt's memory below which the node sets SP1's pools to 1. With
/// SP1's default pools an aggregate of two compressed proofs was killed at
/// 24.3 GB resident on a 24 GiB machine, and a compressed fibonacci proof
/// peaked at 17.1 GiB; with every pool at 1 they took 17.4 and 13.9 GiB,
/// for 11-25 % more time (docs/backends.md). The defaults were seen to fit
/// only on a 126 GiB machine, so the line is drawn above the largest
/// failure seen, with room.
pub const SMALL_POOLS_BELOW_BYTES: u64 = 32 << 30;

/// The `SP1_WORKER_*` settings a worker gets when one attempt can have
/// `attempt_memory_bytes`: every pool and queue at 1 below
/// [`SMALL_POOLS_BELOW_BYTES`] (or when the memory is unknown, since a
/// slower proof beats one the kernel kills), nothing above it, and
/// nothing when the operator set any `SP1_WORKER_*` variable: then SP1
/// gets exactly what the operator chose.
pub fn worker_settings(
    inherited: &[(String, String)],
    attempt_memory_bytes: Option<u64>,
) -> Vec<(String, String)> {
    if inherited.iter().any(|(name, _)| name.starts_with("SP1_WORKER_")) {
        return Vec::new();
    }
    if attempt_memory_bytes.is_some_and(|m| m >= SMALL_POOLS_BELOW_BYTES) {
        return Vec::new();
    }
    WORKER_POOL_VARIABLES
        .iter()
        .map(|name| ((*name).to_owned(), "1".to_owned()))
        .collect()
}

/// Proof kinds SP1 has that cannot be made on this kind of machine, and why.
pub const UNAVAILABLE_KINDS: &[(&str, &str)] = &[
    (
        "groth16",
        "SP1's Groth16 wrapping needs gnark (its Docker image or a Go >= 1.24 toolchain at build time) and circuit files downloaded at run time; provernode builds neither in, so use `compressed` and wrap elsewhere",
    ),
    (
        "plonk",
        "SP1's PLONK wrapping needs gnark (its Docker image or a Go >= 1.24 toolchain at build time) and circuit files downloaded at run time; provernode builds neither in, so use `compressed` and wrap elsewhere",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn small_attempts_get_every_pool_at_one() {
        let inherited = vars(&[("PATH", "/usr/bin"), ("SP1_PROVER", "cpu")]);
        for memory in [Some(16 << 30), Some(SMALL_POOLS_BELOW_BYTES - 1), None] {
            let settings = worker_settings(&inherited, memory);
            assert_eq!(settings.len(), WORKER_POOL_VARIABLES.len(), "{memory:?}");
            for (name, value) in &settings {
                assert!(WORKER_POOL_VARIABLES.contains(&name.as_str()), "{name}");
                assert_eq!(value, "1");
            }
        }
    }

    #[test]
    fn large_attempts_keep_sp1s_defaults() {
        assert!(worker_settings(&[], Some(SMALL_POOLS_BELOW_BYTES)).is_empty());
        assert!(worker_settings(&[], Some(126 << 30)).is_empty());
    }

    #[test]
    fn an_operators_choice_is_never_overridden() {
        let inherited = vars(&[("SP1_WORKER_NUM_CORE_WORKERS", "4")]);
        assert!(worker_settings(&inherited, Some(8 << 30)).is_empty());
        assert!(worker_settings(&inherited, None).is_empty());
    }
}
