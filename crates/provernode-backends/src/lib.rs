//! The backend registry.
//!
//! Every proving system provernode knows has one entry here, whether or not
//! it was compiled into this binary. A backend that is not built is still
//! listed with its proof kinds and resource floors (read from its crate,
//! which builds light without its prover), so a broker without the provers
//! checks and sizes tasks as the agents that prove them would; every call
//! that would execute, prove or verify fails with [`Unavailable`] saying
//! why, so an operator is never left guessing (and nothing is ever faked).
//!
//! Adding a backend is one new crate and one line in [`Registry::new`].
//!
//! Architecture invariant: the registry only constructs and looks up
//! backends; it runs nothing itself.

use std::sync::Arc;
use std::time::Duration;

use provernode_backend_trace::TraceBackend;
use provernode_core::{
    Abi, Backend, BackendError, Execution, Limits, Program, ProofEnvelope, ProveOptions, Unavailable,
    Verified,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown backend `{name}`; this build knows: {known}")]
pub struct UnknownBackend {
    pub name: String,
    pub known: String,
}

/// All backends, built or not.
#[derive(Clone)]
pub struct Registry {
    backends: Vec<Arc<dyn Backend>>,
}

/// The backends compiled into this binary (cargo features), whether or not
/// they can run on this machine.
pub fn built_in() -> Vec<&'static str> {
    let mut names = vec!["trace"];
    if cfg!(feature = "risc0") {
        names.push("risc0");
    }
    if cfg!(feature = "sp1") {
        names.push("sp1");
    }
    names
}

impl Registry {
    /// The registry of this build. `verify_limits` bounds how much work a
    /// verifier that re-executes (trace) will do for one envelope.
    pub fn new(verify_limits: Limits) -> Registry {
        let backends: Vec<Arc<dyn Backend>> = vec![Arc::new(TraceBackend { verify_limits }), risc0(), sp1()];
        Registry { backends }
    }

