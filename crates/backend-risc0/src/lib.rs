//! The `risc0` backend: RISC Zero's zkVM proving the same RV32IM guest ELFs
//! the trace backend executes, combined with the v1compat kernel.
//!
//! Built only with the `prove` feature: risc0's circuits are large C++
//! builds. Without it this crate is empty and the registry lists `risc0` as
//! unavailable, saying how to build it.
//!
//! The proof bytes are `PNRISC0\0`, u16 version, u32 + the user ELF, then the
//! bincode `Receipt`. The ELF travels with the proof so that a verifier with
//! nothing but the envelope can recompute the image id and check that the
//! receipt is for the program the envelope names (SHA-256 of that ELF).
//! Receipts are checked with dev mode disabled at build time.
//!
//! Architecture invariant: like every backend, no queue, network or files.

#[cfg(feature = "prove")]
mod prove;

#[cfg(feature = "prove")]
pub use prove::Risc0Backend;

/// The registry name.
pub const BACKEND_NAME: &str = "risc0";
