//! Kubernetes clients for the destination clusters of Applications.
//!
//! Owns: turning an Argo CD cluster Secret ([`Cluster`]) into a `kube::Client`, the cache of
//! those clients keyed by server URL (rebuilt when the Secret's server or `config` changes,
//! so a rotated token takes effect without a restart), per-cluster discovery
//! (`apiVersion` + `kind` to [`ApiResource`] and [`Scope`]) and per-cluster connection state
//! for status and metrics.
//!
//! The Secret is expressed as a kubeconfig and loaded by kube, so CA bundles, client
//! certificates, `insecure`, `serverName`, `proxyUrl` and exec plugins behave as kube (and
//! kubectl) treat them. Credential plugins (`execProviderConfig`, `awsAuthConfig`) run
//! programs named by whoever can write cluster Secrets, so they are refused unless the
//! controller was started with them allowed. `https://kubernetes.default.svc` is the
//! controller's own client, as in Argo CD; credentials in an in-cluster Secret are ignored.
//!
//! Messages never carry a credential: the values of the cluster's token, password, key and
//! plugin environment are blanked out of every error text, and a plugin's output (which
//! holds the credential it minted) is withheld.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argosy_crds::cluster::{Cluster, ClusterConfig, ExecProviderConfig};
use k8s_openapi::jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersion;
use kube::discovery::ApiResource;
pub use kube::discovery::Scope;
use serde_json::{Map, Value, json};

use crate::fence::Fence;
use crate::shard::ShardFence;

/// The User-Agent of every request Argosy makes (the audit log tells its writes apart by it).
pub const USER_AGENT: &str = concat!("argosy/", env!("CARGO_PKG_VERSION"));

/// A cluster that does not answer the TCP/TLS handshake within this fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence while waiting for a response (or sending a request) on [`ClusterConn::client`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long "this kind is not served" is believed before asking the API server again:
/// short, so a CRD applied by an earlier sync wave is found soon, but long enough that
/// manifests with an unknown kind do not turn every reconcile into discovery requests.
const NEGATIVE_DISCOVERY_TTL: Duration = Duration::from_secs(5);
/// The plugin Argo CD runs for `awsAuthConfig` (shipped in Argo CD's images).
const AWS_AUTH_COMMAND: &str = "argocd-k8s-auth";
/// `ExecCredential` version used when a Secret's `execProviderConfig` names none.
const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";
/// Replaces a credential in messages.
const REDACTED: &str = "<redacted>";
/// Replaces a credential plugin's output in messages.
const PLUGIN_OUTPUT_WITHHELD: &str = " (plugin output withheld)";

/// Why a destination cluster could not be used. Messages name the cluster and the field or
/// step and never contain a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A field of the cluster's `config` is invalid.
    #[error("cluster {server}: config.{field}: {reason}")]
    ReadConfig {
        /// API server URL of the cluster.
        server: String,
        /// The `config` field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The cluster asks for a credential plugin, and this controller does not run them.
    #[error(
        "cluster {server}: config.{field} asks to run a credential plugin, and credential plugins are not allowed in this controller"
    )]
    ExecRefused {
        /// API server URL of the cluster.
        server: String,
        /// The `config` field at fault.
        field: &'static str,
    },
    /// The Kubernetes client could not be built from the settings.
    #[error("cluster {server}: building the client: {reason}")]
    BuildClient {
        /// API server URL of the cluster.
        server: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server did not answer the version request.
    #[error("cluster {server}: reading the server version: {failure}")]
    ServerVersion {
        /// API server URL of the cluster.
        server: String,
        /// How the request failed.
        failure: RequestFailure,
    },
    /// An `apiVersion` that is neither `GROUP/VERSION` nor `VERSION`.
    #[error("apiVersion {api_version:?} is not GROUP/VERSION or VERSION")]
    ParseApiVersion {
        /// The `apiVersion` concerned.
        api_version: String,
    },
    /// API discovery of a group version failed.
    #[error("cluster {server}: discovering {api_version}: {failure}")]
    Discovery {
        /// API server URL of the cluster.
        server: String,
        /// The `apiVersion` concerned.
        api_version: String,
        /// How the request failed.
        failure: RequestFailure,
    },
    /// The cluster does not serve the kind in that API version.
    #[error("cluster {server}: kind {kind} is not served in {api_version} (is its CRD installed?)")]
    UnknownKind {
        /// API server URL of the cluster.
        server: String,
        /// The `apiVersion` concerned.
        api_version: String,
        /// The kind looked up.
        kind: String,
    },
}

impl ClientError {
    /// A static category for metrics labels and Event reasons.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            ClientError::ReadConfig { .. } => "InvalidClusterConfig",
            ClientError::ExecRefused { .. } => "ExecPluginRefused",
            ClientError::BuildClient { .. } => "ClusterClientError",
            ClientError::ServerVersion { failure, .. } | ClientError::Discovery { failure, .. } => {
                failure.category
            }
            ClientError::ParseApiVersion { .. } => "InvalidApiVersion",
            ClientError::UnknownKind { .. } => "UnknownKind",
        }
    }
}

