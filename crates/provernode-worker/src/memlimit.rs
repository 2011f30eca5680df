//! Memory limits enforced from outside the worker.
//!
//! Preference order: a cgroup v2 leaf with `memory.max` (pure v2 hosts), a
//! cgroup v1 memory group below our own (hybrid hosts such as this project's
//! CI machines), and otherwise a watchdog that samples the worker's resident
//! memory and kills its process group past the limit. `RLIMIT_AS` is not
//! used: provers reserve large address ranges they never touch.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimiterKind {
    /// cgroup v2: leaves are created under `parent`.
    CgroupV2 { parent: PathBuf },
    /// cgroup v1 memory controller: groups are created under `parent`.
    CgroupV1 { parent: PathBuf },
    /// No cgroup could be created: resident memory is sampled instead.
    Watchdog { why: String },
}

impl LimiterKind {
    pub fn describe(&self) -> String {
        match self {
            LimiterKind::CgroupV2 { parent } => format!("cgroup v2 memory.max under {}", parent.display()),
            LimiterKind::CgroupV1 { parent } => {
                format!("cgroup v1 memory.limit_in_bytes under {}", parent.display())
            }
            LimiterKind::Watchdog { why } => format!("resident-memory watchdog ({why})"),
        }
    }
}

fn own_cgroup(controller: Option<&str>) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            None => ctrls.is_empty(),
            Some(c) => ctrls.split(',').any(|x| x == c),
        };
        matches.then(|| path.to_owned())
    })
}

/// Can we create a group under `parent` that has `limit_file`?
fn probe(parent: &Path, limit_file: &str) -> Result<(), String> {
    let dir = parent.join(format!("provernode-probe-{}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ok = dir.join(limit_file).exists();
    let _ = fs::remove_dir(&dir);
    if ok {
        Ok(())
    } else {
        Err(format!("{} has no {limit_file}", parent.display()))
    }
}

/// Picks the best memory limiter this host allows.
pub fn detect_limiter() -> LimiterKind {
    // Operators (and tests) can insist on the watchdog, e.g. where cgroups
    // are managed by someone else.
    if std::env::var("PROVERNODE_MEMORY_LIMITER").as_deref() == Ok("watchdog") {
        return LimiterKind::Watchdog {
            why: "chosen by PROVERNODE_MEMORY_LIMITER=watchdog".into(),
        };
    }
    let mut reasons = Vec::new();
    // Pure cgroup v2: the unified hierarchy is mounted at /sys/fs/cgroup.
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        if let Some(own) = own_cgroup(None) {
            // Leaves go beside our own group's processes only if the memory
            // controller is enabled for its children; try our own group, then
            // the root (which may hold processes and children at once).
            for parent in [format!("/sys/fs/cgroup{own}"), "/sys/fs/cgroup".to_owned()] {
                let parent = PathBuf::from(parent.trim_end_matches('/'));
                let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory");
                match probe(&parent, "memory.max") {
                    Ok(()) => return LimiterKind::CgroupV2 { parent },
                    Err(e) => reasons.push(e),
                }
            }
        }
    }
    if let Some(own) = own_cgroup(Some("memory")) {
        let parent = PathBuf::from(format!("/sys/fs/cgroup/memory{}", own.trim_end_matches('/')));
        match probe(&parent, "memory.limit_in_bytes") {
            Ok(()) => return LimiterKind::CgroupV1 { parent },
            Err(e) => reasons.push(e),
        }
    } else {
        reasons.push("no cgroup v1 memory controller".into());
    }
    LimiterKind::Watchdog {
        why: if reasons.is_empty() {
            "no cgroup hierarchy found".into()
        } else {
            reasons.join("; ")
        },
    }
}

/// One worker's memory cage: a cgroup it runs in, or nothing (watchdog).
pub struct Cage {
    dir: Option<PathBuf>,
    v1: bool,
    pub limit_bytes: u64,
}

impl Cage {
    /// Creates the cage for one worker; the watchdog kind creates nothing.
    pub fn create(kind: &LimiterKind, name: &str, limit_bytes: u64) -> std::io::Result<Cage> {
        let (parent, v1) = match kind {
            LimiterKind::CgroupV2 { parent } => (parent, false),
            LimiterKind::CgroupV1 { parent } => (parent, true),
            LimiterKind::Watchdog { .. } => {
                return Ok(Cage {
                    dir: None,
                    v1: false,
                    limit_bytes,
                })
            }
        };
        let dir = parent.join(name);
        fs::create_dir(&dir)?;
        let cage = Cage {
            dir: Some(dir.clone()),
            v1,
            limit_bytes,
        };
        if v1 {
            fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string())?;
            // Keep swap from extending the limit where the kernel accounts it.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                let _ = fs::write(memsw, limit_bytes.to_string());
            }
        } else {
            fs::write(dir.join("memory.max"), limit_bytes.to_string())?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                let _ = fs::write(swap, "0");
            }
        }
        Ok(cage)
    }

    pub fn is_cgroup(&self) -> bool {
        self.dir.is_some()
    }

    /// The cgroup directory, if the cage is one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        match &self.dir {
            Some(dir) => fs::write(dir.join("cgroup.procs"), pid.to_string()),
            None => Ok(()),
        }
    }

    /// How many processes the kernel killed in this cage for memory.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        let (file, key) = if self.v1 {
            ("memory.oom_control", "oom_kill")
        } else {
            ("memory.events", "oom_kill")
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
                })
            })
            .unwrap_or(0)
    }
}

