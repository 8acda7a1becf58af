//! The closed set of connector types this build knows, and their construction.

use std::sync::Arc;
use switchboard_core::config::{ChannelConfig, ConfigError};
use switchboard_core::connector::{Connector, ConnectorContext};
use switchboard_core::model::ChannelKind;

/// Validates a channel's provider settings (for the start-up report).
pub fn validate(kind: ChannelKind, settings: &toml::Table, path: &str) -> Vec<ConfigError> {
    match kind {
        ChannelKind::Twilio => switchboard_twilio::validate(settings, path),
        ChannelKind::Whatsapp => switchboard_whatsapp::validate(settings, path),
        ChannelKind::Email => switchboard_email::validate(settings, path),
    }
}

/// Builds the connector for one configured channel.
pub fn build(
    ch: &ChannelConfig,
    ctx: ConnectorContext,
) -> Result<Arc<dyn Connector>, Vec<ConfigError>> {
    match ch.kind {
        ChannelKind::Twilio => Ok(Arc::new(switchboard_twilio::TwilioConnector::new(
            ch.id.clone(),
            &ch.settings,
            ctx,
        )?)),
        ChannelKind::Whatsapp => Ok(Arc::new(switchboard_whatsapp::WhatsappConnector::new(
            ch.id.clone(),
            &ch.settings,
            ctx,
        )?)),
        ChannelKind::Email => Ok(Arc::new(switchboard_email::EmailConnector::new(
            ch.id.clone(),
            &ch.settings,
            ctx,
        )?)),
    }
}
