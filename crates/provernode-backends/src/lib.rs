//! The backend registry.
//!
//! Every proving system provernode knows has one entry here, whether or not
//! it was compiled into this binary. A backend that is not built is still
//! listed, and every call to it fails with [`Unavailable`] saying why, so an
//! operator is never left guessing (and nothing is ever faked).
//!
//! Adding a backend is one new crate and one line in [`Registry::new`].
//!
//! Architecture invariant: the registry only constructs and looks up
//! backends; it runs nothing itself.

use std::sync::Arc;

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

impl Registry {
    /// The registry of this build. `verify_limits` bounds how much work a
    /// verifier that re-executes (trace) will do for one envelope.
    pub fn new(verify_limits: Limits) -> Registry {
        let backends: Vec<Arc<dyn Backend>> = vec![
            Arc::new(TraceBackend { verify_limits }),
            #[cfg(feature = "risc0")]
            Arc::new(provernode_backend_risc0::Risc0Backend::default()),
            #[cfg(not(feature = "risc0"))]
            Arc::new(NotBuilt {
                name: "risc0",
                abis: &[Abi::Risc0],
                reason: "RISC Zero support is not compiled into this binary: rebuild with `--features risc0` (a long C++ build, see README)",
            }),
            Arc::new(NotBuilt {
                name: "sp1",
                abis: &[Abi::Sp1],
                reason: "SP1 support is not compiled into this binary (it will come with the `sp1` cargo feature, which this release does not have yet)",
            }),
        ];
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

    /// Verifies any envelope with the backend it names.
    pub fn verify(&self, envelope: &ProofEnvelope) -> Result<Verified, VerifyEnvelopeError> {
        let backend = self.get(&envelope.backend)?;
        Ok(backend.verify(envelope)?)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Limits::default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyEnvelopeError {
    #[error("the envelope names {0}")]
    UnknownBackend(#[from] UnknownBackend),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A backend this binary was built without.
struct NotBuilt {
    name: &'static str,
    abis: &'static [Abi],
    reason: &'static str,
}

impl NotBuilt {
    fn unavailable(&self) -> Unavailable {
        Unavailable {
            backend: self.name.to_owned(),
            reason: self.reason.to_owned(),
        }
    }
}

impl Backend for NotBuilt {
    fn name(&self) -> &'static str {
        self.name
    }

    fn version(&self) -> String {
        String::new()
    }

    fn abis(&self) -> &'static [Abi] {
        self.abis
    }

    fn proof_kinds(&self) -> &'static [&'static str] {
        &[]
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
        let unbuilt: &[&str] = if cfg!(feature = "risc0") {
            &["sp1"]
        } else {
            &["risc0", "sp1"]
        };
        for name in unbuilt {
            let b = r.get(name).unwrap();
            let err = b.available().unwrap_err();
            assert!(err.reason.contains("not compiled"), "{err}");
        }
        let err = r.get("nexus").err().unwrap();
        assert!(err.to_string().contains("trace, risc0, sp1"), "{err}");
    }
}
