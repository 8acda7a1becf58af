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
    use crate::domain::model::ChannelKind;
    use crate::infra::config::{AgentVisibility, ChannelTypes, Validators, load_str};

    struct NoChannels;

    impl ChannelTypes for NoChannels {
        fn kind(&self, _: &str) -> Option<ChannelKind> {
            None
        }
        fn names(&self) -> Vec<&'static str> {
            Vec::new()
        }
        fn validate(&self, _: ChannelKind, _: &toml::Table, _: &str) -> Vec<ConfigError> {
            Vec::new()
        }
    }

    fn load(text: &str) -> Result<crate::infra::config::Config, Vec<ConfigError>> {
        load_str(text, &Vec::new(), Validators::channels_only(&NoChannels)).map_err(|e| e.0)
    }

    #[test]
    fn access_settings_load_with_their_defaults() {
        let c = load("").expect("defaults");
        assert!(c.server.cors_allowed_origins.is_empty());
        assert_eq!(c.api.rate_limits.agent_per_minute, 600);
        assert_eq!(c.api.rate_limits.admin_per_minute, 1200);
        let c = load(
            "[server]\ncors_allowed_origins = [\"https://app.example\", \"http://localhost:5173\"]\n\
             [api.rate_limits]\nagent_per_minute = 0\n\
             [[tenants]]\nid = \"acme\"\nagent_visibility = \"assigned\"\n[[tenants]]\nid = \"b\"\n",
        )
        .expect("valid");
        assert_eq!(c.server.cors_allowed_origins.len(), 2);
        assert_eq!(c.api.rate_limits.agent_per_minute, 0);
        assert_eq!(c.tenants[0].agent_visibility, AgentVisibility::Assigned);
        assert_eq!(c.tenants[1].agent_visibility, AgentVisibility::All);
    }

    #[test]
    fn bad_access_settings_are_all_reported() {
        let errors = load(
            "[server]\ncors_allowed_origins = [\"*\", \"https://app.example/\"]\n\
             [api.rate_limits]\nagent_per_minute = -1\nburst = 5\n\
             [[tenants]]\nid = \"acme\"\nagent_visibility = \"mine\"\n",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "server.cors_allowed_origins[0]",
            "server.cors_allowed_origins[1]",
            "api.rate_limits.agent_per_minute",
            "api.rate_limits.burst",
            "tenants[0].agent_visibility",
        ] {
            assert!(paths.contains(&want), "{want} missing in {errors:?}");
        }
    }

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
