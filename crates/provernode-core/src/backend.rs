//! The seam between the node and every proving system.

use std::time::Duration;

use crate::{Abi, Digest, EnvelopeError, Program, ProgramId, ProofEnvelope};

/// Resource bounds for one execution or proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most guest instructions (cycles) before execution is stopped.
    pub max_cycles: u64,
    /// Most guest memory, in bytes, a backend may allocate for the guest's
    /// address space. This bounds the guest, not the prover process; the node
    /// enforces the process's memory from outside.
    pub max_memory_bytes: u64,
}

impl Limits {
    pub const DEFAULT_MAX_CYCLES: u64 = 1 << 32;
    pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 1 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_cycles: Self::DEFAULT_MAX_CYCLES,
            max_memory_bytes: Self::DEFAULT_MAX_MEMORY_BYTES,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProveOptions {
    pub limits: Limits,
    /// Backend-specific proof kind; `None` picks the backend's default.
    pub proof_kind: Option<String>,
    /// The memory the proving process may hold (the node's cage limit for
    /// the attempt); `None` where nothing limits it (`provernode prove`,
    /// the bench). A backend whose peak follows a size it chooses itself
    /// (RISC Zero's segments) chooses one that fits.
    pub prover_memory_bytes: Option<u64>,
    /// Split an execution longer than one segment of `2^po2` cycles into
    /// parts (`split`): the backend returns a `split::PLAN_KIND` envelope
    /// instead of a proof. `None`: never split (a backend that cannot split
    /// ignores it).
    pub split_po2: Option<u32>,
}

/// What running a guest produced, without a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub public_output: Vec<u8>,
    pub cycles: u64,
    /// What the guest wrote to stdout/stderr (not committed).
    pub stdout: Vec<u8>,
}

/// The result of a successful verification: what the proof attests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub backend: String,
    pub proof_kind: String,
    pub abi: Abi,
    pub program_id: ProgramId,
    pub input_digest: Digest,
    pub public_output: Vec<u8>,
    pub cycles: u64,
}

impl Verified {
    pub fn of(envelope: &ProofEnvelope) -> Verified {
        Verified {
            backend: envelope.backend.clone(),
            proof_kind: envelope.proof_kind.clone(),
            abi: envelope.abi,
            program_id: envelope.program_id,
            input_digest: envelope.input_digest,
            public_output: envelope.public_output.clone(),
            cycles: envelope.cycles,
        }
    }
}

/// Why a backend cannot run on this machine or in this build.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("backend `{backend}` is unavailable: {reason}")]
pub struct Unavailable {
    pub backend: String,
    pub reason: String,
}

/// A guest fault: the program did something the ABI does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    IllegalInstruction {
        word: u32,
        why: &'static str,
    },
    /// A load or store outside the ABI's memory.
    OutOfBounds {
        addr: u64,
        size: u32,
        write: bool,
    },
    Misaligned {
        addr: u64,
        size: u32,
        write: bool,
    },
    /// The pc left the program's executable segments.
    PcOutOfBounds,
    /// The pc is not 4-byte aligned (these zkVMs have no compressed
    /// instructions): a jump to a computed address that is off.
    PcMisaligned,
    /// An ecall the ABI does not define, or defined arguments it rejects.
    BadSyscall {
        detail: String,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let access = |w: bool| if w { "store" } else { "load" };
        match self {
            Fault::IllegalInstruction { word, why } => write!(f, "illegal instruction {word:#010x} ({why})"),
            Fault::OutOfBounds { addr, size, write } => {
                write!(
                    f,
                    "{}-byte {} at {addr:#x} is outside guest memory",
                    size,
                    access(*write)
                )
            }
            Fault::Misaligned { addr, size, write } => {
                write!(f, "misaligned {}-byte {} at {addr:#x}", size, access(*write))
            }
            Fault::PcOutOfBounds => f.write_str("jumped outside the program's executable segments"),
            Fault::PcMisaligned => f.write_str(
                "jumped to an address that is not 4-byte aligned (RV32IM and RV64IM here have no compressed instructions)",
            ),
            Fault::BadSyscall { detail } => write!(f, "bad system call: {detail}"),
        }
    }
}

