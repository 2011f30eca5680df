//! risc0's own executor against `trace` on the v1compat calls provernode's
//! runtime never makes (BIGINT2 with the kernel's own bibc programs,
//! POSEIDON2, INPUT, SYS_PIPE, SYS_KECCAK, PAUSE), through the probe guest
//! `risc0-accel-probe`: the same journal for every case. Executing is
//! milliseconds, no proving. Runs only with the `prove` feature (CI's
//! real-backend step).

#![cfg(feature = "prove")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

#[path = "../../provernode-backend-trace/tests/risc0_probe/mod.rs"]
mod risc0_probe;

use provernode_backend_risc0::Risc0Backend;
use provernode_backend_trace::TraceBackend;
use provernode_core::{Backend, BackendError, Cause, Limits};
use risc0_probe::*;

#[test]
fn risc0s_executor_and_trace_commit_the_same_journal_for_every_probe_case() {
    let risc0 = Risc0Backend::default();
    let trace = TraceBackend::new();
    let p = program();
    for (name, input) in cases() {
        let real = risc0
            .execute(&p, &input, &Limits::default())
            .unwrap_or_else(|e| panic!("{name} on risc0: {e}"));
        let emulated = trace
            .execute(&p, &input, &Limits::default())
            .unwrap_or_else(|e| panic!("{name} on trace: {e}"));
        assert_eq!(
            hex::encode(&emulated.public_output),
            hex::encode(&real.public_output),
            "{name}"
        );
        eprintln!(
            "{name}: journal {} bytes, trace {} instructions, risc0 {} user cycles",
            real.public_output.len(),
            emulated.cycles,
            real.cycles
        );
    }
}

/// The keccak accelerator's claim, as the probe guest computes it like
/// risc0's `KeccakBatcher` (and trace recomputes it), equals risc0's own
/// `compute_keccak_digest` over the same states: the reference the prover
/// resolves the keccak assumption against.
#[test]
fn the_keccak_claim_is_risc0s_compute_keccak_digest() {
    for (n, seed) in [(1usize, 11u64), (3, 12)] {
        let states = keccak_batch_states(&mut Words::new(seed), n);
        let journal = TraceBackend::new()
            .execute(
                &program(),
                &input(OP_KECCAK_BATCH, &[vec![n as u32], states.clone()].concat()),
                &Limits::default(),
            )
            .unwrap()
            .public_output;
        let bytes: Vec<u8> = states.iter().flat_map(|w| w.to_le_bytes()).collect();
        let reference = risc0_circuit_keccak::compute_keccak_digest(&bytes);
        assert_eq!(
            hex::encode(&journal[n * 200..]),
            hex::encode(reference.as_bytes()),
            "{n} permutation(s)"
        );
    }
    // A forged claim: risc0's executor takes it on trust (its prover
    // would fail to resolve it); trace refuses it at once.
    let forged = keccak_batch_forged();
    assert!(Risc0Backend::default()
        .execute(&program(), &forged, &Limits::default())
        .is_ok());
    let err = TraceBackend::new()
        .execute(&program(), &forged, &Limits::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("does not commit the 2 permutations"),
        "{err}"
    );
}

#[test]
fn what_risc0_refuses_trace_refuses() {
    let risc0 = Risc0Backend::default();
    let trace = TraceBackend::new();
    let p = program();
    // A pause is the same deterministic refusal on both.
    for (backend, result) in [
        (
            "risc0",
            risc0.execute(&p, &input(OP_PAUSE, &[7]), &Limits::default()),
        ),
        (
            "trace",
            trace.execute(&p, &input(OP_PAUSE, &[7]), &Limits::default()),
        ),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, BackendError::UnsupportedFeature { .. }),
            "{backend}: {err:?}"
        );
        assert!(err.to_string().contains("paused session"), "{backend}: {err}");
    }
    // A failed POSEIDON2 output check and an argument that does not exist
    // stop risc0's executor; trace names them.
    // Both are deterministic: refused, never retried, on both backends.
    for (bad, risc0_says) in [
        (poseidon2_wrong_check_out(), "poseidon2 check failed"),
        (input(OP_ARGV, &[0]), "guest requested index 0 from argv of len 0"),
    ] {
        let real = risc0.execute(&p, &bad, &Limits::default()).unwrap_err();
        let emulated = trace.execute(&p, &bad, &Limits::default()).unwrap_err();
        assert!(
            matches!(real, BackendError::ExecutorRefused { .. }),
            "risc0: {real:?}"
        );
        assert!(real.to_string().contains(risc0_says), "{real}");
        assert_eq!(real.classify(), (Cause::BackendError, false), "{real}");
        assert_eq!(emulated.classify(), (Cause::BackendError, false), "{emulated}");
    }
}

/// A guest panic on risc0's executor is a guest panic, with its message,
/// never retried (it was a retryable "backend failed"): the official R0BF
/// given no input panics in its own `env::read`.
#[test]
fn a_risc0_guest_panic_is_a_guest_panic_with_its_message() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests/risc0-povw-log-builder.bin");
    let p = provernode_core::Program::from_elf("risc0-povw-log-builder.bin", std::fs::read(path).unwrap())
        .unwrap();
    for (backend, err) in [
        (
            "risc0",
            Risc0Backend::default()
                .execute(&p, &[], &Limits::default())
                .unwrap_err(),
        ),
        (
            "trace",
            TraceBackend::new()
                .execute(&p, &[], &Limits::default())
                .unwrap_err(),
        ),
    ] {
        assert!(
            matches!(err, BackendError::GuestPanic { .. }),
            "{backend}: {err:?}"
        );
        assert!(
            err.to_string().contains("DeserializeUnexpectedEnd"),
            "{backend}: {err}"
        );
        assert_eq!(err.classify(), (Cause::GuestPanic, false), "{backend}");
    }
}
