//! What every handler shares: the settings and the state behind the API.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use provernode_backends::Registry;
use provernode_core::{Readiness, TaskLimits};
use provernode_store::Store;
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Bearer tokens accepted on the client API (/v1/tasks...) and /metrics;
    /// empty leaves them open (only allowed on loopback, which the binary
    /// enforces).
    pub client_tokens: Vec<String>,
    /// Bearer tokens accepted on the agent API (/v1/agent/...); empty means
    /// the agent API is not served at all (the embedded node).
    pub agent_tokens: Vec<String>,
    /// Whether a submitted task's backend must be able to run on this very
    /// machine (the embedded node) or only be known (a broker, whose agents
    /// run elsewhere).
    pub require_local_backend: bool,
    pub max_body_bytes: usize,
    pub max_input_bytes: usize,
    /// Largest program file `PUT /v1/programs` accepts.
    pub max_program_bytes: usize,
    pub default_limits: TaskLimits,
    /// Longest lease an agent may ask for.
    pub max_lease_ms: u64,
    /// The most memory one attempt can be given here (the embedded node's
    /// memory budget); a task that needs more is refused at submission
    /// instead of waiting forever. `None` on a broker, whose agents differ.
    pub max_task_memory_bytes: Option<u64>,
    /// A broker verifies every proof an agent reports before storing it;
    /// for backends it cannot verify (built without them) it refuses tasks,
    /// unless the operator chose to trust the agents' own verification.
    pub trust_agents: bool,
    /// The most guest memory a task may ask for on a backend whose proofs
    /// are verified by re-running the guest (trace): the node or broker
    /// does that in its own process, outside any worker's cage.
    pub max_reexecuted_guest_memory_bytes: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            client_tokens: Vec::new(),
            agent_tokens: Vec::new(),
            require_local_backend: true,
            max_body_bytes: 48 << 20,
            max_input_bytes: 16 << 20,
            max_program_bytes: 32 << 20,
            default_limits: TaskLimits::default(),
            max_lease_ms: 10 * 60 * 1000,
            max_task_memory_bytes: None,
            trust_agents: false,
            max_reexecuted_guest_memory_bytes: provernode_core::Limits::DEFAULT_MAX_MEMORY_BYTES,
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub config: Arc<ApiConfig>,
    /// Woken on every submit so idle local workers claim at once.
    pub wake: Arc<Notify>,
    /// Whether the node accepts work, and what degrades it.
    pub readiness: Arc<Readiness>,
    pub metrics: Option<PrometheusHandle>,
    /// The embedded node's artifact store, where every stored program is
    /// also kept (with a backup copy); `None` on a broker.
    pub artifacts: Option<Arc<provernode_artifacts::ArtifactStore>>,
}
