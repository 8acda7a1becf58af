//! The OpenAPI 3.1 document of the REST API, generated from the code with `utoipa`.
//!
//! Every handler carries a `#[utoipa::path]` annotation and is registered with
//! `utoipa_axum::routes!` in [`super::api_routes`], which builds the axum router and the
//! document's `paths` from the same list: a route cannot be served without being described.
//! [`ApiDoc`] adds what is not per operation (info, tags, security schemes, shared schemas).
//!
//! Served at `GET /api/v1/openapi.json` (no auth) with an interactive viewer at
//! `GET /api/v1/docs` (RapiDoc, embedded in the binary: see [`super::docs`]).

use super::AppState;
use super::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::contract::registry::Registry;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToResponse, ToSchema};

/// Tag names, shared by the annotations and [`ApiDoc`].
pub const TAG_CONVERSATIONS: &str = "conversations";
pub const TAG_CONTACTS: &str = "contacts";
/// Outgoing webhooks (admin only).
pub const TAG_WEBHOOKS: &str = "webhooks";
pub const TAG_MESSAGES: &str = "messages";
pub const TAG_ATTACHMENTS: &str = "attachments";
pub const TAG_CHANNELS: &str = "channels";
pub const TAG_EVENTS: &str = "events";
/// The caller and the staff directory.
pub const TAG_STAFF: &str = "staff";
pub const TAG_SYSTEM: &str = "system";

/// The bearer security scheme (an API token or JWT in `Authorization: Bearer`).
pub const BEARER: &str = "bearerAuth";
/// The token in the `access_token` query parameter (live-event streams only).
pub const ACCESS_TOKEN_QUERY: &str = "accessToken";
/// A signed media URL's `sig` (with `tenant` and `expires`): attachments and HTML pages.
pub const SIGNED_URL: &str = "signedUrl";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "REST API v1 of Switchboard, an omnichannel ingestion daemon (email, Twilio, \
WhatsApp) with one conversation model.\n\n\
**Authentication.** Every `/api/v1` operation except this document and its viewer needs \
`Authorization: Bearer <token>` with an API token (`switchboard token create --tenant T \
--role admin|agent --name N`) or, when `[auth] jwt_algorithm` is configured, a JWT naming \
the tenant, the subject and the role. A token is scoped to one tenant: another tenant's \
object is a 404. The live-event streams (`/api/v1/events`, `/api/v1/ws`) also accept the token as the \
`access_token` query parameter, because browsers' `EventSource` and `WebSocket` cannot set \
headers. Attachments (`/api/v1/attachments/{id}`) and message HTML pages \
(`/api/v1/messages/{id}/html`) also open without a header through the short-lived signed URLs \
that message views give (`url`, `html_url`: `tenant`, `expires` and `sig` in the query), for \
`<img>`, downloads and sandboxed iframes.\n\n\
**Errors.** Every error has the shape `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` \
with a stable `code` (see the `ErrorCode` schema); unknown routes are 404 `not_found`, \
unknown methods 405 `method_not_allowed`, bodies over `server.max_body_bytes` 413 \
`payload_too_large`.\n\n\
**Pagination.** Lists return `{items, next_cursor}`; pass `next_cursor` as `cursor` for the \
next page (null on the last page). `limit` is 1 to 100, default 25.\n\n\
**Rate limits.** Each API token (or JWT tenant and subject) may make `[api.rate_limits]` \
requests per minute for its role (600 for agents, 1,200 for admins by default; 0 is \
unlimited). Every authenticated response of a limited role says where it stands in the fields of \
draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: \"default\";q=600;w=60` (quota per \
window of seconds) and `RateLimit: \"default\";r=599;t=1` (requests left, seconds until the \
whole quota is back); past the quota: 429 `rate_limited` with `Retry-After` (seconds).\n\n\
**Browsers.** Origins listed in `server.cors_allowed_origins` may call the API \
cross-origin (CORS, without credentials).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = TAG_CONVERSATIONS, description = "Conversations: list, detail, status, assignment, read state"),
        (name = TAG_MESSAGES, description = "Messages of a conversation, replies and new outbound conversations"),
        (name = TAG_CONTACTS, description = "Contacts: search, details, notes and attributes, a person's conversations, merging and erasure (GDPR)"),
        (name = TAG_ATTACHMENTS, description = "Attachment download"),
        (name = TAG_CHANNELS, description = "Configured channels and their status"),
        (name = TAG_EVENTS, description = "Live events over Server-Sent Events and WebSocket"),
        (name = TAG_WEBHOOKS, description = "Outgoing webhooks: endpoints, delivery logs, test sends (admin only)"),
        (name = TAG_STAFF, description = "The caller, and the tenant's staff directory (changes are admin only)"),
        (name = TAG_SYSTEM, description = "Health, readiness and this document"),
    ),
    components(
        schemas(ErrorBody, ErrorDetail, ErrorCode, super::views::EventView),
        responses(
            Unauthorized,
            NotFound,
            Internal,
            MalformedJson,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            AdminOnly,
            SpamNeedsAdmin,
            RateLimited,
            ContactMoved,
            ContactNotFound,
        ),
    ),
    security(("bearerAuth" = [])),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// Declares the security schemes the operations refer to.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`sb_...`) from `switchboard token create`, or a JWT \
                         (HS256/RS256/ES256, when `[auth] jwt_algorithm` is set) carrying the \
                         tenant, `sub` and role; either is scoped to one tenant with the role \
                         `admin` or `agent`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ACCESS_TOKEN_QUERY,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "The same token (API token or JWT) in the query string, accepted only by \
                 the live-event streams (`/api/v1/events`, `/api/v1/ws`) for browsers that \
                 cannot set headers. Use TLS: the token is then part of the URL.",
            ))),
        );
        components.add_security_scheme(
            SIGNED_URL,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "sig",
                "A short-lived signed URL as message views give it (an attachment's `url`, \
                 `html_url`): `sig`, an HMAC-SHA256 by the server over the tenant, the \
                 resource and the expiry, with `tenant` and `expires` beside it in the query. \
                 Accepted only by attachment downloads and message HTML pages, so that \
                 `<img>`, download links and iframes work without headers; a wrong one is \
                 403 `invalid_signature`, an expired one 403 `signature_expired`.",
            ))),
        );
    }
}

