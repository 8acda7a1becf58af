//! Switchboard's WhatsApp Cloud API connector: one business phone number of one tenant.
//!
//! - Inbound: Meta calls `/webhooks/{channel_id}` — `GET` for the verification handshake,
//!   `POST` for deliveries. Each delivery is verified ([`signature`], `X-Hub-Signature-256`),
//!   normalized ([`normalize`], pure) into messages, statuses, reactions and other events,
//!   and each item handed to core's ingest under its own journal key.
//! - Outbound: replies go through the Graph API messages endpoint (text, replies in context,
//!   templates, media uploaded first); inbound media is resolved by media id and downloaded
//!   for core's media job; read receipts mark inbound messages read.
//! - The 24-hour customer-service window is enforced before a reply is queued
//!   ([`Connector::check_reply`]): outside it only a template may be sent.
//!
//! Configuration (one `[[channels]]` entry with `type = "whatsapp"`) is parsed and validated
//! by [`settings`]; [`validate`] is the validator core's configuration loader calls.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod normalize;
pub mod settings;
pub mod signature;

mod client;
mod graph_error;
mod media;
mod message;
mod multipart;
mod outbound;
mod render;
mod webhook;

pub use normalize::{
    Event, NormalizeError, map_status, message_key, normalize, normalize_for, reaction_key,
    status_key,
};
pub use settings::{WhatsappSettings, validate};
pub use signature::{SIGNATURE_HEADER, SignatureError, Unverified, Verified, sign};
pub use webhook::MAX_BODY_BYTES;

use async_trait::async_trait;
use client::GraphClient;
use std::sync::Arc;
use switchboard_core::contract::connector::{Connector, ConnectorContext};
use switchboard_core::contract::registry::{
    ConnectorType, FromSettings, RefusalCode, Threading, build,
};
use switchboard_core::domain::model::{
    ChannelKind, FetchedMedia, IdentityKind, MediaLimits, Millis, OutboundMessage, Refusal,
    ReplyCheck, SendError, SendReceipt,
};
use switchboard_core::infra::config::ConfigError;
use webhook::WebhookState;

/// The customer-service window: free-form messages may be sent until 24 hours after the
/// contact last wrote.
pub const SERVICE_WINDOW_MS: Millis = 24 * 60 * 60 * 1000;

/// The refusal code of a free-form reply outside the customer-service window.
pub const WINDOW_CLOSED: &str = "whatsapp_window_closed";

/// What a WhatsApp Cloud API channel is to core: WhatsApp ids (and phone numbers), threaded
/// by contact, refusing free-form replies outside the customer-service window.
pub const TYPE: ConnectorType = ConnectorType {
    kind: ChannelKind::new("whatsapp"),
    reaches: &[IdentityKind::WHATSAPP, IdentityKind::PHONE],
    threading: Threading::ByContact,
    refusal_codes: &[RefusalCode {
        code: WINDOW_CLOSED,
        meaning: "WhatsApp's 24-hour customer-service window is closed: send a template",
    }],
    validate,
    build: build::<WhatsappConnector>,
};

impl FromSettings for WhatsappConnector {
    fn from_settings(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        Self::new(channel_id, settings, ctx)
    }
}

/// One WhatsApp channel: a business phone number of one tenant.
pub struct WhatsappConnector {
    channel_id: String,
    settings: Arc<WhatsappSettings>,
    client: GraphClient,
    webhook: Arc<WebhookState>,
}

impl WhatsappConnector {
    /// Builds the connector from the channel's settings table (as core's loader keeps it).
    pub fn new(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        let parsed = Arc::new(WhatsappSettings::parse(
            settings,
            &format!("channels[{channel_id}]"),
        )?);
        let client = GraphClient::new(
            ctx.http.clone(),
            ctx.public_http.clone(),
            Arc::clone(&parsed),
            channel_id.clone(),
        );
        let webhook = Arc::new(WebhookState {
            channel_id: channel_id.clone(),
            phone_number_id: parsed.phone_number_id.clone(),
            app_secret: parsed.app_secret.clone(),
            verify_token: parsed.verify_token.clone(),
            ctx,
        });
        tracing::debug!(channel = %channel_id, phone_number_id = %parsed.phone_number_id, "WhatsApp connector ready");
        Ok(Self {
            channel_id,
            settings: parsed,
            client,
            webhook,
        })
    }

    /// The channel's parsed settings.
    pub fn settings(&self) -> &WhatsappSettings {
        &self.settings
    }
}

/// Whether a reply may go out now: templates always; free-form text and media only within
/// 24 hours of the contact's last message.
pub fn check_window(check: &ReplyCheck) -> Result<(), Refusal> {
    if check.has_template {
        return Ok(());
    }
    match check.last_inbound_at {
        Some(last) if check.now.saturating_sub(last) < SERVICE_WINDOW_MS => Ok(()),
        Some(_) => Err(Refusal {
            code: WINDOW_CLOSED,
            message: "the contact last wrote more than 24 hours ago: WhatsApp only allows a \
                      template message until they write again"
                .into(),
        }),
        None => Err(Refusal {
            code: WINDOW_CLOSED,
            message: "the contact has not written on this conversation: WhatsApp only allows \
                      a template message to start it"
                .into(),
        }),
    }
}

#[async_trait]
impl Connector for WhatsappConnector {
    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    fn kind(&self) -> ChannelKind {
        TYPE.kind
    }

    fn address(&self) -> Option<String> {
        Some(self.settings.phone_number_id.clone())
    }

    fn routes(&self) -> Option<axum::Router> {
        Some(webhook::router(Arc::clone(&self.webhook)))
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        self.client.send(msg).await
    }

    async fn fetch_media(
        &self,
        source: &str,
        limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError> {
        self.client.fetch_media(source, limits).await
    }

    fn check_reply(&self, check: &ReplyCheck) -> Result<(), Refusal> {
        check_window(check)
    }

    fn sends_read_receipts(&self) -> bool {
        self.settings.read_receipts
    }

    async fn mark_read(&self, provider_message_id: &str) -> Result<(), SendError> {
        self.client.mark_read(provider_message_id).await
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.client.healthcheck().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(last: Option<Millis>, template: bool) -> ReplyCheck {
        ReplyCheck {
            last_inbound_at: last,
            now: 1_000 * SERVICE_WINDOW_MS,
            has_template: template,
            has_text: !template,
            has_media: false,
        }
    }

    #[test]
    fn the_window_is_24_hours_from_the_last_inbound_message() {
        let now = 1_000 * SERVICE_WINDOW_MS;
        assert_eq!(check_window(&check(Some(now), false)), Ok(()));
        assert_eq!(
            check_window(&check(Some(now - SERVICE_WINDOW_MS + 1), false)),
            Ok(())
        );
        // A clock skew that puts the inbound message in the future is still inside.
        assert_eq!(check_window(&check(Some(now + 5_000), false)), Ok(()));
        for last in [Some(now - SERVICE_WINDOW_MS), Some(0), None] {
            let refusal = check_window(&check(last, false)).expect_err("closed");
            assert_eq!(refusal.code, WINDOW_CLOSED);
            assert!(refusal.message.contains("template"), "{}", refusal.message);
        }
    }

    #[test]
    fn templates_go_inside_and_outside_the_window() {
        let now = 1_000 * SERVICE_WINDOW_MS;
        for last in [Some(now), Some(now - 2 * SERVICE_WINDOW_MS), None] {
            assert_eq!(check_window(&check(last, true)), Ok(()));
        }
    }
}
