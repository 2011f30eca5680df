//! Preflight checks of a role's machine and settings: `provernode doctor`,
//! and the same checks when a role starts (a failed check refuses the start
//! with the same message).
//!
//! Each check says what it found and, unless it passed, the exact fix. A
//! check fails only where the role cannot work at all; anything that only
//! limits it (a backend missing, a memory floor above this machine) warns.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provernode_backends::Registry;
use provernode_worker::{detect_limiter, LimiterKind};

use crate::settings::{AgentArgs, BrokerArgs, RunNode};
use crate::wiring::total_memory_bytes;

/// What SP1's executor touches in `/dev/shm` per prover process (its memory
/// image and trace ring), measured: see `provernode-backend-sp1`'s leftovers.
const SP1_SHM_BYTES: u64 = 4_500_000_000;
/// What a worker's private exchange directory needs without SP1: one input
/// and one proof at a time.
const WORKER_SHM_BYTES: u64 = 64 << 20;
/// Free disk below which the queue may hit ENOSPC within minutes.
const DISK_LOW_BYTES: u64 = 1 << 30;
const DISK_WARN_BYTES: u64 = 10 << 30;
/// Open files a node needs with its default connection cap.
const OPEN_FILES_WANTED: u64 = 4096;
/// Clock skew against the broker or database past which leases and
/// timestamps across machines stop agreeing.
const SKEW_WARN: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub found: String,
    /// The exact fix; `None` when the check passed.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, found: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Pass,
            found: found.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Warn,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Fail,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub role: &'static str,
    pub checks: Vec<Check>,
    pub took_ms: u64,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.level == Level::Fail)
    }

    /// One line per check, then its fix indented below.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.level {
                Level::Pass => "pass",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            out.push_str(&format!("{tag}  {:<17} {}\n", c.name, c.found));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:<17} fix: {fix}\n", ""));
            }
        }
        let (w, f) = (
            self.checks.iter().filter(|c| c.level == Level::Warn).count(),
            self.failed().count(),
        );
        out.push_str(&format!(
            "{} checks of `provernode {}`: {} passed, {w} warned, {f} failed ({} ms)\n",
            self.checks.len(),
            self.role,
            self.checks.len() - w - f,
            self.took_ms
        ));
        out
    }

    /// The start-up refusal: every failed check with its fix.
    pub fn refusal(&self) -> Option<String> {
        let failed: Vec<String> = self
            .failed()
            .map(|c| format!("{}: {}; fix: {}", c.name, c.found, c.fix.as_deref().unwrap_or("")))
            .collect();
        (!failed.is_empty()).then(|| {
            format!(
                "refusing to start: {} preflight check(s) failed (`provernode doctor {}` shows them all):\n  {}",
                failed.len(),
                self.role,
                failed.join("\n  ")
            )
        })
    }
}

