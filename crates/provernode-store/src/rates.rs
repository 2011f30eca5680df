//! Measured proving rates (issue 22): cycles per second per backend and
//! proof kind, kept from the node's own finished attempts (a moving
//! average, 0.3 weight on the newest) or set by `provernode calibrate`.
//! Attempts that mostly measured start-up (under a second, or under
//! 100,000 cycles) are not counted. The rates size the timeouts of tasks
//! that name none (`provernode_core::TimeoutRule`).

/// A sample counts only past these: below them start-up dominates.
pub(crate) const MIN_SAMPLE_MS: i64 = 1_000;
pub(crate) const MIN_SAMPLE_CYCLES: u64 = 100_000;

pub(crate) const UPSERT_AVERAGE: &str = "INSERT INTO proving_rates \
        (backend, proof_kind, cycles_per_sec, samples, source, updated_ms) VALUES (?1, ?2, ?3, 1, 'attempts', ?4) \
     ON CONFLICT (backend, proof_kind) DO UPDATE SET \
        cycles_per_sec = proving_rates.cycles_per_sec * 0.7 + excluded.cycles_per_sec * 0.3, \
        samples = proving_rates.samples + 1, source = 'attempts', updated_ms = excluded.updated_ms";

pub(crate) const UPSERT_CALIBRATED: &str = "INSERT INTO proving_rates \
        (backend, proof_kind, cycles_per_sec, samples, source, updated_ms) VALUES (?1, ?2, ?3, 1, ?4, ?5) \
     ON CONFLICT (backend, proof_kind) DO UPDATE SET cycles_per_sec = excluded.cycles_per_sec, \
        samples = 1, source = excluded.source, updated_ms = excluded.updated_ms";

pub(crate) const ATTEMPT_START: &str =
    "SELECT started_ms FROM attempts WHERE task_id = ?1 AND lease_token = ?2";

pub(crate) const RATES_OF_BACKEND: &str =
    "SELECT proof_kind, cycles_per_sec FROM proving_rates WHERE backend = ?1 ORDER BY proof_kind";

pub(crate) const ALL_RATES: &str = "SELECT backend, proof_kind, cycles_per_sec, samples, source, updated_ms \
     FROM proving_rates ORDER BY backend, proof_kind";

macro_rules! rates_glue {
    ($store:ty, $db:ty, $sql:path) => {
        impl $store {
            /// After a whole task's attempt succeeded (same transaction):
            /// its rate joins the backend's and kind's average.
            async fn record_attempt_rate(
                tx: &mut sqlx::Transaction<'_, $db>,
                lease: &$crate::LeaseRef,
                backend: &str,
                envelope: &[u8],
                cycles: u64,
                now: i64,
            ) -> Result<(), $crate::StoreError> {
                let Ok(decoded) = provernode_core::ProofEnvelope::decode(envelope) else {
                    return Ok(());
                };
                let started: Option<i64> = sqlx::query_scalar(&$sql($crate::rates::ATTEMPT_START))
                    .bind(lease.task_id.to_string())
                    .bind(&lease.token)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(elapsed_ms) = started.map(|s| now - s) else {
                    return Ok(());
                };
                if elapsed_ms < $crate::rates::MIN_SAMPLE_MS || cycles < $crate::rates::MIN_SAMPLE_CYCLES {
                    return Ok(());
                }
                let sample = cycles as f64 / (elapsed_ms as f64 / 1000.0);
                sqlx::query(&$sql($crate::rates::UPSERT_AVERAGE))
                    .bind(backend)
                    .bind(&decoded.proof_kind)
                    .bind(sample)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// The rates of `backend`'s proof kinds, for a lease.
            async fn rates_of<'e, E>(
                executor: E,
                backend: &str,
            ) -> Result<Vec<(String, f64)>, $crate::StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                use sqlx::Row;
                let rows = sqlx::query(&$sql($crate::rates::RATES_OF_BACKEND))
                    .bind(backend)
                    .fetch_all(executor)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (
                            r.get::<String, _>("proof_kind"),
                            r.get::<f64, _>("cycles_per_sec"),
                        )
                    })
                    .collect())
            }

            async fn do_proving_rates(&self) -> Result<Vec<$crate::ProvingRate>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(&$sql($crate::rates::ALL_RATES))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| $crate::ProvingRate {
                        backend: r.get("backend"),
                        proof_kind: r.get("proof_kind"),
                        cycles_per_sec: r.get("cycles_per_sec"),
                        samples: u64::try_from(r.get::<i64, _>("samples")).unwrap_or(0),
                        source: r.get("source"),
                        updated_ms: r.get("updated_ms"),
                    })
                    .collect())
            }

            async fn do_record_rate(
                &self,
                backend: &str,
                proof_kind: &str,
                cycles_per_sec: f64,
                source: &str,
            ) -> Result<(), $crate::StoreError> {
                if !(cycles_per_sec.is_finite() && cycles_per_sec > 0.0) {
                    return Err($crate::StoreError::Refused(format!(
                        "a proving rate is a positive number of cycles per second, not {cycles_per_sec}"
                    )));
                }
                sqlx::query(&$sql($crate::rates::UPSERT_CALIBRATED))
                    .bind(backend)
                    .bind(proof_kind)
                    .bind(cycles_per_sec)
                    .bind(source)
                    .bind(self.now())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use rates_glue;
