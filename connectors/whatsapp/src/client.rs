//! The Graph API client of one channel: sending messages (text, replies, templates, media),
//! read receipts and the health check. Media transfers live in [`crate::media`].
//!
//! Every call carries the channel's bearer token and its own timeout. A message Meta accepted
//! is `sent` (Meta answers only once it has taken the message); failures are classified by
//! [`crate::graph_error`] for the outbox.

use crate::graph_error::classify;
use crate::outbound::{self, MediaKind};
use crate::settings::WhatsappSettings;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::contract::provider_http::{
    read_limited, response_too_large, transport_error, with_retry_after,
};
use switchboard_core::domain::model::{DeliveryStatus, OutboundMessage, SendError, SendReceipt};

/// Largest Graph API JSON answer read (they are a few hundred bytes).
pub(crate) const MAX_API_RESPONSE_BYTES: u64 = 1024 * 1024;

/// A Graph API client for one business phone number.
#[derive(Clone)]
pub(crate) struct GraphClient {
    pub(crate) http: reqwest::Client,
    /// For reply media URLs that API callers name: public addresses only (unless allowed).
    pub(crate) public_http: switchboard_core::infra::public_http::PublicHttp,
    pub(crate) settings: Arc<WhatsappSettings>,
    pub(crate) channel_id: String,
}

/// One media file ready to go: uploaded, with what the message needs to refer to it.
pub(crate) struct Uploaded {
    pub kind: MediaKind,
    pub media_id: String,
    pub filename: Option<String>,
}

