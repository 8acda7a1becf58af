//! Helpers for connectors checking their `[[channels]]` settings table: every key known and
//! of the right type (all problems at once, which serde alone does not give), and
//! deserialization whose errors carry the key's full path.

use super::ConfigError;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

/// The TOML type a settings key must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    /// An integer number of seconds from 1 to 3600.
    Secs,
    Bool,
    /// A nested table (e.g. an email channel's `imap`), checked by the connector.
    Table,
}

/// `prefix.key` (or `key` at the root).
pub fn key_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Reports unknown keys and keys of the wrong type, each at its full path.
pub fn check_fields(
    settings: &Table,
    path: &str,
    kind: &str,
    fields: &[(&str, FieldType)],
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for key in settings.keys() {
        if !fields.iter().any(|(k, _)| k == key) {
            errors.push(ConfigError::new(
                key_path(path, key),
                format!("unknown key for a {kind} channel"),
            ));
        }
    }
    for (key, ty) in fields {
        let Some(v) = settings.get(*key) else {
            continue;
        };
        let (ok, want) = match ty {
            FieldType::Str => (v.is_str(), "must be a string"),
            FieldType::Bool => (v.is_bool(), "must be a boolean"),
            FieldType::Table => (v.is_table(), "must be a table"),
            FieldType::Secs => (
                matches!(v, Value::Integer(n) if (1..=3600).contains(n)),
                "must be an integer number of seconds between 1 and 3600",
            ),
        };
        if !ok {
            errors.push(ConfigError::new(key_path(path, key), want));
        }
    }
    errors
}

/// Deserializes a checked settings table; an error names the key's full path.
pub fn deserialize_settings<T: DeserializeOwned>(
    settings: &Table,
    path: &str,
) -> Result<T, Vec<ConfigError>> {
    serde_path_to_error::deserialize(Value::Table(settings.clone())).map_err(|e| {
        let inner = e.path().to_string();
        let at = if inner.is_empty() || inner == "." {
            path.to_string()
        } else {
            key_path(path, &inner)
        };
        vec![ConfigError::new(at, e.into_inner().to_string())]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_mistyped_keys_are_all_reported() {
        let t: Table = "a = 1\nb = \"x\"\nc = 0\nd = true\nextra = 1"
            .parse()
            .expect("toml");
        let fields = [
            ("a", FieldType::Str),
            ("b", FieldType::Str),
            ("c", FieldType::Secs),
            ("d", FieldType::Bool),
        ];
        let errors = check_fields(&t, "channels[2]", "test", &fields);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["channels[2].extra", "channels[2].a", "channels[2].c"]
        );
    }
}
