//! The fleet at a glance: a pure aggregation of Applications, clusters and connection
//! states into per-cluster, per-ApplicationSet and per-group counts and an
//! app-by-cluster matrix.
//!
//! Owns [`summarize`] and the [`FleetSummary`] it returns (JSON, camelCase), read by the
//! dashboard's API and by `argosy status`. Nothing here talks to a cluster: the controller
//! passes its stores and connection states, the CLI passes what it listed and no
//! connection states. A cluster counts as unreachable when its connection says so *or*
//! when its Applications report the sync engine's "cluster `<server>` is unreachable"
//! condition, so both callers agree on the state from app statuses alone.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use argosy_crds::{Application, Cluster, resolve_destination, server_key};
use argosy_sync_engine::status::Unreachable;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sync/health value shown for an Application that has none yet.
const UNKNOWN: &str = "Unknown";
/// Length of a revision in the matrix (Git's short hash).
const SHORT_REVISION: usize = 7;

/// What the controller knows of its connection to one cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connection {
    /// Last request that reached the API server and succeeded.
    pub last_success: Option<Timestamp>,
    /// Why the cluster cannot be used now (a failed request or a failing watch).
    pub error: Option<String>,
    /// `gitVersion` of the API server.
    pub server_version: Option<String>,
}

/// Connection of a cluster, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum ConnectionState {
    Connected,
    Unreachable {
        message: String,
    },
    /// Never contacted, and no Application tells either way.
    Unknown,
}

/// Applications counted by sync and by health status (the ApplicationSet status's
/// `applicationStatusCounts` shape).
pub use argosy_crds::applicationset::ApplicationStatusCounts as StatusCounts;

/// Counts `apps` by their sync and health status (`Unknown` when they have none yet).
pub fn count<A: Borrow<Application>>(apps: &[A]) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for app in apps {
        add(&mut counts, app.borrow());
    }
    counts
}

fn add(counts: &mut StatusCounts, app: &Application) {
    counts.add(sync_of(app), health_of(app));
}

/// One destination cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub name: String,
    pub server: String,
    pub labels: BTreeMap<String, String>,
    /// False for a destination that no cluster Secret registers (e.g. the in-cluster one).
    pub registered: bool,
    pub connection: ConnectionState,
    pub kubernetes_version: Option<String>,
    /// RFC 3339 time of the last successful request.
    pub last_contact: Option<String>,
    pub apps: StatusCounts,
}

/// The Applications one ApplicationSet owns (by its controller ownerReference).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSetSummary {
    pub namespace: String,
    pub name: String,
    pub apps: StatusCounts,
    /// Short revisions deployed, by cluster server (several while a rollout is under way).
    pub revisions: BTreeMap<String, Vec<String>>,
    /// Names of the OutOfSync Applications.
    pub drifted: Vec<String>,
}

/// Clusters sharing one value of the grouping label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    /// The label's value; empty for clusters without the label.
    pub value: String,
    /// Servers of the group's clusters.
    pub clusters: Vec<String>,
    pub unreachable: u64,
    pub apps: StatusCounts,
}

/// One Application in a matrix cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub namespace: String,
    pub name: String,
    pub revision: String,
    pub sync: String,
    pub health: String,
}

/// One row of a matrix: its Applications by cluster server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixRow {
    pub key: String,
    pub cells: BTreeMap<String, Vec<Cell>>,
}

/// Rows by app base name or by group, columns by cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrices {
    /// Column order: cluster servers, as in [`FleetSummary::clusters`] (by cluster name).
    pub columns: Vec<String>,
    /// One row per app base name (the name without its cluster's name or group value).
    pub by_app: Vec<MatrixRow>,
    /// One row per value of the grouping label.
    pub by_group: Vec<MatrixRow>,
}

/// The whole fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    pub group_by: String,
    pub apps: StatusCounts,
    pub clusters: Vec<ClusterSummary>,
    pub app_sets: Vec<AppSetSummary>,
    pub groups: Vec<GroupSummary>,
    pub matrix: Matrices,
}

