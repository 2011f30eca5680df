//! SP1 v6's precompile system calls, with the semantics of SP1 6.10's
//! executor (`crates/core/executor/src/minimal/precompiles/` in
//! succinctlabs/sp1).
//!
//! SP1 v6 memory is made of 64-bit words, and its precompiles read and write
//! whole words: a SHA-256 schedule is 64 words each holding one 32-bit value
//! (upper half zero when written), a Keccak state 25 words. Buffers must be
//! 8-aligned, as every guest library allocates them.

use crate::machine::{Machine, Trap};
use crate::memory::MemError;

fn bad(detail: String) -> Trap {
    Trap::Fault(provernode_core::Fault::BadSyscall { detail })
}

fn aligned(what: &str, ptr: u64) -> Result<(), Trap> {
    if ptr % 8 != 0 {
        return Err(bad(format!("{what} pointer {ptr:#x} is not 8-aligned")));
    }
    Ok(())
}

/// Reads `n` 64-bit words at an 8-aligned `ptr`.
pub fn read_words(m: &Machine<true>, ptr: u64, n: usize) -> Result<Vec<u64>, Trap> {
    let bytes = m.mem.read_bytes(ptr, (n * 8) as u64).map_err(Trap::from)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// Writes 64-bit words at an 8-aligned `ptr`.
pub fn write_words(m: &mut Machine<true>, ptr: u64, words: &[u64]) -> Result<(), Trap> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    m.host_write(ptr, &bytes).map_err(|e: MemError| Trap::from(e))
}

/// SHA_EXTEND (0x00_30_01_05): extends w[0..16] to the 64-word schedule in
/// place. Only the low 32 bits of each word are read.
pub fn sha_extend(m: &mut Machine<true>, w_ptr: u64, arg2: u64) -> Result<(), Trap> {
    aligned("SHA_EXTEND", w_ptr)?;
    if arg2 != 0 {
        return Err(bad(format!(
            "SHA_EXTEND takes 0 as its second argument, not {arg2:#x}"
        )));
    }
    let mut w: Vec<u32> = read_words(m, w_ptr, 64)?.into_iter().map(|x| x as u32).collect();
    extend_schedule(&mut w);
    let extended: Vec<u64> = w[16..].iter().map(|&x| u64::from(x)).collect();
    write_words(m, w_ptr + 16 * 8, &extended)
}

const SHA256_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA_COMPRESS (0x00_01_01_06): the 64 rounds over the schedule at `w_ptr`
/// (64 words, as given: the precompile does not recompute it from the block,
/// which is why this is not `sha2::compress256`, and `sha2` builds here
/// without its `compress` feature so as not to rebuild every crate of the
/// real backends that uses it), added into the state at `h_ptr` (8 words).
pub fn sha_compress(m: &mut Machine<true>, w_ptr: u64, h_ptr: u64) -> Result<(), Trap> {
    aligned("SHA_COMPRESS schedule", w_ptr)?;
    aligned("SHA_COMPRESS state", h_ptr)?;
    let hx: Vec<u32> = read_words(m, h_ptr, 8)?.into_iter().map(|x| x as u32).collect();
    let w: Vec<u32> = read_words(m, w_ptr, 64)?.into_iter().map(|x| x as u32).collect();
    let mut state = [0u32; 8];
    state.copy_from_slice(&hx);
    compress_rounds(&mut state, &w);
    let out: Vec<u64> = state.iter().map(|&v| u64::from(v)).collect();
    write_words(m, h_ptr, &out)
}

/// SHA-256's message schedule: w[16..64] from w[0..16].
pub fn extend_schedule(w: &mut [u32]) {
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = s1.wrapping_add(w[i - 16]).wrapping_add(s0).wrapping_add(w[i - 7]);
    }
}

