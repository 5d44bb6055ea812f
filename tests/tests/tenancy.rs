//! The tenant boundary on real kube-apiservers (one management and two workload clusters).
//!
//! Project `team-a` may deploy from one repository prefix, to namespace `team-a` of
//! workload-1 only, no cluster-scoped kinds, and admits Applications from namespace
//! `team-a-apps`. Its Applications that try a ClusterRoleBinding, `kube-system` (as the
//! destination and as a manifest's own namespace), workload-2, another repository, a
//! `file://` path, or live in a namespace the project does not admit, each get a condition
//! naming the rule, and the workload API servers' audit logs show no write by Argosy for
//! them, while the tenant's legitimate Applications sync. An Application in a namespace
//! outside `--application-namespaces` is not touched at all. A generated Application the
//! project forbids is not created. A project that changes re-checks its Applications at
//! once (the resync period is set far beyond the test). The customers' cluster Secrets
//! carry a canary token (in `config` and in kubectl's last-applied annotation): it appears
//! in no Application, ApplicationSet, Event, log line, metric, dashboard answer or
//! `argosy` CLI output of the whole suite. Under the permissive `default`
//! project, the repository URL policy still refuses the metadata address and `file://`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy::cli::cmd::app::{AppCommand, Output};
use argosy::cli::cmd::fleet::StatusFlags;
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, appset_manifest, appset_resource,
    argocd_control_plane, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, AppSetBuilder, ClusterSecretBuilder, create_namespace};
use argosy_tests::{AuditEvent, CANARY_TOKEN, CANARY_USER, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const TEAM_A_REPO: &str = "https://git.example.com/team-a/apps.git";
const TEAM_B_REPO: &str = "https://git.example.com/team-b/apps.git";
const PROJECT: &str = "team-a";
const TENANT_NS: &str = "team-a";
const APPS_NS: &str = "team-a-apps";

fn project_resource() -> ApiResource {
    ApiResource::erase::<argosy_crds::AppProject>(&())
}

fn team_a_project(workload_1: &str, extra_destination: Option<&str>) -> Value {
    let mut destinations = vec![json!({"server": workload_1, "namespace": TENANT_NS})];
    if let Some(server) = extra_destination {
        destinations.push(json!({"server": server, "namespace": TENANT_NS}));
    }
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
    "metadata": {"name": PROJECT, "namespace": ARGOCD_NAMESPACE},
    "spec": {
        "sourceRepos": ["https://git.example.com/team-a/*"],
        "destinations": destinations,
        "sourceNamespaces": [APPS_NS],
        "orphanedResources": {"warn": true},
    }})
}

fn manifest_configmap(name: &str, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!("\n  namespace: {n}"))
        .unwrap_or_default();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata:\n  k: v\n")
}

const CLUSTER_ROLE_BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: team-a-is-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: Group\n  name: team-a\n  apiGroup: rbac.authorization.k8s.io\n";

/// An Application of project team-a, automated, to `server`/`namespace`.
fn tenant_app(name: &str, repo: &str, path: &str, server: &str, namespace: &str) -> AppBuilder {
    AppBuilder::new(name)
        .project(PROJECT)
        .source(repo, path)
        .server(server)
        .destination_namespace(namespace)
        .automated(true, true)
}

async fn app_json(client: &Client, namespace: &str, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &application_resource());
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// The message of the app's condition of `kind`, once it has one.
async fn condition(client: &Client, namespace: &str, name: &str, kind: &str) -> Result<String> {
    wait_for(
        &format!("a {kind} condition on {namespace}/{name}"),
        Duration::from_secs(60),
        || async {
            let app = app_json(client, namespace, name).await?;
            Ok(app
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c.get("type") == Some(&json!(kind)))
                .and_then(|c| c.get("message").and_then(Value::as_str))
                .map(str::to_owned))
        },
    )
    .await
}

async fn wait_synced(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let waited = wait_for(
        &format!("{namespace}/{name} Synced"),
        Duration::from_secs(60),
        || async {
            let app = app_json(client, namespace, name).await?;
            Ok((app.pointer("/status/sync/status") == Some(&json!("Synced"))).then_some(()))
        },
    )
    .await;
    if waited.is_err() {
        let app = app_json(client, namespace, name).await?;
        return waited
            .with_context(|| format!("status: {}", app.get("status").unwrap_or(&Value::Null)));
    }
    waited
}

