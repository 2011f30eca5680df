//! SIGTERM and SIGINT: the first asks for a drain, the next one ends it at
//! once (an operator pressing Ctrl-C twice means "now").

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::NodeError;

pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Starts watching; install this before the node starts, so a signal
    /// during start-up is not lost to the default handler.
    pub fn watch() -> Result<Signals, NodeError> {
        let watch = |kind, name: &str| {
            signal(kind).map_err(|e| NodeError::Config(format!("cannot watch {name}: {e}")))
        };
        Ok(Signals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// The name of the next signal received.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