impl Drop for Cage {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            // Fails while a process is still inside; the next start-up's
            // cleanup removes such leftovers.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Removes cages left behind by node processes that no longer exist. Cage
/// names are `provernode-<node pid>-...`; another live node's cages are
/// never touched.
pub fn remove_stale_cages(kind: &LimiterKind) {
    let parent = match kind {
        LimiterKind::CgroupV1 { parent } | LimiterKind::CgroupV2 { parent } => parent,
        LimiterKind::Watchdog { .. } => return,
    };
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("provernode-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// Memory the workers of this process use now: the sum of their cages'
/// usage (cgroups: resident and page cache charged to them), or, under the
/// watchdog, the resident memory of every descendant process.
pub fn workers_memory_used(kind: &LimiterKind) -> u64 {
    let own = std::process::id();
    match kind {
        LimiterKind::CgroupV1 { parent } | LimiterKind::CgroupV2 { parent } => {
            let file = if matches!(kind, LimiterKind::CgroupV1 { .. }) {
                "memory.usage_in_bytes"
            } else {
                "memory.current"
            };
            let prefix = format!("provernode-{own}-");
            let Ok(entries) = fs::read_dir(parent) else {
                return 0;
            };
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| fs::read_to_string(e.path().join(file)).ok())
                .filter_map(|t| t.trim().parse::<u64>().ok())
                .sum()
        }
        LimiterKind::Watchdog { .. } => descendants(own).into_iter().filter_map(resident_bytes).sum(),
    }
}

/// Every process below `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The parent is the second field after the parenthesised name.
            let after = stat.rsplit_once(')')?.1;
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Resident memory of a process, from /proc/PID/status.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    #[test]
    fn a_child_process_is_a_descendant_and_its_memory_counts_under_the_watchdog() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert!(descendants(std::process::id()).contains(&child.id()));
        let used = workers_memory_used(&LimiterKind::Watchdog { why: "test".into() });
        assert!(used > 0);
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_resident_memory() {
        let rss = resident_bytes(std::process::id()).unwrap();
        assert!(rss > 1 << 20, "{rss}");
    }

    #[test]
    fn detection_always_picks_something_and_says_which() {
        let kind = detect_limiter();
        assert!(!kind.describe().is_empty());
    }
}
