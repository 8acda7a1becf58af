//! The durable event log behind live events: reading a tenant's events after a cursor,
//! each tenant's newest id (its own counter, `tenant_event_counters`), and pruning past the
//! retention window. Pruning never touches the counters: ids are never reused.

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
                let (first, head): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT (SELECT MIN(seq) FROM events WHERE tenant_id = $1),
                            (SELECT last_seq FROM tenant_event_counters WHERE tenant_id = $1)",
                )
                .bind(tenant.to_string())
                .fetch_one(self.reader())
                .await?;
                let head = head.unwrap_or(0);
                Ok((first.unwrap_or(head + 1), head))
            }

            async fn event_heads(&self) -> $crate::store::StoreResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as("SELECT tenant_id, last_seq FROM tenant_event_counters")
                    .fetch_all(self.reader())
                    .await?)
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
