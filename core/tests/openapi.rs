//! Contract test of the OpenAPI document against the real API router.
//!
//! - The document is OpenAPI 3.1, every `$ref` resolves, every path parameter is declared,
//!   operation ids are unique, every error response is the one error shape.
//! - Every operation in the document is served: called without credentials it answers 401
//!   (or 200 for the public ones), never 404 or 405.
//! - Every route the router serves is in the document: the router's paths are read from its
//!   `Debug` output (axum lists its route table there) and every method is probed, so a
//!   route added with a bare `Router::route` instead of `routes!` fails here.
//! - `/api/v1/openapi.json` serves this document without auth, `/api/v1/docs` the viewer
//!   and its embedded script.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use switchboard_core::api::{AppState, route_table, router};
use switchboard_core::contract::connector::Connectors;
use switchboard_core::domain::model::new_id;
use switchboard_core::infra::blob::BlobStore;
use switchboard_core::store::{self, NewToken, Role, TenantRecord};
use tokio::sync::Notify;
use tower::ServiceExt;

const MAX_BODY: usize = 16 * 1024;
const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

struct App {
    _dir: tempfile::TempDir,
    router: Router,
    /// An admin token of tenant `acme`.
    token: String,
}

/// The real router over a fresh, migrated SQLite store with one tenant and no channels.
async fn app() -> App {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db.sqlite", dir.path().display());
    let store = store::open(&url, 4).await.expect("open store");
    store.migrate().await.expect("migrate");
    store
        .sync_tenants_and_channels(
            &[TenantRecord {
                id: "acme".into(),
                name: None,
            }],
            &[],
        )
        .await
        .expect("sync");
    let (token, hash) = switchboard_core::infra::auth::tokens::generate();
    store
        .create_token(&NewToken {
            id: new_id(),
            tenant_id: "acme".into(),
            name: "alice".into(),
            role: Role::Admin,
            hash,
        })
        .await
        .expect("token");
    let blobs = BlobStore::open(dir.path().join("blobs"))
        .await
        .expect("blobs");
    let state = AppState {
        store: store.clone(),
        blobs,
        jobs: Arc::new(Notify::new()),
        connectors: Arc::new(Connectors::new()),
        events: switchboard_core::infra::event_hub::EventHub::new(
            store.clone(),
            &switchboard_core::infra::config::EventsConfig {
                retention_hours: 1,
                heartbeat_secs: 15,
            },
        ),
        jwt: None,
        tenants: Arc::new(["acme"].map(String::from).into_iter().collect()),
        webhooks: switchboard_core::workers::outgoing_webhooks::Webhooks::none(),
        registry: Arc::new(switchboard_core::contract::registry::Registry::default()),
        access: Default::default(),
        urls: Arc::new(switchboard_core::infra::signed_url::UrlSigner::random(3600)),
    };
    App {
        _dir: dir,
        router: router(state, MAX_BODY),
        token,
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    bytes: Vec<u8>,
}

async fn call(router: &Router, method: &str, uri: &str) -> Reply {
    call_as(router, None, method, uri).await
}

/// A request with an empty JSON object as the body of POST/PUT/PATCH. An event stream's
/// body is not read (it never ends).
async fn call_as(router: &Router, token: Option<&str>, method: &str, uri: &str) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("text/event-stream") {
        return Reply {
            status,
            content_type,
            bytes: Vec::new(),
        };
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        bytes,
    }
}

/// The document; with `OPENAPI_DUMP=FILE` also written there, for reading it without a
/// running daemon.
fn doc() -> Value {
    let doc = switchboard_core::api::openapi::document();
    if let Ok(path) = std::env::var("OPENAPI_DUMP") {
        std::fs::write(path, serde_json::to_vec_pretty(&doc).expect("json")).expect("dump");
    }
    doc
}

