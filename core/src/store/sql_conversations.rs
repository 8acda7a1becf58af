//! Conversation and message queries behind the REST API, written once for both databases.
//! Every query is scoped by tenant: another tenant's id is simply not found.

/// The conversation list's filters, `$1` to `$11` (tenant, status, channel, contact,
/// assignee, unread, priority, tag, updated since, "no priority", visible to), shared by the
/// page and the count. An empty assignee means unassigned; `visible_to` keeps conversations
/// assigned to that staff identity or to no one.
macro_rules! list_filter {
    () => {
        "WHERE c.tenant_id = $1
           AND ($2 IS NULL OR c.status = $2)
           AND ($3 IS NULL OR c.channel_id = $3)
           AND ($4 IS NULL OR c.contact_id = $4)
           AND ($5 IS NULL OR c.assignee = $5 OR ($5 = '' AND c.assignee IS NULL))
           AND ($6 IS NULL OR ($6 = TRUE AND c.unread_count > 0) OR ($6 = FALSE AND c.unread_count = 0))
           AND ($7 IS NULL OR c.priority = $7 OR ($10 = TRUE AND c.priority IS NULL))
           AND ($8 IS NULL OR EXISTS (SELECT 1 FROM conversation_tags t
                                       WHERE t.conversation_id = c.id AND t.tag = $8))
           AND ($9 IS NULL OR c.updated_at >= $9)
           AND ($11 IS NULL OR c.assignee IS NULL OR c.assignee = $11) "
    };
}
pub(crate) use list_filter;

