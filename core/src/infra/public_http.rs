//! Fetching URLs that API callers name (a reply's `media_urls`) without letting them reach
//! our own network: the daemon often runs beside a metadata service (169.254.169.254),
//! databases and admin ports that a URL chosen by a caller must not touch (SSRF).
//!
//! [`PublicHttp`] refuses URLs whose host is a non-public IP literal, resolves host names
//! through a resolver that drops non-public addresses (so a name pointing at 127.0.0.1 or
//! re-pointed between a check and the connection cannot get through), and applies both to
//! every redirect. Non-public means loopback, private (RFC 1918, IPv6 unique local),
//! link-local, shared address space (100.64.0.0/10), unspecified, multicast, broadcast,
//! documentation and benchmarking ranges, and IPv4 addresses mapped into IPv6.
//! `[media] allow_private_networks = true` lifts the rule, for media served on an internal
//! network (and for tests against local servers).
//!
//! A provider's inbound media goes through the same guard, restricted further to the
//! provider's media hosts ([`PublicHttp::restricted_to`] with a [`HostList`]): the first URL
//! and every redirect hop must be on the list, whatever `allow_private_networks` says.

use crate::infra::host_list::HostList;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why a URL is not fetched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefused {
    #[error("not an absolute http(s) URL")]
    NotHttp,
    #[error("the URL's host is not a public address")]
    NotPublic,
    #[error("the URL's host is not one of the provider's media hosts")]
    HostNotAllowed,
}

/// A host name that resolves to no public address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
pub struct NoPublicAddress(String);

/// Whether a request failed because the guard refused where it led (a name resolving to
/// private addresses, a redirect to one): a permanent refusal, not a network hiccup.
pub fn is_refusal(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<NoPublicAddress>().is_some()
            || err.downcast_ref::<UrlRefused>().is_some()
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// An HTTP client for caller-named URLs (see the module documentation).
#[derive(Debug, Clone)]
pub struct PublicHttp {
    client: reqwest::Client,
    allow_private: bool,
    /// When set, the only hosts fetched from (first URL and redirects alike).
    hosts: Option<Arc<HostList>>,
}

impl PublicHttp {
    /// A client that only reaches public addresses, unless `allow_private`.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        Self::build(allow_private, None)
    }

    /// A client with this one's address rule that also fetches only from `hosts`: the URL
    /// asked for and every redirect hop (a provider's media hosts).
    pub fn restricted_to(&self, hosts: HostList) -> Result<Self, reqwest::Error> {
        Self::build(self.allow_private, Some(Arc::new(hosts)))
    }

    fn build(allow_private: bool, hosts: Option<Arc<HostList>>) -> Result<Self, reqwest::Error> {
        let policy_hosts = hosts.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match check(attempt.url(), allow_private, policy_hosts.as_deref()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(redirects);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
            hosts,
        })
    }

    /// A GET of `url`, or why it is refused before any connection.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        let url = url::Url::parse(url).map_err(|_| UrlRefused::NotHttp)?;
        self.get_url(url)
    }

    /// [`Self::get`] of a parsed URL.
    pub fn get_url(&self, url: url::Url) -> Result<reqwest::RequestBuilder, UrlRefused> {
        check(&url, self.allow_private, self.hosts.as_deref())?;
        Ok(self.client.get(url))
    }
}

/// The URL is http(s) with a host, on the host list if there is one, and an IP-literal host
/// is public (unless allowed).
fn check(url: &url::Url, allow_private: bool, hosts: Option<&HostList>) -> Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::NotHttp);
    }
    if hosts.is_some_and(|h| !h.allows(url)) {
        return Err(UrlRefused::HostNotAllowed);
    }
    let ip = match url.host() {
        None => return Err(UrlRefused::NotHttp),
        Some(url::Host::Domain(name)) => {
            return if allow_private || !is_local_name(name) {
                Ok(())
            } else {
                Err(UrlRefused::NotPublic)
            };
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(UrlRefused::NotPublic)
    }
}

/// Names that always mean this machine (RFC 6761: `localhost` and its subdomains), in any
/// case and with any trailing dots (`localhost.` is the same name, fully qualified). They
/// are refused before any lookup: a lookup of them may fail instead of answering a private
/// address, which would look like a network hiccup and be retried.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.is_empty() || name == "localhost" || name.ends_with(".localhost")
}

