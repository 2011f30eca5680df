//! `provernode`: the command line. It parses arguments and wires the library
//! crates together; it holds no proving, queue or HTTP logic of its own.

mod bench;
mod cli;
mod client;
mod demo;
mod oneshot;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use cli::Command;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli);
    match dispatch(cli) {
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

fn dispatch(cli: cli::Cli) -> Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Run(args) => Ok(runtime()?.block_on(provernode_node::run(args, worker_exe()?))?),
        Command::Broker(args) => Ok(runtime()?.block_on(provernode_node::broker(args))?),
        Command::Agent(args) => Ok(runtime()?.block_on(provernode_node::agent(args, worker_exe()?))?),
        Command::Openapi => {
            print!("{}", provernode_broker::openapi_json());
            Ok(())
        }
        Command::Worker { dir, parent } => {
            if let Some(parent) = parent {
                provernode_worker::child::bind_to_parent(parent)?;
            }
            provernode_worker::child::serve(&dir, &provernode_backends::Registry::default())?;
            Ok(())
        }
        Command::Demo { backends, workers } => runtime()?.block_on(demo::run(&backends, workers)),
        Command::Submit(args) => runtime()?.block_on(client::submit(args)),
        Command::Status { id, node, json } => runtime()?.block_on(client::status(&id, &node, json)),
        Command::Proof { id, output, node } => runtime()?.block_on(client::proof(&id, output, &node)),
        Command::Cancel { id, node } => runtime()?.block_on(client::cancel(&id, &node)),
        Command::Tasks {
            state,
            limit,
            node,
            json,
        } => runtime()?.block_on(client::tasks(state.map(Into::into), limit, &node, json)),
        other => oneshot::run(cli::Cli {
            global: cli.global,
            command: other,
        }),
    }
}

fn init_logging(cli: &cli::Cli) {
    use tracing_subscriber::EnvFilter;
    // A node logs its work; one-shot commands and workers only warn.
    let default = match cli.command {
        Command::Run(_) | Command::Broker(_) | Command::Agent(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("PROVERNODE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal: log files and journald get
    // plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.global.log_format {
        cli::LogFormat::Text => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
