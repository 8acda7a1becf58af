//! The connectors this build includes: one line each. Adding a connector is its own crate
//! plus its line here (and its dependency in Cargo.toml); core learns everything else from
//! the `ConnectorType` the crate exports.

use switchboard_core::contract::registry::{ConnectorType, Registry};
use switchboard_core::infra::config::{ChannelScope, Validators};

/// Every connector type of this build.
pub const CONNECTORS: &[ConnectorType] = &[
    switchboard_email::TYPE,
    switchboard_twilio::TYPE,
    switchboard_whatsapp::TYPE,
];

/// The registry of [`CONNECTORS`].
pub fn registry() -> Registry {
    Registry::new(CONNECTORS)
}

/// Configuration checks as this binary wires them: channel kinds and settings from the
/// registry, `[auth]` by the JWT verifier, `[webhooks]` and endpoints by the relay; only
/// the channels in `scope` must be complete.
pub fn validators<'a>(registry: &'a Registry, scope: ChannelScope<'a>) -> Validators<'a> {
    Validators {
        channels: registry,
        auth: switchboard_core::infra::auth::jwt::check_config,
        webhooks: switchboard_core::workers::outgoing_webhooks::check_settings,
        endpoints: switchboard_core::workers::outgoing_webhooks::check_endpoints,
        scope,
    }
}
