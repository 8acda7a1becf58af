//! The IMAP client layer against a real Dovecot that each test starts for itself (the test
//! kit): plain, STARTTLS and TLS with a test CA; error classes; bounded batch
//! fetching of a 1,000-message folder; the first-sync window; UIDVALIDITY changes; IDLE
//! wake-ups (LMTP delivery, APPEND from another connection, reconnect after a kick);
//! APPEND to Sent.

use switchboard_testkit::mail as servers;

use futures::StreamExt;
use servers::dovecot::{ALICE, BOB};
use servers::{DOMAIN, Dovecot, install_crypto, test_message};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_email::imap::{
    AuthMethod, Backoff, FetchedMessage, IdleEvent, ImapError, Mailbox, Security, watch_folder,
};
use tokio::sync::Notify;

fn numbered(i: usize) -> Vec<u8> {
    let body = format!("message number {i}\r\n{}", "padding line\r\n".repeat(i % 7));
    test_message(
        "sender@remote.test",
        &format!("alice@{DOMAIN}"),
        &format!("n{i}"),
        &format!("<n{i}@remote.test>"),
        &body,
    )
}

async fn collect(mb: &mut Mailbox, after: u32, batch: u32) -> Vec<FetchedMessage> {
    let stream = mb.fetch_batches(after, batch);
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(m) = stream.next().await {
        out.push(m.expect("fetch"));
    }
    out
}

#[tokio::test]
async fn plain_starttls_and_tls_logins_select_with_condstore() {
    install_crypto();
    let dovecot = Dovecot::start();
    dovecot.append(ALICE, "INBOX", numbered(1)).await;
    for security in [Security::Plain, Security::Starttls, Security::Tls] {
        let config = dovecot.imap_config(security, ALICE);
        let mut mb = Mailbox::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{security:?}: {e}"));
        assert!(mb.has_capability("IDLE") && mb.has_capability("CONDSTORE"));
        let state = mb.select("INBOX").await.unwrap();
        assert_eq!((state.exists, state.uid_next), (1, Some(2)), "{security:?}");
        assert!(state.uid_validity > 0);
        assert!(
            state.highest_modseq.is_some_and(|m| m > 0),
            "CONDSTORE gives HIGHESTMODSEQ"
        );
        let ro = mb.examine("INBOX").await.unwrap();
        assert_eq!(ro.uid_validity, state.uid_validity);
        assert!(ro.highest_modseq.is_some());
        mb.logout().await;
    }
    // AUTHENTICATE PLAIN, and a password that needs quoting for LOGIN.
    let mut config = dovecot.imap_config(Security::Tls, BOB);
    Mailbox::connect(&config)
        .await
        .expect("LOGIN with quotes in the password");
    config.auth = AuthMethod::Plain;
    let mut mb = Mailbox::connect(&config).await.expect("AUTHENTICATE PLAIN");
    assert_eq!(mb.select("INBOX").await.unwrap().exists, 0);
}

