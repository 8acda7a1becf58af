//! Erasing a contact: content, addresses, attachments, reactions and raw journal entries of
//! its conversations go in one transaction; the conversations and a tombstone stay.

use crate::contacts::sms_from;
use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::Refusal;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    erasure_removes_a_persons_data_and_keeps_the_conversation,
    an_erased_contact_is_refused_everywhere_and_its_address_starts_afresh,
    deliveries_racing_a_merge_or_an_erasure_never_land_under_the_tombstone,
);

/// An inbound SMS with one attachment per source; returns the message id.
async fn mms(store: &Arc<dyn Store>, sid: &str, from: &str, sources: &[&str]) -> String {
    let mut m = sms(sid, from, "my secret");
    m.attachments = sources
        .iter()
        .map(|s| InboundAttachment {
            filename: Some("passport.jpg".into()),
            content_type: Some("image/jpeg".into()),
            source: Some(s.to_string()),
            ..Default::default()
        })
        .collect();
    let IngestOutcome::Stored { message_id, .. } = store
        .ingest_message(&channel("t1", "sms1"), &journal(&format!("msg:{sid}")), &m)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    message_id
}

async fn claim(store: &Arc<dyn Store>, kind: JobKind) -> Job {
    let job = store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(job.kind, kind);
    job
}

fn blob(key: &str) -> StoredBlob {
    StoredBlob {
        storage_key: key.into(),
        sha256: key.rsplit('/').next().unwrap_or_default().into(),
        size: 3,
        content_type: "image/jpeg".into(),
    }
}

/// Stores the fetched bytes of the next `n` media jobs under `keys`.
async fn fetch_media(store: &Arc<dyn Store>, keys: &[&str]) {
    for key in keys {
        let job = claim(store, JobKind::FetchMedia).await;
        assert!(
            store
                .attachment_stored(&job, &blob(key))
                .await
                .expect("stored")
        );
    }
}

async fn journal_keys(store: &Arc<dyn Store>) -> Vec<String> {
    let mut keys: Vec<String> = store
        .journal_entries("sms1", 1000)
        .await
        .expect("journal")
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    keys.sort();
    keys
}

