//! Client tests: media downloads (media hosts, credentials, redirects, limits, errors).

use super::setup::*;
use super::*;
use switchboard_core::infra::config::Secret;

#[tokio::test]
async fn media_is_fetched_with_credentials_and_same_host_redirects() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let m = client
        .fetch_media(&format!("{base}/media/ok"), &limits(1000))
        .await
        .expect("fetched");
    assert_eq!(m.content_type, "image/jpeg");
    assert_eq!(m.bytes.len(), 100);
    assert_eq!(m.expected_sha256, None);
    // The redirect target also demands auth: the header survived the same-host hop.
    let m = client
        .fetch_media(&format!("{base}/media/redirect"), &limits(1000))
        .await
        .expect("followed");
    assert_eq!(m.bytes.len(), 100);
}

#[tokio::test]
async fn credentials_never_follow_a_cross_host_redirect() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let m = client
        .fetch_media(&format!("{base}/media/cross-host"), &limits(1000))
        .await
        .expect("fetched from the CDN without credentials");
    assert_eq!(m.bytes.len(), 10);
}

#[tokio::test]
async fn credentials_go_only_to_twilio() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let foreign = base.replace("127.0.0.1", "localhost");
    let err = client
        .fetch_media(&format!("{foreign}/media/ok"), &limits(1000))
        .await
        .expect_err("no credentials for another host");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );
    assert!(client.may_authenticate(&url::Url::parse("https://api.twilio.com/x").expect("url")));
    assert!(!client.may_authenticate(&url::Url::parse("http://api.twilio.com/x").expect("url")));
    assert!(
        !client
            .may_authenticate(&url::Url::parse("https://twilio.com.evil.example/x").expect("url"))
    );
}

#[tokio::test]
async fn media_is_fetched_only_from_the_media_hosts() {
    let (fake, base) = spawn_fake().await;
    // Only the API origin's host (127.0.0.1): `localhost` is off the list.
    let mut s = settings(&base);
    s.media_hosts = Vec::new();
    let client = client_with(s, None);
    let refused = |err: SendError| {
        assert!(
            matches!(err, SendError::Permanent { ref code, .. } if code == "media_url_refused"),
            "{err:?}"
        );
    };
    // A link-local metadata address, and the fake under a name off the list: no request.
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
        base.replace("127.0.0.1", "localhost") + "/media/ok",
    ] {
        refused(
            client
                .fetch_media(&url, &limits(1000))
                .await
                .expect_err(&url),
        );
    }
    assert!(
        fake.media_requests().is_empty(),
        "{:?}",
        fake.media_requests()
    );
    // A listed host redirecting off the list: the hop is refused, the CDN never asked.
    refused(
        client
            .fetch_media(&format!("{base}/media/cross-host"), &limits(1000))
            .await
            .expect_err("redirect off the list"),
    );
    assert_eq!(fake.media_requests(), vec!["/media/cross-host".to_string()]);
    // Same-host redirects stay on the list.
    let m = client
        .fetch_media(&format!("{base}/media/redirect"), &limits(1000))
        .await
        .expect("followed");
    assert_eq!(m.bytes.len(), 100);
}

#[tokio::test]
async fn media_limits_are_enforced() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    for name in ["big-declared", "big-streamed"] {
        let err = client
            .fetch_media(&format!("{base}/media/{name}"), &limits(1000))
            .await
            .expect_err("too large");
        assert!(
            matches!(err, SendError::Permanent { ref code, .. } if code == "media_too_large"),
            "{name}: {err:?}"
        );
    }
    let ok = client
        .fetch_media(&format!("{base}/media/big-streamed"), &limits(5000))
        .await
        .expect("exactly at the limit");
    assert_eq!(ok.bytes.len(), 5000);
    let err = client
        .fetch_media(&format!("{base}/media/exe"), &limits(1000))
        .await
        .expect_err("type");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "media_type_not_allowed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn media_http_errors_are_classified() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .fetch_media(&format!("{base}/media/gone"), &limits(1000))
        .await
        .expect_err("404");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "not_found"),
        "{err:?}"
    );
    let err = client
        .fetch_media(&format!("{base}/media/busy"), &limits(1000))
        .await
        .expect_err("503");
    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
    let mut wrong = settings(&base);
    wrong.auth_token = Secret::new("nope");
    let err = client_with(wrong, None)
        .fetch_media(&format!("{base}/media/ok"), &limits(1000))
        .await
        .expect_err("401");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );
    let err = client
        .fetch_media("file:///etc/passwd", &limits(1000))
        .await
        .expect_err("scheme");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "invalid_media_url"),
        "{err:?}"
    );
}
