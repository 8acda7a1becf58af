//! The contact directory: search and paging, changes with their audit trail and events, a
//! person's conversations across channels, and merging two contacts of one person.

use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::Refusal;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    contacts_are_searched_and_paged_within_their_tenant,
    contact_changes_are_audited_and_announced,
    a_contacts_conversations_span_its_channels,
    merging_moves_identities_and_conversations_and_leaves_a_tombstone,
    merges_refuse_unknown_erased_and_merged_contacts,
    a_delivery_for_a_merged_identity_reaches_the_survivor,
);

/// Ingests an SMS and returns `(contact id, conversation id)`.
pub async fn sms_from(store: &Arc<dyn Store>, ch: &str, sid: &str, from: &str) -> (String, String) {
    let IngestOutcome::Stored {
        conversation_id, ..
    } = store
        .ingest_message(
            &channel("t1", ch),
            &journal(&format!("msg:{sid}")),
            &sms(sid, from, "hi"),
        )
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let c = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conversation");
    (c.contact.id, conversation_id)
}

/// Ingests an email and returns `(contact id, conversation id)`.
async fn mail_from(store: &Arc<dyn Store>, id: &str, from: &str) -> (String, String) {
    let m = mail(id, from, "Order 42", &[]);
    let IngestOutcome::Stored {
        conversation_id, ..
    } = store
        .ingest_message(&channel("t1", "mail1"), &journal(&format!("mail:{id}")), &m)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let c = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conversation");
    (c.contact.id, conversation_id)
}

fn rename(name: &str) -> ContactPatch {
    ContactPatch {
        name: Some(Some(name.into())),
        ..Default::default()
    }
}