async fn erasure_removes_a_persons_data_and_keeps_the_conversation(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    // Another person sends the same picture as Ann: the bytes are shared.
    mms(&store, "SM9", "+15550002", &["https://media.example/9"]).await;
    fetch_media(&store, &["sha256/aa/shared"]).await;
    let (ann, conv) = sms_from(&store, "sms1", "SM0", "+15550001").await;
    mms(
        &store,
        "SM1",
        "+15550001",
        &["https://media.example/1", "https://media.example/2"],
    )
    .await;
    fetch_media(&store, &["sha256/aa/shared", "sha256/bb/own"]).await;
    // A reply that was sent, its status report and the contact's reaction to it.
    store
        .create_reply("t1", &conv, &draft("thanks", None))
        .await
        .expect("reply");
    let send = claim(&store, JobKind::Send).await;
    store.outbound_for_job(&send).await.expect("outbound");
    store
        .job_sent(&send, &receipt("SMout1"))
        .await
        .expect("sent");
    store
        .ingest_status(
            &ch,
            &journal("status:SMout1:delivered"),
            &status("SMout1", DeliveryStatus::Delivered),
        )
        .await
        .expect("status");
    let reaction = ReactionUpdate {
        provider_message_id: "wamid.R1".into(),
        target_provider_id: "SMout1".into(),
        from: Identity {
            kind: IdentityKind::PHONE,
            value: "+15550001".into(),
        },
        emoji: Some("👍".into()),
        external: json!({}),
    };
    store
        .ingest_reaction(&ch, &journal("reaction:wamid.R1"), &reaction)
        .await
        .expect("react");
    // A download in flight and a reply still queued when the erasure comes.
    mms(&store, "SM2", "+15550001", &["https://media.example/3"]).await;
    let in_flight = claim(&store, JobKind::FetchMedia).await;
    let (queued, _) = store
        .create_reply("t1", &conv, &draft("queued", None))
        .await
        .expect("queued");

    let erasure = store
        .erase_contact("t1", &ann, "boss")
        .await
        .expect("erase");
    assert_eq!(erasure.contact_id, ann);
    assert_eq!(
        (
            erasure.conversations,
            erasure.messages,
            erasure.attachments,
            erasure.journal_entries
        ),
        (1, 5, 3, 5)
    );
    assert_eq!(
        erasure.blob_keys,
        vec!["sha256/aa/shared".to_string(), "sha256/bb/own".to_string()]
    );
    assert!(
        store.blob_in_use("sha256/aa/shared").await.expect("shared"),
        "the other person's"
    );
    assert!(!store.blob_in_use("sha256/bb/own").await.expect("own"));

    // The download that finishes afterwards does not bring the bytes back.
    assert!(
        !store
            .attachment_stored(&in_flight, &blob("sha256/cc/late"))
            .await
            .expect("late")
    );
    assert!(!store.blob_in_use("sha256/cc/late").await.expect("late"));
    // The queued reply is never sent.
    assert!(
        store
            .claim_job(now_millis(), 60_000)
            .await
            .expect("claim")
            .is_none()
    );

    // The conversation stays, emptied.
    let c = store
        .get_conversation("t1", &conv)
        .await
        .expect("conversation");
    assert!(c.contact.erased);
    assert_eq!(c.contact.name.as_deref(), Some("erased"));
    assert!(c.contact.identities.is_empty());
    let messages = store
        .list_messages("t1", &conv, &page(100))
        .await
        .expect("messages")
        .items;
    assert_eq!(messages.len(), 5);
    for m in &messages {
        assert!(m.erased, "{m:?}");
        assert_eq!(
            (m.text.as_deref(), m.html.as_deref(), m.subject.as_deref()),
            (None, None, None)
        );
        assert_eq!(m.recipients, json!({}));
        assert_eq!(m.external, json!({}));
        assert!(m.reactions.is_empty());
        let expected = if m.direction == "inbound" {
            "erased"
        } else {
            "alice"
        };
        assert_eq!(m.sender, expected);
        for a in &m.attachments {
            assert_eq!(a.state, "erased");
            assert_eq!(
                (a.filename.as_deref(), a.storage_key.as_deref(), a.size),
                (None, None, None)
            );
        }
    }
    let queued = messages
        .iter()
        .find(|m| m.id == queued.id)
        .expect("queued reply");
    assert_eq!(queued.delivery_status, "failed");
    assert_eq!(queued.error_code.as_deref(), Some("contact_erased"));

    // The raw journal keeps only the other person's deliveries.
    assert_eq!(journal_keys(&store).await, vec!["msg:SM9".to_string()]);

    // Audit and event.
    let audit = store
        .list_audit("t1", &conv, &page(10))
        .await
        .expect("audit");
    assert_eq!(audit.items[0].action, "contact_erased");
    assert_eq!(audit.items[0].actor, "boss");
    let erased: Vec<_> = store
        .events_since("t1", 0, 1000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == "contact.erased")
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].payload.0["contact_id"], ann.as_str());
    assert_eq!(erased[0].payload.0["conversation_ids"], json!([conv]));
}

