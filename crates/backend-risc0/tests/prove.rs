//! RISC Zero against the trace backend, on the same committed ELFs. Runs only
//! when built with the `prove` feature (`cargo test -p provernode-backend-risc0
//! --features prove --release`): a composite proof of a small input takes
//! tens of seconds on a CPU.

#![cfg(feature = "prove")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use provernode_backend_risc0::Risc0Backend;
use provernode_backend_trace::TraceBackend;
use provernode_core::{Abi, Backend, BackendError, Limits, ProveOptions, VerifyError};

fn program(name: &str) -> provernode_core::Program {
    provernode_guests::find(name).unwrap().program(Abi::Risc0)
}

#[test]
fn risc0_commits_exactly_what_trace_commits_and_its_proof_verifies() {
    let risc0 = Risc0Backend::default();
    let trace = TraceBackend::new();
    for (name, input) in [
        ("fibonacci", 10u32.to_le_bytes().to_vec()),
        ("sha256", b"abc".to_vec()),
    ] {
        let p = program(name);
        let expected = trace
            .execute(&p, &input, &Limits::default())
            .unwrap()
            .public_output;
        let executed = risc0.execute(&p, &input, &Limits::default()).unwrap();
        assert_eq!(executed.public_output, expected, "{name}: execute");
        let env = risc0.prove(&p, &input, &ProveOptions::default()).unwrap();
        assert_eq!(env.public_output, expected, "{name}: prove");
        assert_eq!(env.proof_kind, "composite");
        let verified = risc0.verify(&env).unwrap();
        assert_eq!(verified.public_output, expected);

        let mut forged = env.clone();
        forged.public_output[0] ^= 1;
        assert!(matches!(
            risc0.verify(&forged),
            Err(BackendError::Verify(VerifyError::OutputMismatch { .. }))
        ));
        let mut swapped = env.clone();
        swapped.program_id = program("sha256-chain").id();
        assert!(matches!(
            risc0.verify(&swapped),
            Err(BackendError::Verify(VerifyError::ProgramIdMismatch { .. }))
        ));
    }
}

#[test]
fn rejected_input_is_invalid_input() {
    let err = Risc0Backend::default()
        .execute(&program("fibonacci"), &[1, 2, 3], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidInput { .. }), "{err}");
}

#[test]
fn an_sp1_elf_is_refused() {
    let p = provernode_guests::find("fibonacci").unwrap().program(Abi::Sp1);
    let err = Risc0Backend::default()
        .execute(&p, &[0; 4], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::UnsupportedAbi { .. }), "{err}");
}
