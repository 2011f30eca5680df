//! Split tasks in the store (issue 22): a plan becomes segment parts, parts
//! that succeed are joined with an adjacent part as they arrive, the final
//! join's proof becomes the parent's, and a family ends together.
//!
//! The tree is built online, in the same transaction that accepts a part:
//! a part that succeeds is joined with an adjacent part that succeeded and
//! is not yet joined (the shorter one when both sides are free, so the tree
//! stays as balanced as arrival order allows); otherwise it waits for its
//! neighbour. Parts accepted concurrently are serialised on the parent's
//! row (PostgreSQL `FOR UPDATE`; SQLite has one writer), so a part is
//! joined once.
//!
//! Before a join is created, the waiting neighbour's stored proof is read
//! back and its envelope checksum checked: a proof damaged in storage is
//! not joined; its part is queued to be proved again.
//!
//! The SQL is written once with SQLite's `?N` placeholders; [`pg`] turns
//! them into PostgreSQL's `$N`. The glue is one macro for both stores.

use std::borrow::Cow;

/// PostgreSQL's placeholders for SQL written with SQLite's `?N`.
pub(crate) fn pg(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// SQLite's SQL as written.
pub(crate) fn lite(sql: &str) -> &str {
    sql
}

/// The parent of an accepted plan: no lease, owner `split`, the plan's
/// public output and cycles recorded. Returns the parent's input.
pub(crate) const ACCEPT_PLAN: &str = "UPDATE tasks SET lease_token = NULL, lease_owner = 'split', \
        lease_expires_ms = NULL, public_output = ?1, cycles = ?2, split_segments = ?3, split_po2 = ?4, \
        updated_ms = ?5 \
     WHERE id = ?6 AND lease_token = ?7 AND state = 'leased' AND lease_expires_ms >= ?5 AND parent_id IS NULL \
     RETURNING input, input_digest, timeout_ms, timeout_from_rate, backend, proof_kind";

pub(crate) const INSERT_PART: &str = "INSERT INTO tasks (id, program_id, program_name, abi, backend, proof_kind, \
        input, input_digest, max_cycles, max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, \
        priority, deadline_ms, state, attempts, created_ms, updated_ms, parent_id, part_lo, part_hi) \
     SELECT ?1, program_id, substr(program_name, 1, 200) || ?2, abi, backend, proof_kind, ?3, ?4, max_cycles, \
        max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, priority, deadline_ms, 'queued', 0, \
        ?5, ?5, id, ?6, ?7 FROM tasks WHERE id = ?8";

/// The parent of a part, as the tree needs it (locked on PostgreSQL).
pub(crate) const PARENT_OF_PART: &str =
    "SELECT state, split_segments, split_po2, input_digest, public_output, cycles \
     FROM tasks WHERE id = ?1";

/// Parts of `?1` that succeeded, wait for a join, and touch `?2..?3`.
pub(crate) const FREE_NEIGHBOURS: &str = "SELECT id, part_lo, part_hi FROM tasks \
     WHERE parent_id = ?1 AND state = 'succeeded' AND joined_into IS NULL AND id <> ?4 \
       AND (part_hi = ?2 OR part_lo = ?3) ORDER BY part_hi - part_lo, part_lo";

pub(crate) const RESULT_OF: &str = "SELECT envelope FROM results WHERE task_id = ?1";

/// Queues a part whose stored proof is damaged to be proved again.
pub(crate) const REPROVE_PART: &str =
    "UPDATE tasks SET state = 'queued', public_output = NULL, cycles = NULL, \
        finished_ms = NULL, detail = ?2, updated_ms = ?3 WHERE id = ?1 AND state = 'succeeded'";
pub(crate) const DELETE_RESULT: &str = "DELETE FROM results WHERE task_id = ?1";

pub(crate) const MARK_JOINED: &str = "UPDATE tasks SET joined_into = ?1 WHERE id = ?2 OR id = ?3";

pub(crate) const INSERT_JOIN_DEPENDENCIES: &str =
    "INSERT INTO task_dependencies (task_id, ordinal, depends_on) VALUES (?1, 0, ?2), (?1, 1, ?3)";

/// The final join's proof is the parent's.
pub(crate) const FINISH_PARENT: &str = "UPDATE tasks SET state = 'succeeded', cause = NULL, detail = NULL, \
        lease_owner = NULL, public_output = ?1, cycles = ?2, finished_ms = ?3, updated_ms = ?3 \
     WHERE id = ?4 AND state = 'leased' AND split_segments IS NOT NULL";
pub(crate) const INSERT_RESULT: &str =
    "INSERT INTO results (task_id, envelope, created_ms) VALUES (?1, ?2, ?3)";

/// Once a split task has ended, its parts' proofs are spent (the parent
/// holds the final one, or failed): their results are deleted, and the
/// inputs of its ended parts (a join's carries both proofs it joins)
/// emptied. The part rows stay, as the record of what ran; a part's
/// `GET /proof` then says it has none.
pub(crate) const FORGET_PART_PROOFS: &str =
    "DELETE FROM results WHERE task_id IN (SELECT id FROM tasks WHERE parent_id = ?1)";
pub(crate) const FORGET_PART_INPUTS: &str = "UPDATE tasks SET input = ?2 \
     WHERE parent_id = ?1 AND state IN ('succeeded', 'failed', 'cancelled', 'quarantined')";

/// A split task one of whose parts ended without a proof fails, naming it.
pub(crate) const FAIL_SPLIT_PARENTS: &str = "UPDATE tasks SET state = 'failed', cause = 'dependency_failed', \
        detail = (SELECT 'part ' || c.id || ' (segments ' || c.part_lo || '..' || c.part_hi || ') ended ' \
                   || c.state || COALESCE(' (' || c.cause || ')', '') || ': ' || COALESCE(c.detail, '') \
                  FROM tasks c WHERE c.parent_id = tasks.id AND c.state IN ('failed', 'cancelled', 'quarantined') \
                  ORDER BY c.part_lo LIMIT 1), \
        lease_owner = NULL, finished_ms = ?1, updated_ms = ?1 \
     WHERE state = 'leased' AND split_segments IS NOT NULL AND EXISTS (SELECT 1 FROM tasks c \
        WHERE c.parent_id = tasks.id AND c.state IN ('failed', 'cancelled', 'quarantined')) \
     RETURNING id";

/// The unfinished parts of a split task that ended are cancelled.
pub(crate) const CANCEL_ORPHAN_PARTS: &str = "UPDATE tasks SET state = 'cancelled', cause = 'cancelled', \
        detail = 'its split task ' || parent_id || ' ended ' || (SELECT p.state FROM tasks p WHERE p.id = tasks.parent_id), \
        lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, finished_ms = ?1, updated_ms = ?1 \
     WHERE parent_id IS NOT NULL AND state IN ('queued', 'leased') AND EXISTS (SELECT 1 FROM tasks p \
        WHERE p.id = tasks.parent_id AND p.state IN ('succeeded', 'failed', 'cancelled', 'quarantined')) \
     RETURNING parent_id";
pub(crate) const CLOSE_ORPHAN_ATTEMPTS: &str = "UPDATE attempts SET ended_ms = ?1, outcome = 'cancelled', \
        detail = 'its split task ended' \
     WHERE ended_ms IS NULL AND task_id IN (SELECT id FROM tasks WHERE parent_id IS NOT NULL AND state = 'cancelled')";

pub(crate) const PROGRESS: &str = "SELECT \
        COALESCE(SUM(CASE WHEN part_hi - part_lo = 1 AND state = 'succeeded' THEN 1 ELSE 0 END), 0) AS segments_proved, \
        COALESCE(SUM(CASE WHEN part_hi - part_lo > 1 AND state = 'succeeded' THEN 1 ELSE 0 END), 0) AS joins_done, \
        COALESCE(SUM(CASE WHEN state = 'leased' THEN 1 ELSE 0 END), 0) AS parts_running, \
        (SELECT split_po2 FROM tasks WHERE id = ?1) AS segment_po2 \
     FROM tasks WHERE parent_id = ?1";

/// The glue, for one store type and its database: `$lock` is appended to
/// the parent's read (`FOR UPDATE` on PostgreSQL), `$sql` adapts the SQL.
macro_rules! split_glue {
    ($store:ty, $db:ty, $lock:expr, $sql:path) => {
        impl $store {
            /// Accepts a plan for a live lease: the parent waits for its
            /// parts, one segment part per segment is queued. `false`: the
            /// lease was not live.
            async fn accept_plan(
                tx: &mut sqlx::Transaction<'_, $db>,
                lease: &$crate::LeaseRef,
                plan: &provernode_core::split::SplitPlan,
                now: i64,
            ) -> Result<bool, $crate::StoreError> {
                use sqlx::Row;
                let id = lease.task_id.to_string();
                let row = sqlx::query(&$sql($crate::split::ACCEPT_PLAN))
                    .bind(&plan.public_output)
                    .bind($crate::rows::to_i64(plan.cycles, "cycles")?)
                    .bind(i64::from(plan.segments))
                    .bind(i64::from(plan.segment_po2))
                    .bind(now)
                    .bind(&id)
                    .bind(&lease.token)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(row) = row else { return Ok(false) };
                let parent_input: Vec<u8> = row.get("input");
                // A task that named no timeout: each part gets one sized
                // for one segment at the measured rate (the parent's
                // timeout is its parts' from now on; it has no attempt).
                if row.get::<i64, _>("timeout_from_rate") != 0 {
                    let backend: String = row.get("backend");
                    let kind: Option<String> = row.get("proof_kind");
                    let rates = Self::rates_of(&mut **tx, &backend).await?;
                    if let Some((_, cycles_per_sec)) = rates.iter().find(|(k, _)| Some(k) == kind.as_ref()) {
                        let floor = u64::try_from(row.get::<i64, _>("timeout_ms")).unwrap_or(0);
                        let sized = provernode_core::TimeoutRule {
                            cycles_per_sec: *cycles_per_sec,
                            floor: std::time::Duration::from_millis(floor),
                        }
                        .timeout_for(1u64 << plan.segment_po2);
                        sqlx::query(&$sql("UPDATE tasks SET timeout_ms = ?1 WHERE id = ?2"))
                            .bind(i64::try_from(sized.as_millis()).unwrap_or(i64::MAX))
                            .bind(&id)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                sqlx::query(&$sql(
                    "UPDATE attempts SET ended_ms = ?1, outcome = 'split', detail = ?2 \
                     WHERE task_id = ?3 AND lease_token = ?4",
                ))
                .bind(now)
                .bind(format!(
                    "split into {} segments of 2^{} cycles, proved as parts",
                    plan.segments, plan.segment_po2
                ))
                .bind(&id)
                .bind(&lease.token)
                .execute(&mut **tx)
                .await?;
                for index in 0..plan.segments {
                    let part = provernode_core::split::PartInput::segment(plan, &parent_input, index).encode();
                    Self::insert_part(
                        tx,
                        &id,
                        &format!(" [segment {index} of {}]", plan.segments),
                        index,
                        index + 1,
                        &part,
                        now,
                    )
                    .await?;
                }
                Ok(true)
            }

            async fn insert_part(
                tx: &mut sqlx::Transaction<'_, $db>,
                parent: &str,
                name_suffix: &str,
                lo: u32,
                hi: u32,
                input: &[u8],
                now: i64,
            ) -> Result<String, $crate::StoreError> {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(&$sql($crate::split::INSERT_PART))
                    .bind(&id)
                    .bind(name_suffix)
                    .bind(input)
                    .bind(provernode_core::sha256(input).to_string())
                    .bind(now)
                    .bind(i64::from(lo))
                    .bind(i64::from(hi))
                    .bind(parent)
                    .execute(&mut **tx)
                    .await?;
                Ok(id)
            }

            /// After a part succeeded (in the same transaction): the final
            /// join's proof becomes the parent's; any other part is joined
            /// with a free adjacent part, if one is there.
            #[allow(clippy::too_many_arguments)]
            async fn after_part(
                tx: &mut sqlx::Transaction<'_, $db>,
                part_id: &str,
                parent: &str,
                (lo, hi): (i64, i64),
                envelope: &[u8],
                public_output: &[u8],
                cycles: u64,
                now: i64,
            ) -> Result<(), $crate::StoreError> {
                use sqlx::Row;
                let parent_row = sqlx::query(&format!("{}{}", $sql($crate::split::PARENT_OF_PART), $lock))
                    .bind(parent)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(parent_row) = parent_row else {
                    return Err($crate::StoreError::Corrupt(format!("part {part_id} has no parent {parent}")));
                };
                let state: String = parent_row.get("state");
                let segments: Option<i64> = parent_row.get("split_segments");
                let (Some(segments), true) = (segments, state == "leased") else {
                    // The parent ended (cancelled, failed): its parts are
                    // cancelled by the family rule; nothing to join.
                    return Ok(());
                };
                if lo == 0 && hi == segments {
                    let done = sqlx::query(&$sql($crate::split::FINISH_PARENT))
                        .bind(public_output)
                        .bind($crate::rows::to_i64(cycles, "cycles")?)
                        .bind(now)
                        .bind(parent)
                        .execute(&mut **tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        sqlx::query(&$sql($crate::split::INSERT_RESULT))
                            .bind(parent)
                            .bind(envelope)
                            .bind(now)
                            .execute(&mut **tx)
                            .await?;
                        Self::forget_part_proofs(tx, parent).await?;
                    }
                    return Ok(());
                }
                let neighbours = sqlx::query(&$sql($crate::split::FREE_NEIGHBOURS))
                    .bind(parent)
                    .bind(lo)
                    .bind(hi)
                    .bind(part_id)
                    .fetch_all(&mut **tx)
                    .await?;
                for neighbour in neighbours {
                    let other: String = neighbour.get("id");
                    let (other_lo, other_hi): (i64, i64) = (neighbour.get("part_lo"), neighbour.get("part_hi"));
                    let stored: Option<Vec<u8>> = sqlx::query_scalar(&$sql($crate::split::RESULT_OF))
                        .bind(&other)
                        .fetch_optional(&mut **tx)
                        .await?;
                    let readable = stored
                        .as_deref()
                        .map(provernode_core::ProofEnvelope::decode)
                        .map(|r| r.map_err(|e| e.to_string()));
                    let other_envelope = match readable {
                        Some(Ok(_)) => stored.unwrap_or_default(),
                        damaged => {
                            let why = match damaged {
                                Some(Err(e)) => e,
                                _ => "it is missing".to_owned(),
                            };
                            tracing::warn!(part = %other, %why, "a part's stored proof is damaged; proving it again");
                            metrics::counter!("provernode_split_parts_reproved_total").increment(1);
                            sqlx::query(&$sql($crate::split::REPROVE_PART))
                                .bind(&other)
                                .bind(format!("its stored proof was found damaged when it was to be joined ({why}); proving it again"))
                                .bind(now)
                                .execute(&mut **tx)
                                .await?;
                            sqlx::query(&$sql($crate::split::DELETE_RESULT))
                                .bind(&other)
                                .execute(&mut **tx)
                                .await?;
                            continue;
                        }
                    };
                    let (left, right, left_envelope, right_envelope, join_lo, join_hi) = if other_hi == lo {
                        (other.clone(), part_id.to_owned(), other_envelope, envelope.to_vec(), other_lo, hi)
                    } else {
                        (part_id.to_owned(), other.clone(), envelope.to_vec(), other_envelope, lo, other_hi)
                    };
                    let po2: Option<i64> = parent_row.get("split_po2");
                    let parent_digest: String = parent_row.get("input_digest");
                    let journal: Option<Vec<u8>> = parent_row.get("public_output");
                    let bad = |what: &str| $crate::StoreError::Corrupt(format!("split task {parent}: bad {what}"));
                    let input = provernode_core::split::PartInput {
                        total: u32::try_from(segments).map_err(|_| bad("split_segments"))?,
                        segment_po2: po2.and_then(|p| u32::try_from(p).ok()).ok_or_else(|| bad("split_po2"))?,
                        parent_input_digest: parent_digest.parse().map_err(|_| bad("input_digest"))?,
                        lo: u32::try_from(join_lo).map_err(|_| bad("part_lo"))?,
                        hi: u32::try_from(join_hi).map_err(|_| bad("part_hi"))?,
                        work: provernode_core::split::PartWork::Join {
                            left: left_envelope,
                            right: right_envelope,
                            public_output: journal.unwrap_or_default(),
                            cycles: parent_row
                                .get::<Option<i64>, _>("cycles")
                                .and_then(|c| u64::try_from(c).ok())
                                .unwrap_or(0),
                        },
                    }
                    .encode();
                    let name = format!(" [join of segments {join_lo}..{join_hi} of {segments}]");
                    let join_lo = u32::try_from(join_lo).map_err(|_| bad("part_lo"))?;
                    let join_hi = u32::try_from(join_hi).map_err(|_| bad("part_hi"))?;
                    let join = Self::insert_part(tx, parent, &name, join_lo, join_hi, &input, now).await?;
                    sqlx::query(&$sql($crate::split::INSERT_JOIN_DEPENDENCIES))
                        .bind(&join)
                        .bind(&left)
                        .bind(&right)
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(&$sql($crate::split::MARK_JOINED))
                        .bind(&join)
                        .bind(&left)
                        .bind(&right)
                        .execute(&mut **tx)
                        .await?;
                    return Ok(());
                }
                Ok(())
            }

            /// Ends split families together: a parent whose part ended
            /// without a proof fails; parts of an ended parent are
            /// cancelled. Returns how many tasks changed.
            async fn end_split_families(
                tx: &mut sqlx::Transaction<'_, $db>,
                now: i64,
            ) -> Result<u64, $crate::StoreError> {
                let failed: Vec<String> = sqlx::query_scalar(&$sql($crate::split::FAIL_SPLIT_PARENTS))
                    .bind(now)
                    .fetch_all(&mut **tx)
                    .await?;
                let cancelled: Vec<String> = sqlx::query_scalar(&$sql($crate::split::CANCEL_ORPHAN_PARTS))
                    .bind(now)
                    .fetch_all(&mut **tx)
                    .await?;
                if !cancelled.is_empty() {
                    sqlx::query(&$sql($crate::split::CLOSE_ORPHAN_ATTEMPTS))
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                }
                // A failed parent's parts are cancelled by the next round
                // (the caller loops until nothing changes), which names the
                // parent here again: its proofs go once all have ended.
                let mut ended: Vec<&String> = failed.iter().chain(&cancelled).collect();
                ended.sort();
                ended.dedup();
                for parent in ended {
                    Self::forget_part_proofs(tx, parent).await?;
                }
                Ok((failed.len() + cancelled.len()) as u64)
            }

            /// Deletes what the parts of the ended split task `parent` kept
            /// of their proofs ([`FORGET_PART_PROOFS`]).
            async fn forget_part_proofs(
                tx: &mut sqlx::Transaction<'_, $db>,
                parent: &str,
            ) -> Result<(), $crate::StoreError> {
                let proofs = sqlx::query(&$sql($crate::split::FORGET_PART_PROOFS))
                    .bind(parent)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                let inputs = sqlx::query(&$sql($crate::split::FORGET_PART_INPUTS))
                    .bind(parent)
                    .bind(Vec::<u8>::new())
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                tracing::debug!(parent, proofs, inputs, "a split task ended: its parts' proofs deleted");
                Ok(())
            }

            async fn do_split_progress(
                &self,
                id: $crate::TaskId,
            ) -> Result<Option<$crate::SplitProgress>, $crate::StoreError> {
                use sqlx::Row;
                let Some(task) = self.do_task(id).await? else { return Ok(None) };
                let Some(segments) = task.split_segments else { return Ok(None) };
                let row = sqlx::query(&$sql($crate::split::PROGRESS))
                    .bind(id.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                let n = |c: &str| u32::try_from(row.get::<i64, _>(c)).unwrap_or(0);
                // Written with split_segments by the same statement.
                let segment_po2 = row
                    .get::<Option<i64>, _>("segment_po2")
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| {
                        $crate::StoreError::Corrupt(format!("split task {id} has segments but no segment size"))
                    })?;
                Ok(Some($crate::SplitProgress {
                    segments,
                    segment_po2,
                    segments_proved: n("segments_proved"),
                    joins: segments.saturating_sub(1),
                    // The final join is a part too: it succeeds with the parent.
                    joins_done: n("joins_done"),
                    parts_running: n("parts_running"),
                }))
            }
        }
    };
}

pub(crate) use split_glue;

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_placeholders_become_postgres_ones() {
        assert_eq!(
            super::pg("a = ?1 AND b = ?12 AND c = '?'"),
            "a = $1 AND b = $12 AND c = '?'"
        );
    }
}
