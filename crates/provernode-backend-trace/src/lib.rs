//! The `trace` backend: dev mode for provernode.
//!
//! It executes the very ELFs the real zkVMs prove, in a RISC-V interpreter
//! (RV32IM for the RISC Zero ABI, RV64IM for SP1's), emulating each ABI's
//! system calls so that its public output is byte for byte what the zkVM
//! commits. Its "proof" is the execution record (ELF, input, final state
//! digest); verification re-executes and compares. It is instant and proves
//! nothing cryptographically.
//!
//! Architecture invariant: pure computation. No I/O, no threads, no
//! processes; every bad program or input ends in a typed [`BackendError`].

mod abi;
pub mod aggregate;
mod decode;
mod elf;
mod inspect;
mod machine;
mod memory;
mod record;
mod risc0_accel;
mod risc0_claims;
mod risc0_poseidon2_constants;
mod sp1_bigint;
mod sp1_poseidon2;
mod sp1_poseidon2_constants;
mod sp1_precompiles;
mod split;

use provernode_core::{
    sha256, Abi, Backend, BackendError, Execution, Limits, Program, ProgramId, ProofEnvelope, ProveOptions,
    Unavailable, Verified, VerifyError,
};

pub use abi::{risc0_output_digest, sp1_exit_error, Outcome};
pub use inspect::{inspect, Inspection, SegmentInfo, SyscallUse};
pub use record::{Record, RECORD_VERSION};

pub const BACKEND_NAME: &str = "trace";
pub const PROOF_KIND: &str = "execution-record";

/// The trace backend. `verify_limits` bounds the re-execution a verifier is
/// willing to do for an envelope it was handed.
#[derive(Clone, Debug, Default)]
pub struct TraceBackend {
    pub verify_limits: Limits,
}

impl TraceBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs a program to completion and returns everything the run produced.
    /// An aggregate's input (`provernode_core::aggregate`) has its inner
    /// proofs checked first; the guest reads their claims and may verify
    /// them.
    pub fn run(&self, program: &Program, input: &[u8], limits: &Limits) -> Result<Outcome, BackendError> {
        if provernode_core::aggregate::AggregateInput::is(input) {
            let (guest_input, deferred) = aggregate::prepare(self, program, input)?;
            return abi::run_with(program, &guest_input, &deferred, limits);
        }
        abi::run(program, input, limits)
    }
}

/// Checks a whole ELF the way its zkVM loads it (header, every program
/// header, segment bounds and permissions, the entry point): what a node
/// runs before it accepts a program, so a malformed one is refused at the
/// door instead of failing every attempt. The error is a sentence.
pub fn check_elf(program: &Program) -> Result<(), String> {
    elf::load_program(program).map(|_| ())
}

