//! A reply from core's outbox as an email: the draft (threading headers from the
//! conversation, reply token, the channel's From), files fetched from the reply's media
//! URLs as attachments, and the send receipt keyed by our Message-ID, so that a later
//! bounce finds the message it reports on.

use crate::smtp::{MailReply, OutgoingAttachment};
use switchboard_core::domain::model::{IdentityKind, OutboundMessage, SendError};
use switchboard_core::infra::public_http::{self, PublicHttp};

/// Largest total size of the files one reply may attach.
pub const MAX_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;

/// The draft of an outbound message on an email channel.
pub fn draft(
    msg: &OutboundMessage,
    from_address: &str,
    from_name: Option<&str>,
    message_id_domain: &str,
) -> Result<MailReply, SendError> {
    if msg.to.kind != IdentityKind::EMAIL {
        return Err(SendError::Permanent {
            code: "invalid_recipient".into(),
            message: format!(
                "an email channel cannot send to a {} identity",
                msg.to.kind.as_str()
            ),
        });
    }
    let subject = msg
        .subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| msg.thread.subject.clone())
        .unwrap_or_default();
    let is_reply = msg.in_reply_to.is_some() || !msg.thread.references.is_empty();
    let in_reply_to = msg
        .in_reply_to
        .clone()
        .or_else(|| msg.thread.references.last().cloned());
    Ok(MailReply {
        from_address: from_address.to_owned(),
        from_name: from_name.map(str::to_owned),
        to: vec![msg.to.value.clone()],
        subject,
        is_reply,
        in_reply_to,
        references: msg.thread.references.clone(),
        reply_token: msg.thread.reply_token.clone(),
        message_id_domain: Some(message_id_domain.to_owned()),
        text: msg.text.clone().unwrap_or_default(),
        ..MailReply::default()
    })
}