/// SHA-256's 64 rounds over a whole schedule, added into `state`.
pub fn compress_rounds(state: &mut [u32; 8], w: &[u32]) {
    let hx = *state;
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] =
        [hx[0], hx[1], hx[2], hx[3], hx[4], hx[5], hx[6], hx[7]];
    for (k, w_i) in SHA256_K.iter().zip(w) {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let temp1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(*k)
            .wrapping_add(*w_i);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let temp2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(temp1);
        d = c;
        c = b;
        b = a;
        a = temp1.wrapping_add(temp2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-256's compression of one 64-byte block (big-endian words) into
/// `state`.
pub fn compress_block(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    extend_schedule(&mut w);
    compress_rounds(state, &w);
}

/// KECCAK_PERMUTE (0x00_01_01_09): keccak-f[1600] over the 25-word state at
/// `state_ptr`, in place.
pub fn keccak_permute(m: &mut Machine<true>, state_ptr: u64, arg2: u64) -> Result<(), Trap> {
    aligned("KECCAK_PERMUTE", state_ptr)?;
    if arg2 != 0 {
        return Err(bad(format!(
            "KECCAK_PERMUTE takes 0 as its second argument, not {arg2:#x}"
        )));
    }
    let words = read_words(m, state_ptr, 25)?;
    let mut state = [0u64; 25];
    state.copy_from_slice(&words);
    keccak::f1600(&mut state);
    write_words(m, state_ptr, &state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sha2::Digest as _;

    use super::*;
    use crate::elf::{Image, Segment, PF_R, PF_X};

    const BASE: u64 = 0x7800_0000;

    fn machine() -> Machine<true> {
        let image = Image {
            entry: BASE,
            segments: vec![Segment {
                vaddr: BASE,
                data: 0x0000_0073u32.to_le_bytes().to_vec(),
                mem_size: 4,
                flags: PF_R | PF_X,
            }],
            sp1_untrusted_heap: None,
            sp1_trap_context: None,
        };
        Machine::new(&image, 0x1000, 1 << 37, 1 << 24).unwrap()
    }

    /// SHA-256 of one padded block through SHA_EXTEND + SHA_COMPRESS, as the
    /// patched `sha2` of sp1-zkvm calls them, equals `sha2`'s digest.
    #[test]
    fn extend_then_compress_hashes_a_block_as_sha2_does() {
        let mut m = machine();
        let msg = b"abc";
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(msg);
        block[3] = 0x80;
        block[63] = 24;
        let w: Vec<u64> = block
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .chain(std::iter::repeat_n(0xdead_beef_0000_0000, 48))
            .collect();
        let (w_ptr, h_ptr) = (0x10_0000, 0x20_0000);
        write_words(&mut m, w_ptr, &w).unwrap();
        let iv = [
            0x6a09e667u64,
            0xbb67ae85,
            0x3c6ef372,
            0xa54ff53a,
            0x510e527f,
            0x9b05688c,
            0x1f83d9ab,
            0x5be0cd19,
        ];
        write_words(&mut m, h_ptr, &iv).unwrap();
        sha_extend(&mut m, w_ptr, 0).unwrap();
        // The extended words are written whole: their upper halves are zero.
        assert!(read_words(&m, w_ptr, 64).unwrap().iter().all(|w| w >> 32 == 0));
        sha_compress(&mut m, w_ptr, h_ptr).unwrap();
        let digest: Vec<u8> = read_words(&m, h_ptr, 8)
            .unwrap()
            .iter()
            .flat_map(|w| (*w as u32).to_be_bytes())
            .collect();
        assert_eq!(digest, sha2::Sha256::digest(msg).to_vec());
    }

    /// The published Keccak-f[1600] test vector: the permutation of the
    /// all-zero state (XKCP's KeccakF-1600 intermediate values).
    #[test]
    fn keccak_permute_of_zero_is_the_published_first_lane() {
        let mut m = machine();
        let ptr = 0x30_0000;
        write_words(&mut m, ptr, &[0u64; 25]).unwrap();
        keccak_permute(&mut m, ptr, 0).unwrap();
        let state = read_words(&m, ptr, 25).unwrap();
        assert_eq!(state[0], 0xF1258F7940E1DDE7);
        assert_eq!(state[24], 0xEAF1FF7B5CECA249);
    }

    #[test]
    fn compress_block_is_sha256s_compression() {
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24;
        let mut state = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
        ];
        compress_block(&mut state, &block);
        let digest: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(digest, sha2::Sha256::digest(b"abc").to_vec());
    }

    #[test]
    fn misaligned_buffers_and_nonzero_arguments_are_refused_by_name() {
        let mut m = machine();
        let err = format!("{:?}", sha_extend(&mut m, 0x10_0004, 0).unwrap_err());
        assert!(
            err.contains("SHA_EXTEND pointer 0x100004 is not 8-aligned"),
            "{err}"
        );
        let err = format!("{:?}", keccak_permute(&mut m, 0x10_0000, 1).unwrap_err());
        assert!(err.contains("second argument"), "{err}");
    }
}
