//! Opening an authenticated IMAP session: TCP, then implicit TLS or a manual `STARTTLS`
//! (rustls with the ring provider, web PKI roots plus an optional extra CA file), the
//! server greeting (async-imap's `Client::new` does not read it), then LOGIN,
//! AUTHENTICATE PLAIN or AUTHENTICATE XOAUTH2.

use super::config::{AuthMethod, ImapConfig, Security};
use super::error::ImapError;
use async_imap::imap_proto::{Response, Status};
use async_imap::{Authenticator, Client, Session};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The byte stream under an IMAP session: plain TCP or TLS over TCP.
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for ImapStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImapStream::Plain(_) => f.write_str("ImapStream::Plain"),
            ImapStream::Tls(_) => f.write_str("ImapStream::Tls"),
        }
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An authenticated async-imap session over our stream.
pub type ImapSession = Session<ImapStream>;

/// Runs `fut` with a timeout, mapping expiry to a transient error.
pub(crate) async fn timed<T, F>(limit: Duration, what: &'static str, fut: F) -> Result<T, ImapError>
where
    F: Future<Output = Result<T, ImapError>>,
{
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| ImapError::Timeout(what))?
}

/// The rustls client configuration: ring provider, web PKI roots, plus `ca_file` if set.
pub fn tls_config(config: &ImapConfig) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ImapError::Config(format!("imap.ca_file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert
                .map_err(|e| ImapError::Config(format!("imap.ca_file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ImapError::Config(format!("imap.ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

async fn handshake(config: &ImapConfig, tcp: TcpStream) -> Result<ImapStream, ImapError> {
    let name = config
        .tls_server_name
        .as_deref()
        .unwrap_or(&config.host)
        .to_owned();
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| ImapError::Config(format!("invalid TLS server name {name:?}: {e}")))?;
    let connector = TlsConnector::from(tls_config(config)?);
    let tls = timed(config.timeout(), "during the TLS handshake", async {
        connector.connect(server_name, tcp).await.map_err(|source| {
            // A certificate that does not verify will not verify on retry either.
            if source.kind() == io::ErrorKind::InvalidData {
                ImapError::Tls {
                    host: name.clone(),
                    source,
                }
            } else {
                ImapError::Io(source)
            }
        })
    })
    .await?;
    Ok(ImapStream::Tls(Box::new(tls)))
}

/// Reads the server greeting: `* OK` (or Dovecot's interim "waiting for authentication"
/// `* OK` first; a later one is harmless), `* BYE` is a transient refusal.
async fn read_greeting<T>(client: &mut Client<T>, limit: Duration) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + fmt::Debug + Send,
{
    let greeting = timed(limit, "waiting for the server greeting", async {
        client.read_response().await.map_err(ImapError::Io)
    })
    .await?
    .ok_or(ImapError::ConnectionLost)?;
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Bye(
            outcome
                .information
                .as_deref()
                .unwrap_or("greeting")
                .to_owned(),
        )),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ImapError::Unsupported(
            "a PREAUTH session (no login)".into(),
        )),
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting: {other:?}"
        ))),
    }
}

/// Connects and authenticates as `config` says.
pub async fn connect(config: &ImapConfig) -> Result<ImapSession, ImapError> {
    config.validate()?;
    let addr = format!("{}:{}", config.host, config.port());
    let tcp = timed(config.timeout(), "connecting", async {
        TcpStream::connect((config.host.as_str(), config.port()))
            .await
            .map_err(|source| ImapError::Connect {
                addr: addr.clone(),
                source,
            })
    })
    .await?;
    // Small requests and responses: do not wait to coalesce them.
    let _ = tcp.set_nodelay(true);
    let client = match config.security {
        Security::Tls => {
            let mut client = Client::new(handshake(config, tcp).await?);
            read_greeting(&mut client, config.timeout()).await?;
            client
        }
        Security::Plain => {
            let mut client = Client::new(ImapStream::Plain(tcp));
            read_greeting(&mut client, config.timeout()).await?;
            client
        }
        Security::Starttls => {
            let mut plain = Client::new(tcp);
            read_greeting(&mut plain, config.timeout()).await?;
            timed(config.timeout(), "waiting for STARTTLS", async {
                plain
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| match e {
                        async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
                            ImapError::Unsupported(format!("STARTTLS ({m})"))
                        }
                        other => ImapError::from_imap("STARTTLS", other),
                    })
            })
            .await?;
            // Nothing follows the tagged OK until the handshake, so no buffered bytes are lost.
            Client::new(handshake(config, plain.into_inner()).await?)
        }
    };
    authenticate(config, client).await
}

struct PlainAuth<'a> {
    user: &'a str,
    password: &'a str,
}

impl Authenticator for &PlainAuth<'_> {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("\0{}\0{}", self.user, self.password)
    }
}

/// XOAUTH2: the first answer carries the token; on failure the server sends an error
/// challenge which must be answered with an empty line before the tagged `NO`.
struct XOAuth2 {
    user: String,
    token: String,
    sent: bool,
}

impl Authenticator for &mut XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        if self.sent {
            return String::new();
        }
        self.sent = true;
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// The XOAUTH2 bearer token: from the config, or the trimmed stdout of the command.
pub async fn bearer_token(config: &ImapConfig) -> Result<String, ImapError> {
    if let Some(cmd) = &config.oauth_token_command {
        let out = timed(config.timeout(), "running oauth_token_command", async {
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| ImapError::TokenCommand(format!("cannot run: {e}")))
        })
        .await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(ImapError::TokenCommand(format!(
                "{}: {}",
                out.status,
                err.trim()
            )));
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if token.is_empty() {
            return Err(ImapError::TokenCommand("empty output".into()));
        }
        return Ok(token);
    }
    config
        .oauth_token
        .clone()
        .ok_or_else(|| ImapError::Config("no bearer token configured".into()))
}

async fn authenticate(
    config: &ImapConfig,
    client: Client<ImapStream>,
) -> Result<ImapSession, ImapError> {
    let limit = config.timeout();
    let password = config.password.as_deref().unwrap_or_default();
    let result = match config.auth {
        AuthMethod::Login => {
            timed(limit, "logging in", async {
                Ok(client.login(&config.username, password).await)
            })
            .await?
        }
        AuthMethod::Plain => {
            let auth = PlainAuth {
                user: &config.username,
                password,
            };
            timed(limit, "authenticating", async {
                Ok(client.authenticate("PLAIN", &auth).await)
            })
            .await?
        }
        AuthMethod::Xoauth2 => {
            let mut auth = XOAuth2 {
                user: config.username.clone(),
                token: bearer_token(config).await?,
                sent: false,
            };
            timed(limit, "authenticating", async {
                Ok(client.authenticate("XOAUTH2", &mut auth).await)
            })
            .await?
        }
    };
    // A failed login hands the client back; we drop it and report the classified error.
    result.map_err(|(e, _client)| ImapError::from_auth(e))
}
