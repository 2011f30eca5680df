//! What dead SP1 processes leave behind, and its removal.
//!
//! SP1's executor keeps each run's memory image and trace ring in POSIX
//! shared memory (`/dev/shm/sp1_<id>_m`, `sp1_<id>_t`, about 4.5 GB touched,
//! and the named semaphores `sem.sp1_<id>_t_filled` / `_empty`), shared
//! with a native runner child process (`sp1-native-runner-bin-<hash>`,
//! written to the temporary directory). The run unlinks the objects and
//! kills the runner when it is dropped. A process that dies first (killed
//! for its time or memory limit, an OOM kill, a test binary exiting with the
//! backend in a static) never drops it: the objects stay in tmpfs, and the
//! runner, now orphaned, sleeps forever holding them. Three such runners
//! held 12 GB of a 23 GiB machine before this sweep existed.
//!
//! An object is left behind when its name is SP1's, it belongs to this
//! user, and nothing but SP1 runners holds it (no `/proc/*/fd` link and no
//! `/proc/*/maps` line of any other process names it). A live run's own
//! process always holds its objects, from creating them to unlinking them,
//! so a live run is never touched. Left-behind runners are killed, then the
//! objects unlinked.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use provernode_core::Leftover;

/// The names SP1 gives its shared-memory objects (and, after `sem.`, its
/// semaphores).
pub const SHM_PREFIX: &str = "sp1_";

/// The file name SP1's native runner executes as.
pub const RUNNER_PREFIX: &str = "sp1-native-runner";

/// Removes what dead SP1 processes left behind; see the module docs.
pub fn remove_orphans() -> Vec<Leftover> {
    remove_orphans_in(Path::new("/dev/shm"), Path::new("/proc"), &|pid| {
        use nix::sys::signal::{kill, Signal};
        i32::try_from(pid)
            .ok()
            .is_some_and(|pid| kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).is_ok())
    })
}

/// [`remove_orphans`] with the shared-memory and proc directories and the
/// way to kill a process given (tests use temporary ones and a recorder).
pub fn remove_orphans_in(shm_dir: &Path, proc_dir: &Path, kill: &dyn Fn(u32) -> bool) -> Vec<Leftover> {
    let Some(uid) = std::fs::metadata(proc_dir.join("self")).ok().map(|m| m.uid()) else {
        // Without our own uid nothing can be attributed safely.
        return Vec::new();
    };
    let sem_prefix = format!("sem.{SHM_PREFIX}");
    let candidates: Vec<(PathBuf, u64)> = std::fs::read_dir(shm_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(SHM_PREFIX) || name.starts_with(&sem_prefix)
        })
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            (meta.is_file() && meta.uid() == uid).then(|| (entry.path(), meta.blocks() * 512))
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let holders = Holders::scan(proc_dir);
    let mut removed = Vec::new();
    let mut killed = HashSet::new();
    for (path, bytes) in candidates {
        let held_by = holders.of(&path);
        if !held_by.iter().all(|pid| holders.runners.contains_key(pid)) {
            continue; // a live SP1 process holds it
        }
        for pid in held_by {
            if !killed.contains(pid) && kill(*pid) {
                killed.insert(*pid);
                let exe = holders.runners.get(pid).map_or("", String::as_str);
                removed.push(Leftover {
                    what: format!("pid {pid} ({exe}), an SP1 runner whose process is gone"),
                    bytes: 0,
                });
            }
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.push(Leftover {
                what: path.display().to_string(),
                bytes,
            });
        }
    }
    removed
}

/// Who holds which path, from `/proc`, as far as this user may read it.
struct Holders {
    /// Path → pids that have it open (`fd/*`) or mapped (`maps`).
    by_path: HashMap<PathBuf, Vec<u32>>,
    /// SP1 runner processes, by pid, with their executable.
    runners: HashMap<u32, String>,
}

