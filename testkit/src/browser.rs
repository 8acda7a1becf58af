//! Headless Chromium for end-to-end tests of what a browser makes of the daemon's pages
//! (the API reference, message HTML in a sandboxed iframe), driven over the DevTools
//! protocol.
//!
//! The browser reaches nothing but loopback: every other host is sent to a proxy on a
//! closed loopback port and every other name resolves to nothing, and its background
//! services (updates, sync, metrics) are off. A [`Page`] records the URL of every request
//! the page makes, so a test can assert that nothing was asked of another origin.
//!
//! Chromium comes from the system (`apt-get install chromium`, done by `scripts/test`); a
//! missing browser fails the test, as a missing mail server does.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// Chromium's binary: `$CHROMIUM` or the first of the usual names on `PATH`.
pub fn chromium_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path.into();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("chromium is not installed (apt-get install chromium; scripts/test installs it)")
}

/// A headless Chromium with its own profile, killed on drop.
pub struct Browser {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Browser {
    /// Starts the browser and waits (20 s at most) for its DevTools port.
    pub fn launch() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium_binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-breakpad",
                "--metrics-recording-only",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-pings",
                "--mute-audio",
                "--window-size=1280,900",
                // Cross-origin iframes in the page's own process, so the page's DevTools
                // session sees their requests too.
                "--disable-site-isolation-trials",
                "--disable-features=IsolateOrigins,site-per-process",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
            if let Some(port) = port {
                break port;
            }
            assert!(Instant::now() < deadline, "chromium did not open DevTools");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            port,
            _profile: profile,
        }
    }

    /// A new tab, with network and page events on.
    pub async fn new_page(&self) -> Page {
        let target: Value = crate::http()
            .put(format!(
                "http://127.0.0.1:{}/json/new?about:blank",
                self.port
            ))
            .send()
            .await
            .expect("open a tab")
            .json()
            .await
            .expect("tab json");
        let ws_url = target["webSocketDebuggerUrl"].as_str().expect("ws url");
        let (ws, _) = connect_async(ws_url).await.expect("connect to the tab");
        let mut page = Page {
            ws,
            next_id: 0,
            events: Vec::new(),
        };
        page.call("Network.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, and the events it has sent so far.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
}

impl Page {
    /// Calls a DevTools method and returns its result (events meanwhile are kept).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .expect("send to the tab");
        loop {
            let message = self.next_message(Duration::from_secs(20)).await;
            let message = message.unwrap_or_else(|| panic!("no answer to {method}"));
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    /// Navigates and waits (20 s at most) for the page's load event.
    pub async fn goto(&mut self, url: &str) {
        let loads_before = self.count("Page.loadEventFired");
        self.call("Page.navigate", json!({"url": url})).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count("Page.loadEventFired") == loads_before {
            assert!(Instant::now() < deadline, "{url} did not load");
            self.pump(Duration::from_millis(200)).await;
        }
    }

    /// The value of a JavaScript expression in the page (awaiting a promise).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy (at most `secs`), returning its value.
    pub async fn wait_for(&mut self, expression: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.eval(expression).await;
            let truthy =
                !matches!(&value, Value::Null | Value::Bool(false)) && value.as_str() != Some("");
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "never true: {expression}");
            self.pump(Duration::from_millis(200)).await;
        }
    }

    /// The URL of every request the page made, in order.
    pub fn requests(&self) -> Vec<String> {
        self.params_of("Network.requestWillBeSent")
            .filter_map(|p| p["request"]["url"].as_str().map(String::from))
            .collect()
    }

    /// `(url, status)` of every response the page received.
    pub fn responses(&self) -> Vec<(String, u64)> {
        self.params_of("Network.responseReceived")
            .filter_map(|p| {
                let url = p["response"]["url"].as_str()?.to_string();
                Some((url, p["response"]["status"].as_u64()?))
            })
            .collect()
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("png")
    }

    /// Reads events for `wait`.
    pub async fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_message(left).await {
                Some(m) => self.events.push(m),
                None => break,
            }
        }
    }

    fn count(&self, method: &str) -> usize {
        self.events.iter().filter(|e| e["method"] == method).count()
    }

    fn params_of<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| e["method"] == method)
            .map(|e| &e["params"])
    }

    async fn next_message(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            if let Message::Text(text) = frame.expect("DevTools frame") {
                return serde_json::from_str(text.as_str()).ok();
            }
        }
    }
}