/// Downloads the reply's media URLs as attachments, bounded in total size (read as a
/// stream, stopped at the bound) and from public addresses only unless configured (see
/// [`switchboard_core::infra::public_http`]).
pub async fn fetch_attachments(
    http: &PublicHttp,
    urls: &[String],
) -> Result<Vec<OutgoingAttachment>, SendError> {
    use futures::StreamExt;
    let mut out = Vec::with_capacity(urls.len());
    let mut total = 0usize;
    for (i, url) in urls.iter().enumerate() {
        let transient = |m: String| SendError::Transient {
            retry_after_ms: None,
            code: None,
            message: m,
        };
        let refused = |m: String| SendError::Permanent {
            code: "invalid_media_url".into(),
            message: m,
        };
        let response = http
            .get(url)
            .map_err(|e| refused(format!("attachment URL {url} refused: {e}")))?
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| {
                if public_http::is_refusal(&e) {
                    refused(format!(
                        "attachment URL {url} leads to a non-public address"
                    ))
                } else {
                    transient(format!("fetching attachment {url}: {}", e.without_url()))
                }
            })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(transient(format!(
                "fetching attachment {url}: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(SendError::Permanent {
                code: "media_unavailable".into(),
                message: format!("fetching attachment {url}: HTTP {status}"),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| v.contains('/'))
            .unwrap_or_else(|| "application/octet-stream".into());
        let too_large = || SendError::Permanent {
            code: "media_too_large".into(),
            message: format!("attachments exceed {MAX_ATTACHMENT_BYTES} bytes"),
        };
        if response
            .content_length()
            .is_some_and(|n| total as u64 + n > MAX_ATTACHMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| transient(format!("reading attachment {url}: {}", e.without_url())))?;
            total += chunk.len();
            if total > MAX_ATTACHMENT_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        out.push(OutgoingAttachment {
            filename: file_name(url, i),
            content_type,
            content_id: None,
            bytes,
        });
    }
    Ok(out)
}

/// A safe file name from a URL's last path segment (`attachment-N` when it has none).
fn file_name(url: &str, index: usize) -> String {
    let last = url
        .split(['?', '#'])
        .next()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        format!("attachment-{}", index + 1)
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::domain::model::{Identity, OutboundThread};

    fn msg() -> OutboundMessage {
        OutboundMessage {
            message_id: "m1".into(),
            tenant_id: "t".into(),
            channel_id: "mail".into(),
            conversation_id: "c1".into(),
            to: Identity {
                kind: IdentityKind::EMAIL,
                value: "carol@remote.example".into(),
            },
            subject: None,
            text: Some("Thanks!".into()),
            media_urls: vec![],
            in_reply_to: Some("parent@remote.example".into()),
            template: None,
            thread: OutboundThread {
                subject: Some("Printer on fire".into()),
                reply_token: Some("tok123".into()),
                references: vec!["root@remote.example".into(), "parent@remote.example".into()],
            },
        }
    }

    #[test]
    fn a_reply_carries_the_thread() {
        let d = draft(&msg(), "support@acme.example", Some("Acme"), "acme.example").unwrap();
        assert!(d.is_reply);
        assert_eq!(d.subject, "Printer on fire");
        assert_eq!(d.in_reply_to.as_deref(), Some("parent@remote.example"));
        assert_eq!(d.reply_token.as_deref(), Some("tok123"));
        let built = crate::smtp::build_reply(&d).unwrap();
        let raw = String::from_utf8(built.raw()).unwrap();
        assert!(raw.contains("Subject: Re: Printer on fire"), "{raw}");
        assert!(
            raw.contains("In-Reply-To: <parent@remote.example>"),
            "{raw}"
        );
        assert!(
            raw.contains("References: <root@remote.example> <parent@remote.example>"),
            "{raw}"
        );
        assert!(raw.contains("support+tok123@acme.example"), "{raw}");
        assert!(built.message_id.ends_with("@acme.example>"));
    }

    #[test]
    fn a_first_message_is_not_a_reply_and_phones_are_refused() {
        let mut m = msg();
        m.in_reply_to = None;
        m.thread.references.clear();
        m.subject = Some("Your order".into());
        let d = draft(&m, "support@acme.example", None, "acme.example").unwrap();
        assert!(!d.is_reply);
        assert_eq!(d.subject, "Your order");
        m.to.kind = IdentityKind::PHONE;
        assert!(matches!(
            draft(&m, "support@acme.example", None, "acme.example"),
            Err(SendError::Permanent { .. })
        ));
    }

    #[test]
    fn file_names_from_urls_are_safe() {
        assert_eq!(
            file_name("https://x.example/a/report.pdf?sig=1", 0),
            "report.pdf"
        );
        assert_eq!(file_name("https://x.example/../../", 1), "attachment-2");
        assert_eq!(file_name("https://x.example/..%2f..%2fetc", 0), "2f..2fetc");
    }

    /// A loopback HTTP server answering every request with `head` then `body_len` bytes of
    /// `x` (streamed, so a too-large body is cut off by the reader, not buffered here).
    async fn serve(head: &'static str, body_len: usize) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if s.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn media_urls_become_attachments_within_the_size_bound() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let open = PublicHttp::new(true).expect("client");
        let port = serve(
            "HTTP/1.1 200 OK\r\nContent-Type: application/pdf; name=x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
            5,
        )
        .await;
        let got = fetch_attachments(
            &open,
            &[format!("http://127.0.0.1:{port}/files/invoice.pdf?sig=1")],
        )
        .await
        .expect("fetched");
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].filename.as_str(),
                got[0].content_type.as_str(),
                got[0].bytes.len()
            ),
            ("invoice.pdf", "application/pdf", 5)
        );

        // No Content-Length: the stream is cut at the bound.
        let port = serve(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n",
            MAX_ATTACHMENT_BYTES + 1024 * 1024,
        )
        .await;
        let err = fetch_attachments(&open, &[format!("http://127.0.0.1:{port}/big.mp4")])
            .await
            .expect_err("too large");
        assert!(
            matches!(&err, SendError::Permanent { code, .. } if code == "media_too_large"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn media_urls_on_private_addresses_are_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guarded = PublicHttp::new(false).expect("client");
        let port = serve(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            2,
        )
        .await;
        for url in [
            format!("http://127.0.0.1:{port}/secret"),
            format!("http://localhost:{port}/secret"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "file:///etc/passwd".to_string(),
        ] {
            let err = fetch_attachments(&guarded, std::slice::from_ref(&url))
                .await
                .expect_err("refused");
            assert!(
                matches!(&err, SendError::Permanent { code, .. } if code == "invalid_media_url"),
                "{url}: {err:?}"
            );
        }
    }
}
