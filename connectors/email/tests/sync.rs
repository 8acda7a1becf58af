//! The sync engine against a real Dovecot (the test kit) and a real SQLite store: a first
//! sync in bounded batches that resumes from its cursor, nothing twice on a re-run or after a
//! UIDVALIDITY change, the first-sync window, inline images stored with their `cid:` links
//! rewritten, a bounce of our mail applied as a failed delivery without a conversation,
//! spam-folder placement, loops of our own mail, tenant blocklists, and the per-mailbox lease.

use switchboard_testkit::mail as servers;
use switchboard_testkit::{TestStore, connector};

use servers::dovecot::ALICE;
use servers::{DOMAIN, Dovecot, install_crypto, test_message};
use std::sync::Arc;
use switchboard_core::domain::model::{DeliveryStatus, SendReceipt};
use switchboard_core::infra::blob::BlobStore;
use switchboard_core::store::{ConversationFilter, PageRequest, ReplyDraft, Store};
use switchboard_email::EmailConnector;

const TENANT: &str = "t1";
const CHANNEL: &str = "mail1";

struct Env {
    dovecot: Dovecot,
    store: Arc<dyn Store>,
    /// The connector's blobs.
    dir: tempfile::TempDir,
    _db: TestStore,
}

impl Env {
    async fn start() -> Self {
        install_crypto();
        let dovecot = Dovecot::start();
        let db = TestStore::builder()
            .tenant(TENANT)
            .channel(TENANT, CHANNEL, "email", Some(&format!("alice@{DOMAIN}")))
            .sqlite()
            .await;
        Env {
            dovecot,
            store: db.store.clone(),
            dir: tempfile::tempdir().unwrap(),
            _db: db,
        }
    }

    /// A connector of the channel; `extra` adds TOML keys to its `imap` table.
    async fn connector(&self, extra: &str, blocklist: &[String]) -> EmailConnector {
        let blobs = BlobStore::open(self.dir.path().join("blobs"))
            .await
            .unwrap();
        let imap = self
            .dovecot
            .imap_config(switchboard_email::imap::Security::Plain, ALICE);
        let settings: toml::Table = format!(
            r#"address = "alice@{DOMAIN}"
imap = {{ host = "127.0.0.1", port = {}, security = "plain", username = "alice", password = "{}", batch_size = 40, idle = false, spam_folders = ["Junk"] {extra} }}
smtp = {{ host = "127.0.0.1", port = 9, security = "plain" }}"#,
            imap.port(),
            imap.password.clone().unwrap()
        )
        .parse()
        .unwrap();
        let ingest = connector::ingest(
            self.store.clone(),
            TENANT,
            CHANNEL,
            switchboard_email::TYPE.threading,
        )
        .with_blobs(blobs)
        .with_blocklist(blocklist);
        let ctx = connector::context(ingest, "http://127.0.0.1:9");
        EmailConnector::new(CHANNEL.into(), &settings, ctx).unwrap()
    }

    async fn message_count(&self) -> usize {
        self.conversations()
            .await
            .iter()
            .map(|c| usize::try_from(c.message_count).unwrap())
            .sum()
    }

    /// Every conversation of the tenant, page by page.
    async fn conversations(&self) -> Vec<switchboard_core::store::ConversationRow> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = PageRequest { cursor, limit: 200 };
            let got = self
                .store
                .list_conversations(TENANT, &ConversationFilter::default(), &page)
                .await
                .unwrap();
            all.extend(got.items);
            match got.next_cursor {
                Some(c) => cursor = switchboard_core::store::PageCursor::decode(&c),
                None => return all,
            }
        }
    }
}

fn numbered(i: usize) -> Vec<u8> {
    test_message(
        &format!("customer{}@remote.test", i % 13),
        &format!("alice@{DOMAIN}"),
        &format!("question {i}"),
        &format!("<q{i}@remote.test>"),
        &format!("message number {i}"),
    )
}