/// Raw bytes (a download).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Binary(Vec<u8>);

/// `/healthz` and `/readyz` when healthy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// The `{id}` of a conversation.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct ConversationId(
    /// The conversation's id.
    #[param(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    String,
);

// Reusable error responses: each is `ErrorBody` with the codes it can carry.

/// `unauthorized`: a missing, malformed, unknown or revoked token.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"code": "unauthorized", "message": "missing bearer token"}}),
    headers(("WWW-Authenticate" = String, description = "Always `Bearer`.")),
)]
#[allow(dead_code)]
pub struct Unauthorized(ErrorBody);

/// `not_found`: no such object in the caller's tenant.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "not_found", "message": "not found"}}))]
#[allow(dead_code)]
pub struct NotFound(ErrorBody);

/// `internal`: a failure of ours; the detail is logged, never shown.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "internal", "message": "internal error"}}))]
#[allow(dead_code)]
pub struct Internal(ErrorBody);

/// `bad_request`: the body is not valid JSON, or a header (`Idempotency-Key`) is malformed.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "bad_request", "message": "Failed to parse the request body as JSON: expected value at line 1 column 1"}}))]
#[allow(dead_code)]
pub struct MalformedJson(ErrorBody);

/// `payload_too_large`: the body is larger than `server.max_body_bytes`.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "payload_too_large", "message": "request body too large"}}))]
#[allow(dead_code)]
pub struct PayloadTooLarge(ErrorBody);

/// `unsupported_media_type`: the body is not sent as `application/json`.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "unsupported_media_type", "message": "expected a JSON body with Content-Type: application/json"}}))]
#[allow(dead_code)]
pub struct UnsupportedMediaType(ErrorBody);

/// `validation_failed`: valid JSON that breaks the rules (a missing or unknown field, a wrong
/// type, a length, a format); the message names the field.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "validation_failed", "message": "text must not be blank"}}))]
#[allow(dead_code)]
pub struct ValidationFailed(ErrorBody);

