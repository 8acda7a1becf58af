//! The client tests' set-up: the test kit's fake Graph API with the media items the tests
//! fetch (each id a case: honest, expiring, lying about its size, streamed, base64
//! checksum, on another host), and a client with its settings pointed at the fake.

use super::*;
use sha2::{Digest, Sha256};
use std::time::Duration;
use switchboard_core::domain::model::{Identity, IdentityKind, MediaLimits, OutboundMessage};
use switchboard_core::infra::config::Secret;
pub(super) use switchboard_testkit::graph::{
    ACCESS_TOKEN as TOKEN, FakeGraph, PHONE_NUMBER_ID as PNID, VERSION, to,
};
use switchboard_testkit::graph_media::Media;

/// The bytes behind each media id.
pub(super) fn media_bytes(media_id: &str) -> Vec<u8> {
    match media_id {
        "2001" => vec![7u8; 5000],
        _ => (0..1000u32).map(|i| (i % 251) as u8).collect(),
    }
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fresh fake Graph API with the test media, and its base URL.
pub(super) async fn spawn_fake() -> (FakeGraph, String) {
    let fake = FakeGraph::start().await;
    let media = |id: &str, mime: &str| Media::new(mime, media_bytes(id));
    fake.add("1000", media("1000", "image/jpeg"));
    // Never a usable URL; the first one expired; URLs that live 50 ms.
    fake.add("1002", media("1002", "image/jpeg").expired_first(u32::MAX));
    fake.add("1003", media("1003", "image/jpeg").expired_first(1));
    let short = media("1004", "image/jpeg").ttl(Duration::from_millis(50));
    fake.add("1004", short);
    fake.add("2000", media("2000", "video/mp4").declared_size(50_000_000));
    // Declared small, streamed large.
    let lying = media("2001", "image/png").declared_size(10).streamed();
    fake.add("2001", lying);
    fake.add("2002", media("2002", "application/x-msdownload"));
    fake.add("2003", media("2003", "image/jpeg").sha256_base64());
    fake.add("3000", media("3000", "image/jpeg").foreign_host());
    let base = fake.base.clone();
    (fake, base)
}

pub(super) fn settings(graph_base: &str) -> WhatsappSettings {
    WhatsappSettings {
        phone_number_id: PNID.into(),
        access_token: Secret::new(TOKEN),
        app_secret: Secret::new("app-secret"),
        verify_token: Secret::new("verify"),
        graph_base: graph_base.into(),
        graph_version: VERSION.into(),
        timeout_secs: 1,
        media_timeout_secs: 2,
        read_receipts: true,
        business_account_id: None,
    }
}

pub(super) fn client_with(s: WhatsappSettings) -> GraphClient {
    let http = reqwest::Client::builder().build().expect("client");
    // The fake media server is local: private addresses allowed.
    let public_http = switchboard_core::infra::public_http::PublicHttp::new(true).expect("client");
    GraphClient::new(http, public_http, Arc::new(s), "test".into())
}

pub(super) fn outbound(to: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: "m1".into(),
        tenant_id: "t".into(),
        channel_id: "test".into(),
        conversation_id: "c1".into(),
        to: Identity {
            kind: IdentityKind::WHATSAPP,
            value: to.into(),
        },
        subject: None,
        text: Some("Your order shipped".into()),
        media_urls: Vec::new(),
        in_reply_to: None,
        template: None,
        thread: Default::default(),
    }
}

pub(super) fn limits(max_bytes: u64) -> MediaLimits {
    MediaLimits {
        max_bytes,
        allowed_types: vec!["image/*".into(), "video/*".into()],
    }
}
