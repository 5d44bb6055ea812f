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
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, install_crds, prepare_namespace, run_args,
    start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::git_servers::GitRepoDir;
use argosy_tests::registry::{Registry, RegistryOptions};
use argosy_tests::{AuditEvent, ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The Git repository of per-customer values, as Applications name it.
const VALUES_REPO: &str = "https://git.example.com/customer-values.git";
/// The Git repository of the umbrella chart with a dependency.
const CHARTS_REPO: &str = "https://git.example.com/platform-charts.git";

/// A `helm` whose configuration, cache and registry logins live in a temp dir of its own.
struct Helm {
    home: tempfile::TempDir,
}

impl Helm {
    fn new() -> Result<Self> {
        Ok(Self {
            home: tempfile::Builder::new().prefix("argosy-helm-").tempdir()?,
        })
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        use std::io::Write as _;
        let home = self.home.path();
        let mut child = Command::new("helm")
            .args(args)
            .env("HOME", home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("DOCKER_CONFIG", home.join("docker"))
            .env_remove("HELM_REGISTRY_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running helm (scripts/install-tools.sh puts it on PATH)")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.unwrap_or_default().as_bytes())?;
        }
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// A chart `web` at `version`: a ConfigMap and a Deployment whose fields come from values.
fn write_chart(dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let chart = dir.join(format!("{name}-{version}-src")).join(name);
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{version}\"\n"),
    )?;
    std::fs::write(
        chart.join("values.yaml"),
        "customer: nobody\nreplicas: 1\nimage: registry.example.com/web:1\n",
    )?;
    std::fs::write(
        chart.join("templates/config.yaml"),
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/version: {{ .Chart.Version | quote }}
data:
  customer: {{ .Values.customer | quote }}
  chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
"#,
    )?;
    // Rendered only where the destination serves policy/v1beta1 (Kubernetes before 1.25),
    // naming the version Helm was told: `.Capabilities` come from the destination cluster.
    std::fs::write(
        chart.join("templates/capabilities.yaml"),
        r#"{{- if .Capabilities.APIVersions.Has "policy/v1beta1" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-capabilities
  namespace: {{ .Release.Namespace }}
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
{{- end }}
"#,
    )?;
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
          env:
            - {name: CUSTOMER, value: {{ .Values.customer | quote }}}
"#,
    )?;
    Ok(chart)
}

/// `helm package` of a chart directory into `out`; the package's path.
fn package(helm: &Helm, chart: &Path, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let printed = helm.run(
        &[
            "package",
            &chart.to_string_lossy(),
            "--destination",
            &out.to_string_lossy(),
        ],
        None,
    )?;
    let path = printed
        .rsplit(": ")
        .next()
        .map(|p| PathBuf::from(p.trim()))
        .context("helm package printed no path")?;
    ensure!(path.is_file(), "no package at {}", path.display());
    Ok(path)
}

