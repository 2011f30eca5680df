//! The official guests of `fixtures/official-guests/` with inputs and what
//! SP1 6.10's own executor gives for them (public output, instruction
//! count), measured with `provernode execute --backend sp1 --json`. Shared
//! by the trace backend's tests (which must give the same) and the SP1
//! backend's (which check the table against the live executor).

#![allow(dead_code)]

use std::path::PathBuf;

use provernode_core::{input, Program};

/// A fixture's bytes; a `.zst` file (as committed upstream) is decompressed.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests")
        .join(name);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read the fixture {}: {e}", path.display()));
    if !name.ends_with(".zst") {
        return bytes;
    }
    let mut decoder = ruzstd::StreamingDecoder::new(bytes.as_slice())
        .unwrap_or_else(|e| panic!("{} is not zstd: {e}", path.display()));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut out).unwrap();
    out
}

/// The SP1-only probe guest
/// (`crates/provernode-guests/guests/programs/sp1-precompile-probe.c`): it
/// calls the precompile its input names on buffers from its input and
/// commits the buffers.
pub fn probe() -> Program {
    sp1_test_guest("sp1-precompile-probe.elf")
}

/// One of our SP1-only test guests (`crates/provernode-guests/elf/sp1/`).
pub fn sp1_test_guest(name: &str) -> Program {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../provernode-guests/elf/sp1")
        .join(name);
    let elf = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Program::from_elf(name, elf).unwrap()
}

/// The probe's input: call `code` once with a0 = buffer `a` and a1 = buffer
/// `b` (or `arg` when `b` is empty), as one stdin item.
pub fn probe_input(code: u64, a: &[u64], b: &[u64], arg: u64) -> Vec<u8> {
    probe_input_repeated(code, a, b, arg, 1)
}

/// The same, calling it `repeat` times (for measuring one call's cost).
pub fn probe_input_repeated(code: u64, a: &[u64], b: &[u64], arg: u64, repeat: u64) -> Vec<u8> {
    let mut item = Vec::new();
    for w in [code, a.len() as u64, b.len() as u64, arg, repeat]
        .iter()
        .chain(a)
        .chain(b)
    {
        item.extend_from_slice(&w.to_le_bytes());
    }
    input::encode_items(&[item])
}

pub fn program(name: &str) -> Program {
    Program::from_elf(name, fixture(name)).unwrap()
}

/// Deterministic bytes, the same the SP1 measurement used.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

/// RSP's public values for that block, as SP1's executor commits them.
pub const RSP_OUTPUT_HEX: &str = "20000000000000009732d461a75fcdcdefea1a34aa945341af35a549ed4b626828c8d19ca2e9a81120000000000000001dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d4934714000000000000004838b106fce9647bdf1e7877bf73ce8b0bad5f9720000000000000003dd5e57c39f71dd6e2493a74d3edec884f41abbc9d5ac99c4defcc07d99d453a2000000000000000036ead9a7e1dd1dfdda1579a5066f3638818b7aa01a722defc85b24e0ea5bb7a200000000000000035ac85ef94633abd7fdfa1802b64a9589d7818083b756e0df27e42fd2c3cf74f0120000000000000001f3d8c5cdded1c57de316facc317bd7522a4879a92fe8a849b350bbb8a325155000100000000000000ed115963814c2c3e8b507ae35856ca21001289364138060e9880f9441081c0183c8704a048888605927a43211ac5b3032121089c60a82884b42b404aad28020444802805d08e6a6adae16a304070e70865847a81f4a8308050bc46810c441c3e144329226a2268dad69f9c08882d092207e0502cc2066a426823d4504a6375d14316585b00c669182860790a2327c655435c1fa1403cbce42f68c280d740124f40017b02d32ab006f19af6984086ba04afdb5400b0002824fb4720450f8130cbe0fcef300e7e6309750a400378b81402252e6a509921d00d8981671176e33264b22c202e07f882085ed186a8071e8867781900010804c9f80928936150dea9200000000000000000000000000000000000000000000000000000000000000000000000000000002fd26b01000000002c05b402000000008347eb00000000006f9d1f69000000002000000000000000d179dbedc12b562cda9eb2aa02b4409164980313fff91fccb174d58e2aee81880800000000000000000000000000000001da6e8b06000000000100000800000000000100000a0000000000012000000000000000405fc70d36bd9f3d3babcc808284295516fc621400ba08523861585c5082440a012000000000000000e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8551800000000000000546974616e2028746974616e6275696c6465722e78797a29";

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
        // An Ethereum mainnet block (Titan builder) executed by RSP, with the
        // stdin sp1-cluster commits for it: every precompile and hook family
        // an EVM needs (keccak, secp256k1 ecrecover, BN254, BLS12-381,
        // uint256, SHA-256), unconstrained blocks, 238 M instructions.
        Case {
            program: "sp1-cluster-rsp.elf.zst",
            items: input::parse_sp1_stdin(&fixture("sp1-cluster-rsp.stdin.zst")).unwrap(),
            output_hex: RSP_OUTPUT_HEX,
            cycles: 237_737_258,
        },
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
        // POSEIDON2 (the permutation's values are checked against SP1 on
        // generated states by the probe guest; this one commits nothing).
        Case {
            program: "sp1-gpu-poseidon2.elf",
            items: vec![u64_item(100)],
            output_hex: "",
            cycles: 2_427,
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
