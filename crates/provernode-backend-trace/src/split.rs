//! Split proofs in dev mode (issue 22): the same plan, parts and joins a
//! real zkVM's split makes, "proved" by re-execution, so a cluster's split
//! (the tree, its kills and retries) can be rehearsed in seconds.
//!
//! - The plan: the parent's execution, cut into `2^po2`-cycle segments.
//! - A segment: the parent re-executed; its claim digest binds the program,
//!   the parent's input, the segment size and the range.
//! - A join: both parts found adjacent parts of the same plan whose claims
//!   are their ranges' (checked without re-executing: a segment is
//!   re-executed when it is verified, as every part is before the node
//!   accepts it); its claim is its range's.
//! - The final join: all of that, then the parent's own trace proof, the
//!   one an unsplit `prove` makes, byte for byte. The parent's input is
//!   read back from the leftmost segment.
//!
//! Like every trace proof, none of this proves anything cryptographically.

use provernode_core::split::{self, PartClaim, PartInput, PartWork, SplitPlan};
use provernode_core::{
    sha256, BackendError, Digest, Limits, Program, ProofEnvelope, ProveOptions, VerifyError,
};

use crate::record::Record;
use crate::{TraceBackend, BACKEND_NAME};

fn malformed(program: &Program, e: impl std::fmt::Display) -> BackendError {
    BackendError::MalformedInput {
        program: program.name().to_owned(),
        reason: e.to_string(),
    }
}

fn envelope(
    backend: &TraceBackend,
    program: &Program,
    input: &[u8],
    kind: &str,
    cycles: u64,
    public_output: Vec<u8>,
    state_digest: Digest,
) -> ProofEnvelope {
    ProofEnvelope {
        backend: BACKEND_NAME.to_owned(),
        backend_version: provernode_core::Backend::version(backend),
        proof_kind: kind.to_owned(),
        abi: program.abi(),
        program_id: program.id(),
        input_digest: sha256(input),
        cycles,
        public_output,
        proof: Record {
            elf: program.elf().to_vec(),
            input: input.to_vec(),
            state_digest,
        }
        .encode(),
    }
}

/// The plan envelope for a plain input longer than one segment; `None`
/// when it fits in one (or needs more segments than a plan may have): it
/// is proved whole.
pub(crate) fn plan(
    backend: &TraceBackend,
    program: &Program,
    input: &[u8],
    limits: &Limits,
    segment_po2: u32,
) -> Result<Option<ProofEnvelope>, BackendError> {
    if !split::SEGMENT_PO2_RANGE.contains(&segment_po2) {
        return Ok(None);
    }
    let out = backend.run(program, input, limits)?;
    let segments = split::segments_for(out.cycles, segment_po2);
    if segments < 2 || segments > u64::from(split::MAX_SEGMENTS) {
        return Ok(None);
    }
    let plan = SplitPlan {
        segments: segments as u32,
        segment_po2,
        cycles: out.cycles,
        public_output: out.public_output,
    };
    Ok(Some(envelope(
        backend,
        program,
        input,
        split::PLAN_KIND,
        out.cycles,
        plan.encode(),
        out.state_digest,
    )))
}

/// Proves one part (a segment, a join, or the final join).
pub(crate) fn prove_part(
    backend: &TraceBackend,
    program: &Program,
    input: &[u8],
    limits: &Limits,
) -> Result<ProofEnvelope, BackendError> {
    let part = PartInput::decode(input).map_err(|e| malformed(program, e))?;
    match &part.work {
        PartWork::Segment { parent_input } => {
            let out = backend.run(program, parent_input, limits)?;
            let segments = split::segments_for(out.cycles, part.segment_po2);
            if segments != u64::from(part.total) {
                return Err(malformed(
                    program,
                    format!(
                        "the plan has {} segments of 2^{} cycles, but the program runs {} cycles ({segments} segments): the part is not of this program and input",
                        part.total, part.segment_po2, out.cycles
                    ),
                ));
            }
            let start = u64::from(part.lo) << part.segment_po2;
            let cycles = (out.cycles - start).min(1u64 << part.segment_po2);
            let claim = PartClaim {
                lo: part.lo,
                hi: part.hi,
                total: part.total,
                digest: range_digest(program, &part, part.lo, part.hi),
            };
            Ok(envelope(
                backend,
                program,
                input,
                split::SEGMENT_KIND,
                cycles,
                claim.encode(),
                out.state_digest,
            ))
        }
        PartWork::Join {
            public_output,
            cycles,
            ..
        } => {
            let (left, _, right, _) = part.join_parts().map_err(|e| malformed(program, e))?;
            for (side, envelope) in [("left", &left), ("right", &right)] {
                check_part_of(program, &part, envelope)
                    .map_err(|e| malformed(program, format!("the {side} part: {e}")))?;
            }
            if part.is_final() {
                let parent_input = leftmost_parent_input(&left).map_err(|e| malformed(program, e))?;
                if sha256(&parent_input) != part.parent_input_digest {
                    return Err(malformed(
                        program,
                        "the leftmost segment's input is not the parent's",
                    ));
                }
                let whole = provernode_core::Backend::prove(
                    backend,
                    program,
                    &parent_input,
                    &ProveOptions {
                        limits: *limits,
                        ..ProveOptions::default()
                    },
                )?;
                if &whole.public_output != public_output || whole.cycles != *cycles {
                    return Err(malformed(
                        program,
                        "the parent's public output or cycles differ from those its plan recorded",
                    ));
                }
                return Ok(whole);
            }
            let claim = PartClaim {
                lo: part.lo,
                hi: part.hi,
                total: part.total,
                digest: range_digest(program, &part, part.lo, part.hi),
            };
            let state = Record::decode(&right.proof)
                .map_err(|e| malformed(program, e))?
                .state_digest;
            Ok(envelope(
                backend,
                program,
                input,
                split::JOIN_KIND,
                left.cycles + right.cycles,
                claim.encode(),
                state,
            ))
        }
    }
}