async fn an_erased_contact_is_refused_everywhere_and_its_address_starts_afresh(
    store: Arc<dyn Store>,
) {
    let (ann, conv) = sms_from(&store, "sms1", "SM1", "+15550001").await;
    let (bob, _) = sms_from(&store, "sms1", "SM2", "+15550002").await;
    store
        .erase_contact("t1", &ann, "boss")
        .await
        .expect("erase");
    let erased = |r: StoreResult<ContactDetailRow>| matches!(r, Err(StoreError::Refused(Refusal::ContactErased { contact })) if contact == ann);
    assert!(erased(store.get_contact("t1", &ann).await));
    assert!(erased(
        store
            .update_contact(
                "t1",
                &ann,
                &ContactPatch {
                    notes: Some(Some("x".into())),
                    ..Default::default()
                },
                "boss"
            )
            .await
    ));
    assert!(erased(store.merge_contacts("t1", &bob, &ann, "boss").await));
    assert!(matches!(
        store.erase_contact("t1", &ann, "boss").await,
        Err(StoreError::Refused(Refusal::ContactErased { .. }))
    ));
    assert!(matches!(
        store
            .list_contact_conversations("t1", &ann, &page(10))
            .await,
        Err(StoreError::Refused(Refusal::ContactErased { .. }))
    ));
    assert!(matches!(
        store
            .create_reply("t1", &conv, &draft("still there?", None))
            .await,
        Err(StoreError::Refused(Refusal::ContactErased { .. }))
    ));
    let listed: Vec<String> = store
        .list_contacts("t1", &ContactFilter::default(), &page(10))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, vec![bob]);
    // The same number writes again: a new person to us, in a new conversation.
    let (again, new_conv) = sms_from(&store, "sms1", "SM3", "+15550001").await;
    assert_ne!(again, ann);
    assert_ne!(new_conv, conv);
    assert_eq!(
        store
            .get_contact("t1", &again)
            .await
            .expect("new")
            .identities
            .len(),
        1
    );
}

/// Deliveries from the person racing a merge (`merge`) or an erasure: nothing lands under
/// the tombstone unerased.
async fn race_deliveries(store: &Arc<dyn Store>, survivor: &str, phone: &str, merge: bool) {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let ch = if n % 2 == 0 { "sms1" } else { "sms2" };
            let sid = format!("SMrace{}{n}", if merge { "m" } else { "e" });
            sms_from(&store, ch, &sid, "+15550001").await
        });
    }
    let outcome = if merge {
        store
            .merge_contacts("t1", survivor, phone, "boss")
            .await
            .map(|_| ())
    } else {
        store.erase_contact("t1", phone, "boss").await.map(|_| ())
    };
    outcome.expect("merge or erase");
    while let Some(joined) = tasks.join_next().await {
        joined.expect("delivery");
    }
}

async fn deliveries_racing_a_merge_or_an_erasure_never_land_under_the_tombstone(
    store: Arc<dyn Store>,
) {
    let (phone, _) = sms_from(&store, "sms1", "SM0", "+15550001").await;
    let (survivor, _) = sms_from(&store, "sms1", "SM1", "+15550002").await;
    race_deliveries(&store, &survivor, &phone, true).await;
    let under = |contact: &str| ConversationFilter {
        contact: Some(contact.to_string()),
        ..Default::default()
    };
    let left = store
        .list_conversations("t1", &under(&phone), &page(100))
        .await
        .expect("list");
    assert!(left.items.is_empty(), "{:?}", left.items);
    let merged = store.get_contact("t1", &survivor).await.expect("survivor");
    assert_eq!(
        merged.conversation_count, 3,
        "sms1 and sms2 for the phone, sms1 for the other"
    );

    // The survivor is erased while the number keeps writing.
    race_deliveries(&store, &survivor, &survivor, false).await;
    let erased = store
        .list_conversations("t1", &under(&survivor), &page(100))
        .await
        .expect("list");
    for c in &erased.items {
        let messages = store
            .list_messages("t1", &c.id, &page(100))
            .await
            .expect("messages");
        assert!(
            messages.items.iter().all(|m| m.erased),
            "{:?}",
            messages.items
        );
    }
    // What arrived after the erasure belongs to a new contact.
    let filter = ContactFilter {
        q: Some("5550001".into()),
    };
    let now = store
        .list_contacts("t1", &filter, &page(10))
        .await
        .expect("list");
    assert!(now.items.iter().all(|c| c.id != survivor));
}