/// Resolves names to their public addresses only.
struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(NoPublicAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether an address is reachable on the public internet (see the module documentation).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 (maps IPv4, private included)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_and_schemes_are_checked_before_connecting() {
        crypto();
        let http = PublicHttp::new(false).expect("client");
        for url in [
            "http://127.0.0.1/x",
            "http://[::1]:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
        ] {
            assert_eq!(http.get(url).err(), Some(UrlRefused::NotPublic), "{url}");
        }
        for url in ["file:///etc/passwd", "ftp://example.com/x", "not a url"] {
            assert_eq!(http.get(url).err(), Some(UrlRefused::NotHttp), "{url}");
        }
        for url in [
            "http://localhost/x",
            "http://localhost./x",
            "http://LOCALHOST../x",
            "http://api.localhost./x",
        ] {
            assert_eq!(http.get(url).err(), Some(UrlRefused::NotPublic), "{url}");
        }
        assert!(http.get("https://example.com/a.png").is_ok());
        assert!(http.get("https://localhost.example.com/a.png").is_ok());
        let open = PublicHttp::new(true).expect("client");
        assert!(open.get("http://127.0.0.1/x").is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        crypto();
        // A local server (that would redirect to the metadata address).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await;
            }
        });
        // `localhost` itself is refused by name before any lookup; the resolver is checked
        // through the same name with the name check bypassed (a client without it would
        // still not connect).
        let guarded = PublicHttp::new(false).expect("client");
        assert_eq!(
            guarded.get(&format!("http://localhost:{port}/")).err(),
            Some(UrlRefused::NotPublic)
        );
        let err = guarded
            .client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .expect_err("localhost resolves to no public address");
        assert!(is_refusal(&err), "{err:?}");
    }

    /// A local server: `/ok` answers 200; `/to-self`, `/to-localhost` and `/to-metadata`
    /// redirect to `/ok` on the same host, on `localhost`, and to the metadata address.
    async fn redirecting_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let location = match head.split_whitespace().nth(1).unwrap_or("") {
                    "/to-self" => Some("/ok".to_string()),
                    "/to-localhost" => Some(format!("http://localhost:{port}/ok")),
                    "/to-metadata" => Some("http://169.254.169.254/latest/meta-data/".into()),
                    _ => None,
                };
                let answer = match location {
                    Some(l) => {
                        format!("HTTP/1.1 302 Found\r\nLocation: {l}\r\nContent-Length: 0\r\n\r\n")
                    }
                    None => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine".into(),
                };
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn a_host_list_is_checked_on_the_url_and_every_redirect() {
        crypto();
        let port = redirecting_server().await;
        let hosts = HostList::parse(&["127.0.0.1", "*.twiliocdn.com"]).expect("hosts");
        // Private addresses allowed (the server is local): the host list still applies.
        let media = PublicHttp::new(true)
            .expect("client")
            .restricted_to(hosts.clone())
            .expect("restricted");
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost/x",
            "https://twiliocdn.com.evil.example/x",
        ] {
            assert_eq!(
                media.get(url).err(),
                Some(UrlRefused::HostNotAllowed),
                "{url}"
            );
        }
        let base = format!("http://127.0.0.1:{port}");
        for path in ["/ok", "/to-self"] {
            let resp = media.get(&format!("{base}{path}")).expect("listed");
            let resp = resp.send().await.expect("fetched");
            assert_eq!(resp.status(), 200, "{path}");
        }
        for path in ["/to-localhost", "/to-metadata"] {
            let err = media
                .get(&format!("{base}{path}"))
                .expect("listed")
                .send()
                .await
                .expect_err("redirect off the list");
            assert!(is_refusal(&err), "{path}: {err:?}");
        }
        // Without private addresses, a listed host is still only fetched when it is public.
        let public_only = PublicHttp::new(false)
            .expect("client")
            .restricted_to(hosts)
            .expect("restricted");
        assert_eq!(
            public_only.get(&format!("{base}/ok")).err(),
            Some(UrlRefused::NotPublic)
        );
        assert!(public_only.get("https://mms.twiliocdn.com/AC1/x").is_ok());
    }
}
