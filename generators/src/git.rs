//! The Git generator (`generators/git.go`) over a [`RepoSnapshot`].
//!
//! * Directories: every directory holding a tracked file (intermediate ones included,
//!   hidden ones and everything below them skipped) is a candidate; it is kept if some
//!   include pattern matches it (Go `path.Match`) and no exclude pattern does.
//! * Files: the files matched by the include pathspecs minus those matched by exclude
//!   pathspecs, in path order; each is parsed as YAML/JSON into one parameter set (an
//!   object, an empty file) or one per element (a list).
//!
//! Parameters: `path` (or `<pathParamPrefix>.path`) with its basename, segments and, for
//! files, filename; file content (flattened and stringified in fasttemplate mode); then
//! `values`, interpolated against all of that.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use argosy_crds::applicationset::{GitGenerator, GitPathItem};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::generator::{Context, GeneratorError, ValuesTemplate};
use crate::glob::{go_path_match, pathspec_match};
use crate::params::{
    GitRef, ParamSet, Params, Provenance, flatten, go_base, go_dir, sanitize_name,
};
use crate::source::RepoSnapshot;

pub(crate) fn generate(
    ctx: &Context<'_>,
    g: &GitGenerator,
    path: &Arc<str>,
) -> Result<Vec<ParamSet>, GeneratorError> {
    if g.directories.is_empty() && g.files.is_empty() {
        return Err(GeneratorError::spec(
            path,
            "neither directories nor files are set (ApplicationSet is empty)",
        ));
    }
    check_project(ctx, path)?;
    let tree = ctx
        .tree(&g.repo_url, &g.revision)
        .map_err(|source| GeneratorError::Repo {
            path: path.to_string(),
            source,
        })?;
    let git = Arc::new(GitRef {
        repo: g.repo_url.clone(),
        revision: g.revision.clone(),
        commit: tree.snapshot.commit().to_owned(),
    });
    let values = ValuesTemplate::compile(ctx, &g.values);
    let generator = Gen {
        ctx,
        g,
        path,
        git: &git,
        values: &values,
    };
    if g.directories.is_empty() {
        generator.files(tree.snapshot.as_ref())
    } else {
        generator.directories(tree.directories())
    }
}

/// A repository snapshot with its directory list, computed once per generation even when
/// a matrix runs the generator once per parameter set of its sibling.
pub(crate) struct Tree {
    pub snapshot: Arc<dyn RepoSnapshot>,
    directories: OnceLock<Vec<String>>,
}

impl Tree {
    pub fn new(snapshot: Arc<dyn RepoSnapshot>) -> Self {
        Self {
            snapshot,
            directories: OnceLock::new(),
        }
    }

    fn directories(&self) -> &[String] {
        self.directories
            .get_or_init(|| directories(self.snapshot.files()))
    }
}

/// Argo CD reads the `AppProject` of `spec.template.spec.project` before running the Git
/// generator (unless the project is templated) and fails when it does not exist.
fn check_project(ctx: &Context<'_>, path: &str) -> Result<(), GeneratorError> {
    let project = ctx
        .appset
        .spec
        .template
        .spec
        .get("project")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if project.contains("{{") || ctx.sources.projects.project_exists(project) {
        return Ok(());
    }
    Err(GeneratorError::data(
        path,
        format!("error getting project {project}: AppProject {project:?} not found"),
    ))
}

struct Gen<'c, 'a> {
    ctx: &'c Context<'a>,
    g: &'c GitGenerator,
    path: &'c Arc<str>,
    git: &'c Arc<GitRef>,
    values: &'c ValuesTemplate,
}

