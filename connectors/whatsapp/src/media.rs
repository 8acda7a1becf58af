//! Media transfers: inbound media for core's media job, outbound media for sends.
//!
//! Inbound: `GET /{media-id}` (bearer) answers `{url, mime_type, sha256, file_size, id}`; the
//! size and type are checked before any byte is downloaded, then the short-lived `url` is
//! fetched with the same bearer token through the public-address guard (`PublicHttp`: no
//! private, loopback or metadata addresses, redirects included), streamed under the size
//! cap, and handed to core with Meta's sha256 (core verifies it). An expired URL (404) is transient: the retry resolves
//! the media id again and gets a fresh one.
//!
//! Outbound: each public media URL of a reply is downloaded (no credentials, capped at Meta's
//! limit for its type) and uploaded with `POST /{phone-number-id}/media` (multipart `file`,
//! `type`, `messaging_product`), which answers the media id the message refers to.

use crate::client::{GraphClient, Uploaded};
use crate::multipart;
use crate::outbound::MediaKind;
use crate::settings::is_graph_id;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use switchboard_core::contract::provider_http::{read_limited, transport_error, with_retry_after};
use switchboard_core::domain::model::{FetchedMedia, MediaLimits, SendError};

/// What `GET /{media-id}` says about a media item.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MediaInfo {
    url: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    file_size: Option<u64>,
}

impl GraphClient {
    /// Fetches inbound media by media id (or by a Meta media URL, when the webhook gave only
    /// that), within `limits`.
    #[tracing::instrument(name = "whatsapp.fetch_media", skip_all, fields(channel = %self.channel_id))]
    pub(crate) async fn fetch_media(
        &self,
        source: &str,
        limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError> {
        let source = source.trim();
        let info = if source.starts_with("https://") || source.starts_with("http://") {
            MediaInfo {
                url: source.to_string(),
                mime_type: None,
                sha256: None,
                file_size: None,
            }
        } else if is_graph_id(source) {
            self.media_info(source).await?
        } else {
            return Err(permanent(
                "invalid_media_id",
                "media source is not a media id",
            ));
        };
        if let Some(mime) = &info.mime_type
            && !limits.allows(mime)
        {
            return Err(type_not_allowed(mime));
        }
        if info.file_size.is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large(limits.max_bytes));
        }
        let url = url::Url::parse(&info.url)
            .ok()
            .filter(|u| self.may_authenticate(u))
            .ok_or_else(|| {
                permanent(
                    "untrusted_media_url",
                    "Meta's media URL is not an https URL",
                )
            })?;
        // Through the public-address guard: Meta names the host, and it must not lead to
        // our own network (unless `[media] allow_private_networks`).
        let req = self.public_http.get_url(url).map_err(|e| {
            permanent(
                "untrusted_media_url",
                &format!("Meta's media URL refused: {e}"),
            )
        })?;
        let resp = self
            .authed(req)
            .timeout(self.media_timeout())
            .send()
            .await
            .map_err(|e| {
                if switchboard_core::infra::public_http::is_refusal(&e) {
                    permanent(
                        "untrusted_media_url",
                        "Meta's media URL leads to a non-public address",
                    )
                } else {
                    transport_error(e)
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            tracing::warn!(%status, "media download refused");
            return Err(with_retry_after(download_error(status), resp.headers()));
        }
        let content_type = info
            .mime_type
            .clone()
            .or_else(|| header_type(resp.headers()))
            .unwrap_or_else(|| "application/octet-stream".to_string());
        if !limits.allows(&content_type) {
            return Err(type_not_allowed(&content_type));
        }
        if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large(limits.max_bytes));
        }
        let bytes = read_limited(resp, limits.max_bytes)
            .await
            .map_err(|e| e.into_send_error(too_large(limits.max_bytes)))?;
        tracing::debug!(size = bytes.len(), %content_type, "media downloaded");
        Ok(FetchedMedia {
            content_type,
            bytes,
            expected_sha256: info.sha256.as_deref().and_then(sha256_hex),
        })
    }

    /// `GET /{media-id}`.
    async fn media_info(&self, media_id: &str) -> Result<MediaInfo, SendError> {
        let body = self
            .call(self.http.get(self.url(media_id)), self.timeout())
            .await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let url = text("url").ok_or_else(|| SendError::Transient {
            retry_after_ms: None,
            code: Some("invalid_response".into()),
            message: "the media lookup answered without a URL".into(),
        })?;
        Ok(MediaInfo {
            url,
            mime_type: text("mime_type"),
            sha256: text("sha256"),
            file_size: match v.get("file_size") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            },
        })
    }

    /// Our bearer token goes to Meta's https media hosts, or to the configured Graph origin
    /// (a local fake in tests). Cross-host redirects drop it (reqwest's redirect policy).
    pub(crate) fn may_authenticate(&self, url: &url::Url) -> bool {
        let same_origin = url::Url::parse(&self.settings.graph_base).is_ok_and(|base| {
            base.scheme() == url.scheme()
                && base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
        });
        same_origin || (url.scheme() == "https" && url.host_str().is_some())
    }

    /// Downloads one public media URL of a reply and uploads it to Meta.
    pub(crate) async fn upload_from_url(&self, source: &str) -> Result<Uploaded, SendError> {
        let (content_type, filename, bytes) = self.download_public(source).await?;
        let kind = MediaKind::for_content_type(&content_type);
        let media_id = self.upload(&content_type, &filename, &bytes).await?;
        tracing::debug!(%media_id, kind = kind.as_str(), size = bytes.len(), "media uploaded");
        Ok(Uploaded {
            kind,
            media_id,
            filename: Some(filename),
        })
    }

    /// GET a public URL without credentials, capped at Meta's limit for the file's type.
    async fn download_public(&self, source: &str) -> Result<(String, String, Bytes), SendError> {
        let url = url::Url::parse(source)
            .map_err(|_| permanent("invalid_media_url", "media URL is not an http(s) URL"))?;
        let resp = self
            .public_http
            .get_url(url.clone())
            .map_err(|e| permanent("invalid_media_url", &format!("media URL refused: {e}")))?
            .timeout(self.media_timeout())
            .send()
            .await
            .map_err(|e| {
                if switchboard_core::infra::public_http::is_refusal(&e) {
                    permanent(
                        "invalid_media_url",
                        "media URL leads to a non-public address",
                    )
                } else {
                    transport_error(e)
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            tracing::warn!(%status, "outbound media download refused");
            return Err(match status {
                s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                    SendError::Transient {
                        retry_after_ms: None,
                        code: Some(format!("http_{}", s.as_u16())),
                        message: format!("media URL answered {s}"),
                    }
                }
                s => permanent("media_url_unavailable", &format!("media URL answered {s}")),
            });
        }
        let content_type =
            header_type(resp.headers()).unwrap_or_else(|| "application/octet-stream".to_string());
        let max = MediaKind::for_content_type(&content_type).max_bytes();
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        let bytes = read_limited(resp, max)
            .await
            .map_err(|e| e.into_send_error(too_large(max)))?;
        Ok((content_type, filename_of(&url), bytes))
    }

    /// `POST /{phone-number-id}/media` → the media id.
    async fn upload(
        &self,
        content_type: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<String, SendError> {
        let form = multipart::form(
            &[("messaging_product", "whatsapp"), ("type", content_type)],
            "file",
            filename,
            content_type,
            bytes,
        );
        let url = self.url(&format!("{}/media", self.settings.phone_number_id));
        let req = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, form.content_type)
            .body(form.body);
        let body = self.call(req, self.media_timeout()).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // Nothing was sent yet: an unreadable answer is safe to retry.
        v.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| SendError::Transient {
                retry_after_ms: None,
                code: Some("invalid_response".into()),
                message: "the media upload answered without an id".into(),
            })
    }
}

