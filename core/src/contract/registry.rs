//! The connector registry: what each kind of connector declares about itself, so that core
//! never lists or matches concrete channel kinds.
//!
//! A connector crate exports one [`ConnectorType`] value; the binary lists them in one place
//! (one line per connector) and hands the [`Registry`] to configuration loading (which kinds
//! exist and how their settings are checked), the ingest wiring (how the channel threads),
//! the API (which addresses a channel can reach, which refusal codes it may answer) and the
//! OpenAPI document.

pub use super::ingest_types::Threading;
use crate::contract::connector::{Connector, ConnectorContext};
use crate::domain::model::{ChannelKind, IdentityKind};
use crate::infra::config::{ChannelTypes, ConfigError};
use std::sync::Arc;

/// A stable error code a connector may refuse a reply with (always a 409), documented in the
/// OpenAPI document's `ErrorCode` schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalCode {
    pub code: &'static str,
    /// When it is answered, for the API reference.
    pub meaning: &'static str,
}

/// Checks a channel's provider settings; returns every problem with its full key path.
pub type ValidateFn = fn(&toml::Table, &str) -> Vec<ConfigError>;

/// Builds the connector of one configured channel from its id, settings and context.
pub type BuildFn =
    fn(String, &toml::Table, ConnectorContext) -> Result<Arc<dyn Connector>, Vec<ConfigError>>;

/// A connector that can be built from its channel's id, settings and context: what
/// [`build`] needs to fill a [`ConnectorType`]'s `build` field.
pub trait FromSettings: Connector + Sized {
    fn from_settings(
        channel_id: String,
        settings: &toml::Table,
        ctx: ConnectorContext,
    ) -> Result<Self, Vec<ConfigError>>;
}

/// The [`BuildFn`] of a connector type `C`: `build: build::<MyConnector>`.
pub fn build<C: FromSettings>(
    channel_id: String,
    settings: &toml::Table,
    ctx: ConnectorContext,
) -> Result<Arc<dyn Connector>, Vec<ConfigError>> {
    Ok(Arc::new(C::from_settings(channel_id, settings, ctx)?))
}

/// Everything core needs to know about one kind of connector.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorType {
    /// The `type = "..."` of its channels.
    pub kind: ChannelKind,
    /// The identity kinds a reply or a new conversation on such a channel can be sent to.
    pub reaches: &'static [IdentityKind],
    pub threading: Threading,
    /// Codes of the refusals its `check_reply` may answer, beyond core's own.
    pub refusal_codes: &'static [RefusalCode],
    pub validate: ValidateFn,
    pub build: BuildFn,
}

impl ChannelTypes for Registry {
    fn kind(&self, name: &str) -> Option<ChannelKind> {
        self.by_name(name).map(|t| t.kind)
    }

    fn names(&self) -> Vec<&'static str> {
        Registry::names(self)
    }

    fn validate(&self, kind: ChannelKind, settings: &toml::Table, path: &str) -> Vec<ConfigError> {
        self.get(kind)
            .map(|t| (t.validate)(settings, path))
            .unwrap_or_default()
    }
}

impl ConnectorType {
    /// Whether a channel of this type can send to an address of `kind`.
    pub fn reaches(&self, kind: &IdentityKind) -> bool {
        self.reaches.contains(kind)
    }
}

/// The connector types this build knows.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<ConnectorType>,
}

impl Registry {
    /// A registry of `types`; a kind registered twice keeps its first entry.
    pub fn new(types: &[ConnectorType]) -> Self {
        let mut kept: Vec<ConnectorType> = Vec::with_capacity(types.len());
        for t in types {
            if !kept.iter().any(|k| k.kind == t.kind) {
                kept.push(*t);
            }
        }
        Self { types: kept }
    }

    /// The type registered for a `type = "..."` name.
    pub fn by_name(&self, name: &str) -> Option<&ConnectorType> {
        self.types.iter().find(|t| t.kind.as_str() == name)
    }

    pub fn get(&self, kind: ChannelKind) -> Option<&ConnectorType> {
        self.types.iter().find(|t| t.kind == kind)
    }

    /// The registered kind names, for messages such as "expected email, twilio or whatsapp".
    pub fn names(&self) -> Vec<&'static str> {
        self.types.iter().map(|t| t.kind.as_str()).collect()
    }

    /// Every refusal code any registered connector declares, in registration order.
    pub fn refusal_codes(&self) -> Vec<RefusalCode> {
        let mut codes: Vec<RefusalCode> = Vec::new();
        for c in self.types.iter().flat_map(|t| t.refusal_codes) {
            if !codes.iter().any(|k| k.code == c.code) {
                codes.push(*c);
            }
        }
        codes
    }

    /// How a channel of `kind` threads; an unregistered kind threads by contact.
    pub fn threading(&self, kind: ChannelKind) -> Threading {
        self.get(kind).map(|t| t.threading).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_settings(_: &toml::Table, _: &str) -> Vec<ConfigError> {
        Vec::new()
    }

    fn no_build(
        _: String,
        _: &toml::Table,
        _: ConnectorContext,
    ) -> Result<Arc<dyn Connector>, Vec<ConfigError>> {
        Err(vec![ConfigError::new("channels", "not built in this test")])
    }

    const MAIL: ConnectorType = ConnectorType {
        kind: ChannelKind::new("mail"),
        reaches: &[IdentityKind::EMAIL],
        threading: Threading::MailHeaders,
        refusal_codes: &[RefusalCode {
            code: "mail_refused",
            meaning: "test",
        }],
        validate: no_settings,
        build: no_build,
    };
    const CHAT: ConnectorType = ConnectorType {
        kind: ChannelKind::new("chat"),
        reaches: &[IdentityKind::PHONE, IdentityKind::new("visitor")],
        threading: Threading::ByContact,
        refusal_codes: &[],
        validate: no_settings,
        build: no_build,
    };

    #[test]
    fn looks_up_what_connectors_declare() {
        let r = Registry::new(&[MAIL, CHAT, MAIL]);
        assert_eq!(r.names(), ["mail", "chat"]);
        assert_eq!(
            r.threading(ChannelKind::new("mail")),
            Threading::MailHeaders
        );
        assert_eq!(r.threading(ChannelKind::new("chat")), Threading::ByContact);
        let chat = r.by_name("chat").expect("chat");
        assert!(chat.reaches(&IdentityKind::new("visitor")));
        assert!(chat.reaches(&IdentityKind::parse("visitor").expect("kind")));
        assert!(!chat.reaches(&IdentityKind::EMAIL));
        assert!(r.by_name("fax").is_none());
        assert_eq!(r.refusal_codes().len(), 1);
    }
}
