//! The durable event log behind live events: reading a tenant's events after a cursor,
//! noticing new ones, and pruning past the retention window.

macro_rules! impl_event_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::EventStore for $store {
            async fn events_since(
                &self,
                tenant: &str,
                after: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::EventRow>> {
                Ok(sqlx::query_as(
                    "SELECT seq, type AS kind, payload, created_at FROM events
                      WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(tenant.to_string())
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn event_bounds(&self, tenant: &str) -> $crate::store::StoreResult<(i64, i64)> {
                let (first, last): (Option<i64>, Option<i64>) =
                    sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM events WHERE tenant_id = $1")
                        .bind(tenant.to_string())
                        .fetch_one(self.reader())
                        .await?;
                Ok((first.unwrap_or(0), last.unwrap_or(0)))
            }

            async fn latest_event_seq(&self) -> $crate::store::StoreResult<i64> {
                let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
                    .fetch_one(self.reader())
                    .await?;
                Ok(last.unwrap_or(0))
            }

            async fn prune_events(&self, before: i64) -> $crate::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM events WHERE created_at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected())
            }
        }
    };
}
pub(crate) use impl_event_store;