#[tokio::test]
async fn failures_are_classified() {
    install_crypto();
    let dovecot = Dovecot::start();
    let mut config = dovecot.imap_config(Security::Tls, ALICE);
    config.password = Some("wrong".into());
    let err = Mailbox::connect(&config).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Auth(_)) && err.is_permanent(),
        "{err:?}"
    );

    // Without the test CA the certificate does not verify: permanent.
    let mut config = dovecot.imap_config(Security::Tls, ALICE);
    config.ca_file = None;
    let err = Mailbox::connect(&config).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Tls { .. }) && err.is_permanent(),
        "{err:?}"
    );

    // The right CA but the wrong name.
    let mut config = dovecot.imap_config(Security::Tls, ALICE);
    config.tls_server_name = Some("imap.elsewhere.test".into());
    assert!(Mailbox::connect(&config).await.unwrap_err().is_permanent());

    // A missing folder is permanent; a closed port is transient.
    let mut mb = Mailbox::connect(&dovecot.imap_config(Security::Plain, ALICE))
        .await
        .unwrap();
    let err = mb.select("No/Such/Folder").await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    let mut config = dovecot.imap_config(Security::Plain, ALICE);
    config.port = Some(servers::free_port());
    let err = Mailbox::connect(&config).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Connect { .. }) && err.is_transient(),
        "{err:?}"
    );

    // A TLS client talking to the plain port: a configuration error, permanent.
    let mut config = dovecot.imap_config(Security::Tls, ALICE);
    config.port = Some(dovecot.imap_port);
    let err = Mailbox::connect(&config).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Tls { .. }) && err.is_permanent(),
        "{err:?}"
    );

    // A server that accepts and never speaks: a timeout (transient), not a hang.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = dovecot.imap_config(Security::Plain, ALICE);
    config.port = Some(silent.local_addr().unwrap().port());
    config.timeout_secs = 1;
    let t = Instant::now();
    let err = Mailbox::connect(&config).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Timeout(_)) && err.is_transient(),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn thousand_messages_stream_in_bounded_batches_in_uid_order() {
    install_crypto();
    let dovecot = Dovecot::start();
    let t = Instant::now();
    dovecot
        .append_many(ALICE, "INBOX", (1..=1000).map(numbered))
        .await;
    eprintln!("appended 1000 in {:?}", t.elapsed());

    let mut mb = Mailbox::connect(&dovecot.imap_config(Security::Plain, ALICE))
        .await
        .unwrap();
    let state = mb.select("INBOX").await.unwrap();
    assert_eq!((state.exists, state.uid_next), (1000, Some(1001)));
    let t = Instant::now();
    let all = collect(&mut mb, 0, 64).await;
    eprintln!("fetched 1000 in {:?}", t.elapsed());
    assert_eq!(all.len(), 1000);
    for (i, m) in all.iter().enumerate() {
        let n = i + 1;
        assert_eq!(m.uid as usize, n, "every UID once, ascending");
        assert_eq!(m.raw, numbered(n), "body of UID {n}");
        assert_eq!(m.size, Some(m.raw.len() as u32));
        assert!(m.internal_date.is_some() && m.modseq.is_some());
        assert!(
            !m.flags.iter().any(|f| f == "\\Seen"),
            "BODY.PEEK sets no flag"
        );
    }
    let stats = mb.fetch_stats();
    assert_eq!(
        (stats.batches, stats.messages, stats.largest_batch),
        (16, 1000, 64),
        "{stats:?}"
    );

    // Resuming after a cursor.
    let rest = collect(&mut mb, 990, 4).await;
    assert_eq!(
        rest.iter().map(|m| m.uid).collect::<Vec<_>>(),
        (991..=1000).collect::<Vec<_>>()
    );
    assert!(
        collect(&mut mb, 1000, 50).await.is_empty(),
        "nothing after the last UID"
    );

    // A byte budget splits batches further.
    let mut config = dovecot.imap_config(Security::Plain, ALICE);
    config.max_batch_bytes = 2_000;
    let mut small = Mailbox::connect(&config).await.unwrap();
    small.examine("INBOX").await.unwrap();
    let got = collect(&mut small, 0, 200).await;
    assert_eq!(got.len(), 1000);
    let stats = small.fetch_stats();
    assert!(
        stats.largest_batch_bytes <= 2_000 && stats.largest_batch < 200,
        "{stats:?}"
    );

    // Flags come through; the first-sync window leaves out old mail.
    dovecot
        .append_dated(ALICE, "INBOX", numbered(2001), "01-Jan-2001 00:00:00 +0000")
        .await;
    let recent = mb.uid_search_since(30).await.unwrap();
    assert_eq!(recent, (1..=1000).collect::<Vec<_>>());
    let old = mb.uid_search("BEFORE 1-Jan-2002").await.unwrap();
    assert_eq!(old, vec![1001]);
    let picked: Vec<_> = {
        let s = mb.fetch_uids(vec![1001, 3, 2], 2);
        futures::pin_mut!(s);
        let mut v = Vec::new();
        while let Some(m) = s.next().await {
            v.push(m.unwrap());
        }
        v
    };
    assert_eq!(
        picked.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2, 3, 1001]
    );
    assert_eq!(picked[2].internal_date.map(|d| d.year()), Some(2001));
    // A UID that does not exist (expunged in between) is skipped, not an error.
    let s = mb.fetch_uids(vec![5, 123_456], 10);
    futures::pin_mut!(s);
    assert_eq!(s.next().await.unwrap().unwrap().uid, 5);
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn uidvalidity_changes_are_visible() {
    install_crypto();
    let dovecot = Dovecot::start();
    dovecot
        .append_many(ALICE, "INBOX", (1..=3).map(numbered))
        .await;
    let config = dovecot.imap_config(Security::Plain, ALICE);
    let before = Mailbox::connect(&config)
        .await
        .unwrap()
        .select("INBOX")
        .await
        .unwrap();
    dovecot.set_uid_validity(ALICE, "INBOX", before.uid_validity + 1000);
    let after = Mailbox::connect(&config)
        .await
        .unwrap()
        .select("INBOX")
        .await
        .unwrap();
    assert_eq!(after.uid_validity, before.uid_validity + 1000);
    assert_eq!(after.uid_next, before.uid_next, "doveadm keeps the UIDs");
    assert_eq!(
        u64::from(after.uid_validity),
        dovecot.status(ALICE, "INBOX", "uidvalidity")
    );

    // A recreated folder: new UIDVALIDITY and UIDs from 1 again.
    dovecot.doveadm(&["mailbox", "create", "-u", ALICE.name, "Archive"]);
    dovecot
        .append_many(ALICE, "Archive", (1..=3).map(numbered))
        .await;
    let first = Mailbox::connect(&config)
        .await
        .unwrap()
        .select("Archive")
        .await
        .unwrap();
    dovecot.recreate_folder(ALICE, "Archive");
    dovecot.append(ALICE, "Archive", numbered(9)).await;
    let mut mb = Mailbox::connect(&config).await.unwrap();
    let second = mb.select("Archive").await.unwrap();
    assert_ne!(second.uid_validity, first.uid_validity);
    assert_eq!(second.uid_next, Some(2));
    assert_eq!(collect(&mut mb, 0, 10).await[0].raw, numbered(9));
}

