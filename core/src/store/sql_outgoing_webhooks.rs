//! Outgoing webhooks: endpoints synced from configuration, their per-endpoint cursor into
//! the event log, claims with a lease, failure counting and disabling, and the delivery log.
//!
//! An endpoint owes its tenant's events after `cursor_seq`, in order. A worker claims an
//! endpoint that owes something (lease in `locked_until`; `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL through [`super::Dialect::claim_webhook`]), delivers, and moves the cursor only
//! after a 2xx, in the same transaction as the log row. Every write made under a claim checks
//! the lease, so a worker whose lease expired (and whose endpoint another worker took over)
//! changes nothing.

use crate::domain::model::Millis;

/// A configured endpoint, as [`super::WebhookStore::sync_webhook_endpoints`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub tenant_id: String,
    pub id: String,
    pub url: String,
    /// Event types and prefixes (`message.*`); empty means every event.
    pub events: Vec<String>,
}

/// An endpoint as the API shows it.
#[derive(Debug, Clone)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub url: String,
    /// Event types and prefixes delivered; empty means every event.
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub state: String,
    /// Why the endpoint was disabled (while disabled).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Millis>,
    /// The id of the last event delivered (or passed over by the filter).
    pub cursor: i64,
    pub consecutive_failures: i64,
    /// The HTTP status of the last attempt (null: none yet, or no response).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    /// When the next retry is due, while failing.
    pub next_attempt_at: Option<Millis>,
    pub created_at: Millis,
}

/// An endpoint claimed for delivery. `locked_until` is the lease this claim holds; writes
/// with another lease are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookClaim {
    pub uid: String,
    pub tenant_id: String,
    pub id: String,
    pub cursor: i64,
    pub consecutive_failures: i64,
    pub locked_until: Millis,
}

/// One HTTP attempt, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub tenant_id: String,
    pub endpoint_id: String,
    /// `event` (from the event log) or `test` (a manual test send).
    pub kind: &'static str,
    /// The event's id (0 for a test send).
    pub event_seq: i64,
    pub event_type: String,
    /// 1 for the first attempt at this event, counting failures since the last success.
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: Millis,
}

/// One entry of the delivery log, as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookDeliveryRow {
    pub id: String,
    /// `event` or `test`.
    pub kind: String,
    /// The event's id (0 for a test send).
    pub event_id: i64,
    pub event_type: String,
    pub attempt: i64,
    /// The HTTP status received (null: no response — timeout, connection error).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// A 2xx was received.
    pub success: bool,
    pub created_at: Millis,
}

/// What a recorded failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFailure {
    /// Retried at the given time.
    Retry { consecutive_failures: i64 },
    /// `disable_after` consecutive failures: the endpoint is now disabled.
    Disabled { consecutive_failures: i64 },
    /// The lease was lost; nothing but the log row was recorded.
    LeaseLost,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: sqlx::types::Json<Vec<String>>,
    pub state: String,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Millis>,
    pub cursor_seq: i64,
    pub consecutive_failures: i64,
    pub next_attempt_at: Millis,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    pub created_at: Millis,
}

impl From<EndpointRow> for WebhookEndpointRow {
    fn from(r: EndpointRow) -> Self {
        let failing = r.state == "enabled" && r.consecutive_failures > 0;
        Self {
            id: r.id,
            url: r.url,
            events: r.events.0,
            state: r.state,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            cursor: r.cursor_seq,
            consecutive_failures: r.consecutive_failures,
            last_status: r.last_status,
            last_error: r.last_error,
            last_attempt_at: r.last_attempt_at,
            last_success_at: r.last_success_at,
            next_attempt_at: failing.then_some(r.next_attempt_at),
            created_at: r.created_at,
        }
    }
}

macro_rules! webhook_endpoint_select {
    () => {
        "SELECT id, url, events, state, disabled_reason, disabled_at, cursor_seq, consecutive_failures,
        next_attempt_at, last_status, last_error, last_attempt_at, last_success_at, created_at
   FROM webhook_endpoints "
    };
}
pub(crate) use webhook_endpoint_select;

