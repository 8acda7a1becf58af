//! HTTP/1.1 to the daemon over plain hyper connections: one request in flight per
//! connection, at most `max_connections` connections, idle ones reused (keep-alive).
//!
//! A request first waits for a free slot (a connection), so in open loop the time spent
//! waiting for one is part of its latency, as it would be for a provider whose deliveries
//! queue up. A connection that failed or timed out is dropped, never reused.

use crate::payload::Prepared;
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP status (2xx or not).
    Status(u16),
    /// No status: connection refused or reset, timeout, protocol error.
    Error(String),
}

impl Outcome {
    pub fn is_ack(&self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(s))
    }
}

/// A bounded set of keep-alive connections to one address.
pub struct Pool {
    addr: SocketAddr,
    host: String,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    slots: Semaphore,
    timeout: Duration,
}

impl Pool {
    pub fn new(addr: SocketAddr, max_connections: usize, timeout: Duration) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max_connections.max(1)),
            timeout,
        }
    }

    /// Opens `n` connections ahead of the run, so the first requests do not pay for them.
    pub async fn warm(&self, n: usize) -> Result<()> {
        for _ in 0..n {
            let sender = connect(self.addr).await?;
            self.idle
                .lock()
                .map_err(|_| anyhow!("pool lock poisoned"))?
                .push(sender);
        }
        Ok(())
    }

    /// POSTs one prepared webhook to `path`; waits for a free connection first.
    pub async fn post(&self, path: &str, p: &Prepared) -> Outcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::Error("pool closed".into());
        };
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut sender = match reused {
            Some(s) if !s.is_closed() => s,
            _ => match tokio::time::timeout(self.timeout, connect(self.addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Outcome::Error(format!("connect: {e:#}")),
                Err(_) => return Outcome::Error("connect: timed out".into()),
            },
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, p.content_type())
            .header(p.signature_header(), &p.signature)
            .body(Full::new(p.body.clone()));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Outcome::Error(format!("request: {e}")),
        };
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(status)) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(sender);
                }
                Outcome::Status(status)
            }
            Ok(Err(e)) => Outcome::Error(format!("http: {e}")),
            Err(_) => Outcome::Error(format!("timed out after {:?}", self.timeout)),
        }
    }
}

/// A new HTTP/1.1 connection (TCP_NODELAY), its driver spawned.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the connection closes; its errors surface on the requests.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One event of the live stream, as far as the benchmark cares.
#[derive(Debug)]
pub struct LiveEvent {
    pub kind: String,
    pub message_id: Option<String>,
    pub at: std::time::Instant,
}

/// Opens `GET /api/v1/events` with the bearer token and sends every event received (with
/// its arrival time) to `events` until the stream ends or the receiver is dropped. Returns
/// once the stream is open (the response headers arrived), with the reading task.
pub async fn open_sse(
    addr: SocketAddr,
    token: &str,
    events: tokio::sync::mpsc::UnboundedSender<LiveEvent>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/events")
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(anyhow!("GET /api/v1/events answered {}", response.status()));
    }
    let mut body = response.into_body();
    Ok(tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            let Some(chunk) = frame.data_ref() else {
                continue;
            };
            let at = std::time::Instant::now();
            buf.extend_from_slice(chunk);
            // Events end with a blank line; handle every complete one.
            while let Some(end) = find_blank_line(&buf) {
                let block: Vec<u8> = buf.drain(..end).collect();
                if let Some(ev) = parse_event(&block, at)
                    && events.send(ev).is_err()
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }))
}

/// The end (exclusive, blank line included) of the first complete event in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An SSE block's `data:` lines joined, parsed as Switchboard's `{"type", "data"}` event.
fn parse_event(block: &[u8], at: std::time::Instant) -> Option<LiveEvent> {
    let text = std::str::from_utf8(block).ok()?;
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n");
    if data.is_empty() {
        return None; // a heartbeat comment
    }
    let v: serde_json::Value = serde_json::from_str(&data).ok()?;
    Some(LiveEvent {
        kind: v.get("type")?.as_str()?.to_string(),
        message_id: v
            .pointer("/data/message_id")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_message_created_and_skips_heartbeats() {
        let now = std::time::Instant::now();
        let block = b"id: 42\nevent: message.created\ndata: {\"id\":42,\"type\":\"message.created\",\"data\":{\"message_id\":\"m1\",\"conversation_id\":\"c1\"}}\n\n";
        let ev = parse_event(block, now).unwrap();
        assert_eq!(ev.kind, "message.created");
        assert_eq!(ev.message_id.as_deref(), Some("m1"));
        assert!(parse_event(b":heartbeat\n\n", now).is_none());
        let two = b"data: {\"type\":\"a\"}\n\ndata: {\"type\":\"b\"}\n\n";
        assert_eq!(find_blank_line(two), Some(20));
        assert_eq!(find_blank_line(b"data: x\r\n\r\nrest"), Some(11));
        assert_eq!(find_blank_line(b"data: x\n"), None);
    }
}
