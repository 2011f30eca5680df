//! The cluster agent's work source: a broker's agent API over HTTP.

use async_trait::async_trait;
use base64::Engine as _;
use provernode_api::{
    AgentClaim, AgentComplete, AgentFail, AgentHeartbeat, AgentRelease, ClaimAnswer, CompleteAnswer,
    FailAnswer, FailOutcome, HeartbeatAnswer, LeaseGrant, ReleaseAnswer,
};
use provernode_client::{ClientError, NodeClient};
use provernode_core::{Abi, Digest, ProgramId, TaskLimits, TaskState};
use provernode_store::{
    AttemptFailure, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef, LeaseStatus, ReleaseOutcome,
    TaskRecord,
};

use crate::{SourceError, WorkSource};

pub struct HttpSource {
    client: NodeClient,
}

impl HttpSource {
    /// `client` must carry an agent token.
    pub fn new(client: NodeClient) -> HttpSource {
        HttpSource { client }
    }

    async fn post<B, R>(&self, path: &str, body: &B) -> Result<R, SourceError>
    where
        B: serde::Serialize + Sync,
        R: serde::de::DeserializeOwned,
    {
        self.client
            .agent_post(path, body)
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

fn lease_from_grant(g: LeaseGrant) -> Result<Lease, SourceError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let task_id = uuid::Uuid::parse_str(&g.task_id).map_err(|_| malformed("task_id"))?;
    let program_id = ProgramId(
        g.program_id
            .parse::<Digest>()
            .map_err(|_| malformed("program_id"))?,
    );
    let elf = b64.decode(&g.elf_base64).map_err(|_| malformed("elf_base64"))?;
    let input = b64
        .decode(&g.input_base64)
        .map_err(|_| malformed("input_base64"))?;
    let task = TaskRecord {
        id: task_id,
        program_id,
        program_name: g.program_name,
        abi: g.abi.parse::<Abi>().map_err(|_| malformed("abi"))?,
        backend: g.backend,
        proof_kind: g.proof_kind,
        input_digest: provernode_core::sha256(&input),
        input_len: input.len() as u64,
        limits: TaskLimits {
            max_cycles: g.max_cycles,
            max_guest_memory_bytes: g.max_guest_memory_bytes,
            timeout_ms: g.timeout_ms,
            memory_limit_bytes: g.memory_limit_bytes,
            max_attempts: g.max_attempts,
            timeout_from_rate: g.timeout_from_rate,
        },
        priority: 0,
        deadline_ms: g.deadline_ms,
        idempotency_key: None,
        state: TaskState::Leased,
        cause: None,
        detail: None,
        attempts: g.attempt,
        failures: 0,
        lease_losses: 0,
        lease_owner: None,
        lease_expires_ms: Some(g.expires_ms),
        public_output: None,
        cycles: None,
        created_ms: 0,
        updated_ms: 0,
        finished_ms: None,
        // A part's place in its split task travels in its input.
        parent_id: None,
        part: None,
        split_segments: None,
    };
    Ok(Lease {
        attempt: g.attempt,
        task,
        elf,
        input,
        token: g.token,
        expires_ms: g.expires_ms,
        rates: g
            .proving_rates
            .into_iter()
            .map(|r| (r.proof_kind, r.cycles_per_sec))
            .collect(),
    })
}

fn core_state(s: provernode_api::TaskState) -> TaskState {
    use provernode_api::TaskState as View;
    match s {
        View::Queued => TaskState::Queued,
        View::Leased => TaskState::Leased,
        View::Succeeded => TaskState::Succeeded,
        View::Failed => TaskState::Failed,
        View::Cancelled => TaskState::Cancelled,
        View::Quarantined => TaskState::Quarantined,
    }
}

#[async_trait]
impl WorkSource for HttpSource {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, SourceError> {
        let answer: ClaimAnswer = self
            .post(
                "/v1/agent/claim",
                &AgentClaim {
                    agent: request.owner.clone(),
                    backends: request.backends.clone(),
                    lease_ms: request.lease_ttl_ms,
                    max_memory_bytes: request.max_memory_bytes,
                },
            )
            .await?;
        answer.lease.map(lease_from_grant).transpose()
    }

    async fn heartbeat(
        &self,
        lease: &LeaseRef,
        ttl_ms: u64,
        phase: Option<&str>,
    ) -> Result<LeaseStatus, SourceError> {
        let answer: HeartbeatAnswer = self
            .post(
                "/v1/agent/heartbeat",
                &AgentHeartbeat {
                    task_id: lease.task_id.to_string(),
                    token: lease.token.clone(),
                    lease_ms: ttl_ms,
                    phase: phase.map(str::to_owned),
                },
            )
            .await?;
        Ok(match answer {
            HeartbeatAnswer::Live { expires_ms } => LeaseStatus::Live { expires_ms },
            HeartbeatAnswer::Gone { state } => LeaseStatus::Gone {
                state: core_state(state),
            },
        })
    }

    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        _public_output: &[u8],
        _cycles: u64,
    ) -> Result<Completion, SourceError> {
        // The broker takes output and cycles from the envelope itself.
        let answer: CompleteAnswer = self
            .post(
                "/v1/agent/complete",
                &AgentComplete {
                    task_id: lease.task_id.to_string(),
                    token: lease.token.clone(),
                    envelope_base64: base64::engine::general_purpose::STANDARD.encode(envelope),
                },
            )
            .await?;
        Ok(if answer.accepted {
            Completion::Accepted
        } else {
            Completion::Ignored {
                reason: answer.reason.unwrap_or_else(|| "ignored".into()),
            }
        })
    }

    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, SourceError> {
        let answer: FailAnswer = self
            .post(
                "/v1/agent/fail",
                &AgentFail {
                    task_id: lease.task_id.to_string(),
                    token: lease.token.clone(),
                    cause: failure.cause.to_string(),
                    retryable: failure.retryable,
                    detail: failure.detail.clone(),
                    stderr_tail: failure.stderr_tail.clone(),
                },
            )
            .await?;
        let cause = || {
            answer
                .cause
                .as_deref()
                .and_then(|c| c.parse().ok())
                .unwrap_or(failure.cause)
        };
        Ok(match answer.outcome {
            FailOutcome::Requeued => FailureOutcome::Requeued,
            FailOutcome::Failed => FailureOutcome::Failed(cause()),
            FailOutcome::Quarantined => FailureOutcome::Quarantined(cause()),
            FailOutcome::Ignored => FailureOutcome::Ignored {
                reason: answer.reason.clone().unwrap_or_else(|| "ignored".into()),
            },
        })
    }

    async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, SourceError> {
        let answer: ReleaseAnswer = self
            .post(
                "/v1/agent/release",
                &AgentRelease {
                    task_id: lease.task_id.to_string(),
                    token: lease.token.clone(),
                    detail: detail.to_owned(),
                },
            )
            .await?;
        Ok(match answer.outcome {
            provernode_api::ReleaseOutcome::Requeued => ReleaseOutcome::Requeued,
            provernode_api::ReleaseOutcome::Ignored => ReleaseOutcome::Ignored {
                reason: answer.reason.unwrap_or_else(|| "ignored".into()),
            },
        })
    }
}
