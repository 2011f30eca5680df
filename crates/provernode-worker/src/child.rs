//! The worker process: `provernode worker --dir DIR --parent PID`.
//!
//! Binds its life to the node's ([`bind_to_parent`]), prints a ready line,
//! then for every `run N` line on stdin reads request N from DIR, proves it
//! and writes response N, then prints `done N` (after `retire` when a
//! backend says this process must not serve another attempt). Answers
//! `ping` with `pong` (the node checks an idle worker before giving it
//! work). Exits when stdin closes (the parent went away).
//!
//! With an artifact store (`--artifacts-dir`), a backend whose set-up makes
//! keys it can save (SP1) loads them from the store instead of setting the
//! program up, and saves the ones it had to make. The store is a cache
//! here: keys that cannot be read, are refused or cannot be saved are said
//! (`note` lines, which the node logs) and made again, never an attempt's
//! failure.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use provernode_artifacts::{ArtifactError, ArtifactStore, KEYS_KIND};
use provernode_backends::Registry;
use provernode_core::{Backend, BackendError, Limits, Program, ProgramId, ProveOptions};

use crate::protocol::{self, Request, Response, PROTOCOL_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("worker I/O in {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed request {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected control line {0:?}; expected `run N` or `ping`")]
    Control(String),
    #[error("the node that started this worker (pid {expected}) is gone; a worker never outlives its node")]
    Orphaned { expected: u32 },
    #[error("cannot ask the kernel to end this worker with its node: {0}")]
    DeathSignal(nix::Error),
}

/// Makes the kernel kill this process when the node that started it dies
/// (`PR_SET_PDEATHSIG`), then checks that the node is still its parent: had
/// the node died before the call, the signal would never come, and this
/// worker would run on as an orphan.
pub fn bind_to_parent(parent: u32) -> Result<(), ChildError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(ChildError::DeathSignal)?;
    if nix::unistd::getppid().as_raw() as u32 != parent {
        return Err(ChildError::Orphaned { expected: parent });
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ChildError + '_ {
    move |source| ChildError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Serves attempts until stdin closes.
pub fn serve(dir: &Path, registry: &Registry, keys: Option<&ArtifactStore>) -> Result<(), ChildError> {
    let stdout = std::io::stdout();
    let say = |line: &str| -> Result<(), ChildError> {
        let mut out = stdout.lock();
        writeln!(out, "{PROTOCOL_PREFIX}{line}")
            .and_then(|()| out.flush())
            .map_err(io(Path::new("<stdout>")))
    };
    say("ready")?;
    let mut keys = Keys {
        store: keys,
        ready: HashSet::new(),
    };
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(io(Path::new("<stdin>")))?;
        if line == "ping" {
            say("pong")?;
            continue;
        }
        let n: u64 = line
            .strip_prefix("run ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| ChildError::Control(line.clone()))?;
        let response = attempt(dir, n, registry, &mut keys, &say)?;
        let tmp = dir.join(format!("resp-{n}.json.tmp"));
        let json = serde_json::to_vec(&response).map_err(|source| ChildError::Request {
            path: tmp.display().to_string(),
            source,
        })?;
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        let dst = dir.join(protocol::response_json(n));
        std::fs::rename(&tmp, &dst).map_err(io(&dst))?;
        // Before `done`, so the supervisor knows when it reads `done`.
        if !registry.reusable() {
            say("retire")?;
        }
        say(&format!("done {n}"))?;
    }
    Ok(())
}

/// Program set-ups through the artifact store, and the programs this
/// process has set up already (their keys live in the backend now).
struct Keys<'a> {
    store: Option<&'a ArtifactStore>,
    ready: HashSet<(&'static str, ProgramId)>,
}

impl Keys<'_> {
    /// Sets `program` up on `backend`: from saved keys when the store has
    /// good ones for this backend version, else by the backend, then
    /// saving what it made. What happened goes to `notes`.
    fn set_up(
        &mut self,
        backend: &dyn Backend,
        program: &Program,
        notes: &mut Vec<String>,
    ) -> Result<(), BackendError> {
        let known = (backend.name(), program.id());
        let (Some(store), Some(name)) = (self.store, backend.saved_keys_name(program)) else {
            return backend.set_up(program);
        };
        if self.ready.contains(&known) {
            return backend.set_up(program);
        }
        let started = Instant::now();
        let loaded = match store.read(&name) {
            Ok(bytes) => match backend.load_keys(program, &bytes) {
                Ok(()) => {
                    notes.push(format!(
                        "keys of {} loaded from artifact {name} in {} ms instead of set up",
                        program.name(),
                        started.elapsed().as_millis()
                    ));
                    true
                }
                Err(why) => {
                    notes.push(format!("artifact {name}: {why}; setting the keys up again"));
                    false
                }
            },
            Err(ArtifactError::NotFound(_)) => false,
            Err(e) => {
                notes.push(format!("cannot read saved keys: {e}; setting them up again"));
                false
            }
        };
        let started = Instant::now();
        backend.set_up(program)?;
        if !loaded {
            let set_up_ms = started.elapsed().as_millis();
            match backend.saved_keys(program) {
                Ok(Some(bytes)) => match store.put(&name, KEYS_KIND, &bytes, None) {
                    Ok(_) => notes.push(format!(
                        "keys of {} set up in {set_up_ms} ms, saved as artifact {name} ({} bytes)",
                        program.name(),
                        bytes.len()
                    )),
                    Err(e) => notes.push(format!("cannot save the keys of {}: {e}", program.name())),
                },
                Ok(None) => {}
                Err(e) => notes.push(format!("cannot serialise the keys of {}: {e}", program.name())),
            }
        }
        self.ready.insert(known);
        Ok(())
    }
}

