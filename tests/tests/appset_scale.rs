//! The ApplicationSet controller and cluster Secret changes, against a real kube-apiserver:
//! a change to one cluster Secret reconciles exactly the ApplicationSets whose cluster
//! generators selected it before or select it after, writes exactly the Applications of
//! that cluster which come or go, and leaves every other ApplicationSet and Application
//! alone; Secrets that are not cluster Secrets, or cluster Secrets that do not parse,
//! trigger nothing they should not and crash nothing (issue 19, "the ApplicationSet
//! controller at fleet size"; the fleet-size figures are `cargo bench --bench appset_scale`).
//!
//! Which ApplicationSets reconciled is read from the controller's own
//! `argocd_appset_reconcile_count{namespace,name}` on `GET /metrics`, before and after each
//! change; what was written, from the API server's audit log (the controller's requests
//! carry its own User-Agent).
//!
//! A change that must trigger nothing cannot be waited for. Those come first, and each
//! phase ends with a change that must reach exactly one known ApplicationSet, through the
//! same cluster Secret watch: its events arrive in order, so once the marker's effect is
//! seen and the controller is quiet, the earlier changes' triggers were decided too.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy_crds::Application;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, apply_json, appset_manifest, appset_resource,
    argocd_control_plane, init_tracing, run_args, start_controller, wait_for, wait_quiet,
};
use argosy_tests::fixtures::ClusterSecretBuilder;
use argosy_tests::probe::{appset_reconciles, reconciled_between};
use argosy_tests::{AuditEvent, ControlPlane, MANAGEMENT};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const CONTROLLER_UA: &str = argosy::run::USER_AGENT;
const CLUSTERS: usize = 30;
/// The list elements of the Matrix ApplicationSet (`dev-matrix`).
const COMPONENTS: [&str; 4] = ["api", "web", "db", "cache"];
/// An upper bound for a change to show (a failure, not a measurement).
const SETTLE: Duration = Duration::from_secs(60);
/// How long without a controller write counts as converged.
const QUIET: Duration = Duration::from_secs(2);

/// Cluster `i`: `c00`..`c29`, `env` prod (0-9), staging (10-19) or dev (20-29), `tier`
/// gold for every third.
fn cluster(i: usize) -> (String, &'static str, &'static str) {
    let env = ["prod", "staging", "dev"][i / 10];
    let tier = if i.is_multiple_of(3) {
        "gold"
    } else {
        "silver"
    };
    (format!("c{i:02}"), env, tier)
}

fn cluster_secret(name: &str, labels: &[(&str, &str)]) -> ClusterSecretBuilder {
    labels.iter().fold(
        ClusterSecretBuilder::new(name, format!("https://{name}.clusters.example.com")),
        |s, (k, v)| s.label(*k, *v),
    )
}

/// An Application template named `name` (fasttemplate) deployed to the generated cluster.
fn template(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                       "targetRevision": "HEAD", "path": "guestbook"},
            "destination": {"server": "{{server}}", "namespace": "guestbook"}
        }
    })
}

fn clusters_selecting(selector: Value) -> Value {
    json!({"clusters": {"selector": selector}})
}

/// The six ApplicationSets, `(name, spec)`: four select by `env` or `tier` (one of them a
/// Matrix of clusters x a list), one every cluster with an `env`, one is a List only.
/// Their Applications get no resources finalizer (`preserveResourcesOnDeletion`): with no
/// Argo CD application controller here, a deleted one would stay terminating.
fn appsets() -> Vec<(&'static str, Value)> {
    let components: Vec<Value> = COMPONENTS.iter().map(|c| json!({"component": c})).collect();
    let mut specs = vec![
        (
            "prod",
            json!({"generators": [clusters_selecting(json!({"matchLabels": {"env": "prod"}}))],
                   "template": template("prod-{{name}}")}),
        ),
        (
            "staging",
            json!({"generators": [clusters_selecting(json!({"matchLabels": {"env": "staging"}}))],
                   "template": template("staging-{{name}}")}),
        ),
        (
            "dev-matrix",
            json!({"generators": [{"matrix": {"generators": [
                       clusters_selecting(json!({"matchLabels": {"env": "dev"}})),
                       {"list": {"elements": components}}]}}],
                   "template": template("dev-{{name}}-{{component}}")}),
        ),
        (
            "gold",
            json!({"generators": [clusters_selecting(json!({"matchExpressions": [
                       {"key": "tier", "operator": "In", "values": ["gold"]}]}))],
                   "template": template("gold-{{name}}")}),
        ),
        (
            "all-envs",
            json!({"generators": [clusters_selecting(json!({"matchExpressions": [
                       {"key": "env", "operator": "Exists"}]}))],
                   "template": template("all-{{name}}")}),
        ),
        (
            "list-only",
            json!({"generators": [{"list": {"elements": [{"name": "x"}, {"name": "y"}]}}],
                   "template": {
                       "metadata": {"name": "list-{{name}}"},
                       "spec": {"project": "default",
                                "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                                           "targetRevision": "HEAD", "path": "guestbook"},
                                "destination": {"server": "https://kubernetes.default.svc",
                                                "namespace": "guestbook"}}}}),
        ),
    ];
    for (_, spec) in &mut specs {
        spec["syncPolicy"] = json!({"preserveResourcesOnDeletion": true});
    }
    specs
}

