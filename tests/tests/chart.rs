#![allow(clippy::unwrap_used)]
//! The Helm chart `charts/argosy`: rendered by `argosy_tests::helm` (Argosy's Go
//! template engine with Helm's `include` and `required`), checked, applied to a real
//! kube-apiserver, and its RBAC proven both sufficient and not broader than needed by
//! running the controller in-process with a token of the chart's ServiceAccount. The
//! real `helm` (scripts/install-tools.sh) lints and renders every values combination
//! used here, and must render exactly the same objects (or fail with the same message).
//!
//! Sufficient: the controller does its job (Applications created and pruned,
//! ApplicationSet status patched, Events created, Lease acquired and released)
//! and the audit log (which records every request of a ServiceAccount, reads
//! included) holds no 403 for it. Not broader: the same identity is denied
//! what the controller never needs (other namespaces' Secrets, Namespaces,
//! writes to its ConfigMaps, other Leases).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use argosy::run::RunArgs;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, Ended, TEST_FIELD_MANAGER, appset_resource, init_tracing, prepare_namespace,
    run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::as_service_account;
use argosy_tests::helm::{Chart, Release, Rendered, argosy_chart_dir};
use argosy_tests::{ControlPlane, MANAGEMENT};
use clap::Parser as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde::Deserialize as _;
use serde_json::{Value, json};

fn render(release: &Release, overrides: Value) -> Rendered {
    Chart::argosy()
        .unwrap()
        .render(release, &overrides)
        .unwrap()
}

fn default_release() -> Release {
    Release::new("argosy", ARGOCD_NAMESPACE)
}

/// Release `fleet` in `fleet` with every optional part turned on.
fn fleet_overrides() -> Value {
    json!({
        "replicas": 3,
        "syncEngine": "argocd",
        "appsetNamespaces": ["team-a", "fleet", "team-b"],
        "leaderElection": {"leaseName": "fleet-lease", "leaseSeconds": 30},
        "deletionBudget": {"min": 1, "percent": 0},
        "policy": "create-only",
        "port": 9090,
        "notifications": {"timeoutSeconds": 10, "attempts": 5, "allowInternalHosts": true},
        "webhook": {"github": {"existingSecret": "gh-hook"}, "gitlab": {"existingSecret": "gl-hook", "key": "t"}},
        "dashboard": {"existingSecret": "dash", "sessionTTL": "30m"},
        "tls": {"existingSecret": "argosy-tls"},
        "probes": {"readiness": {"stallSeconds": 120}},
        "extraArgs": ["--repo=https://example.invalid/r.git=/srv/r"],
        "metrics": {
            "token": {"existingSecret": "scrape"},
            "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"},
                               "tlsConfig": {"serverName": "fleet-argosy.fleet.svc"}},
        },
    })
}

/// Release `fleet` next to Argo CD: ApplicationSets in `team-a` too, one replica
/// without leader election.
fn fleet_next_to_argocd() -> Value {
    json!({
        "syncEngine": "argocd",
        "appsetNamespaces": ["team-a"],
        "replicas": 1,
        "leaderElection": {"enabled": false},
    })
}

/// One replica without leader election (release `argosy` in `argocd`).
fn single_replica() -> Value {
    json!({"replicas": 1, "leaderElection": {"enabled": false}})
}

/// Values the chart refuses, and the message it refuses them with.
fn invalid_values() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"syncToInCluster": true, "syncEngine": "argocd"}),
            "syncToInCluster needs syncEngine: argosy",
        ),
        (
            json!({"syncEngine": "flux"}),
            r#"syncEngine must be argosy or argocd, not "flux""#,
        ),
        (
            json!({"leaderElection": {"enabled": false}}),
            "replicas > 1 needs leaderElection.enabled",
        ),
        (
            json!({"serviceAccount": {"create": false}}),
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
    ]
}

/// Every valid values combination the tests render, with its release.
fn valid_cases() -> Vec<(Release, Value)> {
    let fleet = Release::new("fleet", "fleet");
    vec![
        (default_release(), json!({})),
        (fleet.clone(), fleet_overrides()),
        (default_release(), json!({"syncToInCluster": true})),
        (default_release(), single_replica()),
        (fleet, fleet_next_to_argocd()),
        (
            default_release(),
            json!({"defaultProject": {"create": false}}),
        ),
    ]
}

