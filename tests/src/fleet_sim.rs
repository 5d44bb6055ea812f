//! A fleet simulator: many clusters without many API servers.
//!
//! Each real kube-apiserver of a [`ControlPlane`] serves several *simulated clusters*.
//! A simulated cluster has a server URL of its own, `https://127.1.X.Y:PORT` (a distinct
//! loopback address: Linux routes all of `127.0.0.0/8` to the loopback device), where a
//! listener of this process accepts connections and forwards them, bytes unchanged, to its
//! API server on `127.0.0.1` (the harness binds kube-apiserver to `127.0.0.1` only, and a
//! socket bound to one address accepts no other). The forwarded connection leaves from the
//! simulated cluster's own address, so the API server's audit log names it in
//! `sourceIPs`. TLS is end to end: Argosy verifies the API server's certificate with the
//! cluster Secret's `tlsClientConfig.serverName: localhost` (the certificate names
//! `127.0.0.1` and `localhost`, not the simulated addresses). Each simulated cluster keeps
//! to namespaces of its own by convention ([`SimCluster::namespace`]: `<name>-<suffix>`);
//! the API server does not enforce it.
//!
//! What the simulation does not model:
//! * **Shared API server and etcd.** The simulated clusters of one API server share its
//!   CPU, memory, watch cache, request limits (`--max-requests-inflight`) and its etcd
//!   (all API servers share one etcd): a load on one simulated cluster slows its
//!   neighbours, and their objects are in one store. A watch over the whole cluster sees
//!   every simulated cluster's objects of that API server, which no real cluster would;
//!   Argosy watches namespaces in use, so this shows only above `--watch-namespaces-max`.
//! * **One identity.** One CA, one serving certificate (verified by `serverName`), one
//!   admin token for all: no per-cluster credentials, no certificate rotation, RBAC is
//!   that of one user.
//! * **No network.** Loopback plus one user-space copy in this process: no latency,
//!   bandwidth limits, packet loss, NAT or proxies; TCP and TLS costs are real.
//! * **One Kubernetes version** (the harness's v1.20 kube-apiserver) and one set of API
//!   groups everywhere; no controller-manager, scheduler or kubelet (see
//!   [`crate::control_plane`]).
//! * **Failures.** Simulated clusters fail together with their API server; one of them
//!   cannot hang or fail alone (its listener could be stopped, which is not done here).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::Client;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};

use crate::control_plane::{ControlPlane, TestCluster};
use crate::fixtures::ClusterSecretBuilder;

/// The server name simulated clusters' clients verify (a SAN of the harness's certificate).
pub const SERVER_NAME: &str = "localhost";
/// Simulated clusters registered at once by [`FleetSim::register_all`].
const REGISTER_CONCURRENCY: usize = 16;
/// The most simulated clusters: `127.1.0.1` to `127.1.249.250`.
pub const MAX_CLUSTERS: usize = 250 * 250;

/// One simulated cluster.
#[derive(Clone, Debug)]
pub struct SimCluster {
    /// `sim-0001`, ...: its cluster Secret is `cluster-<name>`.
    pub name: String,
    /// `https://127.1.X.Y:PORT`.
    pub server: String,
    /// Its loopback address (its forwarded connections leave from it too).
    pub address: Ipv4Addr,
    /// The harness cluster whose API server serves it.
    pub backing: TestCluster,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
}

