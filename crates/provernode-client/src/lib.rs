//! A small client for the node's HTTP API.
//!
//! Architecture invariant: speaks only the documented API (docs/openapi.json);
//! it knows nothing of the store or the workers.

use std::time::Duration;

use provernode_api::{Cancelled, Readiness, SubmitTask, Submitted, TaskList, TaskState, TaskWithAttempts};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the node at {url}: {source}; is `provernode run` running there, and is --node right?"
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the node answered {status}: {message} [{code}]")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the node's answer could not be read: {0}")]
    Malformed(String),
}

impl ClientError {
    /// Whether trying again later could succeed (unreachable, overloaded or
    /// failing node), as opposed to a request the node refuses.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
            ClientError::Malformed(_) => false,
        }
    }
}

#[derive(Clone)]
pub struct NodeClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl NodeClient {
    pub fn new(base: &str, token: Option<String>) -> Result<NodeClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        Ok(NodeClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = builder.send().await.map_err(|source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        // Read loosely: an error from another version may carry a code this
        // one does not know.
        Err(ClientError::Api {
            status,
            code: body["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or("(no message)")
                .to_owned(),
        })
    }

    async fn json<R: DeserializeOwned>(&self, builder: reqwest::RequestBuilder) -> Result<R, ClientError> {
        self.send(builder)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// Submits a task (the body of POST /v1/tasks).
    pub async fn submit(&self, task: &SubmitTask) -> Result<Submitted, ClientError> {
        self.json(self.request(reqwest::Method::POST, "/v1/tasks").json(task))
            .await
    }

    pub async fn task(&self, id: &str) -> Result<TaskWithAttempts, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/tasks/{id}")))
            .await
    }

    pub async fn list(&self, state: Option<&str>, limit: u32) -> Result<TaskList, ClientError> {
        let mut r = self
            .request(reqwest::Method::GET, "/v1/tasks")
            .query(&[("limit", limit.to_string())]);
        if let Some(s) = state {
            r = r.query(&[("state", s)]);
        }
        self.json(r).await
    }

    pub async fn proof(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .send(self.request(reqwest::Method::GET, &format!("/v1/tasks/{id}/proof")))
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    pub async fn cancel(&self, id: &str) -> Result<Cancelled, ClientError> {
        self.json(self.request(reqwest::Method::POST, &format!("/v1/tasks/{id}/cancel")))
            .await
    }

    /// POSTs a JSON body to an agent API path (`/v1/agent/...`).
    pub async fn agent_post<B, R>(&self, path: &str, body: &B) -> Result<R, ClientError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.json(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn ready(&self) -> Result<Readiness, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/readyz")).await
    }

    /// Polls until the task ends; returns its final view.
    pub async fn wait(
        &self,
        id: &str,
        poll: Duration,
        timeout: Duration,
    ) -> Result<TaskWithAttempts, ClientError> {
        let start = tokio::time::Instant::now();
        loop {
            let t = self.task(id).await?;
            if !matches!(t.task.state, TaskState::Queued | TaskState::Leased) {
                return Ok(t);
            }
            if start.elapsed() > timeout {
                return Err(ClientError::Malformed(format!(
                    "task {id} did not finish within {timeout:?} (still {:?})",
                    t.task.state
                )));
            }
            tokio::time::sleep(poll).await;
        }
    }
}