/// A failed request to a cluster, described without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFailure {
    /// HTTP status when the API server answered.
    pub code: Option<u16>,
    /// `ClusterUnauthorized`, `ClusterUnreachable` or `ClusterRequestFailed`.
    pub category: &'static str,
    reason: String,
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Connection state of one cluster, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// Last request that reached the API server and succeeded.
    pub last_success: Option<Timestamp>,
    /// Error of the last failure since the last success (cleared by a success).
    pub last_error: Option<String>,
    /// When [`Self::last_error`] happened.
    pub last_error_at: Option<Timestamp>,
    /// `gitVersion` from `/version`, read on first use of the current client.
    pub server_version: Option<String>,
}

/// What stands in front of the write client of every destination cluster.
#[derive(Clone, Debug)]
enum ClusterGate {
    /// One replica writes everywhere while it leads (or always, without election).
    Leader(Fence),
    /// Each cluster is written only by the replica holding it.
    Shard(ShardFence),
}

impl ClusterGate {
    fn wrap(&self, server: &str, client: kube::Client) -> kube::Client {
        match self {
            Self::Leader(fence) => fence.wrap(client),
            Self::Shard(shard) => shard.wrap(&argosy_crds::destination::server_key(server), client),
        }
    }
}

/// Clients for destination clusters, cached by server URL. Shared by all reconciles.
pub struct ClusterClients {
    in_cluster: kube::Client,
    allow_exec_plugins: bool,
    /// Every request client built here writes through it.
    gate: ClusterGate,
    /// The User-Agent of the clients built here (names the replica with sharding).
    user_agent: http::HeaderValue,
    slots: Mutex<BTreeMap<String, Slot>>,
}

/// What the cache holds for one server. The state outlives client rebuilds (and failed
/// builds), so a cluster whose Secret cannot be used still shows its error.
struct Slot {
    state: Arc<Mutex<ClusterState>>,
    conn: Option<(ClusterConfig, Arc<ClusterConn>)>,
}

impl ClusterClients {
    /// `in_cluster` is the controller's own client, used for `https://kubernetes.default.svc`.
    #[must_use]
    pub fn new(in_cluster: kube::Client, allow_exec_plugins: bool) -> Self {
        Self {
            in_cluster,
            allow_exec_plugins,
            gate: ClusterGate::Leader(Fence::open()),
            user_agent: http::HeaderValue::from_static(USER_AGENT),
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// Puts `fence` in front of the request client of every cluster connected from now on
    /// (watch clients only read, and are left as they are).
    #[must_use]
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.gate = ClusterGate::Leader(fence);
        self
    }

    /// Adds `replica` to the User-Agent of every client built from now on
    /// (`argosy/<version> (<replica>)`), so a destination's audit log tells which replica
    /// wrote; an identity that is not a valid header value is left out.
    #[must_use]
    pub fn with_replica(mut self, replica: &str) -> Self {
        if let Ok(value) = http::HeaderValue::from_str(&format!("{USER_AGENT} ({replica})")) {
            self.user_agent = value;
        }
        self
    }

    /// Puts the gate of each cluster's shard in front of its request client: a write
    /// passes only while this replica holds that cluster ([`crate::shard`]).
    #[must_use]
    pub fn with_shard(mut self, shard: ShardFence) -> Self {
        self.gate = ClusterGate::Shard(shard);
        self
    }

    /// Client + discovery for the cluster (cached; rebuilt if the Secret's server or
    /// `config` changed). A failure is also recorded in the cluster's state.
    pub async fn connect(&self, cluster: &Cluster) -> Result<Arc<ClusterConn>, ClientError> {
        let state = {
            let mut slots = self.lock();
            let slot = slots.entry(cluster.server.clone()).or_insert_with(|| Slot {
                state: Arc::default(),
                conn: None,
            });
            if let Some((config, conn)) = &slot.conn
                && *config == cluster.config
            {
                return Ok(conn.clone());
            }
            slot.state.clone()
        };
        let redactor = Redactor::new(&cluster.config);
        let clients = if cluster.is_in_cluster() {
            Ok((self.in_cluster.clone(), self.in_cluster.clone()))
        } else {
            build_clients(
                cluster,
                self.allow_exec_plugins,
                &redactor,
                &self.user_agent,
            )
            .await
        }
        .map(|(client, watch)| (self.gate.wrap(&cluster.server, client), watch));
        let (client, watch_client) = match clients {
            Ok(clients) => clients,
            Err(e) => {
                record(&state, Err(e.to_string()));
                return Err(e);
            }
        };
        // A new client may talk to another apiserver build behind the same URL.
        lock(&state).server_version = None;
        let conn = Arc::new(ClusterConn {
            server: cluster.server.clone(),
            client,
            watch_client,
            state,
            redactor,
            discovery: Mutex::default(),
            group_versions: Mutex::default(),
        });
        if let Some(slot) = self.lock().get_mut(&cluster.server) {
            slot.conn = Some((cluster.config.clone(), conn.clone()));
        }
        Ok(conn)
    }

    /// Drops the clients (and connection state) of the servers `keep` refuses: clusters
    /// another replica syncs now hold no connections or memory here.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|server, _| keep(server));
    }

