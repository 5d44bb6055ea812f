//! Builders for the objects the tests and benchmarks create (Applications,
//! ApplicationSets, cluster Secrets) and a free loopback port.
//!
//! The builders produce the same JSON the tests used to write out by hand: a field is
//! in the manifest only when it was set (or has an Argo CD default the tests always
//! wrote), so that a test keeps asserting what it asserted before.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use argosy_crds::Application;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Map, Value, json};

use crate::argocd::{ARGOCD_NAMESPACE, TEST_FIELD_MANAGER};
use crate::control_plane::TestCluster;
pub use crate::ports::free_port;

/// An `argoproj.io/v1alpha1` Application, in [`ARGOCD_NAMESPACE`] and project `default`
/// unless told otherwise.
#[derive(Debug, Clone)]
pub struct AppBuilder {
    name: String,
    namespace: String,
    project: String,
    labels: BTreeMap<String, String>,
    finalizers: Vec<String>,
    repo_url: String,
    path: String,
    revision: Option<String>,
    server: Option<String>,
    destination_name: Option<String>,
    destination_namespace: Option<String>,
    automated: Option<Value>,
    sync_options: Vec<String>,
}

impl AppBuilder {
    /// An Application `name` with an empty source and destination.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: ARGOCD_NAMESPACE.to_owned(),
            project: "default".to_owned(),
            labels: BTreeMap::new(),
            finalizers: Vec::new(),
            repo_url: String::new(),
            path: String::new(),
            revision: None,
            server: None,
            destination_name: None,
            destination_namespace: None,
            automated: None,
            sync_options: Vec::new(),
        }
    }

    /// The namespace the Application lives in.
    /// The Application's namespace and name.
    pub fn namespace_and_name(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// `spec.project`.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = project.into();
        self
    }

    /// A label of the Application.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// A finalizer (e.g. `resources-finalizer.argocd.argoproj.io`).
    pub fn finalizer(mut self, finalizer: impl Into<String>) -> Self {
        self.finalizers.push(finalizer.into());
        self
    }

    /// `spec.source`: the repository and path; no `targetRevision` (Argo's `HEAD`).
    pub fn source(mut self, repo_url: impl Into<String>, path: impl Into<String>) -> Self {
        self.repo_url = repo_url.into();
        self.path = path.into();
        self
    }

    /// `spec.source.targetRevision`.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// `spec.destination.server`.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// `spec.destination.name`.
    pub fn destination_name(mut self, name: impl Into<String>) -> Self {
        self.destination_name = Some(name.into());
        self
    }

    /// `spec.destination.namespace`.
    pub fn destination_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.destination_namespace = Some(namespace.into());
        self
    }

    /// `spec.syncPolicy.automated` with the given `prune` and `selfHeal`.
    pub fn automated(mut self, prune: bool, self_heal: bool) -> Self {
        self.automated = Some(json!({"prune": prune, "selfHeal": self_heal}));
        self
    }

    /// One of `spec.syncPolicy.syncOptions` (e.g. `CreateNamespace=true`).
    pub fn sync_option(mut self, option: impl Into<String>) -> Self {
        self.sync_options.push(option.into());
        self
    }

    /// `spec` alone, e.g. for an ApplicationSet's template.
    pub fn spec(&self) -> Value {
        let mut source = json!({"repoURL": self.repo_url, "path": self.path});
        if let Some(revision) = &self.revision {
            source["targetRevision"] = json!(revision);
        }
        let mut destination = Map::new();
        for (key, value) in [
            ("server", &self.server),
            ("name", &self.destination_name),
            ("namespace", &self.destination_namespace),
        ] {
            if let Some(value) = value {
                destination.insert(key.to_owned(), json!(value));
            }
        }
        let mut spec = json!({
            "project": self.project,
            "source": source,
            "destination": destination,
        });
        let mut sync_policy = Map::new();
        if let Some(automated) = &self.automated {
            sync_policy.insert("automated".to_owned(), automated.clone());
        }
        if !self.sync_options.is_empty() {
            sync_policy.insert("syncOptions".to_owned(), json!(self.sync_options));
        }
        if !sync_policy.is_empty() {
            spec["syncPolicy"] = Value::Object(sync_policy);
        }
        spec
    }

    /// The manifest, for server-side apply with [`crate::argocd::apply_json`].
    pub fn json(&self) -> Value {
        let mut metadata = json!({"name": self.name, "namespace": self.namespace});
        if !self.labels.is_empty() {
            metadata["labels"] = json!(self.labels);
        }
        if !self.finalizers.is_empty() {
            metadata["finalizers"] = json!(self.finalizers);
        }
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": metadata,
            "spec": self.spec(),
        })
    }

    /// The typed Application.
    pub fn build(&self) -> Result<Application> {
        serde_json::from_value(self.json())
            .with_context(|| format!("building Application {}", self.name))
    }
}

