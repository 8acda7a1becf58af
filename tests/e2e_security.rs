//! Security regressions found by an adversarial run, each checked against the real binary.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_testkit::{App, switchboard_bin};

const JWT_SECRET: &str = "e2e-security-jwt-secret-0123456789abcdef";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn jwt(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("encode")
}

async fn jwt_app() -> App {
    App::builder(switchboard_bin!())
        .toml(&format!(
            "[auth]\njwt_algorithm = \"HS256\"\njwt_secret = \"{JWT_SECRET}\"\n"
        ))
        .spawn()
        .await
}

/// A JWT of about `len` characters: real identity-provider tokens carry group lists and
/// 4096-bit RSA signatures (over 512 characters; the old cap).
fn long_jwt(len: usize) -> String {
    let groups: Vec<String> = (0..len / 12).map(|i| format!("group-{i:04}")).collect();
    jwt(json!({"sub": "carol", "tenant": "acme", "exp": now() + 300, "groups": groups}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_jwts_are_accepted_up_to_the_cap() {
    let app = jwt_app().await;
    let token = long_jwt(1500);
    assert!(token.len() > 1500 && token.len() < 8192, "{}", token.len());
    let (status, body) = app
        .api(reqwest::Method::GET, "/api/v1/conversations", &token, None)
        .await;
    assert_eq!(status, 200, "{body}");
    // The same token in the query string of a live stream (browsers' EventSource).
    let resp = app
        .http
        .get(format!("{}/api/v1/events?access_token={token}", app.base))
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    drop(resp);
    // Past the cap: refused before any parsing.
    let huge = long_jwt(9000);
    assert!(huge.len() > 8192);
    let (status, _) = app
        .api(reqwest::Method::GET, "/api/v1/conversations", &huge, None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_secrets_never_reach_the_log_even_at_debug() {
    let app = App::builder(switchboard_bin!())
        .token("acme", "agent", "ui")
        .env("RUST_LOG", "debug")
        .spawn()
        .await;
    let token = app.tokens[0].clone();
    let resp = app
        .http
        .get(format!(
            "{}/api/v1/events?since=0&access_token={token}",
            app.base
        ))
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    drop(resp);
    let resp = app
        .http
        .get(format!("{}/healthz?token=sb_not_a_real_one_42", app.base))
        .send()
        .await
        .expect("healthz");
    drop(resp);
    // The request span is logged at debug; give the writer a moment.
    let mut log = String::new();
    for _ in 0..50 {
        log = app.log();
        if log.contains("access_token=[redacted]") && log.contains("token=[redacted]") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!log.contains(&token), "the API token is in the log");
    assert!(
        !log.contains("sb_not_a_real_one_42"),
        "a query token is in the log"
    );
    assert!(
        log.contains("access_token=[redacted]"),
        "the request line is logged, redacted: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_after_its_stderr_reader_is_gone() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let app = App::builder(switchboard_bin!()).configure().await;
    let mut child = Command::new(&app.bin)
        .arg("--config")
        .arg(&app.config)
        .arg("serve")
        .env(
            switchboard_testkit::config::TOKEN_ENV,
            switchboard_testkit::twilio::AUTH_TOKEN,
        )
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("a line").expect("read stdout");
        if let Some(url) = line.strip_prefix("switchboard listening on ") {
            break url.to_string();
        }
    };
    // `serve 2>&1 | tee` and Ctrl-C: the reader of stderr goes away.
    drop(child.stderr.take());
    // Requests make log lines that now hit a closed pipe.
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let _ = http.get(format!("{base}/healthz")).send().await;
    }
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exited = loop {
        if !matches!(child.try_wait(), Ok(None)) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exited,
        "SIGTERM did not stop a daemon whose stderr reader is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_live_streams_do_not_hold_shutdown() {
    let mut app = App::builder(switchboard_bin!())
        .token("acme", "agent", "ui")
        .env("SWITCHBOARD_SERVER__SHUTDOWN_GRACE_SECS", "2")
        .spawn()
        .await;
    let token = app.tokens[0].clone();
    let mut sse = app
        .http
        .get(format!("{}/api/v1/events", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("connect");
    assert_eq!(sse.status(), 200);
    let ws_url = format!(
        "{}/api/v1/ws?access_token={token}",
        app.base.replacen("http", "ws", 1)
    );
    let (_ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("websocket");
    let started = std::time::Instant::now();
    let daemon = app.daemon_mut();
    let exited = tokio::task::block_in_place(|| daemon.terminate(2 + 5));
    assert!(
        exited,
        "the daemon outlived its grace period with a live client"
    );
    assert!(started.elapsed() < Duration::from_secs(7));
    // The SSE stream ended (not a hung socket).
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the SSE stream did not end");
}

/// Reads a live SSE response until it ends; false if it is still open after `secs`.
async fn ends_within(resp: &mut reqwest::Response, secs: u64) -> bool {
    tokio::time::timeout(Duration::from_secs(secs), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_end_when_their_token_is_revoked_or_expires() {
    let app = App::builder(switchboard_bin!())
        .token("acme", "agent", "ui")
        .token("acme", "agent", "stays")
        .env("SWITCHBOARD_EVENTS__HEARTBEAT_SECS", "1")
        .toml(&format!(
            "[auth]\njwt_algorithm = \"HS256\"\njwt_secret = \"{JWT_SECRET}\"\njwt_leeway_secs = 0\n"
        ))
        .spawn()
        .await;
    let open = |token: String| {
        let req = app
            .http
            .get(format!("{}/api/v1/events", app.base))
            .bearer_auth(token);
        async move {
            let resp = req.send().await.expect("connect");
            assert_eq!(resp.status(), 200);
            resp
        }
    };
    let mut revoked = open(app.tokens[0].clone()).await;
    let mut stays = open(app.tokens[1].clone()).await;
    let mut expiring = open(jwt(
        json!({"sub": "carol", "tenant": "acme", "exp": now() + 2}),
    ))
    .await;
    let mut ws = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/ws?access_token={}",
        app.base.replacen("http", "ws", 1),
        app.tokens[0]
    ))
    .await
    .expect("websocket")
    .0;
    app.cli(&["token", "revoke", "--tenant", "acme", "ui"]);
    assert!(
        ends_within(&mut revoked, 6).await,
        "revoked SSE stream still open"
    );
    assert!(
        ends_within(&mut expiring, 8).await,
        "expired JWT stream still open"
    );
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        use futures::StreamExt;
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "revoked websocket still open");
    assert!(
        !ends_within(&mut stays, 3).await,
        "a valid stream was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_bearer_token() {
    let app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_SERVER__METRICS_TOKEN", "scrape-secret-123")
        .spawn()
        .await;
    let url = format!("{}/metrics", app.base);
    let anonymous = app.http.get(&url).send().await.expect("metrics");
    assert_eq!(anonymous.status(), 401);
    let body = anonymous.text().await.expect("body");
    assert!(!body.contains("acme-sms"), "{body}");
    let wrong = app
        .http
        .get(&url)
        .bearer_auth("scrape-secret-12")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status(), 401);
    let scraper = app
        .http
        .get(&url)
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .expect("metrics");
    assert_eq!(scraper.status(), 200);
}

/// Whether the server closed `conn` (EOF or reset) within `secs`.
async fn closed_within(conn: &mut tokio::net::TcpStream, secs: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_cut_and_healthz_keeps_answering() {
    use tokio::io::AsyncWriteExt;
    let app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_SERVER__HEADER_READ_TIMEOUT_SECS", "2")
        .env("SWITCHBOARD_SERVER__IDLE_TIMEOUT_SECS", "3")
        .env("SWITCHBOARD_SERVER__MAX_CONNECTIONS", "260")
        .env("SWITCHBOARD_EVENTS__HEARTBEAT_SECS", "1")
        .spawn()
        .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // 200 clients that never finish their headers, 50 that send nothing.
    let mut half_open = Vec::new();
    for _ in 0..200 {
        let mut c = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        half_open.push(c);
    }
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let healthz = format!("{}/healthz", app.base);
    let r = tokio::time::timeout(Duration::from_secs(2), app.http.get(&healthz).send())
        .await
        .expect("healthz within 2 s under load")
        .expect("healthz");
    assert_eq!(r.status(), 200);
    // Fill every slot: the limit is logged, and /healthz still answers (from the reserve,
    // with a fresh connection each time, as a probe does).
    let mut extra = Vec::new();
    for _ in 0..10 {
        extra.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for _ in 0..3 {
        let r = tokio::time::timeout(Duration::from_secs(2), probe.get(&healthz).send())
            .await
            .expect("healthz within 2 s with every slot taken")
            .expect("healthz with every slot taken");
        assert_eq!(r.status(), 200);
    }
    assert!(
        app.log().contains("connection limit reached"),
        "{}",
        app.log()
    );
    // Past the limit, silent connections are closed quickly: the reserve's within about a
    // second, past the reserve (32) at once.
    for _ in 0..40 {
        extra.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    for (i, c) in extra.iter_mut().enumerate() {
        assert!(closed_within(c, 3).await, "extra connection {i} still open");
    }
    // The header timeout and the idle timeout close the rest.
    for (i, c) in half_open.iter_mut().enumerate() {
        assert!(
            closed_within(c, 6).await,
            "half-open connection {i} still open"
        );
    }
    for (i, c) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(c, 6).await,
            "silent connection {i} still open"
        );
    }
    let r = app.http.get(&healthz).send().await.expect("healthz");
    assert_eq!(r.status(), 200);
    // A live stream outlives the idle timeout: its heartbeats are traffic.
    let token = app.token("acme", "agent", "ui");
    let mut sse = app
        .http
        .get(format!("{}/api/v1/events", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("connect");
    assert_eq!(sse.status(), 200);
    assert!(
        !ends_within(&mut sse, 5).await,
        "the idle timeout cut a live stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_request_body_is_cut_at_its_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_SERVER__REQUEST_BODY_TIMEOUT_SECS", "2")
        .env("SWITCHBOARD_SERVER__IDLE_TIMEOUT_SECS", "60")
        .spawn()
        .await;
    let token = app.token("acme", "agent", "ui");
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    c.write_all(head.as_bytes()).await.expect("write");
    // A byte every 400 ms is never idle, but the whole body is late.
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            read = c.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(400)) => {
                assert!(started.elapsed() < Duration::from_secs(10), "body never cut");
                let _ = c.write_all(b" ").await;
            }
        }
    }
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("request_body_timeout_secs"), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(6),
        "cut after {elapsed:?}"
    );
}