macro_rules! impl_conversation_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ConversationStore for $store {
            async fn list_conversations(
                &self,
                tenant: &str,
                f: &$crate::store::ConversationFilter,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::ConversationRow>> {
                let mut conn = self.reader().acquire().await?;
                let rows: Vec<$crate::store::rows::ConversationSql> = sqlx::query_as(concat!(
                    $crate::store::rows::conversation_select!(),
                    $crate::store::sql_conversations::list_filter!(),
                    "AND ($12 IS NULL OR c.last_message_at < $12 OR (c.last_message_at = $12 AND c.id < $13))
                     ORDER BY c.last_message_at DESC, c.id DESC LIMIT $14"
                ))
                .bind(tenant.to_string())
                .bind(f.status.clone())
                .bind(f.channel.clone())
                .bind(f.contact.clone())
                .bind(f.assignee.clone())
                .bind(f.unread)
                .bind(f.priority.clone())
                .bind(f.tag.clone())
                .bind(f.updated_since)
                .bind(f.priority.is_some() && f.priority.as_deref() == Some(""))
                .bind(f.visible_to.clone())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                let contacts: Vec<&str> = rows.iter().map(|r| r.contact_id.as_str()).collect();
                let identities = Self::identities_of(&mut conn, tenant, &contacts).await?;
                let mut page = $crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.last_message_at, id: r.id.clone() },
                    |r| r.into_view(&identities),
                );
                Self::enrich_conversations(&mut conn, tenant, f.viewer.as_deref(), &mut page.items).await?;
                Ok(page)
            }

            async fn count_conversations(
                &self,
                tenant: &str,
                f: &$crate::store::ConversationFilter,
            ) -> $crate::store::StoreResult<i64> {
                let total: i64 = sqlx::query_scalar(concat!(
                    "SELECT COUNT(*) FROM conversations c ",
                    $crate::store::sql_conversations::list_filter!(),
                ))
                .bind(tenant.to_string())
                .bind(f.status.clone())
                .bind(f.channel.clone())
                .bind(f.contact.clone())
                .bind(f.assignee.clone())
                .bind(f.unread)
                .bind(f.priority.clone())
                .bind(f.tag.clone())
                .bind(f.updated_since)
                .bind(f.priority.is_some() && f.priority.as_deref() == Some(""))
                .bind(f.visible_to.clone())
                .fetch_one(self.reader())
                .await?;
                Ok(total)
            }

            async fn get_conversation(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, id).await
            }

            async fn list_participants(&self, tenant: &str, conversation: &str) -> $crate::store::StoreResult<Vec<$crate::store::ParticipantRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT kind, ref_id, unread_count, last_read_at FROM participants
                      WHERE conversation_id = $1 AND tenant_id = $2 ORDER BY joined_at, kind, ref_id",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .fetch_all(&mut *conn)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(kind, id, unread_count, last_read_at)| $crate::store::ParticipantRow { kind, id, unread_count, last_read_at })
                    .collect())
            }

            async fn list_messages(
                &self,
                tenant: &str,
                conversation: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::MessageRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<$crate::store::rows::MessageSql> = sqlx::query_as(concat!(
                    $crate::store::rows::message_select!(),
                    "WHERE conversation_id = $1 AND tenant_id = $2
                       AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4))
                     ORDER BY created_at DESC, id DESC LIMIT $5"
                ))
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let attachments = Self::attachments_of(&mut conn, &ids).await?;
                let reactions = Self::reactions_of(&mut conn, &ids).await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::PageCursor { ts: r.created_at, id: r.id.clone() },
                    |r| r.into_view(&attachments, &reactions),
                ))
            }

            async fn get_message(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::MessageRow> {
                let mut conn = self.reader().acquire().await?;
                Self::message_view(&mut conn, tenant, id).await
            }

            async fn create_reply(
                &self,
                tenant: &str,
                conversation: &str,
                draft: &$crate::store::ReplyDraft,
            ) -> $crate::store::StoreResult<($crate::store::MessageRow, bool)> {
                if let Some(existing) = self.replay(tenant, draft.idempotency_key.as_deref()).await? {
                    return Ok((existing, false));
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                match Self::queue_outbound(&mut tx, tenant, conversation, draft, "conversation.updated", now).await? {
                    Some(id) => {
                        let view = Self::message_view(&mut tx, tenant, &id).await?;
                        tx.commit().await?;
                        Ok((view, true))
                    }
                    None => {
                        tx.rollback().await?;
                        let existing = self.replay(tenant, draft.idempotency_key.as_deref()).await?;
                        existing.map(|m| (m, false)).ok_or($crate::store::StoreError::NotFound)
                    }
                }
            }

            async fn start_conversation(
                &self,
                tenant: &str,
                start: &$crate::store::StartConversation,
            ) -> $crate::store::StoreResult<($crate::store::MessageRow, bool)> {
                if let Some(existing) = self.replay(tenant, start.draft.idempotency_key.as_deref()).await? {
                    return Ok((existing, false));
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                // The channel must be one of the tenant's.
                let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1 AND tenant_id = $2")
                    .bind(&start.channel_id)
                    .bind(tenant.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if kind.is_none() {
                    return Err($crate::store::StoreError::NotFound);
                }
                let contact = Self::resolve_and_lock_contact(&mut tx, tenant, &start.to, start.contact_name.as_deref(), now).await?;
                // Chat channels thread by contact: reuse the open conversation. Mail threads
                // by message, so a new outbound mail is a new conversation.
                let existing: Option<String> = if start.threading == $crate::contract::ingest_types::Threading::MailHeaders {
                    None
                } else {
                    sqlx::query_scalar(
                        "SELECT id FROM conversations WHERE channel_id = $1 AND contact_id = $2 AND status = 'open'
                          AND contact_kind = $3 AND contact_address = $4
                          ORDER BY last_message_at DESC, id DESC LIMIT 1",
                    )
                    .bind(&start.channel_id)
                    .bind(&contact)
                    .bind(start.to.kind.as_str())
                    .bind(&start.to.value)
                    .fetch_optional(&mut *tx)
                    .await?
                };
                let conversation = match existing {
                    Some(id) => (id, "conversation.updated"),
                    None => {
                        let id = $crate::domain::model::new_id();
                        sqlx::query(
                            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, contact_kind, contact_address, subject, status,
                                                        last_message_at, created_at, updated_at, subject_key, reply_token)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8, $8, $9, $10)",
                        )
                        .bind(&id)
                        .bind(tenant.to_string())
                        .bind(&start.channel_id)
                        .bind(&contact)
                        .bind(start.to.kind.as_str())
                        .bind(&start.to.value)
                        .bind(start.draft.subject.clone())
                        .bind(now)
                        .bind(start.draft.subject.as_deref().map($crate::domain::thread::subject_key))
                        .bind($crate::domain::thread::new_reply_token())
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO participants (conversation_id, tenant_id, kind, ref_id, joined_at) VALUES ($1, $2, 'contact', $3, $4)",
                        )
                        .bind(&id)
                        .bind(tenant.to_string())
                        .bind(&contact)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        (id, "conversation.created")
                    }
                };
                let (conversation, announce) = conversation;
                match Self::queue_outbound(&mut tx, tenant, &conversation, &start.draft, announce, now).await? {
                    Some(id) => {
                        let view = Self::message_view(&mut tx, tenant, &id).await?;
                        tx.commit().await?;
                        Ok((view, true))
                    }
                    None => {
                        tx.rollback().await?;
                        let existing = self.replay(tenant, start.draft.idempotency_key.as_deref()).await?;
                        existing.map(|m| (m, false)).ok_or($crate::store::StoreError::NotFound)
                    }
                }
            }

            async fn mark_read(&self, tenant: &str, conversation: &str, staff: &str) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                Self::conversation_view(&mut tx, tenant, conversation).await?;
                Self::staff_read(&mut tx, tenant, conversation, staff, now).await?;
                Self::audit(&mut tx, tenant, conversation, staff, "read", serde_json::json!({}), now).await?;
                sqlx::query("UPDATE conversations SET unread_count = 0, updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(conversation.to_string())
                    .execute(&mut *tx)
                    .await?;
                Self::insert_event(
                    &mut tx,
                    tenant,
                    "conversation.updated",
                    serde_json::json!({ "conversation_id": conversation, "read_by": staff }),
                    now,
                )
                .await?;
                let view = Self::conversation_view(&mut tx, tenant, conversation).await?;
                tx.commit().await?;
                Ok(view)
            }

            async fn set_status(
                &self,
                tenant: &str,
                conversation: &str,
                status: $crate::domain::model::ConversationStatus,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                self.update_conversation(
                    tenant,
                    conversation,
                    "UPDATE conversations SET status = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4",
                    Some(status.as_str().to_string()),
                    staff,
                    ("status", serde_json::json!({ "status": status.as_str() })),
                )
                .await
            }

            async fn assign(
                &self,
                tenant: &str,
                conversation: &str,
                assignee: Option<&str>,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                self.update_conversation(
                    tenant,
                    conversation,
                    "UPDATE conversations SET assignee = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4",
                    assignee.map(str::to_string),
                    staff,
                    ("assign", serde_json::json!({ "assignee": assignee })),
                )
                .await
            }

            async fn update_triage(
                &self,
                tenant: &str,
                conversation: &str,
                change: &$crate::store::TriageChange,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                self.apply_triage(tenant, conversation, change, staff).await
            }

            async fn unread_summary(
                &self,
                tenant: &str,
                staff: &str,
                visible_to: Option<&str>,
            ) -> $crate::store::StoreResult<$crate::store::UnreadRow> {
                let (conversations, messages): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(unread_count), 0) AS BIGINT) FROM conversations
                      WHERE tenant_id = $1 AND status = 'open' AND unread_count > 0
                        AND ($2 IS NULL OR assignee IS NULL OR assignee = $2)",
                )
                .bind(tenant.to_string())
                .bind(visible_to.map(str::to_string))
                .fetch_one(self.reader())
                .await?;
                let mine: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(p.unread_count), 0) AS BIGINT) FROM participants p
                       JOIN conversations c ON c.id = p.conversation_id
                      WHERE p.tenant_id = $1 AND p.kind = 'staff' AND p.ref_id = $2 AND c.status = 'open'
                        AND ($3 IS NULL OR c.assignee IS NULL OR c.assignee = $3)",
                )
                .bind(tenant.to_string())
                .bind(staff.to_string())
                .bind(visible_to.map(str::to_string))
                .fetch_one(self.reader())
                .await?;
                Ok($crate::store::UnreadRow { conversations, messages, mine })
            }

            async fn get_attachment(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::AttachmentRow> {
                let row: Option<$crate::store::rows::AttachmentSql> =
                    sqlx::query_as(concat!($crate::store::rows::attachment_select!(), "WHERE id = $1 AND tenant_id = $2"))
                        .bind(id.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(self.reader())
                        .await?;
                row.map(Into::into).ok_or($crate::store::StoreError::NotFound)
            }

            async fn list_audit(
                &self,
                tenant: &str,
                conversation: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::RowPage<$crate::store::AuditRow>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<$crate::store::AuditRow> = sqlx::query_as(
                    "SELECT id, actor, action, detail, created_at FROM audit_log
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
                    |r| $crate::store::PageCursor { ts: r.created_at, id: r.id.clone() },
                    |r| r,
                ))
            }

            async fn reply_token(&self, conversation: &str) -> $crate::store::StoreResult<Option<String>> {
                let token: Option<Option<String>> = sqlx::query_scalar("SELECT reply_token FROM conversations WHERE id = $1")
                    .bind(conversation.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                token.ok_or($crate::store::StoreError::NotFound)
            }

            async fn queue_read_receipt(&self, tenant: &str, conversation: &str) -> $crate::store::StoreResult<bool> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let latest: Option<(String, String)> = sqlx::query_as(
                    "SELECT id, channel_id FROM messages
                      WHERE conversation_id = $1 AND tenant_id = $2 AND direction = 'inbound' AND provider_message_id IS NOT NULL
                      ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((message, channel)) = latest else {
                    return Ok(false);
                };
                Self::insert_job(&mut tx, tenant, $crate::store::JobKind::ReadReceipt, &message, &channel, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn list_channels(&self, tenant: &str) -> $crate::store::StoreResult<Vec<$crate::store::ChannelRow>> {
                let rows: Vec<(String, String, Option<String>, String, Option<String>, i64, i64)> = sqlx::query_as(
                    "SELECT ch.id, ch.kind, ch.address, ch.status, ch.last_error, ch.updated_at,
                            (SELECT COUNT(*) FROM jobs j WHERE j.channel_id = ch.id AND j.kind = 'send' AND j.state = 'pending')
                       FROM channels ch WHERE ch.tenant_id = $1 ORDER BY ch.id",
                )
                .bind(tenant.to_string())
                .fetch_all(self.reader())
                .await?;
                let sync = $crate::store::SyncStore::sync_states(self, Some(tenant)).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, kind, address, status, last_error, updated_at, outbox_pending)| $crate::store::ChannelRow {
                        sync: sync.iter().filter(|s| s.channel_id == id).cloned().collect(),
                        id,
                        kind,
                        address,
                        status,
                        last_error,
                        updated_at,
                        outbox_pending,
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use impl_conversation_store;