/// The documents `helm template` prints, as JSON.
fn helm_template(helm: &Helm, args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["template"];
    all.extend_from_slice(args);
    let text = helm.run(&all, None)?;
    let mut objects = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
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

/// Checks that every object `helm template` prints is live on `cluster`, field for field.
async fn live_equals_template(cluster: &TestCluster, rendered: &[Value]) -> Result<()> {
    ensure!(!rendered.is_empty(), "helm template printed nothing");
    let client = cluster.client().await?;
    for object in rendered {
        let api_version = object["apiVersion"].as_str().context("apiVersion")?;
        let kind = object["kind"].as_str().context("kind")?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .context("namespace")?;
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

async fn app_json(client: &Client, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    Ok(serde_json::to_value(api.get(name).await?)?)
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

/// The message of `name`'s ComparisonError once it contains `needle`.
async fn comparison_error(client: &Client, name: &str, needle: &str) -> Result<String> {
    let waited = wait_for(
        &format!("a ComparisonError on {name} containing {needle:?}"),
        Duration::from_secs(90),
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
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "project": "default",
            "sources": [chart_source, {"repoURL": VALUES_REPO, "targetRevision": "HEAD", "ref": "values"}],
            "destination": {"server": server, "namespace": name},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
        },
    });
    apply_json(client, &application_resource(), app).await?;
    Ok(())
}

async fn secret(client: &Client, name: &str, kind: &str, data: &[(&str, &str)]) -> Result<()> {
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
    apply_json(client, &ApiResource::erase::<Secret>(&()), secret).await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_an_oci_registry_and_git_with_per_customer_values() -> Result<()> {
    let cp = ControlPlane::start(1)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let admin = cp.management().client().await?;
    install_crds(&admin).await?;
    prepare_namespace(&admin).await?;
    let workload = &cp.workloads()[0];
    register_cluster(&admin, "workload", workload, &[]).await?;
    let server = workload.server.clone();

    let work = tempfile::tempdir()?;
    let helm = Helm::new()?;
    let registry =
        tokio::task::spawn_blocking(|| Registry::start(RegistryOptions::with_random_auth()))
            .await??;
    let (user, password) = (
        registry.user().unwrap().to_owned(),
        registry.password().unwrap().to_owned(),
    );

    // Four versions of `web` pushed to the registry with the real helm.
    let packages = work.path().join("packages");
    helm.run(
        &[
            "registry",
            "login",
            &registry.host_port(),
            "--username",
            &user,
            "--password-stdin",
            "--ca-file",
            &registry.ca_path().to_string_lossy(),
        ],
        Some(&password),
    )?;
    let mut pushed = Vec::new();
    for version in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        let chart = write_chart(work.path(), "web", version)?;
        let tgz = package(&helm, &chart, &packages)?;
        helm.run(
            &[
                "push",
                &tgz.to_string_lossy(),
                &registry.oci_url("charts"),
                "--ca-file",
                &registry.ca_path().to_string_lossy(),
            ],
            None,
        )?;
        pushed.push(tgz);
    }

    // Per-customer values in Git, and an umbrella chart in Git depending on `web` 1.0.x
    // from the registry.
    let values = GitRepoDir::init_bare(work.path(), "customer-values")?;
    values.commit_files(
        &[
            ("customers/acme.yaml", "customer: acme\nreplicas: 2\n"),
            (
                "customers/globex.yaml",
                "customer: globex\nreplicas: 3\nimage: registry.example.com/web:2\n",
            ),
            ("customers/broken.yaml", "customer: [unclosed\n"),
        ],
        "values",
    )?;
    let charts = GitRepoDir::init_bare(work.path(), "platform-charts")?;
    let umbrella_yaml = format!(
        "apiVersion: v2\nname: platform\nversion: 0.3.0\ndependencies:\n  - name: web\n    version: \"~1.0.0\"\n    repository: \"{}\"\n",
        registry.oci_url("charts")
    );
    charts.commit_files(
        &[
            ("platform/Chart.yaml", umbrella_yaml.as_str()),
            ("platform/values.yaml", "web:\n  customer: platform-default\n"),
            (
                "platform/templates/marker.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-platform\n  namespace: {{ .Release.Namespace }}\ndata:\n  web-customer: {{ .Values.web.customer | quote }}\n",
            ),
        ],
        "umbrella",
    )?;

    // What an Argo CD user keeps: the registry's CA and an OCI repository Secret.
    apply_json(
        &admin,
        &ApiResource::erase::<ConfigMap>(&()),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-tls-certs-cm", "namespace": ARGOCD_NAMESPACE},
            "data": {"127.0.0.1": registry.ca_pem()},
        }),
    )
    .await?;
    secret(
        &admin,
        "registry-charts",
        "repository",
        &[
            ("url", &registry.oci_url("charts")),
            ("type", "helm"),
            ("enableOCI", "true"),
            ("username", &user),
            ("password", &password),
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

    // 1. OCI, a range: `>=1.0.0 <2.0.0` is 1.2.0; acme's values from Git.
    chart_app(
        &admin,
        "acme-web",
        json!({"repoURL": registry.oci_url("charts"), "chart": "web", "targetRevision": ">=1.0.0 <2.0.0",
               "helm": {"valueFiles": ["$values/customers/acme.yaml"]}}),
        &server,
    )
    .await?;
    wait_synced(&admin, "acme-web", "1.2.0").await?;
    let values_file = work.path().join("acme.yaml");
    std::fs::write(&values_file, "customer: acme\nreplicas: 2\n")?;
    let capabilities = capabilities_args(workload).await?;
    let template = |args: &[&str]| -> Result<Vec<Value>> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(capabilities.iter().map(String::as_str));
        helm_template(&helm, &all)
    };
    let expected = template(&[
        &pushed[2].to_string_lossy(),
        "--name-template",
        "acme-web",
        "--namespace",
        "acme-web",
        "--include-crds",
        "--values",
        &values_file.to_string_lossy(),
    ])?;
    let told = expected
        .iter()
        .find(|o| o["metadata"]["name"] == "acme-web-capabilities")
        .context("the chart saw no policy/v1beta1 on the destination")?;
    ensure!(
        told["data"]["kubeVersion"] == format!("v{}", capabilities[1]),
        "helm was not given the destination's version: {told}"
    );
    live_equals_template(workload, &expected).await?;

    // 2. Git with a dependency from the registry, values for the subchart from Git.
    chart_app(
        &admin,
        "globex-platform",
        json!({"repoURL": CHARTS_REPO, "path": "platform", "targetRevision": "HEAD",
               "helm": {"valueFiles": ["$values/customers/globex.yaml"], "releaseName": "globex"}}),
        &server,
    )
    .await?;
    let head = charts.head()?;
    wait_synced(&admin, "globex-platform", &head).await?;
    // The reference: the same chart built by `helm dependency build` and templated with
    // the globex values under `web:` (a subchart's values live under its name).
    let reference = work.path().join("reference");
    std::fs::create_dir_all(reference.join("platform/templates"))?;
    std::fs::write(reference.join("platform/Chart.yaml"), &umbrella_yaml)?;
    std::fs::write(
        reference.join("platform/values.yaml"),
        "web:\n  customer: platform-default\n",
    )?;
    std::fs::write(
        reference.join("platform/templates/marker.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-platform\n  namespace: {{ .Release.Namespace }}\ndata:\n  web-customer: {{ .Values.web.customer | quote }}\n",
    )?;
    helm.run(
        &[
            "dependency",
            "build",
            &reference.join("platform").to_string_lossy(),
            "--ca-file",
            &registry.ca_path().to_string_lossy(),
        ],
        None,
    )?;
    let globex_values = work.path().join("globex.yaml");
    std::fs::write(
        &globex_values,
        "customer: globex\nreplicas: 3\nimage: registry.example.com/web:2\n",
    )?;
    let expected = template(&[
        &reference.join("platform").to_string_lossy(),
        "--name-template",
        "globex",
        "--namespace",
        "globex-platform",
        "--include-crds",
        "--values",
        &globex_values.to_string_lossy(),
    ])?;
    ensure!(
        expected.iter().any(|o| o["kind"] == "Deployment"),
        "the reference holds no Deployment of the dependency: {expected:?}"
    );
    live_equals_template(workload, &expected).await?;

    // 3. An unknown version and a values file Helm cannot read: a condition, no write.
    chart_app(
        &admin,
        "unknown-version",
        json!({"repoURL": registry.oci_url("charts"), "chart": "web", "targetRevision": "9.9.9",
               "helm": {"valueFiles": ["$values/customers/acme.yaml"]}}),
        &server,
    )
    .await?;
    let message = comparison_error(&admin, "unknown-version", "9.9.9").await?;
    ensure!(
        !message.contains(&password),
        "the registry password leaked: {message}"
    );
    chart_app(
        &admin,
        "bad-values",
        json!({"repoURL": registry.oci_url("charts"), "chart": "web", "targetRevision": "1.1.0",
               "helm": {"valueFiles": ["$values/customers/broken.yaml"]}}),
        &server,
    )
    .await?;
    let bad = comparison_error(&admin, "bad-values", "helm").await?;
    eprintln!("unknown version: {message}\nbad values: {bad}");
    // Long enough for a few resyncs: nothing is written for either.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for namespace in ["unknown-version", "bad-values"] {
        let writes = writes_into(&cp, &workload.name, namespace)?;
        ensure!(writes.is_empty(), "writes for {namespace}: {writes:?}");
    }

    controller.stop().await?;
    Ok(())
}
