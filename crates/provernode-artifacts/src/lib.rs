//! The artifact store: every file a node needs beyond its own binary
//! (stored programs, keys a backend can reuse, files an operator supplies
//! for a backend), each listed in a manifest with its size, SHA-256 and the
//! version that produced it, and each kept twice: a primary copy and a
//! backup copy (in another directory, ideally on another disk).
//!
//! Nothing is ever downloaded. At start (and on `provernode artifacts
//! verify`) every copy is hashed in one streaming pass; a damaged or
//! missing copy is rewritten from the good one; an artifact whose copies
//! are both bad is reported, with its name and the fix, so the node keeps
//! readiness false and does not claim the tasks that need it.
//!
//! Layout (`root` is the primary directory, `backup` the backup one):
//!
//! ```text
//! root/manifest.json      backup/manifest.json
//! root/files/<name>       backup/files/<name>
//! root/.lock              (writers and verifiers hold it, one at a time)
//! ```
//!
//! The manifest carries a SHA-256 of its own entries, so a damaged manifest
//! is told from a good one and replaced by its backup.
//!
//! Invariants: a copy is only ever replaced by renaming a fully written,
//! fsynced, hash-checked temporary file over it, so a crash leaves the old
//! copy or the new one, never a torn one; the manifest names a file only
//! after both its copies are written.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bytes read at a time while hashing: large enough that hashing, not
/// system calls, sets the speed.
const CHUNK: usize = 1 << 20;

const MANIFEST: &str = "manifest.json";
const FILES: &str = "files";
const FORMAT: u32 = 1;

/// The kind of a backend's per-program keys (SP1's verifying key). They
/// are a cache: a backend makes them again when they are missing, so an
/// entry of this kind whose copies are both bad is dropped
/// ([`Finding::Dropped`]) instead of failing the store.
pub const KEYS_KIND: &str = "keys";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("artifact name {0:?} is not valid: use 1 to 200 characters of letters, digits, '.', '_', '-' and '/', with no empty, '.' or '..' part")]
    BadName(String),
    #[error("no artifact {0:?} in the manifest; `provernode artifacts list` shows what there is")]
    NotFound(String),
    #[error("both copies of artifact {name:?} are bad (primary: {primary}; backup: {backup}); {fix}")]
    BothCopiesBad {
        name: String,
        primary: String,
        backup: String,
        fix: String,
    },
    #[error("both copies of the artifact manifest are unreadable (primary: {primary}; backup: {backup}); restore {root}/manifest.json from a backup of the machine, or move the directory aside to start an empty store and import the files again")]
    ManifestLost {
        root: PathBuf,
        primary: String,
        backup: String,
    },
    #[error("{path} changed while it was copied (its SHA-256 is not what was read first); copy it again")]
    ChangedWhileCopied { path: PathBuf },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ArtifactError + 'a {
    move |source| ArtifactError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One artifact as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it lies under `files/`: `program/<id>`,
    /// `keys/<backend>/<program id>-<backend version>`, or an imported
    /// file's name under `file/`.
    pub name: String,
    /// `program`, `keys` (a backend's per-program keys: a cache, see
    /// [`KEYS_KIND`]), `file`.
    pub kind: String,
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// The provernode version (and, for keys, the prover's) that wrote it.
    pub producer: String,
    pub created_ms: i64,
    /// The backend whose tasks need this file: while both copies are bad,
    /// that backend's tasks are not claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed_by: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    artifacts: Vec<Entry>,
    /// SHA-256 of `artifacts` as compact JSON: tells a damaged manifest
    /// from a good one.
    checksum: String,
}

impl Manifest {
    fn checksum_of(artifacts: &[Entry]) -> String {
        let json = serde_json::to_vec(artifacts).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }

    fn sealed(artifacts: Vec<Entry>) -> Manifest {
        let checksum = Manifest::checksum_of(&artifacts);
        Manifest {
            format: FORMAT,
            artifacts,
            checksum,
        }
    }

