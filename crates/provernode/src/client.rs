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
    let program = program_ref(&c, &args.program).await?;
    let mut task = base_task(&args, &program)?;
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
    let program = program_ref(c, &args.program).await?;
    let mut ids = Vec::with_capacity(lines.len());
    for (number, input) in &lines {
        let mut task = base_task(args, &program)?;
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

/// What a submission names its program by: a built-in guest or a program
/// id as given, or, for a file, the id the node stores it under (uploaded
/// once here, so the ELF does not travel with each task).
async fn program_ref(c: &NodeClient, program: &str) -> Result<String> {
    let path = std::path::Path::new(program);
    if provernode_guests::find(program).is_some() || !path.is_file() {
        return Ok(program.to_owned());
    }
    let stored = upload(c, path, None).await?;
    Ok(stored.id)
}

async fn upload(
    c: &NodeClient,
    path: &std::path::Path,
    name: Option<&str>,
) -> Result<provernode_api::ProgramInfo> {
    let elf = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    c.upload_program(elf, name.unwrap_or(&file_name))
        .await
        .with_context(|| format!("uploading {}", path.display()))
}

/// The fields of a submission that come from `args` alone (no input).
fn base_task(args: &Submit, program: &str) -> Result<SubmitTask> {
    let mut task = SubmitTask {
        program: program.to_owned(),
        ..SubmitTask::default()
    };
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
    let limit = match args.wait_timeout_secs {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => bail!("--wait-timeout-secs must be a positive number of seconds, got {s}"),
        None => None,
    };
    let task = wait_with_progress(c, &id, limit).await?;
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

/// Polls a task until it ends, showing its progress: a spinner on a
/// terminal, a plain line on each change otherwise. A node that restarts or
/// cannot be reached is retried until `limit` (the task is durable; only
/// this wait is not).
async fn wait_with_progress(
    c: &NodeClient,
    id: &str,
    limit: Option<Duration>,
) -> Result<provernode_api::TaskWithAttempts> {
    use std::io::IsTerminal;
    let started = std::time::Instant::now();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        None
    };
    let mut last_line = String::new();
    let mut unreachable_since: Option<std::time::Instant> = None;
    let mut poll = Duration::from_millis(200);
    loop {
        if let Some(limit) = limit {
            if started.elapsed() > limit {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                bail!(
                    "task {id} did not end within {:.0} s; it goes on: `provernode status {id}`",
                    limit.as_secs_f64()
                );
            }
        }
        let line = match c.task(id).await {
            Ok(t) if !matches!(t.task.state, TaskState::Queued | TaskState::Leased) => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return Ok(t);
            }
            Ok(t) => {
                unreachable_since = None;
                poll = Duration::from_millis(200);
                progress_line(&t)
            }
            Err(e) if e.is_transient() => {
                let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                poll = (poll * 2).min(Duration::from_secs(5));
                format!(
                    "node unreachable for {:.0} s, retrying: {e}",
                    since.elapsed().as_secs_f64()
                )
            }
            Err(e) => return Err(e.into()),
        };
        let elapsed = started.elapsed().as_secs_f64();
        match &bar {
            Some(b) => b.set_message(format!("{id}: {line} ({elapsed:.0} s)")),
            None => {
                // A line per change of phase, not per poll: logs stay short.
                let phase = line.split(" s").next().unwrap_or(&line).to_owned();
                if phase != last_line {
                    eprintln!("{id}: {line} ({elapsed:.0} s)");
                    last_line = phase;
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Where a waiting task is: queued, or running (which attempt, where, for
/// how long), with a split task's parts.
fn progress_line(t: &provernode_api::TaskWithAttempts) -> String {
    let mut line = match t.attempt_history.iter().find(|a| a.ended_ms.is_none()) {
        Some(a) => match &a.phase {
            Some(phase) => format!("running attempt {} on {} ({phase})", a.attempt, a.owner),
            None => format!("running attempt {} on {}", a.attempt, a.owner),
        },
        None if t.task.state == TaskState::Queued && t.task.attempts > 0 => {
            format!("queued again after {} attempt(s)", t.task.attempts)
        }
        None => state_name(t.task.state),
    };
    if let Some(split) = &t.task.split {
        line.push_str(&format!(
            ", split: {}/{} segments proved, {}/{} joins",
            split.segments_proved, split.segments, split.joins_done, split.joins
        ));
    }
    line
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
    if let Some(split) = &t.split {
        println!(
            "split     {} segments of 2^{} cycles: {}/{} proved, {}/{} joins done, {} parts running",
            split.segments,
            split.segment_po2,
            split.segments_proved,
            split.segments,
            split.joins_done,
            split.joins,
            split.parts_running
        );
    }
    if let Some(part) = &t.part {
        let what = if part.hi - part.lo == 1 {
            format!("segment {}", part.lo)
        } else {
            format!("join of segments {}..{}", part.lo, part.hi)
        };
        println!("part      {what} of split task {}", part.parent_id);
    }
    if !t.depends_on.is_empty() && t.part.is_none() {
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
                Some(_) => format!("{:.2}", a.elapsed_ms as f64 / 1000.0),
                None => format!("{:.1} so far", a.elapsed_ms as f64 / 1000.0),
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
    if let Some(running) = detailed.attempt_history.iter().find(|a| a.ended_ms.is_none()) {
        println!(
            "running   attempt {} on {}, {}started {}, {:.1} s ago",
            running.attempt,
            running.owner,
            running
                .phase
                .as_ref()
                .map(|p| format!("{p}, "))
                .unwrap_or_default(),
            utc(running.started_ms),
            running.elapsed_ms as f64 / 1000.0
        );
    }
    for e in &detailed.events {
        println!("event     {} {}: {}", utc(e.at_ms), e.kind, e.detail);
    }
    Ok(())
}

/// Milliseconds since the epoch as a UTC time (`2026-12-01 04:20:05 UTC`).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `provernode programs upload FILE`.
pub async fn programs_upload(
    file: &std::path::Path,
    name: Option<&str>,
    node: &NodeFlags,
    json: bool,
) -> Result<()> {
    let stored = upload(&client(node)?, file, name).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stored)?);
    } else {
        let what = if stored.created {
            "stored"
        } else {
            "stored already"
        };
        println!("{}", stored.id);
        eprintln!(
            "{what}: {} ({} program, {} bytes); submit tasks with `provernode submit {} ...`",
            stored.name, stored.abi, stored.size_bytes, stored.id
        );
    }
    Ok(())
}

/// `provernode programs list`.
pub async fn programs_list(node: &NodeFlags, json: bool) -> Result<()> {
    let list = client(node)?.programs().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(["id", "name", "abi", "bytes", "tasks", "stored"]);
    for p in &list.programs {
        table.add_row([
            p.id.clone(),
            p.name.clone(),
            p.abi.clone(),
            p.size_bytes.to_string(),
            p.tasks.to_string(),
            utc(p.created_ms),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// `provernode programs delete ID`.
pub async fn programs_delete(id: &str, node: &NodeFlags) -> Result<()> {
    client(node)?.delete_program(id).await?;
    println!("program {id} deleted");
    Ok(())
}

/// `provernode ready`: /readyz, answered 200 or 503 alike.
pub async fn ready(node: &NodeFlags, json: bool) -> Result<()> {
    let readiness = client(node)?.readiness().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&readiness)?);
    } else {
        println!("{}", if readiness.ready { "ready" } else { "NOT READY" });
        for (name, c) in &readiness.components {
            println!("  {name:<16} {:<8} {}", c.status, c.detail);
        }
    }
    if !readiness.ready {
        bail!("{} is not ready", node.node);
    }
    Ok(())
}

pub async fn retry(id: &str, node: &NodeFlags) -> Result<()> {
    client(node)?.retry(id).await?;
    println!(
        "{id} queued again with a fresh budget of attempts (`provernode status {id}` shows it in its events)"
    );
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

pub async fn tasks(page: &provernode_client::ListPage, node: &NodeFlags, as_json: bool) -> Result<()> {
    let list = client(node)?.list_page(page).await?;
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
    if let Some(next) = &list.next_before {
        println!("more: provernode tasks --before {next}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_796_097_734_000), "2026-12-01 04:02:14 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
