//! Merging two contacts of one person (say their email and their phone) into one, written
//! once for both databases, in the caller's transaction.
//!
//! The survivor (`into`) takes `from`'s identities, conversations, participations and audit
//! trail; its name, notes and attributes are completed by `from`'s ([`merge_profiles`]).
//! `from` stays as a tombstone naming the survivor (`merged_into`; tombstones of earlier
//! merges into `from` are moved on, so one hop always reaches a live contact), emptied of
//! its name, notes and attributes. Both contacts are locked first, in id order, so that
//! concurrent merges cannot deadlock and a delivery that resolved `from` just before
//! resolves again (see `resolve_and_lock_contact`).

use serde_json::Value;

/// What a merge combines of two contacts.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct Profile {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub attributes: sqlx::types::Json<Value>,
}

/// The survivor's profile: its own name, or `from`'s when it has none; both notes (the
/// survivor's first) when they differ; `from`'s attributes overlaid with the survivor's.
pub(crate) fn merge_profiles(into: Profile, from: Profile) -> Profile {
    let notes = match (into.notes, from.notes) {
        (Some(a), Some(b)) if a != b => Some(format!("{a}\n\n{b}")),
        (a, b) => a.or(b),
    };
    let mut attributes = match from.attributes.0 {
        Value::Object(map) => map,
        _ => Default::default(),
    };
    if let Value::Object(own) = into.attributes.0 {
        attributes.extend(own);
    }
    Profile {
        name: into.name.or(from.name),
        notes,
        attributes: sqlx::types::Json(Value::Object(attributes)),
    }
}