/// `{param}` segments replaced by a value, so the path can be requested.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "x"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// (METHOD, path) → the operation object, for every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method.to_lowercase()) {
                out.push((method.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Resolves a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// An operation needs credentials unless its security list is empty or allows `{}`.
fn needs_auth(doc: &Value, op: &Value) -> bool {
    let security = op.get("security").unwrap_or(&doc["security"]);
    match security.as_array() {
        None => false,
        Some(reqs) => {
            !reqs.is_empty()
                && !reqs
                    .iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        }
    }
}

#[test]
fn document_is_openapi_3_1_with_resolvable_refs() {
    let doc = doc();
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "openapi is {version}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        assert!(
            r.starts_with("#/components/"),
            "{r}: only local component refs"
        );
        assert!(resolve(&doc, r).is_some(), "{r} does not resolve");
    }

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["accessToken"]["in"], "query");
    assert_eq!(schemes["accessToken"]["name"], "access_token");

    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
        for tag in op["tags"].as_array().expect("tags") {
            let tag = tag.as_str().expect("tag");
            assert!(
                declared_tags.contains(tag),
                "{method} {path}: tag {tag} is not declared"
            );
        }
        for reqs in op
            .get("security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for name in reqs.as_object().expect("requirement").keys() {
                assert!(
                    schemes.contains_key(name),
                    "{method} {path}: unknown scheme {name}"
                );
            }
        }
        // Every `{param}` of the path is a declared, required path parameter.
        let params: Vec<Value> = op
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for seg in path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter {name} is not declared"
                );
            }
        }
    }
}

#[test]
fn every_error_response_has_the_error_shape() {
    let doc = doc();
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "bad_request",
        "invalid_cursor",
        "validation_failed",
        "payload_too_large",
        "unsupported_media_type",
        "contact_opted_out",
        "idempotency_key_reused",
        "attachment_pending",
        "attachment_failed",
        "attachment_too_large",
        "staff_exists",
        "rate_limited",
        "unavailable",
        "internal",
    ] {
        assert!(codes.contains(&code), "ErrorCode lacks {code}");
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]));

    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "101"),
            "{method} {path}: no success response"
        );
        if needs_auth(&doc, &op) {
            assert!(
                responses.contains_key("401"),
                "{method} {path}: secured but no 401"
            );
            // The rate limit is counted right after authentication.
            let limited = resolve(&doc, responses["429"]["$ref"].as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("{method} {path}: secured but no 429"));
            for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
                assert!(limited["headers"][name].is_object(), "429 lacks {name}");
            }
        }
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = match response.get("$ref").and_then(Value::as_str) {
                Some(r) => resolve(&doc, r).expect("response ref"),
                None => response,
            };
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path} {status}: not the error shape"
            );
        }
    }
}

#[test]
fn route_table_is_the_document() {
    let doc = doc();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let table: BTreeSet<(String, String)> = route_table()
        .iter()
        .map(|(m, p)| (m.to_string(), p.clone()))
        .collect();
    assert_eq!(table, documented);
    for required in [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/docs"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/ws"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/attachments/{id}"),
    ] {
        assert!(
            table.contains(&(required.0.to_string(), required.1.to_string())),
            "{required:?} is not in the route table"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = app().await;
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let reply = call(&app.router, &method, &concrete(&path)).await;
        let expected = if needs_auth(&doc, &op) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(
            reply.status,
            expected,
            "{method} {path} without credentials: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
        let documented = op["responses"]
            .as_object()
            .expect("responses")
            .contains_key(reply.status.as_str());
        assert!(
            documented,
            "{method} {path}: {} is not documented",
            reply.status
        );
    }
}

/// Called with credentials (unknown ids, an empty JSON body), every operation answers a
/// status its documentation lists, with the documented content type; errors have the shape.
#[tokio::test]
async fn authenticated_answers_are_documented() {
    let app = app().await;
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let reply = call_as(&app.router, Some(&app.token), &method, &concrete(&path)).await;
        let what = format!(
            "{method} {path}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.bytes)
        );
        let response = &op["responses"][reply.status.as_str()];
        assert!(response.is_object(), "{what}: status not documented");
        let response = match response.get("$ref").and_then(Value::as_str) {
            Some(r) => resolve(&doc, r).expect("response ref"),
            None => response,
        };
        let content = response["content"].as_object().expect("content");
        let media = reply.content_type.split(';').next().unwrap_or_default();
        assert!(
            content.contains_key(media) || content.contains_key("*/*"),
            "{what}: content type {media} not documented"
        );
        if !reply.status.is_success() {
            let body: Value = serde_json::from_slice(&reply.bytes).expect("error json");
            assert!(body["error"]["code"].is_string(), "{what}");
            assert!(body["error"]["message"].is_string(), "{what}");
        }
    }
}

/// The paths of the router's route table, read from its `Debug` output (axum prints
/// `RouteId(n): "/path"` for each route of the path router).
fn served_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // Only the path router: the fallback router has axum's private catch-all routes.
    let routes = debug
        .split("fallback_router")
        .next()
        .expect("path router part");
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i + "RouteId(".len()..];
        let Some(after) = rest.split_once("): \"").map(|(_, a)| a) else {
            continue;
        };
        if let Some((path, _)) = after.split_once('"')
            && path.starts_with('/')
            && !path.contains("__private__axum")
        {
            paths.insert(path.to_string());
        }
    }
    paths
}

