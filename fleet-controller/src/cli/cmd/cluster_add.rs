//! `argosy cluster add CONTEXT`: registers the cluster of a kubeconfig context with the
//! fleet, as `argocd cluster add` does.
//!
//! On the target cluster (the context's credentials) it creates the ServiceAccount
//! `kube-system/argosy-manager`, a ClusterRole with every verb on every resource and
//! non-resource URL, and its binding (Argo CD's `argocd-manager` has the same rights: the
//! sync engine applies whatever Git holds, CRDs and namespaces included). Then it mints a
//! token for the ServiceAccount with the TokenRequest API (`serviceaccounts/NAME/token`)
//! and writes an Argo CD cluster Secret (`name`, `server`, `config` with `bearerToken` and
//! `tlsClientConfig.caData`) on the management cluster, and checks the Secret works by
//! reading the target's `/version` with exactly the client the sync engine would build.
//!
//! Why TokenRequest and not a `kubernetes.io/service-account-token` Secret: a legacy token
//! Secret is filled in by the controller-manager's token controller, so it stays empty on an
//! API server without one (the test control plane runs none) and is being phased out since
//! Kubernetes 1.24; TokenRequest is answered by the API server itself (on 1.20 it needs
//! `--service-account-issuer` and a signing key, which every kubeadm/managed cluster sets).
//! The price: the token expires (`--token-days`, default 365); `argosy cluster add CONTEXT
//! --upsert` mints a new one. Re-running is always safe: every object is server-side
//! applied.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argosy_crds::cluster::{Cluster, secret_id};
use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::server_key;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;

use argosy_sync_engine::clients::ClusterClients;

/// Namespace of the ServiceAccount created on the target (as Argo CD's `argocd-manager`).
pub const MANAGER_NAMESPACE: &str = "kube-system";
/// ServiceAccount whose token the cluster Secret carries.
pub const MANAGER_NAME: &str = "argosy-manager";
/// Its ClusterRole (every verb on everything, like `argocd-manager-role`).
pub const MANAGER_ROLE: &str = "argosy-manager-role";
/// Binding of [`MANAGER_ROLE`] to [`MANAGER_NAME`].
pub const MANAGER_ROLE_BINDING: &str = "argosy-manager-role-binding";
/// Field manager of everything `cluster add` applies.
const FIELD_MANAGER: &str = "argosy-cli";

/// Flags of `argosy cluster add`.
#[derive(Debug, Clone, clap::Args)]
pub struct AddFlags {
    /// Kubeconfig context of the cluster to add.
    pub context: String,
    /// Name of the cluster in the fleet (default: the context name).
    #[arg(long)]
    pub name: Option<String>,
    /// Label of the cluster Secret, `KEY=VALUE` (repeatable; Cluster generators select on them).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the management cluster, where the Secret is written (default: the
    /// kubeconfig's current context).
    #[arg(long)]
    pub mgmt_context: Option<String>,
    /// Update the cluster Secret if the cluster is registered already (and mint a new token).
    #[arg(long)]
    pub upsert: bool,
    /// Lifetime of the ServiceAccount token, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    pub token_days: u32,
}

/// `KEY=VALUE`, both sides as given (the API server validates label syntax).
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Why `cluster add` failed. Messages name the context, object or file, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("reading kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("context {context} is not in kubeconfig {path}")]
    UnknownContext { context: String, path: String },
    #[error("the kubeconfig has no current context; pass --mgmt-context")]
    NoCurrentContext,
    #[error("context {context}: cluster {cluster} has no server")]
    NoServer { context: String, cluster: String },
    #[error("context {context}: reading certificate-authority {path}: {error}")]
    CaFile {
        context: String,
        path: String,
        error: std::io::Error,
    },
    #[error("context {context}: building a client: {reason}")]
    Client { context: String, reason: String },
    #[error("listing cluster Secrets in namespace {namespace}: {error}")]
    ListSecrets {
        namespace: String,
        error: kube::Error,
    },
    #[error(
        "cluster {server} is already registered as Secret {secret}; pass --upsert to update it"
    )]
    Exists { server: String, secret: String },
    #[error(
        "cluster {server} (name {name}) matches several cluster Secrets ({secrets}); remove the extra ones first"
    )]
    Ambiguous {
        server: String,
        name: String,
        secrets: String,
    },
    #[error("context {context}: applying {object}: {error}")]
    Apply {
        context: String,
        object: String,
        error: kube::Error,
    },
    #[error(
        "context {context}: requesting a token for ServiceAccount {MANAGER_NAMESPACE}/{MANAGER_NAME}: {error} (the TokenRequest API needs kube-apiserver's --service-account-issuer and --service-account-signing-key-file)"
    )]
    Token { context: String, error: kube::Error },
    #[error(
        "context {context}: the TokenRequest for ServiceAccount {MANAGER_NAMESPACE}/{MANAGER_NAME} returned no token"
    )]
    EmptyToken { context: String },
    #[error("writing cluster Secret {secret}: {error}")]
    WriteSecret { secret: String, error: kube::Error },
    #[error("cluster Secret {secret} was written but does not work: {reason}")]
    Verify { secret: String, reason: String },
}

