//! RISC Zero's claim digests and assumptions, as risc0-binfmt and
//! risc0-zkvm 3.1 hash them (`tagged_struct`, `Assumption`, `UnionClaim`,
//! the guest's `KeccakBatcher` and its Merkle mountain range), for the
//! calls whose proofs trace vouches for itself: the keccak accelerator's.
//!
//! A digest is 32 bytes as risc0 keeps it in memory; risc0's `Digest`
//! orders digests by their eight little-endian `u32` words.

use sha2::{Digest as _, Sha256};

use crate::sp1_precompiles::compress_block;

pub type Digest32 = [u8; 32];

/// `KECCAK_CONTROL_ROOT` of risc0-circuit-keccak 4.0.7-rc.1: the control
/// root a single keccak proof's assumption names.
pub const KECCAK_CONTROL_ROOT: Digest32 =
    hex32("abd93866a6878528f29ffc6ea6d9e428cc9ad020a540dd11f1d45e5e9bb6db71");
/// `ALLOWED_CONTROL_ROOT` of risc0-circuit-recursion 4.0.6-rc.1: the
/// control root of a union of keccak proofs.
pub const ALLOWED_CONTROL_ROOT: Digest32 =
    hex32("a54dc85ac99f851c92d7c96d7318af41dbe7c0194edfcc37eb4d422a998c1f56");

const fn hex32(s: &str) -> Digest32 {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        let hi = hexval(b[2 * i]);
        let lo = hexval(b[2 * i + 1]);
        out[i] = hi * 16 + lo;
        i += 1;
    }
    out
}

const fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lowercase hex digit"),
    }
}

/// `tagged_struct(tag, down, [])`: SHA-256(SHA-256(tag) ‖ down… ‖ u16le(n)).
pub fn tagged_struct(tag: &str, down: &[&Digest32]) -> Digest32 {
    let mut h = Sha256::new();
    h.update(Sha256::digest(tag.as_bytes()));
    for d in down {
        h.update(d);
    }
    h.update((down.len() as u16).to_le_bytes());
    h.finalize().into()
}

/// `tagged_struct(tag, down, data)` with u32 data words.
pub fn tagged_struct_with_data(tag: &str, down: &[&Digest32], data: &[u32]) -> Digest32 {
    let mut h = Sha256::new();
    h.update(Sha256::digest(tag.as_bytes()));
    for d in down {
        h.update(d);
    }
    for w in data {
        h.update(w.to_le_bytes());
    }
    h.update((down.len() as u16).to_le_bytes());
    h.finalize().into()
}

/// `ReceiptClaim::ok(image_id, journal).digest()`: a run of `image_id`
/// that halted with exit code 0, committed `journal` and has no assumptions
/// left, the claim `env::verify` asks the host to vouch for.
pub fn receipt_claim_ok(image_id: &Digest32, journal: &[u8]) -> Digest32 {
    let zero = [0u8; 32];
    let journal_digest: Digest32 = Sha256::digest(journal).into();
    let output = tagged_struct("risc0.Output", &[&journal_digest, &zero]);
    let post = tagged_struct_with_data("risc0.SystemState", &[&zero], &[0]);
    tagged_struct_with_data("risc0.ReceiptClaim", &[&zero, image_id, &post, &output], &[0, 0])
}

/// One assumption: a claim proved under a control root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assumption {
    pub claim: Digest32,
    pub control_root: Digest32,
}

impl Assumption {
    pub fn digest(&self) -> Digest32 {
        tagged_struct("risc0.Assumption", &[&self.claim, &self.control_root])
    }
}

/// risc0's `Digest` order: its eight `u32` words, each little-endian.
fn words(d: &Digest32) -> [u32; 8] {
    core::array::from_fn(|i| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]))
}

