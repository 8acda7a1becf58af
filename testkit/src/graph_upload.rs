//! The fake Graph API's media upload endpoint (`POST /{version}/{phone-number-id}/media`):
//! it decodes the multipart body, records it, and answers `{"id"}` as Meta does, or Graph
//! error 100 when a documented part is missing.

use crate::graph::{GraphState, PHONE_NUMBER_ID as PNID, authorized, graph_error, unauthorized};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// One multipart upload as the fake decoded it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub fields: HashMap<String, String>,
    pub filename: String,
    pub file_type: String,
    pub bytes: Vec<u8>,
}

/// Splits a multipart/form-data body into (headers, content) parts.
fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let boundary = content_type.split("boundary=").nth(1)?.trim();
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text.strip_prefix(delimiter.as_bytes())?;
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = rest
            .windows(delimiter.len() + 2)
            .position(|w| w == format!("\r\n{delimiter}").as_bytes())?;
        let part = &rest[..end];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8(part[..split].to_vec()).ok()?;
        parts.push((head, part[split + 4..].to_vec()));
        rest = &rest[end + 2 + delimiter.len()..];
    }
}

fn param(head: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('"')?;
    Some(head[start..start + len].to_string())
}

pub(crate) async fn upload(
    State(fake): State<Arc<GraphState>>,
    Path((_version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = match parse_multipart(content_type, &body) {
        Some(p) if content_type.starts_with("multipart/form-data;") && pnid == PNID => p,
        _ => {
            return graph_error(
                AxStatus::BAD_REQUEST,
                100,
                "Invalid parameter",
                "not multipart",
            );
        }
    };
    let mut up = Upload {
        fields: HashMap::new(),
        filename: String::new(),
        file_type: String::new(),
        bytes: Vec::new(),
    };
    for (head, content) in parts {
        let Some(name) = param(&head, "name") else {
            return graph_error(
                AxStatus::BAD_REQUEST,
                100,
                "Invalid parameter",
                "unnamed part",
            );
        };
        if name == "file" {
            up.filename = param(&head, "filename").unwrap_or_default();
            up.file_type = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))
                .unwrap_or_default()
                .to_string();
            up.bytes = content;
        } else {
            up.fields
                .insert(name, String::from_utf8_lossy(&content).into_owned());
        }
    }
    let complete = up.fields.get("messaging_product").map(String::as_str) == Some("whatsapp")
        && up.fields.contains_key("type")
        && !up.filename.is_empty()
        && !up.bytes.is_empty();
    fake.uploads.lock().expect("lock").push(up);
    if !complete {
        return graph_error(
            AxStatus::BAD_REQUEST,
            100,
            "Invalid parameter",
            "missing parts",
        );
    }
    let n = fake.next();
    axum::Json(json!({"id": format!("{}", 4_000_000 + n)})).into_response()
}
