//! Text views of the fleet for `argosy status`, `argosy cluster list` and `argosy appset
//! list|get`: tables over [`FleetSummary`] and ApplicationSet JSON, in the layout of
//! `argosy app` ([`crate::cli::format::app`]). Pure: no cluster.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli::format::app::{key_values, list_table, table, text};
use crate::fleet::{AppSetSummary, ClusterSummary, ConnectionState, FleetSummary, StatusCounts};

/// Shown for an absent label value (as `kubectl get -L`).
const NONE: &str = "<none>";

/// `Synced:3,OutOfSync:1`: one cell, statuses in name order; `-` when there are none.
pub fn counts(by_status: &BTreeMap<String, u64>) -> String {
    if by_status.is_empty() {
        return "-".to_owned();
    }
    by_status
        .iter()
        .map(|(status, n)| format!("{status}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Connected`, `Unreachable` or `Unknown`.
pub fn state(connection: &ConnectionState) -> &'static str {
    match connection {
        ConnectionState::Connected => "Connected",
        ConnectionState::Unreachable { .. } => "Unreachable",
        ConnectionState::Unknown => "Unknown",
    }
}

/// `k=v,k2=v2` without Argo CD's secret-type label; `<none>` when nothing is left.
pub fn labels(labels: &BTreeMap<String, String>) -> String {
    let shown: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != argosy_crds::consts::SECRET_TYPE_LABEL)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if shown.is_empty() {
        NONE.to_owned()
    } else {
        shown.join(",")
    }
}

fn or_none(value: &str) -> String {
    if value.is_empty() {
        NONE.to_owned()
    } else {
        value.to_owned()
    }
}

fn app_cells(apps: &StatusCounts) -> [String; 3] {
    [
        apps.total.to_string(),
        counts(&apps.by_sync),
        counts(&apps.by_health),
    ]
}

/// `argosy status`: clusters (with the `group_by` label as a column), groups, ApplicationSets,
/// totals, and why each unreachable cluster is.
pub fn status(summary: &FleetSummary, show_version: bool) -> String {
    let grouped = !summary.group_by.is_empty();
    let mut headers = vec!["CLUSTER", "SERVER"];
    let group_header = summary.group_by.to_uppercase();
    if grouped {
        headers.push(&group_header);
    }
    headers.push("STATE");
    if show_version {
        headers.push("VERSION");
    }
    headers.extend(["APPS", "SYNC", "HEALTH"]);
    let rows: Vec<Vec<String>> = summary
        .clusters
        .iter()
        .map(|c| {
            let mut row = vec![c.name.clone(), c.server.clone()];
            if grouped {
                row.push(or_none(
                    c.labels.get(&summary.group_by).map_or("", String::as_str),
                ));
            }
            row.push(state(&c.connection).to_owned());
            if show_version {
                row.push(version(c));
            }
            row.extend(app_cells(&c.apps));
            row
        })
        .collect();
    let mut out = table(&headers, &rows);

    if grouped {
        let rows: Vec<Vec<String>> = summary
            .groups
            .iter()
            .map(|g| {
                let mut row = vec![
                    or_none(&g.value),
                    g.clusters.len().to_string(),
                    g.unreachable.to_string(),
                ];
                row.extend(app_cells(&g.apps));
                row
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &[
                &group_header,
                "CLUSTERS",
                "UNREACHABLE",
                "APPS",
                "SYNC",
                "HEALTH",
            ],
            &rows,
        ));
    }

    if !summary.app_sets.is_empty() {
        out.push('\n');
        out.push_str(&appset_counts_table(&summary.app_sets));
    }

    let unreachable: Vec<&ClusterSummary> = summary
        .clusters
        .iter()
        .filter(|c| matches!(c.connection, ConnectionState::Unreachable { .. }))
        .collect();
    out.push('\n');
    out.push_str(&key_values(&[
        (
            "Clusters",
            format!(
                "{} ({} unreachable)",
                summary.clusters.len(),
                unreachable.len()
            ),
        ),
        ("ApplicationSets", summary.app_sets.len().to_string()),
        ("Applications", summary.apps.total.to_string()),
        ("Sync", counts(&summary.apps.by_sync)),
        ("Health", counts(&summary.apps.by_health)),
    ]));
    for cluster in unreachable {
        if let ConnectionState::Unreachable { message } = &cluster.connection {
            out.push_str(&format!("\n{}: {message}", cluster.name));
        }
    }
    if out.ends_with(|c| c != '\n') {
        out.push('\n');
    }
    out
}

fn version(cluster: &ClusterSummary) -> String {
    cluster
        .kubernetes_version
        .clone()
        .unwrap_or_else(|| "-".to_owned())
}

fn appset_counts_table(app_sets: &[AppSetSummary]) -> String {
    let rows: Vec<Vec<String>> = app_sets
        .iter()
        .map(|a| {
            let mut row = vec![a.name.clone(), a.namespace.clone()];
            row.extend(app_cells(&a.apps));
            row
        })
        .collect();
    table(
        &["APPLICATIONSET", "NAMESPACE", "APPS", "SYNC", "HEALTH"],
        &rows,
    )
}

/// `argosy cluster list`: NAME, SERVER, \[VERSION,\] LABELS, APPS, STATE.
pub fn cluster_table(clusters: &[ClusterSummary], show_version: bool) -> String {
    let mut headers = vec!["NAME", "SERVER"];
    if show_version {
        headers.push("VERSION");
    }
    headers.extend(["LABELS", "APPS", "STATE"]);
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            let mut row = vec![c.name.clone(), c.server.clone()];
            if show_version {
                row.push(version(c));
            }
            row.push(if c.registered {
                labels(&c.labels)
            } else {
                // An Application's destination without a cluster Secret.
                "<unregistered>".to_owned()
            });
            row.push(c.apps.total.to_string());
            row.push(state(&c.connection).to_owned());
            row
        })
        .collect();
    table(&headers, &rows)
}