    /// Connection state of every cluster seen so far, by server URL.
    pub fn states(&self) -> Vec<(String, ClusterState)> {
        self.lock()
            .iter()
            .map(|(server, slot)| (server.clone(), lock(&slot.state).clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One destination cluster: its clients, discovery cache and connection state.
pub struct ClusterConn {
    /// The server URL exactly as in the cluster Secret.
    pub server: String,
    /// For request/response calls: gives up after `REQUEST_TIMEOUT` of silence.
    pub client: kube::Client,
    /// For watches, which are silent for minutes when nothing changes: no read timeout
    /// (kube-runtime's watcher has its own idle timeout for dead connections).
    pub watch_client: kube::Client,
    state: Arc<Mutex<ClusterState>>,
    redactor: Redactor,
    discovery: Mutex<DiscoveryCache>,
    /// The served API group versions and when they were read ([`Self::capabilities`]).
    group_versions: Mutex<Option<(Arc<Vec<String>>, Instant)>>,
}

/// What Helm calls `.Capabilities`: the cluster's Kubernetes version and API versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `major.minor.patch` of the API server, without `v` or build suffixes (Helm reads
    /// only semantic versions).
    pub kube_version: String,
    /// Served group versions (`v1`, `apps/v1`, ...).
    pub api_versions: Arc<Vec<String>>,
}

/// How long a cluster's list of API group versions is used before it is read again.
const CAPABILITIES_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// `v1.20.2+k3s1` -> `1.20.2`, as Argo CD's `parseKubeVersion`.
fn semantic_kube_version(git_version: &str) -> String {
    let v = git_version.trim().trim_start_matches('v');
    v.split(['+', '-']).next().unwrap_or_default().to_owned()
}

impl ClusterConn {
    /// The cluster's [`Capabilities`] for rendering Helm charts (two discovery requests,
    /// then cached for five minutes).
    pub async fn capabilities(&self) -> Result<Capabilities, ClientError> {
        let kube_version = semantic_kube_version(&self.server_version().await?);
        let cached = lock(&self.group_versions)
            .as_ref()
            .filter(|(_, at)| at.elapsed() < CAPABILITIES_TTL)
            .map(|(versions, _)| versions.clone());
        if let Some(api_versions) = cached {
            return Ok(Capabilities {
                kube_version,
                api_versions,
            });
        }
        let failed = |e: &kube::Error| ClientError::Discovery {
            server: self.server.clone(),
            api_version: "(all)".to_owned(),
            failure: self.redactor.failure(e),
        };
        let core = self.client.list_core_api_versions().await.map_err(|e| {
            let e = failed(&e);
            self.record_error(&e);
            e
        })?;
        let groups = self.client.list_api_groups().await.map_err(|e| {
            let e = failed(&e);
            self.record_error(&e);
            e
        })?;
        self.record_success();
        let mut versions: Vec<String> = core.versions;
        versions.extend(
            groups
                .groups
                .iter()
                .flat_map(|g| g.versions.iter().map(|v| v.group_version.clone())),
        );
        versions.sort();
        versions.dedup();
        let api_versions = Arc::new(versions);
        *lock(&self.group_versions) = Some((api_versions.clone(), Instant::now()));
        Ok(Capabilities {
            kube_version,
            api_versions,
        })
    }

    /// The resource and scope serving `kind` in `api_version`. Cached; a kind that is not
    /// served is looked up again after a few seconds (a CRD may have been applied since).
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Scope), ClientError> {
        let gv = parse_api_version(api_version)?;
        let api_version = gv.api_version();
        let unknown = || ClientError::UnknownKind {
            server: self.server.clone(),
            api_version: api_version.clone(),
            kind: kind.to_owned(),
        };
        match self.discovery().lookup(&api_version, kind, Instant::now()) {
            Lookup::Found(found) => return Ok(found),
            Lookup::NotServed => return Err(unknown()),
            Lookup::Stale => {}
        }
        self.server_version().await?;
        let kinds = match kube::discovery::pinned_group(&self.client, &gv).await {
            Ok(group) => group
                .versioned_resources(&gv.version)
                .into_iter()
                .map(|(resource, caps)| (resource.kind.clone(), (resource, caps.scope)))
                .collect(),
            // The group/version itself is not served (yet).
            Err(kube::Error::Api(status)) if status.code == 404 => HashMap::new(),
            Err(e) => {
                let e = ClientError::Discovery {
                    server: self.server.clone(),
                    api_version,
                    failure: self.redactor.failure(&e),
                };
                self.record_error(&e);
                return Err(e);
            }
        };
        self.record_success();
        let mut cache = self.discovery();
        cache.store(&api_version, kinds, Instant::now());
        match cache.lookup(&api_version, kind, Instant::now()) {
            Lookup::Found(found) => Ok(found),
            Lookup::NotServed | Lookup::Stale => Err(unknown()),
        }
    }

    /// The API server's `gitVersion`, read once per client.
    pub async fn server_version(&self) -> Result<String, ClientError> {
        if let Some(version) = lock(&self.state).server_version.clone() {
            return Ok(version);
        }
        match self.client.apiserver_version().await {
            Ok(info) => {
                lock(&self.state).server_version = Some(info.git_version.clone());
                self.record_success();
                Ok(info.git_version)
            }
            Err(e) => {
                let e = ClientError::ServerVersion {
                    server: self.server.clone(),
                    failure: self.redactor.failure(&e),
                };
                self.record_error(&e);
                Err(e)
            }
        }
    }

    /// Records that a request to this cluster succeeded (clears the last error).
    pub fn record_success(&self) {
        record(&self.state, Ok(()));
    }

    /// Records a failed request to this cluster; credentials are blanked out of `e`.
    pub fn record_error(&self, e: &dyn fmt::Display) {
        record(&self.state, Err(self.redactor.apply(&e.to_string())));
    }

    fn discovery(&self) -> std::sync::MutexGuard<'_, DiscoveryCache> {
        self.discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn lock<T>(state: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(state: &Mutex<ClusterState>, outcome: Result<(), String>) {
    let mut state = lock(state);
    let now = Timestamp::now();
    match outcome {
        Ok(()) => {
            state.last_success = Some(now);
            state.last_error = None;
            state.last_error_at = None;
        }
        Err(message) => {
            state.last_error = Some(message);
            state.last_error_at = Some(now);
        }
    }
}

/// `apps/v1` or `v1` (the core group); anything else is refused before it reaches a URL.
fn parse_api_version(api_version: &str) -> Result<GroupVersion, ClientError> {
    let invalid = || ClientError::ParseApiVersion {
        api_version: api_version.to_owned(),
    };
    let gv: GroupVersion = api_version.parse().map_err(|_| invalid())?;
    let valid_part = |s: &str| !s.is_empty() && !s.contains('/');
    let group_ok = (gv.group.is_empty() && !api_version.contains('/')) || valid_part(&gv.group);
    if group_ok && valid_part(&gv.version) {
        Ok(gv)
    } else {
        Err(invalid())
    }
}

/// Kinds served per group/version, as last discovered.
#[derive(Default)]
struct DiscoveryCache {
    versions: HashMap<String, Discovered>,
}

struct Discovered {
    at: Instant,
    kinds: HashMap<String, (ApiResource, Scope)>,
}

#[derive(Debug)]
enum Lookup {
    Found((ApiResource, Scope)),
    /// Not served, according to a recent discovery.
    NotServed,
    /// Never discovered, or not served according to a discovery that is no longer recent.
    Stale,
}

impl DiscoveryCache {
    fn lookup(&self, api_version: &str, kind: &str, now: Instant) -> Lookup {
        let Some(discovered) = self.versions.get(api_version) else {
            return Lookup::Stale;
        };
        match discovered.kinds.get(kind) {
            Some(found) => Lookup::Found(found.clone()),
            None if now.saturating_duration_since(discovered.at) < NEGATIVE_DISCOVERY_TTL => {
                Lookup::NotServed
            }
            None => Lookup::Stale,
        }
    }

    fn store(
        &mut self,
        api_version: &str,
        kinds: HashMap<String, (ApiResource, Scope)>,
        now: Instant,
    ) {
        self.versions
            .insert(api_version.to_owned(), Discovered { at: now, kinds });
    }
}

/// Builds the request client and the watch client of a (not in-cluster) cluster. Off the
/// async threads: kube runs an exec plugin synchronously while building the client.
async fn build_clients(
    cluster: &Cluster,
    allow_exec_plugins: bool,
    redactor: &Redactor,
    user_agent: &http::HeaderValue,
) -> Result<(kube::Client, kube::Client), ClientError> {
    let (request, watch) =
        client_configs(cluster, allow_exec_plugins, redactor, user_agent).await?;
    let server = cluster.server.clone();
    let redactor = redactor.clone();
    let build = move || {
        let build_one = |config| {
            kube::Client::try_from(config).map_err(|e| ClientError::BuildClient {
                server: server.clone(),
                reason: redactor.failure(&e).reason,
            })
        };
        Ok((build_one(request)?, build_one(watch)?))
    };
    tokio::task::spawn_blocking(build)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::BuildClient {
                server: cluster.server.clone(),
                reason: "the client construction task panicked".to_owned(),
            })
        })
}

/// The request and watch configs of a cluster: same connection and credentials, with
/// Argosy's User-Agent; they differ in the read timeout.
async fn client_configs(
    cluster: &Cluster,
    allow_exec_plugins: bool,
    redactor: &Redactor,
    user_agent: &http::HeaderValue,
) -> Result<(kube::Config, kube::Config), ClientError> {
    let kubeconfig = kubeconfig(cluster, allow_exec_plugins)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| ClientError::BuildClient {
                server: cluster.server.clone(),
                reason: redactor.apply(&error_chain(&e)),
            })?;
    config
        .headers
        .push((http::header::USER_AGENT, user_agent.clone()));
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(REQUEST_TIMEOUT);
    let watch = config.clone();
    config.read_timeout = Some(REQUEST_TIMEOUT);
    // Count the read timeout from the request, not from when the pooled connection idled.
    config.reset_reader_on_write = true;
    Ok((config, watch))
}

