//! The environment a worker process gets: an explicit list, never the
//! node's own. Workers run users' programs; the node's environment holds its
//! bearer tokens, its database URL and whatever else the operator exported.

/// Variables passed on by name.
const NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TMPDIR",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_MIN_STACK",
    "PROVERNODE_LOG",
    // Where a GPU prover's libraries are, and how many threads provers use.
    "LD_LIBRARY_PATH",
    "RAYON_NUM_THREADS",
    "OMP_NUM_THREADS",
];

/// Variables passed on by prefix: locale, and the knobs of the backends the
/// workers run (`PROVERNODE_RISC0_SEGMENT_PO2`, `PROVERNODE_SP1_SHARD_SIZE`,
/// SP1's `SP1_WORKER_*` pools, RISC Zero's `RISC0_*`).
const PREFIXES: &[&str] = &[
    "LC_",
    "PROVERNODE_RISC0_",
    "PROVERNODE_SP1_",
    "RISC0_",
    "SP1_",
    "NVIDIA_",
    // Fault injection of the scenario tests (`PROVERNODE_FAULT_PART_DELAY_MS`).
    "PROVERNODE_FAULT_",
];

/// Parts of a name that mark a secret: never passed, even under an allowed
/// prefix (`SP1_PRIVATE_KEY`, `NETWORK_RPC_TOKEN`, ...).
const SECRET_MARKS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "CREDENTIAL",
    "DATABASE_URL",
];

/// Whether a worker gets the variable `name`.
pub fn passes_to_worker(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if SECRET_MARKS.iter().any(|m| upper.contains(m)) {
        return false;
    }
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// This process's variables that a worker gets.
pub fn worker_environment() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| passes_to_worker(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_unknown_variables_stay_with_the_node() {
        for kept in [
            "PATH",
            "LC_ALL",
            "PROVERNODE_RISC0_SEGMENT_PO2",
            "SP1_WORKER_CORE_PROVERS",
            "RUST_LOG",
        ] {
            assert!(passes_to_worker(kept), "{kept}");
        }
        for dropped in [
            "PROVERNODE_TOKEN",
            "PROVERNODE_AGENT_TOKEN",
            "PROVERNODE_CLIENT_TOKENS",
            "PROVERNODE_DATABASE_URL",
            "DATABASE_URL",
            "SP1_PRIVATE_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "PGPASSWORD",
            "SSH_AUTH_SOCK",
            "PROVERNODE_DATA_DIR",
        ] {
            assert!(!passes_to_worker(dropped), "{dropped}");
        }
    }
}