/// A checksum as core wants it (lowercase hex): Meta documents hex, some payloads carry
/// base64; anything else is dropped rather than failing every download.
pub(crate) fn sha256_hex(raw: &str) -> Option<String> {
    use base64::Engine;
    let raw = raw.trim();
    if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(raw.to_ascii_lowercase());
    }
    [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ]
    .iter()
    .find_map(|engine| engine.decode(raw).ok())
    .filter(|d| d.len() == 32)
    .map(hex::encode)
}

/// The essence of a `Content-Type` header, lower-cased.
fn header_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .filter(|ct| !ct.is_empty())
}

/// The last path segment of a URL, made safe for a multipart header and WhatsApp's display.
fn filename_of(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_decode(last);
    let clean: String = decoded
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/'))
        .take(200)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "attachment".to_string()
    } else {
        clean.to_string()
    }
}

/// `%XX` escapes decoded (a path segment: `+` stays a plus); invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'_'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The download of a Meta media URL failed: an expired or not-yet-ready URL is retried
/// (the retry asks for a fresh URL); a refused token is not.
fn download_error(status: StatusCode) -> SendError {
    let message = format!("media download answered {status}");
    match status {
        StatusCode::UNAUTHORIZED => SendError::Permanent {
            code: "http_401".into(),
            message,
        },
        StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::FORBIDDEN => SendError::Transient {
            retry_after_ms: None,
            code: Some("media_url_expired".into()),
            message,
        },
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => SendError::Transient {
            retry_after_ms: None,
            code: Some(format!("http_{}", s.as_u16())),
            message,
        },
        s => SendError::Permanent {
            code: format!("http_{}", s.as_u16()),
            message,
        },
    }
}

fn permanent(code: &str, message: &str) -> SendError {
    SendError::Permanent {
        code: code.into(),
        message: message.into(),
    }
}

fn type_not_allowed(content_type: &str) -> SendError {
    permanent(
        "media_type_not_allowed",
        &format!("media type {content_type} is not allowed"),
    )
}

fn too_large(max: u64) -> SendError {
    permanent(
        "media_too_large",
        &format!("media is larger than {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_become_lowercase_hex() {
        let hex = "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3";
        assert_eq!(sha256_hex(hex).as_deref(), Some(hex));
        assert_eq!(sha256_hex(&hex.to_ascii_uppercase()).as_deref(), Some(hex));
        use base64::Engine;
        let raw = hex::decode(hex).expect("hex");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert_eq!(sha256_hex(&b64).as_deref(), Some(hex));
        assert_eq!(sha256_hex("not a checksum"), None);
        assert_eq!(sha256_hex(""), None);
    }

    #[test]
    fn filenames_come_from_the_last_segment() {
        let f = |u: &str| filename_of(&url::Url::parse(u).expect("url"));
        assert_eq!(
            f("https://cdn.example/a/invoice%201042.pdf?sig=x"),
            "invoice 1042.pdf"
        );
        assert_eq!(f("https://cdn.example/"), "attachment");
        assert_eq!(f("https://cdn.example/%22evil%22%0d%0a.pdf"), "evil.pdf");
        assert_eq!(f("https://cdn.example/a+b%ZZ.png"), "a+b%ZZ.png");
        assert_eq!(f("https://cdn.example/caf%C3%A9.jpg"), "café.jpg");
    }

    #[test]
    fn download_statuses() {
        assert!(matches!(
            download_error(StatusCode::NOT_FOUND),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            download_error(StatusCode::UNAUTHORIZED),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            download_error(StatusCode::BAD_GATEWAY),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            download_error(StatusCode::BAD_REQUEST),
            SendError::Permanent { .. }
        ));
    }
}
