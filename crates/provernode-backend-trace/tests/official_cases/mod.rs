//! The official guests of `fixtures/official-guests/` with inputs and what
//! SP1 6.10's own executor gives for them (public output, instruction
//! count), measured with `provernode execute --backend sp1 --json`. Shared
//! by the trace backend's tests (which must give the same) and the SP1
//! backend's (which check the table against the live executor).

#![allow(dead_code)]

use std::path::PathBuf;

use provernode_core::{input, Program};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read the fixture {}: {e}", path.display()))
}

pub fn program(name: &str) -> Program {
    Program::from_elf(name, fixture(name)).unwrap()
}

/// Deterministic bytes, the same the SP1 measurement used.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

pub struct Case {
    pub program: &'static str,
    pub items: Vec<Vec<u8>>,
    pub output_hex: &'static str,
    pub cycles: u64,
}

pub fn cases() -> Vec<Case> {
    let u64_item = |n: u64| n.to_le_bytes().to_vec();
    let u32_item = |n: u32| n.to_le_bytes().to_vec();
    vec![
        Case {
            program: "sp1-cluster-fibonacci.elf",
            items: input::parse_sp1_stdin(&fixture("sp1-cluster-fibonacci.stdin")).unwrap(),
            output_hex: "e80300004d170000430e0000",
            cycles: 18_320,
        },
        Case {
            program: "sp1-cluster-artifacts-fibonacci.elf",
            items: vec![u32_item(1000)],
            output_hex: "",
            cycles: 14_729,
        },
        Case {
            program: "sp1-cluster-artifacts-fibonacci.elf",
            items: vec![u32_item(5000)],
            output_hex: "",
            cycles: 50_729,
        },
        Case {
            program: "sp1-gpu-fibonacci.elf",
            items: vec![u64_item(100)],
            output_hex: "",
            cycles: 6_866,
        },
        Case {
            program: "sp1-gpu-fibonacci.elf",
            items: vec![u64_item(20)],
            output_hex: "",
            cycles: 6_111,
        },
        Case {
            program: "sp1-gpu-loop.elf",
            items: vec![u64_item(100)],
            output_hex: "",
            cycles: 5_247,
        },
        Case {
            program: "sp1-gpu-loop.elf",
            items: vec![u64_item(20)],
            output_hex: "",
            cycles: 4_927,
        },
        // SHA_EXTEND and SHA_COMPRESS, on 64 and 157 blocks.
        Case {
            program: "sp1-gpu-sha2.elf",
            items: vec![vec![0; 4096]],
            output_hex: "2000000000000000ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7",
            cycles: 28_824,
        },
        Case {
            program: "sp1-gpu-sha2.elf",
            items: vec![pattern(10_000)],
            output_hex: "200000000000000096c3dca16c772bef5b8ef2ae71f2766b3ecc190e6d6ed9c87fc6cf8e74a6453f",
            cycles: 53_595,
        },
        // KECCAK_PERMUTE. The program commits keccak256 of an empty buffer
        // whatever its input (its output is the well-known empty hash), but
        // its instruction count follows the input.
        Case {
            program: "sp1-gpu-keccak.elf",
            items: vec![vec![0; 4096]],
            output_hex: "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
            cycles: 37_912,
        },
        Case {
            program: "sp1-gpu-keccak.elf",
            items: vec![pattern(10_000)],
            output_hex: "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
            cycles: 80_338,
        },
    ]
}
