//! The email channel as core sees it: [`EmailConnector`] sends replies over SMTP (and files
//! them in the Sent folder when configured), runs the IMAP sync loop, and checks both
//! servers for the health endpoint.

use crate::imap::Mailbox;
use crate::outbound;
use crate::settings::EmailSettings;
use crate::smtp::{SmtpSender, build_reply};
use crate::sync::{SyncEngine, run};
use async_trait::async_trait;
use std::sync::Arc;
use switchboard_core::contract::connector::{Connector, ConnectorContext};
use switchboard_core::contract::registry::{ConnectorType, FromSettings, Threading, build};
use switchboard_core::domain::model::{
    ChannelKind, DeliveryStatus, FetchedMedia, IdentityKind, MediaLimits, OutboundMessage,
    SendError, SendReceipt,
};
use switchboard_core::infra::config::ConfigError;
use tokio::sync::OnceCell;

/// What an email channel is to core: email addresses, threaded by mail headers (and the
/// subject within the configured window).
pub const TYPE: ConnectorType = ConnectorType {
    kind: ChannelKind::new("email"),
    reaches: &[IdentityKind::EMAIL],
    threading: Threading::MailHeaders,
    refusal_codes: &[],
    validate: crate::settings::validate,
    build: build::<EmailConnector>,
};

impl FromSettings for EmailConnector {
    fn from_settings(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        Self::new(channel_id, settings, ctx)
    }
}

/// One email channel: a mailbox of one tenant.
pub struct EmailConnector {
    channel_id: String,
    settings: Arc<EmailSettings>,
    ctx: ConnectorContext,
    engine: Arc<SyncEngine>,
    /// Built at the first send: the pool connects lazily, so start-up never waits on SMTP.
    smtp: OnceCell<SmtpSender>,
}

impl EmailConnector {
    /// Builds the connector from the channel's settings table (as core's loader keeps it).
    pub fn new(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>> {
        let settings = Arc::new(EmailSettings::parse(
            settings,
            &format!("channels[{channel_id}]"),
        )?);
        let engine = Arc::new(SyncEngine::new(settings.clone(), ctx.clone()));
        tracing::debug!(channel = %channel_id, address = %settings.address, "email connector ready");
        Ok(Self {
            channel_id,
            settings,
            ctx,
            engine,
            smtp: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &EmailSettings {
        &self.settings
    }

    /// The sync engine (for `switchboard sync --once` and tests).
    pub fn engine(&self) -> &Arc<SyncEngine> {
        &self.engine
    }

    async fn sender(&self) -> Result<&SmtpSender, SendError> {
        self.smtp
            .get_or_try_init(|| SmtpSender::new(&self.settings.smtp))
            .await
            .map_err(SendError::from)
    }

    /// Files a sent message in the Sent folder; a failure is logged, never a send failure
    /// (the message did leave).
    async fn append_sent(&self, folder: &str, raw: &[u8]) {
        let result = async {
            let mut mailbox = Mailbox::connect(&self.settings.imap).await?;
            mailbox.append(folder, raw, &["\\Seen"]).await?;
            mailbox.logout().await;
            Ok::<(), crate::imap::ImapError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(channel = %self.channel_id, folder, error = %e, "could not file the reply in the Sent folder");
        }
    }
}

#[async_trait]
impl Connector for EmailConnector {
    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    fn kind(&self) -> ChannelKind {
        TYPE.kind
    }

    fn address(&self) -> Option<String> {
        Some(self.settings.address.clone())
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let mut draft = outbound::draft(
            msg,
            &self.settings.address,
            self.settings.name.as_deref(),
            &self.settings.message_id_domain(),
        )?;
        draft.attachments =
            outbound::fetch_attachments(&self.ctx.public_http, &msg.media_urls).await?;
        let built = build_reply(&draft).map_err(SendError::from)?;
        let receipt = self
            .sender()
            .await?
            .send(&built.message)
            .await
            .map_err(SendError::from)?;
        let message_id = built
            .message_id
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        tracing::info!(channel = %self.channel_id, message_id, code = receipt.code, "mail accepted by the SMTP server");
        if let Some(folder) = &self.settings.sent_folder {
            self.append_sent(folder, &built.raw()).await;
        }
        Ok(SendReceipt {
            provider_message_id: message_id.clone(),
            status: DeliveryStatus::Sent,
            external: serde_json::json!({
                "email": {
                    "message_id": message_id,
                    "references": built.references,
                    "smtp": { "code": receipt.code, "message": receipt.message },
                }
            }),
        })
    }

    async fn fetch_media(
        &self,
        source: &str,
        _limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError> {
        // Email parts arrive with their bytes and are stored at ingest; nothing to fetch.
        Err(SendError::Permanent {
            code: "no_remote_media".into(),
            message: format!(
                "email attachments are stored at ingest; nothing to fetch at {source:?}"
            ),
        })
    }

    async fn run(&self) {
        run::run(self.engine.clone(), self.ctx.shutdown.clone()).await;
    }

    async fn sync_once(&self) -> Option<Result<String, String>> {
        let result = self.engine.sync_all().await;
        // A one-shot run gives its lease back: otherwise the next `sync --once` or a daemon
        // started right after would skip this mailbox until the lease expired (lease_secs).
        self.engine.release_lease().await;
        Some(match result {
            Ok(r) if r.skipped => Err(r.summary()),
            Ok(r) => Ok(r.summary()),
            Err(e) => Err(e.to_string()),
        })
    }

    async fn healthcheck(&self) -> Result<(), String> {
        let mut mailbox = Mailbox::connect(&self.settings.imap)
            .await
            .map_err(|e| format!("IMAP: {e}"))?;
        mailbox.noop().await.map_err(|e| format!("IMAP: {e}"))?;
        mailbox.logout().await;
        self.sender()
            .await
            .map_err(|e| format!("SMTP: {e}"))?
            .test_connection()
            .await
            .map_err(|e| format!("SMTP: {e}"))
    }
}
