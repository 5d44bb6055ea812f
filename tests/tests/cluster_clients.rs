#![allow(clippy::unwrap_used)]
//! `argosy_sync_engine::clients` against real kube-apiservers: clients built from Argo CD
//! cluster Secret config reach the workload cluster with Argosy's User-Agent, discovery
//! resolves built-in kinds and finds a CRD applied later, a rotated (here: wrong, then
//! fixed) token takes effect without a restart and never shows in messages, a stopped
//! cluster fails fast and shows in `states()`, and an exec credential plugin works when
//! allowed.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use argosy_crds::cluster::Cluster;
use argosy_sync_engine::clients::{ClientError, ClusterClients, ClusterConn, ClusterState, Scope};
use argosy_tests::{AuditEvent, ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const WRONG_TOKEN: &str = "wrong-token-4b7d19e2c5";
const WORKLOAD: &str = "workload-1";

/// The cluster Secret of `cluster` as the registry would parse it, with `config`.
fn cluster(server: &str, config: Value) -> Cluster {
    Cluster {
        secret: Some("argocd/workload-1".into()),
        name: WORKLOAD.into(),
        server: server.into(),
        config: serde_json::from_value(config).unwrap(),
        ..Cluster::default()
    }
}

fn state_of(clients: &ClusterClients, server: &str) -> ClusterState {
    clients
        .states()
        .into_iter()
        .find(|(s, _)| s == server)
        .map(|(_, state)| state)
        .unwrap()
}

async fn namespace_names(client: &Client) -> kube::Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.argosy.io" },
        "spec": {
            "group": "example.argosy.io",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                } },
            }],
        },
    }))
    .unwrap()
}

