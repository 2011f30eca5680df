//! What the embedded node, the broker and the agent share: the API's
//! settings, the memory budget, the worker slots, the HTTP server's limits.

use std::path::Path;
use std::time::Duration;

use provernode_backends::Registry;
use provernode_broker::{ApiConfig, ServeLimits};
use provernode_core::TaskLimits;
use provernode_worker::{worker_environment, ExitHook, LimiterKind, SlotConfig, WorkerMode};

use crate::settings::{secs, HttpFlags, SlotFlags, TaskDefaults, WorkerModeName};
use crate::NodeError;

/// The API settings shared by the embedded node and brokers.
pub(crate) fn api_config(
    tasks: &TaskDefaults,
    client_tokens: Vec<String>,
    agent_tokens: Vec<String>,
    require_local_backend: bool,
) -> Result<ApiConfig, NodeError> {
    let max_input_bytes = tasks
        .max_input_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| NodeError::Config(format!("--max-input-mib {} is too large", tasks.max_input_mib)))?;
    let max_program_bytes = tasks.max_program_mib.checked_mul(1 << 20).ok_or_else(|| {
        NodeError::Config(format!(
            "--max-program-mib {} is too large",
            tasks.max_program_mib
        ))
    })?;
    Ok(ApiConfig {
        client_tokens,
        agent_tokens,
        require_local_backend,
        max_input_bytes,
        max_program_bytes,
        // Room for the input as hex, or the input and an inline ELF as
        // base64, plus the rest of the request.
        max_body_bytes: max_input_bytes
            .saturating_mul(2)
            .max(
                max_input_bytes
                    .saturating_add(max_program_bytes)
                    .saturating_mul(4)
                    / 3,
            )
            .saturating_add(16 << 20),
        default_limits: TaskLimits {
            timeout_ms: secs(tasks.default_timeout_secs, "--default-timeout-secs")?.as_millis() as u64,
            memory_limit_bytes: tasks.default_memory_limit_mib << 20,
            max_attempts: tasks.default_max_attempts.max(1),
            ..TaskLimits::default()
        },
        max_reexecuted_guest_memory_bytes: tasks.max_trace_guest_memory_mib.max(1) << 20,
        ..ApiConfig::default()
    })
}

/// What the attempts running at once may be limited to in total: the flag,
/// else 90% of the machine's memory (`None` where that cannot be read).
pub(crate) fn memory_budget_bytes(flags: &SlotFlags) -> Option<u64> {
    flags
        .memory_budget_mib
        .map(|m| m << 20)
        .or_else(|| total_memory_bytes().map(|t| t / 10 * 9))
}

pub(crate) fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The memory one attempt can have when every slot proves at once: the
/// memory budget shared by the slots.
pub(crate) fn attempt_memory_bytes(flags: &SlotFlags) -> Option<u64> {
    memory_budget_bytes(flags).map(|budget| budget / flags.workers.max(1) as u64)
}

/// The settings each available backend asks its workers to get on
/// attempts of this size, given what they inherit from the node
/// (`Backend::worker_settings`: SP1's pools at 1 below 32 GiB an attempt,
/// unless the operator set any `SP1_WORKER_*`). Only backends that ask.
pub(crate) fn backend_worker_settings(
    registry: &Registry,
    inherited: &[(String, String)],
    attempt_memory_bytes: Option<u64>,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    registry
        .available()
        .map(|b| (b.name(), b.worker_settings(inherited, attempt_memory_bytes)))
        .filter(|(_, settings)| !settings.is_empty())
        .collect()
}

