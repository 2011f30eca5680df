//! The cluster agent's work source: a broker's agent API over HTTP.

use async_trait::async_trait;
use base64::Engine as _;
use provernode_client::{ClientError, NodeClient};
use provernode_core::{Abi, Digest, ProgramId, TaskLimits, TaskState};
use provernode_store::{
    AttemptFailure, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef, LeaseStatus, ReleaseOutcome,
    TaskRecord,
};
use serde_json::{json, Value};

use crate::{SourceError, WorkSource};

pub struct HttpSource {
    client: NodeClient,
}

impl HttpSource {
    /// `client` must carry an agent token.
    pub fn new(client: NodeClient) -> HttpSource {
        HttpSource { client }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, SourceError> {
        self.client
            .agent_post(path, &body)
            .await
            .map_err(|e: ClientError| {
                if e.is_transient() {
                    SourceError::Unavailable(e.to_string())
                } else {
                    SourceError::Refused(e.to_string())
                }
            })
    }
}

fn malformed(what: &str) -> SourceError {
    SourceError::Refused(format!("the broker's answer has no valid {what}"))
}

fn lease_from_json(v: &Value) -> Result<Lease, SourceError> {
    let s = |k: &str| v[k].as_str().ok_or_else(|| malformed(k));
    let n = |k: &str| v[k].as_u64().ok_or_else(|| malformed(k));
    let b64 = base64::engine::general_purpose::STANDARD;
    let task_id = uuid::Uuid::parse_str(s("task_id")?).map_err(|_| malformed("task_id"))?;
    let program_id = ProgramId(
        s("program_id")?
            .parse::<Digest>()
            .map_err(|_| malformed("program_id"))?,
    );
    let elf = b64
        .decode(s("elf_base64")?)
        .map_err(|_| malformed("elf_base64"))?;
    let input = b64
        .decode(s("input_base64")?)
        .map_err(|_| malformed("input_base64"))?;
    let expires_ms = v["expires_ms"].as_i64().ok_or_else(|| malformed("expires_ms"))?;
    let task = TaskRecord {
        id: task_id,
        program_id,
        program_name: s("program_name")?.to_owned(),
        abi: s("abi")?.parse::<Abi>().map_err(|_| malformed("abi"))?,
        backend: s("backend")?.to_owned(),
        proof_kind: v["proof_kind"].as_str().map(str::to_owned),
        input_digest: provernode_core::sha256(&input),
        input_len: input.len() as u64,
        limits: TaskLimits {
            max_cycles: n("max_cycles")?,
            max_guest_memory_bytes: n("max_guest_memory_bytes")?,
            timeout_ms: n("timeout_ms")?,
            memory_limit_bytes: n("memory_limit_bytes")?,
            max_attempts: u32::try_from(n("max_attempts")?).map_err(|_| malformed("max_attempts"))?,
        },
        priority: 0,
        deadline_ms: v["deadline_ms"].as_i64(),
        idempotency_key: None,
        state: TaskState::Leased,
        cause: None,
        detail: None,
        attempts: u32::try_from(n("attempt")?).map_err(|_| malformed("attempt"))?,
        failures: 0,
        lease_losses: 0,
        lease_owner: None,
        lease_expires_ms: Some(expires_ms),
        public_output: None,
        cycles: None,
        created_ms: 0,
        updated_ms: 0,
        finished_ms: None,
    };
    Ok(Lease {
        attempt: task.attempts,
        task,
        elf,
        input,
        token: s("token")?.to_owned(),
        expires_ms,
    })
}

#[async_trait]
impl WorkSource for HttpSource {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, SourceError> {
        let v = self
            .post(
                "/v1/agent/claim",
                json!({
                    "agent": request.owner,
                    "backends": request.backends,
                    "lease_ms": request.lease_ttl_ms,
                    "max_memory_bytes": request.max_memory_bytes,
                }),
            )
            .await?;
        match &v["lease"] {
            Value::Null => Ok(None),
            lease => lease_from_json(lease).map(Some),
        }
    }

    async fn heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, SourceError> {
        let v = self
            .post(
                "/v1/agent/heartbeat",
                json!({"task_id": lease.task_id.to_string(), "token": lease.token, "lease_ms": ttl_ms}),
            )
            .await?;
        match v["status"].as_str() {
            Some("live") => Ok(LeaseStatus::Live {
                expires_ms: v["expires_ms"].as_i64().unwrap_or(0),
            }),
            Some("gone") => Ok(LeaseStatus::Gone {
                state: v["state"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(TaskState::Cancelled),
            }),
            _ => Err(malformed("status")),
        }
    }

    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        _public_output: &[u8],
        _cycles: u64,
    ) -> Result<Completion, SourceError> {
        // The broker takes output and cycles from the envelope itself.
        let v = self
            .post(
                "/v1/agent/complete",
                json!({
                    "task_id": lease.task_id.to_string(),
                    "token": lease.token,
                    "envelope_base64": base64::engine::general_purpose::STANDARD.encode(envelope),
                }),
            )
            .await?;
        match v["accepted"].as_bool() {
            Some(true) => Ok(Completion::Accepted),
            Some(false) => Ok(Completion::Ignored {
                reason: v["reason"].as_str().unwrap_or("ignored").to_owned(),
            }),
            None => Err(malformed("accepted")),
        }
    }

    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, SourceError> {
        let v = self
            .post(
                "/v1/agent/fail",
                json!({
                    "task_id": lease.task_id.to_string(),
                    "token": lease.token,
                    "cause": failure.cause.to_string(),
                    "retryable": failure.retryable,
                    "detail": failure.detail,
                    "stderr_tail": failure.stderr_tail,
                }),
            )
            .await?;
        let cause = || {
            v["cause"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(failure.cause)
        };
        match v["outcome"].as_str() {
            Some("requeued") => Ok(FailureOutcome::Requeued),
            Some("failed") => Ok(FailureOutcome::Failed(cause())),
            Some("quarantined") => Ok(FailureOutcome::Quarantined(cause())),
            Some("ignored") => Ok(FailureOutcome::Ignored {
                reason: v["reason"].as_str().unwrap_or("ignored").to_owned(),
            }),
            _ => Err(malformed("outcome")),
        }
    }

    async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, SourceError> {
        let v = self
            .post(
                "/v1/agent/release",
                json!({"task_id": lease.task_id.to_string(), "token": lease.token, "detail": detail}),
            )
            .await?;
        match v["outcome"].as_str() {
            Some("requeued") => Ok(ReleaseOutcome::Requeued),
            Some("ignored") => Ok(ReleaseOutcome::Ignored {
                reason: v["reason"].as_str().unwrap_or("ignored").to_owned(),
            }),
            _ => Err(malformed("outcome")),
        }
    }
}