impl Gen<'_, '_> {
    fn directories(&self, candidates: &[String]) -> Result<Vec<ParamSet>, GeneratorError> {
        let items = &self.g.directories;
        // A malformed pattern is an error here, where Argo CD logs it and skips the
        // pattern: skipping can shrink the result to nothing, and an empty result deletes
        // every Application of the ApplicationSet. Go's `path.Match` validates the whole
        // pattern on every call, so matching the empty name checks it.
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = go_path_match(&item.path, "") {
                return Err(GeneratorError::spec(
                    &format!("{}.directories[{i}].path", self.path),
                    format!("invalid pattern {:?}: {e}", item.path),
                ));
            }
        }
        let matches =
            |item: &GitPathItem, dir: &str| go_path_match(&item.path, dir).unwrap_or(false);
        let mut out = Vec::new();
        for dir in candidates {
            let mut include = false;
            let mut exclude = false;
            for item in items {
                if matches(item, dir) {
                    if item.exclude {
                        exclude = true;
                    } else {
                        include = true;
                    }
                }
            }
            if !include || exclude {
                continue;
            }
            let mut params = self.path_params(dir, None);
            self.values.apply(&mut params, self.path)?;
            let provenance = Provenance::git_directory(self.path, self.git, dir);
            out.push(ParamSet::new(params, provenance));
        }
        Ok(out)
    }

    fn files(&self, snapshot: &dyn RepoSnapshot) -> Result<Vec<ParamSet>, GeneratorError> {
        let (excludes, includes): (Vec<_>, Vec<_>) =
            self.g.files.iter().partition(|item| item.exclude);
        let selected = snapshot.files().iter().filter(|file| {
            includes.iter().any(|i| pathspec_match(&i.path, file))
                && !excludes.iter().any(|e| pathspec_match(&e.path, file))
        });
        let mut out = Vec::new();
        for file in selected {
            let unable = |why: String| {
                GeneratorError::data(self.path, format!("unable to process file '{file}': {why}"))
            };
            let content = snapshot.read(file).map_err(|e| unable(e.to_string()))?;
            let text = String::from_utf8(content).map_err(|_| unable("not UTF-8 text".into()))?;
            let objects = parse_objects(&text).map_err(unable)?;
            for (index, object) in objects.into_iter().enumerate() {
                let mut params = if self.ctx.go_template {
                    object
                } else {
                    let mut flat = Params::new();
                    flatten(&object, |k, v| {
                        flat.insert(k, Value::String(v));
                    });
                    flat
                };
                let dir = go_dir(file);
                for (k, v) in self.path_params(dir, Some(go_base(file))) {
                    params.insert(k, v);
                }
                self.values.apply(&mut params, self.path)?;
                let provenance = Provenance::git_file(self.path, self.git, file, index);
                out.push(ParamSet::new(params, provenance));
            }
        }
        Ok(out)
    }

    /// The `path` parameters of directory `dir` (plus `filename` for a file).
    fn path_params(&self, dir: &str, filename: Option<&str>) -> Params {
        let text = |s: &str| Value::String(s.to_owned());
        let basename = go_base(dir);
        let prefix = &self.g.path_param_prefix;
        let mut out = Params::new();
        if self.ctx.go_template {
            let mut p = Map::new();
            p.insert("path".to_owned(), text(dir));
            p.insert("basename".to_owned(), text(basename));
            p.insert(
                "basenameNormalized".to_owned(),
                text(&sanitize_name(basename)),
            );
            if let Some(f) = filename {
                p.insert("filename".to_owned(), text(f));
                p.insert("filenameNormalized".to_owned(), text(&sanitize_name(f)));
            }
            let segments = dir.split('/').map(text).collect();
            p.insert("segments".to_owned(), Value::Array(segments));
            let path = Value::Object(p);
            if prefix.is_empty() {
                out.insert("path".to_owned(), path);
            } else {
                let nested = Map::from_iter([("path".to_owned(), path)]);
                out.insert(prefix.clone(), Value::Object(nested));
            }
        } else {
            let name = if prefix.is_empty() {
                "path".to_owned()
            } else {
                format!("{prefix}.path")
            };
            out.insert(name.clone(), text(dir));
            out.insert(format!("{name}.basename"), text(basename));
            out.insert(
                format!("{name}.basenameNormalized"),
                text(&sanitize_name(basename)),
            );
            if let Some(f) = filename {
                out.insert(format!("{name}.filename"), text(f));
                out.insert(
                    format!("{name}.filenameNormalized"),
                    text(&sanitize_name(f)),
                );
            }
            for (i, segment) in dir.split('/').enumerate() {
                if !segment.is_empty() {
                    out.insert(format!("{name}[{i}]"), text(segment));
                }
            }
        }
        out
    }
}

