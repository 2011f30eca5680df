//! The program store's API: upload a program once, list, read and delete
//! them; tasks then name a program by its id instead of carrying its ELF.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use provernode_api::{ErrorBody, ProgramInfo, ProgramList};
use provernode_core::{Program, ProgramId};
use provernode_store::{DeleteProgramOutcome, ProgramRecord};
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::extract::{bad, MAX_NAME_CHARS};
use crate::state::ApiState;

pub(crate) fn info(record: &ProgramRecord, created: bool) -> ProgramInfo {
    ProgramInfo {
        id: record.id.to_string(),
        name: record.name.clone(),
        abi: record.abi.name().to_owned(),
        size_bytes: record.size,
        created_ms: record.created_ms,
        tasks: record.tasks,
        last_task_ms: record.last_task_ms,
        created,
    }
}

/// The whole ELF, as its zkVM would load it: a malformed one would fail
/// every attempt of every task that runs it.
pub(crate) fn check_elf(state: &ApiState, program: &Program) -> Result<(), ApiError> {
    state.registry.check_program(program).map_err(|why| {
        bad(
            ErrorCode::InvalidInput,
            format!(
                "the ELF of program {:?} is not a valid {} program: {why}",
                program.name(),
                program.abi()
            ),
        )
    })
}

/// A program stored here, by id: `None` where none is.
pub(crate) async fn stored_program(state: &ApiState, id: &ProgramId) -> Result<Option<Program>, ApiError> {
    let Some((name, elf)) = state.store.program_elf(id).await? else {
        return Ok(None);
    };
    Program::from_elf(name, elf).map(Some).map_err(|e| {
        bad(
            ErrorCode::Internal,
            format!(
                "stored program {id} no longer parses ({e}); upload its file again, or restore the database from a backup"
            ),
        )
    })
}

/// The embedded node keeps every stored program in its artifact store too
/// (with a backup copy, verified at every start). The database holds the
/// program already, so a failure here is logged, not the request's.
async fn keep_as_artifact(state: &ApiState, id: &ProgramId, elf: &[u8]) {
    let Some(artifacts) = state.artifacts.clone() else {
        return;
    };
    let name = format!("program/{id}");
    let elf = elf.to_vec();
    let kept = tokio::task::spawn_blocking(move || match artifacts.entry(&name) {
        Ok(Some(_)) => Ok(()),
        _ => artifacts.put(&name, "program", &elf, None).map(|_| ()),
    })
    .await;
    match kept {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(program = %id, error = %e, "could not keep the program in the artifact store")
        }
        Err(e) => {
            tracing::warn!(program = %id, error = %e, "could not keep the program in the artifact store")
        }
    }
}

/// A deleted program's artifacts go with it: its copy, and the keys
/// backends saved for it (`keys/<backend>/<id>-<version>`). Logged, not
/// the request's failure: the database no longer holds the program, and a
/// leftover artifact costs only disk.
async fn forget_artifacts(state: &ApiState, id: &ProgramId) {
    let Some(artifacts) = state.artifacts.clone() else {
        return;
    };
    let program = format!("program/{id}");
    let keys_of = format!("/{id}-");
    let forgotten = tokio::task::spawn_blocking(move || {
        let names: Vec<String> = artifacts
            .list()?
            .into_iter()
            .map(|e| e.name)
            .filter(|name| *name == program || (name.starts_with("keys/") && name.contains(&keys_of)))
            .collect();
        for name in &names {
            artifacts.remove(name)?;
        }
        Ok::<usize, provernode_artifacts::ArtifactError>(names.len())
    })
    .await;
    match forgotten {
        Ok(Ok(n)) => tracing::debug!(program = %id, artifacts = n, "the deleted program's artifacts removed"),
        Ok(Err(e)) => {
            tracing::warn!(program = %id, error = %e, "could not remove the deleted program's artifacts")
        }
        Err(e) => {
            tracing::warn!(program = %id, error = %e, "could not remove the deleted program's artifacts")
        }
    }
}

