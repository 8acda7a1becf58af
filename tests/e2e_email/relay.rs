//! Mail through Postfix: new mail reaches the API over IDLE in seconds, a reply threads in the
//! customer's mailbox and the answer comes back, and a bounce of our reply marks it failed.

use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_email::imap::{Mailbox, Security};
use switchboard_testkit::eventually;
use switchboard_testkit::mail::DOMAIN;
use switchboard_testkit::mail::dovecot::{ALICE, BOB};

use crate::support::*;

/// 1. SMTP → Postfix → LMTP → Dovecot → IDLE → the daemon's sync → the API, in seconds,
///    with a schedule that never ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_arrives_through_postfix_and_idle_within_seconds() {
    let PostfixEnv {
        daemon,
        token,
        postfix,
        dovecot,
    } = with_postfix("").await;
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
    let PostfixEnv {
        daemon,
        token,
        postfix,
        dovecot,
    } = with_postfix("sent_folder = \"Sent\"").await;

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

/// 5. Postfix bounces a reply to an unknown local user into a DSN to alice; the sync turns
///    it into the reply's `failed` status and opens no conversation for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_of_our_reply_marks_it_failed_and_opens_nothing() {
    let PostfixEnv {
        daemon,
        token,
        postfix,
        dovecot,
    } = with_postfix("").await;

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
    let (n, dups) = sqlite_counts(daemon.dir.path()).await;
    assert_eq!((n, dups), (1, 0), "only the customer's message is inbound");
    // The bounce's status is committed before the batch that moves the cursor past it, so
    // the cursor may trail the status by a moment.
    let state = eventually(30, || async {
        sync_state(&daemon, &token, "INBOX")
            .await
            .filter(|s| s["last_uid"] == 2)
    })
    .await;
    assert!(state["last_error"].is_null(), "{state}");
    // The cursor moved past the DSN (UID 2); only the customer's message counts as stored.
    // (`seen` counts only what was handed to the store, so the bounce is not in it.)
    assert_eq!(state["last_uid"], 2, "{state}");
    assert_eq!(state["stored"], 1, "{state}");
}
