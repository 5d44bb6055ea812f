//! Private repositories through Argo CD's repository Secrets, end to end: the controller on
//! a real kube-apiserver reads real Git servers on loopback (nginx + `git http-backend`
//! over HTTPS with basic auth and with client certificates, Debian's sshd with key auth),
//! with the credentials, CAs and host keys Argo CD users already keep in `repository` and
//! `repo-creds` Secrets, `argocd-tls-certs-cm` and `argocd-ssh-known-hosts-cm`.
//!
//! Shown: a Git generator and synced Applications read private repositories over each
//! transport; one `repo-creds` template serves several repositories; wrong credentials are
//! a condition naming the repository (never the password) with no write to the workload
//! cluster; a wrong SSH host key is refused; a password rotated on the server and then in
//! the Secret recovers without a restart. No credential appears in any Application or
//! ApplicationSet.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, app_json, application_resource, apply_json, appset_resource,
    argocd_control_plane, comparison_error, comparison_error_within, repo_secret, run_args,
    start_controller, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, AppSetBuilder, register_cluster};
use argosy_tests::git_servers::{GitHttpServer, GitRepoDir, GitSshServer};
use argosy_tests::{AuditEvent, ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// A password that must never leave its Secret.
const WRONG_PASSWORD: &str = "wrong-password-canary-7731";
const ROTATED_PASSWORD: &str = "rotated-password-canary-4410";

fn configmap(name: &str, version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  version: {version}\n"
    )
}

/// A repository with `deploy/cm.yaml` (ConfigMap `name`, version v1).
fn repo(root: &std::path::Path, name: &str) -> Result<GitRepoDir> {
    let repo = GitRepoDir::init_bare(root, name)?;
    repo.commit_files(&[("deploy/cm.yaml", configmap(name, "v1"))], "v1")?;
    Ok(repo)
}

async fn config_map(client: &Client, name: &str, data: Value) -> Result<()> {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
        "data": data,
    });
    apply_json(client, &ApiResource::erase::<ConfigMap>(&()), cm).await?;
    Ok(())
}

/// An automated Application of `repo_url` (path `deploy`) into namespace `name`.
fn app(name: &str, repo_url: &str, server: &str) -> AppBuilder {
    AppBuilder::new(name)
        .source(repo_url, "deploy")
        .server(server)
        .destination_namespace(name)
        .automated(true, true)
        .sync_option("CreateNamespace=true")
}

/// Waits until `name` is Synced at `revision` (any revision if `None`).
async fn wait_synced_at(client: &Client, name: &str, revision: Option<&str>) -> Result<()> {
    let waited = wait_for(
        &format!("{name} Synced at {revision:?}"),
        Duration::from_secs(90),
        || async {
            let app = app_json(client, name).await?;
            let synced = app.pointer("/status/sync/status") == Some(&json!("Synced"));
            let at = app.pointer("/status/sync/revision").and_then(Value::as_str);
            Ok((synced && revision.is_none_or(|r| at == Some(r))).then_some(()))
        },
    )
    .await;
    if waited.is_err() {
        let app = app_json(client, name).await?;
        return waited
            .with_context(|| format!("status: {}", app.get("status").unwrap_or(&Value::Null)));
    }
    waited
}

async fn configmap_version(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
) -> Result<Option<String>> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace);
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("version").cloned()))
}

/// A control plane with one workload cluster registered as `workload`.
async fn control_plane() -> Result<(ControlPlane, Client)> {
    let (cp, admin) = argocd_control_plane(1).await?;
    register_cluster(&admin, "workload", &cp.workloads()[0], &[]).await?;
    Ok((cp, admin))
}