/// One line per generator: its kind and what it reads.
pub fn generators(appset: &Value) -> Vec<String> {
    appset
        .pointer("/spec/generators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(generator)
        .collect()
}

fn generator(g: &Value) -> String {
    let Some((kind, spec)) = g
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.as_str() != "selector"))
    else {
        return "(empty)".to_owned();
    };
    let detail = match kind.as_str() {
        "list" => {
            let n = spec
                .get("elements")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if spec.get("elementsYaml").is_some() {
                "elementsYaml".to_owned()
            } else {
                format!("{n} element(s)")
            }
        }
        "clusters" => match selector(spec.get("selector")) {
            s if s.is_empty() => "all clusters".to_owned(),
            s => format!("selector {s}"),
        },
        "git" => {
            let paths = |field: &str| -> Vec<String> {
                spec.get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let path = text(p, "/path");
                        if p.get("exclude").and_then(Value::as_bool) == Some(true) {
                            format!("!{path}")
                        } else {
                            path.to_owned()
                        }
                    })
                    .collect()
            };
            let (what, list) = match paths("files") {
                files if !files.is_empty() => ("files", files),
                _ => ("directories", paths("directories")),
            };
            let revision = match text(spec, "/revision") {
                "" => "HEAD",
                r => r,
            };
            format!(
                "{} @ {revision}, {what} {}",
                text(spec, "/repoURL"),
                list.join(" ")
            )
        }
        "matrix" | "merge" => {
            let children: Vec<String> = spec
                .get("generators")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(generator)
                .collect();
            format!("[{}]", children.join("; "))
        }
        _ => String::new(),
    };
    if detail.is_empty() {
        kind.clone()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A label selector as `-l` text: `k=v,k2 in (a,b),!k3`.
fn selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return String::new();
    };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = text(e, "/key");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match text(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.join(",")
}

/// The owned-Application counts of the ApplicationSet `namespace/name`, if it owns any.
fn owned<'a>(summary: &'a [AppSetSummary], appset: &Value) -> Option<&'a AppSetSummary> {
    let namespace = text(appset, "/metadata/namespace");
    let name = text(appset, "/metadata/name");
    summary
        .iter()
        .find(|a| a.namespace == namespace && a.name == name)
}

/// The reason of the `ResourcesUpToDate` condition (Argo CD's summary of the last
/// reconcile), or `Unknown`.
fn up_to_date(appset: &Value) -> String {
    appset
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| text(c, "/type") == "ResourcesUpToDate")
        .map(|c| text(c, "/reason"))
        .filter(|r| !r.is_empty())
        .unwrap_or("Unknown")
        .to_owned()
}

/// `argosy appset list`: NAME, APPS, SYNC, HEALTH, STATUS, GENERATORS.
pub fn appset_table(appsets: &[Value], summary: &[AppSetSummary]) -> String {
    let rows: Vec<Vec<String>> = appsets
        .iter()
        .map(|a| {
            let apps = owned(summary, a)
                .map(|s| s.apps.clone())
                .unwrap_or_default();
            let kinds: Vec<String> = generators(a)
                .iter()
                .map(|g| g.split(':').next().unwrap_or_default().to_owned())
                .collect();
            let mut row = vec![text(a, "/metadata/name").to_owned()];
            row.extend(app_cells(&apps));
            row.push(up_to_date(a));
            row.push(if kinds.is_empty() {
                "-".to_owned()
            } else {
                kinds.join(",")
            });
            row
        })
        .collect();
    table(
        &["NAME", "APPS", "SYNC", "HEALTH", "STATUS", "GENERATORS"],
        &rows,
    )
}

