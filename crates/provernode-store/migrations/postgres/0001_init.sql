-- provernode queue schema (PostgreSQL). Times are Unix milliseconds.
-- Every state change is one statement guarded by the state it expects, so
-- claims, results and sweeps stay atomic without explicit locking.

CREATE TABLE programs (
    id          TEXT PRIMARY KEY,          -- SHA-256 of the ELF, hex
    name        TEXT NOT NULL,
    abi         TEXT NOT NULL,
    elf         BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE tasks (
    id                      TEXT PRIMARY KEY,   -- UUIDv7
    program_id              TEXT NOT NULL REFERENCES programs (id),
    program_name            TEXT NOT NULL,
    abi                     TEXT NOT NULL,
    backend                 TEXT NOT NULL,
    proof_kind              TEXT,
    input                   BYTEA NOT NULL,
    input_digest            TEXT NOT NULL,
    max_cycles              BIGINT NOT NULL,
    max_guest_memory_bytes  BIGINT NOT NULL,
    timeout_ms              BIGINT NOT NULL,
    memory_limit_bytes      BIGINT NOT NULL,
    max_attempts            BIGINT NOT NULL CHECK (max_attempts >= 1),
    priority                BIGINT NOT NULL,
    deadline_ms             BIGINT,
    idempotency_key         TEXT UNIQUE,
    state                   TEXT NOT NULL
        CHECK (state IN ('queued', 'leased', 'succeeded', 'failed', 'cancelled', 'quarantined')),
    cause                   TEXT,               -- terminal reason of failed/cancelled/quarantined
    detail                  TEXT,
    attempts                BIGINT NOT NULL DEFAULT 0,   -- attempts started (claims)
    lease_token             TEXT,
    lease_owner             TEXT,
    lease_expires_ms        BIGINT,
    public_output           BYTEA,
    cycles                  BIGINT,
    created_ms              BIGINT NOT NULL,
    updated_ms              BIGINT NOT NULL,
    finished_ms             BIGINT
);

CREATE INDEX tasks_claim ON tasks (state, backend, priority DESC, created_ms, id);
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_ms) WHERE state = 'leased';
CREATE INDEX tasks_deadline ON tasks (deadline_ms) WHERE deadline_ms IS NOT NULL;

CREATE TABLE attempts (
    task_id      TEXT NOT NULL REFERENCES tasks (id),
    attempt      BIGINT NOT NULL,     -- 1-based
    owner        TEXT NOT NULL,        -- who held the lease
    lease_token  TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    ended_ms     BIGINT,
    outcome      TEXT,                 -- 'succeeded' or a cause
    detail       TEXT,
    stderr_tail  TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE results (
    task_id     TEXT PRIMARY KEY REFERENCES tasks (id),
    envelope    BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);
