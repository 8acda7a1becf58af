//! Checks of `[server]` values that serde cannot express: the public URL and the CORS
//! origins. Each problem is added to the report with its key path.

use super::{ConfigError, ServerConfig};

/// `server.public_url`: empty, or an http(s) URL without a query.
pub(super) fn public_url(s: &ServerConfig, errors: &mut Vec<ConfigError>) {
    if s.public_url.is_empty() {
        return;
    }
    match url::Url::parse(&s.public_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
        Ok(_) => errors.push(ConfigError::new(
            "server.public_url",
            "must be an http(s) URL without a query",
        )),
        Err(e) => errors.push(ConfigError::new("server.public_url", e.to_string())),
    }
}

/// `server.cors_allowed_origins`: each an origin as browsers send it (`scheme://host[:port]`,
/// http or https, nothing after the authority), or `"*"` alone.
pub(super) fn cors_origins(s: &ServerConfig, errors: &mut Vec<ConfigError>) {
    let origins = &s.cors_allowed_origins;
    for (i, origin) in origins.iter().enumerate() {
        let path = format!("server.cors_allowed_origins[{i}]");
        if origin == "*" {
            if origins.len() > 1 {
                errors.push(ConfigError::new(
                    path,
                    "\"*\" allows every origin: list it alone or not at all",
                ));
            }
            continue;
        }
        if let Err(message) = check_origin(origin) {
            errors.push(ConfigError::new(path, message));
        }
    }
}

/// Whether `origin` is exactly an origin's serialization (what a browser's `Origin` header
/// holds), so a configured value can match it.
fn check_origin(origin: &str) -> Result<(), String> {
    const SHAPE: &str =
        "must be an origin: http(s)://host[:port], without a path, query or trailing slash";
    let url = url::Url::parse(origin).map_err(|_| SHAPE.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SHAPE.into());
    }
    let serialized = url.origin().ascii_serialization();
    if serialized != origin {
        return Err(format!("{SHAPE} (did you mean {serialized:?}?)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_exact() {
        assert!(check_origin("https://app.example").is_ok());
        assert!(check_origin("http://localhost:5173").is_ok());
        for bad in [
            "https://app.example/",
            "https://app.example/path",
            "app.example",
            "ftp://app.example",
            "https://APP.example",
            "https://app.example:443",
            "https://app.example?x=1",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
        let message = check_origin("https://app.example/").expect_err("slash");
        assert!(message.contains("\"https://app.example\""), "{message}");
    }
}
