//! The agent API: how agents on other machines claim work, keep their
//! leases, and report results and failures. Only agent tokens are accepted
//! here, and agent tokens are accepted nowhere else.
//!
//! The broker checks that a reported proof is a well-formed envelope for the
//! task's backend, program and input, and verifies it itself, under the
//! task's guest limits, before storing it: an agent token is not a licence
//! to store a forged proof. (A broker started with `--trust-agents` stores
//! proofs of backends it cannot verify on the agents' word; `/readyz` says
//! so.)

use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use provernode_api::{
    AgentCheck, AgentClaim, AgentComplete, AgentFail, AgentHeartbeat, AgentRelease, ClaimAnswer,
    CompleteAnswer, ErrorBody, FailAnswer, FailOutcome, HeartbeatAnswer, LeaseGrant, ReleaseAnswer,
};
use provernode_core::{Cause, ProofEnvelope};
use provernode_store::{
    AttemptFailure, ClaimRequest, Completion, FailureOutcome, LeaseRef, LeaseStatus, ReleaseOutcome,
};

use crate::api::state_view;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{authorized, bad, bounded, json_body, parse_task_id, MAX_KIND_CHARS};
use crate::state::ApiState;

pub(crate) fn routes(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/v1/agent/check", get(check))
        .route("/v1/agent/claim", post(claim))
        .route("/v1/agent/heartbeat", post(heartbeat))
        .route("/v1/agent/complete", post(complete))
        .route("/v1/agent/fail", post(fail))
        .route("/v1/agent/release", post(release))
        .route_layer(middleware::from_fn_with_state(state, require_agent_token))
}

async fn require_agent_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if !authorized(&headers, &state.config.agent_tokens) {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong bearer token: the agent API needs an agent token (client tokens cannot claim work)",
        )
        .into_response();
    }
    next.run(request).await
}

#[utoipa::path(
    get, path = "/v1/agent/check", tag = "agents",
    summary = "Check an agent token, and read the broker's version and clock",
    responses(
        (status = 200, description = "The token is an agent token", body = AgentCheck),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn check() -> Json<AgentCheck> {
    let server_time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Json(AgentCheck {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server_time_ms,
    })
}

#[utoipa::path(
    post, path = "/v1/agent/claim", tag = "agents",
    summary = "Claim the best queued task this agent can run",
    request_body = AgentClaim,
    responses(
        (status = 200, description = "OK", body = ClaimAnswer),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn claim(
    State(state): State<ApiState>,
    body: Result<Json<AgentClaim>, JsonRejection>,
) -> Result<Json<ClaimAnswer>, ApiError> {
    let body = json_body(body)?;
    if body.agent.is_empty() || body.agent.len() > 200 {
        return Err(bad(
            ErrorCode::InvalidRequest,
            "agent must be 1 to 200 characters",
        ));
    }
    if body.backends.len() > 32 {
        return Err(bad(ErrorCode::InvalidRequest, "backends lists at most 32 names"));
    }
    for b in &body.backends {
        bounded("each backend", b, MAX_KIND_CHARS)?;
    }
    if body.lease_ms < 1000 || body.lease_ms > state.config.max_lease_ms {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!("lease_ms must be between 1000 and {}", state.config.max_lease_ms),
        ));
    }
    let request = ClaimRequest {
        owner: body.agent,
        backends: body.backends,
        lease_ttl_ms: body.lease_ms,
        max_memory_bytes: body.max_memory_bytes,
    };
    let Some(lease) = state.store.claim(&request).await? else {
        return Ok(Json(ClaimAnswer { lease: None }));
    };
    let t = &lease.task;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Json(ClaimAnswer {
        lease: Some(LeaseGrant {
            task_id: t.id.to_string(),
            token: lease.token.clone(),
            attempt: lease.attempt,
            expires_ms: lease.expires_ms,
            backend: t.backend.clone(),
            program_name: t.program_name.clone(),
            program_id: t.program_id.to_string(),
            abi: t.abi.name().to_owned(),
            proof_kind: t.proof_kind.clone(),
            deadline_ms: t.deadline_ms,
            max_attempts: t.limits.max_attempts,
            timeout_ms: t.limits.timeout_ms,
            memory_limit_bytes: t.limits.memory_limit_bytes,
            max_cycles: t.limits.max_cycles,
            max_guest_memory_bytes: t.limits.max_guest_memory_bytes,
            elf_base64: b64.encode(&lease.elf),
            input_base64: b64.encode(&lease.input),
            timeout_from_rate: t.limits.timeout_from_rate,
            proving_rates: lease
                .rates
                .iter()
                .map(|(proof_kind, cycles_per_sec)| provernode_api::RateView {
                    proof_kind: proof_kind.clone(),
                    cycles_per_sec: *cycles_per_sec,
                })
                .collect(),
        }),
    }))
}