    /// Reads and checks one copy; the error says why it is unusable.
    fn read(path: &Path) -> Result<Option<Manifest>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("it is not a manifest: {e}"))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "its format is {}, this version reads format {FORMAT}",
                manifest.format
            ));
        }
        if Manifest::checksum_of(&manifest.artifacts) != manifest.checksum {
            return Err("its checksum does not match its entries (damaged)".into());
        }
        Ok(Some(manifest))
    }
}

/// What a verification found for one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Good,
    /// One copy was bad (why) and was rewritten from the other.
    Repaired {
        copy: Copy,
        why: String,
    },
    /// Both copies are bad: the artifact cannot be used.
    Failed {
        primary: String,
        backup: String,
    },
    /// Both copies of a cache ([`KEYS_KIND`]) were bad: the entry is
    /// removed, and its backend makes it again when it next needs it.
    Dropped {
        primary: String,
        backup: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    Primary,
    Backup,
}

impl std::fmt::Display for Copy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Copy::Primary => "primary",
            Copy::Backup => "backup",
        })
    }
}

/// The verification of every artifact.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<(Entry, Finding)>,
    /// Bytes hashed (both copies).
    pub bytes_hashed: u64,
    pub elapsed: std::time::Duration,
    /// The manifest's own copy that was rewritten, and why.
    pub manifest_repaired: Option<(Copy, String)>,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &Entry> {
        self.findings
            .iter()
            .filter(|(_, f)| matches!(f, Finding::Failed { .. }))
            .map(|(e, _)| e)
    }

    pub fn repaired(&self) -> impl Iterator<Item = (&Entry, Copy, &str)> {
        self.findings.iter().filter_map(|(e, f)| match f {
            Finding::Repaired { copy, why } => Some((e, *copy, why.as_str())),
            _ => None,
        })
    }

    /// Backends with a needed artifact that cannot be used.
    pub fn blocked_backends(&self) -> Vec<String> {
        let mut out: Vec<String> = self.failed().filter_map(|e| e.needed_by.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// One line per failed artifact: its name and what to do.
    pub fn failure_summary(&self) -> Option<String> {
        let lines: Vec<String> = self
            .findings
            .iter()
            .filter_map(|(e, f)| match f {
                Finding::Failed { primary, backup } => Some(format!(
                    "artifact {} ({}) has no good copy (primary: {primary}; backup: {backup}); {}",
                    e.name,
                    e.kind,
                    fix_for(e)
                )),
                _ => None,
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

/// What an operator does about an artifact with no good copy.
pub fn fix_for(entry: &Entry) -> String {
    match entry.kind.as_str() {
        "program" => "upload the program again (`provernode programs upload FILE`), then run `provernode artifacts verify`".into(),
        KEYS_KIND => "nothing: the keys are set up again when a worker next needs them".into(),
        _ => format!(
            "import a good copy (`provernode artifacts import FILE --name {}`), then run `provernode artifacts verify`",
            entry.name.strip_prefix("file/").unwrap_or(&entry.name)
        ),
    }
}

/// Where a verification has got to.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub name: &'a str,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

pub struct ArtifactStore {
    root: PathBuf,
    backup: PathBuf,
    producer: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Names are relative paths of plain parts: nothing can escape the store.
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(ArtifactError::BadName(name.to_owned()))
    }
}

/// Hashes a file as it streams, reporting the bytes read.
fn hash_file(path: &Path, mut on_bytes: impl FnMut(u64)) -> Result<(u64, String), std::io::Error> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        on_bytes(n as u64);
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// What is wrong with one copy, if anything.
fn check_copy(path: &Path, entry: &Entry, on_bytes: impl FnMut(u64)) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("missing".into()),
        Err(e) => return Some(format!("cannot read it: {e}")),
        Ok(m) if m.len() != entry.size => {
            return Some(format!(
                "{} bytes where the manifest says {}",
                m.len(),
                entry.size
            ))
        }
        Ok(_) => {}
    }
    match hash_file(path, on_bytes) {
        Err(e) => Some(format!("cannot read it: {e}")),
        Ok((size, _)) if size != entry.size => {
            Some(format!("{size} bytes where the manifest says {}", entry.size))
        }
        Ok((_, sha)) if sha != entry.sha256 => Some(format!("SHA-256 {sha}, not {}", entry.sha256)),
        Ok(_) => None,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), ArtifactError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))
}

