use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use provernode_core::aggregate::{self, AggregateInput, Claim};
use provernode_core::{
    proof_frame, sha256, Abi, Backend, BackendError, Execution, KeysRefused, Leftover, Limits, Program,
    ProgramId, ProofEnvelope, ProveOptions, Unavailable, Verified, VerifyError,
};
use sp1_core_executor::{ExecutionError, SP1CoreOpts};
use sp1_sdk::blocking::{CpuProver, LightProver, ProveRequest, Prover};
use sp1_sdk::{
    Elf, ExecutionReport, HashableKey, ProvingKey, SP1Context, SP1Proof, SP1ProofWithPublicValues,
    SP1ProvingKey, SP1PublicValues, SP1Stdin, SP1VerifyingKey, SP1_CIRCUIT_VERSION,
};

use crate::{BACKEND_NAME, UNAVAILABLE_KINDS};

const PROOF_MAGIC: [u8; 8] = *b"PNSP1\0\0\0";
const PROOF_VERSION: u16 = 1;
const KINDS: &[&str] = crate::PROOF_KINDS;

/// SP1 on the CPU. Cheap to construct: nothing starts until it is needed.
pub struct Sp1Backend {
    /// SP1's `shard_size` (cycles per shard estimate); `None` keeps SP1's
    /// default. Fixed for the life of the prover, so it is a backend setting,
    /// not a per-task one.
    shard_size: Option<usize>,
    /// The full CPU prover: minutes and gigabytes to start, made once.
    prover: OnceLock<CpuProver>,
    /// The light node: executes, sets up verifying keys and verifies.
    light: OnceLock<LightProver>,
    /// A runtime for the node's async execute (the SDK's blocking execute
    /// turns its typed errors into strings; this keeps the cycle limit typed).
    runtime: OnceLock<tokio::runtime::Runtime>,
    /// Proving keys by program, made by the full prover.
    keys: Mutex<HashMap<ProgramId, Arc<SP1ProvingKey>>>,
    /// Verifying keys by program, for verification without the full prover.
    vks: Mutex<HashMap<ProgramId, SP1VerifyingKey>>,
    /// Set when SP1 failed in a way that can leave its executor thread and
    /// shared memory behind (its cycle limit does); the process should not
    /// serve another attempt.
    abandoned_work: AtomicBool,
}

impl Default for Sp1Backend {
    fn default() -> Self {
        Sp1Backend::new(None)
    }
}

impl std::fmt::Debug for Sp1Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sp1Backend")
            .field("shard_size", &self.shard_size)
            .field("prover_started", &self.prover.get().is_some())
            .finish_non_exhaustive()
    }
}

fn prover_error(message: impl std::fmt::Display) -> BackendError {
    BackendError::Prover {
        backend: BACKEND_NAME.into(),
        message: message.to_string(),
    }
}

/// SP1's constructors panic on failure; a panic becomes a typed error so the
/// worker reports it instead of dying without a word.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, BackendError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let detail = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "no message".into());
        prover_error(format!("{what} panicked: {detail}"))
    })
}

fn log_removed(removed: &[Leftover]) {
    for r in removed {
        tracing::warn!(
            backend = BACKEND_NAME,
            what = %r.what,
            mib = r.bytes >> 20,
            "removed what a dead SP1 process left behind"
        );
    }
}

fn phase(name: &str, started: Instant, program: Option<&str>) {
    let seconds = started.elapsed().as_secs_f64();
    match program {
        Some(program) => tracing::info!(
            backend = BACKEND_NAME,
            phase = name,
            program,
            seconds,
            "phase done"
        ),
        None => tracing::info!(backend = BACKEND_NAME, phase = name, seconds, "phase done"),
    }
}

impl Sp1Backend {
    /// Also removes the shared memory that dead SP1 processes left behind
    /// (see `leftovers`), so that every SP1 process start reclaims it.
    pub fn new(shard_size: Option<usize>) -> Sp1Backend {
        log_removed(&crate::leftovers::remove_orphans());
        Sp1Backend {
            shard_size,
            prover: OnceLock::new(),
            light: OnceLock::new(),
            runtime: OnceLock::new(),
            keys: Mutex::new(HashMap::new()),
            vks: Mutex::new(HashMap::new()),
            abandoned_work: AtomicBool::new(false),
        }
    }

    fn opts(&self) -> SP1CoreOpts {
        let mut opts = SP1CoreOpts::default();
        if let Some(shard_size) = self.shard_size {
            opts.shard_size = shard_size;
        }
        opts
    }

