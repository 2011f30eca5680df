use provernode_core::aggregate::{self, AggregateInput, Claim};
use provernode_core::{
    proof_frame, sha256, Abi, Backend, BackendError, Execution, Limits, Program, ProgramId, ProofEnvelope,
    ProveOptions, Unavailable, Verified, VerifyError,
};
use risc0_binfmt::ProgramBinary;
use risc0_zkos_v1compat::V1COMPAT_ELF;
use risc0_zkvm::{
    compute_image_id, Executor, ExecutorEnv, ExitCode, InnerReceipt, LocalProver, Prover, ProverOpts,
    Receipt, GUEST_MAX_MEM,
};

use crate::{segment_po2, BACKEND_NAME, DEFAULT_SEGMENT_PO2};

const PROOF_MAGIC: [u8; 8] = *b"PNRISC0\0";
const PROOF_VERSION: u16 = 1;
const KINDS: &[&str] = crate::PROOF_KINDS;

/// An aggregate's input as risc0 takes it: the guest's claims, and the
/// inner receipts that resolve its `sys_verify_integrity` calls.
struct Aggregate {
    claims: Vec<u8>,
    receipts: Vec<Receipt>,
}

/// RISC Zero on the CPU. `segment_po2` bounds segment size (memory per
/// segment proof); `None` keeps risc0's default, lowered to fit the
/// proving process's memory limit where the node gives one
/// ([`crate::segment_po2`]).
#[derive(Clone, Debug, Default)]
pub struct Risc0Backend {
    pub segment_po2: Option<u32>,
}

pub(crate) fn prover_error(message: impl std::fmt::Display) -> BackendError {
    BackendError::Prover {
        backend: BACKEND_NAME.into(),
        message: message.to_string(),
    }
}

impl Risc0Backend {
    /// The program as risc0 runs it: an R0BF as it is (after checking its
    /// kernel is the one this node knows), a user ELF paired with the
    /// v1compat kernel. Validates the user ELF first (risc0's executor
    /// panics on some malformed ones).
    pub(crate) fn blob(&self, program: &Program) -> Result<Vec<u8>, BackendError> {
        if program.abi() != Abi::Risc0 {
            return Err(BackendError::UnsupportedAbi {
                backend: BACKEND_NAME.into(),
                abi: program.abi(),
                program: program.name().into(),
            });
        }
        let malformed = |reason: String| BackendError::MalformedProgram {
            program: program.name().into(),
            reason,
        };
        program.check_r0bf_kernel().map_err(malformed)?;
        risc0_binfmt::Program::load_elf(program.user_elf(), GUEST_MAX_MEM as u32)
            .map_err(|e| malformed(e.to_string()))?;
        Ok(program_binary(program.elf()))
    }

