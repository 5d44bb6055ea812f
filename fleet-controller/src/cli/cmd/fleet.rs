//! `argosy status`, `argosy appset list|get` and `argosy cluster add|list|rm`: the fleet
//! as the management cluster's API server holds it.
//!
//! Owns reading the fleet for display (Applications in all namespaces, since a cluster is
//! shared by every namespace's apps; cluster Secrets and ApplicationSets in `-n`), optional
//! probing of each cluster (`--probe`: `/version` with the sync engine's own client, for
//! the Kubernetes version and a first-hand connection state), and `cluster rm`, which
//! deletes only the cluster Secret and refuses while Applications still deploy there.
//! Aggregation is [`crate::fleet::summarize`]; without `--probe` a cluster's state comes
//! from its Applications' conditions (the sync engine's "cluster `<server>` is unreachable"),
//! so a stopped cluster shows `Unreachable` as soon as the engine has noticed it.
//! [`format`](mod@format) draws the tables; [`add`] registers a cluster.

use crate::cli::cmd::cluster_add as add;
use crate::cli::format::fleet as format;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::{Application, ApplicationSet, Cluster, resolve_destination, server_key};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cli::cmd::app::{AppError, Output, emit, encode};
use crate::cli::format::app::text;
use crate::fleet::{self, Connection, FleetSummary};
use add::AddFlags;
use argosy_sync_engine::clients::ClusterClients;

/// How long `--probe` waits for one cluster's `/version`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Clusters probed at once.
const PROBE_CONCURRENCY: usize = 16;
/// Applications named in a `cluster rm` refusal (the count says how many there are).
const NAMED_APPS: usize = 5;

/// Flags of `argosy status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusFlags {
    /// Group clusters by this label of their cluster Secret (e.g. `customer`).
    #[arg(long)]
    pub group_by: Option<String>,
    /// Contact every cluster (`/version`) for its version and connection state.
    #[arg(long)]
    pub probe: bool,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// `argosy appset` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AppSetCommand {
    /// List ApplicationSets: owned Applications by sync and health, status, generators.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show an ApplicationSet: generators, policy, conditions and its Applications.
    Get {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

/// `argosy cluster` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Register a kubeconfig context's cluster (ServiceAccount, RBAC, token, cluster Secret).
    Add {
        #[command(flatten)]
        flags: AddFlags,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// List clusters: name, server, labels, Applications, connection state.
    List {
        /// Contact every cluster (`/version`) for its version and connection state.
        #[arg(long)]
        probe: bool,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove a cluster's Secret (by name or server); nothing on the cluster is touched.
    Rm {
        name: String,
        /// Remove it even though Applications still deploy to it.
        #[arg(long)]
        force: bool,
    },
}

/// Why a fleet command failed. Messages name the object and namespace.
#[derive(Debug, thiserror::Error)]
pub enum FleetCliError {
    #[error("connecting to the management cluster: {0}")]
    Client(String),
    #[error("listing applications in all namespaces: {0}")]
    ListApps(kube::Error),
    #[error("listing cluster Secrets in namespace {namespace}: {error}")]
    ListSecrets {
        namespace: String,
        error: kube::Error,
    },
    #[error("listing applicationsets in namespace {namespace}: {error}")]
    ListAppSets {
        namespace: String,
        error: kube::Error,
    },
    #[error("reading applicationset {name} in namespace {namespace}: {error}")]
    ReadAppSet {
        name: String,
        namespace: String,
        error: kube::Error,
    },
    #[error("applicationset {name} not found in namespace {namespace}")]
    AppSetNotFound { name: String, namespace: String },
    #[error(
        "cluster {name} not found (no cluster Secret in namespace {namespace} has this name or server)"
    )]
    ClusterNotFound { name: String, namespace: String },
    #[error("cluster {name} matches several cluster Secrets ({secrets}); remove one by its server")]
    ClusterAmbiguous { name: String, secrets: String },
    #[error(
        "cluster {name} ({server}) is the destination of {count} application(s) ({apps}); delete or move them first, or pass --force"
    )]
    InUse {
        name: String,
        server: String,
        count: usize,
        apps: String,
    },
    #[error("deleting cluster Secret {secret}: {error}")]
    Delete { secret: String, error: kube::Error },
    #[error(transparent)]
    Add(#[from] add::AddError),
    #[error(transparent)]
    Print(#[from] AppError),
}

impl FleetCliError {
    pub fn category(&self) -> &'static str {
        match self {
            FleetCliError::Client(_) => "client",
            FleetCliError::ListApps(_) => "list_apps",
            FleetCliError::ListSecrets { .. } => "list_secrets",
            FleetCliError::ListAppSets { .. } => "list_appsets",
            FleetCliError::ReadAppSet { .. } => "read_appset",
            FleetCliError::AppSetNotFound { .. } => "appset_not_found",
            FleetCliError::ClusterNotFound { .. } => "cluster_not_found",
            FleetCliError::ClusterAmbiguous { .. } => "cluster_ambiguous",
            FleetCliError::InUse { .. } => "in_use",
            FleetCliError::Delete { .. } => "delete",
            FleetCliError::Add(e) => e.category(),
            FleetCliError::Print(e) => e.category(),
        }
    }
}