/// The Applications each ApplicationSet should own, given each cluster's `(env, tier)`.
fn expected(clusters: &BTreeMap<String, (String, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = appsets()
        .iter()
        .map(|(name, _)| ((*name).to_owned(), BTreeSet::new()))
        .collect();
    let mut add = |appset: &str, app: String| {
        out.entry(appset.to_owned()).or_default().insert(app);
    };
    for (name, (env, tier)) in clusters {
        match env.as_str() {
            "prod" => add("prod", format!("prod-{name}")),
            "staging" => add("staging", format!("staging-{name}")),
            "dev" => {
                for c in COMPONENTS {
                    add("dev-matrix", format!("dev-{name}-{c}"));
                }
            }
            _ => {}
        }
        if tier == "gold" {
            add("gold", format!("gold-{name}"));
        }
        if !env.is_empty() {
            add("all-envs", format!("all-{name}"));
        }
    }
    add("list-only", "list-x".to_owned());
    add("list-only", "list-y".to_owned());
    out
}

struct Env {
    cp: ControlPlane,
    client: Client,
    port: u16,
    controller: ControllerHandle,
    _repo_cache: tempfile::TempDir,
}

impl Env {
    /// The Applications by owning ApplicationSet (controller reference).
    async fn owned(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ARGOCD_NAMESPACE);
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for app in api.list(&Default::default()).await? {
            let owner = app
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.kind == "ApplicationSet" && r.controller == Some(true))
                .map(|r| r.name.clone())
                .unwrap_or_default();
            out.entry(owner)
                .or_default()
                .insert(app.metadata.name.unwrap_or_default());
        }
        Ok(out)
    }

    /// Waits until the Applications are exactly `want` (every ApplicationSet's, none
    /// without an owner), then until the controller is quiet.
    async fn settle(&self, want: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
        let want: BTreeMap<String, BTreeSet<String>> = want
            .iter()
            .filter(|(_, apps)| !apps.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let last = std::sync::Mutex::new(BTreeMap::new());
        let found = wait_for("the expected Applications", SETTLE, || async {
            let now = self.owned().await?;
            let done = now == want;
            *last.lock().unwrap_or_else(|e| e.into_inner()) = now;
            Ok(done.then_some(()))
        })
        .await;
        found.with_context(|| {
            format!(
                "last seen: {:?}",
                last.lock().unwrap_or_else(|e| e.into_inner())
            )
        })?;
        wait_quiet(&self.cp, CONTROLLER_UA, QUIET, SETTLE).await
    }

    /// The controller's writes since `since`, without Lease renewals.
    fn writes_since(&self, since: Timestamp) -> Result<Vec<AuditEvent>> {
        Ok(self
            .cp
            .audit_writes(MANAGEMENT)?
            .into_iter()
            .filter(|e| e.user_agent == CONTROLLER_UA && e.received >= since)
            .filter(|e| e.resource.as_deref() != Some("leases"))
            .collect())
    }

    /// Checks what followed a change made after reconcile counts `before` and time `since`:
    /// exactly the ApplicationSets `reconciled` reconciled, exactly `app_writes`
    /// (`(verb, name)`) were written to Applications, only ApplicationSets of
    /// `appsets_written` were written, and the controller still runs.
    async fn check(
        &mut self,
        phase: &str,
        (before, since): (&BTreeMap<String, u64>, Timestamp),
        reconciled: &[&str],
        app_writes: &[(&str, &str)],
        appsets_written: &[&str],
    ) -> Result<()> {
        let seen = reconciled_between(before, &self.reconciles().await?);
        let writes = self.writes_since(since)?;
        let written: BTreeSet<(String, String)> = writes
            .iter()
            .filter(|e| e.resource.as_deref() == Some("applications"))
            .map(|e| (e.verb.clone(), e.name.clone().unwrap_or_default()))
            .collect();
        let appsets: BTreeSet<String> = writes
            .iter()
            .filter(|e| e.resource.as_deref() == Some("applicationsets"))
            .map(|e| format!("{ARGOCD_NAMESPACE}/{}", e.name.clone().unwrap_or_default()))
            .collect();
        eprintln!(
            "{phase}: reconciled {seen:?}, Application writes {written:?}, ApplicationSets written {appsets:?}"
        );
        ensure!(
            seen.keys().cloned().collect::<BTreeSet<_>>() == keys(reconciled),
            "{phase}: reconciled {seen:?}, expected {reconciled:?}"
        );
        let want: BTreeSet<(String, String)> = app_writes
            .iter()
            .map(|(verb, name)| ((*verb).to_owned(), (*name).to_owned()))
            .collect();
        ensure!(
            written == want,
            "{phase}: Application writes {written:?}, expected {want:?}"
        );
        ensure!(
            appsets.is_subset(&keys(appsets_written)),
            "{phase}: ApplicationSets written {appsets:?}, expected only {appsets_written:?}"
        );
        ensure!(
            !self.controller.is_finished(),
            "{phase}: the controller stopped"
        );
        Ok(())
    }

    async fn reconciles(&self) -> Result<BTreeMap<String, u64>> {
        appset_reconciles(self.port).await
    }

    async fn condition(&self, appset: &str, type_: &str) -> Result<Option<Value>> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ARGOCD_NAMESPACE, &appset_resource());
        let object = serde_json::to_value(api.get(appset).await?)?;
        Ok(object["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
            .cloned())
    }

    /// Waits until `appset` has condition `ErrorOccurred` = `status` whose message holds
    /// `needle`; returns the message.
    async fn wait_error_occurred(
        &self,
        appset: &str,
        status: &str,
        needle: &str,
    ) -> Result<String> {
        wait_for(
            &format!("{appset}: ErrorOccurred={status} ({needle})"),
            SETTLE,
            || async {
                Ok(self
                    .condition(appset, "ErrorOccurred")
                    .await?
                    .filter(|c| c["status"] == status)
                    .and_then(|c| c["message"].as_str().map(str::to_owned))
                    .filter(|m| m.contains(needle)))
            },
        )
        .await
    }
}

