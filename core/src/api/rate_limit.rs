//! Rate limits per token: a GCRA (generic cell rate algorithm, a token bucket kept as one
//! timestamp per key) in memory, keyed by the caller's identity (an API token's id, or a
//! JWT's tenant and subject), with the quota of the caller's role.
//!
//! A quota of `q` requests per minute lets up to `q` requests through at once, then one
//! every `60 / q` seconds. A request past it is refused before its handler runs: 429
//! `rate_limited` with `Retry-After`. Every authenticated response of a limited role carries
//! the state in the fields of draft-ietf-httpapi-ratelimit-headers (revision 10):
//! `RateLimit-Policy: "default";q=600;w=60` and `RateLimit: "default";r=599;t=1` (`r`:
//! requests left now, `t`: seconds until the whole quota is back).
//!
//! The [`Caller`](super::Caller) extractor asks the limiter right after authentication and
//! leaves the state in the request's [`RateSlot`]; the [`headers`] middleware copies it onto
//! the response. Memory stays bounded: a key whose bucket is full again is the same as no
//! key, so such keys are swept whenever the table has doubled since the last sweep.

use super::auth::{Caller, Credential};
use crate::infra::config::RateLimitsConfig;
use crate::store::Role;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The window quotas are expressed over.
const WINDOW: Duration = Duration::from_secs(60);
/// The policy's name in the `RateLimit` and `RateLimit-Policy` fields.
const POLICY: &str = "default";
/// Below this many keys the table is never swept.
const MIN_SWEEP: usize = 1024;

pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Whose requests share a quota.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Token(String),
    Jwt { tenant: String, subject: String },
}

impl Key {
    fn of(caller: &Caller) -> Self {
        match &caller.credential {
            Credential::Token { id } => Self::Token(id.clone()),
            Credential::Jwt => Self::Jwt {
                tenant: caller.tenant.clone(),
                subject: caller.subject.clone(),
            },
        }
    }
}

/// A caller's quota after one request: what the response headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateState {
    /// Requests per window.
    pub quota: u32,
    /// Requests that may be made right now.
    pub remaining: u32,
    /// Seconds until the whole quota is available again.
    pub reset_secs: u64,
    /// Set when this request was refused: seconds until one is allowed.
    pub retry_after_secs: Option<u64>,
}

impl RateState {
    /// Sets `RateLimit-Policy`, `RateLimit` and, for a refusal, `Retry-After`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let policy = format!("\"{POLICY}\";q={};w={}", self.quota, WINDOW.as_secs());
        let state = format!("\"{POLICY}\";r={};t={}", self.remaining, self.reset_secs);
        for (name, value) in [(&RATELIMIT_POLICY, policy), (&RATELIMIT, state)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name.clone(), v);
            }
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

/// The per-process limiter.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitsConfig,
    table: Mutex<Table>,
}

/// Each key's theoretical arrival time: when its bucket is full again.
#[derive(Debug, Default)]
struct Table {
    full_at: HashMap<Key, Instant>,
    /// The table's size after the last sweep.
    swept_len: usize,
}

impl Default for RateLimiter {
    /// No limits.
    fn default() -> Self {
        Self::new(RateLimitsConfig {
            agent_per_minute: 0,
            admin_per_minute: 0,
        })
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitsConfig) -> Self {
        Self {
            config,
            table: Mutex::new(Table::default()),
        }
    }