/// Every directory holding a tracked file, intermediate ones included, hidden ones
/// (and their subtrees) excluded, in the repo-server's walk order.
fn directories(files: &[String]) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for file in files {
        let Some((parent, _)) = file.rsplit_once('/') else {
            continue;
        };
        let mut end = 0;
        for segment in parent.split('/') {
            if segment.starts_with('.') {
                break;
            }
            end += segment.len();
            dirs.insert(&file[..end]);
            end += 1;
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().map(str::to_owned).collect();
    dirs.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    dirs
}

/// The parameter objects of a file: an object (an empty file is an empty object) or a
/// list of objects. Only the first YAML document is read, like `sigs.k8s.io/yaml`.
fn parse_objects(text: &str) -> Result<Vec<Params>, String> {
    let first = serde_yaml_ng::Deserializer::from_str(text).next();
    let value = match first {
        None => Value::Null,
        Some(doc) => Value::deserialize(doc).map_err(|e| format!("unable to parse file: {e}"))?,
    };
    match value {
        Value::Null => Ok(vec![Params::new()]),
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(map),
                Value::Null => Ok(Params::new()),
                other => Err(format!(
                    "unable to parse file: item {i} is {}, not a map",
                    crate::list::kind(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "unable to parse file: expected a map or a list of maps, got {}",
            crate::list::kind(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, appset};
    use serde_json::json;

    const REPO: &str = "https://git.example/repo.git";

    fn fixture(files: &[(&str, &str)]) -> Fixture {
        Fixture::default().repo(REPO, "HEAD", files)
    }

    fn dirs(items: &Value) -> Value {
        json!({"git": {"repoURL": REPO, "revision": "HEAD", "directories": items}})
    }

    fn paths(params: &[Value], key: &str) -> Vec<String> {
        params
            .iter()
            .map(|p| p[key].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn candidate_directories() {
        let files: Vec<String> = [
            "a/b/c.yaml",
            "a/x.yaml",
            "a-b/y",
            ".hidden/z/f",
            "d/.cache/f",
            "top",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(directories(&files), ["a", "a/b", "a-b", "d"]);
    }

    #[test]
    fn directory_filter_exclude_wins() {
        let f = fixture(&[("d/e/k", ""), ("d/f/k", ""), ("d/g/k", "")]);
        let set = appset(json!({"generators": []}));
        let generator = dirs(&json!([{"path": "d/*"}, {"path": "d/[fg]", "exclude": true}]));
        let params = f.run(&set, generator).unwrap();
        assert_eq!(paths(&params, "path"), ["d/e"]);
        assert_eq!(params[0]["path[1]"], "e");
        assert_eq!(params[0]["path.basenameNormalized"], "e");
        // A malformed pattern is an error (Argo CD skips it, which can empty the result
        // and delete every Application), naming the field and the pattern.
        let err = f
            .run(&set, dirs(&json!([{"path": "d/*"}, {"path": "d/["}])))
            .unwrap_err()
            .clone();
        assert!(err.contains("directories[1].path"), "{err}");
        assert!(err.contains("invalid pattern \"d/[\""), "{err}");
    }

    #[test]
    fn gotemplate_directory_params_with_prefix() {
        let f = fixture(&[("apps/my_app/k", "")]);
        let set = appset(json!({"goTemplate": true, "generators": []}));
        let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD",
            "directories": [{"path": "apps/*"}], "pathParamPrefix": "repo",
            "values": {"v": "{{.repo.path.basename}}"}}});
        let params = f.run(&set, generator).unwrap();
        assert_eq!(
            params[0],
            json!({"repo": {"path": {"path": "apps/my_app", "basename": "my_app",
                "basenameNormalized": "my-app", "segments": ["apps", "my_app"]}},
                "values": {"v": "my_app"}})
        );
    }

    #[test]
    fn files_fasttemplate_flattened_and_path_params() {
        let f = fixture(&[
            (
                "c/prod/config.json",
                r#"{"cluster": {"name": "prod"}, "n": 1000000, "on": true}"#,
            ),
            ("c/list/config.json", "- {name: a}\n- {name: b}\n"),
            ("c/empty/config.json", ""),
            ("c/skip/config.json", "{}"),
        ]);
        let set = appset(json!({"generators": []}));
        let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD",
            "files": [{"path": "c/**/config.json"}, {"path": "c/skip/*", "exclude": true}]}});
        let params = f.run(&set, generator).unwrap();
        assert_eq!(
            paths(&params, "path"),
            ["c/empty", "c/list", "c/list", "c/prod"]
        );
        assert_eq!(params[1]["name"], "a");
        let prod = &params[3];
        assert_eq!(prod["cluster.name"], "prod");
        assert_eq!(prod["n"], "1e+06");
        assert_eq!(prod["on"], "true");
        assert_eq!(prod["path.filename"], "config.json");
        assert_eq!(prod["path[0]"], "c");
        assert_eq!(params[0].as_object().unwrap().len(), 7, "{}", params[0]);
    }

    #[test]
    fn invalid_file_names_the_file() {
        let f = fixture(&[("x/config.json", "invalid json file\n")]);
        let set = appset(json!({"generators": []}));
        let generator = json!({"git": {"repoURL": REPO, "revision": "HEAD", "files": [{"path": "**/config.json"}]}});
        let err = f.run(&set, generator).unwrap_err();
        assert!(
            err.contains("unable to process file 'x/config.json'"),
            "{err}"
        );
    }

    #[test]
    fn missing_project_and_missing_repo_are_errors() {
        let f = fixture(&[("a/b", "")]);
        let set = appset(json!({"generators": [], "template": {"spec": {"project": "nope"}}}));
        let err = f.run(&set, dirs(&json!([{"path": "*"}]))).unwrap_err();
        assert!(err.contains("error getting project nope"), "{err}");

        let set = appset(json!({"generators": []}));
        let generator = json!({"git": {"repoURL": "https://missing", "revision": "HEAD", "directories": [{"path": "*"}]}});
        let err = f.run(&set, generator).unwrap_err();
        assert!(err.contains("repository https://missing"), "{err}");
    }
}