/// The role whose machine and settings are checked.
pub enum Role<'a> {
    Run(&'a RunNode),
    Broker(&'a BrokerArgs),
    Agent(&'a AgentArgs),
}

/// `Command`: `provernode doctor`, every check. `Startup`: a role starting;
/// what it is about to do itself (bind its port, reach its broker, which it
/// retries) is not checked twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Command,
    Startup,
}

/// A role's start: the checks, each warning logged, and a refusal (every
/// failed check with its fix) if any failed.
pub async fn preflight(role: Role<'_>) -> Result<(), crate::NodeError> {
    let report = examine(role, Mode::Startup).await;
    for c in report.checks.iter().filter(|c| c.level == Level::Warn) {
        tracing::warn!(
            check = c.name,
            fix = c.fix.as_deref().unwrap_or(""),
            "{}",
            c.found
        );
    }
    tracing::info!(
        took_ms = report.took_ms,
        checks = report.checks.len(),
        "preflight checks done"
    );
    match report.refusal() {
        Some(refusal) => Err(crate::NodeError::Config(refusal)),
        None => Ok(()),
    }
}

pub async fn examine(role: Role<'_>, mode: Mode) -> Report {
    let started = std::time::Instant::now();
    let registry = Registry::default();
    let mut checks = Vec::new();
    let name = match &role {
        Role::Run(_) => "run",
        Role::Broker(_) => "broker",
        Role::Agent(_) => "agent",
    };
    checks.push(backends(&registry));
    checks.push(clock_after_build());
    checks.push(open_files());
    match &role {
        Role::Run(a) => {
            checks.push(memory_limits(&detect_limiter()));
            checks.push(shm(Path::new("/dev/shm"), &registry, a.slots.workers));
            checks.push(memory_floors(&registry, total_memory_bytes()));
            checks.push(worker_settings(&registry, &a.slots));
            checks.push(worker_slots(&a.slots, a.tasks.default_memory_limit_mib));
            checks.extend(directory("data directory", &a.data_dir));
            checks.push(artifacts(&a.artifacts, &a.data_dir));
            checks.push(token_for(a.listen, a.token.is_some(), "--token"));
            if mode == Mode::Command {
                checks.push(port(a.listen));
            }
        }
        Role::Agent(a) => {
            checks.push(memory_limits(&detect_limiter()));
            checks.push(shm(Path::new("/dev/shm"), &registry, a.slots.workers));
            checks.push(memory_floors(&registry, total_memory_bytes()));
            checks.push(worker_settings(&registry, &a.slots));
            checks.extend(directory("scratch directory", &a.scratch_dir));
            checks.push(artifacts(&a.artifacts, &a.scratch_dir));
            checks.extend(broker(&a.broker, &a.token, mode).await);
        }
        Role::Broker(a) => {
            checks.push(token_for(a.listen, !a.client_tokens.is_empty(), "--client-token"));
            if a.agent_tokens.is_empty() {
                checks.push(Check::fail(
                    "agent token",
                    "no --agent-token: agents cannot authenticate",
                    "pass --agent-token (or PROVERNODE_AGENT_TOKENS, or `agent-token = [\"...\"]` in the config file); make one with `openssl rand -hex 32`",
                ));
            }
            if mode == Mode::Command {
                checks.push(port(a.listen));
                checks.extend(postgres(&a.database_url).await);
            }
        }
    }
    Report {
        role: name,
        checks,
        took_ms: started.elapsed().as_millis() as u64,
    }
}

/// The artifact manifest is readable and every artifact has a copy of the
/// right size (a warning otherwise, never a failure). Cheap (no hashing): the node hashes every copy itself at
/// start, and `provernode artifacts verify` does on demand.
fn artifacts(flags: &crate::artifacts::ArtifactFlags, base: &Path) -> Check {
    let (primary, backup) = flags.dirs(base);
    let entries = match provernode_artifacts::ArtifactStore::open(&primary, &backup, "doctor").and_then(|s| s.list()) {
        Ok(e) if e.is_empty() => return Check::pass("artifacts", format!("none yet ({})", primary.display())),
        Ok(e) => e,
        Err(e) => {
            return Check::warn(
                "artifacts",
                e.to_string(),
                "restore the artifact directories from a backup, or move them aside and import the files again (`provernode artifacts import`)",
            )
        }
    };
    let size_ok = |dir: &Path, e: &provernode_artifacts::Entry| {
        std::fs::metadata(dir.join("files").join(&e.name)).is_ok_and(|m| m.len() == e.size)
    };
    let lost: Vec<&str> = entries
        .iter()
        .filter(|e| !size_ok(&primary, e) && !size_ok(&backup, e))
        .map(|e| e.name.as_str())
        .collect();
    if lost.is_empty() {
        Check::pass(
            "artifacts",
            format!(
                "{} in the manifest, each with a copy of its size (hashed at start)",
                entries.len()
            ),
        )
    } else {
        // A warning: the node starts, stays not ready and claims no task
        // of a backend that needs the file, and heals once it is imported.
        Check::warn(
            "artifacts",
            format!("no copy of the right size: {}", lost.join(", ")),
            "import a good copy (`provernode artifacts import FILE --name NAME`), or upload the program again; `provernode artifacts verify` says more",
        )
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn backends(registry: &Registry) -> Check {
    let built = provernode_backends::built_in();
    let mut available = Vec::new();
    let mut missing = Vec::new();
    for b in registry.all().iter().filter(|b| built.contains(&b.name())) {
        match b.available() {
            Ok(()) => available.push(b.name()),
            Err(e) => missing.push(format!("{}: {}", b.name(), e.reason)),
        }
    }
    let absent: Vec<&str> = registry
        .names()
        .into_iter()
        .filter(|n| !built.contains(n))
        .collect();
    let found = format!(
        "available: {}{}{}",
        available.join(", "),
        if missing.is_empty() {
            String::new()
        } else {
            format!("; built in but unavailable here: {}", missing.join("; "))
        },
        if absent.is_empty() {
            String::new()
        } else {
            format!("; not built in: {} (cargo features)", absent.join(", "))
        }
    );
    if !missing.is_empty() {
        return Check::warn(
            "backends",
            found,
            "see `provernode backends` for each reason; tasks for an unavailable backend are not claimed here",
        );
    }
    Check::pass("backends", found)
}

fn memory_limits(limiter: &LimiterKind) -> Check {
    match limiter {
        LimiterKind::Watchdog { why: reason } => Check::warn(
            "memory limits",
            format!("no usable memory cgroup ({reason}): worker memory is sampled, so an attempt may overshoot its limit between samples and the kernel's OOM killer may pick another process"),
            "run under systemd with `Delegate=yes` (deploy/systemd/), or give the container a writable cgroup (docker run --cgroupns=private with cgroup v2); see docs/operations.md",
        ),
        kind => Check::pass("memory limits", kind.describe()),
    }
}

fn shm(dir: &Path, registry: &Registry, workers: usize) -> Check {
    let sp1 = registry.available().any(|b| b.name() == "sp1");
    let per_worker = if sp1 { SP1_SHM_BYTES } else { WORKER_SHM_BYTES };
    let need = per_worker.saturating_mul(workers.max(1) as u64);
    let stat = match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s,
        Err(e) => {
            return Check::warn(
                "/dev/shm",
                format!(
                    "cannot read {}: {e}; workers exchange files through the data directory instead",
                    dir.display()
                ),
                "mount a tmpfs at /dev/shm (docker: --shm-size)",
            )
        }
    };
    let size = stat.blocks() * stat.fragment_size();
    let free = stat.blocks_available() * stat.fragment_size();
    let found = format!(
        "{} free of {} (need about {} for {workers} worker(s){})",
        gib(free),
        gib(size),
        gib(need),
        if sp1 {
            ", SP1's executor uses about 4.5 GB each"
        } else {
            ""
        }
    );
    let fix = format!(
        "make /dev/shm larger: `mount -o remount,size={}G /dev/shm`, or docker `--shm-size={}g`",
        need.div_ceil(1 << 30) + 1,
        need.div_ceil(1 << 30) + 1
    );
    if sp1 && size < SP1_SHM_BYTES {
        return Check::fail("/dev/shm", found, fix);
    }
    if free < need {
        return Check::warn("/dev/shm", found, fix);
    }
    Check::pass("/dev/shm", found)
}

/// What the node adds to its workers' environment for their backends on
/// attempts of this size (informational: the log says it at start too).
fn worker_settings(registry: &Registry, slots: &crate::settings::SlotFlags) -> Check {
    let attempt = crate::wiring::attempt_memory_bytes(slots);
    let size = attempt.map_or_else(|| "unknown memory".to_owned(), gib);
    let given =
        crate::wiring::backend_worker_settings(registry, &provernode_worker::worker_environment(), attempt);
    if given.is_empty() {
        return Check::pass(
            "worker settings",
            format!("backends keep their own settings (attempts of {size})"),
        );
    }
    let listed: Vec<String> = given
        .iter()
        .map(|(backend, settings)| format!("{backend}: {}", crate::wiring::listed(settings)))
        .collect();
    Check::pass(
        "worker settings",
        format!(
            "attempts of {size}, so workers get {}; export any of them to choose yourself",
            listed.join("; ")
        ),
    )
}

/// Whether every slot can prove a task of the default size at once. A slot
/// whose attempt does not fit the memory budget beside the others' waits
/// for room, so `--workers 2` with a default limit over half the budget
/// proves one task at a time, and nothing else says so.
fn worker_slots(slots: &crate::settings::SlotFlags, default_memory_limit_mib: u64) -> Check {
    let workers = slots.workers.max(1);
    let Some(budget) = crate::wiring::memory_budget_bytes(slots) else {
        return Check::pass(
            "worker slots",
            format!("{workers} slots, no memory budget (this machine's memory cannot be read): nothing holds a slot back"),
        );
    };
    let attempt = default_memory_limit_mib.saturating_mul(1 << 20).max(1);
    let fit = usize::try_from(budget / attempt).unwrap_or(usize::MAX);
    let found = format!(
        "--workers {workers}, attempts of the default {} (--default-memory-limit-mib {default_memory_limit_mib}), memory budget {} ({})",
        gib(attempt),
        gib(budget),
        if slots.memory_budget_mib.is_some() { "--memory-budget-mib" } else { "90% of this machine's memory" },
    );
    let fix = format!(
        "lower --default-memory-limit-mib to {} or less (tasks may still ask for more with memory_limit_mib), lower --workers, or raise --memory-budget-mib on a machine with more memory",
        (budget / workers as u64) >> 20
    );
    match fit {
        0 => Check::warn(
            "worker slots",
            format!("{found}: a task that gives no memory limit is refused, its default is over the budget"),
            fix,
        ),
        fit if fit < workers => Check::warn(
            "worker slots",
            format!("{found}: only {fit} of the {workers} slots can prove such an attempt at once, the others wait for room"),
            fix,
        ),
        _ => Check::pass("worker slots", format!("{found}: all slots fit at once")),
    }
}

fn memory_floors(registry: &Registry, total: Option<u64>) -> Check {
    let Some(total) = total else {
        return Check::warn(
            "memory",
            "cannot read /proc/meminfo",
            "run on Linux with /proc mounted",
        );
    };
    let mut short = Vec::new();
    for b in registry.available() {
        for kind in b.proof_kinds() {
            let floor = b.min_memory_bytes(Some(kind));
            if floor > total {
                short.push(format!("{} {kind} needs {}", b.name(), gib(floor)));
            }
        }
    }
    if short.is_empty() {
        return Check::pass(
            "memory",
            format!("{} total: every available backend's proof kinds fit", gib(total)),
        );
    }
    Check::warn(
        "memory",
        format!("{} total, less than: {}", gib(total), short.join("; ")),
        "tasks of those kinds are refused here; run them on a machine with more memory (docs/backends.md lists each floor)",
    )
}

/// The directory a role writes, or its nearest existing ancestor: free
/// space, whether this user can write it, and its filesystem.
fn directory(name: &'static str, path: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let existing: PathBuf = path
        .ancestors()
        .find(|p| p.as_os_str().is_empty() || p.exists())
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_owned()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    if existing.is_file() {
        checks.push(Check::fail(
            name,
            format!("{} is a file, not a directory", existing.display()),
            format!(
                "point the flag at a directory, or move {} away",
                existing.display()
            ),
        ));
        return checks;
    }
    let probe = existing.join(format!(".provernode-doctor-{}", std::process::id()));
    let writable = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&existing)
            .map(|m| (m.uid(), m.mode() & 0o7777))
            .ok()
    };
    let described = match owner {
        Some((uid, mode)) => format!("{} (owner uid {uid}, mode {mode:o})", existing.display()),
        None => existing.display().to_string(),
    };
    checks.push(match writable {
        Ok(()) if existing == path => Check::pass(name, format!("{described} is writable")),
        Ok(()) => Check::pass(name, format!("{} will be created in {described}", path.display())),
        Err(e) => Check::fail(
            name,
            format!(
                "{described} is not writable by uid {}: {e}",
                nix::unistd::getuid()
            ),
            format!(
                "`chown -R {}: {}` (the user provernode runs as), or choose another directory",
                nix::unistd::getuid(),
                existing.display()
            ),
        ),
    });
    match nix::sys::statvfs::statvfs(&existing) {
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let found = format!("{} free on {}", gib(free), existing.display());
            // A warning only, even when nearly full: the queue refuses
            // writes with 507 and takes them again once space is freed,
            // losing nothing, so a full disk is no reason to stay down.
            checks.push(if free < DISK_LOW_BYTES {
                Check::warn("free disk", format!("{found}: new tasks will be refused (HTTP 507) until space is freed"), "free disk space on that filesystem (old logs, `provernode diagnose` bundles), or move the directory")
            } else if free < DISK_WARN_BYTES {
                Check::warn("free disk", found, "free disk space or move the directory to a larger filesystem before the queue fills it")
            } else {
                Check::pass("free disk", found)
            });
        }
        Err(e) => checks.push(Check::warn(
            "free disk",
            format!("cannot read free space of {}: {e}", existing.display()),
            "check that the directory is on a mounted filesystem",
        )),
    }
    checks.push(filesystem(&existing));
    checks
}