fn container(rendered: &Rendered, name: &str) -> Value {
    rendered
        .object("Deployment", name)
        .unwrap()
        .pointer("/spec/template/spec/containers/0")
        .unwrap()
        .clone()
}

fn args(rendered: &Rendered, name: &str) -> Vec<String> {
    serde_json::from_value(container(rendered, name)["args"].clone()).unwrap()
}

/// The value of `--flag=VALUE` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("--{name}=")))
}

/// `(apiGroups, resources, resourceNames, verbs)` of a Role's rules, sorted.
fn rules(role: &Value) -> BTreeSet<(String, String, String, String)> {
    let join = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                join(&r["apiGroups"]),
                join(&r["resources"]),
                join(&r["resourceNames"]),
                join(&r["verbs"]),
            )
        })
        .collect()
}

fn rule(
    groups: &str,
    resources: &str,
    names: &str,
    verbs: &str,
) -> (String, String, String, String) {
    (groups.into(), resources.into(), names.into(), verbs.into())
}

/// What every namespace with ApplicationSets grants.
fn appset_rules() -> BTreeSet<(String, String, String, String)> {
    BTreeSet::from([
        rule("argoproj.io", "applicationsets", "", "get,list,watch,patch"),
        rule("argoproj.io", "applicationsets/status", "", "patch"),
        rule("argoproj.io", "applicationsets/finalizers", "", "update"),
        rule(
            "argoproj.io",
            "applications",
            "",
            "get,list,watch,create,patch,delete",
        ),
        rule("events.k8s.io", "events", "", "create"),
    ])
}

/// Parses the container's args exactly as `argosy run` does: a flag the CLI does not
/// know fails here, not in a crash-looping pod.
fn assert_args_parse(args: &[String]) {
    let mut checked = vec!["argosy".to_owned()];
    checked.extend(args.iter().cloned());
    if let Err(e) = argosy::cli::Cli::try_parse_from(&checked) {
        panic!("chart args {checked:?} do not parse: {e}");
    }
}

#[test]
fn default_values_render_a_hardened_two_replica_controller() {
    let rendered = render(&default_release(), json!({}));
    let ids: Vec<(String, String, String)> = rendered.identities().unwrap();
    let ids: Vec<(&str, &str, &str)> = ids
        .iter()
        .map(|(k, n, m)| (k.as_str(), n.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("ServiceAccount", "argocd", "argosy"),
            ("Role", "argocd", "argosy"),
            ("RoleBinding", "argocd", "argosy"),
            ("Service", "argocd", "argosy"),
            ("Deployment", "argocd", "argosy"),
            ("AppProject", "argocd", "default"),
        ],
        "no ClusterRole, no ServiceMonitor by default"
    );
    // Argo CD's `default` project, as its API server creates it, kept on uninstall.
    let project = rendered.object("AppProject", "default").unwrap();
    assert_eq!(
        project["spec"],
        json!({
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        })
    );
    assert_eq!(
        project["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let without = render(
        &default_release(),
        json!({"defaultProject": {"create": false}}),
    );
    assert!(without.object("AppProject", "default").is_err());
    assert_eq!(without.manifests().unwrap().len(), 5);

    let deployment = rendered.object("Deployment", "argosy").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let args = args(&rendered, "argosy");
    assert_eq!(
        args,
        [
            "run",
            "--namespace=argocd",
            "--sync-engine=argosy",
            "--leader-election=true",
            "--lease-name=argosy-controller",
            "--lease-seconds=10",
            "--sharding-method=consistent-hashing",
            "--deletion-budget-min=5",
            "--deletion-budget-percent=20",
            "--concurrent-writes=32",
            "--git-requeue-seconds=180",
            "--repo-cache=/var/cache/argosy/repos",
            "--repo-cache-max-bytes=1536Mi",
            "--chart-cache-max-bytes=256Mi",
            "--notify-timeout-seconds=5",
            "--notify-attempts=3",
            "--listen=0.0.0.0:8080",
            "--readiness-stall-seconds=300",
        ]
    );
    assert_args_parse(&args);

    let c = container(&rendered, "argosy");
    assert_eq!(
        c["env"][0],
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        "the Lease identity is the Pod name"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["serviceAccountName"], "argosy");
    // The repository cache is writable although the root filesystem is not.
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "repo-cache", "mountPath": "/var/cache/argosy"})
    );
    assert_eq!(pod["volumes"][0]["name"], "repo-cache");
    assert!(pod["volumes"][0]["emptyDir"].is_object());
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    // Alive while it serves; ready once its caches are listed and while its loops progress.
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(
            c[probe]["httpGet"],
            json!({"path": path, "port": "http-metrics"}),
            "{probe}"
        );
    }
    assert_eq!(
        c["ports"],
        json!([{"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    let service = rendered.object("Service", "argosy").unwrap();
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    let mut expected = appset_rules();
    expected.extend([
        rule("", "secrets", "", "get,list,watch"),
        rule("", "configmaps", "", "get,list,watch"),
        rule("argoproj.io", "appprojects", "", "get,list,watch"),
        rule(
            "coordination.k8s.io",
            "leases",
            "argosy-controller",
            "get,list,watch,patch",
        ),
        rule("coordination.k8s.io", "leases", "", "create"),
        // The replicas' membership Leases: names made of pod names, so no resourceNames.
        rule("coordination.k8s.io", "leases", "", "get,list,watch,update"),
    ]);
    assert_eq!(rules(&rendered.object("Role", "argosy").unwrap()), expected);
    let binding = rendered.object("RoleBinding", "argosy").unwrap();
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "argosy", "namespace": "argocd"}])
    );
}