#[tokio::test]
async fn every_served_route_is_documented() {
    let app = app().await;
    let doc = doc();
    let documented: HashMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(m.to_lowercase()).is_some())
                .map(|m| m.to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect();

    let served = served_paths(&app.router);
    // If axum stops listing its routes in `Debug`, fail rather than pass vacuously.
    assert!(
        served.len() >= documented.len() && served.contains("/healthz"),
        "could not read the router's routes from its Debug output; found {served:?}"
    );
    for path in &served {
        let methods = documented.get(path).unwrap_or_else(|| {
            panic!(
                "{path} is served but not in the OpenAPI document: annotate its handler with \
                 #[utoipa::path] and register it with routes!() (see api::api_routes)"
            )
        });
        for method in METHODS {
            // axum answers HEAD for every GET route.
            if method == "HEAD" && methods.contains("GET") {
                continue;
            }
            let reply = call(&app.router, method, &concrete(path)).await;
            let served = !matches!(
                reply.status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            );
            assert_eq!(
                served,
                methods.contains(method),
                "{method} {path}: answered {} but the document {} it",
                reply.status,
                if methods.contains(method) {
                    "has"
                } else {
                    "does not have"
                }
            );
        }
    }
    // And nothing is documented that the router does not have.
    for path in documented.keys() {
        assert!(served.contains(path), "{path} is documented but not routed");
    }
}

#[tokio::test]
async fn a_bare_route_would_be_caught() {
    let app = app().await;
    let extra = app.router.clone().route(
        "/api/v1/undocumented/{id}",
        axum::routing::get(|| async { "hi" }),
    );
    let served = served_paths(&extra);
    assert!(served.contains("/api/v1/undocumented/{id}"), "{served:?}");
    assert!(
        !doc()["paths"]
            .as_object()
            .expect("paths")
            .contains_key("/api/v1/undocumented/{id}")
    );
}

/// NUL bytes never reach the store (PostgreSQL refuses them in text parameters: a 500
/// there): an id with one names nothing, a query with one is malformed.
#[tokio::test]
async fn nul_bytes_are_refused_before_the_store() {
    let app = app().await;
    let token = Some(app.token.as_str());
    for (method, uri, status) in [
        ("GET", "/api/v1/conversations/a%00b", StatusCode::NOT_FOUND),
        (
            "POST",
            "/api/v1/conversations/a%00b/read",
            StatusCode::NOT_FOUND,
        ),
        ("GET", "/api/v1/attachments/%00", StatusCode::NOT_FOUND),
        (
            "GET",
            "/api/v1/conversations?channel=%00",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/v1/conversations?assignee=a%00",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/v1/conversations/x/messages?cursor=%00",
            StatusCode::BAD_REQUEST,
        ),
        // "1:a\0b" as a cursor: well-formed, but no id of ours has a NUL.
        (
            "GET",
            "/api/v1/conversations?cursor=MTphAGI",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = call_as(&app.router, token, method, uri).await;
        assert_eq!(
            reply.status,
            status,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_keep_the_error_shape() {
    let app = app().await;
    let reply = call(&app.router, "GET", "/api/v1/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&reply.bytes).expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    let reply = call(&app.router, "DELETE", "/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn document_and_viewer_are_served_without_auth() {
    let app = app().await;
    let reply = call(&app.router, "GET", "/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    let served: Value = serde_json::from_slice(&reply.bytes).expect("json");
    assert_eq!(served, doc());

    let reply = call(&app.router, "GET", "/api/v1/docs").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("text/html"),
        "{}",
        reply.content_type
    );
    let page = String::from_utf8(reply.bytes).expect("utf-8");
    assert!(page.contains("spec-url=\"openapi.json\""), "{page}");
    assert!(
        page.contains("src=\"docs/assets/rapidoc-min.js\""),
        "{page}"
    );

    let reply = call(&app.router, "GET", "/api/v1/docs/assets/rapidoc-min.js").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "text/javascript; charset=utf-8");
    assert!(reply.bytes.starts_with(b"/*! RapiDoc "));
}
