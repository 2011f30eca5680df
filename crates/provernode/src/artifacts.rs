//! `provernode artifacts`: the node's verified files, by hand.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use provernode_artifacts::{ArtifactStore, Finding};

use crate::cli::ArtifactsAction;

pub fn run(
    action: ArtifactsAction,
    data_dir: &Path,
    dirs: &provernode_node::artifacts::ArtifactFlags,
) -> Result<()> {
    let store = dirs
        .open(data_dir)
        .context("opening the artifact store (--data-dir, --artifacts-dir)")?;
    match action {
        ArtifactsAction::List { json } => list(&store, json),
        ArtifactsAction::Verify { json } => verify(&store, json),
        ArtifactsAction::Restore { name } => {
            let entry = store.restore(&name)?;
            println!(
                "{} restored from its backup copy ({} bytes, SHA-256 {})",
                entry.name, entry.size, entry.sha256
            );
            Ok(())
        }
        ArtifactsAction::Import {
            file,
            name,
            for_backend,
        } => {
            let entry = store.import(&file, name.as_deref(), for_backend.as_deref())?;
            println!(
                "{} imported with its backup copy ({} bytes, SHA-256 {}){}",
                entry.name,
                entry.size,
                entry.sha256,
                entry
                    .needed_by
                    .map(|b| format!("; {b} tasks are claimed only while it verifies"))
                    .unwrap_or_default()
            );
            Ok(())
        }
    }
}

fn list(store: &ArtifactStore, json: bool) -> Result<()> {
    let entries = store.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(["name", "kind", "bytes", "sha256", "producer", "needed by"]);
    for e in &entries {
        table.add_row([
            e.name.clone(),
            e.kind.clone(),
            e.size.to_string(),
            e.sha256.clone(),
            e.producer.clone(),
            e.needed_by.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}");
    eprintln!(
        "{} artifacts in {} (backup copies in {})",
        entries.len(),
        store.root().display(),
        store.backup_dir().display()
    );
    Ok(())
}

fn verify(store: &ArtifactStore, json: bool) -> Result<()> {
    let bar = if std::io::stderr().is_terminal() && !json {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = store.verify(&mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(p.name.to_owned());
    })?;
    bar.finish_and_clear();
    let secs = report.elapsed.as_secs_f64();
    let mib = report.bytes_hashed as f64 / f64::from(1 << 20);
    if json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|(e, f)| {
                let (finding, detail) = match f {
                    Finding::Good => ("good", String::new()),
                    Finding::Repaired { copy, why } => ("repaired", format!("{copy} copy: {why}")),
                    Finding::Failed { primary, backup } => {
                        ("failed", format!("primary: {primary}; backup: {backup}"))
                    }
                    Finding::Dropped { primary, backup } => (
                        "dropped",
                        format!("primary: {primary}; backup: {backup}; set up again when next needed"),
                    ),
                };
                serde_json::json!({"name": e.name, "kind": e.kind, "finding": finding, "detail": detail})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "artifacts": findings,
                "bytes_hashed": report.bytes_hashed,
                "seconds": secs,
            }))?
        );
    } else {
        if let Some((copy, why)) = &report.manifest_repaired {
            println!("manifest: the {copy} copy was bad ({why}); rewritten from the other");
        }
        for (e, f) in &report.findings {
            match f {
                Finding::Good => println!("good      {}", e.name),
                Finding::Repaired { copy, why } => {
                    println!(
                        "repaired  {} (its {copy} copy was bad: {why}; rewritten from the other)",
                        e.name
                    )
                }
                Finding::Failed { primary, backup } => println!(
                    "FAILED    {} (primary: {primary}; backup: {backup}); {}",
                    e.name,
                    provernode_artifacts::fix_for(e)
                ),
                Finding::Dropped { primary, backup } => println!(
                    "dropped   {} (primary: {primary}; backup: {backup}; cached keys, set up again when next needed)",
                    e.name
                ),
            }
        }
        println!(
            "{} artifacts, {mib:.1} MiB hashed in {secs:.2} s ({:.0} MiB/s)",
            report.findings.len(),
            if secs > 0.0 { mib / secs } else { 0.0 }
        );
    }
    let failed = report.failed().count();
    if failed > 0 {
        bail!("{failed} artifact(s) have no good copy");
    }
    Ok(())
}
