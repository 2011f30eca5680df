//! The worker process: `provernode worker --dir DIR --parent PID`.
//!
//! Binds its life to the node's ([`bind_to_parent`]), prints a ready line,
//! then for every `run N` line on stdin reads request N from DIR, proves it
//! and writes response N, then prints `done N` (after `retire` when a
//! backend says this process must not serve another attempt). Answers
//! `ping` with `pong` (the node checks an idle worker before giving it
//! work). Exits when stdin closes (the parent went away).

use std::io::{BufRead, Write};
use std::path::Path;

use provernode_backends::Registry;
use provernode_core::{Limits, Program, ProveOptions};

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
pub fn serve(dir: &Path, registry: &Registry) -> Result<(), ChildError> {
    let stdout = std::io::stdout();
    let say = |line: &str| -> Result<(), ChildError> {
        let mut out = stdout.lock();
        writeln!(out, "{PROTOCOL_PREFIX}{line}")
            .and_then(|()| out.flush())
            .map_err(io(Path::new("<stdout>")))
    };
    say("ready")?;
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
        let response = attempt(dir, n, registry, &say)?;
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
    if let Err(e) = backend.warm_up().and_then(|()| backend.set_up(&program)) {
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