async fn configmap_exists(cluster: &TestCluster, namespace: &str, name: &str) -> Result<bool> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace);
    Ok(api.get_opt(name).await?.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_leave_its_project() -> Result<()> {
    init_capturing_tracing();
    let (cp, admin) = argocd_control_plane(2).await?;
    let (w1, w2) = (&cp.workloads()[0], &cp.workloads()[1]);
    // The customers' credentials are the canary: a token in each cluster Secret's config,
    // and the whole Secret again in the annotation `kubectl apply` leaves.
    for (name, cluster) in [("workload-1", w1), ("workload-2", w2)] {
        let secret = ClusterSecretBuilder::new(name, &cluster.server)
            .label("tier", "customer")
            .bearer_token(CANARY_TOKEN)
            .ca_data(cluster.ca_data());
        let last_applied = serde_json::to_string(&secret.build()?)?;
        secret
            .annotation(
                "kubectl.kubernetes.io/last-applied-configuration",
                last_applied,
            )
            .apply(&admin)
            .await?;
    }
    for ns in [APPS_NS, "team-b-apps", "elsewhere"] {
        create_namespace(&admin, ns).await?;
    }
    for w in [w1, w2] {
        create_namespace(&w.client().await?, TENANT_NS).await?;
    }
    // Something in the tenant's namespace that no Application deploys.
    let strays: Api<ConfigMap> = Api::namespaced(w1.client().await?, TENANT_NS);
    let stray: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "stray"}}))?;
    strays
        .patch(
            "stray",
            &PatchParams::apply("argosy-tests").force(),
            &Patch::Apply(&stray),
        )
        .await?;

    // One repository (served for both team prefixes, so only the project tells them apart).
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("apps.git");
    let files: BTreeMap<String, TreeEntry> = [
        ("ok/cm.yaml", manifest_configmap("legit", None)),
        ("ok-ns/cm.yaml", manifest_configmap("legit-ns", None)),
        ("crb/crb.yaml", CLUSTER_ROLE_BINDING.to_owned()),
        ("crb/cm.yaml", manifest_configmap("crb-companion", None)),
        (
            "sneaky/cm.yaml",
            manifest_configmap("sneaky", Some("kube-system")),
        ),
        ("ks/cm.yaml", manifest_configmap("ks", None)),
        ("w2/cm.yaml", manifest_configmap("on-w2", None)),
        ("b/cm.yaml", manifest_configmap("from-b", None)),
        ("gen/cm.yaml", manifest_configmap("generated", None)),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), TreeEntry::File(c)))
    .collect();
    write_tree_commit(&repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;
    apply_json(
        &admin,
        &project_resource(),
        team_a_project(&w1.server, None),
    )
    .await?;

    let apps = [
        tenant_app("legit", TEAM_A_REPO, "ok", &w1.server, TENANT_NS),
        tenant_app("crb", TEAM_A_REPO, "crb", &w1.server, TENANT_NS),
        tenant_app("sneaky", TEAM_A_REPO, "sneaky", &w1.server, TENANT_NS),
        tenant_app("kube-system", TEAM_A_REPO, "ks", &w1.server, "kube-system"),
        tenant_app("workload-2", TEAM_A_REPO, "w2", &w2.server, TENANT_NS),
        tenant_app("team-b-repo", TEAM_B_REPO, "b", &w1.server, TENANT_NS),
        tenant_app("local-path", "file:///etc", ".", &w1.server, TENANT_NS),
        tenant_app("legit-ns", TEAM_A_REPO, "ok-ns", &w1.server, TENANT_NS).namespace(APPS_NS),
        tenant_app("foreign-ns", TEAM_A_REPO, "ok", &w1.server, TENANT_NS).namespace("team-b-apps"),
        tenant_app("ignored", TEAM_A_REPO, "ok", &w1.server, TENANT_NS).namespace("elsewhere"),
        // The default project permits every repository: the URL policy still refuses
        // these before any file is read or connection made.
        tenant_app(
            "metadata",
            "https://169.254.169.254/latest",
            ".",
            &w1.server,
            TENANT_NS,
        )
        .project("default"),
        tenant_app(
            "own-files",
            "file:///var/run/secrets",
            ".",
            &w1.server,
            TENANT_NS,
        )
        .project("default"),
    ];
    for app in &apps {
        apply_json(&admin, &application_resource(), app.json()).await?;
    }
    // An ApplicationSet of the tenant over both customer clusters: only workload-1's
    // Application may exist.
    let template = AppBuilder::new("{{name}}-gen")
        .project(PROJECT)
        .source(TEAM_A_REPO, "gen")
        .server("{{server}}")
        .destination_namespace(TENANT_NS)
        .automated(true, true);
    let appset = AppSetBuilder::new("tenant-fleet")
        .cluster_generator(&[("tier", "customer")])
        .template("{{name}}-gen", &template);
    apply_json(
        &admin,
        &appset_resource(),
        appset_manifest("tenant-fleet", appset.spec()),
    )
    .await?;

    let mut args = run_args("tenancy", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([
        (TEAM_A_REPO.to_owned(), repo.clone()),
        (TEAM_B_REPO.to_owned(), repo.clone()),
    ]);
    args.application_namespaces = vec!["team-*".to_owned()];
    // Far beyond the test: whatever re-checks an app in time was triggered by a change.
    args.sync.resync = Duration::from_secs(3600);
    let port = argosy_tests::ports::free_port()?;
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(DASHBOARD_TOKEN.to_owned().into());
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    // The tenant's legitimate Applications sync, from both admitted namespaces.
    wait_synced(&admin, ARGOCD_NAMESPACE, "legit").await?;
    wait_synced(&admin, APPS_NS, "legit-ns").await?;
    wait_synced(&admin, ARGOCD_NAMESPACE, "workload-1-gen").await?;
    ensure!(configmap_exists(w1, TENANT_NS, "legit").await?);
    ensure!(configmap_exists(w1, TENANT_NS, "legit-ns").await?);

    // The project warns about orphaned objects: the stray ConfigMap is the only one.
    let orphans = condition(&admin, ARGOCD_NAMESPACE, "legit", "OrphanedResourceWarning").await?;
    ensure!(
        orphans == "Application has 1 orphaned resources",
        "{orphans}"
    );

    // Each escape gets a condition naming the rule.
    let expect = [
        (
            ARGOCD_NAMESPACE,
            "crb",
            "SyncError",
            "spec.clusterResourceWhitelist",
        ),
        (
            ARGOCD_NAMESPACE,
            "crb",
            "SyncError",
            "ClusterRoleBinding 'team-a-is-admin'",
        ),
        (
            ARGOCD_NAMESPACE,
            "sneaky",
            "SyncError",
            "namespace kube-system of ConfigMap 'sneaky'",
        ),
        (
            ARGOCD_NAMESPACE,
            "kube-system",
            "InvalidSpecError",
            "spec.destinations",
        ),
        (
            ARGOCD_NAMESPACE,
            "workload-2",
            "InvalidSpecError",
            "spec.destinations",
        ),
        (
            ARGOCD_NAMESPACE,
            "team-b-repo",
            "InvalidSpecError",
            "spec.sourceRepos",
        ),
        (
            ARGOCD_NAMESPACE,
            "local-path",
            "InvalidSpecError",
            "file:///etc",
        ),
        (
            "team-b-apps",
            "foreign-ns",
            "InvalidSpecError",
            "spec.sourceNamespaces",
        ),
    ];
    for (namespace, name, kind, needle) in expect {
        let message = condition(&admin, namespace, name, kind).await?;
        ensure!(
            message.contains(needle),
            "{namespace}/{name}: the {kind} condition should name {needle:?}, got {message:?}"
        );
    }
    // The generated Application for workload-2 was never created; the ApplicationSet says why.
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &appset_resource());
    let why = wait_for(
        "the ApplicationSet's refusal",
        Duration::from_secs(30),
        || async {
            let appset = serde_json::to_value(appsets.get("tenant-fleet").await?)?;
            Ok(appset
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("message").and_then(Value::as_str))
                .find(|m| m.contains("spec.destinations"))
                .map(str::to_owned))
        },
    )
    .await?;
    ensure!(why.contains(&w2.server), "{why}");
    let app_api: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &application_resource());
    ensure!(app_api.get_opt("workload-2-gen").await?.is_none());
    // The Application outside --application-namespaces was not touched: no status, no
    // finalizer (the legitimate ones have both by now).
    let ignored = app_json(&admin, "elsewhere", "ignored").await?;
    ensure!(ignored.get("status").is_none(), "{ignored}");

    // Audit logs: on workload-2 Argosy wrote nothing; on workload-1 only into team-a.
    let on_w2 = cp.argosy_writes(&w2.name)?;
    ensure!(
        on_w2.is_empty(),
        "writes on workload-2: {:?}",
        on_w2.iter().map(AuditEvent::describe).collect::<Vec<_>>()
    );
    let outside: Vec<String> = cp
        .argosy_writes(&w1.name)?
        .iter()
        .filter(|e| e.namespace.as_deref() != Some(TENANT_NS))
        .map(AuditEvent::describe)
        .collect();
    ensure!(
        outside.is_empty(),
        "writes outside team-a on workload-1: {outside:?}"
    );
    // The refused apps' other objects were not written either (the sync is refused whole).
    ensure!(!configmap_exists(w1, TENANT_NS, "crb-companion").await?);

    // The project grows to workload-2: its Application re-checks at once (no resync is
    // due for an hour) and syncs; the ApplicationSet creates the other one.
    apply_json(
        &admin,
        &project_resource(),
        team_a_project(&w1.server, Some(&w2.server)),
    )
    .await?;
    wait_synced(&admin, ARGOCD_NAMESPACE, "workload-2").await?;
    wait_synced(&admin, ARGOCD_NAMESPACE, "workload-2-gen").await?;
    ensure!(configmap_exists(w2, TENANT_NS, "on-w2").await?);

    // The canary was used (every write above went through it) and surfaced nowhere.
    ensure!(
        cp.audit_writes(&w1.name)?
            .iter()
            .any(|e| e.username == CANARY_USER),
        "the cluster Secrets' token was not the one used"
    );
    let mut seen = Vec::new();
    let everything = |resource: &ApiResource| {
        let api: Api<DynamicObject> = Api::all_with(admin.clone(), resource);
        async move {
            Ok::<_, anyhow::Error>(serde_json::to_string(
                &api.list(&Default::default()).await?,
            )?)
        }
    };
    seen.push(("Applications", everything(&application_resource()).await?));
    seen.push(("ApplicationSets", everything(&appset_resource()).await?));
    seen.push((
        "Events",
        everything(&ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&())).await?,
    ));
    seen.push(("/metrics", http_get(port, "/metrics").await?));
    seen.push(("/api/v1/fleet", http_get(port, "/api/v1/fleet").await?));
    seen.push(("/api/v1/events", http_get(port, "/api/v1/events").await?));
    for app in &apps {
        let (namespace, name) = app.namespace_and_name();
        seen.push((
            "an app's detail",
            http_get(port, &format!("/api/v1/apps/{namespace}/{name}")).await?,
        ));
        seen.push((
            "an app's diff",
            http_get(port, &format!("/api/v1/apps/{namespace}/{name}/diff")).await?,
        ));
        for output in [Output::Table, Output::Json] {
            let mut out = Vec::new();
            let get = AppCommand::Get {
                name: name.to_owned(),
                output,
            };
            let _ = argosy::cli::cmd::app::run(
                admin.clone(),
                namespace,
                ARGOCD_NAMESPACE,
                get,
                &mut out,
            )
            .await;
            seen.push(("argosy app get", String::from_utf8_lossy(&out).into_owned()));
        }
    }
    let mut out = Vec::new();
    let list = AppCommand::List {
        selector: None,
        output: Output::Json,
    };
    argosy::cli::cmd::app::run(
        admin.clone(),
        ARGOCD_NAMESPACE,
        ARGOCD_NAMESPACE,
        list,
        &mut out,
    )
    .await?;
    seen.push((
        "argosy app list",
        String::from_utf8_lossy(&out).into_owned(),
    ));
    for output in [Output::Table, Output::Json] {
        let mut out = Vec::new();
        let flags = StatusFlags {
            group_by: None,
            probe: true,
            output,
        };
        argosy::cli::cmd::fleet::status(admin.clone(), ARGOCD_NAMESPACE, &flags, &mut out).await?;
        seen.push(("argosy status", String::from_utf8_lossy(&out).into_owned()));
    }
    controller.stop().await?;
    seen.push(("the controller's log", captured_log()));
    for (what, text) in &seen {
        ensure!(
            !text.is_empty() || what.starts_with("argosy app get"),
            "{what} is empty"
        );
        ensure!(
            !text.contains(CANARY_TOKEN),
            "the canary token appears in {what}"
        );
    }
    Ok(())
}

