//! Argo CD objects and an in-process Argosy controller for integration tests.
//!
//! * [`install_crds`]: server-side applies `argosy_crds::crd::all()` and waits until
//!   every CRD is `Established` (and its resource is served);
//! * [`prepare_namespace`]: the `argocd` namespace and the AppProject `default`;
//! * [`start_controller`]: runs `argosy::run::run_with` on its own thread and Tokio
//!   runtime, with its own client and User-Agent, so a test can stop it gracefully
//!   ([`ControllerHandle::stop`]) or crash it ([`ControllerHandle::kill`]: the runtime is
//!   dropped without running another poll, so nothing is cleaned up, the Lease included,
//!   as when a process is killed);
//! * [`wait_for`]: polls a condition until it holds or a timeout passes.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use argosy::appset::plan::DeletionBudget;
use argosy::run::{RunArgs, SyncEngine, SyncSettings};
use argosy::webhook::WebhookConfig;
use argosy_crds::{AppProject, ApplicationSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::control_plane::{ControlPlane, TestCluster};

/// Namespace of Argo CD (cluster Secrets, AppProjects, ApplicationSets) in these tests.
pub const ARGOCD_NAMESPACE: &str = "argocd";
/// Field manager of the tests' own server-side applies.
pub const TEST_FIELD_MANAGER: &str = "argosy-tests";

/// Installs the Argo CD CRDs (server-side apply) and waits until they are established
/// and their resources answer a list.
/// A control plane with `workloads` workload clusters, ready for Argo CD objects: the CRDs
/// installed and namespace `argocd` with AppProject `default` on the management cluster.
/// Returns it with an admin client of the management cluster.
pub async fn argocd_control_plane(workloads: usize) -> Result<(ControlPlane, Client)> {
    let cp = ControlPlane::start(workloads)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let client = cp.management().client().await?;
    install_crds(&client).await?;
    prepare_namespace(&client).await?;
    Ok((cp, client))
}

pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(TEST_FIELD_MANAGER).force();
    let crds = argosy_crds::crd::all();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .with_context(|| format!("server-side apply of CRD {name}"))?;
    }
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_for(
            &format!("CRD {name} Established"),
            Duration::from_secs(30),
            || async {
                let live = api.get(&name).await?;
                let established = live
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            },
        )
        .await?;
        // Established can precede the discovery/handler update by a moment.
        let resource = ApiResource {
            group: crd.spec.group.clone(),
            version: crd.spec.versions[0].name.clone(),
            api_version: format!("{}/{}", crd.spec.group, crd.spec.versions[0].name),
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
        };
        let dynamic: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        wait_for(
            &format!("{} served", resource.plural),
            Duration::from_secs(30),
            || async { Ok(dynamic.list(&Default::default()).await.ok().map(|_| ())) },
        )
        .await?;
    }
    Ok(())
}

/// Creates the `argocd` namespace and an AppProject `default` that allows everything.
pub async fn prepare_namespace(client: &Client) -> Result<()> {
    let params = PatchParams::apply(TEST_FIELD_MANAGER).force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": ARGOCD_NAMESPACE },
    }))?;
    namespaces
        .patch(ARGOCD_NAMESPACE, &params, &Patch::Apply(&ns))
        .await
        .context("creating namespace argocd")?;
    let projects: Api<AppProject> = Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    let project: AppProject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": { "name": "default", "namespace": ARGOCD_NAMESPACE },
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{ "server": "*", "namespace": "*" }],
            "clusterResourceWhitelist": [{ "group": "*", "kind": "*" }],
        },
    }))?;
    projects
        .patch("default", &params, &Patch::Apply(&project))
        .await
        .context("creating AppProject default")?;
    Ok(())
}

/// `ApiResource` of Applications, for dynamic access.
pub fn application_resource() -> ApiResource {
    ApiResource::erase::<argosy_crds::Application>(&())
}

/// `ApiResource` of ApplicationSets, for dynamic access (objects the typed decode
/// might reject must still be readable by tests).
pub fn appset_resource() -> ApiResource {
    ApiResource::erase::<ApplicationSet>(&())
}

