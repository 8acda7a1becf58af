//! The staff directory and the visibility queries: sightings, admin entries, assignees,
//! and the `visible_to` filters of the list and the unread counts.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    sightings_and_admin_entries_share_the_directory,
    visibility_filters_lists_and_counts,
);

fn sighting(id: &str, auth_kind: &'static str, role: Role) -> StaffSighting {
    StaffSighting {
        id: id.into(),
        auth_kind,
        role,
    }
}

async fn sightings_and_admin_entries_share_the_directory(store: Arc<dyn Store>) {
    store
        .record_staff_seen("t1", &sighting("ann", "token", Role::Agent))
        .await
        .expect("seen");
    store
        .record_staff_seen("t1", &sighting("ann", "jwt", Role::Admin))
        .await
        .expect("seen again");
    let ann = store.get_staff("t1", "ann").await.expect("ann");
    assert_eq!(
        (ann.auth_kind.as_deref(), ann.role.as_deref()),
        (Some("jwt"), Some("admin"))
    );
    assert!(ann.active && !ann.managed && ann.last_seen_at.is_some());
    let carol = NewStaff {
        id: "carol".into(),
        display_name: Some("Carol".into()),
        email: None,
        active: true,
    };
    let row = store.create_staff("t1", &carol).await.expect("created");
    assert!(row.managed && row.last_seen_at.is_none());
    assert!(matches!(
        store.create_staff("t1", &carol).await,
        Err(StoreError::Refused(Refusal::StaffExists { .. }))
    ));
    // A sighting keeps what the admin set.
    store
        .record_staff_seen("t1", &sighting("carol", "token", Role::Agent))
        .await
        .expect("seen");
    let change = StaffChange {
        email: Some(Some("carol@acme.example".into())),
        active: Some(false),
        ..Default::default()
    };
    let row = store
        .update_staff("t1", "carol", &change)
        .await
        .expect("updated");
    assert_eq!(row.display_name.as_deref(), Some("Carol"));
    assert_eq!(row.email.as_deref(), Some("carol@acme.example"));
    assert!(!row.active && row.managed && row.last_seen_at.is_some());
    let clear = StaffChange {
        display_name: Some(None),
        ..Default::default()
    };
    let row = store
        .update_staff("t1", "carol", &clear)
        .await
        .expect("cleared");
    assert_eq!((row.display_name, row.active), (None, false));

    let all = store.list_staff("t1", &page(1)).await.expect("page");
    assert_eq!(all.items[0].id, "ann");
    let next = PageCursor::decode(all.next_cursor.as_deref().expect("more")).expect("cursor");
    let rest = store
        .list_staff(
            "t1",
            &PageRequest {
                cursor: Some(next),
                limit: 5,
            },
        )
        .await
        .expect("rest");
    assert_eq!(
        rest.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    assert!(
        store
            .list_staff("t2", &page(5))
            .await
            .expect("t2")
            .items
            .is_empty()
    );
    assert!(matches!(
        store.get_staff("t2", "ann").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_staff("t2", "carol", &change).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_staff("t2", "carol").await,
        Err(StoreError::NotFound)
    ));
    store.delete_staff("t1", "carol").await.expect("deleted");
    assert!(matches!(
        store.get_staff("t1", "carol").await,
        Err(StoreError::NotFound)
    ));
}

async fn visibility_filters_lists_and_counts(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for (i, from) in ["+15550001", "+15550002", "+15550003"].iter().enumerate() {
        let sid = format!("SM{i}");
        let outcome = store
            .ingest_message(
                &channel("t1", "sms1"),
                &journal(&sid),
                &sms(&sid, from, "hi"),
            )
            .await
            .expect("ingest");
        let IngestOutcome::Stored {
            conversation_id,
            message_id,
            ..
        } = outcome
        else {
            panic!("not stored")
        };
        ids.push((conversation_id, message_id));
    }
    let [(free, _), (mine, mine_msg), (theirs, _)] = ids.try_into().expect("three");
    store
        .assign("t1", &mine, Some("ann"), "boss")
        .await
        .expect("assign");
    store
        .assign("t1", &theirs, Some("carol"), "boss")
        .await
        .expect("assign");
    let visible = ConversationFilter {
        visible_to: Some("ann".into()),
        ..Default::default()
    };
    let mut listed: Vec<String> = store
        .list_conversations("t1", &visible, &page(10))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| c.id)
        .collect();
    listed.sort();
    let mut want = vec![free.clone(), mine.clone()];
    want.sort();
    assert_eq!(listed, want);
    let unread = store
        .unread_summary("t1", "ann", Some("ann"))
        .await
        .expect("unread");
    assert_eq!((unread.conversations, unread.messages), (2, 2));
    let all = store
        .unread_summary("t1", "ann", None)
        .await
        .expect("unread");
    assert_eq!(all.conversations, 3);

    let by_id = store
        .conversation_assignee("t1", ConversationOf::Id(&theirs))
        .await
        .expect("assignee");
    assert_eq!(by_id.as_deref(), Some("carol"));
    let by_message = store
        .conversation_assignee("t1", ConversationOf::Message(&mine_msg))
        .await
        .expect("assignee");
    assert_eq!(by_message.as_deref(), Some("ann"));
    assert_eq!(
        store
            .conversation_assignee("t1", ConversationOf::Id(&free))
            .await
            .expect("free"),
        None
    );
    assert!(matches!(
        store
            .conversation_assignee("t2", ConversationOf::Id(&free))
            .await,
        Err(StoreError::NotFound)
    ));
    // An assignment's event names who had the conversation before.
    store
        .assign("t1", &mine, Some("carol"), "boss")
        .await
        .expect("reassign");
    let events = store.events_since("t1", 0, 100).await.expect("events");
    let last = events.last().expect("event");
    assert_eq!(last.kind, "conversation.updated");
    assert_eq!(last.payload.0["previous_assignee"], "ann");
    assert_eq!(last.payload.0["assignee"], "carol");
}
