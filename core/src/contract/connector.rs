//! The connector contract: what a connector offers core, and what core hands a connector.
//!
//! A connector is one configured channel instance. It may offer webhook routes (mounted
//! under `/webhooks/{channel_id}`), send replies, tell whether an interrupted send reached
//! the provider ([`PriorSend`]), fetch provider media for the media job, and check its
//! provider. It receives a [`ConnectorContext`]: an ingest handle bound to its
//! channel, the shared HTTP client, the public URL and a shutdown token — never a pool.

use crate::contract::ingest::Ingest;
use crate::domain::model::{
    ChannelKind, FetchedMedia, MediaLimits, Millis, OutboundMessage, Refusal, ReplyCheck,
    SendError, SendReceipt,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The configured connectors, by channel id.
pub type Connectors = HashMap<String, Arc<dyn Connector>>;

/// What every connector gets from core.
#[derive(Clone)]
pub struct ConnectorContext {
    /// Ingests into this connector's channel only.
    pub ingest: Ingest,
    /// Shared HTTP client (rustls); connectors set per-request timeouts.
    pub http: reqwest::Client,
    /// For URLs API callers name (reply media): public addresses only, unless configured.
    pub public_http: crate::infra::public_http::PublicHttp,
    /// The public base URL providers call, without a trailing slash.
    pub public_url: String,
    pub shutdown: CancellationToken,
}

impl ConnectorContext {
    /// The public URL of one of this channel's webhook routes, e.g. `webhook_url("status")`.
    pub fn webhook_url(&self, route: &str) -> String {
        let base = format!(
            "{}/webhooks/{}",
            self.public_url,
            self.ingest.channel().channel_id
        );
        if route.is_empty() {
            base
        } else {
            format!("{base}/{route}")
        }
    }

    /// Where the API serves an attachment's bytes, as a path on the API's own origin
    /// (`/api/v1/attachments/{id}`, the download route): connectors point links at stored
    /// attachments (email `cid:` images) with it instead of spelling core's routes.
    pub fn attachment_url(&self, attachment_id: &str) -> String {
        attachment_path(attachment_id)
    }
}

/// The path the API serves an attachment's bytes at: `/api/v1/attachments/{id}`. Stored
/// HTML names inline parts by it; the API signs these paths when it shows the HTML.
pub fn attachment_path(attachment_id: &str) -> String {
    format!("/api/v1/attachments/{attachment_id}")
}

/// What the provider knows of a send whose earlier attempt recorded no outcome (the daemon
/// died, or the answer was lost, while the provider may have had the request).
#[derive(Debug, Clone, PartialEq)]
pub enum PriorSend {
    /// Messages the provider has that match this one and were created since the attempt
    /// began, newest first. Core records the first that no other message of the channel
    /// already has as this message's send, instead of sending again.
    Found(Vec<SendReceipt>),
    /// The provider has no such message: it is sent.
    NotFound,
    /// The connector cannot tell (the default): it is sent again (at least once).
    Unknown,
}

/// One configured channel's connector.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    fn channel_id(&self) -> &str;
    fn kind(&self) -> ChannelKind;
    /// Our own address on the channel (number, mailbox), shown in the API.
    fn address(&self) -> Option<String>;

    /// Webhook routes, relative to `/webhooks/{channel_id}`; `None` if it has none.
    fn routes(&self) -> Option<axum::Router> {
        None
    }

    /// Delivers one outbound message through the provider.
    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError>;

    /// Looks `msg` up at the provider: did an earlier attempt, begun at `since` (Unix
    /// milliseconds) and never recorded, deliver it? Asked before a send job whose earlier
    /// attempt may have reached the provider is sent again. A transient error asks again
    /// later without sending; a permanent one counts as [`PriorSend::Unknown`]. Providers
    /// without a lookup keep the default, `Unknown`.
    async fn find_prior_send(
        &self,
        _msg: &OutboundMessage,
        _since: Millis,
    ) -> Result<PriorSend, SendError> {
        Ok(PriorSend::Unknown)
    }

    /// Fetches a media item the connector's normalization referred to (a URL or media id),
    /// with the provider's credentials, within `limits`.
    async fn fetch_media(
        &self,
        source: &str,
        limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError>;

    /// Decides, before a reply is queued, whether the channel can carry it (WhatsApp's
    /// customer-service window, template support). By default templates are refused: only
    /// channels that have them say otherwise.
    fn check_reply(&self, check: &ReplyCheck) -> Result<(), Refusal> {
        if check.has_template {
            return Err(Refusal {
                code: "template_not_supported",
                message: format!("{} channels do not send templates", self.kind().as_str()),
            });
        }
        Ok(())
    }

    /// Whether staff reading a conversation should send the provider a read receipt.
    fn sends_read_receipts(&self) -> bool {
        false
    }

    /// Tells the provider that an inbound message was read (WhatsApp blue ticks).
    async fn mark_read(&self, _provider_message_id: &str) -> Result<(), SendError> {
        Ok(())
    }

    /// The connector's own inbound work (IMAP sync: IDLE watchers, schedule), run by core
    /// until the context's shutdown token fires. Webhook-fed connectors have none.
    async fn run(&self) {}

    /// Pulls everything waiting upstream once, to completion (`switchboard sync --once`),
    /// and describes what it did; `None` when the connector pulls nothing.
    async fn sync_once(&self) -> Option<Result<String, String>> {
        None
    }

    /// Whether the provider is reachable with the configured credentials.
    async fn healthcheck(&self) -> Result<(), String> {
        Ok(())
    }
}