/// `argosy appset get`: summary, generators, conditions and the owned Applications.
pub fn appset_summary(appset: &Value, summary: &[AppSetSummary], apps: &[Value]) -> String {
    let apps_owned = owned(summary, appset)
        .map(|s| s.apps.clone())
        .unwrap_or_default();
    let policy = match text(appset, "/spec/syncPolicy/applicationsSync") {
        "" => "sync".to_owned(),
        p => p.to_owned(),
    };
    let mut fields = vec![
        (
            "Name",
            format!(
                "{}/{}",
                text(appset, "/metadata/namespace"),
                text(appset, "/metadata/name")
            ),
        ),
        (
            "Template",
            or_none(text(appset, "/spec/template/metadata/name")),
        ),
        ("Policy", policy),
        ("Applications", apps_owned.total.to_string()),
        ("Sync", counts(&apps_owned.by_sync)),
        ("Health", counts(&apps_owned.by_health)),
    ];
    for g in generators(appset) {
        fields.push(("Generator", g));
    }
    let mut out = key_values(&fields);
    let conditions: Vec<Vec<String>> = appset
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                text(c, "/type").to_owned(),
                text(c, "/status").to_owned(),
                text(c, "/reason").to_owned(),
                text(c, "/message").to_owned(),
            ]
        })
        .collect();
    if !conditions.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["CONDITION", "STATUS", "REASON", "MESSAGE"],
            &conditions,
        ));
    }
    out.push('\n');
    out.push_str(&list_table(apps));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{GroupSummary, Matrices};
    use serde_json::json;

    fn counted(pairs: &[(&str, u64)], health: &[(&str, u64)]) -> StatusCounts {
        StatusCounts {
            total: pairs.iter().map(|(_, n)| n).sum(),
            by_sync: pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            by_health: health.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        }
    }

    fn cluster(name: &str, customer: Option<&str>, connection: ConnectionState) -> ClusterSummary {
        let mut labels = BTreeMap::from([(
            argosy_crds::consts::SECRET_TYPE_LABEL.to_owned(),
            "cluster".to_owned(),
        )]);
        if let Some(c) = customer {
            labels.insert("customer".into(), c.into());
        }
        ClusterSummary {
            name: name.into(),
            server: format!("https://{name}:6443"),
            labels,
            registered: true,
            connection,
            kubernetes_version: None,
            last_contact: None,
            apps: counted(&[("Synced", 2)], &[("Healthy", 2)]),
        }
    }

    fn summary(group_by: &str) -> FleetSummary {
        let down = ConnectionState::Unreachable {
            message: "cluster https://eu-2:6443 is unreachable: connection refused".into(),
        };
        let mut eu2 = cluster("eu-2", None, down);
        eu2.apps = counted(&[("Unknown", 1)], &[("Healthy", 1)]);
        FleetSummary {
            group_by: group_by.into(),
            apps: counted(&[("Synced", 2), ("Unknown", 1)], &[("Healthy", 3)]),
            clusters: vec![
                cluster("eu-1", Some("acme"), ConnectionState::Connected),
                eu2,
            ],
            app_sets: vec![AppSetSummary {
                namespace: "argocd".into(),
                name: "web".into(),
                apps: counted(&[("Synced", 2), ("Unknown", 1)], &[("Healthy", 3)]),
                revisions: BTreeMap::new(),
                drifted: Vec::new(),
            }],
            groups: vec![
                GroupSummary {
                    value: String::new(),
                    clusters: vec!["https://eu-2:6443".into()],
                    unreachable: 1,
                    apps: counted(&[("Unknown", 1)], &[("Healthy", 1)]),
                },
                GroupSummary {
                    value: "acme".into(),
                    clusters: vec!["https://eu-1:6443".into()],
                    unreachable: 0,
                    apps: counted(&[("Synced", 2)], &[("Healthy", 2)]),
                },
            ],
            matrix: Matrices {
                columns: Vec::new(),
                by_app: Vec::new(),
                by_group: Vec::new(),
            },
        }
    }

    fn cells(text: &str, first: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find(|c| c.first().map(String::as_str) == Some(first))
            .unwrap_or_default()
    }

    #[test]
    fn status_shows_clusters_appsets_totals_and_why_unreachable() {
        let text = status(&summary(""), false);
        assert_eq!(
            cells(&text, "CLUSTER"),
            ["CLUSTER", "SERVER", "STATE", "APPS", "SYNC", "HEALTH"]
        );
        assert_eq!(
            cells(&text, "eu-1"),
            [
                "eu-1",
                "https://eu-1:6443",
                "Connected",
                "2",
                "Synced:2",
                "Healthy:2"
            ]
        );
        assert_eq!(
            cells(&text, "eu-2")[..4],
            ["eu-2", "https://eu-2:6443", "Unreachable", "1"]
        );
        assert_eq!(
            cells(&text, "web"),
            ["web", "argocd", "3", "Synced:2,Unknown:1", "Healthy:3"]
        );
        assert!(
            text.contains("Clusters:         2 (1 unreachable)\n"),
            "{text}"
        );
        assert!(
            text.contains("Sync:             Synced:2,Unknown:1\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "\neu-2: cluster https://eu-2:6443 is unreachable: connection refused\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_grouped_by_a_label_adds_its_column_and_groups() {
        let text = status(&summary("customer"), true);
        assert_eq!(
            cells(&text, "CLUSTER"),
            [
                "CLUSTER", "SERVER", "CUSTOMER", "STATE", "VERSION", "APPS", "SYNC", "HEALTH"
            ]
        );
        assert_eq!(cells(&text, "eu-1")[2..5], ["acme", "Connected", "-"]);
        assert_eq!(cells(&text, "eu-2")[2], "<none>");
        assert_eq!(
            cells(&text, "acme"),
            ["acme", "1", "0", "2", "Synced:2", "Healthy:2"]
        );
        assert_eq!(cells(&text, "<none>")[..3], ["<none>", "1", "1"]);
    }

    #[test]
    fn cluster_table_hides_the_secret_type_label() {
        let mut unregistered = cluster("in-cluster", None, ConnectionState::Unknown);
        unregistered.registered = false;
        let text = cluster_table(
            &[
                cluster("eu-1", Some("acme"), ConnectionState::Connected),
                cluster("eu-3", None, ConnectionState::Unknown),
                unregistered,
            ],
            false,
        );
        assert_eq!(
            cells(&text, "NAME"),
            ["NAME", "SERVER", "LABELS", "APPS", "STATE"]
        );
        assert_eq!(
            cells(&text, "eu-1"),
            [
                "eu-1",
                "https://eu-1:6443",
                "customer=acme",
                "2",
                "Connected"
            ]
        );
        assert_eq!(cells(&text, "eu-3")[2], "<none>");
        assert_eq!(cells(&text, "in-cluster")[2], "<unregistered>");
    }

    fn appset() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {
                "generators": [
                    {"clusters": {"selector": {"matchLabels": {"env": "prod"},
                        "matchExpressions": [{"key": "customer", "operator": "In", "values": ["a", "b"]}]}}},
                    {"list": {"elements": [{"x": 1}, {"x": 2}]}},
                    {"matrix": {"generators": [
                        {"git": {"repoURL": "https://git.example/r.git", "revision": "main",
                                 "directories": [{"path": "apps/*"}, {"path": "apps/old", "exclude": true}]}},
                        {"clusters": {}}]}},
                ],
                "template": {"metadata": {"name": "{{name}}-web"}, "spec": {}},
                "syncPolicy": {"applicationsSync": "create-update"},
            },
            "status": {"conditions": [
                {"type": "ResourcesUpToDate", "status": "True", "reason": "ApplicationSetUpToDate",
                 "message": "All applications have been generated successfully"}]},
        })
    }

    #[test]
    fn generators_say_what_they_read() {
        assert_eq!(
            generators(&appset()),
            [
                "clusters: selector env=prod,customer in (a,b)",
                "list: 2 element(s)",
                "matrix: [git: https://git.example/r.git @ main, directories apps/* !apps/old; clusters: all clusters]",
            ]
        );
    }

    #[test]
    fn appset_list_and_get() {
        let summary = summary("").app_sets;
        let empty = json!({"metadata": {"name": "idle", "namespace": "argocd"}, "spec": {}});
        let text = appset_table(&[appset(), empty], &summary);
        assert_eq!(
            cells(&text, "web"),
            [
                "web",
                "3",
                "Synced:2,Unknown:1",
                "Healthy:3",
                "ApplicationSetUpToDate",
                "clusters,list,matrix"
            ]
        );
        assert_eq!(
            cells(&text, "idle"),
            ["idle", "0", "-", "-", "Unknown", "-"]
        );

        let owned = [json!({"metadata": {"name": "eu-1-web"},
            "spec": {"destination": {"server": "https://eu-1:6443", "namespace": "web"}},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}})];
        let text = appset_summary(&appset(), &summary, &owned);
        for expected in [
            "Name:          argocd/web\n",
            "Template:      {{name}}-web\n",
            "Policy:        create-update\n",
            "Applications:  3\n",
            "Generator:     list: 2 element(s)\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
        assert_eq!(
            cells(&text, "ResourcesUpToDate")[..3],
            ["ResourcesUpToDate", "True", "ApplicationSetUpToDate"]
        );
        assert_eq!(cells(&text, "eu-1-web")[4..6], ["Synced", "Healthy"]);
    }
}
