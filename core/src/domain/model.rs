//! The shared conversation/message vocabulary every connector speaks.
//!
//! Connectors turn provider payloads into these types (pure functions, no I/O); core stores
//! them and serves them through the API. Nothing here knows about a particular provider:
//! provider-specific fields travel in the `external` JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// Milliseconds since the Unix epoch, UTC. One representation in both databases.
pub type Millis = i64;

/// Now, as [`Millis`].
pub fn now_millis() -> Millis {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as Millis
}

/// [`Millis`] as an RFC 3339 UTC timestamp (`1970-01-01T00:00:01.5Z`).
pub fn format_millis(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A new time-ordered identifier (UUIDv7, hyphenated text); sortable, so usable in cursors.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The kind of connector behind a channel (`"email"`, `"twilio"`, ...).
///
/// An open name, not a closed enum: each connector declares its own kind in its
/// [`ConnectorType`](crate::contract::registry::ConnectorType), so adding a connector never
/// edits core. Configuration maps a `type = "..."` string to a kind through the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKind(&'static str);

impl ChannelKind {
    /// A kind named `name` (lower-case letters, digits and `_`).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for ChannelKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl utoipa::PartialSchema for ChannelKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The connector behind a channel: `email`, `twilio`, `whatsapp`, or another \
                 registered connector's kind.",
            ))
            .examples([serde_json::json!("twilio")])
            .into()
    }
}

impl utoipa::ToSchema for ChannelKind {}

/// What kind of address identifies a contact (`"email"`, `"phone"`, ...). Unique per tenant
/// together with its value.
///
/// The addresses several connectors share are named here; a connector may declare its own
/// (a web chat's visitor id) with [`IdentityKind::new`] without editing core.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKind(Cow<'static, str>);

impl IdentityKind {
    /// An email address, lower-cased.
    pub const EMAIL: Self = Self::new("email");
    /// An E.164 phone number (`+14155550100`).
    pub const PHONE: Self = Self::new("phone");
    /// A WhatsApp id (the number, as WhatsApp reports it, without a `+`).
    pub const WHATSAPP: Self = Self::new("whatsapp");

    /// The longest identity kind name accepted from outside.
    const MAX_LEN: usize = 32;

    pub const fn new(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A kind named in a request or a row: 1-32 characters of `a-z`, `0-9` and `_`.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return None;
        }
        Some(
            [Self::EMAIL, Self::PHONE, Self::WHATSAPP]
                .into_iter()
                .find(|k| k.as_str() == s)
                .unwrap_or_else(|| Self(Cow::Owned(s.to_string()))),
        )
    }
}

impl std::fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for IdentityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdentityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown identity kind {s:?} (1-32 characters of a-z, 0-9 and _)"
            ))
        })
    }
}

impl utoipa::PartialSchema for IdentityKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9_]{1,32}$"))
            .description(Some(
                "The kind of address: `email`, `phone`, `whatsapp`, or one a connector declares.",
            ))
            .examples([serde_json::json!("phone")])
            .into()
    }
}

impl utoipa::ToSchema for IdentityKind {}

/// A contact's address on one network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Open,
    Closed,
    Spam,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Spam => "spam",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "spam" => Some(Self::Spam),
            _ => None,
        }
    }
}

/// One delivery state machine for every channel. The rank orders the states so that a
/// late or out-of-order status report can never move a message backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// An inbound message: nothing to deliver.
    Received,
    Queued,
    Sending,
    Sent,
    Undelivered,
    Failed,
    Delivered,
    Read,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            _ => return None,
        })
    }

    /// Position in the forward-only order. Failure ranks above `sent` (a provider may fail a
    /// message it accepted) but below `delivered`: a handset's delivery receipt is the
    /// stronger fact, so a `delivered` arriving after `failed` still wins.
    pub fn rank(self) -> i64 {
        match self {
            Self::Received => 0,
            Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent => 3,
            Self::Undelivered | Self::Failed => 4,
            Self::Delivered => 5,
            Self::Read => 6,
        }
    }
}

/// Why a message was flagged. Flags are decided before a message may open a conversation,
/// bump unread counts or trigger anything automatic.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Spam,
    AutoReply,
    Bounce,
    OptOut,
    OptIn,
    Blocked,
    Loop,
}

/// What an inbound message says about the contact's consent to be messaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    OptOut,
    OptIn,
}

/// An attachment as a connector first sees it: either bytes it already has, or a URL the
/// media job must fetch later through the connector (with its credentials).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InboundAttachment {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Where the bytes can be fetched (provider media URL or media id); `None` for inline bytes.
    pub source: Option<String>,
    /// Content-ID of an inline part (email).
    pub content_id: Option<String>,
    /// The attachment's id, chosen by the connector when the message's HTML must link to it
    /// before it is stored (email `cid:` images); `None`: core assigns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Bytes the connector already holds (email parts). Core's ingest writes them to the
    /// blob store before the message is stored, so the attachment is ready at once.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
    /// Where core's ingest wrote `content`: only the blob store can make a
    /// [`PreparedBlob`](crate::infra::blob::PreparedBlob), so this names bytes that exist.
    #[serde(skip)]
    pub stored: Option<crate::infra::blob::PreparedBlob>,
    /// The attachment's size when it passed the connector's cap: its bytes are not kept,
    /// the message is, and the attachment is stored as `too_large` with this size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_large: Option<u64>,
}

