//! SMTP sending against real servers started by each test (the test kit): Postfix's
//! `smtp-sink` records envelopes and data (threading headers, Bcc, error classes, the
//! pool), and a full Postfix relays into Dovecot over LMTP: STARTTLS and implicit TLS with
//! SASL, a reply that threads in the recipient's mailbox, and the inbound path
//! swaks → Postfix → LMTP → Dovecot → IMAP IDLE → fetch.

use switchboard_testkit::mail as servers;

use futures::StreamExt;
use servers::dovecot::{ALICE, BOB};
use servers::{DOMAIN, Dovecot, Postfix, SmtpSink, install_crypto};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::domain::model::SendError;
use switchboard_email::imap::{Backoff, FetchedMessage, Mailbox, Security, watch_folder};
use switchboard_email::smtp::{
    MailReply, OutgoingAttachment, SmtpConfig, SmtpError, SmtpSecurity, SmtpSender, build_reply,
    envelope,
};
use tokio::sync::Notify;

fn sink_config(port: u16) -> SmtpConfig {
    let mut c = SmtpConfig::new("127.0.0.1", SmtpSecurity::Plain);
    c.port = Some(port);
    c.hello_name = Some("switchboard.test".into());
    c.timeout_secs = 10;
    c
}

fn reply_draft(to: &str) -> MailReply {
    MailReply {
        from_address: format!("support@{DOMAIN}"),
        from_name: Some("Acme Support".into()),
        to: vec![format!("Jane Doe <{to}>")],
        cc: vec!["cc@remote.test".into()],
        bcc: vec!["hidden@remote.test".into()],
        subject: "Where is my order?".into(),
        is_reply: true,
        in_reply_to: Some("<parent@remote.test>".into()),
        references: vec!["<root@remote.test>".into()],
        reply_token: Some("c0nv-42".into()),
        text: "Hello Jane,\n\nit ships today.\n".into(),
        html: Some("<p>Hello Jane,</p><p>it ships <b>today</b>.</p>".into()),
        attachments: vec![OutgoingAttachment {
            filename: "label.pdf".into(),
            content_type: "application/pdf".into(),
            content_id: None,
            bytes: b"%PDF-1.4 test".to_vec(),
        }],
        ..MailReply::default()
    }
}

#[tokio::test]
async fn reply_through_smtp_sink_has_envelope_and_threading_headers() {
    install_crypto();
    let sink = SmtpSink::start(&[]);
    let sender = SmtpSender::new(&sink_config(sink.port)).await.unwrap();
    let built = build_reply(&reply_draft("jane@remote.test")).unwrap();
    let receipt = sender.send(&built.message).await.unwrap();
    assert_eq!(receipt.code, 250);
    let got = sink.wait_for(1, Duration::from_secs(5));
    let m = &got[0];
    assert_eq!(m.mail_from, format!("support@{DOMAIN}"));
    let mut rcpts = m.rcpt_to.clone();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["cc@remote.test", "hidden@remote.test", "jane@remote.test"]
    );
    assert_eq!(m.header("Message-ID"), Some(built.message_id.clone()));
    assert!(built.message_id.ends_with(&format!("@{DOMAIN}>")));
    assert_eq!(
        m.header("In-Reply-To").as_deref(),
        Some("<parent@remote.test>")
    );
    assert_eq!(
        m.header("References").as_deref(),
        Some("<root@remote.test> <parent@remote.test>")
    );
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Re: Where is my order?")
    );
    let reply_to = m.header("Reply-To").unwrap();
    assert!(
        reply_to.contains(&format!("support+c0nv-42@{DOMAIN}")),
        "{reply_to}"
    );
    assert!(m.header("Bcc").is_none(), "Bcc never reaches the wire");
    assert!(m.data.contains("label.pdf") && m.data.contains("multipart/alternative"));

    // Raw bytes with an explicit envelope (e.g. a resend).
    let env = envelope(&format!("bounces@{DOMAIN}"), &["other@remote.test"]).unwrap();
    sender.send_raw(&env, &built.raw()).await.unwrap();
    let got = sink.wait_for(2, Duration::from_secs(5));
    let m = got
        .iter()
        .find(|m| m.rcpt_to == ["other@remote.test"])
        .expect("second message");
    assert_eq!(m.mail_from, format!("bounces@{DOMAIN}"));
}

