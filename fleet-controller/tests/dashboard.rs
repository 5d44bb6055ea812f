#![allow(clippy::unwrap_used)]
//! `charts/argosy/dashboards/argosy-fleet.json` only queries what `argosy run` exports:
//! every metric a PromQL expression names, every label it matches, groups by or shows in
//! a legend is checked against a real scrape of `metrics::routes` (in-process, with every
//! metric family holding a sample), and the dashboard is Grafana 10 JSON with a
//! `datasource` variable that every panel uses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use argosy::metrics::{KubeVerb, Metrics, Sources, routes};
use argosy::registry::{ClusterRegistry, StoreReady};
use argosy_crds::{Application, ApplicationSet};
use argosy_sync_engine::clients::ClusterState;
use argosy_sync_engine::fence::Fence;
use argosy_sync_engine::repo::GitRequest;
use argosy_tests::fixtures::ClusterSecretBuilder;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{reflector::Store, watcher};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/argosy/dashboards/argosy-fleet.json"
);
const SERVER: &str = "https://prod.example:6443";

fn store<K>(object: K) -> Store<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut writer = Writer::default();
    writer.apply_watcher_event(&watcher::Event::Apply(object));
    writer.as_reader()
}

/// `/metrics` of a registry where every family has at least one sample.
async fn scrape() -> String {
    let app: Application = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "argocd", "ownerReferences": [
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": "web",
             "uid": "u1", "controller": true}]},
        "spec": {"source": {"repoURL": "https://git.example/web.git", "path": "web"},
                 "destination": {"server": SERVER, "namespace": "web"}},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
    }))
    .unwrap();
    let appset: ApplicationSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "argocd", "uid": "u1"},
        "spec": {"generators": [], "template": {"metadata": {}, "spec": {}}},
    }))
    .unwrap();
    let secret = ClusterSecretBuilder::new("prod", SERVER).build().unwrap();
    let state = ClusterState {
        last_success: Some("2025-01-01T00:00:00Z".parse().unwrap()),
        server_version: Some("v1.31.2".into()),
        ..ClusterState::default()
    };
    let metrics = Metrics::new();
    let second = Duration::from_secs(1);
    metrics.app_reconciled(&app, Ok(()), second);
    metrics.app_synced(&app, "Succeeded");
    metrics.appset_reconciled(&appset, Err("render"), second);
    metrics.git_request(
        "https://git.example/web.git",
        GitRequest::Fetch,
        true,
        second,
    );
    metrics.kube_request(SERVER, KubeVerb::Get, Ok(()), second);
    let sources = Sources {
        applications: store(app),
        appsets: store(appset),
        clusters: ClusterRegistry::new(store(secret), StoreReady::already(), "argocd"),
        cluster_states: Some(Arc::new(move || vec![(SERVER.to_owned(), state.clone())])),
        cluster_caches: None,
        fence: Fence::open(),
        shard: None,
    };
    let response = routes(metrics, sources)
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Sample name (`argocd_app_sync_total`, `..._bucket`) -> its label names.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap();
        let labels = out.entry(line[..end].to_owned()).or_default();
        if let Some(inner) = line[end..]
            .strip_prefix('{')
            .and_then(|r| r.split_once("} "))
        {
            for pair in inner.0.split("\",") {
                labels.insert(pair.split_once('=').unwrap().0.to_owned());
            }
        }
    }
    out
}

