//! Helm charts for real, end to end: the controller on a real kube-apiserver syncs charts
//! to a workload cluster from an OCI registry (Debian's `docker-registry`, HTTPS, basic
//! auth, the chart put there with `helm push`), from a Helm repository (`helm package` +
//! `helm repo index`, served over HTTPS with basic auth) and from Git with a dependency,
//! each with per-customer values from a `$values` source in Git, with the credentials and
//! CAs Argo CD users keep in repository Secrets and `argocd-tls-certs-cm`.
//!
//! Shown: the applied objects equal the real `helm template` of the same chart, release,
//! namespace and values (every field `helm template` prints is on the live object with the
//! same value); a version range picks the newest matching version; an unknown version and
//! a values file Helm cannot read are a condition with no write to the workload cluster.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, app_json, application_resource, apply_json, argocd_control_plane,
    comparison_error, repo_secret, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::git_servers::GitRepoDir;
use argosy_tests::helm_repo::{
    ChartDir, HelmHome, HelmRepoOptions, HelmRepoServer, helm_repo_index, helm_template_in,
};
use argosy_tests::registry::{Registry, RegistryOptions};
use argosy_tests::{AuditEvent, ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The Git repository of per-customer values, as Applications name it.
const VALUES_REPO: &str = "https://git.example.com/customer-values.git";
/// The Git repository of the umbrella chart with a dependency.
const CHARTS_REPO: &str = "https://git.example.com/platform-charts.git";

/// A chart with the harness's ConfigMap and Deployment, and a ConfigMap rendered only where
/// the destination serves policy/v1beta1 (Kubernetes before 1.25) naming the version Helm
/// was told: `.Capabilities` come from the destination cluster.
fn chart(name: &str, version: &str) -> ChartDir {
    ChartDir::new(name, version).template(
        "capabilities.yaml",
        r#"{{- if .Capabilities.APIVersions.Has "policy/v1beta1" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}-capabilities
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
{{- end }}
"#,
    )
}

/// Whether every field of `want` is on `have` with the same value (objects: each key of
/// `want`; lists: same length, element by element; scalars: equal, numbers by value).
fn fields_of(want: &Value, have: &Value, at: &str) -> Result<()> {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (key, value) in w {
                let inner = h
                    .get(key)
                    .with_context(|| format!("{at}.{key} is missing on the live object"))?;
                fields_of(value, inner, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(h)) => {
            ensure!(
                w.len() == h.len(),
                "{at}: {} items, live {}",
                w.len(),
                h.len()
            );
            for (i, (a, b)) in w.iter().zip(h).enumerate() {
                fields_of(a, b, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        (a, b) if a == b => Ok(()),
        (a, b) => bail!("{at}: helm template has {a}, the live object {b}"),
    }
}

/// `--kube-version` and `--api-versions` of `cluster`, as Argo CD passes them to Helm.
async fn capabilities_args(cluster: &TestCluster) -> Result<Vec<String>> {
    let client = cluster.client().await?;
    let version = client.apiserver_version().await?.git_version;
    let mut args = vec![
        "--kube-version".to_owned(),
        version.trim_start_matches('v').to_owned(),
    ];
    let mut versions = client.list_core_api_versions().await?.versions;
    for group in client.list_api_groups().await?.groups {
        versions.extend(group.versions.into_iter().map(|v| v.group_version));
    }
    for v in versions {
        args.extend(["--api-versions".to_owned(), v]);
    }
    Ok(args)
}

/// Checks that every object `helm template` prints is live on `cluster` (in `namespace`
/// unless it names its own), field for field.
async fn live_equals_template(
    cluster: &TestCluster,
    namespace: &str,
    rendered: &[Value],
) -> Result<()> {
    ensure!(!rendered.is_empty(), "helm template printed nothing");
    let client = cluster.client().await?;
    for object in rendered {
        let api_version = object["apiVersion"].as_str().context("apiVersion")?;
        let kind = object["kind"].as_str().context("kind")?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        let name = object["metadata"]["name"].as_str().context("name")?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let live = api
            .get_opt(name)
            .await?
            .with_context(|| format!("{kind} {namespace}/{name} is not on the cluster"))?;
        fields_of(
            object,
            &serde_json::to_value(live)?,
            &format!("{kind}/{name}"),
        )?;
    }
    Ok(())
}

/// Waits until `name` is Synced and Healthy-or-Progressing with `revision` for source 0.
async fn wait_synced(client: &Client, name: &str, revision: &str) -> Result<()> {
    let waited = wait_for(
        &format!("{name} Synced at {revision}"),
        Duration::from_secs(120),
        || async {
            let app = app_json(client, name).await?;
            let synced = app.pointer("/status/sync/status") == Some(&json!("Synced"));
            let at = app
                .pointer("/status/sync/revisions/0")
                .or_else(|| app.pointer("/status/sync/revision"))
                .and_then(Value::as_str);
            let operation_done =
                app.pointer("/status/operationState/phase") == Some(&json!("Succeeded"));
            Ok((synced && operation_done && at == Some(revision)).then_some(()))
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

/// An automated multi-source Application: the chart source first, then the values
/// repository as `ref: values`.
async fn chart_app(client: &Client, name: &str, chart_source: Value, server: &str) -> Result<()> {
    project_chart_app(client, "default", name, chart_source, server).await
}

/// [`chart_app`] in `project`.
async fn project_chart_app(
    client: &Client,
    project: &str,
    name: &str,
    chart_source: Value,
    server: &str,
) -> Result<()> {
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "project": project,
            "sources": [chart_source, {"repoURL": VALUES_REPO, "targetRevision": "HEAD", "ref": "values"}],
            "destination": {"server": server, "namespace": name},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
        },
    });
    apply_json(client, &application_resource(), app).await?;
    Ok(())
}

/// The workload cluster's writes by Argosy into `namespace`.
fn writes_into(cp: &ControlPlane, cluster: &str, namespace: &str) -> Result<Vec<String>> {
    Ok(cp
        .argosy_writes(cluster)?
        .iter()
        .filter(|e| {
            e.namespace.as_deref() == Some(namespace)
                || (e.resource.as_deref() == Some("namespaces")
                    && e.name.as_deref() == Some(namespace))
        })
        .map(AuditEvent::describe)
        .collect())
}

/// Where the charts come from: a registry and a chart repository, both HTTPS with basic
/// auth and their own throwaway CA.
struct ChartServers {
    registry: Registry,
    repo: HelmRepoServer,
    /// The directory `repo` serves.
    _repo_root: tempfile::TempDir,
    /// Packages by `name-version`.
    packages: std::collections::BTreeMap<String, PathBuf>,
}

impl ChartServers {
    /// `web` 1.0.0, 1.1.0, 1.2.0, 2.0.0 pushed to the registry under `charts`; `api` 0.9.0,
    /// 1.0.0, 1.0.1 in the chart repository.
    fn start(helm: &HelmHome, out: &Path) -> Result<Self> {
        let registry = Registry::start(RegistryOptions::with_random_auth())?;
        helm.registry_login(
            &registry.host_port(),
            registry.user().context("user")?,
            registry.password().context("password")?,
            &registry.ca_path(),
        )?;
        let mut packages = std::collections::BTreeMap::new();
        for version in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
            let tgz = chart("web", version).package(out)?;
            helm.run(&[
                "push",
                &tgz.to_string_lossy(),
                &registry.oci_url("charts"),
                "--ca-file",
                &registry.ca_path().to_string_lossy(),
            ])?;
            packages.insert(format!("web-{version}"), tgz);
        }
        let repo_root = tempfile::tempdir()?;
        for version in ["0.9.0", "1.0.0", "1.0.1"] {
            let tgz = chart("api", version).package(repo_root.path())?;
            packages.insert(format!("api-{version}"), tgz);
        }
        helm_repo_index(repo_root.path(), None)?;
        let repo = HelmRepoServer::start(
            HelmRepoOptions::new(repo_root.path())
                .basic_auth("charts", "repo-password-canary-5521"),
        )?;
        Ok(Self {
            registry,
            repo,
            _repo_root: repo_root,
            packages,
        })
    }

    fn package(&self, name_version: &str) -> Result<String> {
        Ok(self
            .packages
            .get(name_version)
            .with_context(|| format!("no package {name_version}"))?
            .to_string_lossy()
            .into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_a_registry_a_helm_repository_and_git_with_per_customer_values() -> Result<()> {
    let (cp, admin) = argocd_control_plane(1).await?;
    let workload = &cp.workloads()[0];
    register_cluster(&admin, "workload", workload, &[]).await?;
    let server = workload.server.clone();

    let work = tempfile::tempdir()?;
    // One Helm home: its registry login and repository serve the reference renders too.
    let (servers, helm) = {
        let (home, out) = (HelmHome::new()?, work.path().join("packages"));
        tokio::task::spawn_blocking(move || {
            ChartServers::start(&home, &out).map(|servers| (servers, home))
        })
        .await??
    };
    let registry_url = servers.registry.oci_url("charts");
    let repo_url = servers.repo.url();
    let registry_password = servers.registry.password().context("password")?.to_owned();
    let repo_password = servers.repo.password().context("password")?;

    // Per-customer values in Git, and an umbrella chart in Git depending on `web` 1.0.x from
    // the registry and `api` ^1.0.0 from the chart repository.
    let values = GitRepoDir::init_bare(work.path(), "customer-values")?;
    let values_of = [
        ("acme", "message: hello acme\nreplicaCount: 2\n"),
        (
            "initech",
            "message: hello initech\nreplicaCount: 3\nport: 9090\n",
        ),
        (
            "globex",
            "message: top-level\napi:\n  message: hello globex\n  replicaCount: 2\n",
        ),
    ];
    let mut files: Vec<(String, String)> = values_of
        .iter()
        .map(|(customer, text)| (format!("customers/{customer}.yaml"), (*text).to_owned()))
        .collect();
    files.push((
        "customers/broken.yaml".to_owned(),
        "message: [unclosed\n".to_owned(),
    ));
    values.commit_files(&files, "values")?;
    let umbrella = ChartDir::new("platform", "0.3.0")
        .dependency("web", "~1.0.0", &registry_url)
        .dependency("api", "^1.0.0", &repo_url);
    let charts = GitRepoDir::init_bare(work.path(), "platform-charts")?;
    let umbrella_dir = umbrella.write(&work.path().join("umbrella"))?;
    let mut chart_files = Vec::new();
    for entry in walk(&umbrella_dir)? {
        let relative = entry.strip_prefix(umbrella_dir.parent().context("parent")?)?;
        chart_files.push((
            relative.to_string_lossy().into_owned(),
            std::fs::read_to_string(&entry)?,
        ));
    }
    charts.commit_files(&chart_files, "umbrella")?;

    // What an Argo CD user keeps: both servers' CAs (one host, two certificates) and
    // repository Secrets for the registry and the chart repository.
    let cas = format!("{}\n{}", servers.registry.ca_pem(), servers.repo.ca_pem());
    apply_json(
        &admin,
        &ApiResource::erase::<ConfigMap>(&()),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-tls-certs-cm", "namespace": ARGOCD_NAMESPACE},
            "data": {"127.0.0.1": cas},
        }),
    )
    .await?;
    repo_secret(
        &admin,
        "registry-charts",
        "repository",
        &[
            ("url", &registry_url),
            ("type", "helm"),
            ("enableOCI", "true"),
            ("username", servers.registry.user().context("user")?),
            ("password", &registry_password),
        ],
    )
    .await?;
    repo_secret(
        &admin,
        "chart-repository",
        "repository",
        &[
            ("url", &repo_url),
            ("type", "helm"),
            ("name", "charts"),
            ("username", "charts"),
            ("password", &repo_password),
        ],
    )
    .await?;

    let mut args = run_args("helm-sources", work.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.url_policy = UrlPolicy {
        allow_internal_hosts: true,
        ..UrlPolicy::default()
    };
    args.sync.resync = Duration::from_secs(2);
    args.repos = [
        (VALUES_REPO.to_owned(), values.path().to_owned()),
        (CHARTS_REPO.to_owned(), charts.path().to_owned()),
    ]
    .into();
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    // The reference renders: the real helm with the destination's `.Capabilities`, as Argo
    // CD passes them, and the customer's values file.
    let capabilities = capabilities_args(workload).await?;
    let reference = |chart_ref: &str, release: &str, namespace: &str, customer: &str| {
        let values_file = work.path().join(format!("{customer}.yaml"));
        let text = values_of
            .iter()
            .find(|(c, _)| *c == customer)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        std::fs::write(&values_file, text)?;
        let mut args = vec![
            "--name-template",
            release,
            "--namespace",
            namespace,
            "--include-crds",
            "--values",
        ];
        let values_path = values_file.to_string_lossy().into_owned();
        args.push(&values_path);
        args.extend(capabilities.iter().map(String::as_str));
        helm_template_in(&helm, chart_ref, &args)
    };

    // 1. The registry, a range: `>=1.0.0 <2.0.0` is 1.2.0; acme's values from Git.
    chart_app(
        &admin,
        "acme-web",
        json!({"repoURL": registry_url, "chart": "web", "targetRevision": ">=1.0.0 <2.0.0",
               "helm": {"valueFiles": ["$values/customers/acme.yaml"]}}),
        &server,
    )
    .await?;
    wait_synced(&admin, "acme-web", "1.2.0").await?;
    let expected = reference(
        &servers.package("web-1.2.0")?,
        "acme-web",
        "acme-web",
        "acme",
    )?;
    let told = expected
        .iter()
        .find(|o| o["metadata"]["name"] == "acme-web-web-capabilities")
        .context("the chart saw no policy/v1beta1 on the destination")?;
    ensure!(
        told["data"]["kubeVersion"] == format!("v{}", capabilities[1]),
        "helm was not given the destination's version: {told}"
    );
    live_equals_template(workload, "acme-web", &expected).await?;

    // 2. The chart repository over HTTPS with basic auth, a range picking 1.0.1.
    chart_app(
        &admin,
        "initech-api",
        json!({"repoURL": repo_url, "chart": "api", "targetRevision": "~1.0.0",
               "helm": {"valueFiles": ["$values/customers/initech.yaml"]}}),
        &server,
    )
    .await?;
    wait_synced(&admin, "initech-api", "1.0.1").await?;
    let expected = reference(
        &servers.package("api-1.0.1")?,
        "initech-api",
        "initech-api",
        "initech",
    )?;
    live_equals_template(workload, "initech-api", &expected).await?;

    // 3. Git with dependencies from both, the subchart's values from Git.
    chart_app(
        &admin,
        "globex-platform",
        json!({"repoURL": CHARTS_REPO, "path": "platform", "targetRevision": "HEAD",
               "helm": {"valueFiles": ["$values/customers/globex.yaml"], "releaseName": "globex"}}),
        &server,
    )
    .await?;
    wait_synced(&admin, "globex-platform", &charts.head()?).await?;
    // The reference: the same chart after `helm dependency build` (the registry login and
    // the chart repository added with its credentials in the same Helm home).
    helm.run(&[
        "repo",
        "add",
        "charts",
        &repo_url,
        "--username",
        "charts",
        "--password",
        &repo_password,
        "--ca-file",
        &servers.repo.ca_path().to_string_lossy(),
    ])?;
    let built = work.path().join("reference");
    let built_chart = umbrella.write(&built)?;
    helm.run(&[
        "dependency",
        "build",
        &built_chart.to_string_lossy(),
        "--ca-file",
        &servers.registry.ca_path().to_string_lossy(),
    ])?;
    let expected = reference(
        &built_chart.to_string_lossy(),
        "globex",
        "globex-platform",
        "globex",
    )?;
    for dependency in ["globex-web", "globex-api"] {
        ensure!(
            expected
                .iter()
                .any(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == dependency),
            "the reference has no Deployment {dependency}: {expected:?}"
        );
    }
    live_equals_template(workload, "globex-platform", &expected).await?;

    // 4. An unknown version and a values file Helm cannot read: a condition, no write.
    chart_app(
        &admin,
        "unknown-version",
        json!({"repoURL": repo_url, "chart": "api", "targetRevision": "9.9.9",
               "helm": {"valueFiles": ["$values/customers/initech.yaml"]}}),
        &server,
    )
    .await?;
    let message = comparison_error(&admin, "unknown-version", "9.9.9").await?;
    chart_app(
        &admin,
        "bad-values",
        json!({"repoURL": registry_url, "chart": "web", "targetRevision": "1.1.0",
               "helm": {"valueFiles": ["$values/customers/broken.yaml"]}}),
        &server,
    )
    .await?;
    let bad = comparison_error(&admin, "bad-values", "customers/broken.yaml").await?;
    for text in [&message, &bad] {
        ensure!(
            !text.contains(&registry_password) && !text.contains(&repo_password),
            "a password leaked: {text}"
        );
    }
    // 5. A tenant whose project permits the registry but not the chart repository: the
    // umbrella chart's dependency from the chart repository is refused (Argo CD would fetch
    // it without credentials), nothing is written.
    apply_json(
        &admin,
        &ApiResource::erase::<argosy_crds::AppProject>(&()),
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "tenant", "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "sourceRepos": [CHARTS_REPO, VALUES_REPO, registry_url],
                "destinations": [{"server": server, "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "Namespace"}],
            },
        }),
    )
    .await?;
    project_chart_app(
        &admin,
        "tenant",
        "tenant-platform",
        json!({"repoURL": CHARTS_REPO, "path": "platform", "targetRevision": "HEAD"}),
        &server,
    )
    .await?;
    comparison_error(
        &admin,
        "tenant-platform",
        "is not permitted in project 'tenant'",
    )
    .await?;

    // Long enough for a few resyncs: nothing is written for any of them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for namespace in ["unknown-version", "bad-values", "tenant-platform"] {
        let writes = writes_into(&cp, &workload.name, namespace)?;
        ensure!(writes.is_empty(), "writes for {namespace}: {writes:?}");
    }

    controller.stop().await?;
    Ok(())
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}