/// `NAME=value ...`, as an operator would export them.
pub(crate) fn listed(settings: &[(String, String)]) -> String {
    let pairs: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// What workers get: the node's variables that pass to workers, plus the
/// settings backends ask for on attempts of this size. Logged, since they
/// change how fast and how large proofs are.
fn worker_env(registry: &Registry, attempt_memory_bytes: Option<u64>) -> Vec<(String, String)> {
    let inherited = worker_environment();
    let mut env = inherited.clone();
    for (backend, settings) in backend_worker_settings(registry, &inherited, attempt_memory_bytes) {
        tracing::info!(
            backend,
            attempt_memory_mib = attempt_memory_bytes.map(|m| m >> 20),
            settings = %listed(&settings),
            "workers get these settings for attempts of this size; set any of them on the node to choose yourself"
        );
        env.extend(settings);
    }
    env
}

/// Backends whose tasks should go to a slot already warm for them: those
/// whose start-up is costly (SP1's prover, minutes).
pub(crate) fn warm_first(registry: &Registry) -> Vec<String> {
    registry
        .available()
        .filter(|b| b.start_up_is_costly())
        .map(|b| b.name().to_owned())
        .collect()
}

/// The worker slots of a node or agent. `record_dir` is where live workers
/// are recorded for [`provernode_worker::reap_orphans`].
pub(crate) fn slot_configs(
    flags: &SlotFlags,
    scratch: &Path,
    worker_exe: &Path,
    limiter: &LimiterKind,
    registry: &Registry,
    record_dir: &Path,
    artifacts: Option<&provernode_artifacts::ArtifactStore>,
) -> Vec<SlotConfig> {
    let warm = WorkerMode::Warm {
        max_attempts: flags.warm_max_attempts.max(1),
        max_rss_bytes: flags.warm_max_rss_mib << 20,
    };
    // A warm worker is not recycled for holding what its backend needs to
    // prove at all (SP1's prover keeps about 7 GB resident between proofs).
    let warm_for = |backend: &str| match registry.get(backend) {
        Ok(b) => WorkerMode::Warm {
            max_attempts: flags.warm_max_attempts.max(1),
            max_rss_bytes: (flags.warm_max_rss_mib << 20).max(b.min_memory_bytes(None)),
        },
        Err(_) => warm,
    };
    let mut modes: Vec<(String, WorkerMode)> = flags
        .worker_modes
        .iter()
        .map(|(backend, mode)| {
            (
                backend.clone(),
                match mode {
                    WorkerModeName::Fresh => WorkerMode::Fresh,
                    WorkerModeName::Warm => warm_for(backend),
                },
            )
        })
        .collect();
    for backend in registry.available() {
        if !modes.iter().any(|(name, _)| name == backend.name()) && backend.min_memory_bytes(None) > 0 {
            modes.push((backend.name().into(), warm_for(backend.name())));
        }
    }
    // Killed workers cannot clean up after their backends (SP1 leaves 4 GB
    // of shared memory a run); the backends' own sweep does it for them.
    let leftovers = registry.clone();
    let after_worker_exit = ExitHook::new(move || {
        leftovers.remove_leftovers();
    });
    let env = worker_env(registry, attempt_memory_bytes(flags));
    // Workers keep the keys their backends set up (SP1) in the artifact
    // store, and load them from there instead of setting them up again.
    let mut exe_args = vec!["worker".to_owned()];
    if let Some(store) = artifacts {
        for (flag, dir) in [
            ("--artifacts-dir", store.root()),
            ("--artifacts-backup-dir", store.backup_dir()),
        ] {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            exe_args.extend([flag.to_owned(), dir.display().to_string()]);
        }
    }
    (0..flags.workers)
        .map(|i| SlotConfig {
            exe: worker_exe.to_path_buf(),
            exe_args: exe_args.clone(),
            name: format!("w{i}"),
            scratch: scratch.to_path_buf(),
            limiter: limiter.clone(),
            modes: modes.clone(),
            default_mode: warm,
            startup_timeout: Duration::from_secs(600),
            after_worker_exit: after_worker_exit.clone(),
            env: env.clone(),
            record_dir: Some(record_dir.to_path_buf()),
        })
        .collect()
}

/// Listens on `addr`; the address actually bound (a port 0 is chosen by
/// the kernel) comes back with the listener.
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), NodeError> {
    let listen_error = |error| NodeError::Listen { addr, error };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}

/// Raises the soft open-file limit to the hard one (a node holds one
/// descriptor per client connection, and several per worker), and returns
/// the soft limit now in force.
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            return Some(soft);
        }
        tracing::debug!(from = soft, to = hard, "raised the open-file limit");
        return Some(hard);
    }
    Some(soft)
}

/// The HTTP server's limits: the flags, with the connection cap kept below
/// the descriptor limit (room left for the database, workers, logs and the
/// connections being refused).
pub(crate) fn serve_limits(
    http: &HttpFlags,
    workers: usize,
    open_files: Option<u64>,
) -> Result<ServeLimits, NodeError> {
    let reserve = 128 + provernode_broker::MAX_REFUSING as u64 + 16 * workers as u64;
    let most = open_files
        .map(|n| n.saturating_sub(reserve).max(16))
        .unwrap_or(1024);
    let max_connections = match http.max_http_connections {
        Some(0) => {
            return Err(NodeError::Config(
                "--max-http-connections must be at least 1".into(),
            ))
        }
        Some(n) if n as u64 > most => {
            tracing::warn!(
                asked = n,
                allowed = most,
                "--max-http-connections is above what the open-file limit leaves; lowered (raise `ulimit -n` to allow more)"
            );
            most as usize
        }
        Some(n) => n,
        None => most.min(1024) as usize,
    };
    Ok(ServeLimits {
        max_connections,
        header_timeout: secs(http.header_timeout_secs, "--header-timeout-secs")?,
        body_timeout: secs(http.body_timeout_secs, "--body-timeout-secs")?,
        ..ServeLimits::default()
    })
}

/// Samples what the workers use into `provernode_worker_memory_used_bytes`
/// every 5 s until `stop` (what they reserve is the agent's
/// `provernode_worker_memory_held_bytes`).
pub(crate) fn sample_worker_memory(
    limiter: provernode_worker::LimiterKind,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            let kind = limiter.clone();
            if let Ok(used) =
                tokio::task::spawn_blocking(move || provernode_worker::workers_memory_used(&kind)).await
            {
                metrics::gauge!("provernode_worker_memory_used_bytes").set(used as f64);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(max: Option<usize>) -> HttpFlags {
        HttpFlags {
            max_http_connections: max,
            header_timeout_secs: 10.0,
            body_timeout_secs: 60.0,
        }
    }

    #[test]
    fn connections_stay_below_the_descriptor_limit() {
        assert_eq!(
            serve_limits(&http(None), 2, Some(1024)).unwrap().max_connections,
            1024 - 192
        );
        assert_eq!(
            serve_limits(&http(None), 2, Some(1 << 20))
                .unwrap()
                .max_connections,
            1024
        );
        assert_eq!(
            serve_limits(&http(Some(5000)), 2, Some(4096))
                .unwrap()
                .max_connections,
            4096 - 192
        );
        assert_eq!(
            serve_limits(&http(Some(50)), 2, Some(4096))
                .unwrap()
                .max_connections,
            50
        );
        assert!(serve_limits(&http(Some(0)), 2, Some(4096)).is_err());
    }
}
