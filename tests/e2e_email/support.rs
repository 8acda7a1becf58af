//! The email suite's set-up and helpers: the channel's configuration, the daemon on it (with
//! or without Postfix in front), mail builders, a minimal SMTP client, API reads and counts
//! straight from the database.

use serde_json::Value;
use sqlx::Connection;
use std::path::Path;
use switchboard_testkit::mail::dovecot::ALICE;
use switchboard_testkit::mail::{DOMAIN, Dovecot, Postfix, install_crypto};
use switchboard_testkit::{App, AppBuilder, Daemon, eventually, switchboard_bin};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const CHANNEL: &str = "acme-mail";
/// A schedule that never ticks during a test (midnight, January 1st).
pub const NEVER: &str = "0 0 0 1 1 *";

pub fn alice() -> String {
    format!("alice@{DOMAIN}")
}

pub fn bob() -> String {
    format!("bob@{DOMAIN}")
}

/// The `[[channels]]` entry of the email channel: alice's mailbox over plain IMAP, SMTP to
/// `smtp_port` (Postfix, or a sink). `imap_extra` goes into the `imap` table, `extra` after it.
pub fn channel_toml(dovecot: &Dovecot, smtp_port: u16, imap_extra: &str, extra: &str) -> String {
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

/// The daemon with the email channel ([`channel_toml`]) and an admin token (`tokens[0]`).
pub fn email_app(dovecot: &Dovecot, smtp_port: u16, imap_extra: &str, extra: &str) -> AppBuilder {
    App::builder(switchboard_bin!())
        .email(&channel_toml(dovecot, smtp_port, imap_extra, extra))
        .token("acme", "admin", "e2e")
}

/// Dovecot, Postfix relaying into it, and the daemon on alice's mailbox with IDLE and a
/// schedule that never ticks, its IDLE session connected. Fields drop in order: the daemon
/// before the servers it talks to.
pub struct PostfixEnv {
    pub daemon: App,
    pub token: String,
    pub postfix: Postfix,
    pub dovecot: Dovecot,
}

/// [`PostfixEnv`]; `extra` goes after the channel's `imap` and `smtp` tables.
pub async fn with_postfix(extra: &str) -> PostfixEnv {
    install_crypto();
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let idle = format!(", idle = true, schedule = \"{NEVER}\"");
    let daemon = email_app(&dovecot, postfix.smtp_port, &idle, extra)
        .spawn()
        .await;
    wait_for_imap_session(&dovecot, ALICE.name).await;
    let token = daemon.tokens[0].clone();
    PostfixEnv {
        daemon,
        token,
        postfix,
        dovecot,
    }
}

/// A plain-text message (CRLF) with the given headers; `extra` are more header lines.
pub fn mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
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
pub fn numbered(i: usize) -> Vec<u8> {
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
pub fn header(raw: &[u8], name: &str) -> Option<String> {
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
pub fn addr_of(value: &str) -> String {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value.trim().to_string(),
    }
}

/// Sends `message` through an SMTP server (plain SMTP, no auth), as any mail client would.
pub async fn smtp_send(port: u16, from: &str, rcpts: &[&str], message: &[u8]) {
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

pub async fn conversations(d: &Daemon, token: &str) -> Vec<Value> {
    d.get_ok("/api/v1/conversations?limit=100", token).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub async fn messages(d: &Daemon, token: &str, conversation: &str) -> Vec<Value> {
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
pub async fn sync_state(d: &Daemon, token: &str, folder: &str) -> Option<Value> {
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

pub const COUNT_INBOUND: &str =
    "SELECT COUNT(*) FROM messages WHERE channel_id = 'acme-mail' AND direction = 'inbound'";
pub const COUNT_DUPLICATES: &str = "SELECT COUNT(*) FROM (SELECT provider_message_id FROM messages
     WHERE channel_id = 'acme-mail' GROUP BY provider_message_id HAVING COUNT(*) > 1) d";

/// Inbound messages of the channel, and Message-IDs stored more than once (SQLite).
pub async fn sqlite_counts(dir: &Path) -> (i64, i64) {
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
pub async fn pg_counts(url: &str) -> (i64, i64) {
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
pub async fn wait_for_imap_session(dovecot: &Dovecot, user: &str) {
    eventually(15, || async {
        let who = dovecot.doveadm(&["who", user]);
        who.lines()
            .any(|l| l.split_whitespace().next() == Some(user) && l.contains("imap"))
            .then_some(())
    })
    .await;
}