async fn search(store: &Arc<dyn Store>, tenant: &str, q: Option<&str>) -> Vec<String> {
    let filter = ContactFilter {
        q: q.map(str::to_string),
    };
    store
        .list_contacts(tenant, &filter, &page(100))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn events(store: &Arc<dyn Store>, kind: &str) -> Vec<serde_json::Value> {
    store
        .events_since("t1", 0, 1000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload.0)
        .collect()
}

async fn contacts_are_searched_and_paged_within_their_tenant(store: Arc<dyn Store>) {
    let (ann, _) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let (bob, _) = sms_from(&store, "sms1", "SM2", "+15550002").await;
    let (cy, _) = mail_from(&store, "<c@x>", "cy_100%@example.com").await;
    store
        .update_contact("t1", &ann, &rename("Ann Lee"), "alice")
        .await
        .expect("rename");
    store
        .update_contact("t1", &bob, &rename("Bob Åberg"), "alice")
        .await
        .expect("rename");

    assert_eq!(
        search(&store, "t1", None).await,
        vec![cy.clone(), bob.clone(), ann.clone()]
    );
    assert_eq!(
        search(&store, "t1", Some("ANN")).await,
        vec![ann.clone()],
        "name, any case"
    );
    assert_eq!(
        search(&store, "t1", Some("lee")).await,
        vec![ann.clone()],
        "substring"
    );
    assert_eq!(
        search(&store, "t1", Some("5550002")).await,
        vec![bob.clone()],
        "identity value"
    );
    assert_eq!(search(&store, "t1", Some("+1555000")).await.len(), 2);
    assert_eq!(
        search(&store, "t1", Some("100%")).await,
        vec![cy.clone()],
        "% is literal"
    );
    assert!(
        search(&store, "t1", Some("cy_1000")).await.is_empty(),
        "_ is literal"
    );
    assert!(search(&store, "t1", Some("nobody")).await.is_empty());
    assert_eq!(
        search(&store, "t1", Some("Åberg")).await,
        vec![bob.clone()],
        "any letter as written"
    );
    assert_eq!(search(&store, "t1", Some("BOB Å")).await, vec![bob.clone()]);

    // Pages of two: every contact once, in order.
    let first = store
        .list_contacts("t1", &ContactFilter::default(), &page(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    let cursor = PageCursor::decode(first.next_cursor.as_deref().expect("more")).expect("cursor");
    let second = store
        .list_contacts(
            "t1",
            &ContactFilter::default(),
            &PageRequest {
                cursor: Some(cursor),
                limit: 2,
            },
        )
        .await
        .expect("page 2");
    assert_eq!(
        second
            .items
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        vec![ann.clone()]
    );
    assert!(second.next_cursor.is_none());

    // Each item: identities, conversations, activity.
    let item = store.get_contact("t1", &ann).await.expect("get");
    assert_eq!(item.name.as_deref(), Some("Ann Lee"));
    assert_eq!(item.identities[0].value, "+15550001");
    assert_eq!(item.conversation_count, 1);
    assert!(item.last_activity_at.is_some());
    assert_eq!(item.attributes, json!({}));

    // Another tenant sees none of it.
    assert!(search(&store, "t2", None).await.is_empty());
    assert!(search(&store, "t2", Some("ann")).await.is_empty());
    assert!(matches!(
        store.get_contact("t2", &ann).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_contact("t2", &ann, &rename("x"), "eve").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .list_contact_conversations("t2", &ann, &page(10))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.erase_contact("t2", &ann, "eve").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.merge_contacts("t2", &ann, &bob, "eve").await,
        Err(StoreError::NotFound)
    ));
}

async fn contact_changes_are_audited_and_announced(store: Arc<dyn Store>) {
    let (ann, _) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let patch = ContactPatch {
        name: Some(Some("Ann".into())),
        notes: Some(Some("Prefers SMS".into())),
        attributes: Some(json!({"tier": "gold", "ids": [1, 2]})),
    };
    let c = store
        .update_contact("t1", &ann, &patch, "alice")
        .await
        .expect("update");
    assert_eq!(c.name.as_deref(), Some("Ann"));
    assert_eq!(c.notes.as_deref(), Some("Prefers SMS"));
    assert_eq!(c.attributes, json!({"tier": "gold", "ids": [1, 2]}));
    assert!(c.updated_at.is_some());

    // Absent fields stay; null removes.
    let clear = ContactPatch {
        notes: Some(None),
        ..Default::default()
    };
    let c = store
        .update_contact("t1", &ann, &clear, "bob")
        .await
        .expect("clear");
    assert_eq!(c.name.as_deref(), Some("Ann"));
    assert_eq!(c.notes, None);
    assert_eq!(c.attributes["tier"], "gold");

    // Nothing to change writes nothing.
    store
        .update_contact("t1", &ann, &ContactPatch::default(), "bob")
        .await
        .expect("no-op");
    let audit = store
        .list_contact_audit("t1", &ann, &page(10))
        .await
        .expect("audit");
    let trail: Vec<(String, String)> = audit
        .items
        .iter()
        .map(|a| (a.actor.clone(), a.action.clone()))
        .collect();
    assert_eq!(
        trail,
        vec![
            ("bob".into(), "update".into()),
            ("alice".into(), "update".into())
        ]
    );
    assert_eq!(audit.items[0].detail.0, json!({"fields": ["notes"]}));
    let updates = events(&store, "contact.updated").await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["contact_id"], ann.as_str());
    assert_eq!(updates[0]["fields"], json!(["name", "notes", "attributes"]));
}

async fn a_contacts_conversations_span_its_channels(store: Arc<dyn Store>) {
    let (ann, first) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (same, second) = sms_from(&store, "sms2", "SM2", "+15550001").await;
    assert_eq!(ann, same, "one identity, one contact");
    sms_from(&store, "sms1", "SM3", "+15550009").await;
    let list = store
        .list_contact_conversations("t1", &ann, &page(1))
        .await
        .expect("page 1");
    assert_eq!(list.items[0].id, second, "newest activity first");
    let cursor = PageCursor::decode(list.next_cursor.as_deref().expect("more")).expect("cursor");
    let rest = store
        .list_contact_conversations(
            "t1",
            &ann,
            &PageRequest {
                cursor: Some(cursor),
                limit: 10,
            },
        )
        .await
        .expect("page 2");
    assert_eq!(
        rest.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(rest.next_cursor.is_none());
    let c = store.get_contact("t1", &ann).await.expect("contact");
    assert_eq!(c.conversation_count, 2);
    assert_eq!(c.last_activity_at, Some(list.items[0].last_message_at));
}

async fn merging_moves_identities_and_conversations_and_leaves_a_tombstone(store: Arc<dyn Store>) {
    let (phone, sms_conv) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let (email, mail_conv) = mail_from(&store, "<m1@x>", "ann@example.com").await;
    store
        .update_contact(
            "t1",
            &phone,
            &ContactPatch {
                name: Some(Some("Ann (phone)".into())),
                notes: Some(Some("called twice".into())),
                attributes: Some(json!({"tier": "silver", "city": "Oslo"})),
            },
            "alice",
        )
        .await
        .expect("phone profile");
    store
        .update_contact(
            "t1",
            &email,
            &ContactPatch {
                attributes: Some(json!({"tier": "gold"})),
                ..Default::default()
            },
            "alice",
        )
        .await
        .expect("email profile");

    let merged = store
        .merge_contacts("t1", &email, &phone, "boss")
        .await
        .expect("merge");
    assert_eq!(merged.id, email);
    let mut values: Vec<String> = merged.identities.iter().map(|i| i.value.clone()).collect();
    values.sort();
    assert_eq!(values, vec!["+15550001", "ann@example.com"]);
    assert_eq!(merged.conversation_count, 2);
    assert_eq!(
        merged.name.as_deref(),
        Some("Ann (phone)"),
        "the survivor had no name"
    );
    assert_eq!(merged.notes.as_deref(), Some("called twice"));
    assert_eq!(merged.attributes, json!({"tier": "gold", "city": "Oslo"}));

    // The tombstone names the survivor and is listed no more.
    assert!(matches!(
        store.get_contact("t1", &phone).await,
        Err(StoreError::Refused(Refusal::ContactMerged { into, .. })) if into == email
    ));
    assert_eq!(search(&store, "t1", None).await, vec![email.clone()]);
    assert_eq!(
        search(&store, "t1", Some("5550001")).await,
        vec![email.clone()]
    );

    // Conversations and participations moved.
    let sms = store
        .get_conversation("t1", &sms_conv)
        .await
        .expect("conversation");
    assert_eq!(sms.contact.id, email);
    let parts = store
        .list_participants("t1", &sms_conv)
        .await
        .expect("participants");
    assert!(parts.iter().any(|p| p.kind == "contact" && p.id == email));
    assert!(!parts.iter().any(|p| p.id == phone));
    let filter = ConversationFilter {
        contact: Some(email.clone()),
        ..Default::default()
    };
    let mine = store
        .list_conversations("t1", &filter, &page(10))
        .await
        .expect("list");
    assert_eq!(mine.items.len(), 2);
    assert!(mine.items.iter().any(|c| c.id == mail_conv));

    // Audit trails (the phone contact's moved along) and the event.
    let audit = store
        .list_contact_audit("t1", &email, &page(10))
        .await
        .expect("audit");
    assert_eq!(audit.items[0].action, "merge");
    assert_eq!(audit.items[0].actor, "boss");
    assert_eq!(
        audit.items[0].detail.0,
        json!({"from": phone, "identities": 1, "conversations": 1})
    );
    assert_eq!(audit.items.len(), 3, "merge + both contacts' updates");
    let conv_audit = store
        .list_audit("t1", &sms_conv, &page(10))
        .await
        .expect("conversation audit");
    assert_eq!(conv_audit.items[0].action, "contact_merged");
    let merges = events(&store, "contact.merged").await;
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0]["contact_id"], email.as_str());
    assert_eq!(merges[0]["merged_contact_id"], phone.as_str());
    assert_eq!(merges[0]["conversation_ids"], json!([sms_conv]));

    // Merging it again changes nothing; a later merge moves the tombstone's pointer on.
    store
        .merge_contacts("t1", &email, &phone, "boss")
        .await
        .expect("again");
    assert_eq!(events(&store, "contact.merged").await.len(), 1);
    let (third, _) = sms_from(&store, "sms2", "SM9", "+15550003").await;
    store
        .merge_contacts("t1", &third, &email, "boss")
        .await
        .expect("second merge");
    assert!(matches!(
        store.get_contact("t1", &phone).await,
        Err(StoreError::Refused(Refusal::ContactMerged { into, .. })) if into == third
    ));
    assert_eq!(
        store
            .get_contact("t1", &third)
            .await
            .expect("third")
            .conversation_count,
        3
    );
}

async fn merges_refuse_unknown_erased_and_merged_contacts(store: Arc<dyn Store>) {
    let (a, _) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let (b, _) = sms_from(&store, "sms1", "SM2", "+15550002").await;
    let (c, _) = sms_from(&store, "sms1", "SM3", "+15550003").await;
    assert!(matches!(
        store
            .merge_contacts("t1", &a, "no-such-contact", "boss")
            .await,
        Err(StoreError::Refused(Refusal::NoSuchContact { .. }))
    ));
    assert!(matches!(
        store
            .merge_contacts("t1", "no-such-contact", &a, "boss")
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .merge_contacts("t1", &a, &b, "boss")
        .await
        .expect("merge");
    // Into a tombstone: refused, naming the survivor.
    assert!(matches!(
        store.merge_contacts("t1", &b, &c, "boss").await,
        Err(StoreError::Refused(Refusal::ContactMerged { into, .. })) if into == a
    ));
    store.erase_contact("t1", &c, "boss").await.expect("erase");
    assert!(matches!(
        store.merge_contacts("t1", &a, &c, "boss").await,
        Err(StoreError::Refused(Refusal::ContactErased { contact })) if contact == c
    ));
    assert!(matches!(
        store.merge_contacts("t1", &c, &a, "boss").await,
        Err(StoreError::Refused(Refusal::ContactErased { contact })) if contact == c
    ));
    // Another tenant's contact is unknown.
    let other = switchboard_core::contract::ingest_types::ChannelRef {
        tenant_id: "t2".into(),
        channel_id: "sms-t2".into(),
        threading: Threading::ByContact,
    };
    let IngestOutcome::Stored {
        conversation_id, ..
    } = store
        .ingest_message(&other, &journal("t2"), &sms("SMt2", "+15550004", "hi"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let theirs = store
        .get_conversation("t2", &conversation_id)
        .await
        .expect("conv")
        .contact
        .id;
    assert!(matches!(
        store.merge_contacts("t1", &a, &theirs, "boss").await,
        Err(StoreError::Refused(Refusal::NoSuchContact { .. }))
    ));
}

async fn a_delivery_for_a_merged_identity_reaches_the_survivor(store: Arc<dyn Store>) {
    let (phone, sms_conv) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let (email, _) = mail_from(&store, "<m1@x>", "ann@example.com").await;
    store
        .merge_contacts("t1", &email, &phone, "boss")
        .await
        .expect("merge");
    let (contact, conversation) = sms_from(&store, "sms1", "SM2", "+15550001").await;
    assert_eq!(contact, email);
    assert_eq!(conversation, sms_conv, "the open conversation continues");
    let (m, _) = store
        .start_conversation(
            "t1",
            &StartConversation {
                channel_id: "sms2".into(),
                threading: Threading::ByContact,
                to: Identity {
                    kind: IdentityKind::PHONE,
                    value: "+15550001".into(),
                },
                contact_name: None,
                draft: draft("hello", None),
            },
        )
        .await
        .expect("start");
    let c = store
        .get_conversation("t1", &m.conversation_id)
        .await
        .expect("conversation");
    assert_eq!(c.contact.id, email);
}