/// Why a proof does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("envelope was made by backend `{found}`, not `{expected}`")]
    WrongBackend { expected: String, found: String },
    #[error("envelope backend version {found:?} is not supported by this build (supports {supported}); verify it with the release that made it")]
    UnsupportedBackendVersion { found: String, supported: String },
    #[error("proof kind {found:?} is not one this backend makes (known: {known})")]
    UnknownProofKind { found: String, known: String },
    #[error("the proof is for program {proved}, but the envelope claims program {claimed}")]
    ProgramIdMismatch { claimed: ProgramId, proved: ProgramId },
    #[error("the proof is for input {proved}, but the envelope claims input {claimed}")]
    InputDigestMismatch { claimed: Digest, proved: Digest },
    #[error("the envelope's public output ({claimed}) is not what the proof commits ({proved})")]
    OutputMismatch { claimed: String, proved: String },
    #[error("the envelope claims {claimed} cycles, the proof shows {proved}")]
    CyclesMismatch { claimed: u64, proved: u64 },
    #[error("the envelope's ABI {claimed} does not match the proved program's ABI {proved}")]
    AbiMismatch { claimed: Abi, proved: Abi },
    #[error("the proof bytes are malformed: {reason}")]
    MalformedProof { reason: String },
    #[error("the proof does not verify: {reason}")]
    Invalid { reason: String },
}

/// Why saved keys were not taken ([`Backend::load_keys`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("saved keys refused: {0}")]
pub struct KeysRefused(pub String);

/// Everything a backend can fail with. Messages name the program and, for
/// guest faults, the pc, and say what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("backend `{backend}` cannot run {abi} programs (`{program}` is a {abi} ELF); use a backend that supports the {abi} ABI")]
    UnsupportedAbi {
        backend: String,
        abi: Abi,
        program: String,
    },
    #[error("program `{program}` is malformed: {reason}")]
    MalformedProgram { program: String, reason: String },
    #[error("backend `{backend}` has no proof kind `{found}`; it makes {known} (the first is the default)")]
    UnknownProofKind {
        backend: String,
        found: String,
        known: String,
    },
    #[error("program `{program}` needs {feature}, which backend `{backend}` does not support yet{}", hint_suffix(.hint))]
    UnsupportedFeature {
        backend: String,
        program: String,
        feature: String,
        hint: String,
    },
    #[error("program `{program}` faulted at pc {pc:#x}: {fault}")]
    GuestFault { program: String, pc: u64, fault: Fault },
    #[error("program `{program}` ran past the cycle limit of {limit}{}; raise the limit (--max-cycles) if the input really needs more, or check the program for an endless loop", at_pc(.pc))]
    CycleLimit {
        program: String,
        /// Where it stopped, when the backend says (real zkVMs do not).
        pc: Option<u64>,
        limit: u64,
    },
    #[error("program `{program}` needed more than the guest memory limit of {limit_bytes} bytes (pc {pc:#x}); raise the limit (--max-memory) or use a smaller input")]
    MemoryLimit {
        program: String,
        pc: u64,
        limit_bytes: u64,
    },
    #[error("program `{program}` rejected its input (exit code 1); check the input's format for this program (see `provernode programs`)")]
    InvalidInput { program: String },
    #[error("the input of `{program}` is malformed: {reason}")]
    MalformedInput { program: String, reason: String },
    /// SP1: exit code 1 is a Rust panic, 3 a hint that failed its check;
    /// RISC Zero: a `sys_panic`. `output` is the tail of what the guest
    /// wrote to stdout and stderr, where its runtime prints the message.
    #[error("program `{program}` {what}{}", output_hint(.output))]
    GuestPanic {
        program: String,
        /// "panicked (SP1 exit code 1)" and the like.
        what: String,
        output: String,
    },
    /// The zkVM's own executor stopped the run for a reason of the
    /// program's (a host call it made wrongly, an access the executor
    /// refused) that it reports only as text. Executing is deterministic, so
    /// another attempt would stop the same way.
    #[error("program `{program}` stopped {backend}'s executor: {message}; executing is deterministic, so it is not retried: fix the program or its input (the trace backend names the pc of most such faults)")]
    ExecutorRefused {
        backend: String,
        program: String,
        message: String,
    },
    #[error("program `{program}` exited with code {code}{}", stdout_hint(.stdout))]
    GuestExit {
        program: String,
        code: u32,
        stdout: String,
    },
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("backend `{backend}` failed: {message}")]
    Prover { backend: String, message: String },
}