#[test]
fn overrides_change_replicas_args_rbac_and_monitoring() {
    let release = Release::new("fleet", "fleet");
    let rendered = render(&release, fleet_overrides());
    let deployment = rendered.object("Deployment", "fleet-argosy").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let args = args(&rendered, "fleet-argosy");
    assert_eq!(
        args,
        [
            "run",
            "--namespace=fleet",
            // The release namespace once, then the others.
            "--appset-namespace=fleet",
            "--appset-namespace=team-a",
            "--appset-namespace=team-b",
            "--sync-engine=argocd",
            "--leader-election=true",
            "--lease-name=fleet-lease",
            "--lease-seconds=30",
            "--sharding-method=consistent-hashing",
            "--deletion-budget-min=1",
            "--deletion-budget-percent=0",
            "--policy=create-only",
            "--concurrent-writes=32",
            "--git-requeue-seconds=180",
            "--repo-cache=/var/cache/argosy/repos",
            "--repo-cache-max-bytes=1536Mi",
            "--chart-cache-max-bytes=256Mi",
            "--notify-timeout-seconds=10",
            "--notify-attempts=5",
            "--allow-internal-notify-hosts",
            "--listen=0.0.0.0:9090",
            "--readiness-stall-seconds=120",
            "--tls-cert=/etc/argosy/tls/tls.crt",
            "--tls-key=/etc/argosy/tls/tls.key",
            "--metrics-token-file=/etc/argosy/metrics/token",
            "--webhook-github-secret-file=/etc/argosy/webhook/github/secret",
            "--webhook-gitlab-token-file=/etc/argosy/webhook/gitlab/t",
            "--dashboard-token-file=/etc/argosy/dashboard/token",
            "--dashboard-session-ttl=30m",
            "--repo=https://example.invalid/r.git=/srv/r",
        ]
    );
    assert_args_parse(&args);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][2],
        json!({"name": "webhook-github", "secret": {"secretName": "gh-hook", "items": [{"key": "secret", "path": "secret"}]}})
    );
    assert_eq!(pod["containers"][0]["ports"][0]["containerPort"], 9090);
    // TLS: the Secret's pair mounted, probes over HTTPS; the metrics token mounted.
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.contains(
        &json!({"name": "tls", "secret": {"secretName": "argosy-tls",
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}})
    ));
    assert!(volumes.contains(
        &json!({"name": "metrics-token", "secret": {"secretName": "scrape",
        "items": [{"key": "token", "path": "token"}]}})
    ));
    let c = &pod["containers"][0];
    for mount in [
        json!({"name": "tls", "mountPath": "/etc/argosy/tls", "readOnly": true}),
        json!({"name": "metrics-token", "mountPath": "/etc/argosy/metrics", "readOnly": true}),
    ] {
        assert!(
            c["volumeMounts"].as_array().unwrap().contains(&mount),
            "{mount}"
        );
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");

    // One Role per ApplicationSet namespace; only the release namespace's reads
    // Secrets, AppProjects and the Lease.
    let roles: Vec<Value> = rendered
        .manifests()
        .unwrap()
        .into_iter()
        .filter(|m| m["kind"] == "Role")
        .collect();
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["fleet", "team-a", "team-b"]);
    for role in &roles[1..] {
        assert_eq!(rules(role), appset_rules());
    }
    assert!(rules(&roles[0]).contains(&rule(
        "coordination.k8s.io",
        "leases",
        "fleet-lease",
        "get,list,watch,patch"
    )));
    // The controller's cluster-wide watch of several namespaces: list/watch only.
    let reader = rendered
        .object("ClusterRole", "fleet-fleet-argosy-appset-reader")
        .unwrap();
    assert_eq!(
        rules(&reader),
        BTreeSet::from([rule(
            "argoproj.io",
            "applications,applicationsets",
            "",
            "list,watch"
        )])
    );
    assert!(
        rendered
            .object("ClusterRole", "fleet-fleet-argosy-in-cluster-sync")
            .is_err(),
        "no in-cluster sync permissions unless asked for"
    );

    let monitor = rendered.object("ServiceMonitor", "fleet-argosy").unwrap();
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"], "http-metrics",
        "the ServiceMonitor scrapes the Service's port"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["scheme"], "https");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["tlsConfig"],
        json!({"serverName": "fleet-argosy.fleet.svc"})
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["authorization"],
        json!({"type": "Bearer", "credentials": {"name": "scrape", "key": "token"}})
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn in_cluster_sync_is_opt_in_and_broad() {
    let rendered = render(&default_release(), json!({"syncToInCluster": true}));
    let role = rendered
        .object("ClusterRole", "argocd-argosy-in-cluster-sync")
        .unwrap();
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ])
    );
    let binding = rendered
        .object("ClusterRoleBinding", "argocd-argosy-in-cluster-sync")
        .unwrap();
    assert_eq!(binding["roleRef"]["name"], "argocd-argosy-in-cluster-sync");
    assert_eq!(binding["subjects"][0]["name"], "argosy");
}