/// The controller's settings for Git servers on loopback (internal hosts; plain HTTP when
/// `http`): new commits are found by a 2 s resync and checks of the remote at most every
/// 2 s (no webhook here), a failing repository is backed off `backoff` doubling once.
fn loopback_git_args(
    identity: &str,
    cache: &std::path::Path,
    http: bool,
    backoff: Duration,
) -> argosy::run::RunArgs {
    let mut args = run_args(identity, cache.join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.url_policy = UrlPolicy {
        allow_http: http,
        allow_internal_hosts: true,
        ..UrlPolicy::default()
    };
    args.sync.resync = Duration::from_secs(2);
    args.repo_refresh = Duration::from_secs(2);
    args.repo_backoff = argosy_sync_engine::repo::Backoff {
        initial: backoff,
        max: backoff * 2,
    };
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repositories_through_argo_cd_repository_secrets() -> Result<()> {
    let (cp, admin) = control_plane().await?;
    let workload = &cp.workloads()[0];

    let root = tempfile::tempdir()?;
    let (http, ssh) = {
        let root = root.path().to_owned();
        tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((GitHttpServer::start(&root)?, GitSshServer::start(&root)?))
        })
        .await??
    };
    let app_a = repo(root.path(), "app-a")?;
    let _app_c = repo(root.path(), "app-c")?;
    let _locked = repo(root.path(), "locked")?;
    let _mtls = repo(root.path(), "mtls-app")?;
    let ssh_app = repo(root.path(), "ssh-app")?;
    // The generator's repository: one directory per generated Application.
    let fleet = GitRepoDir::init_bare(root.path(), "app-fleet")?;
    fleet.commit_files(
        &[
            ("apps/gen-one/cm.yaml", configmap("gen-one", "v1")),
            ("apps/gen-two/cm.yaml", configmap("gen-two", "v1")),
        ],
        "fleet",
    )?;

    // What an Argo CD user keeps: the server's CA, the SSH host key, and credentials.
    config_map(
        &admin,
        "argocd-tls-certs-cm",
        json!({"127.0.0.1": http.ca_pem()}),
    )
    .await?;
    config_map(
        &admin,
        "argocd-ssh-known-hosts-cm",
        json!({"ssh_known_hosts": ssh.known_hosts_line()}),
    )
    .await?;
    let (user, password) = (http.username(), http.password());
    repo_secret(
        &admin,
        "repo-app-a",
        "repository",
        &[
            ("url", &http.https_url("app-a")),
            ("username", &user),
            ("password", &password),
        ],
    )
    .await?;
    // One template for every `app-*` repository of the server without a Secret of its own.
    let prefix = http.https_url("app-").trim_end_matches(".git").to_owned();
    repo_secret(
        &admin,
        "creds-apps",
        "repo-creds",
        &[
            ("url", &prefix),
            ("username", &user),
            ("password", &password),
        ],
    )
    .await?;
    repo_secret(
        &admin,
        "repo-locked",
        "repository",
        &[
            ("url", &http.https_url("locked")),
            ("username", &user),
            ("password", WRONG_PASSWORD),
        ],
    )
    .await?;
    repo_secret(
        &admin,
        "repo-mtls",
        "repository",
        &[
            ("url", &http.mtls_url("mtls-app")),
            ("tlsClientCertData", http.client_cert_pem()),
            ("tlsClientCertKey", http.client_key_pem()),
        ],
    )
    .await?;
    repo_secret(
        &admin,
        "repo-ssh",
        "repository",
        &[
            ("url", &ssh.url("ssh-app")),
            ("sshPrivateKey", ssh.client_private_key_pem()),
        ],
    )
    .await?;

    let server = workload.server.clone();
    for (name, url) in [
        ("app-a", http.https_url("app-a")),
        ("app-c", http.https_url("app-c")),
        ("locked", http.https_url("locked")),
        ("mtls-app", http.mtls_url("mtls-app")),
        ("ssh-app", ssh.url("ssh-app")),
    ] {
        apply_json(
            &admin,
            &application_resource(),
            app(name, &url, &server).json(),
        )
        .await?;
    }
    let template = AppBuilder::new("unused")
        .source(http.https_url("app-fleet"), "{{path}}")
        .server(&server)
        .destination_namespace("{{path.basename}}")
        .automated(true, true)
        .sync_option("CreateNamespace=true");
    let mut appset = AppSetBuilder::new("fleet")
        .template("{{path.basename}}", &template)
        .json();
    appset["spec"]["generators"] = json!([{"git": {
        "repoURL": http.https_url("app-fleet"), "revision": "main",
        "directories": [{"path": "apps/*"}],
    }}]);
    apply_json(&admin, &appset_resource(), appset).await?;

    let dir = tempfile::tempdir()?;
    let args = loopback_git_args("git-auth", dir.path(), false, Duration::from_secs(1));
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    // Every transport, the template and the generator.
    for name in [
        "app-a", "app-c", "mtls-app", "ssh-app", "gen-one", "gen-two",
    ] {
        wait_synced_at(&admin, name, None).await?;
        ensure!(
            configmap_version(workload, name, name).await?.as_deref() == Some("v1"),
            "{name}'s ConfigMap on the workload cluster"
        );
    }

    // Wrong credentials: a condition naming the repository, not the password; no write.
    let locked_url = http.https_url("locked");
    let message = comparison_error(&admin, "locked", &locked_url).await?;
    ensure!(
        !message.contains(WRONG_PASSWORD),
        "the password leaked: {message}"
    );
    let locked_writes: Vec<String> = cp
        .argosy_writes(&workload.name)?
        .iter()
        .filter(|e| e.namespace.as_deref() == Some("locked") || e.request_uri.contains("/locked"))
        .map(AuditEvent::describe)
        .collect();
    ensure!(
        locked_writes.is_empty(),
        "writes for the locked app: {locked_writes:?}"
    );

    // A wrong SSH host key: refused, the app holds at v1.
    config_map(
        &admin,
        "argocd-ssh-known-hosts-cm",
        json!({"ssh_known_hosts": ssh.wrong_known_hosts_line()}),
    )
    .await?;
    let v2 = ssh_app.commit_files(&[("deploy/cm.yaml", configmap("ssh-app", "v2"))], "v2")?;
    let refused = comparison_error(&admin, "ssh-app", &ssh.url("ssh-app")).await?;
    ensure!(
        refused.to_lowercase().contains("host key"),
        "the refusal says why: {refused}"
    );
    ensure!(
        configmap_version(workload, "ssh-app", "ssh-app")
            .await?
            .as_deref()
            == Some("v1")
    );
    // The right key again: the new commit deploys.
    config_map(
        &admin,
        "argocd-ssh-known-hosts-cm",
        json!({"ssh_known_hosts": ssh.known_hosts_line()}),
    )
    .await?;
    wait_synced_at(&admin, "ssh-app", Some(&v2)).await?;

    // The password changes on the server: app-a fails (and says so), then the rotated
    // Secret recovers it without a restart.
    http.set_password(&user, ROTATED_PASSWORD)?;
    let head = app_a.commit_files(&[("deploy/cm.yaml", configmap("app-a", "v2"))], "v2")?;
    comparison_error(&admin, "app-a", &http.https_url("app-a")).await?;
    repo_secret(
        &admin,
        "repo-app-a",
        "repository",
        &[
            ("url", &http.https_url("app-a")),
            ("username", &user),
            ("password", ROTATED_PASSWORD),
        ],
    )
    .await?;
    wait_synced_at(&admin, "app-a", Some(&head)).await?;
    ensure!(
        configmap_version(workload, "app-a", "app-a")
            .await?
            .as_deref()
            == Some("v2")
    );

    // No credential in any Application or ApplicationSet.
    let apps: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &application_resource());
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &appset_resource());
    let everything = format!(
        "{}{}",
        serde_json::to_string(&apps.list(&ListParams::default()).await?)?,
        serde_json::to_string(&appsets.list(&ListParams::default()).await?)?
    );
    for secret in [
        WRONG_PASSWORD,
        ROTATED_PASSWORD,
        password.as_str(),
        "PRIVATE KEY",
    ] {
        ensure!(
            !everything.contains(secret),
            "a credential leaked into an Application"
        );
    }
    controller.stop().await?;
    Ok(())
}

