//! Aggregation on trace: the `aggregate` guest verifies trace proofs through
//! each zkVM's verify call, and its public output is the one
//! `provernode_core::aggregate` defines for those claims.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use provernode_backend_trace::{aggregate::program_key, TraceBackend};
use provernode_core::aggregate::{encode_claims, AggregateInput, AggregateOutput, Claim};
use provernode_core::{Abi, Backend, BackendError, ProofEnvelope, ProveOptions};

fn prove(backend: &TraceBackend, guest: &str, abi: Abi, input: &[u8]) -> ProofEnvelope {
    let program = provernode_guests::find(guest).unwrap().program(abi);
    backend.prove(&program, input, &ProveOptions::default()).unwrap()
}

fn inner_proofs(backend: &TraceBackend, abi: Abi) -> Vec<ProofEnvelope> {
    vec![
        prove(backend, "fibonacci", abi, &10u32.to_le_bytes()),
        prove(backend, "sha256", abi, b"abc"),
        prove(backend, "fibonacci", abi, &1000u32.to_le_bytes()),
    ]
}

fn aggregate(abi: Abi) -> provernode_core::Program {
    provernode_guests::find(provernode_guests::AGGREGATE)
        .unwrap()
        .program(abi)
}

#[test]
fn an_aggregate_commits_its_claims_and_verifies_alone_on_both_abis() {
    let backend = TraceBackend::new();
    for abi in Abi::ALL {
        let inner = inner_proofs(&backend, abi);
        let claims: Vec<Claim> = inner
            .iter()
            .map(|e| Claim {
                program_key: program_key(
                    &provernode_guests::find_by_id(e.program_id)
                        .unwrap()
                        .0
                        .program(abi),
                )
                .unwrap(),
                public_output: e.public_output.clone(),
            })
            .collect();
        let input = AggregateInput { inner: inner.clone() }.encode().unwrap();
        let envelope = backend
            .prove(&aggregate(abi), &input, &ProveOptions::default())
            .unwrap();
        let expected = AggregateOutput::of(&claims);
        assert_eq!(envelope.public_output, expected.encode(), "{abi}");
        // The guest's own reference model agrees on the guest input.
        let guest = provernode_guests::find(provernode_guests::AGGREGATE).unwrap();
        assert_eq!(
            guest.reference_output(&encode_claims(&claims)).unwrap(),
            envelope.public_output
        );
        let out = AggregateOutput::decode(&envelope.public_output).unwrap();
        assert_eq!(out.claims.len(), 3);
        assert_eq!(out.position(&claims[1].digest()), Some(1));
        // The envelope verifies with nothing else at hand.
        let decoded = ProofEnvelope::decode(&envelope.encode().unwrap()).unwrap();
        backend.verify(&decoded).unwrap();

        // An aggregate of aggregates verifies too.
        let nested = AggregateInput {
            inner: vec![envelope.clone(), inner[0].clone()],
        }
        .encode()
        .unwrap();
        let outer = backend
            .prove(&aggregate(abi), &nested, &ProveOptions::default())
            .unwrap();
        backend.verify(&outer).unwrap();
    }
}

#[test]
fn the_risc0_program_key_is_the_image_id_risc0_publishes_for_the_guest() {
    // Pinned from `provernode programs inspect --backend risc0` (the risc0
    // backend's compute_image_id); CI's heavy step compares them live.
    let key = program_key(&provernode_guests::find("fibonacci").unwrap().program(Abi::Risc0)).unwrap();
    assert_eq!(
        hex::encode(key),
        "fb24e3b3f317e54c610d8c28437efaa7eee48c7c702ef60ebd580a9403a07c19"
    );
}

fn refused(abi: Abi, inner: Vec<ProofEnvelope>) -> String {
    let backend = TraceBackend::new();
    let input = AggregateInput { inner }.encode().unwrap();
    let err = backend
        .prove(&aggregate(abi), &input, &ProveOptions::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::MalformedInput { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn a_forged_foreign_or_mismatched_claim_is_refused_naming_its_index() {
    let backend = TraceBackend::new();
    for abi in Abi::ALL {
        let mut inner = inner_proofs(&backend, abi);
        inner[1].public_output = b"forged".to_vec();
        let message = refused(abi, inner);
        assert!(
            message.contains("claim 1: its proof does not verify"),
            "{message}"
        );

        let mut inner = inner_proofs(&backend, abi);
        inner[2].backend = "risc0".into();
        let message = refused(abi, inner);
        assert!(
            message.contains("claim 2: its proof was made by backend `risc0`"),
            "{message}"
        );

        let mut inner = inner_proofs(&backend, abi);
        inner[0].backend_version = "0".into();
        let message = refused(abi, inner);
        assert!(
            message.contains("claim 0: its proof does not verify"),
            "{message}"
        );
        assert!(message.contains("version"), "{message}");

        let other = if abi == Abi::Risc0 { Abi::Sp1 } else { Abi::Risc0 };
        let mut inner = inner_proofs(&backend, abi);
        inner[1] = prove(&backend, "sha256", other, b"abc");
        let message = refused(abi, inner);
        assert!(
            message.contains(&format!("claim 1: its program is a {other} program")),
            "{message}"
        );
    }
}

#[test]
fn a_guest_that_names_a_claim_the_host_has_no_proof_of_stops() {
    // The aggregate guest given claims directly (no proofs beside them):
    // the verify call finds no proof, as on the real zkVMs.
    let backend = TraceBackend::new();
    let claims = encode_claims(&[Claim {
        program_key: [7; 32],
        public_output: b"nothing proved this".to_vec(),
    }]);
    let err = backend
        .execute(&aggregate(Abi::Risc0), &claims, &Default::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("no receipt found to resolve assumption"),
        "{err}"
    );
    let err = backend
        .execute(
            &aggregate(Abi::Sp1),
            &provernode_core::input::encode_items(&[claims]),
            &Default::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("VERIFY_SP1_PROOF #0"), "{err}");
}
