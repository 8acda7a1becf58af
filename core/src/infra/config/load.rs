//! Loading: merge, override, substitute, then deserialize section by section so that every
//! error is collected (serde alone stops at the first one).

use super::{ChannelConfig, Config, DEFAULT_TOML, TenantConfig};
use crate::domain::model::ChannelKind;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::fmt;
use toml::{Table, Value};

/// One configuration problem, with the dotted path of the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All the problems found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// Where environment variables come from (the process, or a map in tests).
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl EnvSource for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.clone()
    }
}

/// What configuration needs to know about channel kinds; the connector registry provides it,
/// so this module names no connector.
pub trait ChannelTypes {
    /// The kind registered for a `type = "..."` name.
    fn kind(&self, name: &str) -> Option<ChannelKind>;
    /// Every registered name, for the "expected ..." message.
    fn names(&self) -> Vec<&'static str>;
    /// Checks a channel's provider settings; returns the problems with full paths.
    fn validate(&self, kind: ChannelKind, settings: &Table, path: &str) -> Vec<ConfigError>;
}

/// The checks configuration hands off to the parts that own a feature, passed in by the
/// caller (the binary wires the real ones), so that loading imports none of those parts.
#[derive(Clone, Copy)]
pub struct Validators<'a> {
    pub channels: &'a dyn ChannelTypes,
    /// `[auth]`: keys and algorithms the JWT verifier can use.
    pub auth: fn(&super::AuthConfig) -> Vec<ConfigError>,
    /// `[webhooks]`: the outgoing-webhook relay's settings.
    pub webhooks: fn(&super::WebhooksConfig) -> Vec<ConfigError>,
    /// A tenant's `[[tenants.webhooks]]` endpoints, with the tenant's key path.
    pub endpoints: fn(&[super::WebhookEndpointConfig], &str) -> Vec<ConfigError>,
    /// Which channels the command needs: the others' settings (and the secrets they name)
    /// are not checked, so `token create` runs without every channel's secrets set.
    pub scope: ChannelScope<'a>,
}

/// The channels a command uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelScope<'a> {
    All,
    /// Only the channel with this id.
    Only(&'a str),
    /// None (commands that use the database and tenants only).
    None,
}

impl ChannelScope<'_> {
    /// Whether an error at `path` matters: errors inside `channels[i]` count only for the
    /// channels in scope (`ids[i]` is the id the i-th entry declares, if any).
    fn keeps(self, path: &str, ids: &[Option<String>]) -> bool {
        let Some(index) = path
            .strip_prefix("channels[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
        else {
            return true;
        };
        match self {
            Self::All => true,
            Self::None => false,
            Self::Only(id) => ids.get(index).and_then(Option::as_deref) == Some(id),
        }
    }
}

impl<'a> Validators<'a> {
    /// Channel kinds from `channels`, and no feature checks (for tests of loading itself).
    pub fn channels_only(channels: &'a dyn ChannelTypes) -> Self {
        Self {
            channels,
            auth: |_| Vec::new(),
            webhooks: |_| Vec::new(),
            endpoints: |_, _| Vec::new(),
            scope: ChannelScope::All,
        }
    }
}

/// The `id` each `[[channels]]` entry declares, by position (for [`ChannelScope`]).
fn declared_channel_ids(root: &Table) -> Vec<Option<String>> {
    match root.get("channels") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// "a, b or c", for the "expected ..." message.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "none is registered".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

const ENV_PREFIX: &str = "SWITCHBOARD_";
const SECTIONS: [&str; 12] = [
    "server",
    "database",
    "blobs",
    "media",
    "outbox",
    "events",
    "api",
    "auth",
    "webhooks",
    "threading",
    "tenants",
    "channels",
];

/// Loads the file at `path` (or only the defaults), from the process environment.
pub fn load(
    path: Option<&std::path::Path>,
    validators: Validators<'_>,
) -> Result<Config, ConfigErrors> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "",
                format!("cannot read {}: {e}", p.display()),
            )])
        })?,
        None => String::new(),
    };
    load_str(&text, &ProcessEnv, validators)
}

