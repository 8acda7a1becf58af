//! Did an interrupted send reach Twilio? Asked by core before a send job whose earlier
//! attempt left no outcome is sent again.
//!
//! Twilio's Messages list resource, `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! filtered by `To`, by `From` (with a Messaging Service, which picks the sender itself, by
//! `To` only) and by `DateSent>=` the attempt's day (GMT; the filter has day precision),
//! newest first, `PageSize` at a time, following `next_page_uri`. A listed message is the
//! one sent when it is outbound, has the same `to`, the same `from` (or
//! `messaging_service_sid`) and the same `body`, and was created (`date_created`, RFC 2822)
//! no earlier than the attempt's start less [`CLOCK_SKEW_SECS`].

use super::{MAX_API_RESPONSE_BYTES, TwilioClient, classify};
use crate::normalize::map_status;
use serde_json::Value;
use switchboard_core::contract::connector::PriorSend;
use switchboard_core::contract::provider_http::{read_limited, transport_error};
use switchboard_core::domain::model::{
    DeliveryStatus, Millis, OutboundMessage, SendError, SendReceipt,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Messages asked for per page.
const PAGE_SIZE: &str = "50";
/// Pages read at most: past them the lookup ends with what it found.
const MAX_PAGES: usize = 10;
/// How far before the attempt's start a creation date still counts (Twilio's dates have
/// whole seconds, and its clock and ours differ a little).
pub(crate) const CLOCK_SKEW_SECS: i64 = 60;

/// What the listed message must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    to: String,
    /// `("from", number)` or `("messaging_service_sid", MG…)`.
    sender: (&'static str, String),
    body: String,
    /// Unix seconds: created at or after this.
    created_from: i64,
}

impl Wanted {
    /// From the form the send posts (`To`, `From` or `MessagingServiceSid`, `Body`).
    fn new(form: &[(&'static str, String)], since: Millis) -> Option<Self> {
        let field = |k: &str| form.iter().find(|(key, _)| *key == k).map(|(_, v)| v);
        let sender = match (field("From"), field("MessagingServiceSid")) {
            (Some(from), _) => ("from", from.clone()),
            (None, Some(service)) => ("messaging_service_sid", service.clone()),
            (None, None) => return None,
        };
        Some(Self {
            to: field("To")?.clone(),
            sender,
            body: field("Body").cloned().unwrap_or_default(),
            created_from: since.div_euclid(1000) - CLOCK_SKEW_SECS,
        })
    }

    /// The list request's filters.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("To", self.to.clone())];
        if self.sender.0 == "from" {
            q.push(("From", self.sender.1.clone()));
        }
        if let Some(day) = gmt_day(self.created_from) {
            q.push(("DateSent>", day));
        }
        q.push(("PageSize", PAGE_SIZE.to_string()));
        q
    }

    fn matches(&self, m: &Value) -> bool {
        let text = |k: &str| m.get(k).and_then(Value::as_str);
        text("direction").is_some_and(|d| d.starts_with("outbound"))
            && text("to") == Some(self.to.as_str())
            && text(self.sender.0) == Some(self.sender.1.as_str())
            && text("body").unwrap_or_default() == self.body
            && created_at(m).is_some_and(|t| t >= self.created_from)
    }
}

/// `YYYY-MM-DD` (GMT) of a Unix time.
fn gmt_day(secs: i64) -> Option<String> {
    let date = OffsetDateTime::from_unix_timestamp(secs).ok()?.date();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(&format).ok()
}

/// A listed message's `date_created`, in Unix seconds.
fn created_at(m: &Value) -> Option<i64> {
    let text = m.get("date_created")?.as_str()?;
    Some(OffsetDateTime::parse(text, &Rfc2822).ok()?.unix_timestamp())
}

/// A listed message as the receipt of our send (its SID and current status).
fn receipt_of(m: &Value) -> Option<SendReceipt> {
    let sid = m
        .get("sid")?
        .as_str()
        .filter(|s| !s.is_empty())?
        .to_string();
    let status = m
        .get("status")
        .and_then(Value::as_str)
        .and_then(map_status)
        .unwrap_or(DeliveryStatus::Queued);
    Some(SendReceipt {
        provider_message_id: sid,
        status,
        external: m.clone(),
    })
}

impl TwilioClient {
    /// Looks `msg` up in the Messages list (see the module documentation).
    #[tracing::instrument(name = "twilio.find_prior_send", skip_all, fields(channel = %self.channel_id, message_id = %msg.message_id))]
    pub(crate) async fn find_prior_send(
        &self,
        msg: &OutboundMessage,
        since: Millis,
    ) -> Result<PriorSend, SendError> {
        let form = self.message_form(msg)?;
        let Some(wanted) = Wanted::new(&form, since) else {
            return Ok(PriorSend::Unknown);
        };
        let list_path = format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            self.settings.account_sid
        );
        let mut url =
            url::Url::parse(&format!("{}{list_path}", self.settings.api_base)).map_err(|_| {
                SendError::Permanent {
                    code: "invalid_api_base".into(),
                    message: "api_base does not make a URL".into(),
                }
            })?;
        url.query_pairs_mut().extend_pairs(wanted.query());
        let mut req = self.http.get(url);
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.list_page(req).await?;
            let messages = page.get("messages").and_then(Value::as_array);
            let messages = messages.map(Vec::as_slice).unwrap_or_default();
            found.extend(
                messages
                    .iter()
                    .filter(|m| wanted.matches(m))
                    .filter_map(receipt_of),
            );
            // Newest first: a page ending before the attempt began ends the search.
            let older = messages
                .last()
                .and_then(created_at)
                .is_some_and(|t| t < wanted.created_from);
            let next = page.get("next_page_uri").and_then(Value::as_str);
            match next.filter(|n| n.starts_with(&list_path) && !older) {
                Some(next) => req = self.http.get(format!("{}{next}", self.settings.api_base)),
                None => break,
            }
        }
        tracing::info!(matches = found.len(), "Twilio's Messages list read");
        Ok(if found.is_empty() {
            PriorSend::NotFound
        } else {
            PriorSend::Found(found)
        })
    }

    /// One page of the list, as JSON; a refusal is classified as a send's would be.
    async fn list_page(&self, req: reqwest::RequestBuilder) -> Result<Value, SendError> {
        let resp = self
            .authed(req)
            .timeout(self.timeout())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let unreadable = || SendError::Permanent {
            code: "invalid_response".into(),
            message: "Twilio's Messages list is unreadable".into(),
        };
        let body = read_limited(resp, MAX_API_RESPONSE_BYTES)
            .await
            .map_err(|e| e.into_send_error(unreadable()))?;
        if !status.is_success() {
            return Err(classify(status, &body));
        }
        serde_json::from_slice(&body).map_err(|_| unreadable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const START: Millis = 1_767_225_600_500; // 2026-01-01T00:00:00.5Z

    fn listed(to: &str, from: &str, body: &str, created: &str) -> Value {
        json!({"sid": "SM1", "direction": "outbound-api", "to": to, "from": from,
               "messaging_service_sid": null, "body": body, "status": "delivered",
               "date_created": created})
    }

    fn wanted(sender: (&'static str, &str), body: Option<&str>) -> Wanted {
        let mut form = vec![("To", "+14155550100".to_string())];
        form.push((
            if sender.0 == "from" {
                "From"
            } else {
                "MessagingServiceSid"
            },
            sender.1.to_string(),
        ));
        if let Some(b) = body {
            form.push(("Body", b.to_string()));
        }
        Wanted::new(&form, START).expect("wanted")
    }

    #[test]
    fn the_same_message_created_since_the_attempt_matches() {
        let w = wanted(("from", "+15005550006"), Some("Your order shipped"));
        let same = |created: &str| {
            listed(
                "+14155550100",
                "+15005550006",
                "Your order shipped",
                created,
            )
        };
        assert!(w.matches(&same("Thu, 01 Jan 2026 00:00:03 +0000")));
        // Whole seconds, and a clock a little behind ours.
        assert!(w.matches(&same("Wed, 31 Dec 2025 23:59:30 +0000")));
        // Before the attempt (less the skew): an earlier message with the same text.
        assert!(!w.matches(&same("Wed, 31 Dec 2025 23:58:00 +0000")));
        assert!(!w.matches(&same("not a date")));
        let at = "Thu, 01 Jan 2026 00:00:03 +0000";
        for other in [
            listed("+14155550199", "+15005550006", "Your order shipped", at),
            listed("+14155550100", "+15005550007", "Your order shipped", at),
            listed("+14155550100", "+15005550006", "Your order shipped!", at),
        ] {
            assert!(!w.matches(&other), "{other}");
        }
        let mut inbound = same(at);
        inbound["direction"] = json!("inbound");
        assert!(!w.matches(&inbound));
        let receipt = receipt_of(&same(at)).expect("receipt");
        assert_eq!(receipt.provider_message_id, "SM1");
        assert_eq!(receipt.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn a_messaging_service_and_media_only_messages_match_by_their_fields() {
        let w = wanted(("service", "MG1"), None);
        let mut m = listed(
            "+14155550100",
            "+15005550042",
            "",
            "Thu, 01 Jan 2026 00:00:01 +0000",
        );
        assert!(!w.matches(&m), "the service's SID must match");
        m["messaging_service_sid"] = json!("MG1");
        assert!(w.matches(&m));
        // The list is asked by To and day only: the service picks the From.
        let q = w.query();
        assert!(q.contains(&("To", "+14155550100".into())));
        assert!(!q.iter().any(|(k, _)| *k == "From"));
        // 60 s before 00:00:00.5 is the previous day.
        assert!(q.contains(&("DateSent>", "2025-12-31".into())));
    }
}
