//! Media a browser loads without headers: the signed URLs message views hand out, and the
//! access check of the routes that accept them (attachments, HTML bodies).
//!
//! A signed URL is the route's path plus `tenant`, `expires` (Unix seconds) and `sig`
//! (HMAC-SHA256 by [`crate::infra::signed_url::UrlSigner`] over the tenant, the resource and
//! the expiry). Such a route answers a request carrying these three parameters with a valid,
//! unexpired signature, and otherwise a bearer token as every route does. A wrong or
//! incomplete signature is 403 `invalid_signature`, an expired one 403 `signature_expired`.
//!
//! URLs are paths on the API's own origin (`/api/v1/...`), as email HTML has always named
//! its inline images (`contract::connector::attachment_path`); the HTML a view shows has
//! those paths signed, for its own message's attachments only.

use super::AppState;
use super::auth::{Caller, bearer_token};
use super::error::ApiError;
use crate::contract::connector::attachment_path;
use crate::domain::model::Millis;
use crate::infra::signed_url::{Resource, SignatureError, UrlSigner};
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;

/// Signs the media URLs of the views of one response: one tenant, one expiry.
#[derive(Debug, Clone, Copy)]
pub struct MediaUrls<'a> {
    signer: &'a UrlSigner,
    tenant: &'a str,
    expires: i64,
}

impl<'a> MediaUrls<'a> {
    /// URLs for `tenant`, expiring as the signer decides from now.
    pub fn new(signer: &'a UrlSigner, tenant: &'a str) -> Self {
        Self::at(signer, tenant, now_secs())
    }

    /// URLs for `tenant` signed at `now` (Unix seconds).
    pub fn at(signer: &'a UrlSigner, tenant: &'a str, now: i64) -> Self {
        Self {
            signer,
            tenant,
            expires: signer.expiry(now),
        }
    }

    /// When these URLs stop working.
    pub fn expires_at(&self) -> Millis {
        self.expires.saturating_mul(1000)
    }

    /// The signed URL of an attachment's bytes.
    pub fn attachment(&self, id: &str) -> String {
        self.signed(&attachment_path(id), Resource::Attachment(id))
    }

    /// The signed URL of a message's HTML body page.
    pub fn message_html(&self, id: &str) -> String {
        self.signed(&message_html_path(id), Resource::MessageHtml(id))
    }

    /// `html` with every reference to one of `attachment_ids` (as the attribute value
    /// `"/api/v1/attachments/{id}"`, how stored email HTML points at its inline parts)
    /// replaced by that attachment's signed URL, escaped for an attribute.
    pub fn sign_html<'i>(
        &self,
        html: &str,
        attachment_ids: impl Iterator<Item = &'i str>,
    ) -> String {
        let mut out = html.to_string();
        for id in attachment_ids {
            let quoted = format!("\"{}\"", attachment_path(id));
            if out.contains(&quoted) {
                let signed = format!("\"{}\"", self.attachment(id).replace('&', "&amp;"));
                out = out.replace(&quoted, &signed);
            }
        }
        out
    }

    fn signed(&self, path: &str, resource: Resource<'_>) -> String {
        let sig = self.signer.sign(self.tenant, resource, self.expires);
        let tenant: String = url::form_urlencoded::byte_serialize(self.tenant.as_bytes()).collect();
        format!("{path}?tenant={tenant}&expires={}&sig={sig}", self.expires)
    }
}

/// Where the API serves a message's HTML body as a page.
pub fn message_html_path(message_id: &str) -> String {
    format!("/api/v1/messages/{message_id}/html")
}

/// The query of a signed URL (`sig` is the `signedUrl` security scheme of the document).
/// All three or none; any other parameter is a 400.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedParams {
    /// Signed URLs only: the tenant the URL was signed for.
    #[param(nullable = false, example = "acme")]
    tenant: Option<String>,
    /// Signed URLs only: when the URL expires (Unix seconds).
    #[param(value_type = Option<i64>, nullable = false, example = 1_777_777_200)]
    expires: Option<String>,
    /// The signature: documented as the `signedUrl` security scheme, not as a parameter.
    #[param(ignore)]
    sig: Option<String>,
}

