//! Running one generator entry: Argo CD's `Transform` (`generator_spec_processor.go`).
//!
//! For one entry of `spec.generators` (or of a matrix/merge child list) this module runs
//! every generator kind that is set, merges the generator-level template into
//! `spec.template`, and hands out the parameter sets through the post-selector. It also
//! runs the children of matrix/merge (`child_params`, handed to `combine`) and computes
//! the requeue interval.
//!
//! What the kinds share lives below them, in leaf modules: the per-generation
//! [`Context`] and the nesting [`Depth`] (`context`), `values` interpolation (`values`)
//! and the one error type every generator reports, [`GeneratorError`] (`error`), which
//! names the generator's field path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use argosy_crds::applicationset::{
    ApplicationSetTemplate, CombinationGenerator, Generator, json_is_empty,
};
use serde_json::Value;

use crate::context::{Context, Depth};
use crate::error::GeneratorError;
use crate::params::{ParamSet, Params, flatten};
use crate::selector::{Selector, Validation};
use crate::{cluster, combine, git, list};

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
            Kind::Matrix(g) => Sets::Matrix(Box::new(combine::Matrix::new(
                ctx,
                g,
                &kind_path,
                depth,
                child_params,
            )?)),
            Kind::Merge(g) => ready(combine::merge(ctx, g, &kind_path, depth, child_params)?),
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

/// The parameter sets of one matrix/merge child.
fn child_params(
    ctx: &Context<'_>,
    entry: &Generator,
    path: &str,
    depth: Depth,
) -> Result<Vec<ParamSet>, GeneratorError> {
    let mut outputs = transform(ctx, entry, path, None, depth.child())?;
    match (outputs.pop(), outputs.is_empty()) {
        (None, _) => Err(GeneratorError::spec(
            path,
            "child generator generated no parameters (no generator is set, or a combination generator is nested more than once)",
        )),
        (Some(output), true) => output.into_params(ctx),
        _ => Err(GeneratorError::spec(
            path,
            "found more than one generator in matrix.Generators",
        )),
    }
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
