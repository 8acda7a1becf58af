//! The email channel end to end: the real `switchboard` binary against a real Dovecot (IMAP,
//! LMTP) and a real Postfix (SMTP relaying `example.test` into Dovecot over LMTP), all
//! started by each test on free loopback ports (the connector's harness in
//! `connectors/email/tests/servers/`).
//!
//! - new mail reaches the API through Postfix → LMTP → Dovecot → IDLE → sync, in seconds;
//! - a reply through the API threads in the customer's mailbox, and the customer's answer
//!   (by headers, and by the reply token alone) comes back into the same conversation;
//! - `kill -9` in the middle of a 3,000-message backfill loses and duplicates nothing;
//! - a UIDVALIDITY change (or a recreated folder) re-fetches without creating anything twice;
//! - Postfix's bounce of one of our replies marks it failed and opens no conversation;
//! - two replicas on one PostgreSQL store a mailbox exactly once, and the standby takes
//!   over when the lease holder is killed.
//!
//! The channel's mailbox is alice@example.test; bob@example.test plays the customer.

#[path = "../connectors/email/tests/servers/mod.rs"]
mod servers;
mod support;

use reqwest::Method;
use serde_json::{Value, json};
use servers::dovecot::{ALICE, BOB};
use servers::{DOMAIN, Dovecot, Postfix, SmtpSink, install_crypto};
use sqlx::Connection;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;
use switchboard_email::imap::{Mailbox, Security};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CHANNEL: &str = "acme-mail";
/// A schedule that never ticks during a test (midnight, January 1st).
const NEVER: &str = "0 0 0 1 1 *";

fn alice() -> String {
    format!("alice@{DOMAIN}")
}

fn bob() -> String {
    format!("bob@{DOMAIN}")
}

/// The `[[channels]]` entry of the email channel: alice's mailbox over plain IMAP, SMTP to
/// `smtp_port` (Postfix, or a sink). `imap_extra` goes into the `imap` table, `extra` after it.
fn channel_toml(dovecot: &Dovecot, smtp_port: u16, imap_extra: &str, extra: &str) -> String {
    format!(
        r#"[[channels]]
id = "{CHANNEL}"
tenant = "acme"
type = "email"
address = "alice@{DOMAIN}"
name = "Acme Support"
lease_secs = 10
imap = {{ host = "127.0.0.1", port = {imap}, security = "plain", username = "{user}", password = "{password}", spam_folders = ["Junk"]{imap_extra} }}
smtp = {{ host = "127.0.0.1", port = {smtp_port}, security = "plain", hello_name = "switchboard.test" }}
{extra}
"#,
        imap = dovecot.imap_port,
        user = ALICE.name,
        password = ALICE.password,
    )
}

fn admin_token(config: &Path) -> String {
    cli(
        config,
        &[
            "token", "create", "--tenant", "acme", "--role", "admin", "--name", "e2e",
        ],
    )
}

/// A plain-text message (CRLF) with the given headers; `extra` are more header lines.
fn mail(from: &str, to: &str, subject: &str, message_id: &str, extra: &str, body: &str) -> Vec<u8> {
    let mut extra = extra.to_string();
    if !extra.is_empty() && !extra.ends_with("\r\n") {
        extra.push_str("\r\n");
    }
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Thu, 20 Nov 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Message `i` of a backfill: its own sender, subject and Message-ID.
fn numbered(i: usize) -> Vec<u8> {
    mail(
        &format!("customer{}@remote.test", i % 97),
        &alice(),
        &format!("Order {i}"),
        &format!("<backfill-{i}@remote.test>"),
        "",
        &format!("Message number {i}.\r\nWhere is my order?"),
    )
}

/// The first value of a header (unfolded).
fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let head = text
        .split("\n\n")
        .next()
        .unwrap_or("")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The address inside `Name <addr>` (or the value itself).
fn addr_of(value: &str) -> String {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value.trim().to_string(),
    }
}

