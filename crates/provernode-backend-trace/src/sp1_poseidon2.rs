//! SP1's POSEIDON2 precompile (0x00_00_01_33): the Poseidon2 permutation
//! over KoalaBear, width 16, in place on 8 words (16 field elements, two per
//! 64-bit word, low half first), as SP1 6.10's executor computes it
//! (`minimal/precompiles/poseidon2.rs`, `sp1_hypercube::inner_perm`).
//!
//! The permutation is the very implementation SP1 uses: Plonky3's
//! `Poseidon2` with KoalaBear's diffusion matrix, from the same crates.io
//! releases SP1 depends on (`p3-poseidon2`, `p3-koala-bear`
//! 0.4.3-succinct), with SP1's round constants (`sp1_poseidon2_constants`).

use std::sync::OnceLock;

use p3_field::{AbstractField, PrimeField32};
use p3_koala_bear::{DiffusionMatrixKoalaBear, KoalaBear};
use p3_poseidon2::{Poseidon2, Poseidon2ExternalMatrixGeneral};
use p3_symmetric::Permutation;

use crate::machine::{Machine, Trap};
use crate::sp1_poseidon2_constants::RC16;
use crate::sp1_precompiles::{read_words, write_words};

type Perm = Poseidon2<KoalaBear, Poseidon2ExternalMatrixGeneral, DiffusionMatrixKoalaBear, 16, 3>;

fn perm() -> &'static Perm {
    static PERM: OnceLock<Perm> = OnceLock::new();
    PERM.get_or_init(|| {
        let row = |r: &[u32; 16]| r.map(KoalaBear::from_canonical_u32);
        let mut external: Vec<[KoalaBear; 16]> = RC16[..4].iter().map(row).collect();
        external.extend(RC16[24..].iter().map(row));
        let internal: Vec<KoalaBear> = RC16[4..24]
            .iter()
            .map(|r| KoalaBear::from_canonical_u32(r[0]))
            .collect();
        Perm::new(
            8,
            external,
            Poseidon2ExternalMatrixGeneral,
            20,
            internal,
            DiffusionMatrixKoalaBear,
        )
    })
}

/// The permutation of 16 field elements given as u32s.
pub fn permute(input: [u32; 16]) -> [u32; 16] {
    perm()
        .permute(input.map(KoalaBear::from_canonical_u32))
        .map(|x| x.as_canonical_u32())
}

pub fn poseidon2(m: &mut Machine<true>, ptr: u64) -> Result<(), Trap> {
    if ptr % 8 != 0 {
        return Err(Trap::Fault(provernode_core::Fault::BadSyscall {
            detail: format!("POSEIDON2 pointer {ptr:#x} is not 8-aligned"),
        }));
    }
    let words = read_words(m, ptr, 8)?;
    let mut state = [0u32; 16];
    for (i, w) in words.iter().enumerate() {
        state[2 * i] = *w as u32;
        state[2 * i + 1] = (*w >> 32) as u32;
    }
    let out = permute(state);
    let packed: Vec<u64> = out
        .chunks_exact(2)
        .map(|pair| (u64::from(pair[1]) << 32) | u64::from(pair[0]))
        .collect();
    write_words(m, ptr, &packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permutation of the all-zero state as SP1 6.10's executor gives it
    /// (the POSEIDON2 precompile on the probe guest, `provernode execute
    /// --backend sp1`); CI checks more states against the live executor.
    #[test]
    fn the_zero_state_permutes_as_sp1s_executor_does() {
        assert_eq!(
            permute([0; 16]),
            [
                0x08ad846c, 0x6fd21fd2, 0x675dd8e6, 0x1dc38dbd, 0x28227f64, 0x2381ae75, 0x101d106d,
                0x07d9b3ae, 0x49b7e2a9, 0x40b1fafc, 0x7b209658, 0x772681b6, 0x7aec7a2c, 0x605cffd0,
                0x135c40d7, 0x2cacc752,
            ]
        );
    }
}
