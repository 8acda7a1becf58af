//! SMTP outbound with lettre: a pooled [`SmtpSender`] over implicit TLS, STARTTLS or plain
//! TCP (explicit only), with authentication; [`build_reply`] writes a threaded reply
//! (Message-ID on our domain, In-Reply-To and References from the thread, a `Re:` subject
//! that is never doubled, the reply token in Reply-To, text, optional HTML, attachments).
//! Errors are classified as lettre reports them: SMTP 4xx and connection failures are
//! transient, 5xx permanent with the code and the server's text.
//!
//! Saving the sent copy is the IMAP side's job: `imap::Mailbox::append(sent, &raw, &["\\Seen"])`.

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_core::model::SendError;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS (port 465).
    Tls,
    /// STARTTLS required before anything else (port 587).
    #[default]
    Starttls,
    /// Unencrypted, only when configured explicitly (port 25).
    Plain,
}

/// SMTP authentication mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuth {
    /// PLAIN, or LOGIN if that is all the server offers.
    #[default]
    Password,
    /// XOAUTH2 with `oauth_token` (or the output of `oauth_token_command`, run when the
    /// sender is built).
    Xoauth2,
}

fn default_timeout_secs() -> u64 {
    60
}
fn default_pool_size() -> u32 {
    4
}

/// The channel's `smtp = { ... }` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// No username: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub auth: SmtpAuth,
    #[serde(default)]
    pub oauth_token: Option<String>,
    #[serde(default)]
    pub oauth_token_command: Option<String>,
    /// Extra trusted CA certificates (PEM), beside the web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name to verify in the certificate when it differs from `host`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// EHLO name; the machine's host name by default.
    #[serde(default)]
    pub hello_name: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Pooled connections at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    pub fn new(host: impl Into<String>, security: SmtpSecurity) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            security,
            username: None,
            password: None,
            auth: SmtpAuth::Password,
            oauth_token: None,
            oauth_token_command: None,
            ca_file: None,
            tls_server_name: None,
            hello_name: None,
            timeout_secs: default_timeout_secs(),
            pool_size: default_pool_size(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Plain => 25,
        })
    }
}

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

    fn from_lettre(e: &lettre::transport::smtp::Error) -> Self {
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

/// What the server answered to a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReceipt {
    pub code: u16,
    pub message: String,
}

/// A pooled SMTP client for one account.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpSender")
    }
}

async fn token_from_command(cmd: &str, limit: Duration) -> Result<String, SmtpError> {
    let run = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let transient = |m: String| SmtpError::Transient {
        code: None,
        message: m,
    };
    let out = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| transient("oauth_token_command timed out".into()))?
        .map_err(|e| transient(format!("oauth_token_command: {e}")))?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || token.is_empty() {
        return Err(transient(format!(
            "oauth_token_command failed ({})",
            out.status
        )));
    }
    Ok(token)
}

impl SmtpSender {
    /// Builds the pooled transport (connections open lazily, on the first send).
    pub async fn new(config: &SmtpConfig) -> Result<Self, SmtpError> {
        let bad = |m: String| SmtpError::Config(m);
        if config.host.trim().is_empty() {
            return Err(bad("smtp.host is empty".into()));
        }
        let limit = Duration::from_secs(config.timeout_secs.max(1));
        let name = config
            .tls_server_name
            .clone()
            .unwrap_or_else(|| config.host.clone());
        let tls_params = || -> Result<TlsParameters, SmtpError> {
            let mut b = TlsParameters::builder(name.clone())
                .certificate_store(CertificateStore::WebpkiRoots);
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| bad(format!("smtp.ca_file {}: {e}", path.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| bad(format!("smtp.ca_file {}: {e}", path.display())))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| bad(format!("TLS setup: {e}")))
        };
        let tls = match config.security {
            SmtpSecurity::Tls => Tls::Wrapper(tls_params()?),
            SmtpSecurity::Starttls => Tls::Required(tls_params()?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port())
                .tls(tls)
                .timeout(Some(limit))
                .pool_config(PoolConfig::new().max_size(config.pool_size.max(1)));
        if let Some(hello) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(hello.clone()));
        }
        if let Some(user) = &config.username {
            builder = match config.auth {
                SmtpAuth::Password => {
                    let password = config.password.clone().ok_or_else(|| {
                        bad("smtp.password is required with smtp.username".into())
                    })?;
                    builder
                        .credentials(Credentials::new(user.clone(), password))
                        .authentication(vec![Mechanism::Plain, Mechanism::Login])
                }
                SmtpAuth::Xoauth2 => {
                    let token =
                        match (&config.oauth_token, &config.oauth_token_command) {
                            (_, Some(cmd)) => token_from_command(cmd, limit).await?,
                            (Some(t), None) => t.clone(),
                            (None, None) => return Err(bad(
                                "smtp.auth = \"xoauth2\" needs oauth_token or oauth_token_command"
                                    .into(),
                            )),
                        };
                    builder
                        .credentials(Credentials::new(user.clone(), token))
                        .authentication(vec![Mechanism::Xoauth2])
                }
            };
        }
        Ok(SmtpSender {
            transport: builder.build(),
        })
    }

    /// Sends raw RFC 5322 bytes with an explicit envelope.
    pub async fn send_raw(
        &self,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<SmtpReceipt, SmtpError> {
        let response = self
            .transport
            .send_raw(envelope, raw)
            .await
            .map_err(|e| SmtpError::from_lettre(&e))?;
        Ok(SmtpReceipt {
            code: response.code().to_string().parse().unwrap_or(250),
            message: response.message().collect::<Vec<_>>().join(" "),
        })
    }

    /// Sends a built message to the recipients of its headers (To, Cc, Bcc).
    pub async fn send(&self, message: &Message) -> Result<SmtpReceipt, SmtpError> {
        self.send_raw(message.envelope(), &message.formatted())
            .await
    }

    /// Connects and says EHLO (and authenticates): the channel's health check.
    pub async fn test_connection(&self) -> Result<(), SmtpError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SmtpError::Transient {
                code: None,
                message: "server did not answer NOOP".into(),
            }),
            Err(e) => Err(SmtpError::from_lettre(&e)),
        }
    }

    /// Closes the pooled connections.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}

/// An envelope from a sender and recipients (addresses only).
pub fn envelope(from: &str, to: &[&str]) -> Result<Envelope, SmtpError> {
    let parse = |a: &str| {
        a.parse()
            .map_err(|e| SmtpError::Build(format!("address {a:?}: {e}")))
    };
    let rcpts = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(from)?), rcpts).map_err(|e| SmtpError::Build(e.to_string()))
}

mod reply;
pub use reply::{
    BuiltMessage, OutgoingAttachment, ReplyDraft, build_reply, new_message_id, reply_address,
    reply_subject,
};
