//! Logging setup: human-readable or JSON lines, filtered by `RUST_LOG`.
//!
//! Two guarantees hold for every line at every level, libraries' included:
//! - secrets in query strings (`access_token=`, `token=`, `password=`, ...) are replaced by
//!   `[redacted]` before the line is written (browsers' live streams put the API token in
//!   the URL, and the request span logs the URL at debug);
//! - logging never blocks or panics: lines go through a bounded queue to a writer thread
//!   that drops them when the queue is full or stderr is gone (a closed pipe), so a dead
//!   `| tee` cannot stall or kill the task that handles SIGTERM.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use switchboard_core::infra::config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread; beyond this they are dropped, not waited for.
const QUEUE_LINES: usize = 8192;

/// The filter when `RUST_LOG` is unset: Switchboard's own crates at INFO, every library at
/// ERROR. Libraries warn about what is ordinary for a mail daemon (html5ever prints
/// "foster parenting not implemented" for everyday messy HTML mail: 1,686 lines syncing a
/// 6,000-message mailbox), so their warnings stay below the default output and are there
/// when asked for (`RUST_LOG=warn`). A directive's target matches as a prefix, so
/// `switchboard` covers the binary and every `switchboard_*` crate, all modules included.
const DEFAULT_FILTER: &str = "error,switchboard=info";

/// Installs the subscriber. Keep the guard until exit: dropping it waits (briefly) for the
/// queued lines to be written.
pub fn init(format: LogFormat) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let writer = QueueWriter::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        // tracing-subscriber reports a failed write with eprintln!, which panics when
        // stderr is a closed pipe; a lost log line is not worth a panic.
        .log_internal_errors(false)
        // Colours only for a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(writer)
}

/// Flushes the log queue when dropped (see [`init`]).
pub struct LogGuard(QueueWriter);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (ack, done) = sync_channel(1);
        if self.0.queue.try_send(Item::Flush(ack)).is_ok() {
            // Bounded: a stderr nobody reads must not hold the exit.
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// What the writer thread receives.
enum Item {
    Line(Vec<u8>),
    /// Answered once every line queued before it was written (or dropped).
    Flush(SyncSender<()>),
}

/// Hands formatted lines to a writer thread without ever waiting for it.
#[derive(Clone)]
struct QueueWriter {
    queue: SyncSender<Item>,
}

impl QueueWriter {
    fn stderr() -> Self {
        let (queue, lines) = sync_channel(QUEUE_LINES);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(lines, std::io::stderr()));
        // Without the thread the receiver is gone and every line is dropped: still no block.
        drop(spawned);
        Self { queue }
    }
}

/// Writes queued lines until every sender is gone; after a failed write (the reader of
/// stderr went away) it keeps draining so senders never see a full queue for that reason.
fn write_lines(lines: Receiver<Item>, mut out: impl Write) {
    let mut broken = false;
    for item in lines {
        match item {
            Item::Line(line) if !broken => {
                broken = out.write_all(&line).and_then(|()| out.flush()).is_err();
            }
            Item::Line(_) => {}
            Item::Flush(ack) => {
                let _ = ack.try_send(());
            }
        }
    }
}

/// One event's bytes, sent as a whole when the formatter is done with it.
struct LineBuffer {
    queue: SyncSender<Item>,
    buf: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = redact(&String::from_utf8_lossy(&self.buf)).into_bytes();
        // Full or disconnected: the line is dropped rather than waited for.
        let _ = self.queue.try_send(Item::Line(line));
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer {
            queue: self.queue.clone(),
            buf: Vec::new(),
        }
    }
}

/// Whether a query parameter's name marks its value as a secret.
fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("token")
        || name.ends_with("secret")
        || name.ends_with("password")
        || name.ends_with("passwd")
        || matches!(name.as_str(), "key" | "api_key" | "apikey" | "signature")
}