fn at_pc(pc: &Option<u64>) -> String {
    pc.map(|pc| format!(" (pc {pc:#x})")).unwrap_or_default()
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

fn output_hint(output: &str) -> String {
    let s = output.trim();
    if s.is_empty() {
        "; it wrote nothing to stdout or stderr".to_owned()
    } else {
        format!(": {s}")
    }
}

fn stdout_hint(stdout: &str) -> String {
    let s = stdout.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("; it printed: {s}")
    }
}

/// Something a dead backend process left behind, removed by
/// [`Backend::remove_leftovers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// What it was: a file's path, or a process ("pid 2112 (...)").
    pub what: String,
    /// Memory it held (a file's allocated bytes, not its sparse length; a
    /// process's resident memory), as far as known.
    pub bytes: u64,
}

/// A proving system. Implementations must be usable from several threads.
///
/// Architecture invariant: a backend never touches the queue, the network or
/// the file system beyond its own artifacts (SP1's shared memory); it maps (program, input) to a
/// proof envelope and back.
pub trait Backend: Send + Sync {
    /// The registry name, written into every envelope (`trace`, `risc0`, `sp1`).
    fn name(&self) -> &'static str;

    /// The version written into envelopes this backend makes.
    fn version(&self) -> String;

    /// The guest ABIs this backend can run.
    fn abis(&self) -> &'static [Abi];