#[tokio::test]
async fn idle_wait_returns_on_new_mail_and_timeout() {
    install_crypto();
    let dovecot = Dovecot::start();
    let config = dovecot.imap_config(Security::Tls, ALICE);
    let mut mb = Mailbox::connect(&config).await.unwrap();
    mb.examine("INBOX").await.unwrap();
    let (mb, event) = mb
        .idle_wait(Duration::from_millis(300), std::future::pending())
        .await
        .unwrap();
    assert_eq!(event, IdleEvent::Timeout);

    let deliver = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let msg = numbered(1);
        dovecot
            .lmtp_deliver("sender@remote.test", &format!("alice@{DOMAIN}"), &msg)
            .await;
        Instant::now()
    };
    let wait = mb.idle_wait(Duration::from_secs(30), std::future::pending());
    let ((mut mb, event), delivered) = tokio::join!(async { wait.await.unwrap() }, deliver);
    assert_eq!(event, IdleEvent::NewMail);
    eprintln!(
        "IDLE woke {:?} after the LMTP delivery",
        delivered.elapsed()
    );
    assert!(delivered.elapsed() < Duration::from_secs(5));
    // The session is usable after DONE and sees the delivered message.
    let got = collect(&mut mb, 0, 10).await;
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].raw).contains("message number 1"));
    // EXISTS arriving between commands is noticed (unsolicited responses are drained).
    assert!(!mb.take_new_mail());
    let rcpt = format!("alice@{DOMAIN}");
    dovecot
        .lmtp_deliver("sender@remote.test", &rcpt, &numbered(2))
        .await;
    mb.noop().await.unwrap();
    assert!(mb.take_new_mail());
    assert_eq!(mb.exists(), 2);
    let (_mb, event) = mb
        .idle_wait(Duration::from_secs(30), async {})
        .await
        .unwrap();
    assert_eq!(event, IdleEvent::Stopped);
}

