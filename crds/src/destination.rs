//! The one place that decides which registered cluster an Application's destination
//! means. The sync engine, the dashboard and metrics all call [`resolve`] and group by
//! [`server_key`], so they can never disagree about where an Application goes.
//!
//! The rules are Argo CD's (`GetDestinationServer` / `GetDestinationCluster` in argo-cd
//! `util/argo/argo.go`, `GetCluster` / `GetClusterServersByName` in `util/db/cluster.go`
//! and the URL index of `util/settings/cluster_informer.go`):
//!
//! - `name` and `server` together are an error, and so is neither;
//! - servers are compared with trailing `/` removed (`strings.TrimRight(server, "/")`);
//! - `name` must match exactly one cluster's name; several are an error naming their
//!   servers;
//! - the in-cluster cluster (`in-cluster`, `https://kubernetes.default.svc`) exists
//!   without a Secret; a Secret for its server replaces it, and the name `in-cluster`
//!   still finds that server when no Secret is named `in-cluster`.
//!
//! One difference: when two Secrets declare the same server, Argo CD takes whichever its
//! index returns first; here that is an error naming both Secrets, because picking one of
//! two sets of credentials at random is not something to do silently.
//!
//! Errors name clusters by name, server URL and Secret `namespace/name`, never by anything
//! from a Secret's `config`.

#![deny(missing_docs)]

use std::borrow::Cow;

use crate::application::ApplicationDestination;
use crate::cluster::Cluster;
use crate::consts::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};

/// Why a destination names no single cluster. Messages follow Argo CD's where it has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Both `name` and `server` are set.
    #[error("application destination can't have both name and server defined: {name} {server}")]
    BothNameAndServer {
        /// `destination.name`.
        name: String,
        /// `destination.server`.
        server: String,
    },
    /// Neither `name` nor `server` is set.
    #[error("Destination server missing from app spec")]
    Missing,
    /// No cluster has this name.
    #[error("there are no clusters with this name: {name}")]
    UnknownName {
        /// `destination.name`.
        name: String,
    },
    /// Several clusters have this name.
    #[error("there are {} clusters with the same name: [{}]", servers.len(), servers.join(" "))]
    DuplicateName {
        /// `destination.name`.
        name: String,
        /// The servers of the clusters with that name, in registration order.
        servers: Vec<String>,
    },
    /// No cluster has this server.
    #[error("cluster {server:?} not found")]
    UnknownServer {
        /// `destination.server`, as written.
        server: String,
    },
    /// Several cluster Secrets declare this server.
    #[error("there are {} cluster Secrets for server {server:?}: [{}]", secrets.len(), secrets.join(" "))]
    DuplicateServer {
        /// The normalized server ([`server_key`]).
        server: String,
        /// `namespace/name` of each Secret.
        secrets: Vec<String>,
    },
}

/// The normalized form of a server URL: trailing `/` removed, as Argo CD's cluster index
/// does. Use it for map keys and display so every caller groups the same way.
#[must_use]
pub fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

/// The cluster `destination` means among `clusters` (the registered cluster Secrets,
/// without the implicit in-cluster one, which is added here when no Secret replaces it).
///
/// Borrowed when a registered cluster matches; owned for the implicit in-cluster cluster.
pub fn resolve<'a>(
    destination: &ApplicationDestination,
    clusters: &'a [Cluster],
) -> Result<Cow<'a, Cluster>, DestinationError> {
    let name = destination.name.as_str();
    let server = destination.server.as_str();
    match (name.is_empty(), server.is_empty()) {
        (false, false) => Err(DestinationError::BothNameAndServer {
            name: name.to_owned(),
            server: server.to_owned(),
        }),
        (true, true) => Err(DestinationError::Missing),
        (true, false) => {
            by_server(server, clusters)?.ok_or_else(|| DestinationError::UnknownServer {
                server: server.to_owned(),
            })
        }
        (false, true) => by_name(name, clusters),
    }
}

