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
    /// The node refused the token (HTTP 401).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Api { status: 401, .. })
    }

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

/// Which page of tasks to list (`GET /v1/tasks`).
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub state: Option<String>,
    pub reason: Option<String>,
    pub backend: Option<String>,
    /// Tasks older than this id: the previous page's `next_before`.
    pub before: Option<String>,
    pub limit: u32,
    /// Only the parts of this split task.
    pub parent: Option<String>,
    /// Split tasks' parts too (the node lists only submitted tasks by default).
    pub parts: bool,
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
        self.list_page(&ListPage {
            state: state.map(str::to_owned),
            limit,
            ..ListPage::default()
        })
        .await
    }

    /// One page of tasks, newest first, filtered.
    pub async fn list_page(&self, page: &ListPage) -> Result<TaskList, ClientError> {
        let mut query = vec![("limit", page.limit.to_string())];
        for (name, value) in [
            ("state", &page.state),
            ("before", &page.before),
            ("reason", &page.reason),
            ("backend", &page.backend),
            ("parent", &page.parent),
        ] {
            if let Some(v) = value {
                query.push((name, v.clone()));
            }
        }
        if page.parts {
            query.push(("parts", "true".to_owned()));
        }
        self.json(self.request(reqwest::Method::GET, "/v1/tasks").query(&query))
            .await
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

    /// Stores a program on the node (PUT /v1/programs); stored already is
    /// no error.
    pub async fn upload_program(
        &self,
        elf: Vec<u8>,
        name: &str,
    ) -> Result<provernode_api::ProgramInfo, ClientError> {
        self.json(
            self.request(reqwest::Method::PUT, "/v1/programs")
                .query(&[("name", name)])
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(elf),
        )
        .await
    }

    pub async fn programs(&self) -> Result<provernode_api::ProgramList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/v1/programs"))
            .await
    }

    pub async fn delete_program(&self, id: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/v1/programs/{id}")))
            .await
            .map(|_| ())
    }

    pub async fn retry(&self, id: &str) -> Result<provernode_api::Retried, ClientError> {
        self.json(self.request(reqwest::Method::POST, &format!("/v1/tasks/{id}/retry")))
            .await
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

    /// Whether the broker takes this client's token as an agent token, with
    /// its version and clock.
    pub async fn agent_check(&self) -> Result<provernode_api::AgentCheck, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/v1/agent/check"))
            .await
    }

    /// /readyz whether it answers 200 (ready) or 503 (not ready, with why).
    pub async fn readiness(&self) -> Result<Readiness, ClientError> {
        let resp = self
            .request(reqwest::Method::GET, "/readyz")
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        resp.json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
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
