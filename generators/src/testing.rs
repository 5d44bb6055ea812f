//! Unit-test helpers: an `ApplicationSet` builder and in-memory sources.

use std::collections::BTreeMap;

use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::{ApplicationSet, Cluster, ClusterSecretError};
use argosy_templates::Mode;
use serde_json::{Value, json};

use crate::context::{Context, Depth};
use crate::generator::transform;
use crate::memory::{MemoryClusters, MemoryProjects, MemoryRepos};
use crate::source::{ClusterEntry, Sources};

/// An `ApplicationSet` `test` in `argocd` with `spec`; a template using project `default`
/// is added when `spec` has none.
pub fn appset(mut spec: Value) -> ApplicationSet {
    if spec.get("template").is_none() {
        spec["template"] = json!({"metadata": {"name": "app"}, "spec": {"project": "default"}});
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "test", "namespace": "argocd"},
        "spec": spec
    }))
    .expect("valid ApplicationSet")
}

/// In-memory clusters, repositories and the `default` project.
pub struct Fixture {
    pub clusters: MemoryClusters,
    pub repos: MemoryRepos,
    pub projects: MemoryProjects,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            clusters: MemoryClusters::default(),
            repos: MemoryRepos::default(),
            projects: MemoryProjects::default_only(),
        }
    }
}

fn cluster_labels(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.insert(SECRET_TYPE_LABEL.to_owned(), SECRET_TYPE_CLUSTER.to_owned());
    out
}

impl Fixture {
    /// Adds a cluster Secret `argocd/<name>`.
    pub fn cluster(mut self, name: &str, server: &str, labels: &[(&str, &str)]) -> Self {
        self.clusters.0.push(ClusterEntry::Valid(Cluster {
            secret: Some(format!("argocd/{name}")),
            name: name.to_owned(),
            server: server.to_owned(),
            labels: cluster_labels(labels),
            ..Cluster::default()
        }));
        self
    }

    /// Adds an unparsable cluster Secret `argocd/<name>`.
    pub fn invalid_cluster(mut self, name: &str, labels: &[(&str, &str)]) -> Self {
        let secret = format!("argocd/{name}");
        self.clusters.0.push(ClusterEntry::Invalid {
            labels: cluster_labels(labels),
            error: ClusterSecretError::MissingField {
                secret: secret.clone(),
                field: "server",
            },
            secret,
        });
        self
    }

    /// Adds a repository tree.
    pub fn repo(mut self, url: &str, revision: &str, files: &[(&str, &str)]) -> Self {
        let files = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect();
        self.repos.insert(url, revision, files);
        self
    }

    pub fn sources(&self) -> Sources<'_> {
        Sources {
            clusters: &self.clusters,
            repos: &self.repos,
            projects: &self.projects,
        }
    }

    /// Runs `generator` as `spec.generators[0]` of `appset`; the parameter sets of all its
    /// kinds, or the error message.
    pub fn run(&self, appset: &ApplicationSet, generator: Value) -> Result<Vec<Value>, String> {
        let generator = serde_json::from_value(generator).map_err(|e| e.to_string())?;
        let spec = &appset.spec;
        let mode = Mode::from_spec(spec.go_template, &spec.go_template_options)
            .map_err(|e| e.to_string())?;
        let ctx = Context::new(appset, self.sources(), mode);
        let outputs = transform(
            &ctx,
            &generator,
            "spec.generators[0]",
            Some(&spec.template),
            Depth::Top,
        )
        .map_err(|e| e.to_string())?;
        let mut params = Vec::new();
        for output in outputs {
            let sets = output.into_params(&ctx).map_err(|e| e.to_string())?;
            params.extend(sets.into_iter().map(|set| Value::Object(set.params)));
        }
        Ok(params)
    }
}

/// [`Fixture::run`] without clusters or repositories.
pub fn run_generator(appset: &ApplicationSet, generator: Value) -> Result<Vec<Value>, String> {
    Fixture::default().run(appset, generator)
}
