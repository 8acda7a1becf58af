//! Twilio webhook parameters → the shared model. Pure functions, no I/O.
//!
//! - [`normalize_message`]: the incoming-message webhook (SMS, MMS, WhatsApp via Twilio).
//! - [`normalize_status`]: the status callback of one of our outbound messages.
//!
//! Every parameter Twilio sent is kept in `external` (a repeated key becomes an array), so
//! nothing is lost when Twilio adds parameters. Idempotency keys derive from the SIDs, so a
//! Twilio retry of the same event always maps to the same journal key.

use crate::form::{self, first, non_empty};
use crate::settings::is_e164;
use serde_json::Value;
use switchboard_core::domain::model::{
    Consent, DeliveryStatus, Identity, IdentityKind, InboundAttachment, InboundMessage,
    StatusUpdate,
};

/// Opt-out keywords Twilio honours by default on long codes and toll-free numbers.
const OPT_OUT_KEYWORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// Opt-in keywords Twilio honours by default.
const OPT_IN_KEYWORDS: [&str; 3] = ["START", "YES", "UNSTOP"];

/// Why a webhook's parameters cannot be normalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("missing required parameter {0}")]
    Missing(&'static str),
    #[error("parameter {field} has an invalid value {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("NumMedia is {declared} but MediaUrl{index} is missing")]
    MissingMedia { declared: u32, index: u32 },
    #[error("unsupported sender address {0:?}")]
    UnsupportedAddress(String),
    #[error("unknown MessageStatus {0:?}")]
    UnknownStatus(String),
}

/// The journal key of an inbound message: stable across Twilio's retries.
pub fn message_key(message_sid: &str) -> String {
    format!("msg:{message_sid}")
}

/// The journal key of a status report: one per (message, status, error code).
pub fn status_key(message_sid: &str, message_status: &str, error_code: Option<&str>) -> String {
    match error_code {
        Some(code) => format!("status:{message_sid}:{message_status}:{code}"),
        None => format!("status:{message_sid}:{message_status}"),
    }
}

/// The message SID of a webhook (`MessageSid`, or the deprecated `SmsSid`).
pub fn message_sid(params: &[(String, String)]) -> Option<&str> {
    non_empty(params, "MessageSid").or_else(|| non_empty(params, "SmsSid"))
}

/// The raw status of a status callback (`MessageStatus`, or the deprecated `SmsStatus`),
/// lower-cased as Twilio sends it.
pub fn raw_status(params: &[(String, String)]) -> Option<&str> {
    non_empty(params, "MessageStatus").or_else(|| non_empty(params, "SmsStatus"))
}

/// Twilio's message status values → the shared delivery state machine.
pub fn map_status(status: &str) -> Option<DeliveryStatus> {
    Some(match status.trim().to_ascii_lowercase().as_str() {
        "accepted" | "scheduled" | "queued" => DeliveryStatus::Queued,
        "sending" => DeliveryStatus::Sending,
        // Partial delivery is not a delivery receipt; a later `delivered` still moves it on.
        "sent" | "partially_delivered" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "undelivered" => DeliveryStatus::Undelivered,
        "failed" | "canceled" => DeliveryStatus::Failed,
        "read" => DeliveryStatus::Read,
        "receiving" | "received" => DeliveryStatus::Received,
        _ => return None,
    })
}

/// Normalizes Twilio's incoming-message webhook.
pub fn normalize_message(params: &[(String, String)]) -> Result<InboundMessage, NormalizeError> {
    let sid = message_sid(params).ok_or(NormalizeError::Missing("MessageSid"))?;
    let from_raw = non_empty(params, "From").ok_or(NormalizeError::Missing("From"))?;
    let from = sender_identity(from_raw)?;
    let whatsapp = from.kind == IdentityKind::WHATSAPP;
    let to: Vec<String> = non_empty(params, "To")
        .map(str::to_string)
        .into_iter()
        .collect();

    let declared = match first(params, "NumMedia").map(str::trim) {
        None | Some("") => 0,
        Some(n) => n.parse::<u32>().map_err(|_| NormalizeError::Invalid {
            field: "NumMedia",
            value: n.to_string(),
            reason: "not a non-negative integer",
        })?,
    };
    let mut attachments = Vec::new();
    for index in 0..declared {
        let url = non_empty(params, &format!("MediaUrl{index}"))
            .ok_or(NormalizeError::MissingMedia { declared, index })?;
        attachments.push(InboundAttachment {
            filename: None,
            content_type: non_empty(params, &format!("MediaContentType{index}"))
                .map(str::to_string),
            source: Some(url.to_string()),
            content_id: None,
            ..Default::default()
        });
    }

    let channel = if whatsapp {
        "whatsapp"
    } else if to.first().is_some_and(|t| t.starts_with("rcs:")) {
        "rcs"
    } else if declared > 0 {
        "mms"
    } else {
        "sms"
    };
    let body = first(params, "Body").filter(|b| !b.trim().is_empty());

    let mut external = form::to_json(params);
    external.insert("channel".into(), Value::String(channel.into()));

    Ok(InboundMessage {
        provider_message_id: sid.to_string(),
        from,
        from_name: non_empty(params, "ProfileName").map(str::to_string),
        to,
        cc: Vec::new(),
        subject: None,
        text: body.map(str::to_string),
        html: None,
        attachments,
        reply_to: non_empty(params, "OriginalRepliedMessageSid")
            .map(str::to_string)
            .into_iter()
            .collect(),
        thread_token: None,
        consent: consent(params, body, whatsapp),
        flags: Vec::new(),
        sent_at: None,
        external: Value::Object(external),
    })
}

