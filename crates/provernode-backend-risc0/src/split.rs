//! One RISC Zero proof split into parts (issue 22): the plan (how many
//! segments), each segment proved and lifted on any agent, adjacent ranges
//! joined, and the final join checked against the image id and the journal
//! and wrapped as the succinct receipt an unsplit proof makes (same claim;
//! the seal differs with the join tree's shape).
//!
//! A segment part re-executes the program up to its segment instead of
//! receiving it: nothing but the parent's input and the index travels, and
//! the node stores no segment (ARCHITECTURE.md has the measured costs of
//! both ways). Execution is deterministic for a program, an input and a
//! segment size, so every agent cuts the same segments; a part checks that
//! the execution has the plan's segment count.

use provernode_core::split::{self, PartClaim, PartInput, PartWork, SplitPlan};
use provernode_core::{proof_frame, sha256, Abi, BackendError, Limits, Program, ProofEnvelope, VerifyError};
use risc0_zkvm::sha::Digestible;
use risc0_zkvm::{
    get_prover_server, ExecutorEnv, ExecutorImpl, InnerReceipt, NullSegmentRef, ProverOpts, Receipt,
    ReceiptClaim, Segment, SuccinctReceipt, VerifierContext,
};

use crate::prove::{encode_proof, execute_error, image_id_of, program_binary, prover_error, Risc0Backend};
use crate::BACKEND_NAME;

/// A plan's proof: the program and the input, so a verifier re-executes.
const PLAN_MAGIC: [u8; 8] = *b"PNR0PLN\0";
/// A part's proof: the program and the bincode lifted or joined receipt.
const PART_MAGIC: [u8; 8] = *b"PNR0PRT\0";
const FRAME_VERSION: u16 = 1;

fn malformed(program: &Program, e: impl std::fmt::Display) -> BackendError {
    BackendError::MalformedInput {
        program: program.name().to_owned(),
        reason: e.to_string(),
    }
}

/// What executing with `po2`-sized segments found, and the segment `keep`
/// when asked for.
struct Cut {
    segments: u32,
    user_cycles: u64,
    journal: Vec<u8>,
    kept: Option<Segment>,
}

impl Risc0Backend {
    fn cut(
        &self,
        program: &Program,
        blob: &[u8],
        input: &[u8],
        limits: &Limits,
        po2: u32,
        keep: Option<u32>,
    ) -> Result<Cut, BackendError> {
        let mut b = ExecutorEnv::builder();
        b.write_slice(input);
        b.session_limit(Some(limits.max_cycles));
        b.segment_limit_po2(po2);
        let env = b.build().map_err(prover_error)?;
        let mut kept = None;
        let mut segments = 0u32;
        let session = ExecutorImpl::from_elf(env, blob)
            .and_then(|mut exec| {
                exec.run_with_callback(|segment| {
                    segments += 1;
                    if Some(segment.index) == keep {
                        kept = Some(segment);
                    }
                    Ok(Box::new(NullSegmentRef))
                })
            })
            .map_err(|e| execute_error(program, limits, e))?;
        Self::check_exit(program, session.exit_code)?;
        Ok(Cut {
            segments,
            user_cycles: session.user_cycles,
            journal: session.journal.map(|j| j.bytes).unwrap_or_default(),
            kept,
        })
    }

    /// The segment size a split uses: the node's, but no larger than fits
    /// the worker's memory, and never risc0 3.1's broken 2^15.
    pub(crate) fn split_po2(&self, asked: u32, prover_memory_bytes: Option<u64>) -> u32 {
        let fitted = crate::segment_po2(self.segment_po2, prover_memory_bytes);
        match asked.min(fitted) {
            crate::UNUSABLE_SEGMENT_PO2 => crate::MIN_FITTED_SEGMENT_PO2,
            po2 if po2 < 14 => 14,
            po2 => po2,
        }
    }

    /// The plan envelope for an execution longer than one segment; `None`:
    /// it fits in one, prove it whole.
    pub(crate) fn plan(
        &self,
        program: &Program,
        blob: &[u8],
        input: &[u8],
        limits: &Limits,
        po2: u32,
    ) -> Result<Option<ProofEnvelope>, BackendError> {
        let cut = self.cut(program, blob, input, limits, po2, None)?;
        if cut.segments < 2 || cut.segments > split::MAX_SEGMENTS {
            return Ok(None);
        }
        let plan = SplitPlan {
            segments: cut.segments,
            segment_po2: po2,
            cycles: cut.user_cycles,
            public_output: cut.journal,
        };
        Ok(Some(ProofEnvelope {
            backend: BACKEND_NAME.into(),
            backend_version: provernode_core::Backend::version(self),
            proof_kind: split::PLAN_KIND.into(),
            abi: Abi::Risc0,
            program_id: program.id(),
            input_digest: sha256(input),
            cycles: plan.cycles,
            public_output: plan.encode(),
            proof: proof_frame::encode(&PLAN_MAGIC, FRAME_VERSION, program.elf(), input)
                .map_err(prover_error)?,
        }))
    }