    fn prover(&self) -> Result<&CpuProver, BackendError> {
        if let Some(p) = self.prover.get() {
            return Ok(p);
        }
        let started = Instant::now();
        let opts = self.opts();
        let prover = no_panic("starting SP1's CPU prover", || {
            CpuProver::new_with_opts(Some(opts))
        })?;
        phase("start-up", started, None);
        Ok(self.prover.get_or_init(|| prover))
    }

    fn light(&self) -> Result<&LightProver, BackendError> {
        if let Some(l) = self.light.get() {
            return Ok(l);
        }
        let light = no_panic("starting SP1's light node", LightProver::new)?;
        Ok(self.light.get_or_init(|| light))
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, BackendError> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sp1-execute")
            .enable_all()
            .build()
            .map_err(|e| prover_error(format!("cannot start a runtime for SP1's executor: {e}")))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// SP1 returns on its first failing task and leaves the rest (an
    /// executor thread, its shared memory) running or stuck: after any
    /// failure of SP1 itself this process must not serve another attempt.
    fn abandon_on_err<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        result.inspect_err(|_| self.abandoned_work.store(true, Ordering::SeqCst))
    }

    fn check_abi(program: &Program) -> Result<(), BackendError> {
        if program.abi() == Abi::Sp1 {
            Ok(())
        } else {
            Err(BackendError::UnsupportedAbi {
                backend: BACKEND_NAME.into(),
                abi: program.abi(),
                program: program.name().into(),
            })
        }
    }

    /// Refuses, before anything runs, a program in SP1 6.2's untrusted-program
    /// mode: SP1 6.10's x86-64 executor does not implement it (its JIT aborts
    /// the executor process on the first MPROTECT, "page_prot_write not
    /// implemented for JitContext", and does not enforce page protection).
    /// The abort would look like an executor killed from outside, an
    /// infrastructure fault retried on every agent; this is the program's
    /// own, deterministic, and said once.
    fn check_supported(program: &Program) -> Result<(), BackendError> {
        Self::check_abi(program)?;
        // A guest built with SP1's profiling feature registers its symbols
        // with INSERT/DELETE_PROFILER_SYMBOLS, which SP1 6.10's x86-64
        // executor does not implement either: it aborts ("not implemented",
        // sp1-jit's `maybe_insert_profiler_symbols`). Found statically, as
        // `programs inspect` finds every call.
        if let Ok(found) = provernode_backend_trace::inspect(program) {
            if let Some(call) = found.system_calls.iter().find(|c| {
                matches!(
                    c.name.as_str(),
                    "INSERT_PROFILER_SYMBOLS" | "DELETE_PROFILER_SYMBOLS"
                )
            }) {
                return Err(BackendError::UnsupportedFeature {
                    backend: BACKEND_NAME.into(),
                    program: program.name().into(),
                    feature: format!(
                        "SP1's profiling feature (the program calls {})",
                        call.name
                    ),
                    hint: "SP1 6.10's x86-64 executor aborts on profiler calls (\"not implemented\"); build the guest without SP1's `profiling` feature, or run it on the trace backend".into(),
                });
            }
        }
        match provernode_core::sp1_untrusted_heap(program.elf()) {
            None => Ok(()),
            Some((start, end)) => Err(BackendError::UnsupportedFeature {
                backend: BACKEND_NAME.into(),
                program: program.name().into(),
                feature: format!(
                    "SP1 6.2's untrusted-program mode (its `.note.succinct` turns on page protection, MPROTECT and trap handling, region {start:#x}..{end:#x})"
                ),
                hint: "SP1 6.10's x86-64 executor does not implement that mode (it aborts on MPROTECT: \"page_prot_write not implemented for JitContext\"); the trace backend runs it in dev mode, or build the guest without it".into(),
            }),
        }
    }

