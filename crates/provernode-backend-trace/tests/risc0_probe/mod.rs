//! The RISC Zero-only probe guest
//! (`crates/provernode-guests/guests/programs/risc0-accel-probe.c`): it makes
//! one v1compat call that provernode's runtime never makes (BIGINT2,
//! POSEIDON2, INPUT, SYS_PIPE, SYS_KECCAK, a PAUSE halt, SYS_ARGV) on data
//! from its input and commits what came back. Shared by the trace backend's
//! tests and the risc0 backend's (which run the same cases on risc0's own
//! executor).

#![allow(dead_code)]

use std::path::PathBuf;

use provernode_core::Program;

pub const OP_BIGINT2: u32 = 1;
pub const OP_POSEIDON2: u32 = 2;
pub const OP_INPUT: u32 = 3;
pub const OP_PIPE: u32 = 4;
pub const OP_KECCAK: u32 = 5;
pub const OP_PAUSE: u32 = 6;
pub const OP_ARGV: u32 = 7;
pub const OP_KECCAK_BATCH: u32 = 8;

pub const POSEIDON2_IS_ELEM: u32 = 0x8000_0000;
pub const POSEIDON2_CHECK_OUT: u32 = 0x4000_0000;

/// RISC Zero's published Poseidon2 vector (risc0-zkp
/// `poseidon2_test_vectors`): the permutation of the cells 0, 1, .., 23.
pub const POSEIDON2_OF_0_TO_23: [u32; 24] = [
    0x2ed3e23d, 0x12921fb0, 0x0e659e79, 0x61d81dc9, 0x32bae33b, 0x62486ae3, 0x1e681b60, 0x24b91325,
    0x2a2ef5b9, 0x50e8593e, 0x5bc818ec, 0x10691997, 0x35a14520, 0x2ba6a3c5, 0x279d47ec, 0x55014e81,
    0x5953a67f, 0x2f403111, 0x6b8828ff, 0x1801301f, 0x2749207a, 0x3dc9cf21, 0x3c985ba2, 0x57a99864,
];

pub fn program() -> Program {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../provernode-guests/elf/risc0/risc0-accel-probe.elf");
    let elf = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Program::from_elf("risc0-accel-probe.elf", elf).unwrap()
}

/// The probe's input: the op, then its words.
pub fn input(op: u32, words: &[u32]) -> Vec<u8> {
    std::iter::once(op)
        .chain(words.iter().copied())
        .flat_map(u32::to_le_bytes)
        .collect()
}

/// Deterministic words (xorshift), so every run checks the same values.
pub struct Words(u64);

impl Words {
    pub fn new(seed: u64) -> Self {
        Words(seed | 1)
    }
    pub fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    pub fn take(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// (name, input) of every run that completes; its journal must be equal on
/// trace and on risc0.
pub fn cases() -> Vec<(String, Vec<u8>)> {
    let mut w = Words::new(0x5eed_2026);
    let mut cases = Vec::new();
    for i in 0..4 {
        // x, y below an odd 256-bit modulus with its top bit set.
        let mut n = w.take(8);
        n[0] |= 1;
        n[7] |= 0x8000_0000;
        let mut x = w.take(8);
        let mut y = w.take(8);
        x[7] &= 0x7fff_ffff;
        y[7] &= 0x7fff_ffff;
        cases.push((
            format!("BIGINT2 modmul_256 #{i}"),
            input(OP_BIGINT2, &[x, y, n].concat()),
        ));
    }
    // secp256k1's field prime.
    let p = [
        0xfffffc2f, 0xfffffffe, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
    ];
    let (x, y) = (w.take(8), w.take(8));
    let (mut x, mut y) = (x, y);
    x[7] &= 0x7fff_ffff;
    y[7] &= 0x7fff_ffff;
    cases.push((
        "BIGINT2 modmul_256 secp256k1 p".into(),
        input(OP_BIGINT2, &[x, y, p.to_vec()].concat()),
    ));
    // mul_256 (zero modulus): a product that fits 256 bits, so BIGINT takes it too.
    let mut x = w.take(8);
    let mut y = w.take(8);
    x[4..].fill(0);
    y[4..].fill(0);
    cases.push((
        "BIGINT2 mul_256".into(),
        input(OP_BIGINT2, &[x, y, vec![0; 8]].concat()),
    ));

    let cells: Vec<u32> = (0..24).collect();
    let mut p2 = vec![POSEIDON2_IS_ELEM | 1, 1];
    p2.extend(&cells[16..24]);
    p2.extend([0; 8]);
    p2.extend(&cells[..16]);
    cases.push((
        "POSEIDON2 elements, with state (published vector)".into(),
        input(OP_POSEIDON2, &p2),
    ));
    let mut p2 = vec![POSEIDON2_IS_ELEM | POSEIDON2_CHECK_OUT | 1, 1];
    p2.extend(&cells[16..24]);
    p2.extend(&POSEIDON2_OF_0_TO_23[..8]);
    p2.extend(&cells[..16]);
    cases.push((
        "POSEIDON2 CHECK_OUT of the right hash".into(),
        input(OP_POSEIDON2, &p2),
    ));
    let mut p2 = vec![3, 1];
    p2.extend(w.take(8).iter().map(|v| v % 0x7800_0001));
    p2.extend([0; 8]);
    p2.extend(w.take(24));
    cases.push((
        "POSEIDON2 three blocks of 16-bit halves, with state".into(),
        input(OP_POSEIDON2, &p2),
    ));
    let mut p2 = vec![POSEIDON2_IS_ELEM | 2, 0];
    p2.extend([0; 16]);
    p2.extend(w.take(32).iter().map(|v| v % 0x7800_0001));
    cases.push((
        "POSEIDON2 two element blocks, no state".into(),
        input(OP_POSEIDON2, &p2),
    ));

    cases.push(("INPUT".into(), input(OP_INPUT, &[])));
    let mut pipe = vec![12];
    pipe.extend(w.take(3));
    cases.push(("SYS_PIPE".into(), input(OP_PIPE, &pipe)));
    cases.push(("SYS_KECCAK permute".into(), input(OP_KECCAK, &w.take(50))));
    for n in [1u32, 3] {
        let states = keccak_batch_states(&mut w, n as usize);
        cases.push((
            format!("keccak accelerator: {n} permutation(s), prove, SYS_VERIFY_INTEGRITY2"),
            input(OP_KECCAK_BATCH, &[vec![n], states].concat()),
        ));
    }
    cases
}

pub fn keccak_batch_states(w: &mut Words, n: usize) -> Vec<u32> {
    w.take(50 * n)
}

/// The keccak accelerator case with the claim flipped in one bit before the
/// prove: risc0's executor takes it on trust (its prover would fail to
/// resolve it); trace refuses it.
pub fn keccak_batch_forged() -> Vec<u8> {
    let mut w = Words::new(77);
    input(
        OP_KECCAK_BATCH,
        &[vec![2 | 1 << 16], keccak_batch_states(&mut w, 2)].concat(),
    )
}

/// POSEIDON2 with CHECK_OUT against a wrong output: both refuse it.
pub fn poseidon2_wrong_check_out() -> Vec<u8> {
    let cells: Vec<u32> = (0..24).collect();
    let mut p2 = vec![POSEIDON2_IS_ELEM | POSEIDON2_CHECK_OUT | 1, 0];
    p2.extend([0; 8]);
    p2.extend([7; 8]);
    p2.extend(&cells[..16]);
    input(OP_POSEIDON2, &p2)
}