#[tokio::test]
async fn pooled_sender_delivers_concurrent_sends() {
    install_crypto();
    let sink = SmtpSink::start(&[]);
    let sender = SmtpSender::new(&sink_config(sink.port)).await.unwrap();
    let t = Instant::now();
    let sends = (0..20).map(|i| {
        let sender = sender.clone();
        async move {
            let mut d = reply_draft(&format!("r{i}@remote.test"));
            d.bcc.clear();
            d.cc.clear();
            let built = build_reply(&d).unwrap();
            sender.send(&built.message).await.map(|_| built.message_id)
        }
    });
    let ids: Vec<String> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    eprintln!("20 sends in {:?}", t.elapsed());
    let got = sink.wait_for(20, Duration::from_secs(10));
    for id in &ids {
        assert_eq!(
            got.iter()
                .filter(|m| m.header("Message-ID").as_ref() == Some(id))
                .count(),
            1
        );
    }
    sender.shutdown().await;
}

#[tokio::test]
async fn smtp_errors_are_classified() {
    install_crypto();
    let built = build_reply(&reply_draft("jane@remote.test")).unwrap();
    // 5xx to RCPT: permanent, with the code.
    let hard = SmtpSink::start(&["-f", "RCPT"]);
    let err = SmtpSender::new(&sink_config(hard.port))
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Permanent {
                code: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    match SendError::from(err) {
        SendError::Permanent { code, .. } => assert_eq!(code, "500"),
        other => panic!("{other:?}"),
    }
    // 4xx to DATA: transient.
    let soft = SmtpSink::start(&["-r", "DATA"]);
    let err = SmtpSender::new(&sink_config(soft.port))
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Transient {
                code: Some(450),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(SendError::from(err), SendError::Transient { .. }));
    // Nobody listening: transient.
    let err = SmtpSender::new(&sink_config(servers::free_port()))
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(err.is_transient() && err.code().is_none(), "{err:?}");
    // The server hangs up in the middle: transient.
    let rude = SmtpSink::start(&["-q", "MAIL"]);
    let err = SmtpSender::new(&sink_config(rude.port))
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

async fn wait_for_messages(
    config: &switchboard_email::imap::ImapConfig,
    n: u32,
) -> Vec<FetchedMessage> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut mb = Mailbox::connect(config).await.unwrap();
        if mb.examine("INBOX").await.unwrap().exists >= n || Instant::now() > deadline {
            let s = mb.fetch_batches(0, 50);
            futures::pin_mut!(s);
            let mut out = Vec::new();
            while let Some(m) = s.next().await {
                out.push(m.unwrap());
            }
            assert!(
                out.len() >= n as usize,
                "only {} of {n} messages arrived",
                out.len()
            );
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or("").replace("\n ", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

#[tokio::test]
async fn reply_through_postfix_threads_in_the_recipients_mailbox() {
    install_crypto();
    let dovecot = Dovecot::start();
    let t = Instant::now();
    let postfix = Postfix::start(&dovecot);
    eprintln!("postfix started in {:?}", t.elapsed());

    // Submission with STARTTLS (test CA) and SASL through Dovecot.
    let mut config = SmtpConfig::new("127.0.0.1", SmtpSecurity::Starttls);
    config.port = Some(postfix.submission_port);
    config.username = Some(ALICE.name.into());
    config.password = Some(ALICE.password.into());
    config.ca_file = Some(dovecot.ca_file.clone());
    config.hello_name = Some("switchboard.test".into());
    let sender = SmtpSender::new(&config).await.unwrap();
    sender.test_connection().await.expect("healthcheck");
    let mut draft = reply_draft(&format!("bob@{DOMAIN}"));
    draft.cc.clear();
    draft.bcc.clear();
    let built = build_reply(&draft).unwrap();
    sender
        .send(&built.message)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", postfix.log()));

    // Implicit TLS too.
    let mut tls = config.clone();
    tls.security = SmtpSecurity::Tls;
    tls.port = Some(postfix.smtps_port);
    let second = build_reply(&MailReply {
        in_reply_to: Some(built.message_id.clone()),
        references: built.references.clone(),
        ..draft.clone()
    })
    .unwrap();
    SmtpSender::new(&tls)
        .await
        .unwrap()
        .send(&second.message)
        .await
        .unwrap();

    let got = wait_for_messages(&dovecot.imap_config(Security::Tls, BOB), 2).await;
    let first = got
        .iter()
        .find(|m| header(&m.raw, "Message-ID") == Some(built.message_id.clone()))
        .expect("first reply");
    assert_eq!(
        header(&first.raw, "In-Reply-To").as_deref(),
        Some("<parent@remote.test>")
    );
    assert_eq!(
        header(&first.raw, "References").as_deref(),
        Some("<root@remote.test> <parent@remote.test>")
    );
    assert_eq!(
        header(&first.raw, "Subject").as_deref(),
        Some("Re: Where is my order?")
    );
    let next = got
        .iter()
        .find(|m| header(&m.raw, "Message-ID") == Some(second.message_id.clone()))
        .expect("second reply");
    assert_eq!(
        header(&next.raw, "In-Reply-To"),
        Some(built.message_id.clone())
    );
    assert_eq!(
        header(&next.raw, "References"),
        Some(format!(
            "<root@remote.test> <parent@remote.test> {}",
            built.message_id
        ))
    );
    assert_eq!(
        header(&next.raw, "Subject").as_deref(),
        Some("Re: Where is my order?"),
        "Re: not doubled"
    );

    // The sent copy goes to Sent over IMAP.
    let mut mb = Mailbox::connect(&dovecot.imap_config(Security::Tls, ALICE))
        .await
        .unwrap();
    mb.append("Sent", &built.raw(), &["\\Seen"]).await.unwrap();
    assert_eq!(dovecot.status(ALICE, "Sent", "messages"), 1);

    // A wrong SMTP password is a permanent 5xx.
    let mut wrong = config.clone();
    wrong.password = Some("nope".into());
    let err = SmtpSender::new(&wrong)
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Permanent {
                code: Some(535),
                ..
            }
        ),
        "{err:?}"
    );
    // Without the test CA, STARTTLS cannot verify the server: permanent.
    let mut no_ca = config.clone();
    no_ca.ca_file = None;
    let err = SmtpSender::new(&no_ca)
        .await
        .unwrap()
        .send(&built.message)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Permanent { code: None, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn inbound_path_swaks_postfix_lmtp_dovecot_idle() {
    install_crypto();
    let swaks = servers::require_binary("swaks");
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let config = dovecot.imap_config(Security::Tls, ALICE);
    let notify = Arc::new(Notify::new());
    let stop = Arc::new(Notify::new());
    let watch = {
        let (config, notify, stop) = (config.clone(), notify.clone(), stop.clone());
        tokio::spawn(async move {
            watch_folder(
                &config,
                "INBOX",
                notify,
                Backoff::default(),
                stop.notified(),
                |_| {},
            )
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), notify.notified())
        .await
        .expect("connected");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t = Instant::now();
    let out = tokio::process::Command::new(swaks)
        .args(["--server", &format!("127.0.0.1:{}", postfix.smtp_port)])
        .args([
            "--from",
            "customer@remote.test",
            "--to",
            &format!("alice@{DOMAIN}"),
        ])
        .args([
            "--header",
            "Subject: Order 42",
            "--header",
            "Message-Id: <inbound-1@remote.test>",
        ])
        .args(["--body", "Where is my order?", "--silent", "2"])
        .output()
        .await
        .expect("run swaks");
    assert!(
        out.status.success(),
        "swaks: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::timeout(Duration::from_secs(10), notify.notified())
        .await
        .unwrap_or_else(|_| panic!("IDLE not woken\n{}", postfix.log()));
    eprintln!(
        "SMTP → Postfix → LMTP → Dovecot → IDLE in {:?}",
        t.elapsed()
    );

    let mut mb = Mailbox::connect(&config).await.unwrap();
    let state = mb.select("INBOX").await.unwrap();
    assert_eq!(state.exists, 1);
    let s = mb.fetch_batches(0, 10);
    futures::pin_mut!(s);
    let m = s.next().await.unwrap().unwrap();
    assert_eq!(
        header(&m.raw, "Message-ID").as_deref(),
        Some("<inbound-1@remote.test>")
    );
    assert!(header(&m.raw, "Received").is_some_and(|r| r.contains("mx.example.test")));
    assert!(String::from_utf8_lossy(&m.raw).contains("Where is my order?"));
    stop.notify_one();
    assert!(watch.await.unwrap().is_ok());
}
