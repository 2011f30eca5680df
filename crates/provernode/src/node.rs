//! `provernode run`: wires the store, the HTTP API, the lease sweeper and the
//! local agent into one embedded node, and drains it on SIGTERM.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use provernode_agent::{AgentConfig, Shutdown, StoreSource};
use provernode_backends::Registry;
use provernode_broker::{router, sweep_forever, ApiConfig, ApiState};
use provernode_core::TaskLimits;
use provernode_store::{SqliteOptions, SqliteStore, Store, Synchronous};
use provernode_worker::{detect_limiter, scratch_root, ExitHook, SlotConfig, WorkerMode};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cli::{RunNode, SlotFlags, TaskDefaults};

/// A node running in this process.
pub struct RunningNode {
    pub addr: SocketAddr,
    accepting: Arc<AtomicBool>,
    agent_tx: watch::Sender<Shutdown>,
    agent: JoinHandle<()>,
    stop_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    store: Arc<SqliteStore>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

pub(crate) fn secs(s: f64, what: &str) -> Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        bail!("{what} must be a positive number of seconds, got {s}");
    }
    Ok(Duration::from_secs_f64(s))
}

pub async fn start(args: &RunNode, worker_exe: PathBuf) -> Result<RunningNode> {
    if args.slots.workers == 0 || args.slots.workers > 256 {
        bail!("--workers must be between 1 and 256, got {}", args.slots.workers);
    }
    if !args.listen.ip().is_loopback() && args.token.as_deref().is_none_or(str::is_empty) {
        bail!(
            "refusing to listen on {} without a bearer token: pass --token (or set PROVERNODE_TOKEN), or listen on 127.0.0.1",
            args.listen
        );
    }
    let lease_ttl = secs(args.slots.lease_secs, "--lease-secs")?;
    if lease_ttl < Duration::from_secs(1) {
        bail!("--lease-secs must be at least 1");
    }
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).with_context(|| {
        format!(
            "cannot restrict the data directory {} to its owner",
            data_dir.display()
        )
    })?;
    let lock = lock_data_dir(data_dir)?;
    let db_path = data_dir.join("queue.sqlite");
    let options = SqliteOptions {
        synchronous: if args.sqlite_synchronous == "normal" {
            Synchronous::Normal
        } else {
            Synchronous::Full
        },
        ..SqliteOptions::default()
    };
    let store = Arc::new(
        SqliteStore::open(&db_path, &options)
            .await
            .with_context(|| format!("cannot open the queue database {}", db_path.display()))?,
    );
    // The embedded node is the only holder of leases in its database: any
    // lease still held belongs to a previous run that died. Each is a
    // counted, lost attempt.
    let recovered = store
        .expire_leases(None)
        .await
        .context("cannot recover leases of a previous run")?;
    if !recovered.is_empty() {
        tracing::warn!(
            requeued = recovered.requeued.len(),
            quarantined = recovered.quarantined.len(),
            "recovered leases left by a previous run (each counted as a lost attempt)"
        );
    }
    let limiter = detect_limiter();
    tracing::info!(limiter = %limiter.describe(), "memory limits");
    let fallback_scratch = data_dir.join("scratch");
    std::fs::create_dir_all(&fallback_scratch)
        .with_context(|| format!("cannot create {}", fallback_scratch.display()))?;
    let scratch = scratch_root(&fallback_scratch);
    let registry = Registry::default();
    let backends: Vec<String> = registry.available().map(|b| b.name().to_owned()).collect();
    let slots = slot_configs(&args.slots, &scratch, &worker_exe, &limiter, &registry);
    let memory_budget = memory_budget_bytes(&args.slots);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let wake = Arc::new(Notify::new());
    let accepting = Arc::new(AtomicBool::new(false));
    let dyn_store: Arc<dyn Store> = store.clone();
    let state = ApiState {
        store: dyn_store.clone(),
        registry: registry.clone(),
        config: Arc::new(ApiConfig {
            max_task_memory_bytes: memory_budget,
            ..api_config(
                &args.tasks,
                args.token.clone().filter(|t| !t.is_empty()).into_iter().collect(),
                Vec::new(),
                true,
            )?
        }),
        wake: wake.clone(),
        accepting_work: accepting.clone(),
        metrics,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is another node running there?", args.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let app = router(state);
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    let sweeper = tokio::spawn(sweep_forever(
        dyn_store.clone(),
        (lease_ttl / 4).max(Duration::from_millis(250)),
        stop_rx,
    ));
    let (agent_tx, agent_rx) = watch::channel(Shutdown::Running);
    let agent_config = AgentConfig {
        owner: format!("node-{}", std::process::id()),
        slots,
        backends,
        lease_ttl,
        max_claim_memory_bytes: None,
        memory_budget_bytes: memory_budget,
        warm_first: warm_first(&registry),
        idle_poll: Duration::from_millis(500),
        registry,
        hold_first_result: std::env::var("PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
    };
    let agent = tokio::spawn(provernode_agent::run(
        agent_config,
        Arc::new(StoreSource(dyn_store)),
        wake,
        agent_rx,
    ));
    accepting.store(true, Ordering::SeqCst);
    Ok(RunningNode {
        addr,
        accepting,
        agent_tx,
        agent,
        stop_tx,
        server,
        sweeper,
        store,
        _lock: lock,
    })
}

/// One node per data directory: a second one would take the first one's
/// live leases for a dead run's. The lock dies with the process.
fn lock_data_dir(data_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.join("node.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another provernode (pid {}) is running with the data directory {}; stop it, or give this one its own --data-dir",
                holder.trim(),
                data_dir.display()
            );
        }
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(lock)
}

