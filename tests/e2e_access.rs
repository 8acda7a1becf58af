//! Access rules of the real binary that are not about data: CORS for browsers on another
//! origin (`server.cors_allowed_origins`) and rate limits per token (`[api.rate_limits]`),
//! on SQLite and PostgreSQL.

use reqwest::{Method, Response};
use switchboard_testkit::{App, AppBuilder, switchboard_bin};

const APP_ORIGIN: &str = "https://app.example";

fn builder(postgres: bool) -> AppBuilder {
    let b = App::builder(switchboard_bin!());
    if postgres { b.postgres() } else { b }
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(app: &App, origin: &str, path: &str) -> Response {
    app.http
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .expect("preflight")
}

async fn get_with_origin(app: &App, token: &str, origin: &str) -> Response {
    app.http
        .get(format!("{}/api/v1/conversations", app.base))
        .bearer_auth(token)
        .header("Origin", origin)
        .send()
        .await
        .expect("get")
}

async fn cors(postgres: bool) {
    let app = builder(postgres)
        .token("acme", "agent", "ann")
        .env(
            "SWITCHBOARD_SERVER__CORS_ALLOWED_ORIGINS",
            &format!("[\"{APP_ORIGIN}\"]"),
        )
        .spawn()
        .await;
    let token = &app.tokens[0];

    let r = preflight(&app, APP_ORIGIN, "/api/v1/conversations/x/messages").await;
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP_ORIGIN));
    let methods = header(&r, "access-control-allow-methods").expect("methods");
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header(&r, "access-control-allow-headers")
        .expect("headers")
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "idempotency-key",
        "last-event-id",
    ] {
        assert!(headers.contains(h), "{headers}");
    }
    assert_eq!(header(&r, "access-control-max-age"), Some("600"));
    assert_eq!(header(&r, "access-control-allow-credentials"), None);

    // Another origin: no CORS headers; the preflight is an ordinary (refused) OPTIONS.
    let r = preflight(&app, "https://evil.example", "/api/v1/conversations").await;
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(r.status(), 405);

    let r = get_with_origin(&app, token, APP_ORIGIN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP_ORIGIN));
    let exposed = header(&r, "access-control-expose-headers").expect("exposed");
    assert!(exposed.contains("Retry-After"), "{exposed}");
    let r = get_with_origin(&app, token, "https://evil.example").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    // Errors carry the header too, so a browser script can read them.
    let r = get_with_origin(&app, "sb_wrong", APP_ORIGIN).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP_ORIGIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_allowed_origins_only() {
    cors(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_allowed_origins_only_on_postgres() {
    cors(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = builder(false).token("acme", "agent", "ann").spawn().await;
    let r = preflight(&app, APP_ORIGIN, "/api/v1/conversations").await;
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let r = get_with_origin(&app, &app.tokens[0], APP_ORIGIN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
}

async fn list(app: &App, token: &str) -> Response {
    app.http
        .get(format!("{}/api/v1/conversations", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
}

async fn rate_limits(postgres: bool) {
    let app = builder(postgres)
        .token("acme", "agent", "ann")
        .token("acme", "agent", "ben")
        .token("acme", "admin", "boss")
        .toml("[api.rate_limits]\nagent_per_minute = 3\nadmin_per_minute = 0\n")
        .spawn()
        .await;
    let [ann, ben, boss] = app.tokens.clone().try_into().expect("three tokens");
    for left in [2, 1, 0] {
        let r = list(&app, &ann).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), Some("\"default\";q=3;w=60"));
        let state = header(&r, "ratelimit").expect("RateLimit");
        assert!(
            state.starts_with(&format!("\"default\";r={left};t=")),
            "{state}"
        );
    }
    // The fourth request within the minute is refused before it is served.
    let r = list(&app, &ann).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(header(&r, "ratelimit-policy"), Some("\"default\";q=3;w=60"));
    let state = header(&r, "ratelimit").expect("RateLimit").to_string();
    assert!(state.starts_with("\"default\";r=0;t="), "{state}");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Any other route too: the quota is the token's.
    let (status, _) = app.api(Method::GET, "/api/v1/me", &ann, None).await;
    assert_eq!(status, 429);

    // Another token of the same role, and an unlimited admin, are not affected.
    assert_eq!(list(&app, &ben).await.status(), 200);
    let r = list(&app, &boss).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "ratelimit"), None);
    // Health and metrics are not counted.
    for _ in 0..5 {
        let r = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz");
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_a_token_past_its_quota() {
    rate_limits(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_a_token_past_its_quota_on_postgres() {
    rate_limits(true).await;
}