/// The cluster Secret as a one-context kubeconfig, for kube's loader.
fn kubeconfig(cluster: &Cluster, allow_exec_plugins: bool) -> Result<Kubeconfig, ClientError> {
    let config = &cluster.config;
    let tls = &config.tls_client_config;
    let server = || cluster.server.clone();

    let mut kube_cluster = Map::new();
    kube_cluster.insert("server".into(), json!(cluster.server));
    if tls.insecure {
        kube_cluster.insert("insecure-skip-tls-verify".into(), json!(true));
    }
    insert_some(
        &mut kube_cluster,
        "certificate-authority-data",
        tls.ca_data.as_deref(),
    );
    insert_some(
        &mut kube_cluster,
        "tls-server-name",
        tls.server_name.as_deref(),
    );
    if let Some(proxy) = config.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        check_proxy_url(proxy).map_err(|reason| ClientError::ReadConfig {
            server: server(),
            field: "proxyUrl",
            reason: reason.to_owned(),
        })?;
        kube_cluster.insert("proxy-url".into(), json!(proxy));
    }
    if config.disable_compression {
        kube_cluster.insert("disable-compression".into(), json!(true));
    }

    let mut user = Map::new();
    insert_some(
        &mut user,
        "client-certificate-data",
        tls.cert_data.as_deref(),
    );
    if let Some(key) = &tls.key_data {
        user.insert("client-key-data".into(), json!(key.expose()));
    }
    // As Argo CD: AWS auth first, then a generic plugin, else the static credentials.
    let exec = match (&config.aws_auth_config, &config.exec_provider_config) {
        (Some(aws), _) => Some(("awsAuthConfig", aws_exec(aws, &server)?)),
        (None, Some(exec)) => Some(("execProviderConfig", plugin_exec(exec))),
        (None, None) => None,
    };
    match exec {
        Some((field, _)) if !allow_exec_plugins => {
            return Err(ClientError::ExecRefused {
                server: server(),
                field,
            });
        }
        Some((_, exec)) => {
            user.insert("exec".into(), exec);
        }
        None => {
            insert_some(&mut user, "username", config.username.as_deref());
            if let Some(password) = &config.password {
                user.insert("password".into(), json!(password.expose()));
            }
            if let Some(token) = &config.bearer_token {
                // kube (tower-http) panics on a token that is not a valid header value.
                if http::HeaderValue::from_str(&format!("Bearer {}", token.expose())).is_err() {
                    return Err(ClientError::ReadConfig {
                        server: server(),
                        field: "bearerToken",
                        reason: "not a valid HTTP header value (a stray newline?)".to_owned(),
                    });
                }
                user.insert("token".into(), json!(token.expose()));
            }
        }
    }

    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "destination", "cluster": kube_cluster }],
        "users": [{ "name": "argosy", "user": user }],
        "contexts": [{ "name": "destination", "context": { "cluster": "destination", "user": "argosy" } }],
        "current-context": "destination",
    });
    // Only strings and booleans of the right shape go in, so this does not fail; should it,
    // serde's message could quote a credential, hence the category only.
    serde_json::from_value(doc).map_err(|e| ClientError::BuildClient {
        server: server(),
        reason: format!("kubeconfig rejected ({:?} error)", e.classify()),
    })
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), json!(value));
    }
}

