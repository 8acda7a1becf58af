//! Conversation and message queries behind the REST API, written once for both databases.
//! Every query is scoped by tenant: another tenant's id is simply not found.

macro_rules! impl_conversation_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn identities_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                contacts: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::rows::IdentityRow>> {
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
            ) -> $crate::store::StoreResult<Vec<$crate::store::AttachmentView>> {
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
                let rows: Vec<$crate::store::rows::AttachmentRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn reactions_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                messages: &[&str],
            ) -> $crate::store::StoreResult<Vec<$crate::store::ReactionView>> {
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

            async fn conversation_view(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationView> {
                let row: Option<$crate::store::rows::ConversationRow> = sqlx::query_as(concat!(
                    $crate::store::rows::conversation_select!(),
                    "WHERE c.id = $1 AND c.tenant_id = $2"
                ))
                .bind(id.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                let row = row.ok_or($crate::store::StoreError::NotFound)?;
                let identities = Self::identities_of(conn, tenant, &[row.contact_id.as_str()]).await?;
                Ok(row.into_view(&identities))
            }

            async fn message_view(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
            ) -> $crate::store::StoreResult<$crate::store::MessageView> {
                let row: Option<$crate::store::rows::MessageRow> =
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

            /// Records a staff action on a conversation.
            async fn audit(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                conversation: &str,
                actor: &str,
                action: &str,
                detail: serde_json::Value,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_log (id, tenant_id, conversation_id, actor, action, detail, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($crate::model::new_id())
                .bind(tenant.to_string())
                .bind(conversation.to_string())
                .bind(actor.to_string())
                .bind(action.to_string())
                .bind(sqlx::types::Json(detail))
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Marks a staff member's participation: read up to now.
            async fn staff_read(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                conversation: &str,
                staff: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO participants (conversation_id, tenant_id, kind, ref_id, unread_count, last_read_at, joined_at)
                     VALUES ($1, $2, 'staff', $3, 0, $4, $4)
                     ON CONFLICT (conversation_id, kind, ref_id) DO UPDATE SET unread_count = 0, last_read_at = excluded.last_read_at",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .bind(staff.to_string())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Writes an outbound message and its send job in the caller's transaction.
            /// Returns `None` when the idempotency key was taken concurrently.
            async fn queue_outbound(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                conversation: &str,
                draft: &$crate::store::ReplyDraft,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let conv: Option<(String, String, String, Option<String>)> = sqlx::query_as(
                    "SELECT channel_id, contact_kind, contact_address, subject FROM conversations WHERE id = $1 AND tenant_id = $2",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                let (channel, kind, address, subject) = conv.ok_or($crate::store::StoreError::NotFound)?;
                let opted_out: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT opted_out_at FROM contact_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                )
                .bind(tenant.to_string())
                .bind(&kind)
                .bind(&address)
                .fetch_optional(&mut *conn)
                .await?;
                if opted_out.flatten().is_some() {
                    return Err($crate::store::StoreError::Refused {
                        code: "contact_opted_out",
                        message: format!("{address} opted out of messages on this channel (they can reply START to opt back in)"),
                    });
                }
                let id = $crate::model::new_id();
                let in_reply_to: Option<String> = sqlx::query_scalar(
                    "SELECT provider_message_id FROM messages WHERE conversation_id = $1 AND direction = 'inbound'
                      ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(conversation.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
                let external = serde_json::json!({ "media_urls": draft.media_urls, "author": draft.author, "template": draft.template });
                let r = sqlx::query(
                    "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, direction, sender_kind, sender, recipients,
                                           subject, text_body, external, delivery_status, status_rank, flags, spam,
                                           idempotency_key, in_reply_to, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'outbound', 'staff', $5, $6, $7, $8, $9, 'queued', $10, $11, FALSE, $12, $13, $14, $14)
                     ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
                )
                .bind(&id)
                .bind(tenant.to_string())
                .bind(&channel)
                .bind(conversation.to_string())
                .bind(draft.author.clone())
                .bind(sqlx::types::Json(serde_json::json!({ "to": [address] })))
                .bind(draft.subject.clone().or(subject))
                .bind(draft.text.clone())
                .bind(sqlx::types::Json(external))
                .bind($crate::model::DeliveryStatus::Queued.rank())
                .bind(sqlx::types::Json(Vec::<String>::new()))
                .bind(draft.idempotency_key.clone())
                .bind(in_reply_to)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                if r.rows_affected() == 0 {
                    return Ok(None);
                }
                Self::insert_job(conn, tenant, $crate::store::JobKind::Send, &id, &channel, now).await?;
                sqlx::query(
                    "UPDATE conversations SET message_count = message_count + 1, unread_count = 0,
                            last_message_at = $1, updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(conversation.to_string())
                .execute(&mut *conn)
                .await?;
                Self::staff_read(conn, tenant, conversation, &draft.author, now).await?;
                Self::audit(conn, tenant, conversation, &draft.author, "reply", serde_json::json!({ "message_id": id }), now).await?;
                Self::insert_event(
                    conn,
                    tenant,
                    "message.created",
                    serde_json::json!({ "conversation_id": conversation, "message_id": id, "channel_id": channel }),
                    now,
                )
                .await?;
                Ok(Some(id))
            }

            /// Returns the message an idempotency key already names, if any.
            async fn replay(&self, tenant: &str, key: Option<&str>) -> $crate::store::StoreResult<Option<$crate::store::MessageView>> {
                let Some(key) = key else { return Ok(None) };
                let mut conn = self.writer().acquire().await?;
                match Self::message_by_key(&mut conn, tenant, key).await? {
                    Some(id) => Ok(Some(Self::message_view(&mut conn, tenant, &id).await?)),
                    None => Ok(None),
                }
            }

            async fn update_conversation(
                &self,
                tenant: &str,
                id: &str,
                sql: &'static str,
                value: Option<String>,
                staff: &str,
                (action, event): (&str, serde_json::Value),
            ) -> $crate::store::StoreResult<$crate::store::ConversationView> {
                let now = $crate::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let r = sqlx::query(sql)
                    .bind(value)
                    .bind(now)
                    .bind(id.to_string())
                    .bind(tenant.to_string())
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Self::audit(&mut tx, tenant, id, staff, action, event.clone(), now).await?;
                let mut payload = event;
                if let Some(o) = payload.as_object_mut() {
                    o.insert("conversation_id".into(), id.into());
                    o.insert("staff".into(), staff.into());
                }
                Self::insert_event(&mut tx, tenant, "conversation.updated", payload, now).await?;
                let view = Self::conversation_view(&mut tx, tenant, id).await?;
                tx.commit().await?;
                Ok(view)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ConversationStore for $store {
            async fn list_conversations(
                &self,
                tenant: &str,
                f: &$crate::store::ConversationFilter,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::Page<$crate::store::ConversationView>> {
                let mut conn = self.reader().acquire().await?;
                let rows: Vec<$crate::store::rows::ConversationRow> = sqlx::query_as(concat!(
                    $crate::store::rows::conversation_select!(),
                    "WHERE c.tenant_id = $1
                       AND ($2 IS NULL OR c.status = $2)
                       AND ($3 IS NULL OR c.channel_id = $3)
                       AND ($4 IS NULL OR c.contact_id = $4)
                       AND ($5 IS NULL OR c.assignee = $5 OR ($5 = '' AND c.assignee IS NULL))
                       AND ($6 IS NULL OR ($6 = TRUE AND c.unread_count > 0) OR ($6 = FALSE AND c.unread_count = 0))
                       AND ($7 IS NULL OR c.last_message_at < $7 OR (c.last_message_at = $7 AND c.id < $8))
                     ORDER BY c.last_message_at DESC, c.id DESC LIMIT $9"
                ))
                .bind(tenant.to_string())
                .bind(f.status.clone())
                .bind(f.channel.clone())
                .bind(f.contact.clone())
                .bind(f.assignee.clone())
                .bind(f.unread)
                .bind(page.cursor.as_ref().map(|c| c.ts))
                .bind(page.cursor.as_ref().map(|c| c.id.clone()).unwrap_or_default())
                .bind(page.limit + 1)
                .fetch_all(&mut *conn)
                .await?;
                let contacts: Vec<&str> = rows.iter().map(|r| r.contact_id.as_str()).collect();
                let identities = Self::identities_of(&mut conn, tenant, &contacts).await?;
                Ok($crate::store::rows::paginate(
                    rows,
                    page.limit,
                    |r| $crate::store::Cursor { ts: r.last_message_at, id: r.id.clone() },
                    |r| r.into_view(&identities),
                ))
            }

            async fn get_conversation(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::ConversationView> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, id).await
            }

            async fn list_participants(&self, tenant: &str, conversation: &str) -> $crate::store::StoreResult<Vec<$crate::store::ParticipantView>> {
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
                    .map(|(kind, id, unread_count, last_read_at)| $crate::store::ParticipantView { kind, id, unread_count, last_read_at })
                    .collect())
            }

            async fn list_messages(
                &self,
                tenant: &str,
                conversation: &str,
                page: &$crate::store::PageRequest,
            ) -> $crate::store::StoreResult<$crate::store::Page<$crate::store::MessageView>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<$crate::store::rows::MessageRow> = sqlx::query_as(concat!(
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
                    |r| $crate::store::Cursor { ts: r.created_at, id: r.id.clone() },
                    |r| r.into_view(&attachments, &reactions),
                ))
            }

            async fn get_message(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::MessageView> {
                let mut conn = self.reader().acquire().await?;
                Self::message_view(&mut conn, tenant, id).await
            }

            async fn create_reply(
                &self,
                tenant: &str,
                conversation: &str,
                draft: &$crate::store::ReplyDraft,
            ) -> $crate::store::StoreResult<($crate::store::MessageView, bool)> {
                if let Some(existing) = self.replay(tenant, draft.idempotency_key.as_deref()).await? {
                    return Ok((existing, false));
                }
                let now = $crate::model::now_millis();
                let mut tx = self.writer().begin().await?;
                match Self::queue_outbound(&mut tx, tenant, conversation, draft, now).await? {
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
            ) -> $crate::store::StoreResult<($crate::store::MessageView, bool)> {
                if let Some(existing) = self.replay(tenant, start.draft.idempotency_key.as_deref()).await? {
                    return Ok((existing, false));
                }
                let now = $crate::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1 AND tenant_id = $2")
                    .bind(&start.channel_id)
                    .bind(tenant.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let kind = kind.ok_or($crate::store::StoreError::NotFound)?;
                let contact = Self::resolve_contact(&mut tx, tenant, &start.to, start.contact_name.as_deref(), now).await?;
                if let Some(lock) = Self::DIALECT.lock_contact {
                    sqlx::query(lock).bind(&contact).execute(&mut *tx).await?;
                }
                // Chat channels thread by contact: reuse the open conversation. Email threads
                // by message, so a new outbound mail is a new conversation.
                let existing: Option<String> = if kind == "email" {
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
                    Some(id) => id,
                    None => {
                        let id = $crate::model::new_id();
                        sqlx::query(
                            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, contact_kind, contact_address, subject, status,
                                                        last_message_at, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8, $8)",
                        )
                        .bind(&id)
                        .bind(tenant.to_string())
                        .bind(&start.channel_id)
                        .bind(&contact)
                        .bind(start.to.kind.as_str())
                        .bind(&start.to.value)
                        .bind(start.draft.subject.clone())
                        .bind(now)
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
                        Self::insert_event(
                            &mut tx,
                            tenant,
                            "conversation.created",
                            serde_json::json!({ "conversation_id": id, "channel_id": start.channel_id }),
                            now,
                        )
                        .await?;
                        id
                    }
                };
                match Self::queue_outbound(&mut tx, tenant, &conversation, &start.draft, now).await? {
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

            async fn mark_read(&self, tenant: &str, conversation: &str, staff: &str) -> $crate::store::StoreResult<$crate::store::ConversationView> {
                let now = $crate::model::now_millis();
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
                status: $crate::model::ConversationStatus,
                staff: &str,
            ) -> $crate::store::StoreResult<$crate::store::ConversationView> {
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
            ) -> $crate::store::StoreResult<$crate::store::ConversationView> {
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

            async fn unread_summary(&self, tenant: &str, staff: &str) -> $crate::store::StoreResult<$crate::store::UnreadSummary> {
                let (conversations, messages): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(unread_count), 0) AS BIGINT) FROM conversations
                      WHERE tenant_id = $1 AND status = 'open' AND unread_count > 0",
                )
                .bind(tenant.to_string())
                .fetch_one(self.reader())
                .await?;
                let mine: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(p.unread_count), 0) AS BIGINT) FROM participants p
                       JOIN conversations c ON c.id = p.conversation_id
                      WHERE p.tenant_id = $1 AND p.kind = 'staff' AND p.ref_id = $2 AND c.status = 'open'",
                )
                .bind(tenant.to_string())
                .bind(staff.to_string())
                .fetch_one(self.reader())
                .await?;
                Ok($crate::store::UnreadSummary { conversations, messages, mine })
            }

            async fn get_attachment(&self, tenant: &str, id: &str) -> $crate::store::StoreResult<$crate::store::AttachmentView> {
                let row: Option<$crate::store::rows::AttachmentRow> =
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
            ) -> $crate::store::StoreResult<$crate::store::Page<$crate::store::AuditEntry>> {
                let mut conn = self.reader().acquire().await?;
                Self::conversation_view(&mut conn, tenant, conversation).await?;
                let rows: Vec<$crate::store::AuditEntry> = sqlx::query_as(
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
                    |r| $crate::store::Cursor { ts: r.created_at, id: r.id.clone() },
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
                let now = $crate::model::now_millis();
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

            async fn list_channels(&self, tenant: &str) -> $crate::store::StoreResult<Vec<$crate::store::ChannelView>> {
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
                    .map(|(id, kind, address, status, last_error, updated_at, outbox_pending)| $crate::store::ChannelView {
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
