//! Client tests: inbound media (resolve by media id, download with the bearer token, limits,
//! expiring URLs, checksums, errors).

use super::setup::*;
use super::*;
use switchboard_core::infra::config::Secret;

fn is_permanent(e: &SendError, want: &str) -> bool {
    matches!(e, SendError::Permanent { code, .. } if code == want)
}

fn is_transient(e: &SendError, want: &str) -> bool {
    matches!(e, SendError::Transient { code: Some(code), .. } if code == want)
}

#[tokio::test]
async fn media_is_resolved_then_downloaded_with_metas_checksum() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let m = client
        .fetch_media("1000", &limits(10_000))
        .await
        .expect("fetched");
    assert_eq!(m.content_type, "image/jpeg");
    assert_eq!(m.bytes.as_ref(), media_bytes("1000").as_slice());
    assert_eq!(m.expected_sha256, Some(sha256_hex(&media_bytes("1000"))));
    assert_eq!(fake.downloads(), 1);
}

#[tokio::test]
async fn an_expired_url_is_transient_and_the_retry_resolves_a_fresh_one() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    // Media 1003: the first lookup hands out an already expired URL, the next a good one.
    let err = client
        .fetch_media("1003", &limits(10_000))
        .await
        .expect_err("expired");
    assert!(is_transient(&err, "media_url_expired"), "{err:?}");
    let m = client
        .fetch_media("1003", &limits(10_000))
        .await
        .expect("fresh URL");
    assert_eq!(m.bytes.len(), 1000);
    // Media 1002 never gets a usable URL: transient every time (core bounds the attempts).
    let err = client
        .fetch_media("1002", &limits(10_000))
        .await
        .expect_err("expired");
    assert!(is_transient(&err, "media_url_expired"), "{err:?}");
}

/// The media URL Meta hands out for `media_id`, as the webhook or a lookup would give it.
async fn resolve(base: &str, media_id: &str) -> String {
    let info: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/{VERSION}/{media_id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("json");
    info["url"].as_str().expect("url").to_string()
}

#[tokio::test]
async fn urls_expire_after_one_use_and_after_their_time_to_live() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let url = resolve(&base, "1000").await;
    let m = client
        .fetch_media(&url, &limits(10_000))
        .await
        .expect("first use");
    assert_eq!(m.bytes.len(), 1000);
    assert_eq!(
        m.expected_sha256, None,
        "a bare URL comes without a checksum"
    );
    let err = client
        .fetch_media(&url, &limits(10_000))
        .await
        .expect_err("used");
    assert!(is_transient(&err, "media_url_expired"), "{err:?}");

    let url = resolve(&base, "1004").await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let err = client
        .fetch_media(&url, &limits(10_000))
        .await
        .expect_err("stale");
    assert!(is_transient(&err, "media_url_expired"), "{err:?}");
}

#[tokio::test]
async fn limits_are_checked_before_and_during_the_download() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    // Declared larger than allowed: refused before any byte is downloaded.
    let err = client
        .fetch_media("2000", &limits(10_000))
        .await
        .expect_err("too large");
    assert!(is_permanent(&err, "media_too_large"), "{err:?}");
    // A type core does not accept: refused before the download too.
    let err = client
        .fetch_media("2002", &limits(10_000))
        .await
        .expect_err("type");
    assert!(is_permanent(&err, "media_type_not_allowed"), "{err:?}");
    assert_eq!(fake.downloads(), 0);
    // Declared small, streamed large: cut off at the cap.
    let err = client
        .fetch_media("2001", &limits(1_000))
        .await
        .expect_err("stream");
    assert!(is_permanent(&err, "media_too_large"), "{err:?}");
    assert_eq!(fake.downloads(), 1);
}

#[tokio::test]
async fn a_base64_checksum_is_handed_to_core_as_hex() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let m = client
        .fetch_media("2003", &limits(10_000))
        .await
        .expect("fetched");
    assert_eq!(m.expected_sha256, Some(sha256_hex(&media_bytes("2003"))));
}

#[tokio::test]
async fn unknown_ids_bad_ids_and_bad_tokens_are_permanent() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let err = client
        .fetch_media("9999", &limits(10_000))
        .await
        .expect_err("unknown");
    assert!(is_permanent(&err, "100"), "{err:?}");
    for bad in ["../1000", "1000?x=1", "", "ftp://x/y"] {
        let err = client
            .fetch_media(bad, &limits(10_000))
            .await
            .expect_err("bad id");
        assert!(is_permanent(&err, "invalid_media_id"), "{bad}: {err:?}");
    }
    let mut s = settings(&base);
    s.access_token = Secret::new("revoked");
    let err = client_with(s)
        .fetch_media("1000", &limits(10_000))
        .await
        .expect_err("token");
    assert!(is_permanent(&err, "190"), "{err:?}");
    assert_eq!(fake.downloads(), 0);
}

#[tokio::test]
async fn the_token_goes_only_to_https_hosts_or_the_graph_origin() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    // Media 3000's URL points at another origin over plain http.
    let err = client
        .fetch_media("3000", &limits(10_000))
        .await
        .expect_err("untrusted");
    assert!(is_permanent(&err, "untrusted_media_url"), "{err:?}");
    assert_eq!(fake.downloads(), 0);
    let ok = |u: &str| client.may_authenticate(&url::Url::parse(u).expect("url"));
    assert!(ok(
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
    ));
    assert!(ok(&format!("{base}/whatsapp_business/attachments/")));
    assert!(!ok("http://lookaside.fbsbx.com/x"));
}

#[tokio::test]
async fn metas_media_url_goes_through_the_public_address_guard() {
    let (fake, base) = spawn_fake().await;
    // The guard as configured by default: no private addresses. The lookup (Graph API,
    // configured origin) still works; the URL it answers is on loopback and is refused.
    let http = reqwest::Client::builder().build().expect("client");
    let guarded = switchboard_core::infra::public_http::PublicHttp::new(false).expect("client");
    let client = GraphClient::new(http, guarded, Arc::new(settings(&base)), "test".into());
    let err = client
        .fetch_media("1000", &limits(10_000))
        .await
        .expect_err("loopback media URL");
    assert!(is_permanent(&err, "untrusted_media_url"), "{err:?}");
    assert_eq!(fake.downloads(), 0);
}

#[tokio::test]
async fn a_download_without_the_token_is_refused_by_meta() {
    let (_fake, base) = spawn_fake().await;
    let url = resolve(&base, "1000").await;
    let status = reqwest::Client::new()
        .get(&url)
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
}
