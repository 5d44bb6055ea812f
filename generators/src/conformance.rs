//! The `ApplicationSet` conformance cases (`tests/conformance/cases/*.yaml`): their schema,
//! in-memory sources built from a case's inputs, and the comparison of generated
//! Applications with a case's expectation.
//!
//! Shared by this crate's conformance test and `argosy test`, which runs the same cases
//! against real Git repositories: both must judge a case the same way.
//!
//! Comparison (see the cases' README): Applications are matched by name; for each, the
//! name, namespace, labels, annotations and `spec` must be equal once empty/zero fields
//! are ignored on both sides. An `expected.error` must be a substring of the generation
//! error or of a validation error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use argosy_crds::ApplicationSet;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::memory::{MemoryClusters, MemoryProjects, MemoryRepos};
use crate::pipeline::{GenerateError, Generated, PipelineOptions, generate_applications};
use crate::source::{RepoSource, Sources};

/// One conformance case file.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// The Argo CD test or documentation page the case was derived from.
    #[serde(default)]
    pub source: String,
    /// The `ApplicationSet` and the world it is generated in.
    pub input: CaseInput,
    /// What generation must produce.
    pub expected: Expected,
}

/// What the controller is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseInput {
    /// The `ApplicationSet` under test.
    pub application_set: ApplicationSet,
    /// Cluster Secrets present (`stringData` or `data`).
    #[serde(default)]
    pub clusters: Vec<Secret>,
    /// Repository trees: URL -> revision -> tree.
    #[serde(default)]
    pub git: BTreeMap<String, BTreeMap<String, GitTree>>,
}

/// The files of one revision.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GitTree {
    /// Repo-relative path -> file content.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// What must come out: Applications, or an error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expected {
    /// The Applications (compared by name; empty fields ignored).
    #[serde(default)]
    pub applications: Option<Vec<Value>>,
    /// A substring of the generation error or of a validation error.
    #[serde(default)]
    pub error: Option<String>,
}

/// A case file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid conformance case: {0}")]
pub struct CaseError(String);

impl Case {
    /// Reads a case file.
    pub fn from_yaml(text: &str) -> Result<Case, CaseError> {
        serde_yaml_ng::from_str(text).map_err(|e| CaseError(e.to_string()))
    }

    /// The case's clusters (the cluster Secrets in the `ApplicationSet`'s namespace).
    #[must_use]
    pub fn clusters(&self) -> MemoryClusters {
        let namespace = self.input.application_set.metadata.namespace.as_deref();
        MemoryClusters::from_secrets(&self.input.clusters, namespace)
    }

    /// The case's repositories, served from memory.
    #[must_use]
    pub fn repos(&self) -> MemoryRepos {
        let mut repos = MemoryRepos::default();
        for (url, revisions) in &self.input.git {
            for (revision, tree) in revisions {
                let files = tree
                    .files
                    .iter()
                    .map(|(path, content)| (path.clone(), content.as_bytes().to_vec()))
                    .collect();
                repos.insert(url, revision, files);
            }
        }
        repos
    }

    /// Generates with the case's clusters, `repos` and the `default` project, and
    /// compares with the expectation.
    pub fn run(&self, repos: &dyn RepoSource) -> Result<(), String> {
        let clusters = self.clusters();
        let projects = MemoryProjects::default_only();
        let sources = Sources {
            clusters: &clusters,
            repos,
            projects: &projects,
        };
        let result = generate_applications(
            &self.input.application_set,
            sources,
            &PipelineOptions::default(),
        );
        compare(&self.expected, &result)
    }

    /// [`Case::run`] with the case's repositories served from memory.
    pub fn run_in_memory(&self) -> Result<(), String> {
        self.run(&self.repos())
    }
}