/// The cluster with this server (normalized), the implicit in-cluster cluster for its
/// server, or `None`.
fn by_server<'a>(
    server: &str,
    clusters: &'a [Cluster],
) -> Result<Option<Cow<'a, Cluster>>, DestinationError> {
    let key = server.trim_end_matches('/');
    let matching: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| c.server.trim_end_matches('/') == key)
        .collect();
    match matching.as_slice() {
        [] if key == IN_CLUSTER_SERVER => Ok(Some(Cow::Owned(Cluster::in_cluster()))),
        [] => Ok(None),
        [one] => Ok(Some(Cow::Borrowed(*one))),
        several => Err(DestinationError::DuplicateServer {
            server: key.to_owned(),
            secrets: several
                .iter()
                .map(|c| c.secret.clone().unwrap_or_default())
                .collect(),
        }),
    }
}

fn by_name<'a>(name: &str, clusters: &'a [Cluster]) -> Result<Cow<'a, Cluster>, DestinationError> {
    let matching: Vec<&Cluster> = clusters.iter().filter(|c| c.name == name).collect();
    match matching.as_slice() {
        // Argo CD answers the name `in-cluster` with the in-cluster server when no Secret
        // carries that name, then looks that server up: a Secret for it (whatever its
        // name) wins over the built-in cluster.
        [] if name == IN_CLUSTER_NAME => {
            by_server(IN_CLUSTER_SERVER, clusters)?.ok_or_else(|| DestinationError::UnknownName {
                name: name.to_owned(),
            })
        }
        [] => Err(DestinationError::UnknownName {
            name: name.to_owned(),
        }),
        [one] => Ok(Cow::Borrowed(*one)),
        several => Err(DestinationError::DuplicateName {
            name: name.to_owned(),
            servers: several
                .iter()
                .map(|c| c.server.trim_end_matches('/').to_owned())
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Sensitive;

    fn cluster(secret: &str, name: &str, server: &str) -> Cluster {
        let mut c = Cluster {
            secret: Some(format!("argocd/{secret}")),
            name: name.into(),
            server: server.into(),
            ..Cluster::default()
        };
        c.config.bearer_token = Some(Sensitive::from("t0ps3cr3t".to_owned()));
        c
    }

    fn dest(name: &str, server: &str) -> ApplicationDestination {
        ApplicationDestination {
            name: name.into(),
            server: server.into(),
            namespace: "shop".into(),
        }
    }

    fn fleet() -> Vec<Cluster> {
        vec![
            cluster("prod-1", "prod-1", "https://prod-1.example.com:6443"),
            cluster("prod-2", "prod-2", "https://prod-2.example.com:6443/"),
            cluster("edge-a", "edge", "https://edge-a.example.com"),
            cluster("edge-b", "edge", "https://edge-b.example.com/"),
        ]
    }

    #[test]
    fn trailing_slash_both_ways() {
        let clusters = fleet();
        let c = resolve(&dest("", "https://prod-1.example.com:6443/"), &clusters).unwrap();
        assert_eq!(c.name, "prod-1");
        let c = resolve(&dest("", "https://prod-2.example.com:6443"), &clusters).unwrap();
        assert_eq!(c.name, "prod-2");
        let c = resolve(&dest("", "https://prod-2.example.com:6443//"), &clusters).unwrap();
        assert_eq!(c.name, "prod-2");
        assert!(matches!(c, Cow::Borrowed(_)));
        assert_eq!(server_key("https://x:6443/"), server_key("https://x:6443"));
        assert_eq!(server_key("https://x:6443/"), "https://x:6443");
    }

    #[test]
    fn by_name_and_by_server() {
        let clusters = fleet();
        let c = resolve(&dest("prod-2", ""), &clusters).unwrap();
        assert_eq!(c.server, "https://prod-2.example.com:6443/");
        let c = resolve(&dest("", "https://prod-1.example.com:6443"), &clusters).unwrap();
        assert_eq!(c.name, "prod-1");
    }

    #[test]
    fn both_or_neither_is_an_error() {
        let clusters = fleet();
        let err = resolve(
            &dest("prod-1", "https://prod-1.example.com:6443"),
            &clusters,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "application destination can't have both name and server defined: prod-1 https://prod-1.example.com:6443"
        );
        let err = resolve(&dest("", ""), &clusters).unwrap_err();
        assert_eq!(err, DestinationError::Missing);
        assert_eq!(err.to_string(), "Destination server missing from app spec");
    }

    #[test]
    fn unknown_name_or_server() {
        let clusters = fleet();
        let err = resolve(&dest("staging", ""), &clusters).unwrap_err();
        assert_eq!(
            err.to_string(),
            "there are no clusters with this name: staging"
        );
        let err = resolve(&dest("", "https://nowhere:6443/"), &clusters).unwrap_err();
        assert_eq!(
            err,
            DestinationError::UnknownServer {
                server: "https://nowhere:6443/".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"cluster "https://nowhere:6443/" not found"#
        );
        // Names are exact: no trimming or case folding.
        assert!(resolve(&dest("Prod-1", ""), &clusters).is_err());
    }

    #[test]
    fn duplicate_names_are_an_error_naming_them() {
        let clusters = fleet();
        let err = resolve(&dest("edge", ""), &clusters).unwrap_err();
        assert_eq!(
            err.to_string(),
            "there are 2 clusters with the same name: [https://edge-a.example.com https://edge-b.example.com]"
        );
        // Each server alone still resolves.
        let c = resolve(&dest("", "https://edge-b.example.com"), &clusters).unwrap();
        assert_eq!(c.secret.as_deref(), Some("argocd/edge-b"));
    }

    #[test]
    fn duplicate_servers_are_an_error_naming_the_secrets() {
        let mut clusters = fleet();
        clusters.push(cluster(
            "prod-1-copy",
            "prod-1b",
            "https://prod-1.example.com:6443/",
        ));
        let err = resolve(&dest("", "https://prod-1.example.com:6443"), &clusters).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("argocd/prod-1 argocd/prod-1-copy"), "{msg}");
        // By name, the one Secret with that name is found.
        assert_eq!(
            resolve(&dest("prod-1b", ""), &clusters).unwrap().name,
            "prod-1b"
        );
    }

    #[test]
    fn in_cluster_is_implicit() {
        let clusters = fleet();
        for d in [
            dest("in-cluster", ""),
            dest("", "https://kubernetes.default.svc"),
            dest("", "https://kubernetes.default.svc/"),
        ] {
            let c = resolve(&d, &clusters).unwrap();
            assert_eq!(*c, Cluster::in_cluster(), "{d:?}");
            assert!(matches!(c, Cow::Owned(_)));
        }
        // Without any registered cluster too.
        assert_eq!(
            *resolve(&dest("in-cluster", ""), &[]).unwrap(),
            Cluster::in_cluster()
        );
    }

    #[test]
    fn in_cluster_overridden_by_a_secret() {
        let mut clusters = fleet();
        clusters.push(cluster("local", "local", "https://kubernetes.default.svc/"));
        for d in [
            dest("", "https://kubernetes.default.svc"),
            dest("local", ""),
            // No Secret is named `in-cluster`: the name still means the local server,
            // whose Secret now wins (Argo CD's GetClusterServersByName + GetCluster).
            dest("in-cluster", ""),
        ] {
            let c = resolve(&d, &clusters).unwrap();
            assert_eq!(c.secret.as_deref(), Some("argocd/local"), "{d:?}");
            assert!(c.is_in_cluster());
        }

        // A Secret named `in-cluster` for another server takes the name over.
        let mut clusters = fleet();
        clusters.push(cluster("remote", "in-cluster", "https://remote:6443"));
        let c = resolve(&dest("in-cluster", ""), &clusters).unwrap();
        assert_eq!(c.server, "https://remote:6443");
        let c = resolve(&dest("", "https://kubernetes.default.svc"), &clusters).unwrap();
        assert_eq!(*c, Cluster::in_cluster());
    }

    #[test]
    fn errors_never_contain_secret_contents() {
        let mut clusters = fleet();
        clusters.push(cluster(
            "prod-1-copy",
            "edge",
            "https://prod-1.example.com:6443",
        ));
        for d in [
            dest("edge", ""),
            dest("", "https://prod-1.example.com:6443"),
            dest("nope", ""),
            dest("", "https://nope"),
            dest("a", "b"),
        ] {
            let msg = resolve(&d, &clusters).unwrap_err().to_string();
            assert!(!msg.contains("t0ps3cr3t"), "{msg}");
            let dbg = format!("{:?}", resolve(&d, &clusters).unwrap_err());
            assert!(!dbg.contains("t0ps3cr3t"), "{dbg}");
        }
    }
}