/// Polls `resource` until the kind resolves (the CRD must be established and the
/// negative discovery cache must expire first).
async fn resolve_eventually(
    conn: &ClusterConn,
    api_version: &str,
    kind: &str,
) -> Result<(kube::api::ApiResource, Scope)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match conn.resource(api_version, kind).await {
            Ok(found) => return Ok(found),
            Err(e) if Instant::now() > deadline => return Err(e).context("kind never resolved"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn assert_clean(text: &str) {
    assert!(!text.contains(WRONG_TOKEN), "token leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_clients_against_real_apiservers() -> Result<()> {
    let mut cp = ControlPlane::start(1)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management().client().await?;
    let wl: TestCluster = cp.workloads()[0].clone();
    let clients = ClusterClients::new(mgmt.clone(), false);

    // In-cluster is the controller's own client: it sees mgmt's namespaces.
    Api::<Namespace>::all(mgmt.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "only-in-mgmt" } }))?,
        )
        .await?;
    let local = clients.connect(&Cluster::in_cluster()).await?;
    assert!(
        namespace_names(&local.client)
            .await?
            .contains(&"only-in-mgmt".to_owned())
    );

    // The workload cluster, from its Argo CD cluster Secret config.
    let good = cluster(&wl.server, wl.argocd_cluster_config());
    let conn = clients.connect(&good).await?;
    assert!(Arc::ptr_eq(&conn, &clients.connect(&good).await?), "cached");
    let names = namespace_names(&conn.client).await?;
    assert!(names.contains(&"default".to_owned()), "{names:?}");
    assert!(!names.contains(&"only-in-mgmt".to_owned()), "{names:?}");

    // Requests carry Argosy's User-Agent.
    Api::<ConfigMap>::namespaced(conn.client.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "ua-probe" } }))?,
        )
        .await?;
    let probe = |e: &AuditEvent| e.verb == "create" && e.name.as_deref() == Some("ua-probe");
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        if let Some(event) = cp.audit_writes(WORKLOAD)?.into_iter().find(probe) {
            break event;
        }
        assert!(Instant::now() < deadline, "no audit event for ua-probe");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event.user_agent, argosy::run::USER_AGENT);

    // Discovery: built-in kinds with their scope.
    let (deployments, scope) = conn.resource("apps/v1", "Deployment").await?;
    assert_eq!(
        (deployments.plural.as_str(), scope),
        ("deployments", Scope::Namespaced)
    );
    let (namespaces, scope) = conn.resource("v1", "Namespace").await?;
    assert_eq!(
        (namespaces.plural.as_str(), namespaces.group.as_str(), scope),
        ("namespaces", "", Scope::Cluster)
    );
    let state = state_of(&clients, &wl.server);
    assert!(
        state
            .server_version
            .as_deref()
            .is_some_and(|v| v.starts_with("v1.")),
        "{state:?}"
    );
    assert!(
        state.last_success.is_some() && state.last_error.is_none(),
        "{state:?}"
    );

    // An unknown kind is an error; once its CRD exists it resolves (re-discovery).
    let e = conn
        .resource("example.argosy.io/v1", "Widget")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::UnknownKind { .. }), "{e}");
    assert_eq!(e.category(), "UnknownKind");
    let e = conn.resource("apps/v1", "Widget").await.unwrap_err();
    assert!(
        e.to_string().contains("Widget is not served in apps/v1"),
        "{e}"
    );
    Api::<CustomResourceDefinition>::all(wl.client().await?)
        .create(&PostParams::default(), &widget_crd())
        .await?;
    let (widgets, scope) = resolve_eventually(&conn, "example.argosy.io/v1", "Widget").await?;
    assert_eq!(
        (widgets.plural.as_str(), scope),
        ("widgets", Scope::Namespaced)
    );

    // A rotated token takes effect without a restart; a wrong one is a clean 401.
    let mut config = wl.argocd_cluster_config();
    config["bearerToken"] = json!(WRONG_TOKEN);
    let bad = clients.connect(&cluster(&wl.server, config)).await?;
    assert!(!Arc::ptr_eq(&conn, &bad), "new Secret content, new client");
    let e = bad.resource("apps/v1", "Deployment").await.unwrap_err();
    assert_eq!(e.category(), "ClusterUnauthorized", "{e}");
    assert!(e.to_string().contains("401"), "{e}");
    assert_clean(&e.to_string());
    assert_clean(&format!("{e:?}"));
    let list_error = namespace_names(&bad.client).await.unwrap_err();
    bad.record_error(&list_error);
    let state = state_of(&clients, &wl.server);
    let message = state.last_error.clone().unwrap();
    assert!(message.contains("401"), "{message}");
    assert_clean(&message);
    assert_clean(&format!("{:?}", clients.states()));

    let conn = clients.connect(&good).await?;
    assert!(!Arc::ptr_eq(&conn, &bad), "fixed Secret, new client");
    conn.resource("apps/v1", "Deployment").await?;
    assert_eq!(state_of(&clients, &wl.server).last_error, None);

    // A stopped cluster fails fast and shows in states(); it recovers after a restart.
    cp.stop_cluster(WORKLOAD).await?;
    let began = Instant::now();
    let list_error = namespace_names(&conn.client).await.unwrap_err();
    conn.record_error(&list_error);
    let e = conn.resource("batch/v1", "Job").await.unwrap_err();
    let elapsed = began.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_eq!(e.category(), "ClusterUnreachable", "{e}");
    let state = state_of(&clients, &wl.server);
    assert_eq!(state.last_error, Some(e.to_string()));
    assert!(state.last_error_at.is_some());

    cp.start_cluster(WORKLOAD).await?;
    namespace_names(&conn.client).await?;
    conn.record_success();
    let (jobs, _) = conn.resource("batch/v1", "Job").await?;
    assert_eq!(jobs.plural, "jobs");
    let state = state_of(&clients, &wl.server);
    assert!(state.last_error.is_none(), "{state:?}");
    assert!(state.last_error_at.is_none() && state.last_success.is_some());

    exec_plugins(&mgmt, &wl).await
}

/// An `execProviderConfig` plugin (a shell script that prints the token it gets through
/// the plugin environment) is refused by default and works when allowed.
async fn exec_plugins(mgmt: &Client, wl: &TestCluster) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let plugin = dir.path().join("token-plugin");
    std::fs::write(
        &plugin,
        "#!/bin/sh\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' \"$PLUGIN_TOKEN\"\n",
    )?;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755))?;
    let config = json!({
        "execProviderConfig": {
            "command": plugin.display().to_string(),
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "env": { "PLUGIN_TOKEN": wl.token },
        },
        "tlsClientConfig": { "caData": wl.ca_data() },
    });
    let with_plugin = cluster(&wl.server, config);

    let refusing = ClusterClients::new(mgmt.clone(), false);
    let e = refusing.connect(&with_plugin).await.err().unwrap();
    assert_eq!(e.category(), "ExecPluginRefused", "{e}");
    assert!(!e.to_string().contains(&wl.token), "{e}");
    assert_eq!(
        state_of(&refusing, &wl.server).last_error,
        Some(e.to_string())
    );

    let allowing = ClusterClients::new(mgmt.clone(), true);
    let conn = allowing.connect(&with_plugin).await?;
    let names = namespace_names(&conn.client).await?;
    assert!(names.contains(&"default".to_owned()), "{names:?}");
    Ok(())
}
