//! The set-based form of ingest for a batch of fetched mail: the same journal → dedupe → contact → thread decision → persist → event steps
//! as `ingest_one`, but with each step done for the whole batch in a few statements instead
//! of a dozen per message. Every statement is a round trip to the database thread, which
//! costs more than the statement itself, and a first sync fetches mail by the thousand.
//!
//! Thread decisions stay sequential and pure ([`crate::domain::thread::decide_with`], in the batch's
//! order): the facts come from a few lookups of everything the batch refers to, overlaid
//! with what the batch itself created so far (a reply later in the batch finds a parent
//! earlier in it).
//!
//! Concurrency: on SQLite this transaction is the only writer. On PostgreSQL one replica
//! syncs a mailbox at a time (the sync lease), so nothing else writes this channel's journal,
//! messages or references; what another channel of the tenant can write at the same moment
//! is the same sender's contact identity, and that insert yields to the winner. Should a
//! unique key be raced anyway, the batch rolls back as a whole and is fetched again (its
//! journal keys then dedupe).

/// What a batch knows about one conversation while deciding (from the database or created
/// by the batch).
#[derive(Debug, Clone)]
pub(crate) struct BatchConversation {
    pub status: crate::domain::model::ConversationStatus,
}

/// A conversation the batch opens.
#[derive(Debug, Clone)]
pub(crate) struct NewConversation {
    pub id: String,
    pub contact: String,
    pub kind: String,
    pub address: String,
    pub subject: Option<String>,
    pub subject_key: Option<String>,
    pub status: crate::domain::model::ConversationStatus,
}

/// Whether a batch can take the set-based path: a mail-threaded channel's messages from email
/// addresses without consent changes (those update identities message by message).
pub(crate) fn set_based(
    ch: &crate::contract::ingest_types::ChannelRef,
    items: &[(
        crate::contract::journal::JournalEntry,
        crate::domain::model::InboundMessage,
    )],
) -> bool {
    // The set-based statements write the senders as email identities.
    ch.threading == crate::contract::ingest_types::Threading::MailHeaders
        && items.iter().all(|(_, m)| {
            m.from.kind == crate::domain::model::IdentityKind::EMAIL && m.consent.is_none()
        })
}

