//! No orphan, ever.
//!
//! A worker dies with its node: it asks the kernel for `SIGKILL` when its
//! parent dies (`PR_SET_PDEATHSIG`, set by [`crate::child::bind_to_parent`]).
//! That alone is not enough: the signal follows the parent *thread* that
//! started the worker, a worker's own children are not covered, and a node
//! may die in the instant before the worker sets it. So every live worker is
//! also recorded in the node's data directory (pid, the kernel's start time
//! of that pid, its cgroup), and a starting node, once it holds the data
//! directory, kills the process group of every recorded worker still alive
//! (the start time tells a reused pid apart) and removes its cgroup, before
//! it claims anything: a restarted node never proves a task twice at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// One live worker, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WorkerRecord {
    pub pid: u32,
    /// `/proc/PID/stat` field 22: when that pid's process started, in clock
    /// ticks since boot. A pid reused by another process has another.
    pub start_ticks: Option<u64>,
    pub cgroup: Option<PathBuf>,
}

impl WorkerRecord {
    pub(crate) fn of(pid: u32, cgroup: Option<&Path>) -> WorkerRecord {
        WorkerRecord {
            pid,
            start_ticks: start_ticks(pid),
            cgroup: cgroup.map(Path::to_path_buf),
        }
    }

    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = format!("pid={}\n", self.pid);
        if let Some(t) = self.start_ticks {
            text.push_str(&format!("start_ticks={t}\n"));
        }
        if let Some(c) = &self.cgroup {
            text.push_str(&format!("cgroup={}\n", c.display()));
        }
        std::fs::write(path, text)
    }

    fn read(path: &Path) -> Option<WorkerRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        let field = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        };
        Some(WorkerRecord {
            pid: field("pid")?.parse().ok()?,
            start_ticks: field("start_ticks").and_then(|t| t.parse().ok()),
            cgroup: field("cgroup").map(PathBuf::from),
        })
    }
}

/// The start time of `pid`, or `None` when no such process runs (a zombie
/// counts as gone).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) follow ')':
    // state is field 3, start time field 22.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// What [`reap_orphans`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Workers of a dead node that were still running, now killed.
    pub killed: Vec<u32>,
    /// Records of workers already gone.
    pub gone: usize,
}

/// Kills every worker recorded in `record_dir` that still runs (its whole
/// process group), removes their cgroups and records. Call it while holding
/// the directory's node lock, before any worker of this node starts.
pub fn reap_orphans(record_dir: &Path) -> ReapReport {
    let mut report = ReapReport::default();
    let Ok(entries) = std::fs::read_dir(record_dir) else {
        return report;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(record) = WorkerRecord::read(&path) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let alive = match (start_ticks(record.pid), record.start_ticks) {
            (Some(now), Some(then)) => now == then,
            // No start time recorded: the pid alone, if it is a worker.
            (Some(_), None) => is_worker(record.pid),
            (None, _) => false,
        };
        if alive {
            let _ = killpg(Pid::from_raw(record.pid as i32), Signal::SIGKILL);
            wait_gone(record.pid, record.start_ticks, Duration::from_secs(10));
            tracing::warn!(
                pid = record.pid,
                "killed a worker left running by a node that died"
            );
            report.killed.push(record.pid);
        } else {
            report.gone += 1;
        }
        if let Some(cgroup) = &record.cgroup {
            remove_cgroup(cgroup, Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(&path);
    }
    report
}

fn is_worker(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("provernode") && c.contains("worker")
        })
        .unwrap_or(false)
}

fn wait_gone(pid: u32, ticks: Option<u64>, within: Duration) {
    let started = Instant::now();
    while start_ticks(pid).is_some_and(|t| ticks.is_none_or(|then| t == then)) && started.elapsed() < within {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cgroup can be removed once its last process has gone, which the kernel
/// notes a moment after the kill.
fn remove_cgroup(dir: &Path, within: Duration) {
    let started = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if started.elapsed() >= within => {
                tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove a dead worker's cgroup");
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn a_recorded_worker_still_running_is_killed_and_a_reused_pid_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut orphan = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .expect("sleep");
        WorkerRecord::of(orphan.id(), None)
            .write(&dir.path().join("provernode-1-w0-1"))
            .expect("record");
        // The same pid recorded with another start time: a reused pid.
        let mut bystander = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .expect("sleep");
        WorkerRecord {
            pid: bystander.id(),
            start_ticks: start_ticks(bystander.id()).map(|t| t + 1),
            cgroup: None,
        }
        .write(&dir.path().join("provernode-1-w1-1"))
        .expect("record");

        let report = reap_orphans(dir.path());

        assert_eq!(report.killed, vec![orphan.id()]);
        assert_eq!(report.gone, 1);
        let status = orphan.wait().expect("wait");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        assert!(
            bystander.try_wait().expect("try_wait").is_none(),
            "a reused pid was killed"
        );
        let _ = bystander.kill();
        let _ = bystander.wait();
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
