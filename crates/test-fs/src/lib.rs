//! A small, real filesystem for tests: a tmpfs of a given size mounted on a
//! temporary directory, unmounted when dropped. The kernel fails writes past
//! its size with `ENOSPC`, exactly as a full disk does, at whatever point
//! the writer reaches it (a statement, a commit, a checkpoint), which no
//! in-process quota reproduces.
//!
//! Mounting needs root (`CAP_SYS_ADMIN`); CI runs as root. Anywhere else
//! [`SmallDisk::mount`] fails with a message saying so: a test that needs it
//! fails, never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on a new temporary directory.
    pub fn mount(bytes: u64) -> Result<SmallDisk, String> {
        let dir = tempfile::Builder::new()
            .prefix("provernode-small-disk-")
            .tempdir()
            .map_err(|e| format!("cannot create a mount point: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}; this test needs mount(8) (util-linux) and root"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a {bytes}-byte tmpfs on {} ({}): this test needs a small real filesystem, which only root can mount; run the tests as root (as .ci/run does in CI)",
                dir.path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills `bytes` of the disk with a file, to be removed later to free
    /// space again.
    pub fn fill(&self, name: &str, bytes: usize) -> std::io::Result<PathBuf> {
        let path = self.path().join(name);
        std::fs::write(&path, vec![0xa5u8; bytes])?;
        Ok(path)
    }

    /// Bytes still free, as `statvfs` reports them (`df`).
    pub fn free_bytes(&self) -> u64 {
        Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .nth(1)
                    .and_then(|l| l.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process of the test still holding a file must not keep
        // the mount (and the test's temporary directory) alive.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