/// Compares a generation result with a case's expectation; the error is a readable diff.
pub fn compare(
    expected: &Expected,
    actual: &Result<Generated, GenerateError>,
) -> Result<(), String> {
    if let Some(want) = &expected.error {
        return match actual {
            Err(e) if e.to_string().contains(want.as_str()) => Ok(()),
            Err(e) => Err(format!(
                "expected an error containing {want:?}, got error: {e}"
            )),
            Ok(g)
                if g.validation_errors
                    .iter()
                    .any(|v| v.message.contains(want.as_str())) =>
            {
                Ok(())
            }
            Ok(g) => Err(format!(
                "expected an error containing {want:?}, but generation succeeded with {} application(s){}",
                g.applications.len(),
                validation_summary(g)
            )),
        };
    }
    let generated = actual
        .as_ref()
        .map_err(|e| format!("expected applications, but generation failed: {e}"))?;
    let mut want = BTreeMap::new();
    for app in expected.applications.iter().flatten() {
        let app = canonical(app);
        want.insert(name_of(&app), app);
    }
    let mut got = BTreeMap::new();
    for app in &generated.applications {
        let value = serde_json::to_value(&app.application).map_err(|e| e.to_string())?;
        let value = canonical(&value);
        got.insert(name_of(&value), value);
    }
    let mut diff = Vec::new();
    let names: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    for name in names {
        match (want.get(name), got.get(name)) {
            (Some(_), None) => diff.push(format!("missing application {name:?}")),
            (None, Some(_)) => diff.push(format!("unexpected application {name:?}")),
            (Some(w), Some(g)) => {
                let before = diff.len();
                diff_values(&mut diff, "", w, g);
                if diff.len() > before {
                    diff.insert(before, format!("application {name:?}:"));
                }
            }
            (None, None) => {}
        }
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            diff.join("\n"),
            validation_summary(generated)
        ))
    }
}

fn validation_summary(g: &Generated) -> String {
    let mut out = String::new();
    for v in &g.validation_errors {
        let _ = write!(out, "\nvalidation error: {}", v.message);
    }
    out
}

fn name_of(app: &Value) -> String {
    app.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The compared fields of an Application, with empty/zero fields removed.
fn canonical(app: &Value) -> Value {
    let meta = app.get("metadata").cloned().unwrap_or(Value::Null);
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "labels": pick("labels"),
            "annotations": pick("annotations"),
        },
        "spec": app.get("spec").cloned().unwrap_or(Value::Null),
    });
    prune(&mut out);
    out
}

/// Drops null, "", false, 0, [] and {} values from objects, recursively.
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !prune(v));
            map.is_empty()
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            items.is_empty()
        }
        Value::Null => true,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
    }
}

fn diff_values(out: &mut Vec<String>, path: &str, want: &Value, got: &Value) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let keys: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
            for k in keys {
                match (w.get(k), g.get(k)) {
                    (Some(wv), Some(gv)) => diff_values(out, &child(k), wv, gv),
                    (Some(wv), None) => out.push(format!("  {}: expected {wv}, missing", child(k))),
                    (None, Some(gv)) => out.push(format!("  {}: unexpected {gv}", child(k))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff_values(out, &format!("{path}[{i}]"), wv, gv);
            }
        }
        _ if want != got => out.push(format!("  {path}: expected {want}, got {got}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ignores_empty_fields_and_other_metadata() {
        let a = json!({"metadata": {"name": "x", "namespace": "argocd", "finalizers": ["f"],
            "annotations": {"p": ""}}, "spec": {"project": "default", "source": {"path": "a", "chart": ""}}});
        let b = json!({"metadata": {"name": "x", "namespace": "argocd"},
            "spec": {"project": "default", "source": {"path": "a"}, "syncPolicy": {}}});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn diff_names_the_field() {
        let mut out = Vec::new();
        diff_values(
            &mut out,
            "",
            &json!({"spec": {"l": [1, 2], "s": "a"}}),
            &json!({"spec": {"l": [1, 3], "t": "b", "s": "a"}}),
        );
        assert_eq!(
            out,
            [
                "  spec.l[1]: expected 2, got 3",
                "  spec.t: unexpected \"b\""
            ]
        );
    }
}
