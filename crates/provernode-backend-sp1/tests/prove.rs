//! SP1 against the trace backend, on the same committed ELFs. Runs only when
//! built with the `prove` feature (`cargo test --release -p
//! provernode-backend-sp1 --features prove -- --test-threads 1`).
//!
//! One backend is shared by every test here, as a warm worker shares it:
//! SP1's CPU prover takes minutes and about 7 GB to start, so it is started
//! once. A core proof of a small input then takes a few minutes on 2 cores
//! and about 10 GB. Compressed proofs (about 15 minutes and 18 GB here) are
//! made by the measurement run (docs/backends.md), not by this test.

#![cfg(feature = "prove")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::sync::OnceLock;
use std::time::Instant;

#[path = "../../provernode-backend-trace/tests/official_cases/mod.rs"]
mod official_cases;

use provernode_backend_sp1::Sp1Backend;
use provernode_backend_trace::TraceBackend;
use provernode_core::{Abi, Backend, BackendError, Limits, ProveOptions, VerifyError};

fn sp1() -> &'static Sp1Backend {
    static BACKEND: OnceLock<Sp1Backend> = OnceLock::new();
    BACKEND.get_or_init(Sp1Backend::default)
}

fn program(name: &str) -> provernode_core::Program {
    provernode_guests::find(name).unwrap().program(Abi::Sp1)
}

fn trace_output(name: &str, input: &[u8]) -> Vec<u8> {
    TraceBackend::new()
        .execute(&program(name), input, &Limits::default())
        .unwrap()
        .public_output
}

fn chain_input(rounds: u32) -> Vec<u8> {
    let args = provernode_guests::InputArgs {
        rounds: Some(rounds),
        ..Default::default()
    };
    provernode_guests::find("sha256-chain")
        .unwrap()
        .encode_input(&args)
        .unwrap()
}

#[test]
fn sp1_executes_every_guest_to_trace_s_output() {
    for (name, input) in [
        ("fibonacci", 10u32.to_le_bytes().to_vec()),
        ("fibonacci", 100_000u32.to_le_bytes().to_vec()),
        ("sha256", b"abc".to_vec()),
        ("sha256-chain", chain_input(1000)),
    ] {
        let executed = sp1().execute(&program(name), &input, &Limits::default()).unwrap();
        assert_eq!(executed.public_output, trace_output(name, &input), "{name}");
        assert!(executed.cycles > 0);
    }
    assert!(
        sp1().reusable(),
        "runs that finished must leave the process reusable"
    );
}

#[test]
fn a_core_proof_commits_what_trace_commits_and_verifies() {
    let p = program("fibonacci");
    let input = 10u32.to_le_bytes();
    let expected = trace_output("fibonacci", &input);
    let env = sp1().prove(&p, &input, &ProveOptions::default()).unwrap();
    assert_eq!(env.proof_kind, "core");
    assert_eq!(env.public_output, expected);
    assert_eq!(sp1().verify(&env).unwrap().public_output, expected);

    // A verifier that never proved anything (no proving key, no full
    // prover) checks the same envelope from its bytes alone.
    let fresh = Sp1Backend::default();
    assert_eq!(fresh.verify(&env).unwrap().public_output, expected);

    let mut forged = env.clone();
    forged.public_output[0] ^= 1;
    assert!(matches!(
        fresh.verify(&forged),
        Err(BackendError::Verify(VerifyError::OutputMismatch { .. }))
    ));
    let mut swapped = env.clone();
    swapped.program_id = program("sha256-chain").id();
    assert!(matches!(
        fresh.verify(&swapped),
        Err(BackendError::Verify(VerifyError::ProgramIdMismatch { .. }))
    ));
    let mut relabelled = env.clone();
    relabelled.proof_kind = "compressed".into();
    assert!(fresh.verify(&relabelled).is_err());
    let mut tampered = env.clone();
    let at = tampered.proof.len() - 1000;
    tampered.proof[at] ^= 0x40;
    assert!(
        matches!(
            fresh.verify(&tampered),
            Err(BackendError::Verify(
                VerifyError::Invalid { .. } | VerifyError::MalformedProof { .. }
            ))
        ),
        "a flipped proof byte must not verify"
    );

    // Bytes that are not an SP1 proof frame (another backend's, a length
    // past the end) or a frame with no SP1 proof inside are malformed,
    // refused before any key is looked up.
    let mut no_proof_inside = b"PNSP1\0\0\0".to_vec();
    no_proof_inside.extend_from_slice(&1u16.to_le_bytes());
    no_proof_inside.extend_from_slice(&3u32.to_le_bytes());
    no_proof_inside.extend_from_slice(b"elf");
    no_proof_inside.extend_from_slice(b"not bincode");
    for garbage in [
        b"PNRISC0\0\x01\0".to_vec(),
        b"PNSP1\0\0\0\x01\0\xff\xff\xff\x7f".to_vec(),
        no_proof_inside,
    ] {
        let mut malformed = env.clone();
        malformed.proof = garbage;
        match fresh.verify(&malformed) {
            Err(BackendError::Verify(VerifyError::MalformedProof { .. })) => {}
            other => panic!(
                "expected a malformed proof, got {:?}",
                other.map(|v| v.public_output)
            ),
        }
    }
}