impl RunningNode {
    /// Stops claiming, lets running attempts finish within `drain`, stops the
    /// rest (their leases are recorded as lost), then stops serving.
    pub async fn stop(mut self, drain: Duration) {
        self.accepting.store(false, Ordering::SeqCst);
        let _ = self.agent_tx.send(Shutdown::Drain);
        if tokio::time::timeout(drain, &mut self.agent).await.is_err() {
            tracing::warn!("drain period over; stopping the attempts still running");
            let _ = self.agent_tx.send(Shutdown::Now);
            let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.agent).await;
        }
        let _ = self.stop_tx.send(true);
        let _ = self.server.await;
        let _ = self.sweeper.await;
        self.store.close().await;
    }
}

/// The API settings shared by the embedded node and brokers.
pub(crate) fn api_config(
    tasks: &TaskDefaults,
    client_tokens: Vec<String>,
    agent_tokens: Vec<String>,
    require_local_backend: bool,
) -> Result<ApiConfig> {
    Ok(ApiConfig {
        client_tokens,
        agent_tokens,
        require_local_backend,
        max_input_bytes: tasks.max_input_mib << 20,
        // Room for the input as hex or base64 plus the rest of the request.
        max_body_bytes: (tasks.max_input_mib << 20) * 2 + (16 << 20),
        default_limits: TaskLimits {
            timeout_ms: secs(tasks.default_timeout_secs, "--default-timeout-secs")?.as_millis() as u64,
            memory_limit_bytes: tasks.default_memory_limit_mib << 20,
            max_attempts: tasks.default_max_attempts.max(1),
            ..TaskLimits::default()
        },
        max_lease_ms: 10 * 60 * 1000,
        max_task_memory_bytes: None,
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

/// Backends whose tasks should go to a slot already warm for them: those
/// whose start-up is costly (SP1's prover, minutes).
pub(crate) fn warm_first(registry: &Registry) -> Vec<String> {
    registry
        .available()
        .filter(|b| b.start_up_is_costly())
        .map(|b| b.name().to_owned())
        .collect()
}

/// The worker slots of a node or agent.
pub(crate) fn slot_configs(
    flags: &SlotFlags,
    scratch: &Path,
    worker_exe: &Path,
    limiter: &provernode_worker::LimiterKind,
    registry: &Registry,
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
                if mode == "fresh" {
                    WorkerMode::Fresh
                } else {
                    warm_for(backend)
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
    (0..flags.workers)
        .map(|i| SlotConfig {
            exe: worker_exe.to_path_buf(),
            exe_args: vec!["worker".into()],
            name: format!("w{i}"),
            scratch: scratch.to_path_buf(),
            limiter: limiter.clone(),
            modes: modes.clone(),
            default_mode: warm,
            startup_timeout: Duration::from_secs(600),
            after_worker_exit: after_worker_exit.clone(),
        })
        .collect()
}

pub(crate) async fn terminate_signal() -> Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

pub async fn run(args: RunNode) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the provernode executable to start workers")?;
    let drain = secs(args.slots.drain_secs, "--drain-secs")?;
    let node = start(&args, exe).await?;
    tracing::info!(
        addr = %node.addr,
        workers = args.slots.workers,
        data_dir = %args.data_dir.display(),
        "provernode is running"
    );
    println!("provernode listening on http://{}", node.addr);
    let signal = terminate_signal().await?;
    tracing::info!(
        signal,
        drain_secs = drain.as_secs_f64(),
        "draining: no new claims, running attempts may finish"
    );
    node.stop(drain).await;
    tracing::info!("stopped");
    Ok(())
}

/// The data directory's default settings for a temporary node (demo, tests).
pub fn temporary(data_dir: &Path, workers: usize) -> RunNode {
    RunNode {
        data_dir: data_dir.to_path_buf(),
        slots: SlotFlags {
            workers,
            lease_secs: 30.0,
            worker_modes: Vec::new(),
            warm_max_attempts: 100,
            warm_max_rss_mib: 2048,
            memory_budget_mib: None,
            drain_secs: 10.0,
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: None,
        sqlite_synchronous: "normal".into(),
        tasks: TaskDefaults {
            default_timeout_secs: 600.0,
            default_memory_limit_mib: 4096,
            default_max_attempts: 3,
            max_input_mib: 16,
        },
    }
}