const DASHBOARD_TOKEN: &str = "tenancy-dashboard-token";

/// `GET path` with the dashboard token, the answer as text (any status: an error page
/// must not leak either).
async fn http_get(port: u16, path: &str) -> Result<String> {
    Ok(argosy_tests::probe::get(port, path, Some(DASHBOARD_TOKEN))
        .await?
        .1)
}

/// Every log line of this test binary (the controller runs in-process), at debug level
/// for Argosy's crates; kept in memory only (a failure message names what leaked).
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_capturing_tracing() {
    let filter = tracing_subscriber::EnvFilter::new(
        "warn,argosy=debug,argosy_sync_engine=debug,argosy_generators=debug,argosy_crds=debug",
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

fn captured_log() -> String {
    String::from_utf8_lossy(
        &LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

/// A customer who grants Argosy only a namespace: the cluster Secret lists `namespaces:
/// shop`, its token is a ServiceAccount bound to a Role in `shop`. The app in `shop`
/// syncs with namespace-scoped watches (the audit log shows no request of that account
/// refused); an object in another namespace and a ClusterRoleBinding are refused with a
/// condition naming the cluster Secret's scope, and nothing is written outside `shop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_secret_limited_to_namespaces_is_honoured() -> Result<()> {
    init_capturing_tracing();
    let (cp, admin) = argocd_control_plane(1).await?;
    let workload = &cp.workloads()[0];
    let workload_admin = workload.client().await?;
    create_namespace(&workload_admin, "shop").await?;
    for object in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "argosy-shop", "namespace": "shop"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "argosy", "namespace": "shop"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "argosy", "namespace": "shop"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "argosy"},
               "subjects": [{"kind": "ServiceAccount", "name": "argosy-shop", "namespace": "shop"}]}),
    ] {
        let kind = object["kind"].as_str().unwrap().to_owned();
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), "v1".to_owned()),
        };
        let resource = ApiResource {
            api_version: object["apiVersion"].as_str().unwrap().to_owned(),
            group,
            version,
            plural: format!("{}s", kind.to_lowercase()),
            kind,
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(workload_admin.clone(), "shop", &resource);
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(
            &name,
            &PatchParams::apply("argosy-tests").force(),
            &Patch::Apply(&object),
        )
        .await?;
    }
    let account = argosy_tests::fixtures::as_service_account(
        &workload_admin,
        workload,
        "shop",
        "argosy-shop",
    )
    .await?;
    argosy_tests::fixtures::ClusterSecretBuilder::new("customer", &workload.server)
        .bearer_token(&account.token)
        .ca_data(workload.ca_data())
        .namespaces(&["shop"])
        .apply(&admin)
        .await?;

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("apps.git");
    let files: BTreeMap<String, TreeEntry> = [
        ("shop/cm.yaml", manifest_configmap("catalog", None)),
        (
            "escape/cm.yaml",
            manifest_configmap("escaped", Some("default")),
        ),
        ("crb/crb.yaml", CLUSTER_ROLE_BINDING.to_owned()),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), TreeEntry::File(c)))
    .collect();
    write_tree_commit(&repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;
    for (name, path) in [("shop", "shop"), ("escape", "escape"), ("crb", "crb")] {
        let app = tenant_app(name, TEAM_A_REPO, path, &workload.server, "shop").project("default");
        apply_json(&admin, &application_resource(), app.json()).await?;
    }
    let mut args = run_args("scoped", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(TEAM_A_REPO.to_owned(), repo)]);
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    wait_synced(&admin, ARGOCD_NAMESPACE, "shop").await?;
    ensure!(configmap_exists(workload, "shop", "catalog").await?);
    let escape = condition(&admin, ARGOCD_NAMESPACE, "escape", "SyncError").await?;
    ensure!(
        escape.contains("namespace default of ConfigMap 'escaped' is not managed"),
        "{escape}"
    );
    let crb = condition(&admin, ARGOCD_NAMESPACE, "crb", "SyncError").await?;
    ensure!(crb.contains("clusterResources is false"), "{crb}");

    let user = "system:serviceaccount:shop:argosy-shop";
    let requests: Vec<AuditEvent> = cp
        .audit_events(&workload.name)?
        .into_iter()
        .filter(|e| e.username == user)
        .collect();
    ensure!(
        !requests.is_empty(),
        "the controller used the customer's account"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|e| e.code == Some(403))
        .map(|e| format!("{} {}", e.verb, e.request_uri))
        .collect();
    ensure!(
        refused.is_empty(),
        "requests the customer's RBAC refused: {refused:?}"
    );
    let outside: Vec<String> = cp
        .argosy_writes(&workload.name)?
        .iter()
        .filter(|e| e.namespace.as_deref() != Some("shop"))
        .map(AuditEvent::describe)
        .collect();
    ensure!(outside.is_empty(), "writes outside shop: {outside:?}");
    controller.stop().await?;
    Ok(())
}
