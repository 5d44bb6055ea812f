//! Plain directories of manifests, read straight from the snapshot with Argo CD's
//! `directory` options (recurse, include/exclude globs) and the per-file, total and object
//! limits.

use serde::Deserialize;
use serde_json::Value;

use super::error::RenderError;
use super::manifests::{expand_list, json_file, yaml_file};
use super::paths::Tree;
use super::{Renderer, options};

/// `spec.source.directory`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryOptions {
    #[serde(default)]
    recurse: bool,
    #[serde(default)]
    include: String,
    #[serde(default)]
    exclude: String,
    #[serde(default)]
    jsonnet: Option<Value>,
}

/// A `directory.include`/`exclude` glob as Argo CD applies it (gobwas/glob without
/// separators): `*` also matches `/`, `{a,b}` alternatives, matched against the path
/// relative to the source directory. An empty pattern is "not set".
fn directory_glob(field: &str, pattern: &str) -> Result<Option<globset::GlobMatcher>, RenderError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| Some(g.compile_matcher()))
        .map_err(|e| RenderError::Options {
            field: field.to_owned(),
            message: e.to_string(),
        })
}

impl Renderer {
    /// Argo CD's directory rules (`findManifests`): files named `*.yaml`, `*.yml`,
    /// `*.json` (and `*.jsonnet`, refused here) directly in the directory or, with
    /// `recurse`, below it; symlinks are followed inside the repository and are an
    /// error when they lead out of it (even for excluded files, as in Argo CD), links to
    /// missing files or directories are skipped; then `exclude`, then `include`.
    pub(super) fn directory(
        &self,
        tree: &Tree<'_>,
        app: &str,
        options_value: Option<&Value>,
    ) -> Result<Vec<Value>, RenderError> {
        let opts: DirectoryOptions = options("directory", options_value)?;
        if opts.jsonnet.as_ref().is_some_and(jsonnet_is_set) {
            return Err(RenderError::Unsupported {
                what: "directory.jsonnet".to_owned(),
            });
        }
        let include = directory_glob("directory.include", &opts.include)?;
        let exclude = directory_glob("directory.exclude", &opts.exclude)?;
        let mut total = 0u64;
        let mut objects = Vec::new();
        for (path, rel) in tree.files_under(app) {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let is_manifest = [".yaml", ".yml", ".json", ".jsonnet"]
                .iter()
                .any(|ext| name.ends_with(ext));
            if (!opts.recurse && rel.contains('/')) || !is_manifest {
                continue;
            }
            let mut real = path.to_owned();
            if tree.snap.is_symlink(path) {
                real = tree.link_target(path)?;
                if !tree.is_file(&real) {
                    tracing::warn!(
                        file = path,
                        "skipping a symlink to a missing file or a directory"
                    );
                    continue;
                }
            }
            if exclude.as_ref().is_some_and(|g| g.is_match(rel))
                || include.as_ref().is_some_and(|g| !g.is_match(rel))
            {
                continue;
            }
            if name.ends_with(".jsonnet") {
                return Err(RenderError::Unsupported {
                    what: format!("Jsonnet file {path}"),
                });
            }
            let data = tree.snap.read(&real)?;
            let size = data.len() as u64;
            if size > self.limits.max_file_bytes {
                return Err(RenderError::FileTooLarge {
                    file: path.to_owned(),
                    size,
                    limit: self.limits.max_file_bytes,
                });
            }
            total += size;
            if total > self.limits.max_total_bytes {
                return Err(RenderError::TooLarge {
                    what: format!("the manifests of {app:?} (at {path})"),
                    limit: self.limits.max_total_bytes,
                });
            }
            // Case-sensitive, as Argo CD's manifest-file pattern is; the filter above admits
            // only lower-case extensions anyway.
            #[allow(clippy::case_sensitive_file_extension_comparisons)]
            let found = if name.ends_with(".json") {
                json_file(path, &data)?
            } else {
                yaml_file(path, &data)?
            };
            for object in found {
                expand_list(path, object, &mut objects)?;
                if objects.len() > self.limits.max_objects {
                    return Err(RenderError::TooManyObjects {
                        limit: self.limits.max_objects,
                    });
                }
            }
        }
        Ok(objects)
    }
}

