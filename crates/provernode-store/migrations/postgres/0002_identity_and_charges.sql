-- Issue 19: a database identity, and attempts that end for the machine's
-- reasons no longer count toward the task's own failures.

-- Key/value facts about this database. `database_id` is written once, when
-- the database is created; the node keeps a copy outside the database
-- (store.generation) so a replaced or emptied database is noticed at start.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- attempts: started (claims; numbers the attempts).
-- failures: the task's own retryable failures (timeout, OOM, crash, ...),
--           compared with max_attempts.
-- lease_losses: attempts whose holder vanished (a node or agent died, its
--           lease expired), counted apart with a larger bound, so restarts of
--           the machine do not quarantine healthy tasks.
-- Attempts released by the node itself (drain, infrastructure faults) count
-- in neither.
ALTER TABLE tasks ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN lease_losses BIGINT NOT NULL DEFAULT 0;
-- Before this, every ended attempt was charged: keep that count (an attempt
-- running now is not ended yet).
UPDATE tasks SET failures = attempts - CASE WHEN state = 'leased' THEN 1 ELSE 0 END;
