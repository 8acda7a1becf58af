//! The store's side of thread assignment: gathering the facts [`crate::domain::thread::decide`]
//! needs (all within the channel), and merging conversations when a parent message arrives
//! after its replies.

/// The candidate of the first reference (in the message's order: most specific first)
/// that a lookup found.
pub(crate) fn pick_by_order<F>(
    refs: &[&String],
    found: &[(String, String, String)],
    candidate: F,
) -> crate::store::StoreResult<Option<crate::domain::thread::Candidate>>
where
    F: Fn(
        Option<(String, String)>,
    ) -> crate::store::StoreResult<Option<crate::domain::thread::Candidate>>,
{
    for r in refs {
        if let Some((_, id, status)) = found.iter().find(|(key, _, _)| key == *r) {
            return candidate(Some((id.clone(), status.clone())));
        }
    }
    Ok(None)
}

macro_rules! impl_threading_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Gathers the facts the thread decision needs, all within the channel.
            async fn thread_facts(
                conn: &mut <$db as sqlx::Database>::Connection,
                channel: &str,
                threading: $crate::contract::ingest_types::Threading,
                contact: &str,
                msg: &$crate::domain::model::InboundMessage,
                policy: &$crate::domain::thread::ThreadingPolicy,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::domain::thread::ThreadFacts> {
                let candidate = |row: Option<(String, String)>| -> $crate::store::StoreResult<Option<$crate::domain::thread::Candidate>> {
                    row.map(|(id, status)| {
                        let status = $crate::domain::model::ConversationStatus::parse(&status)
                            .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("conversation status {status:?}")))?;
                        Ok($crate::domain::thread::Candidate { id, status })
                    })
                    .transpose()
                };
                let mut facts = $crate::domain::thread::ThreadFacts::default();
                let refs: Vec<&String> = msg.reply_to.iter().take(50).collect();
                if !refs.is_empty() {
                    // One query for all referenced ids; the most specific one found wins.
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT m.provider_message_id, c.id, c.status FROM messages m JOIN conversations c ON c.id = m.conversation_id
                          WHERE m.channel_id = ",
                    );
                    q.push_bind(channel.to_string()).push(" AND m.provider_message_id IN ");
                    super::sql_common::push_list(&mut q, refs.iter().map(|r| (*r).clone()));
                    let found: Vec<(String, String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    facts.replied_to = super::sql_threading::pick_by_order(&refs, &found, candidate)?;
                    if facts.replied_to.is_none() {
                        // The parent is not here (never received, or older than the mailbox),
                        // but a sibling may be: messages sharing an ancestor belong to one
                        // thread, as RFC 5256 threading links them through the missing parent.
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "SELECT DISTINCT r.ref, c.id, c.status FROM message_refs r
                               JOIN messages m ON m.id = r.message_id
                               JOIN conversations c ON c.id = m.conversation_id
                              WHERE r.channel_id = ",
                        );
                        q.push_bind(channel.to_string()).push(" AND r.ref IN ");
                        super::sql_common::push_list(&mut q, refs.iter().map(|r| (*r).clone()));
                        let found: Vec<(String, String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                        facts.replied_to = super::sql_threading::pick_by_order(&refs, &found, candidate)?;
                    }
                }
                if let Some(token) = msg.thread_token.as_deref().filter(|t| !t.is_empty()) {
                    let row: Option<(String, String)> = sqlx::query_as(
                        "SELECT id, status FROM conversations WHERE channel_id = $1 AND reply_token = $2",
                    )
                    .bind(channel.to_string())
                    .bind(token.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                    facts.by_token = candidate(row)?;
                }
                // Mail threads by headers and subject; chat channels by the contact's latest
                // active conversation. The channel's connector declared which this is.
                if threading == $crate::contract::ingest_types::Threading::MailHeaders {
                    let key = msg.subject.as_deref().map($crate::domain::thread::subject_key).unwrap_or_default();
                    // Only mail that names no parent is matched by subject: a message whose
                    // References point at mail we do not have answers some other thread.
                    if policy.subject_matching && !key.is_empty() && msg.reply_to.is_empty() {
                        // The window is measured in the mail's own dates (capped at now), so a
                        // first sync of years of mail does not join same-subject mail sent years
                        // apart just because it was all fetched today.
                        let at = msg.sent_at.map_or(now, |t| t.min(now));
                        let row: Option<(String, String)> = sqlx::query_as(
                            "SELECT c.id, c.status FROM conversations c
                              WHERE c.channel_id = $1 AND c.contact_id = $2 AND c.subject_key = $3
                                AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id
                                               AND COALESCE(m.sent_at, m.created_at) BETWEEN $4 AND $5)
                              ORDER BY c.last_message_at DESC, c.id DESC LIMIT 1",
                        )
                        .bind(channel.to_string())
                        .bind(contact.to_string())
                        .bind(key)
                        .bind(at.saturating_sub(policy.subject_window_ms))
                        .bind(at.saturating_add(policy.subject_window_ms))
                        .fetch_optional(&mut *conn)
                        .await?;
                        facts.by_subject = candidate(row)?;
                    }
                } else {
                    let row: Option<(String, String)> = sqlx::query_as(
                        "SELECT id, status FROM conversations
                          WHERE channel_id = $1 AND contact_id = $2 AND status IN ('open', 'spam')
                          ORDER BY last_message_at DESC, id DESC LIMIT 1",
                    )
                    .bind(channel.to_string())
                    .bind(contact.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                    facts.latest_active = candidate(row)?;
                }
                Ok(facts)
            }

            /// A parent arriving after its replies adopts them: conversations holding
            /// messages that refer to `provider_id` merge into `into` (same channel only).
            async fn adopt_orphans(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                channel: &str,
                provider_id: &str,
                into: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let orphans: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT m.conversation_id FROM message_refs r JOIN messages m ON m.id = r.message_id
                      WHERE r.channel_id = $1 AND r.ref = $2 AND m.conversation_id <> $3",
                )
                .bind(channel.to_string())
                .bind(provider_id.to_string())
                .bind(into.to_string())
                .fetch_all(&mut *conn)
                .await?;
                for orphan in orphans {
                    for sql in [
                        "UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2",
                        "UPDATE audit_log SET conversation_id = $1 WHERE conversation_id = $2",
                        "INSERT INTO participants (conversation_id, tenant_id, kind, ref_id, unread_count, last_read_at, joined_at)
                           SELECT $1, tenant_id, kind, ref_id, unread_count, last_read_at, joined_at FROM participants WHERE conversation_id = $2
                         ON CONFLICT (conversation_id, kind, ref_id) DO UPDATE SET unread_count = participants.unread_count + excluded.unread_count",
                        "DELETE FROM participants WHERE conversation_id = $2",
                    ] {
                        sqlx::query(sql).bind(into.to_string()).bind(orphan.clone()).execute(&mut *conn).await?;
                    }
                    sqlx::query(
                        "UPDATE conversations SET
                            message_count = message_count + (SELECT message_count FROM conversations WHERE id = $2),
                            unread_count = unread_count + (SELECT unread_count FROM conversations WHERE id = $2),
                            last_message_at = (SELECT MAX(created_at) FROM messages WHERE conversation_id = $1),
                            updated_at = $3
                          WHERE id = $1",
                    )
                    .bind(into.to_string())
                    .bind(orphan.clone())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query("DELETE FROM conversations WHERE id = $1")
                        .bind(orphan.clone())
                        .execute(&mut *conn)
                        .await?;
                    Self::insert_event(
                        conn,
                        tenant,
                        "conversation.merged",
                        serde_json::json!({ "merged_conversation_id": orphan, "into_conversation_id": into }),
                        now,
                    )
                    .await?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use impl_threading_queries;