/// Argo CD's UI writes `jsonnet: {}`; only real settings mean Jsonnet is wanted.
fn jsonnet_is_set(jsonnet: &Value) -> bool {
    match jsonnet {
        Value::Null => false,
        Value::Object(m) => m.values().any(|v| match v {
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        }),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn directory_reads_yaml_and_json_and_skips_what_argo_skips() {
        let multi = format!("---\n{}---\n\n---\n{}", cm("a"), cm("b"));
        let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}"#;
        let bom = format!("\u{feff}{}", cm("d"));
        let snap = snapshot(
            &[
                ("app/multi.yaml", &multi),
                ("app/c.json", json),
                ("app/d.yml", &bom),
                ("app/README.md", "# not yaml: [}"),
                // Helm-style values: not a manifest, skipped as Argo CD does.
                ("app/values.yaml", "replicas: 3\nimage: {tag: x}\n"),
                ("app/sub/e.yaml", &cm("e")),
                ("other/f.yaml", &cm("f")),
            ],
            &[],
        );
        let r = render(&snap, &source("app", json!({}))).unwrap();
        assert_eq!(r.source_type, SourceType::Directory);
        assert_eq!(r.commit, snap.commit());
        assert_eq!(names(&r), ["c", "d", "a", "b"]);
        let r = render(
            &snap,
            &source("./app/", json!({"directory": {"recurse": true}})),
        )
        .unwrap();
        assert_eq!(names(&r), ["c", "d", "a", "b", "e"]);
        let root = render(&snap, &source("", json!({"directory": {"recurse": true}}))).unwrap();
        assert_eq!(names(&root).len(), 6);
    }

    #[test]
    fn include_and_exclude_use_argo_globs() {
        let snap = snapshot(
            &[
                ("app/a.yaml", &cm("a")),
                ("app/b.yaml", &cm("b")),
                (
                    "app/c.json",
                    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
                ),
                ("app/sub/d.yaml", &cm("d")),
            ],
            &[],
        );
        let with = |dir: Value| {
            let mut d = json!({"recurse": true});
            d.as_object_mut()
                .unwrap()
                .extend(dir.as_object().unwrap().clone());
            names(&render(&snap, &source("app", json!({"directory": d}))).unwrap())
        };
        assert_eq!(with(json!({"include": "{a.yaml,c.json}"})), ["a", "c"]);
        assert_eq!(
            with(json!({"include": "*.yaml"})),
            ["a", "b", "d"],
            "* crosses /"
        );
        assert_eq!(with(json!({"exclude": "sub/*"})), ["a", "b", "c"]);
        assert_eq!(
            with(json!({"include": "*.yaml", "exclude": "{b.yaml,sub/d.yaml}"})),
            ["a"]
        );
        let err = render(
            &snap,
            &source("app", json!({"directory": {"include": "{a"}})),
        )
        .unwrap_err();
        assert_eq!(err.category(), "options");
        assert!(err.to_string().starts_with("directory.include:"), "{err}");
    }

    #[test]
    fn size_and_count_limits() {
        let big = format!("{}data:\n  x: \"{}\"\n", cm("big"), "x".repeat(50 << 20));
        let snap = snapshot(&[("app/big.yaml", &big), ("app/ok.yaml", &cm("ok"))], &[]);
        let err = render(&snap, &source("app", json!({}))).unwrap_err();
        assert_eq!(err.category(), "limit");
        assert_eq!(
            err.to_string(),
            format!(
                "app/big.yaml is {} bytes, over the 10485760-byte limit for one manifest file",
                big.len()
            )
        );

        let snap = snapshot(&[("app/a.yaml", &cm("a")), ("app/b.yaml", &cm("b"))], &[]);
        let small = |limits: Limits| {
            renderer(limits)
                .1
                .render(URL, &snap, &source("app", json!({})), TARGET)
        };
        let total = cm("a").len() as u64 + 1;
        let err = small(Limits {
            max_total_bytes: total,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the manifests of \"app\" (at app/b.yaml) exceeds the {total}-byte limit")
        );
        let err = small(Limits {
            max_objects: 1,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "the source renders more than 1 objects");
        assert!(
            small(Limits {
                max_objects: 2,
                ..Limits::default()
            })
            .is_ok()
        );
    }
}
