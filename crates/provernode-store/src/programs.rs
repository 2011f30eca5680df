//! The program store: every ELF a node has been given, once, by its
//! SHA-256 (the program id). Tasks refer to a program by id, so a program
//! uploaded once (`PUT /v1/programs`) or first seen inline in a submission
//! is stored once however many tasks run it; a program that tasks still
//! reference cannot be deleted (their attempts and proofs name it).

use provernode_core::{Abi, ProgramId};

/// A stored program, without its ELF bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRecord {
    pub id: ProgramId,
    /// The name it was first stored under (a built-in guest's name, an
    /// uploaded file's name, or the name a submission gave).
    pub name: String,
    pub abi: Abi,
    /// Bytes of the ELF (or R0BF) file.
    pub size: u64,
    pub created_ms: i64,
    /// Tasks that run it (parts of split tasks not counted).
    pub tasks: u64,
    /// When the newest of those tasks was submitted.
    pub last_task_ms: Option<i64>,
}

/// What deleting a program did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteProgramOutcome {
    Deleted,
    NotFound,
    /// Refused: this many tasks (parts included) still reference it.
    InUse {
        tasks: u64,
    },
}

pub(crate) const INSERT: &str =
    "INSERT INTO programs (id, name, abi, elf, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (id) DO NOTHING";

/// One program's record, with its task count (`?1`: its id, or NULL for all).
pub(crate) const RECORDS: &str = "SELECT p.id AS id, p.name AS name, p.abi AS abi, \
        CAST(LENGTH(p.elf) AS BIGINT) AS size, p.created_ms AS created_ms, \
        (SELECT COUNT(*) FROM tasks t WHERE t.program_id = p.id AND t.parent_id IS NULL) AS tasks, \
        (SELECT MAX(t.created_ms) FROM tasks t WHERE t.program_id = p.id AND t.parent_id IS NULL) AS last_task_ms \
     FROM programs p";

pub(crate) const IDS: &str = "SELECT id FROM programs ORDER BY created_ms, id";

pub(crate) const ELF: &str = "SELECT name, elf FROM programs WHERE id = ?1";

pub(crate) const USERS: &str = "SELECT COUNT(*) FROM tasks WHERE program_id = ?1";

pub(crate) const DELETE_UNUSED: &str =
    "DELETE FROM programs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tasks WHERE program_id = ?1)";

/// A task insert that named a program with no row: the database reports
/// the task's foreign key, checked as the task is inserted (in SQLite a
/// read first could not be upgraded to a write under load).
pub(crate) fn unknown_program_or(
    e: sqlx::Error,
    id: &ProgramId,
    named_without_elf: bool,
) -> crate::StoreError {
    match &e {
        sqlx::Error::Database(d) if named_without_elf && d.is_foreign_key_violation() => {
            crate::StoreError::UnknownProgram(*id)
        }
        _ => e.into(),
    }
}

pub(crate) fn parse_abi(name: &str) -> Result<Abi, crate::StoreError> {
    name.parse::<Abi>()
        .map_err(|e| crate::StoreError::Corrupt(format!("a stored program's ABI: {e}")))
}

pub(crate) fn parse_program_id(text: &str) -> Result<ProgramId, crate::StoreError> {
    text.parse()
        .map(ProgramId)
        .map_err(|e| crate::StoreError::Corrupt(format!("a stored program id: {e}")))
}

