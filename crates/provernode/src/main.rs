//! `provernode`: the command line. It parses arguments and wires the library
//! crates together; it holds no proving, queue or HTTP logic of its own.

mod artifacts;
mod bench;
mod calibrate;
mod cli;
mod client;
mod demo;
mod oneshot;

use std::process::ExitCode;

use anyhow::{Context, Result};
use cli::Command;

fn main() -> ExitCode {
    use clap::FromArgMatches;
    // Flags, then PROVERNODE_* variables, then the config file, then defaults.
    let command = cli::command();
    let resolved = match provernode_node::config::resolve(&command, std::env::args_os().collect()) {
        Ok(r) => r,
        Err(provernode_node::config::ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match cli::Cli::from_arg_matches(&resolved.matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let _log_guard = match init_logging(&cli) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    match dispatch(cli, resolved.role) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// This executable, which nodes and agents start as their workers.
fn worker_exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().context("cannot find the provernode executable to start workers")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(cli: cli::Cli, role: Option<provernode_node::config::RoleConfig>) -> Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = cli::command();
            clap_complete::generate(shell, &mut cmd, "provernode", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = cli::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .context("cannot write the man page")
        }
        Command::Diagnose {
            output,
            failed_attempts,
            log_lines,
            role: role_args,
        } => runtime()?.block_on(diagnose(
            role_args,
            role.as_ref(),
            cli.global.log_file.as_deref(),
            output,
            failed_attempts,
            log_lines,
        )),
        Command::Doctor { json, role } => runtime()?.block_on(doctor(role, json)),
        Command::Config { json, .. } => print_config(
            &role.context("internal: `config` was parsed without its role's settings")?,
            json,
        ),
        Command::Bench(args) => bench::run(&args),
        Command::Calibrate(args) => runtime()?.block_on(calibrate::run(&args)),
        Command::Run(args) => Ok(runtime()?.block_on(provernode_node::run(args, worker_exe()?))?),
        Command::Broker(args) => Ok(runtime()?.block_on(provernode_node::broker(args))?),
        Command::Agent(args) => Ok(runtime()?.block_on(provernode_node::agent(args, worker_exe()?))?),
        Command::Openapi => {
            print!("{}", provernode_broker::openapi_json());
            Ok(())
        }
        Command::Worker {
            dir,
            parent,
            artifacts_dir,
            artifacts_backup_dir,
        } => {
            if let Some(parent) = parent {
                provernode_worker::child::bind_to_parent(parent)?;
            }
            let keys = match (artifacts_dir, artifacts_backup_dir) {
                (Some(primary), Some(backup)) => Some(
                    provernode_artifacts::ArtifactStore::open(
                        &primary,
                        &backup,
                        provernode_node::version_line(),
                    )
                    .context("cannot open the artifact store for keys")?,
                ),
                _ => None,
            };
            provernode_worker::child::serve(&dir, &provernode_backends::Registry::default(), keys.as_ref())?;
            Ok(())
        }
        Command::Demo { backends, workers } => runtime()?.block_on(demo::run(&backends, workers)),
        Command::Submit(args) => runtime()?.block_on(client::submit(args)),
        Command::Status { id, node, json } => runtime()?.block_on(client::status(&id, &node, json)),
        Command::Proof { id, output, node } => runtime()?.block_on(client::proof(&id, output, &node)),
        Command::Programs {
            action:
                Some(cli::ProgramsAction::Upload {
                    file,
                    name,
                    json,
                    node,
                }),
            ..
        } => runtime()?.block_on(client::programs_upload(&file, name.as_deref(), &node, json)),
        Command::Programs {
            action: Some(cli::ProgramsAction::List { json, node }),
            ..
        } => runtime()?.block_on(client::programs_list(&node, json)),
        Command::Programs {
            action: Some(cli::ProgramsAction::Delete { id, node }),
            ..
        } => runtime()?.block_on(client::programs_delete(&id, &node)),
        Command::Artifacts {
            action,
            data_dir,
            artifacts_dir,
            artifacts_backup_dir,
        } => artifacts::run(
            action,
            &data_dir,
            &provernode_node::artifacts::ArtifactFlags {
                artifacts_dir,
                artifacts_backup_dir,
            },
        ),
        Command::Ready { json, node } => runtime()?.block_on(client::ready(&node, json)),
        Command::Retry { id, node } => runtime()?.block_on(client::retry(&id, &node)),
        Command::Cancel { id, node } => runtime()?.block_on(client::cancel(&id, &node)),
        Command::Tasks {
            state,
            reason,
            backend,
            before,
            parent,
            parts,
            limit,
            node,
            json,
        } => {
            let page = provernode_client::ListPage {
                state: state.map(|s| provernode_core::TaskState::from(s).as_str().to_owned()),
                reason,
                backend,
                before,
                limit,
                parent,
                parts,
            };
            runtime()?.block_on(client::tasks(&page, &node, json))
        }
        other => oneshot::run(cli::Cli {
            global: cli.global,
            command: other,
        }),
    }
}

/// `provernode diagnose ROLE`: the support bundle.
async fn diagnose(
    role_args: cli::RoleArgs,
    config: Option<&provernode_node::config::RoleConfig>,
    log_file: Option<&std::path::Path>,
    output: Option<std::path::PathBuf>,
    failed_attempts: u32,
    log_lines: usize,
) -> Result<()> {
    use provernode_node::diagnose::{write_bundle, Request};
    use provernode_node::doctor::Role;
    let output = output.unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        std::path::PathBuf::from(format!("provernode-diagnose-{stamp}.tar.gz"))
    });
    let role = match &role_args {
        cli::RoleArgs::Run(a) => Role::Run(a),
        cli::RoleArgs::Broker(a) => Role::Broker(a),
        cli::RoleArgs::Agent(a) => Role::Agent(a),
    };
    let written = write_bundle(Request {
        role,
        config,
        log_file,
        log_lines,
        failed_attempts,
        output: &output,
    })
    .await?;
    println!(
        "support bundle written to {} ({} bytes, {} files; secrets scrubbed)",
        written.path.display(),
        written.bytes,
        written.files.len()
    );
    Ok(())
}