/// Issue 24: the keys a set-up makes, saved, are loaded by another backend
/// (another worker process, in a node) in milliseconds instead of SP1's
/// set-up, and they are the same keys: the same verifying key, byte for
/// byte, so the same vk hash and claim key. SP1's prover takes the ELF
/// alone, the verifying key being all its set-up makes. Keys of another
/// SP1 version or another program are refused, never used.
#[test]
fn saved_keys_load_instead_of_a_set_up_and_are_the_same_keys() {
    let p = program("sha256-chain");
    let warm = sp1();
    warm.warm_up().unwrap();
    let started = Instant::now();
    warm.set_up(&p).unwrap();
    let set_up = started.elapsed();
    let saved = warm
        .saved_keys(&p)
        .unwrap()
        .expect("a program set up has keys to save");
    let name = warm.saved_keys_name(&p).unwrap();
    assert!(name.starts_with(&format!("keys/sp1/{}-v", p.id())), "{name}");

    let fresh = Sp1Backend::default();
    assert_eq!(fresh.saved_keys(&p).unwrap(), None, "nothing set up yet");
    let started = Instant::now();
    fresh.load_keys(&p, &saved).unwrap();
    let loaded = started.elapsed();
    eprintln!(
        "SP1 keys of sha256-chain ({} bytes saved): set-up {:.1} s, load {:.2} ms",
        saved.len(),
        set_up.as_secs_f64(),
        loaded.as_secs_f64() * 1e3
    );
    assert_eq!(fresh.saved_keys(&p).unwrap().unwrap(), saved);
    assert_eq!(fresh.program_key(&p).unwrap(), warm.program_key(&p).unwrap());
    assert_eq!(fresh.claim_key(&p).unwrap(), warm.claim_key(&p).unwrap());

    let other = Sp1Backend::default();
    let why = other.load_keys(&program("fibonacci"), &saved).unwrap_err().0;
    assert!(why.contains("keys of program"), "{why}");
    // The version string follows magic (8), format (2) and its length (2).
    let mut older = saved.clone();
    older[12] = b'X';
    let why = other.load_keys(&p, &older).unwrap_err().0;
    assert!(why.contains("made by SP1 X"), "{why}");
    let mut damaged = saved.clone();
    damaged.truncate(saved.len() / 2);
    assert!(other.load_keys(&p, &damaged).is_err());
    assert_eq!(other.saved_keys(&p).unwrap(), None, "refused keys are not kept");
}

#[test]
fn rejected_input_is_invalid_input() {
    let err = sp1()
        .execute(&program("fibonacci"), &[1, 2, 3], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidInput { .. }), "{err}");
    let err = sp1()
        .prove(&program("fibonacci"), &[1, 2, 3], &ProveOptions::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidInput { .. }), "{err}");
}

#[test]
fn the_cycle_limit_stops_an_endless_guest() {
    let limits = Limits {
        max_cycles: 100_000,
        ..Limits::default()
    };
    // Its own instance: SP1 leaves its executor behind after a cycle limit,
    // and the backend must then say the process should not be reused.
    let backend = Sp1Backend::new(None);
    assert!(backend.reusable());
    let err = backend.execute(&program("spin"), &[], &limits).unwrap_err();
    match &err {
        BackendError::CycleLimit { program, .. } => assert_eq!(program, "spin"),
        other => panic!("expected a cycle limit, got {other}"),
    }
    assert!(!backend.reusable(), "a cycle limit must retire the process");
}