    /// Proves one part: a segment (re-executed, proved, lifted), a join,
    /// or the final join (the parent's succinct receipt).
    pub(crate) fn prove_part(
        &self,
        program: &Program,
        blob: &[u8],
        input: &[u8],
        limits: &Limits,
    ) -> Result<ProofEnvelope, BackendError> {
        let part = PartInput::decode(input).map_err(|e| malformed(program, e))?;
        let prover = get_prover_server(&ProverOpts::succinct()).map_err(prover_error)?;
        match &part.work {
            PartWork::Segment { parent_input } => {
                let cut = self.cut(
                    program,
                    blob,
                    parent_input,
                    limits,
                    part.segment_po2,
                    Some(part.lo),
                )?;
                if cut.segments != part.total {
                    return Err(malformed(
                        program,
                        format!(
                            "the plan has {} segments of 2^{} rows, this execution {}: the part is not of this program and input",
                            part.total, part.segment_po2, cut.segments
                        ),
                    ));
                }
                let segment = cut
                    .kept
                    .ok_or_else(|| malformed(program, format!("the execution has no segment {}", part.lo)))?;
                let rows = 1u64 << segment.po2();
                let proved = prover
                    .prove_segment(&VerifierContext::default(), &segment)
                    .map_err(prover_error)?;
                let lifted = prover.lift(&proved).map_err(prover_error)?;
                self.part_envelope(program, input, &part, split::SEGMENT_KIND, rows, &lifted)
            }
            PartWork::Join {
                public_output,
                cycles,
                ..
            } => {
                let (left, left_claim, right, right_claim) =
                    part.join_parts().map_err(|e| malformed(program, e))?;
                let left = self
                    .part_receipt(program, &left, &left_claim)
                    .map_err(|e| malformed(program, format!("the left part: {e}")))?;
                let right = self
                    .part_receipt(program, &right, &right_claim)
                    .map_err(|e| malformed(program, format!("the right part: {e}")))?;
                let joined = prover.join(&left, &right).map_err(prover_error)?;
                if !part.is_final() {
                    return self.part_envelope(program, input, &part, split::JOIN_KIND, 0, &joined);
                }
                // The parent's proof: one succinct receipt of the whole
                // execution, checked as any verifier will check it.
                let receipt = Receipt::new(InnerReceipt::Succinct(joined), public_output.clone());
                let image_id = image_id_of(blob).map_err(prover_error)?;
                receipt.verify(image_id).map_err(|e| {
                    malformed(
                        program,
                        format!(
                            "the joined receipt is not the program's whole run with the plan's journal ({e}); a program that verifies other proofs is not split"
                        ),
                    )
                })?;
                Ok(ProofEnvelope {
                    backend: BACKEND_NAME.into(),
                    backend_version: provernode_core::Backend::version(self),
                    proof_kind: "succinct".into(),
                    abi: Abi::Risc0,
                    program_id: program.id(),
                    input_digest: part.parent_input_digest,
                    cycles: *cycles,
                    public_output: public_output.clone(),
                    proof: encode_proof(program.elf(), &receipt)?,
                })
            }
        }
    }

    fn part_envelope(
        &self,
        program: &Program,
        input: &[u8],
        part: &PartInput,
        kind: &str,
        cycles: u64,
        receipt: &SuccinctReceipt<ReceiptClaim>,
    ) -> Result<ProofEnvelope, BackendError> {
        let claim = PartClaim {
            lo: part.lo,
            hi: part.hi,
            total: part.total,
            digest: receipt.claim.digest().into(),
        };
        let bytes = bincode::serialize(receipt).map_err(prover_error)?;
        Ok(ProofEnvelope {
            backend: BACKEND_NAME.into(),
            backend_version: provernode_core::Backend::version(self),
            proof_kind: kind.into(),
            abi: Abi::Risc0,
            program_id: program.id(),
            input_digest: sha256(input),
            cycles,
            public_output: claim.encode(),
            proof: proof_frame::encode(&PART_MAGIC, FRAME_VERSION, program.elf(), &bytes)
                .map_err(prover_error)?,
        })
    }

    /// A part's receipt, checked: made by this risc0 for this program, its
    /// seal verifies, and its claim is the one the envelope states.
    fn part_receipt(
        &self,
        program: &Program,
        envelope: &ProofEnvelope,
        claim: &PartClaim,
    ) -> Result<SuccinctReceipt<ReceiptClaim>, String> {
        if envelope.backend != BACKEND_NAME
            || envelope.backend_version != provernode_core::Backend::version(self)
        {
            return Err(format!(
                "it was made by {} {}, not this {}",
                envelope.backend,
                envelope.backend_version,
                provernode_core::Backend::version(self)
            ));
        }
        if envelope.program_id != program.id() {
            return Err("it is a part of another program".into());
        }
        let receipt = decode_part(envelope).map_err(|e| e.to_string())?;
        check_part(&receipt, claim).map_err(|e| e.to_string())?;
        Ok(receipt)
    }