#[tokio::test]
async fn watch_wakes_on_delivery_and_append_and_survives_a_kick() {
    install_crypto();
    let dovecot = Arc::new(Dovecot::start());
    let config = dovecot.imap_config(Security::Starttls, ALICE);
    let notify = Arc::new(Notify::new());
    let stop = Arc::new(Notify::new());
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let task = {
        let (notify, stop, events) = (notify.clone(), stop.clone(), events.clone());
        tokio::spawn(async move {
            let backoff = Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
            };
            watch_folder(&config, "INBOX", notify, backoff, stop.notified(), |e| {
                events.lock().unwrap().push(format!("{e:?}"));
            })
            .await
        })
    };
    let woken = |what: &'static str| {
        let notify = notify.clone();
        async move {
            let t = Instant::now();
            tokio::time::timeout(Duration::from_secs(5), notify.notified())
                .await
                .unwrap_or_else(|_| panic!("not woken ({what}) within 5 s"));
            eprintln!("woken ({what}) after {:?}", t.elapsed());
        }
    };
    woken("connected").await;
    // Let the watcher enter IDLE, then deliver through LMTP.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rcpt = format!("alice@{DOMAIN}");
    let (m1, m3) = (numbered(1), numbered(3));
    let (_, ()) = tokio::join!(
        dovecot.lmtp_deliver("a@remote.test", &rcpt, &m1),
        woken("LMTP")
    );
    // APPEND from a second connection.
    let (_, ()) = tokio::join!(dovecot.append(ALICE, "INBOX", numbered(2)), woken("APPEND"));
    // The server drops the connection: the watcher reconnects (and wakes: mail may have come).
    dovecot.doveadm(&["kick", ALICE.name]);
    woken("reconnected").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, ()) = tokio::join!(
        dovecot.lmtp_deliver("a@remote.test", &rcpt, &m3),
        woken("after reconnect")
    );
    stop.notify_one();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("watch stops")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().filter(|e| e.starts_with("Connected")).count() >= 2,
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("Disconnected")),
        "{events:?}"
    );
}

#[tokio::test]
async fn watch_ends_with_a_permanent_error() {
    install_crypto();
    let dovecot = Dovecot::start();
    let mut config = dovecot.imap_config(Security::Plain, ALICE);
    config.password = Some("wrong".into());
    let notify = Arc::new(Notify::new());
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        watch_folder(
            &config,
            "INBOX",
            notify,
            Backoff::default(),
            std::future::pending(),
            |_| {},
        ),
    )
    .await
    .expect("a permanent error ends the watch at once");
    assert!(matches!(r, Err(ImapError::Auth(_))), "{r:?}");
}

#[tokio::test]
async fn append_to_sent_is_stored_with_flags() {
    install_crypto();
    let dovecot = Dovecot::start();
    let mut mb = Mailbox::connect(&dovecot.imap_config(Security::Tls, ALICE))
        .await
        .unwrap();
    let raw = test_message(
        &format!("alice@{DOMAIN}"),
        "jane@remote.test",
        "Re: hi",
        "<out1@example.test>",
        "sent text",
    );
    mb.append("Sent", &raw, &["\\Seen"]).await.unwrap();
    mb.create_folder("Outbox/Archive").await.unwrap();
    mb.create_folder("Outbox/Archive")
        .await
        .expect("creating an existing folder is fine");
    mb.append("Outbox/Archive", &raw, &[]).await.unwrap();
    let err = mb.append("Nope", &raw, &[]).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    let state = mb.examine("Sent").await.unwrap();
    assert_eq!(state.exists, 1);
    let got = collect(&mut mb, 0, 10).await;
    assert_eq!(got[0].raw, raw);
    assert!(
        got[0].flags.iter().any(|f| f == "\\Seen"),
        "{:?}",
        got[0].flags
    );
    assert_eq!(dovecot.status(ALICE, "Outbox/Archive", "messages"), 1);
}

#[tokio::test]
async fn bearer_token_from_config_or_command() {
    let mut config = switchboard_email::imap::ImapConfig::new("h", Security::Tls, "u");
    config.auth = AuthMethod::Xoauth2;
    config.oauth_token = Some("static".into());
    assert_eq!(
        switchboard_email::imap::bearer_token(&config)
            .await
            .unwrap(),
        "static"
    );
    config.oauth_token_command = Some("printf '  tok-from-cmd\\n'".into());
    assert_eq!(
        switchboard_email::imap::bearer_token(&config)
            .await
            .unwrap(),
        "tok-from-cmd"
    );
    config.oauth_token_command = Some("exit 3".into());
    let err = switchboard_email::imap::bearer_token(&config)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
