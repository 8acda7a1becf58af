//! The fake Graph API's media side. `GET /{version}/{media-id}` answers Meta's lookup
//! (`{url, mime_type, sha256, file_size, id, messaging_product}`) with a download URL on the
//! fake's CDN path that needs the bearer token and is valid once and until its expiry;
//! `GET /{version}/{phone-number-id}` answers the phone number (the health check). Public
//! media for outbound sends never accepts credentials.

use crate::graph::{GraphState, PHONE_NUMBER_ID, authorized, graph_error, unauthorized};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A media item of the fake and how its lookups and downloads behave.
#[derive(Debug, Clone)]
pub struct Media {
    pub mime: String,
    pub bytes: Vec<u8>,
    /// The size the lookup declares, when it lies (default: the real size).
    pub declared_size: Option<u64>,
    /// The checksum in base64 instead of the documented hex.
    pub sha256_base64: bool,
    /// How long each download URL lives.
    pub ttl: Duration,
    /// How many of the first lookups hand out an already expired URL.
    pub expired_lookups: u32,
    /// The URL points at another origin (`localhost` instead of `127.0.0.1`).
    pub foreign_host: bool,
    /// Served in chunks without a length.
    pub streamed: bool,
}

impl Media {
    /// Honest media: true size and hex checksum, URLs valid for five minutes.
    pub fn new(mime: &str, bytes: Vec<u8>) -> Self {
        Self {
            mime: mime.into(),
            bytes,
            declared_size: None,
            sha256_base64: false,
            ttl: Duration::from_secs(300),
            expired_lookups: 0,
            foreign_host: false,
            streamed: false,
        }
    }

    /// The first `n` lookups hand out an already expired URL (`u32::MAX`: every one).
    pub fn expired_first(mut self, n: u32) -> Self {
        self.expired_lookups = n;
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The lookup declares `size` bytes.
    pub fn declared_size(mut self, size: u64) -> Self {
        self.declared_size = Some(size);
        self
    }

    pub fn sha256_base64(mut self) -> Self {
        self.sha256_base64 = true;
        self
    }

    pub fn foreign_host(mut self) -> Self {
        self.foreign_host = true;
        self
    }

    pub fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }
}

/// One download URL handed out.
#[derive(Debug)]
pub(crate) struct Grant {
    media_id: String,
    expires: Instant,
    used: bool,
}

/// `GET /{version}/{id}`: the phone number, or a media item.
pub(crate) async fn node(
    State(fake): State<Arc<GraphState>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if id == PHONE_NUMBER_ID {
        return axum::Json(json!({
            "verified_name": "Lucky Shrub",
            "code_verification_status": "VERIFIED",
            "display_phone_number": "+1 555-078-3881",
            "quality_rating": "GREEN",
            "id": PHONE_NUMBER_ID
        }))
        .into_response();
    }
    let Some(media) = fake.media.lock().expect("lock").get(&id).cloned() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter",
            &format!("Unsupported get request. Object with ID '{id}' does not exist"),
        );
    };
    fake.resolutions.fetch_add(1, Ordering::SeqCst);
    let lookups = {
        let mut r = fake.resolves.lock().expect("lock");
        let n = r.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let ttl = if lookups <= media.expired_lookups {
        Duration::ZERO
    } else {
        media.ttl
    };
    let digest = Sha256::digest(&media.bytes);
    let sha = if media.sha256_base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(digest)
    } else {
        hex::encode(digest)
    };
    let token = format!("t{}", fake.next());
    fake.grants.lock().expect("lock").insert(
        token.clone(),
        Grant {
            media_id: id.clone(),
            expires: Instant::now() + ttl,
            used: false,
        },
    );
    let base = if media.foreign_host {
        fake.base().replace("127.0.0.1", "localhost")
    } else {
        fake.base()
    };
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{base}/whatsapp_business/attachments/?mid={id}&token={token}"),
        "mime_type": media.mime,
        "sha256": sha,
        "file_size": media.declared_size.unwrap_or(media.bytes.len() as u64),
        "id": id,
    }))
    .into_response()
}

/// The media CDN: bearer required, each URL valid once and until its expiry.
pub(crate) async fn attachment(
    State(fake): State<Arc<GraphState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    fake.download_attempts.fetch_add(1, Ordering::SeqCst);
    let token = q.get("token").cloned().unwrap_or_default();
    let media_id = {
        let mut grants = fake.grants.lock().expect("lock");
        match grants.get_mut(&token) {
            Some(g) if !g.used && Instant::now() < g.expires => {
                g.used = true;
                g.media_id.clone()
            }
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    let Some(media) = fake.media.lock().expect("lock").get(&media_id).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    fake.downloads.lock().expect("lock").push(media_id);
    if media.streamed {
        let chunks: Vec<Result<Bytes, std::io::Error>> = media
            .bytes
            .chunks(500)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        return ([(header::CONTENT_TYPE, media.mime)], body).into_response();
    }
    ([(header::CONTENT_TYPE, media.mime)], media.bytes).into_response()
}

/// Public media for outbound sends: no credentials expected, none accepted.
pub(crate) async fn public(
    State(fake): State<Arc<GraphState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return (
            StatusCode::BAD_REQUEST,
            "credentials leaked to a third party",
        )
            .into_response();
    }
    fake.public_fetches.lock().expect("lock").push(name.clone());
    let file = |ct: &str, len: usize| {
        ([(header::CONTENT_TYPE, ct.to_string())], vec![0x5Au8; len]).into_response()
    };
    match name.as_str() {
        "photo.jpg" => file("image/jpeg", 1200),
        "clip.mp4" => file("video/mp4", 2000),
        "note.ogg" => file("audio/ogg", 800),
        "invoice.pdf" => file("application/pdf; charset=binary", 3000),
        "huge.jpg" => file("image/jpeg", 5 * 1024 * 1024 + 1),
        "busy" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
