//! The writer side of group commit (see [`super::group_commit`]), written once for both
//! databases: each writer task takes a batch of queued deliveries, applies them in one
//! transaction with a savepoint per item, commits, then answers every delivery.
//!
//! A transaction that fails as a whole (a PostgreSQL deadlock or serialization failure
//! between two writers) is tried again once; after that every delivery of the batch is
//! answered with an error (the providers retry). An item that fails alone is rolled back to
//! its savepoint and answered with its error; the others commit.

macro_rules! impl_group_commit {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Starts `writers` writer tasks; deliveries go through the queue from now on.
            /// A second call does nothing.
            pub(crate) fn start_writers(self: &std::sync::Arc<Self>, writers: usize) {
                let Some(rx) = self.group.open() else {
                    return;
                };
                for _ in 0..writers.max(1) {
                    let store = std::sync::Arc::downgrade(self);
                    let rx = rx.clone();
                    tokio::spawn(async move {
                        while let Some(batch) = $crate::store::group_commit::take_batch(&rx).await {
                            // The queue's sender lives in the store: a batch arrives only
                            // while the store does.
                            let Some(store) = store.upgrade() else {
                                break;
                            };
                            store.apply_group(batch).await;
                        }
                    });
                }
            }

            /// Applies a batch in one transaction and answers each delivery after commit.
            async fn apply_group(&self, mut batch: Vec<$crate::store::group_commit::Queued>) {
                batch.sort_by(|a, b| a.write.sort_key().cmp(&b.write.sort_key()));
                let mut attempt = 0;
                let outcomes = loop {
                    attempt += 1;
                    match self.try_group(&batch).await {
                        Ok(outcomes) => break outcomes,
                        Err(e) if attempt < 2 && Self::retryable(&e) => {
                            tracing::debug!(error = %e, items = batch.len(), "group commit raced another writer; trying again");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, items = batch.len(), "group commit failed");
                            $crate::store::group_commit::fail_all(batch, &e);
                            return;
                        }
                    }
                };
                metrics::counter!($crate::infra::metrics::GROUP_COMMITS).increment(1);
                metrics::counter!($crate::infra::metrics::GROUP_COMMIT_ITEMS).increment(batch.len() as u64);
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = queued.reply.send(outcome);
                }
            }

            /// A deadlock or serialization failure: the whole transaction may simply be
            /// tried again.
            fn retryable(e: &$crate::store::StoreError) -> bool {
                match e {
                    $crate::store::StoreError::Database(sqlx::Error::Database(db)) => {
                        matches!(db.code().as_deref(), Some("40P01" | "40001"))
                    }
                    _ => false,
                }
            }

            /// One transaction over the batch; per-item results, or the error that failed
            /// the transaction.
            async fn try_group(
                &self,
                batch: &[$crate::store::group_commit::Queued],
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoreResult<$crate::store::group_commit::Written>>> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let mut outcomes = Vec::with_capacity(batch.len());
                if let [only] = batch {
                    // Alone: no savepoint needed, the transaction is the item's.
                    let outcome = match self.apply_write(&mut tx, &only.write, now).await? {
                        Some(written) => written,
                        None => {
                            tx.rollback().await?;
                            return Ok(vec![Ok(Self::lost_race(&only.write))]);
                        }
                    };
                    tx.commit().await?;
                    return Ok(vec![Ok(outcome)]);
                }
                for queued in batch {
                    let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                    match self.apply_write(&mut sp, &queued.write, now).await {
                        Ok(Some(written)) => {
                            sp.commit().await?;
                            outcomes.push(Ok(written));
                        }
                        Ok(None) => {
                            sp.rollback().await?;
                            outcomes.push(Ok(Self::lost_race(&queued.write)));
                        }
                        Err(e) if Self::retryable(&e) => return Err(e),
                        Err(e) => {
                            sp.rollback().await?;
                            outcomes.push(Err(e));
                        }
                    }
                }
                tx.commit().await?;
                Ok(outcomes)
            }

            /// The answer for a message another writer stored first.
            fn lost_race(write: &$crate::store::group_commit::Write) -> $crate::store::group_commit::Written {
                match write {
                    $crate::store::group_commit::Write::Message { .. } => {
                        $crate::store::group_commit::Written::Message($crate::contract::ingest_types::IngestOutcome::Duplicate)
                    }
                    // Only messages can lose a race (`ingest_one` says so with `None`).
                    _ => $crate::store::group_commit::Written::Journal(false),
                }
            }

            /// Applies one delivery within the caller's transaction; `None`: a message lost
            /// a race with a concurrent writer (roll back its savepoint).
            async fn apply_write(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                write: &$crate::store::group_commit::Write,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::group_commit::Written>> {
                use $crate::store::group_commit::{Write, Written};
                Ok(Some(match write {
                    Write::Message { channel, journal, msg } => {
                        match self.ingest_one(&mut *conn, channel, journal, msg, now).await? {
                            Some(outcome) => Written::Message(outcome),
                            None => return Ok(None),
                        }
                    }
                    Write::Status { channel, journal, update } => {
                        Written::Status(Self::status_one(&mut *conn, channel, journal, update, now).await?)
                    }
                    Write::Reaction { channel, journal, reaction } => {
                        Written::Reaction(Self::reaction_one(&mut *conn, channel, journal, reaction, now).await?)
                    }
                    Write::JournalOnly { channel, journal } => {
                        Written::Journal(Self::journal_insert(&mut *conn, channel, journal, None, now).await?)
                    }
                }))
            }
        }
    };
}
pub(crate) use impl_group_commit;
