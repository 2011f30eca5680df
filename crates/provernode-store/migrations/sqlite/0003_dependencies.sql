-- Issue 21: tasks that depend on tasks. An aggregate task waits until every
-- task it depends on has succeeded (claims skip it until then), and at its
-- first claim its input is assembled from their proofs, in `ordinal` order
-- (the order its guest verifies them). If one of them ends failed,
-- cancelled or quarantined, the dependent ends failed, `dependency_failed`.
CREATE TABLE task_dependencies (
    task_id     TEXT NOT NULL REFERENCES tasks (id),
    ordinal     INTEGER NOT NULL,            -- 0-based
    depends_on  TEXT NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task_id, ordinal)
);
CREATE INDEX task_dependencies_on ON task_dependencies (depends_on);
