//! Operations end to end: Prometheus metrics reflect webhooks, ingest, duplicates and sends;
//! JSON logs are one object per line; SIGTERM shuts down cleanly.

use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, eventually, http, switchboard_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_webhooks_ingest_duplicates_and_sends() {
    let daemon = App::builder(switchboard_bin!())
        .token("acme", "admin", "ops")
        .spawn()
        .await;
    let (admin, twilio) = (&daemon.tokens[0], daemon.twilio());
    let params = sms_params("SM00000000000000000000000000000501", "+14155550501", "hi");
    assert_eq!(daemon.post_twilio("messages", &params).await.status(), 200);
    assert_eq!(daemon.post_twilio("messages", &params).await.status(), 200);
    let url = daemon.webhook_url("messages");
    assert_eq!(
        daemon
            .post_form(&url, &params, Some("bogus"))
            .await
            .status(),
        403
    );
    let conv = daemon.newest_conversation(admin).await;
    let (status, _) = daemon.post_reply(admin, &conv, "ok").await;
    assert_eq!(status, 202);
    eventually(10, || async {
        (!twilio.requests().is_empty()).then_some(())
    })
    .await;

    let text = eventually(10, || async {
        let t = daemon
            .http
            .get(format!("{}/metrics", daemon.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains("switchboard_send_attempts_total").then_some(t)
    })
    .await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric line {prefix} in:\n{text}"))
    };
    assert_eq!(
        value(r#"switchboard_webhooks_total{channel="acme-sms",outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        value(r#"switchboard_webhooks_total{channel="acme-sms",outcome="rejected"}"#),
        1.0
    );
    assert_eq!(
        value(r#"switchboard_messages_ingested_total{channel="acme-sms"}"#),
        1.0
    );
    assert_eq!(
        value(r#"switchboard_duplicates_total{channel="acme-sms",kind="message"}"#),
        1.0
    );
    assert_eq!(
        value(r#"switchboard_send_attempts_total{channel="acme-sms",outcome="sent"}"#),
        1.0
    );
    assert!(text.contains("switchboard_http_request_duration_seconds_bucket"));
    assert!(text.contains("switchboard_outbox_depth"));
    assert!(text.contains("switchboard_live_connections"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_graceful_shutdown() {
    let mut app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_SERVER__LOG_FORMAT", "json")
        .spawn()
        .await;
    assert_eq!(
        http()
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    let status = app.daemon_mut().stop();
    assert!(
        status.success(),
        "SIGTERM must end the daemon cleanly: {status:?}"
    );
    let stderr = app.log();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{l}"
        );
    }
    assert!(
        stderr.contains("shutting down") && stderr.contains("stopped"),
        "{stderr}"
    );
}