/// A normalized inbound message: the one shape every connector produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id for the message (Twilio MessageSid, wamid, Message-ID); unique per channel.
    pub provider_message_id: String,
    /// Who sent it.
    pub from: Identity,
    /// A display name for the contact, when the provider gives one.
    pub from_name: Option<String>,
    /// The addresses it was sent to (our number, our mailbox, ...).
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    /// Provider ids of messages this one replies to, most specific first (WhatsApp
    /// `context.id`, In-Reply-To, References newest first).
    pub reply_to: Vec<String>,
    /// A conversation's reply token found in a recipient address (`local+TOKEN@domain`,
    /// which our outbound mail puts in Reply-To): names the conversation directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_token: Option<String>,
    /// Consent change carried by the message (STOP / START keywords, Twilio OptOutType).
    pub consent: Option<Consent>,
    /// Flags the connector decided from the payload (upstream spam verdicts, auto-reply...).
    pub flags: Vec<Flag>,
    /// When the provider says it was sent; `None` means "when received".
    pub sent_at: Option<Millis>,
    /// Everything the provider sent, known or not.
    pub external: Value,
}

/// A provider's report on one of our outbound messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The provider's raw report, merged into the message's `external.status_reports`.
    pub external: Value,
}

/// A reaction to a message (WhatsApp), attached to the message it reacts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionUpdate {
    /// The reaction event's own provider id.
    pub provider_message_id: String,
    /// The provider id of the message reacted to.
    pub target_provider_id: String,
    pub from: Identity,
    /// The emoji; `None` when the contact removed their reaction.
    pub emoji: Option<String>,
    pub external: Value,
}

/// A provider message template (WhatsApp): the only kind of message allowed outside the
/// customer-service window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Template {
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// The provider's `components` array (header/body/button parameters), passed through.
    #[serde(default)]
    pub components: Value,
}

/// One reply on its way out, handed to the originating connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundMessage {
    pub message_id: String,
    pub tenant_id: String,
    pub channel_id: String,
    pub conversation_id: String,
    /// The contact's address on this channel.
    pub to: Identity,
    pub subject: Option<String>,
    pub text: Option<String>,
    /// Public URLs of media to send along (MMS, WhatsApp media).
    pub media_urls: Vec<String>,
    /// Provider id of the message this one answers, where the provider supports it.
    pub in_reply_to: Option<String>,
    /// Send this template instead of free text.
    pub template: Option<Template>,
    /// How the conversation is threaded on the provider's side (email headers).
    pub thread: OutboundThread,
}

/// What a connector needs to keep a reply in the contact's thread (email): the
/// conversation's subject, its reply token and the provider ids of its messages.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct OutboundThread {
    /// The conversation's subject (the reply's own subject, if any, wins).
    pub subject: Option<String>,
    /// The conversation's reply token (`local+TOKEN@domain` in Reply-To).
    pub reply_token: Option<String>,
    /// Provider ids of the conversation's earlier messages, oldest first: the first one and
    /// the most recent ones (References), bounded.
    pub references: Vec<String>,
}

/// What a connector is told about a reply before it is queued.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyCheck {
    /// When the contact last wrote on this conversation (None: never).
    pub last_inbound_at: Option<Millis>,
    pub now: Millis,
    pub has_template: bool,
    pub has_text: bool,
    pub has_media: bool,
}

/// Why a connector refuses a reply before it is queued; `code` is a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

/// What a provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendReceipt {
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub external: Value,
}

/// Why a send did not happen. The class decides between a retry and a final failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: rate limits, 5xx, timeouts, connection failures.
    #[error("transient send error: {message}")]
    Transient {
        code: Option<String>,
        message: String,
        /// The provider's `Retry-After`, in milliseconds: the next attempt waits at least
        /// this long (a rate limit retried earlier is refused again and prolongs it).
        retry_after_ms: Option<u64>,
    },
    /// Will never succeed as is: the provider refused the request.
    #[error("permanent send error {code}: {message}")]
    Permanent { code: String, message: String },
}

/// Media fetched by a connector for the media job.
#[derive(Debug, Clone)]
pub struct FetchedMedia {
    pub content_type: String,
    pub bytes: bytes::Bytes,
    /// A checksum the provider vouches for (WhatsApp gives sha256); verified by core.
    pub expected_sha256: Option<String>,
}

/// Limits a media download must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLimits {
    pub max_bytes: u64,
    /// Allowed content types; a trailing `/*` allows a whole family. Empty allows all.
    pub allowed_types: Vec<String>,
}

impl MediaLimits {
    pub fn allows(&self, content_type: &str) -> bool {
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.allowed_types.is_empty()
            || self
                .allowed_types
                .iter()
                .any(|a| match a.strip_suffix("/*") {
                    Some(family) => ct.split('/').next() == Some(family),
                    None => *a == ct,
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rank_is_forward_only_order() {
        use DeliveryStatus::*;
        let order = [Queued, Sending, Sent, Failed, Delivered, Read];
        for w in order.windows(2) {
            assert!(w[0].rank() < w[1].rank(), "{w:?}");
        }
        assert_eq!(Failed.rank(), Undelivered.rank());
    }

    #[test]
    fn status_names_round_trip() {
        use DeliveryStatus::*;
        for s in [
            Received,
            Queued,
            Sending,
            Sent,
            Undelivered,
            Failed,
            Delivered,
            Read,
        ] {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn media_limits_match_families_and_params() {
        let l = MediaLimits {
            max_bytes: 10,
            allowed_types: vec!["image/*".into(), "application/pdf".into()],
        };
        assert!(l.allows("image/jpeg"));
        assert!(l.allows("IMAGE/PNG; charset=binary"));
        assert!(l.allows("application/pdf"));
        assert!(!l.allows("application/x-msdownload"));
        assert!(!l.allows("imagefoo/x"));
    }
}