/// `argosy status`.
pub async fn status(
    client: Client,
    namespace: &str,
    flags: &StatusFlags,
    out: &mut dyn Write,
) -> Result<(), FleetCliError> {
    let group_by = flags.group_by.as_deref().unwrap_or_default();
    let (summary, _) = summary(&client, namespace, group_by, flags.probe).await?;
    let text = match flags.output {
        Output::Table => format::status(&summary, flags.probe),
        other => encode(&to_json(&summary), other)?,
    };
    Ok(emit(out, &text)?)
}

/// `argosy appset list|get`.
pub async fn appset(
    client: Client,
    namespace: &str,
    command: AppSetCommand,
    out: &mut dyn Write,
) -> Result<(), FleetCliError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<ApplicationSet>(&()),
    );
    match command {
        AppSetCommand::List { output } => {
            let list = api.list(&ListParams::default()).await.map_err(|error| {
                FleetCliError::ListAppSets {
                    namespace: namespace.to_owned(),
                    error,
                }
            })?;
            let mut appsets: Vec<Value> = list.items.iter().map(to_json).collect();
            appsets.sort_by(|a, b| text(a, "/metadata/name").cmp(text(b, "/metadata/name")));
            let text = match output {
                Output::Table => {
                    let (summary, _) = summary(&client, namespace, "", false).await?;
                    format::appset_table(&appsets, &summary.app_sets)
                }
                other => encode(
                    &json!({"apiVersion": "v1", "kind": "List", "items": appsets}),
                    other,
                )?,
            };
            emit(out, &text)?;
        }
        AppSetCommand::Get { name, output } => {
            let appset = match api.get_opt(&name).await {
                Ok(Some(a)) => to_json(&a),
                Ok(None) => {
                    return Err(FleetCliError::AppSetNotFound {
                        name,
                        namespace: namespace.to_owned(),
                    });
                }
                Err(error) => {
                    return Err(FleetCliError::ReadAppSet {
                        name,
                        namespace: namespace.to_owned(),
                        error,
                    });
                }
            };
            let text = match output {
                Output::Table => {
                    let (summary, apps) = summary(&client, namespace, "", false).await?;
                    let owned: Vec<Value> = apps
                        .iter()
                        .filter(|app| owned_by(app, namespace, &name))
                        .cloned()
                        .collect();
                    format::appset_summary(&appset, &summary.app_sets, &owned)
                }
                other => encode(&appset, other)?,
            };
            emit(out, &text)?;
        }
    }
    Ok(())
}

