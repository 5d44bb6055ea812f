//! The Cluster generator (`generators/cluster.go`): one parameter set per cluster Secret.
//!
//! Secrets are selected with the user's selector plus `argocd.argoproj.io/secret-type:
//! cluster` (standard label validation) and keyed by cluster name, so Secrets with the
//! same name collapse into one (the last wins). The implicit local cluster is added last,
//! only when the selector is completely empty and no selected Secret already points at
//! `https://kubernetes.default.svc`. A Secret that matches the selector but cannot be
//! parsed fails the generator: silently dropping it would delete its Applications.

use std::collections::HashMap;
use std::sync::Arc;

use argosy_crds::Cluster;
use argosy_crds::applicationset::ClusterGenerator;
use argosy_crds::consts::{
    IN_CLUSTER_NAME, IN_CLUSTER_SERVER, SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL,
};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::GeneratorError;
use crate::params::{ParamSet, Params, Provenance, sanitize_name};
use crate::selector::{Selector, Validation};
use crate::source::ClusterEntry;
use crate::values::ValuesTemplate;

pub(crate) fn generate(
    ctx: &Context<'_>,
    g: &ClusterGenerator,
    path: &Arc<str>,
) -> Result<Vec<ParamSet>, GeneratorError> {
    let user_selector = g.selector.clone().unwrap_or_default();
    let has_selector = user_selector
        .match_labels
        .as_ref()
        .is_some_and(|m| !m.is_empty())
        || user_selector
            .match_expressions
            .as_ref()
            .is_some_and(|e| !e.is_empty());
    let selector = Selector::compile(
        &user_selector,
        &[(SECRET_TYPE_LABEL, SECRET_TYPE_CLUSTER)],
        Validation::Labels,
    )
    .map_err(|e| GeneratorError::spec(&format!("{path}.selector"), e.to_string()))?;

    let mut selected: Vec<&Cluster> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let clusters = ctx.clusters();
    for entry in clusters.iter() {
        match entry {
            ClusterEntry::Valid(cluster) => {
                if !selector.matches(|k| cluster.labels.get(k).map(String::as_str)) {
                    continue;
                }
                if let Some(&i) = by_name.get(cluster.name.as_str()) {
                    selected[i] = cluster;
                } else {
                    by_name.insert(&cluster.name, selected.len());
                    selected.push(cluster);
                }
            }
            ClusterEntry::Invalid { labels, error, .. } => {
                if selector.matches(|k| labels.get(k).map(String::as_str)) {
                    return Err(GeneratorError::data(
                        path,
                        format!(
                            "{error}; the Secret matches this generator's selector, so its Applications cannot be generated until it is fixed"
                        ),
                    ));
                }
            }
        }
    }

    let values = ValuesTemplate::compile(ctx, &g.values);
    let mut out = Vec::with_capacity(selected.len() + 1);
    for cluster in &selected {
        let mut params = secret_params(cluster, ctx.go_template);
        values.apply(&mut params, path)?;
        let secret = cluster.secret.as_deref().map(Arc::from);
        out.push(ParamSet::new(params, Provenance::cluster(path, secret)));
    }
    if !has_selector && !selected.iter().any(|c| c.server == IN_CLUSTER_SERVER) {
        let mut params = Params::new();
        for (key, value) in [
            ("name", IN_CLUSTER_NAME),
            ("nameNormalized", IN_CLUSTER_NAME),
            ("server", IN_CLUSTER_SERVER),
            ("project", ""),
        ] {
            params.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        values.apply(&mut params, path)?;
        out.push(ParamSet::new(params, Provenance::cluster(path, None)));
    }

    if g.flat_list {
        let clusters = out
            .into_iter()
            .map(|set| Value::Object(set.params))
            .collect();
        let params = Params::from_iter([("clusters".to_owned(), Value::Array(clusters))]);
        return Ok(vec![ParamSet::new(params, Provenance::cluster_list(path))]);
    }
    Ok(out)
}

/// The parameters of a cluster Secret, before `values`.
fn secret_params(cluster: &Cluster, go_template: bool) -> Params {
    let text = |s: &str| Value::String(s.to_owned());
    let mut params = Params::new();
    params.insert("name".to_owned(), text(&cluster.name));
    params.insert(
        "nameNormalized".to_owned(),
        text(&sanitize_name(&cluster.name)),
    );
    params.insert("server".to_owned(), text(&cluster.server));
    params.insert("project".to_owned(), text(&cluster.project));
    if go_template {
        let map = |m: &std::collections::BTreeMap<String, String>| {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        };
        let mut metadata = Map::new();
        if !cluster.annotations.is_empty() {
            metadata.insert("annotations".to_owned(), map(&cluster.annotations));
        }
        if !cluster.labels.is_empty() {
            metadata.insert("labels".to_owned(), map(&cluster.labels));
        }
        params.insert("metadata".to_owned(), Value::Object(metadata));
    } else {
        for (k, v) in &cluster.annotations {
            params.insert(format!("metadata.annotations.{k}"), text(v));
        }
        for (k, v) in &cluster.labels {
            params.insert(format!("metadata.labels.{k}"), text(v));
        }
    }
    params
}

#[cfg(test)]
mod tests;