    fn env<'a>(
        &self,
        input: &'a [u8],
        assumptions: &[Receipt],
        limits: &Limits,
        prover_memory_bytes: Option<u64>,
    ) -> Result<ExecutorEnv<'a>, BackendError> {
        let mut b = ExecutorEnv::builder();
        b.write_slice(input);
        for receipt in assumptions {
            b.add_assumption(receipt.clone());
        }
        // risc0 counts user cycles against the session limit, as trace does.
        b.session_limit(Some(limits.max_cycles));
        let po2 = segment_po2(self.segment_po2, prover_memory_bytes);
        // A warning, not news: workers log warnings only, and the agent
        // keeps a worker's last stderr with a failed attempt, where this
        // explains a slower proof or an OOM at the smallest size.
        if self.segment_po2.is_none() && po2 < DEFAULT_SEGMENT_PO2 {
            tracing::warn!(
                segment_po2 = po2,
                memory_limit_mib = prover_memory_bytes.unwrap_or(0) >> 20,
                "risc0 segments limited to 2^{po2} rows to fit the worker's memory limit \
                 (set PROVERNODE_RISC0_SEGMENT_PO2 to choose, or give the task more memory)"
            );
        }
        b.segment_limit_po2(po2);
        b.build().map_err(prover_error)
    }

    /// Runs `blob` (the program as `blob` made it) on risc0's executor.
    fn execute_blob(
        &self,
        program: &Program,
        blob: &[u8],
        input: &[u8],
        assumptions: &[Receipt],
        limits: &Limits,
    ) -> Result<Execution, BackendError> {
        let session = LocalProver::new("local")
            .execute(self.env(input, assumptions, limits, None)?, blob)
            .map_err(|e| execute_error(program, limits, e))?;
        Self::check_exit(program, session.exit_code)?;
        Ok(Execution {
            public_output: session.journal.bytes,
            cycles: session.segments.iter().map(|s| s.cycles as u64).sum(),
            stdout: Vec::new(),
        })
    }

    /// An aggregate's input (`provernode_core::aggregate`) turned into the
    /// guest's claims and the inner receipts risc0 resolves its
    /// `sys_verify_integrity` calls with. Each inner proof must be a risc0
    /// proof of this version that verifies; a composite one is compressed
    /// to succinct first when `compress` (proving), since only a succinct
    /// receipt resolves an assumption. `None`: not an aggregate's input.
    fn prepare_aggregate(
        &self,
        program: &Program,
        input: &[u8],
        compress: bool,
    ) -> Result<Option<Aggregate>, BackendError> {
        if !AggregateInput::is(input) {
            return Ok(None);
        }
        let refuse = |reason: String| BackendError::MalformedInput {
            program: program.name().into(),
            reason,
        };
        let aggregate = AggregateInput::decode(input).map_err(|e| refuse(e.to_string()))?;
        let mut claims = Vec::with_capacity(aggregate.inner.len());
        let mut receipts = Vec::with_capacity(aggregate.inner.len());
        for (index, envelope) in aggregate.inner.iter().enumerate() {
            let refuse_claim = |reason: String| refuse(format!("claim {index}: {reason}"));
            if envelope.backend != BACKEND_NAME {
                return Err(refuse_claim(format!(
                    "its proof was made by backend `{}`; a {BACKEND_NAME} aggregate verifies {BACKEND_NAME} receipts (prove the claim on {BACKEND_NAME})",
                    envelope.backend
                )));
            }
            if envelope.backend_version != self.version() {
                return Err(refuse_claim(format!(
                    "its receipt was made by risc0 {}, this node proves with risc0 {}: another version's receipts have another control root; prove the claim again",
                    envelope.backend_version,
                    self.version()
                )));
            }
            self.verify(envelope)
                .map_err(|e| refuse_claim(format!("its proof does not verify: {e}")))?;
            let (elf, receipt) = decode_proof(&envelope.proof).map_err(|e| refuse_claim(e.to_string()))?;
            let receipt = match (&receipt.inner, compress) {
                (InnerReceipt::Composite(_), true) => LocalProver::new("local")
                    .compress(&ProverOpts::succinct(), &receipt)
                    .map_err(|e| {
                        prover_error(format!("claim {index}: compressing its composite receipt: {e}"))
                    })?,
                _ => receipt,
            };
            let program_key = image_key(&program_binary(elf)).map_err(refuse_claim)?;
            claims.push(Claim {
                program_key,
                public_output: envelope.public_output.clone(),
            });
            receipts.push(receipt);
        }
        Ok(Some(Aggregate {
            claims: aggregate::encode_claims(&claims),
            receipts,
        }))
    }

    pub(crate) fn check_exit(program: &Program, exit: ExitCode) -> Result<(), BackendError> {
        match exit {
            ExitCode::Halted(0) => Ok(()),
            ExitCode::Halted(1) => Err(BackendError::InvalidInput {
                program: program.name().into(),
            }),
            ExitCode::Halted(code) => Err(BackendError::GuestExit {
                program: program.name().into(),
                code,
                stdout: String::new(),
            }),
            ExitCode::Paused(code) => Err(BackendError::risc0_paused("risc0", program.name().into(), code)),
            other => Err(prover_error(format!("the guest stopped with {other:?}"))),
        }
    }
}