/// Who may see the resource, and how they showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Access {
    pub tenant: String,
    /// The signed URL's expiry (Unix seconds); `None` for a bearer token.
    pub expires: Option<i64>,
    /// The bearer token's caller, whose visibility still applies; `None` for a signed URL
    /// (it was signed for a view its caller could see).
    pub caller: Option<Caller>,
}

impl Access {
    /// `Cache-Control` for what this access shows: private, for as long as the signed URL
    /// lives (a bearer caller: the lifetime of a signed URL).
    pub fn cache_control(&self, signer: &UrlSigner) -> HeaderValue {
        let max_age = match self.expires {
            Some(expires) => expires.saturating_sub(now_secs()).max(0),
            None => signer.ttl_secs(),
        };
        HeaderValue::from_str(&format!("private, max-age={max_age}"))
            .unwrap_or(HeaderValue::from_static("private, no-cache"))
    }
}

/// Checks a request for `resource`: its signed URL when it has one, its bearer token
/// otherwise.
pub(super) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    params: SignedParams,
    resource: Resource<'_>,
) -> Result<Access, ApiError> {
    let (tenant, expires, sig) = match (params.tenant, params.expires, params.sig) {
        (None, None, None) => {
            let caller = Caller::from_token(state, bearer_token(headers)?).await?;
            return Ok(Access {
                tenant: caller.tenant.clone(),
                expires: None,
                caller: Some(caller),
            });
        }
        (Some(t), Some(e), Some(s)) => (t, e, s),
        _ => {
            return Err(ApiError::InvalidSignature(
                "a signed URL needs tenant, expires and sig",
            ));
        }
    };
    let expires: i64 = expires
        .parse()
        .map_err(|_| ApiError::InvalidSignature("expires is not a Unix time"))?;
    state
        .urls
        .verify(&tenant, resource, expires, &sig, now_secs())
        .map_err(|e| match e {
            SignatureError::Invalid => {
                ApiError::InvalidSignature("the URL's signature is not valid")
            }
            SignatureError::Expired => ApiError::SignatureExpired,
        })?;
    Ok(Access {
        tenant,
        expires: Some(expires),
        caller: None,
    })
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it) or is `*`.
pub(super) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn urls_carry_tenant_expiry_and_a_valid_signature() {
        let signer = UrlSigner::new(&[1u8; 32], 3600);
        let urls = MediaUrls::at(&signer, "acme corp", NOW);
        let url = urls.attachment("a1");
        let (path, query) = url.split_once('?').expect("query");
        assert_eq!(path, "/api/v1/attachments/a1");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs[0], ("tenant".into(), "acme corp".into()));
        let expires: i64 = pairs[1].1.parse().expect("expires");
        assert_eq!(expires * 1000, urls.expires_at());
        let r = Resource::Attachment("a1");
        assert_eq!(
            signer.verify("acme corp", r, expires, &pairs[2].1, NOW),
            Ok(())
        );
        assert!(
            urls.message_html("m1")
                .starts_with("/api/v1/messages/m1/html?tenant=")
        );
    }

    #[test]
    fn html_gets_signed_urls_for_its_own_attachments_only() {
        let signer = UrlSigner::new(&[1u8; 32], 3600);
        let urls = MediaUrls::at(&signer, "acme", NOW);
        let html = r#"<p><img src="/api/v1/attachments/a1"> <img src="/api/v1/attachments/a10"><img src="/api/v1/attachments/other"></p>"#;
        let signed = urls.sign_html(html, ["a1", "a10"].into_iter());
        let a1 = urls.attachment("a1").replace('&', "&amp;");
        let a10 = urls.attachment("a10").replace('&', "&amp;");
        assert_eq!(
            signed,
            format!(
                r#"<p><img src="{a1}"> <img src="{a10}"><img src="/api/v1/attachments/other"></p>"#
            )
        );
        assert!(a1.contains("&amp;expires="), "{a1}");
    }

    #[test]
    fn if_none_match_lists_are_compared_weakly() {
        let mut headers = HeaderMap::new();
        assert!(!not_modified(&headers, "\"abc\""));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(not_modified(&headers, "\"abc\""));
        assert!(!not_modified(&headers, "\"ab\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&headers, "\"anything\""));
    }
}
