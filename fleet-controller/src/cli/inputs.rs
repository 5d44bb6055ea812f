//! Reading user files for the offline commands: ApplicationSets, AppProjects and cluster
//! Secrets from YAML/JSON files or directories.
//!
//! Every error names the file (and the document and field where serde can say), in one
//! line, because this is what a user sees first when their input is wrong.

use std::path::{Path, PathBuf};

use argosy_crds::cluster::is_cluster_secret;
use argosy_crds::{AppProject, ApplicationSet, Cluster, ClusterSecretError};
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use serde_json::Value;

/// Why an input file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: document {doc}: {message}")]
    Parse {
        path: PathBuf,
        doc: usize,
        message: String,
    },
    #[error("{path}: {error}")]
    Cluster {
        path: PathBuf,
        error: ClusterSecretError,
    },
    #[error("{path}: no ApplicationSet found (expected a document with kind: ApplicationSet)")]
    NoApplicationSet { path: PathBuf },
}

/// What `-f` files contain.
#[derive(Debug, Default)]
pub struct Manifests {
    pub application_sets: Vec<(PathBuf, ApplicationSet)>,
    pub projects: Vec<AppProject>,
}

/// Reads ApplicationSets (and any AppProjects next to them) from `paths`.
pub fn load_manifests(paths: &[PathBuf]) -> Result<Manifests, InputError> {
    let mut out = Manifests::default();
    for path in expand(paths)? {
        let before = out.application_sets.len();
        let text = read(&path)?;
        manifests_in(&path, &text, &mut out)?;
        if out.application_sets.len() == before && paths.iter().any(|p| p == &path) {
            return Err(InputError::NoApplicationSet { path });
        }
    }
    Ok(out)
}

/// Adds the ApplicationSets and AppProjects of one file's `text` (read from `path`, which
/// errors name) to `out`. Separate from the file reading so the parsing can be fuzzed.
pub fn manifests_in(path: &Path, text: &str, out: &mut Manifests) -> Result<(), InputError> {
    for (doc, value) in documents(path, text)? {
        match value.get("kind").and_then(Value::as_str) {
            Some("ApplicationSet") => {
                let appset = typed::<ApplicationSet>(path, doc, value)?;
                out.application_sets.push((path.to_owned(), appset));
            }
            Some("AppProject") => {
                let project = typed::<AppProject>(path, doc, value)?;
                out.projects.push(project);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads cluster Secrets from files and directories. Secrets without the
/// `argocd.argoproj.io/secret-type: cluster` label are not clusters and are skipped.
/// A cluster Secret that does not parse is an error naming the file.
pub fn load_clusters(paths: &[PathBuf]) -> Result<Vec<Cluster>, InputError> {
    let mut clusters = Vec::new();
    for path in expand(paths)? {
        let text = read(&path)?;
        clusters.extend(clusters_in(&path, &text)?);
    }
    Ok(clusters)
}

/// The cluster Secrets of one file's `text` (read from `path`, which errors name).
pub fn clusters_in(path: &Path, text: &str) -> Result<Vec<Cluster>, InputError> {
    let mut clusters = Vec::new();
    for (doc, value) in documents(path, text)? {
        let items = match value.get("kind").and_then(Value::as_str) {
            Some("Secret") => vec![value],
            Some("List" | "SecretList") => match value.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        for item in items {
            let secret = typed::<Secret>(path, doc, item)?;
            if !is_cluster_secret(&secret) {
                continue;
            }
            let cluster = Cluster::from_secret(&secret).map_err(|error| InputError::Cluster {
                path: path.to_owned(),
                error,
            })?;
            clusters.push(cluster);
        }
    }
    Ok(clusters)
}

/// Files named directly, plus `*.yaml`/`*.yml`/`*.json` files directly inside named directories.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let read = std::fs::read_dir(path).map_err(|error| InputError::Read {
                path: path.clone(),
                error,
            })?;
            let mut found: Vec<PathBuf> = read
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|error| InputError::Read {
        path: path.to_owned(),
        error,
    })
}

/// The non-empty documents of a YAML (or JSON) file's `text`, numbered from 1.
fn documents(path: &Path, text: &str) -> Result<Vec<(usize, Value)>, InputError> {
    let mut docs = Vec::new();
    argosy_crds::yaml_depth::check(text).map_err(|e| InputError::Parse {
        path: path.to_owned(),
        doc: 1,
        message: e.to_string(),
    })?;
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| InputError::Parse {
            path: path.to_owned(),
            doc: i + 1,
            message: e.to_string(),
        })?;
        if !value.is_null() {
            docs.push((i + 1, value));
        }
    }
    Ok(docs)
}

/// Converts a document to a typed object; the error names the field path.
fn typed<T: serde::de::DeserializeOwned>(
    path: &Path,
    doc: usize,
    value: Value,
) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|e| InputError::Parse {
        path: path.to_owned(),
        doc,
        message: if e.path().to_string() == "." {
            e.inner().to_string()
        } else {
            format!("{}: {}", e.path(), e.inner())
        },
    })
}

#[cfg(test)]
mod tests {
    //! Property tests (issue #15 item 9): any file text, as `argosy generate` reads it.
    use proptest::prelude::*;

    use super::*;

    /// YAML text made of pieces of real manifests, YAML indicators and odd scalars.
    fn yaml_text() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "kind: ApplicationSet\n",
            "kind: AppProject\n",
            "kind: Secret\n",
            "kind: List\n",
            "apiVersion: argoproj.io/v1alpha1\n",
            "metadata:\n  name: a\n",
            "  labels:\n",
            "    argocd.argoproj.io/secret-type: cluster\n",
            "spec:\n",
            "  generators:\n",
            "  - list:\n",
            "      elements: []\n",
            "  template: {}\n",
            "stringData:\n",
            "  server: https://x\n",
            "  config: '{\"bearerToken\": 1}'\n",
            "data:\n",
            "  config: '!!'\n",
            "items:\n",
            "- ",
            "---\n",
            "&a ",
            "*a",
            "<<: *a\n",
            "!!binary ",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "? ",
            "|\n",
            "  ",
            "\t",
            "~",
            "9223372036854775808",
            ".nan",
            "\"\\u0000\"",
            "#",
        ]);
        prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn any_file_text_never_panics(text in prop_oneof!["\\PC{0,200}".boxed(), yaml_text().boxed()]) {
            let path = Path::new("f.yaml");
            let _ = manifests_in(path, &text, &mut Manifests::default());
            let _ = clusters_in(path, &text);
        }
    }
}
