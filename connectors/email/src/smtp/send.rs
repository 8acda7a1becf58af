//! The pooled SMTP client: [`SmtpSender`] over lettre (rustls with ring), with
//! authentication, raw and built sends, and the connection check of the health endpoint.

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::time::Duration;

use super::config::{SmtpAuth, SmtpConfig, SmtpSecurity};
use super::error::SmtpError;

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
