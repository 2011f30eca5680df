-- Issue 22: one long proof split into parts that any agent proves.
--
-- A parent whose plan was accepted keeps state 'leased' with no lease
-- token (lease_owner 'split'): no agent holds it, no sweep requeues it, and
-- it ends with its final join (succeeded), a part that ends without a proof
-- (failed, dependency_failed), a cancel or its deadline (its parts are
-- then cancelled).
--   split_segments, split_po2: the plan (segments of 2^split_po2 cycles).
-- A part is a task of its own (leases, attempts, quarantine):
--   parent_id: the split task; part_lo..part_hi: the segments it covers
--   (one for a segment, more for a join);
--   joined_into: the join task that took this part's proof (NULL while
--   the part waits for an adjacent one).
ALTER TABLE tasks ADD COLUMN parent_id TEXT REFERENCES tasks (id);
ALTER TABLE tasks ADD COLUMN part_lo INTEGER;
ALTER TABLE tasks ADD COLUMN part_hi INTEGER;
ALTER TABLE tasks ADD COLUMN joined_into TEXT;
ALTER TABLE tasks ADD COLUMN split_segments INTEGER;
ALTER TABLE tasks ADD COLUMN split_po2 INTEGER;
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