/// What risc0's *executor* stopping means. Executing is deterministic (the
/// same program and input stop the same way on any machine), and risc0
/// reports its reasons only as text: its session limit ("Session limit
/// exceeded"), a guest's `sys_panic` ("Guest panicked: ..."), and anything
/// else the executor refuses (a host call made wrongly, a trap). None of
/// them is retried. The prover's own failures, after an execution that
/// succeeded, stay retryable (`prover_error`).
pub(crate) fn execute_error(program: &Program, limits: &Limits, e: impl std::fmt::Display) -> BackendError {
    let message = e.to_string();
    if message.contains("Session limit exceeded") {
        BackendError::CycleLimit {
            program: program.name().into(),
            pc: None,
            limit: limits.max_cycles,
        }
    } else if let Some(at) = message.find("Guest panicked: ") {
        BackendError::GuestPanic {
            program: program.name().into(),
            what: "panicked (RISC Zero sys_panic)".into(),
            output: message[at + "Guest panicked: ".len()..].trim().to_owned(),
        }
    } else {
        BackendError::ExecutorRefused {
            backend: BACKEND_NAME.into(),
            program: program.name().into(),
            message,
        }
    }
}

pub(crate) fn encode_proof(elf: &[u8], receipt: &Receipt) -> Result<Vec<u8>, BackendError> {
    let receipt = bincode::serialize(receipt).map_err(prover_error)?;
    proof_frame::encode(&PROOF_MAGIC, PROOF_VERSION, elf, &receipt).map_err(prover_error)
}

/// What risc0 proves for a program file: an R0BF as it is, a user ELF with
/// the v1compat kernel (the image id covers both).
pub(crate) fn program_binary(file: &[u8]) -> Vec<u8> {
    if file.starts_with(b"R0BF") {
        file.to_vec()
    } else {
        ProgramBinary::new(file, V1COMPAT_ELF).encode()
    }
}

/// The image id of a program binary.
pub(crate) fn image_id_of(blob: &[u8]) -> Result<risc0_zkvm::sha::Digest, String> {
    compute_image_id(blob).map_err(|e| e.to_string())
}

/// The image id of a program binary as the 32 bytes an aggregate names it by.
fn image_key(blob: &[u8]) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    key.copy_from_slice(compute_image_id(blob).map_err(|e| e.to_string())?.as_bytes());
    Ok(key)
}

fn decode_proof(bytes: &[u8]) -> Result<(&[u8], Receipt), VerifyError> {
    let (elf, receipt) = proof_frame::decode(bytes, &PROOF_MAGIC, PROOF_VERSION, BACKEND_NAME)?;
    let receipt: Receipt = bincode::deserialize(receipt).map_err(|e| VerifyError::MalformedProof {
        reason: format!("receipt: {e}"),
    })?;
    Ok((elf, receipt))
}

