//! Ingest queries, written once for both databases: journal → dedupe → contact → thread
//! decision → flags → persist → event, each delivery in one transaction.
//!
//! The macro expands to an `IngestStore` impl for a store type whose `writer()` returns the
//! pool to write through and whose `DIALECT` names the dialect-specific statements.

macro_rules! impl_ingest_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Applies one inbound message within the caller's transaction. `None` means a
            /// concurrent delivery of the same message won a race after this one had begun
            /// writing: the caller must roll back (the whole transaction, or its savepoint).
            async fn ingest_one(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                msg: &$crate::domain::model::InboundMessage,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::contract::ingest_types::IngestOutcome>> {
                use $crate::contract::ingest_types::IngestOutcome;
                use $crate::domain::thread::ThreadDecision;
                if !Self::journal_insert(&mut *conn, ch, journal, Some(&msg.provider_message_id), now).await? {
                    return Ok(Some(IngestOutcome::Duplicate));
                }
                let known: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM messages WHERE channel_id = $1 AND provider_message_id = $2",
                )
                .bind(&ch.channel_id)
                .bind(&msg.provider_message_id)
                .fetch_optional(&mut *conn)
                .await?;
                if known.is_some() {
                    // The same message under another delivery key: keep the journal row only.
                    return Ok(Some(IngestOutcome::Duplicate));
                }
                let contact = Self::resolve_and_lock_contact(&mut *conn, &ch.tenant_id, &msg.from, msg.from_name.as_deref(), now).await?;
                match msg.consent {
                    Some($crate::domain::model::Consent::OptOut) | Some($crate::domain::model::Consent::OptIn) => {
                        let at = (msg.consent == Some($crate::domain::model::Consent::OptOut)).then_some(now);
                        sqlx::query("UPDATE contact_identities SET opted_out_at = $1 WHERE tenant_id = $2 AND kind = $3 AND value = $4")
                            .bind(at)
                            .bind(&ch.tenant_id)
                            .bind(msg.from.kind.as_str())
                            .bind(&msg.from.value)
                            .execute(&mut *conn)
                            .await?;
                    }
                    None => {}
                }
                let policy = self.threading();
                let facts = Self::thread_facts(&mut *conn, &ch.channel_id, ch.threading, &contact, msg, &policy, now).await?;
                let decision = $crate::domain::thread::decide_with(&facts, &msg.flags, &policy);
                let quiet = $crate::domain::thread::is_quiet(&msg.flags);
                let spam = $crate::domain::thread::is_spam(&msg.flags);
                let (conversation_id, created) = match decision {
                    ThreadDecision::Join { conversation_id, new_status } => {
                        if let Some(status) = new_status {
                            sqlx::query("UPDATE conversations SET status = $1 WHERE id = $2")
                                .bind(status.as_str())
                                .bind(&conversation_id)
                                .execute(&mut *conn)
                                .await?;
                        }
                        (conversation_id, false)
                    }
                    ThreadDecision::New { status } => {
                        let id = $crate::domain::model::new_id();
                        sqlx::query(
                            "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, contact_kind, contact_address, subject, status,
                                                        last_message_at, created_at, updated_at, subject_key, reply_token)
                             VALUES ($1, $2, $3, $4, $8, $9, $5, $6, $7, $7, $7, $10, $11)",
                        )
                        .bind(&id)
                        .bind(&ch.tenant_id)
                        .bind(&ch.channel_id)
                        .bind(&contact)
                        .bind(msg.subject.clone())
                        .bind(status.as_str())
                        .bind(now)
                        .bind(msg.from.kind.as_str())
                        .bind(&msg.from.value)
                        .bind(msg.subject.as_deref().map($crate::domain::thread::subject_key))
                        .bind($crate::domain::thread::new_reply_token())
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query(
                            "INSERT INTO participants (conversation_id, tenant_id, kind, ref_id, joined_at) VALUES ($1, $2, 'contact', $3, $4)",
                        )
                        .bind(&id)
                        .bind(&ch.tenant_id)
                        .bind(&contact)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        (id, true)
                    }
                };
                let message_id = $crate::domain::model::new_id();
                let recipients = serde_json::json!({
                    "from": [msg.from.value],
                    "to": msg.to,
                    "cc": msg.cc,
                });
                let flags: Vec<$crate::domain::model::Flag> = msg.flags.clone();
                let inserted = sqlx::query(
                    "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, direction, sender_kind, sender, recipients,
                                           subject, text_body, html_body, external, provider_message_id, delivery_status, status_rank,
                                           flags, spam, in_reply_to, sent_at, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'inbound', 'contact', $5, $6, $7, $8, $9, $10, $11, 'received', 0, $12, $13, $14, $15, $16, $16)
                     ON CONFLICT (channel_id, provider_message_id) DO NOTHING",
                )
                .bind(&message_id)
                .bind(&ch.tenant_id)
                .bind(&ch.channel_id)
                .bind(&conversation_id)
                .bind(&msg.from.value)
                .bind(sqlx::types::Json(recipients))
                .bind(msg.subject.clone())
                .bind(msg.text.clone())
                .bind(msg.html.clone())
                .bind(sqlx::types::Json(msg.external.clone()))
                .bind(&msg.provider_message_id)
                .bind(sqlx::types::Json(flags))
                .bind(spam)
                .bind(msg.reply_to.first().cloned())
                .bind(msg.sent_at)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                if inserted.rows_affected() == 0 {
                    // Lost a race with a concurrent delivery of the same message.
                    return Ok(None);
                }
                if !msg.reply_to.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO message_refs (message_id, channel_id, ref) ");
                    q.push_values(msg.reply_to.iter().take(100), |mut row, r| {
                        row.push_bind(message_id.clone()).push_bind(ch.channel_id.clone()).push_bind(r.clone());
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *conn).await?;
                }
                Self::adopt_orphans(&mut *conn, &ch.tenant_id, &ch.channel_id, &msg.provider_message_id, &conversation_id, now).await?;
                let attachments: Vec<(String, String, &$crate::domain::model::InboundAttachment)> = msg
                    .attachments
                    .iter()
                    .map(|a| (a.id.clone().unwrap_or_else($crate::domain::model::new_id), message_id.clone(), a))
                    .collect();
                Self::insert_attachments(&mut *conn, ch, &attachments, now).await?;
                let bump: i64 = if quiet { 0 } else { 1 };
                // A provider's reply window (WhatsApp's 24 hours) runs from when the contact
                // sent the message, not from when it reached us: a delivery retried for hours
                // must not reopen it. A timestamp in the future counts as now, and a late,
                // older message never moves the window back.
                let inbound_at = msg.sent_at.map_or(now, |t| t.min(now));
                sqlx::query(
                    "UPDATE conversations SET message_count = message_count + 1, unread_count = unread_count + $1,
                            last_message_at = $2, updated_at = $2,
                            last_inbound_at = CASE WHEN last_inbound_at IS NULL OR last_inbound_at < $4 THEN $4 ELSE last_inbound_at END
                      WHERE id = $3",
                )
                .bind(bump)
                .bind(now)
                .bind(&conversation_id)
                .bind(inbound_at)
                .execute(&mut *conn)
                .await?;
                if bump > 0 {
                    sqlx::query("UPDATE participants SET unread_count = unread_count + 1 WHERE conversation_id = $1 AND kind = 'staff'")
                        .bind(&conversation_id)
                        .execute(&mut *conn)
                        .await?;
                }
                let ids = serde_json::json!({
                    "conversation_id": conversation_id,
                    "message_id": message_id,
                    "channel_id": ch.channel_id,
                });
                if created {
                    Self::insert_event(&mut *conn, &ch.tenant_id, "conversation.created", ids.clone(), now).await?;
                } else {
                    Self::insert_event(&mut *conn, &ch.tenant_id, "conversation.updated", ids.clone(), now).await?;
                }
                Self::insert_event(&mut *conn, &ch.tenant_id, "message.created", ids, now).await?;
                Ok(Some(IngestOutcome::Stored {
                    message_id,
                    conversation_id,
                    created_conversation: created,
                }))
            }

            /// Applies one delivery status report within the caller's transaction.
            async fn status_one(
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                update: &$crate::domain::model::StatusUpdate,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::contract::ingest_types::StatusOutcome> {
                use $crate::contract::ingest_types::StatusOutcome;
                if !Self::journal_insert(&mut *conn, ch, journal, Some(&update.provider_message_id), now).await? {
                    return Ok(StatusOutcome::Duplicate);
                }
                // The conversation too: the event names it (insert_event would look it up).
                let message: Option<(String, String)> = sqlx::query_as(
                    "SELECT id, conversation_id FROM messages WHERE channel_id = $1 AND provider_message_id = $2",
                )
                .bind(&ch.channel_id)
                .bind(&update.provider_message_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((message_id, conversation_id)) = message else {
                    // Possibly a report that overtook our own record of the send: park it.
                    sqlx::query(
                        "INSERT INTO pending_statuses (channel_id, provider_message_id, status, status_rank, error_code, error_message, received_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&ch.channel_id)
                    .bind(&update.provider_message_id)
                    .bind(update.status.as_str())
                    .bind(update.status.rank())
                    .bind(update.error_code.clone())
                    .bind(update.error_message.clone())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    return Ok(StatusOutcome::UnknownMessage);
                };
                let moved = Self::advance_status(
                    &mut *conn,
                    &message_id,
                    update.status,
                    update.error_code.as_deref(),
                    update.error_message.as_deref(),
                    now,
                )
                .await?;
                if moved {
                    Self::insert_event(
                        &mut *conn,
                        &ch.tenant_id,
                        "message.updated",
                        serde_json::json!({ "message_id": message_id, "conversation_id": conversation_id, "delivery_status": update.status.as_str() }),
                        now,
                    )
                    .await?;
                }
                Ok(if moved {
                    StatusOutcome::Applied { message_id }
                } else {
                    StatusOutcome::Stale { message_id }
                })
                        }

            /// Applies one reaction within the caller's transaction.
            async fn reaction_one(
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                reaction: &$crate::domain::model::ReactionUpdate,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::contract::ingest_types::ReactionOutcome> {
                use $crate::contract::ingest_types::ReactionOutcome;
                if !Self::journal_insert(&mut *conn, ch, journal, Some(&reaction.target_provider_id), now).await? {
                    return Ok(ReactionOutcome::Duplicate);
                }
                let target: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM messages WHERE channel_id = $1 AND provider_message_id = $2",
                )
                .bind(&ch.channel_id)
                .bind(&reaction.target_provider_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(message_id) = target else {
                    return Ok(ReactionOutcome::UnknownMessage);
                };
                match reaction.emoji.as_deref().filter(|e| !e.is_empty()) {
                    Some(emoji) => {
                        // A later reaction replaces the earlier one; an older one arriving late
                        // (Meta retries for days) does not overwrite a newer one.
                        sqlx::query(
                            "INSERT INTO reactions (message_id, tenant_id, sender, emoji, provider_message_id, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (message_id, sender) DO UPDATE
                               SET emoji = excluded.emoji, provider_message_id = excluded.provider_message_id,
                                   updated_at = excluded.updated_at
                             WHERE reactions.updated_at <= excluded.updated_at",
                        )
                        .bind(&message_id)
                        .bind(&ch.tenant_id)
                        .bind(&reaction.from.value)
                        .bind(emoji.to_string())
                        .bind(&reaction.provider_message_id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND sender = $2")
                            .bind(&message_id)
                            .bind(&reaction.from.value)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                Self::insert_event(
                    &mut *conn,
                    &ch.tenant_id,
                    "message.updated",
                    serde_json::json!({ "message_id": message_id, "reaction": reaction.emoji, "from": reaction.from.value }),
                    now,
                )
                .await?;
                Ok(ReactionOutcome::Applied { message_id })
                        }
        }

        #[async_trait::async_trait]
        impl $crate::store::IngestStore for $store {
            async fn ingest_message(
                &self,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                msg: &$crate::domain::model::InboundMessage,
            ) -> $crate::store::StoreResult<$crate::contract::ingest_types::IngestOutcome> {
                if self.group.is_open() {
                    let write = $crate::store::group_commit::Write::Message {
                        channel: ch.clone(),
                        journal: journal.clone(),
                        msg: Box::new(msg.clone()),
                    };
                    return match self.group.submit(write).await? {
                        $crate::store::group_commit::Written::Message(outcome) => Ok(outcome),
                        other => Err($crate::store::StoreError::Corrupt(format!("writer answered {other:?}"))),
                    };
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                match self.ingest_one(&mut tx, ch, journal, msg, now).await? {
                    Some(outcome) => {
                        tx.commit().await?;
                        Ok(outcome)
                    }
                    None => {
                        tx.rollback().await?;
                        Ok($crate::contract::ingest_types::IngestOutcome::Duplicate)
                    }
                }
            }

            async fn ingest_mail_batch(
                &self,
                ch: &$crate::contract::ingest_types::ChannelRef,
                position: &$crate::contract::ingest_types::FolderPosition,
                items: &[($crate::contract::journal::JournalEntry, $crate::domain::model::InboundMessage)],
            ) -> $crate::store::StoreResult<Vec<$crate::contract::ingest_types::IngestOutcome>> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let mut outcomes = Vec::with_capacity(items.len());
                let set_based = $crate::store::sql_mail_batch::set_based(ch, items);
                if set_based {
                    outcomes = self.ingest_mail_set(&mut tx, ch, items, now).await?;
                }
                for (journal, msg) in items.iter().filter(|_| !set_based) {
                    if !Self::DIALECT.batch_savepoints {
                        // One writer: no concurrent delivery can win a race. Should one
                        // anyway, the whole batch rolls back and is fetched again.
                        let outcome = self.ingest_one(&mut tx, ch, journal, msg, now).await?;
                        outcomes.push(outcome.ok_or_else(|| {
                            $crate::store::StoreError::Corrupt("a concurrent write raced a mail batch".into())
                        })?);
                        continue;
                    }
                    // A savepoint per message: a lost race undoes only that message.
                    let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                    match self.ingest_one(&mut sp, ch, journal, msg, now).await? {
                        Some(outcome) => {
                            sp.commit().await?;
                            outcomes.push(outcome);
                        }
                        None => {
                            sp.rollback().await?;
                            outcomes.push($crate::contract::ingest_types::IngestOutcome::Duplicate);
                        }
                    }
                }
                let stored = outcomes.iter().filter(|o| matches!(o, $crate::contract::ingest_types::IngestOutcome::Stored { .. })).count();
                // The cursor moves in the same transaction as the messages it covers.
                sqlx::query(
                    "INSERT INTO sync_cursors (channel_id, folder, uidvalidity, last_uid, highestmodseq, seen, stored)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (channel_id, folder) DO UPDATE SET
                        last_uid = CASE WHEN sync_cursors.uidvalidity = excluded.uidvalidity
                                        AND sync_cursors.last_uid > excluded.last_uid
                                        THEN sync_cursors.last_uid ELSE excluded.last_uid END,
                        uidvalidity = excluded.uidvalidity,
                        highestmodseq = COALESCE(excluded.highestmodseq, sync_cursors.highestmodseq),
                        seen = sync_cursors.seen + excluded.seen, stored = sync_cursors.stored + excluded.stored",
                )
                .bind(&ch.channel_id)
                .bind(&position.folder)
                .bind(position.uidvalidity)
                .bind(position.last_uid)
                .bind(position.highestmodseq)
                .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
                .bind(i64::try_from(stored).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.after_mail_batch(stored).await;
                Ok(outcomes)
            }

            async fn ingest_status(
                &self,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                update: &$crate::domain::model::StatusUpdate,
            ) -> $crate::store::StoreResult<$crate::contract::ingest_types::StatusOutcome> {
                if self.group.is_open() {
                    let write = $crate::store::group_commit::Write::Status {
                        channel: ch.clone(),
                        journal: journal.clone(),
                        update: update.clone(),
                    };
                    return match self.group.submit(write).await? {
                        $crate::store::group_commit::Written::Status(outcome) => Ok(outcome),
                        other => Err($crate::store::StoreError::Corrupt(format!("writer answered {other:?}"))),
                    };
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let outcome = Self::status_one(&mut tx, ch, journal, update, now).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn ingest_reaction(
                &self,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                reaction: &$crate::domain::model::ReactionUpdate,
            ) -> $crate::store::StoreResult<$crate::contract::ingest_types::ReactionOutcome> {
                if self.group.is_open() {
                    let write = $crate::store::group_commit::Write::Reaction {
                        channel: ch.clone(),
                        journal: journal.clone(),
                        reaction: reaction.clone(),
                    };
                    return match self.group.submit(write).await? {
                        $crate::store::group_commit::Written::Reaction(outcome) => Ok(outcome),
                        other => Err($crate::store::StoreError::Corrupt(format!("writer answered {other:?}"))),
                    };
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let outcome = Self::reaction_one(&mut tx, ch, journal, reaction, now).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn journal_only(
                &self,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
            ) -> $crate::store::StoreResult<bool> {
                if self.group.is_open() {
                    let write = $crate::store::group_commit::Write::JournalOnly {
                        channel: ch.clone(),
                        journal: journal.clone(),
                    };
                    return match self.group.submit(write).await? {
                        $crate::store::group_commit::Written::Journal(fresh) => Ok(fresh),
                        other => Err($crate::store::StoreError::Corrupt(format!("writer answered {other:?}"))),
                    };
                }
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let fresh = Self::journal_insert(&mut tx, ch, journal, None, now).await?;
                tx.commit().await?;
                Ok(fresh)
            }

            async fn journal_entries(
                &self,
                channel_id: &str,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::contract::journal::JournalEntry>> {
                let rows: Vec<(String, String, String, Vec<u8>, String)> = sqlx::query_as(
                    "SELECT idempotency_key, kind, content_type, payload, payload_encoding FROM inbound_events
                      WHERE channel_id = $1 ORDER BY received_at, id LIMIT $2",
                )
                .bind(channel_id)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map(|(idempotency_key, kind, content_type, payload, encoding)| {
                        let encoding = $crate::contract::journal::PayloadEncoding::parse(&encoding).ok_or_else(|| {
                            $crate::store::StoreError::Corrupt(format!("journal payload encoding {encoding:?}"))
                        })?;
                        Ok($crate::contract::journal::JournalEntry { idempotency_key, kind, content_type, payload, encoding })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use impl_ingest_store;