    fn quota(&self, role: Role) -> u32 {
        match role {
            Role::Admin => self.config.admin_per_minute,
            Role::Agent => self.config.agent_per_minute,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request of `caller` at `now`: `None` when its role is unlimited, else the
    /// state, refused when `retry_after_secs` is set.
    pub fn check(&self, caller: &Caller, now: Instant) -> Option<RateState> {
        let quota = self.quota(caller.role);
        if quota == 0 {
            return None;
        }
        let interval = WINDOW / quota;
        let mut table = self.table();
        table.sweep(now);
        let key = Key::of(caller);
        let full_at = table.full_at.get(&key).copied().unwrap_or(now).max(now);
        let next = full_at + interval;
        let allowed_from = next.checked_sub(WINDOW).unwrap_or(now);
        if now < allowed_from {
            return Some(RateState {
                quota,
                remaining: 0,
                reset_secs: ceil_secs(full_at - now),
                retry_after_secs: Some(ceil_secs(allowed_from - now).max(1)),
            });
        }
        table.full_at.insert(key, next);
        let room = WINDOW.saturating_sub(next - now);
        Some(RateState {
            quota,
            remaining: u32::try_from(room.as_nanos() / interval.as_nanos().max(1))
                .unwrap_or(u32::MAX)
                .min(quota),
            reset_secs: ceil_secs(next - now),
            retry_after_secs: None,
        })
    }
}

impl Table {
    /// Drops the keys whose bucket is full again (they mean nothing) once the table has
    /// doubled since the last sweep: amortized constant time, memory bounded by the keys
    /// active within a window.
    fn sweep(&mut self, now: Instant) {
        if self.full_at.len() < MIN_SWEEP.max(self.swept_len * 2) {
            return;
        }
        self.full_at.retain(|_, full_at| *full_at > now);
        self.swept_len = self.full_at.len();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Where the [`Caller`] extractor leaves the caller's [`RateState`] for [`headers`].
#[derive(Debug, Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<RateState>>>);

impl RateSlot {
    pub fn set(&self, state: RateState) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
    }

    fn take(&self) -> Option<RateState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Middleware: gives the request a [`RateSlot`] and writes what the extractor left in it
/// onto the response (a refusal has written its own).
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(state) = slot.take()
        && !response.headers().contains_key(&RATELIMIT)
    {
        state.write_headers(response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(token: &str, role: Role) -> Caller {
        Caller {
            tenant: "acme".into(),
            subject: "alice".into(),
            role,
            credential: Credential::Token { id: token.into() },
        }
    }

    fn limiter(agent: u32, admin: u32) -> RateLimiter {
        RateLimiter::new(RateLimitsConfig {
            agent_per_minute: agent,
            admin_per_minute: admin,
        })
    }

    #[test]
    fn the_quota_comes_at_once_then_refills_evenly() {
        let limiter = limiter(3, 0);
        let alice = caller("t1", Role::Agent);
        let t0 = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check(&alice, t0).expect("limited").remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check(&alice, t0).expect("limited");
        assert_eq!(refused.retry_after_secs, Some(20));
        assert_eq!((refused.remaining, refused.reset_secs), (0, 60));
        // One interval (20 s) later one request passes, and the next is refused again.
        let later = t0 + Duration::from_secs(20);
        let ok = limiter.check(&alice, later).expect("limited");
        assert_eq!((ok.retry_after_secs, ok.remaining), (None, 0));
        assert!(
            limiter
                .check(&alice, later)
                .expect("x")
                .retry_after_secs
                .is_some()
        );
        // Another token and an unlimited role are not affected.
        assert!(
            limiter
                .check(&caller("t2", Role::Agent), t0)
                .expect("x")
                .retry_after_secs
                .is_none()
        );
        assert_eq!(limiter.check(&caller("t3", Role::Admin), t0), None);
    }

    #[test]
    fn jwt_callers_share_a_quota_per_tenant_and_subject() {
        let limiter = limiter(1, 1);
        let jwt = |tenant: &str, subject: &str| Caller {
            tenant: tenant.into(),
            subject: subject.into(),
            role: Role::Agent,
            credential: Credential::Jwt,
        };
        let t0 = Instant::now();
        assert!(
            limiter
                .check(&jwt("acme", "ann"), t0)
                .expect("x")
                .retry_after_secs
                .is_none()
        );
        assert!(
            limiter
                .check(&jwt("acme", "ann"), t0)
                .expect("x")
                .retry_after_secs
                .is_some()
        );
        assert!(
            limiter
                .check(&jwt("globex", "ann"), t0)
                .expect("x")
                .retry_after_secs
                .is_none()
        );
    }

    #[test]
    fn full_buckets_are_swept() {
        let limiter = limiter(60, 0);
        let t0 = Instant::now();
        for i in 0..MIN_SWEEP {
            limiter.check(&caller(&i.to_string(), Role::Agent), t0);
        }
        // A second later every bucket (one request of 60) is full again.
        limiter.check(&caller("late", Role::Agent), t0 + Duration::from_secs(2));
        assert_eq!(limiter.table().full_at.len(), 1);
    }

    #[test]
    fn headers_follow_the_draft() {
        let mut h = HeaderMap::new();
        RateState {
            quota: 600,
            remaining: 0,
            reset_secs: 42,
            retry_after_secs: Some(1),
        }
        .write_headers(&mut h);
        assert_eq!(h["ratelimit-policy"], "\"default\";q=600;w=60");
        assert_eq!(h["ratelimit"], "\"default\";r=0;t=42");
        assert_eq!(h["retry-after"], "1");
    }
}