impl Backend for Risc0Backend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    fn version(&self) -> String {
        format!("risc0-zkvm {}", risc0_zkvm::VERSION)
    }

    fn abis(&self) -> &'static [Abi] {
        &[Abi::Risc0]
    }

    fn proof_kinds(&self) -> &'static [&'static str] {
        KINDS
    }

    fn min_memory_bytes(&self, proof_kind: Option<&str>) -> u64 {
        crate::min_memory_bytes(proof_kind)
    }

    fn min_default_timeout(&self, proof_kind: Option<&str>) -> std::time::Duration {
        crate::min_default_timeout(proof_kind)
    }

    fn available(&self) -> Result<(), Unavailable> {
        Ok(())
    }

    fn program_key(&self, program: &Program) -> Result<Option<(&'static str, String)>, BackendError> {
        let image_id = compute_image_id(&self.blob(program)?).map_err(prover_error)?;
        Ok(Some(("image id", format!("0x{image_id}"))))
    }

    fn execute(&self, program: &Program, input: &[u8], limits: &Limits) -> Result<Execution, BackendError> {
        let blob = self.blob(program)?;
        match self.prepare_aggregate(program, input, false)? {
            Some(a) => self.execute_blob(program, &blob, &a.claims, &a.receipts, limits),
            None => self.execute_blob(program, &blob, input, &[], limits),
        }
    }

    fn aggregate_proof_kind(&self) -> Option<&'static str> {
        Some("succinct")
    }

    fn claim_key(&self, program: &Program) -> Result<Option<[u8; 32]>, BackendError> {
        image_key(&self.blob(program)?).map(Some).map_err(prover_error)
    }

    fn prove(
        &self,
        program: &Program,
        input: &[u8],
        options: &ProveOptions,
    ) -> Result<ProofEnvelope, BackendError> {
        let blob = self.blob(program)?;
        if provernode_core::split::PartInput::is(input) {
            return self.prove_part(program, &blob, input, &options.limits);
        }
        let aggregate = self.prepare_aggregate(program, input, true)?;
        // An aggregate is compressed to one succinct receipt unless its task
        // asks otherwise: its inner receipts are then resolved, not carried.
        let requested = options
            .proof_kind
            .as_deref()
            .or(aggregate.as_ref().and(self.aggregate_proof_kind()));
        let kind = self.resolve_proof_kind(requested)?;
        let opts = if kind == "succinct" {
            ProverOpts::succinct()
        } else {
            ProverOpts::composite()
        };
        let (guest_input, assumptions) = match &aggregate {
            Some(a) => (&a.claims[..], &a.receipts[..]),
            None => (input, &[][..]),
        };
        // A succinct proof longer than one segment is split when the node
        // asks (its parts are proved by any agent); an aggregate is not:
        // its assumptions would have to be resolved across parts.
        // Execute first (milliseconds): a guest panic, a refused call, a
        // rejected input or an endless loop is reported as what it is, not
        // retried, before minutes of proving start. Planning a split is
        // that execution (it checks the exit too).
        if let (Some(asked), "succinct", None) = (options.split_po2, kind, &aggregate) {
            let po2 = self.split_po2(asked, options.prover_memory_bytes);
            if let Some(plan) = self.plan(program, &blob, input, &options.limits, po2)? {
                return Ok(plan);
            }
        } else {
            self.execute_blob(program, &blob, guest_input, assumptions, &options.limits)?;
        }
        let info = LocalProver::new("local")
            .prove_with_opts(
                self.env(
                    guest_input,
                    assumptions,
                    &options.limits,
                    options.prover_memory_bytes,
                )?,
                &blob,
                &opts,
            )
            .map_err(prover_error)?;
        let exit = info
            .receipt
            .claim()
            .map_err(prover_error)?
            .as_value()
            .map_err(prover_error)?
            .exit_code;
        Self::check_exit(program, exit)?;
        Ok(ProofEnvelope {
            backend: BACKEND_NAME.into(),
            backend_version: self.version(),
            proof_kind: kind.into(),
            abi: Abi::Risc0,
            program_id: program.id(),
            input_digest: sha256(input),
            cycles: info.stats.user_cycles,
            public_output: info.receipt.journal.bytes.clone(),
            proof: encode_proof(program.elf(), &info.receipt)?,
        })
    }

    fn verify(&self, envelope: &ProofEnvelope) -> Result<Verified, BackendError> {
        if envelope.backend != BACKEND_NAME {
            return Err(VerifyError::WrongBackend {
                expected: BACKEND_NAME.into(),
                found: envelope.backend.clone(),
            }
            .into());
        }
        if [
            provernode_core::split::PLAN_KIND,
            provernode_core::split::SEGMENT_KIND,
            provernode_core::split::JOIN_KIND,
        ]
        .contains(&envelope.proof_kind.as_str())
        {
            self.verify_split(envelope)?;
            return Ok(Verified::of(envelope));
        }
        let (elf, receipt) = decode_proof(&envelope.proof)?;
        let proved = ProgramId::of_elf(elf);
        if proved != envelope.program_id {
            return Err(VerifyError::ProgramIdMismatch {
                claimed: envelope.program_id,
                proved,
            }
            .into());
        }
        let kind_ok = matches!(
            (&receipt.inner, envelope.proof_kind.as_str()),
            (InnerReceipt::Composite(_), "composite") | (InnerReceipt::Succinct(_), "succinct")
        );
        if !kind_ok {
            return Err(VerifyError::Invalid {
                reason: format!("the receipt is not a {} receipt", envelope.proof_kind),
            }
            .into());
        }
        let image_id = compute_image_id(&program_binary(elf)).map_err(|e| VerifyError::MalformedProof {
            reason: e.to_string(),
        })?;
        receipt.verify(image_id).map_err(|e| VerifyError::Invalid {
            reason: e.to_string(),
        })?;
        if receipt.journal.bytes != envelope.public_output {
            return Err(VerifyError::OutputMismatch {
                claimed: hex::encode(&envelope.public_output),
                proved: hex::encode(&receipt.journal.bytes),
            }
            .into());
        }
        Ok(Verified::of(envelope))
    }
}
