//! The client API: submit, read, list, cancel tasks, fetch proofs;
//! health, readiness and metrics.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use provernode_core::{Abi, ComponentStatus, Program, ProgramId, TaskLimits, TaskState};
use provernode_guests::InputArgs;
use provernode_store::{CancelOutcome, ListFilter, NewTask, PartsFilter, TaskId, TaskRecord};
use std::collections::BTreeMap;

use provernode_api::{
    Attempt, Cancelled, ComponentView, DependencyView, ErrorBody, Health, LeaseView, LimitsView, ProgramView,
    Readiness, Retried, SubmitTask, Submitted, Task, TaskList, TaskWithAttempts,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};
use crate::extract::{
    authorized, bad, bounded, json_body, parse_task_id, MAX_IDEMPOTENCY_KEY_CHARS, MAX_KIND_CHARS,
    MAX_NAME_CHARS,
};
use crate::state::ApiState;

/// Most bytes of variable-size task fields (names, details, public outputs)
/// one list response carries; a longer page is cut and `next_before` given.
const LIST_MAX_BYTES: usize = 8 << 20;

/// Every route of the API: (method, path). docs/openapi.json must match.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks"),
    ("GET", "/v1/tasks/{id}"),
    ("GET", "/v1/tasks/{id}/proof"),
    ("POST", "/v1/tasks/{id}/cancel"),
    ("POST", "/v1/tasks/{id}/retry"),
    ("PUT", "/v1/programs"),
    ("GET", "/v1/programs"),
    ("GET", "/v1/programs/{id}"),
    ("DELETE", "/v1/programs/{id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/agent/check"),
    ("POST", "/v1/agent/claim"),
    ("POST", "/v1/agent/heartbeat"),
    ("POST", "/v1/agent/complete"),
    ("POST", "/v1/agent/fail"),
    ("POST", "/v1/agent/release"),
];