/// `argocd/<name>` for each name.
fn keys(names: &[&str]) -> BTreeSet<String> {
    names
        .iter()
        .map(|n| format!("{ARGOCD_NAMESPACE}/{n}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_secret_change_reconciles_only_the_applicationsets_that_select_it() -> Result<()>
{
    init_tracing();
    let (cp, client) = argocd_control_plane(0).await?;
    let mut clusters: BTreeMap<String, (String, String)> = BTreeMap::new();
    for i in 0..CLUSTERS {
        let (name, env, tier) = cluster(i);
        cluster_secret(&name, &[("env", env), ("tier", tier)])
            .apply(&client)
            .await?;
        clusters.insert(name, (env.to_owned(), tier.to_owned()));
    }
    for (name, spec) in appsets() {
        apply_json(&client, &appset_resource(), appset_manifest(name, spec)).await?;
    }
    let repo_cache = tempfile::tempdir()?;
    let port = argosy_tests::ports::free_port()?;
    let mut args = run_args("scale", repo_cache.path().to_owned());
    args.listen = Some(([127, 0, 0, 1], port).into());
    let controller = start_controller(cp.management(), CONTROLLER_UA, args).await?;
    let mut env = Env {
        cp,
        client,
        port,
        controller,
        _repo_cache: repo_cache,
    };
    env.settle(&expected(&clusters)).await?;
    let total: usize = expected(&clusters).values().map(BTreeSet::len).sum();
    eprintln!("converged: {total} Applications from 6 ApplicationSets");

    // Phase 1: changes that must reach no ApplicationSet.
    let before = env.reconciles().await?;
    let since = Timestamp::now();
    // A Secret that is not a cluster Secret, labelled like one of them: not watched.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    let plain = |env_label: &str| -> Result<Secret> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "not-a-cluster", "namespace": ARGOCD_NAMESPACE,
                         "labels": {"env": env_label, "tier": "gold"}},
            "stringData": {"name": "c99", "server": "https://c99.clusters.example.com", "config": "{}"}
        }))?)
    };
    let params = PatchParams::apply("argosy-tests").force();
    for env_label in ["staging", "prod"] {
        secrets
            .patch("not-a-cluster", &params, &Patch::Apply(plain(env_label)?))
            .await?;
    }
    // A cluster Secret that does not parse (`config` not JSON) and that no selector
    // matches (no `env`, no `tier`); relabelled, and one with no data at all.
    let junk = cluster_secret("junk", &[("owner", "mallory")]).raw_config("{not json");
    junk.apply(&env.client).await?;
    cluster_secret("junk", &[("owner", "eve")])
        .raw_config("{not json")
        .apply(&env.client)
        .await?;
    let empty: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-empty", "namespace": ARGOCD_NAMESPACE,
                     "labels": {"argocd.argoproj.io/secret-type": "cluster", "owner": "mallory"}}
    }))?;
    secrets
        .patch("cluster-empty", &params, &Patch::Apply(&empty))
        .await?;
    // The marker: a new gold cluster without `env` reaches `gold` alone.
    cluster_secret("marker", &[("tier", "gold")])
        .apply(&env.client)
        .await?;
    clusters.insert("marker".to_owned(), (String::new(), "gold".to_owned()));
    env.settle(&expected(&clusters)).await?;
    env.check(
        "phase 1: only the marker reaches an ApplicationSet",
        (&before, since),
        &["gold"],
        &[("patch", "gold-marker")],
        &["gold"],
    )
    .await?;

    // Phase 2: a cluster Secret that does not parse and that `staging` and `all-envs`
    // select fails their generation (its Applications cannot be generated, and dropping
    // them would delete them): both report it, nothing else is reconciled, no Application
    // is written; once it is deleted, both recover without writing any Application.
    let before = env.reconciles().await?;
    let since = Timestamp::now();
    let bad = cluster_secret("bad-staging", &[("env", "staging")]).raw_config("[1, 2");
    bad.apply(&env.client).await?;
    for appset in ["staging", "all-envs"] {
        let message = env
            .wait_error_occurred(appset, "True", "cluster-bad-staging")
            .await?;
        eprintln!("{appset}: {message}");
    }
    wait_quiet(&env.cp, CONTROLLER_UA, QUIET, SETTLE).await?;
    secrets
        .delete(&bad.secret_name(), &DeleteParams::default())
        .await?;
    for appset in ["staging", "all-envs"] {
        env.wait_error_occurred(appset, "False", "").await?;
    }
    env.settle(&expected(&clusters)).await?;
    env.check(
        "phase 2: a broken cluster Secret stops only the ApplicationSets selecting it",
        (&before, since),
        &["staging", "all-envs"],
        &[],
        &["staging", "all-envs"],
    )
    .await?;

    // Phase 3: c05 moves from prod to dev. `prod` drops its Application, `dev-matrix`
    // creates one per list element, `all-envs` (which selects it before and after)
    // reconciles and writes nothing; `staging`, `gold` (c05 is silver) and `list-only`
    // are not reconciled.
    let before = env.reconciles().await?;
    let since = Timestamp::now();
    let owned_before = env.owned().await?;
    cluster_secret("c05", &[("env", "dev"), ("tier", "silver")])
        .apply(&env.client)
        .await?;
    clusters.insert("c05".to_owned(), ("dev".to_owned(), "silver".to_owned()));
    env.settle(&expected(&clusters)).await?;
    let dev_c05: Vec<String> = COMPONENTS.iter().map(|c| format!("dev-c05-{c}")).collect();
    let mut c05_writes = vec![("delete", "prod-c05")];
    c05_writes.extend(dev_c05.iter().map(|n| ("patch", n.as_str())));
    env.check(
        "phase 3: the relabel reaches the ApplicationSets selecting c05 before or after",
        (&before, since),
        &["prod", "dev-matrix", "all-envs"],
        &c05_writes,
        // `all-envs` owns the same Applications as before: no status to write.
        &["prod", "dev-matrix"],
    )
    .await?;
    let owned_after = env.owned().await?;
    for untouched in ["staging", "gold", "all-envs", "list-only"] {
        ensure!(
            owned_before.get(untouched) == owned_after.get(untouched),
            "{untouched} keeps its Applications"
        );
    }
    env.controller
        .stop()
        .await
        .context("stopping the controller")?;
    Ok(())
}