/// Aggregates `apps` over `clusters`. `connections` is keyed by server URL (empty when the
/// caller has none); `group_by` is the cluster label that groups clusters (e.g. `customer`).
/// Applications whose destination no cluster Secret registers get a cluster of their own.
pub fn summarize<A: Borrow<Application>>(
    apps: &[A],
    clusters: &[Cluster],
    connections: &BTreeMap<String, Connection>,
    group_by: &str,
) -> FleetSummary {
    let apps: Vec<&Application> = apps.iter().map(Borrow::borrow).collect();
    // Everything is keyed by `server_key` (no trailing `/`), as the resolver compares.
    let connections: BTreeMap<String, &Connection> = connections
        .iter()
        .map(|(server, c)| (server_key(server), c))
        .collect();
    let mut by_server: BTreeMap<String, ClusterAcc> = BTreeMap::new();
    for cluster in clusters {
        by_server.insert(
            server_key(&cluster.server),
            ClusterAcc {
                name: cluster.name.clone(),
                labels: cluster.labels.clone(),
                registered: true,
                apps: Vec::new(),
            },
        );
    }
    for app in &apps {
        let server = destination_server(app, clusters);
        by_server
            .entry(server.clone())
            .or_insert_with(|| ClusterAcc {
                name: unregistered_name(app, &server),
                labels: BTreeMap::new(),
                registered: false,
                apps: Vec::new(),
            })
            .apps
            .push(app);
    }

    // Clusters (and matrix columns) by name, as people look for them.
    let mut cluster_summaries: Vec<ClusterSummary> = by_server
        .iter()
        .map(|(server, acc)| cluster_summary(server, acc, connections.get(server).copied()))
        .collect();
    cluster_summaries.sort_by(|a, b| (&a.name, &a.server).cmp(&(&b.name, &b.server)));
    let group_of = |server: &str| -> String {
        by_server
            .get(server)
            .and_then(|c| c.labels.get(group_by))
            .cloned()
            .unwrap_or_default()
    };

    FleetSummary {
        group_by: group_by.to_owned(),
        apps: count(&apps),
        app_sets: appset_summaries(&apps, clusters),
        groups: group_summaries(&cluster_summaries, &by_server, &group_of),
        matrix: Matrices {
            columns: cluster_summaries.iter().map(|c| c.server.clone()).collect(),
            by_app: matrix(&by_server, |server, app| {
                base_name(app, &by_server[server].name, &group_of(server))
            }),
            by_group: matrix(&by_server, |server, _| group_of(server)),
        },
        clusters: cluster_summaries,
    }
}

/// Connection views from the sync engine's cluster states
/// ([`crate::application::Context::cluster_states`]).
pub fn connections(
    states: Vec<(String, argosy_sync_engine::clients::ClusterState)>,
) -> BTreeMap<String, Connection> {
    states
        .into_iter()
        .map(|(server, state)| {
            let connection = Connection {
                last_success: state.last_success,
                error: state.last_error,
                server_version: state.server_version,
            };
            (server, connection)
        })
        .collect()
}

struct ClusterAcc<'a> {
    name: String,
    labels: BTreeMap<String, String>,
    registered: bool,
    apps: Vec<&'a Application>,
}

fn cluster_summary(server: &str, acc: &ClusterAcc, conn: Option<&Connection>) -> ClusterSummary {
    let reported = acc
        .apps
        .iter()
        .find_map(|app| unreachable_condition(app, server));
    let compared = acc
        .apps
        .iter()
        .any(|app| matches!(sync_of(app), "Synced" | "OutOfSync"));
    let connection = match (conn.and_then(|c| c.error.clone()), reported) {
        (Some(message), _) | (None, Some(message)) => ConnectionState::Unreachable { message },
        (None, None) if conn.is_some_and(|c| c.last_success.is_some()) || compared => {
            ConnectionState::Connected
        }
        (None, None) => ConnectionState::Unknown,
    };
    ClusterSummary {
        name: acc.name.clone(),
        server: server.to_owned(),
        labels: acc.labels.clone(),
        registered: acc.registered,
        connection,
        kubernetes_version: conn.and_then(|c| c.server_version.clone()),
        last_contact: conn.and_then(|c| c.last_success).map(|t| t.to_string()),
        apps: count(&acc.apps),
    }
}