#[test]
fn invalid_values_fail_with_a_message() {
    let chart = Chart::argosy().unwrap();
    for (values, message) in invalid_values() {
        let err = chart.render(&default_release(), &values).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(message), "{values}: {text}");
    }
    // One replica without leader election is fine, and says so in the args.
    let rendered = chart.render(&default_release(), &single_replica()).unwrap();
    assert!(args(&rendered, "argosy").contains(&"--leader-election=false".to_owned()));
    assert!(
        !rules(&rendered.object("Role", "argosy").unwrap())
            .iter()
            .any(|r| r.1 == "leases"),
        "no Lease permissions without leader election"
    );
}

#[test]
fn chart_crds_are_the_committed_generated_crds() {
    let chart = Chart::argosy().unwrap();
    let committed =
        std::fs::read_to_string(argosy_chart_dir().join("../../crds/yaml/argo-cd-crds.yaml"))
            .unwrap();
    assert_eq!(chart.crd_files().len(), 1);
    assert_eq!(
        chart.crd_files()[0].1,
        committed,
        "charts/argosy/crds/argo-cd-crds.yaml differs from crds/yaml/argo-cd-crds.yaml; copy it over"
    );
    let kinds: Vec<String> = chart
        .crds()
        .unwrap()
        .iter()
        .map(|c| c["spec"]["names"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["Application", "ApplicationSet", "AppProject"]);
}

#[test]
fn every_value_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(argosy_chart_dir().join("README.md")).unwrap();
    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m)
                if !m.is_empty()
                    && prefix != "resources"
                    && !prefix.ends_with("ecurityContext") =>
            {
                for (k, child) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, child, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut keys = Vec::new();
    leaves("", Chart::argosy().unwrap().default_values(), &mut keys);
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !readme.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "values not in the README table: {missing:?}"
    );
}

// ---------------------------------------------------------------------------
// The real helm.

