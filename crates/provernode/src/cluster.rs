//! Cluster roles: `provernode broker` (stateless HTTP over PostgreSQL) and
//! `provernode agent` (claims from a broker, proves in isolated workers).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use provernode_agent::{AgentConfig, HttpSource, Shutdown};
use provernode_backends::Registry;
use provernode_broker::{router, sweep_forever, ApiState};
use provernode_client::NodeClient;
use provernode_store::{PgStore, Store};
use provernode_worker::{detect_limiter, scratch_root};
use tokio::sync::{watch, Notify};

use crate::cli::{AgentArgs, BrokerArgs};
use crate::node::{
    api_config, memory_budget_bytes, secs, slot_configs, terminate_signal, total_memory_bytes, warm_first,
};

pub async fn broker(args: BrokerArgs) -> Result<()> {
    let client_tokens: Vec<String> = args.client_tokens.into_iter().filter(|t| !t.is_empty()).collect();
    let agent_tokens: Vec<String> = args.agent_tokens.into_iter().filter(|t| !t.is_empty()).collect();
    if agent_tokens.is_empty() {
        bail!("a broker needs at least one --agent-token (or PROVERNODE_AGENT_TOKENS): agents authenticate with it");
    }
    if !args.listen.ip().is_loopback() && client_tokens.is_empty() {
        bail!(
            "refusing to listen on {} without a client token: pass --client-token (or PROVERNODE_CLIENT_TOKENS), or listen on 127.0.0.1",
            args.listen
        );
    }
    if client_tokens.iter().any(|c| agent_tokens.contains(c)) {
        bail!("a token cannot be both a client and an agent token: give each role its own");
    }
    let sweep_every = secs(args.sweep_secs, "--sweep-secs")?;
    let store = PgStore::connect(&args.database_url, args.max_connections)
        .await
        .context("cannot open the PostgreSQL queue (check --database-url and that the server is up)")?;
    let store: Arc<dyn Store> = Arc::new(store);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let state = ApiState {
        store: store.clone(),
        registry: Registry::default(),
        config: Arc::new(api_config(&args.tasks, client_tokens, agent_tokens, false)?),
        // No local workers to wake; readiness is the store's.
        wake: Arc::new(Notify::new()),
        accepting_work: Arc::new(AtomicBool::new(true)),
        metrics,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_forever(store.clone(), sweep_every, stop_rx.clone()));
    let mut server_stop = stop_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(%addr, "provernode broker is running");
    println!("provernode broker listening on http://{addr}");
    let signal = terminate_signal().await?;
    tracing::info!(signal, "stopping");
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    server.await?.context("the HTTP server failed")?;
    Ok(())
}

pub async fn agent(args: AgentArgs) -> Result<()> {
    if args.slots.workers == 0 || args.slots.workers > 256 {
        bail!("--workers must be between 1 and 256, got {}", args.slots.workers);
    }
    let lease_ttl = secs(args.slots.lease_secs, "--lease-secs")?;
    let drain = secs(args.slots.drain_secs, "--drain-secs")?;
    let exe = std::env::current_exe().context("cannot find the provernode executable to start workers")?;
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "agent".into());
        format!("{}-{}", host.trim(), std::process::id())
    });
    std::fs::create_dir_all(&args.scratch_dir)
        .with_context(|| format!("cannot create {}", args.scratch_dir.display()))?;
    let scratch = scratch_root(&args.scratch_dir);
    let limiter = detect_limiter();
    tracing::info!(limiter = %limiter.describe(), "memory limits");
    let registry = Registry::default();
    let backends: Vec<String> = registry.available().map(|b| b.name().to_owned()).collect();
    let client = NodeClient::new(&args.broker, Some(args.token.clone()))?;
    let config = AgentConfig {
        owner: name.clone(),
        slots: slot_configs(&args.slots, &scratch, &exe, &limiter, &registry),
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
        hold_first_result: std::env::var("PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(Shutdown::Running);
    let mut agent = tokio::spawn(provernode_agent::run(
        config,
        Arc::new(HttpSource::new(client)),
        Arc::new(Notify::new()),
        shutdown_rx,
    ));
    tracing::info!(agent = %name, broker = %args.broker, workers = args.slots.workers, ?backends, "provernode agent is running");
    println!("provernode agent {name} working for {}", args.broker);
    let signal = terminate_signal().await?;
    tracing::info!(signal, drain_secs = drain.as_secs_f64(), "draining");
    let _ = shutdown_tx.send(Shutdown::Drain);
    if tokio::time::timeout(drain, &mut agent).await.is_err() {
        let _ = shutdown_tx.send(Shutdown::Now);
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut agent).await;
    }
    Ok(())
}