/// What a part covering `lo..hi` of this split claims: the same for a
/// segment and for any tree of joins over the same range, as a real
/// zkVM's claim (start and end state) does not depend on the tree's shape.
/// A join checks its two parts' claims against it without re-executing;
/// the final join re-executes the whole program once.
fn range_digest(program: &Program, part: &PartInput, lo: u32, hi: u32) -> [u8; 32] {
    let mut bound = b"pn-trace-range".to_vec();
    bound.extend_from_slice(&program.id().0 .0);
    bound.extend_from_slice(&part.parent_input_digest.0);
    bound.extend_from_slice(&part.segment_po2.to_le_bytes());
    bound.extend_from_slice(&part.total.to_le_bytes());
    bound.extend_from_slice(&lo.to_le_bytes());
    bound.extend_from_slice(&hi.to_le_bytes());
    sha256(&bound).0
}

/// Checks that `envelope` is a trace part of the same program and plan as
/// `part`, whose claim is the one its range has.
fn check_part_of(program: &Program, part: &PartInput, envelope: &ProofEnvelope) -> Result<(), String> {
    if envelope.backend != BACKEND_NAME {
        return Err(format!("it was proved by {}, not trace", envelope.backend));
    }
    if envelope.program_id != program.id() {
        return Err("it is a part of another program".into());
    }
    let record = Record::decode(&envelope.proof)?;
    let inner = PartInput::decode(&record.input).map_err(|e| e.to_string())?;
    if inner.parent_input_digest != part.parent_input_digest
        || inner.segment_po2 != part.segment_po2
        || inner.total != part.total
    {
        return Err("it is a part of another split (input, segment size or count differ)".into());
    }
    let claim = PartClaim::decode(&envelope.public_output).map_err(|e| e.to_string())?;
    if claim.digest != range_digest(program, part, claim.lo, claim.hi) {
        return Err(format!(
            "its claim for segments {}..{} is not what that range claims",
            claim.lo, claim.hi
        ));
    }
    Ok(())
}

/// The parent's input, from the leftmost segment under a part.
fn leftmost_parent_input(envelope: &ProofEnvelope) -> Result<Vec<u8>, String> {
    let mut current = envelope.clone();
    loop {
        let record = Record::decode(&current.proof)?;
        let part = PartInput::decode(&record.input).map_err(|e| e.to_string())?;
        match part.work {
            PartWork::Segment { parent_input } => return Ok(parent_input),
            PartWork::Join { left, .. } => {
                current = ProofEnvelope::decode(&left).map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Verifies a plan, segment or join envelope: the same step, run again
/// from its record, must give the same envelope.
pub(crate) fn verify_part(
    backend: &TraceBackend,
    envelope: &ProofEnvelope,
    limits: &Limits,
) -> Result<(), BackendError> {
    let record = Record::decode(&envelope.proof).map_err(|reason| VerifyError::MalformedProof { reason })?;
    let program = Program::from_elf(
        format!("program {}", envelope.program_id.0.short()),
        record.elf.clone(),
    )
    .map_err(|e| VerifyError::MalformedProof {
        reason: e.to_string(),
    })?;
    if program.id() != envelope.program_id || sha256(&record.input) != envelope.input_digest {
        return Err(VerifyError::Invalid {
            reason: "the record is of another program or input than the envelope names".into(),
        }
        .into());
    }
    let again = if envelope.proof_kind == split::PLAN_KIND {
        let recorded = SplitPlan::decode(&envelope.public_output).map_err(|e| VerifyError::Invalid {
            reason: e.to_string(),
        })?;
        plan(backend, &program, &record.input, limits, recorded.segment_po2)?.ok_or_else(|| {
            VerifyError::Invalid {
                reason: "re-execution fits in one segment: there is nothing to split".into(),
            }
        })?
    } else {
        prove_part(backend, &program, &record.input, limits).map_err(|e| VerifyError::Invalid {
            reason: format!("re-running the part failed: {e}"),
        })?
    };
    if again != *envelope {
        return Err(VerifyError::Invalid {
            reason: format!(
                "re-running the {} gives another result than the envelope claims",
                envelope.proof_kind
            ),
        }
        .into());
    }
    Ok(())
}
