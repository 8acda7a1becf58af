//! Triage writes, written once for both databases: a conversation's priority, tags and
//! subject changed together in one transaction, with an audit entry and a
//! `conversation.updated` event.

macro_rules! impl_triage_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Applies `change` (absent fields stay as they are); `NotFound` for another
            /// tenant's conversation.
            async fn apply_triage(
                &self,
                tenant: &str,
                id: &str,
                change: &$crate::store::TriageChange,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let found = sqlx::query(
                    "UPDATE conversations SET updated_at = $1,
                            priority = CASE WHEN $2 THEN $3 ELSE priority END,
                            subject = COALESCE($4, subject)
                      WHERE id = $5 AND tenant_id = $6",
                )
                .bind(now)
                .bind(change.priority.is_some())
                .bind(change.priority.clone().flatten())
                .bind(change.subject.clone())
                .bind(id.to_string())
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await?;
                if found.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                if let Some(tags) = &change.tags {
                    sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    if !tags.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO conversation_tags (conversation_id, tenant_id, tag) ",
                        );
                        q.push_values(tags, |mut row, tag| {
                            row.push_bind(id.to_string()).push_bind(tenant.to_string()).push_bind(tag.clone());
                        });
                        q.push(" ON CONFLICT DO NOTHING");
                        q.build().execute(&mut *tx).await?;
                    }
                }
                let detail = serde_json::json!({
                    "priority": change.priority,
                    "tags": change.tags,
                    "subject": change.subject,
                });
                Self::audit(&mut tx, tenant, id, staff, "triage", detail.clone(), now).await?;
                let mut payload = detail;
                if let Some(o) = payload.as_object_mut() {
                    o.retain(|_, v| !v.is_null());
                    o.insert("conversation_id".into(), id.into());
                    o.insert("staff".into(), staff.into());
                }
                Self::insert_event(&mut tx, tenant, "conversation.updated", payload, now).await?;
                let view = Self::conversation_view(&mut tx, tenant, id).await?;
                tx.commit().await?;
                Ok(view)
            }
        }
    };
}
pub(crate) use impl_triage_queries;
