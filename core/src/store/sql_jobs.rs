//! Job queue queries (outbox sends and media downloads), written once for both databases.
//!
//! A claim sets a lease (`locked_until`) and counts the attempt; completing a job checks the
//! lease, so a worker whose lease expired (and whose job another worker took over) cannot
//! overwrite the newer outcome. A send job records when its first attempt began calling the
//! provider (`send_started_at`, committed before the call), so that a later attempt knows an
//! earlier one may have reached the provider unrecorded.

macro_rules! impl_job_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Ends a job if this claim still holds it; false if the lease was lost.
            async fn finish_job(
                conn: &mut <$db as sqlx::Database>::Connection,
                job: &$crate::store::Job,
                state: &str,
                error: Option<&str>,
                next_at: Option<i64>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET state = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                            locked_until = NULL, updated_at = $4
                      WHERE id = $5 AND locked_until = $6",
                )
                .bind(state.to_string())
                .bind(error.map(str::to_string))
                .bind(next_at)
                .bind(now)
                .bind(job.id.clone())
                .bind(job.locked_until)
                .execute(&mut *conn)
                .await?;
                Ok(r.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::JobStore for $store {
            async fn claim_job(&self, now: i64, lease_ms: i64) -> $crate::store::StoreResult<Option<$crate::store::Job>> {
                let row: Option<$crate::store::rows::JobSql> = sqlx::query_as(Self::DIALECT.claim_job)
                    .bind(now + lease_ms)
                    .bind(now)
                    .fetch_optional(self.writer())
                    .await?;
                row.map(|r| r.into_job()).transpose()
            }

            async fn outbound_for_job(&self, job: &$crate::store::Job) -> $crate::store::StoreResult<$crate::store::OutboundContext> {
                #[derive(sqlx::FromRow)]
                struct Row {
                    conversation_id: String,
                    subject: Option<String>,
                    text_body: Option<String>,
                    in_reply_to: Option<String>,
                    external: sqlx::types::Json<serde_json::Value>,
                    kind: String,
                    value: String,
                    opted_out_at: Option<i64>,
                    conversation_subject: Option<String>,
                    reply_token: Option<String>,
                    created_at: i64,
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let row: Option<Row> = sqlx::query_as(
                    "SELECT m.conversation_id, m.subject, m.text_body, m.in_reply_to, m.external,
                            c.contact_kind AS kind, c.contact_address AS value, i.opted_out_at,
                            c.subject AS conversation_subject, c.reply_token, m.created_at
                       FROM messages m
                       JOIN conversations c ON c.id = m.conversation_id
                       LEFT JOIN contact_identities i
                         ON i.tenant_id = c.tenant_id AND i.kind = c.contact_kind AND i.value = c.contact_address
                      WHERE m.id = $1 AND m.tenant_id = $2",
                )
                .bind(&job.ref_id)
                .bind(&job.tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
                let row = row.ok_or($crate::store::StoreError::NotFound)?;
                // References: the conversation's first message and its latest ones before this
                // reply (RFC 5322 allows trimming the middle; mail clients thread on the ends).
                let first: Option<String> = sqlx::query_scalar(
                    "SELECT provider_message_id FROM messages
                      WHERE conversation_id = $1 AND provider_message_id IS NOT NULL AND id <> $2
                      ORDER BY created_at ASC, id ASC LIMIT 1",
                )
                .bind(&row.conversation_id)
                .bind(&job.ref_id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut recent: Vec<String> = sqlx::query_scalar(
                    "SELECT provider_message_id FROM messages
                      WHERE conversation_id = $1 AND provider_message_id IS NOT NULL AND id <> $2 AND created_at <= $3
                      ORDER BY created_at DESC, id DESC LIMIT 19",
                )
                .bind(&row.conversation_id)
                .bind(&job.ref_id)
                .bind(row.created_at)
                .fetch_all(&mut *tx)
                .await?;
                recent.reverse();
                let mut references: Vec<String> = first.into_iter().collect();
                for r in recent {
                    if !references.contains(&r) {
                        references.push(r);
                    }
                }
                Self::advance_status(&mut tx, &job.ref_id, $crate::domain::model::DeliveryStatus::Sending, None, None, now).await?;
                // Durable before the provider is called: a later attempt then knows this one
                // may have reached the provider. The first attempt's start is kept.
                sqlx::query("UPDATE jobs SET send_started_at = COALESCE(send_started_at, $1) WHERE id = $2")
                    .bind(now)
                    .bind(&job.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let kind = $crate::domain::model::IdentityKind::parse(&row.kind)
                    .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("identity kind {:?}", row.kind)))?;
                let template = row
                    .external
                    .0
                    .get("template")
                    .filter(|t| !t.is_null())
                    .map(|t| serde_json::from_value::<$crate::domain::model::Template>(t.clone()))
                    .transpose()
                    .map_err(|e| $crate::store::StoreError::Corrupt(format!("stored template: {e}")))?;
                let media_urls = row
                    .external
                    .0
                    .get("media_urls")
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|u| u.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                Ok($crate::store::OutboundContext {
                    message: $crate::domain::model::OutboundMessage {
                        message_id: job.ref_id.clone(),
                        tenant_id: job.tenant_id.clone(),
                        channel_id: job.channel_id.clone(),
                        conversation_id: row.conversation_id,
                        to: $crate::domain::model::Identity { kind, value: row.value },
                        subject: row.subject,
                        text: row.text_body,
                        media_urls,
                        in_reply_to: row.in_reply_to,
                        template,
                        thread: $crate::domain::model::OutboundThread {
                            subject: row.conversation_subject,
                            reply_token: row.reply_token,
                            references,
                        },
                    },
                    opted_out: row.opted_out_at.is_some(),
                })
            }

            async fn job_sent(&self, job: &$crate::store::Job, receipt: &$crate::domain::model::SendReceipt) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                if !Self::finish_job(&mut tx, job, "done", None, None, now).await? {
                    tracing::warn!(job = %job.id, "lease lost before the send was recorded");
                }
                let external: Option<sqlx::types::Json<serde_json::Value>> =
                    sqlx::query_scalar("SELECT external FROM messages WHERE id = $1")
                        .bind(&job.ref_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let mut external = external.map(|j| j.0).unwrap_or_else(|| serde_json::json!({}));
                if let Some(obj) = external.as_object_mut() {
                    obj.insert("send_response".into(), receipt.external.clone());
                }
                sqlx::query(
                    "UPDATE messages SET provider_message_id = $1, external = $2, sent_at = $3, updated_at = $3 WHERE id = $4",
                )
                .bind(&receipt.provider_message_id)
                .bind(sqlx::types::Json(external))
                .bind(now)
                .bind(&job.ref_id)
                .execute(&mut *tx)
                .await?;
                let status = match receipt.status {
                    $crate::domain::model::DeliveryStatus::Queued | $crate::domain::model::DeliveryStatus::Sending => $crate::domain::model::DeliveryStatus::Sent,
                    s => s,
                };
                Self::advance_status(&mut tx, &job.ref_id, status, None, None, now).await?;
                // Reports that arrived before we knew the provider id apply now, in rank order.
                let parked: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT status, error_code, error_message FROM pending_statuses
                      WHERE channel_id = $1 AND provider_message_id = $2 ORDER BY status_rank",
                )
                .bind(&job.channel_id)
                .bind(&receipt.provider_message_id)
                .fetch_all(&mut *tx)
                .await?;
                for (status, code, message) in parked {
                    if let Some(s) = $crate::domain::model::DeliveryStatus::parse(&status) {
                        Self::advance_status(&mut tx, &job.ref_id, s, code.as_deref(), message.as_deref(), now).await?;
                    }
                }
                sqlx::query("DELETE FROM pending_statuses WHERE channel_id = $1 AND provider_message_id = $2")
                    .bind(&job.channel_id)
                    .bind(&receipt.provider_message_id)
                    .execute(&mut *tx)
                    .await?;
                let current: String = sqlx::query_scalar("SELECT delivery_status FROM messages WHERE id = $1")
                    .bind(&job.ref_id)
                    .fetch_one(&mut *tx)
                    .await?;
                Self::insert_event(
                    &mut tx,
                    &job.tenant_id,
                    "message.updated",
                    serde_json::json!({ "message_id": job.ref_id, "delivery_status": current }),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn provider_id_in_use(&self, channel_id: &str, provider_message_id: &str) -> $crate::store::StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM messages WHERE channel_id = $1 AND provider_message_id = $2",
                )
                .bind(channel_id)
                .bind(provider_message_id)
                .fetch_optional(self.reader())
                .await?;
                Ok(found.is_some())
            }

            async fn job_retry(&self, job: &$crate::store::Job, next_at: i64, error: &str) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::finish_job(&mut tx, job, "pending", Some(error), Some(next_at), now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn job_failed(&self, job: &$crate::store::Job, code: &str, message: &str) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let error = format!("{code}: {message}");
                if !Self::finish_job(&mut tx, job, "failed", Some(&error), None, now).await? {
                    tracing::warn!(job = %job.id, "lease lost before the failure was recorded");
                }
                match job.kind {
                    $crate::store::JobKind::Send => {
                        Self::advance_status(&mut tx, &job.ref_id, $crate::domain::model::DeliveryStatus::Failed, Some(code), Some(message), now).await?;
                        Self::insert_event(
                            &mut tx,
                            &job.tenant_id,
                            "message.updated",
                            serde_json::json!({ "message_id": job.ref_id, "delivery_status": "failed", "error_code": code }),
                            now,
                        )
                        .await?;
                    }
                    $crate::store::JobKind::ReadReceipt => {}
                    $crate::store::JobKind::FetchMedia => {
                        sqlx::query("UPDATE attachments SET state = 'failed', error = $1 WHERE id = $2")
                            .bind(&error)
                            .bind(&job.ref_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn media_for_job(&self, job: &$crate::store::Job) -> $crate::store::StoreResult<$crate::store::MediaJobContext> {
                let source: Option<Option<String>> = sqlx::query_scalar("SELECT source FROM attachments WHERE id = $1 AND tenant_id = $2")
                    .bind(&job.ref_id)
                    .bind(&job.tenant_id)
                    .fetch_optional(self.reader())
                    .await?;
                let source = source.flatten().ok_or($crate::store::StoreError::NotFound)?;
                Ok($crate::store::MediaJobContext {
                    attachment_id: job.ref_id.clone(),
                    source,
                    tenant_id: job.tenant_id.clone(),
                })
            }

            async fn attachment_stored(&self, job: &$crate::store::Job, blob: &$crate::store::StoredBlob) -> $crate::store::StoreResult<bool> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::finish_job(&mut tx, job, "done", None, None, now).await?;
                // An attachment erased while its bytes were being fetched stays erased.
                let message_id: Option<String> = sqlx::query_scalar(
                    "UPDATE attachments SET state = 'stored', storage_key = $1, sha256 = $2, size = $3, content_type = $4, error = NULL
                      WHERE id = $5 AND state <> 'erased' RETURNING message_id",
                )
                .bind(&blob.storage_key)
                .bind(&blob.sha256)
                .bind(blob.size)
                .bind(&blob.content_type)
                .bind(&job.ref_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(message_id) = message_id else {
                    tx.commit().await?;
                    return Ok(false);
                };
                Self::insert_event(
                    &mut tx,
                    &job.tenant_id,
                    "message.updated",
                    serde_json::json!({ "message_id": message_id, "attachment_id": job.ref_id, "attachment_state": "stored" }),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn read_receipt_target(&self, job: &$crate::store::Job) -> $crate::store::StoreResult<String> {
                let pid: Option<Option<String>> = sqlx::query_scalar("SELECT provider_message_id FROM messages WHERE id = $1 AND tenant_id = $2")
                    .bind(&job.ref_id)
                    .bind(&job.tenant_id)
                    .fetch_optional(self.reader())
                    .await?;
                pid.flatten().ok_or($crate::store::StoreError::NotFound)
            }

            async fn job_done(&self, job: &$crate::store::Job) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::finish_job(&mut tx, job, "done", None, None, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_stats(&self) -> $crate::store::StoreResult<(i64, Option<i64>)> {
                Ok(sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM jobs WHERE state = 'pending' AND kind = 'send'")
                    .fetch_one(self.reader())
                    .await?)
            }

            async fn next_job_due(&self) -> $crate::store::StoreResult<Option<i64>> {
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at
                                     THEN locked_until ELSE next_attempt_at END)
                       FROM jobs WHERE state = 'pending'",
                )
                .fetch_one(self.reader())
                .await?;
                Ok(due)
            }
        }
    };
}
pub(crate) use impl_job_store;
