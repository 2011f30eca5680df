//! The client commands: submit, status, proof, cancel, tasks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use comfy_table::{presets, Table};
use provernode_api::{SubmitTask, TaskState, TypedInput};
use provernode_client::NodeClient;
use serde_json::json;

use crate::cli::{InputFlags, NodeFlags, Submit};

fn client(node: &NodeFlags) -> Result<NodeClient> {
    Ok(NodeClient::new(&node.node, node.token.clone())?)
}

/// The input fields of a task from the command-line input flags.
pub fn input_fields(flags: &InputFlags, task: &mut SubmitTask) -> Result<()> {
    if let Some(items) = flags.items()? {
        task.input_items_base64 = Some(
            items
                .iter()
                .map(|item| base64::engine::general_purpose::STANDARD.encode(item))
                .collect(),
        );
    } else if let Some(path) = &flags.input_file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read the input file {}", path.display()))?;
        task.input_base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
    } else if let Some(h) = &flags.input_hex {
        task.input_hex = Some(h.trim().to_owned());
    } else {
        let typed = TypedInput {
            n: flags.n,
            rounds: flags.rounds,
            seed: flags.seed.map(hex::encode),
            text: flags.text.clone(),
        };
        if typed != TypedInput::default() {
            task.input = Some(typed);
        }
    }
    Ok(())
}

/// One line of a `--batch` file: the input flags of one task.
#[derive(clap::Parser, Debug)]
#[command(no_binary_name = true)]
struct BatchLine {
    #[command(flatten)]
    input: InputFlags,
}

/// The input flags on each line of a batch file, with their line numbers.
fn batch_lines(path: &std::path::Path) -> Result<Vec<(usize, InputFlags)>> {
    use clap::Parser as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the batch file {}", path.display()))?;
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = shlex::split(line)
            .with_context(|| format!("{}:{number}: unbalanced quotes in {line:?}", path.display()))?;
        let parsed = BatchLine::try_parse_from(words).with_context(|| {
            format!(
                "{}:{number}: {line:?} is not a task's input flags (e.g. --n 10)",
                path.display()
            )
        })?;
        lines.push((number, parsed.input));
    }
    if lines.is_empty() {
        bail!(
            "the batch file {} holds no task (one line of input flags per task)",
            path.display()
        );
    }
    Ok(lines)
}

pub async fn submit(args: Submit) -> Result<()> {
    let c = client(&args.node)?;
    if let Some(batch) = &args.batch {
        return submit_batch(&c, &args, batch).await;
    }
    let mut task = base_task(&args)?;
    input_fields(&args.input, &mut task)?;
    if !args.of.is_empty() {
        task.aggregate_of = Some(args.of.clone());
    }
    let resp = c.submit(&task).await?;
    let id = resp.id.clone();
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&resp)?);
        } else {
            println!("{id}");
        }
        return Ok(());
    }
    wait_and_fetch(&c, &args, &id).await
}

/// N tasks from the lines of `batch`, then their aggregate.
async fn submit_batch(c: &NodeClient, args: &Submit, batch: &std::path::Path) -> Result<()> {
    let lines = batch_lines(batch)?;
    let mut ids = Vec::with_capacity(lines.len());
    for (number, input) in &lines {
        let mut task = base_task(args)?;
        input_fields(input, &mut task)?;
        // A retried batch submits the same tasks, not new ones.
        task.idempotency_key = args.idempotency_key.as_ref().map(|k| format!("{k}/{number}"));
        let resp = c
            .submit(&task)
            .await
            .with_context(|| format!("{}:{number}: submitting this task", batch.display()))?;
        if !args.json {
            println!("{}", resp.id);
        }
        ids.push(resp.id);
    }
    let aggregate = SubmitTask {
        program: provernode_guests::AGGREGATE.to_owned(),
        backend: args.backend.clone(),
        proof_kind: args.proof_kind.clone(),
        priority: args.priority,
        timeout_secs: args.timeout_secs,
        memory_limit_mib: args.memory_limit_mib,
        max_attempts: args.max_attempts,
        idempotency_key: args.idempotency_key.as_ref().map(|k| format!("{k}/aggregate")),
        aggregate_of: Some(ids.clone()),
        ..SubmitTask::default()
    };
    let resp = c.submit(&aggregate).await.with_context(|| {
        format!(
            "submitting the aggregate of the {} tasks of {}",
            ids.len(),
            batch.display()
        )
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"tasks": ids, "aggregate": resp.id}))?
        );
    } else {
        println!("{}", resp.id);
    }
    if args.wait {
        return wait_and_fetch(c, args, &resp.id).await;
    }
    Ok(())
}

