-- Issue 23: what operators did to a task, in its history (`provernode retry`).
CREATE TABLE task_events (
    task_id  TEXT NOT NULL REFERENCES tasks (id),
    at_ms    BIGINT NOT NULL,
    kind     TEXT NOT NULL,   -- 'retried'
    detail   TEXT NOT NULL
);
CREATE INDEX task_events_of_task ON task_events (task_id, at_ms);

-- What a running attempt is doing (proving, verifying, reporting), as its
-- holder last reported it with a heartbeat; kept after it ends.
ALTER TABLE attempts ADD COLUMN phase TEXT;
