//! The contact directory behind the REST API, written once for both databases: search,
//! details, changes, a contact's conversations and audit trail, and the entry points of
//! merging (`sql_contact_merge`) and erasure (`sql_contact_erase`). Every query is scoped
//! by tenant: another tenant's contact is simply not found.

/// `%` + the search text with `LIKE`'s wildcards escaped (by `\`) + `%`. The database
/// lower-cases it (`LOWER`), as it does the values compared, so both fold alike: every
/// letter its locale knows on PostgreSQL, A to Z on SQLite.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

macro_rules! impl_contact_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The contact's tombstone state, locked for the transaction with `lock`
            /// (PostgreSQL): NotFound, or refused when merged or erased.
            async fn live_contact(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
                lock: bool,
            ) -> $crate::store::StoreResult<()> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT merged_into, erased_at FROM contacts WHERE id = ");
                q.push_bind(id.to_string()).push(" AND tenant_id = ").push_bind(tenant.to_string());
                if lock {
                    q.push(Self::DIALECT.for_update);
                }
                let row: Option<(Option<String>, Option<i64>)> = q.build_query_as().fetch_optional(&mut *conn).await?;
                match row {
                    None => Err($crate::store::StoreError::NotFound),
                    Some((Some(into), _)) => Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactMerged {
                        contact: id.to_string(),
                        into,
                    })),
                    Some((None, Some(_))) => Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactErased {
                        contact: id.to_string(),
                    })),
                    Some((None, None)) => Ok(()),
                }
            }

            /// A live contact with its identities and activity.
            async fn contact_detail(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::ContactDetailRow> {
                let row: Option<$crate::store::rows::ContactSql> =
                    sqlx::query_as(concat!($crate::store::rows::contact_select!(), "WHERE k.id = $1 AND k.tenant_id = $2"))
                        .bind(id.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let row = row.ok_or($crate::store::StoreError::NotFound)?.live()?;
                let identities = Self::identities_of(conn, tenant, &[row.id.as_str()]).await?;
                Ok(row.into_detail(&identities))
            }

            /// Records a staff action on a contact.
            async fn contact_audit(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                contact: &str,
                actor: &str,
                action: &str,
                detail: serde_json::Value,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO contact_audit (id, tenant_id, contact_id, actor, action, detail, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($crate::domain::model::new_id())
                .bind(tenant.to_string())
                .bind(contact.to_string())
                .bind(actor.to_string())
                .bind(action.to_string())
                .bind(sqlx::types::Json(detail))
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Writes a change of a live, locked contact.
            async fn apply_contact_patch(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
                patch: &$crate::store::ContactPatch,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let empty = serde_json::Value::Object(Default::default());
                sqlx::query(
                    "UPDATE contacts SET name = CASE WHEN $1 THEN $2 ELSE name END,
                                         notes = CASE WHEN $3 THEN $4 ELSE notes END,
                                         attributes = CASE WHEN $5 THEN $6 ELSE attributes END,
                                         updated_at = $7
                      WHERE id = $8 AND tenant_id = $9",
                )
                .bind(patch.name.is_some())
                .bind(patch.name.clone().flatten())
                .bind(patch.notes.is_some())
                .bind(patch.notes.clone().flatten())
                .bind(patch.attributes.is_some())
                .bind(sqlx::types::Json(patch.attributes.as_ref().unwrap_or(&empty)))
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.to_string())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ContactStore for $store {
            async fn list_contacts(
                &self,
                tenant: &str,
                filter: &$crate::store::ContactFilter,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::ContactDetailRow>> {
                let mut conn = self.reader().acquire().await?;
                let pattern = filter.q.as_deref().map($crate::store::sql_contact_store::like_pattern);
                let rows: Vec<$crate::store::rows::ContactSql> = sqlx::query_as(concat!(
                    $crate::store::rows::contact_select!(),
                    "WHERE k.tenant_id = $1 AND k.merged_into IS NULL AND k.erased_at IS NULL
                       AND ($2 IS NULL OR LOWER(k.name) LIKE LOWER($2) ESCAPE '\\'
                            OR EXISTS (SELECT 1 FROM contact_identities i
                                        WHERE i.contact_id = k.id AND LOWER(i.value) LIKE LOWER($2) ESCAPE '\\'))
                       AND ($3 IS NULL OR k.created_at < $3 OR (k.created_at = $3 AND k.id < $4))
                     ORDER BY k.created_at DESC, k.id DESC LIMIT $5"
                ))
                .bind(tenant.to_string())
                .bind(pattern)
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let identities = Self::identities_of(&mut conn, tenant, &ids).await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.created_at, id: r.id.clone() },
                    |r| r.into_detail(&identities),
                ))
            }

            async fn get_contact(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::ContactDetailRow> {
                let mut conn = self.reader().acquire().await?;
                Self::contact_detail(&mut conn, tenant, id).await
            }

            async fn update_contact(
                &self,
                tenant: &str,
                id: &str,
                patch: &$crate::store::ContactPatch,
                actor: &str,
            ) -> $crate::store::StoreResult<$crate::store::ContactDetailRow> {
                let fields = patch.fields();
                if fields.is_empty() {
                    return self.get_contact(tenant, id).await;
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::live_contact(&mut tx, tenant, id, true).await?;
                Self::apply_contact_patch(&mut tx, tenant, id, patch, now).await?;
                let detail = serde_json::json!({ "fields": fields });
                Self::contact_audit(&mut tx, tenant, id, actor, "update", detail.clone(), now).await?;
                let mut event = detail;
                event["contact_id"] = id.into();
                event["staff"] = actor.into();
                Self::insert_event(&mut tx, tenant, "contact.updated", event, now).await?;
                let view = Self::contact_detail(&mut tx, tenant, id).await?;
                tx.commit().await?;
                Ok(view)
            }

            async fn list_contact_conversations(
                &self,
                tenant: &str,
                id: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::ConversationRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::live_contact(&mut conn, tenant, id, false).await?;
                let rows: Vec<$crate::store::rows::ConversationSql> = sqlx::query_as(concat!(
                    $crate::store::rows::conversation_select!(),
                    "WHERE c.contact_id = $1 AND c.tenant_id = $2
                       AND ($3 IS NULL OR c.last_message_at < $3 OR (c.last_message_at = $3 AND c.id < $4))
                     ORDER BY c.last_message_at DESC, c.id DESC LIMIT $5"
                ))
                .bind(id.to_string())
                .bind(tenant.to_string())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                let identities = Self::identities_of(&mut conn, tenant, &[id]).await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.last_message_at, id: r.id.clone() },
                    |r| r.into_view(&identities),
                ))
            }

            async fn list_contact_audit(
                &self,
                tenant: &str,
                id: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::AuditRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::live_contact(&mut conn, tenant, id, false).await?;
                let rows: Vec<$crate::store::AuditRow> = sqlx::query_as(
                    "SELECT id, actor, action, detail, created_at FROM contact_audit
                      WHERE contact_id = $1 AND tenant_id = $2
                        AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4))
                      ORDER BY created_at DESC, id DESC LIMIT $5",
                )
                .bind(id.to_string())
                .bind(tenant.to_string())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.created_at, id: r.id.clone() },
                    |r| r,
                ))
            }

            async fn merge_contacts(
                &self,
                tenant: &str,
                into: &str,
                from: &str,
                actor: &str,
            ) -> $crate::store::StoreResult<$crate::store::ContactDetailRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::merge_in_tx(&mut tx, tenant, into, from, actor, now).await?;
                let view = Self::contact_detail(&mut tx, tenant, into).await?;
                tx.commit().await?;
                Ok(view)
            }

            async fn erase_contact(&self, tenant: &str, id: &str, actor: &str) -> $crate::store::StoreResult<$crate::store::Erasure> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let erasure = Self::erase_in_tx(&mut tx, tenant, id, actor, now).await?;
                tx.commit().await?;
                Ok(erasure)
            }

            async fn blob_in_use(&self, storage_key: &str) -> $crate::store::StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar("SELECT id FROM attachments WHERE storage_key = $1 LIMIT 1")
                    .bind(storage_key.to_string())
                    .fetch_optional(self.writer())
                    .await?;
                Ok(found.is_some())
            }
        }
    };
}
pub(crate) use impl_contact_store;

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ann"), "%Ann%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