    /// Proof kinds, the default first.
    fn proof_kinds(&self) -> &'static [&'static str];

    /// Whether the backend can run here; the reason when it cannot.
    fn available(&self) -> Result<(), Unavailable>;

    /// Pays the backend's one-off start-up cost now (SP1's prover takes
    /// minutes to start) instead of inside the first proof, so that callers
    /// can measure it and warm workers can start ahead of work. Idempotent.
    fn warm_up(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Whether starting this backend costs enough (SP1: minutes) that its
    /// tasks should go to a worker already warm for it rather than start a
    /// second one beside an idle one.
    fn start_up_is_costly(&self) -> bool {
        false
    }

    /// Pays the per-program set-up cost (proving keys) now; the backend
    /// keeps what it made for later proofs of the same program. Idempotent.
    fn set_up(&self, _program: &Program) -> Result<(), BackendError> {
        Ok(())
    }

    /// The prover process's memory below which proofs of this kind fail
    /// (`None`: the default kind), measured, not guessed. The node gives a
    /// task at least this much when it does not ask for a limit, refuses a
    /// task that asks for less, and does not recycle a warm worker for
    /// holding less.
    fn min_memory_bytes(&self, _proof_kind: Option<&str>) -> u64 {
        0
    }

    /// The attempt time limit a task of this proof kind (`None`: the
    /// default kind) gets at least when it asks for none: proofs that take
    /// longer on a slow machine than the node's default limit (meant for
    /// every backend) allows. A task that names its own limit keeps it, since
    /// a faster machine proves in less.
    fn min_default_timeout(&self, _proof_kind: Option<&str>) -> Duration {
        Duration::ZERO
    }

    /// Environment variables that this backend's prover reads itself and
    /// that its worker processes should get on a machine where one attempt
    /// can have `attempt_memory_bytes` (`None`: unknown), when the operator's
    /// `inherited` variables (what workers get already) set none of them.
    /// SP1 sizes its proving pools for large machines; on a small one the
    /// node sets them to 1 so that its proofs fit. Empty by default.
    fn worker_settings(
        &self,
        _inherited: &[(String, String)],
        _attempt_memory_bytes: Option<u64>,
    ) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Proof kinds this backend has but cannot make here, each with the
    /// reason (SP1's gnark-wrapped kinds), so that a request for one is
    /// refused with it.
    fn unavailable_proof_kinds(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The proof kind a request names (`None`: the default, the first of
    /// `proof_kinds`), checked: a kind this backend lacks is
    /// `UnknownProofKind` listing the ones it makes, and one it has but
    /// cannot make here is `Unavailable` with the reason. Every prover
    /// checks its requests with it, and the broker its submissions, so both
    /// say the same thing.
    fn resolve_proof_kind(&self, requested: Option<&str>) -> Result<&'static str, BackendError> {
        let kinds = self.proof_kinds();
        let Some(kind) = requested.or(kinds.first().copied()) else {
            return Err(Unavailable {
                backend: self.name().to_owned(),
                reason: "it lists no proof kinds".to_owned(),
            }
            .into());
        };
        if let Some((_, reason)) = self.unavailable_proof_kinds().iter().find(|(k, _)| *k == kind) {
            return Err(Unavailable {
                backend: self.name().to_owned(),
                reason: format!("proof kind `{kind}`: {reason}"),
            }
            .into());
        }
        kinds
            .iter()
            .find(|k| **k == kind)
            .copied()
            .ok_or_else(|| BackendError::UnknownProofKind {
                backend: self.name().to_owned(),
                found: kind.to_owned(),
                known: kinds.join(", "),
            })
    }

    /// The identity the backend's verifier binds a proof to, for this
    /// program: its name and value (RISC Zero's image id, SP1's verifying
    /// key hash). `None` for backends without one (trace). May cost what
    /// `set_up` costs.
    fn program_key(&self, _program: &Program) -> Result<Option<(&'static str, String)>, BackendError> {
        Ok(None)
    }

    /// The 32 bytes an aggregating guest names `program` by when it verifies
    /// one of this backend's proofs of it (`provernode_core::aggregate`):
    /// RISC Zero's image id, SP1's vk digest as 8 little-endian KoalaBear
    /// words (`hash_u32`). `None` for a backend whose proofs cannot be
    /// verified inside a guest. May cost what `set_up` costs.
    fn claim_key(&self, _program: &Program) -> Result<Option<[u8; 32]>, BackendError> {
        Ok(None)
    }

    /// The proof kind an aggregate is proved with when its task names none:
    /// the kind whose proofs carry no unresolved inner proof (RISC Zero
    /// succinct, SP1 compressed). `None`: the backend's default.
    fn aggregate_proof_kind(&self) -> Option<&'static str> {
        None
    }

    /// Whether `program_key` is cheap (milliseconds) rather than a set-up
    /// (SP1: tens of seconds per program); listings compute only cheap keys
    /// unless asked.
    fn program_key_is_cheap(&self) -> bool {
        true
    }

    /// Where this backend's set-up keys for `program` are kept between
    /// processes (an artifact name naming the backend's version, so keys
    /// of another version are never even read), or `None` when it keeps
    /// none (its set-up is cheap, or nothing of it can be serialised).
    fn saved_keys_name(&self, _program: &Program) -> Option<String> {
        None
    }

    /// The set-up keys of `program`, serialised for
    /// [`load_keys`](Self::load_keys) in another process; `None` when this
    /// backend keeps none or has not set `program` up.
    fn saved_keys(&self, _program: &Program) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(None)
    }

    /// Takes keys that [`saved_keys`](Self::saved_keys) made instead of
    /// setting them up again. Keys made by another version of the backend,
    /// or for another program, or damaged, are refused (with why), never
    /// used: the caller then sets them up as if there were none.
    fn load_keys(&self, _program: &Program, _bytes: &[u8]) -> Result<(), KeysRefused> {
        Err(KeysRefused("this backend keeps no keys".into()))
    }

    /// Whether this process may serve another attempt. A backend that had
    /// to abandon work it cannot stop (SP1 leaves an executor thread and
    /// its 4 GB of shared memory behind when a run hits the cycle limit)
    /// says no, and the worker is replaced after the attempt.
    fn reusable(&self) -> bool {
        true
    }

    /// Removes what dead processes of this backend left outside any
    /// process (SP1: its shared memory in `/dev/shm`), and says what went.
    /// Never touches what a live process uses. Called when a worker has
    /// ended and when a backend starts.
    fn remove_leftovers(&self) -> Vec<Leftover> {
        Vec::new()
    }

    /// Runs the guest and counts cycles; makes no proof.
    fn execute(&self, program: &Program, input: &[u8], limits: &Limits) -> Result<Execution, BackendError>;

    /// Runs the guest and proves the run.
    fn prove(
        &self,
        program: &Program,
        input: &[u8],
        options: &ProveOptions,
    ) -> Result<ProofEnvelope, BackendError>;

    /// Checks an envelope this backend made; needs nothing but the envelope.
    fn verify(&self, envelope: &ProofEnvelope) -> Result<Verified, BackendError>;

    /// Whether verifying re-runs the guest (trace): then a verifier uses
    /// as much guest memory and time as the proof's run did, in its own
    /// process, and a node bounds what it accepts accordingly.
    fn verification_runs_the_guest(&self) -> bool {
        false
    }

    /// Checks an envelope under the guest limits the task was proved with,
    /// where verifying re-executes the guest (trace): a node must never
    /// prove under a task's limits and then refuse the proof under its own
    /// defaults. Backends whose verification does not run the guest verify
    /// as [`Backend::verify`] does.
    fn verify_within(&self, envelope: &ProofEnvelope, _limits: &Limits) -> Result<Verified, BackendError> {
        self.verify(envelope)
    }
}

