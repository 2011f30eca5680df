//! `provernode demo`: every built-in guest on every available backend and
//! ABI, submitted to a temporary node (durable queue, isolated workers),
//! proved, fetched over HTTP and verified here.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use provernode_api::SubmitTask;
use provernode_backends::Registry;
use provernode_client::NodeClient;
use provernode_core::ProofEnvelope;

use crate::cli::InputFlags;
use crate::client::input_fields;
use crate::oneshot::{human_bytes, human_duration, thousands};

pub async fn run(only: &[String], workers: usize) -> Result<()> {
    let registry = Registry::default();
    for name in only {
        // Asked for by name: a backend this build cannot run is an error,
        // not a demo of nothing that exits 0.
        registry.get(name)?.available()?;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let exe = std::env::current_exe().context("cannot find the provernode executable")?;
    let node = provernode_node::start(&provernode_node::temporary(dir.path(), workers), exe).await?;
    let client = NodeClient::new(&format!("http://{}", node.addr), None)?;

    let mut unavailable = Vec::new();
    let mut submitted = Vec::new();
    for backend in registry.all() {
        if !only.is_empty() && !only.iter().any(|n| n == backend.name()) {
            continue;
        }
        if let Err(u) = backend.available() {
            unavailable.push(u);
            continue;
        }
        for &abi in backend.abis() {
            for guest in provernode_guests::all().iter().filter(|g| !g.test_only) {
                // A real zkVM proves in minutes, not microseconds: one input
                // per guest shows it agrees with trace without an hour's wait.
                let inputs = guest.demo_inputs();
                let take = if backend.name() == "trace" {
                    inputs.len()
                } else {
                    1
                };
                for args in inputs.into_iter().take(take) {
                    let flags = InputFlags {
                        n: args.n,
                        rounds: args.rounds,
                        seed: args.seed,
                        text: args.text.clone(),
                        ..InputFlags::default()
                    };
                    let mut task = SubmitTask {
                        program: guest.name.to_owned(),
                        backend: Some(backend.name().to_owned()),
                        abi: Some(abi.name().to_owned()),
                        ..SubmitTask::default()
                    };
                    input_fields(&flags, &mut task)?;
                    if backend.name() != "trace" {
                        // Room for a prover's start-up inside the attempt
                        // on a slow machine (the node's default is 10 min).
                        task.timeout_secs = Some(3600.0);
                    }
                    let id = client.submit(&task).await?.id;
                    let input = guest.encode_input(&args)?;
                    submitted.push((backend.name(), abi, guest, Expect::Reference(input), id));
                }
            }
            // One proof of the proofs: on trace, of every task above of this
            // ABI; on a real zkVM, of one small task proved with the kind its
            // aggregates verify (RISC Zero succinct, SP1 compressed), so the
            // demo adds two proofs there, not one per guest.
            let mut inner: Vec<String> = submitted
                .iter()
                .filter(|(b, a, ..)| *b == backend.name() && *a == abi)
                .map(|(.., id)| id.clone())
                .collect();
            if backend.name() != "trace" {
                let fibonacci = provernode_guests::find("fibonacci").context("the fibonacci guest")?;
                let task = SubmitTask {
                    program: fibonacci.name.to_owned(),
                    backend: Some(backend.name().to_owned()),
                    abi: Some(abi.name().to_owned()),
                    input_hex: Some(hex::encode(10u32.to_le_bytes())),
                    proof_kind: backend.aggregate_proof_kind().map(str::to_owned),
                    timeout_secs: Some(3600.0),
                    ..SubmitTask::default()
                };
                inner = vec![client.submit(&task).await?.id];
            }
            let aggregate =
                provernode_guests::find(provernode_guests::AGGREGATE).context("the aggregate guest")?;
            let task = SubmitTask {
                program: aggregate.name.to_owned(),
                backend: Some(backend.name().to_owned()),
                aggregate_of: Some(inner.clone()),
                timeout_secs: (backend.name() != "trace").then_some(3600.0),
                ..SubmitTask::default()
            };
            let id = client.submit(&task).await?.id;
            submitted.push((backend.name(), abi, aggregate, Expect::Aggregate(inner), id));
        }
    }

    let mut table = Table::new();
    table.load_preset(presets::ASCII_MARKDOWN).set_header(vec![
        "backend",
        "abi",
        "program",
        "input",
        "cycles",
        "prove",
        "verify",
        "proof size",
        "output",
    ]);
    let mut failures = Vec::new();
    for (backend, abi, guest, expect, id) in &submitted {
        let task = client
            .wait(id, Duration::from_millis(20), Duration::from_secs(3600))
            .await?;
        if task.task.state != provernode_api::TaskState::Succeeded {
            failures.push(format!(
                "{backend} {abi} {}: {} ({}) {}",
                guest.name,
                crate::client::state_name(task.task.state),
                task.task.terminal_reason.as_deref().unwrap_or(""),
                task.task.detail.as_deref().unwrap_or("")
            ));
            continue;
        }
        let bytes = client.proof(id).await?;
        // Off the async runtime: the node's own slots run on it, and trace
        // verification re-executes the program.
        let reg = registry.clone();
        let envelope = ProofEnvelope::decode(&bytes)?;
        let (verified, verify_time) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            (reg.verify(&envelope), t.elapsed())
        })
        .await?;
        let verified = verified?;
        let (expected, input_label) = match expect {
            Expect::Reference(input) => (guest.reference_output(input), guest.describe_input(input)),
            Expect::Aggregate(inner) => (
                Some(expected_aggregate(&client, &registry, inner).await?),
                format!("{} proofs", inner.len()),
            ),
        };
        if Some(&verified.public_output) != expected.as_ref() {
            failures.push(format!(
                "{backend} {abi} {}: output differs from the known answer",
                guest.name
            ));
            continue;
        }
        let prove_ms = task
            .attempt_history
            .last()
            .and_then(|a| Some(a.ended_ms? - a.started_ms))
            .unwrap_or(0);
        table.add_row(vec![
            backend.to_string(),
            abi.to_string(),
            guest.name.to_owned(),
            input_label,
            thousands(verified.cycles),
            human_duration(Duration::from_millis(u64::try_from(prove_ms).unwrap_or(0))),
            human_duration(verify_time),
            human_bytes(bytes.len()),
            guest.describe_output(&verified.public_output),
        ]);
    }
    node.stop(Duration::from_secs(10), None).await;
    println!("{table}");
    println!("prove = one attempt in an isolated worker process, as the node recorded it; verify = here, on the fetched proof");
    for u in &unavailable {
        println!("skipped {}: {}", u.backend, u.reason);
    }
    println!(
        "{} proofs made through the node and verified in {}",
        submitted.len() - failures.len(),
        human_duration(started.elapsed())
    );
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("failed: {f}");
        }
        bail!("{} of {} demo tasks failed", failures.len(), submitted.len());
    }
    Ok(())
}

/// What a demo task must commit.
enum Expect {
    /// The guest's reference model on this input.
    Reference(Vec<u8>),
    /// An aggregate of these tasks: their claims, computed here from their
    /// fetched proofs.
    Aggregate(Vec<String>),
}

/// The public output an aggregate of tasks `inner` must commit.
async fn expected_aggregate(client: &NodeClient, registry: &Registry, inner: &[String]) -> Result<Vec<u8>> {
    let mut claims = Vec::with_capacity(inner.len());
    for id in inner {
        let envelope = ProofEnvelope::decode(&client.proof(id).await?)?;
        let reg = registry.clone();
        let claim = tokio::task::spawn_blocking(move || reg.claim_of(&envelope)).await??;
        claims.push(claim);
    }
    Ok(provernode_core::aggregate::AggregateOutput::of_digests(claims).encode())
}
