-- provernode queue schema (SQLite). Times are Unix milliseconds.
-- Every state change is one statement guarded by the state it expects, so
-- claims, results and sweeps stay atomic without explicit locking.

CREATE TABLE programs (
    id          TEXT PRIMARY KEY,          -- SHA-256 of the ELF, hex
    name        TEXT NOT NULL,
    abi         TEXT NOT NULL,
    elf         BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE tasks (
    id                      TEXT PRIMARY KEY,   -- UUIDv7
    program_id              TEXT NOT NULL REFERENCES programs (id),
    program_name            TEXT NOT NULL,
    abi                     TEXT NOT NULL,
    backend                 TEXT NOT NULL,
    proof_kind              TEXT,
    input                   BLOB NOT NULL,
    input_digest            TEXT NOT NULL,
    max_cycles              INTEGER NOT NULL,
    max_guest_memory_bytes  INTEGER NOT NULL,
    timeout_ms              INTEGER NOT NULL,
    memory_limit_bytes      INTEGER NOT NULL,
    max_attempts            INTEGER NOT NULL CHECK (max_attempts >= 1),
    priority                INTEGER NOT NULL,
    deadline_ms             INTEGER,
    idempotency_key         TEXT UNIQUE,
    state                   TEXT NOT NULL
        CHECK (state IN ('queued', 'leased', 'succeeded', 'failed', 'cancelled', 'quarantined')),
    cause                   TEXT,               -- terminal reason of failed/cancelled/quarantined
    detail                  TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,   -- attempts started (claims)
    lease_token             TEXT,
    lease_owner             TEXT,
    lease_expires_ms        INTEGER,
    public_output           BLOB,
    cycles                  INTEGER,
    created_ms              INTEGER NOT NULL,
    updated_ms              INTEGER NOT NULL,
    finished_ms             INTEGER
);

CREATE INDEX tasks_claim ON tasks (state, backend, priority DESC, created_ms, id);
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_ms) WHERE state = 'leased';
CREATE INDEX tasks_deadline ON tasks (deadline_ms) WHERE deadline_ms IS NOT NULL;

CREATE TABLE attempts (
    task_id      TEXT NOT NULL REFERENCES tasks (id),
    attempt      INTEGER NOT NULL,     -- 1-based
    owner        TEXT NOT NULL,        -- who held the lease
    lease_token  TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    ended_ms     INTEGER,
    outcome      TEXT,                 -- 'succeeded' or a cause
    detail       TEXT,
    stderr_tail  TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE results (
    task_id     TEXT PRIMARY KEY REFERENCES tasks (id),
    envelope    BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);