/// `argosy cluster add|list|rm`; `add` reports its steps on `progress`.
pub async fn cluster(
    namespace: &str,
    command: ClusterCommand,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<(), FleetCliError> {
    match command {
        ClusterCommand::Add { flags, output } => {
            let registered = add::add(&flags, namespace, progress).await?;
            let text = match output {
                Output::Table => format!(
                    "cluster {} {}: {} ({}), Secret {}\n",
                    registered.name,
                    if registered.updated {
                        "updated"
                    } else {
                        "added"
                    },
                    registered.server,
                    registered.version,
                    registered.secret
                ),
                other => encode(&to_json(&registered), other)?,
            };
            emit(out, &text)?;
        }
        ClusterCommand::List { probe, output } => {
            let client = management_client().await?;
            let (summary, _) = summary(&client, namespace, "", probe).await?;
            let text = match output {
                Output::Table => format::cluster_table(&summary.clusters, probe),
                other => encode(&json!({"kind": "List", "items": summary.clusters}), other)?,
            };
            emit(out, &text)?;
        }
        ClusterCommand::Rm { name, force } => {
            let client = management_client().await?;
            let secrets = cluster_secrets(&client, namespace).await?;
            let (secret, cluster) = find_cluster(&secrets, &name, namespace)?;
            let (_, apps) = applications(&client).await?;
            let targeting = apps_targeting(&apps, cluster);
            if !targeting.is_empty() {
                let mut named = targeting
                    .iter()
                    .take(NAMED_APPS)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if targeting.len() > NAMED_APPS {
                    named.push_str(", ...");
                }
                if !force {
                    return Err(FleetCliError::InUse {
                        name: cluster.name.clone(),
                        server: cluster.server.clone(),
                        count: targeting.len(),
                        apps: named,
                    });
                }
                eprintln!(
                    "warning: {} application(s) still deploy to cluster {} ({named}); they will report that the cluster is not registered",
                    targeting.len(),
                    cluster.name
                );
            }
            let (secret_ns, secret_name) = secret.split_once('/').unwrap_or((namespace, secret));
            Api::<Secret>::namespaced(client, secret_ns)
                .delete(secret_name, &DeleteParams::default())
                .await
                .map_err(|error| FleetCliError::Delete {
                    secret: secret.to_owned(),
                    error,
                })?;
            emit(
                out,
                &format!(
                    "cluster {} ({}) removed: deleted Secret {secret}; nothing on the cluster was changed\n",
                    cluster.name, cluster.server
                ),
            )?;
        }
    }
    Ok(())
}

async fn management_client() -> Result<Client, FleetCliError> {
    crate::run::client()
        .await
        .map_err(|e| FleetCliError::Client(format!("{e:#}")))
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The fleet summary, and the Applications as JSON (sorted by name).
async fn summary(
    client: &Client,
    namespace: &str,
    group_by: &str,
    probe: bool,
) -> Result<(FleetSummary, Vec<Value>), FleetCliError> {
    let clusters: Vec<Cluster> = cluster_secrets(client, namespace)
        .await?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let (json_apps, apps) = applications(client).await?;
    let connections = if probe {
        probe_clusters(client, &clusters).await
    } else {
        BTreeMap::new()
    };
    Ok((
        fleet::summarize(&apps, &clusters, &connections, group_by),
        json_apps,
    ))
}

/// Applications of all namespaces, as JSON and typed; one the typed model rejects is
/// left out of the counts with a warning rather than failing the whole view.
async fn applications(client: &Client) -> Result<(Vec<Value>, Vec<Application>), FleetCliError> {
    let api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<Application>(&()));
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(FleetCliError::ListApps)?;
    let mut json_apps: Vec<Value> = list.items.iter().map(to_json).collect();
    json_apps.sort_by(|a, b| text(a, "/metadata/name").cmp(text(b, "/metadata/name")));
    let typed = json_apps
        .iter()
        .filter_map(|app| match serde_json::from_value(app.clone()) {
            Ok(typed) => Some(typed),
            Err(e) => {
                eprintln!(
                    "warning: application {}/{} is not counted: {e}",
                    text(app, "/metadata/namespace"),
                    text(app, "/metadata/name")
                );
                None
            }
        })
        .collect();
    Ok((json_apps, typed))
}

/// The cluster Secrets of `namespace`, parsed, with their `namespace/name`; a Secret that
/// does not parse is left out with a warning (the message names the field, not values).
async fn cluster_secrets(
    client: &Client,
    namespace: &str,
) -> Result<Vec<(String, Cluster)>, FleetCliError> {
    let list = Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}")))
        .await
        .map_err(|error| FleetCliError::ListSecrets {
            namespace: namespace.to_owned(),
            error,
        })?;
    Ok(list
        .items
        .iter()
        .filter_map(|secret| match Cluster::from_secret(secret) {
            Ok(cluster) => Some((argosy_crds::cluster::secret_id(secret), cluster)),
            Err(e) => {
                eprintln!("warning: {e}");
                None
            }
        })
        .collect())
}

/// Connection of every cluster, read first-hand: `/version` with the client the sync
/// engine would build from the Secret (credential plugins are not run).
async fn probe_clusters(client: &Client, clusters: &[Cluster]) -> BTreeMap<String, Connection> {
    let clients = ClusterClients::new(client.clone(), false);
    futures::stream::iter(clusters)
        .for_each_concurrent(PROBE_CONCURRENCY, |cluster| {
            let clients = &clients;
            async move {
                // A failed connect or request is recorded in the cluster's state.
                let Ok(conn) = clients.connect(cluster).await else {
                    return;
                };
                if tokio::time::timeout(PROBE_TIMEOUT, conn.server_version())
                    .await
                    .is_err()
                {
                    conn.record_error(&format!(
                        "cluster {} did not answer within {} s",
                        cluster.server,
                        PROBE_TIMEOUT.as_secs()
                    ));
                }
            }
        })
        .await;
    fleet::connections(clients.states())
}

