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

use std::time::Duration;

#[cfg(feature = "prove")]
mod prove;
#[cfg(feature = "prove")]
mod split;

#[cfg(feature = "prove")]
pub use prove::Risc0Backend;
#[cfg(feature = "prove")]
pub use split::SplitCosts;

/// The registry name.
pub const BACKEND_NAME: &str = "risc0";

/// Proof kinds this backend makes, the default first.
pub const PROOF_KINDS: &[&str] = &["composite", "succinct"];

/// The proving process's memory below which risc0 proofs of this kind fail
/// (`None`: the default kind). Composite: the smallest segment
/// [`segment_po2`] picks, 2^16 rows (measured peak 0.6 GiB). Succinct: the
/// recursion that lifts and joins segments peaked at 1.4 GiB whatever the
/// segment size (docs/backends.md). Here, outside the `prove` feature, so
/// that a broker built without risc0 knows it too.
pub fn min_memory_bytes(proof_kind: Option<&str>) -> u64 {
    match proof_kind {
        Some("succinct") => 1536 << 20,
        _ => (1u64 << MIN_FITTED_SEGMENT_PO2) * PEAK_BYTES_PER_SEGMENT_ROW,
    }
}

/// The attempt time limit a risc0 task of this kind gets at least when it
/// asks for none: about twice the slowest one-segment proof measured on 2
/// shared cores (succinct: 437 s; composite: 224 s, within the node's 600 s
/// default). Longer programs need a limit of their own (700-1,700 cycles a
/// second there).
pub fn min_default_timeout(proof_kind: Option<&str>) -> Duration {
    match proof_kind {
        Some("succinct") => Duration::from_secs(900),
        _ => Duration::ZERO,
    }
}

/// risc0's own segment size (log2 of its rows), used when nothing asks for
/// less.
pub const DEFAULT_SEGMENT_PO2: u32 = 20;

/// The smallest segment [`segment_po2`] picks to fit a memory limit.
/// Every segment pays its own paging, about 30 k cycles here: a 2^16
/// segment carries 35 k user cycles, a 2^18 one 231 k, a 2^20 one 1.01 M
/// (risc0 3.1.0-rc.1, our guests). And 2^15 is broken in that release:
/// its segments end after a few dozen user cycles (12,118 segments for
/// sha256-chain 1,000 rounds against 231 at 2^16), see [`UNUSABLE_SEGMENT_PO2`].
pub const MIN_FITTED_SEGMENT_PO2: u32 = 16;

/// A segment size risc0 3.1.0-rc.1 cannot use: with 2^15-row segments its
/// executor closes each segment after 10-60 user cycles, so a proof takes
/// hundreds of times the segments (measured with fibonacci, sha256 and
/// sha256-chain; 2^14 and 2^16 behave).
pub const UNUSABLE_SEGMENT_PO2: u32 = 15;

// The fitted sizes must skip the broken one.
const _: () = assert!(MIN_FITTED_SEGMENT_PO2 > UNUSABLE_SEGMENT_PO2);

/// Peak resident memory of a proving process per row of its largest
/// segment. Measured on the CPU prover (docs/backends.md): 9.2 KiB per row
/// for 2^16, 2^18 and 2^20 segments (0.6, 2.3 and 9.2 GiB); 10 KiB leaves
/// room for the rest of the worker process.
pub const PEAK_BYTES_PER_SEGMENT_ROW: u64 = 10 << 10;

/// The segment size a proof uses. The operator's setting
/// (`PROVERNODE_RISC0_SEGMENT_PO2`) wins. Otherwise risc0's default, lowered
/// until a segment's peak fits `prover_memory_bytes` (the node's memory
/// limit for the attempt): without this, a program of more than about
/// 2^19 cycles needs 5-10 GB with the default segment and the node's
/// default 4 GiB limit kills every attempt. Smaller segments trade a
/// larger composite proof and a little speed for memory (2^18 against
/// 2^20 for fibonacci n = 10^5: 2.3 GiB against 9.2 GiB, 12 % slower).
pub fn segment_po2(configured: Option<u32>, prover_memory_bytes: Option<u64>) -> u32 {
    if let Some(po2) = configured {
        return po2;
    }
    let Some(limit) = prover_memory_bytes else {
        return DEFAULT_SEGMENT_PO2;
    };
    (MIN_FITTED_SEGMENT_PO2..=DEFAULT_SEGMENT_PO2)
        .rev()
        .find(|po2| (1u64 << po2).saturating_mul(PEAK_BYTES_PER_SEGMENT_ROW) <= limit)
        .unwrap_or(MIN_FITTED_SEGMENT_PO2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_segment_fits_the_memory_limit_unless_the_operator_chose_one() {
        // Nothing limits the process: risc0's default.
        assert_eq!(segment_po2(None, None), 20);
        // The node's default limit (4 GiB) and SP1-sized ones.
        assert_eq!(segment_po2(None, Some(4 * GIB)), 18);
        assert_eq!(segment_po2(None, Some(6 * GIB)), 19);
        assert_eq!(segment_po2(None, Some(10 * GIB)), 20);
        assert_eq!(
            segment_po2(None, Some(64 * GIB)),
            20,
            "never above risc0's default"
        );
        // Exactly the estimate fits; a byte less does not.
        let at_18 = (1 << 18) * PEAK_BYTES_PER_SEGMENT_ROW;
        assert_eq!(segment_po2(None, Some(at_18)), 18);
        assert_eq!(segment_po2(None, Some(at_18 - 1)), 17);
        // 1 GiB fits the smallest size the backend picks, 2^16 (640 MiB).
        assert_eq!(segment_po2(None, Some(1 << 30)), 16);
        // Too little for any segment: the smallest, and the cage decides.
        assert_eq!(segment_po2(None, Some(1 << 20)), MIN_FITTED_SEGMENT_PO2);
        assert_eq!(segment_po2(None, Some(0)), MIN_FITTED_SEGMENT_PO2);
        // The operator's knob wins either way.
        assert_eq!(segment_po2(Some(21), Some(4 * GIB)), 21);
        assert_eq!(segment_po2(Some(16), None), 16);
    }
}