/// An `argoproj.io/v1alpha1` ApplicationSet in [`ARGOCD_NAMESPACE`]: generators and a
/// template.
#[derive(Debug, Clone)]
pub struct AppSetBuilder {
    name: String,
    generators: Vec<Value>,
    template: Value,
}

impl AppSetBuilder {
    /// An ApplicationSet `name` without generators and with an empty template.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            generators: Vec::new(),
            template: json!({}),
        }
    }

    /// A list generator over `elements`.
    pub fn list_generator(mut self, elements: Vec<Value>) -> Self {
        self.generators
            .push(json!({"list": {"elements": elements}}));
        self
    }

    /// A cluster generator selecting the cluster Secrets with these labels.
    pub fn cluster_generator(mut self, match_labels: &[(&str, &str)]) -> Self {
        let labels: BTreeMap<&str, &str> = match_labels.iter().copied().collect();
        self.generators
            .push(json!({"clusters": {"selector": {"matchLabels": labels}}}));
        self
    }

    /// The template: Applications named `name` (a template string) with `app`'s spec.
    pub fn template(mut self, name: &str, app: &AppBuilder) -> Self {
        self.template = json!({"metadata": {"name": name}, "spec": app.spec()});
        self
    }

    /// `spec`.
    pub fn spec(&self) -> Value {
        json!({"generators": self.generators, "template": self.template})
    }

    /// The manifest, for server-side apply with [`crate::argocd::apply_json`].
    pub fn json(&self) -> Value {
        crate::argocd::appset_manifest(&self.name, self.spec())
    }
}

/// A declarative cluster Secret `cluster-<name>` in [`ARGOCD_NAMESPACE`], as Argo CD
/// reads them: `name`, `server` and `config` in `data`, the secret-type label.
#[derive(Debug, Clone)]
pub struct ClusterSecretBuilder {
    name: String,
    server: String,
    labels: BTreeMap<String, String>,
    config: Map<String, Value>,
    raw_config: Option<String>,
    /// Other `data` keys (`namespaces`, `clusterResources`, `project`).
    fields: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl ClusterSecretBuilder {
    /// The cluster `name` at `server`, with an empty `config` (`{}`).
    pub fn new(name: impl Into<String>, server: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            server: server.into(),
            labels: BTreeMap::new(),
            config: Map::new(),
            raw_config: None,
            fields: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// An annotation of the Secret (e.g. the `last-applied-configuration` that
    /// `kubectl apply` leaves, with the whole Secret in it).
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// `namespaces`: the only namespaces Argosy may see and write on this cluster.
    pub fn namespaces(mut self, namespaces: &[&str]) -> Self {
        self.fields
            .insert("namespaces".to_owned(), namespaces.join(","));
        self
    }

    /// `clusterResources`: with `namespaces`, whether cluster-scoped kinds are managed too.
    pub fn cluster_resources(mut self, allowed: bool) -> Self {
        self.fields
            .insert("clusterResources".to_owned(), allowed.to_string());
        self
    }

    /// `project`: the AppProject this cluster is scoped to.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.fields.insert("project".to_owned(), project.into());
        self
    }

    /// A label (besides the secret-type label), for cluster generators' selectors.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// `config.bearerToken`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.config
            .insert("bearerToken".to_owned(), json!(token.into()));
        self
    }

    /// `config.tlsClientConfig.caData` (base64 PEM, as in Argo CD).
    pub fn ca_data(mut self, ca: impl Into<String>) -> Self {
        self.config.insert(
            "tlsClientConfig".to_owned(),
            json!({"insecure": false, "caData": ca.into()}),
        );
        self
    }

    /// `config` exactly as given, even when it is not valid JSON (tests of bad Secrets).
    pub fn raw_config(mut self, config: impl Into<String>) -> Self {
        self.raw_config = Some(config.into());
        self
    }

