//! Erasing a contact (GDPR), written once for both databases, in one transaction.
//!
//! What goes, for every message of every conversation of the contact (both directions):
//! subject, text and HTML bodies, the addresses (recipients; the sender of the contact's
//! own messages), provider data (`external`), error texts, references (`message_refs`,
//! `in_reply_to`), reactions, and the attachments (rows marked `erased` with their names,
//! types, sizes and keys removed; pending downloads and sends cancelled). The bytes are
//! deleted by the caller after commit, each only when no other attachment names them
//! (blobs are shared by content). The raw journal goes too: entries about the messages
//! (`inbound_events.provider_message_id`, written since migration 0011: the messages
//! themselves, status reports and reactions) and entries written before it, matched by key
//! ([`legacy_key_names`]). The identities are
//! deleted, so a new message from the same address makes a new contact; the contact stays
//! as a tombstone named `erased`; the conversations stay, without subject, address or
//! reply token, their messages marked erased. An entry in the contact's audit trail (ids
//! and counts only), a `contact_erased` entry in each conversation's and a
//! `contact.erased` event record it.
//!
//! What stays: ids, timestamps, directions, delivery states and provider message ids (so
//! a provider's retry or a mailbox re-sync of an erased message is still recognized as a
//! duplicate and not stored again); events already in the event log, which is pruned after
//! `events.retention_hours`; and, where one delivery carried several people's items (a
//! WhatsApp webhook batch, journaled whole once per item), the entries of the other
//! people's items.

use std::collections::HashSet;

/// IN lists are sent in chunks of this many values.
pub(crate) const CHUNK: usize = 400;

/// Whether a journal key written before migration 0011 (no `provider_message_id`) is about
/// one of `ids` (provider message ids, and the ids of reactions to them), by the keys the
/// bundled connectors wrote: `msg:{id}`, `reaction:{id}`, `status:{id}:{status}[:{code}]`
/// and `mail:{Message-ID, first 300 characters}:{sha256}`. Keys of other shapes (a mail
/// bounce's, keyed by the bounce's own Message-ID) are not matched: such old entries stay.
pub(crate) fn legacy_key_names(key: &str, ids: &HashSet<String>) -> bool {
    if let Some(id) = key
        .strip_prefix("msg:")
        .or_else(|| key.strip_prefix("reaction:"))
    {
        return ids.contains(id);
    }
    if let Some(rest) = key.strip_prefix("status:") {
        return rest.split(':').next().is_some_and(|id| ids.contains(id));
    }
    if let Some((id, sha)) = key
        .strip_prefix("mail:")
        .and_then(|rest| rest.rsplit_once(':'))
    {
        let hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        return hex && ids.iter().any(|m| m.chars().take(300).eq(id.chars()));
    }
    false
}

/// A message of the erased contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ErasedMessage {
    pub id: String,
    pub channel_id: String,
    pub provider_message_id: Option<String>,
}

