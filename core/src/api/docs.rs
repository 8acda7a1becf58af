//! The API reference page, `GET /api/v1/docs`, and the viewer it runs, all served from the
//! binary: the page works without internet access.
//!
//! The viewer is RapiDoc (MIT), vendored unmodified in `core/assets/rapidoc/` with its
//! license texts (see the README there). The page loads only what this module serves and
//! the document at `/api/v1/openapi.json`, all relative to its own URL (so it works behind a
//! proxy's path prefix), and its `Content-Security-Policy` lets the browser fetch nothing
//! from anywhere else: no script, style, font or image of another origin, no request but to
//! this daemon (RapiDoc's "try it" calls the API on the page's origin).

use super::AppState;
use super::openapi::TAG_SYSTEM;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The vendored viewer (`rapidoc-min.js` of the npm package `rapidoc` 9.3.8).
const VIEWER_JS: &str = include_str!("../../assets/rapidoc/rapidoc-min.js");

/// RapiDoc's license, then those of the libraries bundled in its script.
const VIEWER_LICENSES: &str = concat!(
    include_str!("../../assets/rapidoc/LICENSE.txt"),
    "\n\n",
    include_str!("../../assets/rapidoc/rapidoc-min.js.LICENSE.txt"),
);

/// What the page may load: its own origin only. RapiDoc styles its shadow DOM with inline
/// styles and shows data-URL images; it needs no `eval`.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'self'";

/// The page: RapiDoc pointed at the document, without web fonts (`load-fonts="false"`; the
/// system's fonts instead) and without loading other documents; an empty icon, so the
/// browser asks for no `/favicon.ico`.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Switchboard API reference</title>
  <link rel="icon" href="data:,">
  <script type="module" src="docs/assets/rapidoc-min.js"></script>
</head>
<body>
  <noscript>This page needs JavaScript. The OpenAPI document is at <a href="openapi.json">openapi.json</a>.</noscript>
  <rapi-doc
    spec-url="openapi.json"
    render-style="read"
    show-header="false"
    load-fonts="false"
    regular-font="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
    mono-font="ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"
    allow-spec-url-load="false"
    allow-spec-file-load="false"
    allow-server-selection="false"
    persist-auth="false"
  ></rapi-doc>
</body>
</html>
"#;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs))
        .routes(routes!(viewer_script))
        .routes(routes!(viewer_licenses))
}

/// An interactive API reference (HTML) rendering `/api/v1/openapi.json`.
///
/// Everything it loads comes from this daemon (the viewer is embedded in the binary), and
/// its `Content-Security-Policy` forbids loading anything from elsewhere.
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = TAG_SYSTEM,
    operation_id = "docs",
    security(),
    responses(
        (status = 200, description = "An HTML page that renders this document with RapiDoc, \
            served from `/api/v1/docs/assets/`.", content_type = "text/html", body = String,
            headers(
                ("Content-Security-Policy" = String, description = "Same-origin loads only: `default-src 'none'; script-src 'self'; ...`."),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ),
            example = json!("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Switchboard API reference</title>\n  <script type=\"module\" src=\"docs/assets/rapidoc-min.js\"></script>\n</head>\n<body><rapi-doc spec-url=\"openapi.json\"></rapi-doc></body>\n</html>\n")),
    )
)]
pub(super) async fn docs() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DOCS_PAGE,
    )
}

/// The viewer's script (RapiDoc 9.3.8, MIT), embedded in the binary.
#[utoipa::path(
    get,
    path = "/api/v1/docs/assets/rapidoc-min.js",
    tag = TAG_SYSTEM,
    operation_id = "docsViewerScript",
    security(),
    responses(
        (status = 200, description = "The RapiDoc web component (JavaScript module).",
            content_type = "text/javascript", body = String,
            headers(("X-Content-Type-Options" = String, description = "`nosniff`")),
            example = json!("/*! RapiDoc 9.3.8 | Author - Mrinmoy Majumdar | License information can be found in rapidoc-min.js.LICENSE.txt  */\n(()=>{...})();")),
    )
)]
pub(super) async fn viewer_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        VIEWER_JS,
    )
}

/// The licenses of the viewer: RapiDoc's (MIT) and those of the libraries it bundles.
#[utoipa::path(
    get,
    path = "/api/v1/docs/assets/rapidoc-min.js.LICENSE.txt",
    tag = TAG_SYSTEM,
    operation_id = "docsViewerLicenses",
    security(),
    responses(
        (status = 200, description = "The license texts (plain text).",
            content_type = "text/plain", body = String,
            headers(("X-Content-Type-Options" = String, description = "`nosniff`")),
            example = json!("MIT License\n\nCopyright (c) 2022 Mrinmoy Majumdar\n...")),
    )
)]
pub(super) async fn viewer_licenses() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        VIEWER_LICENSES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_other_origins() {
        for text in [DOCS_PAGE, DOCS_CSP] {
            assert!(!text.contains("http:"), "{text}");
            assert!(!text.contains("https:"), "{text}");
            assert!(!text.contains("//"), "{text}");
        }
        assert!(VIEWER_JS.starts_with("/*! RapiDoc 9.3.8 "));
        assert!(VIEWER_LICENSES.starts_with("MIT License"));
    }
}
