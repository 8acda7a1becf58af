//! Switchboard's Twilio connector: SMS, MMS and WhatsApp-over-Twilio.
//!
//! - Inbound: Twilio posts incoming messages to `/webhooks/{channel_id}/messages` and status
//!   callbacks to `/webhooks/{channel_id}/status`. Each delivery is verified
//!   ([`signature`], `X-Twilio-Signature`), normalized ([`normalize`], pure) and handed to
//!   core's ingest with a journal key derived from the message SID.
//! - Outbound: replies go through the Messages API (an attempt interrupted before its outcome
//!   was recorded is first looked up in the Messages list, so it is not sent twice); inbound
//!   media is downloaded with the account's credentials for core's media job, from the
//!   channel's media hosts only.
//!
//! Configuration (one `[[channels]]` entry with `type = "twilio"`) is parsed and validated by
//! [`settings`]; [`validate`] is the validator core's configuration loader calls.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod form;
pub mod normalize;
pub mod settings;
pub mod signature;

mod client;
mod webhook;

pub use normalize::{NormalizeError, message_key, normalize_message, normalize_status, status_key};
pub use settings::{TwilioSettings, validate};
pub use signature::{SignatureError, Unverified, Verified, body_sha256, sign};
pub use webhook::EMPTY_TWIML;

use async_trait::async_trait;
use client::TwilioClient;
use std::sync::Arc;
use switchboard_core::contract::connector::{Connector, ConnectorContext, PriorSend};
use switchboard_core::contract::registry::{ConnectorType, FromSettings, Threading, build};
use switchboard_core::domain::model::{
    ChannelKind, FetchedMedia, IdentityKind, MediaLimits, Millis, OutboundMessage, SendError,
    SendReceipt,
};
use switchboard_core::infra::config::ConfigError;
use switchboard_core::infra::public_http::PublicHttp;
use webhook::WebhookState;

/// What a Twilio channel is to core: SMS/MMS to phone numbers and WhatsApp through Twilio,
/// threaded by contact. Registered in the binary's connector list.
pub const TYPE: ConnectorType = ConnectorType {
    kind: ChannelKind::new("twilio"),
    reaches: &[IdentityKind::PHONE, IdentityKind::WHATSAPP],
    threading: Threading::ByContact,
    refusal_codes: &[],
    validate,
    build: build::<TwilioConnector>,
};

impl FromSettings for TwilioConnector {
    fn from_settings(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        Self::new(channel_id, settings, ctx)
    }
}

/// One Twilio channel: a sender number (or Messaging Service) of one tenant.
pub struct TwilioConnector {
    channel_id: String,
    settings: Arc<TwilioSettings>,
    client: TwilioClient,
    webhook: Arc<WebhookState>,
}

impl TwilioConnector {
    /// Builds the connector from the channel's settings table (as core's loader keeps it).
    pub fn new(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        let parsed = Arc::new(TwilioSettings::parse(
            settings,
            &format!("channels[{channel_id}]"),
        )?);
        let status_callback = parsed.status_callback.then(|| ctx.webhook_url("status"));
        let client = TwilioClient::new(
            ctx.http.clone(),
            media_client(&ctx, &parsed, &channel_id)?,
            Arc::clone(&parsed),
            status_callback,
            channel_id.clone(),
        );
        let webhook = Arc::new(WebhookState {
            channel_id: channel_id.clone(),
            auth_token: parsed.auth_token.clone(),
            ctx,
        });
        tracing::debug!(channel = %channel_id, address = ?parsed.address(), "Twilio connector ready");
        Ok(Self {
            channel_id,
            settings: parsed,
            client,
            webhook,
        })
    }

    /// The channel's parsed settings.
    pub fn settings(&self) -> &TwilioSettings {
        &self.settings
    }
}

/// The client for inbound media: the public-address guard of `[media]`, restricted to the
/// channel's media hosts.
fn media_client(
    ctx: &ConnectorContext,
    settings: &TwilioSettings,
    channel_id: &str,
) -> Result<PublicHttp, Vec<ConfigError>> {
    let path = format!("channels[{channel_id}].media_hosts");
    let hosts = settings
        .media_host_list()
        .map_err(|e| vec![ConfigError::new(&path, e.to_string())])?;
    ctx.public_http
        .restricted_to(hosts)
        .map_err(|e| vec![ConfigError::new(&path, format!("media client: {e}"))])
}

#[async_trait]
impl Connector for TwilioConnector {
    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    fn kind(&self) -> ChannelKind {
        TYPE.kind
    }

    fn address(&self) -> Option<String> {
        self.settings.address()
    }

    fn routes(&self) -> Option<axum::Router> {
        Some(webhook::router(Arc::clone(&self.webhook)))
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        self.client.send(msg).await
    }

    async fn find_prior_send(
        &self,
        msg: &OutboundMessage,
        since: Millis,
    ) -> Result<PriorSend, SendError> {
        self.client.find_prior_send(msg, since).await
    }

    async fn fetch_media(
        &self,
        source: &str,
        limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError> {
        self.client.fetch_media(source, limits).await
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.client.healthcheck().await
    }
}
