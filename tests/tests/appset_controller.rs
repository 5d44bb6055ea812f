//! The ApplicationSet controller against a real kube-apiserver (v1.20, etcd, no
//! controller-manager): the acceptance criteria of the controller issue.
//!
//! Each test starts its own control plane, installs the CRDs, creates namespace `argocd`
//! and AppProject `default`, and runs `argosy::run::run_with` in-process on its own
//! runtime (see `argosy_tests::argocd`). The controller's requests carry their own
//! User-Agent, so the audit log tells its writes from the test's.
//!
//! The tests run one at a time (a global lock): every control plane is an etcd plus a
//! ~300 MB kube-apiserver, and several at once on a 2-core machine make the timing
//! bounds (2 s for a new cluster, 20 s for a failover) meaningless.
//!
//! There is no Argo CD application controller here: an Application deleted with the
//! `resources-finalizer.argocd.argoproj.io` finalizer stays `Terminating`. Tests that
//! want deletions to complete use `preserveResourcesOnDeletion` (no finalizer), or play
//! Argo CD by removing the finalizer.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use argosy_crds::Application;
use argosy_crds::consts::RESOURCES_FINALIZER;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, Ended, apply_json, appset_manifest, appset_resource,
    argocd_control_plane, init_tracing, run_args, start_controller, wait_for, wait_for_every,
};
use argosy_tests::{AuditEvent, ControlPlane, MANAGEMENT};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONTROLLER_UA: &str = argosy::run::USER_AGENT;

/// A control plane with the CRDs, namespace `argocd` and AppProject `default`.
struct Env {
    cp: ControlPlane,
    client: Client,
    repo_cache: tempfile::TempDir,
    /// Held for the whole test.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    async fn start(test: &str) -> Result<Env> {
        init_tracing();
        let serial = SERIAL.lock().await;
        let began = Instant::now();
        let (cp, client) = argocd_control_plane(0).await?;
        eprintln!(
            "[{test}] control plane + CRDs ready in {:.1}s",
            began.elapsed().as_secs_f64()
        );
        Ok(Env {
            cp,
            client,
            repo_cache: tempfile::tempdir()?,
            _serial: serial,
        })
    }

    /// Starts a controller with `user_agent`; `adjust` edits the default settings.
    async fn controller(
        &self,
        identity: &str,
        user_agent: &str,
        adjust: impl FnOnce(&mut argosy::run::RunArgs),
    ) -> Result<ControllerHandle> {
        let mut args = run_args(identity, self.repo_cache.path().join(identity));
        adjust(&mut args);
        start_controller(self.cp.management(), user_agent, args).await
    }

    async fn apply_appset(&self, name: &str, spec: Value) -> Result<Value> {
        apply_json(
            &self.client,
            &appset_resource(),
            appset_manifest(name, spec),
        )
        .await
    }

    async fn apply_appset_annotated(
        &self,
        name: &str,
        annotations: Value,
        spec: Value,
    ) -> Result<Value> {
        let mut manifest = appset_manifest(name, spec);
        manifest["metadata"]["annotations"] = annotations;
        apply_json(&self.client, &appset_resource(), manifest).await
    }

    /// The ApplicationSet as JSON (dynamic: readable whatever it contains).
    async fn appset(&self, name: &str) -> Result<Value> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ARGOCD_NAMESPACE, &appset_resource());
        Ok(serde_json::to_value(api.get(name).await?)?)
    }

    async fn applications(&self) -> Result<Vec<Application>> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ARGOCD_NAMESPACE);
        Ok(api.list(&Default::default()).await?.items)
    }

    /// Names of the Applications owned (controller reference) by ApplicationSet `owner`.
    async fn owned_names(&self, owner: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .applications()
            .await?
            .into_iter()
            .filter(|a| owned_by(a, owner))
            .filter_map(|a| a.metadata.name)
            .collect())
    }

    /// Waits until the Applications owned by `owner` have exactly these names.
    async fn wait_owned(
        &self,
        owner: &str,
        names: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<()> {
        let last = std::sync::Mutex::new(BTreeSet::new());
        let result = wait_for(
            &format!("Applications of {owner} to be {names:?}"),
            timeout,
            || async {
                let now = self.owned_names(owner).await?;
                let done = &now == names;
                *lock(&last) = now;
                Ok(done.then_some(()))
            },
        )
        .await;
        result.with_context(|| format!("last seen: {:?}", lock(&last)))
    }

    /// Waits until condition `type_` of ApplicationSet `name` has `status` and `check`
    /// accepts it; returns the condition.
    async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let last = std::sync::Mutex::new(Value::Null);
        let result = wait_for(
            &format!("{name}: condition {type_}={status}"),
            timeout,
            || async {
                let appset = self.appset(name).await?;
                *lock(&last) = appset["status"].clone();
                Ok(condition(&appset, type_)
                    .filter(|c| c["status"] == status && check(c))
                    .cloned())
            },
        )
        .await;
        result.with_context(|| format!("last status: {:#}", lock(&last)))
    }

    /// Waits for an Event about ApplicationSet `name` with `reason`; returns its note.
    async fn wait_event(&self, name: &str, reason: &str, timeout: Duration) -> Result<String> {
        let last = std::sync::Mutex::new(Vec::new());
        let result = wait_for(&format!("{name}: Event {reason}"), timeout, || async {
            let events = events_for(&self.client, name).await?;
            let found = events
                .iter()
                .find(|(_, r, _)| r == reason)
                .map(|(_, _, note)| note.clone());
            *lock(&last) = events;
            Ok(found)
        })
        .await;
        result.with_context(|| format!("events so far: {:?}", lock(&last)))
    }

    /// Server-side applies a declarative cluster Secret.
    async fn cluster_secret(
        &self,
        name: &str,
        server: &str,
        labels: &[(&str, &str)],
        config: &str,
    ) -> Result<()> {
        argosy_tests::fixtures::cluster_secret(&self.client, name, server, labels, config).await
    }

    /// Successful and failed writes by `user_agent` received since `since`.
    fn writes_by(&self, user_agent: &str, since: Timestamp) -> Result<Vec<AuditEvent>> {
        Ok(self
            .cp
            .audit_writes(MANAGEMENT)?
            .into_iter()
            .filter(|e| e.user_agent == user_agent && e.received >= since)
            .collect())
    }

    /// Polls until no write by `user_agent` (other than to `leases`) was received for
    /// `quiet`; the controller has then converged.
    async fn wait_quiet(&self, user_agent: &str, quiet: Duration, timeout: Duration) -> Result<()> {
        argosy_tests::argocd::wait_quiet(&self.cp, user_agent, quiet, timeout).await
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn owned_by(app: &Application, owner: &str) -> bool {
    app.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "ApplicationSet" && r.name == owner && r.controller == Some(true))
}