/// Sends `message` through an SMTP server (plain SMTP, no auth), as any mail client would.
async fn smtp_send(port: u16, from: &str, rcpts: &[&str], message: &[u8]) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect SMTP");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        want: char,
        what: &str,
    ) {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read SMTP")
                .expect("SMTP server closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                assert!(line.starts_with(want), "SMTP {what}: {line:?}");
                return;
            }
        }
    }
    reply(&mut lines, '2', "greeting").await;
    let mut commands = vec![
        ("EHLO client.remote.test".to_string(), '2'),
        (format!("MAIL FROM:<{from}>"), '2'),
    ];
    commands.extend(rcpts.iter().map(|r| (format!("RCPT TO:<{r}>"), '2')));
    commands.push(("DATA".to_string(), '3'));
    for (cmd, want) in commands {
        write
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .expect("write SMTP");
        reply(&mut lines, want, &cmd).await;
    }
    let mut data = Vec::with_capacity(message.len() + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    write.write_all(&data).await.expect("write SMTP");
    reply(&mut lines, '2', "end of data").await;
    write.write_all(b"QUIT\r\n").await.expect("write SMTP");
}

async fn conversations(d: &Daemon, token: &str) -> Vec<Value> {
    d.get_ok("/api/v1/conversations?limit=100", token).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn messages(d: &Daemon, token: &str, conversation: &str) -> Vec<Value> {
    d.get_ok(
        &format!("/api/v1/conversations/{conversation}/messages?limit=100"),
        token,
    )
    .await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The email channel's sync state of a folder, from `GET /api/v1/channels`.
async fn sync_state(d: &Daemon, token: &str, folder: &str) -> Option<Value> {
    let channels = d.get_ok("/api/v1/channels", token).await;
    channels["items"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == CHANNEL)?["sync"]
        .as_array()?
        .iter()
        .find(|s| s["folder"] == folder)
        .cloned()
}

const COUNT_INBOUND: &str =
    "SELECT COUNT(*) FROM messages WHERE channel_id = 'acme-mail' AND direction = 'inbound'";
const COUNT_DUPLICATES: &str = "SELECT COUNT(*) FROM (SELECT provider_message_id FROM messages
     WHERE channel_id = 'acme-mail' GROUP BY provider_message_id HAVING COUNT(*) > 1) d";

/// Inbound messages of the channel, and Message-IDs stored more than once (SQLite).
async fn sqlite_counts(dir: &Path) -> (i64, i64) {
    let db = dir.join("switchboard.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open db");
    let n: i64 = sqlx::query_scalar(COUNT_INBOUND)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let dups: i64 = sqlx::query_scalar(COUNT_DUPLICATES)
        .fetch_one(&mut conn)
        .await
        .expect("duplicates");
    (n, dups)
}

/// The same on PostgreSQL.
async fn pg_counts(url: &str) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect pg");
    let n: i64 = sqlx::query_scalar(COUNT_INBOUND)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let dups: i64 = sqlx::query_scalar(COUNT_DUPLICATES)
        .fetch_one(&mut conn)
        .await
        .expect("duplicates");
    (n, dups)
}

/// Waits until Dovecot lists a logged-in IMAP session of `user` (the daemon's IDLE).
async fn wait_for_imap_session(dovecot: &Dovecot, user: &str) {
    eventually(15, || async {
        let who = dovecot.doveadm(&["who", user]);
        who.lines()
            .any(|l| l.split_whitespace().next() == Some(user) && l.contains("imap"))
            .then_some(())
    })
    .await;
}

