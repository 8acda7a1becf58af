//! SMTP failures, classified as lettre reports them: 4xx and connection failures are
//! transient, 5xx permanent with the code and the server's text; and their translation to
//! core's [`SendError`].

use switchboard_core::domain::model::SendError;

/// Why a send (or building the message) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    #[error("invalid SMTP configuration: {0}")]
    Config(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    /// 4xx, connection and network failures, timeouts: retry later.
    #[error("transient SMTP failure{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Transient { code: Option<u16>, message: String },
    /// 5xx, a refused certificate, a client-side refusal: will not pass on retry.
    #[error("permanent SMTP failure{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Permanent { code: Option<u16>, message: String },
}

impl SmtpError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SmtpError::Transient { .. })
    }

    /// The SMTP reply code, if the server gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SmtpError::Transient { code, .. } | SmtpError::Permanent { code, .. } => *code,
            _ => None,
        }
    }

    pub(super) fn from_lettre(e: &lettre::transport::smtp::Error) -> Self {
        let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
        let message = e.to_string();
        // A certificate that does not verify will not verify on retry (lettre reports it
        // as a connection or a TLS error).
        let bad_certificate = message.contains("invalid peer certificate")
            || (e.is_tls() && message.to_ascii_lowercase().contains("certificate"));
        if e.is_permanent() || bad_certificate {
            SmtpError::Permanent { code, message }
        } else if e.is_transient() || e.is_timeout() || e.is_transport_shutdown() || e.is_response()
        {
            SmtpError::Transient { code, message }
        } else if e.is_client() {
            SmtpError::Permanent { code, message }
        } else {
            // Connection, network and other TLS failures.
            SmtpError::Transient { code, message }
        }
    }
}

impl From<SmtpError> for SendError {
    fn from(e: SmtpError) -> Self {
        match e {
            SmtpError::Transient { code, .. } => SendError::Transient {
                retry_after_ms: None,
                code: code.map(|c| c.to_string()),
                message: e.to_string(),
            },
            SmtpError::Permanent { code, .. } => SendError::Permanent {
                code: code.map_or_else(|| "smtp_refused".to_owned(), |c| c.to_string()),
                message: e.to_string(),
            },
            SmtpError::Config(_) => SendError::Permanent {
                code: "smtp_config".into(),
                message: e.to_string(),
            },
            SmtpError::Build(_) => SendError::Permanent {
                code: "invalid_message".into(),
                message: e.to_string(),
            },
        }
    }
}
