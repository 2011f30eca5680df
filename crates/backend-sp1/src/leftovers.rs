//! SP1's shared memory that dead processes left behind.
//!
//! SP1's executor keeps each run's memory image and trace ring in POSIX
//! shared memory (`/dev/shm/sp1_<id>_m`, `sp1_<id>_t`, about 4.5 GB touched,
//! and the named semaphores `sem.sp1_<id>_t_filled` / `_empty`) and unlinks
//! them when the run is dropped. A process that dies first (killed for its
//! time or memory limit, an OOM kill, a test binary exiting while an
//! executor thread is stuck) leaves them there, and tmpfs keeps their
//! memory until someone unlinks them: four such leftovers held 17 GB of a
//! 23 GiB machine before this sweep existed.
//!
//! An entry is an orphan when its name is SP1's, it belongs to this user,
//! and no process has it open or mapped (no `/proc/*/fd` link and no
//! `/proc/*/maps` line names it). A live SP1 run always holds its objects
//! one way or the other, from `shm_open` to unlink, so it is never touched.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use provernode_core::Leftover;

/// The names SP1 gives its shared-memory objects (and, after `sem.`, its
/// semaphores).
pub const SHM_PREFIX: &str = "sp1_";

/// Removes orphaned SP1 objects from `/dev/shm`; see the module docs.
pub fn remove_orphans() -> Vec<Leftover> {
    remove_orphans_in(Path::new("/dev/shm"), Path::new("/proc"))
}

/// [`remove_orphans`] with the shared-memory and proc directories given
/// (tests use temporary ones).
pub fn remove_orphans_in(shm_dir: &Path, proc_dir: &Path) -> Vec<Leftover> {
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
    let in_use = paths_in_use(proc_dir);
    candidates
        .into_iter()
        .filter(|(path, _)| !in_use.contains(path))
        .filter(|(path, _)| std::fs::remove_file(path).is_ok())
        .map(|(path, bytes)| Leftover { path, bytes })
        .collect()
}

/// Every path some process has open (`fd/*`) or mapped (`maps`), as far as
/// this user may read them.
fn paths_in_use(proc_dir: &Path) -> HashSet<PathBuf> {
    let mut in_use = HashSet::new();
    let pids = std::fs::read_dir(proc_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        });
    for pid in pids {
        let dir = pid.path();
        for fd in std::fs::read_dir(dir.join("fd")).into_iter().flatten().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                in_use.insert(target);
            }
        }
        if let Ok(maps) = std::fs::read_to_string(dir.join("maps")) {
            // address perms offset dev inode path: the path is the sixth
            // field and may contain spaces.
            for line in maps.lines() {
                if let Some(path) = line.splitn(6, char::is_whitespace).nth(5).map(str::trim_start) {
                    if path.starts_with('/') {
                        in_use.insert(PathBuf::from(path));
                    }
                }
            }
        }
    }
    in_use
}

#[cfg(test)]
mod tests {
    use super::*;
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
            std::fs::create_dir_all(proc.join("100/fd")).unwrap();
            std::fs::create_dir_all(proc.join("200/fd")).unwrap();
            // Our uid, as remove_orphans_in reads it.
            symlink("/proc/self", proc.join("self")).unwrap();
            Dirs { root, shm, proc }
        }

        fn object(&self, name: &str) -> PathBuf {
            let path = self.shm.join(name);
            std::fs::write(&path, vec![7u8; 8192]).unwrap();
            path
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn unreferenced_sp1_objects_are_removed_and_others_kept() {
        let d = Dirs::new("sweep");
        let orphan_t = d.object("sp1_AAAA==_t");
        let orphan_sem = d.object("sem.sp1_AAAA==_t_filled");
        let open = d.object("sp1_BBBB==_t");
        let mapped = d.object("sp1_BBBB==_m");
        let mapped_sem = d.object("sem.sp1_BBBB==_t_empty");
        let foreign = d.object("PostgreSQL.1234");
        symlink(&open, d.proc.join("100/fd/7")).unwrap();
        std::fs::write(
            d.proc.join("200/maps"),
            format!(
                "7f00-7f10 rw-s 00000000 00:1a 42  {}\n7f10-7f20 rw-s 00000000 00:1a 43 {}\n7f20-7f30 r-xp 00000000 00:00 0 [vdso]\n",
                mapped.display(),
                mapped_sem.display()
            ),
        )
        .unwrap();

        let mut removed: Vec<PathBuf> = remove_orphans_in(&d.shm, &d.proc)
            .into_iter()
            .map(|r| r.path)
            .collect();
        removed.sort();
        assert_eq!(removed, vec![orphan_sem.clone(), orphan_t.clone()]);
        assert!(!orphan_t.exists() && !orphan_sem.exists());
        for kept in [&open, &mapped, &mapped_sem, &foreign] {
            assert!(kept.exists(), "{} must be kept", kept.display());
        }
    }

    #[test]
    fn removed_objects_report_the_memory_they_held() {
        let d = Dirs::new("bytes");
        d.object("sp1_CCCC==_t");
        let removed = remove_orphans_in(&d.shm, &d.proc);
        assert_eq!(removed.len(), 1);
        assert!(removed[0].bytes >= 8192, "{removed:?}");
    }

    #[test]
    fn an_object_held_open_by_this_very_process_is_kept() {
        // Against the real /proc: an open file handle of ours protects it.
        let d = Dirs::new("live");
        let path = d.object("sp1_DDDD==_t");
        let handle = std::fs::File::open(&path).unwrap();
        assert!(remove_orphans_in(&d.shm, Path::new("/proc")).is_empty());
        assert!(path.exists());
        drop(handle);
        assert_eq!(remove_orphans_in(&d.shm, Path::new("/proc")).len(), 1);
        assert!(!path.exists());
    }
}
