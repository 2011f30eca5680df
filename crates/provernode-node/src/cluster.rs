//! Cluster roles: `provernode broker` (stateless HTTP over PostgreSQL) and
//! `provernode agent` (claims from a broker, proves in isolated workers).

use std::sync::Arc;
use std::time::Duration;

use provernode_agent::{AgentConfig, HttpSource, Shutdown};
use provernode_backends::Registry;
use provernode_broker::{router, sweep_forever, ApiState};
use provernode_client::NodeClient;
use provernode_core::Readiness;
use provernode_store::{PgStore, Store};
use provernode_worker::{detect_limiter, scratch_root};
use tokio::sync::{watch, Notify};

use crate::datadir::DataDir;
use crate::settings::{secs, token, AgentArgs, BrokerArgs};
use crate::signals::Signals;
use crate::wiring::{
    api_config, bind, memory_budget_bytes, raise_open_file_limit, serve_limits, slot_configs,
    total_memory_bytes, warm_first,
};
use crate::NodeError;

fn tokens(given: &[String], flag: &str) -> Result<Vec<String>, NodeError> {
    let mut out = Vec::new();
    for t in given {
        out.extend(token(Some(t), flag)?);
    }
    Ok(out)
}

pub async fn broker(args: BrokerArgs) -> Result<(), NodeError> {
    let mut signals = Signals::watch()?;
    let client_tokens = tokens(&args.client_tokens, "--client-token (PROVERNODE_CLIENT_TOKENS)")?;
    let agent_tokens = tokens(&args.agent_tokens, "--agent-token (PROVERNODE_AGENT_TOKENS)")?;
    if agent_tokens.is_empty() {
        return Err(NodeError::Config(
            "a broker needs at least one --agent-token (or PROVERNODE_AGENT_TOKENS): agents authenticate with it"
                .into(),
        ));
    }
    if !args.listen.ip().is_loopback() && client_tokens.is_empty() {
        return Err(NodeError::Config(format!(
            "refusing to listen on {} without a client token: pass --client-token (or PROVERNODE_CLIENT_TOKENS), or listen on 127.0.0.1",
            args.listen
        )));
    }
    if client_tokens.iter().any(|c| agent_tokens.contains(c)) {
        return Err(NodeError::Config(
            "a token cannot be both a client and an agent token: give each role its own".into(),
        ));
    }
    crate::doctor::preflight(crate::doctor::Role::Broker(&args)).await?;
    let sweep_every = secs(args.sweep_secs, "--sweep-secs")?;
    let limits = serve_limits(&args.http, 0, raise_open_file_limit())?;
    let store = PgStore::connect(&args.database_url, args.max_connections).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let metrics = crate::telemetry::install("broker");
    let readiness = Arc::new(Readiness::new());
    // No local workers: readiness is the store's.
    readiness.set_accepting(true);
    let registry = Registry::default();
    let unverifiable: Vec<&str> = registry
        .all()
        .iter()
        .filter(|b| b.available().is_err())
        .map(|b| b.name())
        .collect();
    if !unverifiable.is_empty() {
        let list = unverifiable.join(", ");
        if args.trust_agents {
            tracing::warn!(backends = %list, "this broker cannot verify these backends' proofs and stores them on the agents' word (--trust-agents)");
            readiness.note(
                "verification",
                format!(
                    "proofs of {list} are stored as agents report them, unverified here (--trust-agents)"
                ),
            );
        } else {
            tracing::info!(backends = %list, "this broker cannot verify these backends' proofs, so it takes no tasks for them (build it with them, or pass --trust-agents)");
            readiness.note(
                "verification",
                format!("no tasks for {list}: this broker cannot verify their proofs"),
            );
        }
    }
    let state = ApiState {
        store: store.clone(),
        registry,
        config: Arc::new(provernode_broker::ApiConfig {
            trust_agents: args.trust_agents,
            ..api_config(&args.tasks, client_tokens, agent_tokens, false)?
        }),
        wake: Arc::new(Notify::new()),
        readiness,
        metrics,
        // Brokers keep programs in PostgreSQL, shared by every broker;
        // artifacts are each machine's own.
        artifacts: None,
    };
    let (listener, addr) = bind(args.listen).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_forever(store.clone(), sweep_every, stop_rx.clone()));
    let server = tokio::spawn(provernode_broker::serve(listener, router(state), limits, stop_rx));
    tracing::info!(%addr, "provernode broker is running");
    println!("provernode broker listening on http://{addr}");
    let signal = signals.next().await;
    tracing::info!(signal, "stopping");
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    let _ = server.await;
    Ok(())
}