/// `forbidden`: this action needs the admin role.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "forbidden", "message": "this action needs the admin role"}}))]
#[allow(dead_code)]
pub struct AdminOnly(ErrorBody);

/// `forbidden`: only an admin can change the status of a conversation marked as spam.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "forbidden", "message": "only an admin can change the status of a conversation marked as spam"}}))]
#[allow(dead_code)]
pub struct SpamNeedsAdmin(ErrorBody);

/// `contact_merged`: the contact was merged into another; the same request is served at
/// `Location`, the survivor's URL.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"code": "contact_merged", "message": "contact 0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9c was merged into 0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b"}}),
    headers(("Location" = String, description = "The survivor's URL for the same request, e.g. `/api/v1/contacts/{survivor}`.")),
)]
#[allow(dead_code)]
pub struct ContactMoved(ErrorBody);

/// `not_found`: no such contact in the caller's tenant, or it was erased.
#[derive(ToResponse)]
#[response(example = json!({"error": {"code": "not_found", "message": "contact 0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b was erased"}}))]
#[allow(dead_code)]
pub struct ContactNotFound(ErrorBody);

/// `rate_limited`: the token made more requests than its role's quota allows.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"code": "rate_limited", "message": "too many requests for this token: try again in 1 s"}}),
    headers(
        ("Retry-After" = i64, description = "Seconds until a request is allowed again."),
        ("RateLimit-Policy" = String, description = "The quota per window (draft-ietf-httpapi-ratelimit-headers), e.g. `\"default\";q=600;w=60`."),
        ("RateLimit" = String, description = "Requests left now and seconds until the whole quota is back, e.g. `\"default\";r=0;t=42`."),
    ),
)]
#[allow(dead_code)]
pub struct RateLimited(ErrorBody);

/// The generated document (built once): every operation that needs credentials also
/// documents the rate limit's 429.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = super::api_routes().split_for_parts().1;
        document_rate_limits(&mut doc);
        doc
    })
}

/// Adds the 429 `RateLimited` response to every operation with a security requirement
/// (the rate limit is counted right after authentication, so exactly those can get it).
fn document_rate_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, RefOr};
    let secured_by_default = doc.security.as_ref().is_some_and(|s| !s.is_empty());
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let secured = match &op.security {
                Some(requirements) => !requirements.is_empty(),
                None => secured_by_default,
            };
            if secured {
                op.responses.responses.insert(
                    "429".to_string(),
                    RefOr::Ref(Ref::from_response_name("RateLimited")),
                );
            }
        }
    }
}

/// The document as JSON, with core's own error codes.
pub fn document() -> serde_json::Value {
    serde_json::to_value(openapi()).unwrap_or_default()
}

/// The document as this server serves it: the `ErrorCode` schema also lists the refusal
/// codes the registered connectors declare (core itself knows none of them).
pub fn document_with(registry: &Registry) -> serde_json::Value {
    let mut doc = document();
    let schema = &mut doc["components"]["schemas"]["ErrorCode"];
    if let Some(codes) = schema
        .get_mut("enum")
        .and_then(serde_json::Value::as_array_mut)
    {
        for refusal in registry.refusal_codes() {
            if !codes.iter().any(|c| c == refusal.code) {
                codes.push(serde_json::Value::from(refusal.code));
            }
        }
    }
    let mut notes: Vec<String> = registry
        .refusal_codes()
        .iter()
        .map(|r| format!("`{}` (409): {}", r.code, r.meaning))
        .collect();
    if !notes.is_empty() {
        let base = schema["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        notes.insert(0, format!("{base}\n\nCodes of this server's connectors:"));
        schema["description"] = serde_json::Value::from(notes.join("\n- "));
    }
    doc
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = TAG_SYSTEM,
    operation_id = "openapi",
    security(),
    responses(
        (status = 200, description = "This document (OpenAPI 3.1, JSON).", content_type = "application/json", body = Object),
    )
)]
pub(super) async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    let doc = document_with(&state.registry);
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
}