/// `helm ARGS` (the one scripts/install-tools.sh puts first on PATH), with configuration,
/// cache and data in `home`, so no repository or plugin of the machine takes part.
fn helm(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("helm")
        .args(args)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("HELM_DEBUG")
        .env_remove("HELM_NAMESPACE")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("helm runs (scripts/install-tools.sh installs it; scripts/test.sh puts it on PATH)")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `helm template RELEASE charts/argosy -n NAMESPACE -f VALUES`: the objects, in `helm`'s
/// order, or helm's error.
fn helm_template(
    home: &std::path::Path,
    release: &Release,
    values: &std::path::Path,
) -> std::result::Result<Vec<Value>, String> {
    let chart = argosy_chart_dir();
    let out = helm(
        home,
        &[
            "template",
            &release.name,
            chart.to_str().unwrap(),
            "--namespace",
            &release.namespace,
            "--values",
            values.to_str().unwrap(),
        ],
    );
    if !out.status.success() {
        return Err(stderr(&out));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect())
}

/// Objects sorted by kind, namespace and name (the two renderers order kinds alike but
/// need not order the objects of one kind alike).
fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    let key = |v: &Value| {
        ["/kind", "/metadata/namespace", "/metadata/name"].map(|p| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
    };
    objects.sort_by_key(key);
    objects
}

#[test]
fn real_helm_lints_and_renders_what_the_tests_render() {
    let home = tempfile::tempdir().unwrap();
    let chart = argosy_chart_dir();
    let chart = chart.to_str().unwrap();
    let values_file = |i: usize, values: &Value| {
        // JSON is YAML: the overrides go to helm as they are.
        let path = home.path().join(format!("values-{i}.yaml"));
        std::fs::write(&path, values.to_string()).unwrap();
        path
    };
    for (i, (release, values)) in valid_cases().into_iter().enumerate() {
        let file = values_file(i, &values);
        let lint = helm(
            home.path(),
            &[
                "lint",
                "--strict",
                chart,
                "--namespace",
                &release.namespace,
                "--values",
                file.to_str().unwrap(),
            ],
        );
        assert!(
            lint.status.success(),
            "helm lint --strict with {values}: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            stderr(&lint)
        );
        let by_helm = helm_template(home.path(), &release, &file)
            .unwrap_or_else(|e| panic!("helm template with {values}: {e}"));
        let ours = render(&release, values.clone()).manifests().unwrap();
        assert!(!by_helm.is_empty());
        assert_eq!(
            sorted(by_helm),
            sorted(ours),
            "helm template and argosy_tests::helm differ for release {} with {values}",
            release.name
        );
    }
    for (i, (values, message)) in invalid_values().into_iter().enumerate() {
        let file = values_file(100 + i, &values);
        let err = helm_template(home.path(), &default_release(), &file)
            .expect_err(&format!("helm template accepted {values}"));
        // (`helm lint` only logs a template's `fail`: in lint mode `fail` and `required`
        // do not stop the render.)
        assert!(err.contains(message), "helm template with {values}: {err}");
    }
}

// ---------------------------------------------------------------------------
// Against a real API server.

/// Server-side applies any object, finding its resource by discovery.
async fn apply(client: &Client, object: &Value) -> Result<Value> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {api_version} {kind}"))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .ok_or_else(|| anyhow!("{kind} {name} has no namespace"))?;
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply(TEST_FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    let live = api
        .get(name)
        .await
        .with_context(|| format!("reading back {kind} {name}"))?;
    Ok(serde_json::to_value(live)?)
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await
    .map(|_| ())
}

/// Installs the chart's `crds/` (as Helm does before the templates) and waits
/// until Applications are served.
async fn install_chart_crds(client: &Client) -> Result<()> {
    for crd in Chart::argosy()?.crds()? {
        apply(client, &crd).await?;
    }
    let apps = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    wait_for(
        "the chart's CRDs served",
        Duration::from_secs(30),
        || async {
            let (resource, _) = kube::discovery::pinned_kind(client, &apps).await?;
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            Ok(api.list(&ListParams::default()).await.ok().map(|_| ()))
        },
    )
    .await
}

/// Applies every rendered manifest and checks each one is there.
async fn install(client: &Client, rendered: &Rendered) -> Result<usize> {
    let manifests = rendered.manifests()?;
    for manifest in &manifests {
        let live = apply(client, manifest).await?;
        assert_eq!(live["metadata"]["name"], manifest["metadata"]["name"]);
    }
    Ok(manifests.len())
}

async fn apply_appset(client: &Client, namespace: &str, name: &str, apps: &[&str]) -> Result<()> {
    apply_appset_to(
        client,
        namespace,
        name,
        apps,
        "https://kubernetes.default.svc",
    )
    .await
}

/// The guestbook ApplicationSet with its Applications deploying to `server`, synced
/// automatically (what the sync engine acts on).
async fn apply_appset_to(
    client: &Client,
    namespace: &str,
    name: &str,
    apps: &[&str],
    server: &str,
) -> Result<()> {
    let elements: Vec<Value> = apps.iter().map(|n| json!({"name": n})).collect();
    let appset = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {"name": "{{name}}"},
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                        "targetRevision": "HEAD",
                        "path": "guestbook",
                    },
                    "destination": {"server": server, "namespace": "{{name}}"},
                    "syncPolicy": {"automated": {"prune": true},
                                   "syncOptions": ["CreateNamespace=true"]},
                },
            },
        },
    });
    argosy_tests::argocd::apply_json(client, &appset_resource(), appset).await?;
    Ok(())
}