macro_rules! impl_contact_merge {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Merges `from` into `into` (see the module documentation). Nothing is written
            /// when `from` already stands for `into`.
            async fn merge_in_tx(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                into: &str,
                from: &str,
                actor: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                // The path's contact is answered for first (a 404 before a complaint about `from`).
                Self::live_contact(&mut *conn, tenant, into, false).await?;
                let from = Self::merge_source(&mut *conn, tenant, from).await?;
                if from == into {
                    return Ok(());
                }
                Self::lock_pair(&mut *conn, tenant, into, &from).await?;
                let moved: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at, id",
                )
                .bind(tenant.to_string())
                .bind(from.clone())
                .fetch_all(&mut *conn)
                .await?;
                let identities = Self::move_contact_rows(&mut *conn, tenant, into, &from, now).await?;
                Self::merge_profile_rows(&mut *conn, tenant, into, &from, now).await?;
                let detail = serde_json::json!({ "from": from, "identities": identities, "conversations": moved.len() });
                Self::contact_audit(&mut *conn, tenant, into, actor, "merge", detail, now).await?;
                for conversation in &moved {
                    let detail = serde_json::json!({ "from": from, "into": into });
                    Self::audit(&mut *conn, tenant, conversation, actor, "contact_merged", detail, now).await?;
                }
                let event = serde_json::json!({
                    "contact_id": into,
                    "merged_contact_id": from,
                    "conversation_ids": moved,
                    "staff": actor,
                });
                Self::insert_event(&mut *conn, tenant, "contact.merged", event, now).await
            }

            /// The contact `from` stands for: itself, or the survivor it was merged into.
            async fn merge_source(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                from: &str,
            ) -> $crate::store::StoreResult<String> {
                let row: Option<(Option<String>, Option<i64>)> =
                    sqlx::query_as("SELECT merged_into, erased_at FROM contacts WHERE id = $1 AND tenant_id = $2")
                        .bind(from.to_string())
                        .bind(tenant.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                match row {
                    None => Err($crate::store::StoreError::Refused($crate::store::Refusal::NoSuchContact { contact: from.to_string() })),
                    Some((Some(survivor), _)) => Ok(survivor),
                    Some((None, Some(_))) => Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactErased {
                        contact: from.to_string(),
                    })),
                    Some((None, None)) => Ok(from.to_string()),
                }
            }

            /// Locks both contacts in id order and checks they are live: `into`'s refusal as
            /// it is, `from` gone meanwhile as unknown, merged meanwhile as "try again".
            async fn lock_pair(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                into: &str,
                from: &str,
            ) -> $crate::store::StoreResult<()> {
                let (first, second) = if into < from { (into, from) } else { (from, into) };
                let first_state = Self::live_contact(&mut *conn, tenant, first, true).await;
                let second_state = Self::live_contact(&mut *conn, tenant, second, true).await;
                let (into_state, from_state) = if first == into { (first_state, second_state) } else { (second_state, first_state) };
                into_state?;
                match from_state {
                    Err($crate::store::StoreError::NotFound) => Err($crate::store::StoreError::Refused(
                        $crate::store::Refusal::NoSuchContact { contact: from.to_string() },
                    )),
                    Err($crate::store::StoreError::Refused($crate::store::Refusal::ContactMerged { .. })) => Err(
                        $crate::store::StoreError::Unavailable("the contact to merge was merged meanwhile; try again".into()),
                    ),
                    other => other,
                }
            }

            /// Moves identities, conversations, participations and audit entries of `from`
            /// to `into`; returns how many identities moved.
            async fn move_contact_rows(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                into: &str,
                from: &str,
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let identities = sqlx::query("UPDATE contact_identities SET contact_id = $1 WHERE tenant_id = $2 AND contact_id = $3")
                    .bind(into.to_string())
                    .bind(tenant.to_string())
                    .bind(from.to_string())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                sqlx::query("UPDATE conversations SET contact_id = $1, updated_at = $2 WHERE tenant_id = $3 AND contact_id = $4")
                    .bind(into.to_string())
                    .bind(now)
                    .bind(tenant.to_string())
                    .bind(from.to_string())
                    .execute(&mut *conn)
                    .await?;
                // A conversation both take part in keeps the survivor's participation.
                sqlx::query(
                    "DELETE FROM participants WHERE tenant_id = $1 AND kind = 'contact' AND ref_id = $2
                        AND conversation_id IN (SELECT conversation_id FROM participants
                                                 WHERE tenant_id = $1 AND kind = 'contact' AND ref_id = $3)",
                )
                .bind(tenant.to_string())
                .bind(from.to_string())
                .bind(into.to_string())
                .execute(&mut *conn)
                .await?;
                for sql in [
                    "UPDATE participants SET ref_id = $1 WHERE tenant_id = $2 AND kind = 'contact' AND ref_id = $3",
                    "UPDATE contact_audit SET contact_id = $1 WHERE tenant_id = $2 AND contact_id = $3",
                    "UPDATE contacts SET merged_into = $1 WHERE tenant_id = $2 AND merged_into = $3",
                ] {
                    sqlx::query(sql)
                        .bind(into.to_string())
                        .bind(tenant.to_string())
                        .bind(from.to_string())
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(identities)
            }

            /// Completes the survivor's profile with `from`'s and makes `from` a tombstone.
            async fn merge_profile_rows(
                conn: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                into: &str,
                from: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let profile = |id: &str| {
                    sqlx::query_as::<$db, $crate::store::sql_contact_merge::Profile>(
                        "SELECT name, notes, attributes FROM contacts WHERE id = $1 AND tenant_id = $2",
                    )
                    .bind(id.to_string())
                    .bind(tenant.to_string())
                };
                let own = profile(into).fetch_one(&mut *conn).await?;
                let other = profile(from).fetch_one(&mut *conn).await?;
                let merged = $crate::store::sql_contact_merge::merge_profiles(own, other);
                sqlx::query(
                    "UPDATE contacts SET name = $1, notes = $2, attributes = $3, updated_at = $4 WHERE id = $5 AND tenant_id = $6",
                )
                .bind(merged.name)
                .bind(merged.notes)
                .bind(merged.attributes)
                .bind(now)
                .bind(into.to_string())
                .bind(tenant.to_string())
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE contacts SET merged_into = $1, name = NULL, notes = NULL, attributes = $2, updated_at = $3
                      WHERE id = $4 AND tenant_id = $5",
                )
                .bind(into.to_string())
                .bind(sqlx::types::Json(serde_json::json!({})))
                .bind(now)
                .bind(from.to_string())
                .bind(tenant.to_string())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_contact_merge;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(name: Option<&str>, notes: Option<&str>, attributes: Value) -> Profile {
        Profile {
            name: name.map(str::to_string),
            notes: notes.map(str::to_string),
            attributes: sqlx::types::Json(attributes),
        }
    }

    #[test]
    fn the_survivor_keeps_its_own_and_gains_what_it_lacks() {
        let merged = merge_profiles(
            profile(None, Some("VIP"), json!({"tier": "gold", "lang": "en"})),
            profile(
                Some("Ann"),
                Some("met at fair"),
                json!({"tier": "silver", "city": "Oslo"}),
            ),
        );
        assert_eq!(merged.name.as_deref(), Some("Ann"));
        assert_eq!(merged.notes.as_deref(), Some("VIP\n\nmet at fair"));
        assert_eq!(
            merged.attributes.0,
            json!({"tier": "gold", "lang": "en", "city": "Oslo"})
        );
    }

    #[test]
    fn equal_or_missing_notes_are_not_repeated() {
        let same = merge_profiles(
            profile(Some("Ann"), Some("x"), json!({})),
            profile(Some("Bob"), Some("x"), json!({})),
        );
        assert_eq!(same.name.as_deref(), Some("Ann"));
        assert_eq!(same.notes.as_deref(), Some("x"));
        let one = merge_profiles(
            profile(None, None, json!({})),
            profile(None, Some("y"), json!(null)),
        );
        assert_eq!(one.notes.as_deref(), Some("y"));
        assert_eq!(one.attributes.0, json!({}));
    }
}