macro_rules! impl_webhook_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn insert_webhook_attempt(
                conn: &mut <$db as sqlx::Database>::Connection,
                a: &$crate::store::WebhookAttempt,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO webhook_deliveries
                       (id, tenant_id, endpoint_id, kind, event_seq, event_type, attempt, status_code, error, duration_ms, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind($crate::domain::model::new_id())
                .bind(a.tenant_id.clone())
                .bind(a.endpoint_id.clone())
                .bind(a.kind)
                .bind(a.event_seq)
                .bind(a.event_type.clone())
                .bind(a.attempt)
                .bind(a.status_code)
                .bind(a.error.clone())
                .bind(a.duration_ms)
                .bind(a.at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::WebhookStore for $store {
            async fn sync_webhook_endpoints(
                &self,
                endpoints: &[$crate::store::WebhookEndpointRecord],
            ) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                for e in endpoints {
                    // New: starts at the tenant's newest event (no history flood). Known: keeps
                    // its cursor, state and failures; comes back if it had been removed.
                    sqlx::query(
                        "INSERT INTO webhook_endpoints
                           (uid, tenant_id, id, url, events, state, cursor_seq, consecutive_failures, next_attempt_at, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, 'enabled',
                                 (SELECT COALESCE(MAX(last_seq), 0) FROM tenant_event_counters WHERE tenant_id = $2), 0, 0, $6, $6)
                         ON CONFLICT (tenant_id, id) DO UPDATE SET url = excluded.url, events = excluded.events,
                                removed_at = NULL, updated_at = excluded.updated_at",
                    )
                    .bind($crate::domain::model::new_id())
                    .bind(e.tenant_id.clone())
                    .bind(e.id.clone())
                    .bind(e.url.clone())
                    .bind(sqlx::types::Json(e.events.clone()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let known: Vec<(String, String, String)> =
                    sqlx::query_as("SELECT uid, tenant_id, id FROM webhook_endpoints WHERE removed_at IS NULL")
                        .fetch_all(&mut *tx)
                        .await?;
                for (uid, tenant, id) in known {
                    if !endpoints.iter().any(|e| e.tenant_id == tenant && e.id == id) {
                        sqlx::query("UPDATE webhook_endpoints SET removed_at = $1, locked_until = NULL, updated_at = $1 WHERE uid = $2")
                            .bind(now)
                            .bind(uid)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_webhook_endpoints(
                &self,
                tenant: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::WebhookEndpointRow>> {
                let rows: Vec<$crate::store::sql_outgoing_webhooks::EndpointRow> = sqlx::query_as(concat!(
                    $crate::store::sql_outgoing_webhooks::webhook_endpoint_select!(),
                    "WHERE tenant_id = $1 AND removed_at IS NULL ORDER BY id"
                ))
                .bind(tenant.to_string())
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn get_webhook_endpoint(
                &self,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::WebhookEndpointRow> {
                let row: Option<$crate::store::sql_outgoing_webhooks::EndpointRow> = sqlx::query_as(concat!(
                    $crate::store::sql_outgoing_webhooks::webhook_endpoint_select!(),
                    "WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL"
                ))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(self.reader())
                .await?;
                row.map(Into::into).ok_or($crate::store::StoreError::NotFound)
            }

            async fn claim_webhook_endpoint(
                &self,
                now: i64,
                lease_ms: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::WebhookClaim>> {
                let row: Option<(String, String, String, i64, i64, Option<i64>)> =
                    sqlx::query_as(Self::DIALECT.claim_webhook)
                        .bind(now.saturating_add(lease_ms))
                        .bind(now)
                        .fetch_optional(self.writer())
                        .await?;
                Ok(row.map(|(uid, tenant_id, id, cursor, consecutive_failures, locked_until)| {
                    $crate::store::WebhookClaim {
                        uid,
                        tenant_id,
                        id,
                        cursor,
                        consecutive_failures,
                        locked_until: locked_until.unwrap_or_default(),
                    }
                }))
            }

            async fn webhook_advance(
                &self,
                claim: &mut $crate::store::WebhookClaim,
                seq: i64,
                attempt: Option<&$crate::store::WebhookAttempt>,
                lease_ms: i64,
            ) -> $crate::store::StoreResult<bool> {
                let now = $crate::domain::model::now_millis();
                let lease = now.saturating_add(lease_ms).max(claim.locked_until);
                let mut tx = self.writer().begin().await?;
                // A delivery resets the failure count; passing over filtered events does not.
                let delivered = attempt.is_some();
                let r = sqlx::query(
                    "UPDATE webhook_endpoints
                        SET cursor_seq = CASE WHEN cursor_seq < $1 THEN $1 ELSE cursor_seq END,
                            consecutive_failures = CASE WHEN $2 THEN 0 ELSE consecutive_failures END,
                            last_status = CASE WHEN $2 THEN $3 ELSE last_status END,
                            last_error = CASE WHEN $2 THEN NULL ELSE last_error END,
                            last_attempt_at = CASE WHEN $2 THEN $4 ELSE last_attempt_at END,
                            last_success_at = CASE WHEN $2 THEN $4 ELSE last_success_at END,
                            locked_until = $5, updated_at = $4
                      WHERE uid = $6 AND locked_until = $7 AND state = 'enabled' AND removed_at IS NULL",
                )
                .bind(seq)
                .bind(delivered)
                .bind(attempt.and_then(|a| a.status_code))
                .bind(now)
                .bind(lease)
                .bind(claim.uid.clone())
                .bind(claim.locked_until)
                .execute(&mut *tx)
                .await?;
                if let Some(a) = attempt {
                    Self::insert_webhook_attempt(&mut tx, a).await?;
                }
                tx.commit().await?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                claim.cursor = claim.cursor.max(seq);
                claim.locked_until = lease;
                if delivered {
                    claim.consecutive_failures = 0;
                }
                Ok(true)
            }

            async fn webhook_failed(
                &self,
                claim: &$crate::store::WebhookClaim,
                attempt: &$crate::store::WebhookAttempt,
                next_at: i64,
                disable_after: i64,
            ) -> $crate::store::StoreResult<$crate::store::WebhookFailure> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::insert_webhook_attempt(&mut tx, attempt).await?;
                let failures: Option<i64> = sqlx::query_scalar(
                    "UPDATE webhook_endpoints
                        SET consecutive_failures = consecutive_failures + 1, last_status = $1, last_error = $2,
                            last_attempt_at = $3, next_attempt_at = $4, locked_until = NULL, updated_at = $3
                      WHERE uid = $5 AND locked_until = $6
                      RETURNING consecutive_failures",
                )
                .bind(attempt.status_code)
                .bind(attempt.error.clone())
                .bind(now)
                .bind(next_at)
                .bind(claim.uid.clone())
                .bind(claim.locked_until)
                .fetch_optional(&mut *tx)
                .await?;
                let outcome = match failures {
                    None => $crate::store::WebhookFailure::LeaseLost,
                    Some(n) if n >= disable_after.max(1) => {
                        let reason = format!(
                            "{n} consecutive failed deliveries; last: {}",
                            attempt.error.as_deref().unwrap_or("no error recorded")
                        );
                        sqlx::query(
                            "UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = $1, disabled_at = $2
                              WHERE uid = $3",
                        )
                        .bind(reason.clone())
                        .bind(now)
                        .bind(claim.uid.clone())
                        .execute(&mut *tx)
                        .await?;
                        Self::insert_event(
                            &mut tx,
                            &claim.tenant_id,
                            "webhook.disabled",
                            serde_json::json!({
                                "webhook_id": claim.id,
                                "reason": reason,
                                "consecutive_failures": n,
                                "last_event_id": claim.cursor,
                            }),
                            now,
                        )
                        .await?;
                        $crate::store::WebhookFailure::Disabled { consecutive_failures: n }
                    }
                    Some(n) => $crate::store::WebhookFailure::Retry { consecutive_failures: n },
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn release_webhook_endpoint(
                &self,
                claim: &$crate::store::WebhookClaim,
                next_at: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE webhook_endpoints SET locked_until = NULL, next_attempt_at = $1, updated_at = $2
                      WHERE uid = $3 AND locked_until = $4",
                )
                .bind(next_at)
                .bind($crate::domain::model::now_millis())
                .bind(claim.uid.clone())
                .bind(claim.locked_until)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn enable_webhook_endpoint(
                &self,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::WebhookEndpointRow> {
                let now = $crate::domain::model::now_millis();
                let r = sqlx::query(
                    "UPDATE webhook_endpoints
                        SET state = 'enabled', disabled_reason = NULL, disabled_at = NULL,
                            consecutive_failures = 0, next_attempt_at = $1, updated_at = $1
                      WHERE tenant_id = $2 AND id = $3 AND removed_at IS NULL",
                )
                .bind(now)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(self.writer())
                .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                self.get_webhook_endpoint(tenant, id).await
            }

            async fn record_webhook_delivery(
                &self,
                attempt: &$crate::store::WebhookAttempt,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                Self::insert_webhook_attempt(&mut tx, attempt).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_webhook_deliveries(
                &self,
                tenant: &str,
                endpoint: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::WebhookDeliveryRow>> {
                // 404 for an endpoint that is not the tenant's (or no longer configured).
                self.get_webhook_endpoint(tenant, endpoint).await?;
                let rows: Vec<$crate::store::WebhookDeliveryRow> = sqlx::query_as(
                    "SELECT id, kind, event_seq AS event_id, event_type, attempt, status_code, error, duration_ms,
                            (status_code IS NOT NULL AND status_code >= 200 AND status_code < 300 AND error IS NULL) AS success,
                            created_at
                       FROM webhook_deliveries
                      WHERE tenant_id = $1 AND endpoint_id = $2
                        AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4))
                      ORDER BY created_at DESC, id DESC LIMIT $5",
                )
                .bind(tenant.to_string())
                .bind(endpoint.to_string())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(self.reader())
                .await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.created_at, id: r.id.clone() },
                    |r| r,
                ))
            }

            async fn prune_webhook_deliveries(&self, before: i64) -> $crate::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM webhook_deliveries WHERE created_at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected())
            }

            async fn next_webhook_due(&self, now: i64) -> $crate::store::StoreResult<Option<i64>> {
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at
                                     THEN locked_until ELSE next_attempt_at END)
                       FROM webhook_endpoints
                      WHERE state = 'enabled' AND removed_at IS NULL
                        AND (next_attempt_at > $1 OR locked_until > $1)",
                )
                .bind(now)
                .fetch_one(self.reader())
                .await?;
                Ok(due)
            }
        }
    };
}
pub(crate) use impl_webhook_store;
