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
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use provernode_core::{Cause, ProofEnvelope};
use provernode_store::{
    AttemptFailure, ClaimRequest, Completion, FailureOutcome, LeaseRef, LeaseStatus, ReleaseOutcome,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::extract::{authorized, bad, bounded, json_body, parse_task_id, MAX_KIND_CHARS};
use crate::state::ApiState;

pub(crate) fn routes(state: ApiState) -> Router<ApiState> {
    Router::new()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    /// Lease owner: `<agent name>/<slot>`.
    agent: String,
    backends: Vec<String>,
    lease_ms: u64,
    max_memory_bytes: Option<u64>,
}

async fn claim(
    State(state): State<ApiState>,
    body: Result<Json<ClaimBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
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
        return Ok(Json(json!({"lease": null})));
    };
    let t = &lease.task;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Json(json!({"lease": {
        "task_id": t.id.to_string(),
        "token": lease.token,
        "attempt": lease.attempt,
        "expires_ms": lease.expires_ms,
        "backend": t.backend,
        "program_name": t.program_name,
        "program_id": t.program_id.to_string(),
        "abi": t.abi.name(),
        "proof_kind": t.proof_kind,
        "deadline_ms": t.deadline_ms,
        "max_attempts": t.limits.max_attempts,
        "timeout_ms": t.limits.timeout_ms,
        "memory_limit_bytes": t.limits.memory_limit_bytes,
        "max_cycles": t.limits.max_cycles,
        "max_guest_memory_bytes": t.limits.max_guest_memory_bytes,
        "elf_base64": b64.encode(&lease.elf),
        "input_base64": b64.encode(&lease.input),
    }})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseBody {
    task_id: String,
    token: String,
}

impl LeaseBody {
    fn lease_ref(&self) -> Result<LeaseRef, ApiError> {
        Ok(LeaseRef {
            task_id: parse_task_id(&self.task_id)?,
            token: self.token.clone(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatBody {
    #[serde(flatten)]
    lease: LeaseBody,
    lease_ms: u64,
}

async fn heartbeat(
    State(state): State<ApiState>,
    body: Result<Json<HeartbeatBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(body)?;
    let lease_ms = body.lease_ms.clamp(1000, state.config.max_lease_ms);
    Ok(Json(
        match state.store.heartbeat(&body.lease.lease_ref()?, lease_ms).await? {
            LeaseStatus::Live { expires_ms } => json!({"status": "live", "expires_ms": expires_ms}),
            LeaseStatus::Gone { state } => json!({"status": "gone", "state": state.as_str()}),
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    #[serde(flatten)]
    lease: LeaseBody,
    envelope_base64: String,
}

async fn complete(
    State(state): State<ApiState>,
    body: Result<Json<CompleteBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(body)?;
    let lease = body.lease.lease_ref()?;
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
    if envelope.backend != task.backend
        || envelope.program_id != task.program_id
        || envelope.input_digest != task.input_digest
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
                json!({"accepted": true})
            }
            Completion::Ignored { reason } => {
                tracing::warn!(task = %lease.task_id, %reason, "late or duplicate result ignored");
                json!({"accepted": false, "reason": reason})
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    #[serde(flatten)]
    lease: LeaseBody,
    cause: String,
    retryable: bool,
    detail: String,
    #[serde(default)]
    stderr_tail: String,
}

async fn fail(
    State(state): State<ApiState>,
    body: Result<Json<FailBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(body)?;
    bounded("cause", &body.cause, MAX_KIND_CHARS)?;
    let cause: Cause = body
        .cause
        .parse()
        .map_err(|e: String| bad(ErrorCode::InvalidRequest, e))?;
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
        match state.store.fail(&body.lease.lease_ref()?, &failure).await? {
            FailureOutcome::Requeued => json!({"outcome": "requeued"}),
            FailureOutcome::Failed(c) => json!({"outcome": "failed", "cause": c.to_string()}),
            FailureOutcome::Quarantined(c) => json!({"outcome": "quarantined", "cause": c.to_string()}),
            FailureOutcome::Ignored { reason } => json!({"outcome": "ignored", "reason": reason}),
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(flatten)]
    lease: LeaseBody,
    detail: String,
}

/// An agent hands a task back uncharged: the attempt ended for the agent's
/// own reasons (it is stopping, or cannot start workers).
async fn release(
    State(state): State<ApiState>,
    body: Result<Json<ReleaseBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(body)?;
    let detail: String = body.detail.chars().take(4096).collect();
    Ok(Json(
        match state.store.release(&body.lease.lease_ref()?, &detail).await? {
            ReleaseOutcome::Requeued => json!({"outcome": "requeued"}),
            ReleaseOutcome::Ignored { reason } => json!({"outcome": "ignored", "reason": reason}),
        },
    ))
}
