//! Mailbox sync state per channel and folder: the cursor (UIDVALIDITY, last UID,
//! HIGHESTMODSEQ) and the run record (last run, last success, last error, counters,
//! backfill progress) that the API and `/metrics` show.

macro_rules! impl_sync_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SyncStore for $store {
            async fn sync_states(&self, tenant: Option<&str>) -> $crate::store::StoreResult<Vec<$crate::store::SyncState>> {
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

            async fn record_sync_run(&self, run: &$crate::store::SyncRun) -> $crate::store::StoreResult<()> {
                let now = $crate::model::now_millis();
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
        }
    };
}
pub(crate) use impl_sync_store;
