//! Browser-safe media, end to end on SQLite and PostgreSQL: a mail with an inline (`cid:`)
//! image and an attachment arrives over IMAP; the message view gives each attachment, the
//! inline image in `html` and the HTML page (`html_url`) a signed URL, signed with the
//! configured `server.url_signing_key` (from `${ENV}`); those URLs work without any header,
//! with an `ETag` and caching, while wrong, incomplete, expired or misplaced signatures are
//! refused; and (SQLite) headless Chromium shows the page in a sandboxed iframe of another
//! origin with its image loaded, asking nothing of anyone but the daemon.

use base64::Engine;
use reqwest::{StatusCode, header};
use serde_json::Value;
use switchboard_core::infra::signed_url::{Resource, UrlSigner};
use switchboard_testkit::browser::Browser;
use switchboard_testkit::mail::dovecot::ALICE;
use switchboard_testkit::mail::{Dovecot, SmtpSink};
use switchboard_testkit::{App, Daemon, eventually, install_crypto};

use crate::support::*;

/// The signing key, handed to the daemon through `${E2E_URL_SIGNING_KEY}`.
const KEY: &str = "the e2e key of signed media URLs, 32+ bytes";
/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const PDF: &[u8] = b"%PDF-1.7 not really";
const HTML_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
     base-uri 'none'; form-action 'none'; sandbox";

/// HTML with an inline image, plus a PDF whose name has quotes, non-ASCII letters and a
/// right-to-left override.
fn inline_mail() -> Vec<u8> {
    let pdf = base64::engine::general_purpose::STANDARD.encode(PDF);
    format!(
        "From: Carol Customer <carol@remote.test>\r\nTo: {to}\r\nSubject: Photo of the damage\r\n\
         Message-ID: <media-1@remote.test>\r\nDate: Thu, 20 Nov 2025 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
         --mixed\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>See the photo: <img src=\"cid:photo@remote.test\" alt=\"photo\"></p>\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <photo@remote.test>\r\n\
         Content-Disposition: inline; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {PNG}\r\n--rel--\r\n\
         --mixed\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22x%22%E2%80%AEfdp.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--mixed--\r\n",
        to = alice(),
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_media_urls_work_without_headers_sqlite() {
    signed_media_urls(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_media_urls_work_without_headers_postgres() {
    signed_media_urls(true).await;
}

async fn signed_media_urls(postgres: bool) {
    install_crypto();
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(&[]);
    dovecot.append(ALICE, "INBOX", inline_mail()).await;
    let idle = format!(", idle = true, schedule = \"{NEVER}\"");
    let mut builder = email_app(&dovecot, sink.port, &idle, "")
        .toml("[[tenants]]\nid = \"globex\"\n")
        .env(
            "SWITCHBOARD_SERVER__URL_SIGNING_KEY",
            "${E2E_URL_SIGNING_KEY}",
        )
        .env("E2E_URL_SIGNING_KEY", KEY);
    if postgres {
        builder = builder.postgres();
    }
    let app = builder.spawn().await;
    let token = app.tokens[0].clone();
    let message = eventually(30, || async {
        let conversation = conversations(&app, &token).await.first()?["id"].clone();
        let messages = messages(&app, &token, conversation.as_str()?).await;
        messages.into_iter().next()
    })
    .await;
    let log = app.log();
    assert!(!log.contains(KEY), "the key reached the log");
    assert!(
        !log.contains("random key"),
        "the configured key was not used:\n{log}"
    );

    let (inline, pdf) = attachments_of(&message);
    let html_url = view_urls(&message, &inline);
    let etag = download(&app, &str_of(&inline["url"]), PNG_BYTES.as_slice()).await;
    assert_eq!(etag, format!("\"{}\"", str_of(&inline["sha256"])));
    revalidate(&app, &str_of(&pdf["url"]), &token).await;
    pdf_disposition(&app, &str_of(&pdf["url"])).await;
    html_page(&app, &html_url, &inline).await;
    refusals(&app, &str_of(&inline["id"]), &str_of(&message["id"])).await;
    if !postgres {
        sandboxed_iframe(&app, &html_url, &str_of(&inline["id"])).await;
    }
}

static PNG_BYTES: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .expect("png")
});

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// (the inline image, the PDF), both stored.
fn attachments_of(message: &Value) -> (Value, Value) {
    let attachments = message["attachments"].as_array().expect("attachments");
    let find = |ct: &str| {
        attachments
            .iter()
            .find(|a| a["content_type"] == ct)
            .unwrap_or_else(|| panic!("no {ct} in {message}"))
            .clone()
    };
    let (inline, pdf) = (find("image/png"), find("application/pdf"));
    assert_eq!(inline["state"], "stored", "{inline}");
    assert_eq!(pdf["state"], "stored", "{pdf}");
    (inline, pdf)
}

/// The view's URLs: the attachments' `url`, the image in `html`, `html_url`, all signed
/// for acme with one expiry, about an hour from now. Returns `html_url`.
fn view_urls(message: &Value, inline: &Value) -> String {
    let id = str_of(&inline["id"]);
    let url = str_of(&inline["url"]);
    let prefix = format!("/api/v1/attachments/{id}?tenant=acme&expires=");
    assert!(url.starts_with(&prefix), "{url}");
    let expires: i64 = url[prefix.len()..]
        .split('&')
        .next()
        .and_then(|e| e.parse().ok())
        .expect("expires");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("now");
    assert!(
        expires > now + 3000 && expires <= now + 3600,
        "{expires} vs {now}"
    );
    let html = str_of(&message["html"]);
    assert!(html.contains(&url.replace('&', "&amp;")), "{html}");
    assert!(!html.contains("cid:"), "{html}");
    let html_url = str_of(&message["html_url"]);
    let page = format!(
        "/api/v1/messages/{}/html?tenant=acme&expires={expires}&sig=",
        str_of(&message["id"])
    );
    assert!(html_url.starts_with(&page), "{html_url}");
    assert!(message["urls_expire_at"].is_string(), "{message}");
    html_url
}

fn header_of(r: &reqwest::Response, name: header::HeaderName) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn get(d: &Daemon, url: &str) -> reqwest::Response {
    d.http
        .get(format!("{}{url}", d.base))
        .send()
        .await
        .expect("GET")
}

/// A signed URL without any header: the bytes, safe headers, private caching. Returns the
/// ETag.
async fn download(d: &Daemon, url: &str, bytes: &[u8]) -> String {
    let r = get(d, url).await;
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header_of(&r, header::CONTENT_SECURITY_POLICY), "sandbox");
    let cache = header_of(&r, header::CACHE_CONTROL);
    let max_age: i64 = cache
        .strip_prefix("private, max-age=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{cache}"));
    assert!((3000..=3600).contains(&max_age), "{cache}");
    let etag = header_of(&r, header::ETAG);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), bytes);
    etag
}

