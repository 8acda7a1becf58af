//! Helpers for connectors checking their `[[channels]]` settings table: every key known and
//! of the right type (all problems at once, which serde alone does not give), and
//! deserialization whose errors carry the key's full path.
//!
//! A connector writes its settings once, as a serde struct: [`check_fields`] reads the
//! accepted keys and the TOML type of each from that struct's `Deserialize` (see
//! `fields_of`), so there is no second list of keys to keep in step with it.

use super::ConfigError;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, Visitor};
use toml::{Table, Value};

/// The TOML type a settings key must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Str,
    /// An integer number of seconds from 1 to 3600 (a field deserialized with [`secs`]).
    Secs,
    Bool,
    /// A nested table (e.g. an email channel's `imap`), checked by the connector.
    Table,
}

/// The range of a [`secs`] field, and what is said when a value is outside it.
const SECS_RANGE: std::ops::RangeInclusive<i64> = 1..=3600;
const SECS_MESSAGE: &str = "must be an integer number of seconds between 1 and 3600";

/// The newtype name [`secs`] asks for: how [`fields_of`] tells a number of seconds from
/// any other integer. Formats that do not care (TOML) pass the number straight through.
const SECS_MARKER: &str = "switchboard_core::infra::config::settings::secs";

/// `#[serde(deserialize_with = "secs")]` on a `u64` settings field: an integer number of
/// seconds from 1 to 3600, type-checked with the other keys by [`check_fields`].
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Secs;
    impl<'de> Visitor<'de> for Secs {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer number of seconds")
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
            i64::deserialize(d).and_then(in_range)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            in_range(n)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            i64::try_from(n)
                .map_err(|_| E::custom(SECS_MESSAGE))
                .and_then(in_range)
        }
    }
    fn in_range<E: de::Error>(n: i64) -> Result<u64, E> {
        if SECS_RANGE.contains(&n) {
            u64::try_from(n).map_err(|_| E::custom(SECS_MESSAGE))
        } else {
            Err(E::custom(SECS_MESSAGE))
        }
    }
    d.deserialize_newtype_struct(SECS_MARKER, Secs)
}

/// `prefix.key` (or `key` at the root).
pub fn key_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Reports unknown keys and keys of the wrong type, each at its full path. The keys and
/// their types are those of the settings struct `T` (read by `fields_of`); `kind` names the
/// channel type in the unknown-key message.
pub fn check_fields<T: DeserializeOwned>(
    settings: &Table,
    path: &str,
    kind: &str,
) -> Vec<ConfigError> {
    check_against(settings, path, kind, &fields_of::<T>())
}

fn check_against(
    settings: &Table,
    path: &str,
    kind: &str,
    fields: &[(&str, Option<FieldType>)],
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
        // A type the probe cannot name is left to serde, which reports it when parsing.
        let (Some(v), Some(ty)) = (settings.get(*key), ty) else {
            continue;
        };
        let (ok, want) = match ty {
            FieldType::Str => (v.is_str(), "must be a string"),
            FieldType::Bool => (v.is_bool(), "must be a boolean"),
            FieldType::Table => (v.is_table(), "must be a table"),
            FieldType::Secs => (
                matches!(v, Value::Integer(n) if SECS_RANGE.contains(n)),
                SECS_MESSAGE,
            ),
        };
        if !ok {
            errors.push(ConfigError::new(key_path(path, key), want));
        }
    }
    errors
}

/// The keys of the settings struct `T`, in declaration order, each with the TOML type its
/// `Deserialize` asks for (`None` when that is none of [`FieldType`]'s).
///
/// Read by running `T`'s derived `Deserialize` against probes: the first run gets the
/// field names serde passes to `deserialize_struct`; then, per field, a map holding only
/// that key hands the field's deserializer a probe that records what it asks for (a
/// string, a boolean, a table, [`secs`]; through `Option`) and stops it. Cheap (one short
/// run per key), and only done when a configuration is checked.
fn fields_of<'de, T: Deserialize<'de>>() -> Vec<(&'static str, Option<FieldType>)> {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(StructProbe {
        field: None,
        names: &mut names,
        ty: &mut None,
    });
    names
        .iter()
        .map(|&name| {
            let mut ty = None;
            let _ = T::deserialize(StructProbe {
                field: Some(name),
                names: &mut &[][..],
                ty: &mut ty,
            });
            (name, ty)
        })
        .collect()
}

