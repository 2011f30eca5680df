//! `provernode diagnose`: one `tar.gz` support bundle with everything a
//! person helping an operator asks for first (version, effective config,
//! doctor report, system facts, last log lines, tasks by state and reason,
//! the latest failed attempts with their stderr tails, readiness and a
//! metrics snapshot), and no secret: the config is redacted, and every file
//! is scrubbed of every token and password the role was given before it is
//! written, wherever such a value might have crept in.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RoleConfig;
use crate::doctor::{examine, Mode, Role};
use crate::NodeError;

/// What to put in a bundle, and where.
pub struct Request<'a> {
    pub role: Role<'a>,
    pub config: Option<&'a RoleConfig>,
    /// The role's `--log-file`, whose rotated files are read.
    pub log_file: Option<&'a Path>,
    pub log_lines: usize,
    pub failed_attempts: u32,
    pub output: &'a Path,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub files: Vec<String>,
}

const REDACTED: &str = "[redacted]";

/// Every secret value the role holds: tokens, and the database URL and its
/// password (a URL's password may also appear percent-decoded).
fn secrets(role: &Role<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    match role {
        Role::Run(a) => out.extend(a.token.clone()),
        Role::Agent(a) => out.push(a.token.clone()),
        Role::Broker(a) => {
            out.extend(a.client_tokens.iter().cloned());
            out.extend(a.agent_tokens.iter().cloned());
            out.push(a.database_url.clone());
            if let Some((_, rest)) = a.database_url.split_once("://") {
                if let Some((userinfo, _)) = rest.rsplit_once('@') {
                    if let Some((_, password)) = userinfo.split_once(':') {
                        out.push(password.to_owned());
                        out.push(percent_decode(password));
                    }
                }
            }
        }
    }
    out.retain(|s| !s.trim().is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with every secret replaced.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// The role's artifact manifest (names, sizes, SHA-256; no contents).
fn artifacts(role: &Role<'_>) -> String {
    let (flags, base) = match role {
        Role::Run(a) => (&a.artifacts, &a.data_dir),
        Role::Agent(a) => (&a.artifacts, &a.scratch_dir),
        _ => return "{\"note\": \"a broker keeps no artifacts\"}\n".into(),
    };
    let store = flags.open(base);
    match store.and_then(|s| s.list().map_err(|e| NodeError::Artifacts(e.to_string()))) {
        Ok(entries) => serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n",
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

pub async fn write_bundle(req: Request<'_>) -> Result<Written, NodeError> {
    let secrets = secrets(&req.role);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let root = format!("provernode-diagnose-{stamp}");
    let mut files: Vec<(String, String)> = Vec::new();

    files.push((
        "version.txt".into(),
        format!(
            "{}\nbackends built in: {}\n",
            crate::version_line(),
            provernode_backends::built_in().join(", ")
        ),
    ));
    if let Some(config) = req.config {
        files.push(("config.json".into(), json(config)));
    }
    let report = examine(role_again(&req.role), Mode::Command).await;
    files.push(("doctor.txt".into(), report.render()));
    files.push(("doctor.json".into(), json(&report)));
    files.push(("system.txt".into(), system_facts(&req.role)));
    files.push(("logs.txt".into(), log_tail(req.log_file, req.log_lines)));
    files.push(("tasks.json".into(), tasks(&req.role, req.failed_attempts).await));
    files.push(("artifacts.json".into(), artifacts(&req.role)));
    let (ready, metrics) = scrape(&req.role).await;
    files.push(("readyz.json".into(), ready));
    files.push(("metrics.txt".into(), metrics));

    let names: Vec<String> = files.iter().map(|(n, _)| format!("{root}/{n}")).collect();
    let file = std::fs::File::create(req.output).map_err(|error| NodeError::DataDir {
        path: req.output.to_owned(),
        what: "cannot create the bundle".into(),
        error,
    })?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    let io = |error: std::io::Error| NodeError::DataDir {
        path: req.output.to_owned(),
        what: "cannot write the bundle".into(),
        error,
    };
    for (name, content) in &files {
        let clean = scrub(content, &secrets);
        let mut header = tar::Header::new_gnu();
        header.set_size(clean.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(stamp);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{name}"), clean.as_bytes())
            .map_err(io)?;
    }
    let encoder = tar.into_inner().map_err(io)?;
    let file = encoder.finish().map_err(io)?;
    file.sync_all().map_err(io)?;
    let bytes = std::fs::metadata(req.output).map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        path: req.output.to_owned(),
        bytes,
        files: names,
    })
}

/// The doctor takes the role by value; the request keeps it.
fn role_again<'a>(role: &Role<'a>) -> Role<'a> {
    match role {
        Role::Run(a) => Role::Run(a),
        Role::Broker(a) => Role::Broker(a),
        Role::Agent(a) => Role::Agent(a),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("cannot encode: {e}"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {path}: {e})\n"))
}

fn system_facts(role: &Role<'_>) -> String {
    let mut out = String::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    out.push_str(&format!("cpu: {cpus} × {model}\n"));
    out.push_str(&format!(
        "kernel: {} {}",
        read("/proc/sys/kernel/osrelease").trim(),
        read("/proc/sys/kernel/version")
    ));
    out.push_str(&format!("hostname: {}", read("/proc/sys/kernel/hostname")));
    out.push_str(&format!("uptime and idle seconds: {}", read("/proc/uptime")));
    out.push_str(&format!("load: {}", read("/proc/loadavg")));
    out.push_str("\n== /proc/meminfo (head)\n");
    out.extend(read("/proc/meminfo").lines().take(12).map(|l| format!("{l}\n")));
    out.push_str("\n== disk\n");
    let dir = match role {
        Role::Run(a) => a.data_dir.clone(),
        Role::Agent(a) => a.scratch_dir.clone(),
        Role::Broker(_) => PathBuf::from("."),
    };
    for path in [dir.as_path(), Path::new("/dev/shm"), Path::new("/tmp")] {
        match nix::sys::statvfs::statvfs(path) {
            Ok(s) => {
                let unit = s.fragment_size();
                out.push_str(&format!(
                    "{}: {} MiB free of {} MiB, {} inodes free\n",
                    path.display(),
                    (s.blocks_available() * unit) >> 20,
                    (s.blocks() * unit) >> 20,
                    s.files_available()
                ));
            }
            Err(e) => out.push_str(&format!("{}: {e}\n", path.display())),
        }
    }
    out.push_str("\n== cgroups of this process\n");
    let own = read("/proc/self/cgroup");
    out.push_str(&own);
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let candidates = if controllers.is_empty() {
            vec![
                format!("/sys/fs/cgroup{path}/memory.max"),
                format!("/sys/fs/cgroup{path}/memory.current"),
            ]
        } else if controllers.split(',').any(|c| c == "memory") {
            vec![
                format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
                format!("/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"),
            ]
        } else {
            vec![]
        };
        for c in candidates {
            if let Ok(v) = std::fs::read_to_string(&c) {
                out.push_str(&format!("{c}: {}", v));
            }
        }
    }
    out.push_str("\n== limits of this process\n");
    out.push_str(&read("/proc/self/limits"));
    out
}

/// The last `lines` lines of the log, oldest first, across its rotated files.
fn log_tail(log_file: Option<&Path>, lines: usize) -> String {
    let Some(path) = log_file else {
        return "(no --log-file: the role logs to stderr only; with systemd, `journalctl -u provernode --since -1h` has it)\n".into();
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(prefix) = path.file_name().and_then(|n| n.to_str()) else {
        return format!("(--log-file {} names no file)\n", path.display());
    };
    let mut rotated: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect(),
        Err(e) => return format!("(cannot read the log directory {}: {e})\n", dir.display()),
    };
    // Names end in the date: sorted by name is oldest first.
    rotated.sort();
    let mut kept: std::collections::VecDeque<String> = std::collections::VecDeque::with_capacity(lines);
    for file in &rotated {
        if let Ok(text) = std::fs::read_to_string(file) {
            for l in text.lines() {
                if kept.len() == lines {
                    kept.pop_front();
                }
                kept.push_back(l.to_owned());
            }
        }
    }
    let mut out = format!(
        "(last {} lines of {} file(s) {}*)\n",
        kept.len(),
        rotated.len(),
        path.display()
    );
    for l in kept {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

async fn tasks(role: &Role<'_>, failed: u32) -> String {
    let result: Result<provernode_store::Diagnostics, String> = match role {
        Role::Run(a) => {
            let queue = a.data_dir.join(crate::QUEUE_FILE);
            if !queue.exists() {
                return json(&serde_json::json!({"note": format!("no queue at {} yet", queue.display())}));
            }
            // The node may be running: SQLite's write-ahead log lets this
            // reader in beside it.
            match provernode_store::SqliteStore::open_in_data_dir(
                &a.data_dir,
                crate::QUEUE_FILE,
                &provernode_store::SqliteOptions::default(),
            )
            .await
            {
                Ok(store) => {
                    use provernode_store::Store;
                    let d = store.diagnostics(failed).await.map_err(|e| e.to_string());
                    store.close().await;
                    d
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Role::Broker(a) => {
            // Never migrate from a support tool: read only a database this
            // version already knows.
            match provernode_store::migration_status(&a.database_url).await {
                Ok(s) if !s.pending.is_empty() || !s.unknown.is_empty() => Err(format!(
                    "the database's migrations differ from this version's (pending {:?}, unknown {:?}): not read",
                    s.pending, s.unknown
                )),
                Ok(_) => match provernode_store::PgStore::connect(&a.database_url, 1).await {
                    Ok(store) => {
                        use provernode_store::Store;
                        store.diagnostics(failed).await.map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            }
        }
        Role::Agent(_) => {
            return json(
                &serde_json::json!({"note": "an agent holds no queue: run `provernode diagnose broker` for the tasks"}),
            )
        }
    };
    match result {
        Ok(d) => json(&d),
        Err(e) => json(&serde_json::json!({"error": e})),
    }
}

/// The role's own `/readyz` and `/metrics`, if it is running.
async fn scrape(role: &Role<'_>) -> (String, String) {
    let (addr, token) = match role {
        Role::Run(a) => (Some(a.listen), a.token.clone()),
        Role::Broker(a) => (Some(a.listen), a.client_tokens.first().cloned()),
        Role::Agent(a) => (a.status_listen, None),
    };
    let Some(mut addr) = addr else {
        let note = "(the agent has no --status-listen: no readiness or metrics to read)\n".to_owned();
        return (note.clone(), note);
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return (format!("({e})\n"), format!("({e})\n")),
    };
    let get = |path: &str| {
        let mut r = client.get(format!("http://{addr}{path}"));
        if let Some(t) = &token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let text = |r: Result<reqwest::Response, reqwest::Error>| async move {
        match r {
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                format!("HTTP {status}\n{body}\n")
            }
            Err(e) => format!("(not reachable at http://{addr}: {e}; is the role running?)\n"),
        }
    };
    let ready = text(get("/readyz").await).await;
    let metrics = text(get("/metrics").await).await;
    (ready, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_replaces_every_secret_longest_first() {
        let secrets = vec![
            "postgres://u:pa%40ss@db/q".to_owned(),
            "pa%40ss".to_owned(),
            "pa@ss".to_owned(),
            "tok".to_owned(),
        ];
        let text = "url postgres://u:pa%40ss@db/q and pa@ss and tok";
        let clean = scrub(text, &secrets);
        assert_eq!(clean, "url [redacted] and [redacted] and [redacted]");
        assert_eq!(percent_decode("pa%40ss%zz"), "pa@ss%zz");
    }

    #[test]
    fn a_missing_log_file_is_said_and_rotated_files_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        assert!(log_tail(None, 10).contains("no --log-file"));
        std::fs::write(dir.path().join("node.log.2026-11-30"), "a\nb\n").unwrap();
        std::fs::write(dir.path().join("node.log.2026-12-01"), "c\nd\n").unwrap();
        std::fs::write(dir.path().join("other.log"), "x\n").unwrap();
        let tail = log_tail(Some(&log), 3);
        assert!(tail.ends_with("b\nc\nd\n"), "{tail}");
        // Another log's lines are not read. (Not `contains('x')`: the header
        // names the temporary directory, whose random name may hold an x.)
        assert!(!tail.lines().any(|l| l == "x"), "{tail}");
    }
}