macro_rules! programs_glue {
    ($store:ty, $sql:path) => {
        impl $store {
            fn program_from_row(
                row: &<Self as $crate::programs::HasRow>::Row,
            ) -> Result<$crate::ProgramRecord, $crate::StoreError> {
                use sqlx::Row;
                let size: i64 = row.try_get("size")?;
                let tasks: i64 = row.try_get("tasks")?;
                Ok($crate::ProgramRecord {
                    id: $crate::programs::parse_program_id(&row.try_get::<String, _>("id")?)?,
                    name: row.try_get("name")?,
                    abi: $crate::programs::parse_abi(&row.try_get::<String, _>("abi")?)?,
                    size: u64::try_from(size).unwrap_or(0),
                    created_ms: row.try_get("created_ms")?,
                    tasks: u64::try_from(tasks).unwrap_or(0),
                    last_task_ms: row.try_get("last_task_ms")?,
                })
            }

            async fn do_put_program(
                &self,
                id: &provernode_core::ProgramId,
                name: &str,
                abi: provernode_core::Abi,
                elf: &[u8],
            ) -> Result<($crate::ProgramRecord, bool), $crate::StoreError> {
                if provernode_core::ProgramId::of_elf(elf) != *id {
                    return Err($crate::StoreError::Corrupt(format!(
                        "program {id} was given with bytes of another SHA-256"
                    )));
                }
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(&$sql($crate::programs::INSERT))
                    .bind(id.to_string())
                    .bind(name)
                    .bind(abi.name())
                    .bind(elf)
                    .bind(self.now())
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query(&$sql(&format!("{} WHERE p.id = ?1", $crate::programs::RECORDS)))
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((Self::program_from_row(&row)?, inserted.rows_affected() == 1))
            }

            async fn do_program(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<Option<$crate::ProgramRecord>, $crate::StoreError> {
                let row = sqlx::query(&$sql(&format!("{} WHERE p.id = ?1", $crate::programs::RECORDS)))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::program_from_row).transpose()
            }

            async fn do_program_elf(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<Option<(String, Vec<u8>)>, $crate::StoreError> {
                let program: Option<(String, Vec<u8>)> = sqlx::query_as(&$sql($crate::programs::ELF))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                match program {
                    Some((_, elf)) if provernode_core::ProgramId::of_elf(&elf) != *id => {
                        Err($crate::StoreError::Corrupt(format!(
                            "the stored bytes of program {id} no longer hash to its id: restore the database from a backup, or delete the program's tasks and upload it again"
                        )))
                    }
                    other => Ok(other),
                }
            }

            async fn do_program_ids(&self) -> Result<Vec<provernode_core::ProgramId>, $crate::StoreError> {
                let ids: Vec<String> = sqlx::query_scalar($crate::programs::IDS)
                    .fetch_all(&self.pool)
                    .await?;
                ids.iter().map(|id| $crate::programs::parse_program_id(id)).collect()
            }

            async fn do_programs(&self) -> Result<Vec<$crate::ProgramRecord>, $crate::StoreError> {
                let rows = sqlx::query(&format!(
                    "{} ORDER BY p.created_ms, p.id",
                    $crate::programs::RECORDS
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::program_from_row).collect()
            }

            async fn do_delete_program(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<$crate::DeleteProgramOutcome, $crate::StoreError> {
                // One guarded statement, so SQLite takes its write lock at
                // once (a read first could not be upgraded under load); a
                // task inserted meanwhile is stopped by its foreign key.
                let deleted = match sqlx::query(&$sql($crate::programs::DELETE_UNUSED))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                {
                    Ok(done) => done.rows_affected(),
                    Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => 0,
                    Err(e) => return Err(e.into()),
                };
                if deleted == 1 {
                    return Ok($crate::DeleteProgramOutcome::Deleted);
                }
                let users: i64 = sqlx::query_scalar(&$sql($crate::programs::USERS))
                    .bind(id.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                if users > 0 {
                    return Ok($crate::DeleteProgramOutcome::InUse {
                        tasks: u64::try_from(users).unwrap_or(0),
                    });
                }
                Ok($crate::DeleteProgramOutcome::NotFound)
            }
        }
    };
}
pub(crate) use programs_glue;

/// The row and database types of a store, for the glue above.
pub(crate) trait HasRow {
    type Row: sqlx::Row;
}

impl HasRow for crate::SqliteStore {
    type Row = sqlx::sqlite::SqliteRow;
}

impl HasRow for crate::PgStore {
    type Row = sqlx::postgres::PgRow;
}
