//! Lua health checks from `argocd-cm` against real kube-apiservers (one management, one
//! workload cluster): a custom resource kind is judged by the user's script, and an edited
//! script changes the verdict without a restart (issue #18, item 6).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, init_tracing, install_crds,
    prepare_namespace, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example.com/platform/widgets.git";

/// The user's script: a Widget is Healthy when `status.ready`, else Degraded with its reason.
const SCRIPT: &str = r#"
hs = {}
if obj.status ~= nil and obj.status.ready == true then
  hs.status = "Healthy"
  hs.message = "widget is ready"
else
  hs.status = "Degraded"
  local why = "no status"
  if obj.status ~= nil and obj.status.reason ~= nil then why = obj.status.reason end
  hs.message = "widget is not ready: " .. why
end
return hs
"#;

fn widget_crd() -> Result<CustomResourceDefinition> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))?)
}

async fn argocd_cm(client: &Client, script: &str) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": ARGOCD_NAMESPACE},
        "data": {"resource.customizations.health.example.com_Widget": script}});
    api.patch(
        "argocd-cm",
        &PatchParams::apply("lua-health-test").force(),
        &Patch::Apply(cm),
    )
    .await?;
    Ok(())
}

async fn health(client: &Client) -> Result<(String, String)> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    let app = serde_json::to_value(api.get("widgets").await?)?;
    let text = |p: &str| {
        app.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Ok((
        text("/status/health/status"),
        text("/status/resources/0/health/message"),
    ))
}

#[tokio::test]
async fn a_custom_kind_is_judged_by_the_argocd_cm_script_and_an_edit_applies_at_once() -> Result<()>
{
    init_tracing();
    let cp = ControlPlane::start(1)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let client = cp.management().client().await?;
    install_crds(&client).await?;
    prepare_namespace(&client).await?;
    let workload = &cp.workloads()[0];
    let workload_client = workload.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(workload_client.clone());
    crds.create(&PostParams::default(), &widget_crd()?).await?;
    register_cluster(&client, "w1", workload, &[]).await?;
    argocd_cm(&client, SCRIPT).await?;

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("widgets.git");
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  size: 3\n";
    let entries = BTreeMap::from([("widget.yaml".to_owned(), TreeEntry::File(widget.into()))]);
    write_tree_commit(&repo, "refs/heads/main", &entries).map_err(|e| anyhow::anyhow!(e))?;
    // The CRD may take a moment to be served on the workload cluster.
    let widgets = kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    wait_for(
        "the Widget CRD is served",
        Duration::from_secs(30),
        || async {
            let api: Api<DynamicObject> =
                Api::namespaced_with(workload_client.clone(), "default", &widgets);
            Ok(api.list(&Default::default()).await.ok().map(|_| ()))
        },
    )
    .await?;

    let mut args = run_args("lua-health", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo)]);
    args.sync.resync = Duration::from_secs(2);
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    apply_json(
        &client,
        &application_resource(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "widgets", "namespace": ARGOCD_NAMESPACE},
            "spec": {"project": "default",
                "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "."},
                "destination": {"server": workload.server.clone(), "namespace": "default"},
                "syncPolicy": {"automated": {}}}}),
    )
    .await?;

    // No status yet: the script says Degraded, with its own message.
    wait_for(
        "the script's Degraded verdict",
        Duration::from_secs(60),
        || async {
            let (status, message) = health(&client).await?;
            Ok((status == "Degraded" && message == "widget is not ready: no status").then_some(()))
        },
    )
    .await?;

    // The widget becomes ready: Healthy, by the same script.
    let api: Api<DynamicObject> =
        Api::namespaced_with(workload_client.clone(), "default", &widgets);
    api.patch(
        "gear",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"ready": true}})),
    )
    .await?;
    wait_for(
        "the script's Healthy verdict",
        Duration::from_secs(60),
        || async {
            let (status, message) = health(&client).await?;
            Ok((status == "Healthy" && message == "widget is ready").then_some(()))
        },
    )
    .await?;

    // An edited script is used without a restart.
    argocd_cm(
        &client,
        "return {status = \"Suspended\", message = \"edited: \" .. obj.metadata.name}",
    )
    .await?;
    wait_for(
        "the edited script's verdict",
        Duration::from_secs(60),
        || async {
            let (status, message) = health(&client).await?;
            Ok((status == "Suspended" && message == "edited: gear").then_some(()))
        },
    )
    .await?;

    // A script that never ends is stopped (Unknown), and the controller keeps going.
    argocd_cm(&client, "while true do end").await?;
    wait_for(
        "the endless script is stopped",
        Duration::from_secs(60),
        || async {
            let (status, _) = health(&client).await?;
            Ok((status == "Unknown").then_some(()))
        },
    )
    .await?;
    Ok(())
}
