//! Argosy's container image, end to end (issue #17): `scripts/build-image.sh` builds it from
//! scratch with buildah and pushes it to a real registry (HTTPS, basic auth); podman pulls
//! it back and runs it as the controller, the way a cluster runs it: read-only root
//! filesystem, user 65532, every capability dropped, no privilege escalation, `/tmp` and
//! the repository cache on tmpfs, the kubeconfig mounted read-only.
//!
//! The controller in the container runs the bundled per-customer example
//! (`examples/per-customer/`, as `scripts/demo.sh` does: CRDs, namespace `argocd`,
//! AppProject `default`, three customers' cluster Secrets, the ApplicationSet) against the
//! harness's real API servers, reaching them over the host network. Its fleet repository
//! is served by a real sshd on loopback, so the image's `ssh`, `/bin/sh`, passwd entry
//! and libraries are exercised the way Git over SSH uses them; the Kustomize overlays are
//! rendered by the image's `kubectl`. Shown: the six Applications are Synced (the gold
//! customer's by `argosy app sync` run inside the container), their objects are on the
//! customers' clusters, the process runs as uid/gid 65532, and the root filesystem is
//! read-only while `/tmp` is writable.
//!
//! Needs buildah, podman and runc (`scripts/install-image-tools.sh`), docker-registry
//! (`scripts/install-registry.sh`), sshd (`scripts/install-git-servers.sh`) and helm and
//! kubectl (`scripts/install-tools.sh`); `scripts/test.sh` installs them all. Runs as root
//! (rootful podman). `ARGOSY_KEEP_CONTAINER=1` keeps the container for a look afterwards.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, app_json, apply_json, appset_resource, init_tracing, install_crds,
    prepare_namespace, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::git_servers::{GitRepoDir, GitSshServer};
use argosy_tests::image::{self, Container};
use argosy_tests::ports::free_port;
use argosy_tests::registry::{Registry, RegistryOptions};
use argosy_tests::{ControlPlane, probe};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};

/// The user and group the image runs as.
const IMAGE_UID: u32 = 65532;
/// The repository URL of `examples/per-customer/appset.yaml`, replaced by the sshd's.
const EXAMPLE_REPO_URL: &str = "https://git.example.com/platform/fleet.git";
/// customer, tier, cluster Secret name, as in scripts/demo.sh.
const CUSTOMERS: [(&str, &str, &str); 3] = [
    ("acme", "gold", "acme-prod"),
    ("globex", "silver", "globex-prod"),
    ("initech", "bronze", "initech-prod"),
];
const APPS: [&str; 2] = ["web", "worker"];