macro_rules! impl_contact_erase {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Erases the contact (see the module documentation).
            async fn erase_in_tx(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
                actor: &str,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::Erasure> {
                Self::live_contact(&mut *conn, tenant, id, true).await?;
                let conversations: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at, id",
                )
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let messages = Self::erased_messages(&mut *conn, tenant, &conversations).await?;
                let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
                let reactions = Self::erase_reactions(&mut *conn, tenant, &ids).await?;
                let (attachments, blob_keys) = Self::erase_attachments(&mut *conn, tenant, &ids, now).await?;
                Self::erase_message_rows(&mut *conn, tenant, &ids, now).await?;
                let journal_entries = Self::erase_journal(&mut *conn, tenant, &messages, &reactions).await?;
                Self::erase_contact_rows(&mut *conn, tenant, id, &conversations, now).await?;
                let erasure = $crate::store::Erasure {
                    contact_id: id.to_string(),
                    conversations: conversations.len() as i64,
                    messages: ids.len() as i64,
                    attachments,
                    journal_entries,
                    blob_keys,
                };
                Self::record_erasure(&mut *conn, tenant, &erasure, &conversations, actor, now).await?;
                Ok(erasure)
            }

            async fn erased_messages(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                conversations: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::sql_contact_erase::ErasedMessage>> {
                let mut out = Vec::new();
                for chunk in conversations.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, channel_id, provider_message_id FROM messages WHERE tenant_id = ",
                    );
                    q.push_bind(tenant.to_string()).push(" AND conversation_id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    let rows: Vec<$crate::store::sql_contact_erase::ErasedMessage> = q.build_query_as().fetch_all(&mut *conn).await?;
                    out.extend(rows);
                }
                Ok(out)
            }

            /// Runs `sql` + `(ids)` [+ `AND tenant_id = tenant`] for every chunk of `ids`;
            /// returns the rows affected.
            async fn for_each_chunk(
                conn: &mut <$db as sqlx::Database>::Connection,
                sql: &str,
                tenant: Option<&str>,
                ids: &[String],
            ) -> $crate::store::StoreResult<i64> {
                let mut affected = 0;
                for chunk in ids.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(sql);
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    if let Some(tenant) = tenant {
                        q.push(" AND tenant_id = ").push_bind(tenant.to_string());
                    }
                    affected += q.build().execute(&mut *conn).await?.rows_affected();
                }
                Ok(i64::try_from(affected).unwrap_or(i64::MAX))
            }

            /// Deletes the reactions to the messages; returns `(channel, provider id)` of each
            /// (their journal entries go too).
            async fn erase_reactions(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                ids: &[String],
            ) -> $crate::store::StoreResult<Vec<(String, String)>> {
                let mut reactions = Vec::new();
                for chunk in ids.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT m.channel_id, r.provider_message_id FROM reactions r JOIN messages m ON m.id = r.message_id WHERE r.message_id IN ",
                    );
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" AND r.tenant_id = ").push_bind(tenant.to_string());
                    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    reactions.extend(rows);
                }
                Self::for_each_chunk(&mut *conn, "DELETE FROM reactions WHERE message_id IN ", Some(tenant), ids).await?;
                Ok(reactions)
            }

            /// Marks the messages' attachments erased and cancels their downloads and the
            /// messages' pending jobs; returns how many attachments, and their storage keys.
            async fn erase_attachments(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                ids: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<(i64, Vec<String>)> {
                let mut attachments: Vec<(String, Option<String>)> = Vec::new();
                for chunk in ids.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT id, storage_key FROM attachments WHERE message_id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" AND tenant_id = ").push_bind(tenant.to_string());
                    let rows: Vec<(String, Option<String>)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    attachments.extend(rows);
                }
                Self::for_each_chunk(
                    &mut *conn,
                    "UPDATE attachments SET state = 'erased', filename = NULL, content_type = NULL, size = NULL, sha256 = NULL,
                            content_id = NULL, storage_key = NULL, source = NULL, error = NULL
                      WHERE message_id IN ",
                    Some(tenant),
                    ids,
                )
                .await?;
                let mut refs: Vec<String> = ids.to_vec();
                refs.extend(attachments.iter().map(|(a, _)| a.clone()));
                Self::cancel_jobs(&mut *conn, tenant, &refs, now).await?;
                let mut keys: Vec<String> = attachments.iter().filter_map(|(_, k)| k.clone()).collect();
                keys.sort();
                keys.dedup();
                Ok((attachments.len() as i64, keys))
            }

            /// Fails the pending jobs about these messages and attachments (sends, media
            /// downloads, read receipts); a queued reply becomes `failed` (`contact_erased`).
            async fn cancel_jobs(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                refs: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                for chunk in refs.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE jobs SET state = 'failed', last_error = 'contact_erased: the contact was erased', locked_until = NULL, updated_at = ",
                    );
                    q.push_bind(now).push(" WHERE state = 'pending' AND tenant_id = ").push_bind(tenant.to_string());
                    q.push(" AND ref_id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" RETURNING ref_id, kind");
                    let cancelled: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (message, _) in cancelled.iter().filter(|(_, kind)| kind == $crate::store::JobKind::Send.as_str()) {
                        let failed = $crate::domain::model::DeliveryStatus::Failed;
                        Self::advance_status(&mut *conn, message, failed, Some("contact_erased"), None, now).await?;
                    }
                }
                Ok(())
            }

            /// Empties the messages and drops their references.
            async fn erase_message_rows(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                ids: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                for chunk in ids.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE messages SET subject = NULL, text_body = NULL, html_body = NULL, recipients = '{}', external = '{}',
                                sender = CASE WHEN sender_kind = 'contact' THEN 'erased' ELSE sender END,
                                error_message = NULL, in_reply_to = NULL, erased_at = ",
                    );
                    q.push_bind(now).push(", updated_at = ").push_bind(now).push(" WHERE id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" AND tenant_id = ").push_bind(tenant.to_string());
                    q.build().execute(&mut *conn).await?;
                }
                // References have no tenant of their own: the ids are the tenant's messages.
                Self::for_each_chunk(&mut *conn, "DELETE FROM message_refs WHERE message_id IN ", None, ids).await?;
                Ok(())
            }

            /// Deletes the contact's identities, empties its conversations and makes it a
            /// tombstone.
            async fn erase_contact_rows(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                id: &str,
                conversations: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM contact_identities WHERE tenant_id = $1 AND contact_id = $2")
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                for chunk in conversations.chunks($crate::store::sql_contact_erase::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE conversations SET subject = NULL, subject_key = NULL, reply_token = NULL, contact_address = 'erased',
                                external = '{}', updated_at = ",
                    );
                    q.push_bind(now).push(" WHERE id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" AND tenant_id = ").push_bind(tenant.to_string());
                    q.build().execute(&mut *conn).await?;
                }
                sqlx::query(
                    "UPDATE contacts SET name = 'erased', notes = NULL, attributes = $1, erased_at = $2, updated_at = $2
                      WHERE id = $3 AND tenant_id = $4",
                )
                .bind(sqlx::types::Json(serde_json::json!({})))
                .bind(now)
                .bind(id.to_string())
                .bind(tenant.to_string())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Deletes the journal entries about the messages and their reactions: linked
            /// ones by provider id, older ones by key. Returns how many.
            async fn erase_journal(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                messages: &[$crate::store::sql_contact_erase::ErasedMessage],
                reactions: &[(String, String)],
            ) -> $crate::store::StoreResult<i64> {
                let mut by_channel: std::collections::BTreeMap<String, Vec<String>> = Default::default();
                for m in messages {
                    if let Some(pid) = &m.provider_message_id {
                        by_channel.entry(m.channel_id.clone()).or_default().push(pid.clone());
                    }
                }
                let mut reacted: std::collections::BTreeMap<String, Vec<String>> = Default::default();
                for (channel, pid) in reactions {
                    reacted.entry(channel.clone()).or_default().push(pid.clone());
                    by_channel.entry(channel.clone()).or_default();
                }
                let mut targets: Vec<String> = Vec::new();
                for (channel, pids) in &by_channel {
                    for chunk in pids.chunks($crate::store::sql_contact_erase::CHUNK) {
                        let mut q = sqlx::QueryBuilder::<$db>::new("SELECT id FROM inbound_events WHERE tenant_id = ");
                        q.push_bind(tenant.to_string()).push(" AND channel_id = ").push_bind(channel.clone());
                        q.push(" AND provider_message_id IN ");
                        super::sql_common::push_list(&mut q, chunk.iter().cloned());
                        let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
                        targets.extend(ids);
                    }
                    let mut names: std::collections::HashSet<String> = pids.iter().cloned().collect();
                    names.extend(reacted.get(channel).into_iter().flatten().cloned());
                    targets.extend(Self::legacy_journal_ids(&mut *conn, tenant, channel, &names).await?);
                }
                Self::for_each_chunk(&mut *conn, "DELETE FROM inbound_events WHERE id IN ", Some(tenant), &targets).await
            }

            /// The channel's entries written before migration 0011 whose keys name one of
            /// `names` ([`$crate::store::sql_contact_erase::legacy_key_names`]).
            async fn legacy_journal_ids(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                channel: &str,
                names: &std::collections::HashSet<String>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, idempotency_key FROM inbound_events
                      WHERE channel_id = $1 AND provider_message_id IS NULL AND tenant_id = $2",
                )
                .bind(channel.to_string())
                .bind(tenant.to_string())
                .fetch_all(&mut *conn)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter(|(_, key)| $crate::store::sql_contact_erase::legacy_key_names(key, names))
                    .map(|(id, _)| id)
                    .collect())
            }

            /// The audit entries and the `contact.erased` event.
            async fn record_erasure(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                erasure: &$crate::store::Erasure,
                conversations: &[String],
                actor: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let id = erasure.contact_id.as_str();
                let detail = serde_json::json!({
                    "conversations": erasure.conversations,
                    "messages": erasure.messages,
                    "attachments": erasure.attachments,
                    "journal_entries": erasure.journal_entries,
                });
                Self::contact_audit(&mut *conn, tenant, id, actor, "erase", detail, now).await?;
                for conversation in conversations {
                    let detail = serde_json::json!({ "contact_id": id });
                    Self::audit(&mut *conn, tenant, conversation, actor, "contact_erased", detail, now).await?;
                }
                let event = serde_json::json!({ "contact_id": id, "conversation_ids": conversations, "staff": actor });
                Self::insert_event(&mut *conn, tenant, "contact.erased", event, now).await
            }
        }
    };
}
pub(crate) use impl_contact_erase;

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn old_journal_keys_are_matched_by_the_connectors_shapes() {
        let known = ids(&["SM1", "wamid.A==", "<a@example.com>", "wamid.R"]);
        assert!(legacy_key_names("msg:SM1", &known));
        assert!(legacy_key_names("status:SM1:delivered", &known));
        assert!(legacy_key_names("status:SM1:undelivered:30003", &known));
        assert!(legacy_key_names("reaction:wamid.R", &known));
        let sha = "ab".repeat(32);
        assert!(legacy_key_names(
            &format!("mail:<a@example.com>:{sha}"),
            &known
        ));
        assert!(!legacy_key_names("msg:SM10", &known));
        assert!(!legacy_key_names("status:SM10:sent", &known));
        assert!(!legacy_key_names(
            &format!("mail:<b@example.com>:{sha}"),
            &known
        ));
        assert!(!legacy_key_names("mail:<a@example.com>:short", &known));
        assert!(!legacy_key_names(
            &format!("bounce:mail:<x@y>:{sha}"),
            &known
        ));
        assert!(!legacy_key_names("event:messages:123", &known));
    }

    #[test]
    fn long_message_ids_match_their_truncated_keys() {
        let long = format!("<{}@example.com>", "x".repeat(400));
        let key = format!(
            "mail:{}:{}",
            long.chars().take(300).collect::<String>(),
            "0".repeat(64)
        );
        assert!(legacy_key_names(&key, &ids(&[long.as_str()])));
    }
}