/// Loads configuration from TOML text over the embedded defaults.
pub fn load_str(
    text: &str,
    env: &dyn EnvSource,
    validators: Validators<'_>,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut root: Table = DEFAULT_TOML
        .parse()
        .map_err(|e| ConfigErrors(vec![ConfigError::new("(defaults)", format!("{e}"))]))?;
    let user: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigErrors(vec![ConfigError::new("", e.to_string())]))?;
    for key in user.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errors.push(ConfigError::new(key.clone(), "unknown key"));
        }
    }
    merge(&mut root, user);
    apply_env_overrides(&mut root, env, &mut errors);
    substitute(&mut root, "", env, &mut errors);
    let channel_ids = declared_channel_ids(&root);

    let server = section(&root, "server", &mut errors);
    let database = section(&root, "database", &mut errors);
    let blobs = section(&root, "blobs", &mut errors);
    let media = section(&root, "media", &mut errors);
    let outbox = section(&root, "outbox", &mut errors);
    let events = section(&root, "events", &mut errors);
    let api = section(&root, "api", &mut errors);
    let auth: Option<super::AuthConfig> = section(&root, "auth", &mut errors);
    if let Some(a) = &auth {
        errors.extend((validators.auth)(a));
    }
    let webhooks: Option<super::WebhooksConfig> = section(&root, "webhooks", &mut errors);
    if let Some(w) = &webhooks {
        errors.extend((validators.webhooks)(w));
    }
    let tenants = tenants(&root, validators.endpoints, &mut errors);
    let channels = channels(&root, &tenants, validators.channels, &mut errors);

    if let Some(s) = &server {
        super::checks::public_url(s, &mut errors);
        super::checks::cors_origins(s, &mut errors);
        errors.extend(crate::infra::signed_url::check_config(s));
    }
    if let Some(d) = &database {
        let url: &super::DatabaseConfig = d;
        let u = url.url.expose();
        if !(u.starts_with("sqlite:") || u.starts_with("postgres:") || u.starts_with("postgresql:"))
        {
            errors.push(ConfigError::new(
                "database.url",
                "must start with sqlite:, postgres: or postgresql:",
            ));
        }
    }
    let threading = section(&root, "threading", &mut errors);
    errors.retain(|e| validators.scope.keeps(&e.path, &channel_ids));
    // Every section parsed (a failed one already left its error), and nothing else failed.
    let (
        Some(server),
        Some(database),
        Some(blobs),
        Some(media),
        Some(outbox),
        Some(events),
        Some(api),
        Some(auth),
        Some(webhooks),
        Some(threading),
    ) = (
        server, database, blobs, media, outbox, events, api, auth, webhooks, threading,
    )
    else {
        return Err(ConfigErrors(errors));
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Config {
        server,
        database,
        blobs,
        media,
        outbox,
        events,
        api,
        auth,
        webhooks,
        threading,
        tenants,
        channels,
    })
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `SWITCHBOARD_SERVER__LISTEN=0.0.0.0:80` sets `server.listen`. A value that parses as a
/// TOML value (number, boolean, array) is taken as such, anything else as a string.
fn apply_env_overrides(root: &mut Table, env: &dyn EnvSource, errors: &mut Vec<ConfigError>) {
    let mut vars = env.vars();
    vars.sort();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue; // SWITCHBOARD_CONFIG and friends are not overrides
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        let value = format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(Value::String(raw));
        if set_path(root, &path, value).is_err() {
            errors.push(ConfigError::new(
                path.join("."),
                format!("{name} overrides into a value that is not a table"),
            ));
        }
    }
}

/// Sets `path` in `table`, creating intermediate tables; fails where a non-table is in the way.
fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => match table
            .entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(t) => set_path(t, rest, value),
            _ => Err(()),
        },
    }
}

/// Replaces `${NAME}` in every string with the environment variable's value; `$${` is a
/// literal `${`. A missing variable is an error at the key's path.
fn substitute(table: &mut Table, prefix: &str, env: &dyn EnvSource, errors: &mut Vec<ConfigError>) {
    for (k, v) in table.iter_mut() {
        let path = join(prefix, k);
        substitute_value(v, &path, env, errors);
    }
}