    /// Runs the guest on SP1's executor with the cycle limit, and maps its
    /// exit code the way every backend does (1 = the guest rejected its input).
    fn run(
        &self,
        node: &sp1_sdk::blocking::LightProver,
        program: &Program,
        input: &[u8],
        stdin: SP1Stdin,
        limits: &Limits,
    ) -> Result<(SP1PublicValues, ExecutionReport), BackendError> {
        let context = SP1Context::builder().max_cycles(limits.max_cycles).build();
        let elf: Elf = program.elf().into();
        let run = self.abandon_on_err(no_panic("SP1's executor", || {
            self.runtime()
                .map(|rt| rt.block_on(node.inner().execute(&elf, stdin, context)))
        }))??;
        let (public_values, _digest, report) = self.abandon_on_err(run).map_err(|e| {
            match e.downcast_ref::<ExecutionError>() {
                Some(ExecutionError::ExceededCycleLimit(limit)) => BackendError::CycleLimit {
                    program: program.name().into(),
                    pc: None,
                    limit: *limit,
                },
                // The executor's process died (SP1 reports it as `Other`):
                // a signal from outside or a full /dev/shm, which another
                // attempt may survive, or a panic on the program's own
                // input, which it would not. trace tells them apart.
                Some(ExecutionError::Other(why)) => executor_died(program, input, limits, why),
                // Anything else SP1's executor refuses (an unknown syscall,
                // a memory fault) is the program's doing.
                _ => BackendError::ExecutorRefused {
                    backend: BACKEND_NAME.into(),
                    program: program.name().into(),
                    message: format!("{e:#}"),
                },
            }
        })?;
        match report.exit_code {
            0 => Ok((public_values, report)),
            code => Err(exit_error(
                program,
                input,
                limits,
                u32::try_from(code).unwrap_or(u32::MAX),
            )),
        }
    }

    fn proving_key(&self, program: &Program) -> Result<Arc<SP1ProvingKey>, BackendError> {
        let id = program.id();
        if let Some(pk) = self.keys.lock().map_err(prover_error)?.get(&id) {
            return Ok(pk.clone());
        }
        let prover = self.prover()?;
        let started = Instant::now();
        let pk = prover
            .setup(program.elf().into())
            .map_err(|e| BackendError::MalformedProgram {
                program: program.name().into(),
                reason: format!("SP1's key set-up failed: {e}"),
            })?;
        phase("set-up", started, Some(program.name()));
        let pk = Arc::new(pk);
        self.keys.lock().map_err(prover_error)?.insert(id, pk.clone());
        Ok(pk)
    }

    /// The verifying key of `elf`: from a proving key made here, else
    /// computed by the light node (and kept).
    fn verifying_key(&self, id: ProgramId, elf: &[u8]) -> Result<SP1VerifyingKey, BackendError> {
        if let Some(pk) = self.keys.lock().map_err(prover_error)?.get(&id) {
            return Ok(pk.verifying_key().clone());
        }
        if let Some(vk) = self.vks.lock().map_err(prover_error)?.get(&id) {
            return Ok(vk.clone());
        }
        let light = self.light()?;
        let vk = no_panic("SP1's key set-up", || light.setup(elf.into()))?
            .map_err(|e| VerifyError::MalformedProof {
                reason: format!("the proof's program cannot be set up by SP1: {e}"),
            })?
            .verifying_key()
            .clone();
        self.vks.lock().map_err(prover_error)?.insert(id, vk.clone());
        Ok(vk)
    }
}

/// What a non-zero exit code means. SP1's executor prints the guest's
/// stdout and stderr to this process's stderr, where no caller sees them,
/// so the program is run again on `trace` (milliseconds; its system calls,
/// output and exit code equal SP1's, `tests/official.rs`) for the panic
/// message and the same classification every backend gives.
fn exit_error(program: &Program, input: &[u8], limits: &Limits, code: u32) -> BackendError {
    match provernode_backend_trace::TraceBackend::new().execute(program, input, limits) {
        Err(
            e @ (BackendError::GuestPanic { .. }
            | BackendError::InvalidInput { .. }
            | BackendError::GuestExit { .. }),
        ) => e,
        other => {
            let why = match other {
                Ok(_) => "trace ran it to a successful end".to_owned(),
                Err(e) => e.to_string(),
            };
            provernode_backend_trace::sp1_exit_error(
                program.name().into(),
                code,
                true,
                format!("(the guest's output is in the prover's log; re-running it on trace to show it failed: {why})").as_bytes(),
            )
        }
    }
}

/// SP1's executor process died. Its executor panics (the process aborts) on
/// some guest input (a secp256k1 point off the curve, a deprecated
/// precompile, a malformed hook buffer), which is deterministic, and dies
/// from outside causes, which are not. The program is run again on trace
/// (milliseconds; equal to SP1 on every system call, `tests/official.rs`):
/// if trace stops it for good, so is this run, with trace's reason; if
/// trace runs it, the death was the machine's and another attempt may pass.
fn executor_died(program: &Program, input: &[u8], limits: &Limits, why: &str) -> BackendError {
    match provernode_backend_trace::TraceBackend::new().execute(program, input, limits) {
        // (A call trace does not emulate proves nothing about SP1's run.)
        Err(e) if !e.classify().1 && !e.to_string().contains("is not emulated by the trace backend") => {
            BackendError::ExecutorRefused {
                backend: BACKEND_NAME.into(),
                program: program.name().into(),
                message: format!("its process died ({why}); the same run on trace stops for good: {e}"),
            }
        }
        _ => BackendError::Prover {
            backend: BACKEND_NAME.into(),
            message: format!("SP1's executor stopped: {why}"),
        },
    }
}

