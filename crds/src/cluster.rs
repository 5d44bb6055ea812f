//! The cluster model: Argo CD's declarative cluster Secret, parsed.
//!
//! A Secret labelled `argocd.argoproj.io/secret-type: cluster` carries `name`, `server`,
//! `namespaces`, `clusterResources`, `project` and a `config` JSON with credentials.
//! Credentials are wrapped in [`Sensitive`], whose `Debug` prints `<redacted>`, and parse
//! errors report position and category only: serde's messages can quote the offending
//! value, and that value may be a token.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::consts::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER, SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};

/// A string that must never be printed (token, password, private key).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl From<String> for Sensitive {
    fn from(value: String) -> Self {
        Sensitive(value)
    }
}

impl Sensitive {
    /// The secret value, for building a client. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A registered cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// `namespace/name` of the Secret it came from; `None` for the implicit in-cluster.
    pub secret: Option<String>,
    /// `data.name`, exactly as written.
    pub name: String,
    /// `data.server`, exactly as written (a trailing `/` is kept, as Argo CD does).
    pub server: String,
    /// `data.project`, or empty.
    pub project: String,
    /// `data.namespaces`, split on commas; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// `data.clusterResources == "true"`.
    pub cluster_resources: bool,
    /// Labels of the Secret (all of them, including the secret-type label).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Secret, except `kubectl.kubernetes.io/last-applied-configuration`
    /// ([`crate::consts::LAST_APPLIED_ANNOTATION`]): a Secret created with `kubectl apply`
    /// carries its whole data there, bearer token included, and annotations reach
    /// templates, the dashboard and the CLI. Argo CD's cluster generator drops it too.
    pub annotations: BTreeMap<String, String>,
    /// Connection settings from `data.config`.
    pub config: ClusterConfig,
    /// The Secret's UID (Argo CD's cluster ID, which its `legacy` sharding hashes); empty
    /// for the implicit in-cluster cluster.
    pub id: String,
    /// `data.shard`: the shard (replica) this cluster is pinned to, as in Argo CD.
    pub shard: Option<u32>,
}

/// `data.config` of a cluster Secret.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password.
    #[serde(default)]
    pub password: Option<Sensitive>,
    /// Bearer token.
    #[serde(default)]
    pub bearer_token: Option<Sensitive>,
    /// TLS settings: CA, client certificate, server name.
    #[serde(default)]
    pub tls_client_config: TlsClientConfig,
    /// Credential plugin to run for a token.
    #[serde(default)]
    pub exec_provider_config: Option<ExecProviderConfig>,
    /// Present when the Secret asks for AWS IAM auth (an exec plugin in disguise).
    #[serde(default)]
    pub aws_auth_config: Option<serde_json::Value>,
    /// HTTP(S) proxy to reach the API server through.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Ask the API server for uncompressed responses.
    #[serde(default)]
    pub disable_compression: bool,
}

/// `config.tlsClientConfig`; the `*Data` fields are base64 PEM, as in Argo CD.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsClientConfig {
    /// Skip verification of the server certificate.
    #[serde(default)]
    pub insecure: bool,
    /// Server name to verify the certificate against, instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Client certificate.
    #[serde(default)]
    pub cert_data: Option<String>,
    /// Client private key.
    #[serde(default)]
    pub key_data: Option<Sensitive>,
    /// CA bundle to verify the server with.
    #[serde(default)]
    pub ca_data: Option<String>,
}

/// `config.execProviderConfig`: a credential plugin (refused unless explicitly enabled).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecProviderConfig {
    /// The plugin executable.
    #[serde(default)]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for it.
    #[serde(default)]
    pub env: BTreeMap<String, Sensitive>,
    /// `client.authentication.k8s.io` version of its output.
    #[serde(default)]
    pub api_version: String,
    /// Shown when the executable is missing.
    #[serde(default)]
    pub install_hint: String,
}