/// Only HTTP(S) CONNECT proxies are built in. The URL itself is never quoted: it may carry
/// a password.
fn check_proxy_url(proxy: &str) -> Result<(), &'static str> {
    let uri: http::Uri = proxy.parse().map_err(|_| "not a valid URL")?;
    match uri.scheme_str() {
        Some("http" | "https") => Ok(()),
        _ => Err("only http:// and https:// proxies are supported"),
    }
}

/// Argo CD's `awsAuthConfig`: `argocd-k8s-auth aws --cluster-name .. [--role-arn ..] [--profile ..]`.
fn aws_exec(aws: &Value, server: &dyn Fn() -> String) -> Result<Value, ClientError> {
    let field = |name: &str| {
        aws.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let cluster_name = field("clusterName").ok_or_else(|| ClientError::ReadConfig {
        server: server(),
        field: "awsAuthConfig",
        reason: "clusterName is missing".to_owned(),
    })?;
    let mut args = vec!["aws", "--cluster-name", cluster_name];
    for (flag, name) in [("--role-arn", "roleARN"), ("--profile", "profile")] {
        if let Some(value) = field(name) {
            args.extend([flag, value]);
        }
    }
    Ok(json!({
        "apiVersion": EXEC_API_VERSION,
        "command": AWS_AUTH_COMMAND,
        "args": args,
        "interactiveMode": "Never",
    }))
}

/// Argo CD's `execProviderConfig`, as a kubeconfig `exec` section.
fn plugin_exec(exec: &ExecProviderConfig) -> Value {
    let api_version = if exec.api_version.is_empty() {
        EXEC_API_VERSION
    } else {
        &exec.api_version
    };
    let env: Vec<Value> = exec
        .env
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value.expose() }))
        .collect();
    let mut section = json!({
        "apiVersion": api_version,
        "command": exec.command,
        "args": exec.args,
        "env": env,
        "interactiveMode": "Never",
    });
    if !exec.install_hint.is_empty() {
        section["installHint"] = json!(exec.install_hint);
    }
    section
}

/// Blanks a cluster's credentials out of messages.
#[derive(Clone)]
struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.secrets.len())
    }
}