    pub fn all(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// The backends that can run here.
    pub fn available(&self) -> impl Iterator<Item = &Arc<dyn Backend>> {
        self.backends.iter().filter(|b| b.available().is_ok())
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn Backend>, UnknownBackend> {
        self.backends
            .iter()
            .find(|b| b.name() == name)
            .cloned()
            .ok_or_else(|| UnknownBackend {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.backends.iter().map(|b| b.name()).collect()
    }

    /// Removes what dead processes of every backend left behind (see
    /// [`Backend::remove_leftovers`]).
    pub fn remove_leftovers(&self) -> Vec<provernode_core::Leftover> {
        self.backends.iter().flat_map(|b| b.remove_leftovers()).collect()
    }

    /// Whether every backend may serve another attempt in this process.
    pub fn reusable(&self) -> bool {
        self.backends.iter().all(|b| b.reusable())
    }

    /// Verifies any envelope with the backend it names.
    pub fn verify(&self, envelope: &ProofEnvelope) -> Result<Verified, VerifyEnvelopeError> {
        let backend = self.get(&envelope.backend)?;
        Ok(backend.verify(envelope)?)
    }

    /// Verifies an envelope under the guest limits its task was proved with
    /// (see [`Backend::verify_within`]).
    pub fn verify_within(
        &self,
        envelope: &ProofEnvelope,
        limits: &Limits,
    ) -> Result<Verified, VerifyEnvelopeError> {
        let backend = self.get(&envelope.backend)?;
        Ok(backend.verify_within(envelope, limits)?)
    }

    /// The claim an aggregate of `envelope`'s backend names it by (program
    /// key, SHA-256 of its public output). Does not verify the envelope.
    pub fn claim_of(&self, envelope: &ProofEnvelope) -> Result<ClaimDigest, VerifyEnvelopeError> {
        let backend = self.get(&envelope.backend)?;
        let malformed =
            |reason: String| BackendError::from(provernode_core::VerifyError::MalformedProof { reason });
        let elf = provernode_core::proof_frame::elf_of_any(&envelope.proof)
            .ok_or_else(|| malformed("the proof holds no program ELF".into()))?;
        let program = Program::from_elf(format!("program {}", envelope.program_id.0.short()), elf.to_vec())
            .map_err(|e| malformed(e.to_string()))?;
        if program.id() != envelope.program_id {
            return Err(malformed(format!(
                "the proof's program is {}, the envelope names {}",
                program.id(),
                envelope.program_id
            ))
            .into());
        }
        let key = backend.claim_key(&program)?.ok_or_else(|| {
            malformed(format!(
                "backend {} has no program key a guest could verify its proofs by",
                backend.name()
            ))
        })?;
        Ok(provernode_core::aggregate::Claim {
            program_key: key,
            public_output: envelope.public_output.clone(),
        }
        .digest())
    }

    /// Checks a whole program as its zkVM would load it; every backend runs
    /// the same ELFs under its ABI's rules, which the trace backend's loader
    /// mirrors. The error is a sentence.
    pub fn check_program(&self, program: &Program) -> Result<(), String> {
        provernode_backend_trace::check_elf(program)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Limits::default())
    }
}

use provernode_core::aggregate::ClaimDigest;

#[derive(Debug, thiserror::Error)]
pub enum VerifyEnvelopeError {
    #[error("the envelope names {0}")]
    UnknownBackend(#[from] UnknownBackend),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Backend knobs come from the environment so that the node and every
/// worker process it starts see the same values. A value that does not parse
/// makes the backend unavailable with a message naming the variable; it is
/// never silently replaced by a default.
pub const RISC0_SEGMENT_PO2_ENV: &str = "PROVERNODE_RISC0_SEGMENT_PO2";
pub const SP1_SHARD_SIZE_ENV: &str = "PROVERNODE_SP1_SHARD_SIZE";

#[cfg_attr(not(any(feature = "risc0", feature = "sp1")), allow(dead_code))] // only real backends have knobs
fn env_knob<T: std::str::FromStr>(
    name: &'static str,
    valid: impl Fn(&T) -> bool,
    expected: &str,
) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        Ok(raw) => match raw.trim().parse::<T>() {
            Ok(v) if valid(&v) => Ok(Some(v)),
            _ => Err(format!("{name}={raw:?} is not {expected}; fix or unset it")),
        },
    }
}

#[cfg(feature = "risc0")]
fn risc0() -> Arc<dyn Backend> {
    // risc0 accepts segment sizes 2^13 ..= 2^24 (its prover's range); 20 is
    // its default and needs about 9 GB per segment proof. 15 is refused:
    // this risc0 release closes such segments after a few dozen cycles.
    use provernode_backend_risc0::UNUSABLE_SEGMENT_PO2;
    match env_knob::<u32>(
        RISC0_SEGMENT_PO2_ENV,
        |p| (13..=24).contains(p) && *p != UNUSABLE_SEGMENT_PO2,
        "an integer from 13 to 24 other than 15 (risc0 3.1.0-rc.1 ends 2^15-row segments after a few dozen cycles, so a proof takes hundreds of times the segments)",
    ) {
        Ok(segment_po2) => Arc::new(provernode_backend_risc0::Risc0Backend { segment_po2 }),
        Err(reason) => Arc::new(NotBuilt { facts: &RISC0, reason }),
    }
}

#[cfg(not(feature = "risc0"))]
fn risc0() -> Arc<dyn Backend> {
    Arc::new(NotBuilt {
        facts: &RISC0,
        reason: "RISC Zero support is not compiled into this binary: rebuild with `--features risc0` (a long C++ build, see README)".into(),
    })
}

#[cfg(feature = "sp1")]
fn sp1() -> Arc<dyn Backend> {
    match env_knob::<usize>(
        SP1_SHARD_SIZE_ENV,
        |s| s.is_power_of_two() && *s >= 1 << 16,
        "a power of two of at least 65536",
    ) {
        Ok(shard_size) => Arc::new(provernode_backend_sp1::Sp1Backend::new(shard_size)),
        Err(reason) => Arc::new(NotBuilt { facts: &SP1, reason }),
    }
}

#[cfg(not(feature = "sp1"))]
fn sp1() -> Arc<dyn Backend> {
    Arc::new(NotBuilt {
        facts: &SP1,
        reason: "SP1 support is not compiled into this binary: rebuild with `--features sp1` (needs protoc and its well-known types, Debian's protobuf-compiler and libprotobuf-dev; a long build, see README)".into(),
    })
}

/// What the registry knows of a real backend without its prover: enough to
/// list it and to check and size its tasks, so that a broker built without
/// a heavy backend accepts and limits that backend's tasks exactly as one
/// built with it (the agents that prove them have it). Read from the
/// backend crate itself, whose prover answers with the same functions.
struct Facts {
    name: &'static str,
    abis: &'static [Abi],
    proof_kinds: &'static [&'static str],
    unavailable_proof_kinds: &'static [(&'static str, &'static str)],
    min_memory_bytes: fn(Option<&str>) -> u64,
    min_default_timeout: fn(Option<&str>) -> Duration,
}

const RISC0: Facts = Facts {
    name: provernode_backend_risc0::BACKEND_NAME,
    abis: &[Abi::Risc0],
    proof_kinds: provernode_backend_risc0::PROOF_KINDS,
    unavailable_proof_kinds: &[],
    min_memory_bytes: provernode_backend_risc0::min_memory_bytes,
    min_default_timeout: provernode_backend_risc0::min_default_timeout,
};

const SP1: Facts = Facts {
    name: provernode_backend_sp1::BACKEND_NAME,
    abis: &[Abi::Sp1],
    proof_kinds: provernode_backend_sp1::PROOF_KINDS,
    unavailable_proof_kinds: provernode_backend_sp1::UNAVAILABLE_KINDS,
    min_memory_bytes: provernode_backend_sp1::min_memory_bytes,
    min_default_timeout: provernode_backend_sp1::min_default_timeout,
};

/// A backend this binary was built without, or whose settings are wrong.
struct NotBuilt {
    facts: &'static Facts,
    reason: String,
}

impl NotBuilt {
    fn unavailable(&self) -> Unavailable {
        Unavailable {
            backend: self.facts.name.to_owned(),
            reason: self.reason.clone(),
        }
    }
}

impl Backend for NotBuilt {
    fn name(&self) -> &'static str {
        self.facts.name
    }

    fn version(&self) -> String {
        String::new()
    }

    fn abis(&self) -> &'static [Abi] {
        self.facts.abis
    }