/// A Git server that hangs (its process stopped: connections are accepted by the kernel
/// and never answered) fails its Applications' reconciles within 30 s with a condition
/// naming it, holds what they deployed, and does not slow down Applications of another
/// server, whose new commits keep deploying. When it answers again, its apps catch up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_git_server_holds_its_apps_and_no_other() -> Result<()> {
    let (cp, admin) = control_plane().await?;
    let workload = &cp.workloads()[0];

    let (stalling_root, healthy_root) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (stalling, healthy) = {
        let (a, b) = (
            stalling_root.path().to_owned(),
            healthy_root.path().to_owned(),
        );
        tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((GitHttpServer::start(&a)?, GitHttpServer::start(&b)?))
        })
        .await??
    };
    let stalled_repo = repo(stalling_root.path(), "stalled")?;
    let healthy_repo = repo(healthy_root.path(), "healthy")?;
    let server = workload.server.clone();
    for (name, url) in [
        ("stalled", stalling.http_url("stalled")),
        ("healthy", healthy.http_url("healthy")),
    ] {
        apply_json(
            &admin,
            &application_resource(),
            app(name, &url, &server).json(),
        )
        .await?;
    }
    let dir = tempfile::tempdir()?;
    let args = loopback_git_args("git-stall", dir.path(), true, Duration::from_secs(2));
    // The default timeouts: what a user gets.
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    wait_synced_at(&admin, "stalled", None).await?;
    wait_synced_at(&admin, "healthy", None).await?;

    let stalled_v2 =
        stalled_repo.commit_files(&[("deploy/cm.yaml", configmap("stalled", "v2"))], "v2")?;
    stalling.stop()?;
    let stopped_at = std::time::Instant::now();
    // The other server's commits keep deploying while the first one hangs.
    for version in ["v2", "v3"] {
        let head = healthy_repo.commit_files(
            &[("deploy/cm.yaml", configmap("healthy", version))],
            version,
        )?;
        wait_synced_at(&admin, "healthy", Some(&head)).await?;
    }
    let message = comparison_error_within(
        &admin,
        "stalled",
        &stalling.http_url("stalled"),
        Duration::from_secs(30).saturating_sub(stopped_at.elapsed()),
    )
    .await
    .context("a hung server must fail its apps' reconciles within 30 s")?;
    eprintln!(
        "[git-stall] condition after {:.1}s: {message}",
        stopped_at.elapsed().as_secs_f64()
    );
    // Held, not deleted: the stalled app's ConfigMap is still there at v1.
    ensure!(
        configmap_version(workload, "stalled", "stalled")
            .await?
            .as_deref()
            == Some("v1"),
        "the stalled app's objects are held"
    );

    stalling.resume()?;
    wait_synced_at(&admin, "stalled", Some(&stalled_v2)).await?;
    ensure!(
        configmap_version(workload, "stalled", "stalled")
            .await?
            .as_deref()
            == Some("v2")
    );
    controller.stop().await?;
    Ok(())
}
