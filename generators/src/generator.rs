//! Running one generator entry: Argo CD's `Transform` (`generator_spec_processor.go`).
//!
//! For one entry of `spec.generators` (or of a matrix/merge child list) this module runs
//! every generator kind that is set, merges the generator-level template into
//! `spec.template`, and hands out the parameter sets through the post-selector. It also
//! owns what the kinds share: the per-generation [`Context`] (cluster list and repository
//! trees are fetched once per generation, however often a matrix re-runs a child),
//! `values` interpolation, the nesting limit and requeue computation, and the one error
//! type every generator reports, [`GeneratorError`], which names the generator's field
//! path.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use argosy_crds::ApplicationSet;
use argosy_crds::applicationset::{
    ApplicationSetTemplate, CombinationGenerator, Generator, json_is_empty,
};
use argosy_templates::{Mode, StringTemplate};
use serde_json::Value;

use crate::params::{ParamSet, Params, flatten};
use crate::selector::{Selector, Validation};
use crate::source::{ClusterEntry, RepoError, Sources};
use crate::validate::Destinations;
use crate::{cluster, combine, git, list};

/// A generator failed; every variant names the generator's field path, e.g.
/// `spec.generators[0].matrix.generators[1].git`.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The generator cannot run as written (structure, selector, missing fields).
    #[error("{path}: {message}")]
    InvalidSpec {
        /// Field path of the generator.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The generator ran, but its input is unusable (a file, an element, a Secret).
    #[error("{path}: {message}")]
    Generator {
        /// Field path of the generator.
        path: String,
        /// What is wrong with the input.
        message: String,
    },
    /// A repository could not be read.
    #[error("{path}: {source}")]
    Repo {
        /// Field path of the generator.
        path: String,
        /// Why the repository could not be read.
        #[source]
        source: RepoError,
    },
    /// A template in the generator (`values`, matrix interpolation) failed to render.
    #[error("{path}: {message}")]
    Render {
        /// Field path of the generator.
        path: String,
        /// The template error.
        message: String,
    },
    /// A generator kind Argosy does not implement.
    #[error("{path}: {kind} generator is not supported by this version of Argosy")]
    Unsupported {
        /// Field path of the generator.
        path: String,
        /// The generator's key (`pullRequest`, `scmProvider`, ...).
        kind: &'static str,
    },
}

impl GeneratorError {
    pub(crate) fn spec(path: &str, message: impl Into<String>) -> Self {
        Self::InvalidSpec {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn data(path: &str, message: impl Into<String>) -> Self {
        Self::Generator {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn render(path: &str, message: impl Into<String>) -> Self {
        Self::Render {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// A static category for metrics and events.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } | Self::Unsupported { .. } => "InvalidSpec",
            Self::Generator { .. } => "GeneratorError",
            Self::Repo { .. } => "RepoError",
            Self::Render { .. } => "RenderError",
        }
    }

    /// False only for failures outside the user's control (reading a repository).
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Repo { .. })
    }
}

/// Everything one generation shares: the `ApplicationSet`, the sources, the template mode
/// and the data fetched so far.
pub(crate) struct Context<'a> {
    pub appset: &'a ApplicationSet,
    pub sources: Sources<'a>,
    pub mode: Mode,
    pub go_template: bool,
    /// Dropped once no generator will need it again (see [`Context::release_clusters`]).
    clusters: RefCell<Option<Rc<Vec<ClusterEntry>>>>,
    destinations: OnceCell<Destinations>,
    trees: RefCell<HashMap<(String, String), Arc<git::Tree>>>,
    strict_mode: OnceCell<Result<Mode, String>>,
}

impl<'a> Context<'a> {
    pub fn new(appset: &'a ApplicationSet, sources: Sources<'a>, mode: Mode) -> Self {
        Self {
            appset,
            sources,
            mode,
            go_template: appset.spec.go_template,
            clusters: RefCell::new(None),
            destinations: OnceCell::new(),
            trees: RefCell::new(HashMap::new()),
            strict_mode: OnceCell::new(),
        }
    }

