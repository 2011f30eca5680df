//! The record beside an embedded queue database (`store.generation` in the
//! data directory) that lets a node notice, at start, a database that is not
//! the one it left: emptied (a zero-length or deleted `queue.sqlite`),
//! replaced by another node's, or missing its write-ahead log after a crash
//! (the commits since the last checkpoint live only there). SQLite would open
//! each of these without complaint and serve an empty or old queue, losing
//! every acknowledged task without a word.
//!
//! The record holds the database's identity (a UUID written into its `meta`
//! table when it was created) and whether the node that last used it closed
//! it. It is written atomically (temporary file, fsync, rename, fsync of the
//! directory).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The record's file name in the data directory.
pub const GENERATION_FILE: &str = "store.generation";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The `database_id` in the database's `meta` table.
    pub database_id: String,
    /// False from the moment a node opens the database until it has closed
    /// it: a record that says false at start means the last node died, and
    /// its write-ahead log must still be there.
    pub closed_cleanly: bool,
}

impl Generation {
    /// Reads the record; `None` when there is none (a new data directory, or
    /// one from a version before the record).
    pub fn read(path: &Path) -> Result<Option<Generation>, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Refused(format!(
                    "cannot read {}: {e}; it records which queue database belongs to this data directory",
                    path.display()
                )))
            }
        };
        let field = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
        };
        match (field("database_id"), field("closed_cleanly")) {
            (Some(id), Some(clean)) if !id.is_empty() && (clean == "true" || clean == "false") => {
                Ok(Some(Generation {
                    database_id: id,
                    closed_cleanly: clean == "true",
                }))
            }
            _ => Err(StoreError::Refused(format!(
                "{} is damaged (it should hold database_id=... and closed_cleanly=true|false); if the queue database beside it is the right one, delete {} and start again",
                path.display(),
                path.display()
            ))),
        }
    }

    /// Writes the record atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp: PathBuf = path.with_extension("generation.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            write!(
                f,
                "# provernode: which queue database belongs to this data directory. Do not edit.\n\
                 database_id={}\nclosed_cleanly={}\n",
                self.database_id, self.closed_cleanly
            )?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

/// What the files on disk say before the database is opened.
pub(crate) fn check_files_before_open(
    db: &Path,
    record: &Path,
    generation: &Generation,
) -> Result<(), StoreError> {
    let restore = format!(
        "restore {} (and its -wal file) from a backup; to start over with an empty queue instead, move the data directory's {} away",
        db.display(),
        GENERATION_FILE
    );
    match std::fs::metadata(db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Refused(format!(
                "the queue database {} is missing, but {} says this data directory holds database {}: every task it held would be lost; {restore}",
                db.display(),
                record.display(),
                generation.database_id
            )))
        }
        Err(e) => {
            return Err(StoreError::Refused(format!(
                "cannot read the queue database {}: {e}",
                db.display()
            )))
        }
        Ok(m) if m.len() == 0 => {
            return Err(StoreError::Refused(format!(
                "the queue database {} is empty (0 bytes), but {} says this data directory holds database {}: every task it held would be lost; {restore}",
                db.display(),
                record.display(),
                generation.database_id
            )))
        }
        Ok(_) => {}
    }
    let wal = wal_path(db);
    if !generation.closed_cleanly && !wal.exists() {
        return Err(StoreError::Refused(format!(
            "the last node using {} stopped without closing it, and its write-ahead log {} is gone: the tasks and results committed since the last checkpoint are only there; put the -wal file back beside the database, or {restore}",
            db.display(),
            wal.display()
        )));
    }
    Ok(())
}

/// Compares the opened database's identity with the record.
pub(crate) fn check_identity(
    db: &Path,
    record: &Path,
    generation: &Generation,
    found: Option<&str>,
) -> Result<(), StoreError> {
    match found {
        Some(id) if id == generation.database_id => Ok(()),
        Some(id) => Err(StoreError::Refused(format!(
            "the queue database {} is database {id}, but {} says this data directory holds database {}: it was replaced by another one; put the right database back, or, to use this one, move {} away",
            db.display(),
            record.display(),
            generation.database_id,
            record.display()
        ))),
        None => Err(StoreError::Refused(format!(
            "the queue database {} has no identity (it was emptied, or recreated), but {} says this data directory holds database {}: every task it held would be lost; restore the database from a backup, or, to start over with an empty queue, move {} away",
            db.display(),
            record.display(),
            generation.database_id,
            record.display()
        ))),
    }
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GENERATION_FILE);
        assert_eq!(Generation::read(&path).unwrap(), None);
        let g = Generation {
            database_id: "0190-abc".into(),
            closed_cleanly: false,
        };
        g.write(&path).unwrap();
        assert_eq!(Generation::read(&path).unwrap(), Some(g));
        std::fs::write(&path, "database_id=\n").unwrap();
        let e = Generation::read(&path).unwrap_err().to_string();
        assert!(e.contains("is damaged") && e.contains("delete"), "{e}");
    }

    #[test]
    fn an_empty_or_missing_database_or_a_lost_log_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.sqlite");
        let record = dir.path().join(GENERATION_FILE);
        let g = Generation {
            database_id: "id-1".into(),
            closed_cleanly: true,
        };
        let e = check_files_before_open(&db, &record, &g).unwrap_err().to_string();
        assert!(e.contains("is missing") && e.contains("restore"), "{e}");
        std::fs::write(&db, b"").unwrap();
        let e = check_files_before_open(&db, &record, &g).unwrap_err().to_string();
        assert!(e.contains("is empty (0 bytes)"), "{e}");
        std::fs::write(&db, b"SQLite format 3\0").unwrap();
        check_files_before_open(&db, &record, &g).unwrap();
        let dirty = Generation {
            closed_cleanly: false,
            ..g.clone()
        };
        let e = check_files_before_open(&db, &record, &dirty)
            .unwrap_err()
            .to_string();
        assert!(e.contains("write-ahead log") && e.contains("-wal"), "{e}");
        std::fs::write(wal_path(&db), b"").unwrap();
        check_files_before_open(&db, &record, &dirty).unwrap();

        check_identity(&db, &record, &g, Some("id-1")).unwrap();
        let e = check_identity(&db, &record, &g, Some("id-2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("replaced"), "{e}");
        let e = check_identity(&db, &record, &g, None).unwrap_err().to_string();
        assert!(e.contains("no identity"), "{e}");
    }
}