fn substitute_value(v: &mut Value, path: &str, env: &dyn EnvSource, errors: &mut Vec<ConfigError>) {
    match v {
        Value::String(s) => match expand(s, env) {
            Ok(out) => *s = out,
            Err(missing) => errors.push(ConfigError::new(
                path,
                format!("environment variable {missing} is not set"),
            )),
        },
        Value::Table(t) => substitute(t, path, env, errors),
        Value::Array(a) => {
            for (i, item) in a.iter_mut().enumerate() {
                substitute_value(item, &format!("{path}[{i}]"), env, errors);
            }
        }
        _ => {}
    }
}

fn expand(s: &str, env: &dyn EnvSource) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                Some(end) => {
                    let name = &tail[..end];
                    out.push_str(&env.var(name).ok_or_else(|| name.to_string())?);
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn parse_at<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        ConfigError::new(at(path, &inner), plain(&e.into_inner().to_string()))
    })
}

/// `path` joined with a serde path inside it (`.` means the value itself).
fn at(path: &str, inner: &str) -> String {
    if inner == "." || inner.is_empty() {
        path.to_string()
    } else {
        join(path, inner)
    }
}

/// A parser's message as one plain line: no line breaks or runs of spaces, no trailing dot.
fn plain(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    line.trim_end_matches('.').to_string()
}

/// How many bad keys of one section are reported before giving up on it.
const MAX_SECTION_ERRORS: usize = 32;

/// Parses section `name`; every bad key is reported, not only the first. Serde stops at the
/// first error, so each bad key is reported and then set back to its default (or removed
/// when unknown) and the section parsed again.
fn section<T: DeserializeOwned>(
    root: &Table,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut value = root
        .get(name)
        .cloned()
        .unwrap_or(Value::Table(Table::new()));
    let defaults: Option<Table> = DEFAULT_TOML.parse::<Table>().ok();
    let default = defaults.as_ref().and_then(|d| d.get(name));
    let mut failed = false;
    for _ in 0..MAX_SECTION_ERRORS {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return (!failed).then_some(parsed),
            Err(e) => {
                failed = true;
                let inner = e.path().to_string();
                let message = plain(&e.into_inner().to_string());
                errors.push(ConfigError::new(at(name, &inner), message.clone()));
                if !repair(&mut value, default, &inner, &message) {
                    return None;
                }
            }
        }
    }
    None
}

/// Sets the key at serde path `inner` back to its default, or removes an unknown key that
/// `message` names; false when nothing could be changed (the same error would come back).
fn repair(value: &mut Value, default: Option<&Value>, inner: &str, message: &str) -> bool {
    let mut keys: Vec<&str> = if inner == "." || inner.is_empty() {
        Vec::new()
    } else {
        inner.split('.').collect()
    };
    if let Some(unknown) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        // serde_path_to_error's path may or may not end at the unknown key itself.
        if keys.last() != Some(&unknown) {
            keys.push(unknown);
        }
        return remove_at(value, &keys);
    }
    let Some(last) = keys.pop() else {
        return false;
    };
    let fallback = keys
        .iter()
        .chain(std::iter::once(&last))
        .try_fold(default, |v, k| Some(v?.get(*k)))
        .flatten()
        .cloned();
    let Some(Value::Table(table)) = keys
        .iter()
        .try_fold(Some(value), |v, k| Some(v?.get_mut(*k)))
        .flatten()
    else {
        return false;
    };
    match fallback {
        Some(d) if table.get(last) != Some(&d) => {
            table.insert(last.to_string(), d);
            true
        }
        _ => table.remove(last).is_some(),
    }
}

fn remove_at(value: &mut Value, keys: &[&str]) -> bool {
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    match parents
        .iter()
        .try_fold(Some(value), |v, k| Some(v?.get_mut(*k)))
        .flatten()
    {
        Some(Value::Table(table)) => table.remove(*last).is_some(),
        _ => false,
    }
}

