//! The client commands: submit, status, proof, cancel, tasks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use comfy_table::{presets, Table};
use provernode_client::NodeClient;
use serde_json::{json, Map, Value};

use crate::cli::{InputFlags, NodeFlags, Submit};

fn client(node: &NodeFlags) -> Result<NodeClient> {
    Ok(NodeClient::new(&node.node, node.token.clone())?)
}

/// The JSON input fields for a task from the command-line input flags.
pub fn input_fields(flags: &InputFlags, body: &mut Map<String, Value>) -> Result<()> {
    if let Some(path) = &flags.input_file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read the input file {}", path.display()))?;
        body.insert(
            "input_base64".into(),
            base64::engine::general_purpose::STANDARD.encode(bytes).into(),
        );
    } else if let Some(h) = &flags.input_hex {
        body.insert("input_hex".into(), h.trim().into());
    } else {
        let mut typed = Map::new();
        if let Some(n) = flags.n {
            typed.insert("n".into(), n.into());
        }
        if let Some(r) = flags.rounds {
            typed.insert("rounds".into(), r.into());
        }
        if let Some(s) = flags.seed {
            typed.insert("seed".into(), hex::encode(s).into());
        }
        if let Some(t) = &flags.text {
            typed.insert("text".into(), t.clone().into());
        }
        if !typed.is_empty() {
            body.insert("input".into(), Value::Object(typed));
        }
    }
    Ok(())
}

pub async fn submit(args: Submit) -> Result<()> {
    let c = client(&args.node)?;
    let mut body = Map::new();
    let path = std::path::Path::new(&args.program);
    if provernode_guests::find(&args.program).is_none() && path.is_file() {
        let elf = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        body.insert(
            "elf_base64".into(),
            base64::engine::general_purpose::STANDARD.encode(elf).into(),
        );
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        body.insert("program".into(), name.into());
    } else {
        body.insert("program".into(), args.program.clone().into());
    }
    body.insert("backend".into(), args.backend.clone().into());
    if let Some(abi) = args.abi {
        body.insert("abi".into(), abi.name().into());
    }
    input_fields(&args.input, &mut body)?;
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("proof_kind", args.proof_kind.clone().map(Into::into));
    put("priority", args.priority.map(Into::into));
    put("timeout_secs", args.timeout_secs.map(Into::into));
    put("memory_limit_mib", args.memory_limit_mib.map(Into::into));
    put("max_attempts", args.max_attempts.map(Into::into));
    put("max_cycles", args.max_cycles.map(Into::into));
    put("max_guest_memory_mib", args.max_guest_memory_mib.map(Into::into));
    put("idempotency_key", args.idempotency_key.clone().map(Into::into));
    if let Some(d) = args.deadline_secs {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        put(
            "deadline_ms",
            Some(Value::from(((now.as_secs_f64() + d) * 1000.0) as i64)),
        );
    }
    let resp = c.submit(&Value::Object(body)).await?;
    let id = resp["id"]
        .as_str()
        .context("the node returned no task id")?
        .to_owned();
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&resp)?);
        } else {
            println!("{id}");
        }
        return Ok(());
    }
    let task = c
        .wait(&id, Duration::from_millis(200), Duration::from_secs(365 * 86400))
        .await?;
    if task["state"] == "succeeded" {
        let proof = c.proof(&id).await?;
        let out = args
            .output
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
                task["output"].as_str().unwrap_or("(output)")
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
            task["state"].as_str().unwrap_or("?"),
            task["terminal_reason"].as_str().unwrap_or("?"),
            task["detail"].as_str().unwrap_or("")
        )
    }
}

pub async fn status(id: &str, node: &NodeFlags, as_json: bool) -> Result<()> {
    let t = client(node)?.task(id).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    println!("task      {}", s(&t["id"]));
    println!("state     {}", s(&t["state"]));
    if !t["terminal_reason"].is_null() {
        println!("reason    {}", s(&t["terminal_reason"]));
    }
    if !t["detail"].is_null() {
        println!("detail    {}", s(&t["detail"]));
    }
    println!(
        "program   {} [{}]",
        s(&t["program"]["name"]),
        s(&t["program"]["abi"])
    );
    println!("backend   {}", s(&t["backend"]));
    println!("attempts  {} of {}", t["attempts"], t["limits"]["max_attempts"]);
    if !t["output"].is_null() {
        println!("output    {}", s(&t["output"]));
    }
    if let Some(history) = t["attempt_history"].as_array().filter(|h| !h.is_empty()) {
        let mut table = Table::new();
        table
            .load_preset(presets::ASCII_MARKDOWN)
            .set_header(vec!["#", "owner", "outcome", "seconds", "detail"]);
        for a in history {
            let secs = match (a["started_ms"].as_i64(), a["ended_ms"].as_i64()) {
                (Some(s), Some(e)) => format!("{:.2}", (e - s) as f64 / 1000.0),
                _ => "running".into(),
            };
            table.add_row(vec![
                a["attempt"].to_string(),
                s(&a["owner"]),
                a["outcome"].as_str().unwrap_or("running").to_owned(),
                secs,
                a["detail"].as_str().unwrap_or("").to_owned(),
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
    for t in list["tasks"].as_array().into_iter().flatten() {
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        table.add_row(vec![
            s(&t["id"]),
            s(&t["state"]),
            s(&t["terminal_reason"]),
            format!("{} [{}]", s(&t["program"]["name"]), s(&t["program"]["abi"])),
            s(&t["backend"]),
            t["attempts"].to_string(),
            s(&t["output"]),
        ]);
    }
    println!("{table}");
    Ok(())
}
