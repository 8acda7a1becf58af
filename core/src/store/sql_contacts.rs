//! The first steps of ingest: the journal insert that decides duplicates, and contact
//! resolution that is safe under concurrent deliveries, merges and erasures.

macro_rules! impl_journal_and_contact_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts the journal row; false if the key was seen before (a duplicate).
            /// `about` is the provider id of the message the entry is about (the message
            /// itself, or the one a status or reaction refers to): erasure finds a
            /// contact's raw deliveries by it.
            async fn journal_insert(
                conn: &mut <$db as sqlx::Database>::Connection,
                ch: &$crate::contract::ingest_types::ChannelRef,
                journal: &$crate::contract::journal::JournalEntry,
                about: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let r = sqlx::query(
                    "INSERT INTO inbound_events (id, tenant_id, channel_id, idempotency_key, kind, content_type, payload, payload_encoding,
                                                 received_at, provider_message_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (channel_id, idempotency_key) DO NOTHING",
                )
                .bind($crate::domain::model::new_id())
                .bind(&ch.tenant_id)
                .bind(&ch.channel_id)
                .bind(&journal.idempotency_key)
                .bind(&journal.kind)
                .bind(&journal.content_type)
                .bind(journal.payload.as_slice())
                .bind(journal.encoding.as_str())
                .bind(now)
                .bind(about.map(str::to_string))
                .execute(&mut *conn)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            /// Finds or creates the contact behind an identity and (PostgreSQL) locks its row
            /// for the rest of the transaction. Merging and erasing lock the contact first,
            /// so a delivery that found the identity just before one of them committed sees
            /// the contact merged or erased once it holds the lock, and resolves the
            /// identity again: to the survivor, or to a new contact.
            async fn resolve_and_lock_contact(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                identity: &$crate::domain::model::Identity,
                name: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<String> {
                for _ in 0..3 {
                    let id = Self::resolve_contact(&mut *conn, tenant, identity, name, now).await?;
                    let Some(lock) = Self::DIALECT.lock_contact else {
                        return Ok(id);
                    };
                    let state: Option<(Option<String>, Option<i64>)> =
                        sqlx::query_as(lock).bind(&id).fetch_optional(&mut *conn).await?;
                    if matches!(state, Some((None, None))) {
                        return Ok(id);
                    }
                }
                Err($crate::store::StoreError::Unavailable("the contact kept changing; try again".into()))
            }

            /// Finds or creates the contact behind an identity. Safe under concurrency: the
            /// identity's primary key decides, and a losing insert is undone.
            async fn resolve_contact(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                identity: &$crate::domain::model::Identity,
                name: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<String> {
                let find = || {
                    sqlx::query_as::<$db, (String, Option<String>)>(
                        "SELECT i.contact_id, c.name FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
                          WHERE i.tenant_id = $1 AND i.kind = $2 AND i.value = $3",
                    )
                    .bind(tenant.to_string())
                    .bind(identity.kind.as_str())
                    .bind(identity.value.clone())
                };
                if let Some((id, known_name)) = find().fetch_optional(&mut *conn).await? {
                    // Only a contact without a name gets one (no statement otherwise).
                    if let (Some(name), None) = (name, known_name) {
                        sqlx::query("UPDATE contacts SET name = $1 WHERE id = $2 AND name IS NULL")
                            .bind(name.to_string())
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    return Ok(id);
                }
                let id = $crate::domain::model::new_id();
                sqlx::query("INSERT INTO contacts (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&id)
                    .bind(tenant.to_string())
                    .bind(name.map(str::to_string))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                let r = sqlx::query(
                    "INSERT INTO contact_identities (tenant_id, kind, value, contact_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (tenant_id, kind, value) DO NOTHING",
                )
                .bind(tenant.to_string())
                .bind(identity.kind.as_str())
                .bind(identity.value.clone())
                .bind(&id)
                .execute(&mut *conn)
                .await?;
                if r.rows_affected() == 1 {
                    return Ok(id);
                }
                // Another transaction created the identity first: use its contact.
                sqlx::query("DELETE FROM contacts WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                find()
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|(id, _)| id)
                    .ok_or($crate::store::StoreError::Corrupt("identity vanished".into()))
            }
        }
    };
}
pub(crate) use impl_journal_and_contact_queries;