/// The Applications in `namespace`, as JSON.
async fn applications(client: &Client, namespace: &str) -> Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<argosy_crds::Application>(&()),
    );
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|a| serde_json::to_value(a).unwrap_or_default())
        .collect())
}

/// Names of the live (not deleting) Applications in `namespace`.
async fn live_apps(client: &Client, namespace: &str) -> Result<BTreeSet<String>> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<argosy_crds::Application>(&()),
    );
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|a| a.metadata.deletion_timestamp.is_none())
        .filter_map(|a| a.metadata.name)
        .collect())
}

/// Waits until the controller made exactly `want` out of ApplicationSet
/// `namespace/name`, patched its status and published an Event about it.
async fn wait_reconciled(
    client: &Client,
    namespace: &str,
    name: &str,
    want: &[&str],
) -> Result<()> {
    let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
    wait_for(
        &format!("Applications {want:?} in {namespace}"),
        Duration::from_secs(60),
        || async { Ok((live_apps(client, namespace).await? == want).then_some(())) },
    )
    .await?;
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &appset_resource());
    wait_for(
        &format!("status of ApplicationSet {namespace}/{name}"),
        Duration::from_secs(30),
        || async {
            let live = appsets.get(name).await?;
            Ok(live.data["status"]["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
                .then_some(()))
        },
    )
    .await?;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("an Event about ApplicationSet {namespace}/{name}"),
        Duration::from_secs(30),
        || async {
            let found = events
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .any(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                        && e.reporting_controller.as_deref()
                            == Some("argosy-applicationset-controller")
                });
            Ok(found.then_some(()))
        },
    )
    .await
}

/// Requests of `user` since `since` that the apiserver refused with 403.
fn denied(cp: &ControlPlane, user: &str, since: Timestamp) -> Result<Vec<String>> {
    Ok(cp
        .audit_events(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.username == user && e.received >= since && e.code == Some(403))
        .map(|e| format!("{} {}", e.verb, e.request_uri))
        .collect())
}