/// 1. SMTP → Postfix → LMTP → Dovecot → IDLE → the daemon's sync → the API, in seconds,
///    with a schedule that never ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_arrives_through_postfix_and_idle_within_seconds() {
    install_crypto();
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_email_config(
        dir.path(),
        &sqlite_url(dir.path()),
        &channel_toml(
            &dovecot,
            postfix.smtp_port,
            &format!(", idle = true, schedule = \"{NEVER}\""),
            "",
        ),
    );
    let token = admin_token(&config);
    let daemon = Daemon::start(dir.path(), &config);
    // The sync at start has run (the empty folder is recorded) and IDLE is connected.
    eventually(15, || async {
        sync_state(&daemon, &token, "INBOX")
            .await
            .filter(|s| !s["last_success_at"].is_null())
    })
    .await;
    wait_for_imap_session(&dovecot, ALICE.name).await;
    assert!(conversations(&daemon, &token).await.is_empty());

    let started = Instant::now();
    let message = mail(
        "Carol Customer <carol@remote.test>",
        &alice(),
        "Order 42 has not arrived",
        "<idle-1@remote.test>",
        "",
        "Hello,\r\nwhere is my order?\r\nCarol",
    );
    smtp_send(
        postfix.smtp_port,
        "carol@remote.test",
        &[&alice()],
        &message,
    )
    .await;
    let accepted = started.elapsed();
    let conv = eventually(10, || async {
        conversations(&daemon, &token).await.into_iter().next()
    })
    .await;
    let latency = started.elapsed();
    eprintln!(
        "IDLE path: SMTP accepted by Postfix after {accepted:?}; conversation in the API after {latency:?}"
    );
    assert!(
        latency < Duration::from_secs(10),
        "took {latency:?}\n{}",
        postfix.log()
    );
    assert_eq!(conv["subject"], "Order 42 has not arrived");
    assert_eq!(conv["message_count"], 1);
    assert_eq!(conv["channel_id"], CHANNEL);
    let msgs = messages(&daemon, &token, conv["id"].as_str().expect("id")).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["sender"], "carol@remote.test");
    assert_eq!(m["provider_message_id"], "idle-1@remote.test");
    assert!(
        m["text"]
            .as_str()
            .is_some_and(|t| t.contains("where is my order?")),
        "{m}"
    );
    // It really went through Postfix and Dovecot's LMTP.
    assert!(postfix.log().contains("status=sent"), "{}", postfix.log());
    let state = sync_state(&daemon, &token, "INBOX").await.expect("state");
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(state["stored"], 1, "{state}");
}

