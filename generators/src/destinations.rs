//! [`Destinations`]: the clusters an Application may be sent to, for validation.
//!
//! A leaf module (it names only `source`): the per-generation
//! [`Context`](crate::context::Context) builds it once from the cluster list, and
//! validation checks each Application's destination against it.

use std::collections::{BTreeMap, HashMap};

use argosy_crds::Cluster;
use argosy_crds::application::ApplicationDestination;
use argosy_crds::consts::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};

use crate::source::ClusterEntry;

/// The known clusters, by server and by name (Argo CD's `GetDestinationCluster`), and
/// the project-scoped ones (for the projects' destination rules).
pub(crate) struct Destinations {
    /// Server (without trailing `/`) to cluster name.
    servers: HashMap<String, String>,
    names: BTreeMap<String, Vec<String>>,
    /// Clusters whose Secret names a project, without their credentials.
    scoped: Vec<Cluster>,
}

impl Destinations {
    pub fn new(entries: &[ClusterEntry]) -> Self {
        let mut d = Self {
            servers: HashMap::new(),
            names: BTreeMap::new(),
            scoped: Vec::new(),
        };
        for entry in entries {
            if let ClusterEntry::Valid(c) = entry {
                d.add(&c.name, &c.server);
                if !c.project.is_empty() {
                    d.scoped.push(Cluster {
                        name: c.name.clone(),
                        server: c.server.clone(),
                        project: c.project.clone(),
                        namespaces: c.namespaces.clone(),
                        ..Cluster::default()
                    });
                }
            }
        }
        // The local cluster exists without a Secret unless a Secret stands for it.
        if !d.servers.contains_key(IN_CLUSTER_SERVER) {
            d.add(IN_CLUSTER_NAME, IN_CLUSTER_SERVER);
        }
        d
    }

    fn add(&mut self, name: &str, server: &str) {
        let server = normalize(server).to_owned();
        self.names
            .entry(name.to_owned())
            .or_default()
            .push(server.clone());
        self.servers.insert(server, name.to_owned());
    }

    /// The clusters whose Secret names a project.
    pub fn scoped(&self) -> &[Cluster] {
        &self.scoped
    }

    /// The cluster `dest` means (its name and server only), or why none.
    pub fn resolve(&self, dest: &ApplicationDestination) -> Result<Cluster, String> {
        let cluster = |name: &str, server: &str| Cluster {
            name: name.to_owned(),
            server: server.to_owned(),
            ..Cluster::default()
        };
        match (dest.name.as_str(), dest.server.as_str()) {
            ("", "") => Err("Destination server missing from app spec".to_owned()),
            (name, server) if !name.is_empty() && !server.is_empty() => Err(format!(
                "application destination can't have both name and server defined: {name} {server}"
            )),
            ("", server) => match self.servers.get(normalize(server)) {
                Some(name) => Ok(cluster(name, normalize(server))),
                None => Err(format!(
                    "error getting cluster by server {server:?}: cluster {server:?} not found"
                )),
            },
            (name, _) => match self.names.get(name).map(Vec::as_slice) {
                None | Some([]) => Err(format!("there are no clusters with this name: {name}")),
                Some([server]) => Ok(cluster(name, server)),
                Some(servers) => Err(format!(
                    "there are {} clusters with the same name: [{}]",
                    servers.len(),
                    servers.join(" ")
                )),
            },
        }
    }

    #[cfg(test)]
    fn check(&self, dest: &ApplicationDestination) -> Result<(), String> {
        self.resolve(dest).map(|_| ())
    }
}

fn normalize(server: &str) -> &str {
    server.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(name: &str, server: &str) -> ApplicationDestination {
        ApplicationDestination {
            name: name.to_owned(),
            server: server.to_owned(),
            namespace: String::new(),
        }
    }

    #[test]
    fn destinations() {
        let c = |name: &str, server: &str| {
            ClusterEntry::Valid(Cluster {
                name: name.to_owned(),
                server: server.to_owned(),
                ..Cluster::default()
            })
        };
        let d = Destinations::new(&[
            c("a", "https://a/"),
            c("dup", "https://d1"),
            c("dup", "https://d2"),
        ]);
        assert!(d.check(&dest("", "https://a")).is_ok());
        assert!(d.check(&dest("a", "")).is_ok());
        assert!(d.check(&dest("in-cluster", "")).is_ok());
        assert!(d.check(&dest("", IN_CLUSTER_SERVER)).is_ok());
        assert!(d.check(&dest("", "")).unwrap_err().contains("missing"));
        assert!(
            d.check(&dest("a", "https://a"))
                .unwrap_err()
                .contains("both")
        );
        assert!(
            d.check(&dest("", "https://x"))
                .unwrap_err()
                .contains("not found")
        );
        assert!(d.check(&dest("x", "")).unwrap_err().contains("no clusters"));
        assert!(
            d.check(&dest("dup", ""))
                .unwrap_err()
                .contains("2 clusters")
        );

        // A Secret for the local server replaces the implicit in-cluster.
        let d = Destinations::new(&[c("local", IN_CLUSTER_SERVER)]);
        assert!(d.check(&dest("local", "")).is_ok());
        assert!(d.check(&dest("in-cluster", "")).is_err());
    }
}