fn appset_summaries(apps: &[&Application], clusters: &[Cluster]) -> Vec<AppSetSummary> {
    let mut owned: BTreeMap<(String, String), Vec<&Application>> = BTreeMap::new();
    for app in apps {
        if let Some(owner) = owning_appset(app) {
            let namespace = app.metadata.namespace.clone().unwrap_or_default();
            owned
                .entry((namespace, owner.to_owned()))
                .or_default()
                .push(app);
        }
    }
    owned
        .into_iter()
        .map(|((namespace, name), apps)| {
            let mut revisions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for app in &apps {
                let revision = short_revision(app);
                if !revision.is_empty() {
                    revisions
                        .entry(destination_server(app, clusters))
                        .or_default()
                        .insert(revision);
                }
            }
            AppSetSummary {
                namespace,
                name,
                apps: count(&apps),
                revisions: revisions
                    .into_iter()
                    .map(|(server, r)| (server, r.into_iter().collect()))
                    .collect(),
                drifted: apps
                    .iter()
                    .filter(|app| sync_of(app) == "OutOfSync")
                    .map(|app| app.metadata.name.clone().unwrap_or_default())
                    .collect(),
            }
        })
        .collect()
}

fn group_summaries(
    clusters: &[ClusterSummary],
    by_server: &BTreeMap<String, ClusterAcc>,
    group_of: &dyn Fn(&str) -> String,
) -> Vec<GroupSummary> {
    let mut groups: BTreeMap<String, GroupSummary> = BTreeMap::new();
    for cluster in clusters {
        let value = group_of(&cluster.server);
        let group = groups.entry(value.clone()).or_insert_with(|| GroupSummary {
            value,
            clusters: Vec::new(),
            unreachable: 0,
            apps: StatusCounts::default(),
        });
        group.clusters.push(cluster.server.clone());
        if matches!(cluster.connection, ConnectionState::Unreachable { .. }) {
            group.unreachable += 1;
        }
        for app in by_server
            .get(&cluster.server)
            .map(|c| c.apps.as_slice())
            .unwrap_or_default()
        {
            add(&mut group.apps, app);
        }
    }
    groups.into_values().collect()
}

/// Rows keyed by `row_key(server, app)`, each with its Applications per cluster.
fn matrix(
    by_server: &BTreeMap<String, ClusterAcc>,
    row_key: impl Fn(&str, &Application) -> String,
) -> Vec<MatrixRow> {
    let mut rows: BTreeMap<String, BTreeMap<String, Vec<Cell>>> = BTreeMap::new();
    for (server, acc) in by_server {
        for app in &acc.apps {
            rows.entry(row_key(server, app))
                .or_default()
                .entry(server.clone())
                .or_default()
                .push(cell(app));
        }
    }
    rows.into_iter()
        .map(|(key, mut cells)| {
            for list in cells.values_mut() {
                list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            }
            MatrixRow { key, cells }
        })
        .collect()
}

fn cell(app: &Application) -> Cell {
    Cell {
        namespace: app.metadata.namespace.clone().unwrap_or_default(),
        name: app.metadata.name.clone().unwrap_or_default(),
        revision: short_revision(app),
        sync: sync_of(app).to_owned(),
        health: health_of(app).to_owned(),
    }
}

/// The server an Application deploys to, as [`server_key`]: the cluster the resolver
/// finds, else (an unregistered or ambiguous destination) `destination.server`, else
/// `destination.name`.
fn destination_server(app: &Application, clusters: &[Cluster]) -> String {
    let destination = &app.spec.destination;
    match resolve_destination(destination, clusters) {
        Ok(cluster) => server_key(&cluster.server),
        Err(_) if !destination.server.is_empty() => server_key(&destination.server),
        Err(_) => destination.name.clone(),
    }
}

fn unregistered_name(app: &Application, server: &str) -> String {
    let in_cluster = Cluster {
        server: server.to_owned(),
        ..Cluster::default()
    };
    if in_cluster.is_in_cluster() {
        Cluster::in_cluster().name
    } else if !app.spec.destination.name.is_empty() {
        app.spec.destination.name.clone()
    } else {
        server.to_owned()
    }
}

/// The app's name without its cluster's name or group value as a `-` suffix or prefix:
/// `web-acme` on customer `acme` is the row `web`.
fn base_name(app: &Application, cluster_name: &str, group: &str) -> String {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    [group, cluster_name]
        .into_iter()
        .filter(|part| !part.is_empty())
        .find_map(|part| {
            name.strip_suffix(part)
                .and_then(|rest| rest.strip_suffix('-'))
                .or_else(|| name.strip_prefix(part).and_then(|r| r.strip_prefix('-')))
                .filter(|rest| !rest.is_empty())
        })
        .unwrap_or(name)
        .to_owned()
}