impl Sp1Backend {
    /// The task's input as SP1 takes it. An aggregate's input
    /// (`provernode_core::aggregate`) becomes the guest's claims as one item
    /// and each inner proof with its verifying key (`write_proof`), in the
    /// order the guest verifies them; each must be an SP1 proof of this
    /// version, compressed (only a compressed proof is verified inside a
    /// guest), that verifies. Returns whether it was an aggregate.
    fn stdin_for(&self, program: &Program, input: &[u8]) -> Result<(SP1Stdin, bool), BackendError> {
        if !AggregateInput::is(input) {
            return Ok((stdin(program, input)?, false));
        }
        let refuse = |reason: String| BackendError::MalformedInput {
            program: program.name().into(),
            reason,
        };
        let aggregate = AggregateInput::decode(input).map_err(|e| refuse(e.to_string()))?;
        let mut claims = Vec::with_capacity(aggregate.inner.len());
        let mut proofs = Vec::with_capacity(aggregate.inner.len());
        for (index, envelope) in aggregate.inner.iter().enumerate() {
            let refuse_claim = |reason: String| refuse(format!("claim {index}: {reason}"));
            if envelope.backend != BACKEND_NAME {
                return Err(refuse_claim(format!(
                    "its proof was made by backend `{}`; an {BACKEND_NAME} aggregate verifies {BACKEND_NAME} proofs (prove the claim on {BACKEND_NAME})",
                    envelope.backend
                )));
            }
            if envelope.backend_version != self.version() {
                return Err(refuse_claim(format!(
                    "its proof was made by {}, this node proves with {}: SP1 verifies only its own version's proofs inside a guest; prove the claim again",
                    envelope.backend_version,
                    self.version()
                )));
            }
            if envelope.proof_kind != "compressed" {
                return Err(refuse_claim(format!(
                    "its proof is a {} proof; SP1 verifies compressed proofs inside a guest, so prove the claim with proof kind compressed",
                    envelope.proof_kind
                )));
            }
            self.verify(envelope)
                .map_err(|e| refuse_claim(format!("its proof does not verify: {e}")))?;
            let (elf, proof) = decode_proof(&envelope.proof).map_err(|e| refuse_claim(e.to_string()))?;
            let SP1Proof::Compressed(reduced) = proof.proof else {
                return Err(refuse_claim("its proof is not a compressed proof".into()));
            };
            let vk = self.verifying_key(envelope.program_id, elf)?;
            claims.push(Claim {
                program_key: claim_key_of(&vk),
                public_output: envelope.public_output.clone(),
            });
            proofs.push((*reduced, vk.vk.clone()));
        }
        let mut stdin = SP1Stdin::new();
        stdin.write_slice(&aggregate::encode_claims(&claims));
        for (proof, vk) in proofs {
            stdin.write_proof(proof, vk);
        }
        Ok((stdin, true))
    }
}

/// The key an aggregate names a program by: its vk digest (`hash_u32`),
/// eight little-endian words.
fn claim_key_of(vk: &SP1VerifyingKey) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (out, word) in key.chunks_exact_mut(4).zip(vk.hash_u32()) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    key
}

/// The task's input as the `SP1Stdin` the SDK would have built: one item
/// per `write` (provernode_core::input), no item for no input.
fn stdin(program: &Program, input: &[u8]) -> Result<SP1Stdin, BackendError> {
    let items = provernode_core::input::decode_items(input).map_err(|e| BackendError::MalformedInput {
        program: program.name().into(),
        reason: e.to_string(),
    })?;
    let mut stdin = SP1Stdin::new();
    for item in &items {
        stdin.write_slice(item);
    }
    Ok(stdin)
}

fn encode_proof(elf: &[u8], proof: &SP1ProofWithPublicValues) -> Result<Vec<u8>, BackendError> {
    let proof = bincode::serialize(proof).map_err(prover_error)?;
    proof_frame::encode(&PROOF_MAGIC, PROOF_VERSION, elf, &proof).map_err(prover_error)
}

