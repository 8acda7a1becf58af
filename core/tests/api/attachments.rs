//! Attachment downloads: refused while pending or failed, served with safe headers once
//! stored, with a bearer token or the signed URL of the message view.

use crate::support::{TestApp, sms};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use switchboard_core::domain::model::{InboundAttachment, now_millis};
use switchboard_core::store::StoredBlob;

#[tokio::test]
async fn attachments_download_only_when_stored() {
    let app = TestApp::spawn().await;
    let mut msg = sms("+15550001111", "photo");
    msg.attachments.push(InboundAttachment {
        filename: Some("../../Grüße \"x\".pdf".into()),
        content_type: Some("application/pdf".into()),
        source: Some("https://api.twilio.example/media/ME1".into()),
        content_id: None,
        ..Default::default()
    });
    msg.attachments.push(InboundAttachment {
        filename: None,
        content_type: None,
        source: None,
        content_id: None,
        ..Default::default()
    });
    let (_, conv) = app.ingest("acme", "acme-sms", msg).await;
    let messages = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
        )
        .await;
    let attachments = messages.body["items"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    let id_of = |state: &str| {
        let a = attachments
            .iter()
            .find(|a| a["state"] == state)
            .expect("attachment in state");
        format!("/api/v1/attachments/{}", a["id"].as_str().expect("id"))
    };
    let (pending, failed) = (id_of("pending"), id_of("failed"));
    app.get(&pending, &app.agent)
        .await
        .assert_error(StatusCode::CONFLICT, "attachment_pending");
    app.get(&failed, &app.agent)
        .await
        .assert_error(StatusCode::CONFLICT, "attachment_failed");

    let job = app
        .store
        .claim_job(now_millis() + 1_000, 60_000)
        .await
        .expect("claim")
        .expect("a media job");
    let bytes = b"%PDF-1.7 not really".to_vec();
    let (storage_key, sha256) = app.blobs.put(&bytes).await.expect("put");
    let stored = StoredBlob {
        storage_key,
        sha256,
        size: i64::try_from(bytes.len()).expect("size"),
        content_type: "application/pdf".into(),
    };
    app.store
        .attachment_stored(&job, &stored)
        .await
        .expect("stored");

    let r = app.get(&pending, &app.agent).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, bytes);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::CONTENT_SECURITY_POLICY], "sandbox");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Gr__e x.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20x.pdf"
    );
    assert_eq!(
        r.headers[header::ETAG],
        format!("\"{}\"", stored.sha256).as_str()
    );
    assert_eq!(r.headers[header::CACHE_CONTROL], "private, max-age=3600");
    app.get("/api/v1/attachments/nope", &app.agent)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // The view's signed URL opens it without any header; tampered, it is refused.
    let messages = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
        )
        .await;
    let url = messages.body["items"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .find(|a| a["state"] == "stored")
        .and_then(|a| a["url"].as_str())
        .expect("signed url")
        .to_string();
    let anonymous = |uri: String| Request::get(uri).body(Body::empty()).expect("request");
    let r = app.send(anonymous(url.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, bytes);
    let tampered = url.replace("&sig=", "&sig=x");
    app.send(anonymous(tampered))
        .await
        .assert_error(StatusCode::FORBIDDEN, "invalid_signature");
}