/// The name of the ApplicationSet whose controller ownerReference the app carries.
pub fn owning_appset(app: &Application) -> Option<&str> {
    app.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| {
            r.controller == Some(true)
                && r.kind == "ApplicationSet"
                && r.api_version.starts_with("argoproj.io/")
        })
        .map(|r| r.name.as_str())
}

/// The message of the sync engine's unreachable-cluster condition for `server` (a
/// [`server_key`]; the message holds the server as the engine connected to it), if set.
fn unreachable_condition(app: &Application, server: &str) -> Option<String> {
    let names_server = |condition: &Value| {
        condition.get("type").and_then(Value::as_str) == Some(Unreachable::CONDITION.as_str())
            && condition
                .get("message")
                .and_then(Value::as_str)
                .and_then(Unreachable::from_message)
                .is_some_and(|u| server_key(&u.server) == server)
    };
    app.status
        .as_ref()?
        .extra
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| names_server(c))
        .and_then(|c| c.get("message").and_then(Value::as_str))
        .map(str::to_owned)
}

fn sync_of(app: &Application) -> &str {
    app.status
        .as_ref()
        .and_then(|s| s.sync.as_ref())
        .map(|s| s.status.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN)
}

fn health_of(app: &Application) -> &str {
    app.status
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .map(|h| h.status.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN)
}

