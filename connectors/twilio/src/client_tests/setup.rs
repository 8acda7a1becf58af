//! The client tests' set-up: the test kit's fake Twilio API (it records what it is sent and
//! answers like Twilio, serves media behind basic auth, with redirects), and a client with
//! its settings pointed at it.

use super::*;
use switchboard_core::domain::model::Identity;
use switchboard_core::infra::config::Secret;
pub(super) use switchboard_testkit::twilio::{ACCOUNT_SID as SID, AUTH_TOKEN as TOKEN, FakeTwilio};

/// A fresh fake Twilio and its base URL; its first message is `SM000…0001`.
pub(super) async fn spawn_fake() -> (FakeTwilio, String) {
    let fake = FakeTwilio::start().await;
    *fake.state.sid_prefix.lock().expect("lock") = "SM".into();
    let base = fake.base.clone();
    (fake, base)
}

pub(super) fn settings(api_base: &str) -> TwilioSettings {
    TwilioSettings {
        account_sid: SID.into(),
        auth_token: Secret::new(TOKEN),
        from: Some("+14155550100".into()),
        messaging_service_sid: None,
        api_base: api_base.into(),
        timeout_secs: 1,
        media_timeout_secs: 2,
        // The fake's own host (the API origin) and `localhost`, its stand-in media CDN.
        media_hosts: vec!["localhost".into()],
        status_callback: true,
    }
}

/// A client of `s`; its media client allows private addresses (the fake is on loopback) but
/// only `s`'s media hosts.
pub(super) fn client_with(s: TwilioSettings, callback: Option<&str>) -> TwilioClient {
    let http = reqwest::Client::builder().build().expect("client");
    let media_http = PublicHttp::new(true)
        .expect("client")
        .restricted_to(s.media_host_list().expect("hosts"))
        .expect("media client");
    TwilioClient::new(
        http,
        media_http,
        Arc::new(s),
        callback.map(str::to_string),
        "test".into(),
    )
}

pub(super) fn outbound(kind: IdentityKind, to: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: "m1".into(),
        tenant_id: "t".into(),
        channel_id: "test".into(),
        conversation_id: "c1".into(),
        to: Identity {
            kind,
            value: to.into(),
        },
        subject: Some("ignored".into()),
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
        allowed_types: vec!["image/*".into()],
    }
}