/// The client API's routes, behind the client tokens, and health.
pub(crate) fn routes(state: ApiState) -> Router<ApiState> {
    let max_program_bytes = state.config.max_program_bytes;
    let clients = Router::new()
        .route("/v1/tasks", post(submit).get(list))
        .route("/v1/tasks/{id}", get(task))
        .route("/v1/tasks/{id}/proof", get(proof))
        .route("/v1/tasks/{id}/cancel", post(cancel))
        .route("/v1/tasks/{id}/retry", post(retry))
        .route(
            "/v1/programs",
            axum::routing::put(crate::programs::upload)
                .get(crate::programs::list)
                .layer(axum::extract::DefaultBodyLimit::max(max_program_bytes)),
        )
        .route(
            "/v1/programs/{id}",
            get(crate::programs::get_one).delete(crate::programs::delete),
        )
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(state, require_client_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(clients)
}

async fn require_client_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if !authorized(&headers, &state.config.client_tokens) {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong bearer token: send `Authorization: Bearer <token>` with a client token of this node (agent tokens cannot use the client API)",
        )
        .into_response();
    }
    next.run(request).await
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The idempotency key of a request: the body's, else the header's. A key
/// is 1 to 200 visible ASCII characters; a header that is not (non-ASCII,
/// control characters) is refused rather than ignored, which would make two
/// tasks of one request.
fn idempotency_key(body: Option<&str>, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let header = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            bad(
                ErrorCode::InvalidRequest,
                "the Idempotency-Key header must be visible ASCII characters",
            )
        })?),
    };
    let Some(key) = body.or(header) else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (no spaces)"
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    summary = "Submit a task",
    request_body = SubmitTask,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as idempotency_key in the body: 1 to 200 visible ASCII characters.")),
    responses(
        (status = 201, description = "Stored", body = Submitted),
        (status = 200, description = "An earlier task with the same idempotency key and request", body = Submitted),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 409, description = "Conflict: see the error code", body = ErrorBody),
        (status = 413, description = "Body or input too large (--max-input-mib)", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<SubmitTask>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json_body(body)?;
    bounded("program", &req.program, MAX_NAME_CHARS)?;
    for (field, value) in [
        ("backend", &req.backend),
        ("proof_kind", &req.proof_kind),
        ("abi", &req.abi),
    ] {
        if let Some(v) = value {
            bounded(field, v, MAX_KIND_CHARS)?;
        }
    }
    let idempotency_key = idempotency_key(req.idempotency_key.as_deref(), &headers)?;
    let dependencies = match &req.aggregate_of {
        Some(ids) => Some(aggregate_dependencies(&state, ids, &req).await?),
        None => None,
    };
    let backend_name = req
        .backend
        .clone()
        .or_else(|| dependencies.as_ref().map(|d| d.backend.clone()))
        .unwrap_or_else(|| "trace".to_owned());
    let backend = state
        .registry
        .get(&backend_name)
        .map_err(|e| bad(ErrorCode::UnknownBackend, e.to_string()))?;
    if state.config.require_local_backend {
        backend
            .available()
            .map_err(|e| bad(ErrorCode::BackendUnavailable, e.to_string()))?;
    } else if !state.config.trust_agents {
        // A broker stores only proofs it has verified itself.
        backend.available().map_err(|e| {
            bad(
                ErrorCode::BackendUnavailable,
                format!(
                    "this broker cannot verify {backend_name} proofs ({}), so it takes no {backend_name} tasks: run a broker built with that backend, or start it with --trust-agents to store what agents verified",
                    e.reason
                ),
            )
        })?;
    }
    let abi = match &req.abi {
        Some(a) => Some(a.parse::<Abi>().map_err(|e| bad(ErrorCode::InvalidRequest, e))?),
        None => dependencies.as_ref().map(|d| d.abi),
    };
    // A program stored on this node (uploaded, or seen inline before) is
    // named by its id and travels to the store without its bytes.
    let mut stored_program = false;
    let (program, guest) = if let Some(elf_b64) = &req.elf_base64 {
        let elf = base64::engine::general_purpose::STANDARD
            .decode(elf_b64)
            .map_err(|e| {
                bad(
                    ErrorCode::InvalidRequest,
                    format!("elf_base64 is not base64: {e}"),
                )
            })?;
        let program = Program::from_elf(req.program.clone(), elf)
            .map_err(|e| bad(ErrorCode::InvalidRequest, e.to_string()))?;
        (program, None)
    } else {
        let guest = provernode_guests::find(&req.program)
            .map(|g| (g, None))
            .or_else(|| {
                let id = req.program.parse().ok().map(ProgramId)?;
                provernode_guests::find_by_id(id).map(|(g, abi)| (g, Some(abi)))
            });
        let stored = match (&guest, req.program.parse().ok().map(ProgramId)) {
            (None, Some(id)) => crate::programs::stored_program(&state, &id).await?,
            _ => None,
        };
        if let Some(program) = stored {
            stored_program = true;
            (program, None)
        } else {
            let Some((guest, id_abi)) = guest else {
                let names: Vec<_> = provernode_guests::all().iter().map(|g| g.name).collect();
                return Err(bad(
                ErrorCode::UnknownProgram,
                format!(
                    "unknown program {:?}: give a built-in guest ({}), the id of a program stored on this node (PUT /v1/programs, `provernode programs upload FILE`), or the ELF itself in elf_base64",
                    req.program,
                    names.join(", ")
                ),
            ));
            };
            if let (Some(asked), Some(of_id)) = (abi, id_abi) {
                if asked != of_id {
                    return Err(bad(
                    ErrorCode::InvalidRequest,
                    format!(
                        "program {} is the {of_id} build of {}, but abi is {asked}; leave abi out, or give the {asked} build's id or the guest's name",
                        req.program, guest.name
                    ),
                ));
                }
            }
            let abi = abi.or(id_abi).unwrap_or(match backend.abis() {
                [only] => *only,
                _ => Abi::Risc0,
            });
            (guest.program(abi), Some(guest))
        }
    };
    if let Some(abi) = abi {
        if abi != program.abi() {
            return Err(bad(
                ErrorCode::InvalidRequest,
                format!(
                    "abi {abi} does not match the program, which is a {} ELF",
                    program.abi()
                ),
            ));
        }
    }
    if !backend.abis().contains(&program.abi()) {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!("backend {backend_name} cannot run {} programs", program.abi()),
        ));
    }
    // The whole ELF, as its zkVM would load it: a malformed one would fail
    // every attempt. (A stored program was checked when it was stored.)
    if !stored_program {
        crate::programs::check_elf(&state, &program)?;
    }
    let raw_count = [
        req.input.is_some(),
        req.input_hex.is_some(),
        req.input_base64.is_some(),
        req.input_items_base64.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if raw_count > 1 {
        return Err(bad(
            ErrorCode::InvalidRequest,
            "give at most one of input, input_hex, input_base64 and input_items_base64",
        ));
    }
    let input = if let Some(dependencies) = &dependencies {
        if raw_count > 0 || req.input.is_some() {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "an aggregate's input is the proofs of the tasks in aggregate_of; give no input",
            ));
        }
        if dependencies.backend != backend_name || dependencies.abi != program.abi() {
            return Err(bad(
                ErrorCode::InvalidRequest,
                format!(
                    "aggregate_of names {} tasks of backend {} ({} ABI), but this task runs program {:?} ({} ABI) on backend {backend_name}; an aggregate verifies proofs of its own backend and ABI",
                    dependencies.ids.len(),
                    dependencies.backend,
                    dependencies.abi,
                    program.name(),
                    program.abi()
                ),
            ));
        }
        Vec::new()
    } else if let Some(items) = &req.input_items_base64 {
        if items.len() > provernode_core::input::MAX_ITEMS {
            return Err(bad(
                ErrorCode::InvalidInput,
                format!(
                    "input_items_base64 holds {} items; at most {} are accepted",
                    items.len(),
                    provernode_core::input::MAX_ITEMS
                ),
            ));
        }
        let items = items
            .iter()
            .enumerate()
            .map(|(i, b)| {
                base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| {
                    bad(
                        ErrorCode::InvalidInput,
                        format!("input_items_base64[{i}] is not base64: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        provernode_core::input::from_items(program.abi(), &items)
    } else if let Some(h) = &req.input_hex {
        hex::decode(h).map_err(|e| bad(ErrorCode::InvalidInput, format!("input_hex is not hex: {e}")))?
    } else if let Some(b) = &req.input_base64 {
        base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| {
            bad(
                ErrorCode::InvalidInput,
                format!("input_base64 is not base64: {e}"),
            )
        })?
    } else if let Some(typed) = &req.input {
        let Some(guest) = guest else {
            return Err(bad(
                ErrorCode::InvalidInput,
                "typed input works only for built-in guests; use input_hex or input_base64",
            ));
        };
        let seed = match &typed.seed {
            Some(s) => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| bad(ErrorCode::InvalidInput, "seed must be 64 hex digits (32 bytes)"))?;
                Some(out)
            }
            None => None,
        };
        let args = InputArgs {
            n: typed.n,
            seed,
            rounds: typed.rounds,
            text: typed.text.clone(),
        };
        guest
            .encode_input(&args)
            .map_err(|e| bad(ErrorCode::InvalidInput, e.to_string()))?
    } else if let Some(guest) = guest {
        // No input at all: what the guest's typed input says without any
        // flag (an error for a guest that needs one, as `prove` says).
        guest
            .encode_input(&InputArgs::default())
            .map_err(|e| bad(ErrorCode::InvalidInput, e.to_string()))?
    } else {
        Vec::new()
    };
    // Input bytes that claim to be an SP1 item list must be one.
    provernode_core::input::check(program.abi(), &input)
        .map_err(|e| bad(ErrorCode::InvalidInput, e.to_string()))?;
    if input.len() > state.config.max_input_bytes {
        return Err(bad(
            ErrorCode::PayloadTooLarge,
            format!(
                "the input is {} bytes; this node accepts at most {} (--max-input-mib)",
                input.len(),
                state.config.max_input_bytes
            ),
        ));
    }
    // An aggregate is proved with the kind that resolves its inner proofs
    // unless it names one; the stored kind is the one its limits are
    // sized for.
    let proof_kind = req.proof_kind.clone().or_else(|| {
        dependencies
            .as_ref()
            .and(backend.aggregate_proof_kind())
            .map(str::to_owned)
    });
    // A kind the backend lacks would fail every attempt; say so now.
    if proof_kind.is_some() {
        backend
            .resolve_proof_kind(proof_kind.as_deref())
            .map_err(|e| bad(ErrorCode::InvalidRequest, e.to_string()))?;
    }
    let d = state.config.default_limits;
    let timeout_ms = match req.timeout_secs {
        Some(s) if !(s > 0.0 && s <= 7.0 * 86400.0) => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "timeout_secs must be above 0 and at most 7 days",
            ))
        }
        Some(s) => (s * 1000.0).ceil() as u64,
        // Proofs slower than the node's default allows on a slow machine
        // (SP1 compressed) get the backend's floor instead of timing out on
        // every attempt; a task that names its limit keeps it.
        None => d.timeout_ms.max(
            u64::try_from(backend.min_default_timeout(proof_kind.as_deref()).as_millis()).unwrap_or(u64::MAX),
        ),
    };
    let memory_limit_bytes = match req.memory_limit_mib {
        Some(m) if !(16..=1 << 22).contains(&m) => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "memory_limit_mib must be between 16 and 4194304",
            ))
        }
        Some(m) => m << 20,
        None => d.memory_limit_bytes,
    };
    // A backend that states what its proofs need gets at least that: by
    // default silently, and a task that asks for less is refused now rather
    // than killed for memory on every attempt.
    let needed = backend.min_memory_bytes(proof_kind.as_deref());
    let memory_limit_bytes = match req.memory_limit_mib {
        Some(m) if (m << 20) < needed => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                format!(
                    "backend {backend_name} needs at least {} MiB for these proofs (memory_limit_mib is {m}); raise memory_limit_mib or leave it out",
                    needed >> 20
                ),
            ))
        }
        _ => memory_limit_bytes.max(needed),
    };
    if let Some(most) = state
        .config
        .max_task_memory_bytes
        .filter(|m| memory_limit_bytes > *m)
    {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "the task needs {} MiB per attempt, but this node gives one attempt at most {} MiB (its --memory-budget-mib); lower memory_limit_mib or run the node with a larger budget on a larger machine",
                memory_limit_bytes >> 20,
                most >> 20
            ),
        ));
    }
    let max_attempts = match req.max_attempts {
        Some(n) if !(1..=100).contains(&n) => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "max_attempts must be between 1 and 100",
            ))
        }
        Some(n) => n,
        None => d.max_attempts,
    };
    let max_guest_memory_bytes = match req.max_guest_memory_mib {
        Some(m) if m == 0 || m > 1 << 22 => {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "max_guest_memory_mib must be between 1 and 4194304",
            ))
        }
        Some(m) => m << 20,
        None => d.max_guest_memory_bytes,
    };
    let most = state.config.max_reexecuted_guest_memory_bytes;
    if backend.verification_runs_the_guest() && max_guest_memory_bytes > most {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "max_guest_memory_mib is {} but this node verifies {backend_name} proofs by re-running the guest in its own process, with at most {} MiB (its --max-trace-guest-memory-mib); lower it",
                max_guest_memory_bytes >> 20,
                most >> 20
            ),
        ));
    }
    let (lo, hi) = program.abi().address_space();
    if max_guest_memory_bytes > hi - lo {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "max_guest_memory_mib is {} but the {} ABI gives a guest at most {} MiB; lower it",
                max_guest_memory_bytes >> 20,
                program.abi(),
                (hi - lo) >> 20
            ),
        ));
    }
    let max_cycles = match req.max_cycles {
        Some(0) => return Err(bad(ErrorCode::InvalidRequest, "max_cycles must be positive")),
        Some(c) if c > i64::MAX as u64 => {
            return Err(bad(ErrorCode::InvalidRequest, "max_cycles is too large"))
        }
        Some(c) => c,
        None => d.max_cycles,
    };
    if let Some(deadline) = req.deadline_ms {
        if deadline <= now_ms() {
            return Err(bad(
                ErrorCode::InvalidRequest,
                "deadline_ms is in the past (it is Unix time in milliseconds)",
            ));
        }
    }
    let new = NewTask {
        program_id: program.id(),
        program_name: program.name().to_owned(),
        abi: program.abi(),
        elf: if stored_program {
            Vec::new()
        } else {
            program.elf().to_vec()
        },
        input,
        backend: backend_name,
        proof_kind,
        limits: TaskLimits {
            max_cycles,
            max_guest_memory_bytes,
            timeout_ms,
            memory_limit_bytes,
            max_attempts,
            // No timeout named: the default is a floor, and an attempt gets
            // longer when its cycles and the measured rate say so.
            timeout_from_rate: req.timeout_secs.is_none(),
        },
        priority: req.priority.unwrap_or(0),
        deadline_ms: req.deadline_ms,
        idempotency_key,
        depends_on: dependencies.map(|d| d.ids).unwrap_or_default(),
    };
    let submitted = state.store.submit(new).await?;
    if !submitted.deduplicated {
        metrics::counter!("provernode_tasks_submitted_total").increment(1);
        state.wake.notify_waiters();
    }
    let status = if submitted.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = Submitted {
        id: submitted.id.to_string(),
        deduplicated: submitted.deduplicated,
    };
    Ok((status, Json(body)).into_response())
}

