//! Statements many store operations share: the event log append (with the tenant's event
//! id counter), job creation, attachment rows and the forward-only delivery status update,
//! written once for both databases.

/// Appends `(bind, bind, ...)`: a bound list for `IN`.
pub(crate) fn push_list<'t, DB, T, I>(q: &mut sqlx::QueryBuilder<DB>, items: I)
where
    DB: sqlx::Database,
    T: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    I: IntoIterator<Item = T>,
{
    q.push("(");
    let mut list = q.separated(", ");
    for item in items {
        list.push_bind(item);
    }
    q.push(")");
}

macro_rules! impl_common_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts attachment rows `(attachment id, message id, attachment)`: stored when
            /// ingest wrote their bytes, pending (with a media job) when there is a source to
            /// fetch from, failed otherwise.
            async fn insert_attachments(
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                rows: &[(String, String, &$crate::domain::model::InboundAttachment)],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                for chunk in rows.chunks(100) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO attachments (id, tenant_id, message_id, filename, content_type, content_id, source, state, error, created_at,
                                                  storage_key, sha256, size) ",
                    );
                    q.push_values(chunk, |mut row, (aid, mid, a)| {
                        let (state, error) = match (&a.stored, &a.source) {
                            _ if a.too_large.is_some() => (
                                "too_large",
                                a.too_large.map(|n| format!("{n} bytes is over the attachment size limit")),
                            ),
                            (Some(_), _) => ("stored", None),
                            (None, Some(_)) => ("pending", None),
                            (None, None) => ("failed", Some("no source to fetch from".to_string())),
                        };
                        row.push_bind(aid.clone())
                            .push_bind(ch.tenant_id.clone())
                            .push_bind(mid.clone())
                            .push_bind(a.filename.clone())
                            .push_bind(a.content_type.clone())
                            .push_bind(a.content_id.clone())
                            .push_bind(a.source.clone())
                            .push_bind(state)
                            .push_bind(error)
                            .push_bind(now)
                            .push_bind(a.stored.as_ref().map(|s| s.key().to_owned()))
                            .push_bind(a.stored.as_ref().map(|s| s.sha256().to_owned()))
                            .push_bind(
                                a.stored
                                    .as_ref()
                                    .map(|s| s.size())
                                    .or(a.too_large)
                                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                            );
                    });
                    q.build().execute(&mut *conn).await?;
                }
                for (aid, _, a) in rows {
                    if a.stored.is_none() && a.source.is_some() && a.too_large.is_none() {
                        Self::insert_job(&mut *conn, &ch.tenant_id, $crate::store::JobKind::FetchMedia, aid, &ch.channel_id, now).await?;
                    }
                }
                Ok(())
            }

            /// Appends to the durable event log (what live clients and outgoing webhooks
            /// read). Conversation events carry the conversation's current state, so a
            /// client can update its list without another request.
            async fn insert_event(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                kind: &str,
                payload: serde_json::Value,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut payload = payload;
                let conversation = payload.get("conversation_id").and_then(|v| v.as_str()).map(str::to_string);
                if let (true, Some(id)) = (kind.starts_with("conversation."), conversation) {
                    let state: Option<(String, Option<String>, i64, i64, i64)> = sqlx::query_as(
                        "SELECT status, assignee, unread_count, message_count, last_message_at FROM conversations WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let (Some((status, assignee, unread, count, last)), Some(o)) = (state, payload.as_object_mut()) {
                        o.insert("status".into(), status.into());
                        o.insert("assignee".into(), assignee.into());
                        o.insert("unread_count".into(), unread.into());
                        o.insert("message_count".into(), count.into());
                        o.insert("last_message_at".into(), $crate::domain::model::format_millis(last).into());
                    }
                }
                // A message event names its conversation, so a client can place it without
                // another call.
                if kind.starts_with("message.") && payload.get("conversation_id").is_none() {
                    let message = payload.get("message_id").and_then(|v| v.as_str()).map(str::to_string);
                    if let Some(message) = message {
                        let conversation: Option<String> = sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
                            .bind(message)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if let (Some(c), Some(o)) = (conversation, payload.as_object_mut()) {
                            o.insert("conversation_id".into(), c.into());
                        }
                    }
                }
                let seq = Self::reserve_event_seqs(&mut *conn, tenant, 1).await?;
                sqlx::query("INSERT INTO events (tenant_id, seq, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(tenant.to_string())
                    .bind(seq)
                    .bind(kind.to_string())
                    .bind(sqlx::types::Json(payload))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                if let Some(notify) = Self::DIALECT.notify_events {
                    sqlx::query(notify).bind(tenant.to_string()).execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Takes the tenant's next `n` event ids and returns the last of them (the ids
            /// are `last - n + 1 ..= last`): each tenant counts its own events 1, 2, 3...
            /// with no gaps, since the counter moves in the transaction that writes them.
            /// On PostgreSQL the counter's row lock, held until commit, also serializes a
            /// tenant's event writers, so its ids commit in order: a reader that saw id n
            /// never later finds a smaller id appear. SQLite has one writer anyway.
            async fn reserve_event_seqs(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                n: i64,
            ) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO tenant_event_counters (tenant_id, last_seq) VALUES ($1, $2)
                     ON CONFLICT (tenant_id) DO UPDATE SET last_seq = tenant_event_counters.last_seq + excluded.last_seq
                     RETURNING last_seq",
                )
                .bind(tenant.to_string())
                .bind(n)
                .fetch_one(&mut *conn)
                .await?)
            }

            async fn insert_job(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                kind: $crate::store::JobKind,
                ref_id: &str,
                channel: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO jobs (id, tenant_id, kind, ref_id, channel_id, state, attempts, next_attempt_at, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)",
                )
                .bind($crate::domain::model::new_id())
                .bind(tenant.to_string())
                .bind(kind.as_str())
                .bind(ref_id.to_string())
                .bind(channel.to_string())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Moves a message's delivery status forward; true if it moved.
            async fn advance_status(
                conn: &mut <$db as sqlx::Database>::Connection,
                message_id: &str,
                status: $crate::domain::model::DeliveryStatus,
                error_code: Option<&str>,
                error_message: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE messages SET delivery_status = $1, status_rank = $2,
                            error_code = COALESCE($3, error_code), error_message = COALESCE($4, error_message),
                            updated_at = $5
                      WHERE id = $6 AND status_rank < $2",
                )
                .bind(status.as_str())
                .bind(status.rank())
                .bind(error_code.map(str::to_string))
                .bind(error_message.map(str::to_string))
                .bind(now)
                .bind(message_id.to_string())
                .execute(&mut *conn)
                .await?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_common_queries;