    /// The Secret's name, `cluster-<name>`.
    pub fn secret_name(&self) -> String {
        format!("cluster-{}", self.name)
    }

    /// The Secret.
    pub fn build(&self) -> Result<Secret> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = match &self.raw_config {
            Some(raw) => raw.clone(),
            None => Value::Object(self.config.clone()).to_string(),
        };
        let mut labels = self.labels.clone();
        labels.insert(
            "argocd.argoproj.io/secret-type".to_owned(),
            "cluster".to_owned(),
        );
        let mut data: BTreeMap<&str, String> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), b64(v)))
            .collect();
        data.insert("name", b64(&self.name));
        data.insert("server", b64(&self.server));
        data.insert("config", b64(&config));
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.secret_name(),
                "namespace": ARGOCD_NAMESPACE,
                "labels": labels,
                "annotations": self.annotations,
            },
            "type": "Opaque",
            "data": data,
        }))
        .with_context(|| format!("building cluster Secret {}", self.name))
    }

    /// Server-side applies the Secret with the tests' field manager, forced.
    pub async fn apply(&self, client: &Client) -> Result<()> {
        let secret = self.build()?;
        Api::<Secret>::namespaced(client.clone(), ARGOCD_NAMESPACE)
            .patch(
                &self.secret_name(),
                &PatchParams::apply(TEST_FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .with_context(|| format!("applying cluster Secret {}", self.name))?;
        Ok(())
    }
}

/// Server-side applies a declarative cluster Secret `cluster-<name>` in the `argocd`
/// namespace with `labels` (plus the secret-type label) and the given `config` JSON
/// (see [`ClusterSecretBuilder`] for the other settings).
pub async fn cluster_secret(
    client: &Client,
    name: &str,
    server: &str,
    labels: &[(&str, &str)],
    config: &str,
) -> Result<()> {
    labels
        .iter()
        .fold(
            ClusterSecretBuilder::new(name, server),
            |secret, (key, value)| secret.label(*key, *value),
        )
        .raw_config(config)
        .apply(client)
        .await
}

/// Creates (or keeps) namespace `name` through `client` (server-side apply).
pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.patch(
        name,
        &PatchParams::apply("argosy-tests").force(),
        &Patch::Apply(&ns),
    )
    .await
    .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Registers the harness cluster `cluster` with Argosy as Argo CD would: the cluster Secret
/// `cluster-<name>` with its server, `labels` and the harness's connection settings.
pub async fn register_cluster(
    client: &Client,
    name: &str,
    cluster: &crate::control_plane::TestCluster,
    labels: &[(&str, &str)],
) -> Result<()> {
    cluster_secret(
        client,
        name,
        &cluster.server,
        labels,
        &cluster.argocd_cluster_config().to_string(),
    )
    .await
}

/// `cluster` as seen with a fresh token of ServiceAccount `namespace/name`
/// (TokenRequest API: the harness's apiserver has a signing key; there is no
/// token controller to fill `service-account-token` Secrets).
pub async fn as_service_account(
    admin: &Client,
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
) -> Result<TestCluster> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 3600},
    }))?;
    let response = accounts
        .create_token_request(name, &Default::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for {namespace}/{name}"))?;
    let token = response
        .status
        .map(|s| s.token)
        .ok_or_else(|| anyhow::anyhow!("TokenRequest for {namespace}/{name} returned no token"))?;
    let mut sa = cluster.clone();
    sa.token = token;
    Ok(sa)
}

/// A sync window that opened at the start of the current minute (UTC) and lasts
/// `minutes`: its daily cron `schedule` and when it ends. Between `minutes - 1` and
/// `minutes` of it remain.
pub fn window_from_this_minute(minutes: i64) -> Result<(String, k8s_openapi::jiff::Timestamp)> {
    use k8s_openapi::jiff::{
        RoundMode, Timestamp, TimestampRound, ToSpan as _, Unit, tz::TimeZone,
    };
    let minute = Timestamp::now().round(
        TimestampRound::new()
            .smallest(Unit::Minute)
            .mode(RoundMode::Trunc),
    )?;
    let start = minute.to_zoned(TimeZone::UTC);
    let end = minute.checked_add(minutes.minutes())?;
    Ok((format!("{} {} * * *", start.minute(), start.hour()), end))
}
