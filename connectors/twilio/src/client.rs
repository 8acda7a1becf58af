//! Twilio's REST API: sending through the Messages API, looking an interrupted send up in the
//! Messages list (`client_lookup.rs`), downloading inbound media, and the account health
//! check. Every call has its own timeout from the channel settings.
//!
//! Errors are classified for the outbox: rate limits (429), server errors (5xx), timeouts and
//! connection failures are transient (retried); Twilio's 4xx refusals are permanent, with
//! Twilio's numeric error code (`21211`, `21610`, ...) as the code, `auth` for 401/403 and
//! `http_<status>` when Twilio gave no code.

use crate::normalize::map_status;
use crate::settings::TwilioSettings;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::contract::provider_http::{
    read_limited, response_too_large, transport_error, with_retry_after,
};
use switchboard_core::domain::model::{
    DeliveryStatus, FetchedMedia, IdentityKind, MediaLimits, OutboundMessage, SendError,
    SendReceipt,
};
use switchboard_core::infra::public_http::{self, PublicHttp, UrlRefused};

/// Largest API response body read (Twilio's JSON answers are a few KiB).
const MAX_API_RESPONSE_BYTES: u64 = 1024 * 1024;

/// A Twilio REST client for one channel.
#[derive(Clone)]
pub(crate) struct TwilioClient {
    http: reqwest::Client,
    /// Inbound media: the channel's media hosts only, through the public-address guard.
    media_http: PublicHttp,
    settings: Arc<TwilioSettings>,
    /// Where Twilio posts status callbacks; `None` when they are turned off.
    status_callback: Option<String>,
    channel_id: String,
}

impl TwilioClient {
    pub(crate) fn new(
        http: reqwest::Client,
        media_http: PublicHttp,
        settings: Arc<TwilioSettings>,
        status_callback: Option<String>,
        channel_id: String,
    ) -> Self {
        Self {
            http,
            media_http,
            settings,
            status_callback,
            channel_id,
        }
    }

    fn account_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}",
            self.settings.api_base, self.settings.account_sid
        )
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs)
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(
            &self.settings.account_sid,
            Some(self.settings.auth_token.expose()),
        )
    }

    /// Creates a Message: `POST /2010-04-01/Accounts/{sid}/Messages.json`.
    #[tracing::instrument(name = "twilio.send", skip_all, fields(channel = %self.channel_id, message_id = %msg.message_id))]
    pub(crate) async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let form = self.message_form(msg)?;
        let url = format!("{}/Messages.json", self.account_url());
        let resp = self
            .authed(self.http.post(&url))
            .timeout(self.timeout())
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_limited(resp, MAX_API_RESPONSE_BYTES)
            .await
            .map_err(|e| e.into_send_error(response_too_large("Twilio response")))?;
        if !status.is_success() {
            let err = with_retry_after(classify(status, &body), &headers);
            tracing::warn!(%status, error = %err, "Twilio refused the message");
            return Err(err);
        }
        let receipt = parse_receipt(&body)?;
        tracing::info!(sid = %receipt.provider_message_id, status = receipt.status.as_str(), "message accepted by Twilio");
        Ok(receipt)
    }

    /// The form fields of a Messages API request.
    fn message_form(
        &self,
        msg: &OutboundMessage,
    ) -> Result<Vec<(&'static str, String)>, SendError> {
        let to = if msg.to.kind == IdentityKind::PHONE {
            msg.to.value.trim().to_string()
        } else if msg.to.kind == IdentityKind::WHATSAPP {
            let number = msg.to.value.trim();
            let number = number.strip_prefix("whatsapp:").unwrap_or(number);
            format!("whatsapp:+{}", number.trim_start_matches('+'))
        } else {
            return Err(SendError::Permanent {
                code: "unsupported_recipient".into(),
                message: format!(
                    "a Twilio channel cannot send to an address of kind {}",
                    msg.to.kind
                ),
            });
        };
        let text = msg.text.as_deref().filter(|t| !t.trim().is_empty());
        if text.is_none() && msg.media_urls.is_empty() {
            return Err(SendError::Permanent {
                code: "empty_message".into(),
                message: "a message needs a text or media".into(),
            });
        }
        let mut form: Vec<(&'static str, String)> = vec![("To", to)];
        match (&self.settings.from, &self.settings.messaging_service_sid) {
            (Some(from), _) => form.push(("From", from.clone())),
            (None, Some(service)) => form.push(("MessagingServiceSid", service.clone())),
            (None, None) => {
                return Err(SendError::Permanent {
                    code: "no_sender".into(),
                    message: "the channel has neither from nor messaging_service_sid".into(),
                });
            }
        }
        if let Some(text) = text {
            form.push(("Body", text.to_string()));
        }
        for media in &msg.media_urls {
            form.push(("MediaUrl", media.clone()));
        }
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        Ok(form)
    }

    /// Downloads a media item Twilio referred to (`MediaUrl{N}`), within `limits`, from the
    /// channel's media hosts only (the URL and every redirect hop; see `media_hosts`).
    #[tracing::instrument(name = "twilio.fetch_media", skip_all, fields(channel = %self.channel_id))]
    pub(crate) async fn fetch_media(
        &self,
        source: &str,
        limits: &MediaLimits,
    ) -> Result<FetchedMedia, SendError> {
        let url = url::Url::parse(source).map_err(|_| url_refused(UrlRefused::NotHttp))?;
        let mut req = self
            .media_http
            .get_url(url.clone())
            .map_err(url_refused)?
            .timeout(Duration::from_secs(self.settings.media_timeout_secs));
        if self.may_authenticate(&url) {
            req = self.authed(req);
        }
        let resp = req.send().await.map_err(|e| {
            if public_http::is_refusal(&e) {
                tracing::warn!("media download refused: it led off the media hosts");
                SendError::Permanent {
                    code: "media_url_refused".into(),
                    message: "media not fetched: it led off the channel's media hosts or to \
                              a non-public address"
                        .into(),
                }
            } else {
                transport_error(e)
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            tracing::warn!(%status, "media download refused");
            return Err(with_retry_after(media_status_error(status), resp.headers()));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        if !limits.allows(&content_type) {
            return Err(SendError::Permanent {
                code: "media_type_not_allowed".into(),
                message: format!("media type {content_type} is not allowed"),
            });
        }
        if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large(limits));
        }
        let bytes = read_limited(resp, limits.max_bytes)
            .await
            .map_err(|e| e.into_send_error(too_large(limits)))?;
        tracing::debug!(size = bytes.len(), %content_type, "media downloaded");
        Ok(FetchedMedia {
            content_type,
            bytes,
            expected_sha256: None,
        })
    }

    /// Our credentials go only to Twilio: the configured API origin or an https
    /// `*.twilio.com` host. Redirects to other hosts (Twilio's media CDN) lose the
    /// Authorization header by reqwest's redirect policy.
    fn may_authenticate(&self, url: &url::Url) -> bool {
        let same_origin = url::Url::parse(&self.settings.api_base).is_ok_and(|base| {
            base.scheme() == url.scheme()
                && base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
        });
        let twilio = url.scheme() == "https"
            && url
                .host_str()
                .is_some_and(|h| h == "twilio.com" || h.ends_with(".twilio.com"));
        same_origin || twilio
    }

    /// Fetches the account: reachable, credentials accepted, account active.
    #[tracing::instrument(name = "twilio.healthcheck", skip_all, fields(channel = %self.channel_id))]
    pub(crate) async fn healthcheck(&self) -> Result<(), String> {
        let url = format!("{}.json", self.account_url());
        let resp = self
            .authed(self.http.get(&url))
            .timeout(self.timeout())
            .send()
            .await
            .map_err(|e| format!("Twilio unreachable: {}", transport_error(e)))?;
        let status = resp.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(format!("Twilio refused the credentials ({status})"));
        }
        if !status.is_success() {
            return Err(format!("Twilio account lookup failed ({status})"));
        }
        let body = read_limited(resp, MAX_API_RESPONSE_BYTES)
            .await
            .map_err(|_| "Twilio account response unreadable".to_string())?;
        let account: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match account.get("status").and_then(Value::as_str) {
            None | Some("active") => Ok(()),
            Some(other) => Err(format!("Twilio account is {other}")),
        }
    }
}