/// Why a cluster Secret could not be read. Messages name the Secret and the field and
/// never contain a value from the Secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterSecretError {
    /// A required field is in neither `data` nor `stringData`.
    #[error("cluster Secret {secret}: field `{field}` is missing")]
    MissingField {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field's bytes are not UTF-8.
    #[error("cluster Secret {secret}: field `{field}` is not valid UTF-8")]
    NotUtf8 {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The field that is not UTF-8.
        field: &'static str,
    },
    /// `config` does not parse as Argo CD's cluster config JSON.
    #[error(
        "cluster Secret {secret}: field `config` is not valid cluster config JSON ({category} at line {line} column {column})"
    )]
    Config {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The kind of error (`syntax error`, `wrong type or shape`, ...); never serde's
        /// message, which may quote a value.
        category: &'static str,
        /// Line of the error in `config`.
        line: usize,
        /// Column of the error in `config`.
        column: usize,
    },
    /// `shard` is not a non-negative integer (Argo CD refuses such a Secret too).
    #[error("cluster Secret {secret}: field `shard` is not a shard number")]
    Shard {
        /// `namespace/name` of the Secret.
        secret: String,
    },
}

impl Cluster {
    /// The implicit local cluster (`in-cluster`, `https://kubernetes.default.svc`).
    #[must_use]
    pub fn in_cluster() -> Cluster {
        Cluster {
            name: IN_CLUSTER_NAME.to_owned(),
            server: IN_CLUSTER_SERVER.to_owned(),
            ..Cluster::default()
        }
    }

    /// True for the implicit local cluster and for Secrets that point at it.
    #[must_use]
    pub fn is_in_cluster(&self) -> bool {
        self.server.trim_end_matches('/') == IN_CLUSTER_SERVER
    }

    /// Parses an Argo CD declarative cluster Secret. `stringData` overrides `data`, as the
    /// API server does on write (Secrets read from files may use either).
    pub fn from_secret(secret: &Secret) -> Result<Cluster, ClusterSecretError> {
        let id = secret_id(secret);
        let fields = SecretFields::new(secret);
        let text = |field: &'static str| fields.text(&id, field);

        let server = text("server")?.ok_or_else(|| ClusterSecretError::MissingField {
            secret: id.clone(),
            field: "server",
        })?;
        let config = match text("config")? {
            Some(raw) if !raw.trim().is_empty() => {
                serde_json::from_str(&raw).map_err(|e| ClusterSecretError::Config {
                    secret: id.clone(),
                    category: match e.classify() {
                        serde_json::error::Category::Io => "read error",
                        serde_json::error::Category::Syntax => "syntax error",
                        serde_json::error::Category::Data => "wrong type or shape",
                        serde_json::error::Category::Eof => "unexpected end",
                    },
                    line: e.line(),
                    column: e.column(),
                })?
            }
            _ => ClusterConfig::default(),
        };
        Ok(Cluster {
            secret: Some(id.clone()),
            name: text("name")?.unwrap_or_default(),
            server,
            project: text("project")?.unwrap_or_default(),
            namespaces: text("namespaces")?
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            cluster_resources: text("clusterResources")?.as_deref() == Some("true"),
            id: secret.metadata.uid.clone().unwrap_or_default(),
            shard: text("shard")?
                .map(|s| {
                    s.trim()
                        .parse::<u32>()
                        .map_err(|_| ClusterSecretError::Shard { secret: id.clone() })
                })
                .transpose()?,
            labels: secret.metadata.labels.clone().unwrap_or_default(),
            annotations: secret
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(key, _)| key.as_str() != crate::consts::LAST_APPLIED_ANNOTATION)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            config,
        })
    }
}

/// True when the Secret carries the cluster secret-type label.
#[must_use]
pub fn is_cluster_secret(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SECRET_TYPE_LABEL))
        .is_some_and(|v| v == SECRET_TYPE_CLUSTER)
}

/// `namespace/name` of a Secret, for messages.
#[must_use]
pub fn secret_id(secret: &Secret) -> String {
    format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Read access to a Secret's `data` + `stringData`.
struct SecretFields<'a> {
    secret: &'a Secret,
}

impl<'a> SecretFields<'a> {
    fn new(secret: &'a Secret) -> Self {
        Self { secret }
    }

