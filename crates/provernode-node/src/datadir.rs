//! One node per data directory.
//!
//! The lock is an exclusive `flock` on the data directory itself, which
//! cannot be unlinked from under a running node (a lock on a file inside it
//! was lost when someone deleted `node.lock`, and a second node then took
//! the first one's live leases for a dead run's). `node.lock` still holds
//! the pid, for the message a second node prints. Both locks die with the
//! process, however it ends.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::NodeError;

/// A data directory this process holds for as long as the value lives.
pub struct DataDir {
    path: PathBuf,
    _dir_lock: Flock<std::fs::File>,
    _pid_file: std::fs::File,
}

impl DataDir {
    /// Creates the directory if needed (mode 0700), then takes it or says
    /// which process has it.
    pub fn lock(path: &Path) -> Result<DataDir, NodeError> {
        let io = |what: &str, error: std::io::Error| NodeError::DataDir {
            path: path.to_path_buf(),
            what: what.to_owned(),
            error,
        };
        match std::fs::metadata(path) {
            Ok(m) if !m.is_dir() => {
                return Err(NodeError::Config(format!(
                    "the data directory {} is a file, not a directory: give --data-dir a directory (it is created if missing)",
                    path.display()
                )))
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(path).map_err(|e| io("cannot create it", e))?,
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("cannot restrict it to its owner", e))?;
        let dir = std::fs::File::open(path).map_err(|e| io("cannot open it", e))?;
        let pid_path = path.join("node.lock");
        let mut pid_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&pid_path)
            .map_err(|e| io("cannot open node.lock in it", e))?;
        let dir_lock = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, errno)) => {
                let mut holder = String::new();
                let _ = pid_file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(NodeError::Config(format!(
                    "another provernode {}is running with the data directory {} ({errno}); stop it, or give this one its own --data-dir",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!("(pid {holder}) ")
                    },
                    path.display()
                )));
            }
        };
        pid_file
            .set_len(0)
            .and_then(|()| pid_file.rewind())
            .and_then(|()| write!(pid_file, "{}", std::process::id()))
            .map_err(|e| io("cannot write node.lock in it", e))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _dir_lock: dir_lock,
            _pid_file: pid_file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory where this node's workers are recorded, after killing
    /// every worker a dead run of this directory left running (see
    /// `provernode_worker::reap_orphans`). Call it before any worker starts.
    pub async fn worker_records(&self) -> Result<PathBuf, NodeError> {
        let records = self.path.join("workers");
        std::fs::create_dir_all(&records).map_err(|e| NodeError::DataDir {
            path: records.clone(),
            what: "cannot create the worker records directory".into(),
            error: e,
        })?;
        let reaped = tokio::task::spawn_blocking({
            let records = records.clone();
            move || provernode_worker::reap_orphans(&records)
        })
        .await
        .unwrap_or_default();
        if !reaped.killed.is_empty() {
            tracing::warn!(killed = ?reaped.killed, dir = %self.path.display(), "killed workers a previous run of this directory left running");
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_even_after_node_lock_is_deleted() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let first = DataDir::lock(&data).unwrap();
        std::fs::remove_file(data.join("node.lock")).unwrap();
        let e = DataDir::lock(&data).err().unwrap().to_string();
        assert!(
            e.contains("another provernode") && e.contains("--data-dir"),
            "{e}"
        );
        drop(first);
        DataDir::lock(&data).unwrap();
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_named_as_such() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        let e = DataDir::lock(&file).err().unwrap().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
    }
}
