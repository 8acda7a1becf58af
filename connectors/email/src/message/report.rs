//! What delivery status reports (bounces) and abuse feedback reports say: the types
//! [`super::bounce`] and [`super::dsn_text`] fill in, and a bounce as core's [`StatusUpdate`]
//! of the bounced outbound message ([`BounceReport::status_update`]).
//!
//! Plain data with no parsing, below both parsers, so that neither needs the other's types.

use serde::Serialize;
use switchboard_core::domain::model::{DeliveryStatus, StatusUpdate};

/// A delivery status report about a message we (may have) sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BounceReport {
    /// `rfc3464` for a standard report, otherwise the recognized format (`qmail`, `exim`...).
    pub format: String,
    /// What the report says happened to the message.
    pub outcome: BounceOutcome,
    pub reporting_mta: Option<String>,
    /// Message-ID of the bounced message, without angle brackets: the outbound message whose
    /// delivery failed.
    pub original_message_id: Option<String>,
    pub recipients: Vec<BounceRecipient>,
}

/// The overall result a delivery report announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceOutcome {
    /// Delivery failed for at least one recipient (action `failed`, status 5.x.x, or a
    /// non-standard bounce that is not a delay warning).
    Failed,
    /// Delivery is delayed and still being retried.
    Delayed,
    /// A success notification (`delivered`, `relayed`, `expanded`).
    Delivered,
    Unknown,
}

/// One recipient of a delivery status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceRecipient {
    /// Lower-cased.
    pub address: String,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded` (lower-cased).
    pub action: Option<String>,
    /// Enhanced status code (`5.1.1`).
    pub status: Option<String>,
    /// The remote server's answer (`550 5.1.1 User unknown`), without its `smtp;` type.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

/// An RFC 5965 abuse/feedback report (ARF): a complaint, not a bounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackReport {
    /// `abuse`, `fraud`, `not-spam`, `virus`, `other`... (lower-cased).
    pub feedback_type: Option<String>,
    pub user_agent: Option<String>,
    pub original_message_id: Option<String>,
    pub original_rcpt_to: Option<String>,
    pub source_ip: Option<String>,
}

impl BounceReport {
    /// The report as a status update of the bounced outbound message, for core's delivery
    /// state machine: `failed` with the first failed recipient's status code and diagnostic,
    /// or `delivered` for a success notification. `None` without an original Message-ID, and
    /// for delays (a delay changes nothing yet) and reports that say nothing clear.
    pub fn status_update(&self) -> Option<StatusUpdate> {
        let id = self.original_message_id.clone()?;
        let status = match self.outcome {
            BounceOutcome::Failed => DeliveryStatus::Failed,
            BounceOutcome::Delivered => DeliveryStatus::Delivered,
            BounceOutcome::Delayed | BounceOutcome::Unknown => return None,
        };
        let failed = self
            .recipients
            .iter()
            .find(|r| {
                r.action.as_deref() == Some("failed")
                    || r.status.as_deref().is_some_and(|s| s.starts_with('5'))
            })
            .or_else(|| self.recipients.first());
        Some(StatusUpdate {
            provider_message_id: id,
            status,
            error_code: failed
                .filter(|_| status == DeliveryStatus::Failed)
                .and_then(|r| r.status.clone()),
            error_message: failed
                .filter(|_| status == DeliveryStatus::Failed)
                .and_then(|r| r.diagnostic.clone().or_else(|| Some(r.address.clone()))),
            external: serde_json::json!({ "email_bounce": self }),
        })
    }

    /// [`Self::status_update`] when the bounced message is one of ours: its Message-ID
    /// (without angle brackets) passes `is_own_message_id`. This is the only place that
    /// decides whether a report is about our own mail; normalization calls it once and
    /// carries the answer in [`super::parsed::ParsedEmail::own_bounce`].
    pub fn own_status_update(
        &self,
        is_own_message_id: &dyn Fn(&str) -> bool,
    ) -> Option<StatusUpdate> {
        let mut update = self.status_update()?;
        update.provider_message_id = update
            .provider_message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        is_own_message_id(&update.provider_message_id).then_some(update)
    }
}