impl AddError {
    pub fn category(&self) -> &'static str {
        match self {
            AddError::Kubeconfig { .. } => "kubeconfig",
            AddError::UnknownContext { .. } => "unknown_context",
            AddError::NoCurrentContext => "no_current_context",
            AddError::NoServer { .. } => "no_server",
            AddError::CaFile { .. } => "ca_file",
            AddError::Client { .. } => "client",
            AddError::ListSecrets { .. } => "list_secrets",
            AddError::Exists { .. } => "exists",
            AddError::Ambiguous { .. } => "ambiguous",
            AddError::Apply { .. } => "apply",
            AddError::Token { .. } => "token",
            AddError::EmptyToken { .. } => "empty_token",
            AddError::WriteSecret { .. } => "write_secret",
            AddError::Verify { .. } => "verify",
        }
    }
}

/// What `cluster add` registered (printed with `-o yaml|json`; holds no credential).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registered {
    /// `namespace/name` of the cluster Secret.
    pub secret: String,
    pub name: String,
    pub server: String,
    pub labels: BTreeMap<String, String>,
    /// The target's `gitVersion`, read with the Secret's credentials.
    pub version: String,
    /// True when an existing Secret was updated (`--upsert`).
    pub updated: bool,
}

/// Where and how to reach a kubeconfig context's API server, as a cluster Secret says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub server: String,
    /// Base64 PEM (`certificate-authority-data`, or the `certificate-authority` file).
    pub ca_data: Option<String>,
    pub insecure: bool,
    pub server_name: Option<String>,
}

/// The endpoint of `context` in `kubeconfig` (`certificate-authority` files are read).
pub fn endpoint(kubeconfig: &Kubeconfig, context: &str, path: &str) -> Result<Endpoint, AddError> {
    let unknown = || AddError::UnknownContext {
        context: context.to_owned(),
        path: path.to_owned(),
    };
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(unknown)?;
    let no_server = || AddError::NoServer {
        context: context.to_owned(),
        cluster: cluster_name.clone(),
    };
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(no_server)?;
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(no_server)?;
    let ca_data = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.is_empty() => Some(data.clone()),
        (_, Some(file)) if !file.is_empty() => {
            let pem = std::fs::read(file).map_err(|error| AddError::CaFile {
                context: context.to_owned(),
                path: file.clone(),
                error,
            })?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        _ => None,
    };
    Ok(Endpoint {
        server,
        ca_data,
        insecure: cluster.insecure_skip_tls_verify == Some(true),
        server_name: cluster.tls_server_name.clone(),
    })
}

/// The `config` JSON of the cluster Secret: the token and how to verify the server.
pub fn secret_config(endpoint: &Endpoint, token: &str) -> serde_json::Value {
    let mut tls = json!({"insecure": endpoint.insecure});
    if let Some(ca) = &endpoint.ca_data {
        tls["caData"] = json!(ca);
    }
    if let Some(name) = &endpoint.server_name {
        tls["serverName"] = json!(name);
    }
    json!({"bearerToken": token, "tlsClientConfig": tls})
}

/// `cluster-NAME`, NAME lowercased with anything outside `[a-z0-9.-]` turned into `-` (a
/// context name such as `arn:aws:eks:...:cluster/prod` is no object name).
pub fn secret_name(cluster_name: &str) -> String {
    let cleaned: String = cluster_name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = format!("cluster-{}", cleaned.trim_matches(['-', '.']));
    let name = name.get(..253).unwrap_or(&name);
    name.trim_end_matches(['-', '.']).to_owned()
}