impl BackendError {
    /// A RISC Zero guest that called `env::pause`: its session stops with
    /// `ExitCode::Paused`, to be resumed by the host that ran it, which a
    /// proving task (run to its halt, then verified) cannot do. The same
    /// deterministic refusal on every backend, never retried.
    pub fn risc0_paused(backend: &str, program: String, user_exit: u32) -> BackendError {
        BackendError::UnsupportedFeature {
            backend: backend.to_owned(),
            program,
            feature: format!(
                "a paused session (the guest called env::pause with exit code {user_exit}; RISC Zero resumes it only in the host that ran it)"
            ),
            hint: "provernode proves programs that run to their halt; make the guest halt instead of pausing".into(),
        }
    }

    /// The attempt cause this error maps to, and whether another attempt
    /// could end differently. Guest faults and rejected input are
    /// deterministic; prover trouble may not be.
    pub fn classify(&self) -> (crate::Cause, bool) {
        use crate::Cause;
        match self {
            BackendError::InvalidInput { .. } | BackendError::MalformedInput { .. } => {
                (Cause::InvalidInput, false)
            }
            BackendError::GuestPanic { .. } => (Cause::GuestPanic, false),
            BackendError::UnsupportedAbi { .. }
            | BackendError::UnknownProofKind { .. }
            | BackendError::MalformedProgram { .. }
            | BackendError::UnsupportedFeature { .. }
            | BackendError::GuestFault { .. }
            | BackendError::CycleLimit { .. }
            | BackendError::MemoryLimit { .. }
            | BackendError::ExecutorRefused { .. }
            | BackendError::GuestExit { .. } => (Cause::BackendError, false),
            BackendError::Unavailable(_)
            | BackendError::Verify(_)
            | BackendError::Envelope(_)
            | BackendError::Prover { .. } => (Cause::BackendError, true),
        }
    }
}
