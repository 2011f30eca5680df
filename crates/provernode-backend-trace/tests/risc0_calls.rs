//! RISC Zero v1compat calls beyond provernode's own runtime (BIGINT2,
//! POSEIDON2, INPUT, SYS_PIPE, SYS_KECCAK, PAUSE, SYS_ARGV), through the
//! probe guest, checked against independent computations here; the risc0
//! backend's `official` test runs the same cases on risc0's executor.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod risc0_probe;

use num_bigint::BigUint;
use provernode_backend_trace::TraceBackend;
use provernode_core::{Backend, BackendError, Cause, Limits};
use risc0_probe::*;

fn run(input: &[u8]) -> Result<Vec<u8>, BackendError> {
    TraceBackend::new()
        .execute(&program(), input, &Limits::default())
        .map(|o| o.public_output)
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn big(words: &[u32]) -> BigUint {
    BigUint::new(words.to_vec())
}

#[test]
fn bigint2_runs_the_kernels_own_bibc_programs_and_agrees_with_bigint() {
    let mut n_checked = 0;
    for (name, input) in cases() {
        let w = words(&input);
        if w[0] != OP_BIGINT2 {
            continue;
        }
        let (x, y, n) = (big(&w[1..9]), big(&w[9..17]), big(&w[17..25]));
        let out = run(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = words(&out);
        if n == BigUint::ZERO {
            assert_eq!(big(&out[..16]), &x * &y, "{name}: mul_256");
            assert_eq!(big(&out[16..]), &x * &y, "{name}: BIGINT");
        } else {
            assert_eq!(big(&out[..8]), (&x * &y) % &n, "{name}: modmul_256");
            assert_eq!(big(&out[8..]), (&x * &y) % &n, "{name}: BIGINT");
        }
        n_checked += 1;
    }
    assert_eq!(n_checked, 6);
}

#[test]
fn poseidon2_matches_risc0s_published_vector_and_checks_outputs() {
    let cases = cases();
    let (_, published) = cases
        .iter()
        .find(|(name, _)| name.contains("published vector"))
        .unwrap();
    let out = words(&run(published).unwrap());
    assert_eq!(out[..8], POSEIDON2_OF_0_TO_23[..8], "output");
    assert_eq!(out[8..], POSEIDON2_OF_0_TO_23[16..], "state");
    for (name, input) in cases.iter().filter(|(name, _)| name.starts_with("POSEIDON2")) {
        run(input).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = run(&poseidon2_wrong_check_out()).unwrap_err();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("POSEIDON2 output check failed at word 0"),
        "{err}"
    );
}

#[test]
fn input_pipe_and_keccak_give_what_risc0s_host_gives() {
    assert_eq!(run(&input(OP_INPUT, &[])).unwrap(), vec![0u8; 32]);

    let data = [0x6464_6120u32, 0x7020_6f74, 0x2165_7069];
    let mut pipe = vec![12];
    pipe.extend(data);
    let out = words(&run(&input(OP_PIPE, &pipe)).unwrap());
    // fd 4 for both ends (after stdin, stdout, stderr and the journal, as
    // risc0's host allocates), 12 bytes back.
    assert_eq!(out, [&[4, 4, 12][..], &data].concat());

    let lanes = Words::new(9).take(50);
    let out = run(&input(OP_KECCAK, &lanes)).unwrap();
    let mut state: [u64; 25] =
        core::array::from_fn(|i| u64::from(lanes[2 * i]) | (u64::from(lanes[2 * i + 1]) << 32));
    keccak::f1600(&mut state);
    let expected: Vec<u8> = 0u32
        .to_le_bytes()
        .into_iter()
        .chain(state.iter().flat_map(|l| l.to_le_bytes()))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn a_pause_is_refused_as_unsupported_and_argv_fails_as_risc0s_host_does() {
    let err = run(&input(OP_PAUSE, &[7])).unwrap_err();
    assert!(matches!(err, BackendError::UnsupportedFeature { .. }), "{err:?}");
    assert!(err.to_string().contains("paused session"), "{err}");
    assert!(err.to_string().contains("exit code 7"), "{err}");
    assert_eq!(err.classify(), (Cause::BackendError, false));

    let err = run(&input(OP_ARGV, &[0])).unwrap_err();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(err.to_string().contains("SYS_ARGV index 0"), "{err}");
}

/// What risc0's guest library does when a guest hashes with the keccak
/// accelerator: trace checks the batch's claim (recomputed from its own
/// permutations), resolves SYS_VERIFY_INTEGRITY2 of that proof, and checks
/// the halt's output digest lists it as an assumption.
#[test]
fn the_keccak_accelerator_proves_a_claim_trace_recomputes_and_refuses_a_forged_one() {
    let n = 3;
    let states = keccak_batch_states(&mut Words::new(5), n);
    let out = run(&input(
        OP_KECCAK_BATCH,
        &[vec![n as u32], states.clone()].concat(),
    ))
    .unwrap();
    assert_eq!(out.len(), n * 200 + 32);
    for k in 0..n {
        let mut lanes: [u64; 25] = core::array::from_fn(|i| {
            u64::from(states[50 * k + 2 * i]) | (u64::from(states[50 * k + 2 * i + 1]) << 32)
        });
        keccak::f1600(&mut lanes);
        let expected: Vec<u8> = lanes.iter().flat_map(|l| l.to_le_bytes()).collect();
        assert_eq!(out[k * 200..(k + 1) * 200], expected[..], "state {k}");
    }

    let err = run(&keccak_batch_forged()).unwrap_err();
    assert!(matches!(err, BackendError::GuestFault { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not commit the 2 permutations batched"),
        "{err}"
    );
}

#[test]
fn every_probe_case_completes_on_trace() {
    for (name, input) in cases() {
        run(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