/// Streams `source` into `dest` through a temporary file, hashing as it
/// goes; the rename happens only if the hash is `expected` (when given).
/// Returns the size and SHA-256 written.
fn copy_checked(
    source: &mut dyn Read,
    dest: &Path,
    expected: Option<&str>,
    source_path: &Path,
) -> Result<(u64, String), ArtifactError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut out = File::create(&tmp).map_err(io("creating", &tmp))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buf).map_err(io("reading", source_path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io("writing", &tmp))?;
        total += n as u64;
    }
    out.sync_all().map_err(io("syncing", &tmp))?;
    drop(out);
    let sha = hex::encode(hasher.finalize());
    if expected.is_some_and(|e| e != sha) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ArtifactError::ChangedWhileCopied {
            path: source_path.to_path_buf(),
        });
    }
    std::fs::rename(&tmp, dest).map_err(io("renaming into place", dest))?;
    fsync_dir(dir)?;
    Ok((total, sha))
}

/// An exclusive lock on the store, held while it is written or repaired.
struct Lock {
    _file: nix::fcntl::Flock<File>,
}

impl ArtifactStore {
    /// The store in `root` with its backup copy in `backup`. Opening
    /// creates nothing (reading a store that is not there lists nothing);
    /// the directories are made by the first write. `producer` is recorded
    /// with what this process writes.
    pub fn open(
        root: &Path,
        backup: &Path,
        producer: impl Into<String>,
    ) -> Result<ArtifactStore, ArtifactError> {
        Ok(ArtifactStore {
            root: root.to_path_buf(),
            backup: backup.to_path_buf(),
            producer: producer.into(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn backup_dir(&self) -> &Path {
        &self.backup
    }

    fn lock(&self) -> Result<Lock, ArtifactError> {
        std::fs::create_dir_all(&self.root).map_err(io("creating", &self.root))?;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("opening", &path))?;
        let file =
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
                ArtifactError::Io {
                    action: "locking",
                    path: path.clone(),
                    source: std::io::Error::from(errno),
                }
            })?;
        Ok(Lock { _file: file })
    }

    fn path_of(&self, copy: Copy, name: &str) -> PathBuf {
        match copy {
            Copy::Primary => self.root.join(FILES).join(name),
            Copy::Backup => self.backup.join(FILES).join(name),
        }
    }

    /// The manifest, from the primary, else the backup; with which copy of
    /// it was bad, if one was.
    fn load(&self) -> Result<(Manifest, Option<(Copy, String)>), ArtifactError> {
        let primary = Manifest::read(&self.root.join(MANIFEST));
        let backup = Manifest::read(&self.backup.join(MANIFEST));
        match (primary, backup) {
            (Ok(Some(p)), Ok(Some(b))) if p.checksum == b.checksum => Ok((p, None)),
            // A crash between writing the two copies: the primary, written
            // first, is the newer.
            (Ok(Some(p)), Ok(Some(_))) => Ok((p, Some((Copy::Backup, "older than the primary".into())))),
            (Ok(Some(p)), Ok(None)) => Ok((p, Some((Copy::Backup, "missing".into())))),
            (Ok(Some(p)), Err(why)) => Ok((p, Some((Copy::Backup, why)))),
            (Ok(None), Ok(Some(b))) => Ok((b, Some((Copy::Primary, "missing".into())))),
            (Err(why), Ok(Some(b))) => Ok((b, Some((Copy::Primary, why)))),
            (Ok(None), Ok(None)) => Ok((Manifest::sealed(Vec::new()), None)),
            (p, b) => Err(ArtifactError::ManifestLost {
                root: self.root.clone(),
                primary: p.err().unwrap_or_else(|| "missing".into()),
                backup: b.err().unwrap_or_else(|| "missing".into()),
            }),
        }
    }

    /// Writes the manifest: primary first, then backup, each atomically.
    fn save(&self, artifacts: Vec<Entry>) -> Result<(), ArtifactError> {
        let manifest = Manifest::sealed(artifacts);
        let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        for dir in [&self.root, &self.backup] {
            let path = dir.join(MANIFEST);
            copy_checked(&mut &json[..], &path, None, &path)?;
        }
        Ok(())
    }

    /// Every artifact the manifest lists.
    pub fn list(&self) -> Result<Vec<Entry>, ArtifactError> {
        Ok(self.load()?.0.artifacts)
    }

    pub fn entry(&self, name: &str) -> Result<Option<Entry>, ArtifactError> {
        Ok(self.list()?.into_iter().find(|e| e.name == name))
    }

    /// Stores `bytes` as `name` (both copies, then the manifest), replacing
    /// an artifact of that name. Returns its entry.
    pub fn put(
        &self,
        name: &str,
        kind: &str,
        bytes: &[u8],
        needed_by: Option<&str>,
    ) -> Result<Entry, ArtifactError> {
        self.put_from(name, kind, &mut &bytes[..], Path::new(name), needed_by)
    }

    /// Copies the file at `path` into the store as `file/<name>` (the
    /// file's own name by default), for the backend `needed_by` if given.
    pub fn import(
        &self,
        path: &Path,
        name: Option<&str>,
        needed_by: Option<&str>,
    ) -> Result<Entry, ArtifactError> {
        let base = match name {
            Some(n) => n.to_owned(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let name = format!("file/{base}");
        let mut file = BufReader::with_capacity(CHUNK, File::open(path).map_err(io("opening", path))?);
        self.put_from(&name, "file", &mut file, path, needed_by)
    }

    fn put_from(
        &self,
        name: &str,
        kind: &str,
        source: &mut dyn Read,
        source_path: &Path,
        needed_by: Option<&str>,
    ) -> Result<Entry, ArtifactError> {
        check_name(name)?;
        let _lock = self.lock()?;
        let entry = self.write_copies(name, kind, source, source_path, needed_by)?;
        self.record(vec![entry.clone()])?;
        Ok(entry)
    }

    /// Stores many artifacts of one kind with one manifest write (a node
    /// keeping thousands of programs would otherwise rewrite the manifest
    /// once per program).
    pub fn put_many(&self, kind: &str, items: &[(String, Vec<u8>)]) -> Result<Vec<Entry>, ArtifactError> {
        for (name, _) in items {
            check_name(name)?;
        }
        let _lock = self.lock()?;
        let entries = items
            .iter()
            .map(|(name, bytes)| self.write_copies(name, kind, &mut &bytes[..], Path::new(name), None))
            .collect::<Result<Vec<_>, _>>()?;
        self.record(entries.clone())?;
        Ok(entries)
    }

    /// Writes both copies of one artifact (the lock held); its entry.
    fn write_copies(
        &self,
        name: &str,
        kind: &str,
        source: &mut dyn Read,
        source_path: &Path,
        needed_by: Option<&str>,
    ) -> Result<Entry, ArtifactError> {
        let primary = self.path_of(Copy::Primary, name);
        let (size, sha256) = copy_checked(source, &primary, None, source_path)?;
        let mut from_primary = File::open(&primary).map_err(io("opening", &primary))?;
        copy_checked(
            &mut from_primary,
            &self.path_of(Copy::Backup, name),
            Some(&sha256),
            &primary,
        )?;
        tracing::info!(artifact = %name, kind, bytes = size, %sha256, "artifact stored with its backup copy");
        Ok(Entry {
            name: name.to_owned(),
            kind: kind.to_owned(),
            size,
            sha256,
            producer: self.producer.clone(),
            created_ms: now_ms(),
            needed_by: needed_by.map(str::to_owned),
        })
    }

    /// Puts `entries` in the manifest in place of those of their names,
    /// once both their copies are written.
    fn record(&self, entries: Vec<Entry>) -> Result<(), ArtifactError> {
        let mut artifacts = self.load()?.0.artifacts;
        artifacts.retain(|e| !entries.iter().any(|n| n.name == e.name));
        artifacts.extend(entries);
        artifacts.sort_by(|a, b| a.name.cmp(&b.name));
        self.save(artifacts)
    }

    /// An artifact's content, checked against the manifest as it is read;
    /// a bad primary is repaired from the backup on the way.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ArtifactError> {
        let entry = self
            .entry(name)?
            .ok_or_else(|| ArtifactError::NotFound(name.to_owned()))?;
        let primary = self.path_of(Copy::Primary, name);
        if let Ok(bytes) = std::fs::read(&primary) {
            if bytes.len() as u64 == entry.size && hex::encode(Sha256::digest(&bytes)) == entry.sha256 {
                return Ok(bytes);
            }
        }
        let _lock = self.lock()?;
        match self.verify_one(&entry, &mut |_| {})? {
            Finding::Failed { primary, backup } => Err(ArtifactError::BothCopiesBad {
                name: name.to_owned(),
                primary,
                backup,
                fix: fix_for(&entry),
            }),
            Finding::Dropped { .. } => {
                self.remove_locked(name)?;
                Err(ArtifactError::NotFound(name.to_owned()))
            }
            _ => std::fs::read(&primary).map_err(io("reading", &primary)),
        }
    }

    /// Removes an artifact (both copies and its manifest entry).
    pub fn remove(&self, name: &str) -> Result<bool, ArtifactError> {
        let _lock = self.lock()?;
        self.remove_locked(name)
    }

    /// [`remove`](Self::remove), the lock held.
    fn remove_locked(&self, name: &str) -> Result<bool, ArtifactError> {
        let mut artifacts = self.load()?.0.artifacts;
        let before = artifacts.len();
        artifacts.retain(|e| e.name != name);
        if artifacts.len() == before {
            return Ok(false);
        }
        self.save(artifacts)?;
        for copy in [Copy::Primary, Copy::Backup] {
            let _ = std::fs::remove_file(self.path_of(copy, name));
        }
        Ok(true)
    }

    /// Checks one artifact's two copies and rewrites a bad one from the
    /// good one.
    fn verify_one(&self, entry: &Entry, on_bytes: &mut dyn FnMut(u64)) -> Result<Finding, ArtifactError> {
        let primary = self.path_of(Copy::Primary, &entry.name);
        let backup = self.path_of(Copy::Backup, &entry.name);
        let primary_bad = check_copy(&primary, entry, &mut *on_bytes);
        let backup_bad = check_copy(&backup, entry, &mut *on_bytes);
        let (bad_copy, why, from, to) = match (primary_bad, backup_bad) {
            (None, None) => return Ok(Finding::Good),
            (Some(p), Some(b)) if entry.kind == KEYS_KIND => {
                tracing::warn!(artifact = %entry.name, primary = %p, backup = %b, "both copies of cached keys are bad; dropped (they are set up again when next needed)");
                return Ok(Finding::Dropped {
                    primary: p,
                    backup: b,
                });
            }
            (Some(p), Some(b)) => {
                return Ok(Finding::Failed {
                    primary: p,
                    backup: b,
                })
            }
            (Some(why), None) => (Copy::Primary, why, &backup, &primary),
            (None, Some(why)) => (Copy::Backup, why, &primary, &backup),
        };
        let mut source = File::open(from).map_err(io("opening", from))?;
        copy_checked(&mut source, to, Some(&entry.sha256), from)?;
        tracing::warn!(artifact = %entry.name, copy = %bad_copy, why = %why, "artifact copy was bad and is restored from the other copy");
        Ok(Finding::Repaired { copy: bad_copy, why })
    }

    /// Hashes every copy of every artifact in one streaming pass, repairing
    /// what one good copy can repair. `progress` is called as bytes go by.
    pub fn verify(&self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report, ArtifactError> {
        self.verify_some(None, progress)
    }

    /// Like [`verify`](Self::verify), for the artifacts named in `only`
    /// (all when `None`; names not in the manifest are skipped).
    pub fn verify_some(
        &self,
        only: Option<&[String]>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report, ArtifactError> {
        let started = std::time::Instant::now();
        let _lock = self.lock()?;
        let (manifest, manifest_bad) = self.load()?;
        if manifest_bad.is_some() {
            self.save(manifest.artifacts.clone())?;
        }
        let chosen: Vec<&Entry> = manifest
            .artifacts
            .iter()
            .filter(|e| only.is_none_or(|names| names.contains(&e.name)))
            .collect();
        let total: u64 = chosen.iter().map(|e| e.size * 2).sum();
        let mut done = 0u64;
        let mut findings = Vec::with_capacity(chosen.len());
        for entry in chosen {
            let finding = {
                let mut on_bytes = |n: u64| {
                    done += n;
                    progress(Progress {
                        name: &entry.name,
                        bytes_done: done,
                        bytes_total: total,
                    });
                };
                self.verify_one(entry, &mut on_bytes)?
            };
            findings.push((entry.clone(), finding));
        }
        let dropped: Vec<&str> = findings
            .iter()
            .filter(|(_, f)| matches!(f, Finding::Dropped { .. }))
            .map(|(e, _)| e.name.as_str())
            .collect();
        if !dropped.is_empty() {
            let kept = manifest
                .artifacts
                .iter()
                .filter(|e| !dropped.contains(&e.name.as_str()))
                .cloned()
                .collect();
            self.save(kept)?;
            for name in dropped {
                for copy in [Copy::Primary, Copy::Backup] {
                    let _ = std::fs::remove_file(self.path_of(copy, name));
                }
            }
        }
        Ok(Report {
            findings,
            bytes_hashed: done,
            elapsed: started.elapsed(),
            manifest_repaired: manifest_bad,
        })
    }

    /// Rewrites the primary copy of `name` from its backup (after checking
    /// the backup), whatever the primary holds.
    pub fn restore(&self, name: &str) -> Result<Entry, ArtifactError> {
        let _lock = self.lock()?;
        let entry = self
            .load()?
            .0
            .artifacts
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| ArtifactError::NotFound(name.to_owned()))?;
        let backup = self.path_of(Copy::Backup, name);
        if let Some(why) = check_copy(&backup, &entry, |_| {}) {
            return Err(ArtifactError::BothCopiesBad {
                name: name.to_owned(),
                primary: "not checked (restore replaces it)".into(),
                backup: why,
                fix: fix_for(&entry),
            });
        }
        let mut source = File::open(&backup).map_err(io("opening", &backup))?;
        copy_checked(
            &mut source,
            &self.path_of(Copy::Primary, name),
            Some(&entry.sha256),
            &backup,
        )?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic by design
    use super::*;

    fn store() -> (tempfile::TempDir, ArtifactStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ArtifactStore::open(&dir.path().join("a"), &dir.path().join("b"), "test 1").unwrap();
        (dir, s)
    }

    fn good(report: &Report) -> bool {
        report.findings.iter().all(|(_, f)| *f == Finding::Good)
    }

    #[test]
    fn a_stored_artifact_reads_back_and_verifies() {
        let (_d, s) = store();
        let e = s.put("program/abc", "program", b"hello", None).unwrap();
        assert_eq!(e.sha256, hex::encode(Sha256::digest(b"hello")));
        assert_eq!((e.size, e.producer.as_str()), (5, "test 1"));
        assert_eq!(s.read("program/abc").unwrap(), b"hello");
        let mut calls = 0;
        let r = s
            .verify(&mut |p| {
                calls += 1;
                assert_eq!(p.bytes_total, 10);
            })
            .unwrap();
        assert!(good(&r), "{r:?}");
        assert_eq!((r.bytes_hashed, calls), (10, 2));
        assert_eq!(s.list().unwrap(), vec![e]);
    }

    #[test]
    fn a_damaged_or_missing_copy_is_restored_from_the_other() {
        let (_d, s) = store();
        s.put("file/params", "file", &[7u8; 3000], Some("zkwasm"))
            .unwrap();
        // Same size, one byte flipped: only the hash can tell.
        let primary = s.path_of(Copy::Primary, "file/params");
        let mut bytes = std::fs::read(&primary).unwrap();
        bytes[1234] ^= 1;
        std::fs::write(&primary, &bytes).unwrap();
        let r = s.verify(&mut |_| {}).unwrap();
        let repaired: Vec<_> = r.repaired().map(|(e, c, _)| (e.name.clone(), c)).collect();
        assert_eq!(repaired, vec![("file/params".to_owned(), Copy::Primary)]);
        assert!(r.repaired().next().unwrap().2.contains("SHA-256"), "{r:?}");
        assert_eq!(std::fs::read(&primary).unwrap(), vec![7u8; 3000]);
        // The backup gone: rewritten from the primary.
        std::fs::remove_file(s.path_of(Copy::Backup, "file/params")).unwrap();
        let r = s.verify(&mut |_| {}).unwrap();
        assert_eq!(r.repaired().next().unwrap().1, Copy::Backup);
        assert!(good(&s.verify(&mut |_| {}).unwrap()));
        // A read repairs on the way too.
        std::fs::write(&primary, b"short").unwrap();
        assert_eq!(s.read("file/params").unwrap(), vec![7u8; 3000]);
    }

    #[test]
    fn cached_keys_with_both_copies_bad_are_dropped_not_failed() {
        let (_d, s) = store();
        let damage = |s: &ArtifactStore, name: &str| {
            for copy in [Copy::Primary, Copy::Backup] {
                std::fs::write(s.path_of(copy, name), b"garbage").unwrap();
            }
        };
        s.put("keys/sp1/abc-v1", KEYS_KIND, b"vk bytes", None).unwrap();
        s.put("program/abc", "program", b"elf", None).unwrap();
        damage(&s, "keys/sp1/abc-v1");
        let r = s.verify(&mut |_| {}).unwrap();
        assert_eq!(r.failed().count(), 0, "{r:?}");
        assert!(r.failure_summary().is_none(), "{r:?}");
        assert!(
            r.findings
                .iter()
                .any(|(e, f)| e.name == "keys/sp1/abc-v1" && matches!(f, Finding::Dropped { .. })),
            "{r:?}"
        );
        let names: Vec<String> = s.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec!["program/abc".to_owned()]);
        assert!(!s.path_of(Copy::Primary, "keys/sp1/abc-v1").exists());
        assert!(!s.path_of(Copy::Backup, "keys/sp1/abc-v1").exists());
        // Met on a read instead: not found (so the backend sets them up
        // again), and gone from the manifest.
        s.put("keys/sp1/abc-v1", KEYS_KIND, b"vk bytes", None).unwrap();
        damage(&s, "keys/sp1/abc-v1");
        assert!(matches!(
            s.read("keys/sp1/abc-v1"),
            Err(ArtifactError::NotFound(_))
        ));
        assert!(s.entry("keys/sp1/abc-v1").unwrap().is_none());
        // Any other kind with both copies bad still fails.
        damage(&s, "program/abc");
        assert_eq!(s.verify(&mut |_| {}).unwrap().failed().count(), 1);
    }

    #[test]
    fn both_copies_bad_is_a_failure_that_names_the_artifact_its_backend_and_the_fix() {
        let (_d, s) = store();
        s.put("file/params", "file", b"good bytes", Some("zkwasm"))
            .unwrap();
        s.put("program/p", "program", b"elf", None).unwrap();
        std::fs::write(s.path_of(Copy::Primary, "file/params"), b"bad bytes!").unwrap();
        std::fs::remove_file(s.path_of(Copy::Backup, "file/params")).unwrap();
        let r = s.verify(&mut |_| {}).unwrap();
        assert_eq!(
            r.failed().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["file/params"]
        );
        assert_eq!(r.blocked_backends(), ["zkwasm"]);
        let summary = r.failure_summary().unwrap();
        assert!(
            summary.contains("file/params") && summary.contains("missing"),
            "{summary}"
        );
        assert!(
            summary.contains("provernode artifacts import FILE --name params"),
            "{summary}"
        );
        let err = s.read("file/params").unwrap_err().to_string();
        assert!(err.contains("both copies"), "{err}");
        assert!(s.restore("file/params").is_err());
        // Importing a good copy again heals it.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("params");
        std::fs::write(&file, b"good bytes").unwrap();
        s.import(&file, None, Some("zkwasm")).unwrap();
        assert!(good(&s.verify(&mut |_| {}).unwrap()));
    }

    #[test]
    fn a_damaged_manifest_is_replaced_by_its_backup_and_both_lost_is_an_error() {
        let (d, s) = store();
        s.put("program/p", "program", b"elf", None).unwrap();
        let manifest = d.path().join("a").join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).unwrap();
        // Valid JSON, wrong content: only the checksum tells.
        std::fs::write(&manifest, text.replace("\"size\": 3", "\"size\": 4")).unwrap();
        let r = s.verify(&mut |_| {}).unwrap();
        assert_eq!(r.manifest_repaired.as_ref().map(|(c, _)| *c), Some(Copy::Primary));
        assert!(good(&r));
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
        std::fs::write(&manifest, b"{").unwrap();
        std::fs::write(d.path().join("b").join(MANIFEST), b"").unwrap();
        let err = s.list().unwrap_err().to_string();
        assert!(err.contains("both copies of the artifact manifest"), "{err}");
    }

    #[test]
    fn opening_creates_nothing_and_many_are_stored_with_one_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let s = ArtifactStore::open(&a, &b, "test 1").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(!a.exists() && !b.exists(), "a look leaves no directory behind");
        s.put("file/first", "file", b"one", None).unwrap();
        let items: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("program/p{i}"), vec![i; 10])).collect();
        let entries = s.put_many("program", &items).unwrap();
        assert_eq!(entries.len(), 3);
        let names: Vec<String> = s.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["file/first", "program/p0", "program/p1", "program/p2"]);
        assert!(good(&s.verify(&mut |_| {}).unwrap()));
        assert_eq!(s.read("program/p2").unwrap(), vec![2u8; 10]);
    }

    #[test]
    fn names_cannot_leave_the_store() {
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "sp ace",
            "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["program/ab12", "file/params-v2.bin", "sp1-keys/x_y"] {
            check_name(ok).unwrap();
        }
    }

    #[test]
    fn a_restore_rewrites_the_primary_from_a_checked_backup() {
        let (_d, s) = store();
        s.put("file/k", "file", b"key", None).unwrap();
        std::fs::write(s.path_of(Copy::Primary, "file/k"), b"xyz").unwrap();
        s.restore("file/k").unwrap();
        assert_eq!(std::fs::read(s.path_of(Copy::Primary, "file/k")).unwrap(), b"key");
        assert!(matches!(s.restore("file/none"), Err(ArtifactError::NotFound(_))));
    }
}