/// Server-side applies a JSON object (it must carry apiVersion, kind and
/// metadata.name) with the tests' field manager, forced.
pub async fn apply_json(client: &Client, resource: &ApiResource, object: Value) -> Result<Value> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("object without metadata.name: {object}"))?
        .to_owned();
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(ARGOCD_NAMESPACE)
        .to_owned();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, resource);
    let params = PatchParams::apply(TEST_FIELD_MANAGER).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(&object))
        .await
        .with_context(|| format!("server-side apply of {} {namespace}/{name}", resource.kind))?;
    Ok(serde_json::to_value(applied)?)
}

/// The Application `name` in [`ARGOCD_NAMESPACE`], as JSON.
pub async fn app_json(client: &Client, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// Waits until `check` holds for Application `name` in [`ARGOCD_NAMESPACE`] and returns
/// it; on timeout the error shows the Application as last seen.
pub async fn wait_app(
    client: &Client,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let result = wait_for(&format!("{name}: {what}"), timeout, || async {
        let app = app_json(client, name).await?;
        let ok = check(&app);
        if let Ok(mut seen) = last.lock() {
            *seen = app.clone();
        }
        Ok(ok.then_some(app))
    })
    .await;
    result.with_context(|| {
        let seen = last.lock().map(|v| v.clone()).unwrap_or_default();
        format!("last seen {name}: {seen:#}")
    })
}

/// The message of `name`'s `ComparisonError` once it contains `needle` (90 s at most; the
/// error then carries the Application's status).
pub async fn comparison_error(client: &Client, name: &str, needle: &str) -> Result<String> {
    let waited = comparison_error_within(client, name, needle, Duration::from_secs(90)).await;
    if waited.is_err() {
        let app = app_json(client, name).await?;
        return waited
            .with_context(|| format!("status: {}", app.get("status").unwrap_or(&Value::Null)));
    }
    waited
}

/// [`comparison_error`] within `timeout`, without the status on failure.
pub async fn comparison_error_within(
    client: &Client,
    name: &str,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    wait_for(
        &format!("a ComparisonError on {name} containing {needle:?}"),
        timeout,
        || async {
            let app = app_json(client, name).await?;
            Ok(app
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("type") == Some(&json!("ComparisonError")))
                .filter_map(|c| c.get("message").and_then(Value::as_str))
                .find(|m| m.contains(needle))
                .map(str::to_owned))
        },
    )
    .await
}

/// An Argo CD `repository` or `repo-creds` Secret (`kind`) in [`ARGOCD_NAMESPACE`] with
/// these `stringData` fields, applied.
pub async fn repo_secret(
    client: &Client,
    name: &str,
    kind: &str,
    data: &[(&str, &str)],
) -> Result<()> {
    let string_data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE,
                     "labels": {"argocd.argoproj.io/secret-type": kind}},
        "stringData": string_data,
    });
    let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    apply_json(client, &resource, secret).await?;
    Ok(())
}

/// An ApplicationSet manifest in [`ARGOCD_NAMESPACE`].
pub fn appset_manifest(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": { "name": name, "namespace": ARGOCD_NAMESPACE },
        "spec": spec,
    })
}

/// Settings for an in-process controller: namespace `argocd`, no leader election,
/// Argo CD as sync engine, default deletion budget, a throwaway repository cache.
pub fn run_args(identity: &str, repo_cache: PathBuf) -> RunArgs {
    RunArgs {
        namespace: ARGOCD_NAMESPACE.to_owned(),
        appset_namespaces: Vec::new(),
        application_namespaces: Vec::new(),
        sync_engine: SyncEngine::Argocd,
        leader_election: false,
        sharding: argosy_sync_engine::shard::assign::ShardingMethod::default(),
        lease_name: "argosy-applicationset-controller".to_owned(),
        identity: identity.to_owned(),
        lease_duration: Duration::from_secs(15),
        budget: DeletionBudget::default(),
        policy: None,
        concurrent_writes: 8,
        git_requeue: Duration::from_secs(180),
        repo_cache,
        repos: BTreeMap::new(),
        url_policy: argosy_sync_engine::url_policy::UrlPolicy::default(),
        sync: SyncSettings::default(),
        repo_refresh: Duration::from_secs(180),
        repo_backoff: argosy_sync_engine::repo::Backoff::default(),
        repo_timeouts: argosy_sync_engine::repo::Timeouts::default(),
        repo_cache_max_bytes: None,
        chart_cache_max_bytes: 256 << 20,
        listen: None,
        webhook: WebhookConfig::default(),
        dashboard_token: None,
        http: argosy::run::HttpSettings::default(),
        notify: argosy::notify::NotifySettings::default(),
    }
}

