//! Graph API failures → [`SendError`]: transient (the outbox retries) or permanent.
//!
//! Meta answers errors as `{"error":{"message","type","code","error_data":{"details"},
//! "error_subcode","fbtrace_id"}}` and recommends deciding on `code`, not on the HTTP status
//! (rate limits come back as 400). Transient: the throttling codes, Meta's "try again later"
//! codes, and — whatever the code — HTTP 429 and 5xx, timeouts and connection failures.
//! Everything else is permanent, with the Graph code as the error code (`131047`,
//! `132000`, `190`...), or `http_<status>` when the answer carried none. Transport
//! failures are classified by core, like every connector's
//! ([`switchboard_core::contract::provider_http::transport_error`]).

use reqwest::StatusCode;
use serde_json::Value;
use switchboard_core::domain::model::SendError;

/// Codes worth retrying whatever the HTTP status says.
const TRANSIENT_CODES: [i64; 15] = [
    1,      // API Unknown: "invalid request or possible server error"
    2,      // API Service: temporary downtime or overload
    4,      // API Too Many Calls (app rate limit)
    17,     // API User Too Many Calls
    32,     // Page-level rate limit
    613,    // Calls within one hour exceeded
    80007,  // WhatsApp Business Account rate limit
    80008,  // Business use case rate limit (catalog)
    130429, // Cloud API throughput reached
    131000, // Something went wrong
    131016, // Service unavailable
    131048, // Spam rate limit hit
    131056, // (Business, consumer) pair rate limit hit
    131057, // Business account in maintenance mode
    133004, // Server temporarily unavailable
];

/// The parts of a Graph error body we use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Parses `{"error":{...}}`; a body without one gives an empty value.
    pub(crate) fn parse(body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let Some(error) = value.get("error") else {
            return Self::default();
        };
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Self {
            code: match error.get("code") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            },
            message: text(error.get("message")),
            details: text(error.get("error_data").and_then(|d| d.get("details"))),
            fbtrace_id: text(error.get("fbtrace_id")),
        }
    }

    /// Meta's message, its details, and the trace id support asks for.
    fn describe(&self, status: StatusCode) -> String {
        let mut out = self
            .message
            .clone()
            .unwrap_or_else(|| format!("Graph API answered {status}"));
        if let Some(d) = &self.details
            && Some(d) != self.message.as_ref()
        {
            out = format!("{out}: {d}");
        }
        if let Some(t) = &self.fbtrace_id {
            out = format!("{out} (fbtrace_id {t})");
        }
        out
    }
}

/// Whether a Graph error code is worth retrying.
pub(crate) fn is_transient_code(code: i64) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// A non-2xx Graph API answer → transient or permanent error.
pub(crate) fn classify(status: StatusCode, body: &[u8]) -> SendError {
    let error = GraphError::parse(body);
    let message = error.describe(status);
    let code = error
        .code
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let transient = error.code.is_some_and(is_transient_code)
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    if transient {
        SendError::Transient {
            retry_after_ms: None,
            code: Some(code),
            message,
        }
    } else {
        SendError::Permanent { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: i64, message: &str, details: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
        }}))
        .expect("json")
    }

    fn is_transient(e: &SendError, want_code: &str) -> bool {
        matches!(e, SendError::Transient { code: Some(c), .. } if c == want_code)
    }

    fn is_permanent(e: &SendError, want_code: &str) -> bool {
        matches!(e, SendError::Permanent { code, .. } if code == want_code)
    }

    #[test]
    fn throttling_and_try_later_codes_are_transient_even_on_400() {
        for code in [
            4, 80007, 130429, 131000, 131016, 131048, 131056, 131057, 133004,
        ] {
            let e = classify(StatusCode::BAD_REQUEST, &body(code, "(#x) busy", "later"));
            assert!(is_transient(&e, &code.to_string()), "{code}: {e:?}");
        }
    }

    #[test]
    fn refusals_are_permanent_with_the_graph_code() {
        for code in [
            100, 190, 131026, 131047, 131051, 131052, 132000, 132001, 368,
        ] {
            let e = classify(StatusCode::BAD_REQUEST, &body(code, "(#x) no", "never"));
            assert!(is_permanent(&e, &code.to_string()), "{code}: {e:?}");
        }
        let e = classify(
            StatusCode::UNAUTHORIZED,
            &body(190, "Error validating access token", "expired"),
        );
        assert!(is_permanent(&e, "190"), "{e:?}");
    }

    #[test]
    fn http_429_and_5xx_are_transient_whatever_the_body() {
        let e = classify(StatusCode::TOO_MANY_REQUESTS, b"");
        assert!(is_transient(&e, "http_429"), "{e:?}");
        let e = classify(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>");
        assert!(is_transient(&e, "http_500"), "{e:?}");
        let e = classify(StatusCode::SERVICE_UNAVAILABLE, &body(3, "cap", "x"));
        assert!(is_transient(&e, "3"), "{e:?}");
        let e = classify(StatusCode::NOT_FOUND, b"not json");
        assert!(is_permanent(&e, "http_404"), "{e:?}");
    }

    #[test]
    fn the_message_carries_details_and_trace_id() {
        let e = classify(
            StatusCode::BAD_REQUEST,
            &body(
                131047,
                "(#131047) Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            ),
        );
        let SendError::Permanent { message, .. } = e else {
            panic!("permanent expected");
        };
        assert!(
            message.starts_with("(#131047) Re-engagement message: Message failed"),
            "{message}"
        );
        assert!(
            message.ends_with("(fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam)"),
            "{message}"
        );
    }

    #[test]
    fn string_codes_are_understood() {
        let b = br#"{"error":{"message":"Rate limit hit","code":"130429"}}"#;
        assert!(is_transient(
            &classify(StatusCode::BAD_REQUEST, b),
            "130429"
        ));
    }
}