fn condition<'a>(appset: &'a Value, type_: &str) -> Option<&'a Value> {
    appset["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Waits until ApplicationSet `fleet` reports `ErrorOccurred=True` with a message that
/// contains `needle` and names `field`, and until an Event with that reason and text exists.
async fn expect_generation_error(env: &Env, needle: &str, field: &str) -> Result<()> {
    let cond = env
        .wait_condition(
            "fleet",
            "ErrorOccurred",
            "True",
            Duration::from_secs(30),
            |c| c["message"].as_str().is_some_and(|m| m.contains(needle)),
        )
        .await?;
    eprintln!("{needle}: {cond}");
    let message = cond["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{message}");
    let reason = cond["reason"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.is_empty());
    let note = env
        .wait_event("fleet", &reason, Duration::from_secs(10))
        .await?;
    assert!(note.contains(needle), "{note}");
    Ok(())
}

/// `(type, reason, note)` of the Events (events.k8s.io/v1 and core/v1) about
/// ApplicationSet `name`.
async fn events_for(client: &Client, name: &str) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let new: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    for e in new.list(&Default::default()).await? {
        let about = e.regarding.as_ref().is_some_and(|r| {
            r.kind.as_deref() == Some("ApplicationSet") && r.name.as_deref() == Some(name)
        });
        if about {
            out.push((
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            ));
        }
    }
    let core: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    for e in core.list(&Default::default()).await? {
        let about = e.involved_object.kind.as_deref() == Some("ApplicationSet")
            && e.involved_object.name.as_deref() == Some(name);
        if about
            && !out
                .iter()
                .any(|(_, r, n)| Some(r) == e.reason.as_ref() && Some(n) == e.message.as_ref())
        {
            out.push((
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

fn names(names: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    names.into_iter().map(Into::into).collect()
}

fn is_app_write(e: &AuditEvent) -> bool {
    e.resource.as_deref() == Some("applications")
}

/// A list-generator ApplicationSet spec: one in-cluster Application per name.
fn list_spec(elements: &[String], preserve: bool) -> Value {
    let elements: Vec<Value> = elements.iter().map(|n| json!({ "name": n })).collect();
    let mut spec = json!({
        "generators": [{ "list": { "elements": elements } }],
        "template": {
            "metadata": { "name": "{{name}}", "labels": { "app": "{{name}}" } },
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                    "targetRevision": "HEAD",
                    "path": "guestbook",
                },
                "destination": { "server": "https://kubernetes.default.svc", "namespace": "{{name}}" },
            },
        },
    });
    if preserve {
        spec["syncPolicy"] = json!({ "preserveResourcesOnDeletion": true });
    }
    spec
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

/// A cluster-generator ApplicationSet spec selecting `env=<env>`.
fn cluster_spec(env: &str) -> Value {
    json!({
        "generators": [{ "clusters": { "selector": { "matchLabels": { "env": env } } } }],
        "template": {
            "metadata": { "name": "{{name}}-guestbook", "labels": { "cluster": "{{name}}" } },
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                    "targetRevision": "HEAD",
                    "path": "guestbook",
                },
                "destination": { "server": "{{server}}", "namespace": "guestbook" },
            },
        },
    })
}

fn server_of(cluster: &str) -> String {
    format!("https://{cluster}.clusters.example.com")
}

// ---------------------------------------------------------------------------------------

/// 1. Cluster generator over labelled cluster Secrets: ownership, finalizer, field
///    manager; a new Secret's Application within 2 s; relabelling out deletes under
///    `sync` and keeps under `create-update`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_generator_follows_cluster_secrets() -> Result<()> {
    let env = Env::start("cluster_generator").await?;
    let config = env.cp.management().argocd_cluster_config().to_string();
    for c in ["c1", "c2", "c3"] {
        env.cluster_secret(c, &server_of(c), &[("env", "prod")], &config)
            .await?;
    }
    // A Secret outside the selector never gets an Application.
    env.cluster_secret("d1", &server_of("d1"), &[("env", "dev")], &config)
        .await?;
    let ctrl = env.controller("solo", CONTROLLER_UA, |_| {}).await?;
    let appset = env.apply_appset("guestbook", cluster_spec("prod")).await?;
    let uid = appset["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let expected = names(["c1-guestbook", "c2-guestbook", "c3-guestbook"]);
    env.wait_owned("guestbook", &expected, Duration::from_secs(30))
        .await?;
    for app in env.applications().await? {
        let name = app.metadata.name.clone().unwrap_or_default();
        let owners = app.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1, "{name}: {owners:?}");
        let owner = &owners[0];
        assert_eq!(owner.api_version, "argoproj.io/v1alpha1", "{name}");
        assert_eq!(owner.kind, "ApplicationSet", "{name}");
        assert_eq!(owner.name, "guestbook", "{name}");
        assert_eq!(owner.uid, uid, "{name}");
        assert_eq!(owner.controller, Some(true), "{name}");
        assert_eq!(owner.block_owner_deletion, Some(true), "{name}");
        assert!(
            app.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == RESOURCES_FINALIZER),
            "{name}: finalizers {:?}",
            app.metadata.finalizers
        );
        let managers: Vec<(String, String)> = app
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.operation.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            managers.contains(&("argosy".to_owned(), "Apply".to_owned())),
            "{name}: managedFields {managers:?}"
        );
        let cluster = name.trim_end_matches("-guestbook");
        assert_eq!(app.spec.destination.server, server_of(cluster));
        assert_eq!(app.spec.destination.namespace, "guestbook");
        assert_eq!(
            app.metadata
                .labels
                .unwrap_or_default()
                .get("cluster")
                .map(String::as_str),
            Some(cluster)
        );
    }
    env.wait_condition(
        "guestbook",
        "ResourcesUpToDate",
        "True",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;

    // A fourth cluster: its Application within 2 s of the Secret's creation.
    let began = Instant::now();
    env.cluster_secret("c4", &server_of("c4"), &[("env", "prod")], &config)
        .await?;
    let apps: Api<Application> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    wait_for_every(
        "Application c4-guestbook",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { Ok(apps.get_opt("c4-guestbook").await?.map(|_| ())) },
    )
    .await?;
    let latency = began.elapsed();
    eprintln!("new cluster Secret -> Application: {latency:?}");
    assert!(
        latency <= Duration::from_secs(2),
        "the Application of a new cluster took {latency:?} (bound: 2 s)"
    );
    // Each change gets its own Event with its own note (not folded into the first one's).
    let name = "guestbook";
    wait_for(
        "an Event for the added Application",
        Duration::from_secs(10),
        || async {
            let events = events_for(&env.client, name).await?;
            let notes: Vec<&str> = events
                .iter()
                .filter(|(_, r, _)| r == "ApplicationsChanged")
                .map(|(_, _, n)| n.as_str())
                .collect();
            Ok(
                (notes.contains(&"created 3, updated 0, deleted 0 Applications")
                    && notes.contains(&"created 1, updated 0, deleted 0 Applications"))
                .then_some(()),
            )
        },
    )
    .await?;

    // Relabel c2 out of the selector: under the default `sync` policy its Application is
    // deleted (it keeps Argo CD's finalizer, so it is Terminating until Argo CD, played
    // here by the test, removes the finalizer).
    let relabelled = Timestamp::now();
    env.cluster_secret("c2", &server_of("c2"), &[("env", "staging")], &config)
        .await?;
    wait_for("c2-guestbook deleted", Duration::from_secs(10), || async {
        let app = apps.get_opt("c2-guestbook").await?;
        Ok(app
            .is_none_or(|a| a.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;
    let deletes: Vec<AuditEvent> = env
        .writes_by(CONTROLLER_UA, relabelled)?
        .into_iter()
        .filter(|e| is_app_write(e) && e.verb == "delete")
        .collect();
    assert_eq!(
        deletes
            .iter()
            .map(|e| e.name.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["c2-guestbook"],
        "{deletes:#?}"
    );
    apps.patch(
        "c2-guestbook",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    env.wait_owned(
        "guestbook",
        &names(["c1-guestbook", "c3-guestbook", "c4-guestbook"]),
        Duration::from_secs(10),
    )
    .await?;

    // A deleted cluster Secret: its Application goes entirely, as nothing could ever
    // clean up resources on a cluster Argo CD no longer knows (the finalizer is dropped
    // first, Argo CD's #5817 behaviour).
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    secrets
        .delete("cluster-c4", &DeleteParams::default())
        .await?;
    env.wait_owned(
        "guestbook",
        &names(["c1-guestbook", "c3-guestbook"]),
        Duration::from_secs(10),
    )
    .await?;
    wait_for("c4-guestbook gone", Duration::from_secs(10), || async {
        Ok(apps.get_opt("c4-guestbook").await?.is_none().then_some(()))
    })
    .await?;

    // An Application deleted by hand comes back, as in Argo CD: the controller hears of
    // the deletion itself (a cluster generator never requeues, so nothing else would
    // bring it back). Argo CD's finalizer is removed by the test, playing Argo CD.
    let c1_uid = apps.get("c1-guestbook").await?.metadata.uid;
    apps.delete("c1-guestbook", &DeleteParams::default())
        .await?;
    apps.patch(
        "c1-guestbook",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    wait_for(
        "c1-guestbook re-created",
        Duration::from_secs(10),
        || async {
            let app = apps.get_opt("c1-guestbook").await?;
            Ok(app
                .filter(|a| a.metadata.uid != c1_uid && a.metadata.deletion_timestamp.is_none())
                .map(|_| ()))
        },
    )
    .await?;

    // Under `create-update` a cluster leaving the selector keeps its Application. The
    // relabel of c3 is followed by a new cluster c5: once c5's Application exists, the
    // controller has seen the relabel too (one ordered watch).
    let mut spec = cluster_spec("prod");
    spec["syncPolicy"] = json!({ "applicationsSync": "create-update" });
    env.apply_appset("guestbook", spec).await?;
    let policy_changed = Timestamp::now();
    env.cluster_secret("c3", &server_of("c3"), &[("env", "staging")], &config)
        .await?;
    env.cluster_secret("c5", &server_of("c5"), &[("env", "prod")], &config)
        .await?;
    wait_for(
        "Application c5-guestbook",
        Duration::from_secs(10),
        || async { Ok(apps.get_opt("c5-guestbook").await?.map(|_| ())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c3 = apps.get("c3-guestbook").await?;
    assert!(
        c3.metadata.deletion_timestamp.is_none(),
        "create-update must not delete c3-guestbook"
    );
    let deletes = env
        .writes_by(CONTROLLER_UA, policy_changed)?
        .into_iter()
        .filter(|e| e.verb == "delete")
        .count();
    assert_eq!(deletes, 0, "no deletes under create-update");
    env.wait_owned(
        "guestbook",
        &names(["c1-guestbook", "c3-guestbook", "c5-guestbook"]),
        Duration::from_secs(5),
    )
    .await?;

    assert_eq!(ctrl.stop().await?, Ended::Stopped);
    Ok(())
}

/// 2. Generator errors with 50 existing Applications: an unreachable Git repository, an
///    invalid template and a rollout strategy Argosy does not know each write nothing to
///    Applications, set ErrorOccurred and emit an Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_errors_change_nothing() -> Result<()> {
    let env = Env::start("generator_errors").await?;
    let ctrl = env.controller("solo", CONTROLLER_UA, |_| {}).await?;
    let elements = numbered("app-", 50);
    env.apply_appset("fleet", list_spec(&elements, false))
        .await?;
    env.wait_owned("fleet", &names(elements.clone()), Duration::from_secs(60))
        .await?;
    env.wait_condition(
        "fleet",
        "ResourcesUpToDate",
        "True",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;
    env.wait_quiet(
        CONTROLLER_UA,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await?;
    let changed = Timestamp::now();

    // (a) A Git generator whose repository cannot be reached.
    let mut git = list_spec(&[], false);
    git["generators"] = json!([{ "git": {
        "repoURL": "http://127.0.0.1:9/x.git",
        "revision": "HEAD",
        "directories": [{ "path": "*" }],
    } }]);
    git["template"]["metadata"]["name"] = json!("{{path.basename}}");
    env.apply_appset("fleet", git).await?;
    expect_generation_error(&env, "127.0.0.1:9", "spec.generators[0].git").await?;

    // (b) A goTemplate with an unknown function.
    let mut bad = list_spec(&elements, false);
    bad["goTemplate"] = json!(true);
    bad["template"]["metadata"]["name"] = json!("{{ .name | nosuchfunc }}");
    bad["template"]["metadata"]["labels"]["app"] = json!("{{ .name }}");
    bad["template"]["spec"]["destination"]["namespace"] = json!("{{ .name }}");
    env.apply_appset("fleet", bad).await?;
    expect_generation_error(&env, "nosuchfunc", "spec.template").await?;
    for type_ in ["ParametersGenerated", "ResourcesUpToDate"] {
        let appset = env.appset("fleet").await?;
        assert_eq!(
            condition(&appset, type_).map(|c| c["status"].clone()),
            Some(json!("False")),
            "{type_}"
        );
    }

    // (c) A rollout strategy nobody implements (a typo of RollingSync), with a template
    //     change it would otherwise apply everywhere at once: refused, never ignored.
    let mut rolling = list_spec(&elements, false);
    rolling["template"]["metadata"]["labels"]["rolled"] = json!("everywhere");
    rolling["strategy"] = json!({"type": "RolingSync", "rollingSync": {"steps": [
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["app-0"]}]},
    ]}});
    env.apply_appset("fleet", rolling).await?;
    expect_generation_error(
        &env,
        "spec.strategy.type \"RolingSync\" is not a strategy Argo CD or Argosy knows",
        "spec.strategy",
    )
    .await?;

    // Give retries a chance to do damage, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let app_writes: Vec<AuditEvent> = env
        .writes_by(CONTROLLER_UA, changed)?
        .into_iter()
        .filter(is_app_write)
        .collect();
    assert!(
        app_writes.is_empty(),
        "no Application writes after a generation error: {app_writes:#?}"
    );
    let apps = env.applications().await?;
    assert_eq!(apps.len(), 50);
    assert!(apps.iter().all(|a| a.metadata.deletion_timestamp.is_none()));

    assert_eq!(ctrl.stop().await?, Ended::Stopped);
    Ok(())
}

/// 3. A generator that suddenly returns nothing: the deletion budget holds all 20
///    deletions until approved; the approval is one-shot. Within budget, deletions are
///    immediate and exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_budget_holds_mass_deletions() -> Result<()> {
    let env = Env::start("deletion_budget").await?;
    let ctrl = env.controller("solo", CONTROLLER_UA, |_| {}).await?;
    let elements = numbered("n", 20);
    env.apply_appset("budget", list_spec(&elements, true))
        .await?;
    env.wait_owned("budget", &names(elements.clone()), Duration::from_secs(60))
        .await?;
    env.wait_quiet(
        CONTROLLER_UA,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await?;

    let emptied = Timestamp::now();
    env.apply_appset("budget", list_spec(&[], true)).await?;
    let held = env
        .wait_condition(
            "budget",
            "DeletionsHeld",
            "True",
            Duration::from_secs(20),
            |_| true,
        )
        .await?;
    let message = held["message"].as_str().unwrap_or_default();
    eprintln!("held: {message}");
    assert!(
        message.contains("20 Applications would be deleted"),
        "{message}"
    );
    assert!(
        message.contains("n00, n01, n02, n03, n04 and 15 more"),
        "{message}"
    );
    assert!(message.contains("allows 5"), "{message}");
    assert!(
        message.contains("argosy.io/approve-deletions=true"),
        "{message}"
    );
    env.wait_event("budget", "DeletionBudgetExceeded", Duration::from_secs(10))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deletes = env
        .writes_by(CONTROLLER_UA, emptied)?
        .into_iter()
        .filter(|e| is_app_write(e) && e.verb == "delete")
        .count();
    assert_eq!(deletes, 0, "held deletions must not happen");
    assert_eq!(env.owned_names("budget").await?, names(elements.clone()));

    // The approval releases them all, and is removed by the controller.
    let approved = Timestamp::now();
    env.apply_appset_annotated(
        "budget",
        json!({ "argosy.io/approve-deletions": "true" }),
        list_spec(&[], true),
    )
    .await?;
    env.wait_owned("budget", &BTreeSet::new(), Duration::from_secs(30))
        .await?;
    wait_for(
        "approval annotation removed",
        Duration::from_secs(10),
        || async {
            let appset = env.appset("budget").await?;
            let annotated = appset["metadata"]["annotations"]
                .get("argosy.io/approve-deletions")
                .is_some();
            Ok((!annotated).then_some(()))
        },
    )
    .await?;
    env.wait_condition(
        "budget",
        "ResourcesUpToDate",
        "True",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;
    let appset = env.appset("budget").await?;
    assert!(
        condition(&appset, "DeletionsHeld").is_none_or(|c| c["status"] == "False"),
        "{:#}",
        appset["status"]
    );
    let deleted: BTreeSet<String> = env
        .writes_by(CONTROLLER_UA, approved)?
        .into_iter()
        .filter(|e| is_app_write(e) && e.verb == "delete" && e.succeeded())
        .filter_map(|e| e.name)
        .collect();
    assert_eq!(deleted, names(elements.clone()));

    // Within budget: 3 of 20 go at once, exactly those.
    env.apply_appset("budget", list_spec(&elements, true))
        .await?;
    env.wait_owned("budget", &names(elements.clone()), Duration::from_secs(60))
        .await?;
    env.wait_quiet(
        CONTROLLER_UA,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await?;
    let trimmed = Timestamp::now();
    let gone = names(["n03", "n11", "n17"]);
    let remaining: Vec<String> = elements
        .iter()
        .filter(|n| !gone.contains(*n))
        .cloned()
        .collect();
    env.apply_appset("budget", list_spec(&remaining, true))
        .await?;
    env.wait_owned("budget", &names(remaining.clone()), Duration::from_secs(10))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deletes: Vec<AuditEvent> = env
        .writes_by(CONTROLLER_UA, trimmed)?
        .into_iter()
        .filter(|e| is_app_write(e) && e.verb == "delete")
        .collect();
    let deleted: BTreeSet<String> = deletes.iter().filter_map(|e| e.name.clone()).collect();
    assert_eq!(deleted, gone, "{deletes:#?}");
    assert_eq!(deletes.len(), 3, "{deletes:#?}");
    let first = deletes.iter().map(|e| e.received).min();
    let last = deletes.iter().map(|e| e.received).max();
    if let (Some(first), Some(last)) = (first, last) {
        let spread = last.duration_since(first);
        assert!(
            spread < k8s_openapi::jiff::SignedDuration::from_secs(1),
            "the 3 deletions should come from one reconcile: {deletes:#?}"
        );
    }
    let appset = env.appset("budget").await?;
    assert!(condition(&appset, "DeletionsHeld").is_none_or(|c| c["status"] == "False"));

    assert_eq!(ctrl.stop().await?, Ended::Stopped);
    Ok(())
}

/// 4. Nothing changes for 60 s: after converging, the controller writes nothing at all
///    (Applications, ApplicationSets, Events...; Lease renewals aside, leader election on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_controller_writes_nothing() -> Result<()> {
    let env = Env::start("idle").await?;
    let config = env.cp.management().argocd_cluster_config().to_string();
    for c in ["c1", "c2"] {
        env.cluster_secret(c, &server_of(c), &[("env", "prod")], &config)
            .await?;
    }
    let ctrl = env
        .controller("solo", CONTROLLER_UA, |a| {
            a.leader_election = true;
            a.lease_duration = Duration::from_secs(10);
        })
        .await?;
    let list = numbered("l", 3);
    env.apply_appset("listed", list_spec(&list, false)).await?;
    env.apply_appset("clustered", cluster_spec("prod")).await?;
    env.wait_owned("listed", &names(list.clone()), Duration::from_secs(60))
        .await?;
    env.wait_owned(
        "clustered",
        &names(["c1-guestbook", "c2-guestbook"]),
        Duration::from_secs(60),
    )
    .await?;
    for name in ["listed", "clustered"] {
        env.wait_condition(
            name,
            "ResourcesUpToDate",
            "True",
            Duration::from_secs(10),
            |_| true,
        )
        .await?;
    }
    env.wait_quiet(
        CONTROLLER_UA,
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await?;

    let began = Timestamp::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let writes = env.writes_by(CONTROLLER_UA, began)?;
    let leases = writes
        .iter()
        .filter(|e| e.resource.as_deref() == Some("leases"))
        .count();
    let other: Vec<&AuditEvent> = writes
        .iter()
        .filter(|e| e.resource.as_deref() != Some("leases"))
        .collect();
    eprintln!(
        "60 s idle: {leases} lease writes, {} other writes",
        other.len()
    );
    assert!(other.is_empty(), "writes while nothing changed: {other:#?}");
    assert!(
        leases > 0,
        "leader election was on: the Lease must have been renewed"
    );

    assert_eq!(ctrl.stop().await?, Ended::Stopped);
    Ok(())
}

/// 5. Two replicas with leader election: only the leader writes; a crashed leader is
///    replaced within 20 s; a graceful stop releases the Lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_fails_over() -> Result<()> {
    const LEASE: &str = "argosy-applicationset-controller";
    const UA_A: &str = "argosy-replica-a";
    const UA_B: &str = "argosy-replica-b";
    const UA_C: &str = "argosy-replica-c";
    let env = Env::start("leader_election").await?;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt(LEASE)
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity),
        )
    };
    let elect = |a: &mut argosy::run::RunArgs| {
        a.leader_election = true;
        a.lease_name = LEASE.to_owned();
        a.lease_duration = Duration::from_secs(6);
    };
    let started = Timestamp::now();
    let a = env.controller("replica-a", UA_A, elect).await?;
    wait_for("replica-a leads", Duration::from_secs(20), || async {
        Ok((holder().await?.as_deref() == Some("replica-a")).then_some(()))
    })
    .await?;
    let b = env.controller("replica-b", UA_B, elect).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    env.apply_appset("ha", list_spec(&numbered("ha", 2), false))
        .await?;
    env.wait_owned("ha", &names(numbered("ha", 2)), Duration::from_secs(30))
        .await?;
    env.wait_condition(
        "ha",
        "ResourcesUpToDate",
        "True",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;
    let by_a = env.writes_by(UA_A, started)?;
    assert!(
        by_a.iter().any(|e| is_app_write(e) && e.verb == "patch"),
        "the leader applied the Applications: {by_a:#?}"
    );
    let by_b: Vec<AuditEvent> = env
        .writes_by(UA_B, started)?
        .into_iter()
        .filter(|e| e.resource.as_deref() != Some("leases"))
        .collect();
    assert!(by_b.is_empty(), "the follower wrote: {by_b:#?}");

    // Crash the leader (no Lease release), then change the ApplicationSet.
    let crashed = Instant::now();
    let crashed_at = Timestamp::now();
    assert_eq!(a.kill().await?, Ended::Killed);
    assert_eq!(
        holder().await?.as_deref(),
        Some("replica-a"),
        "a crash releases nothing"
    );
    env.apply_appset("ha", list_spec(&numbered("ha", 3), false))
        .await?;
    env.wait_owned("ha", &names(numbered("ha", 3)), Duration::from_secs(20))
        .await
        .context("the other replica did not take over within 20 s")?;
    let failover = crashed.elapsed();
    eprintln!("leader crash -> change reconciled by the other replica: {failover:?}");
    assert!(failover <= Duration::from_secs(20), "{failover:?}");
    assert_eq!(holder().await?.as_deref(), Some("replica-b"));
    let after: Vec<AuditEvent> = env
        .cp
        .audit_writes(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.received >= crashed_at && is_app_write(e))
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|e| e.user_agent == UA_B),
        "after the crash only replica-b writes Applications: {after:#?}"
    );
    assert!(
        env.writes_by(
            UA_A,
            crashed_at + k8s_openapi::jiff::SignedDuration::from_millis(500)
        )?
        .is_empty(),
        "a killed replica writes nothing"
    );

    // A third replica follows; a graceful stop of the leader releases the Lease and
    // the follower takes over without waiting for it to expire.
    let c = env.controller("replica-c", UA_C, elect).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping = Instant::now();
    assert_eq!(b.stop().await?, Ended::Stopped);
    eprintln!("graceful stop took {:?}", stopping.elapsed());
    let lease_after = holder().await?;
    assert!(
        lease_after.as_deref() != Some("replica-b"),
        "a graceful stop releases the Lease, holder: {lease_after:?}"
    );
    let stopped_at = Timestamp::now();
    env.apply_appset("ha", list_spec(&numbered("ha", 4), false))
        .await?;
    env.wait_owned("ha", &names(numbered("ha", 4)), Duration::from_secs(20))
        .await
        .context("replica-c did not take over after the graceful stop")?;
    eprintln!(
        "graceful stop -> change reconciled by replica-c: {:?}",
        stopping.elapsed()
    );
    assert_eq!(holder().await?.as_deref(), Some("replica-c"));
    let after: Vec<AuditEvent> = env
        .cp
        .audit_writes(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.received >= stopped_at && is_app_write(e))
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|e| e.user_agent == UA_C),
        "after the stop only replica-c writes Applications: {after:#?}"
    );

    assert_eq!(c.stop().await?, Ended::Stopped);
    let released = holder().await?;
    assert!(released.is_none(), "Lease still held by {released:?}");
    Ok(())
}

/// 6. Bad input: an unknown generator (top level and inside a matrix), a matrix child of
///    the wrong shape, a templatePatch that makes the Application invalid and a cluster
///    Secret with broken `config`: each gets ErrorOccurred and an Event, nothing panics,
///    and a healthy ApplicationSet next to them keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_and_isolated() -> Result<()> {
    let env = Env::start("bad_input").await?;
    let config = env.cp.management().argocd_cluster_config().to_string();
    env.cluster_secret(
        "broken",
        &server_of("broken"),
        &[("tier", "broken")],
        "{not json",
    )
    .await?;
    env.cluster_secret("fine", &server_of("fine"), &[("tier", "fine")], &config)
        .await?;

    // Present before the controller starts: its initial list must survive them.
    env.apply_appset("healthy", list_spec(&numbered("ok", 2), false))
        .await?;
    let nested_spec = |first: Value| {
        let mut spec = list_spec(&[], false);
        spec["generators"] = json!([{ "matrix": { "generators": [
            first,
            { "list": { "elements": [{ "name": "x" }] } },
        ] } }]);
        spec
    };
    env.apply_appset("bad-nested-unknown", nested_spec(json!({ "foo": {} })))
        .await?;
    env.apply_appset(
        "bad-nested-shape",
        nested_spec(json!({ "list": { "elements": "not-a-list" } })),
    )
    .await?;

    // A healthy matrix: its children must reach the controller unpruned.
    let mut matrix = list_spec(&[], false);
    matrix["generators"] = json!([{ "matrix": { "generators": [
        { "list": { "elements": [{ "name": "m1" }, { "name": "m2" }] } },
        { "list": { "elements": [{ "suffix": "a" }] } },
    ] } }]);
    matrix["template"]["metadata"]["name"] = json!("{{name}}-{{suffix}}");
    env.apply_appset("healthy-matrix", matrix).await?;

    let ctrl = env.controller("solo", CONTROLLER_UA, |_| {}).await?;
    env.wait_owned(
        "healthy",
        &names(numbered("ok", 2)),
        Duration::from_secs(30),
    )
    .await
    .context("a healthy ApplicationSet next to bad ones must work")?;
    env.wait_owned(
        "healthy-matrix",
        &names(["m1-a", "m2-a"]),
        Duration::from_secs(30),
    )
    .await?;

    let mut unknown = list_spec(&[], false);
    unknown["generators"] = json!([{ "foo": {} }]);
    let applied = env.apply_appset("bad-unknown", unknown).await?;
    eprintln!(
        "top-level unknown generator as stored: {}",
        applied["spec"]["generators"]
    );

    let mut patch = list_spec(&[], false);
    patch["goTemplate"] = json!(true);
    patch["generators"] = json!([{ "list": { "elements": [{ "name": "p1", "flag": true }] } }]);
    patch["template"]["metadata"]["name"] = json!("{{ .name }}");
    patch["template"]["metadata"]["labels"]["app"] = json!("{{ .name }}");
    patch["template"]["spec"]["destination"]["namespace"] = json!("{{ .name }}");
    patch["templatePatch"] = json!("spec:\n  project: {{ .flag }}\n");
    env.apply_appset("bad-patch", patch).await?;

    let mut broken = cluster_spec("unused");
    broken["generators"] =
        json!([{ "clusters": { "selector": { "matchLabels": { "tier": "broken" } } } }]);
    env.apply_appset("bad-cluster", broken).await?;

    // A jq expression that could loop forever (Argo CD's GHSA-9m6p-x4h2-6frq) is refused.
    let mut looping = list_spec(&numbered("jq", 1), false);
    looping["ignoreApplicationDifferences"] =
        json!([{ "jqPathExpressions": [".spec | repeat(.)"] }]);
    env.apply_appset("bad-jq", looping).await?;

    let expectations: [(&str, &[&str]); 6] = [
        (
            "bad-nested-unknown",
            &["spec.generators[0].matrix.generators[0]", "foo"],
        ),
        (
            "bad-nested-shape",
            &["spec.generators[0].matrix.generators[0]", "elements"],
        ),
        ("bad-unknown", &["spec.generators[0]", "foo"]),
        ("bad-patch", &["templatePatch", "project"]),
        ("bad-cluster", &["cluster-broken", "config"]),
        ("bad-jq", &["ignoreApplicationDifferences[0]", "repeat"]),
    ];
    for (name, needles) in expectations {
        let cond = env
            .wait_condition(
                name,
                "ErrorOccurred",
                "True",
                Duration::from_secs(30),
                |_| true,
            )
            .await?;
        let message = cond["message"].as_str().unwrap_or_default();
        eprintln!("{name}: {} / {message}", cond["reason"]);
        for needle in needles {
            assert!(
                message.contains(needle),
                "{name}: {needle:?} not in {message:?}"
            );
        }
        let reason = cond["reason"].as_str().unwrap_or_default();
        env.wait_event(name, reason, Duration::from_secs(10))
            .await?;
        assert!(
            env.owned_names(name).await?.is_empty(),
            "{name} made Applications"
        );
    }

    // The healthy ApplicationSet still creates and updates.
    let mut spec = list_spec(&numbered("ok", 3), false);
    spec["template"]["metadata"]["labels"]["tier"] = json!("gold");
    env.apply_appset("healthy", spec).await?;
    env.wait_owned(
        "healthy",
        &names(numbered("ok", 3)),
        Duration::from_secs(15),
    )
    .await?;
    wait_for(
        "healthy Applications updated",
        Duration::from_secs(15),
        || async {
            let apps = env.applications().await?;
            let labelled = apps.iter().filter(|a| owned_by(a, "healthy")).all(|a| {
                a.metadata
                    .labels
                    .iter()
                    .flatten()
                    .any(|(k, v)| k == "tier" && v == "gold")
            });
            Ok(labelled.then_some(()))
        },
    )
    .await?;
    env.wait_condition(
        "healthy",
        "ErrorOccurred",
        "False",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;

    // Fixing a broken input recovers: the Secret's config is repaired.
    env.cluster_secret(
        "broken",
        &server_of("broken"),
        &[("tier", "broken")],
        &config,
    )
    .await?;
    env.wait_owned(
        "bad-cluster",
        &names(["broken-guestbook"]),
        Duration::from_secs(15),
    )
    .await?;
    env.wait_condition(
        "bad-cluster",
        "ErrorOccurred",
        "False",
        Duration::from_secs(10),
        |_| true,
    )
    .await?;
    // And nothing loops: failing ApplicationSets are retried without writes, updated
    // Applications are not rewritten.
    env.wait_quiet(
        CONTROLLER_UA,
        Duration::from_secs(4),
        Duration::from_secs(30),
    )
    .await?;

    assert_eq!(ctrl.stop().await?, Ended::Stopped);
    Ok(())
}

/// The CRDs install on the 1.20 API server, and an Application written from a full Argo
/// CD manifest reads back with every field (as `kubectl get -o json` shows it, and
/// through Argosy's types).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_install_and_applications_round_trip() -> Result<()> {
    let env = Env::start("crds").await?;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    for (name, short, status) in [
        ("applications.argoproj.io", "app", false),
        ("applicationsets.argoproj.io", "appset", true),
        ("appprojects.argoproj.io", "appproj", false),
    ] {
        let crd = crds.get(name).await?;
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            crd.spec
                .names
                .short_names
                .iter()
                .flatten()
                .any(|s| s == short),
            "{name}"
        );
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            status,
            "{name}: status subresource"
        );
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        for type_ in ["Established", "NamesAccepted"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == "True"),
                "{name}: {type_} in {conditions:?}"
            );
        }
        let nonstructural = conditions
            .iter()
            .find(|c| c.type_ == "NonStructuralSchema" && c.status == "True");
        assert!(nonstructural.is_none(), "{name}: {nonstructural:?}");
    }

    let manifest = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "guestbook",
            "namespace": ARGOCD_NAMESPACE,
            "labels": { "team": "payments", "env": "prod" },
            "annotations": {
                "notifications.argoproj.io/subscribe.on-sync-succeeded.slack": "my-channel",
                "argocd.argoproj.io/manifest-generate-paths": ".",
            },
            "finalizers": [RESOURCES_FINALIZER],
        },
        "spec": {
            "project": "default",
            "sources": [
                {
                    "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                    "targetRevision": "HEAD",
                    "path": "helm-guestbook",
                    "helm": {
                        "releaseName": "guestbook",
                        "valueFiles": ["values.yaml", "$values/prod/values.yaml"],
                        "parameters": [{ "name": "image.tag", "value": "v2", "forceString": true }],
                        "values": "replicaCount: 3\n",
                        "passCredentials": false,
                        "ignoreMissingValueFiles": true,
                    },
                },
                { "repoURL": "https://github.com/acme/values.git", "targetRevision": "main", "ref": "values" },
                {
                    "repoURL": "https://github.com/acme/kustomize.git",
                    "path": "overlays/prod",
                    "kustomize": { "namePrefix": "prod-", "images": ["nginx:1.25"], "commonLabels": { "a": "b" } },
                },
                {
                    "repoURL": "https://charts.bitnami.com/bitnami",
                    "chart": "redis",
                    "targetRevision": "17.*",
                },
                {
                    "repoURL": "https://github.com/acme/plain.git",
                    "path": "manifests",
                    "directory": { "recurse": true, "exclude": "*.md", "jsonnet": { "tlas": [{ "name": "a", "value": "b" }] } },
                },
            ],
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "guestbook" },
            "syncPolicy": {
                "automated": { "prune": true, "selfHeal": true, "allowEmpty": false },
                "syncOptions": ["CreateNamespace=true", "PruneLast=true", "ServerSideApply=true"],
                "retry": { "limit": 5, "backoff": { "duration": "5s", "factor": 2, "maxDuration": "3m" } },
                "managedNamespaceMetadata": { "labels": { "owner": "payments" } },
            },
            "ignoreDifferences": [
                { "group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"] },
                { "kind": "ConfigMap", "jqPathExpressions": [".data.generated"], "managedFieldsManagers": ["kube-controller-manager"] },
            ],
            "info": [{ "name": "Runbook", "value": "https://runbooks.example.com/guestbook" }],
            "revisionHistoryLimit": 7,
        },
        "operation": {
            "initiatedBy": { "username": "alice" },
            "sync": { "revision": "HEAD", "prune": true, "syncOptions": ["Validate=false"] },
            "retry": { "limit": 2 },
        },
    });
    let resource = ApiResource::erase::<Application>(&());
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ARGOCD_NAMESPACE, &resource);
    let object: DynamicObject = serde_json::from_value(manifest.clone())?;
    api.create(&PostParams::default(), &object).await?;

    // What `kubectl get application guestbook -o json` shows.
    let live = serde_json::to_value(api.get("guestbook").await?)?;
    let kubeconfig = env.cp.dir().join("mgmt.kubeconfig");
    env.cp.management().write_kubeconfig(&kubeconfig)?;
    let from_kubectl = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "-n",
            ARGOCD_NAMESPACE,
            "get",
            "application",
            "guestbook",
            "-o",
            "json",
        ])
        .output();
    let shown = match from_kubectl {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout)?,
        Ok(out) => bail!(
            "kubectl get failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            eprintln!("kubectl not runnable ({e}); using the API response");
            live.clone()
        }
    };
    for shown in [&live, &shown] {
        assert_eq!(shown["spec"], manifest["spec"], "spec round trip");
        assert_eq!(
            shown["operation"], manifest["operation"],
            "operation round trip"
        );
        for field in ["labels", "annotations", "finalizers"] {
            assert_eq!(
                shown["metadata"][field], manifest["metadata"][field],
                "{field}"
            );
        }
    }

    // Through Argosy's types: decode and re-encode loses nothing but an explicit
    // `automated.allowEmpty: false`, which Argo CD's own types omit too (`omitempty`).
    let typed: Api<Application> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    let app = typed.get("guestbook").await?;
    let again = serde_json::to_value(&app)?;
    let mut expected_spec = manifest["spec"].clone();
    if let Some(automated) = expected_spec
        .pointer_mut("/syncPolicy/automated")
        .and_then(Value::as_object_mut)
    {
        automated.remove("allowEmpty");
    }
    assert_eq!(again["spec"], expected_spec);
    assert_eq!(again["operation"], manifest["operation"]);
    ensure!(
        app.spec.sources.len() == 5,
        "typed sources: {:?}",
        app.spec.sources
    );

    // And a status written by "Argo CD" survives too (no status subresource).
    let mut with_status = live.clone();
    with_status["status"] = json!({
        "sync": { "status": "Synced", "revision": "abc123", "comparedTo": { "source": {} } },
        "health": { "status": "Healthy" },
        "reconciledAt": "2024-01-01T00:00:00Z",
        "resources": [{ "kind": "Service", "name": "guestbook-ui", "status": "Synced" }],
    });
    let replaced: DynamicObject = serde_json::from_value(with_status.clone())?;
    api.replace("guestbook", &PostParams::default(), &replaced)
        .await?;
    let live = serde_json::to_value(api.get("guestbook").await?)?;
    assert_eq!(live["status"], with_status["status"]);
    api.delete("guestbook", &DeleteParams::default()).await?;
    Ok(())
}