/// The tasks an aggregate depends on, checked: all exist, all of one
/// backend and one ABI.
struct Dependencies {
    ids: Vec<TaskId>,
    backend: String,
    abi: Abi,
}

async fn aggregate_dependencies(
    state: &ApiState,
    ids: &[String],
    req: &SubmitTask,
) -> Result<Dependencies, ApiError> {
    let most = provernode_core::aggregate::MAX_CLAIMS;
    if ids.is_empty() || ids.len() > most {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "aggregate_of names {} tasks; an aggregate covers 1 to {most}",
                ids.len()
            ),
        ));
    }
    if req.program != provernode_guests::AGGREGATE && req.elf_base64.is_none() {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "aggregate_of needs program {:?} (the built-in aggregating guest) or an ELF of your own in elf_base64, not {:?}",
                provernode_guests::AGGREGATE,
                req.program
            ),
        ));
    }
    let mut found: Option<(String, Abi)> = None;
    let mut parsed = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let task_id: TaskId = id.parse().map_err(|_| {
            bad(
                ErrorCode::InvalidRequest,
                format!("aggregate_of[{index}] is not a task id: {id:?}"),
            )
        })?;
        let task = state.store.task(task_id).await?.ok_or_else(|| {
            bad(
                ErrorCode::NotFound,
                format!("aggregate_of[{index}]: there is no task {task_id}"),
            )
        })?;
        match &found {
            None => found = Some((task.backend.clone(), task.abi)),
            Some((backend, abi)) if *backend != task.backend || *abi != task.abi => {
                return Err(bad(
                    ErrorCode::InvalidRequest,
                    format!(
                        "aggregate_of[{index}] is task {task_id} of backend {} ({} ABI), but aggregate_of[0] is of backend {backend} ({abi} ABI); an aggregate verifies proofs of one backend and one ABI",
                        task.backend, task.abi
                    ),
                ));
            }
            Some(_) => {}
        }
        parsed.push(task_id);
    }
    let (backend, abi) = found.ok_or_else(|| bad(ErrorCode::InvalidRequest, "aggregate_of is empty"))?;
    Ok(Dependencies {
        ids: parsed,
        backend,
        abi,
    })
}

