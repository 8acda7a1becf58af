//! Staff writes shared by the conversation operations: the audit trail, read markers,
//! queueing an outbound message with its send job, idempotent replays, and status or
//! assignee changes.

macro_rules! impl_staff_queries {
    ($store:ty, $db:ty) => {
        impl $store {
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
                .bind($crate::domain::model::new_id())
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

            /// Refuses sending to an erased contact or to an address that opted out.
            async fn ensure_reachable(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                contact: String,
                erased: Option<i64>,
                kind: &str,
                address: &str,
            ) -> $crate::store::StoreResult<()> {
                if erased.is_some() {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactErased { contact }));
                }
                let opted_out: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT opted_out_at FROM contact_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
                )
                .bind(tenant.to_string())
                .bind(kind.to_string())
                .bind(address.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                if opted_out.flatten().is_some() {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactOptedOut {
                        address: address.to_string(),
                    }));
                }
                Ok(())
            }

            /// Writes an outbound message and its send job in the caller's transaction, and
            /// announces the conversation (`announce`: `conversation.created` for one just
            /// opened, else `conversation.updated`) and then the message.
            /// Returns `None` when the idempotency key was taken concurrently.
            async fn queue_outbound(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                conversation: &str,
                draft: &$crate::store::ReplyDraft,
                announce: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let conv: Option<(String, String, String, Option<String>, String, Option<i64>)> = sqlx::query_as(
                    "SELECT c.channel_id, c.contact_kind, c.contact_address, c.subject, c.contact_id, k.erased_at
                       FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1 AND c.tenant_id = $2",
                )
                .bind(conversation.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                let (channel, kind, address, subject, contact, erased) = conv.ok_or($crate::store::StoreError::NotFound)?;
                Self::ensure_reachable(&mut *conn, tenant, contact, erased, &kind, &address).await?;
                let id = $crate::domain::model::new_id();
                let in_reply_to: Option<String> = sqlx::query_scalar(
                    "SELECT provider_message_id FROM messages WHERE conversation_id = $1 AND direction = 'inbound'
                      ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(conversation.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
                let mut external = serde_json::json!({ "media_urls": draft.media_urls, "author": draft.author, "template": draft.template });
                external[$crate::store::ReplyDraft::FINGERPRINT_KEY] = draft.fingerprint().into();
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
                .bind($crate::domain::model::DeliveryStatus::Queued.rank())
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
                // As for an inbound message: the conversation moved (count, time), then the
                // message.
                Self::insert_event(
                    conn,
                    tenant,
                    announce,
                    serde_json::json!({ "conversation_id": conversation, "message_id": id, "channel_id": channel }),
                    now,
                )
                .await?;
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
            async fn replay(&self, tenant: &str, key: Option<&str>) -> $crate::store::StoreResult<Option<$crate::store::MessageRow>> {
                let Some(key) = key else { return Ok(None) };
                let mut conn = self.writer().acquire().await?;
                match Self::message_by_key(&mut conn, tenant, key).await? {
                    Some(id) => Ok(Some(Self::message_view(&mut conn, tenant, &id).await?)),
                    None => Ok(None),
                }
            }

            /// Applies one change to a conversation with its audit entry and its
            /// `conversation.updated` event. An assignment's event also names the
            /// `previous_assignee`, so a live client that loses the conversation learns it.
            async fn update_conversation(
                &self,
                tenant: &str,
                id: &str,
                sql: &'static str,
                value: Option<String>,
                staff: &str,
                (action, event): (&str, serde_json::Value),
            ) -> $crate::store::StoreResult<$crate::store::ConversationRow> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let previous: Option<Option<String>> = if action == "assign" {
                    sqlx::query_scalar("SELECT assignee FROM conversations WHERE id = $1 AND tenant_id = $2")
                        .bind(id.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *tx)
                        .await?
                } else {
                    None
                };
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
                    if let Some(previous) = previous {
                        o.insert("previous_assignee".into(), previous.into());
                    }
                }
                Self::insert_event(&mut tx, tenant, "conversation.updated", payload, now).await?;
                let view = Self::conversation_view(&mut tx, tenant, id).await?;
                tx.commit().await?;
                Ok(view)
            }
        }
    };
}
pub(crate) use impl_staff_queries;