    /// The cluster Secrets, listed once per generation (again after a release).
    pub fn clusters(&self) -> Rc<Vec<ClusterEntry>> {
        if let Some(clusters) = self.clusters.borrow().as_ref() {
            return clusters.clone();
        }
        let clusters = Rc::new(self.sources.clusters.clusters());
        *self.clusters.borrow_mut() = Some(clusters.clone());
        clusters
    }

    /// The clusters Applications may be sent to, for validation.
    pub fn destinations(&self) -> &Destinations {
        self.destinations
            .get_or_init(|| Destinations::new(&self.clusters()))
    }

    /// Drops the cluster list (keeping what validation needs) when rendering is about to
    /// start and nothing will list clusters again: with 10,000 clusters that memory is
    /// better spent on the Applications.
    pub fn release_clusters(&self) {
        if self.clusters.borrow().is_some() {
            self.destinations();
            *self.clusters.borrow_mut() = None;
        }
    }

    /// A repository tree, resolved once per `(repo, revision)` per generation.
    pub fn tree(&self, repo: &str, revision: &str) -> Result<Arc<git::Tree>, RepoError> {
        let key = (repo.to_owned(), revision.to_owned());
        if let Some(tree) = self.trees.borrow().get(&key) {
            return Ok(tree.clone());
        }
        let tree = Arc::new(git::Tree::new(self.sources.repos.snapshot(repo, revision)?));
        self.trees.borrow_mut().insert(key, tree.clone());
        Ok(tree)
    }