fn array_of_tables<'a>(
    root: &'a Table,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, &'a Table)> {
    match root.get(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let path = format!("{name}[{i}]");
                match v {
                    Value::Table(t) => Some((path, t)),
                    _ => {
                        errors.push(ConfigError::new(path, "must be a table"));
                        None
                    }
                }
            })
            .collect(),
        Some(_) => {
            errors.push(ConfigError::new(
                name,
                "must be an array of tables ([[...]])",
            ));
            Vec::new()
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn tenants(
    root: &Table,
    check_endpoints: fn(&[super::WebhookEndpointConfig], &str) -> Vec<ConfigError>,
    errors: &mut Vec<ConfigError>,
) -> Vec<TenantConfig> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (path, t) in array_of_tables(root, "tenants", errors) {
        match parse_at::<TenantConfig>(Value::Table(t.clone()), &path) {
            Ok(tc) => {
                errors.extend(check_endpoints(&tc.webhooks, &path));
                if !valid_id(&tc.id) {
                    errors.push(ConfigError::new(
                        format!("{path}.id"),
                        "must be 1-64 characters of A-Z, a-z, 0-9, - and _",
                    ));
                } else if !seen.insert(tc.id.clone()) {
                    errors.push(ConfigError::new(
                        format!("{path}.id"),
                        format!("duplicate tenant id {:?}", tc.id),
                    ));
                }
                out.push(tc);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

fn channels(
    root: &Table,
    tenants: &[TenantConfig],
    types: &dyn ChannelTypes,
    errors: &mut Vec<ConfigError>,
) -> Vec<ChannelConfig> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (path, t) in array_of_tables(root, "channels", errors) {
        let mut settings = t.clone();
        let mut take_str = |key: &str, errors: &mut Vec<ConfigError>| match settings.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                errors.push(ConfigError::new(
                    format!("{path}.{key}"),
                    "must be a string",
                ));
                None
            }
            None => {
                errors.push(ConfigError::new(format!("{path}.{key}"), "missing"));
                None
            }
        };
        let id = take_str("id", errors);
        let tenant = take_str("tenant", errors);
        let kind = take_str("type", errors).and_then(|k| {
            let kind = types.kind(&k);
            if kind.is_none() {
                errors.push(ConfigError::new(
                    format!("{path}.type"),
                    format!(
                        "unknown channel type {k:?} (expected {})",
                        one_of(&types.names())
                    ),
                ));
            }
            kind
        });
        if let Some(id) = &id {
            if !valid_id(id) {
                errors.push(ConfigError::new(
                    format!("{path}.id"),
                    "must be 1-64 characters of A-Z, a-z, 0-9, - and _",
                ));
            } else if !seen.insert(id.clone()) {
                errors.push(ConfigError::new(
                    format!("{path}.id"),
                    format!("duplicate channel id {id:?}"),
                ));
            }
        }
        if let Some(tenant) = &tenant
            && !tenants.iter().any(|t| &t.id == tenant)
        {
            errors.push(ConfigError::new(
                format!("{path}.tenant"),
                format!("unknown tenant {tenant:?} (declare it under [[tenants]])"),
            ));
        }
        if let Some(kind) = kind {
            errors.extend(types.validate(kind, &settings, &path));
        }
        if let (Some(id), Some(tenant), Some(kind)) = (id, tenant, kind) {
            out.push(ChannelConfig {
                id,
                tenant,
                kind,
                settings,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channel kinds for these tests: `twilio`, whose settings check is `check`.
    struct Kinds(fn(&Table, &str) -> Vec<ConfigError>);

    impl ChannelTypes for Kinds {
        fn kind(&self, name: &str) -> Option<ChannelKind> {
            (name == "twilio").then_some(ChannelKind::new("twilio"))
        }
        fn names(&self) -> Vec<&'static str> {
            vec!["twilio"]
        }
        fn validate(&self, _: ChannelKind, settings: &Table, path: &str) -> Vec<ConfigError> {
            (self.0)(settings, path)
        }
    }

    const NO_CHANNELS: Kinds = Kinds(|_, _| Vec::new());

    fn no_channels() -> Validators<'static> {
        Validators::channels_only(&NO_CHANNELS)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_alone_are_a_valid_config() {
        let c = load_str("", &env(&[]), no_channels()).expect("defaults load");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database.url.expose().starts_with("sqlite:"));
        assert!(c.channels.is_empty());
    }

    #[test]
    fn env_overrides_and_placeholders_apply() {
        let text = r#"
[[tenants]]
id = "acme"
[[channels]]
id = "sms"
tenant = "acme"
type = "twilio"
auth_token = "${TOKEN}"
"#;
        let e = env(&[
            ("SWITCHBOARD_SERVER__LISTEN", "\"0.0.0.0:9000\""),
            ("SWITCHBOARD_OUTBOX__MAX_ATTEMPTS", "3"),
            ("SWITCHBOARD_CONFIG", "ignored.toml"),
            ("TOKEN", "s3cret"),
        ]);
        let c = load_str(text, &e, no_channels()).expect("loads");
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.outbox.max_attempts, 3);
        assert_eq!(
            c.channels[0]
                .settings
                .get("auth_token")
                .and_then(|v| v.as_str()),
            Some("s3cret")
        );
    }

    #[test]
    fn all_errors_are_reported_at_once_with_paths() {
        let text = r#"
bogus = 1
[server]
listen = "not an address"
colour = "blue"
[outbox]
max_attempts = "many"
[[tenants]]
id = "acme"
[[tenants]]
id = "acme"
[[channels]]
id = "c1"
tenant = "nobody"
type = "fax"
secret = "${MISSING_VAR}"
"#;
        let errs = load_str(text, &env(&[]), no_channels()).expect_err("invalid");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "bogus",
            "outbox.max_attempts",
            "tenants[1].id",
            "channels[0].tenant",
            "channels[0].type",
            "channels[0].secret",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        assert!(paths.iter().any(|p| p.starts_with("server")), "{paths:?}");
        assert!(errs.0.len() >= 7, "{errs}");
    }

    #[test]
    fn channel_validator_errors_join_the_report() {
        let text = r#"
[[tenants]]
id = "t"
[[channels]]
id = "c"
tenant = "t"
type = "twilio"
"#;
        let kinds = Kinds(|_, p| vec![ConfigError::new(format!("{p}.from"), "missing")]);
        let errs =
            load_str(text, &env(&[]), Validators::channels_only(&kinds)).expect_err("invalid");
        assert_eq!(
            errs.0,
            vec![ConfigError::new("channels[0].from", "missing")]
        );
    }

    #[test]
    fn every_bad_key_of_a_section_is_reported_once_in_plain_words() {
        let text = r#"
[server]
listn = "0.0.0.0:1"
log_format = "yaml"
max_body_bytes = "lots"
"#;
        let errs = load_str(text, &env(&[]), no_channels()).expect_err("invalid");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"server.listn"), "{paths:?}");
        assert!(paths.contains(&"server.log_format"), "{paths:?}");
        assert!(paths.contains(&"server.max_body_bytes"), "{paths:?}");
        let mut unique = paths.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), paths.len(), "reported once each: {paths:?}");
        for e in &errs.0 {
            assert!(!e.message.contains('\n'), "{:?}", e.message);
            assert!(!e.message.ends_with('.'), "{:?}", e.message);
        }
    }

    #[test]
    fn channels_out_of_scope_need_no_secrets() {
        let text = r#"
[[tenants]]
id = "t"
[[channels]]
id = "sms"
tenant = "t"
type = "twilio"
from = "${SMS_TOKEN}"
[[channels]]
id = "other"
tenant = "t"
type = "twilio"
from = "${OTHER_TOKEN}"
"#;
        let all = load_str(text, &env(&[]), no_channels()).expect_err("secrets missing");
        assert_eq!(all.0.len(), 2, "{all}");
        let none = Validators {
            scope: ChannelScope::None,
            ..no_channels()
        };
        let c = load_str(text, &env(&[]), none).expect("no channel needed");
        assert_eq!(c.tenants.len(), 1);
        let only = Validators {
            scope: ChannelScope::Only("sms"),
            ..no_channels()
        };
        let errs = load_str(text, &env(&[]), only).expect_err("sms's secret missing");
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].path, "channels[0].from");
        let set = env(&[("SMS_TOKEN", "+15550001")]);
        load_str(text, &set, only).expect("sms's secret set, the other not needed");
    }

    #[test]
    fn placeholder_escape_and_plain_dollars() {
        let e = env(&[("A", "x")]);
        assert_eq!(expand("a${A}b $$ $${A}", &e).as_deref(), Ok("axb $$ ${A}"));
        assert_eq!(expand("${NOPE}", &e), Err("NOPE".to_string()));
    }
}
