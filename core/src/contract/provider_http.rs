//! What every provider connector does with a provider's HTTP API the same way: classify a
//! transport failure for the outbox ([`transport_error`]) and read an answer without
//! letting a provider (or anything posing as one) make us buffer an unbounded body
//! ([`read_limited`]), and honour a rate limit's `Retry-After` ([`with_retry_after`]).

use crate::domain::model::SendError;
use bytes::{Bytes, BytesMut};

/// A transport failure: worth retrying, except a request that cannot be built or a
/// redirect loop.
pub fn transport_error(e: reqwest::Error) -> SendError {
    let (builder, redirect, timeout, connect) = (
        e.is_builder(),
        e.is_redirect(),
        e.is_timeout(),
        e.is_connect(),
    );
    // Never log or store a URL: media URLs are signed and may carry tokens.
    let message = e.without_url().to_string();
    let transient = |code: &str| SendError::Transient {
        retry_after_ms: None,
        code: Some(code.into()),
        message: message.clone(),
    };
    if builder {
        SendError::Permanent {
            code: "invalid_request".into(),
            message,
        }
    } else if redirect {
        SendError::Permanent {
            code: "too_many_redirects".into(),
            message,
        }
    } else if timeout {
        transient("timeout")
    } else if connect {
        transient("connect")
    } else {
        transient("network")
    }
}

/// The delay a `Retry-After` header asks for, in milliseconds: delta-seconds (`120`) or an
/// HTTP date (IMF-fixdate, `Wed, 21 Oct 2015 07:28:00 GMT`; a date in the past is 0).
/// `None` when absent or unreadable.
pub fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    let ms = (at - time::OffsetDateTime::now_utc()).whole_milliseconds();
    Some(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
}

/// `e` with the answer's `Retry-After` attached when it is a transient failure (a 429 or
/// 503 that says when to come back): the outbox waits at least that long.
pub fn with_retry_after(e: SendError, headers: &reqwest::header::HeaderMap) -> SendError {
    match e {
        SendError::Transient {
            code,
            message,
            retry_after_ms: None,
        } => SendError::Transient {
            code,
            message,
            retry_after_ms: retry_after_ms(headers),
        },
        other => other,
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    Transport(reqwest::Error),
    /// The body passed the limit; reading stopped there.
    TooLarge,
}

impl ReadError {
    /// This failure for the outbox: a transport failure as [`transport_error`] classifies
    /// it, an oversized body as `too_large` (which depends on what was being read).
    pub fn into_send_error(self, too_large: SendError) -> SendError {
        match self {
            Self::Transport(e) => transport_error(e),
            Self::TooLarge => too_large,
        }
    }
}

/// An API answer (JSON of a few KiB at most) that was too large: transient, since it is
/// a provider or proxy hiccup rather than anything the request could change.
pub fn response_too_large(what: &str) -> SendError {
    SendError::Transient {
        retry_after_ms: None,
        code: Some("invalid_response".into()),
        message: format!("{what} too large"),
    }
}

/// Reads a body chunk by chunk, giving up as soon as it passes `max` bytes.
pub async fn read_limited(mut resp: reqwest::Response, max: u64) -> Result<Bytes, ReadError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP answer with a body of `len` bytes, from a throw-away loopback server.
    async fn response_of(len: usize) -> reqwest::Response {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = sock.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(&vec![b'x'; len]).await.unwrap();
        });
        reqwest::get(format!("http://{addr}/")).await.unwrap()
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after_ms(&with("1")), Some(1000));
        assert_eq!(retry_after_ms(&with(" 120 ")), Some(120_000));
        assert_eq!(
            retry_after_ms(&with("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(0)
        );
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let ms = retry_after_ms(&with(&later.format(format).unwrap())).unwrap();
        assert!((28_000..=30_000).contains(&ms), "{ms}");
        assert_eq!(retry_after_ms(&with("soon")), None);
        assert_eq!(retry_after_ms(&HeaderMap::new()), None);
        let transient = SendError::Transient {
            code: None,
            message: "429".into(),
            retry_after_ms: None,
        };
        assert!(matches!(
            with_retry_after(transient, &with("2")),
            SendError::Transient {
                retry_after_ms: Some(2000),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_is_read_whole() {
        let body = read_limited(response_of(1000).await, 1000).await.unwrap();
        assert_eq!(body.len(), 1000);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused() {
        let err = read_limited(response_of(1001).await, 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::TooLarge), "{err:?}");
        let too_large = response_too_large("Graph API response");
        assert_eq!(err.into_send_error(too_large.clone()), too_large);
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Bound and dropped: nothing listens there any more.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = reqwest::get(format!("http://{addr}/?token=secret"))
            .await
            .unwrap_err();
        let SendError::Transient { code, message, .. } = transport_error(e) else {
            panic!("transient expected");
        };
        assert_eq!(code.as_deref(), Some("connect"));
        assert!(!message.contains("secret"), "{message}");
    }
}