impl Holders {
    fn scan(proc_dir: &Path) -> Holders {
        let mut holders = Holders {
            by_path: HashMap::new(),
            runners: HashMap::new(),
        };
        let pids = std::fs::read_dir(proc_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        for pid in pids {
            let dir = proc_dir.join(pid.to_string());
            if let Ok(exe) = std::fs::read_link(dir.join("exe")) {
                if exe
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(RUNNER_PREFIX))
                {
                    holders.runners.insert(pid, exe.display().to_string());
                }
            }
            let mut held = HashSet::new();
            for fd in std::fs::read_dir(dir.join("fd")).into_iter().flatten().flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    held.insert(target);
                }
            }
            if let Ok(maps) = std::fs::read_to_string(dir.join("maps")) {
                // address perms offset dev inode path: the path is the sixth
                // field and may contain spaces.
                for line in maps.lines() {
                    if let Some(path) = line.splitn(6, char::is_whitespace).nth(5).map(str::trim_start) {
                        if path.starts_with('/') {
                            held.insert(PathBuf::from(path));
                        }
                    }
                }
            }
            for path in held {
                holders.by_path.entry(path).or_default().push(pid);
            }
        }
        holders
    }

    fn of(&self, path: &Path) -> &[u32] {
        self.by_path.get(path).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::os::unix::fs::symlink;

    struct Dirs {
        root: PathBuf,
        shm: PathBuf,
        proc: PathBuf,
    }

    impl Dirs {
        fn new(tag: &str) -> Dirs {
            let root =
                std::env::temp_dir().join(format!("provernode-sp1-leftovers-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            let shm = root.join("shm");
            let proc = root.join("proc");
            std::fs::create_dir_all(&shm).unwrap();
            // Our uid, as remove_orphans_in reads it.
            std::fs::create_dir_all(&proc).unwrap();
            symlink("/proc/self", proc.join("self")).unwrap();
            Dirs { root, shm, proc }
        }

        fn object(&self, name: &str) -> PathBuf {
            let path = self.shm.join(name);
            std::fs::write(&path, vec![7u8; 8192]).unwrap();
            path
        }

        /// A fake process: its executable, open files and mapped files.
        fn process(&self, pid: u32, exe: &str, open: &[&Path], mapped: &[&Path]) {
            let dir = self.proc.join(pid.to_string());
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            symlink(exe, dir.join("exe")).unwrap();
            for (fd, path) in open.iter().enumerate() {
                symlink(path, dir.join("fd").join(fd.to_string())).unwrap();
            }
            let maps: String = mapped
                .iter()
                .map(|p| format!("7f00-7f10 rw-s 00000000 00:1a 42          {}\n", p.display()))
                .chain(["7f20-7f30 r-xp 00000000 00:00 0 [vdso]\n".to_owned()])
                .collect();
            std::fs::write(dir.join("maps"), maps).unwrap();
        }

        fn sweep(&self) -> (Vec<Leftover>, Vec<u32>) {
            let killed = RefCell::new(Vec::new());
            let removed = remove_orphans_in(&self.shm, &self.proc, &|pid| {
                killed.borrow_mut().push(pid);
                true
            });
            (removed, killed.into_inner())
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    const RUNNER: &str = "/tmp/sp1-native-runner-bin-0123abcd";

    #[test]
    fn unheld_objects_go_and_held_or_foreign_ones_stay() {
        let d = Dirs::new("sweep");
        let orphan_t = d.object("sp1_AAAA==_t");
        let orphan_sem = d.object("sem.sp1_AAAA==_t_filled");
        let open = d.object("sp1_BBBB==_t");
        let mapped = d.object("sp1_BBBB==_m");
        let mapped_sem = d.object("sem.sp1_BBBB==_t_empty");
        let foreign = d.object("PostgreSQL.1234");
        // A live SP1 process holds B's objects, its runner too.
        d.process(100, "/usr/bin/provernode", &[&open], &[&mapped, &mapped_sem]);
        d.process(101, RUNNER, &[&open], &[&mapped]);

        let (removed, killed) = d.sweep();
        let mut removed: Vec<String> = removed.into_iter().map(|r| r.what).collect();
        removed.sort();
        assert_eq!(
            removed,
            vec![orphan_sem.display().to_string(), orphan_t.display().to_string()]
        );
        assert!(killed.is_empty(), "a live run's runner was killed: {killed:?}");
        for kept in [&open, &mapped, &mapped_sem, &foreign] {
            assert!(kept.exists(), "{} must be kept", kept.display());
        }
    }

    #[test]
    fn a_runner_whose_process_is_gone_is_killed_and_its_objects_removed() {
        let d = Dirs::new("runner");
        let t = d.object("sp1_CCCC==_t");
        let m = d.object("sp1_CCCC==_m");
        // Only the orphaned runner still holds them.
        d.process(200, RUNNER, &[&t], &[&t, &m]);
        d.process(300, "/usr/bin/bash", &[], &[]);

        let (removed, killed) = d.sweep();
        assert_eq!(killed, vec![200]);
        assert!(!t.exists() && !m.exists());
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(removed
            .iter()
            .any(|r| r.what.contains("pid 200") && r.what.contains(RUNNER)));
        assert!(removed
            .iter()
            .filter(|r| r.what.starts_with('/'))
            .all(|r| r.bytes >= 8192));
    }

    #[test]
    fn an_object_held_open_by_this_very_process_is_kept() {
        // Against the real /proc: an open file handle of ours protects it.
        let d = Dirs::new("live");
        let path = d.object("sp1_DDDD==_t");
        let never = |_: u32| -> bool { panic!("nothing may be killed here") };
        let handle = std::fs::File::open(&path).unwrap();
        assert!(remove_orphans_in(&d.shm, Path::new("/proc"), &never).is_empty());
        assert!(path.exists());
        drop(handle);
        assert_eq!(remove_orphans_in(&d.shm, Path::new("/proc"), &never).len(), 1);
        assert!(!path.exists());
    }
}