/// The fields of a submission that come from `args` alone (no input).
fn base_task(args: &Submit) -> Result<SubmitTask> {
    let mut task = SubmitTask::default();
    let path = std::path::Path::new(&args.program);
    if provernode_guests::find(&args.program).is_none() && path.is_file() {
        let elf = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        task.elf_base64 = Some(base64::engine::general_purpose::STANDARD.encode(elf));
        task.program = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    } else {
        task.program = args.program.clone();
    }
    task.backend = args.backend.clone();
    task.abi = args.abi.map(|a| a.name().to_owned());
    task.proof_kind = args.proof_kind.clone();
    task.priority = args.priority;
    task.timeout_secs = args.timeout_secs;
    task.memory_limit_mib = args.memory_limit_mib;
    task.max_attempts = args.max_attempts;
    task.max_cycles = args.max_cycles;
    task.max_guest_memory_mib = args.max_guest_memory_mib;
    task.idempotency_key = args.idempotency_key.clone();
    if let Some(d) = args.deadline_secs {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        task.deadline_ms = Some(((now.as_secs_f64() + d) * 1000.0) as i64);
    }
    Ok(task)
}

/// Waits for task `id` to end and writes its proof if it succeeded.
async fn wait_and_fetch(c: &NodeClient, args: &Submit, id: &str) -> Result<()> {
    let id = id.to_owned();
    let task = c
        .wait(&id, Duration::from_millis(200), Duration::from_secs(365 * 86400))
        .await?;
    if task.task.state == TaskState::Succeeded {
        let proof = c.proof(&id).await?;
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{id}.proof")));
        std::fs::write(&out, &proof).with_context(|| format!("cannot write {}", out.display()))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"task": task, "proof_file": out}))?
            );
        } else {
            println!(
                "{id} succeeded: {}",
                task.task.output.as_deref().unwrap_or("(output)")
            );
            println!("proof written to {} ({} bytes)", out.display(), proof.len());
        }
        Ok(())
    } else {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&task)?);
        }
        bail!(
            "task {id} ended {} ({}): {}",
            state_name(task.task.state),
            task.task.terminal_reason.as_deref().unwrap_or("?"),
            task.task.detail.as_deref().unwrap_or("")
        )
    }
}

/// A state as the API names it.
pub fn state_name(state: TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn status(id: &str, node: &NodeFlags, as_json: bool) -> Result<()> {
    let detailed = client(node)?.task(id).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&detailed)?);
        return Ok(());
    }
    let t = &detailed.task;
    println!("task      {}", t.id);
    println!("state     {}", state_name(t.state));
    if let Some(reason) = &t.terminal_reason {
        println!("reason    {reason}");
    }
    if let Some(detail) = &t.detail {
        println!("detail    {detail}");
    }
    println!("program   {} [{}]", t.program.name, t.program.abi);
    println!("backend   {}", t.backend);
    println!(
        "attempts  {} started; {} of {} failures allowed; {} lease losses",
        t.attempts, t.failures, t.limits.max_attempts, t.lease_losses
    );
    if let Some(output) = &t.output {
        println!("output    {output}");
    }
    if !t.depends_on.is_empty() {
        let done = t
            .depends_on
            .iter()
            .filter(|d| d.state == TaskState::Succeeded)
            .count();
        println!("aggregates {} tasks, {done} succeeded:", t.depends_on.len());
        for d in &t.depends_on {
            println!("  {} {}", d.id, state_name(d.state));
        }
    }
    if !detailed.attempt_history.is_empty() {
        let mut table = Table::new();
        table
            .load_preset(presets::ASCII_MARKDOWN)
            .set_header(vec!["#", "owner", "outcome", "seconds", "detail"]);
        for a in &detailed.attempt_history {
            let secs = match a.ended_ms {
                Some(e) => format!("{:.2}", (e - a.started_ms) as f64 / 1000.0),
                None => "running".into(),
            };
            table.add_row(vec![
                a.attempt.to_string(),
                a.owner.clone(),
                a.outcome.clone().unwrap_or_else(|| "running".into()),
                secs,
                a.detail.clone().unwrap_or_default(),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}

pub async fn proof(id: &str, output: Option<PathBuf>, node: &NodeFlags) -> Result<()> {
    let bytes = client(node)?.proof(id).await?;
    let out = output.unwrap_or_else(|| PathBuf::from(format!("{id}.proof")));
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} ({} bytes); check it with `provernode verify {}`",
        out.display(),
        bytes.len(),
        out.display()
    );
    Ok(())
}

pub async fn cancel(id: &str, node: &NodeFlags) -> Result<()> {
    client(node)?.cancel(id).await?;
    println!("{id} cancelled");
    Ok(())
}

pub async fn tasks(
    state: Option<provernode_core::TaskState>,
    limit: u32,
    node: &NodeFlags,
    as_json: bool,
) -> Result<()> {
    let list = client(node)?.list(state.map(|s| s.as_str()), limit).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::ASCII_MARKDOWN).set_header(vec![
        "id", "state", "reason", "program", "backend", "attempts", "output",
    ]);
    for t in &list.tasks {
        table.add_row(vec![
            t.id.clone(),
            state_name(t.state),
            t.terminal_reason.clone().unwrap_or_default(),
            format!("{} [{}]", t.program.name, t.program.abi),
            t.backend.clone(),
            t.attempts.to_string(),
            t.output.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}");
    Ok(())
}
