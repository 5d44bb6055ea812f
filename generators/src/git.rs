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

use std::sync::Arc;

use argosy_crds::applicationset::{GitGenerator, GitPathItem};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::GeneratorError;
use crate::glob::{go_path_match, pathspec_match};
use crate::params::{
    GitRef, ParamSet, Params, Provenance, flatten, go_base, go_dir, sanitize_name,
};
use crate::source::RepoSnapshot;
use crate::values::ValuesTemplate;

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

/// The parameter objects of a file: an object (an empty file is an empty object) or a
/// list of objects. Only the first YAML document is read, like `sigs.k8s.io/yaml`.
fn parse_objects(text: &str) -> Result<Vec<Params>, String> {
    argosy_crds::yaml_depth::check(text).map_err(|e| format!("unable to parse file: {e}"))?;
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
mod tests;