/// `GuestPeak::merge_item`: the union of two assumptions, smaller digest
/// on the left, under the recursion circuit's allowed control root.
fn union(a: &Assumption, b: &Assumption) -> Assumption {
    let (da, db) = (a.digest(), b.digest());
    let (left, right) = if words(&da) <= words(&db) {
        (da, db)
    } else {
        (db, da)
    };
    Assumption {
        claim: tagged_struct("risc0.UnionClaim", &[&left, &right]),
        control_root: ALLOWED_CONTROL_ROOT,
    }
}

/// The root of `MerkleMountainAccumulator<GuestPeak>` over `items` in
/// insertion order, as the guest's keccak batcher computes it.
pub fn mmr_root(items: &[Assumption]) -> Option<Assumption> {
    let mut peaks: Vec<(Assumption, u32)> = Vec::new();
    for item in items {
        let mut add = (*item, 0u32);
        while let Some(&(last, height)) = peaks.last() {
            if height != add.1 {
                break;
            }
            peaks.pop();
            add = (union(&add.0, &last), height + 1);
        }
        peaks.push(add);
    }
    let mut iter = peaks.into_iter();
    let (mut root, _) = iter.next()?;
    for (peak, _) in iter {
        root = union(&root, &peak);
    }
    Some(root)
}

/// The guest's assumptions list digest: the empty list is zero, and each
/// assumption added goes to the head (`MaybePruned<Assumptions>::add`).
pub fn assumptions_digest(added_in_order: &[Assumption]) -> Digest32 {
    added_in_order.iter().fold([0u8; 32], |list, a| {
        tagged_struct("risc0.Assumptions", &[&a.digest(), &list])
    })
}

/// RISC Zero's output digest: `tagged_struct("risc0.Output", [H(journal),
/// assumptions])`.
pub fn output_digest(journal: &[u8], assumptions: &Digest32) -> Digest32 {
    let journal_digest: Digest32 = Sha256::digest(journal).into();
    tagged_struct("risc0.Output", &[&journal_digest, assumptions])
}

/// The claim of a keccak proof over `permutations` (each state before and
/// after keccak-f): SHA-256 compression, from the standard initial state
/// and with no padding, over each state's 200 bytes padded with zeros to
/// 256, the words then stored little-endian (`compute_keccak_digest` in
/// risc0-circuit-keccak; the guest's `KeccakBatcher` makes the same one
/// through the SHA ecall).
pub fn keccak_claim(permutations: &[([u64; 25], [u64; 25])]) -> Digest32 {
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    for (before, after) in permutations {
        for lanes in [before, after] {
            let mut bytes = [0u8; 256];
            for (chunk, lane) in bytes.chunks_exact_mut(8).zip(lanes.iter()) {
                chunk.copy_from_slice(&lane.to_le_bytes());
            }
            for block in bytes.chunks_exact(64) {
                compress_block(&mut state, block);
            }
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// risc0-binfmt's own `test_tagged_struct` vector does not apply here
    /// (it hashes data words too), so this checks the empty-journal output
    /// digest risc0 publishes, which goes through `tagged_struct`.
    #[test]
    fn the_empty_journal_output_digest_is_risc0s() {
        let d = output_digest(b"", &[0u8; 32]);
        assert_eq!(d, crate::risc0_output_digest(b"").0);
    }

    #[test]
    fn one_assumption_is_its_own_root_and_two_make_a_union() {
        let a = Assumption {
            claim: [1; 32],
            control_root: KECCAK_CONTROL_ROOT,
        };
        let b = Assumption {
            claim: [2; 32],
            control_root: KECCAK_CONTROL_ROOT,
        };
        assert_eq!(mmr_root(&[a]), Some(a));
        let ab = mmr_root(&[a, b]).unwrap();
        assert_eq!(ab, mmr_root(&[b, a]).unwrap(), "a union sorts its sides");
        assert_eq!(ab.control_root, ALLOWED_CONTROL_ROOT);
        assert_eq!(mmr_root(&[]), None);
        // Three: the pair's peak, then the third merged at the end.
        let c = Assumption {
            claim: [3; 32],
            control_root: KECCAK_CONTROL_ROOT,
        };
        assert_eq!(mmr_root(&[a, b, c]).unwrap(), union(&ab, &c));
    }
}
