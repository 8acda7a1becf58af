//! Bearer authentication: `Authorization: Bearer <token>` → sha256 → the token row.
//!
//! The resulting [`Caller`] carries the tenant every store call is scoped by, the subject
//! (the token's name) that authors replies and reads conversations, and the role that
//! decides admin-only actions. Missing, malformed, unknown and revoked tokens are all 401;
//! the message does not say which of the last two it was. When JWTs are configured, a
//! token of the JWT shape is verified as one instead (see [`crate::infra::auth::jwt`]); its tenant
//! must be a configured tenant.
//!
//! Once authenticated, a request is counted against the caller's rate limit (429 past it,
//! see [`super::rate_limit`]) and the caller is recorded in its tenant's staff directory (at
//! most once per few minutes per identity, see [`super::access::SeenCache`]).

use super::AppState;
use super::error::ApiError;
use super::rate_limit::RateSlot;
use crate::infra::auth::jwt::JwtVerifier;
use crate::infra::auth::tokens;
use crate::store::Role;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::time::Instant;

/// Longest token accepted before it is even hashed or parsed. Real JWTs reach well past
/// 512 bytes (an RS256 token of a 4096-bit key, identity-provider tokens with group claims),
/// so the cap is 8 KiB: room for those, yet a bound on the work an anonymous caller causes.
const MAX_TOKEN_LEN: usize = 8192;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub subject: String,
    pub role: Role,
    pub credential: Credential,
}

/// What the caller authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token, by its id.
    Token { id: String },
    /// A JWT (its identity is the tenant and subject).
    Jwt,
}

impl Credential {
    /// `token` or `jwt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::Jwt => "jwt",
        }
    }
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs the admin role".into(),
            ))
        }
    }
}

impl Caller {
    /// Authenticates a bearer token: a JWT when JWTs are configured and the token has the
    /// JWT shape, an API token otherwise.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        if let Some(jwt) = &state.jwt
            && JwtVerifier::looks_like_jwt(token)
        {
            let id = jwt.verify(token).map_err(|e| {
                tracing::debug!(error = %e, "JWT refused");
                ApiError::Unauthorized("invalid or expired token")
            })?;
            if !state.tenants.contains(&id.tenant) {
                tracing::debug!(tenant = %id.tenant, "JWT for an unknown tenant");
                return Err(ApiError::Unauthorized("invalid or expired token"));
            }
            return Ok(Self {
                tenant: id.tenant,
                subject: id.subject,
                role: id.role,
                credential: Credential::Jwt,
            });
        }
        let record = state
            .store
            .find_token(&tokens::hash(token))
            .await?
            .ok_or(ApiError::Unauthorized("invalid or revoked token"))?;
        Ok(Self {
            tenant: record.tenant_id,
            subject: record.name,
            role: record.role,
            credential: Credential::Token { id: record.id },
        })
    }

    /// What follows authentication: the request counts against the caller's rate limit
    /// (429 past it; the state is left in the request's [`RateSlot`] for the response
    /// headers), and the caller is recorded in the staff directory.
    async fn admit(self, state: &AppState, parts: &Parts) -> Result<Self, ApiError> {
        if let Some(rate) = state.access.limits.check(&self, Instant::now()) {
            if let Some(slot) = parts.extensions.get::<RateSlot>() {
                slot.set(rate.clone());
            }
            if rate.retry_after_secs.is_some() {
                return Err(ApiError::RateLimited(rate));
            }
        }
        state.access.seen.record(state, &self).await;
        Ok(self)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        Self::from_token(state, token)
            .await?
            .admit(state, parts)
            .await
    }
}

/// The caller of a live-event stream. Browsers' `EventSource` and `WebSocket` cannot set an
/// `Authorization` header, so these two endpoints also take the token as `access_token` in
/// the query string (use TLS; the token is then in the URL). The token is kept so a
/// long-lived stream can check it again ([`StreamCaller::still_valid`]).
pub struct StreamCaller(pub Caller, pub StreamCredential);

/// The token a live stream was opened with. Not `Debug`: it is a secret.
#[derive(Clone)]
pub struct StreamCredential(String);

impl StreamCredential {
    /// Whether the token still authenticates as `caller`: not revoked, not expired (a JWT's
    /// `exp`), same tenant and subject.
    pub async fn still_valid(&self, state: &AppState, caller: &Caller) -> bool {
        matches!(Caller::from_token(state, &self.0).await, Ok(c) if c == *caller)
    }
}

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let token = bearer_token(&parts.headers)?;
            let caller = Caller::from_token(state, token)
                .await?
                .admit(state, parts)
                .await?;
            return Ok(Self(caller, StreamCredential(token.to_string())));
        }
        let token = parts
            .uri
            .query()
            .and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(ApiError::Unauthorized("malformed access_token"));
        }
        let caller = Caller::from_token(state, &token)
            .await?
            .admit(state, parts)
            .await?;
        Ok(Self(caller, StreamCredential(token)))
    }
}

/// The token of the one `Authorization: Bearer` header (scheme case-insensitive).
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    if values.next().is_some() {
        return Err(ApiError::Unauthorized("more than one Authorization header"));
    }
    let malformed =
        ApiError::Unauthorized("malformed Authorization header: expected `Bearer <token>`");
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return Err(malformed);
    };
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(v).expect("header"),
            );
        }
        h
    }

    #[test]
    fn parses_bearer_tokens_strictly() {
        assert_eq!(
            bearer_token(&headers(&["Bearer sb_abc"])).ok(),
            Some("sb_abc")
        );
        assert_eq!(
            bearer_token(&headers(&["bearer  sb_abc "])).ok(),
            Some("sb_abc")
        );
        assert!(bearer_token(&headers(&[])).is_err());
        assert!(bearer_token(&headers(&["Basic dXNlcjpwdw=="])).is_err());
        assert!(bearer_token(&headers(&["Bearer"])).is_err());
        assert!(bearer_token(&headers(&["Bearer a b"])).is_err());
        assert!(bearer_token(&headers(&["Bearer a", "Bearer b"])).is_err());
    }
}