impl GraphClient {
    pub(crate) fn new(
        http: reqwest::Client,
        public_http: switchboard_core::infra::public_http::PublicHttp,
        settings: Arc<WhatsappSettings>,
        channel_id: String,
    ) -> Self {
        Self {
            http,
            public_http,
            settings,
            channel_id,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.api_root())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs)
    }

    pub(crate) fn media_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.media_timeout_secs)
    }

    pub(crate) fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(self.settings.access_token.expose())
    }

    /// Sends a request with the bearer token and returns the body of a 2xx answer; any other
    /// answer is classified.
    pub(crate) async fn call(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Bytes, SendError> {
        let resp = self
            .authed(req)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_limited(resp, MAX_API_RESPONSE_BYTES)
            .await
            .map_err(|e| e.into_send_error(response_too_large("Graph API response")))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(with_retry_after(classify(status, &body), &headers))
        }
    }

    /// Delivers one outbound message: a template, a text, or media (each file uploaded first,
    /// then one message per file, the text as the first file's caption when it can be).
    #[tracing::instrument(name = "whatsapp.send", skip_all, fields(channel = %self.channel_id, message_id = %msg.message_id))]
    pub(crate) async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let to = outbound::recipient(msg)?;
        let reply_to = msg
            .in_reply_to
            .as_deref()
            .filter(|id| !id.trim().is_empty());
        let text = msg.text.as_deref().filter(|t| !t.trim().is_empty());
        let bodies = if let Some(template) = &msg.template {
            if text.is_some() || !msg.media_urls.is_empty() {
                tracing::debug!("template send: the text and media of the reply are not sent");
            }
            vec![outbound::template(&to, template, reply_to)?]
        } else if msg.media_urls.is_empty() {
            let text = text.ok_or_else(|| SendError::Permanent {
                code: "empty_message".into(),
                message: "a message needs a text, media or a template".into(),
            })?;
            vec![outbound::text(&to, text, reply_to)]
        } else {
            // Every upload before any send: a failure here has sent nothing, so a retry is safe.
            let mut uploads = Vec::with_capacity(msg.media_urls.len());
            for url in &msg.media_urls {
                uploads.push(self.upload_from_url(url).await?);
            }
            media_bodies(&to, text, reply_to, &uploads)
        };
        self.send_all(bodies).await
    }

    /// Posts each body in order. Once one was accepted, a later failure is reported as a
    /// permanent `partially_sent` error: retrying would send the accepted parts again.
    async fn send_all(&self, bodies: Vec<Value>) -> Result<SendReceipt, SendError> {
        let total = bodies.len();
        let mut answers: Vec<Value> = Vec::with_capacity(total);
        for body in bodies {
            match self.post_message(&body).await {
                Ok(answer) => answers.push(answer),
                Err(e) if answers.is_empty() => return Err(e),
                Err(e) => {
                    let sent: Vec<&str> = answers.iter().filter_map(wamid).collect();
                    tracing::error!(error = %e, sent = ?sent, "message only partially sent");
                    return Err(SendError::Permanent {
                        code: "partially_sent".into(),
                        message: format!(
                            "{} of {total} parts were sent ({}), then: {e}",
                            sent.len(),
                            sent.join(", ")
                        ),
                    });
                }
            }
        }
        let mut answers = answers.into_iter();
        let Some(first) = answers.next() else {
            return Err(SendError::Permanent {
                code: "empty_message".into(),
                message: "nothing to send".into(),
            });
        };
        let provider_message_id = wamid(&first).unwrap_or_default().to_string();
        let mut external = first;
        let rest: Vec<Value> = answers.collect();
        if !rest.is_empty()
            && let Some(obj) = external.as_object_mut()
        {
            let mut parts = vec![Value::Object(obj.clone())];
            parts.extend(rest);
            obj.insert("parts".into(), Value::Array(parts));
        }
        tracing::info!(wamid = %provider_message_id, parts = total, "message accepted by WhatsApp");
        Ok(SendReceipt {
            provider_message_id,
            status: DeliveryStatus::Sent,
            external,
        })
    }

    /// `POST /{phone-number-id}/messages` → the answer, which must name the new wamid.
    async fn post_message(&self, body: &Value) -> Result<Value, SendError> {
        let url = self.url(&format!("{}/messages", self.settings.phone_number_id));
        let raw = self
            .call(self.http.post(&url).json(body), self.timeout())
            .await?;
        // Meta took the message: an answer we cannot read must not cause a second send.
        let invalid = |why: &str| SendError::Permanent {
            code: "invalid_response".into(),
            message: format!("WhatsApp accepted the request but its answer {why}"),
        };
        let answer: Value = serde_json::from_slice(&raw).map_err(|_| invalid("is not JSON"))?;
        if wamid(&answer).is_none() {
            return Err(invalid("names no message id"));
        }
        Ok(answer)
    }

    /// Tells WhatsApp an inbound message was read (blue ticks for it and the ones before).
    #[tracing::instrument(name = "whatsapp.mark_read", skip_all, fields(channel = %self.channel_id))]
    pub(crate) async fn mark_read(&self, wamid: &str) -> Result<(), SendError> {
        if wamid.trim().is_empty() {
            return Err(SendError::Permanent {
                code: "invalid_message_id".into(),
                message: "no message id to mark as read".into(),
            });
        }
        let url = self.url(&format!("{}/messages", self.settings.phone_number_id));
        let body = outbound::read_receipt(wamid);
        self.call(self.http.post(&url).json(&body), self.timeout())
            .await?;
        tracing::debug!(%wamid, "read receipt sent");
        Ok(())
    }

    /// Reads the phone number: reachable, token accepted, number known to Meta.
    #[tracing::instrument(name = "whatsapp.healthcheck", skip_all, fields(channel = %self.channel_id))]
    pub(crate) async fn healthcheck(&self) -> Result<(), String> {
        let url = self.url(&self.settings.phone_number_id);
        let body = self
            .call(self.http.get(&url), self.timeout())
            .await
            .map_err(|e| match e {
                SendError::Transient { message, .. } => {
                    format!("WhatsApp Graph API unavailable: {message}")
                }
                SendError::Permanent { code, message } => {
                    format!(
                        "WhatsApp Graph API refused the phone number lookup ({code}): {message}"
                    )
                }
            })?;
        let number: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match number.get("id").and_then(Value::as_str) {
            Some(id) if id == self.settings.phone_number_id => Ok(()),
            None => Ok(()),
            Some(other) => Err(format!(
                "the Graph API answered for phone number {other}, not {}",
                self.settings.phone_number_id
            )),
        }
    }
}

/// One message per uploaded file; the text rides as the first file's caption when that file
/// takes one, else it goes first as a text message. The reply context goes on the first.
fn media_bodies(
    to: &str,
    text: Option<&str>,
    reply_to: Option<&str>,
    uploads: &[Uploaded],
) -> Vec<Value> {
    let mut bodies = Vec::with_capacity(uploads.len() + 1);
    let mut caption = text;
    let mut context = reply_to;
    if let (Some(t), Some(first)) = (text, uploads.first())
        && !first.kind.takes_caption()
    {
        bodies.push(outbound::text(to, t, context.take()));
        caption = None;
    }
    for u in uploads {
        bodies.push(outbound::media(
            to,
            u.kind,
            &u.media_id,
            caption.take(),
            u.filename.as_deref(),
            context.take(),
        ));
    }
    bodies
}

/// `messages[0].id` of a messages-endpoint answer.
fn wamid(answer: &Value) -> Option<&str> {
    answer
        .get("messages")
        .and_then(|m| m.get(0))
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
#[path = "client_tests/media.rs"]
mod media_tests;
#[cfg(test)]
#[path = "client_tests/send.rs"]
mod send_tests;
#[cfg(test)]
#[path = "client_tests/setup.rs"]
mod setup;