/// The API's view of a stored task.
pub(crate) fn task_view(t: &TaskRecord) -> Task {
    let guest = provernode_guests::find_by_id(t.program_id).map(|(g, _)| g);
    Task {
        id: t.id.to_string(),
        state: state_view(t.state),
        terminal_reason: t.cause.map(|c| c.to_string()),
        detail: t.detail.clone(),
        program: ProgramView {
            name: t.program_name.clone(),
            id: t.program_id.to_string(),
            abi: t.abi.name().to_owned(),
        },
        backend: t.backend.clone(),
        proof_kind: t.proof_kind.clone(),
        input_digest: t.input_digest.to_string(),
        input_bytes: t.input_len,
        priority: t.priority,
        deadline_ms: t.deadline_ms,
        idempotency_key: t.idempotency_key.clone(),
        limits: LimitsView {
            timeout_ms: t.limits.timeout_ms,
            memory_limit_bytes: t.limits.memory_limit_bytes,
            max_attempts: t.limits.max_attempts,
            max_cycles: t.limits.max_cycles,
            max_guest_memory_bytes: t.limits.max_guest_memory_bytes,
        },
        attempts: t.attempts,
        failures: t.failures,
        lease_losses: t.lease_losses,
        lease: t.lease_owner.as_ref().map(|owner| LeaseView {
            owner: owner.clone(),
            expires_ms: t.lease_expires_ms,
        }),
        public_output_hex: t.public_output.as_ref().map(hex::encode),
        output: match (&t.public_output, guest) {
            (Some(o), Some(g)) => Some(g.describe_output(o)),
            _ => None,
        },
        cycles: t.cycles,
        created_ms: t.created_ms,
        updated_ms: t.updated_ms,
        finished_ms: t.finished_ms,
        depends_on: Vec::new(),
        part: match (t.parent_id, t.part) {
            (Some(parent), Some((lo, hi))) => Some(provernode_api::PartView {
                parent_id: parent.to_string(),
                lo,
                hi,
            }),
            _ => None,
        },
        split: None,
    }
}

