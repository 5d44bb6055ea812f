//! The seed corpus: real inputs from the repository and its neighbours. Every `*.yaml`,
//! `*.yml` and `*.json` file under the given directories is kept as text and, where it
//! parses, as JSON-shaped documents, so a target can take whole files (the YAML parsers)
//! or the values found under certain keys (`kustomize:` blocks, `jqPathExpressions`,
//! template strings, durations, ...).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Files larger than this are skipped: they add time, not variety.
const MAX_FILE: u64 = 256 * 1024;

/// The loaded seed corpus.
#[derive(Debug, Default)]
pub struct Corpus {
    /// The text of every file.
    pub files: Vec<Vec<u8>>,
    /// Every document that parsed.
    pub documents: Vec<Value>,
}

impl Corpus {
    /// Loads every YAML/JSON file under `dirs` (missing directories are skipped); returns
    /// the corpus and the directories that were found.
    #[must_use]
    pub fn load(dirs: &[PathBuf]) -> (Corpus, Vec<PathBuf>) {
        let mut corpus = Corpus::default();
        let mut found = Vec::new();
        for dir in dirs {
            if dir.is_dir() {
                found.push(dir.clone());
                corpus.walk(dir);
            }
        }
        (corpus, found)
    }

    fn walk(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        // Sorted, so one seed gives the same inputs on every machine.
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                self.walk(&path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) && path.metadata().is_ok_and(|m| m.len() <= MAX_FILE)
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                    match Value::deserialize(doc) {
                        Ok(Value::Null) => {}
                        Ok(value) => self.documents.push(value),
                        Err(_) => break,
                    }
                }
                self.files.push(text.into_bytes());
            }
        }
    }

    /// Every value found under one of `keys`, anywhere in any document.
    #[must_use]
    pub fn under(&self, keys: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        for doc in &self.documents {
            walk_values(doc, &mut |key, value| {
                if keys.contains(&key) {
                    out.push(value.clone());
                }
            });
        }
        out
    }

    /// Every string in any document (values and keys) for which `keep` holds, once each.
    #[must_use]
    pub fn strings(&self, keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
        let mut out = std::collections::BTreeSet::new();
        for doc in &self.documents {
            walk_values(doc, &mut |key, value| {
                if keep(key) {
                    out.insert(key.as_bytes().to_vec());
                }
                if let Value::String(s) = value
                    && keep(s)
                {
                    out.insert(s.as_bytes().to_vec());
                }
            });
        }
        out.into_iter().collect()
    }
}

/// Calls `f(key, value)` for every value of every object in `value`, depth first (array
/// items are visited with the array's key).
fn walk_values(value: &Value, f: &mut impl FnMut(&str, &Value)) {
    fn go(key: &str, value: &Value, f: &mut impl FnMut(&str, &Value)) {
        f(key, value);
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| go(k, v, f)),
            Value::Array(items) => items.iter().for_each(|v| go(key, v, f)),
            _ => {}
        }
    }
    go("", value, f);
}

/// The JSON text of each value.
#[must_use]
pub fn as_json(values: Vec<Value>) -> Vec<Vec<u8>> {
    values
        .into_iter()
        .map(|v| v.to_string().into_bytes())
        .collect()
}