#[test]
fn a_risc0_elf_is_refused_and_gnark_kinds_say_why() {
    let p = provernode_guests::find("fibonacci").unwrap().program(Abi::Risc0);
    let err = sp1().execute(&p, &[0; 4], &Limits::default()).unwrap_err();
    assert!(matches!(err, BackendError::UnsupportedAbi { .. }), "{err}");
    for kind in ["groth16", "plonk"] {
        let options = ProveOptions {
            proof_kind: Some(kind.into()),
            ..ProveOptions::default()
        };
        let err = sp1()
            .prove(&program("fibonacci"), &10u32.to_le_bytes(), &options)
            .unwrap_err();
        match &err {
            BackendError::Unavailable(u) => assert!(u.reason.contains("gnark"), "{err}"),
            other => panic!("{kind}: expected unavailable, got {other}"),
        }
    }
}

/// An official SP1 v6 guest with the `SP1Stdin` its project committed,
/// proved (core) and verified by a backend that never proved anything: the
/// public values are trace's.
#[test]
fn an_official_sp1_guest_is_proved_with_its_committed_stdin() {
    let p = official_cases::program("sp1-cluster-fibonacci.elf");
    let items =
        provernode_core::input::parse_sp1_stdin(&official_cases::fixture("sp1-cluster-fibonacci.stdin"))
            .unwrap();
    let bytes = provernode_core::input::encode_items(&items);
    let expected = TraceBackend::new()
        .execute(&p, &bytes, &Limits::default())
        .unwrap()
        .public_output;
    let env = sp1().prove(&p, &bytes, &Default::default()).unwrap();
    assert_eq!(env.proof_kind, "core");
    assert_eq!(env.public_output, expected);
    assert_eq!(
        Sp1Backend::default().verify(&env).unwrap().public_output,
        expected
    );
}

/// Issue 21: the deferred-proofs digest the aggregate guest chains through
/// the POSEIDON2 precompile (and trace checks at HALT) is SP1's own
/// `hash_deferred_proof`.
#[test]
fn the_deferred_proofs_digest_is_sp1s_hash_deferred_proof() {
    use p3_field::{AbstractField, PrimeField32};
    use provernode_backend_trace::aggregate::{sp1_hash_deferred_proof, Sp1DeferredProof};
    use sp1_primitives::SP1Field;
    let mut prev = [0u32; 8];
    for round in 0u32..4 {
        let proof = Sp1DeferredProof {
            vk_digest: std::array::from_fn(|i| {
                (round * 8 + i as u32).wrapping_mul(0x9e37_79b9) % 0x7f00_0001
            }),
            pv_digest: std::array::from_fn(|i| (round as u8).wrapping_mul(31).wrapping_add(i as u8)),
        };
        let ours = sp1_hash_deferred_proof(&prev, &proof);
        let theirs = sp1_primitives::hash_deferred_proof(
            &prev.map(SP1Field::from_canonical_u32),
            &proof.vk_digest.map(SP1Field::from_canonical_u32),
            &proof
                .pv_digest
                .map(|b| SP1Field::from_canonical_u32(u32::from(b))),
        )
        .map(|x| x.as_canonical_u32());
        assert_eq!(ours, theirs, "round {round}");
        prev = ours;
    }
}

/// The aggregate guest on SP1's executor (which does not check proofs
/// until they are proved) commits what provernode_core's reference model
/// gives for the same claims, under SP1's own vk digests.
#[test]
fn the_aggregate_guest_runs_on_sp1s_executor_to_the_reference_output() {
    use provernode_core::aggregate::{encode_claims, AggregateOutput, Claim};
    let claims: Vec<Claim> = [
        ("fibonacci", 10u32.to_le_bytes().to_vec()),
        ("sha256", b"abc".to_vec()),
    ]
    .into_iter()
    .map(|(name, input)| Claim {
        program_key: sp1().claim_key(&program(name)).unwrap().unwrap(),
        public_output: trace_output(name, &input),
    })
    .collect();
    let executed = sp1()
        .execute(&program("aggregate"), &encode_claims(&claims), &Limits::default())
        .unwrap();
    assert_eq!(executed.public_output, AggregateOutput::of(&claims).encode());
}