    /// The goTemplate mode with `missingkey=error` appended (matrix `values` pre-resolution).
    pub fn strict_mode(&self) -> Result<&Mode, String> {
        self.strict_mode
            .get_or_init(|| {
                let mut options = self.appset.spec.go_template_options.clone();
                options.push("missingkey=error".to_owned());
                Mode::from_spec(true, &options).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// How deep an entry sits: combination generators may be nested only once. At
/// [`Depth::Leaf`] their fields are dropped, as Argo CD's `ApplicationSetTerminalGenerator`
/// has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    Top,
    Nested,
    Leaf,
}

impl Depth {
    pub fn child(self) -> Depth {
        match self {
            Depth::Top => Depth::Nested,
            Depth::Nested | Depth::Leaf => Depth::Leaf,
        }
    }
}

/// One generator kind set in an entry.
enum Kind<'g> {
    List(&'g argosy_crds::applicationset::ListGenerator),
    Clusters(&'g argosy_crds::applicationset::ClusterGenerator),
    Git(&'g argosy_crds::applicationset::GitGenerator),
    Matrix(&'g CombinationGenerator),
    Merge(&'g CombinationGenerator),
    Unsupported(&'static str),
}

impl Kind<'_> {
    fn name(&self) -> &'static str {
        match self {
            Kind::List(_) => "list",
            Kind::Clusters(_) => "clusters",
            Kind::Git(_) => "git",
            Kind::Matrix(_) => "matrix",
            Kind::Merge(_) => "merge",
            Kind::Unsupported(name) => name,
        }
    }

    fn template(&self) -> Option<&ApplicationSetTemplate> {
        match self {
            Kind::List(g) => Some(&g.template),
            Kind::Clusters(g) => Some(&g.template),
            Kind::Git(g) => Some(&g.template),
            Kind::Matrix(g) | Kind::Merge(g) => Some(&g.template),
            Kind::Unsupported(_) => None,
        }
    }
}

/// The kinds set in `entry`, in Argo CD's field order.
fn kinds(entry: &Generator, depth: Depth) -> Vec<Kind<'_>> {
    let combinations = depth != Depth::Leaf;
    let mut out = Vec::new();
    out.extend(entry.list.as_ref().map(Kind::List));
    out.extend(entry.clusters.as_ref().map(Kind::Clusters));
    out.extend(entry.git.as_ref().map(Kind::Git));
    let unsupported = [
        (entry.scm_provider.is_some(), "scmProvider"),
        (
            entry.cluster_decision_resource.is_some(),
            "clusterDecisionResource",
        ),
        (entry.pull_request.is_some(), "pullRequest"),
    ];
    out.extend(
        unsupported
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, n)| Kind::Unsupported(n)),
    );
    if combinations {
        out.extend(entry.matrix.as_ref().map(Kind::Matrix));
        out.extend(entry.merge.as_ref().map(Kind::Merge));
    }
    if entry.plugin.is_some() {
        out.push(Kind::Unsupported("plugin"));
    }
    out
}

/// The output of one generator kind of an entry: its merged template and its parameter
/// sets, produced in batches so that a large top-level matrix never holds all of its
/// combined parameter sets at once.
pub(crate) struct Output<'g> {
    /// Field path of the kind, e.g. `spec.generators[0].list`.
    pub path: Arc<str>,
    /// The generator template merged with the base template, Application-shaped
    /// (`{metadata, spec}`); `Value::Null` when no base template was given.
    pub template: Value,
    selector: Option<Selector>,
    sets: Sets<'g>,
}

enum Sets<'g> {
    Ready(std::vec::IntoIter<ParamSet>),
    Matrix(Box<combine::Matrix<'g>>),
}

impl Output<'_> {
    /// Appends about `want` more parameter sets (fewer once the post-selector filtered
    /// them) to `out`; false once there are no more.
    pub fn next_batch(
        &mut self,
        ctx: &Context<'_>,
        out: &mut Vec<ParamSet>,
        want: usize,
    ) -> Result<bool, GeneratorError> {
        let start = out.len();
        let more = match &mut self.sets {
            Sets::Ready(sets) => {
                out.extend(sets.by_ref().take(want));
                sets.len() > 0
            }
            Sets::Matrix(matrix) => matrix.next_batch(ctx, out, want)?,
        };
        if let Some(selector) = &self.selector {
            let batch = out.split_off(start);
            out.extend(
                batch
                    .into_iter()
                    .filter(|set| post_select(selector, &set.params)),
            );
        }
        Ok(more)
    }

    /// The post-selector, if any (see [`post_select`]).
    pub fn selector(&self) -> Option<&Selector> {
        self.selector.as_ref()
    }

    /// True when all parameter sets are generated already (nothing is generated lazily).
    pub fn is_ready(&self) -> bool {
        matches!(self.sets, Sets::Ready(_))
    }

    /// The rest of the output as a [`combine::SharedMatrix`], when it is a matrix whose
    /// second child does not depend on the first. The post-selector is then up to the
    /// caller.
    pub fn shared_matrix(
        &mut self,
        ctx: &Context<'_>,
    ) -> Result<Option<combine::SharedMatrix>, GeneratorError> {
        match &mut self.sets {
            Sets::Matrix(matrix) => matrix.shared(ctx),
            Sets::Ready(_) => Ok(None),
        }
    }

    /// All remaining parameter sets.
    pub fn into_params(mut self, ctx: &Context<'_>) -> Result<Vec<ParamSet>, GeneratorError> {
        let mut out = Vec::new();
        while self.next_batch(ctx, &mut out, usize::MAX)? {}
        Ok(out)
    }
}

/// Runs every generator kind of `entry` (at field path `path`); the post-selector is
/// applied as the outputs are read. `base` is `spec.template` for top-level entries and
/// None inside matrix/merge, whose child templates are ignored.
pub(crate) fn transform<'g>(
    ctx: &Context<'_>,
    entry: &'g Generator,
    path: &str,
    base: Option<&ApplicationSetTemplate>,
    depth: Depth,
) -> Result<Vec<Output<'g>>, GeneratorError> {
    let selector = match &entry.selector {
        Some(s) => Some(
            Selector::compile(s, &[], Validation::Params)
                .map_err(|e| GeneratorError::spec(&format!("{path}.selector"), e.to_string()))?,
        ),
        None => None,
    };
    if let Some(error) = &entry.invalid {
        return Err(GeneratorError::spec(
            path,
            format!("invalid generator: {error}"),
        ));
    }
    if !entry.extra.is_empty() {
        let keys: Vec<String> = entry.extra.keys().map(|k| format!("{k:?}")).collect();
        return Err(GeneratorError::spec(
            path,
            format!(
                "unknown generator {} (known: list, clusters, git, matrix, merge)",
                keys.join(", ")
            ),
        ));
    }
    let kinds = kinds(entry, depth);
    if kinds.is_empty() && depth == Depth::Top {
        return Err(GeneratorError::spec(path, "no generator is set"));
    }
    let mut outputs = Vec::new();
    for kind in kinds {
        let kind_path: Arc<str> = format!("{path}.{}", kind.name()).into();
        let template = match (base, kind.template()) {
            (Some(base), Some(own)) => merge_templates(own, base)
                .map_err(|e| GeneratorError::spec(&format!("{kind_path}.template"), e))?,
            (Some(base), None) => {
                template_value(base).map_err(|e| GeneratorError::spec("spec.template", e))?
            }
            (None, _) => Value::Null,
        };
        let ready = |sets: Vec<ParamSet>| Sets::Ready(sets.into_iter());
        let sets = match kind {
            Kind::List(g) => ready(list::generate(ctx, g, &kind_path)?),
            Kind::Clusters(g) => ready(cluster::generate(ctx, g, &kind_path)?),
            Kind::Git(g) => ready(git::generate(ctx, g, &kind_path)?),
            Kind::Matrix(g) => {
                Sets::Matrix(Box::new(combine::Matrix::new(ctx, g, &kind_path, depth)?))
            }
            Kind::Merge(g) => ready(combine::merge(ctx, g, &kind_path, depth)?),
            Kind::Unsupported(kind) => {
                return Err(GeneratorError::Unsupported {
                    path: kind_path.to_string(),
                    kind,
                });
            }
        };
        outputs.push(Output {
            path: kind_path,
            template,
            selector: selector.clone(),
            sets,
        });
    }
    Ok(outputs)
}