    /// Verifies a plan (by re-executing it) or a part (its seal and claim).
    pub(crate) fn verify_split(&self, envelope: &ProofEnvelope) -> Result<(), BackendError> {
        if envelope.proof_kind == split::PLAN_KIND {
            let (elf, input) =
                proof_frame::decode(&envelope.proof, &PLAN_MAGIC, FRAME_VERSION, BACKEND_NAME)?;
            let program = Program::from_elf("split program".to_owned(), elf.to_vec()).map_err(|e| {
                VerifyError::MalformedProof {
                    reason: e.to_string(),
                }
            })?;
            if program.id() != envelope.program_id || sha256(input) != envelope.input_digest {
                return Err(VerifyError::Invalid {
                    reason: "the plan's record is of another program or input than the envelope names".into(),
                }
                .into());
            }
            let recorded = SplitPlan::decode(&envelope.public_output).map_err(|e| VerifyError::Invalid {
                reason: e.to_string(),
            })?;
            let blob = program_binary(program.elf());
            let again = self
                .plan(&program, &blob, input, &Limits::default(), recorded.segment_po2)
                .map_err(|e| VerifyError::Invalid {
                    reason: format!("re-executing the plan failed: {e}"),
                })?;
            if again.as_ref().map(|e| &e.public_output) != Some(&envelope.public_output) {
                return Err(VerifyError::Invalid {
                    reason: "re-executing gives another plan than the envelope states".into(),
                }
                .into());
            }
            return Ok(());
        }
        let claim = PartClaim::decode(&envelope.public_output).map_err(|e| VerifyError::Invalid {
            reason: e.to_string(),
        })?;
        let receipt = decode_part(envelope)?;
        check_part(&receipt, &claim)?;
        Ok(())
    }
}

fn decode_part(envelope: &ProofEnvelope) -> Result<SuccinctReceipt<ReceiptClaim>, VerifyError> {
    let (elf, bytes) = proof_frame::decode(&envelope.proof, &PART_MAGIC, FRAME_VERSION, BACKEND_NAME)?;
    if provernode_core::ProgramId::of_elf(elf) != envelope.program_id {
        return Err(VerifyError::Invalid {
            reason: "the part's record is of another program than the envelope names".into(),
        });
    }
    bincode::deserialize(bytes).map_err(|e| VerifyError::MalformedProof {
        reason: format!("part receipt: {e}"),
    })
}

fn check_part(receipt: &SuccinctReceipt<ReceiptClaim>, claim: &PartClaim) -> Result<(), VerifyError> {
    receipt.verify_integrity().map_err(|e| VerifyError::Invalid {
        reason: format!("the part's receipt does not verify: {e}"),
    })?;
    let digest: [u8; 32] = receipt.claim.digest().into();
    if digest != claim.digest {
        return Err(VerifyError::Invalid {
            reason: "the part's receipt proves another claim than the envelope states".into(),
        });
    }
    Ok(())
}

/// What the two ways of getting a segment to the agent that proves it
/// cost, measured on one program (issue 22's choice; ARCHITECTURE.md).
#[derive(Clone, Debug)]
pub struct SplitCosts {
    pub segments: u32,
    pub user_cycles: u64,
    /// One execution to the end: what each segment part pays to re-execute
    /// (the way provernode takes).
    pub execute: std::time::Duration,
    /// Each segment serialised (bincode), as a store would keep it.
    pub segment_bytes: Vec<u64>,
    /// Serialising, hashing (SHA-256), writing to `dir`, reading back and
    /// checking every segment: what storing them costs besides the space.
    pub store_and_load: std::time::Duration,
}

impl Risc0Backend {
    /// Measures [`SplitCosts`] for `program` on `input` with `2^po2`-row
    /// segments, storing segments under `dir`.
    pub fn split_costs(
        &self,
        program: &Program,
        input: &[u8],
        po2: u32,
        dir: &std::path::Path,
    ) -> Result<SplitCosts, BackendError> {
        let blob = self.blob(program)?;
        let limits = Limits::default();
        let started = std::time::Instant::now();
        let cut = self.cut(program, &blob, input, &limits, po2, None)?;
        let execute = started.elapsed();
        let mut segment_bytes = Vec::new();
        let mut store_and_load = std::time::Duration::ZERO;
        for index in 0..cut.segments {
            let one = self.cut(program, &blob, input, &limits, po2, Some(index))?;
            let segment = one
                .kept
                .ok_or_else(|| prover_error(format!("no segment {index}")))?;
            let started = std::time::Instant::now();
            let bytes = bincode::serialize(&segment).map_err(prover_error)?;
            let digest = sha256(&bytes);
            let path = dir.join(format!("segment-{index}"));
            std::fs::write(&path, &bytes).map_err(prover_error)?;
            let back = std::fs::read(&path).map_err(prover_error)?;
            if sha256(&back) != digest {
                return Err(prover_error("a stored segment read back changed"));
            }
            let _: Segment = bincode::deserialize(&back).map_err(prover_error)?;
            store_and_load += started.elapsed();
            segment_bytes.push(bytes.len() as u64);
            std::fs::remove_file(&path).map_err(prover_error)?;
        }
        Ok(SplitCosts {
            segments: cut.segments,
            user_cycles: cut.user_cycles,
            execute,
            segment_bytes,
            store_and_load,
        })
    }
}