fn filesystem(path: &Path) -> Check {
    use nix::sys::statfs::{statfs, NFS_SUPER_MAGIC, TMPFS_MAGIC};
    match statfs(path) {
        Ok(s) if s.filesystem_type() == TMPFS_MAGIC => Check::warn(
            "filesystem",
            format!("{} is on tmpfs: the queue is lost at reboot", path.display()),
            "put the data directory on a disk-backed filesystem (ext4, xfs)",
        ),
        Ok(s) if s.filesystem_type() == NFS_SUPER_MAGIC => Check::fail(
            "filesystem",
            format!("{} is on NFS, where SQLite's locks are not reliable", path.display()),
            "put the data directory on a local filesystem; share a queue between machines with PostgreSQL (`provernode broker`)",
        ),
        Ok(s) => Check::pass(
            "filesystem",
            format!("{} is on a local filesystem (type {:#x})", path.display(), s.filesystem_type().0),
        ),
        Err(e) => Check::warn(
            "filesystem",
            format!("cannot read the filesystem of {}: {e}", path.display()),
            "check the mount",
        ),
    }
}

fn port(addr: SocketAddr) -> Check {
    if addr.port() == 0 {
        return Check::pass("listen port", format!("{addr}: any free port"));
    }
    match TcpListener::bind(addr) {
        Ok(_) => Check::pass("listen port", format!("{addr} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Check::fail(
            "listen port",
            format!("{addr} is in use"),
            format!("find the process with `ss -ltnp 'sport = :{}'` and stop it, or pass another --listen", addr.port()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::fail(
            "listen port",
            format!("{addr}: permission denied"),
            "ports below 1024 need CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE); or listen on a port above 1023",
        ),
        Err(e) => Check::fail(
            "listen port",
            format!("cannot listen on {addr}: {e}"),
            "listen on an address of this machine (`ip -brief addr`), or 127.0.0.1",
        ),
    }
}

fn token_for(addr: SocketAddr, has_token: bool, flag: &str) -> Check {
    match (addr.ip().is_loopback(), has_token) {
        (true, _) => Check::pass("token", format!("{addr} is loopback only")),
        (false, true) => Check::pass(
            "token",
            format!("{addr} is reachable from the network and a {flag} is set"),
        ),
        (false, false) => Check::fail(
            "token",
            format!(
                "{addr} is reachable from the network and no {flag} is set: anyone could submit and cancel"
            ),
            format!("set {flag} (make one with `openssl rand -hex 32`), or listen on 127.0.0.1"),
        ),
    }
}

fn open_files() -> Check {
    use nix::sys::resource::{getrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        // The node raises its soft limit to the hard one itself.
        Ok((_, hard)) if hard >= OPEN_FILES_WANTED => {
            Check::pass("open files", format!("hard limit {hard}"))
        }
        Ok((soft, hard)) => Check::warn(
            "open files",
            format!("soft {soft}, hard {hard}: the HTTP server caps its connections below this"),
            format!("raise it: systemd `LimitNOFILE=65536`, docker `--ulimit nofile=65536`, or `ulimit -n {OPEN_FILES_WANTED}`"),
        ),
        Err(e) => Check::warn("open files", format!("cannot read the limit: {e}"), "check the process limits"),
    }
}

/// Seconds since the epoch at which this binary was built (`build.rs`).
fn built_at() -> Option<u64> {
    option_env!("PROVERNODE_BUILT_AT").and_then(|s| s.parse().ok())
}

fn clock_after_build() -> Check {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match built_at() {
        Some(built) if now + 86_400 < built => Check::fail(
            "clock",
            format!("the clock says {now} s since 1970, before this binary was built ({built})"),
            "set the clock: enable NTP (`timedatectl set-ntp true`, chrony or systemd-timesyncd)",
        ),
        _ => Check::pass("clock", "not before this binary's build time"),
    }
}

fn skew_check(name: &'static str, theirs_ms: i64, what: &str) -> Check {
    let ours = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let skew = Duration::from_millis((ours - theirs_ms).unsigned_abs());
    let found = format!("{:.1} s apart from {what}", skew.as_secs_f64());
    if skew > SKEW_WARN {
        Check::warn(
            name,
            found,
            "synchronise both clocks with NTP (`timedatectl set-ntp true`)",
        )
    } else {
        Check::pass(name, found)
    }
}

async fn postgres(url: &str) -> Vec<Check> {
    match tokio::time::timeout(Duration::from_secs(10), provernode_store::migration_status(url)).await {
        Err(_) => vec![Check::fail(
            "postgresql",
            "no answer within 10 s",
            "check that PostgreSQL runs and that --database-url names its host and port (`pg_isready -h HOST -p PORT`)",
        )],
        Ok(Err(e)) => vec![Check::fail(
            "postgresql",
            e.to_string(),
            "check --database-url (user, password, host, database) and that PostgreSQL accepts this host (pg_hba.conf)",
        )],
        Ok(Ok(status)) => {
            let mut checks = Vec::new();
            checks.push(if !status.unknown.is_empty() {
                Check::fail(
                    "migrations",
                    format!("the database has migrations this version does not know ({:?}): a newer provernode wrote it", status.unknown),
                    "run the newer provernode, or restore a backup made for this version",
                )
            } else if status.pending.is_empty() {
                Check::pass("migrations", format!("all {} applied", status.applied))
            } else {
                Check::warn(
                    "migrations",
                    format!("{} applied, {} pending ({:?})", status.applied, status.pending.len(), status.pending),
                    "none needed: the broker applies them when it starts (back the database up first)",
                )
            });
            checks.push(skew_check("clock", status.server_time_ms, "PostgreSQL's clock"));
            checks
        }
    }
}

async fn broker(url: &str, token: &str, mode: Mode) -> Vec<Check> {
    let client = match provernode_client::NodeClient::new(url, Some(token.to_owned())) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "broker",
                e.to_string(),
                "give --broker as http://HOST:PORT",
            )];
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), client.agent_check()).await {
        Ok(Ok(check)) => vec![
            Check::pass(
                "broker",
                format!("{url} accepts this agent token (broker {})", check.version),
            ),
            skew_check("clock", check.server_time_ms, "the broker's clock"),
        ],
        Ok(Err(e)) if e.is_unauthorized() => vec![Check::fail(
            "broker",
            format!("{url} refuses this agent token: {e}"),
            "give the agent one of the broker's --agent-token values (not a client token)",
        )],
        // At start an agent retries an unreachable broker itself.
        other => {
            let found = match other {
                Ok(Err(e)) => format!("{url}: {e}"),
                _ => format!("{url}: no answer within 10 s"),
            };
            let fix = "start the broker, or check --broker and the network (`curl URL/healthz`)";
            vec![match mode {
                Mode::Command => Check::fail("broker", found, fix),
                Mode::Startup => Check::warn("broker", found, fix),
            }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_without_a_token_fails() {
        let public: SocketAddr = "0.0.0.0:7878".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:7878".parse().unwrap();
        assert_eq!(token_for(public, false, "--token").level, Level::Fail);
        assert_eq!(token_for(public, true, "--token").level, Level::Pass);
        assert_eq!(token_for(local, false, "--token").level, Level::Pass);
    }

    #[test]
    fn a_port_in_use_fails_naming_the_command_that_finds_its_owner() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = port(held.local_addr().unwrap());
        assert_eq!(c.level, Level::Fail);
        assert!(c.fix.unwrap().contains("ss -ltnp"));
        assert_eq!(port("127.0.0.1:0".parse().unwrap()).level, Level::Pass);
    }

    #[test]
    fn directories_are_checked_for_writes_and_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let checks = directory("data directory", &dir.path().join("new/deeper"));
        assert_eq!(checks[0].level, Level::Pass, "{checks:?}");
        assert!(checks[0].found.contains("will be created"));
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let checks = directory("data directory", &file.join("below"));
        assert_eq!(checks[0].level, Level::Fail);
        assert!(checks[0].found.contains("is a file"));
    }

    #[test]
    fn an_unwritable_directory_fails_with_the_chown_fix() {
        // Root writes anywhere: this only means something for other users.
        if nix::unistd::getuid().is_root() {
            return;
        }
        let checks = directory("data directory", Path::new("/proc/provernode"));
        assert_eq!(checks[0].level, Level::Fail);
        assert!(checks[0].fix.as_deref().unwrap_or("").contains("chown"));
    }

    #[test]
    fn the_memory_check_warns_below_a_backend_floor() {
        let registry = Registry::default();
        assert_eq!(memory_floors(&registry, Some(1 << 40)).level, Level::Pass);
        assert_eq!(memory_floors(&registry, None).level, Level::Warn);
    }

    #[test]
    fn slots_that_cannot_all_prove_default_tasks_at_once_warn() {
        let mut slots = crate::embedded::temporary(Path::new("/nonexistent"), 2).slots;
        slots.memory_budget_mib = Some(20480);
        let fits = worker_slots(&slots, 10240);
        assert_eq!(fits.level, Level::Pass, "{fits:?}");
        let one_at_a_time = worker_slots(&slots, 11264);
        assert_eq!(one_at_a_time.level, Level::Warn, "{one_at_a_time:?}");
        assert!(
            one_at_a_time.found.contains("only 1 of the 2 slots"),
            "{one_at_a_time:?}"
        );
        assert!(
            one_at_a_time
                .fix
                .as_deref()
                .unwrap_or("")
                .contains("--default-memory-limit-mib to 10240"),
            "{one_at_a_time:?}"
        );
        let none = worker_slots(&slots, 30000);
        assert_eq!(none.level, Level::Warn, "{none:?}");
        assert!(none.found.contains("is refused"), "{none:?}");
    }

    #[test]
    fn the_report_lists_fixes_and_refuses_on_a_failure() {
        let report = Report {
            role: "run",
            checks: vec![
                Check::pass("a", "fine"),
                Check::fail("token", "open to all", "set --token"),
            ],
            took_ms: 1,
        };
        let text = report.render();
        assert!(
            text.contains("FAIL  token") && text.contains("fix: set --token"),
            "{text}"
        );
        assert!(text.contains("1 passed, 0 warned, 1 failed"), "{text}");
        let refusal = report.refusal().unwrap();
        assert!(
            refusal.contains("token: open to all; fix: set --token"),
            "{refusal}"
        );
    }

    #[test]
    fn skew_warns_past_five_seconds() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert_eq!(skew_check("clock", now, "x").level, Level::Pass);
        assert_eq!(skew_check("clock", now - 60_000, "x").level, Level::Warn);
    }
}
