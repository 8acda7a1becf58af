//! IMAP errors, each classified as transient (retry later: network, timeouts, `BYE`, a
//! server that is temporarily unavailable) or permanent (fix the configuration first:
//! rejected credentials, a bad certificate, a folder that does not exist).

use std::io;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Permanent,
}

/// Everything that can go wrong talking IMAP.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("invalid IMAP configuration: {0}")]
    Config(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Authentication was refused for a reason that may pass (`[UNAVAILABLE]`, ...).
    #[error("authentication temporarily refused: {0}")]
    AuthUnavailable(String),
    #[error("bearer token command failed: {0}")]
    TokenCommand(String),
    #[error("server does not offer {0}")]
    Unsupported(String),
    #[error("server refused {command}: {message}")]
    No {
        command: String,
        message: String,
        /// The refusal carries a transient response code (RFC 5530).
        transient: bool,
    },
    #[error("server rejected {command} as invalid: {message}")]
    Bad { command: String, message: String },
    #[error("server closed the connection: {0}")]
    Bye(String),
    #[error("connection lost")]
    ConnectionLost,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// RFC 5530 response codes that say "try again later".
const TRANSIENT_CODES: [&str; 6] = [
    "UNAVAILABLE",
    "INUSE",
    "SERVERBUG",
    "LIMIT",
    "OVERQUOTA",
    "EXPUNGEISSUED",
];

fn has_transient_code(message: &str) -> bool {
    let upper = message.to_ascii_uppercase();
    TRANSIENT_CODES.iter().any(|c| upper.contains(c))
}

impl ImapError {
    /// Transient or permanent.
    pub fn class(&self) -> ErrorClass {
        use ImapError::*;
        match self {
            Config(_) | Tls { .. } | Auth(_) | Unsupported(_) | Bad { .. } => ErrorClass::Permanent,
            No { transient, .. } => {
                if *transient {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                }
            }
            Connect { .. }
            | Timeout(_)
            | AuthUnavailable(_)
            | TokenCommand(_)
            | Bye(_)
            | ConnectionLost
            | Io(_)
            | Protocol(_) => ErrorClass::Transient,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.class() == ErrorClass::Permanent
    }

    /// Maps an async-imap error from `command`.
    pub(crate) fn from_imap(command: &str, e: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match e {
            E::Io(io) => {
                let text = io.to_string();
                if text.contains("Bye") || text.contains("BYE") {
                    ImapError::Bye(text)
                } else {
                    ImapError::Io(io)
                }
            }
            E::No(message) => ImapError::No {
                command: command.to_owned(),
                transient: has_transient_code(&message),
                message,
            },
            E::Bad(message) => ImapError::Bad {
                command: command.to_owned(),
                message,
            },
            E::ConnectionLost => ImapError::ConnectionLost,
            E::Validate(v) => ImapError::Config(format!("{command}: {v}")),
            E::Append => ImapError::Protocol(format!("{command}: append refused")),
            other => ImapError::Protocol(format!("{command}: {other}")),
        }
    }

    /// Maps a failed LOGIN/AUTHENTICATE: a `NO` is rejected credentials (permanent) unless
    /// it carries a transient code.
    pub(crate) fn from_auth(e: async_imap::error::Error) -> Self {
        match e {
            async_imap::error::Error::No(message) if has_transient_code(&message) => {
                ImapError::AuthUnavailable(message)
            }
            async_imap::error::Error::No(message) | async_imap::error::Error::Bad(message) => {
                ImapError::Auth(message)
            }
            other => ImapError::from_imap("authentication", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::error::Error as E;

    #[test]
    fn classification() {
        assert!(ImapError::from_auth(E::No("[AUTHENTICATIONFAILED] nope".into())).is_permanent());
        assert!(ImapError::from_auth(E::No("[UNAVAILABLE] later".into())).is_transient());
        assert!(ImapError::from_imap("SELECT", E::No("no such mailbox".into())).is_permanent());
        assert!(ImapError::from_imap("SELECT", E::No("code: Some(InUse)".into())).is_transient());
        assert!(ImapError::from_imap("X", E::ConnectionLost).is_transient());
        assert!(ImapError::from_imap("X", E::Io(io::Error::other("status: Bye"))).is_transient());
        assert!(ImapError::Timeout("reading").is_transient());
        assert!(ImapError::Config("x".into()).is_permanent());
    }
}