/// The Secret to write: `matching` are the existing cluster Secrets with this server, this
/// name or this Secret name. Returns the Secret name and whether it exists.
pub fn target_secret(
    wanted: &str,
    server: &str,
    name: &str,
    matching: &[String],
    upsert: bool,
) -> Result<(String, bool), AddError> {
    match matching {
        [] => Ok((wanted.to_owned(), false)),
        [one] if upsert => Ok((
            one.rsplit_once('/')
                .map_or(one.as_str(), |(_, n)| n)
                .to_owned(),
            true,
        )),
        [one] => Err(AddError::Exists {
            server: server.to_owned(),
            secret: one.clone(),
        }),
        many => Err(AddError::Ambiguous {
            server: server.to_owned(),
            name: name.to_owned(),
            secrets: many.join(", "),
        }),
    }
}

/// Prints `doing...` and then `ok`/`failed` on the progress stream (stderr). A progress
/// line that cannot be written is not worth failing the command for.
pub(crate) struct Progress<'a> {
    pub(crate) out: &'a mut dyn Write,
}

impl Progress<'_> {
    pub(crate) async fn step<T, E>(
        &mut self,
        what: &str,
        work: impl Future<Output = Result<T, E>>,
        done: impl Fn(&T) -> String,
    ) -> Result<T, E> {
        let _ = write!(self.out, "{what}... ").and_then(|()| self.out.flush());
        let result = work.await;
        let _ = match &result {
            Ok(value) => writeln!(self.out, "{}", done(value)),
            Err(_) => writeln!(self.out, "failed"),
        };
        result
    }
}

/// The management cluster's context: `wanted` (`--mgmt-context`), else the kubeconfig's
/// current context; it must exist in `kubeconfig` (read from `path`).
pub(crate) fn management_context(
    kubeconfig: &Kubeconfig,
    wanted: Option<&str>,
    path: &str,
) -> Result<String, AddError> {
    let context = wanted
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or(AddError::NoCurrentContext)?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Err(AddError::UnknownContext {
            context,
            path: path.to_owned(),
        });
    }
    Ok(context)
}

fn ok<T>(_: &T) -> String {
    "ok".to_owned()
}

/// A client for `context` of `kubeconfig`.
pub(crate) async fn client_for(kubeconfig: &Kubeconfig, context: &str) -> Result<Client, AddError> {
    let failed = |reason: String| AddError::Client {
        context: context.to_owned(),
        reason,
    };
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| failed(e.to_string()))?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(crate::run::USER_AGENT),
    ));
    Client::try_from(config).map_err(|e| failed(e.to_string()))
}

pub(crate) fn read_kubeconfig(path: Option<&Path>) -> Result<(Kubeconfig, String), AddError> {
    let shown = match path {
        Some(p) => p.display().to_string(),
        None => std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".to_owned()),
    };
    let read = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    };
    read.map(|k| (k, shown.clone()))
        .map_err(|e| AddError::Kubeconfig {
            path: shown,
            reason: e.to_string(),
        })
}

