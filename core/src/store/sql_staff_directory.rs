//! The staff directory of each tenant, written once for both databases: identities recorded
//! when they authenticate, entries admins add and edit, and the assignee lookups the API's
//! visibility rules need.

/// The columns of a [`crate::store::StaffRow`], in its field order.
macro_rules! staff_select {
    () => {
        "SELECT id, display_name, email, active, managed, auth_kind, role, last_seen_at, created_at, updated_at
           FROM staff "
    };
}
pub(crate) use staff_select;

macro_rules! impl_staff_directory {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::StaffStore for $store {
            async fn record_staff_seen(
                &self,
                tenant: &str,
                seen: &$crate::store::StaffSighting,
            ) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                sqlx::query(
                    "INSERT INTO staff (tenant_id, id, active, managed, auth_kind, role, last_seen_at, created_at, updated_at)
                     VALUES ($1, $2, TRUE, FALSE, $3, $4, $5, $5, $5)
                     ON CONFLICT (tenant_id, id) DO UPDATE
                        SET auth_kind = excluded.auth_kind, role = excluded.role, last_seen_at = excluded.last_seen_at",
                )
                .bind(tenant.to_string())
                .bind(seen.id.clone())
                .bind(seen.auth_kind)
                .bind(seen.role.as_str())
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn list_staff(
                &self,
                tenant: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::StaffRow>> {
                let rows: Vec<$crate::store::StaffRow> = sqlx::query_as(concat!(
                    $crate::store::sql_staff_directory::staff_select!(),
                    "WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(tenant.to_string())
                .bind(page.cursor.as_ref().map(|c| c.id.clone()))
                .bind(page.limit + 1)
                .fetch_all(self.reader())
                .await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: 0, id: r.id.clone() },
                    |r| r,
                ))
            }

            async fn get_staff(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::StaffRow> {
                let row: Option<$crate::store::StaffRow> = sqlx::query_as(concat!(
                    $crate::store::sql_staff_directory::staff_select!(),
                    "WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(self.reader())
                .await?;
                row.ok_or($crate::store::StoreError::NotFound)
            }

            async fn create_staff(
                &self,
                tenant: &str,
                entry: &$crate::store::NewStaff,
            ) -> $crate::store::StoreResult<$crate::store::StaffRow> {
                let now = $crate::domain::model::now_millis();
                let created = sqlx::query(
                    "INSERT INTO staff (tenant_id, id, display_name, email, active, managed, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)
                     ON CONFLICT (tenant_id, id) DO NOTHING",
                )
                .bind(tenant.to_string())
                .bind(entry.id.clone())
                .bind(entry.display_name.clone())
                .bind(entry.email.clone())
                .bind(entry.active)
                .bind(now)
                .execute(self.writer())
                .await?;
                if created.rows_affected() == 0 {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::StaffExists {
                        id: entry.id.clone(),
                    }));
                }
                self.get_staff(tenant, &entry.id).await
            }

            async fn update_staff(
                &self,
                tenant: &str,
                id: &str,
                change: &$crate::store::StaffChange,
            ) -> $crate::store::StoreResult<$crate::store::StaffRow> {
                // $3/$5 say whether the texts change (they may change to NULL).
                let r = sqlx::query(
                    "UPDATE staff SET
                        display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
                        email = CASE WHEN $5 THEN $6 ELSE email END,
                        active = COALESCE($7, active),
                        managed = TRUE,
                        updated_at = $8
                      WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(change.display_name.is_some())
                .bind(change.display_name.clone().flatten())
                .bind(change.email.is_some())
                .bind(change.email.clone().flatten())
                .bind(change.active)
                .bind($crate::domain::model::now_millis())
                .execute(self.writer())
                .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                self.get_staff(tenant, id).await
            }

            async fn delete_staff(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<()> {
                let r = sqlx::query("DELETE FROM staff WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .execute(self.writer())
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Ok(())
            }

            async fn conversation_assignee(
                &self,
                tenant: &str,
                of: $crate::store::ConversationOf<'_>,
            ) -> $crate::store::StoreResult<Option<String>> {
                let (sql, key) = match of {
                    $crate::store::ConversationOf::Id(id) => (
                        "SELECT assignee FROM conversations WHERE tenant_id = $1 AND id = $2",
                        id,
                    ),
                    $crate::store::ConversationOf::Message(id) => (
                        "SELECT c.assignee FROM messages m JOIN conversations c ON c.id = m.conversation_id
                          WHERE m.tenant_id = $1 AND m.id = $2",
                        id,
                    ),
                };
                let row: Option<Option<String>> = sqlx::query_scalar(sql)
                    .bind(tenant.to_string())
                    .bind(key.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                row.ok_or($crate::store::StoreError::NotFound)
            }
        }
    };
}
pub(crate) use impl_staff_directory;
