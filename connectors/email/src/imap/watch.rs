//! Near-real-time: keeps an IDLE connection on one folder and wakes a caller-supplied
//! [`Notify`] whenever new mail arrives. It also wakes it after every (re)connection, since
//! mail may have arrived while disconnected. Transient failures reconnect with exponential
//! backoff (with jitter); a permanent one (credentials, missing folder) ends the watch with
//! the error; the `stop` future ends it cleanly.

use super::config::ImapConfig;
use super::error::ImapError;
use super::mailbox::{IdleEvent, Mailbox};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Reconnect timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based): initial × 2ⁿ, capped, with up to 25 % jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
        (base + jitter).min(self.max.max(self.initial))
    }
}

/// What a watch reports along the way (for logs and the channel's sync status).
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// Connected and IDLE-ing on the folder.
    Connected,
    /// A transient failure; reconnecting after `retry_in`.
    Disconnected {
        error: &'a ImapError,
        retry_in: Duration,
    },
}

/// Watches `folder` with IDLE until `stop` completes, calling `notify.notify_one()` on
/// new mail and after each (re)connection. Returns `Ok(())` when stopped, or the first
/// permanent error. `on_event` sees connections and transient failures.
pub async fn watch_folder<S, E>(
    config: &ImapConfig,
    folder: &str,
    notify: Arc<Notify>,
    backoff: Backoff,
    stop: S,
    mut on_event: E,
) -> Result<(), ImapError>
where
    S: Future<Output = ()>,
    E: FnMut(WatchEvent<'_>),
{
    tokio::pin!(stop);
    let refresh = Duration::from_secs(config.idle_refresh_secs.max(1));
    let mut attempt = 0u32;
    loop {
        let session = async {
            let mut mailbox = Mailbox::connect(config).await?;
            mailbox.examine(folder).await?;
            if !mailbox.has_capability("IDLE") {
                return Err(ImapError::Unsupported("IDLE".into()));
            }
            Ok(mailbox)
        };
        let connected = tokio::select! {
            r = session => r,
            () = &mut stop => return Ok(()),
        };
        let error = match connected {
            Ok(mut mailbox) => {
                attempt = 0;
                on_event(WatchEvent::Connected);
                notify.notify_one();
                loop {
                    match mailbox.idle_wait(refresh, &mut stop).await {
                        Ok((m, IdleEvent::Stopped)) => {
                            m.logout().await;
                            return Ok(());
                        }
                        Ok((m, event)) => {
                            if event == IdleEvent::NewMail {
                                notify.notify_one();
                            }
                            mailbox = m;
                        }
                        Err(e) => break e,
                    }
                }
            }
            Err(e) => e,
        };
        if error.is_permanent() {
            return Err(error);
        }
        let retry_in = backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        tracing::warn!(folder, error = %error, retry_in_ms = retry_in.as_millis() as u64, "IMAP IDLE connection lost");
        on_event(WatchEvent::Disconnected {
            error: &error,
            retry_in,
        });
        tokio::select! {
            () = tokio::time::sleep(retry_in) => {}
            () = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert!(
            b.delay(0) >= Duration::from_millis(100) && b.delay(0) <= Duration::from_millis(125)
        );
        assert!(b.delay(3) >= Duration::from_millis(800));
        assert_eq!(b.delay(30), Duration::from_secs(2));
    }
}