/// Runs `argosy cluster add`: progress lines go to `progress`; the cluster Secret is written
/// in `namespace` of the management cluster.
pub async fn add(
    flags: &AddFlags,
    namespace: &str,
    progress: &mut dyn Write,
) -> Result<Registered, AddError> {
    let mut progress = Progress { out: progress };
    let (kubeconfig, path) = read_kubeconfig(flags.kubeconfig.as_deref())?;
    let context = flags.context.as_str();
    let endpoint = endpoint(&kubeconfig, context, &path)?;
    let name = flags.name.clone().unwrap_or_else(|| context.to_owned());
    let mgmt_context = management_context(&kubeconfig, flags.mgmt_context.as_deref(), &path)?;
    let target = client_for(&kubeconfig, context).await?;
    let mgmt = client_for(&kubeconfig, &mgmt_context).await?;

    // Refuse before touching the target: an existing registration needs --upsert.
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), namespace);
    let existing = secrets
        .list(&ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}")))
        .await
        .map_err(|error| AddError::ListSecrets {
            namespace: namespace.to_owned(),
            error,
        })?;
    let wanted = secret_name(&name);
    let same_server = |s: &str| server_key(s) == server_key(&endpoint.server);
    let matching: Vec<String> = existing
        .items
        .iter()
        .filter(|s| {
            s.metadata.name.as_deref() == Some(wanted.as_str())
                || Cluster::from_secret(s).is_ok_and(|c| same_server(&c.server) || c.name == name)
        })
        .map(secret_id)
        .collect();
    let (secret, updated) =
        target_secret(&wanted, &endpoint.server, &name, &matching, flags.upsert)?;

    let params = PatchParams::apply(FIELD_MANAGER).force();
    let apply_failed = |object: String| {
        let context = context.to_owned();
        move |error| AddError::Apply {
            context,
            object,
            error,
        }
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(target.clone(), MANAGER_NAMESPACE);
    let account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": MANAGER_NAME, "namespace": MANAGER_NAMESPACE},
    });
    let what = format!("ServiceAccount {MANAGER_NAMESPACE}/{MANAGER_NAME}");
    progress
        .step(
            &format!("creating {what} on {context}"),
            async {
                accounts
                    .patch(MANAGER_NAME, &params, &Patch::Apply(&account))
                    .await
                    .map_err(apply_failed(what.clone()))
            },
            ok,
        )
        .await?;
    let roles: Api<ClusterRole> = Api::all(target.clone());
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": MANAGER_ROLE},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    });
    progress
        .step(
            &format!("creating ClusterRole {MANAGER_ROLE}"),
            async {
                roles
                    .patch(MANAGER_ROLE, &params, &Patch::Apply(&role))
                    .await
                    .map_err(apply_failed(format!("ClusterRole {MANAGER_ROLE}")))
            },
            ok,
        )
        .await?;
    let bindings: Api<ClusterRoleBinding> = Api::all(target.clone());
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": MANAGER_ROLE_BINDING},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": MANAGER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": MANAGER_NAME, "namespace": MANAGER_NAMESPACE}],
    });
    progress
        .step(
            &format!("creating ClusterRoleBinding {MANAGER_ROLE_BINDING}"),
            async {
                bindings
                    .patch(MANAGER_ROLE_BINDING, &params, &Patch::Apply(&binding))
                    .await
                    .map_err(apply_failed(format!(
                        "ClusterRoleBinding {MANAGER_ROLE_BINDING}"
                    )))
            },
            ok,
        )
        .await?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            // Empty: the API server's own audiences, which it accepts for API requests.
            audiences: Vec::new(),
            expiration_seconds: Some(i64::from(flags.token_days) * 86_400),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let token = progress
        .step(
            &format!(
                "requesting a token for ServiceAccount {MANAGER_NAMESPACE}/{MANAGER_NAME} ({} days)",
                flags.token_days
            ),
            async {
                let response = accounts
                    .create_token_request(MANAGER_NAME, &PostParams::default(), &request)
                    .await
                    .map_err(|error| AddError::Token {
                        context: context.to_owned(),
                        error,
                    })?;
                response
                    .status
                    .map(|s| s.token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| AddError::EmptyToken {
                        context: context.to_owned(),
                    })
            },
            ok,
        )
        .await?;

    let mut labels: BTreeMap<String, String> = flags.labels.iter().cloned().collect();
    labels.insert(SECRET_TYPE_LABEL.to_owned(), SECRET_TYPE_CLUSTER.to_owned());
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let config = secret_config(&endpoint, &token).to_string();
    let body = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": secret, "namespace": namespace, "labels": labels},
        "data": {
            "name": bytes(&name),
            "server": bytes(&endpoint.server),
            "config": bytes(&config),
        },
    });
    let id = format!("{namespace}/{secret}");
    let written = progress
        .step(
            &format!(
                "{} cluster Secret {id} on {mgmt_context}",
                if updated { "updating" } else { "creating" }
            ),
            async {
                secrets
                    .patch(&secret, &params, &Patch::Apply(&body))
                    .await
                    .map_err(|error| AddError::WriteSecret {
                        secret: id.clone(),
                        error,
                    })
            },
            ok,
        )
        .await?;

    // The sync engine's own client construction, so "works here" means "works there".
    let version = progress
        .step(
            &format!(
                "checking the Secret's credentials against {}",
                endpoint.server
            ),
            async {
                let verify = |reason: String| AddError::Verify {
                    secret: id.clone(),
                    reason,
                };
                let cluster = Cluster::from_secret(&written).map_err(|e| verify(e.to_string()))?;
                let clients = ClusterClients::new(mgmt.clone(), false);
                let conn = clients
                    .connect(&cluster)
                    .await
                    .map_err(|e| verify(e.to_string()))?;
                conn.server_version()
                    .await
                    .map_err(|e| verify(e.to_string()))
            },
            |version| format!("ok ({version})"),
        )
        .await?;
    Ok(Registered {
        secret: id,
        name,
        server: endpoint.server,
        labels,
        version,
        updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443", certificate-authority-data: UEVN, tls-server-name: api.prod}
- name: lab
  cluster: {server: "https://lab.example", insecure-skip-tls-verify: true}
- name: empty
  cluster: {}
contexts:
- name: prod-admin
  context: {cluster: prod, user: u}
- name: lab
  context: {cluster: lab, user: u}
- name: broken
  context: {cluster: empty, user: u}
users:
- name: u
  user: {token: t}
current-context: prod-admin
"#;

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(KUBECONFIG).unwrap()
    }

    #[test]
    fn endpoint_carries_server_ca_and_tls_settings() {
        let prod = endpoint(&kubeconfig(), "prod-admin", "kc").unwrap();
        assert_eq!(
            prod,
            Endpoint {
                server: "https://prod.example:6443".into(),
                ca_data: Some("UEVN".into()),
                insecure: false,
                server_name: Some("api.prod".into()),
            }
        );
        assert_eq!(
            secret_config(&prod, "tok"),
            json!({"bearerToken": "tok",
                   "tlsClientConfig": {"insecure": false, "caData": "UEVN", "serverName": "api.prod"}})
        );
        let lab = endpoint(&kubeconfig(), "lab", "kc").unwrap();
        assert!(lab.insecure && lab.ca_data.is_none());
        assert_eq!(
            secret_config(&lab, "tok")["tlsClientConfig"],
            json!({"insecure": true})
        );
    }

    #[test]
    fn endpoint_reads_the_ca_file_and_names_bad_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "PEM").unwrap();
        let mut kc = kubeconfig();
        let cluster = kc.clusters[0].cluster.as_mut().unwrap();
        cluster.certificate_authority_data = None;
        cluster.certificate_authority = Some(ca.display().to_string());
        let prod = endpoint(&kc, "prod-admin", "kc").unwrap();
        assert_eq!(prod.ca_data.as_deref(), Some("UEVN"));
        assert_eq!(
            endpoint(&kc, "nope", "/tmp/kc").unwrap_err().to_string(),
            "context nope is not in kubeconfig /tmp/kc"
        );
        assert_eq!(
            endpoint(&kc, "broken", "kc").unwrap_err().to_string(),
            "context broken: cluster empty has no server"
        );
        kc.clusters[0]
            .cluster
            .as_mut()
            .unwrap()
            .certificate_authority = Some("/nonexistent/ca.pem".into());
        let err = endpoint(&kc, "prod-admin", "kc").unwrap_err();
        assert!(matches!(err, AddError::CaFile { .. }), "{err}");
    }

    #[test]
    fn secret_names_are_object_names() {
        assert_eq!(secret_name("workload-1"), "cluster-workload-1");
        assert_eq!(
            secret_name("arn:aws:eks:eu-west-1:123:cluster/Prod"),
            "cluster-arn-aws-eks-eu-west-1-123-cluster-prod"
        );
        assert_eq!(secret_name("_x_"), "cluster-x");
        assert_eq!(secret_name(&"a".repeat(300)).len(), 253);
    }

    #[test]
    fn an_existing_registration_needs_upsert() {
        let target = |m: &[&str], upsert| {
            let m: Vec<String> = m.iter().map(|s| (*s).to_owned()).collect();
            target_secret("cluster-w1", "https://w1", "w1", &m, upsert)
        };
        assert_eq!(target(&[], false).unwrap(), ("cluster-w1".into(), false));
        assert_eq!(
            target(&["argocd/cluster-w1-abc"], true).unwrap(),
            ("cluster-w1-abc".into(), true)
        );
        assert_eq!(
            target(&["argocd/cluster-w1-abc"], false)
                .unwrap_err()
                .to_string(),
            "cluster https://w1 is already registered as Secret argocd/cluster-w1-abc; pass --upsert to update it"
        );
        assert!(matches!(
            target(&["argocd/a", "argocd/b"], true),
            Err(AddError::Ambiguous { .. })
        ));
    }

    #[test]
    fn labels_need_a_key() {
        assert_eq!(
            parse_label("customer=acme").unwrap(),
            ("customer".into(), "acme".into())
        );
        assert_eq!(
            parse_label("tier=").unwrap(),
            ("tier".into(), String::new())
        );
        assert!(parse_label("=x").is_err() && parse_label("x").is_err());
    }
}
