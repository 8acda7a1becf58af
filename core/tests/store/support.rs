//! Shared fixtures for the store suite: the seeded tenants and channels, and message
//! builders. The databases themselves come from the test kit.

use serde_json::json;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::contract::journal::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;
use switchboard_testkit::{StoreBuilder, TestStore};

/// The store every test of the suite starts from: tenants `t1` and `t2`; SMS channels
/// `sms1` (with our number), `sms2` and `sms-t2`; mailboxes `mail1` and `mail2`.
pub fn seeded_store() -> StoreBuilder {
    TestStore::builder()
        .tenant("t1")
        .tenant("t2")
        .channel("t1", "sms1", "twilio", Some("+15559990000"))
        .channel("t1", "sms2", "twilio", None)
        .channel("t2", "sms-t2", "twilio", None)
        .channel("t1", "mail1", "email", Some("support@acme.example"))
        .channel("t1", "mail2", "email", Some("sales@acme.example"))
}

/// A seeded channel as ingest sees it: the mail channels (`mail…`) thread by mail headers,
/// as the email connector declares; the others by contact.
pub fn channel(tenant: &str, id: &str) -> ChannelRef {
    ChannelRef {
        tenant_id: tenant.into(),
        channel_id: id.into(),
        threading: if id.starts_with("mail") {
            switchboard_core::contract::registry::Threading::MailHeaders
        } else {
            switchboard_core::contract::registry::Threading::ByContact
        },
    }
}

pub fn journal(key: &str) -> JournalEntry {
    JournalEntry::new(
        key,
        "message",
        "application/x-www-form-urlencoded",
        format!("key={key}").into_bytes(),
    )
}

pub fn sms(sid: &str, from: &str, body: &str) -> InboundMessage {
    InboundMessage {
        provider_message_id: sid.into(),
        from: Identity {
            kind: IdentityKind::PHONE,
            value: from.into(),
        },
        from_name: None,
        to: vec!["+15559990000".into()],
        cc: vec![],
        subject: None,
        text: Some(body.into()),
        html: None,
        attachments: vec![],
        reply_to: vec![],
        thread_token: None,
        consent: None,
        flags: vec![],
        sent_at: None,
        external: json!({ "MessageSid": sid }),
    }
}

pub fn status(sid: &str, s: DeliveryStatus) -> StatusUpdate {
    StatusUpdate {
        provider_message_id: sid.into(),
        status: s,
        error_code: None,
        error_message: None,
        external: json!({}),
    }
}

pub fn receipt(sid: &str) -> SendReceipt {
    SendReceipt {
        provider_message_id: sid.into(),
        status: DeliveryStatus::Queued,
        external: json!({ "sid": sid }),
    }
}

pub fn draft(text: &str, key: Option<&str>) -> ReplyDraft {
    ReplyDraft {
        text: Some(text.into()),
        subject: None,
        media_urls: vec![],
        template: None,
        author: "alice".into(),
        idempotency_key: key.map(str::to_string),
    }
}

pub fn page(limit: i64) -> PageRequest {
    PageRequest {
        cursor: None,
        limit,
    }
}

/// An inbound message from a fresh contact, a reply to it, and the reply's claimed job.
pub async fn queued_reply_n(store: &Arc<dyn Store>, n: usize) -> String {
    let ch = channel("t1", "sms1");
    let out = store
        .ingest_message(
            &ch,
            &journal(&format!("q{n}")),
            &sms(&format!("SMq{n}"), &format!("+1555777{n:04}"), "hi"),
        )
        .await
        .expect("ingest");
    let IngestOutcome::Stored {
        conversation_id, ..
    } = out
    else {
        panic!("not stored")
    };
    let (m, _) = store
        .create_reply("t1", &conversation_id, &draft("reply", None))
        .await
        .expect("reply");
    m.id
}

pub async fn queued_reply(store: &Arc<dyn Store>) -> (Job, String) {
    let id = queued_reply_n(store, 0).await;
    let job = store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(job.kind, JobKind::Send);
    assert_eq!(job.ref_id, id);
    let ctx = store.outbound_for_job(&job).await.expect("outbound");
    assert_eq!(ctx.message.to.value, "+15557770000");
    assert_eq!(ctx.message.text.as_deref(), Some("reply"));
    (job, id)
}

/// An inbound email: `refs` is In-Reply-To then References newest first.
pub fn mail(message_id: &str, from: &str, subject: &str, refs: &[&str]) -> InboundMessage {
    let mut m = sms(message_id, from, "body");
    m.from = Identity {
        kind: IdentityKind::EMAIL,
        value: from.into(),
    };
    m.to = vec!["support@acme.example".into()];
    m.subject = Some(subject.into());
    m.reply_to = refs.iter().map(|r| r.to_string()).collect();
    m.external = json!({ "message_id": message_id });
    m
}