/// Ends a probe run; never seen outside [`fields_of`].
#[derive(Debug, thiserror::Error)]
#[error("settings probe finished")]
struct ProbeStop;

impl de::Error for ProbeStop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        ProbeStop
    }
}

/// Stands in for the whole settings table: records the field names, then (with `field`)
/// presents a map of that one key whose value is a [`ValueProbe`].
struct StructProbe<'a> {
    field: Option<&'static str>,
    names: &'a mut &'static [&'static str],
    ty: &'a mut Option<FieldType>,
}

impl<'de> Deserializer<'de> for StructProbe<'_> {
    type Error = ProbeStop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeStop> {
        *self.names = fields;
        match self.field {
            Some(key) => visitor.visit_map(OneKey {
                key: Some(key),
                ty: self.ty,
            }),
            None => Err(ProbeStop),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A map of one key, whose value is a [`ValueProbe`].
struct OneKey<'a> {
    key: Option<&'static str>,
    ty: &'a mut Option<FieldType>,
}

impl<'de> MapAccess<'de> for OneKey<'_> {
    type Error = ProbeStop;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeStop> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, ProbeStop> {
        seed.deserialize(ValueProbe { ty: self.ty })
    }
}

/// Stands in for one field's value: records the [`FieldType`] the field's deserializer
/// asks for and stops it.
struct ValueProbe<'a> {
    ty: &'a mut Option<FieldType>,
}

impl ValueProbe<'_> {
    fn found<T>(self, ty: FieldType) -> Result<T, ProbeStop> {
        *self.ty = Some(ty);
        Err(ProbeStop)
    }
}

impl<'de> Deserializer<'de> for ValueProbe<'_> {
    type Error = ProbeStop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop)
    }
    fn deserialize_str<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        self.found(FieldType::Str)
    }
    fn deserialize_string<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        self.found(FieldType::Str)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        self.found(FieldType::Bool)
    }
    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        self.found(FieldType::Table)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeStop> {
        self.found(FieldType::Table)
    }
    /// An optional key has the type of its value.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeStop> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeStop> {
        if name == SECS_MARKER {
            self.found(FieldType::Secs)
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        seq tuple tuple_struct enum identifier ignored_any
    }
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

    /// Every shape a settings field takes, as a connector writes it.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        a: String,
        #[serde(default)]
        b: Option<crate::infra::config::Secret>,
        #[serde(deserialize_with = "secs")]
        c: u64,
        #[serde(default)]
        d: bool,
        #[serde(default)]
        e: Option<Nested>,
        #[serde(default)]
        f: Vec<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        x: u16,
    }

    #[test]
    fn fields_and_types_come_from_the_serde_struct() {
        assert_eq!(
            fields_of::<Sample>(),
            vec![
                ("a", Some(FieldType::Str)),
                ("b", Some(FieldType::Str)),
                ("c", Some(FieldType::Secs)),
                ("d", Some(FieldType::Bool)),
                ("e", Some(FieldType::Table)),
                ("f", None),
            ]
        );
    }

    #[test]
    fn unknown_and_mistyped_keys_are_all_reported() {
        let t: Table = "a = 1\nb = \"x\"\nc = 0\nd = true\nextra = 1"
            .parse()
            .expect("toml");
        let errors = check_fields::<Sample>(&t, "channels[2]", "test");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["channels[2].extra", "channels[2].a", "channels[2].c"]
        );
        assert_eq!(errors[0].message, "unknown key for a test channel");
        assert_eq!(errors[1].message, "must be a string");
        assert_eq!(errors[2].message, SECS_MESSAGE);
    }

    #[test]
    fn secs_are_checked_when_parsing_too() {
        let parse = |text: &str| {
            let t: Table = text.parse().expect("toml");
            deserialize_settings::<Sample>(&t, "c").map(|s| s.c)
        };
        assert_eq!(parse("a = \"x\"\nc = 3600"), Ok(3600));
        for bad in ["c = 0", "c = 3601", "c = -5"] {
            let errors = parse(&format!("a = \"x\"\n{bad}")).expect_err(bad);
            assert_eq!(errors[0].path, "c.c");
            // toml's error text goes on to name the key again ("in `c`").
            assert!(errors[0].message.starts_with(SECS_MESSAGE), "{errors:?}");
        }
    }
}