/// Commits `examples/per-customer/repo` into `repo`.
fn commit_example(repo: &GitRepoDir) -> Result<String> {
    let source = image::workspace_root().join("examples/per-customer/repo");
    repo.commit_with("per-customer example", |work| copy_tree(&source, work))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn sync_status(app: &Value) -> &str {
    app.pointer("/status/sync/status")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Waits until Application `name` is Synced; on timeout the error carries its status and
/// the container's log.
async fn wait_synced(client: &Client, name: &str, container: &Container) -> Result<()> {
    let waited = wait_for(
        &format!("{name} Synced"),
        Duration::from_secs(120),
        || async {
            let app = app_json(client, name).await?;
            Ok((sync_status(&app) == "Synced").then_some(()))
        },
    )
    .await;
    if waited.is_err() {
        let status = app_json(client, name)
            .await
            .ok()
            .and_then(|a| a.get("status").cloned())
            .unwrap_or(Value::Null);
        return waited.with_context(|| {
            format!(
                "status: {status}\ncontainer log:\n{}",
                container.logs_tail(40)
            )
        });
    }
    waited
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_the_per_customer_example_read_only_as_65532() -> Result<()> {
    init_tracing();
    tokio::task::spawn_blocking(image::remove_stale).await??;

    // The image: built (or reused) by the script, pushed with TLS and basic auth.
    let registry =
        tokio::task::spawn_blocking(|| Registry::start(RegistryOptions::with_random_auth()))
            .await??;
    let registry = std::sync::Arc::new(registry);
    let pushed = {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || image::build_and_push(&registry)).await??
    };
    println!(
        "image {} ({}): {} bytes uncompressed ({:.1} MB), pushed as {}@{}",
        pushed.local,
        &pushed.id[..12.min(pushed.id.len())],
        pushed.size_bytes,
        pushed.size_bytes as f64 / 1e6,
        pushed.reference,
        pushed.digest
    );
    for line in pushed
        .log
        .lines()
        .filter(|l| l.starts_with("[build-image]"))
    {
        println!("{line}");
    }
    ensure!(
        registry
            .log()
            .contains(&format!("/v2/{}/manifests/", image::TEST_REPOSITORY)),
        "the registry saw no manifest push"
    );
    let scratch = tempfile::tempdir()?;
    let repo_digests = {
        let (registry, reference, dir) = (
            registry.clone(),
            pushed.reference.clone(),
            scratch.path().to_owned(),
        );
        tokio::task::spawn_blocking(move || image::pull(&registry, &reference, &dir)).await??
    };
    let repository = pushed
        .reference
        .rsplit_once(':')
        .map(|(repo, _)| repo)
        .unwrap_or_default();
    ensure!(
        repo_digests
            .lines()
            .any(|d| d == format!("{repository}@{}", pushed.digest)),
        "the pulled image is not the pushed manifest {}: {repo_digests}",
        pushed.digest
    );

    // The clusters, as scripts/demo.sh sets them up.
    let cp = ControlPlane::start(CUSTOMERS.len())
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let admin = cp.management().client().await?;
    install_crds(&admin).await?;
    prepare_namespace(&admin).await?;
    for ((customer, tier, name), cluster) in CUSTOMERS.iter().zip(cp.workloads()) {
        register_cluster(
            &admin,
            name,
            cluster,
            &[("customer", customer), ("tier", tier)],
        )
        .await?;
    }

    // The fleet repository over SSH, with Argo CD's known hosts and repository Secret.
    let root = tempfile::tempdir()?;
    let fleet = GitRepoDir::init_bare(root.path(), "fleet")?;
    let head = commit_example(&fleet)?;
    let ssh = {
        let root = root.path().to_owned();
        tokio::task::spawn_blocking(move || GitSshServer::start(&root)).await??
    };
    let repo_url = ssh.url("fleet");
    apply_json(
        &admin,
        &ApiResource::erase::<ConfigMap>(&()),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": ARGOCD_NAMESPACE},
            "data": {"ssh_known_hosts": ssh.known_hosts_line()},
        }),
    )
    .await?;
    apply_json(
        &admin,
        &ApiResource::erase::<Secret>(&()),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "repo-fleet", "namespace": ARGOCD_NAMESPACE,
                         "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "stringData": {"url": repo_url, "sshPrivateKey": ssh.client_private_key_pem()},
        }),
    )
    .await?;

    // The kubeconfig, readable by the container's user only.
    let kubeconfig = scratch.path().join("kubeconfig");
    cp.management().write_kubeconfig(&kubeconfig)?;
    std::os::unix::fs::chown(&kubeconfig, Some(IMAGE_UID), Some(IMAGE_UID))
        .context("chown of the kubeconfig (the test runs as root, as rootful podman needs)")?;
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o400))?;

    // The controller, in the container.
    let port = free_port()?;
    let name = format!("argosy-image-test-{}", std::process::id());
    let args: Vec<String> = [
        "--runtime",
        "runc",
        "--network",
        "host",
        "--read-only",
        "--user",
        "65532:65532",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp:rw,size=256m,mode=1777",
        // `U`: owned by the container's user, as a Pod's fsGroup makes its emptyDir (a
        // tmpfs takes its mode and owner from the image's directory otherwise: root).
        "--tmpfs",
        "/var/cache/argosy:rw,size=512m,U",
        "--env",
        "KUBECONFIG=/etc/argosy/kubeconfig",
        "--env",
        "ARGOSY_LOG=info",
        "--env",
        &format!("POD_NAME={name}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--volume".to_owned(),
        format!("{}:/etc/argosy/kubeconfig:ro", kubeconfig.display()),
        pushed.reference.clone(),
        "run".to_owned(),
        "--namespace=argocd".to_owned(),
        format!("--listen=127.0.0.1:{port}"),
        // The fleet repository is on loopback.
        "--allow-internal-repo-hosts".to_owned(),
    ])
    .collect();
    let container = {
        let (name, reference) = (name.clone(), pushed.reference.clone());
        tokio::task::spawn_blocking(move || Container::run(&name, &args, Some(reference))).await??
    };
    wait_for(
        "/readyz of the container",
        Duration::from_secs(60),
        || async {
            ensure!(
                container.running(),
                "the container exited:\n{}",
                container.logs_tail(40)
            );
            Ok(probe::get(port, "/readyz", None)
                .await
                .ok()
                .filter(|(status, _)| *status == 200)
                .map(|_| ()))
        },
    )
    .await?;

    // The example's ApplicationSet, reading the fleet repository over SSH.
    let appset_yaml =
        std::fs::read_to_string(image::workspace_root().join("examples/per-customer/appset.yaml"))?;
    ensure!(appset_yaml.contains(EXAMPLE_REPO_URL));
    let appset: Value = serde_yaml_ng::from_str(&appset_yaml.replace(EXAMPLE_REPO_URL, &repo_url))?;
    apply_json(&admin, &appset_resource(), appset).await?;

    let expected: Vec<String> = CUSTOMERS
        .iter()
        .flat_map(|(customer, _, _)| APPS.iter().map(move |app| format!("{app}-{customer}")))
        .collect();
    for app in &expected {
        wait_for(
            &format!("Application {app}"),
            Duration::from_secs(120),
            || async { Ok(app_json(&admin, app).await.ok().map(|_| ())) },
        )
        .await
        .with_context(|| format!("container log:\n{}", container.logs_tail(40)))?;
    }
    // Silver and bronze sync by themselves; gold by hand, with the image's own CLI.
    for app in expected.iter().filter(|a| !a.ends_with("-acme")) {
        wait_synced(&admin, app, &container).await?;
    }
    for app in ["web-acme", "worker-acme"] {
        let out = {
            let container_name = container.name().to_owned();
            tokio::task::spawn_blocking(move || {
                image::podman(&[
                    "exec",
                    &container_name,
                    "argosy",
                    "app",
                    "sync",
                    app,
                    "--wait",
                    "--timeout",
                    "90",
                ])
                .output()
            })
            .await??
        };
        ensure!(
            out.status.success(),
            "argosy app sync {app} in the container: {}",
            text(&out)
        );
        wait_synced(&admin, app, &container).await?;
    }
    for app in &expected {
        let status = app_json(&admin, app).await?;
        ensure!(
            status.pointer("/status/sync/revision") == Some(&json!(head)),
            "{app} is not synced at {head}: {}",
            status.get("status").unwrap_or(&Value::Null)
        );
    }

    // The customers' objects are on their clusters.
    for ((customer, _, _), cluster) in CUSTOMERS.iter().zip(cp.workloads()) {
        let client = cluster.client().await?;
        for app in APPS {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), app);
            let name = format!("{customer}-{app}");
            let live = deployments
                .get(&name)
                .await
                .with_context(|| format!("Deployment {app}/{name} on {}", cluster.name))?;
            let labels = live.metadata.labels.unwrap_or_default();
            ensure!(
                labels.get("customer").map(String::as_str) == Some(*customer),
                "Deployment {name} on {} has labels {labels:?}",
                cluster.name
            );
        }
    }
    ensure!(
        ssh.requests("fleet") > 0,
        "the controller in the container never fetched over SSH"
    );

    // How it ran: uid/gid 65532, read-only root, writable /tmp.
    let (uid, gid) = container.process_ids()?;
    println!("container process Uid: {uid} / Gid: {gid}");
    ensure!(
        uid == "65532 65532 65532 65532",
        "the container runs with Uid {uid}"
    );
    ensure!(
        gid == "65532 65532 65532 65532",
        "the container runs with Gid {gid}"
    );
    ensure!(
        container.inspect("{{.HostConfig.ReadonlyRootfs}}")? == "true",
        "podman inspect: the root filesystem is not read-only"
    );
    let user = container.inspect("{{.Config.User}}")?;
    ensure!(user == "65532:65532", "the container's user is {user}");
    let write_root = container.exec(&["/bin/sh", "-c", "echo x > /usr/local/bin/probe"])?;
    ensure!(
        !write_root.status.success() && text(&write_root).contains("Read-only file system"),
        "writing to the root filesystem: {}",
        text(&write_root)
    );
    let write_tmp = container.exec(&["/bin/sh", "-c", "echo x > /tmp/probe && echo written"])?;
    ensure!(
        write_tmp.status.success() && text(&write_tmp).contains("written"),
        "writing to /tmp: {}",
        text(&write_tmp)
    );
    let logs = container.logs();
    ensure!(
        !logs.contains(ssh.client_private_key_pem().trim()),
        "the SSH key is in the container's log"
    );
    drop(container);
    Ok(())
}