fn decode_proof(bytes: &[u8]) -> Result<(&[u8], SP1ProofWithPublicValues), VerifyError> {
    let (elf, proof) = proof_frame::decode(bytes, &PROOF_MAGIC, PROOF_VERSION, BACKEND_NAME)?;
    let proof = bincode::deserialize(proof).map_err(|e| VerifyError::MalformedProof {
        reason: format!("sp1 proof: {e}"),
    })?;
    Ok((elf, proof))
}

fn proof_kind_name(proof: &SP1Proof) -> &'static str {
    match proof {
        SP1Proof::Core(_) => "core",
        SP1Proof::Compressed(_) => "compressed",
        SP1Proof::Plonk(_) => "plonk",
        SP1Proof::Groth16(_) => "groth16",
    }
}

impl Backend for Sp1Backend {
    fn name(&self) -> &'static str {
        BACKEND_NAME
    }

    fn version(&self) -> String {
        format!("sp1-sdk 6.10.0 (circuit {SP1_CIRCUIT_VERSION})")
    }

    fn abis(&self) -> &'static [Abi] {
        &[Abi::Sp1]
    }

    fn proof_kinds(&self) -> &'static [&'static str] {
        KINDS
    }

    fn available(&self) -> Result<(), Unavailable> {
        Ok(())
    }

    fn reusable(&self) -> bool {
        !self.abandoned_work.load(Ordering::SeqCst)
    }

    fn remove_leftovers(&self) -> Vec<Leftover> {
        let removed = crate::leftovers::remove_orphans();
        log_removed(&removed);
        removed
    }

    fn min_memory_bytes(&self, proof_kind: Option<&str>) -> u64 {
        crate::min_memory_bytes(proof_kind)
    }

    fn min_default_timeout(&self, proof_kind: Option<&str>) -> std::time::Duration {
        crate::min_default_timeout(proof_kind)
    }

    fn unavailable_proof_kinds(&self) -> &'static [(&'static str, &'static str)] {
        UNAVAILABLE_KINDS
    }

    fn worker_settings(
        &self,
        inherited: &[(String, String)],
        attempt_memory_bytes: Option<u64>,
    ) -> Vec<(String, String)> {
        crate::worker_settings(inherited, attempt_memory_bytes)
    }

    fn warm_up(&self) -> Result<(), BackendError> {
        self.prover().map(|_| ())
    }

    fn set_up(&self, program: &Program) -> Result<(), BackendError> {
        Self::check_abi(program)?;
        self.proving_key(program).map(|_| ())
    }

    fn program_key_is_cheap(&self) -> bool {
        false
    }

    fn saved_keys_name(&self, program: &Program) -> Option<String> {
        Some(crate::keys::artifact_name(&program.id(), SP1_CIRCUIT_VERSION))
    }

    fn saved_keys(&self, program: &Program) -> Result<Option<Vec<u8>>, BackendError> {
        let id = program.id();
        let Some(pk) = self.keys.lock().map_err(prover_error)?.get(&id).cloned() else {
            return Ok(None);
        };
        let vk = bincode::serialize(pk.verifying_key()).map_err(prover_error)?;
        Ok(Some(crate::keys::encode(SP1_CIRCUIT_VERSION, &id, &vk)))
    }

    /// What SP1's set-up makes is the verifying key (`SP1ProvingKey` is
    /// the key and the ELF; SP1's prover takes the ELF alone), so a loaded
    /// key is the whole set-up.
    fn load_keys(&self, program: &Program, bytes: &[u8]) -> Result<(), KeysRefused> {
        Self::check_abi(program).map_err(|e| KeysRefused(e.to_string()))?;
        let started = Instant::now();
        let id = program.id();
        let vk = crate::keys::decode(bytes, SP1_CIRCUIT_VERSION, &id)?;
        let vk: SP1VerifyingKey = bincode::deserialize(vk)
            .map_err(|e| KeysRefused(format!("their verifying key does not decode: {e}")))?;
        let pk = Arc::new(SP1ProvingKey::new(vk, program.elf().into()));
        self.keys
            .lock()
            .map_err(|e| KeysRefused(format!("internal: {e}")))?
            .insert(id, pk);
        phase("load keys", started, Some(program.name()));
        Ok(())
    }

    fn start_up_is_costly(&self) -> bool {
        true
    }

    fn program_key(&self, program: &Program) -> Result<Option<(&'static str, String)>, BackendError> {
        Self::check_abi(program)?;
        let vk = self.verifying_key(program.id(), program.elf())?;
        Ok(Some(("vk hash", vk.bytes32())))
    }

    fn claim_key(&self, program: &Program) -> Result<Option<[u8; 32]>, BackendError> {
        Self::check_abi(program)?;
        let vk = self.verifying_key(program.id(), program.elf())?;
        Ok(Some(claim_key_of(&vk)))
    }

    fn aggregate_proof_kind(&self) -> Option<&'static str> {
        Some("compressed")
    }

    fn execute(&self, program: &Program, input: &[u8], limits: &Limits) -> Result<Execution, BackendError> {
        Self::check_supported(program)?;
        let (stdin, _) = self.stdin_for(program, input)?;
        let (public_values, report) = self.run(self.light()?, program, input, stdin, limits)?;
        Ok(Execution {
            public_output: public_values.to_vec(),
            cycles: report.total_instruction_count(),
            stdout: Vec::new(),
        })
    }

    fn prove(
        &self,
        program: &Program,
        input: &[u8],
        options: &ProveOptions,
    ) -> Result<ProofEnvelope, BackendError> {
        Self::check_supported(program)?;
        let aggregate = AggregateInput::is(input);
        // An aggregate is proved compressed unless its task asks otherwise.
        let requested = options.proof_kind.as_deref().or(if aggregate {
            self.aggregate_proof_kind()
        } else {
            None
        });
        let kind = self.resolve_proof_kind(requested)?;
        if aggregate && kind == "core" {
            // SP1 checks the inner proofs only in its recursion: a core
            // proof of the aggregate verifies without them ever being checked.
            return Err(BackendError::UnsupportedFeature {
                backend: BACKEND_NAME.into(),
                program: program.name().into(),
                feature: "a core proof of an aggregate".into(),
                hint: "a core proof would not check the inner proofs (SP1 verifies them in the recursion that makes a compressed proof); prove the aggregate compressed".into(),
            });
        }
        let (stdin, _) = self.stdin_for(program, input)?;
        // Execute first (milliseconds): a rejected input, a guest exit or an
        // endless loop is reported as such before minutes of proving start.
        let (_, report) = self.run(self.light()?, program, input, stdin.clone(), &options.limits)?;
        let pk = self.proving_key(program)?;
        let prover = self.prover()?;
        let started = Instant::now();
        let request = prover.prove(&pk, stdin).cycle_limit(options.limits.max_cycles);
        let request = if kind == "compressed" {
            request.compressed()
        } else {
            request.core()
        };
        let proof = self.abandon_on_err(
            no_panic("SP1's prover", || request.run()).and_then(|r| r.map_err(prover_error)),
        )?;
        phase("prove", started, Some(program.name()));
        Ok(ProofEnvelope {
            backend: BACKEND_NAME.into(),
            backend_version: self.version(),
            proof_kind: kind.into(),
            abi: Abi::Sp1,
            program_id: program.id(),
            input_digest: sha256(input),
            cycles: report.total_instruction_count(),
            public_output: proof.public_values.to_vec(),
            proof: encode_proof(program.elf(), &proof)?,
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
        if !KINDS.contains(&envelope.proof_kind.as_str()) {
            return Err(VerifyError::UnknownProofKind {
                found: envelope.proof_kind.clone(),
                known: KINDS.join(", "),
            }
            .into());
        }
        let (elf, proof) = decode_proof(&envelope.proof)?;
        let proved = ProgramId::of_elf(elf);
        if proved != envelope.program_id {
            return Err(VerifyError::ProgramIdMismatch {
                claimed: envelope.program_id,
                proved,
            }
            .into());
        }
        let found = proof_kind_name(&proof.proof);
        if found != envelope.proof_kind {
            return Err(VerifyError::Invalid {
                reason: format!(
                    "the proof is a {found} proof, the envelope says {}",
                    envelope.proof_kind
                ),
            }
            .into());
        }
        let vk = self.verifying_key(proved, elf)?;
        let light = self.light()?;
        no_panic("SP1's verifier", || light.verify(&proof, &vk, None))?.map_err(|e| {
            VerifyError::Invalid {
                reason: e.to_string(),
            }
        })?;
        if proof.public_values.as_slice() != envelope.public_output.as_slice() {
            return Err(VerifyError::OutputMismatch {
                claimed: hex::encode(&envelope.public_output),
                proved: hex::encode(proof.public_values.as_slice()),
            }
            .into());
        }
        Ok(Verified::of(envelope))
    }
}