/// `If-None-Match` with the ETag: 304 on the signed URL and with the bearer token.
async fn revalidate(d: &Daemon, url: &str, token: &str) {
    let r = get(d, url).await;
    let etag = header_of(&r, header::ETAG);
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            switchboard_core::infra::blob::BlobStore::sha256_hex(PDF)
        )
    );
    let again = d.http.get(format!("{}{url}", d.base));
    let r = again
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&r, header::ETAG), etag);
    let path = url.split('?').next().expect("path");
    let bearer = d.http.get(format!("{}{path}", d.base)).bearer_auth(token);
    let r = bearer.header(header::IF_NONE_MATCH, "W/\"x\", ".to_string() + &etag);
    let r = r.send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = d.http.get(format!("{}{path}", d.base)).bearer_auth(token);
    let r = r.send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, header::CACHE_CONTROL),
        "private, max-age=3600"
    );
}

/// The PDF's name (quotes, accents, a bidi override) is safe in `Content-Disposition`.
async fn pdf_disposition(d: &Daemon, url: &str) {
    let r = get(d, url).await;
    let disposition = header_of(&r, header::CONTENT_DISPOSITION);
    let (fallback, encoded) = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
        .unwrap_or_else(|| panic!("{disposition}"));
    assert!(
        fallback.is_ascii() && !fallback.contains(['"', '\\', '\r', '\n']),
        "{fallback}"
    );
    assert!(fallback.ends_with(".pdf"), "{fallback}");
    let decoded: String = url::form_urlencoded::parse(format!("n={encoded}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .expect("decoded");
    assert!(decoded.starts_with("Résumé"), "{decoded}");
    assert!(!decoded.contains(['"', '\u{202E}']), "{decoded:?}");
}

/// The HTML page: the body with its image signed, a strict CSP; the image loads.
async fn html_page(d: &Daemon, html_url: &str, inline: &Value) {
    let r = get(d, html_url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&r, header::CONTENT_SECURITY_POLICY), HTML_CSP);
    assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let page = r.text().await.expect("page");
    let id = str_of(&inline["id"]);
    let marker = format!("<img src=\"/api/v1/attachments/{id}?tenant=acme&amp;expires=");
    let start = page.find(&marker).unwrap_or_else(|| panic!("{page}")) + "<img src=\"".len();
    let img = page[start..]
        .split('"')
        .next()
        .expect("src")
        .replace("&amp;", "&");
    download(d, &img, PNG_BYTES.as_slice()).await;
}

/// Signatures that do not hold: 403 with the code that says why; a URL of another tenant
/// names nothing there; unknown parameters are malformed.
async fn refusals(d: &Daemon, attachment: &str, message: &str) {
    let signer = UrlSigner::new(KEY.as_bytes(), 3600);
    let now = time_now();
    let signed = |tenant: &str, resource: Resource<'_>, expires: i64| {
        format!(
            "tenant={tenant}&expires={expires}&sig={}",
            signer.sign(tenant, resource, expires)
        )
    };
    let path = format!("/api/v1/attachments/{attachment}");
    let att = Resource::Attachment(attachment);
    let good = signed("acme", att, now + 600);
    assert_eq!(get(d, &format!("{path}?{good}")).await.status(), 200);
    let cases = [
        (
            format!("{path}?{}", good.replace("sig=", "sig=A")),
            403,
            "invalid_signature",
        ),
        (
            format!("{path}?tenant=acme&expires={}", now + 600),
            403,
            "invalid_signature",
        ),
        (
            format!("{path}?{}", signed("acme", att, now - 1)),
            403,
            "signature_expired",
        ),
        (
            format!(
                "{path}?{}",
                signed("acme", Resource::MessageHtml(attachment), now + 600)
            ),
            403,
            "invalid_signature",
        ),
        (
            format!("{path}?{}", signed("globex", att, now + 600)),
            404,
            "not_found",
        ),
        (format!("{path}?{good}&x=1"), 400, "bad_request"),
        (
            format!(
                "/api/v1/messages/{message}/html?{}",
                signed("acme", att, now + 600)
            ),
            403,
            "invalid_signature",
        ),
        (path.clone(), 401, "unauthorized"),
    ];
    for (url, status, code) in cases {
        let r = get(d, &url).await;
        assert_eq!(r.status().as_u16(), status, "{url}");
        let body: Value = r.json().await.expect("error json");
        assert_eq!(body["error"]["code"], code, "{url}: {body}");
    }
}