impl Redactor {
    fn new(config: &ClusterConfig) -> Self {
        let mut secrets: Vec<String> = [
            config.bearer_token.as_ref(),
            config.password.as_ref(),
            config.tls_client_config.key_data.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(
            config
                .exec_provider_config
                .iter()
                .flat_map(|e| e.env.values()),
        )
        .map(|s| s.expose().to_owned())
        .filter(|s| !s.trim().is_empty())
        .collect();
        // Longest first, so a secret containing another is blanked as a whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` without credentials and without a credential plugin's output.
    fn apply(&self, text: &str) -> String {
        const PARSE_FAILED: &str = "failed to parse auth exec output";
        // kube quotes a failed plugin's whole output (`: Output { status, stdout, .. }`) and
        // serde's view of an unparsable one; stdout is where plugins print credentials.
        let mut text = text.to_owned();
        if let Some(at) = text.find(": Output {") {
            text.truncate(at);
            text.push_str(PLUGIN_OUTPUT_WITHHELD);
        }
        if let Some(at) = text.find(PARSE_FAILED) {
            text.truncate(at + PARSE_FAILED.len());
            text.push_str(PLUGIN_OUTPUT_WITHHELD);
        }
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), REDACTED);
        }
        text
    }

    /// A failed kube request or client build, described without credentials.
    fn failure(&self, e: &kube::Error) -> RequestFailure {
        let (code, category, reason) = match e {
            kube::Error::Api(status) => (
                Some(status.code),
                if matches!(status.code, 401 | 403) {
                    "ClusterUnauthorized"
                } else {
                    "ClusterRequestFailed"
                },
                format!("{} {}: {}", status.code, status.reason, status.message),
            ),
            kube::Error::Auth(kube::client::AuthError::AuthExecRun { cmd, out }) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                (
                    None,
                    "ClusterUnauthorized",
                    format!(
                        "credential plugin {cmd} failed ({}){}",
                        out.status,
                        last.map(|l| format!(": {}", truncate(l.trim(), 300)))
                            .unwrap_or_default()
                    ),
                )
            }
            kube::Error::Auth(_) => (None, "ClusterUnauthorized", error_chain(e)),
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                (None, "ClusterUnreachable", error_chain(e))
            }
            _ => (None, "ClusterRequestFailed", error_chain(e)),
        };
        RequestFailure {
            code,
            category,
            reason: self.apply(&reason),
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

/// An error and its sources, each once (many errors repeat their source in their message).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use argosy_crds::cluster::ClusterConfig;
    use base64::Engine as _;

    const TOKEN: &str = "tok-3f9a1c77e2";
    const PASSWORD: &str = "pw-8d0e5b21aa";
    const KEY: &str = "key-77c1d0b9e4";
    const ENV_SECRET: &str = "env-5a2f90c3d1";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn cluster(config: Value) -> Cluster {
        Cluster {
            name: "prod".into(),
            server: "https://prod.example.com:6443".into(),
            config: serde_json::from_value::<ClusterConfig>(config).unwrap(),
            ..Cluster::default()
        }
    }

    fn assert_no_secret(text: &str) {
        for secret in [TOKEN, PASSWORD, KEY, ENV_SECRET] {
            assert!(!text.contains(secret), "secret leaked: {text}");
        }
    }

    fn assert_error_clean(e: &ClientError) {
        assert_no_secret(&e.to_string());
        assert_no_secret(&format!("{e:?}"));
    }

    async fn configs(
        c: &Cluster,
        allow_exec: bool,
    ) -> Result<(kube::Config, kube::Config), ClientError> {
        client_configs(
            c,
            allow_exec,
            &Redactor::new(&c.config),
            &http::HeaderValue::from_static(USER_AGENT),
        )
        .await
    }

    fn user_of(c: &Cluster, allow_exec: bool) -> Value {
        let kc = kubeconfig(c, allow_exec).unwrap();
        serde_json::to_value(kc.auth_infos[0].auth_info.as_ref().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn bearer_token_with_ca_user_agent_and_timeouts() {
        let ca = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        let c = cluster(json!({
            "bearerToken": TOKEN,
            "tlsClientConfig": { "caData": b64(ca) },
        }));
        assert_eq!(user_of(&c, false)["token"], TOKEN);
        let (request, watch) = configs(&c, false).await.unwrap();
        assert_eq!(
            request.cluster_url.to_string(),
            "https://prod.example.com:6443/"
        );
        assert_eq!(request.root_cert, Some(vec![vec![1, 2, 3]]));
        assert!(!request.accept_invalid_certs);
        assert!(request.auth_info.token.is_some());
        assert!(request.auth_info.username.is_none());
        assert!(
            request
                .headers
                .iter()
                .any(|(k, v)| k == http::header::USER_AGENT && v == USER_AGENT)
        );
        assert_eq!(request.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(request.read_timeout, Some(REQUEST_TIMEOUT));
        assert_eq!(watch.read_timeout, None, "watches are silent for minutes");
        assert_eq!(watch.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(watch.headers, request.headers);
        assert_no_secret(&format!("{request:?}"));
    }

    #[tokio::test]
    async fn basic_auth() {
        let c = cluster(json!({ "username": "alice", "password": PASSWORD }));
        let user = user_of(&c, false);
        assert_eq!(user["username"], "alice");
        assert_eq!(user["password"], PASSWORD);
        let (request, _) = configs(&c, false).await.unwrap();
        assert_eq!(request.auth_info.username.as_deref(), Some("alice"));
        assert!(request.auth_info.password.is_some());
        assert!(request.auth_info.token.is_none());
    }

    #[tokio::test]
    async fn client_certificate_insecure_server_name_and_proxy() {
        let c = cluster(json!({
            "tlsClientConfig": {
                "insecure": true,
                "serverName": "api.internal",
                "certData": b64("CERT PEM"),
                "keyData": b64(KEY),
            },
            "proxyUrl": "http://proxy.example.com:3128",
            "disableCompression": true,
        }));
        let user = user_of(&c, false);
        assert_eq!(user["client-certificate-data"], b64("CERT PEM"));
        assert_eq!(user["client-key-data"], b64(KEY));
        let (request, _) = configs(&c, false).await.unwrap();
        assert!(request.accept_invalid_certs);
        assert_eq!(request.tls_server_name.as_deref(), Some("api.internal"));
        assert_eq!(
            request.proxy_url.map(|u| u.to_string()).as_deref(),
            Some("http://proxy.example.com:3128/")
        );
        assert!(request.disable_compression);
        assert_eq!(
            request.auth_info.client_certificate_data,
            Some(b64("CERT PEM"))
        );
    }

    #[tokio::test]
    async fn unsupported_proxy_is_refused_without_quoting_it() {
        let c = cluster(json!({ "proxyUrl": format!("socks5://u:{PASSWORD}@proxy:1080") }));
        let e = configs(&c, false).await.unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::ReadConfig {
                    field: "proxyUrl",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.category(), "InvalidClusterConfig");
        assert_error_clean(&e);
    }

    #[tokio::test]
    async fn credentials_kube_cannot_use_fail_without_leaking() {
        // A token with a newline is not a valid header value.
        let c = cluster(json!({ "bearerToken": format!("{TOKEN}\n") }));
        let redactor = Redactor::new(&c.config);
        let e = build_clients(
            &c,
            false,
            &redactor,
            &http::HeaderValue::from_static(USER_AGENT),
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(
                e,
                ClientError::ReadConfig {
                    field: "bearerToken",
                    ..
                }
            ),
            "{e}"
        );
        assert_error_clean(&e);

        // A client key without its certificate.
        let c = cluster(json!({ "tlsClientConfig": { "keyData": b64(KEY) } }));
        let e = build_clients(
            &c,
            false,
            &Redactor::new(&c.config),
            &http::HeaderValue::from_static(USER_AGENT),
        )
        .await
        .err()
        .unwrap();
        assert!(e.to_string().contains("building the client"), "{e}");
        assert_eq!(e.category(), "ClusterClientError");
        assert_error_clean(&e);
    }

    fn exec_cluster() -> Cluster {
        cluster(json!({
            "bearerToken": TOKEN,
            "execProviderConfig": {
                "command": "my-plugin",
                "args": ["token", "--cluster", "prod"],
                "env": { "PLUGIN_SECRET": ENV_SECRET },
                "installHint": "install my-plugin",
            },
        }))
    }

    #[test]
    fn credential_plugins_are_refused_by_default() {
        let e = kubeconfig(&exec_cluster(), false).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::ExecRefused {
                    field: "execProviderConfig",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("https://prod.example.com:6443"),
            "{e}"
        );
        assert_eq!(e.category(), "ExecPluginRefused");
        assert_error_clean(&e);

        let aws = cluster(json!({ "awsAuthConfig": { "clusterName": "eks-1" } }));
        let e = kubeconfig(&aws, false).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::ExecRefused {
                    field: "awsAuthConfig",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn allowed_plugins_become_kubeconfig_exec() {
        let user = user_of(&exec_cluster(), true);
        let exec = &user["exec"];
        assert_eq!(exec["command"], "my-plugin");
        assert_eq!(exec["args"], json!(["token", "--cluster", "prod"]));
        assert_eq!(
            exec["env"],
            json!([{ "name": "PLUGIN_SECRET", "value": ENV_SECRET }])
        );
        assert_eq!(exec["apiVersion"], EXEC_API_VERSION);
        assert_eq!(exec["interactiveMode"], "Never");
        assert_eq!(exec["installHint"], "install my-plugin");
        assert!(
            user.get("token").is_none(),
            "the plugin supplies credentials"
        );

        let aws = cluster(json!({
            "awsAuthConfig": { "clusterName": "eks-1", "roleARN": "arn:aws:iam::1:role/r" },
        }));
        let exec = &user_of(&aws, true)["exec"];
        assert_eq!(exec["command"], AWS_AUTH_COMMAND);
        assert_eq!(
            exec["args"],
            json!([
                "aws",
                "--cluster-name",
                "eks-1",
                "--role-arn",
                "arn:aws:iam::1:role/r"
            ])
        );

        let e = kubeconfig(&cluster(json!({ "awsAuthConfig": {} })), true).unwrap_err();
        assert!(e.to_string().contains("clusterName is missing"), "{e}");
    }

    #[tokio::test]
    async fn missing_plugin_fails_without_leaking() {
        let mut c = exec_cluster();
        if let Some(exec) = c.config.exec_provider_config.as_mut() {
            exec.command = "/nonexistent/argosy-test-plugin".into();
        }
        let e = build_clients(
            &c,
            true,
            &Redactor::new(&c.config),
            &http::HeaderValue::from_static(USER_AGENT),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, ClientError::BuildClient { .. }), "{e}");
        assert_error_clean(&e);
    }

    fn in_cluster_client() -> kube::Client {
        let mut config = kube::Config::new("https://10.0.0.1:443".parse().unwrap());
        config.default_namespace = "argosy-system".into();
        kube::Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn in_cluster_uses_the_controllers_client() {
        let clients = ClusterClients::new(in_cluster_client(), false);
        let mut c = Cluster::in_cluster();
        // Credentials (even a plugin) in an in-cluster Secret are not used.
        c.config = exec_cluster().config;
        let conn = clients.connect(&c).await.unwrap();
        assert_eq!(conn.server, "https://kubernetes.default.svc");
        assert_eq!(conn.client.default_namespace(), "argosy-system");
        assert_eq!(conn.watch_client.default_namespace(), "argosy-system");
    }

    #[tokio::test]
    async fn clients_are_cached_until_the_secret_changes() {
        let clients = ClusterClients::new(in_cluster_client(), false);
        let c = cluster(json!({ "bearerToken": TOKEN }));
        let first = clients.connect(&c).await.unwrap();
        first.record_error(&format!("request with {TOKEN} failed"));

        let mut relabelled = c.clone();
        relabelled.labels.insert("tier".into(), "gold".into());
        let same = clients.connect(&relabelled).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &same),
            "labels do not affect the client"
        );

        let mut rotated = c.clone();
        rotated.config = cluster(json!({ "bearerToken": "rotated" })).config;
        let second = clients.connect(&rotated).await.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a new token makes a new client"
        );
        let states = clients.states();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].0, "https://prod.example.com:6443");
        assert_eq!(
            states[0].1.last_error.as_deref(),
            Some("request with <redacted> failed"),
            "state survives the rebuild, and is redacted"
        );

        // A failed build is recorded too.
        let mut refused = exec_cluster();
        refused.server = "https://other:6443".into();
        let e = clients.connect(&refused).await.err().unwrap();
        let states = clients.states();
        assert_eq!(states[0].0, "https://other:6443");
        assert_eq!(states[0].1.last_error, Some(e.to_string()));
        assert!(states[0].1.last_error_at.is_some());

        second.record_success();
        let state = &clients.states()[1].1;
        assert!(state.last_success.is_some());
        assert_eq!(state.last_error, None);
    }

    #[test]
    fn api_versions() {
        let ok = |s: &str| {
            parse_api_version(s)
                .map(|gv| (gv.group, gv.version))
                .unwrap()
        };
        assert_eq!(ok("v1"), (String::new(), "v1".into()));
        assert_eq!(ok("apps/v1"), ("apps".into(), "v1".into()));
        for bad in ["", "/v1", "apps/", "a/b/c", "apps/v1/"] {
            let e = parse_api_version(bad).unwrap_err();
            assert_eq!(e.category(), "InvalidApiVersion", "{bad}");
        }
    }

    #[test]
    fn kube_versions_are_read_as_helm_reads_them() {
        assert_eq!(semantic_kube_version("v1.20.2"), "1.20.2");
        assert_eq!(semantic_kube_version("v1.30.4+k3s1"), "1.30.4");
        assert_eq!(semantic_kube_version("v1.29.1-eks-508b6b3"), "1.29.1");
        assert_eq!(semantic_kube_version(""), "");
    }

    #[test]
    fn discovery_cache_hits_and_negative_ttl() {
        let mut cache = DiscoveryCache::default();
        let t0 = Instant::now();
        assert!(matches!(
            cache.lookup("apps/v1", "Deployment", t0),
            Lookup::Stale
        ));
        let deployment = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        cache.store(
            "apps/v1",
            HashMap::from([(
                "Deployment".to_owned(),
                (deployment.clone(), Scope::Namespaced),
            )]),
            t0,
        );
        let later = t0 + NEGATIVE_DISCOVERY_TTL * 100;
        match cache.lookup("apps/v1", "Deployment", later) {
            Lookup::Found((r, Scope::Namespaced)) => assert_eq!(r, deployment),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cache.lookup("apps/v1", "Widget", t0 + Duration::from_secs(1)),
            Lookup::NotServed
        ));
        assert!(matches!(
            cache.lookup("apps/v1", "Widget", t0 + NEGATIVE_DISCOVERY_TTL),
            Lookup::Stale
        ));
        assert!(matches!(cache.lookup("batch/v1", "Job", t0), Lookup::Stale));
    }

    #[test]
    fn redaction() {
        let r = Redactor::new(&exec_cluster().config);
        assert_eq!(
            r.apply(&format!("bad {TOKEN} and {ENV_SECRET}")),
            "bad <redacted> and <redacted>"
        );
        let kube_text = r#"auth error: auth exec command 'p' failed with status exit status: 1: Output { status: 1, stdout: "{\"token\":\"minted\"}", stderr: "" }"#;
        assert_eq!(
            r.apply(kube_text),
            "auth error: auth exec command 'p' failed with status exit status: 1 (plugin output withheld)"
        );
        assert_eq!(
            r.apply("failed to parse auth exec output: at line 1 near `minted`"),
            "failed to parse auth exec output (plugin output withheld)"
        );
    }

    #[test]
    fn request_failures_are_categorised() {
        let r = Redactor::new(&ClusterConfig::default());
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(
                serde_json::from_value(json!({
                    "status": "Failure", "code": code, "reason": reason, "message": reason,
                }))
                .unwrap(),
            ))
        };
        let f = r.failure(&status(401, "Unauthorized"));
        assert_eq!((f.code, f.category), (Some(401), "ClusterUnauthorized"));
        assert_eq!(f.to_string(), "401 Unauthorized: Unauthorized");
        let f = r.failure(&status(500, "InternalError"));
        assert_eq!(f.category, "ClusterRequestFailed");
        let e = ClientError::Discovery {
            server: "s".into(),
            api_version: "v1".into(),
            failure: r.failure(&status(403, "Forbidden")),
        };
        assert_eq!(e.category(), "ClusterUnauthorized");
    }
}
