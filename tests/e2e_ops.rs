//! Operations end to end: Prometheus metrics reflect webhooks, ingest, duplicates and sends;
//! JSON logs are one object per line; SIGTERM shuts down cleanly.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_webhooks_ingest_duplicates_and_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let twilio = FakeTwilio::start().await;
    let config = write_config(dir.path(), &twilio.base);
    let admin = cli(
        &config,
        &[
            "token", "create", "--tenant", "acme", "--role", "admin", "--name", "ops",
        ],
    );
    let daemon = Daemon::start(dir.path(), &config);
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
    let (_, list) = daemon
        .api(Method::GET, "/api/v1/conversations", &admin, None)
        .await;
    let conv = list["items"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let (status, _) = daemon
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            &admin,
            Some(json!({"text": "ok"})),
        )
        .await;
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
    let dir = tempfile::tempdir().expect("tempdir");
    let twilio = FakeTwilio::start().await;
    let config = write_config(dir.path(), &twilio.base);
    let mut c = std::process::Command::new(bin());
    c.arg("--config")
        .arg(&config)
        .arg("serve")
        .env("E2E_TWILIO_TOKEN", AUTH_TOKEN)
        .env("SWITCHBOARD_SERVER__LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let base = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("switchboard listening on ")
                    .map(str::to_string)
            })
    })
    .await
    .expect("join")
    .expect("listening");
    assert_eq!(
        http()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        output.status.success(),
        "SIGTERM must end the daemon cleanly: {:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
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
