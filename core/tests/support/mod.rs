//! Shared fixtures for the store suite: fresh databases and message builders.
#![allow(dead_code)]

use serde_json::json;
use std::sync::Arc;
use switchboard_core::model::*;
use switchboard_core::store::*;

pub struct TestDb {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

pub fn pg_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let store = open(&url, 4).await.expect("open sqlite");
        seed(store.as_ref()).await;
        Self {
            store,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database; fails loudly if the server is missing.
    pub async fn postgres() -> Self {
        let admin = pg_admin_url();
        let name = format!("sb_test_{}", uuid_simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin} is required for the store suite: {e}")
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("bad admin url"),
        };
        let store = open(&url, 8).await.expect("open postgres");
        seed(store.as_ref()).await;
        Self {
            store,
            _dir: None,
            pg: Some((admin, name)),
        }
    }

    pub async fn drop_pg(self) {
        let Some((admin, name)) = self.pg.clone() else {
            return;
        };
        drop(self);
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

fn uuid_simple() -> String {
    new_id().replace('-', "")
}

async fn seed(store: &dyn Store) {
    store.migrate().await.expect("migrate");
    assert!(store.migrations_applied().await.expect("applied"));
    store
        .sync_tenants_and_channels(
            &[
                TenantRecord {
                    id: "t1".into(),
                    name: None,
                },
                TenantRecord {
                    id: "t2".into(),
                    name: None,
                },
            ],
            &[
                ChannelRecord {
                    id: "sms1".into(),
                    tenant_id: "t1".into(),
                    kind: "twilio".into(),
                    address: Some("+15559990000".into()),
                },
                ChannelRecord {
                    id: "sms2".into(),
                    tenant_id: "t1".into(),
                    kind: "twilio".into(),
                    address: None,
                },
                ChannelRecord {
                    id: "sms-t2".into(),
                    tenant_id: "t2".into(),
                    kind: "twilio".into(),
                    address: None,
                },
                ChannelRecord {
                    id: "mail1".into(),
                    tenant_id: "t1".into(),
                    kind: "email".into(),
                    address: Some("support@acme.example".into()),
                },
                ChannelRecord {
                    id: "mail2".into(),
                    tenant_id: "t1".into(),
                    kind: "email".into(),
                    address: Some("sales@acme.example".into()),
                },
            ],
        )
        .await
        .expect("seed");
}

pub fn channel(tenant: &str, id: &str) -> ChannelRef {
    ChannelRef {
        tenant_id: tenant.into(),
        channel_id: id.into(),
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
            kind: IdentityKind::Phone,
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
        kind: IdentityKind::Email,
        value: from.into(),
    };
    m.to = vec!["support@acme.example".into()];
    m.subject = Some(subject.into());
    m.reply_to = refs.iter().map(|r| r.to_string()).collect();
    m.external = json!({ "message_id": message_id });
    m
}
