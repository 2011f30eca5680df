-- Issue 22: timeouts from measured speed.
--
-- timeout_from_rate: the task named no timeout (timeout_ms is the node's
-- default); an attempt gets longer when its cycle count and the measured
-- rate of its backend and proof kind say it needs it.
ALTER TABLE tasks ADD COLUMN timeout_from_rate INTEGER NOT NULL DEFAULT 0;

-- The proving rate per backend and proof kind, in cycles per second: from
-- the node's own finished attempts (a moving average) or a
-- `provernode calibrate` run.
CREATE TABLE proving_rates (
    backend         TEXT NOT NULL,
    proof_kind      TEXT NOT NULL,
    cycles_per_sec  REAL NOT NULL,
    samples         INTEGER NOT NULL,
    source          TEXT NOT NULL,   -- 'attempts' or 'calibrate'
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (backend, proof_kind)
);
