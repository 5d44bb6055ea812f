//! Whether a sync stays inside its tenant's boundary: every object the sync would create,
//! update or prune is checked against the Application's `AppProject` ([`ProjectPolicy`]:
//! kinds, names, namespaces) and against the cluster Secret's scope (`namespaces`,
//! `clusterResources`), before anything is written.
//!
//! Pure. The controller calls [`check`] with the rendered objects and the live objects the
//! app tracks; any finding refuses the whole sync (a partial sync of a forbidden set would
//! leave the app half applied), names the object and the rule, and writes nothing.

use argosy_crds::Cluster;
use argosy_crds::project::{ProjectPolicy, Violation};

use crate::resource::ObjKey;

/// An object outside the boundary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundaryError {
    /// The project forbids it.
    #[error(transparent)]
    Project(#[from] Violation),
    /// The cluster Secret lists `namespaces` and the object's namespace is not one of them.
    #[error(
        "namespace {namespace} of {kind} '{name}' is not managed on cluster '{server}' (its cluster Secret's namespaces)"
    )]
    NamespaceNotManaged {
        /// Kind.
        kind: String,
        /// Object name.
        name: String,
        /// The namespace.
        namespace: String,
        /// The cluster.
        server: String,
    },
    /// The cluster Secret lists `namespaces` without `clusterResources: true`.
    #[error(
        "cluster-scoped {kind} '{name}' cannot be managed on cluster '{server}' (its cluster Secret lists namespaces and clusterResources is false)"
    )]
    ClusterResourcesDisabled {
        /// Kind.
        kind: String,
        /// Object name.
        name: String,
        /// The cluster.
        server: String,
    },
}

impl BoundaryError {
    /// A bounded label for metrics and logs.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            BoundaryError::Project(v) => v.category(),
            BoundaryError::NamespaceNotManaged { .. } => "cluster_namespace",
            BoundaryError::ClusterResourcesDisabled { .. } => "cluster_resources",
        }
    }
}

/// Whether `cluster`'s Secret lets Argosy manage `key` (an empty `namespace` is a
/// cluster-scoped object). Argo CD's cluster scoping: with `namespaces` set, only those
/// namespaces, and cluster-scoped kinds only with `clusterResources: true`.
pub fn check_cluster_scope(cluster: &Cluster, key: &ObjKey) -> Result<(), BoundaryError> {
    if cluster.namespaces.is_empty() {
        return Ok(());
    }
    if key.namespace.is_empty() {
        if cluster.cluster_resources {
            return Ok(());
        }
        return Err(BoundaryError::ClusterResourcesDisabled {
            kind: key.kind.clone(),
            name: key.name.clone(),
            server: cluster.server.clone(),
        });
    }
    if cluster.namespaces.iter().any(|n| n == &key.namespace) {
        return Ok(());
    }
    Err(BoundaryError::NamespaceNotManaged {
        kind: key.kind.clone(),
        name: key.name.clone(),
        namespace: key.namespace.clone(),
        server: cluster.server.clone(),
    })
}

/// Every object of `keys` outside the boundary, with why (in `keys` order, each once).
pub fn check<'a>(
    policy: &ProjectPolicy,
    cluster: &Cluster,
    keys: impl IntoIterator<Item = &'a ObjKey>,
) -> Vec<BoundaryError> {
    keys.into_iter()
        .filter_map(|key| {
            let namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
            policy
                .check_resource(&key.group, &key.kind, &key.name, namespace, cluster)
                .map_err(BoundaryError::from)
                .and_then(|()| check_cluster_scope(cluster, key))
                .err()
        })
        .collect()
}

/// One line for a condition: the first finding, and how many more there are.
#[must_use]
pub fn summary(findings: &[BoundaryError]) -> Option<String> {
    let first = findings.first()?;
    Some(match findings.len() {
        1 => format!("sync refused: {first}"),
        n => format!("sync refused: {first}; and {} more", n - 1),
    })
}

#[cfg(test)]
mod tests {
    use argosy_crds::AppProject;
    use serde_json::json;

    use super::*;

    fn key(group: &str, kind: &str, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn team_a() -> ProjectPolicy {
        let project: AppProject = serde_json::from_value(json!({
            "metadata": {"name": "team-a"},
            "spec": {"sourceRepos": ["*"],
                     "destinations": [{"server": "https://w1", "namespace": "team-a"}]}
        }))
        .expect("a project");
        ProjectPolicy::new(&project, &[])
    }

    fn w1() -> Cluster {
        Cluster {
            name: "w1".into(),
            server: "https://w1".into(),
            ..Cluster::default()
        }
    }

    #[test]
    fn every_forbidden_object_is_named_once() {
        let keys = [
            key("apps", "Deployment", "team-a", "web"),
            key(
                "rbac.authorization.k8s.io",
                "ClusterRoleBinding",
                "",
                "admin",
            ),
            key("", "ConfigMap", "kube-system", "x"),
        ];
        let findings = check(&team_a(), &w1(), &keys);
        let categories: Vec<_> = findings.iter().map(BoundaryError::category).collect();
        assert_eq!(categories, ["resource_kind", "resource_namespace"]);
        assert_eq!(
            summary(&findings).expect("a summary"),
            "sync refused: resource rbac.authorization.k8s.io:ClusterRoleBinding 'admin' is not permitted in project 'team-a' (cluster-scoped kind not in spec.clusterResourceWhitelist); and 1 more"
        );
        assert!(check(&team_a(), &w1(), &keys[..1]).is_empty());
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn cluster_secret_scope_limits_namespaces_and_cluster_kinds() {
        let mut scoped = w1();
        scoped.namespaces = vec!["shop".into()];
        assert!(check_cluster_scope(&scoped, &key("", "ConfigMap", "shop", "c")).is_ok());
        assert_eq!(
            check_cluster_scope(&scoped, &key("", "ConfigMap", "other", "c"))
                .unwrap_err()
                .category(),
            "cluster_namespace"
        );
        assert_eq!(
            check_cluster_scope(&scoped, &key("", "Namespace", "", "shop"))
                .unwrap_err()
                .category(),
            "cluster_resources"
        );
        scoped.cluster_resources = true;
        assert!(check_cluster_scope(&scoped, &key("", "Namespace", "", "shop")).is_ok());
        // Unscoped clusters manage everything (the project still decides).
        assert!(check_cluster_scope(&w1(), &key("", "Namespace", "", "x")).is_ok());
    }
}