fn parse_program_id(id: &str) -> Result<ProgramId, ApiError> {
    id.parse().map(ProgramId).map_err(|_| {
        bad(
            ErrorCode::NotFound,
            format!("no program {id:?}: program ids are the SHA-256 of the ELF, 64 hex digits"),
        )
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct UploadQuery {
    /// A name for messages and lists (default: the first 16 hex digits of
    /// its id). At most 256 characters.
    name: Option<String>,
}

#[utoipa::path(
    put, path = "/v1/programs", tag = "programs",
    summary = "Store a program (the ELF or R0BF file as the body)",
    description = "The body is the program's file itself (Content-Type application/octet-stream), checked whole as its zkVM would load it, with the same errors a submission gives. Stored once by its SHA-256, which is its id: uploading it again returns the same record (200). Tasks then name it by id in `program`, without `elf_base64`. Bodies above --max-program-mib are refused with 413.",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = ProgramInfo),
        (status = 200, description = "Stored already", body = ProgramInfo),
        (status = 400, description = "Not a program this node can run: the message says why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Larger than --max-program-mib", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn upload(
    State(state): State<ApiState>,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let elf = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            bad(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the program is larger than this node accepts ({} MiB, set with --max-program-mib)",
                    state.config.max_program_bytes >> 20
                ),
            )
        } else {
            bad(
                ErrorCode::InvalidRequest,
                format!("could not read the program: {}", rejection.body_text()),
            )
        }
    })?;
    if elf.is_empty() {
        return Err(bad(
            ErrorCode::InvalidRequest,
            "the body is empty: send the program's ELF (or R0BF) file as the body",
        ));
    }
    let id = ProgramId::of_elf(&elf);
    let name = match query.name {
        Some(name) => {
            crate::extract::bounded("name", &name, MAX_NAME_CHARS)?;
            name
        }
        None => id.0.short(),
    };
    let program =
        Program::from_elf(name, elf.to_vec()).map_err(|e| bad(ErrorCode::InvalidInput, e.to_string()))?;
    check_elf(&state, &program)?;
    let (record, created) = state
        .store
        .put_program(&id, program.name(), program.abi(), program.elf())
        .await?;
    if created {
        metrics::counter!("provernode_programs_stored_total").increment(1);
        tracing::info!(program = %id, name = %record.name, abi = %record.abi.name(), bytes = record.size, "program stored");
    }
    keep_as_artifact(&state, &id, program.elf()).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info(&record, created))).into_response())
}

#[utoipa::path(
    get, path = "/v1/programs", tag = "programs",
    summary = "Every stored program, oldest first, with how many tasks run it",
    responses(
        (status = 200, description = "The programs", body = ProgramList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<ProgramList>, ApiError> {
    let programs = state.store.programs().await?;
    Ok(Json(ProgramList {
        programs: programs.iter().map(|r| info(r, false)).collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/programs/{id}", tag = "programs",
    summary = "One stored program's record",
    params(("id" = String, Path, description = "The program id (SHA-256 of the file, 64 hex digits)")),
    responses(
        (status = 200, description = "The program", body = ProgramInfo),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ProgramInfo>, ApiError> {
    let id = parse_program_id(&id)?;
    match state.store.program(&id).await? {
        Some(record) => Ok(Json(info(&record, false))),
        None => Err(bad(
            ErrorCode::NotFound,
            format!("no program {id} is stored on this node"),
        )),
    }
}

#[utoipa::path(
    delete, path = "/v1/programs/{id}", tag = "programs",
    summary = "Delete a program that no task references",
    params(("id" = String, Path, description = "The program id (SHA-256 of the file, 64 hex digits)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such program", body = ErrorBody),
        (status = 409, description = "program_in_use: tasks still reference it", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_program_id(&id)?;
    match state.store.delete_program(&id).await? {
        DeleteProgramOutcome::Deleted => {
            tracing::info!(program = %id, "program deleted");
            forget_artifacts(&state, &id).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        DeleteProgramOutcome::NotFound => Err(bad(ErrorCode::NotFound, format!("no program {id} is stored on this node"))),
        DeleteProgramOutcome::InUse { tasks } => Err(bad(
            ErrorCode::ProgramInUse,
            format!("program {id} is run by {tasks} task(s) that the node keeps (their attempts and proofs name it); it cannot be deleted while they exist"),
        )),
    }
}
