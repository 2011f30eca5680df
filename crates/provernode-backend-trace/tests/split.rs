//! Split proofs on trace: a plan, its segments and a tree of joins give the
//! parent's own proof, byte for byte what an unsplit prove makes; a part of
//! another split, a non-adjacent pair or a tampered part is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use provernode_backend_trace::TraceBackend;
use provernode_core::split::{PartClaim, PartInput, PartWork, SplitPlan, JOIN_KIND, PLAN_KIND, SEGMENT_KIND};
use provernode_core::{Abi, Backend, ProofEnvelope, ProveOptions};

fn fibonacci(abi: Abi) -> provernode_core::Program {
    provernode_guests::find("fibonacci").unwrap().program(abi)
}

fn split_options(po2: u32) -> ProveOptions {
    ProveOptions {
        split_po2: Some(po2),
        ..ProveOptions::default()
    }
}

fn join(
    backend: &TraceBackend,
    program: &provernode_core::Program,
    plan: &SplitPlan,
    parent_input: &[u8],
    left: &ProofEnvelope,
    right: &ProofEnvelope,
) -> Result<ProofEnvelope, provernode_core::BackendError> {
    let l = PartClaim::decode(&left.public_output).unwrap();
    let r = PartClaim::decode(&right.public_output).unwrap();
    let part = PartInput {
        total: plan.segments,
        segment_po2: plan.segment_po2,
        parent_input_digest: provernode_core::sha256(parent_input),
        lo: l.lo,
        hi: r.hi,
        work: PartWork::Join {
            left: left.encode().unwrap(),
            right: right.encode().unwrap(),
            public_output: plan.public_output.clone(),
            cycles: plan.cycles,
        },
    };
    backend.prove(program, &part.encode(), &ProveOptions::default())
}

#[test]
fn a_split_proof_ends_in_the_unsplit_proof_on_both_abis() {
    let backend = TraceBackend::new();
    for abi in Abi::ALL {
        let program = fibonacci(abi);
        let input = 3000u32.to_le_bytes();
        let whole = backend.prove(&program, &input, &ProveOptions::default()).unwrap();
        let po2 = 10;
        let planned = backend.prove(&program, &input, &split_options(po2)).unwrap();
        assert_eq!(planned.proof_kind, PLAN_KIND);
        backend.verify(&planned).unwrap();
        let plan = SplitPlan::decode(&planned.public_output).unwrap();
        assert!(plan.segments >= 3, "{abi}: {} segments", plan.segments);
        assert_eq!(plan.cycles, whole.cycles);
        assert_eq!(plan.public_output, whole.public_output);

        let mut level: Vec<ProofEnvelope> = (0..plan.segments)
            .map(|i| {
                let part = PartInput::segment(&plan, &input, i);
                let e = backend
                    .prove(&program, &part.encode(), &ProveOptions::default())
                    .unwrap();
                assert_eq!(e.proof_kind, SEGMENT_KIND);
                backend.verify(&e).unwrap();
                e
            })
            .collect();
        assert_eq!(level.iter().map(|e| e.cycles).sum::<u64>(), whole.cycles);
        while level.len() > 1 {
            let mut next = Vec::new();
            for pair in level.chunks(2) {
                match pair {
                    [l, r] => {
                        let j = join(&backend, &program, &plan, &input, l, r).unwrap();
                        if next.is_empty() && level.len() == 2 {
                            assert_eq!(j, whole, "{abi}: the final join is the unsplit proof");
                        } else {
                            assert_eq!(j.proof_kind, JOIN_KIND);
                            backend.verify(&j).unwrap();
                        }
                        next.push(j);
                    }
                    [odd] => next.push(odd.clone()),
                    _ => unreachable!(),
                }
            }
            level = next;
        }
        assert_eq!(level[0], whole);
    }
}

#[test]
fn a_short_execution_is_proved_whole_and_bad_parts_are_refused() {
    let backend = TraceBackend::new();
    let program = fibonacci(Abi::Risc0);
    let input = 3000u32.to_le_bytes();
    // One segment at 2^20 cycles: no plan, the proof itself.
    let whole = backend.prove(&program, &input, &split_options(20)).unwrap();
    assert_eq!(whole.proof_kind, provernode_backend_trace::PROOF_KIND);

    let planned = backend.prove(&program, &input, &split_options(10)).unwrap();
    let plan = SplitPlan::decode(&planned.public_output).unwrap();
    let seg = |i: u32, input: &[u8]| {
        backend
            .prove(
                &program,
                &PartInput::segment(&plan, input, i).encode(),
                &ProveOptions::default(),
            )
            .unwrap()
    };
    let (s0, s1, s2) = (seg(0, &input), seg(1, &input), seg(2, &input));
    // Not adjacent.
    let err = join(&backend, &program, &plan, &input, &s0, &s2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not make"), "{err}");
    // A segment of another input's split.
    let other = 3001u32.to_le_bytes();
    let foreign = backend
        .prove(
            &program,
            &PartInput::segment(&plan, &other, 1).encode(),
            &ProveOptions::default(),
        )
        .unwrap();
    let err = join(&backend, &program, &plan, &input, &s0, &foreign)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another split"), "{err}");
    // A tampered claim does not verify.
    let mut forged = s1.clone();
    let mut claim = PartClaim::decode(&forged.public_output).unwrap();
    claim.digest[0] ^= 1;
    forged.public_output = claim.encode();
    assert!(backend.verify(&forged).is_err());
    let err = join(&backend, &program, &plan, &input, &s0, &forged)
        .unwrap_err()
        .to_string();
    assert!(err.contains("right part"), "{err}");
    // A plan whose segment count was changed does not verify.
    let mut lying = planned.clone();
    lying.public_output = SplitPlan {
        segments: plan.segments + 1,
        ..plan.clone()
    }
    .encode();
    assert!(backend.verify(&lying).is_err());
    let _ = s2;
}
