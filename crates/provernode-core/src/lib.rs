//! Types shared by every provernode crate.
//!
//! This crate owns the vocabulary of the node: [`Digest`] and [`ProgramId`],
//! the guest [`Abi`]s, [`Program`], the [`ProofEnvelope`] file format and the
//! [`Backend`] trait every proving system implements.
//!
//! Architecture invariant: this crate does no I/O and spawns nothing; it is
//! plain data, encoding and traits.

pub mod aggregate;
mod backend;
mod envelope;
mod ids;
pub mod input;
mod program;
pub mod proof_frame;
mod readiness;
pub mod split;
mod task;

pub use backend::{
    Backend, BackendError, Execution, Fault, KeysRefused, Leftover, Limits, ProveOptions, Unavailable,
    Verified, VerifyError,
};
pub use envelope::{EnvelopeError, ProofEnvelope, ENVELOPE_FORMAT_VERSION, ENVELOPE_MAGIC};
pub use ids::{Digest, DigestParseError, ProgramId};
pub use program::{
    sp1_untrusted_heap, sp1_untrusted_note, Abi, Program, ProgramError, ProgramFormat, R0bf,
    RISC0_V1COMPAT_KERNEL_SHA256,
};
pub use readiness::{Component, Readiness, Status as ComponentStatus};
pub use task::{Cause, TaskLimits, TaskState, TimeoutRule};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    use sha2::{Digest as _, Sha256};
    Digest(Sha256::digest(bytes).into())
}