#[tokio::test]
async fn first_sync_resumes_from_its_cursor_and_never_stores_twice() {
    let env = Env::start().await;
    env.dovecot
        .append_many(ALICE, "INBOX", (0..250).map(numbered))
        .await;
    let c = env.connector("", &[]).await;
    let report = c.engine().sync_all().await.unwrap();
    let inbox = &report.folders[0];
    assert_eq!(
        (inbox.fetched, inbox.stored, inbox.duplicates),
        (250, 250, 0)
    );
    assert_eq!(env.message_count().await, 250);
    let pos = c
        .engine()
        .ingest()
        .folder_position("INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pos.last_uid, 250);
    assert!(pos.highestmodseq.is_some(), "Dovecot has CONDSTORE");

    env.dovecot
        .append_many(ALICE, "INBOX", (250..260).map(numbered))
        .await;
    let report = c.engine().sync_all().await.unwrap();
    assert_eq!(
        report.folders[0].fetched, 10,
        "only what is new: {report:?}"
    );
    let report = c.engine().sync_all().await.unwrap();
    assert_eq!(report.folders[0].fetched, 0);
    assert_eq!(env.message_count().await, 260);

    let states = env.store.sync_states(Some(TENANT)).await.unwrap();
    let inbox = states.iter().find(|s| s.folder == "INBOX").unwrap();
    assert_eq!((inbox.seen, inbox.stored), (260, 260));
    assert!(inbox.last_success_at.is_some() && inbox.last_error.is_none());

    // UIDVALIDITY changes: the folder is fetched again whole; nothing is stored twice.
    env.dovecot.set_uid_validity(ALICE, "INBOX", 777);
    let report = c.engine().sync_all().await.unwrap();
    let inbox = &report.folders[0];
    assert!(inbox.resynced, "{report:?}");
    assert_eq!(
        (inbox.fetched, inbox.stored, inbox.duplicates),
        (260, 0, 260)
    );
    let pos = c
        .engine()
        .ingest()
        .folder_position("INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((pos.uidvalidity, pos.last_uid), (777, 260));
    assert_eq!(env.message_count().await, 260);
}

#[tokio::test]
async fn the_first_sync_window_takes_recent_mail_then_everything_new() {
    let env = Env::start().await;
    env.dovecot
        .append_dated(ALICE, "INBOX", numbered(1), "01-Jan-2001 00:00:00 +0000")
        .await;
    env.dovecot.append_many(ALICE, "INBOX", [numbered(2)]).await;
    let c = env.connector(", since_days = 30", &[]).await;
    let report = c.engine().sync_all().await.unwrap();
    assert_eq!(report.folders[0].stored, 1, "only the recent message");
    // Later runs take everything after the cursor, whatever its date.
    env.dovecot
        .append_dated(ALICE, "INBOX", numbered(3), "01-Jan-2001 00:00:00 +0000")
        .await;
    let report = c.engine().sync_all().await.unwrap();
    assert_eq!(report.folders[0].stored, 1);
}

const INLINE: &str = "From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\n\
Subject: screenshot\r\nMessage-ID: <inline1@remote.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/related; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>see <img src=\"cid:shot@x\" onerror=\"alert(1)\"><script>x()</script></p>\r\n\
--b1\r\nContent-Type: image/png\r\nContent-ID: <shot@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n--b1--\r\n";

#[tokio::test]
async fn inline_images_are_stored_and_linked_from_sanitized_html() {
    let env = Env::start().await;
    env.dovecot
        .append_many(ALICE, "INBOX", [INLINE.as_bytes().to_vec()])
        .await;
    let c = env.connector("", &[]).await;
    c.engine().sync_all().await.unwrap();
    let conv = &env.conversations().await[0];
    let page = PageRequest {
        cursor: None,
        limit: 10,
    };
    let msgs = env
        .store
        .list_messages(TENANT, &conv.id, &page)
        .await
        .unwrap();
    let m = &msgs.items[0];
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.state, "stored");
    assert_eq!(a.content_id.as_deref(), Some("shot@x"));
    assert_eq!(a.size, Some(70));
    let html = m.html.as_deref().unwrap();
    assert!(
        html.contains(&format!("/api/v1/attachments/{}", a.id)),
        "cid rewritten to the attachment: {html}"
    );
    assert!(
        !html.contains("script") && !html.contains("onerror"),
        "{html}"
    );
    let blobs = BlobStore::open(env.dir.path().join("blobs")).await.unwrap();
    let bytes = blobs.get(a.storage_key.as_deref().unwrap()).await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn a_bounce_of_our_mail_fails_that_message_and_opens_no_conversation() {
    let env = Env::start().await;
    // One conversation with a staff reply that "was sent" with our Message-ID.
    env.dovecot.append_many(ALICE, "INBOX", [numbered(1)]).await;
    let c = env.connector("", &[]).await;
    c.engine().sync_all().await.unwrap();
    let conv = env.conversations().await.remove(0);
    let (reply, _) = env
        .store
        .create_reply(
            TENANT,
            &conv.id,
            &ReplyDraft {
                text: Some("hello".into()),
                ..reply_draft()
            },
        )
        .await
        .unwrap();
    let job = env
        .store
        .claim_job(switchboard_core::domain::model::now_millis(), 60_000)
        .await
        .unwrap()
        .unwrap();
    let ctx = env.store.outbound_for_job(&job).await.unwrap();
    assert_eq!(ctx.message.message_id, reply.id);
    let ours = "0123456789abcdef0123456789abcdef@example.test";
    env.store
        .job_sent(
            &job,
            &SendReceipt {
                provider_message_id: ours.into(),
                status: DeliveryStatus::Sent,
                external: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    let bounce = format!(
        "From: MAILER-DAEMON@example.test\r\nTo: alice@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <bounce1@example.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\n\
Content-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n--r\r\n\
Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
Final-Recipient: rfc822; customer1@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <customer1@remote.test>: Recipient address rejected\r\n\r\n--r\r\n\
Content-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.test\r\nTo: customer1@remote.test\r\nMessage-ID: <{ours}>\r\nSubject: Re: question 1\r\n\r\n--r--\r\n"
    );
    env.dovecot
        .append_many(ALICE, "INBOX", [bounce.into_bytes()])
        .await;
    let report = c.engine().sync_all().await.unwrap();
    assert_eq!(report.folders[0].statuses, 1, "{report:?}");
    let m = env.store.get_message(TENANT, &reply.id).await.unwrap();
    assert_eq!(m.delivery_status, "failed");
    assert_eq!(m.error_code.as_deref(), Some("5.1.1"));
    assert!(
        m.error_message
            .unwrap_or_default()
            .contains("Recipient address rejected")
    );
    assert_eq!(
        env.conversations().await.len(),
        1,
        "the bounce opened nothing"
    );
    // Fetched again (UIDVALIDITY change): still nothing new.
    env.dovecot.set_uid_validity(ALICE, "INBOX", 4242);
    c.engine().sync_all().await.unwrap();
    assert_eq!(env.conversations().await.len(), 1);
    assert_eq!(env.message_count().await, 2);
}

fn reply_draft() -> ReplyDraft {
    ReplyDraft {
        text: None,
        media_urls: Vec::new(),
        idempotency_key: None,
        author: "staff".into(),
        subject: None,
        template: None,
    }
}

#[tokio::test]
async fn spam_folder_loops_and_blocklists_are_flagged_and_quiet() {
    let env = Env::start().await;
    env.dovecot.append_many(ALICE, "Junk", [numbered(1)]).await;
    let own = test_message(
        &format!("alice@{DOMAIN}"),
        "someone@remote.test",
        "our own",
        "<0123456789abcdef0123456789abcdee@example.test>",
        "a copy of our own mail",
    );
    let blocked = test_message(
        "pest@spam.example",
        &format!("alice@{DOMAIN}"),
        "buy now",
        "<pest1@spam.example>",
        "offer",
    );
    env.dovecot
        .append_many(ALICE, "INBOX", [own, blocked])
        .await;
    let c = env.connector("", &["@spam.example".to_string()]).await;
    c.engine().sync_all().await.unwrap();
    let convs = env.conversations().await;
    assert_eq!(convs.len(), 3);
    for conv in &convs {
        assert_eq!(conv.unread_count, 0, "flagged mail bumps nothing: {conv:?}");
    }
    let by_contact = |a: &str| {
        convs
            .iter()
            .find(|c| c.contact.identities.iter().any(|i| i.value == a))
            .unwrap()
    };
    assert_eq!(by_contact("customer1@remote.test").status, "spam");
    assert_eq!(by_contact("pest@spam.example").status, "spam");
    let page = PageRequest {
        cursor: None,
        limit: 10,
    };
    let own_conv = by_contact(&format!("alice@{DOMAIN}"));
    let msgs = env
        .store
        .list_messages(TENANT, &own_conv.id, &page)
        .await
        .unwrap();
    assert!(
        msgs.items[0].flags.contains(&"loop".to_string()),
        "{:?}",
        msgs.items[0].flags
    );
}

#[tokio::test]
async fn only_the_lease_holder_syncs_a_mailbox() {
    let env = Env::start().await;
    env.dovecot.append_many(ALICE, "INBOX", [numbered(1)]).await;
    let a = env.connector("", &[]).await;
    let b = env.connector("", &[]).await;
    assert!(!a.engine().sync_all().await.unwrap().skipped);
    let report = b.engine().sync_all().await.unwrap();
    assert!(report.skipped, "the other replica holds the lease");
    a.engine().release_lease().await;
    assert!(!b.engine().sync_all().await.unwrap().skipped);
    assert_eq!(env.message_count().await, 1);
}

#[tokio::test]
async fn a_5000_message_backfill_is_stored_whole_with_its_progress() {
    let env = Env::start().await;
    env.dovecot
        .append_many(ALICE, "INBOX", (0..5000).map(numbered))
        .await;
    let c = env.connector(", max_batch_bytes = 1048576", &[]).await;
    let started = std::time::Instant::now();
    let report = c.engine().sync_all().await.unwrap();
    let inbox = &report.folders[0];
    println!(
        "backfill: {} messages in {:.2}s",
        inbox.fetched,
        started.elapsed().as_secs_f64()
    );
    assert_eq!((inbox.fetched, inbox.stored), (5000, 5000));
    assert_eq!(env.message_count().await, 5000);
    let states = env.store.sync_states(Some(TENANT)).await.unwrap();
    let s = states.iter().find(|s| s.folder == "INBOX").unwrap();
    assert_eq!((s.backlog_total, s.backlog_done), (5000, 5000));
    assert_eq!((s.seen, s.stored, s.last_uid), (5000, 5000, 5000));
}