/// The one cluster Secret whose cluster is named `name` or has server `name`.
fn find_cluster<'a>(
    secrets: &'a [(String, Cluster)],
    name: &str,
    namespace: &str,
) -> Result<(&'a str, &'a Cluster), FleetCliError> {
    let server = server_key(name);
    let found: Vec<&(String, Cluster)> = secrets
        .iter()
        .filter(|(_, c)| c.name == name || server_key(&c.server) == server)
        .collect();
    match found.as_slice() {
        [(secret, cluster)] => Ok((secret, cluster)),
        [] => Err(FleetCliError::ClusterNotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }),
        many => Err(FleetCliError::ClusterAmbiguous {
            name: name.to_owned(),
            secrets: many
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `namespace/name` of the Applications whose destination is `cluster` (by server, or by
/// name when the destination names its cluster).
pub fn apps_targeting(apps: &[Application], cluster: &Cluster) -> Vec<String> {
    let server = server_key(&cluster.server);
    apps.iter()
        .filter(|app| {
            // The resolver adds the implicit in-cluster cluster: compare what it found.
            resolve_destination(&app.spec.destination, std::slice::from_ref(cluster))
                .is_ok_and(|found| server_key(&found.server) == server)
        })
        .map(|app| {
            format!(
                "{}/{}",
                app.metadata.namespace.as_deref().unwrap_or_default(),
                app.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

/// True when `app` (JSON) is controlled by the ApplicationSet `namespace/name`.
fn owned_by(app: &Value, namespace: &str, name: &str) -> bool {
    text(app, "/metadata/namespace") == namespace
        && app
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && text(r, "/kind") == "ApplicationSet"
                    && text(r, "/name") == name
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, server: &str, dest_name: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"destination": {"server": server, "name": dest_name, "namespace": "x"}},
        }))
        .unwrap()
    }

    fn cluster(name: &str, server: &str) -> Cluster {
        Cluster {
            name: name.into(),
            server: server.into(),
            ..Cluster::default()
        }
    }

    #[test]
    fn apps_target_a_cluster_by_server_or_by_name() {
        let apps = [
            app("a", "https://w1:6443/", ""),
            app("b", "", "w1"),
            app("c", "https://w2:6443", ""),
            app("d", "", "w2"),
        ];
        assert_eq!(
            apps_targeting(&apps, &cluster("w1", "https://w1:6443")),
            ["argocd/a", "argocd/b"]
        );
        assert!(apps_targeting(&apps, &cluster("w3", "https://w3")).is_empty());
    }

    #[test]
    fn clusters_are_found_by_name_or_server() {
        let secrets = vec![
            (
                "argocd/cluster-w1".to_owned(),
                cluster("w1", "https://w1:6443"),
            ),
            (
                "argocd/cluster-w2".to_owned(),
                cluster("w2", "https://w2:6443"),
            ),
            (
                "argocd/cluster-w2b".to_owned(),
                cluster("w2", "https://w2b:6443"),
            ),
        ];
        assert_eq!(
            find_cluster(&secrets, "https://w1:6443/", "argocd")
                .unwrap()
                .0,
            "argocd/cluster-w1"
        );
        assert_eq!(
            find_cluster(&secrets, "w1", "argocd").unwrap().0,
            "argocd/cluster-w1"
        );
        assert_eq!(
            find_cluster(&secrets, "w2", "argocd")
                .unwrap_err()
                .to_string(),
            "cluster w2 matches several cluster Secrets (argocd/cluster-w2, argocd/cluster-w2b); remove one by its server"
        );
        assert!(matches!(
            find_cluster(&secrets, "w9", "argocd"),
            Err(FleetCliError::ClusterNotFound { .. })
        ));
    }

    #[test]
    fn ownership_needs_the_controller_reference_in_the_same_namespace() {
        let owned = json!({"metadata": {"namespace": "argocd", "ownerReferences": [
            {"kind": "ApplicationSet", "name": "web", "controller": true}]}});
        assert!(owned_by(&owned, "argocd", "web"));
        assert!(!owned_by(&owned, "team", "web"));
        assert!(!owned_by(&owned, "argocd", "api"));
        let not_controller = json!({"metadata": {"namespace": "argocd", "ownerReferences": [
            {"kind": "ApplicationSet", "name": "web"}]}});
        assert!(!owned_by(&not_controller, "argocd", "web"));
    }
}