/// Normalizes a status callback for one of our outbound messages.
pub fn normalize_status(params: &[(String, String)]) -> Result<StatusUpdate, NormalizeError> {
    let sid = message_sid(params).ok_or(NormalizeError::Missing("MessageSid"))?;
    let raw = raw_status(params).ok_or(NormalizeError::Missing("MessageStatus"))?;
    let status = map_status(raw).ok_or_else(|| NormalizeError::UnknownStatus(raw.to_string()))?;
    let error_code = non_empty(params, "ErrorCode").map(str::to_string);
    let error_message = non_empty(params, "ErrorMessage")
        .map(str::to_string)
        .or_else(|| {
            error_code
                .as_deref()
                .and_then(error_description)
                .map(str::to_string)
        });
    Ok(StatusUpdate {
        provider_message_id: sid.to_string(),
        status,
        error_code,
        error_message,
        external: Value::Object(form::to_json(params)),
    })
}

/// The journal key of a status callback's parameters (see [`status_key`]).
pub fn status_key_for(params: &[(String, String)]) -> Result<String, NormalizeError> {
    let sid = message_sid(params).ok_or(NormalizeError::Missing("MessageSid"))?;
    let raw = raw_status(params).ok_or(NormalizeError::Missing("MessageStatus"))?;
    Ok(status_key(
        sid,
        &raw.to_ascii_lowercase(),
        non_empty(params, "ErrorCode"),
    ))
}

/// `whatsapp:+14155550100` → WhatsApp id `14155550100` (no `+`, as WhatsApp reports ids);
/// `+14155550100` → phone. A short code or alphanumeric sender is kept as Twilio sent it.
fn sender_identity(from: &str) -> Result<Identity, NormalizeError> {
    if let Some(number) = from.strip_prefix("whatsapp:") {
        let number = number.trim();
        let plus = if number.starts_with('+') {
            number.to_string()
        } else {
            format!("+{number}")
        };
        if !is_e164(&plus) {
            return Err(NormalizeError::UnsupportedAddress(from.to_string()));
        }
        return Ok(Identity {
            kind: IdentityKind::WHATSAPP,
            value: plus.trim_start_matches('+').to_string(),
        });
    }
    if from.contains(':') {
        // messenger:, rcs: and other channel addresses have no identity kind (yet).
        return Err(NormalizeError::UnsupportedAddress(from.to_string()));
    }
    if from.starts_with('+') && !is_e164(from) {
        return Err(NormalizeError::Invalid {
            field: "From",
            value: from.to_string(),
            reason: "not an E.164 number",
        });
    }
    Ok(Identity {
        kind: IdentityKind::PHONE,
        value: from.to_string(),
    })
}

/// `OptOutType` (Twilio's Advanced Opt-Out verdict) decides when present; otherwise the
/// default keywords, matched as the whole trimmed body, case-insensitively. On WhatsApp only
/// `OptOutType` counts: Twilio applies no default keyword filtering there, so "cancel" is a
/// customer's word, not a revoked consent.
fn consent(params: &[(String, String)], body: Option<&str>, whatsapp: bool) -> Option<Consent> {
    if let Some(kind) = non_empty(params, "OptOutType") {
        return match kind.to_ascii_uppercase().as_str() {
            "STOP" => Some(Consent::OptOut),
            "START" => Some(Consent::OptIn),
            _ => None,
        };
    }
    if whatsapp {
        return None;
    }
    let word = body?.trim().to_ascii_uppercase();
    if OPT_OUT_KEYWORDS.contains(&word.as_str()) {
        Some(Consent::OptOut)
    } else if OPT_IN_KEYWORDS.contains(&word.as_str()) {
        Some(Consent::OptIn)
    } else {
        None
    }
}

/// Descriptions of the delivery error codes seen most, for callbacks without `ErrorMessage`.
fn error_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "21610" => "Attempt to send to unsubscribed recipient",
        "30001" => "Queue overflow",
        "30002" => "Account suspended",
        "30003" => "Unreachable destination handset",
        "30004" => "Message blocked",
        "30005" => "Unknown destination handset",
        "30006" => "Landline or unreachable carrier",
        "30007" => "Message filtered",
        "30008" => "Unknown error",
        "30009" => "Missing segment",
        "30010" => "Message price exceeds max price",
        "63016" => "Failed to send freeform message because you are outside the allowed window",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