/// How a controller run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `run_with` returned after its shutdown future completed.
    Stopped,
    /// The runtime was dropped mid-flight ([`ControllerHandle::kill`]).
    Killed,
}

/// A controller running on its own thread and runtime. Dropping the handle kills it.
pub struct ControllerHandle {
    name: String,
    shutdown: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<Result<Ended>>>,
}

impl ControllerHandle {
    /// Graceful stop: completes the shutdown future and waits for `run_with` to return
    /// (in-flight reconciles finish, the Lease is released).
    pub async fn stop(mut self) -> Result<Ended> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait(Duration::from_secs(30)).await
    }

    /// Crash: the controller's runtime is dropped at once; nothing it spawned runs again.
    pub async fn kill(mut self) -> Result<Ended> {
        if let Some(tx) = self.kill.take() {
            let _ = tx.send(());
        }
        self.wait(Duration::from_secs(10)).await
    }

    /// True once `run_with` has returned or the controller was killed.
    pub fn is_finished(&mut self) -> bool {
        match self.done.as_mut() {
            Some(rx) => !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            None => true,
        }
    }

    async fn wait(&mut self, timeout: Duration) -> Result<Ended> {
        let rx = self
            .done
            .take()
            .ok_or_else(|| anyhow!("controller {} already waited for", self.name))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => bail!("controller {} thread ended without a result", self.name),
            Err(_) => bail!("controller {} did not end within {timeout:?}", self.name),
        }
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.kill.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts `argosy::run::run_with` against `cluster` with a client whose requests carry
/// `User-Agent: user_agent` (so the audit log tells replicas apart). The client and
/// everything the controller spawns live on a dedicated current-thread runtime.
pub async fn start_controller(
    cluster: &TestCluster,
    user_agent: &str,
    args: RunArgs,
) -> Result<ControllerHandle> {
    let mut config = cluster.config().await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(user_agent)
            .with_context(|| format!("invalid User-Agent {user_agent:?}"))?,
    ));
    let name = args.identity.clone();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("controller-{name}"))
        .spawn(move || {
            let result = (|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building the controller runtime")?;
                let result = runtime.block_on(async move {
                    let client = Client::try_from(config).context("controller client")?;
                    let shutdown = async move {
                        let _ = shutdown_rx.await;
                    };
                    tokio::select! {
                        biased;
                        _ = kill_rx => Ok(Ended::Killed),
                        result = argosy::run::run_with(client, args, shutdown) => {
                            result.map(|()| Ended::Stopped)
                        }
                    }
                });
                // Drops every task the controller spawned (lease renewal, connections)
                // without polling it again.
                runtime.shutdown_background();
                result
            })();
            let _ = done_tx.send(result);
        })
        .context("spawning the controller thread")?;
    Ok(ControllerHandle {
        name,
        shutdown: Some(shutdown_tx),
        kill: Some(kill_tx),
        done: Some(done_rx),
    })
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `timeout` with the
/// last error (errors of `check` are retried, not fatal).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    wait_for_every(what, timeout, Duration::from_millis(100), check).await
}

/// [`wait_for`] with a chosen polling interval.
pub async fn wait_for_every<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Polls every 500 ms until `plane`'s management API server has received no write by
/// `user_agent` (other than to `leases`, which a leader renews) for `quiet`: the controller
/// has then converged. Fails after `timeout`.
pub async fn wait_quiet(
    plane: &ControlPlane,
    user_agent: &str,
    quiet: Duration,
    timeout: Duration,
) -> Result<()> {
    wait_for_every(
        &format!("{quiet:?} without writes by {user_agent}"),
        timeout,
        Duration::from_millis(500),
        || async {
            let since = k8s_openapi::jiff::Timestamp::now() - quiet;
            let busy = plane
                .audit_writes(crate::MANAGEMENT)?
                .into_iter()
                .filter(|e| e.user_agent == user_agent && e.received >= since)
                .any(|e| e.resource.as_deref() != Some("leases"));
            Ok((!busy).then_some(()))
        },
    )
    .await
}

/// Installs a `tracing` subscriber for the test binary once (`RUST_LOG`, default
/// `warn,argosy=info`), writing through the test harness's capture.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off,argosy=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