/// The post-selector test: parameters flattened with dots and formatted with `%v`.
pub(crate) fn post_select(selector: &Selector, params: &Params) -> bool {
    if selector.is_empty() {
        return true;
    }
    let mut flat = BTreeMap::new();
    flatten(params, |k, v| {
        flat.insert(k, v);
    });
    selector.matches(|k| flat.get(k).map(String::as_str))
}

/// The requeue interval of one entry: the minimum non-zero value over its kinds.
pub(crate) fn requeue_after(
    entry: &Generator,
    depth: Depth,
    default_git: Duration,
) -> Option<Duration> {
    kinds(entry, depth)
        .into_iter()
        .filter_map(|kind| match kind {
            Kind::Git(g) => match g.requeue_after_seconds {
                Some(secs) => u64::try_from(secs).ok().map(Duration::from_secs),
                None => Some(default_git),
            },
            Kind::Matrix(c) | Kind::Merge(c) => c
                .generators
                .iter()
                .filter_map(|child| requeue_after(child, depth.child(), default_git))
                .min(),
            Kind::List(_) | Kind::Clusters(_) | Kind::Unsupported(_) => None,
        })
        .filter(|d| !d.is_zero())
        .min()
}

/// A generator-level template merged with `spec.template` like `mergo.Merge` without
/// override: what the generator template sets wins, empty fields are filled from the
/// base, maps are unioned.
fn merge_templates(
    own: &ApplicationSetTemplate,
    base: &ApplicationSetTemplate,
) -> Result<Value, String> {
    let mut merged = template_value(own)?;
    fill_empty(&mut merged, &template_value(base)?);
    Ok(merged)
}

fn template_value(template: &ApplicationSetTemplate) -> Result<Value, String> {
    serde_json::to_value(template).map_err(|e| e.to_string())
}

