//! `provernode run`: the store, the HTTP API, the lease sweeper and the
//! local agent in one process, drained on SIGTERM.
//!
//! Start-up order matters, and each step is a promise:
//! 1. hold the data directory (one node per directory);
//! 2. kill whatever a dead run of this directory left running (its
//!    workers), before anything can claim a task they may still be proving;
//! 3. open the queue database, refusing one that is damaged, emptied,
//!    replaced or missing its write-ahead log;
//! 4. end the leases a dead run held (counted as lease losses, not as the
//!    tasks' own failures);
//! 5. serve, and start the slots.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use provernode_agent::{AgentConfig, Shutdown, StoreSource};
use provernode_backends::Registry;
use provernode_broker::{router, sweep_forever, ApiConfig, ApiState};
use provernode_core::Readiness;
use provernode_store::{SqliteOptions, SqliteStore, Store, Synchronous};
use provernode_worker::{detect_limiter, scratch_root};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::datadir::DataDir;
use crate::settings::{secs, token, HttpFlags, RunNode, SlotFlags, SqliteSync, TaskDefaults, WorkerModeName};
use crate::signals::Signals;
use crate::wiring::{
    api_config, bind, memory_budget_bytes, raise_open_file_limit, serve_limits, slot_configs, warm_first,
};
use crate::NodeError;

/// The queue database's file name in the data directory.
pub const QUEUE_FILE: &str = "queue.sqlite";

/// A node running in this process.
pub struct RunningNode {
    pub addr: SocketAddr,
    readiness: Arc<Readiness>,
    agent_tx: watch::Sender<Shutdown>,
    agent: JoinHandle<()>,
    stop_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    store: Arc<SqliteStore>,
    _data_dir: DataDir,
}

pub async fn start(args: &RunNode, worker_exe: PathBuf) -> Result<RunningNode, NodeError> {
    if args.slots.workers == 0 || args.slots.workers > 256 {
        return Err(NodeError::Config(format!(
            "--workers must be between 1 and 256, got {}",
            args.slots.workers
        )));
    }
    let token = token(args.token.as_deref(), "--token (PROVERNODE_TOKEN)")?;
    if !args.listen.ip().is_loopback() && token.is_none() {
        return Err(NodeError::Config(format!(
            "refusing to listen on {} without a bearer token: pass --token (or set PROVERNODE_TOKEN), or listen on 127.0.0.1",
            args.listen
        )));
    }
    crate::doctor::preflight(crate::doctor::Role::Run(args)).await?;
    let lease_ttl = secs(args.slots.lease_secs, "--lease-secs")?;
    if lease_ttl < Duration::from_secs(1) {
        return Err(NodeError::Config("--lease-secs must be at least 1".into()));
    }
    let open_files = raise_open_file_limit();
    let limits = serve_limits(&args.http, args.slots.workers, open_files)?;

    let data_dir = DataDir::lock(&args.data_dir)?;
    let records = data_dir.worker_records().await?;

    let options = SqliteOptions {
        synchronous: match args.sqlite_synchronous {
            SqliteSync::Full => Synchronous::Full,
            SqliteSync::Normal => Synchronous::Normal,
        },
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open_in_data_dir(data_dir.path(), QUEUE_FILE, &options).await?);
    // The embedded node is the only holder of leases in its database: any
    // lease still held belongs to a previous run that died. Each is a lease
    // loss, counted apart from the task's own failures.
    let recovered = store.expire_leases(None).await?;
    if !recovered.is_empty() {
        tracing::warn!(
            requeued = recovered.requeued.len(),
            quarantined = recovered.quarantined.len(),
            "recovered leases left by a previous run (each counted as a lease loss)"
        );
    }
    let limiter = detect_limiter();
    tracing::info!(limiter = %limiter.describe(), "memory limits");
    let fallback_scratch = data_dir.path().join("scratch");
    std::fs::create_dir_all(&fallback_scratch).map_err(|e| NodeError::DataDir {
        path: fallback_scratch.clone(),
        what: "cannot create the scratch directory".into(),
        error: e,
    })?;
    let scratch = scratch_root(&fallback_scratch);
    let registry = Registry::default();
    let backends: Vec<String> = registry.available().map(|b| b.name().to_owned()).collect();
    let artifacts = Arc::new(args.artifacts.open(data_dir.path())?);
    let slots = slot_configs(
        &args.slots,
        &scratch,
        &worker_exe,
        &limiter,
        &registry,
        &records,
        Some(&artifacts),
    );
    let memory_budget = memory_budget_bytes(&args.slots);
    let metrics = crate::telemetry::install("run");
    let wake = Arc::new(Notify::new());
    let readiness = Arc::new(Readiness::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    let blocked_backends = Arc::new(std::sync::RwLock::new(Vec::new()));
    let _artifacts_check = crate::artifacts::start(
        artifacts.clone(),
        readiness.clone(),
        blocked_backends.clone(),
        Some(dyn_store.clone()),
    );
    let state = ApiState {
        store: dyn_store.clone(),
        registry: registry.clone(),
        config: Arc::new(ApiConfig {
            max_task_memory_bytes: memory_budget,
            ..api_config(&args.tasks, token.into_iter().collect(), Vec::new(), true)?
        }),
        wake: wake.clone(),
        readiness: readiness.clone(),
        metrics,
        artifacts: Some(artifacts),
    };
    let (listener, addr) = bind(args.listen).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(provernode_broker::serve(
        listener,
        router(state),
        limits,
        stop_rx.clone(),
    ));
    let _memory_sampler = crate::wiring::sample_worker_memory(limiter.clone(), stop_rx.clone());
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
        hold_first_result: crate::fault_hold_first_result(),
        readiness: readiness.clone(),
        split: args.slots.split_policy(),
        blocked_backends,
    };
    let agent = tokio::spawn(provernode_agent::run(
        agent_config,
        Arc::new(StoreSource(dyn_store)),
        wake,
        agent_rx,
    ));
    readiness.set_accepting(true);
    Ok(RunningNode {
        addr,
        readiness,
        agent_tx,
        agent,
        stop_tx,
        server,
        sweeper,
        store,
        _data_dir: data_dir,
    })
}

