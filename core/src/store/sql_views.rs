//! Loading API views: conversations with their contact identities, tags, latest message and
//! the viewer's unread count, messages with their attachments and reactions (batched by `IN`
//! lists, not one query per row).

macro_rules! impl_view_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn identities_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                contacts: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::rows::IdentitySql>> {
                if contacts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT contact_id, kind, value, opted_out_at FROM contact_identities WHERE tenant_id = ",
                );
                qb.push_bind(tenant.to_string());
                qb.push(" AND contact_id IN (");
                let mut list = qb.separated(", ");
                for c in contacts {
                    list.push_bind(c.to_string());
                }
                list.push_unseparated(") ORDER BY kind, value");
                Ok(qb.build_query_as().fetch_all(&mut *conn).await?)
            }

            async fn attachments_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                messages: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::AttachmentRow>> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::store::rows::attachment_select!());
                qb.push(" WHERE message_id IN (");
                let mut list = qb.separated(", ");
                for m in messages {
                    list.push_bind(m.to_string());
                }
                list.push_unseparated(") ORDER BY created_at, id");
                let rows: Vec<$crate::store::rows::AttachmentSql> = qb.build_query_as().fetch_all(&mut *conn).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn reactions_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                messages: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::ReactionRow>> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT message_id, sender, emoji, updated_at FROM reactions WHERE message_id IN (",
                );
                let mut list = qb.separated(", ");
                for m in messages {
                    list.push_bind(m.to_string());
                }
                list.push_unseparated(") ORDER BY updated_at, sender");
                Ok(qb.build_query_as().fetch_all(&mut *conn).await?)
            }

            /// Fills in what a list row shows beyond the conversation's own columns: its
            /// tags, its latest message, and the viewer's own unread count. One query each
            /// for the whole page.
            async fn enrich_conversations(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                viewer: Option<&str>,
                rows: &mut [$crate::store::ConversationRow],
            ) -> $crate::store::StoreResult<()> {
                use std::collections::HashMap;
                if rows.is_empty() {
                    return Ok(());
                }
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT conversation_id, tag FROM conversation_tags WHERE tenant_id = ",
                );
                q.push_bind(tenant.to_string()).push(" AND conversation_id IN ");
                super::sql_common::push_list(&mut q, ids.iter().cloned());
                q.push(" ORDER BY tag");
                let tags: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                // The latest message of each conversation, by its index (conversation, time).
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT m.conversation_id, m.id, m.direction, m.sender, SUBSTR(m.text_body, 1, 600) AS head,
                            m.subject, m.delivery_status, m.created_at
                       FROM messages m
                      WHERE m.id IN (SELECT (SELECT l.id FROM messages l WHERE l.conversation_id = c.id
                                              ORDER BY l.created_at DESC, l.id DESC LIMIT 1)
                                       FROM conversations c WHERE c.id IN ",
                );
                super::sql_common::push_list(&mut q, ids.iter().cloned());
                q.push(")");
                let last: Vec<$crate::store::rows::LastMessageSql> = q.build_query_as().fetch_all(&mut *conn).await?;
                let mut last: HashMap<String, $crate::store::LastMessageRow> =
                    last.into_iter().map(|m| (m.conversation_id.clone(), m.into_row())).collect();
                let mut mine: HashMap<String, i64> = HashMap::new();
                if let Some(viewer) = viewer {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT conversation_id, unread_count FROM participants WHERE kind = 'staff' AND ref_id = ",
                    );
                    q.push_bind(viewer.to_string()).push(" AND conversation_id IN ");
                    super::sql_common::push_list(&mut q, ids.iter().cloned());
                    let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    mine.extend(rows);
                }
                for row in rows.iter_mut() {
                    row.tags = tags.iter().filter(|(c, _)| *c == row.id).map(|(_, t)| t.clone()).collect();
                    row.last_message = last.remove(&row.id);
                    if viewer.is_some() {
                        // Never opened by the viewer: everything unread is unread to them.
                        row.my_unread_count = Some(mine.get(&row.id).copied().unwrap_or(row.unread_count));
                    }
                }
                Ok(())
            }

            async fn conversation_view(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                let row: Option<$crate::store::rows::ConversationSql> = sqlx::query_as(concat!(
                    $crate::store::rows::conversation_select!(),
                    "WHERE c.id = $1 AND c.tenant_id = $2"
                ))
                .bind(id.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                let row = row.ok_or($crate::store::StoreError::NotFound)?;
                let identities = Self::identities_of(conn, tenant, &[row.contact_id.as_str()]).await?;
                let mut rows = [row.into_view(&identities)];
                Self::enrich_conversations(conn, tenant, None, &mut rows).await?;
                let [row] = rows;
                Ok(row)
            }

            async fn message_view(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::MessageRow> {
                let row: Option<$crate::store::rows::MessageSql> =
                    sqlx::query_as(concat!($crate::store::rows::message_select!(), "WHERE id = $1 AND tenant_id = $2"))
                        .bind(id.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let row = row.ok_or($crate::store::StoreError::NotFound)?;
                let attachments = Self::attachments_of(conn, &[row.id.as_str()]).await?;
                let reactions = Self::reactions_of(conn, &[row.id.as_str()]).await?;
                Ok(row.into_view(&attachments, &reactions))
            }

            async fn message_by_key(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                key: &str,
            ) -> $crate::store::StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT id FROM messages WHERE tenant_id = $1 AND idempotency_key = $2")
                    .bind(tenant.to_string())
                    .bind(key.to_string())
                    .fetch_optional(&mut *conn)
                    .await?)
            }
        }
    };
}
pub(crate) use impl_view_queries;
