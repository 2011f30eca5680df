//! Programs built by the official toolchains (`fixtures/official-guests/`,
//! where each file's origin is listed), run on `trace`.
//!
//! The expected public output and instruction count of each run are what
//! SP1 6.10's own executor gives for the same program and input, measured
//! with `provernode execute --backend sp1 --json` on a build with the `sp1`
//! feature. CI's real-backend step checks the same table against the live
//! executor (`crates/provernode-backend-sp1/tests/official.rs`), so a table
//! that drifted from SP1 fails there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::path::PathBuf;

use provernode_backend_trace::TraceBackend;
use provernode_core::{input, Backend, BackendError, Limits, Program};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read the fixture {}: {e}", path.display()))
}

fn program(name: &str) -> Program {
    Program::from_elf(name, fixture(name)).unwrap()
}

/// Deterministic bytes, the same the SP1 measurement used.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

struct Case {
    program: &'static str,
    items: Vec<Vec<u8>>,
    output_hex: &'static str,
    cycles: u64,
}

fn cases() -> Vec<Case> {
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

#[test]
fn official_sp1_guests_give_sp1s_output_and_instruction_count() {
    for case in cases() {
        let bytes = input::encode_items(&case.items);
        let run = TraceBackend::new()
            .execute(&program(case.program), &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.program));
        assert_eq!(
            hex::encode(&run.public_output),
            case.output_hex,
            "{}",
            case.program
        );
        assert_eq!(run.cycles, case.cycles, "{} instruction count", case.program);
    }
}

#[test]
fn official_sp1_guests_prove_and_verify_on_trace() {
    let trace = TraceBackend::new();
    for case in cases().into_iter().take(1) {
        let bytes = input::encode_items(&case.items);
        let envelope = trace
            .prove(&program(case.program), &bytes, &Default::default())
            .unwrap();
        assert_eq!(hex::encode(&envelope.public_output), case.output_hex);
        assert_eq!(
            trace.verify(&envelope).unwrap().public_output,
            envelope.public_output
        );
    }
}

#[test]
fn a_guest_panic_is_reported_with_its_message_and_never_retried() {
    // Two items where the guest reads one u32: bincode fails on the first.
    let bytes = input::encode_items(&[b"ab".to_vec(), b"cde".to_vec()]);
    let err = TraceBackend::new()
        .execute(&program("sp1-cluster-fibonacci.elf"), &bytes, &Limits::default())
        .unwrap_err();
    let BackendError::GuestPanic { what, output, .. } = &err else {
        panic!("expected a guest panic, got {err:?}");
    };
    assert!(what.contains("SP1 exit code 1"), "{what}");
    assert!(output.contains("deserialization failed"), "{output}");
    assert!(
        err.to_string().contains("panicked (SP1 exit code 1): thread"),
        "{err}"
    );
    assert_eq!(err.classify(), (provernode_core::Cause::GuestPanic, false));

    // No input at all is no item: the SDK's own message says so.
    let err = TraceBackend::new()
        .execute(&program("sp1-cluster-fibonacci.elf"), &[], &Limits::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Tried to read from the input stream, but it was empty"),
        "{err}"
    );
}

#[test]
fn a_system_call_not_yet_emulated_is_named_with_the_pc() {
    let err = TraceBackend::new()
        .execute(
            &program("sp1-gpu-poseidon2.elf"),
            &input::encode_items(&[100u64.to_le_bytes().to_vec()]),
            &Limits::default(),
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(
        message.contains("SP1 system call POSEIDON2 (0x133) is not emulated by the trace backend yet"),
        "{message}"
    );
    assert!(message.contains("faulted at pc 0x"), "{message}");
}