    fn proof_kinds(&self) -> &'static [&'static str] {
        self.facts.proof_kinds
    }

    fn unavailable_proof_kinds(&self) -> &'static [(&'static str, &'static str)] {
        self.facts.unavailable_proof_kinds
    }

    fn min_memory_bytes(&self, proof_kind: Option<&str>) -> u64 {
        (self.facts.min_memory_bytes)(proof_kind)
    }

    fn min_default_timeout(&self, proof_kind: Option<&str>) -> Duration {
        (self.facts.min_default_timeout)(proof_kind)
    }

    fn available(&self) -> Result<(), Unavailable> {
        Err(self.unavailable())
    }

    fn execute(&self, _: &Program, _: &[u8], _: &Limits) -> Result<Execution, BackendError> {
        Err(self.unavailable().into())
    }

    fn prove(&self, _: &Program, _: &[u8], _: &ProveOptions) -> Result<ProofEnvelope, BackendError> {
        Err(self.unavailable().into())
    }

    fn verify(&self, _: &ProofEnvelope) -> Result<Verified, BackendError> {
        Err(self.unavailable().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_is_always_available_and_unbuilt_backends_say_why() {
        let r = Registry::default();
        assert!(r.get("trace").unwrap().available().is_ok());
        let unbuilt = [("risc0", cfg!(feature = "risc0")), ("sp1", cfg!(feature = "sp1"))];
        for name in unbuilt.iter().filter(|(_, built)| !built).map(|(n, _)| n) {
            let b = r.get(name).unwrap();
            let err = b.available().unwrap_err();
            assert!(err.reason.contains("not compiled"), "{err}");
        }
        let err = r.get("nexus").err().unwrap();
        assert!(err.to_string().contains("trace, risc0, sp1"), "{err}");
    }

    #[test]
    fn every_real_backend_built_or_not_states_its_crates_kinds_and_floors() {
        let r = Registry::default();
        for facts in [&RISC0, &SP1] {
            let b = r.get(facts.name).unwrap();
            assert_eq!(b.proof_kinds(), facts.proof_kinds, "{}", facts.name);
            assert_eq!(
                b.unavailable_proof_kinds(),
                facts.unavailable_proof_kinds,
                "{}",
                facts.name
            );
            for kind in [None]
                .into_iter()
                .chain(facts.proof_kinds.iter().map(|k| Some(*k)))
            {
                assert_eq!(
                    b.min_memory_bytes(kind),
                    (facts.min_memory_bytes)(kind),
                    "{} {kind:?}",
                    facts.name
                );
                assert_eq!(
                    b.min_default_timeout(kind),
                    (facts.min_default_timeout)(kind),
                    "{} {kind:?}",
                    facts.name
                );
            }
        }
        // The facts themselves: what a broker without the provers gives.
        let sp1 = r.get("sp1").unwrap();
        assert_eq!(sp1.min_memory_bytes(None), 14 << 30);
        assert_eq!(sp1.min_memory_bytes(Some("compressed")), 20 << 30);
        assert_eq!(
            sp1.min_default_timeout(Some("compressed")),
            Duration::from_secs(2000)
        );
        assert!(sp1.unavailable_proof_kinds().iter().any(|(k, _)| *k == "groth16"));
        let risc0 = r.get("risc0").unwrap();
        assert_eq!(risc0.min_memory_bytes(None), 640 << 20);
        assert_eq!(
            risc0.min_default_timeout(Some("succinct")),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn a_bad_knob_is_an_error_naming_the_variable_never_a_silent_default() {
        const VAR: &str = "PROVERNODE_TEST_KNOB_ONLY_THIS_TEST_SETS";
        let small = |p: &u32| *p < 30;
        assert_eq!(env_knob::<u32>(VAR, small, "small"), Ok(None));
        std::env::set_var(VAR, " 20 ");
        assert_eq!(env_knob::<u32>(VAR, small, "small"), Ok(Some(20)));
        for bad in ["40", "twenty", ""] {
            std::env::set_var(VAR, bad);
            let err = env_knob::<u32>(VAR, small, "small").unwrap_err();
            assert!(err.contains(VAR) && err.contains("is not small"), "{err}");
        }
        std::env::remove_var(VAR);
    }
}