fn time_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("now")
}

/// The page in a sandboxed iframe of another origin (a frontend on another port), as a
/// staff frontend shows it: the image is requested from the daemon and served; nothing
/// else is requested of anyone.
async fn sandboxed_iframe(app: &App, html_url: &str, attachment: &str) {
    let frame = format!(
        "<!doctype html><title>inbox</title><iframe sandbox src=\"{}{}\" width=600 height=400></iframe>",
        app.base,
        html_url.replace('&', "&amp;")
    );
    let frontend = frontend(frame).await;
    let browser = Browser::launch();
    let mut page = browser.new_page().await;
    page.goto(&format!("{frontend}/")).await;
    if let Ok(dir) = std::env::var("SWITCHBOARD_SCREENSHOTS") {
        let png = page.screenshot().await;
        std::fs::write(format!("{dir}/message-html.png"), png).expect("screenshot");
    }
    let image = format!("{}/api/v1/attachments/{attachment}?", app.base);
    let served = page
        .responses()
        .into_iter()
        .any(|(url, status)| url.starts_with(&image) && status == 200);
    assert!(served, "image not loaded: {:?}", page.responses());
    for url in page.requests() {
        let ours = url.starts_with(&app.base) || url.starts_with(&frontend);
        assert!(ours || url.starts_with("data:"), "{url}");
    }
}

/// A stand-in staff frontend on its own origin, serving `page` at `/`: its base URL.
async fn frontend(page: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}
