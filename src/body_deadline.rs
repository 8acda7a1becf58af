//! A total deadline on reading a request body.
//!
//! The idle timeout cuts a body that stalls, but not one that trickles (a byte every few
//! seconds keeps a connection "active" forever and holds a slot and a handler). So every
//! request body must arrive completely within `server.request_body_timeout_secs` of its
//! headers; past that the body fails with [`BodyTimedOut`], the handler's extractor answers
//! 400 and the connection closes.

use axum::body::{Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0} s (server.request_body_timeout_secs)")]
pub struct BodyTimedOut(u64);

/// `inner`, failing once `timeout` has passed since the body was created (when the
/// request's headers were read).
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    let secs = self.timeout.as_secs();
                    Poll::Ready(Some(Err(Box::new(BodyTimedOut(secs)))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
