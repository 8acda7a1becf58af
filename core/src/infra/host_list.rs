//! Host allow-lists: the hosts a client may fetch from (a provider's media hosts), checked
//! on the first URL and on every redirect by [`crate::infra::public_http::PublicHttp`].
//!
//! An entry is a host name or IP literal (`api.twilio.com`, `127.0.0.1`, `[::1]`) that
//! matches that host exactly, or `*.` and a domain (`*.twiliocdn.com`) that matches every
//! name under the domain (not the domain itself). Names compare without case and without
//! trailing dots; ports and schemes are not part of an entry.

/// One entry of a [`HostList`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// The domain, with a leading dot: `.twiliocdn.com`.
    Subdomains(String),
}

/// The hosts a client may fetch from (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostList(Vec<HostPattern>);

/// An entry that is not a host name, an IP literal or `*.domain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a host name, an IP address or *.domain")]
pub struct InvalidHostEntry {
    pub entry: String,
}

impl HostList {
    /// Parses the entries; the first invalid one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidHostEntry> {
        entries
            .iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Adds the host of `url` (an API origin whose own URLs are media URLs too).
    pub fn with_host_of(mut self, url: &url::Url) -> Self {
        if let Some(host) = url.host_str() {
            self.0.push(HostPattern::Exact(normalize(host)));
        }
        self
    }

    /// Whether `url`'s host is on the list.
    pub fn allows(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = normalize(host);
        self.0.iter().any(|p| match p {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(domain) => host.ends_with(domain.as_str()),
        })
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_entry(entry: &str) -> Result<HostPattern, InvalidHostEntry> {
    let invalid = || InvalidHostEntry {
        entry: entry.to_string(),
    };
    let (wildcard, name) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    // The URL parser decides what a host is (IDNA, IP literals, forbidden characters); the
    // entry must come back as exactly one host with nothing around it.
    let parsed = url::Url::parse(&format!("http://{name}/")).map_err(|_| invalid())?;
    let host = parsed.host_str().ok_or_else(invalid)?;
    let is_name = matches!(parsed.host(), Some(url::Host::Domain(_)));
    let name_chars = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if normalize(name).is_empty()
        || parsed.port().is_some()
        || !parsed.username().is_empty()
        || normalize(host) != normalize(name)
        || (is_name && !name_chars)
        || (wildcard && (!is_name || !host.trim_end_matches('.').contains('.')))
    {
        return Err(invalid());
    }
    let host = normalize(host);
    Ok(if wildcard {
        HostPattern::Subdomains(format!(".{host}"))
    } else {
        HostPattern::Exact(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("url")
    }

    #[test]
    fn exact_hosts_and_subdomain_wildcards_match() {
        let list = HostList::parse(&["api.twilio.com", "*.twiliocdn.com", "127.0.0.1", "[::1]"])
            .expect("valid");
        for ok in [
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            "https://API.Twilio.com./x",
            "https://mms.twiliocdn.com/AC1/abc",
            "https://a.b.twiliocdn.com/x",
            "http://127.0.0.1:8080/media/ok",
            "http://[::1]:9/x",
        ] {
            assert!(list.allows(&url(ok)), "{ok}");
        }
        for refused in [
            "http://169.254.169.254/latest/meta-data/",
            "https://twiliocdn.com/x",
            "https://eviltwiliocdn.com/x",
            "https://twiliocdn.com.evil.example/x",
            "https://api.twilio.com.evil.example/x",
            "https://evil.example/api.twilio.com",
            "http://localhost/x",
            "http://127.0.0.2/x",
        ] {
            assert!(!list.allows(&url(refused)), "{refused}");
        }
        assert!(!HostList::default().allows(&url("https://api.twilio.com/")));
    }

    #[test]
    fn the_api_origin_can_be_added() {
        let list = HostList::default().with_host_of(&url("http://127.0.0.1:4000/base"));
        assert!(list.allows(&url("http://127.0.0.1:5000/media")));
        assert!(!list.allows(&url("http://localhost:4000/media")));
    }

    #[test]
    fn entries_are_hosts_only() {
        for bad in [
            "",
            "*",
            "*.",
            "*.com",
            "*.127.0.0.1",
            "https://api.twilio.com",
            "api.twilio.com/media",
            "api.twilio.com:443",
            "user@api.twilio.com",
            "api twilio.com",
            "a.*.twiliocdn.com",
        ] {
            assert!(HostList::parse(&[bad]).is_err(), "{bad:?}");
        }
        assert!(HostList::parse(&["s3-external-1.amazonaws.com", "MMS.TwilioCDN.com"]).is_ok());
    }
}
