//! Mailbox sync state per channel and folder: the cursor (UIDVALIDITY, last UID,
//! HIGHESTMODSEQ) and the run record (last run, last success, last error, counters,
//! backfill progress) that the API and `/metrics` show.

macro_rules! impl_sync_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SyncStore for $store {
            async fn sync_states(&self, tenant: Option<&str>) -> $crate::store::StoreResult<Vec<$crate::store::SyncStateRow>> {
                Ok(sqlx::query_as(
                    "SELECT s.channel_id, s.folder, s.uidvalidity, s.last_uid, s.highestmodseq, s.last_run_at, s.last_success_at,
                            s.last_error, s.seen, s.stored, s.backlog_total, s.backlog_done
                       FROM sync_cursors s JOIN channels c ON c.id = s.channel_id
                      WHERE ($1 IS NULL OR c.tenant_id = $1)
                      ORDER BY s.channel_id, s.folder",
                )
                .bind(tenant.map(str::to_string))
                .fetch_all(self.reader())
                .await?)
            }

            async fn record_sync_run(&self, run: &$crate::contract::ingest_types::SyncRun) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM channels WHERE id = $1")
                    .bind(&run.channel_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let tenant = tenant.ok_or($crate::store::StoreError::NotFound)?;
                sqlx::query(
                    "INSERT INTO sync_cursors (channel_id, folder, uidvalidity, last_uid, last_run_at, last_success_at,
                                               last_error, backlog_total, backlog_done)
                     VALUES ($1, $2, 0, 0, $3, $4, $5, $6, $7)
                     ON CONFLICT (channel_id, folder) DO UPDATE SET
                        last_run_at = excluded.last_run_at,
                        last_success_at = COALESCE(excluded.last_success_at, sync_cursors.last_success_at),
                        last_error = excluded.last_error,
                        backlog_total = excluded.backlog_total, backlog_done = excluded.backlog_done",
                )
                .bind(&run.channel_id)
                .bind(&run.folder)
                .bind(now)
                .bind(run.error.is_none().then_some(now))
                .bind(run.error.clone())
                .bind(run.backlog_total)
                .bind(run.backlog_done)
                .execute(&mut *tx)
                .await?;
                Self::insert_event(
                    &mut tx,
                    &tenant,
                    "channel.updated",
                    serde_json::json!({ "channel_id": run.channel_id, "folder": run.folder, "sync_error": run.error,
                                        "backlog_total": run.backlog_total, "backlog_done": run.backlog_done }),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn folder_position(&self, channel_id: &str, folder: &str) -> $crate::store::StoreResult<Option<$crate::contract::ingest_types::FolderPosition>> {
                let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT uidvalidity, last_uid, highestmodseq FROM sync_cursors WHERE channel_id = $1 AND folder = $2 AND uidvalidity <> 0",
                )
                .bind(channel_id)
                .bind(folder)
                .fetch_optional(self.writer())
                .await?;
                Ok(row.map(|(uidvalidity, last_uid, highestmodseq)| $crate::contract::ingest_types::FolderPosition {
                    folder: folder.to_string(),
                    uidvalidity,
                    last_uid,
                    highestmodseq,
                }))
            }

            async fn acquire_sync_lease(&self, channel_id: &str, holder: &str, ttl_ms: i64) -> $crate::store::StoreResult<bool> {
                let now = $crate::domain::model::now_millis();
                // One statement: insert, or take over an expired lease, or renew our own.
                let r = sqlx::query(
                    "INSERT INTO sync_leases (channel_id, holder, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (channel_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                      WHERE sync_leases.holder = excluded.holder OR sync_leases.expires_at < $4",
                )
                .bind(channel_id)
                .bind(holder)
                .bind(now.saturating_add(ttl_ms))
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn release_sync_lease(&self, channel_id: &str, holder: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM sync_leases WHERE channel_id = $1 AND holder = $2")
                    .bind(channel_id)
                    .bind(holder)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_sync_store;