pub(crate) fn state_view(s: TaskState) -> provernode_api::TaskState {
    use provernode_api::TaskState as View;
    match s {
        TaskState::Queued => View::Queued,
        TaskState::Leased => View::Leased,
        TaskState::Succeeded => View::Succeeded,
        TaskState::Failed => View::Failed,
        TaskState::Cancelled => View::Cancelled,
        TaskState::Quarantined => View::Quarantined,
    }
}

#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    summary = "A task, with every attempt's end and cause",
    params(("id" = String, Path, description = "The task id (a UUID)")),
    responses(
        (status = 200, description = "The task", body = TaskWithAttempts),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn task(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<TaskWithAttempts>, ApiError> {
    let id = parse_task_id(&id)?;
    let t = state
        .store
        .task(id)
        .await?
        .ok_or_else(|| bad(ErrorCode::NotFound, format!("no task {id}")))?;
    let attempts = state.store.attempts(id).await?;
    let mut task = task_view(&t);
    task.depends_on = state
        .store
        .dependencies(id)
        .await?
        .into_iter()
        .map(|(id, s)| DependencyView {
            id: id.to_string(),
            state: state_view(s),
        })
        .collect();
    task.split = state
        .store
        .split_progress(id)
        .await?
        .map(|p| provernode_api::SplitView {
            segments: p.segments,
            segment_po2: p.segment_po2,
            segments_proved: p.segments_proved,
            joins: p.joins,
            joins_done: p.joins_done,
            parts_running: p.parts_running,
        });
    Ok(Json(TaskWithAttempts {
        task,
        attempt_history: attempts
            .into_iter()
            .map(|a| Attempt {
                attempt: a.attempt,
                owner: a.owner,
                started_ms: a.started_ms,
                ended_ms: a.ended_ms,
                elapsed_ms: (a.ended_ms.unwrap_or_else(now_ms) - a.started_ms).max(0),
                phase: a.phase,
                outcome: a.outcome,
                detail: a.detail,
                stderr_tail: a.stderr_tail,
            })
            .collect(),
        events: state
            .store
            .events(id)
            .await?
            .into_iter()
            .map(|e| provernode_api::TaskEvent {
                at_ms: e.at_ms,
                kind: e.kind,
                detail: e.detail,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only tasks in this state.
    #[param(value_type = Option<provernode_api::TaskState>)]
    state: Option<String>,
    /// Most tasks in the page (1 to 1000, default 100).
    limit: Option<u32>,
    /// Only tasks older than this task id (the previous page's next_before).
    before: Option<String>,
    /// Only tasks that ended with this terminal reason (timeout, out_of_memory, ...).
    reason: Option<String>,
    /// Only tasks of this backend.
    backend: Option<String>,
    /// Only the parts (segments and joins) of this split task.
    parent: Option<String>,
    /// List split tasks' parts too (default: only the tasks clients submitted; `parent` lists one split task's parts).
    parts: Option<bool>,
}

#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    summary = "List tasks, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskList),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(q) = query.map_err(|e| bad(ErrorCode::InvalidRequest, e.body_text()))?;
    let filter = ListFilter {
        state: q
            .state
            .as_deref()
            .map(|s| {
                s.parse::<TaskState>()
                    .map_err(|e| bad(ErrorCode::InvalidRequest, e))
            })
            .transpose()?,
        reason: q
            .reason
            .map(|r| {
                r.parse::<provernode_core::Cause>()
                    .map(|c| c.to_string())
                    .map_err(|e| bad(ErrorCode::InvalidRequest, e))
            })
            .transpose()?,
        backend: match q.backend {
            Some(b) if b.is_empty() || b.len() > MAX_KIND_CHARS => {
                return Err(bad(ErrorCode::InvalidRequest, "backend must be a backend name"))
            }
            b => b,
        },
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        parts: match (q.parent, q.parts) {
            (Some(parent), _) => PartsFilter::Of(Uuid::parse_str(&parent).map_err(|_| {
                bad(
                    ErrorCode::InvalidRequest,
                    format!("parent must be a task id, not {parent:?}"),
                )
            })?),
            (None, Some(true)) => PartsFilter::Include,
            (None, _) => PartsFilter::Exclude,
        },
        max_bytes: LIST_MAX_BYTES,
        before: q
            .before
            .as_deref()
            .map(|b| {
                Uuid::parse_str(b).map_err(|_| bad(ErrorCode::InvalidRequest, "before must be a task id"))
            })
            .transpose()?,
    };
    let tasks = state.store.list(&filter).await?;
    let next = (tasks.len() as u32 == filter.limit)
        .then(|| tasks.last().map(|t| t.id.to_string()))
        .flatten();
    Ok(Json(TaskList {
        tasks: tasks.iter().map(task_view).collect(),
        next_before: next,
    }))
}

#[utoipa::path(
    get, path = "/v1/tasks/{id}/proof", tag = "tasks",
    summary = "The proof envelope of a succeeded task",
    params(("id" = String, Path, description = "The task id (a UUID)")),
    responses(
        (status = 200, description = "The proof envelope file; check it with `provernode verify`", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 409, description = "The task has no proof (yet): proof_not_ready", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn proof(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_task_id(&id)?;
    if let Some(bytes) = state.store.proof(id).await? {
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
    }
    match state.store.task(id).await? {
        None => Err(bad(ErrorCode::NotFound, format!("no task {id}"))),
        Some(t) => Err(bad(
            ErrorCode::ProofNotReady,
            match t.state {
                TaskState::Queued | TaskState::Leased => {
                    format!(
                        "task {id} is {}; poll GET /v1/tasks/{id} until it succeeds",
                        t.state
                    )
                }
                state => format!(
                    "task {id} ended {state} ({}) and has no proof",
                    t.cause.map(|c| c.to_string()).unwrap_or_default()
                ),
            },
        )),
    }
}

#[utoipa::path(
    post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    summary = "Cancel a queued or running task",
    params(("id" = String, Path, description = "The task id (a UUID)")),
    responses(
        (status = 200, description = "Cancelled; a running attempt is stopped within a heartbeat", body = Cancelled),
        (status = 409, description = "The task already ended: already_terminal", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let id = parse_task_id(&id)?;
    match state.store.cancel(id, "cancelled through the API").await? {
        CancelOutcome::Cancelled => Ok(Json(Cancelled {
            id: id.to_string(),
            state: provernode_api::TaskState::Cancelled,
        })),
        CancelOutcome::AlreadyTerminal(s) => Err(bad(
            ErrorCode::AlreadyTerminal,
            format!("task {id} already ended ({s}); nothing to cancel"),
        )),
        CancelOutcome::NotFound => Err(bad(ErrorCode::NotFound, format!("no task {id}"))),
    }
}

#[utoipa::path(
    post, path = "/v1/tasks/{id}/retry", tag = "tasks",
    summary = "Put a failed or quarantined task back in the queue with a fresh budget of attempts",
    description = "The attempt history is kept and goes on; the task's own failures and lost leases count from zero again. The retry is recorded in the task's events. Refused (409 not_retryable, with the reason and what to do) for a task that did not fail, a part of a split task, a split task, a task whose dependency failed, a passed deadline.",
    params(("id" = String, Path, description = "The task id (a UUID)")),
    responses(
        (status = 200, description = "Queued again", body = Retried),
        (status = 409, description = "Not retried: not_retryable, with the reason", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn retry(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    let id = parse_task_id(&id)?;
    match state.store.retry(id, "an operator through the API").await? {
        provernode_store::RetryOutcome::Requeued => {
            state.wake.notify_waiters();
            Ok(Json(Retried {
                id: id.to_string(),
                state: provernode_api::TaskState::Queued,
            }))
        }
        provernode_store::RetryOutcome::Refused(why) => Err(bad(
            ErrorCode::NotRetryable,
            format!("task {id} was not retried: {why}"),
        )),
        provernode_store::RetryOutcome::NotFound => Err(bad(ErrorCode::NotFound, format!("no task {id}"))),
    }
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    summary = "Readiness, with each check's finding",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the checks say why", body = Readiness)
    )
)]
pub(crate) async fn readyz(State(state): State<ApiState>) -> Response {
    let store = state.store.ping().await;
    match &store {
        Ok(()) => state.readiness.set("store", ComponentStatus::Ok, "answers"),
        Err(e) => state
            .readiness
            .set("store", ComponentStatus::Failing, e.to_string()),
    }
    readiness_response(&state.readiness, &state.registry)
}

/// `/readyz` of a node, broker or agent: ready when it accepts work and no
/// component is failing; every component with its status, since when and
/// its last error.
pub fn readiness_response(
    readiness: &provernode_core::Readiness,
    registry: &provernode_backends::Registry,
) -> Response {
    let accepting = readiness.accepting();
    let built = provernode_backends::built_in();
    for b in registry.all().iter().filter(|b| built.contains(&b.name())) {
        let name = format!("backend:{}", b.name());
        match b.available() {
            // Warm or cold is the agent's to say; say available until it does.
            Ok(()) if !readiness.components().contains_key(&name) => {
                readiness.set(&name, ComponentStatus::Ok, "available")
            }
            Ok(()) => {}
            Err(e) => readiness.set(&name, ComponentStatus::Degraded, e.reason),
        }
    }
    if !accepting && !readiness.components().contains_key("workers") {
        readiness.set(
            "workers",
            ComponentStatus::Failing,
            "not accepting work (starting or draining)",
        );
    }
    let components = readiness.components();
    let ready = accepting && components.values().all(|c| c.status != ComponentStatus::Failing);
    // `checks`, the older flat view: the store, the workers, and every
    // component that is not ok, with what was found.
    let mut checks: BTreeMap<String, String> = components
        .iter()
        .filter(|(name, c)| c.status != ComponentStatus::Ok || ["store", "workers"].contains(&name.as_str()))
        .map(|(name, c)| {
            (
                name.clone(),
                if c.status == ComponentStatus::Ok {
                    "ok".to_owned()
                } else {
                    c.detail.clone()
                },
            )
        })
        .collect();
    if let Some(w) = checks.get_mut("workers") {
        if w == "ok" {
            *w = "running".to_owned();
        }
    }
    checks.extend(readiness.notes());
    let views: BTreeMap<String, ComponentView> = components
        .iter()
        .map(|(name, c)| (name.clone(), component_view(c)))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            checks,
            components: views,
        }),
    )
        .into_response()
}

fn component_view(c: &provernode_core::Component) -> ComponentView {
    ComponentView {
        status: c.status.as_str().to_owned(),
        since_ms: c.since_ms,
        detail: c.detail.clone(),
        last_error: c.last_error.as_ref().map(|(_, e)| e.clone()),
        last_error_ms: c.last_error.as_ref().map(|(t, _)| *t),
    }
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn metrics_text(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(bad(ErrorCode::NotFound, "metrics are not enabled on this node"));
    };
    for (s, n) in state.store.counts().await? {
        metrics::gauge!("provernode_tasks", "state" => s.as_str()).set(n as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