/// `provernode doctor ROLE`: the report, and failure if any check failed.
async fn doctor(role: cli::RoleArgs, json: bool) -> Result<()> {
    use provernode_node::doctor::{examine, Mode, Role};
    let report = match &role {
        cli::RoleArgs::Run(a) => examine(Role::Run(a), Mode::Command).await,
        cli::RoleArgs::Broker(a) => examine(Role::Broker(a), Mode::Command).await,
        cli::RoleArgs::Agent(a) => examine(Role::Agent(a), Mode::Command).await,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    match report.failed().count() {
        0 => Ok(()),
        n => anyhow::bail!("{n} check(s) failed; each FAIL line above has its fix"),
    }
}

/// `provernode config ROLE`: each setting, its value and its source.
fn print_config(role: &provernode_node::config::RoleConfig, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(role)?);
        return Ok(());
    }
    match &role.file {
        Some(f) => println!("provernode {}: config file {}", role.role, f.display()),
        None => println!(
            "provernode {}: no config file (--config, PROVERNODE_CONFIG, or {})",
            role.role,
            provernode_node::config::DEFAULT_CONFIG_PATH
        ),
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["key", "value", "source", "environment variable"]);
    for s in &role.settings {
        table.add_row([
            s.key.clone(),
            s.value.clone().unwrap_or_else(|| "(unset)".into()),
            s.source.to_string(),
            s.env.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// Logs to stderr and, with `--log-file`, to a file rotated daily. The guard
/// flushes the file's writer when dropped: keep it until the end of `main`.
fn init_logging(cli: &cli::Cli) -> Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    // A node logs its work; one-shot commands and workers only warn.
    let default = match cli.command {
        Command::Run(_) | Command::Broker(_) | Command::Agent(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("PROVERNODE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = matches!(cli.global.log_format, cli::LogFormat::Json);
    // Colours only for a person at a terminal: log files and journald get
    // plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let stderr = if json {
        stderr.json().boxed()
    } else {
        stderr.boxed()
    };
    let (file, guard) = match &cli.global.log_file {
        Some(path) => {
            let (dir, name) = log_file_parts(path)?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(name)
                .max_log_files(7)
                .build(&dir)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer);
            (
                Some(if json { layer.json().boxed() } else { layer.boxed() }),
                Some(guard),
            )
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init()
        .context("cannot start logging")?;
    Ok(guard)
}

/// A log file's directory and name prefix.
fn log_file_parts(path: &std::path::Path) -> Result<(std::path::PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--log-file {} names no file", path.display()))?
        .to_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    Ok((dir, name))
}
