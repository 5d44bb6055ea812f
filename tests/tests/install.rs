//! `install.yaml`, Argosy's install without Helm (issue #17): the chart rendered by the real
//! `helm template` with default values (`scripts/render-install.sh`). It cannot go stale:
//! the committed file must equal what the script renders now. And it installs: the real
//! `kubectl apply --server-side -f install.yaml` (scripts/install-tools.sh's kubectl)
//! against a real kube-apiserver creates the namespace, the CRDs, the controller's
//! Deployment, ServiceAccount and RBAC, and Argo CD's `default` AppProject.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{ARGOCD_NAMESPACE, init_tracing, wait_for};
use argosy_tests::image::workspace_root;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

fn text(out: &Output) -> String {
    format!(
        "{} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn install_yaml_is_what_the_script_renders_now() -> Result<()> {
    let root = workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/render-install.sh"))
        .arg("--stdout")
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .context("running scripts/render-install.sh")?;
    ensure!(
        out.status.success(),
        "scripts/render-install.sh: {}",
        text(&out)
    );
    let rendered = String::from_utf8(out.stdout)?;
    let committed = std::fs::read_to_string(root.join("install.yaml"))?;
    if rendered != committed {
        let (rendered_lines, committed_lines): (Vec<&str>, Vec<&str>) =
            (rendered.lines().collect(), committed.lines().collect());
        let line = (0..rendered_lines.len().max(committed_lines.len()))
            .find(|&i| rendered_lines.get(i) != committed_lines.get(i))
            .unwrap_or(0);
        anyhow::bail!(
            "install.yaml is stale: run scripts/render-install.sh (line {}: committed {:?}, rendered now {:?})",
            line + 1,
            committed_lines.get(line),
            rendered_lines.get(line)
        );
    }
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "AppProject",
    ] {
        ensure!(
            committed.contains(&format!("\nkind: {kind}\n")),
            "install.yaml has no {kind}"
        );
    }
    Ok(())
}

/// `kubectl --kubeconfig KUBECONFIG ARGS` (the kubectl on PATH: scripts/test.sh puts
/// scripts/install-tools.sh's first).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .context("running kubectl (scripts/install-tools.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_install_yaml_and_the_default_project_is_there() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(0)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management();
    let admin = mgmt.client().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    mgmt.write_kubeconfig(&kubeconfig)?;
    let install = workspace_root().join("install.yaml");
    let install = install.to_str().context("non-UTF-8 path")?;

    // As the README says: kubectl maps every object of the file before it applies any, so
    // on a cluster without the CRDs the first apply creates everything but the AppProject
    // (whose kind is not served yet); once the CRDs are established, the second creates it.
    let first = kubectl(&kubeconfig, &["apply", "--server-side", "-f", install])?;
    println!(
        "kubectl apply --server-side -f install.yaml: {}",
        text(&first)
    );
    let first_stderr = String::from_utf8_lossy(&first.stderr);
    let errors: Vec<&str> = first_stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("Error"))
        .collect();
    ensure!(
        first.status.success()
            || errors
                .iter()
                .all(|e| e.contains(r#"for name: "default""#) && e.contains("AppProject")),
        "the first apply failed for more than the AppProject: {}",
        text(&first)
    );
    for object in [
        "namespace/argocd",
        "customresourcedefinition.apiextensions.k8s.io/appprojects.argoproj.io",
        "serviceaccount/argosy",
        "role.rbac.authorization.k8s.io/argosy",
        "rolebinding.rbac.authorization.k8s.io/argosy",
        "service/argosy",
        "deployment.apps/argosy",
    ] {
        ensure!(
            String::from_utf8_lossy(&first.stdout)
                .contains(&format!("{object} serverside-applied")),
            "the first apply did not apply {object}: {}",
            text(&first)
        );
    }
    let established = kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            "crd/applications.argoproj.io",
            "crd/applicationsets.argoproj.io",
            "crd/appprojects.argoproj.io",
        ],
    )?;
    ensure!(established.status.success(), "{}", text(&established));
    let second = wait_for(
        "a second kubectl apply that succeeds",
        Duration::from_secs(30),
        || async {
            // Right after Established, discovery can lag a moment.
            let out = kubectl(&kubeconfig, &["apply", "--server-side", "-f", install])?;
            Ok(out.status.success().then_some(out))
        },
    )
    .await?;
    ensure!(
        String::from_utf8_lossy(&second.stdout)
            .contains("appproject.argoproj.io/default serverside-applied"),
        "{}",
        text(&second)
    );

    let namespace: Api<Namespace> = Api::all(admin.clone());
    namespace.get(ARGOCD_NAMESPACE).await?;
    let deployment: Api<Deployment> = Api::namespaced(admin.clone(), ARGOCD_NAMESPACE);
    let deployment = deployment.get("argosy").await?;
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("the Deployment has no pod spec")?;
    ensure!(pod.service_account_name.as_deref() == Some("argosy"));
    let container = &pod.containers[0];
    ensure!(container.image.as_deref() == Some(&*format!("argosy:{}", env!("CARGO_PKG_VERSION"))));
    ensure!(
        container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            == Some(true),
        "the root filesystem must be read-only"
    );
    Api::<ServiceAccount>::namespaced(admin.clone(), ARGOCD_NAMESPACE)
        .get("argosy")
        .await?;
    Api::<Role>::namespaced(admin.clone(), ARGOCD_NAMESPACE)
        .get("argosy")
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), ARGOCD_NAMESPACE)
        .get("argosy")
        .await?;

    let projects: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        ARGOCD_NAMESPACE,
        &ApiResource::erase::<argosy_crds::AppProject>(&()),
    );
    let project = wait_for(
        "AppProject argocd/default",
        Duration::from_secs(30),
        || async { Ok(projects.get_opt("default").await?) },
    )
    .await?;
    let project = serde_json::to_value(project)?;
    ensure!(
        project["spec"]
            == json!({
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            }),
        "AppProject default: {}",
        project["spec"]
    );
    ensure!(
        project.pointer("/metadata/annotations/helm.sh~1resource-policy")
            == Some(&Value::from("keep"))
    );

    Ok(())
}
