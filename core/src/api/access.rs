//! What the API enforces around its callers, from configuration: the browser origins CORS
//! allows (`server.cors_allowed_origins`), the rate limits per role (`[api.rate_limits]`),
//! which conversations each tenant's agents see (`agent_visibility`), and the cache that
//! keeps recording staff sightings cheap.

use super::AppState;
use super::auth::Caller;
use super::cors::CorsPolicy;
use super::rate_limit::RateLimiter;
use crate::infra::config::{AgentVisibility, Config};
use crate::store::StaffSighting;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The access rules of one process. `Default`: no CORS, no limits, agents see everything.
#[derive(Debug, Default)]
pub struct Access {
    /// None: no CORS headers at all.
    pub cors: Option<Arc<CorsPolicy>>,
    pub limits: RateLimiter,
    pub seen: SeenCache,
    /// Tenants whose agents see only their own and unassigned conversations.
    visibility: HashMap<String, AgentVisibility>,
}

impl Access {
    pub fn from_config(config: &Config) -> Self {
        Self {
            cors: CorsPolicy::new(&config.server.cors_allowed_origins).map(Arc::new),
            limits: RateLimiter::new(config.api.rate_limits),
            seen: SeenCache::default(),
            visibility: config
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.agent_visibility))
                .collect(),
        }
    }

    /// The visibility that applies to `caller`: admins see all.
    pub fn visibility(&self, caller: &Caller) -> AgentVisibility {
        if caller.is_admin() {
            return AgentVisibility::All;
        }
        self.visibility
            .get(&caller.tenant)
            .copied()
            .unwrap_or_default()
    }

    /// The staff identity whose conversations (and unassigned ones) `caller` is limited to;
    /// None when it sees all of its tenant's.
    pub fn restricted_to<'a>(&self, caller: &'a Caller) -> Option<&'a str> {
        match self.visibility(caller) {
            AgentVisibility::All => None,
            AgentVisibility::Assigned => Some(&caller.subject),
        }
    }
}

/// How long a recorded sighting is not written again.
const SEEN_TTL: Duration = Duration::from_secs(300);
/// Past this many entries the cache drops the expired ones, and past twice as many all.
const SEEN_SWEEP: usize = 4096;

/// Which identities were recorded in the staff directory lately, so an authenticated
/// request costs a database write at most once per [`SEEN_TTL`] per identity (or when its
/// credential kind or role changes).
#[derive(Debug, Default)]
pub struct SeenCache {
    recent: Mutex<HashMap<(String, String), (Instant, StaffSighting)>>,
}

impl SeenCache {
    fn recent(&self) -> MutexGuard<'_, HashMap<(String, String), (Instant, StaffSighting)>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `sighting` is due to be written at `now`; if so it counts as written.
    fn due(&self, tenant: &str, sighting: &StaffSighting, now: Instant) -> bool {
        let mut recent = self.recent();
        let key = (tenant.to_string(), sighting.id.clone());
        if let Some((at, last)) = recent.get(&key)
            && now.saturating_duration_since(*at) < SEEN_TTL
            && last == sighting
        {
            return false;
        }
        if recent.len() >= SEEN_SWEEP {
            recent.retain(|_, (at, _)| now.saturating_duration_since(*at) < SEEN_TTL);
            if recent.len() >= SEEN_SWEEP * 2 {
                recent.clear();
            }
        }
        recent.insert(key, (now, sighting.clone()));
        true
    }

    /// Forgets an identity, so its next request records it again (after it was deleted
    /// from the directory).
    pub fn forget(&self, tenant: &str, id: &str) {
        self.recent().remove(&(tenant.to_string(), id.to_string()));
    }

    /// Records `caller` in its tenant's staff directory unless that was done lately. A
    /// failed write is logged and does not fail the request; it is tried again after the
    /// TTL (not at every request, which would put a failing write on each of them).
    pub async fn record(&self, state: &AppState, caller: &Caller) {
        let sighting = StaffSighting {
            id: caller.subject.clone(),
            auth_kind: caller.credential.kind(),
            role: caller.role,
        };
        if !self.due(&caller.tenant, &sighting, Instant::now()) {
            return;
        }
        if let Err(e) = state
            .store
            .record_staff_seen(&caller.tenant, &sighting)
            .await
        {
            tracing::warn!(error = %e, tenant = %caller.tenant, "recording a staff sighting failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn sighting(id: &str, role: Role) -> StaffSighting {
        StaffSighting {
            id: id.into(),
            auth_kind: "token",
            role,
        }
    }

    #[test]
    fn a_sighting_is_written_once_per_ttl_or_when_it_changes() {
        let cache = SeenCache::default();
        let t0 = Instant::now();
        let alice = sighting("alice", Role::Agent);
        assert!(cache.due("acme", &alice, t0));
        assert!(!cache.due("acme", &alice, t0 + Duration::from_secs(10)));
        assert!(cache.due("globex", &alice, t0));
        assert!(cache.due("acme", &sighting("alice", Role::Admin), t0));
        assert!(cache.due("acme", &alice, t0 + SEEN_TTL + Duration::from_secs(1)));
        cache.forget("acme", "alice");
        assert!(cache.due("acme", &alice, t0 + SEEN_TTL + Duration::from_secs(2)));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = SeenCache::default();
        let t0 = Instant::now();
        for i in 0..SEEN_SWEEP * 3 {
            cache.due("acme", &sighting(&i.to_string(), Role::Agent), t0);
        }
        assert!(cache.recent().len() <= SEEN_SWEEP * 2);
    }
}
