//! The golden-file harness: every input in a fixtures directory goes through a pure
//! normalize function and its JSON is compared with the expected file next to the input.
//! All failures are collected and reported together, each with the golden and the output
//! side by side, so one run shows every regression.
//!
//! `UPDATE_GOLDEN=1` rewrites the goldens instead of comparing (pretty JSON, final newline);
//! review the diff by eye before committing.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The variable that turns a check into a re-bless.
pub const UPDATE_VAR: &str = "UPDATE_GOLDEN";

/// The fixture corpus of a channel (`fixtures/<channel>` at the workspace root). One place
/// knows where the corpus lives, so moving it is a one-line change.
pub fn fixtures_dir(channel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(channel)
}

/// A fixture's bytes: `fixtures/<channel>/<file>`.
pub fn fixture(channel: &str, file: &str) -> Vec<u8> {
    let path = fixtures_dir(channel).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// One golden suite: which files are inputs, where their goldens are, how many there must
/// be (so an emptied or moved directory fails instead of passing vacuously).
#[derive(Debug, Clone)]
pub struct Golden {
    dir: PathBuf,
    input_suffix: String,
    golden_suffix: String,
    at_least: usize,
}

impl Golden {
    /// Inputs are the files of `dir` ending in `input_suffix` (e.g. `.form`); the golden of
    /// `<name><input_suffix>` is `<name>.json`.
    pub fn new(dir: impl Into<PathBuf>, input_suffix: &str) -> Self {
        Self {
            dir: dir.into(),
            input_suffix: input_suffix.into(),
            golden_suffix: ".json".into(),
            at_least: 1,
        }
    }

    /// Goldens named `<name><suffix>` instead of `<name>.json`. Files ending in it are
    /// never inputs (for inputs that are JSON themselves: `.json` next to `.golden.json`).
    pub fn golden_suffix(mut self, suffix: &str) -> Self {
        self.golden_suffix = suffix.into();
        self
    }

    /// Fails unless at least `n` inputs are found.
    pub fn at_least(mut self, n: usize) -> Self {
        self.at_least = n;
        self
    }

    /// The inputs, sorted, as (name without the suffix, path).
    pub fn inputs(&self) -> Vec<(String, PathBuf)> {
        let mut inputs: Vec<(String, PathBuf)> = std::fs::read_dir(&self.dir)
            .unwrap_or_else(|e| panic!("fixtures dir {}: {e}", self.dir.display()))
            .map(|e| e.expect("readable entry").path())
            .filter_map(|p| {
                let file = p.file_name()?.to_str()?;
                if file.ends_with(&self.golden_suffix) && self.golden_suffix != self.input_suffix {
                    return None;
                }
                let name = file.strip_suffix(&self.input_suffix)?.to_string();
                Some((name, p))
            })
            .collect();
        inputs.sort();
        inputs
    }

    /// Normalizes every input with `normalize(name, bytes)` and compares with its golden
    /// (or rewrites the goldens under `UPDATE_GOLDEN=1`); panics listing every mismatch.
    pub fn check(&self, normalize: impl Fn(&str, &[u8]) -> Value) {
        let update = std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1");
        let inputs = self.inputs();
        assert!(
            inputs.len() >= self.at_least,
            "expected at least {} fixtures in {}, found {}",
            self.at_least,
            self.dir.display(),
            inputs.len()
        );
        let mut failures = Vec::new();
        for (name, path) in &inputs {
            let raw = std::fs::read(path).expect("readable fixture");
            let got = normalize(name, &raw);
            let golden_path = path.with_file_name(format!("{name}{}", self.golden_suffix));
            if update {
                let text = serde_json::to_string_pretty(&got).expect("serializable") + "\n";
                std::fs::write(&golden_path, text).expect("golden written");
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&golden_path) else {
                failures.push(format!("{name}: no golden (run with {UPDATE_VAR}=1)"));
                continue;
            };
            let want: Value = serde_json::from_str(&text).expect("golden is JSON");
            if got != want {
                failures.push(format!(
                    "{name}: output differs from golden\n--- golden\n{}\n--- got\n{}",
                    serde_json::to_string_pretty(&want).unwrap_or_default(),
                    serde_json::to_string_pretty(&got).unwrap_or_default()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_skip_goldens_even_when_both_are_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "a.json",
            "a.golden.json",
            "b.json",
            "b.golden.json",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(f), "{}").expect("write");
        }
        let names: Vec<String> = Golden::new(dir.path(), ".json")
            .golden_suffix(".golden.json")
            .inputs()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a", "b"]);
        Golden::new(dir.path(), ".json")
            .golden_suffix(".golden.json")
            .at_least(2)
            .check(|_, raw| serde_json::from_slice(raw).expect("json"));
    }

    #[test]
    #[should_panic(expected = "output differs from golden")]
    fn a_difference_fails_with_both_sides() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.form"), "a=1").expect("write");
        std::fs::write(dir.path().join("x.json"), "{\"a\": 2}").expect("write");
        Golden::new(dir.path(), ".form").check(|_, _| serde_json::json!({"a": 1}));
    }
}