impl Backend for TraceBackend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    fn version(&self) -> String {
        RECORD_VERSION.to_string()
    }

    fn abis(&self) -> &'static [Abi] {
        &Abi::ALL
    }

    fn proof_kinds(&self) -> &'static [&'static str] {
        &[PROOF_KIND]
    }

    fn available(&self) -> Result<(), Unavailable> {
        Ok(())
    }

    fn execute(&self, program: &Program, input: &[u8], limits: &Limits) -> Result<Execution, BackendError> {
        let out = self.run(program, input, limits)?;
        Ok(Execution {
            public_output: out.public_output,
            cycles: out.cycles,
            stdout: out.stdout,
        })
    }

    fn prove(
        &self,
        program: &Program,
        input: &[u8],
        options: &ProveOptions,
    ) -> Result<ProofEnvelope, BackendError> {
        self.resolve_proof_kind(options.proof_kind.as_deref())?;
        if provernode_core::split::PartInput::is(input) {
            return split::prove_part(self, program, input, &options.limits);
        }
        if let Some(po2) = options.split_po2 {
            if !provernode_core::aggregate::AggregateInput::is(input) {
                if let Some(plan) = split::plan(self, program, input, &options.limits, po2)? {
                    return Ok(plan);
                }
            }
        }
        let out = self.run(program, input, &options.limits)?;
        let record = Record {
            elf: program.elf().to_vec(),
            input: input.to_vec(),
            state_digest: out.state_digest,
        };
        Ok(ProofEnvelope {
            backend: BACKEND_NAME.to_owned(),
            backend_version: self.version(),
            proof_kind: PROOF_KIND.to_owned(),
            abi: program.abi(),
            program_id: program.id(),
            input_digest: sha256(input),
            cycles: out.cycles,
            public_output: out.public_output,
            proof: record.encode(),
        })
    }

    fn verify(&self, envelope: &ProofEnvelope) -> Result<Verified, BackendError> {
        self.verify_within(envelope, &self.verify_limits)
    }

    fn claim_key(&self, program: &Program) -> Result<Option<[u8; 32]>, BackendError> {
        aggregate::program_key(program)
            .map(Some)
            .map_err(|reason| BackendError::MalformedProgram {
                program: program.name().to_owned(),
                reason,
            })
    }

    fn verification_runs_the_guest(&self) -> bool {
        true
    }

    /// Re-executes within `limits` (the task's own guest limits in a node):
    /// a task proved with more guest memory or cycles than the defaults
    /// verifies as it was proved.
    fn verify_within(&self, envelope: &ProofEnvelope, limits: &Limits) -> Result<Verified, BackendError> {
        if envelope.backend != BACKEND_NAME {
            return Err(VerifyError::WrongBackend {
                expected: BACKEND_NAME.to_owned(),
                found: envelope.backend.clone(),
            }
            .into());
        }
        if envelope.backend_version != self.version() {
            return Err(VerifyError::UnsupportedBackendVersion {
                found: envelope.backend_version.clone(),
                supported: self.version(),
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
            split::verify_part(self, envelope, limits)?;
            return Ok(Verified::of(envelope));
        }
        if envelope.proof_kind != PROOF_KIND {
            return Err(VerifyError::UnknownProofKind {
                found: envelope.proof_kind.clone(),
                known: PROOF_KIND.to_owned(),
            }
            .into());
        }
        let record =
            Record::decode(&envelope.proof).map_err(|reason| VerifyError::MalformedProof { reason })?;
        let proved_id = ProgramId::of_elf(&record.elf);
        if proved_id != envelope.program_id {
            return Err(VerifyError::ProgramIdMismatch {
                claimed: envelope.program_id,
                proved: proved_id,
            }
            .into());
        }
        let proved_input = sha256(&record.input);
        if proved_input != envelope.input_digest {
            return Err(VerifyError::InputDigestMismatch {
                claimed: envelope.input_digest,
                proved: proved_input,
            }
            .into());
        }
        let program =
            Program::from_elf(format!("program {}", proved_id.0.short()), record.elf).map_err(|e| {
                VerifyError::MalformedProof {
                    reason: e.to_string(),
                }
            })?;
        if program.abi() != envelope.abi {
            return Err(VerifyError::AbiMismatch {
                claimed: envelope.abi,
                proved: program.abi(),
            }
            .into());
        }
        if envelope.cycles > limits.max_cycles {
            return Err(VerifyError::Invalid {
                reason: format!(
                    "the envelope claims {} cycles, more than this verifier re-executes ({}); raise --max-cycles to check it",
                    envelope.cycles, limits.max_cycles
                ),
            }
            .into());
        }
        // Re-execute with exactly the claimed cycle budget: a run that needs
        // more cannot match the claim.
        let limits = Limits {
            max_cycles: envelope.cycles,
            max_memory_bytes: limits.max_memory_bytes,
        };
        let out = self.run(&program, &record.input, &limits).map_err(|e| match e {
            BackendError::CycleLimit { .. } => VerifyError::Invalid {
                reason: format!(
                    "re-execution needs more than the claimed {} cycles",
                    envelope.cycles
                ),
            },
            other => VerifyError::Invalid {
                reason: format!("re-execution failed: {other}"),
            },
        })?;
        if out.public_output != envelope.public_output {
            return Err(VerifyError::OutputMismatch {
                claimed: hex::encode(&envelope.public_output),
                proved: hex::encode(&out.public_output),
            }
            .into());
        }
        if out.cycles != envelope.cycles {
            return Err(VerifyError::CyclesMismatch {
                claimed: envelope.cycles,
                proved: out.cycles,
            }
            .into());
        }
        if out.state_digest != record.state_digest {
            return Err(VerifyError::Invalid {
                reason: "re-execution ends in a different machine state than the record claims".into(),
            }
            .into());
        }
        Ok(Verified::of(envelope))
    }
}