macro_rules! impl_mail_batch {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Ingests a batch of mail within the caller's transaction (see the module
            /// documentation on concurrency).
            async fn ingest_mail_set(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                items: &[($crate::contract::journal::JournalEntry, $crate::domain::model::InboundMessage)],
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::contract::ingest_types::IngestOutcome>> {
                use std::collections::{HashMap, HashSet};
                use $crate::domain::model::ConversationStatus;
                use $crate::contract::ingest_types::IngestOutcome;
                use $crate::store::sql_mail_batch::{BatchConversation, NewConversation};
                use $crate::domain::thread::{Candidate, ThreadDecision, ThreadFacts};

                let mut outcomes = vec![IngestOutcome::Duplicate; items.len()];
                if items.is_empty() {
                    return Ok(outcomes);
                }
                // Journal: the keys this batch is the first to bring.
                let mut fresh: HashSet<String> = HashSet::new();
                for chunk in items.chunks(100) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO inbound_events (id, tenant_id, channel_id, idempotency_key, kind, content_type, payload, payload_encoding,
                                                     received_at, provider_message_id) ",
                    );
                    q.push_values(chunk, |mut row, (journal, msg)| {
                        row.push_bind($crate::domain::model::new_id())
                            .push_bind(ch.tenant_id.clone())
                            .push_bind(ch.channel_id.clone())
                            .push_bind(journal.idempotency_key.clone())
                            .push_bind(journal.kind.clone())
                            .push_bind(journal.content_type.clone())
                            .push_bind(journal.payload.as_slice())
                            .push_bind(journal.encoding.as_str())
                            .push_bind(now)
                            .push_bind(msg.provider_message_id.clone());
                    });
                    q.push(" ON CONFLICT (channel_id, idempotency_key) DO NOTHING RETURNING idempotency_key");
                    let keys: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
                    fresh.extend(keys);
                }
                // Dedupe by Message-ID: stored before, or twice in this batch.
                let ids: Vec<String> = items
                    .iter()
                    .filter(|(j, _)| fresh.contains(&j.idempotency_key))
                    .map(|(_, m)| m.provider_message_id.clone())
                    .collect();
                let mut known: HashSet<String> = HashSet::new();
                for chunk in ids.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT provider_message_id FROM messages WHERE channel_id = ");
                    q.push_bind(ch.channel_id.clone()).push(" AND provider_message_id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    let found: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
                    known.extend(found);
                }
                let mut todo: Vec<usize> = Vec::new();
                for (i, (journal, msg)) in items.iter().enumerate() {
                    if fresh.remove(&journal.idempotency_key) && known.insert(msg.provider_message_id.clone()) {
                        todo.push(i);
                    }
                }
                if todo.is_empty() {
                    return Ok(outcomes);
                }

                // Contacts: found by identity, or created (with their identity) in two statements.
                let mut contacts: HashMap<String, String> = HashMap::new();
                let mut names: HashMap<String, Option<String>> = HashMap::new();
                let addresses: Vec<String> = {
                    let mut seen = HashSet::new();
                    todo.iter().map(|&i| items[i].1.from.value.clone()).filter(|a| seen.insert(a.clone())).collect()
                };
                for chunk in addresses.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT i.value, i.contact_id, c.name FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
                          WHERE i.kind = 'email' AND c.merged_into IS NULL AND c.erased_at IS NULL AND i.tenant_id = ",
                    );
                    q.push_bind(ch.tenant_id.clone()).push(" AND i.value IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(Self::DIALECT.for_share);
                    let rows: Vec<(String, String, Option<String>)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (value, id, name) in rows {
                        names.insert(id.clone(), name);
                        contacts.insert(value, id);
                    }
                }
                let mut new_contacts: Vec<(String, String, Option<String>)> = Vec::new();
                for &i in &todo {
                    let msg = &items[i].1;
                    match contacts.get(&msg.from.value) {
                        Some(id) => {
                            if let (Some(name), Some(None)) = (msg.from_name.as_ref(), names.get(id)) {
                                sqlx::query("UPDATE contacts SET name = $1 WHERE id = $2 AND name IS NULL")
                                    .bind(name.clone())
                                    .bind(id.clone())
                                    .execute(&mut *conn)
                                    .await?;
                                names.insert(id.clone(), Some(name.clone()));
                            }
                        }
                        None => {
                            let id = $crate::domain::model::new_id();
                            contacts.insert(msg.from.value.clone(), id.clone());
                            names.insert(id.clone(), msg.from_name.clone());
                            new_contacts.push((id, msg.from.value.clone(), msg.from_name.clone()));
                        }
                    }
                }
                for chunk in new_contacts.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO contacts (id, tenant_id, name, created_at) ");
                    q.push_values(chunk, |mut row, (id, _, name)| {
                        row.push_bind(id.clone()).push_bind(ch.tenant_id.clone()).push_bind(name.clone()).push_bind(now);
                    });
                    q.build().execute(&mut *conn).await?;
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO contact_identities (tenant_id, kind, value, contact_id) ");
                    q.push_values(chunk, |mut row, (id, value, _)| {
                        row.push_bind(ch.tenant_id.clone()).push_bind("email").push_bind(value.clone()).push_bind(id.clone());
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING value");
                    let created: HashSet<String> = q.build_query_scalar().fetch_all(&mut *conn).await?.into_iter().collect();
                    // On PostgreSQL another channel of the tenant can create the same sender's
                    // identity concurrently: its contact wins, ours is removed unused.
                    let lost: Vec<&(String, String, Option<String>)> = chunk.iter().filter(|(_, v, _)| !created.contains(v)).collect();
                    if !lost.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "SELECT value, contact_id FROM contact_identities WHERE kind = 'email' AND tenant_id = ",
                        );
                        q.push_bind(ch.tenant_id.clone()).push(" AND value IN ");
                        super::sql_common::push_list(&mut q, lost.iter().map(|(_, v, _)| v.clone()));
                        let winners: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                        for (value, id) in winners {
                            contacts.insert(value, id);
                        }
                        let mut q = sqlx::QueryBuilder::<$db>::new("DELETE FROM contacts WHERE id IN ");
                        super::sql_common::push_list(&mut q, lost.iter().map(|(id, _, _)| id.clone()));
                        q.build().execute(&mut *conn).await?;
                    }
                }

                // Facts: every referenced id and reply token of the batch, looked up at once.
                let mut refs: Vec<String> = todo.iter().flat_map(|&i| items[i].1.reply_to.iter().take(50).cloned()).collect();
                refs.sort();
                refs.dedup();
                let mut by_pid: HashMap<String, String> = HashMap::new();
                let mut by_ref: HashMap<String, String> = HashMap::new();
                let mut conversations: HashMap<String, BatchConversation> = HashMap::new();
                let parse_status = |s: &str| {
                    ConversationStatus::parse(s).ok_or_else(|| $crate::store::StoreError::Corrupt(format!("conversation status {s:?}")))
                };
                for chunk in refs.chunks(400) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT m.provider_message_id, c.id, c.status FROM messages m JOIN conversations c ON c.id = m.conversation_id
                          WHERE m.channel_id = ",
                    );
                    q.push_bind(ch.channel_id.clone()).push(" AND m.provider_message_id IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    let rows: Vec<(String, String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (pid, conv, status) in rows {
                        conversations.insert(conv.clone(), BatchConversation { status: parse_status(&status)? });
                        by_pid.insert(pid, conv);
                    }
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT r.ref, c.id, c.status, MAX(m.created_at) FROM message_refs r
                           JOIN messages m ON m.id = r.message_id
                           JOIN conversations c ON c.id = m.conversation_id
                          WHERE r.channel_id = ",
                    );
                    q.push_bind(ch.channel_id.clone()).push(" AND r.ref IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    q.push(" GROUP BY r.ref, c.id, c.status");
                    let rows: Vec<(String, String, String, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    // The most recent conversation holding a message with that reference.
                    let mut latest: HashMap<String, i64> = HashMap::new();
                    for (r, conv, status, at) in rows {
                        conversations.insert(conv.clone(), BatchConversation { status: parse_status(&status)? });
                        if latest.get(&r).is_none_or(|&t| at > t) {
                            latest.insert(r.clone(), at);
                            by_ref.insert(r, conv);
                        }
                    }
                }
                let tokens: Vec<String> = todo.iter().filter_map(|&i| items[i].1.thread_token.clone()).filter(|t| !t.is_empty()).collect();
                let mut by_token: HashMap<String, String> = HashMap::new();
                if !tokens.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT reply_token, id, status FROM conversations WHERE channel_id = ");
                    q.push_bind(ch.channel_id.clone()).push(" AND reply_token IN ");
                    super::sql_common::push_list(&mut q, tokens.iter().cloned());
                    let rows: Vec<(String, String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (token, conv, status) in rows {
                        conversations.insert(conv.clone(), BatchConversation { status: parse_status(&status)? });
                        by_token.insert(token, conv);
                    }
                }

                // Subject candidates of mail naming no parent: the contacts' conversations with
                // those subject keys, with their messages' dates (the window is checked per
                // message).
                let mut db_subjects: HashMap<(String, String), Vec<(String, i64, Vec<i64>)>> = HashMap::new();
                if self.threading().subject_matching {
                    let wanted: HashSet<(String, String)> = todo
                        .iter()
                        .map(|&i| &items[i].1)
                        .filter(|m| m.reply_to.is_empty())
                        .filter_map(|m| {
                            let key = m.subject.as_deref().map($crate::domain::thread::subject_key).filter(|k| !k.is_empty())?;
                            Some((contacts.get(&m.from.value)?.clone(), key))
                        })
                        .collect();
                    let wanted_contacts: Vec<String> = wanted.iter().map(|(c, _)| c.clone()).collect::<HashSet<_>>().into_iter().collect();
                    let wanted_keys: Vec<String> = wanted.iter().map(|(_, k)| k.clone()).collect::<HashSet<_>>().into_iter().collect();
                    for contacts_chunk in wanted_contacts.chunks(300) {
                        for keys_chunk in wanted_keys.chunks(300) {
                            let mut q = sqlx::QueryBuilder::<$db>::new(
                                "SELECT c.id, c.status, c.contact_id, c.subject_key, c.last_message_at, COALESCE(m.sent_at, m.created_at)
                                   FROM conversations c JOIN messages m ON m.conversation_id = c.id
                                  WHERE c.channel_id = ",
                            );
                            q.push_bind(ch.channel_id.clone()).push(" AND c.contact_id IN ");
                            super::sql_common::push_list(&mut q, contacts_chunk.iter().cloned());
                            q.push(" AND c.subject_key IN ");
                            super::sql_common::push_list(&mut q, keys_chunk.iter().cloned());
                            let rows: Vec<(String, String, String, String, i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
                            for (id, status, contact, key, last, at) in rows {
                                let pair = (contact, key);
                                if !wanted.contains(&pair) {
                                    continue;
                                }
                                conversations.entry(id.clone()).or_insert(BatchConversation { status: parse_status(&status)? });
                                let convs = db_subjects.entry(pair).or_default();
                                match convs.iter_mut().find(|(c, _, _)| *c == id) {
                                    Some((_, _, dates)) => dates.push(at),
                                    None => convs.push((id, last, vec![at])),
                                }
                            }
                        }
                    }
                }

                // Decide, message by message, in the batch's order.
                let policy = self.threading();
                let candidate = |conv: &String, conversations: &HashMap<String, BatchConversation>| {
                    conversations.get(conv).map(|c| Candidate { id: conv.clone(), status: c.status })
                };
                let mut created: Vec<NewConversation> = Vec::new();
                // Conversations this batch opened, by (contact, subject key), oldest first, and
                // the dates of the batch's messages per conversation (the subject window).
                let mut batch_subjects: HashMap<(String, String), Vec<String>> = HashMap::new();
                let mut conversation_dates: HashMap<String, Vec<i64>> = HashMap::new();
                let mut reopened: Vec<String> = Vec::new();
                let mut placed: Vec<(usize, String, String, bool)> = Vec::new(); // (item, message id, conversation, created)
                for &i in &todo {
                    let msg = &items[i].1;
                    let contact = contacts.get(&msg.from.value).cloned().unwrap_or_default();
                    let mut facts = ThreadFacts::default();
                    let mine: Vec<&String> = msg.reply_to.iter().take(50).collect();
                    facts.replied_to = mine
                        .iter()
                        .find_map(|r| by_pid.get(*r).and_then(|c| candidate(c, &conversations)))
                        .or_else(|| mine.iter().find_map(|r| by_ref.get(*r).and_then(|c| candidate(c, &conversations))));
                    facts.by_token = msg.thread_token.as_ref().and_then(|t| by_token.get(t)).and_then(|c| candidate(c, &conversations));
                    let key = msg.subject.as_deref().map($crate::domain::thread::subject_key).unwrap_or_default();
                    if policy.subject_matching && !key.is_empty() && msg.reply_to.is_empty() && facts.replied_to.is_none() && facts.by_token.is_none() {
                        let at = msg.sent_at.map_or(now, |t| t.min(now));
                        let window = policy.subject_window_ms;
                        // As the per-message query: among the contact's conversations with this
                        // subject key that hold a message dated within the window, the one with
                        // the latest last message (conversations this batch touched: now).
                        let mut pool: Vec<(i64, String)> = Vec::new();
                        for (id, last, dates) in db_subjects.get(&(contact.clone(), key.clone())).into_iter().flatten() {
                            let batch_dates = conversation_dates.get(id);
                            let fits = dates.iter().chain(batch_dates.into_iter().flatten()).any(|t| (t - at).abs() <= window);
                            if fits {
                                pool.push((if batch_dates.is_some() { now } else { *last }, id.clone()));
                            }
                        }
                        for id in batch_subjects.get(&(contact.clone(), key.clone())).into_iter().flatten() {
                            if conversation_dates.get(id).is_some_and(|d| d.iter().any(|t| (t - at).abs() <= window)) {
                                pool.push((now, id.clone()));
                            }
                        }
                        facts.by_subject = pool.iter().max().and_then(|(_, id)| candidate(id, &conversations));
                    }
                    let (conversation, is_new) = match $crate::domain::thread::decide_with(&facts, &msg.flags, &policy) {
                        ThreadDecision::Join { conversation_id, new_status } => {
                            if let Some(status) = new_status {
                                if let Some(c) = conversations.get_mut(&conversation_id) {
                                    c.status = status;
                                }
                                reopened.push(conversation_id.clone());
                            }
                            (conversation_id, false)
                        }
                        ThreadDecision::New { status } => {
                            let id = $crate::domain::model::new_id();
                            conversations.insert(id.clone(), BatchConversation { status });
                            created.push(NewConversation {
                                id: id.clone(),
                                contact: contact.clone(),
                                kind: msg.from.kind.as_str().to_string(),
                                address: msg.from.value.clone(),
                                subject: msg.subject.clone(),
                                subject_key: msg.subject.as_deref().map($crate::domain::thread::subject_key),
                                status,
                            });
                            (id, true)
                        }
                    };
                    // What later messages of the batch can find.
                    by_pid.insert(msg.provider_message_id.clone(), conversation.clone());
                    for r in &mine {
                        by_ref.insert((*r).clone(), conversation.clone());
                    }
                    // Subject matching looks for the conversation's own contact and subject
                    // key, so only conversations opened here are indexed (a message joining
                    // by references keeps the conversation's key).
                    if is_new && let Some(k) = msg.subject.as_deref().map($crate::domain::thread::subject_key).filter(|k| !k.is_empty()) {
                        batch_subjects.entry((contact, k)).or_default().push(conversation.clone());
                    }
                    conversation_dates
                        .entry(conversation.clone())
                        .or_default()
                        .push(msg.sent_at.unwrap_or(now));
                    placed.push((i, $crate::domain::model::new_id(), conversation, is_new));
                }

                // Apply: conversations, participants, messages, references, attachments.
                for chunk in created.chunks(100) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, contact_kind, contact_address, subject, status,
                                                    last_message_at, created_at, updated_at, subject_key, reply_token) ",
                    );
                    q.push_values(chunk, |mut row, c| {
                        row.push_bind(c.id.clone())
                            .push_bind(ch.tenant_id.clone())
                            .push_bind(ch.channel_id.clone())
                            .push_bind(c.contact.clone())
                            .push_bind(c.kind.clone())
                            .push_bind(c.address.clone())
                            .push_bind(c.subject.clone())
                            .push_bind(c.status.as_str())
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(c.subject_key.clone())
                            .push_bind($crate::domain::thread::new_reply_token());
                    });
                    q.build().execute(&mut *conn).await?;
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO participants (conversation_id, tenant_id, kind, ref_id, joined_at) ");
                    q.push_values(chunk, |mut row, c| {
                        row.push_bind(c.id.clone()).push_bind(ch.tenant_id.clone()).push_bind("contact").push_bind(c.contact.clone()).push_bind(now);
                    });
                    q.build().execute(&mut *conn).await?;
                }
                reopened.sort();
                reopened.dedup();
                for id in &reopened {
                    if let Some(c) = conversations.get(id) {
                        sqlx::query("UPDATE conversations SET status = $1 WHERE id = $2")
                            .bind(c.status.as_str())
                            .bind(id.clone())
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                for chunk in placed.chunks(50) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, direction, sender_kind, sender, recipients,
                                               subject, text_body, html_body, external, provider_message_id, delivery_status, status_rank,
                                               flags, spam, in_reply_to, sent_at, created_at, updated_at) ",
                    );
                    q.push_values(chunk, |mut row, (i, id, conv, _)| {
                        let msg = &items[*i].1;
                        let recipients = serde_json::json!({ "from": [msg.from.value], "to": msg.to, "cc": msg.cc });
                        row.push_bind(id.clone())
                            .push_bind(ch.tenant_id.clone())
                            .push_bind(ch.channel_id.clone())
                            .push_bind(conv.clone())
                            .push_bind("inbound")
                            .push_bind("contact")
                            .push_bind(msg.from.value.clone())
                            .push_bind(sqlx::types::Json(recipients))
                            .push_bind(msg.subject.as_deref())
                            .push_bind(msg.text.as_deref())
                            .push_bind(msg.html.as_deref())
                            .push_bind(sqlx::types::Json(&msg.external))
                            .push_bind(msg.provider_message_id.clone())
                            .push_bind("received")
                            .push_bind(0i64)
                            .push_bind(sqlx::types::Json(&msg.flags))
                            .push_bind($crate::domain::thread::is_spam(&msg.flags))
                            .push_bind(msg.reply_to.first().cloned())
                            .push_bind(msg.sent_at)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    let r = q.build().execute(&mut *conn).await?;
                    if r.rows_affected() != chunk.len() as u64 {
                        return Err($crate::store::StoreError::Corrupt("a mail batch lost a message insert".into()));
                    }
                }
                let ref_rows: Vec<(String, String)> = placed
                    .iter()
                    .flat_map(|(i, id, _, _)| items[*i].1.reply_to.iter().take(100).map(move |r| (id.clone(), r.clone())))
                    .collect();
                for chunk in ref_rows.chunks(300) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO message_refs (message_id, channel_id, ref) ");
                    q.push_values(chunk, |mut row, (id, r)| {
                        row.push_bind(id.clone()).push_bind(ch.channel_id.clone()).push_bind(r.clone());
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *conn).await?;
                }
                let attachment_rows: Vec<(String, String, &$crate::domain::model::InboundAttachment)> = placed
                    .iter()
                    .flat_map(|(i, id, _, _)| {
                        items[*i].1.attachments.iter().map(move |a| (a.id.clone().unwrap_or_else($crate::domain::model::new_id), id.clone(), a))
                    })
                    .collect();
                Self::insert_attachments(&mut *conn, ch, &attachment_rows, now).await?;

                // Counters (late parents adopting earlier replies move them, below).
                let mut counts: Vec<(String, i64, i64)> = Vec::new(); // (conversation, messages, unread)
                for (i, _, conv, _) in &placed {
                    let bump = i64::from(!$crate::domain::thread::is_quiet(&items[*i].1.flags));
                    match counts.iter_mut().find(|(c, _, _)| c == conv) {
                        Some(entry) => {
                            entry.1 += 1;
                            entry.2 += bump;
                        }
                        None => counts.push((conv.clone(), 1, bump)),
                    }
                }
                for chunk in counts.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE conversations SET message_count = message_count + v.column2, unread_count = unread_count + v.column3, last_message_at = ");
                    q.push_bind(now).push(", last_inbound_at = ").push_bind(now).push(", updated_at = ").push_bind(now);
                    q.push(" FROM (");
                    q.push_values(chunk, |mut row, (conv, n, unread)| {
                        row.push_bind(conv.clone()).push_bind(*n).push_bind(*unread);
                    });
                    q.push(") AS v WHERE conversations.id = v.column1");
                    q.build().execute(&mut *conn).await?;
                    let unread: Vec<&(String, i64, i64)> = chunk.iter().filter(|(_, _, u)| *u > 0).collect();
                    if !unread.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE participants SET unread_count = unread_count + v.column2 FROM (");
                        q.push_values(unread, |mut row, (conv, _, u)| {
                            row.push_bind(conv.clone()).push_bind(*u);
                        });
                        q.push(") AS v WHERE participants.conversation_id = v.column1 AND participants.kind = 'staff'");
                        q.build().execute(&mut *conn).await?;
                    }
                }
                // Events, in the batch's order: conversation events carry the conversation's
                // state (after the batch), as `insert_event` gives them.
                let mut touched: Vec<String> = placed.iter().map(|(_, _, c, _)| c.clone()).collect();
                touched.sort();
                touched.dedup();
                let mut states: HashMap<String, (String, Option<String>, i64, i64, i64)> = HashMap::new();
                for chunk in touched.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, status, assignee, unread_count, message_count, last_message_at FROM conversations WHERE id IN ",
                    );
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    let rows: Vec<(String, String, Option<String>, i64, i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (id, status, assignee, unread, count, last) in rows {
                        states.insert(id, (status, assignee, unread, count, last));
                    }
                }
                let mut events: Vec<(&'static str, serde_json::Value)> = Vec::with_capacity(placed.len() * 2);
                for (n, (i, id, conv, is_new)) in placed.iter().enumerate() {
                    let ids = serde_json::json!({ "conversation_id": conv, "message_id": id, "channel_id": ch.channel_id });
                    // One conversation event per conversation and batch: `created` for a new
                    // one, else `updated` with its last message.
                    let last_for_conv = !placed[n + 1..].iter().any(|(_, _, c, _)| c == conv);
                    if *is_new || last_for_conv {
                        let mut payload = ids.clone();
                        if let (Some((status, assignee, unread, count, last)), Some(o)) = (states.get(conv), payload.as_object_mut()) {
                            o.insert("status".into(), status.clone().into());
                            o.insert("assignee".into(), assignee.clone().into());
                            o.insert("unread_count".into(), (*unread).into());
                            o.insert("message_count".into(), (*count).into());
                            o.insert("last_message_at".into(), $crate::domain::model::format_millis(*last).into());
                        }
                        events.push((if *is_new { "conversation.created" } else { "conversation.updated" }, payload));
                    }
                    events.push(("message.created", ids));
                    outcomes[*i] = IngestOutcome::Stored {
                        message_id: id.clone(),
                        conversation_id: conv.clone(),
                        created_conversation: *is_new,
                    };
                }
                let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
                let mut seq = if count > 0 { Self::reserve_event_seqs(&mut *conn, &ch.tenant_id, count).await? - count } else { 0 };
                for chunk in events.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO events (tenant_id, seq, type, payload, created_at) ");
                    q.push_values(chunk, |mut row, (kind, payload)| {
                        seq += 1;
                        row.push_bind(ch.tenant_id.clone()).push_bind(seq).push_bind(*kind).push_bind(sqlx::types::Json(payload.clone())).push_bind(now);
                    });
                    q.build().execute(&mut *conn).await?;
                }
                // Late parents adopt earlier replies after the batch's events, as message by
                // message ingest does: consumers see a conversation created, its messages, and
                // then `conversation.merged`, never a merge of a conversation not yet announced.
                let pids: Vec<String> = placed.iter().map(|(i, _, _, _)| items[*i].1.provider_message_id.clone()).collect();
                // Which of the batch's messages other messages refer to, and from which
                // conversations: only a parent whose replies sit elsewhere adopts them.
                let mut referrers: HashMap<String, Vec<String>> = HashMap::new();
                for chunk in pids.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT DISTINCT r.ref, m.conversation_id FROM message_refs r JOIN messages m ON m.id = r.message_id WHERE r.channel_id = ",
                    );
                    q.push_bind(ch.channel_id.clone()).push(" AND r.ref IN ");
                    super::sql_common::push_list(&mut q, chunk.iter().cloned());
                    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                    for (r, conv) in rows {
                        referrers.entry(r).or_default().push(conv);
                    }
                }
                let mut merged = false;
                for (i, id, conv, _) in &placed {
                    let pid = &items[*i].1.provider_message_id;
                    let elsewhere = referrers.get(pid).is_some_and(|convs| convs.iter().any(|c| c != conv));
                    if elsewhere || (merged && referrers.contains_key(pid)) {
                        // Where the parent is now (an earlier adoption may have moved it).
                        let into: String = sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
                            .bind(id.clone())
                            .fetch_one(&mut *conn)
                            .await?;
                        Self::adopt_orphans(&mut *conn, &ch.tenant_id, &ch.channel_id, pid, &into, now).await?;
                        merged = true;
                    }
                }

                if let Some(notify) = Self::DIALECT.notify_events {
                    sqlx::query(notify).bind(ch.tenant_id.clone()).execute(&mut *conn).await?;
                }
                Ok(outcomes)
            }
        }
    };
}
pub(crate) use impl_mail_batch;
