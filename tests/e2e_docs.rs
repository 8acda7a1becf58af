//! The API reference page works offline: the real daemon serves `/api/v1/docs`, the viewer's
//! script and its licenses from the binary, the page names nothing on another origin and its
//! `Content-Security-Policy` forbids loading from one; and headless Chromium, which can reach
//! nothing but loopback, renders the operations from the daemon alone.

use reqwest::header;
use switchboard_testkit::browser::Browser;
use switchboard_testkit::{App, Daemon, eventually, switchboard_bin};

/// Operation summaries the rendered page must show (first lines of handler docs).
const SUMMARIES: [&str; 4] = [
    "List conversations, newest activity first.",
    "Reply in a conversation.",
    "Download an attachment.",
    "A message's HTML body as a page, for a sandboxed iframe.",
];

async fn get(d: &Daemon, path: &str) -> reqwest::Response {
    d.http
        .get(format!("{}{path}", d.base))
        .send()
        .await
        .expect("GET")
}

fn header_of(r: &reqwest::Response, name: header::HeaderName) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The values of `attr="..."` in `page`.
fn attribute_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(i, _)| page[i + needle.len()..].split('"').next())
        .collect()
}

async fn page_and_assets_reference_no_other_origin(d: &Daemon) {
    let r = get(d, "/api/v1/docs").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let csp = header_of(&r, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = r.text().await.expect("page");
    for text in [page.as_str(), csp.as_str()] {
        for external in ["http:", "https:", "//"] {
            assert!(!text.contains(external), "{external} in {text}");
        }
    }
    let scripts = attribute_values(&page, "src");
    assert_eq!(scripts, ["docs/assets/rapidoc-min.js"], "{page}");
    assert_eq!(attribute_values(&page, "spec-url"), ["openapi.json"]);
    for href in attribute_values(&page, "href") {
        let relative = !href.contains(':') && !href.starts_with('/');
        assert!(relative || href == "data:,", "{href}");
    }

    let r = get(d, "/api/v1/docs/assets/rapidoc-min.js").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let script = r.text().await.expect("script");
    assert!(
        script.starts_with("/*! RapiDoc 9.3.8 "),
        "{}",
        &script[..80]
    );
    assert!(script.len() > 500_000, "{}", script.len());

    let r = get(d, "/api/v1/docs/assets/rapidoc-min.js.LICENSE.txt").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "text/plain; charset=utf-8"
    );
    let licenses = r.text().await.expect("licenses");
    assert!(licenses.starts_with("MIT License"), "{licenses}");
    assert!(licenses.contains("RapiDoc 9.3.8"), "{licenses}");

    let doc = d.http.get(format!("{}/api/v1/openapi.json", d.base));
    let doc: serde_json::Value = doc.send().await.expect("doc").json().await.expect("json");
    for path in [
        "/api/v1/docs",
        "/api/v1/docs/assets/rapidoc-min.js",
        "/api/v1/docs/assets/rapidoc-min.js.LICENSE.txt",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} undocumented");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_and_assets_are_served_without_external_references_sqlite() {
    let app = App::builder(switchboard_bin!()).spawn().await;
    page_and_assets_reference_no_other_origin(&app).await;
    // No `server.url_signing_key` here: the daemon says what that means for signed URLs.
    eventually(5, || async {
        app.log()
            .contains("signed URLs do not survive a restart")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_and_assets_are_served_without_external_references_postgres() {
    let app = App::builder(switchboard_bin!()).postgres().spawn().await;
    page_and_assets_reference_no_other_origin(&app).await;
}

/// Chromium with no network but loopback renders every operation of the document; every
/// request the page made went to the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_render_in_headless_chromium_from_the_daemon_alone() {
    let app = App::builder(switchboard_bin!()).spawn().await;
    let browser = Browser::launch();
    let mut page = browser.new_page().await;
    page.goto(&format!("{}/api/v1/docs", app.base)).await;
    let rendered = "(() => { const d = document.querySelector('rapi-doc'); \
         const t = d && d.shadowRoot ? d.shadowRoot.textContent : ''; \
         return t.includes('Download an attachment.') ? t : ''; })()";
    let text = page.wait_for(rendered, 30).await;
    let text = text.as_str().unwrap_or_default();
    for summary in SUMMARIES {
        assert!(text.contains(summary), "{summary} not rendered");
    }
    if let Ok(dir) = std::env::var("SWITCHBOARD_SCREENSHOTS") {
        let png = page.screenshot().await;
        std::fs::write(format!("{dir}/docs.png"), png).expect("screenshot");
    }
    let requests = page.requests();
    assert!(
        requests.iter().any(|u| u.ends_with("/api/v1/openapi.json")),
        "{requests:?}"
    );
    // `data:` URLs (the viewer's inline icons) are no requests to anyone.
    for url in requests.iter().filter(|u| !u.starts_with("data:")) {
        assert!(url.starts_with(&app.base), "the page requested {url}");
    }
    let failed: Vec<_> = page
        .responses()
        .into_iter()
        .filter(|(_, status)| *status != 200)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}