/// What an SP1 aggregate refuses before any proving: a core aggregate
/// (it would not check the inner proofs), and inner proofs that are core,
/// from another backend or from another version, each named by index.
#[test]
fn an_sp1_aggregate_refuses_what_it_could_not_check() {
    use provernode_core::aggregate::AggregateInput;
    let trace = TraceBackend::new();
    let inner = trace
        .prove(
            &program("fibonacci"),
            &10u32.to_le_bytes(),
            &ProveOptions::default(),
        )
        .unwrap();
    let aggregate = program("aggregate");
    let input = |inner: Vec<provernode_core::ProofEnvelope>| AggregateInput { inner }.encode().unwrap();
    let core = ProveOptions {
        proof_kind: Some("core".into()),
        ..ProveOptions::default()
    };
    let err = sp1()
        .prove(&aggregate, &input(vec![inner.clone()]), &core)
        .unwrap_err();
    assert!(
        matches!(err, BackendError::UnsupportedFeature { .. })
            && err.to_string().contains("would not check the inner proofs"),
        "{err}"
    );
    let err = sp1()
        .execute(
            &aggregate,
            &input(vec![inner.clone(), inner.clone()]),
            &Limits::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("claim 0: its proof was made by backend `trace`"),
        "{err}"
    );
    let mut relabelled = inner.clone();
    relabelled.backend = "sp1".into();
    relabelled.backend_version = sp1().version();
    relabelled.proof_kind = "core".into();
    let err = sp1()
        .execute(&aggregate, &input(vec![relabelled.clone()]), &Limits::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("claim 0: its proof is a core proof"),
        "{err}"
    );
    relabelled.backend_version = "sp1-sdk 5.0.0".into();
    let err = sp1()
        .execute(&aggregate, &input(vec![relabelled]), &Limits::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("claim 0: its proof was made by sp1-sdk 5.0.0"),
        "{err}"
    );
}

/// The whole SP1 aggregate: two compressed proofs, then a compressed
/// aggregate of them that verifies alone. About 50 minutes and 20 GB on 2
/// cores, so CI does not run it; `scripts/measure-aggregates.sh` does, and
/// docs/backends.md records what it measured.
#[test]
#[ignore = "about 50 minutes and 20 GB on 2 cores: run with --ignored (scripts/measure-aggregates.sh)"]
fn an_aggregate_of_compressed_sp1_proofs_is_one_compressed_proof_that_verifies() {
    use provernode_core::aggregate::{AggregateInput, AggregateOutput, Claim};
    let compressed = ProveOptions {
        proof_kind: Some("compressed".into()),
        ..ProveOptions::default()
    };
    let mut inner = Vec::new();
    let mut claims = Vec::new();
    for (name, input) in [
        ("fibonacci", 10u32.to_le_bytes().to_vec()),
        ("sha256", b"abc".to_vec()),
    ] {
        let started = std::time::Instant::now();
        let envelope = sp1().prove(&program(name), &input, &compressed).unwrap();
        eprintln!(
            "sp1 compressed {name}: {:.1} s, {} bytes",
            started.elapsed().as_secs_f64(),
            envelope.proof.len()
        );
        claims.push(Claim {
            program_key: sp1().claim_key(&program(name)).unwrap().unwrap(),
            public_output: envelope.public_output.clone(),
        });
        inner.push(envelope);
    }
    let started = std::time::Instant::now();
    let envelope = sp1()
        .prove(
            &program("aggregate"),
            &AggregateInput { inner }.encode().unwrap(),
            &ProveOptions::default(),
        )
        .unwrap();
    eprintln!(
        "sp1 compressed aggregate of 2 claims: {:.1} s, {} bytes, {} cycles",
        started.elapsed().as_secs_f64(),
        envelope.proof.len(),
        envelope.cycles
    );
    assert_eq!(envelope.proof_kind, "compressed");
    assert_eq!(envelope.public_output, AggregateOutput::of(&claims).encode());
    let started = std::time::Instant::now();
    sp1().verify(&envelope).unwrap();
    eprintln!("sp1 aggregate verify: {:.2} s", started.elapsed().as_secs_f64());
}