/// `mergo.Merge(dst, src)` without override on JSON: empty (zero) destination values
/// take the source value, objects merge recursively.
fn fill_empty(dst: &mut Value, src: &Value) {
    if json_is_empty(dst) {
        *dst = src.clone();
        return;
    }
    if let (Value::Object(d), Value::Object(s)) = (dst, src) {
        for (k, sv) in s {
            match d.get_mut(k) {
                Some(dv) => fill_empty(dv, sv),
                None => {
                    d.insert(k.clone(), sv.clone());
                }
            }
        }
    }
}

/// A generator's `values`, each compiled once and rendered against every parameter set.
pub(crate) struct ValuesTemplate {
    /// Compile errors are kept and only reported when a parameter set needs the value,
    /// as Argo CD only parses a value when rendering it.
    entries: Vec<(String, Result<StringTemplate, String>)>,
    go_template: bool,
}

impl ValuesTemplate {
    pub fn compile(ctx: &Context<'_>, values: &BTreeMap<String, String>) -> Self {
        Self {
            entries: values
                .iter()
                .map(|(k, v)| {
                    let compiled = StringTemplate::compile(v, &ctx.mode).map_err(|e| e.to_string());
                    (k.clone(), compiled)
                })
                .collect(),
            go_template: ctx.go_template,
        }
    }

    /// Renders every value against `params` (values cannot see each other), then adds
    /// them as `values.<k>` (fasttemplate) or a `values` map (goTemplate).
    pub fn apply(&self, params: &mut Params, path: &str) -> Result<(), GeneratorError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut rendered = Vec::with_capacity(self.entries.len());
        for (key, template) in &self.entries {
            let value = match template {
                Ok(t) => t.render(params).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            let value = value.map_err(|e| {
                GeneratorError::render(
                    &format!("{path}.values.{key}"),
                    format!("failed to replace templated string: {e}"),
                )
            })?;
            rendered.push((key, value));
        }
        if self.go_template {
            let map = rendered
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::String(v)))
                .collect();
            params.insert("values".to_owned(), Value::Object(map));
        } else {
            for (k, v) in rendered {
                params.insert(format!("values.{k}"), Value::String(v));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_merge_fills_empty_fields_and_unions_maps() {
        let own: ApplicationSetTemplate = serde_json::from_value(json!({
            "metadata": {"name": "test", "labels": {"foo": "bar"}},
            "spec": {"project": "default", "destination": {}, "source": {"path": "own"}}
        }))
        .unwrap();
        let base: ApplicationSetTemplate = serde_json::from_value(json!({
            "metadata": {"name": "name", "labels": {"label_name": "label_value"}},
            "spec": {"project": "other", "destination": {"server": "s", "namespace": "n"},
                     "source": {"path": "base", "repoURL": "r"}}
        }))
        .unwrap();
        let merged = merge_templates(&own, &base).unwrap();
        assert_eq!(
            merged,
            json!({
                "metadata": {"name": "test", "labels": {"foo": "bar", "label_name": "label_value"}},
                "spec": {"project": "default", "destination": {"server": "s", "namespace": "n"},
                         "source": {"path": "own", "repoURL": "r"}}
            })
        );
    }

    #[test]
    fn requeue_is_min_non_zero() {
        let spec: Vec<Generator> = serde_json::from_value(json!([
            {"list": {"elements": []}},
            {"git": {"repoURL": "r", "revision": "HEAD", "requeueAfterSeconds": 0}},
            {"matrix": {"generators": [
                {"git": {"repoURL": "r", "revision": "HEAD", "requeueAfterSeconds": 30}},
                {"git": {"repoURL": "r", "revision": "HEAD"}}
            ]}}
        ]))
        .unwrap();
        let default = Duration::from_secs(180);
        let got: Vec<_> = spec
            .iter()
            .map(|g| requeue_after(g, Depth::Top, default))
            .collect();
        assert_eq!(got, [None, None, Some(Duration::from_secs(30))]);
    }
}