/// What one PromQL expression refers to.
#[derive(Debug, Default)]
struct Refs {
    /// Metric names (identifiers with Argo CD's or Argosy's prefix).
    metrics: Vec<String>,
    /// `(metric, label)` of label matchers in `metric{...}`.
    matchers: Vec<(String, String)>,
    /// Labels in `by (...)` / `without (...)`.
    grouping: Vec<String>,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A small PromQL scanner: identifiers outside strings, with what follows them.
fn refs(expr: &str) -> Refs {
    let chars: Vec<char> = expr.chars().collect();
    let mut refs = Refs::default();
    let (mut i, mut last_metric, mut in_braces, mut in_grouping) = (0, String::new(), false, false);
    let mut previous = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '[' {
            // A range (`[5m]`, `[$__rate_interval]`) holds no names.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            continue;
        }
        if is_ident(c) && !(i > 0 && chars[i - 1] == '$') {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if in_braces {
                refs.matchers.push((last_metric.clone(), word.clone()));
            } else if in_grouping {
                refs.grouping.push(word.clone());
            } else if word.starts_with("argocd_") || word.starts_with("argosy_") {
                refs.metrics.push(word.clone());
                last_metric = word.clone();
            }
            previous = word;
            continue;
        }
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '(' if previous == "by" || previous == "without" => in_grouping = true,
            ')' => in_grouping = false,
            _ => {}
        }
        if !c.is_whitespace() {
            previous.clear();
        }
        i += 1;
    }
    refs
}

fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .map(|(label, _)| label.trim().to_owned())
        .collect()
}

#[test]
fn the_scanner_finds_metrics_matchers_and_grouping() {
    let r = refs(
        r#"histogram_quantile(0.9, sum by (le, request_type) (rate(argosy_git_request_duration_seconds_bucket{result!="a{b}"}[$__rate_interval]))) or vector(0)"#,
    );
    assert_eq!(r.metrics, ["argosy_git_request_duration_seconds_bucket"]);
    assert_eq!(
        r.matchers,
        [(
            "argosy_git_request_duration_seconds_bucket".to_owned(),
            "result".to_owned()
        )]
    );
    assert_eq!(r.grouping, ["le", "request_type"]);
    assert_eq!(legend_labels("{{name}} ({{ server }})"), ["name", "server"]);
}

#[tokio::test]
async fn every_query_uses_exported_metrics_and_labels() {
    let exported = exported(&scrape().await);
    // The scrape really holds the families the dashboard is about.
    for name in [
        "argosy_apps",
        "argosy_cluster_connection_status",
        "argocd_app_sync_total",
        "argosy_git_requests_total",
        "argosy_app_reconcile_duration_seconds_bucket",
    ] {
        assert!(exported.contains_key(name), "{name} not in {exported:?}");
    }
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap())
        .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut used = BTreeSet::new();
    let mut targets = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            targets += 1;
            let expr = target["expr"].as_str().unwrap();
            let r = refs(expr);
            assert!(!r.metrics.is_empty(), "{title}: {expr} names no metric");
            let mut labels = BTreeSet::new();
            for metric in &r.metrics {
                let known = exported
                    .get(metric)
                    .unwrap_or_else(|| panic!("{title}: {metric} is not exported ({expr})"));
                labels.extend(known.iter().cloned());
                used.insert(metric.clone());
            }
            for (metric, label) in &r.matchers {
                assert!(
                    exported[metric].contains(label),
                    "{title}: {metric} has no label {label}"
                );
            }
            let shown = legend_labels(target["legendFormat"].as_str().unwrap_or_default());
            for label in r.grouping.iter().chain(&shown) {
                assert!(
                    labels.contains(label),
                    "{title}: label {label} is on none of {:?} ({expr})",
                    r.metrics
                );
            }
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    assert!(targets >= 15, "{targets} queries");
    for family in [
        "argosy_apps",
        "argosy_applicationset_apps",
        "argosy_cluster_connection_status",
        "argosy_app_reconcile_duration_seconds_bucket",
        "argosy_applicationset_reconcile_duration_seconds_bucket",
        "argocd_app_sync_total",
        "argosy_git_requests_total",
    ] {
        assert!(used.contains(family), "no panel shows {family}");
    }
}

#[test]
fn the_dashboard_is_grafana_10_json_with_a_datasource_variable() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "argosy-fleet");
    let schema = dashboard["schemaVersion"].as_i64().unwrap();
    assert!((36..=39).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "{variables:?}"
    );
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_i64().unwrap()), "duplicate id");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{panel}");
        }
        assert!(
            panel["gridPos"]["x"].as_u64().unwrap() + panel["gridPos"]["w"].as_u64().unwrap() <= 24
        );
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}");
            assert_eq!(panel["datasource"]["type"], "prometheus");
        }
    }
}
