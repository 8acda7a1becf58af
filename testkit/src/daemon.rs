//! The real `switchboard` binary under test: one-shot CLI commands, and the daemon started
//! on a free port (it prints the URL it listens on; stderr goes to `daemon.log` in the test
//! directory), with helpers to call its API and post signed webhooks, and to stop it
//! gracefully (SIGTERM) or not (`kill -9`).
//!
//! The binary's path comes from the calling test crate (`env!("CARGO_BIN_EXE_switchboard")`
//! exists only there): see [`crate::switchboard_bin`].

use crate::config::TOKEN_ENV;
use crate::twilio::{AUTH_TOKEN, twilio_signature};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn command(bin: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(config)
        .env(TOKEN_ENV, AUTH_TOKEN)
        .env("RUST_LOG", "info,switchboard_core=debug");
    c
}

/// Runs a one-shot CLI command and returns its stdout (asserting success).
pub fn cli(bin: &Path, config: &Path, args: &[&str]) -> String {
    let out = command(bin, config).args(args).output().expect("run cli");
    assert!(
        out.status.success(),
        "switchboard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a one-shot CLI command and returns (success, stdout, stderr), whatever the outcome.
pub fn cli_output(bin: &Path, config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = command(bin, config).args(args).output().expect("run cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// A running daemon.
pub struct Daemon {
    /// None for a handle that only talks to a daemon someone else owns.
    pub child: Option<Child>,
    pub base: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub http: reqwest::Client,
}

impl Daemon {
    /// Starts `bin serve` with `config` and the extra environment `env`, logging into
    /// `dir/daemon.log`; waits (30 s at most) for it to listen.
    pub fn start(bin: &Path, dir: &Path, config: &Path, env: &[(String, String)]) -> Self {
        let mut child = command(bin, config)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("daemon.log"))
                    .expect("log file"),
            ))
            .spawn()
            .expect("spawn daemon");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "daemon did not start; log:\n{}",
                    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
                )
            });
        Self {
            child: Some(child),
            base,
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            http: crate::http(),
        }
    }

    /// A handle to a running daemon, without owning (or killing) its process.
    pub fn handle(base: &str, dir: &Path, config: &Path) -> Self {
        Self {
            child: None,
            base: base.to_string(),
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            http: crate::http(),
        }
    }

    /// `kill -9`: no shutdown hooks, no flushing.
    pub fn kill9(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// A graceful stop: SIGTERM, then waits up to `secs` for the process to exit (and
    /// `kill -9` after that). Returns whether it exited by itself in time.
    pub fn terminate(&mut self, secs: u64) -> bool {
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if !matches!(c.try_wait(), Ok(None)) {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        self.child = None;
        false
    }

    /// SIGTERM, then waits for the process however long it takes: its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("a daemon we started");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().expect("wait for the daemon")
    }

    /// What the daemon wrote to stderr (its log) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn webhook_url(&self, route: &str) -> String {
        format!("{}/webhooks/acme-sms/{route}", self.base)
    }

    /// Posts a form to a Twilio webhook route, signed as Twilio signs it.
    pub async fn post_twilio(&self, route: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let url = self.webhook_url(route);
        let sig = twilio_signature(AUTH_TOKEN, &url, params);
        self.post_form(&url, params, Some(&sig)).await
    }

    pub async fn post_form(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.expect("post webhook")
    }

    /// Calls the API as `token`: (status, JSON body, or the text as a JSON string).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api call");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The id of the newest conversation `token` sees (asserting there is one).
    pub async fn newest_conversation(&self, token: &str) -> String {
        let (_, list) = self
            .api(reqwest::Method::GET, "/api/v1/conversations", token, None)
            .await;
        list["items"][0]["id"]
            .as_str()
            .expect("conversation")
            .to_string()
    }

    /// Posts a text reply to a conversation as `token`: (status, body).
    pub async fn post_reply(&self, token: &str, conversation: &str, text: &str) -> (u16, Value) {
        let path = format!("/api/v1/conversations/{conversation}/messages");
        let body = serde_json::json!({ "text": text });
        self.api(reqwest::Method::POST, &path, token, Some(body))
            .await
    }

    /// `GET /api/v1/...` as `token`, asserting 200.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
