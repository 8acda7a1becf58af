//! An attachment over the channel's cap, end to end: a mail with a 30 MB attachment (over
//! the default `max_attachment_bytes` of 25 MiB) reaches the API as a message with its text
//! and the attachment in state `too_large` with its size; downloading it answers 409
//! `attachment_too_large`; and the daemon's peak memory stays bounded (the adversarial run
//! saw the whole attachment stored and 268 MB of RSS).

use base64::Engine;
use switchboard_testkit::mail::dovecot::ALICE;
use switchboard_testkit::mail::{Dovecot, SmtpSink};
use switchboard_testkit::{eventually, install_crypto};

use crate::support::*;

/// Bytes of the attachment: over 25 MiB.
const ATTACHMENT: usize = 30_000_000;

fn oversized_mail() -> Vec<u8> {
    // Varied bytes, so nothing along the way can shrink them much.
    let mut state: u32 = 0x9E37_79B9;
    let bytes: Vec<u8> = (0..ATTACHMENT)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).expect("ascii"));
        lines.push_str("\r\n");
    }
    format!(
        "From: Dan <dan@remote.test>\r\nTo: {to}\r\nSubject: The full log\r\n\
         Message-ID: <huge-1@remote.test>\r\nDate: Thu, 20 Nov 2025 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe log is attached.\r\n\
         --b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"server.log\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{lines}--b--\r\n",
        to = alice(),
    )
    .into_bytes()
}

/// The daemon's peak resident memory (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_over_the_cap_is_not_kept_and_the_message_is() {
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot.append(ALICE, "INBOX", oversized_mail()).await;
    let idle = format!(", idle = true, schedule = \"{NEVER}\"");
    let app = email_app(&dovecot, sink.port, &idle, "").spawn().await;
    let token = app.tokens[0].clone();
    let message = eventually(60, || async {
        let conversation = conversations(&app, &token).await.first()?["id"].clone();
        messages(&app, &token, conversation.as_str()?)
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        message["text"].as_str().map(str::trim),
        Some("The log is attached.")
    );
    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{message}");
    let log = &attachments[0];
    assert_eq!(log["state"], "too_large", "{log}");
    assert!(
        log["size"].as_u64().is_some_and(|n| n >= ATTACHMENT as u64),
        "{log}"
    );
    let id = log["id"].as_str().expect("id");
    let r = app
        .http
        .get(format!("{}/api/v1/attachments/{id}", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "attachment_too_large");
    let pid = app.child.as_ref().expect("our daemon").id();
    let peak = peak_rss_mb(pid);
    eprintln!("peak RSS with a 30 MB attachment: {peak} MB");
    assert!(peak < 200, "peak RSS {peak} MB");
}