/// 2. A reply through the API lands in bob's mailbox with the thread headers; bob's answer
///    to it comes back into the same conversation, by headers and by the reply token alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_threads_in_the_customers_mailbox_and_the_answer_comes_back() {
    install_crypto();
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_email_config(
        dir.path(),
        &sqlite_url(dir.path()),
        &channel_toml(
            &dovecot,
            postfix.smtp_port,
            &format!(", idle = true, schedule = \"{NEVER}\""),
            "sent_folder = \"Sent\"",
        ),
    );
    let token = admin_token(&config);
    let daemon = Daemon::start(dir.path(), &config);
    wait_for_imap_session(&dovecot, ALICE.name).await;

    // Bob writes to support.
    let first = mail(
        &format!("Bob Customer <{}>", bob()),
        &alice(),
        "Broken printer",
        "<bob-1@example.test>",
        "",
        "My printer is on fire.",
    );
    smtp_send(postfix.smtp_port, &bob(), &[&alice()], &first).await;
    let conv = eventually(15, || async {
        conversations(&daemon, &token).await.into_iter().next()
    })
    .await;
    let conv_id = conv["id"].as_str().expect("id").to_string();
    assert_eq!(conv["subject"], "Broken printer");

    // Staff reply through the API.
    let (status, reply) = daemon
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv_id}/messages"),
            &token,
            Some(json!({"text": "Please unplug it. We are sending a new one."})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let reply_id = reply["id"].as_str().expect("reply id").to_string();
    let sent = eventually(15, || async {
        messages(&daemon, &token, &conv_id)
            .await
            .into_iter()
            .find(|m| {
                m["id"] == reply_id
                    && m["delivery_status"] != "queued"
                    && m["delivery_status"] != "sending"
            })
    })
    .await;
    assert_eq!(sent["delivery_status"], "sent", "{sent}\n{}", daemon.log());
    let provider_id = sent["provider_message_id"]
        .as_str()
        .expect("provider id")
        .to_string();
    assert!(
        provider_id.ends_with(&format!("@{DOMAIN}")),
        "{provider_id}"
    );

    // Postfix delivered it to bob's INBOX: read it there over IMAP, as bob.
    let bob_imap = dovecot.imap_config(Security::Plain, BOB);
    let raw = eventually(15, || {
        let bob_imap = bob_imap.clone();
        async move {
            let mut mb = Mailbox::connect(&bob_imap).await.expect("bob connects");
            let state = mb.examine("INBOX").await.expect("examine");
            if state.exists == 0 {
                mb.logout().await;
                return None;
            }
            let mut out = Vec::new();
            {
                let s = mb.fetch_batches(0, 10);
                futures::pin_mut!(s);
                while let Some(m) = futures::StreamExt::next(&mut s).await {
                    out.push(m.expect("fetch").raw);
                }
            }
            mb.logout().await;
            out.into_iter().next()
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw).to_string();
    eprintln!("the reply as bob received it:\n{text}");
    let reply_message_id = header(&raw, "Message-ID").expect("Message-ID");
    assert_eq!(reply_message_id, format!("<{provider_id}>"));
    assert_eq!(addr_of(&header(&raw, "From").expect("From")), alice());
    assert_eq!(addr_of(&header(&raw, "To").expect("To")), bob());
    assert_eq!(
        header(&raw, "Subject").as_deref(),
        Some("Re: Broken printer")
    );
    assert_eq!(
        header(&raw, "In-Reply-To").as_deref(),
        Some("<bob-1@example.test>")
    );
    assert!(
        header(&raw, "References").is_some_and(|r| r.contains("<bob-1@example.test>")),
        "{text}"
    );
    let reply_to = addr_of(&header(&raw, "Reply-To").expect("Reply-To"));
    let token_part = reply_to
        .strip_prefix("alice+")
        .and_then(|r| r.strip_suffix(&format!("@{DOMAIN}")))
        .unwrap_or_else(|| panic!("Reply-To {reply_to:?} is not alice+TOKEN@{DOMAIN}"));
    assert!(!token_part.is_empty());
    assert!(
        header(&raw, "Received").is_some_and(|r| r.contains("mx.example.test")),
        "delivered by Postfix: {text}"
    );
    assert!(text.contains("Please unplug it."), "{text}");
    // The sent copy was filed in alice's Sent folder.
    eventually(10, || async {
        (dovecot.status(ALICE, "Sent", "messages") == 1).then_some(())
    })
    .await;

    // Bob answers the reply, to its Reply-To address (alice+TOKEN: Dovecot's recipient
    // delimiter delivers it to alice's INBOX).
    let answer = mail(
        &format!("Bob Customer <{}>", bob()),
        &reply_to,
        "Re: Broken printer",
        "<bob-2@example.test>",
        &format!(
            "In-Reply-To: {reply_message_id}\r\nReferences: <bob-1@example.test> {reply_message_id}"
        ),
        "Unplugged. Thanks!",
    );
    smtp_send(postfix.smtp_port, &bob(), &[&reply_to], &answer).await;
    let thread = eventually(15, || async {
        let msgs = messages(&daemon, &token, &conv_id).await;
        (msgs.len() == 3).then_some(msgs)
    })
    .await;
    assert!(
        thread.iter().any(
            |m| m["provider_message_id"] == "bob-2@example.test" && m["direction"] == "inbound"
        ),
        "{thread:?}"
    );

    // A message that carries only the token (new subject, no thread headers) joins too.
    let token_only = mail(
        &bob(),
        &reply_to,
        "Another question",
        "<bob-3@example.test>",
        "",
        "Also, do you sell ink?",
    );
    smtp_send(postfix.smtp_port, &bob(), &[&reply_to], &token_only).await;
    eventually(15, || async {
        let msgs = messages(&daemon, &token, &conv_id).await;
        msgs.iter()
            .any(|m| m["provider_message_id"] == "bob-3@example.test")
            .then_some(())
    })
    .await;
    let convs = conversations(&daemon, &token).await;
    assert_eq!(convs.len(), 1, "one conversation: {convs:?}");
    assert_eq!(convs[0]["message_count"], 4);
    // The outbound message's status stays `sent` (no bounce, no regression).
    let reply_now = messages(&daemon, &token, &conv_id)
        .await
        .into_iter()
        .find(|m| m["id"] == reply_id)
        .expect("reply");
    assert_eq!(reply_now["delivery_status"], "sent");
    assert_eq!(reply_now["direction"], "outbound");
}

/// 3. `kill -9` in the middle of a 3,000-message backfill; after a restart every message is
///    stored exactly once and the sync state says the backlog is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_backfill_loses_and_duplicates_nothing() {
    const N: usize = 3000;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    let t = Instant::now();
    dovecot
        .append_many(ALICE, "INBOX", (1..=N).map(numbered))
        .await;
    eprintln!("appended {N} messages in {:?}", t.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    // Small batches (many commits to die between); the schedule is the only wake-up once the
    // dead process's lease has expired (10 s), as it would be in production.
    let config = write_email_config(
        dir.path(),
        &sqlite_url(dir.path()),
        &channel_toml(
            &dovecot,
            sink.port,
            ", idle = false, schedule = \"*/2 * * * * *\", batch_size = 50",
            "",
        ),
    );
    let token = admin_token(&config);
    let mut daemon = Daemon::start(dir.path(), &config);
    let started = Instant::now();
    let before = eventually(60, || async {
        let (n, _) = sqlite_counts(dir.path()).await;
        (n >= (N / 4) as i64).then_some(n)
    })
    .await;
    daemon.kill9();
    let (at_kill, dups) = sqlite_counts(dir.path()).await;
    eprintln!(
        "killed after {:?} with {at_kill} of {N} stored (saw {before})",
        started.elapsed()
    );
    assert!(at_kill < N as i64, "the backfill was already complete");
    assert_eq!(dups, 0);

    let restarted = Instant::now();
    let daemon = Daemon::start(dir.path(), &config);
    let n = eventually(90, || async {
        let (n, _) = sqlite_counts(dir.path()).await;
        (n >= N as i64).then_some(n)
    })
    .await;
    eprintln!("all {N} stored {:?} after the restart", restarted.elapsed());
    let state = eventually(20, || async {
        sync_state(&daemon, &token, "INBOX")
            .await
            .filter(|s| s["backlog_done"] == s["backlog_total"] && !s["last_success_at"].is_null())
    })
    .await;
    eprintln!("sync state: {state}");
    let (n2, dups) = sqlite_counts(dir.path()).await;
    assert_eq!(n, N as i64);
    assert_eq!(n2, N as i64, "nothing more after completion");
    assert_eq!(dups, 0, "no Message-ID stored twice");
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(state["stored"], N, "{state}");
    assert_eq!(state["last_uid"], N, "{state}");
    // Every message has one journal entry; the journal and the messages agree.
    let db = dir.path().join("switchboard.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open db");
    let (journal,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM inbound_events WHERE channel_id = 'acme-mail' AND kind = 'message'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("journal");
    assert_eq!(journal, N as i64);
    let (total_count,): (i64,) =
        sqlx::query_as("SELECT COALESCE(SUM(message_count), 0) FROM conversations")
            .fetch_one(&mut conn)
            .await
            .expect("message counts");
    assert_eq!(total_count, N as i64, "conversation counters agree");
    // The run after the restart resumed at the cursor (the last committed batch) and
    // recorded its backlog as done: total = done = what was left at the kill.
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE type = 'channel.updated' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("events");
    let runs: Vec<Value> = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|p| p["folder"] == "INBOX" && p["backlog_total"].as_i64().unwrap_or(0) > 0)
        .collect();
    let left = N as i64 - at_kill;
    assert!(
        runs.iter().any(|p| p["backlog_total"] == left
            && p["backlog_done"] == left
            && p["sync_error"].is_null()),
        "no completed run of the remaining {left}: {runs:?}"
    );
    assert_eq!(
        runs[0]["backlog_total"], N,
        "the first run saw the whole folder"
    );
}

/// 4. A UIDVALIDITY change (and a recreated folder) re-fetches everything and creates
///    nothing twice; `switchboard sync --once` reports the resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_resyncs_without_duplicates() {
    const N: usize = 20;
    const M: usize = 5;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot.doveadm(&["mailbox", "create", "-u", ALICE.name, "Support"]);
    let inbox: Vec<Vec<u8>> = (1..=N).map(numbered).collect();
    let support: Vec<Vec<u8>> = (N + 1..=N + M).map(numbered).collect();
    dovecot.append_many(ALICE, "INBOX", inbox.clone()).await;
    dovecot.append_many(ALICE, "Support", support.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_email_config(
        dir.path(),
        &sqlite_url(dir.path()),
        &channel_toml(
            &dovecot,
            sink.port,
            &format!(", folders = [\"INBOX\", \"Support\"], schedule = \"{NEVER}\""),
            "",
        ),
    );
    let sync = |what: &str| {
        let (ok, out, err) = cli_output(&config, &["sync", "--once", "--channel", CHANNEL]);
        eprintln!("sync --once ({what}): {out}");
        assert!(ok, "sync --once failed: {out}\n{err}");
        assert!(!out.contains("skipped"), "{what}: {out}\n{err}");
        out
    };
    let out = sync("first");
    assert!(
        out.contains(&format!("INBOX: {N} fetched, {N} stored, 0 duplicates"))
            && out.contains(&format!("Support: {M} fetched, {M} stored, 0 duplicates")),
        "{out}"
    );
    assert!(!out.contains("resynced"), "{out}");
    assert_eq!(sqlite_counts(dir.path()).await, ((N + M) as i64, 0));

    // Nothing new: nothing fetched (and the one-shot run gave its lease back).
    let out = sync("again");
    assert!(
        out.contains("INBOX: 0 fetched, 0 stored") && out.contains("Support: 0 fetched, 0 stored"),
        "{out}"
    );

    // The server announces a new UIDVALIDITY for INBOX (UIDs unchanged); Support is
    // deleted and recreated with the same messages (new UIDVALIDITY, UIDs from 1) plus one.
    let old = dovecot.status(ALICE, "INBOX", "uidvalidity");
    dovecot.set_uid_validity(ALICE, "INBOX", u32::try_from(old + 1000).expect("u32"));
    dovecot.recreate_folder(ALICE, "Support");
    let mut again = support.clone();
    again.push(numbered(N + M + 1));
    dovecot.append_many(ALICE, "Support", again).await;
    let out = sync("after the UIDVALIDITY changes");
    assert!(
        out.contains(&format!(
            "INBOX: {N} fetched, 0 stored, {N} duplicates, 0 bounce statuses (UIDVALIDITY changed: resynced)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Support: {} fetched, 1 stored, {M} duplicates, 0 bounce statuses (UIDVALIDITY changed: resynced)",
            M + 1
        )),
        "{out}"
    );
    assert_eq!(sqlite_counts(dir.path()).await, ((N + M + 1) as i64, 0));
    // And the run after that is quiet again: the cursors moved to the new UIDVALIDITYs.
    let out = sync("after the resync");
    assert!(!out.contains("resynced"), "{out}");
    assert!(
        out.contains("INBOX: 0 fetched") && out.contains("Support: 0 fetched"),
        "{out}"
    );

    // The API shows both folders synced without error at their new UIDVALIDITYs.
    let token = admin_token(&config);
    let daemon = Daemon::start(dir.path(), &config);
    for (folder, stored) in [("INBOX", N), ("Support", M + 1)] {
        let state = sync_state(&daemon, &token, folder).await.expect("state");
        assert!(state["last_error"].is_null(), "{state}");
        assert_eq!(
            state["uidvalidity"].as_u64(),
            Some(dovecot.status(ALICE, folder, "uidvalidity")),
            "{state}"
        );
        assert_eq!(state["stored"], stored, "{state}");
    }
}

/// 5. Postfix bounces a reply to an unknown local user into a DSN to alice; the sync turns
///    it into the reply's `failed` status and opens no conversation for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_of_our_reply_marks_it_failed_and_opens_nothing() {
    install_crypto();
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_email_config(
        dir.path(),
        &sqlite_url(dir.path()),
        &channel_toml(
            &dovecot,
            postfix.smtp_port,
            &format!(", idle = true, schedule = \"{NEVER}\""),
            "",
        ),
    );
    let token = admin_token(&config);
    let daemon = Daemon::start(dir.path(), &config);
    wait_for_imap_session(&dovecot, ALICE.name).await;

    // A message from an address that has no mailbox on the server.
    let ghost = format!("nosuchuser@{DOMAIN}");
    let first = mail(
        &ghost,
        &alice(),
        "Refund please",
        "<ghost-1@example.test>",
        "",
        "I want my money back.",
    );
    dovecot.lmtp_deliver(&ghost, &alice(), &first).await;
    let conv = eventually(15, || async {
        conversations(&daemon, &token).await.into_iter().next()
    })
    .await;
    let conv_id = conv["id"].as_str().expect("id").to_string();

    let (status, reply) = daemon
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv_id}/messages"),
            &token,
            Some(json!({"text": "Your refund is on its way."})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let reply_id = reply["id"].as_str().expect("id").to_string();
    // Postfix accepts it (sent), LMTP refuses the recipient, Postfix bounces to alice, the
    // daemon syncs the DSN: failed.
    let failed = eventually(30, || async {
        messages(&daemon, &token, &conv_id)
            .await
            .into_iter()
            .find(|m| m["id"] == reply_id && m["delivery_status"] == "failed")
    })
    .await;
    eprintln!("bounced reply: {failed}");
    let provider_id = failed["provider_message_id"].as_str().expect("provider id");
    assert!(
        provider_id.ends_with(&format!("@{DOMAIN}")),
        "{provider_id}"
    );
    assert_eq!(failed["error_code"], "5.1.1", "{failed}");
    let diagnostic = failed["error_message"].as_str().unwrap_or_default();
    assert!(
        diagnostic
            .to_ascii_lowercase()
            .contains("user doesn't exist")
            || diagnostic.contains("550"),
        "{failed}"
    );
    assert!(
        postfix.log().contains("status=bounced"),
        "{}",
        postfix.log()
    );
    // The DSN is in alice's INBOX (it was fetched), but it is no conversation and no message.
    assert_eq!(dovecot.status(ALICE, "INBOX", "messages"), 2);
    let convs = conversations(&daemon, &token).await;
    assert_eq!(convs.len(), 1, "{convs:?}");
    assert_eq!(convs[0]["message_count"], 2);
    let msgs = messages(&daemon, &token, &conv_id).await;
    assert!(
        msgs.iter().all(|m| !m["sender"]
            .as_str()
            .unwrap_or_default()
            .contains("MAILER-DAEMON")),
        "{msgs:?}"
    );
    let (n, dups) = sqlite_counts(dir.path()).await;
    assert_eq!((n, dups), (1, 0), "only the customer's message is inbound");
    let state = sync_state(&daemon, &token, "INBOX").await.expect("state");
    assert!(state["last_error"].is_null(), "{state}");
    // The cursor moved past the DSN (UID 2); only the customer's message counts as stored.
    // (`seen` counts only what was handed to the store, so the bounce is not in it.)
    assert_eq!(state["last_uid"], 2, "{state}");
    assert_eq!(state["stored"], 1, "{state}");
}

/// 6. Two daemons on one PostgreSQL database with the same mailbox: 500 messages stored
///    exactly once (the lease lets one replica sync at a time), mail arriving later too, and
///    after `kill -9` of the lease holder the other replica takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_store_each_message_once() {
    const N: usize = 500;
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot
        .append_many(ALICE, "INBOX", (1..=N).map(numbered))
        .await;
    let db = fresh_pg_url().await;
    let channel = channel_toml(
        &dovecot,
        sink.port,
        ", idle = true, schedule = \"*/1 * * * * *\", batch_size = 50",
        "",
    );
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let config_a = write_email_config(dir_a.path(), &db, &channel);
    let config_b = write_email_config(dir_b.path(), &db, &channel);
    let token = admin_token(&config_a);
    let started = Instant::now();
    let a = Daemon::start(dir_a.path(), &config_a);
    let b = Daemon::start(dir_b.path(), &config_b);
    eventually(60, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= N as i64).then_some(())
    })
    .await;
    eprintln!("{N} stored by two replicas in {:?}", started.elapsed());

    // More mail while both run (both IDLE: both wake, one syncs).
    dovecot
        .append_many(ALICE, "INBOX", (N + 1..=N + 20).map(numbered))
        .await;
    eventually(30, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= (N + 20) as i64).then_some(())
    })
    .await;
    let state = eventually(20, || async {
        sync_state(&b, &token, "INBOX")
            .await
            .filter(|s| s["last_uid"] == N + 20 && s["backlog_done"] == s["backlog_total"])
    })
    .await;
    let (n, dups) = pg_counts(&db).await;
    assert_eq!(n, (N + 20) as i64);
    assert_eq!(dups, 0, "no Message-ID stored twice");
    assert!(state["last_error"].is_null(), "{state}");
    assert_eq!(state["stored"], N + 20, "{state}");
    // Both replicas were up the whole time, and between them they stored each message once.
    let stored_by = |log: &str| -> usize {
        log.lines()
            .filter(|l| l.contains("mailbox synced"))
            .flat_map(|l| {
                l.split(" fetched, ")
                    .skip(1)
                    .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    let (sa, sb) = (stored_by(&a.log()), stored_by(&b.log()));
    eprintln!("replica A stored {sa}, replica B stored {sb}");
    assert_eq!(sa + sb, N + 20, "A:\n{}\nB:\n{}", a.log(), b.log());

    // The replica holding the lease dies (kill -9): the other takes over once the lease
    // has expired (lease_secs = 10) and stores what arrives next, once.
    let (mut holder, standby) = if sa >= sb { (a, b) } else { (b, a) };
    let standby_before = stored_by(&standby.log());
    holder.kill9();
    let killed = Instant::now();
    dovecot
        .append_many(ALICE, "INBOX", (N + 21..=N + 50).map(numbered))
        .await;
    eventually(40, || async {
        let (n, _) = pg_counts(&db).await;
        (n >= (N + 50) as i64).then_some(())
    })
    .await;
    eprintln!(
        "the standby replica took over {:?} after the holder was killed",
        killed.elapsed()
    );
    let (n, dups) = pg_counts(&db).await;
    assert_eq!((n, dups), ((N + 50) as i64, 0));
    assert_eq!(
        stored_by(&standby.log()) - standby_before,
        30,
        "{}",
        standby.log()
    );
}
