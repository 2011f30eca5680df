//! Programs built by the official toolchains (`fixtures/official-guests/`,
//! where each file's origin is listed), run on `trace`.
//!
//! The expected public output and instruction count of each run
//! (`official_cases`) are what SP1 6.10's own executor gives for the same
//! program and input. CI's real-backend step checks the same table against
//! the live executor (`crates/provernode-backend-sp1/tests/official.rs`),
//! so a table that drifted from SP1 fails there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod official_cases;

use official_cases::{cases, program};
use provernode_backend_trace::TraceBackend;
use provernode_core::{input, Backend, BackendError, Limits};

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
    // A small one: proving and verifying run the guest twice.
    for case in cases().into_iter().filter(|c| c.cycles < 100_000).take(1) {
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
fn a_system_call_trace_refuses_is_named_with_the_pc() {
    // The probe guest (crates/provernode-guests) calls the precompile its
    // input names: here U256XU2048_MUL, which SP1 6.10 stops on.
    let err = TraceBackend::new()
        .execute(
            &official_cases::probe(),
            &official_cases::probe_input(0x0001_012F, &[0; 4], &[0; 4], 0),
            &Limits::default(),
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(
        message.contains("SP1 system call U256XU2048_MUL is deprecated"),
        "{message}"
    );
    assert!(message.contains("faulted at pc 0x"), "{message}");

    // VERIFY_SP1_PROOF is emulated: with no proof given, the run stops
    // naming what is missing.
    let err = TraceBackend::new()
        .execute(
            &official_cases::probe(),
            &official_cases::probe_input(0x1B, &[0; 4], &[0; 4], 0),
            &Limits::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("VERIFY_SP1_PROOF #0") && err.to_string().contains("holds only 0 proof(s)"),
        "{err}"
    );

    // Profiler symbols are parsed, as SP1's executor parses them.
    let words = |json: &[u8]| -> Vec<u64> {
        let mut b = json.to_vec();
        b.resize(json.len().div_ceil(8) * 8, 0);
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let good = br#"{"2013265920": ["main", "64"]}"#;
    TraceBackend::new()
        .execute(
            &official_cases::probe(),
            &official_cases::probe_input(0x41, &words(good), &[], good.len() as u64),
            &Limits::default(),
        )
        .unwrap();
    let bad = br#"{"main": 1}"#;
    let err = TraceBackend::new()
        .execute(
            &official_cases::probe(),
            &official_cases::probe_input(0x41, &words(bad), &[], bad.len() as u64),
            &Limits::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("malformed profiler symbols"), "{err}");

    // MPROTECT outside untrusted-program mode is refused, as SP1 asserts.
    let err = TraceBackend::new()
        .execute(
            &official_cases::probe(),
            &official_cases::probe_input(0x132, &[], &[], 0),
            &Limits::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("MPROTECT in a program without SP1 6.2's untrusted-program note"),
        "{err}"
    );
}

/// The official R0BF runs as RISC Zero runs it: its user ELF on the v1compat
/// kernel's system calls (SYS_RANDOM before `main`, SYS_READ, SYS_PANIC).
/// Given no input, its own `env::read` panics, and the panic is reported
/// with the guest's message, as a deterministic guest panic.
#[test]
fn an_official_r0bf_runs_its_user_elf_and_its_panic_is_reported() {
    let file = official_cases::fixture("risc0-povw-log-builder.bin");
    let p = provernode_core::Program::from_elf("risc0-povw-log-builder.bin", file).unwrap();
    assert_eq!(p.format(), provernode_core::ProgramFormat::R0bf);
    let err = TraceBackend::new()
        .execute(&p, &[], &Limits::default())
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BackendError::GuestPanic { .. }), "{err:?}");
    assert!(message.contains("panicked (RISC Zero sys_panic)"), "{message}");
    assert!(message.contains("DeserializeUnexpectedEnd"), "{message}");
    assert_eq!(err.classify(), (provernode_core::Cause::GuestPanic, false));
}

#[test]
fn an_r0bf_with_another_kernel_and_an_sp1_v5_program_are_refused_by_name() {
    let mut file = official_cases::fixture("risc0-povw-log-builder.bin");
    let last = file.len() - 1;
    file[last] ^= 1;
    let p = provernode_core::Program::from_elf("changed.bin", file).unwrap();
    let err = TraceBackend::new()
        .execute(&p, &[], &Limits::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is not the v1compat kernel this node runs programs on"),
        "{err}"
    );

    let v5 = official_cases::fixture("sp1v5-project-template-fibonacci.elf");
    let err = provernode_core::Program::from_elf("fib", v5).err().unwrap();
    assert!(err.to_string().contains("is an SP1 v5 program"), "{err}");
}

/// SP1 6.2's trap guest (`.note.succinct`: page protection, MPROTECT,
/// traps and SIG_RETURN) runs on trace in untrusted mode. The guest checks
/// itself: its handler counts the traps and the guest asserts their codes
/// and number, panicking (exit 1 after a message) on any difference.
#[test]
fn sp1s_trap_guest_runs_in_untrusted_mode_and_its_own_checks_pass() {
    let out = TraceBackend::new()
        .execute(&program("sp1-gpu-trap.elf"), &[], &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Starting simple trap example"), "{stdout}");
    assert!(
        stdout.contains("Terminating! We have handled all traps!"),
        "{stdout}"
    );

    // Without the trap context symbol (renamed in the string table), the
    // first refused access stops the run, as it stops SP1's executor.
    let mut elf = official_cases::fixture("sp1-gpu-trap.elf");
    let at = elf
        .windows(24)
        .position(|w| w == b"__SUCCINCT_TRAP_CONTEXT\0")
        .unwrap();
    elf[at + 22] = b'X';
    let p = provernode_core::Program::from_elf("no-context.elf", elf).unwrap();
    let err = TraceBackend::new()
        .execute(&p, &[], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no `__SUCCINCT_TRAP_CONTEXT` symbol"),
        "{err}"
    );
}

/// The official R0BF with an input that needs no receipt (a new work log,
/// no updates): it runs to its journal on trace, the SHA ecall computing
/// the empty log's commitment. CI's real-backend step proves the same run
/// on RISC Zero and checks the journal is this one
/// (`crates/provernode-backend-risc0/tests/prove.rs`).
pub const POVW_INITIAL_JOURNAL_HEX: &str = "0102030405060708090a0b0c0d0e0f1011121314b26927f749929e8484785e36e7ec93d5eeae4b58182f76f1e760263ab67f540cb26927f749929e8484785e36e7ec93d5eeae4b58182f76f1e760263ab67f540c0000000000000000758793cf893c5def4ac3aab68f567a82d3fbb1a43565e1d29980ef333ae158df";

#[test]
fn an_official_r0bf_commits_its_journal_on_trace() {
    let file = official_cases::fixture("risc0-povw-log-builder.bin");
    let p = provernode_core::Program::from_elf("risc0-povw-log-builder.bin", file).unwrap();
    let input = official_cases::fixture("risc0-povw-log-builder.initial.input");
    let run = TraceBackend::new()
        .execute(&p, &input, &Limits::default())
        .unwrap();
    assert_eq!(hex::encode(&run.public_output), POVW_INITIAL_JOURNAL_HEX);
}