/// `text` with the value of every secret `name=value` pair replaced by `[redacted]`. A
/// name is the run of `[A-Za-z0-9_.-]` before `=`; a value runs to `&`, whitespace, a quote
/// or the end, which covers URLs in text and JSON lines alike.
fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        // Name bytes are ASCII, so the start found byte by byte is a char boundary.
        let mut name_start = i;
        while name_start > 0
            && (bytes[name_start - 1].is_ascii_alphanumeric()
                || matches!(bytes[name_start - 1], b'_' | b'.' | b'-'))
        {
            name_start -= 1;
        }
        let value_end = text[i + 1..]
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == '\\' || c.is_whitespace())
            .map_or(bytes.len(), |p| i + 1 + p);
        if name_start < i && value_end > i + 1 && secret_name(&text[name_start..i]) {
            out.push_str(&text[copied..=i]);
            out.push_str("[redacted]");
            copied = value_end;
            i = value_end;
        } else {
            // Not a secret: its value may itself hold `name=value` pairs (`uri=/x?token=`).
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_FILTER;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::MakeWriter;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The lines the default filter lets through, for events emitted under it.
    fn logged_with_default_filter(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(DEFAULT_FILTER))
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn query_secrets_are_redacted() {
        use super::redact;
        assert_eq!(
            redact("uri=/api/v1/events?access_token=sb_abc123&since=4 version=HTTP/1.1"),
            "uri=/api/v1/events?access_token=[redacted]&since=4 version=HTTP/1.1"
        );
        assert_eq!(
            redact(r#"{"uri":"/x?since=1&token=eyJ.a.b","hub.verify_token=v"}"#),
            r#"{"uri":"/x?since=1&token=[redacted]","hub.verify_token=[redacted]"}"#
        );
        assert_eq!(
            redact("a=1 b=2 password=hunter2"),
            "a=1 b=2 password=[redacted]"
        );
        assert_eq!(redact("nothing here"), "nothing here");
        assert_eq!(redact("token= x"), "token= x");
        assert_eq!(redact("é=1 ü token=ä"), "é=1 ü token=[redacted]");
    }

    #[test]
    fn a_dead_stderr_neither_blocks_nor_panics() {
        struct Broken;
        impl std::io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let writer = std::thread::spawn(move || super::write_lines(rx, Broken));
        for _ in 0..100 {
            // try_send never waits; after the first failure the thread keeps draining.
            let _ = tx.try_send(super::Item::Line(b"line\n".to_vec()));
        }
        drop(tx);
        writer.join().expect("no panic");
    }

    #[test]
    fn library_warnings_stay_below_the_default_output() {
        let out = logged_with_default_filter(|| {
            // The target html5ever's `log` records carry once bridged into tracing.
            tracing::warn!(target: "html5ever::tree_builder", "foster parenting not implemented");
            tracing::warn!(target: "sqlx::query", "slow statement");
            tracing::info!(target: "hyper::proto", "connection closed");
            tracing::error!(target: "rustls::conn", "library error");
        });
        assert!(!out.contains("foster parenting"), "{out}");
        assert!(!out.contains("slow statement"), "{out}");
        assert!(!out.contains("connection closed"), "{out}");
        assert!(out.contains("library error"), "{out}");
    }

    #[test]
    fn switchboard_crates_log_at_info_by_default() {
        let out = logged_with_default_filter(|| {
            tracing::info!(target: "switchboard::serve", "binary info");
            tracing::info!(target: "switchboard_core::workers::outbox", "core info");
            tracing::info!(target: "switchboard_email::sync::run", "email info");
            tracing::warn!(target: "switchboard_twilio::client", "twilio warn");
            tracing::debug!(target: "switchboard_core::contract::ingest", "core debug");
        });
        for line in ["binary info", "core info", "email info", "twilio warn"] {
            assert!(out.contains(line), "{line} missing from: {out}");
        }
        assert!(!out.contains("core debug"), "{out}");
    }
}