    fn text(&self, id: &str, field: &'static str) -> Result<Option<String>, ClusterSecretError> {
        if let Some(s) = self.secret.string_data.as_ref().and_then(|d| d.get(field)) {
            return Ok(Some(s.clone()));
        }
        match self.secret.data.as_ref().and_then(|d| d.get(field)) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.0.clone()).map(Some).map_err(|_| {
                ClusterSecretError::NotUtf8 {
                    secret: id.to_owned(),
                    field,
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(string_data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("prod-1".into());
        s.metadata.namespace = Some("argocd".into());
        s.metadata.labels = Some(BTreeMap::from([
            (SECRET_TYPE_LABEL.to_owned(), SECRET_TYPE_CLUSTER.to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
        ]));
        s.string_data = Some(
            string_data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        s
    }

    /// `kubectl apply` leaves the whole Secret, token included, in an annotation: it never
    /// becomes one of the cluster's annotations (which templates and the dashboard see).
    #[test]
    fn the_last_applied_copy_with_the_token_is_dropped() {
        let mut s = secret(&[
            ("server", "https://prod-1.example.com"),
            ("config", r#"{"bearerToken":"canary-token-123"}"#),
        ]);
        s.metadata.annotations = Some(BTreeMap::from([
            (
                crate::consts::LAST_APPLIED_ANNOTATION.to_owned(),
                r#"{"stringData":{"config":"{\"bearerToken\":\"canary-token-123\"}"}}"#.to_owned(),
            ),
            ("team".to_owned(), "payments".to_owned()),
        ]));
        let cluster = Cluster::from_secret(&s).unwrap();
        assert_eq!(
            cluster.annotations,
            BTreeMap::from([("team".to_owned(), "payments".to_owned())])
        );
        assert!(!format!("{:?}", cluster.annotations).contains("canary-token-123"));
    }

    #[test]
    fn parses_declarative_secret() {
        let s = secret(&[
            ("name", "prod-1"),
            ("server", "https://prod-1.example.com/"),
            ("namespaces", "a, b,,c"),
            ("clusterResources", "true"),
            ("project", "team-a"),
            (
                "config",
                r#"{"bearerToken":"s3cr3t","tlsClientConfig":{"insecure":false,"caData":"Q0E="}}"#,
            ),
        ]);
        let c = Cluster::from_secret(&s).unwrap();
        assert_eq!(c.name, "prod-1");
        assert_eq!(c.server, "https://prod-1.example.com/");
        assert_eq!(c.namespaces, ["a", "b", "c"]);
        assert!(c.cluster_resources);
        assert_eq!(c.project, "team-a");
        assert_eq!(c.labels["tier"], "gold");
        assert_eq!(c.config.bearer_token.as_ref().unwrap().expose(), "s3cr3t");
        assert_eq!(c.config.tls_client_config.ca_data.as_deref(), Some("Q0E="));
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug must redact");
    }

    #[test]
    fn data_is_base64_decoded_and_string_data_wins() {
        let mut s = secret(&[("server", "https://from-string-data")]);
        s.data = Some(BTreeMap::from([
            (
                "server".to_owned(),
                ByteString(b"https://from-data".to_vec()),
            ),
            ("name".to_owned(), ByteString(b"from-data".to_vec())),
        ]));
        let c = Cluster::from_secret(&s).unwrap();
        assert_eq!(c.server, "https://from-string-data");
        assert_eq!(c.name, "from-data");
    }

    #[test]
    fn bad_config_names_secret_and_field_without_leaking() {
        let s = secret(&[
            ("server", "https://x"),
            ("config", r#"{"bearerToken": 12345678, "username": "u"}"#),
        ]);
        let msg = Cluster::from_secret(&s).unwrap_err().to_string();
        assert!(msg.contains("argocd/prod-1"), "{msg}");
        assert!(msg.contains("`config`"), "{msg}");
        assert!(!msg.contains("12345678"), "value leaked: {msg}");

        let s = secret(&[("server", "https://x"), ("config", "{not json")]);
        let msg = Cluster::from_secret(&s).unwrap_err().to_string();
        assert!(msg.contains("syntax error at line 1"), "{msg}");
    }

    #[test]
    fn missing_server_is_an_error() {
        let err = Cluster::from_secret(&secret(&[("name", "x")])).unwrap_err();
        assert_eq!(
            err,
            ClusterSecretError::MissingField {
                secret: "argocd/prod-1".into(),
                field: "server"
            }
        );
    }

    #[test]
    fn in_cluster_detection_ignores_trailing_slash() {
        let s = secret(&[("server", "https://kubernetes.default.svc/")]);
        assert!(Cluster::from_secret(&s).unwrap().is_in_cluster());
        assert!(Cluster::in_cluster().is_in_cluster());
    }
}