fn lease_ref(task_id: &str, token: &str) -> Result<LeaseRef, ApiError> {
    Ok(LeaseRef {
        task_id: parse_task_id(task_id)?,
        token: token.to_owned(),
    })
}

#[utoipa::path(
    post, path = "/v1/agent/heartbeat", tag = "agents",
    summary = "Keep a lease alive",
    request_body = AgentHeartbeat,
    responses(
        (status = 200, description = "OK", body = HeartbeatAnswer),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn heartbeat(
    State(state): State<ApiState>,
    body: Result<Json<AgentHeartbeat>, JsonRejection>,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    let body = json_body(body)?;
    let lease_ms = body.lease_ms.clamp(1000, state.config.max_lease_ms);
    let lease = lease_ref(&body.task_id, &body.token)?;
    if let Some(phase) = &body.phase {
        bounded("phase", phase, MAX_KIND_CHARS)?;
        state.store.set_phase(&lease, phase).await?;
    }
    Ok(Json(match state.store.heartbeat(&lease, lease_ms).await? {
        LeaseStatus::Live { expires_ms } => HeartbeatAnswer::Live { expires_ms },
        LeaseStatus::Gone { state } => HeartbeatAnswer::Gone {
            state: state_view(state),
        },
    }))
}

#[utoipa::path(
    post, path = "/v1/agent/complete", tag = "agents",
    summary = "Report a proof",
    description = "The broker verifies the proof itself, under the task's guest limits, before storing it; a proof that does not verify is answered 422 proof_rejected and not stored. A broker started with --trust-agents stores proofs of backends it cannot verify as reported (its /readyz says so).",
    request_body = AgentComplete,
    responses(
        (status = 200, description = "OK", body = CompleteAnswer),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 422, description = "The reported proof does not verify; not stored", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn complete(
    State(state): State<ApiState>,
    body: Result<Json<AgentComplete>, JsonRejection>,
) -> Result<Json<CompleteAnswer>, ApiError> {
    let body = json_body(body)?;
    let lease = lease_ref(&body.task_id, &body.token)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&body.envelope_base64)
        .map_err(|e| {
            bad(
                ErrorCode::InvalidRequest,
                format!("envelope_base64 is not base64: {e}"),
            )
        })?;
    let envelope = ProofEnvelope::decode(&bytes).map_err(|e| {
        bad(
            ErrorCode::InvalidRequest,
            format!("the reported proof is not a valid envelope: {e}"),
        )
    })?;
    let task = state
        .store
        .task(lease.task_id)
        .await?
        .ok_or_else(|| bad(ErrorCode::NotFound, format!("no task {}", lease.task_id)))?;
    // The final join of a split task makes the split task's own proof,
    // which names that task's input.
    let expected_input = match (task.parent_id, task.part) {
        (Some(parent), Some((0, hi))) => match state.store.task(parent).await? {
            Some(p) if p.split_segments == Some(hi) => p.input_digest,
            _ => task.input_digest,
        },
        _ => task.input_digest,
    };
    if envelope.backend != task.backend
        || envelope.program_id != task.program_id
        || envelope.input_digest != expected_input
    {
        return Err(bad(
            ErrorCode::InvalidRequest,
            "the reported proof is for another backend, program or input than the task",
        ));
    }
    let verified = verify_reported(&state, &task, envelope).await?;
    Ok(Json(
        match state
            .store
            .complete(&lease, &bytes, &verified.public_output, verified.cycles)
            .await?
        {
            Completion::Accepted => {
                metrics::counter!("provernode_results_accepted_total").increment(1);
                CompleteAnswer {
                    accepted: true,
                    reason: None,
                }
            }
            Completion::Ignored { reason } => {
                tracing::warn!(task = %lease.task_id, %reason, "late or duplicate result ignored");
                CompleteAnswer {
                    accepted: false,
                    reason: Some(reason),
                }
            }
        },
    ))
}

/// What a reported proof says, once this broker has checked it: verified
/// here under the task's guest limits, or, for a backend this broker cannot
/// verify and only with `--trust-agents`, as the envelope states it.
async fn verify_reported(
    state: &ApiState,
    task: &provernode_store::TaskRecord,
    envelope: ProofEnvelope,
) -> Result<provernode_core::Verified, ApiError> {
    let backend = state
        .registry
        .get(&envelope.backend)
        .map_err(|e| bad(ErrorCode::ProofRejected, e.to_string()))?;
    if let Err(unavailable) = backend.available() {
        if state.config.trust_agents {
            return Ok(provernode_core::Verified::of(&envelope));
        }
        return Err(bad(
            ErrorCode::ProofRejected,
            format!(
                "this broker cannot verify {} proofs ({}); it stores none it has not verified (start it with --trust-agents to store the agents' verified proofs)",
                envelope.backend, unavailable.reason
            ),
        ));
    }
    let registry = state.registry.clone();
    let limits = provernode_core::Limits {
        max_cycles: task.limits.max_cycles,
        max_memory_bytes: task.limits.max_guest_memory_bytes,
    };
    let verdict = tokio::task::spawn_blocking(move || registry.verify_within(&envelope, &limits)).await;
    match verdict {
        Ok(Ok(verified)) => Ok(verified),
        Ok(Err(e)) => {
            metrics::counter!("provernode_results_rejected_total").increment(1);
            tracing::warn!(task = %task.id, error = %e, "an agent reported a proof that does not verify; not stored");
            Err(bad(
                ErrorCode::ProofRejected,
                format!("the reported proof does not verify: {e}; it was not stored"),
            ))
        }
        Err(e) => Err(bad(ErrorCode::Internal, format!("the proof check failed: {e}"))),
    }
}

#[utoipa::path(
    post, path = "/v1/agent/fail", tag = "agents",
    summary = "Report why an attempt ended without a proof",
    request_body = AgentFail,
    responses(
        (status = 200, description = "OK", body = FailAnswer),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn fail(
    State(state): State<ApiState>,
    body: Result<Json<AgentFail>, JsonRejection>,
) -> Result<Json<FailAnswer>, ApiError> {
    let body = json_body(body)?;
    bounded("cause", &body.cause, MAX_KIND_CHARS)?;
    let cause: Cause = body
        .cause
        .parse()
        .map_err(|e: String| bad(ErrorCode::InvalidRequest, e))?;
    let answer = |outcome, cause, reason| FailAnswer {
        outcome,
        cause,
        reason,
    };
    let failure = AttemptFailure {
        cause,
        retryable: body.retryable,
        detail: body.detail.chars().take(4096).collect(),
        stderr_tail: body
            .stderr_tail
            .chars()
            .rev()
            .take(4096)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
    };
    Ok(Json(
        match state
            .store
            .fail(&lease_ref(&body.task_id, &body.token)?, &failure)
            .await?
        {
            FailureOutcome::Requeued => answer(FailOutcome::Requeued, None, None),
            FailureOutcome::Failed(c) => answer(FailOutcome::Failed, Some(c.to_string()), None),
            FailureOutcome::Quarantined(c) => answer(FailOutcome::Quarantined, Some(c.to_string()), None),
            FailureOutcome::Ignored { reason } => answer(FailOutcome::Ignored, None, Some(reason)),
        },
    ))
}

/// An agent hands a task back uncharged: the attempt ended for the agent's
/// own reasons (it is stopping, or cannot start workers).
#[utoipa::path(
    post, path = "/v1/agent/release", tag = "agents",
    summary = "Hand a lease back uncharged",
    description = "The attempt ended for the agent's own reasons (it is stopping, or cannot start workers). The task is queued again; the attempt counts toward neither failures nor lease_losses and is recorded as released.",
    request_body = AgentRelease,
    responses(
        (status = 200, description = "OK", body = ReleaseAnswer),
        (status = 400, description = "Bad request: the message says which field and why", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 500, description = "The store is damaged, or an internal error", body = ErrorBody),
        (status = 503, description = "The store is unavailable, or the node is overloaded: retry", body = ErrorBody),
        (status = 507, description = "The database's disk is full: nothing was stored; retry when space is freed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(crate) async fn release(
    State(state): State<ApiState>,
    body: Result<Json<AgentRelease>, JsonRejection>,
) -> Result<Json<ReleaseAnswer>, ApiError> {
    let body = json_body(body)?;
    let detail: String = body.detail.chars().take(4096).collect();
    Ok(Json(
        match state
            .store
            .release(&lease_ref(&body.task_id, &body.token)?, &detail)
            .await?
        {
            ReleaseOutcome::Requeued => ReleaseAnswer {
                outcome: provernode_api::ReleaseOutcome::Requeued,
                reason: None,
            },
            ReleaseOutcome::Ignored { reason } => ReleaseAnswer {
                outcome: provernode_api::ReleaseOutcome::Ignored,
                reason: Some(reason),
            },
        },
    ))
}
