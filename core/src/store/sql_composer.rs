//! Composer queries, written once for both databases: retrying a failed outbound message,
//! notes, canned replies. Every query is scoped by tenant.

macro_rules! impl_composer_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ComposerStore for $store {
            async fn retry_message(&self, tenant: &str, id: &str, staff: &str) -> $crate::store::StoreResult<$crate::store::MessageRow> {
                use $crate::domain::model::DeliveryStatus;
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let found: Option<(String, String, String, String)> = sqlx::query_as(
                    "SELECT m.direction, m.delivery_status, m.channel_id, m.conversation_id FROM messages m
                      WHERE m.id = $1 AND m.tenant_id = $2",
                )
                .bind(id.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let (direction, status, channel, conversation) = found.ok_or($crate::store::StoreError::NotFound)?;
                if direction != "outbound" || !matches!(status.as_str(), "failed" | "undelivered") {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::NotRetryable { status }));
                }
                let (kind, address, contact, erased): (String, String, String, Option<i64>) = sqlx::query_as(
                    "SELECT c.contact_kind, c.contact_address, c.contact_id, k.erased_at
                       FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1",
                )
                .bind(&conversation)
                .fetch_one(&mut *tx)
                .await?;
                Self::ensure_reachable(&mut tx, tenant, contact, erased, &kind, &address).await?;
                // The one deliberate step back in a message's status: a retry starts over.
                sqlx::query(
                    "UPDATE messages SET delivery_status = 'queued', status_rank = $1, error_code = NULL,
                            error_message = NULL, updated_at = $2
                      WHERE id = $3",
                )
                .bind(DeliveryStatus::Queued.rank())
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
                Self::insert_job(&mut tx, tenant, $crate::store::JobKind::Send, id, &channel, now).await?;
                Self::audit(&mut tx, tenant, &conversation, staff, "retry", serde_json::json!({ "message_id": id }), now).await?;
                Self::insert_event(
                    &mut tx,
                    tenant,
                    "message.updated",
                    serde_json::json!({ "message_id": id, "conversation_id": conversation, "delivery_status": "queued", "retry": true }),
                    now,
                )
                .await?;
                let view = Self::message_view(&mut tx, tenant, id).await?;
                tx.commit().await?;
                Ok(view)
            }

            async fn add_note(
                &self,
                tenant: &str,
                conversation: &str,
                author: &str,
                body: &str,
                mentions: &[String],
            ) -> $crate::store::StoreResult<$crate::store::NoteRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::conversation_view(&mut tx, tenant, conversation).await?;
                let id = $crate::domain::model::new_id();
                sqlx::query(
                    "INSERT INTO conversation_notes (id, tenant_id, conversation_id, author, body, mentions, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(tenant.to_string())
                .bind(conversation.to_string())
                .bind(author.to_string())
                .bind(body.to_string())
                .bind(sqlx::types::Json(mentions))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Self::audit(&mut tx, tenant, conversation, author, "note", serde_json::json!({ "note_id": id }), now).await?;
                let payload = serde_json::json!({
                    "conversation_id": conversation, "note_id": id, "author": author, "mentions": mentions,
                });
                Self::insert_event(&mut tx, tenant, "note.created", payload, now).await?;
                for staff in mentions {
                    let payload = serde_json::json!({
                        "conversation_id": conversation, "note_id": id, "author": author, "staff": staff,
                    });
                    Self::insert_event(&mut tx, tenant, "staff.mentioned", payload, now).await?;
                }
                tx.commit().await?;
                Ok($crate::store::NoteRow {
                    id,
                    conversation_id: conversation.to_string(),
                    author: author.to_string(),
                    body: body.to_string(),
                    mentions: mentions.to_vec(),
                    created_at: now,
                })
            }

            async fn list_notes(
                &self,
                tenant: &str,
                conversation: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::NoteRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<(String, String, String, sqlx::types::Json<Vec<String>>, i64)> = sqlx::query_as(
                    "SELECT id, author, body, mentions, created_at FROM conversation_notes
                      WHERE conversation_id = $1 AND tenant_id = $2
                        AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4))
                      ORDER BY created_at DESC, id DESC LIMIT $5",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |(id, _, _, _, at)| $crate::store::PageCursor { ts: *at, id: id.clone() },
                    |(id, author, body, mentions, created_at)| $crate::store::NoteRow {
                        id,
                        conversation_id: conversation.to_string(),
                        author,
                        body,
                        mentions: mentions.0,
                        created_at,
                    },
                ))
            }

            async fn list_canned(&self, tenant: &str) -> $crate::store::StoreResult<Vec<$crate::store::CannedReplyRow>> {
                let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT id, shortcut, title, body, created_by, updated_at FROM canned_replies
                      WHERE tenant_id = $1 ORDER BY shortcut",
                )
                .bind(tenant.to_string())
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, shortcut, title, body, created_by, updated_at)| $crate::store::CannedReplyRow {
                        id,
                        shortcut,
                        title,
                        body,
                        created_by,
                        updated_at,
                    })
                    .collect())
            }

            async fn put_canned(
                &self,
                tenant: &str,
                id: Option<&str>,
                draft: &$crate::store::CannedDraft,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::CannedReplyRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM canned_replies WHERE tenant_id = $1 AND shortcut = $2",
                )
                .bind(tenant.to_string())
                .bind(&draft.shortcut)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.as_deref().is_some_and(|t| Some(t) != id) {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::ShortcutTaken {
                        shortcut: draft.shortcut.clone(),
                    }));
                }
                let id = match id {
                    Some(id) => {
                        let r = sqlx::query(
                            "UPDATE canned_replies SET shortcut = $1, title = $2, body = $3, updated_at = $4
                              WHERE id = $5 AND tenant_id = $6",
                        )
                        .bind(&draft.shortcut)
                        .bind(&draft.title)
                        .bind(&draft.body)
                        .bind(now)
                        .bind(id.to_string())
                        .bind(tenant.to_string())
                        .execute(&mut *tx)
                        .await?;
                        if r.rows_affected() == 0 {
                            return Err($crate::store::StoreError::NotFound);
                        }
                        id.to_string()
                    }
                    None => {
                        let id = $crate::domain::model::new_id();
                        sqlx::query(
                            "INSERT INTO canned_replies (id, tenant_id, shortcut, title, body, created_by, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                        )
                        .bind(&id)
                        .bind(tenant.to_string())
                        .bind(&draft.shortcut)
                        .bind(&draft.title)
                        .bind(&draft.body)
                        .bind(staff.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        id
                    }
                };
                let created_by: String = sqlx::query_scalar("SELECT created_by FROM canned_replies WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::store::CannedReplyRow {
                    id,
                    shortcut: draft.shortcut.clone(),
                    title: draft.title.clone(),
                    body: draft.body.clone(),
                    created_by,
                    updated_at: now,
                })
            }

            async fn delete_canned(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<()> {
                let r = sqlx::query("DELETE FROM canned_replies WHERE id = $1 AND tenant_id = $2")
                    .bind(id.to_string())
                    .bind(tenant.to_string())
                    .execute(self.writer())
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Ok(())
            }
        }
    };
}
pub(crate) use impl_composer_store;