impl SimCluster {
    /// Its namespace `<name>-<suffix>` (a convention: nothing enforces it).
    pub fn namespace(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// The `config` JSON of its Argo CD cluster Secret: the backing API server's token and
    /// CA, and `serverName` [`SERVER_NAME`].
    pub fn argocd_cluster_config(&self) -> Value {
        json!({
            "bearerToken": self.backing.token,
            "tlsClientConfig": {
                "insecure": false,
                "caData": self.backing.ca_data(),
                "serverName": SERVER_NAME,
            },
        })
    }

    /// Its cluster Secret (labels `fleet-sim: "true"` and `backing: <API server>`).
    pub fn secret(&self) -> ClusterSecretBuilder {
        ClusterSecretBuilder::new(&self.name, &self.server)
            .label("fleet-sim", "true")
            .label("backing", &self.backing.name)
            .raw_config(self.argocd_cluster_config().to_string())
    }

    /// An admin client reaching it at its own address (User-Agent `argosy-tests`).
    pub async fn client(&self) -> Result<Client> {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {
                "server": self.server,
                "certificate-authority-data": self.backing.ca_data(),
                "tls-server-name": SERVER_NAME,
            }}],
            "users": [{"name": "admin", "user": {"token": self.backing.token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "admin"}}],
            "current-context": self.name,
        });
        let kubeconfig: kube::config::Kubeconfig =
            serde_json::from_value(doc).with_context(|| format!("kubeconfig of {}", self.name))?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .with_context(|| format!("kube config of {}", self.name))?;
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(crate::control_plane::HARNESS_USER_AGENT),
        ));
        Client::try_from(config).with_context(|| format!("kube client of {}", self.name))
    }

    /// Connections its listener has accepted so far.
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Simulated clusters over the workload API servers of a [`ControlPlane`]; the listeners
/// and every forwarded connection stop when it is dropped.
pub struct FleetSim {
    clusters: Vec<SimCluster>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FleetSim {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The address of simulated cluster `index` (0-based): `127.1.X.Y`, `Y` from 1 to 250.
pub fn address_of(index: usize) -> Ipv4Addr {
    // Both parts are below 251 for any index under MAX_CLUSTERS (callers check).
    let (x, y) = (index / 250, index % 250 + 1);
    Ipv4Addr::new(
        127,
        1,
        u8::try_from(x).unwrap_or(u8::MAX),
        u8::try_from(y).unwrap_or(u8::MAX),
    )
}

impl FleetSim {
    /// `count` simulated clusters `sim-0001..`, spread round-robin over the workload API
    /// servers of `plane`, listening once this returns. Must run inside a Tokio runtime
    /// that outlives it (its listeners are tasks there).
    pub async fn start(plane: &ControlPlane, count: usize) -> Result<FleetSim> {
        let backings = plane.workloads();
        if backings.is_empty() {
            bail!("the fleet simulator needs at least one workload API server");
        }
        if count > MAX_CLUSTERS {
            bail!("at most {MAX_CLUSTERS} simulated clusters, not {count}");
        }
        // One port for every address when it is free on all of them (it is on 127.1/16
        // unless another process bound it to every address), else one each.
        let port = crate::ports::free_port()?;
        let mut sim = FleetSim {
            clusters: Vec::with_capacity(count),
            tasks: Vec::with_capacity(count),
        };
        for index in 0..count {
            let address = address_of(index);
            let listener = match TcpListener::bind((address, port)).await {
                Ok(listener) => listener,
                Err(_) => TcpListener::bind((address, 0))
                    .await
                    .with_context(|| format!("listening on {address}"))?,
            };
            let bound = listener.local_addr()?;
            let backing = backings[index % backings.len()].clone();
            let cluster = SimCluster {
                name: format!("sim-{:04}", index + 1),
                server: format!("https://{address}:{}", bound.port()),
                address,
                accepted: Arc::default(),
                backing,
            };
            let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, cluster.backing.port));
            sim.tasks.push(tokio::spawn(forward(
                listener,
                address,
                upstream,
                cluster.accepted.clone(),
            )));
            sim.clusters.push(cluster);
        }
        Ok(sim)
    }

    /// The simulated clusters, `sim-0001` first.
    pub fn clusters(&self) -> &[SimCluster] {
        &self.clusters
    }

    /// Applies every simulated cluster's Secret ([`SimCluster::secret`]) through `client`
    /// (the management cluster's), 16 at a time.
    pub async fn register_all(&self, client: &Client) -> Result<()> {
        futures::stream::iter(self.clusters.iter().map(|c| {
            let client = client.clone();
            async move { c.secret().apply(&client).await }
        }))
        .buffer_unordered(REGISTER_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }
}

/// Accepts on `listener` and copies each connection both ways to `upstream`, from
/// `address`. A connection that fails ends alone; the listener goes on.
async fn forward(
    listener: TcpListener,
    address: Ipv4Addr,
    upstream: SocketAddr,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: let the others finish first.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let connect = async {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::from((address, 0)))?;
                socket.connect(upstream).await
            };
            if let Ok(mut outbound) = connect.await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_addresses_other_than_the_api_servers() {
        let addresses: std::collections::BTreeSet<Ipv4Addr> =
            (0..MAX_CLUSTERS).map(address_of).collect();
        assert_eq!(addresses.len(), MAX_CLUSTERS);
        assert!(addresses.iter().all(|a| a.is_loopback()));
        assert!(!addresses.contains(&Ipv4Addr::LOCALHOST));
        assert_eq!(address_of(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(address_of(250), Ipv4Addr::new(127, 1, 1, 1));
    }
}