pub async fn agent(args: AgentArgs, worker_exe: std::path::PathBuf) -> Result<(), NodeError> {
    let mut signals = Signals::watch()?;
    if args.slots.workers == 0 || args.slots.workers > 256 {
        return Err(NodeError::Config(format!(
            "--workers must be between 1 and 256, got {}",
            args.slots.workers
        )));
    }
    let agent_token = token(Some(&args.token), "--token (PROVERNODE_AGENT_TOKEN)")?.ok_or_else(|| {
        NodeError::Config("--token (PROVERNODE_AGENT_TOKEN) is empty: give the broker's agent token".into())
    })?;
    crate::doctor::preflight(crate::doctor::Role::Agent(&args)).await?;
    let lease_ttl = secs(args.slots.lease_secs, "--lease-secs")?;
    let drain = secs(args.slots.drain_secs, "--drain-secs")?;
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "agent".into());
        format!("{}-{}", host.trim(), std::process::id())
    });
    if name.is_empty() || name.len() > 100 {
        return Err(NodeError::Config("--name must be 1 to 100 characters".into()));
    }
    raise_open_file_limit();
    // The agent's directory: one agent per directory, like a node's data
    // directory, because it holds the record of the agent's workers.
    let own_dir = DataDir::lock(&args.scratch_dir)?;
    let records = own_dir.worker_records().await?;
    let scratch = scratch_root(own_dir.path());
    let limiter = detect_limiter();
    tracing::info!(limiter = %limiter.describe(), "memory limits");
    let registry = Registry::default();
    let backends: Vec<String> = registry.available().map(|b| b.name().to_owned()).collect();
    let client = NodeClient::new(&args.broker, Some(agent_token))?;
    let readiness = Arc::new(Readiness::new());
    let metrics = crate::telemetry::install("agent");
    let artifacts = Arc::new(args.artifacts.open(own_dir.path())?);
    let blocked_backends = Arc::new(std::sync::RwLock::new(Vec::new()));
    let _artifacts_check = crate::artifacts::start(
        artifacts.clone(),
        readiness.clone(),
        blocked_backends.clone(),
        None,
    );
    let (status_stop_tx, status_stop_rx) = watch::channel(false);
    let status_server = match args.status_listen {
        Some(addr) => {
            let (listener, bound) = bind(addr).await?;
            tracing::info!(addr = %bound, "agent status endpoints: /healthz, /readyz, /metrics");
            let limits = serve_limits(&args.http, args.slots.workers, raise_open_file_limit())?;
            Some((
                bound,
                tokio::spawn(provernode_broker::serve(
                    listener,
                    provernode_broker::status_router(readiness.clone(), registry.clone(), metrics),
                    limits,
                    status_stop_rx,
                )),
            ))
        }
        None => None,
    };
    let config = AgentConfig {
        owner: name.clone(),
        slots: slot_configs(
            &args.slots,
            &scratch,
            &worker_exe,
            &limiter,
            &registry,
            &records,
            Some(&artifacts),
        ),
        backends: backends.clone(),
        lease_ttl,
        max_claim_memory_bytes: args
            .max_task_memory_mib
            .map(|m| m << 20)
            .or_else(total_memory_bytes),
        memory_budget_bytes: memory_budget_bytes(&args.slots),
        warm_first: warm_first(&registry),
        idle_poll: Duration::from_millis(250),
        registry,
        hold_first_result: crate::fault_hold_first_result(),
        readiness: readiness.clone(),
        split: args.slots.split_policy(),
        blocked_backends,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(Shutdown::Running);
    let (sampler_stop, sampler_stop_rx) = watch::channel(false);
    let sampler = crate::wiring::sample_worker_memory(limiter.clone(), sampler_stop_rx);
    let mut agent = tokio::spawn(provernode_agent::run(
        config,
        Arc::new(HttpSource::new(client)),
        Arc::new(Notify::new()),
        shutdown_rx,
    ));
    tracing::info!(agent = %name, broker = %args.broker, workers = args.slots.workers, ?backends, "provernode agent is running");
    readiness.set_accepting(true);
    match &status_server {
        Some((addr, _)) => println!(
            "provernode agent {name} working for {} (status on http://{addr})",
            args.broker
        ),
        None => println!("provernode agent {name} working for {}", args.broker),
    }
    let signal = signals.next().await;
    tracing::info!(
        signal,
        drain_secs = drain.as_secs_f64(),
        "draining (send the signal again to stop now)"
    );
    readiness.set_accepting(false);
    let _ = shutdown_tx.send(Shutdown::Drain);
    let drained = tokio::select! {
        r = tokio::time::timeout(drain, &mut agent) => r.is_ok(),
        signal = signals.next() => {
            tracing::warn!(signal, "second signal: stopping the running attempts now");
            false
        }
    };
    if !drained {
        let _ = shutdown_tx.send(Shutdown::Now);
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut agent).await;
    }
    let _ = sampler_stop.send(true);
    let _ = sampler.await;
    let _ = status_stop_tx.send(true);
    if let Some((_, server)) = status_server {
        let _ = server.await;
    }
    drop(own_dir);
    Ok(())
}