/// Fault injection for the scenario tests: attempts take this much longer,
/// so that a kill lands while they are in flight, or a timeout is tested,
/// even on the instant trace backend. `PROVERNODE_FAULT_PART_DELAY_MS`
/// slows every part of a split task, `PROVERNODE_FAULT_PROVE_DELAY_MS`
/// every other attempt (after its cycles are reported). Never set them in
/// production.
fn slow_for_tests(variable: &str) {
    if let Some(ms) = std::env::var(variable).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}

/// `say` writes a protocol line; `started N` once the backend is warm and the program set up:
/// the supervisor bounds that part by the worker start-up limit and only
/// what follows by the task's timeout (SP1's prover takes minutes to start,
/// once per warm worker).
fn attempt(
    dir: &Path,
    n: u64,
    registry: &Registry,
    keys: &mut Keys<'_>,
    say: &dyn Fn(&str) -> Result<(), ChildError>,
) -> Result<Response, ChildError> {
    let req_path = dir.join(protocol::request_json(n));
    let raw = std::fs::read(&req_path).map_err(io(&req_path))?;
    let req: Request = serde_json::from_slice(&raw).map_err(|source| ChildError::Request {
        path: req_path.display().to_string(),
        source,
    })?;
    let elf_path = dir.join(protocol::request_elf(n));
    let elf = std::fs::read(&elf_path).map_err(io(&elf_path))?;
    let input_path = dir.join(protocol::request_input(n));
    let input = std::fs::read(&input_path).map_err(io(&input_path))?;
    let failed = |cause: provernode_core::Cause, retryable: bool, message: String| Response::Failed {
        cause: cause.to_string(),
        retryable,
        message,
    };
    let backend = match registry.get(&req.backend) {
        Ok(b) => b,
        Err(e) => return Ok(failed(provernode_core::Cause::BackendError, false, e.to_string())),
    };
    let program = match Program::from_elf(req.program_name.clone(), elf) {
        Ok(p) => p,
        Err(e) => return Ok(failed(provernode_core::Cause::BackendError, false, e.to_string())),
    };
    let mut notes = Vec::new();
    let set_up = backend
        .warm_up()
        .and_then(|()| keys.set_up(backend.as_ref(), &program, &mut notes));
    for note in notes {
        say(&format!("note {n} {}", note.replace('\n', " ")))?;
    }
    if let Err(e) = set_up {
        let (cause, retryable) = e.classify();
        return Ok(failed(cause, retryable, e.to_string()));
    }
    say(&format!("started {n}"))?;
    if provernode_core::split::PartInput::is(&input) {
        slow_for_tests("PROVERNODE_FAULT_PART_DELAY_MS");
    } else if req.report_cycles {
        // The slot sizes this attempt's timeout from the count; a run that
        // fails here fails the same way in `prove` below, which says why.
        let limits = Limits {
            max_cycles: req.max_cycles,
            max_memory_bytes: req.max_guest_memory_bytes,
        };
        if let Ok(run) = backend.execute(&program, &input, &limits) {
            say(&format!("cycles {n} {}", run.cycles))?;
        }
    }
    if !provernode_core::split::PartInput::is(&input) {
        slow_for_tests("PROVERNODE_FAULT_PROVE_DELAY_MS");
    }
    let options = ProveOptions {
        limits: Limits {
            max_cycles: req.max_cycles,
            max_memory_bytes: req.max_guest_memory_bytes,
        },
        proof_kind: req.proof_kind.clone(),
        prover_memory_bytes: req.prover_memory_bytes,
        split_po2: req.split_po2,
    };
    match backend
        .prove(&program, &input, &options)
        .and_then(|env| Ok((env.cycles, env.encode()?)))
    {
        Ok((cycles, bytes)) => {
            let proof_path = dir.join(protocol::response_proof(n));
            std::fs::write(&proof_path, bytes).map_err(io(&proof_path))?;
            Ok(Response::Proved { cycles })
        }
        Err(e) => {
            let (cause, retryable) = e.classify();
            Ok(failed(cause, retryable, e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic by design
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use provernode_core::{Abi, Execution, KeysRefused, ProofEnvelope, Unavailable, Verified, VerifyError};

    use super::*;

    /// A backend whose set-up makes keys (as SP1's does), counting its
    /// set-ups and loads.
    #[derive(Default)]
    struct Keyed {
        version: &'static str,
        keys: Mutex<HashSet<ProgramId>>,
        set_ups: AtomicU32,
        loads: AtomicU32,
    }

    impl Backend for Keyed {
        fn name(&self) -> &'static str {
            "keyed"
        }
        fn version(&self) -> String {
            self.version.into()
        }
        fn abis(&self) -> &'static [Abi] {
            &[Abi::Sp1]
        }
        fn proof_kinds(&self) -> &'static [&'static str] {
            &["core"]
        }
        fn available(&self) -> Result<(), Unavailable> {
            Ok(())
        }
        fn set_up(&self, program: &Program) -> Result<(), BackendError> {
            if self.keys.lock().unwrap().insert(program.id()) {
                self.set_ups.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }
        fn saved_keys_name(&self, program: &Program) -> Option<String> {
            Some(format!("keys/keyed/{}-{}", program.id(), self.version))
        }
        fn saved_keys(&self, program: &Program) -> Result<Option<Vec<u8>>, BackendError> {
            Ok(self
                .keys
                .lock()
                .unwrap()
                .contains(&program.id())
                .then(|| format!("{} {}", self.version, program.id()).into_bytes()))
        }
        fn load_keys(&self, program: &Program, bytes: &[u8]) -> Result<(), KeysRefused> {
            if bytes != format!("{} {}", self.version, program.id()).as_bytes() {
                return Err(KeysRefused("not mine".into()));
            }
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.keys.lock().unwrap().insert(program.id());
            Ok(())
        }
        fn execute(&self, _: &Program, _: &[u8], _: &Limits) -> Result<Execution, BackendError> {
            Err(BackendError::Prover {
                backend: "keyed".into(),
                message: "not in this test".into(),
            })
        }
        fn prove(&self, _: &Program, _: &[u8], _: &ProveOptions) -> Result<ProofEnvelope, BackendError> {
            Err(BackendError::Prover {
                backend: "keyed".into(),
                message: "not in this test".into(),
            })
        }
        fn verify(&self, _: &ProofEnvelope) -> Result<Verified, BackendError> {
            Err(VerifyError::MalformedProof {
                reason: "not in this test".into(),
            }
            .into())
        }
    }

    fn program() -> Program {
        provernode_guests::find("fibonacci").unwrap().program(Abi::Sp1)
    }

    #[test]
    fn keys_are_saved_once_made_and_loaded_by_the_next_process_instead_of_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(&dir.path().join("a"), &dir.path().join("b"), "test").unwrap();
        let program = program();
        // The first process sets the program up and saves its keys.
        let first = Keyed {
            version: "v1",
            ..Keyed::default()
        };
        let mut keys = Keys {
            store: Some(&store),
            ready: HashSet::new(),
        };
        let mut notes = Vec::new();
        keys.set_up(&first, &program, &mut notes).unwrap();
        keys.set_up(&first, &program, &mut notes).unwrap();
        assert_eq!(first.set_ups.load(Ordering::SeqCst), 1);
        assert!(
            notes.len() == 1 && notes[0].contains("saved as artifact keys/keyed/"),
            "{notes:?}"
        );
        let entry = store
            .entry(&first.saved_keys_name(&program).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(entry.kind, KEYS_KIND);
        assert_eq!(entry.needed_by, None, "a cache never blocks a backend");
        // A new process (a fresh worker) loads them: no set-up.
        let second = Keyed {
            version: "v1",
            ..Keyed::default()
        };
        let mut keys = Keys {
            store: Some(&store),
            ready: HashSet::new(),
        };
        let mut notes = Vec::new();
        keys.set_up(&second, &program, &mut notes).unwrap();
        assert_eq!(
            (
                second.set_ups.load(Ordering::SeqCst),
                second.loads.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
        assert!(
            notes[0].contains("loaded from artifact") && notes[0].contains("instead of set up"),
            "{notes:?}"
        );
        // Keys the backend refuses (another program's, or damaged before
        // they were stored) are made again and replace the stored ones.
        let third = Keyed {
            version: "v1",
            ..Keyed::default()
        };
        store
            .put(
                &third.saved_keys_name(&program).unwrap(),
                KEYS_KIND,
                b"garbage",
                None,
            )
            .unwrap();
        let mut keys = Keys {
            store: Some(&store),
            ready: HashSet::new(),
        };
        let mut notes = Vec::new();
        keys.set_up(&third, &program, &mut notes).unwrap();
        assert_eq!(
            (
                third.set_ups.load(Ordering::SeqCst),
                third.loads.load(Ordering::SeqCst)
            ),
            (1, 0)
        );
        assert!(
            notes[0].contains("saved keys refused: not mine; setting the keys up again"),
            "{notes:?}"
        );
        assert!(notes[1].contains("saved as artifact"), "{notes:?}");
        // Another version looks under another name: sets up, never reads v1's.
        let upgraded = Keyed {
            version: "v2",
            ..Keyed::default()
        };
        let mut keys = Keys {
            store: Some(&store),
            ready: HashSet::new(),
        };
        keys.set_up(&upgraded, &program, &mut Vec::new()).unwrap();
        assert_eq!(
            (
                upgraded.set_ups.load(Ordering::SeqCst),
                upgraded.loads.load(Ordering::SeqCst)
            ),
            (1, 0)
        );
        // Without a store, a plain set-up.
        let alone = Keyed {
            version: "v1",
            ..Keyed::default()
        };
        let mut keys = Keys {
            store: None,
            ready: HashSet::new(),
        };
        let mut notes = Vec::new();
        keys.set_up(&alone, &program, &mut notes).unwrap();
        assert_eq!(alone.set_ups.load(Ordering::SeqCst), 1);
        assert!(notes.is_empty());
    }
}
