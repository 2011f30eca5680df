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
