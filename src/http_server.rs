//! The HTTP accept loop: hyper with a header-read timeout, an idle timeout and a connection
//! limit, because `axum::serve` has none of them (unfinished headers and silent connections
//! stayed open forever, and enough of them exhausted file descriptors until `/healthz`
//! stopped answering).
//!
//! - header read: a request's headers must arrive within `server.header_read_timeout_secs`;
//! - idle: a connection with no bytes read or written for `server.idle_timeout_secs` is
//!   closed (this also cuts a request body that stalls; live streams write a heartbeat
//!   every `events.heartbeat_secs`, which must be shorter);
//! - body: a request body must arrive completely within `server.request_body_timeout_secs`
//!   of its headers (a trickling body is not idle, see [`crate::body_deadline`]);
//! - limit: past `server.max_connections`, a small reserve of connections still gets one
//!   quick request each (headers within a second, then closed), so a health probe keeps
//!   answering while idle clients hold every slot; past the reserve a new connection is
//!   closed at once. The limit is logged at most once a minute; the process never runs out
//!   of descriptors.

use crate::body_deadline::DeadlineBody;
use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Timeouts and the connection limit (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub request_body: Duration,
}

/// Connections past the limit that still get one quick request each.
const RESERVE: usize = 32;
/// How long a reserve connection may take to send its headers, and stay idle.
const RESERVE_PATIENCE: Duration = Duration::from_secs(1);

/// Serves `app` until `shutdown`, then lets open connections finish (the caller bounds how
/// long with its grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let connections = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(permit) => Slot {
                _permit: permit,
                reserve: false,
            },
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections get one quick request \
                         each, past a reserve of {RESERVE} they are closed at once \
                         (server.max_connections)"
                    );
                    last_warning = Some(Instant::now());
                }
                match reserve.clone().try_acquire_owned() {
                    Ok(permit) => Slot {
                        _permit: permit,
                        reserve: true,
                    },
                    Err(_) => {
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        connections.spawn(serve_connection(
            stream,
            app.clone(),
            limits,
            slot,
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Which pool a connection's permit came from; dropped when the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    reserve: bool,
}

/// Serves one connection: hyper with the header-read timeout, the idle timeout and a
/// deadline on every request body; a reserve connection gets one quick request only.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    slot: Slot,
    shutdown: CancellationToken,
) {
    let reserve = slot.reserve;
    let (header_read, idle) = if reserve {
        (RESERVE_PATIENCE, RESERVE_PATIENCE)
    } else {
        (limits.header_read, limits.idle)
    };
    let io = TokioIo::new(IdleTimeout::new(stream, idle));
    let body_timeout = limits.request_body;
    let app = app.map_request(move |req: Request<Incoming>| {
        req.map(|body| axum::body::Body::new(DeadlineBody::new(body, body_timeout)))
    });
    let service = TowerToHyperService::new(app);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .keep_alive(!reserve)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(slot);
}

/// A TCP stream that fails with `TimedOut` once neither a read nor a write made progress
/// for `idle`.
struct IdleTimeout {
    inner: TcpStream,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