impl RunningNode {
    /// Stops claiming and lets running attempts finish within `drain`, or
    /// until `signals` delivers another signal; then stops the rest (handed
    /// back to the queue uncharged), stops serving and closes the store.
    pub async fn stop(mut self, drain: Duration, signals: Option<&mut Signals>) {
        self.readiness.set_accepting(false);
        let _ = self.agent_tx.send(Shutdown::Drain);
        let second_signal = async {
            match signals {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        let drained = tokio::select! {
            r = tokio::time::timeout(drain, &mut self.agent) => r.is_ok(),
            signal = second_signal => {
                tracing::warn!(signal, "second signal: stopping the running attempts now");
                false
            }
        };
        if !drained {
            tracing::warn!("stopping the attempts still running; their tasks go back to the queue uncharged");
            let _ = self.agent_tx.send(Shutdown::Now);
            let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.agent).await;
        }
        let _ = self.stop_tx.send(true);
        let _ = self.server.await;
        let _ = self.sweeper.await;
        self.store.close().await;
    }
}

/// `provernode run` until SIGTERM/SIGINT (a second one ends the drain).
pub async fn run(args: RunNode, worker_exe: PathBuf) -> Result<(), NodeError> {
    let mut signals = Signals::watch()?;
    let drain = secs(args.slots.drain_secs, "--drain-secs")?;
    let node = start(&args, worker_exe).await?;
    tracing::info!(
        addr = %node.addr,
        workers = args.slots.workers,
        data_dir = %args.data_dir.display(),
        "provernode is running"
    );
    println!("provernode listening on http://{}", node.addr);
    let signal = signals.next().await;
    tracing::info!(
        signal,
        drain_secs = drain.as_secs_f64(),
        "draining: no new claims, running attempts may finish (send the signal again to stop them now)"
    );
    node.stop(drain, Some(&mut signals)).await;
    tracing::info!("stopped");
    Ok(())
}

/// The settings of a temporary node (demo, tests) on `data_dir`.
pub fn temporary(data_dir: &Path, workers: usize) -> RunNode {
    RunNode {
        data_dir: data_dir.to_path_buf(),
        slots: SlotFlags {
            workers,
            lease_secs: 30.0,
            worker_modes: Vec::<(String, WorkerModeName)>::new(),
            warm_max_attempts: 100,
            warm_max_rss_mib: 2048,
            memory_budget_mib: None,
            drain_secs: 10.0,
            split_backends: vec!["risc0".to_owned()],
            split_po2: 20,
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: None,
        sqlite_synchronous: SqliteSync::Normal,
        tasks: TaskDefaults {
            default_timeout_secs: 600.0,
            default_memory_limit_mib: 4096,
            default_max_attempts: 3,
            max_input_mib: 16,
            max_program_mib: 32,
            max_trace_guest_memory_mib: 1024,
        },
        artifacts: crate::artifacts::ArtifactFlags::default(),
        http: HttpFlags {
            max_http_connections: None,
            header_timeout_secs: 10.0,
            body_timeout_secs: 60.0,
        },
    }
}
