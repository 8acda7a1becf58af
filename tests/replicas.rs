//! Scale-out: two daemon replicas on one PostgreSQL database share the outbox; every reply
//! reaches the provider exactly once, whichever replica claims it.

use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, Daemon, eventually, switchboard_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_send_a_job_twice() {
    let a = App::builder(switchboard_bin!())
        .postgres()
        .token("acme", "admin", "boss")
        .spawn()
        .await;
    let b = a.replica();
    let (admin, twilio) = (&a.tokens[0], a.twilio());

    let r = a
        .post_twilio(
            "messages",
            &sms_params("SM00000000000000000000000000000777", "+14155550777", "hi"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let conv = b.newest_conversation(admin).await;

    const REPLIES: usize = 60;
    for i in 0..REPLIES {
        // Alternate replicas, so both dispatchers wake and race for the jobs.
        let d: &Daemon = if i % 2 == 0 { &a } else { &b };
        let (status, body) = d.post_reply(admin, &conv, &format!("reply {i}")).await;
        assert_eq!(status, 202, "{body}");
    }
    eventually(30, || async {
        (twilio.requests().len() >= REPLIES).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let requests = twilio.requests();
    for i in 0..REPLIES {
        let body = format!("reply {i}");
        let n = requests
            .iter()
            .filter(|r| r.field("Body") == Some(body.as_str()))
            .count();
        assert_eq!(n, 1, "{body:?} sent {n} times");
    }
    // Both replicas took part (each was woken by the replies it accepted).
    for (name, d) in [("a", a.daemon()), ("b", &b.daemon)] {
        assert!(
            d.log().contains("outbox: sent"),
            "replica {name} sent nothing:\n{}",
            d.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_clients_of_every_replica() {
    let a = App::builder(switchboard_bin!())
        .postgres()
        .token("acme", "agent", "ui")
        .spawn()
        .await;
    let b = a.replica();
    let token = &a.tokens[0];
    // A frontend connected to replica B...
    let mut stream = b
        .http
        .get(format!("{}/api/v1/events", b.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("connect");
    assert_eq!(stream.status(), 200);
    // ...sees a message that arrived through replica A (PostgreSQL LISTEN/NOTIFY).
    let r = a
        .post_twilio(
            "messages",
            &sms_params(
                "SM00000000000000000000000000000888",
                "+14155550888",
                "via A",
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("event: message.created") {
        assert!(
            std::time::Instant::now() < deadline,
            "no event at replica B within 10s: {seen}"
        );
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("chunk within 10s")
            .expect("chunk")
            .expect("open stream");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}