/// Twilio's answer to a created Message → receipt.
fn parse_receipt(body: &[u8]) -> Result<SendReceipt, SendError> {
    // Twilio accepted the message: retrying could send it twice, so an unreadable answer is
    // a permanent error for the operator to look at, not a retry.
    let invalid = |why: &str| SendError::Permanent {
        code: "invalid_response".into(),
        message: format!("Twilio accepted the request but its answer {why}"),
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid("is not JSON"))?;
    let sid = value
        .get("sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("has no sid"))?
        .to_string();
    let status = value
        .get("status")
        .and_then(Value::as_str)
        .and_then(map_status)
        .unwrap_or(DeliveryStatus::Queued);
    Ok(SendReceipt {
        provider_message_id: sid,
        status,
        external: value,
    })
}

/// A non-2xx Messages API answer → transient or permanent error.
fn classify(status: StatusCode, body: &[u8]) -> SendError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = match parsed.get("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let mut message = parsed
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("Twilio answered {status}"));
    if let Some(info) = parsed.get("more_info").and_then(Value::as_str) {
        message = format!("{message} ({info})");
    }
    let http_code = format!("http_{}", status.as_u16());
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        SendError::Transient {
            retry_after_ms: None,
            code: Some(code.unwrap_or(http_code)),
            message,
        }
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        SendError::Permanent {
            code: "auth".into(),
            message,
        }
    } else {
        SendError::Permanent {
            code: code.unwrap_or(http_code),
            message,
        }
    }
}

fn media_status_error(status: StatusCode) -> SendError {
    let message = format!("media download answered {status}");
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => SendError::Permanent {
            code: "not_found".into(),
            message,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SendError::Permanent {
            code: "auth".into(),
            message,
        },
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => SendError::Transient {
            retry_after_ms: None,
            code: Some(format!("http_{}", s.as_u16())),
            message,
        },
        s => SendError::Permanent {
            code: format!("http_{}", s.as_u16()),
            message,
        },
    }
}

/// A media URL (or a redirect of it) the guard would not fetch: a permanent failure.
/// `invalid_media_url` for what is no http(s) URL, `media_url_refused` for a host off the
/// channel's media hosts or a non-public address.
fn url_refused(why: UrlRefused) -> SendError {
    let code = match why {
        UrlRefused::NotHttp => "invalid_media_url",
        UrlRefused::NotPublic | UrlRefused::HostNotAllowed => "media_url_refused",
    };
    SendError::Permanent {
        code: code.into(),
        message: format!("media not fetched: {why}"),
    }
}

fn too_large(limits: &MediaLimits) -> SendError {
    SendError::Permanent {
        code: "media_too_large".into(),
        message: format!("media is larger than {} bytes", limits.max_bytes),
    }
}

#[path = "client_lookup.rs"]
mod lookup;

#[cfg(test)]
#[path = "client_tests/lookup.rs"]
mod lookup_tests;
#[cfg(test)]
#[path = "client_tests/media.rs"]
mod media_tests;
#[cfg(test)]
#[path = "client_tests/send.rs"]
mod send_tests;
#[cfg(test)]
#[path = "client_tests/setup.rs"]
mod setup;