/// `status.sync.revision`, cut to Git's short form when it is a commit hash.
fn short_revision(app: &Application) -> String {
    let revision = app
        .status
        .as_ref()
        .and_then(|s| s.sync.as_ref())
        .map_or("", |s| s.revision.as_str());
    if revision.len() > SHORT_REVISION && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        revision[..SHORT_REVISION].to_owned()
    } else {
        revision.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    const ACME: &str = "https://acme.example:6443";
    const GLOBEX: &str = "https://globex.example:6443";
    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn cluster(name: &str, server: &str, customer: &str) -> Cluster {
        Cluster {
            secret: Some(format!("argocd/{name}")),
            name: name.into(),
            server: server.into(),
            labels: BTreeMap::from([("customer".to_owned(), customer.to_owned())]),
            ..Cluster::default()
        }
    }

    fn app(name: &str, server: &str, sync: &str, health: &str, owner: Option<&str>) -> Application {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"destination": {"server": server, "namespace": "default"}},
            "status": {
                "sync": {"status": sync, "revision": SHA},
                "health": {"status": health},
            },
        });
        if let Some(owner) = owner {
            value["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                "name": owner, "uid": "u1", "controller": true,
            }]);
        }
        serde_json::from_value(value).unwrap()
    }

    fn unreachable_app(name: &str, server: &str) -> Application {
        let mut app = app(name, server, "Unknown", "Unknown", Some("customer-apps"));
        let message = format!("cluster {server} is unreachable: connection refused");
        app.status.as_mut().unwrap().extra.insert(
            "conditions".into(),
            json!([{"type": "ComparisonError", "message": message}]),
        );
        app
    }

    fn fleet() -> (Vec<Arc<Application>>, Vec<Cluster>) {
        let apps = vec![
            app("web-acme", ACME, "Synced", "Healthy", Some("customer-apps")),
            app(
                "worker-acme",
                ACME,
                "OutOfSync",
                "Degraded",
                Some("customer-apps"),
            ),
            app(
                "web-globex",
                GLOBEX,
                "Synced",
                "Healthy",
                Some("customer-apps"),
            ),
            app("standalone", ACME, "Synced", "Progressing", None),
        ];
        let clusters = vec![
            cluster("acme", ACME, "acme"),
            cluster("globex", GLOBEX, "globex"),
        ];
        (apps.into_iter().map(Arc::new).collect(), clusters)
    }

    fn by_server<'a>(summary: &'a FleetSummary, server: &str) -> &'a ClusterSummary {
        summary
            .clusters
            .iter()
            .find(|c| c.server == server)
            .unwrap()
    }

    #[test]
    fn clusters_count_their_apps_and_read_the_connection() {
        let (apps, clusters) = fleet();
        let connections = BTreeMap::from([(
            ACME.to_owned(),
            Connection {
                last_success: Some(Timestamp::from_second(1_700_000_000).unwrap()),
                error: None,
                server_version: Some("v1.33.1".into()),
            },
        )]);
        let summary = summarize(&apps, &clusters, &connections, "customer");
        let acme = by_server(&summary, ACME);
        assert_eq!(acme.name, "acme");
        assert_eq!(acme.labels["customer"], "acme");
        assert_eq!(acme.connection, ConnectionState::Connected);
        assert_eq!(acme.kubernetes_version.as_deref(), Some("v1.33.1"));
        assert_eq!(acme.last_contact.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(acme.apps.total, 3);
        assert_eq!(acme.apps.by_sync["Synced"], 2);
        assert_eq!(acme.apps.by_sync["OutOfSync"], 1);
        assert_eq!(acme.apps.by_health["Degraded"], 1);
        // No connection state, but an app was compared: the cluster answered.
        assert_eq!(
            by_server(&summary, GLOBEX).connection,
            ConnectionState::Connected
        );
        assert_eq!(summary.apps.total, 4);
    }

    #[test]
    fn a_cluster_is_unreachable_by_connection_or_by_app_condition() {
        let (mut apps, clusters) = fleet();
        let failing = BTreeMap::from([(
            GLOBEX.to_owned(),
            Connection {
                error: Some("connection refused".into()),
                ..Connection::default()
            },
        )]);
        let summary = summarize(&apps, &clusters, &failing, "customer");
        assert_eq!(
            by_server(&summary, GLOBEX).connection,
            ConnectionState::Unreachable {
                message: "connection refused".into()
            }
        );
        assert_eq!(
            by_server(&summary, ACME).connection,
            ConnectionState::Connected
        );

        // Without connection states (the CLI), the apps' condition tells the same.
        apps[2] = Arc::new(unreachable_app("web-globex", GLOBEX));
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        let ConnectionState::Unreachable { message } = &by_server(&summary, GLOBEX).connection
        else {
            panic!("globex should be unreachable");
        };
        assert!(message.contains("connection refused"), "{message}");
        let group = summary.groups.iter().find(|g| g.value == "globex").unwrap();
        assert_eq!(group.unreachable, 1);
    }

    #[test]
    fn a_cluster_nobody_talked_to_is_unknown() {
        let clusters = vec![cluster("idle", "https://idle.example", "idle")];
        let apps: Vec<Application> = Vec::new();
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        assert_eq!(summary.clusters[0].connection, ConnectionState::Unknown);
        assert_eq!(summary.clusters[0].apps, StatusCounts::default());
        assert!(summary.clusters[0].registered);
    }

    #[test]
    fn appsets_count_owned_apps_revisions_and_drift() {
        let (apps, clusters) = fleet();
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        assert_eq!(summary.app_sets.len(), 1);
        let set = &summary.app_sets[0];
        assert_eq!(
            (set.namespace.as_str(), set.name.as_str()),
            ("argocd", "customer-apps")
        );
        assert_eq!(set.apps.total, 3);
        assert_eq!(set.drifted, vec!["worker-acme".to_owned()]);
        assert_eq!(set.revisions[ACME], vec!["0123456".to_owned()]);
        assert_eq!(set.revisions[GLOBEX], vec!["0123456".to_owned()]);
    }

    #[test]
    fn groups_follow_the_cluster_label() {
        let (apps, clusters) = fleet();
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        let values: Vec<&str> = summary.groups.iter().map(|g| g.value.as_str()).collect();
        assert_eq!(values, ["acme", "globex"]);
        assert_eq!(summary.groups[0].apps.total, 3);
        assert_eq!(summary.groups[0].clusters, vec![ACME.to_owned()]);
        assert_eq!(summary.groups[1].apps.by_health["Healthy"], 1);

        let by_tier = summarize(&apps, &clusters, &BTreeMap::new(), "tier");
        assert_eq!(by_tier.groups.len(), 1);
        assert_eq!(by_tier.groups[0].value, "");
        assert_eq!(by_tier.groups[0].apps.total, 4);
    }

    #[test]
    fn matrix_rows_are_base_names_or_groups() {
        let (apps, clusters) = fleet();
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        assert_eq!(
            summary.matrix.columns,
            vec![ACME.to_owned(), GLOBEX.to_owned()]
        );
        let rows: Vec<&str> = summary
            .matrix
            .by_app
            .iter()
            .map(|r| r.key.as_str())
            .collect();
        assert_eq!(rows, ["standalone", "web", "worker"]);
        let web = &summary.matrix.by_app[1];
        assert_eq!(
            web.cells[GLOBEX],
            vec![Cell {
                namespace: "argocd".into(),
                name: "web-globex".into(),
                revision: "0123456".into(),
                sync: "Synced".into(),
                health: "Healthy".into(),
            }]
        );
        assert_eq!(web.cells[ACME][0].name, "web-acme");
        assert!(!summary.matrix.by_app[2].cells.contains_key(GLOBEX));

        let acme = &summary.matrix.by_group[0];
        assert_eq!(acme.key, "acme");
        let names: Vec<&str> = acme.cells[ACME].iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["standalone", "web-acme", "worker-acme"]);
    }

    /// `server: https://x:6443/` is the registered `https://x:6443`, not a cluster of its
    /// own.
    #[test]
    fn a_trailing_slash_groups_with_the_registered_server() {
        let clusters = vec![cluster("x", "https://x:6443", "acme")];
        let apps = [
            app("plain", "https://x:6443", "Synced", "Healthy", None),
            app("slash", "https://x:6443/", "Synced", "Healthy", None),
        ];
        let connections = BTreeMap::from([(
            "https://x:6443/".to_owned(),
            Connection {
                last_success: None,
                error: Some("connection refused".into()),
                server_version: None,
            },
        )]);
        let summary = summarize(&apps, &clusters, &connections, "customer");
        assert_eq!(summary.clusters.len(), 1, "{:?}", summary.clusters);
        let x = by_server(&summary, "https://x:6443");
        assert!(x.registered);
        assert_eq!(x.apps.total, 2);
        assert_eq!(summary.matrix.columns, ["https://x:6443"]);
        assert_ne!(x.connection, ConnectionState::Unknown);
    }

    #[test]
    fn unregistered_destinations_and_missing_status() {
        let mut bare = app("local", "https://kubernetes.default.svc", "", "", None);
        bare.status = None;
        let by_name: Application = serde_json::from_value(json!({
            "metadata": {"name": "named", "namespace": "argocd"},
            "spec": {"destination": {"name": "globex"}},
        }))
        .unwrap();
        let (_, clusters) = fleet();
        let summary = summarize(&[bare, by_name], &clusters, &BTreeMap::new(), "customer");
        let local = by_server(&summary, "https://kubernetes.default.svc");
        assert_eq!(local.name, "in-cluster");
        assert!(!local.registered);
        assert_eq!(local.apps.by_sync["Unknown"], 1);
        assert_eq!(local.connection, ConnectionState::Unknown);
        // `destination.name` resolves to the registered cluster's server.
        assert_eq!(by_server(&summary, GLOBEX).apps.total, 1);
        let cell = &summary.matrix.by_app[0].cells["https://kubernetes.default.svc"][0];
        assert_eq!(
            (cell.revision.as_str(), cell.health.as_str()),
            ("", "Unknown")
        );
    }

    #[test]
    fn connections_carry_errors_versions_and_contact() {
        use argosy_sync_engine::clients::ClusterState;
        let states = vec![(
            GLOBEX.to_owned(),
            ClusterState {
                last_error: Some("401".into()),
                server_version: Some("v1.20.2".into()),
                ..ClusterState::default()
            },
        )];
        let conns = connections(states);
        assert_eq!(conns[GLOBEX].error.as_deref(), Some("401"));
        assert_eq!(conns[GLOBEX].server_version.as_deref(), Some("v1.20.2"));
    }

    #[test]
    fn serializes_in_camel_case_with_tagged_connection() {
        let (apps, clusters) = fleet();
        let summary = summarize(&apps, &clusters, &BTreeMap::new(), "customer");
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(value["groupBy"], "customer");
        assert_eq!(
            value["clusters"][0]["connection"],
            json!({"state": "Connected"})
        );
        assert_eq!(value["appSets"][0]["apps"]["bySync"]["OutOfSync"], 1);
        assert!(value["matrix"]["byApp"].is_array());
        let back: FleetSummary = serde_json::from_value(value).unwrap();
        assert_eq!(back, summary);
    }
}
