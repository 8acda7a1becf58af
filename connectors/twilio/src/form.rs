//! Request parameters as Twilio sends them: an ordered list of key/value pairs.
//!
//! Twilio posts `application/x-www-form-urlencoded` bodies (repeated keys allowed); a few
//! products post JSON instead. Both become the same list of pairs, in the order received.

use serde_json::Value;

/// Decodes a form body into key/value pairs (`+` is a space, invalid UTF-8 is replaced).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Why a JSON body cannot be read as parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("JSON body must be an object")]
    NotAnObject,
}

/// Flattens a JSON object body into pairs: scalars as text, arrays as repeated keys,
/// nested objects as their JSON text.
pub fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(BodyError::NotAnObject);
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        match v {
            Value::Array(items) => out.extend(items.into_iter().map(|i| (k.clone(), scalar(i)))),
            other => out.push((k, scalar(other))),
        }
    }
    Ok(out)
}

fn scalar(v: Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The first value of `key`, if present.
pub fn first<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The first value of `key`, trimmed, if present and not blank.
pub fn non_empty<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    first(params, key).map(str::trim).filter(|v| !v.is_empty())
}

/// All parameters as a JSON object; a key sent more than once becomes an array of its values.
pub fn to_json(params: &[(String, String)]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for (k, v) in params {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(items)) => items.push(Value::String(v.clone())),
            Some(existing) => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, Value::String(v.clone())]);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_decodes_plus_percent_and_repeats() {
        let p = parse_form(b"From=%2B14155550100&Body=hi+there%21&X=1&X=2&Empty=");
        assert_eq!(first(&p, "From"), Some("+14155550100"));
        assert_eq!(first(&p, "Body"), Some("hi there!"));
        assert_eq!(first(&p, "Empty"), Some(""));
        assert_eq!(non_empty(&p, "Empty"), None);
        assert_eq!(
            Value::Object(to_json(&p)),
            json!({"From": "+14155550100", "Body": "hi there!", "X": ["1", "2"], "Empty": ""})
        );
    }

    #[test]
    fn json_flattens_scalars_and_arrays() {
        let p = parse_json(
            br#"{"a": "x", "b": true, "c": 3, "d": null, "e": [1, "y"], "f": {"g": 1}}"#,
        )
        .expect("object");
        assert_eq!(
            p,
            vec![
                ("a".into(), "x".into()),
                ("b".into(), "true".into()),
                ("c".into(), "3".into()),
                ("d".into(), String::new()),
                ("e".into(), "1".into()),
                ("e".into(), "y".into()),
                ("f".into(), r#"{"g":1}"#.into()),
            ]
        );
        assert_eq!(parse_json(b"[1]"), Err(BodyError::NotAnObject));
        assert!(matches!(parse_json(b"{"), Err(BodyError::Json(_))));
    }
}