/// The resources `user` read (get/list/watch) since `since`, as `verb resource`.
fn reads(cp: &ControlPlane, user: &str, since: Timestamp) -> Result<BTreeSet<String>> {
    Ok(cp
        .audit_events(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.username == user && e.received >= since)
        .filter(|e| matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .map(|e| format!("{} {}", e.verb, e.resource.unwrap_or_default()))
        .collect())
}

/// The controller's settings as the Deployment's args give them.
fn settings_from_args(args: &[String], identity: &str, cache: std::path::PathBuf) -> RunArgs {
    let mut run = run_args(identity, cache);
    run.namespace = flag(args, "namespace").unwrap().to_owned();
    run.appset_namespaces = args
        .iter()
        .filter_map(|a| a.strip_prefix("--appset-namespace="))
        .map(str::to_owned)
        .collect();
    run.sync_engine = match flag(args, "sync-engine") {
        Some("argocd") => argosy::run::SyncEngine::Argocd,
        _ => argosy::run::SyncEngine::Argosy,
    };
    run.leader_election = flag(args, "leader-election") == Some("true");
    run.lease_name = flag(args, "lease-name").unwrap().to_owned();
    run.lease_duration = Duration::from_secs(flag(args, "lease-seconds").unwrap().parse().unwrap());
    run
}

/// Expects `result` to be the API server's 403.
fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: kube::Result<T>) {
    match result {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_chart_rbac_is_enough_for_the_controller_and_no_more() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(1)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let cluster = cp.management().clone();
    let admin = cluster.client().await?;
    install_chart_crds(&admin).await?;

    // --- Default values (the built-in sync engine), release `argosy` in `argocd`, as
    // installed by Helm; the Applications deploy to a workload cluster registered by a
    // cluster Secret (whose own credentials the sync engine uses there).
    let rendered = render(&default_release(), json!({}));
    create_namespace(&admin, ARGOCD_NAMESPACE).await?;
    prepare_namespace(&admin).await?;
    let objects = install(&admin, &rendered).await?;
    assert_eq!(objects, 6);
    let workload = cp.workloads()[0].clone();
    argosy_tests::fixtures::register_cluster(&admin, "w1", &workload, &[]).await?;
    let repo = tempfile::tempdir()?;
    argosy_sync_engine::repo::write_commit(
        repo.path(),
        "refs/heads/main",
        &[(
            "guestbook/cm.yaml".to_owned(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook\ndata:\n  k: v\n"
                .to_owned(),
        )]
        .into_iter()
        .collect(),
    )
    .map_err(|e| anyhow!(e))?;

    let user = "system:serviceaccount:argocd:argosy";
    let sa_cluster = as_service_account(&admin, &cluster, ARGOCD_NAMESPACE, "argosy").await?;
    let sa = sa_cluster.client().await?;
    let cache = tempfile::tempdir()?;
    let mut settings =
        settings_from_args(&args(&rendered, "argosy"), "argosy-0", cache.path().into());
    assert!(settings.leader_election);
    assert_eq!(settings.sync_engine, argosy::run::SyncEngine::Argosy);
    settings.repos = [(
        "https://github.com/argoproj/argocd-example-apps.git".to_owned(),
        repo.path().to_owned(),
    )]
    .into_iter()
    .collect();
    let lease_name = settings.lease_name.clone();
    let since = Timestamp::now();
    let controller = start_controller(&sa_cluster, argosy::run::USER_AGENT, settings).await?;

    apply_appset_to(
        &admin,
        ARGOCD_NAMESPACE,
        "guestbook",
        &["a", "b"],
        &workload.server,
    )
    .await?;
    wait_reconciled(&admin, ARGOCD_NAMESPACE, "guestbook", &["a", "b"]).await?;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), ARGOCD_NAMESPACE);
    let lease = leases.get(&lease_name).await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("argosy-0"),
        "the controller holds the Lease"
    );
    // The sync engine delivered both apps with the chart's RBAC (status written back).
    let on_workload: Api<ConfigMap> = Api::namespaced(workload.client().await?, "b");
    wait_for(
        "app b synced to the workload cluster",
        Duration::from_secs(60),
        || async {
            let app = applications(&admin, ARGOCD_NAMESPACE).await?;
            let synced = app
                .iter()
                .filter(|a| a["status"]["sync"]["status"] == "Synced")
                .count();
            Ok((synced == 2 && on_workload.get_opt("guestbook").await?.is_some()).then_some(()))
        },
    )
    .await?;
    // Pruning needs `delete`.
    apply_appset_to(
        &admin,
        ARGOCD_NAMESPACE,
        "guestbook",
        &["a"],
        &workload.server,
    )
    .await?;
    wait_for("b pruned", Duration::from_secs(60), || async {
        Ok(
            (live_apps(&admin, ARGOCD_NAMESPACE).await? == BTreeSet::from(["a".to_owned()]))
                .then_some(()),
        )
    })
    .await?;
    // ...and its resources finalizer deleted what it had deployed.
    wait_for("b's ConfigMap deleted", Duration::from_secs(60), || async {
        Ok(on_workload
            .get_opt("guestbook")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert_eq!(controller.stop().await?, Ended::Stopped);
    let released = leases.get(&lease_name).await?;
    assert_ne!(
        released.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("argosy-0"),
        "the Lease is released on shutdown"
    );

    // Enough: not one request of the controller was refused, and the audit log
    // did see its reads (so this is not vacuous).
    let refused = denied(&cp, user, since)?;
    assert!(refused.is_empty(), "the chart's RBAC refused: {refused:#?}");
    let seen = reads(&cp, user, since)?;
    for read in [
        "list secrets",
        "list configmaps",
        "list appprojects",
        "list applications",
        "list applicationsets",
        "get leases",
        "list leases",
    ] {
        assert!(
            seen.contains(read),
            "no `{read}` in the audit log: {seen:?}"
        );
    }

    // No more: what the controller never does is refused.
    let other_secrets: Api<Secret> = Api::namespaced(sa.clone(), "default");
    assert_forbidden(
        "Secrets of another namespace",
        other_secrets.list(&ListParams::default()).await,
    );
    let all_secrets: Api<Secret> = Api::all(sa.clone());
    assert_forbidden(
        "Secrets of all namespaces",
        all_secrets.list(&ListParams::default()).await,
    );
    let namespaces: Api<Namespace> = Api::all(sa.clone());
    assert_forbidden(
        "deleting a Namespace",
        namespaces.delete("default", &DeleteParams::default()).await,
    );
    // ConfigMaps of its namespace are read (known hosts, CAs), never written, and no
    // other namespace's.
    let config_maps: Api<ConfigMap> = Api::namespaced(sa.clone(), ARGOCD_NAMESPACE);
    assert_forbidden(
        "deleting a ConfigMap",
        config_maps
            .delete("argocd-tls-certs-cm", &DeleteParams::default())
            .await,
    );
    let other_config_maps: Api<ConfigMap> = Api::namespaced(sa.clone(), "default");
    assert_forbidden(
        "ConfigMaps of another namespace",
        other_config_maps.list(&ListParams::default()).await,
    );
    // Leases: its own namespace's only (the membership Leases of the sharded sync engine
    // are named after pods, so the Role cannot name them), never another namespace's.
    let sa_leases: Api<Lease> = Api::namespaced(sa.clone(), "kube-system");
    assert_forbidden(
        "a Lease of another namespace",
        sa_leases.get("someone-elses-lease").await,
    );
    assert_forbidden(
        "Leases of another namespace",
        sa_leases.list(&ListParams::default()).await,
    );
    let foreign_apps: Api<DynamicObject> = Api::namespaced_with(
        sa.clone(),
        "default",
        &kube::api::ApiResource::erase::<argosy_crds::Application>(&()),
    );
    assert_forbidden(
        "Applications of another namespace",
        foreign_apps.list(&ListParams::default()).await,
    );

    // --- Several ApplicationSet namespaces: release `fleet` in `fleet`, with
    // ApplicationSets in `team-a` too, one replica without leader election.
    for ns in ["fleet", "team-a"] {
        create_namespace(&admin, ns).await?;
    }
    let fleet = Release::new("fleet", "fleet");
    let rendered = render(&fleet, fleet_next_to_argocd());
    install(&admin, &rendered).await?;
    let projects = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": "fleet"},
        // ApplicationSets in `team-a` generate their Applications in `team-a`: the project
        // must admit that namespace (Argo CD's Applications in any namespace).
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                 "sourceNamespaces": ["team-a"]},
    });
    apply(&admin, &projects).await?;
    let user = "system:serviceaccount:fleet:fleet-argosy";
    let sa_cluster = as_service_account(&admin, &cluster, "fleet", "fleet-argosy").await?;
    let sa = sa_cluster.client().await?;
    let settings = settings_from_args(
        &args(&rendered, "fleet-argosy"),
        "fleet-0",
        cache.path().into(),
    );
    assert_eq!(settings.appset_namespaces, ["fleet", "team-a"]);
    let since = Timestamp::now();
    let controller = start_controller(&sa_cluster, argosy::run::USER_AGENT, settings).await?;
    apply_appset(&admin, "team-a", "team", &["t1", "t2"]).await?;
    apply_appset(&admin, "fleet", "own", &["f1"]).await?;
    wait_reconciled(&admin, "team-a", "team", &["t1", "t2"]).await?;
    wait_reconciled(&admin, "fleet", "own", &["f1"]).await?;
    assert_eq!(controller.stop().await?, Ended::Stopped);
    let refused = denied(&cp, user, since)?;
    assert!(refused.is_empty(), "the chart's RBAC refused: {refused:#?}");
    // The `argocd` ApplicationSet was visible to the cluster-wide watch but not
    // reconciled, and the fleet controller may not write there.
    assert_eq!(
        live_apps(&admin, ARGOCD_NAMESPACE).await?,
        BTreeSet::from(["a".to_owned()])
    );
    let argocd_apps: Api<DynamicObject> = Api::namespaced_with(
        sa.clone(),
        ARGOCD_NAMESPACE,
        &kube::api::ApiResource::erase::<argosy_crds::Application>(&()),
    );
    assert_forbidden(
        "deleting Applications of a namespace not listed",
        argocd_apps.delete("a", &DeleteParams::default()).await,
    );
    let team_secrets: Api<Secret> = Api::namespaced(sa.clone(), "team-a");
    assert_forbidden(
        "Secrets of an ApplicationSet namespace",
        team_secrets.list(&ListParams::default()).await,
    );
    let team_leases: Api<Lease> = Api::namespaced(sa, "fleet");
    assert_forbidden(
        "Leases without leader election",
        team_leases.list(&ListParams::default()).await,
    );
    Ok(())
}
