//! `argosy repo add|list|rm`: Argo CD's repository Secrets (`argocd repo add|list|rm`) and
//! credential templates (`argocd repocreds add|list|rm`, here `--creds-template`), written
//! to the management cluster directly, as `argosy cluster add` writes cluster Secrets.
//!
//! `add` builds the Secret from the flags ([`credentials`], then [`repo_secret`]: pure, with
//! Argo CD's field names, Secret name and `managed-by` annotation), refuses a repository
//! that already has a different Secret unless `--upsert` (the same settings again change
//! nothing, as in Argo CD), checks that the credentials can list the remote's refs with
//! Argosy's own Git code, and only then writes. The check runs here, on the user's machine,
//! not in the cluster as Argo CD's repo-server does: `--no-check` is for a repository only
//! the cluster's network reaches.
//!
//! `rm` removes what `add` wrote, as Argo CD does: a Secret annotated `managed-by:
//! argocd.argoproj.io` is deleted; any other (a Secret kept in Git, say) only loses its
//! `argocd.argoproj.io/secret-type` label, so it no longer serves the repository but its
//! owner's data stays.
//!
//! Credentials never reach the terminal: flags holding one are [`Sensitive`], URLs are shown
//! with their user info removed, and `list` shows only which kind of credential a Secret
//! holds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argosy_crds::cluster::Sensitive;
use argosy_crds::consts::SECRET_TYPE_LABEL;
use argosy_crds::project::normalize_repo_url;
use argosy_crds::repository::{
    GitHubApp, RepoCredentialIndex, RepoCredentials, RepoSecretKind, SECRET_TYPE_REPO_CREDS,
    SECRET_TYPE_REPOSITORY, SSH_KNOWN_HOSTS_CONFIGMAP, TLS_CERTS_CONFIGMAP, known_hosts,
    parse_secret, secret_kind, tls_certs,
};
use argosy_sync_engine::repo::{GitAuth, ls_remote};
use argosy_sync_engine::url_policy::{UrlPolicy, redact_url};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::cli::cmd::app::{AppError, Output, emit, encode};
use crate::cli::cmd::cluster_add::{self, AddError, Progress};
use crate::cli::format::repo::{self as format, RepoRow};
use crate::repo_credentials::git_auth;

/// Argo CD's annotation on the Secrets its API writes: `rm` deletes only those.
pub const MANAGED_BY_ANNOTATION: &str = "managed-by";
/// Its value.
pub const MANAGED_BY_ARGOCD: &str = "argocd.argoproj.io";
/// Field manager of the Secrets `repo add` writes.
const FIELD_MANAGER: &str = "argosy-cli";

/// Every `data` key Argo CD's API writes in a repository or template Secret. An update
/// (`--upsert`) replaces all of them, so a password does not outlive a switch to an SSH
/// key; keys outside this list (someone else's) are kept.
const ARGO_CD_KEYS: [&str; 32] = [
    "url",
    "type",
    "name",
    "project",
    "username",
    "password",
    "bearerToken",
    "sshPrivateKey",
    "tlsClientCertData",
    "tlsClientCertKey",
    "insecure",
    "insecureIgnoreHostKey",
    "insecureOCIForceHttp",
    "enableOCI",
    "enableLfs",
    "forceHttpBasicAuth",
    "proxy",
    "noProxy",
    "githubAppPrivateKey",
    "githubAppID",
    "githubAppInstallationID",
    "githubAppEnterpriseBaseUrl",
    "gcpServiceAccountKey",
    "useAzureWorkloadIdentity",
    "depth",
    "webhookManifestCacheWarmDisabled",
    "azureServicePrincipalClientId",
    "azureServicePrincipalClientID",
    "azureServicePrincipalClientSecret",
    "azureServicePrincipalTenantId",
    "azureServicePrincipalTenantID",
    "azureActiveDirectoryEndpoint",
];

/// `argosy repo` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RepoCommand {
    /// Add a repository's connection settings (an Argo CD repository Secret), after
    /// checking that they can list its refs; `--creds-template` adds a credential template
    /// for every repository under a URL prefix instead.
    Add(Box<AddFlags>),
    /// List repository Secrets and credential templates: URL, kind, type, name, project,
    /// which kind of credentials (never the credentials), Secret.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove the repository Secret(s) of URL (compared as Argo CD compares repository
    /// URLs); with `--creds-template`, the credential template with exactly this URL.
    Rm {
        url: String,
        /// Remove the credential template of this URL prefix instead.
        #[arg(long)]
        creds_template: bool,
        /// Only the repository Secret scoped to this project (default: every Secret of URL).
        #[arg(long, conflicts_with = "creds_template")]
        project: Option<String>,
    },
}

/// `--type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RepoType {
    #[default]
    Git,
    Helm,
}

impl RepoType {
    fn as_str(self) -> &'static str {
        match self {
            RepoType::Git => "git",
            RepoType::Helm => "helm",
        }
    }
}

/// A flag value that is a credential: kept out of `Debug`.
fn sensitive(value: &str) -> Result<Sensitive, String> {
    Ok(Sensitive::from(value.to_owned()))
}

/// Flags of `argosy repo add` (Argo CD's names).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AddFlags {
    /// Repository URL (with --creds-template: the URL prefix whose repositories use it).
    pub url: String,
    /// Write a credential template (`repo-creds` Secret, Argo CD's `argocd repocreds add`):
    /// its credentials serve every repository whose URL starts with URL and has no
    /// credentials of its own. Not checked (a prefix is no repository).
    #[arg(long)]
    pub creds_template: bool,
    /// Repository type.
    #[arg(long = "type", value_name = "TYPE", value_enum, default_value_t)]
    pub repo_type: RepoType,
    /// Name of the repository (required for helm).
    #[arg(long)]
    pub name: Option<String>,
    /// Only this AppProject's Applications use the Secret.
    #[arg(long)]
    pub project: Option<String>,
    /// User name for HTTPS.
    #[arg(long)]
    pub username: Option<String>,
    /// Password or token for HTTPS (visible in shell history and `ps`: prefer --password-file).
    #[arg(long, value_parser = sensitive, conflicts_with = "password_file")]
    pub password: Option<Sensitive>,
    /// File holding the password or token (`-`: standard input); trailing newlines are dropped.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Bearer token for HTTPS Git (Bitbucket Data Center).
    #[arg(long, value_parser = sensitive)]
    pub bearer_token: Option<Sensitive>,
    /// Private SSH key file (SSH URLs).
    #[arg(long)]
    pub ssh_private_key_path: Option<PathBuf>,
    /// Do not check the SSH server's host key.
    #[arg(long)]
    pub insecure_ignore_host_key: bool,
    /// Do not verify the server's TLS certificate or SSH host key.
    #[arg(long)]
    pub insecure_skip_server_verification: bool,
    /// TLS client certificate file, PEM (HTTPS URLs; with --tls-client-cert-key-path).
    #[arg(long)]
    pub tls_client_cert_path: Option<PathBuf>,
    /// Its private key file, PEM.
    #[arg(long)]
    pub tls_client_cert_key_path: Option<PathBuf>,
    /// GitHub App ID (HTTPS URLs; with the installation ID and private key).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub github_app_id: Option<i64>,
    /// GitHub App installation ID (Argosy does not discover it).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub github_app_installation_id: Option<i64>,
    /// GitHub App private key file, PEM.
    #[arg(long)]
    pub github_app_private_key_path: Option<PathBuf>,
    /// GitHub Enterprise API root (e.g. `https://ghe.example.com/api/v3`).
    #[arg(long)]
    pub github_app_enterprise_base_url: Option<String>,
    /// HTTP(S) proxy for the repository.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Hosts not reached through --proxy (comma separated).
    #[arg(long)]
    pub no_proxy: Option<String>,
    /// Send basic auth with the first request instead of after a 401.
    #[arg(long)]
    pub force_http_basic_auth: bool,
    /// Helm repository in an OCI registry.
    #[arg(long)]
    pub enable_oci: bool,
    /// Replace the Secret if the repository (or template) has one with other settings.
    #[arg(long)]
    pub upsert: bool,
    /// Write without checking access: for a repository that only the cluster's network
    /// reaches (the check runs on this machine).
    #[arg(long)]
    pub no_check: bool,
}

/// Why a repo command failed. Messages name the repository, flag, file or Secret; never a
/// credential (URLs are shown without user info).
#[derive(Debug, thiserror::Error)]
pub enum RepoCliError {
    #[error(transparent)]
    Kubeconfig(#[from] AddError),
    #[error("connecting to the management cluster: {0}")]
    Client(String),
    #[error("{0}")]
    Flags(String),
    #[error("{flag}: reading {path}: {error}")]
    ReadFile {
        flag: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("{flag}: {path} is empty")]
    EmptyFile { flag: &'static str, path: String },
    #[error("listing repository Secrets in namespace {namespace}: {error}")]
    ListSecrets {
        namespace: String,
        error: kube::Error,
    },
    #[error("reading Secret {secret}: {error}")]
    ReadSecret { secret: String, error: kube::Error },
    #[error("reading ConfigMap {namespace}/{name}: {error}")]
    ReadConfigMap {
        namespace: String,
        name: &'static str,
        error: kube::Error,
    },
    #[error(
        "Secret {secret} exists but is not the {what} Secret of {url}; delete or rename it first"
    )]
    NameTaken {
        secret: String,
        what: &'static str,
        url: String,
    },
    #[error(
        "{what} {url} already exists as Secret {secret} with other settings; pass --upsert to replace them"
    )]
    Exists {
        what: &'static str,
        url: String,
        secret: String,
    },
    #[error("{what} {url} has several Secrets ({secrets}); remove the extra ones first")]
    Ambiguous {
        what: &'static str,
        url: String,
        secrets: String,
    },
    #[error("repository {url}: access check failed: {reason} (nothing was written)")]
    Check { url: String, reason: String },
    #[error("writing Secret {secret}: {error}")]
    Write { secret: String, error: kube::Error },
    #[error("{what} {url} not found (no Secret in namespace {namespace} has this URL)")]
    NotFound {
        what: &'static str,
        url: String,
        namespace: String,
    },
    #[error("removing Secret {secret}: {error}")]
    Delete { secret: String, error: kube::Error },
    #[error(transparent)]
    Print(#[from] AppError),
}

impl RepoCliError {
    pub fn category(&self) -> &'static str {
        match self {
            RepoCliError::Kubeconfig(e) => e.category(),
            RepoCliError::Client(_) => "client",
            RepoCliError::Flags(_) => "flags",
            RepoCliError::ReadFile { .. } => "read_file",
            RepoCliError::EmptyFile { .. } => "empty_file",
            RepoCliError::ListSecrets { .. } => "list_secrets",
            RepoCliError::ReadSecret { .. } => "read_secret",
            RepoCliError::ReadConfigMap { .. } => "read_config_map",
            RepoCliError::NameTaken { .. } => "name_taken",
            RepoCliError::Exists { .. } => "exists",
            RepoCliError::Ambiguous { .. } => "ambiguous",
            RepoCliError::Check { .. } => "check",
            RepoCliError::Write { .. } => "write",
            RepoCliError::NotFound { .. } => "not_found",
            RepoCliError::Delete { .. } => "delete",
            RepoCliError::Print(e) => e.category(),
        }
    }
}

/// How the management cluster is reached: `--kubeconfig`/`--mgmt-context` as `cluster add`
/// takes them; without either, the current context (or the in-cluster config).
#[derive(Debug, Clone, Default)]
pub struct Management {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

fn what(kind: RepoSecretKind) -> &'static str {
    match kind {
        RepoSecretKind::Repository => "repository",
        RepoSecretKind::RepoCreds => "credential template",
    }
}

/// Argo CD's `RepoURLToSecretName`: `repo-` (templates: `creds-`) and the FNV-1a 32-bit
/// hash of the URL followed by the project, in decimal. Only for new Secrets: existing ones
/// are found by their `url`, whatever their name.
#[must_use]
pub fn secret_name(kind: RepoSecretKind, url: &str, project: &str) -> String {
    let prefix = match kind {
        RepoSecretKind::Repository => "repo",
        RepoSecretKind::RepoCreds => "creds",
    };
    let mut hash: u32 = 0x811c_9dc5;
    for byte in url.bytes().chain(project.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{prefix}-{hash}")
}

/// Argo CD's `IsSSHURL`: `ssh://…` or `user@host:path`, a user before the last `@`
/// without `/` or `:`.
fn is_ssh_url(url: &str) -> bool {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    rest.rsplit_once('@')
        .is_some_and(|(user, host)| !user.contains(['/', ':']) && !host.is_empty())
}

/// Argo CD's `IsHTTPSURL`.
fn is_https_url(url: &str) -> bool {
    url.starts_with("https://")
}

/// Reads the file a flag names; the content is a credential and is never printed.
pub type ReadFile<'a> = dyn FnMut(&'static str, &Path) -> Result<String, RepoCliError> + 'a;

/// The repository or template `flags` describe, with the named files read through `read`:
/// Argo CD's checks of the flag combinations, one line each. Pure but for `read`.
pub fn credentials(
    flags: &AddFlags,
    read: &mut ReadFile<'_>,
) -> Result<RepoCredentials, RepoCliError> {
    let bad = |reason: &str| Err(RepoCliError::Flags(reason.to_owned()));
    let url = flags.url.trim();
    if url.is_empty() {
        return bad("the repository URL is empty");
    }
    if flags.creds_template {
        // Argo CD's templates carry credentials only; these belong to a repository.
        for (given, flag) in [
            (flags.name.is_some(), "--name"),
            (flags.project.is_some(), "--project"),
            (flags.insecure_ignore_host_key, "--insecure-ignore-host-key"),
            (
                flags.insecure_skip_server_verification,
                "--insecure-skip-server-verification",
            ),
        ] {
            if given {
                return Err(RepoCliError::Flags(format!(
                    "{flag} is a repository setting; a credential template (--creds-template) cannot carry it"
                )));
            }
        }
    } else if flags.repo_type == RepoType::Helm && flags.name.as_deref().is_none_or(str::is_empty) {
        return bad("--name is required for repositories of type helm");
    }
    if flags.enable_oci && flags.repo_type != RepoType::Helm {
        return bad("--enable-oci is only valid for repositories of type helm");
    }
    let password = match (&flags.password, &flags.password_file) {
        (Some(password), _) => Some(password.clone()),
        (None, Some(path)) => Some(Sensitive::from(
            read("--password-file", path)?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        )),
        (None, None) => None,
    }
    .filter(|p| !p.expose().is_empty());
    if flags.username.is_some() && password.is_none() {
        return bad("--username needs --password or --password-file (argosy does not prompt)");
    }
    let bearer_token = flags
        .bearer_token
        .clone()
        .filter(|t| !t.expose().is_empty());
    if bearer_token.is_some() {
        if password.is_some() {
            return bad("only --bearer-token or --password is allowed, not both");
        }
        if flags.repo_type != RepoType::Git {
            return bad("--bearer-token is only supported for Git repositories");
        }
        if !is_https_url(url) {
            return bad("--bearer-token is only supported for HTTPS repositories");
        }
    }
    let ssh_private_key = match &flags.ssh_private_key_path {
        Some(_) if !is_ssh_url(url) => {
            return bad("--ssh-private-key-path is only supported for SSH repositories");
        }
        Some(path) => Some(Sensitive::from(read("--ssh-private-key-path", path)?)),
        None => None,
    };
    let (tls_client_cert, tls_client_key) = match (
        &flags.tls_client_cert_path,
        &flags.tls_client_cert_key_path,
    ) {
        (None, None) => (None, None),
        (Some(_), None) | (None, Some(_)) => {
            return bad(
                "--tls-client-cert-path and --tls-client-cert-key-path must be specified together",
            );
        }
        (Some(_), Some(_)) if !is_https_url(url) => {
            return bad("--tls-client-cert-path is only supported for HTTPS repositories");
        }
        (Some(cert), Some(key)) => (
            Some(Sensitive::from(read("--tls-client-cert-path", cert)?)),
            Some(Sensitive::from(read("--tls-client-cert-key-path", key)?)),
        ),
    };
    let github_app = github_app(flags, url, read)?;
    let text = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    Ok(RepoCredentials {
        secret: String::new(),
        url: url.to_owned(),
        name: flags.name.clone().unwrap_or_default(),
        project: flags.project.clone().unwrap_or_default(),
        repo_type: flags.repo_type.as_str().to_owned(),
        username: text(&flags.username),
        password,
        bearer_token,
        tls_client_cert,
        tls_client_key,
        insecure: flags.insecure_skip_server_verification,
        insecure_ignore_host_key: flags.insecure_ignore_host_key,
        force_http_basic_auth: flags.force_http_basic_auth,
        proxy: text(&flags.proxy),
        no_proxy: text(&flags.no_proxy),
        ssh_private_key,
        github_app,
        enable_oci: flags.enable_oci,
    })
}

/// The `--github-app-*` flags: all three of ID, installation and key, on an HTTPS URL.
fn github_app(
    flags: &AddFlags,
    url: &str,
    read: &mut ReadFile<'_>,
) -> Result<Option<GitHubApp>, RepoCliError> {
    let any = flags.github_app_id.is_some()
        || flags.github_app_installation_id.is_some()
        || flags.github_app_private_key_path.is_some()
        || flags.github_app_enterprise_base_url.is_some();
    if !any {
        return Ok(None);
    }
    let (Some(app_id), Some(installation_id), Some(key_path)) = (
        flags.github_app_id,
        flags.github_app_installation_id,
        &flags.github_app_private_key_path,
    ) else {
        return Err(RepoCliError::Flags(
            "a GitHub App needs --github-app-id, --github-app-installation-id and --github-app-private-key-path".to_owned(),
        ));
    };
    if !is_https_url(url) {
        return Err(RepoCliError::Flags(
            "--github-app-private-key-path is only supported for HTTPS repositories".to_owned(),
        ));
    }
    Ok(Some(GitHubApp {
        app_id,
        installation_id,
        private_key: Sensitive::from(read("--github-app-private-key-path", key_path)?),
        enterprise_base_url: flags
            .github_app_enterprise_base_url
            .clone()
            .filter(|u| !u.is_empty()),
    }))
}

/// The Secret's `data` for `creds`, with Argo CD's keys (the inverse of
/// [`argosy_crds::repository::parse_secret`]). Flags appear only when set, as Argo CD
/// writes them.
#[must_use]
pub fn secret_data(creds: &RepoCredentials) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            data.insert(key.to_owned(), value.to_owned());
        }
    };
    put("url", Some(&creds.url));
    put("type", Some(&creds.repo_type));
    put("name", Some(&creds.name));
    put("project", Some(&creds.project));
    put("username", creds.username.as_deref());
    put("password", creds.password.as_ref().map(Sensitive::expose));
    put(
        "bearerToken",
        creds.bearer_token.as_ref().map(Sensitive::expose),
    );
    put(
        "sshPrivateKey",
        creds.ssh_private_key.as_ref().map(Sensitive::expose),
    );
    put(
        "tlsClientCertData",
        creds.tls_client_cert.as_ref().map(Sensitive::expose),
    );
    put(
        "tlsClientCertKey",
        creds.tls_client_key.as_ref().map(Sensitive::expose),
    );
    put("proxy", creds.proxy.as_deref());
    put("noProxy", creds.no_proxy.as_deref());
    for (key, set) in [
        ("insecure", creds.insecure),
        ("insecureIgnoreHostKey", creds.insecure_ignore_host_key),
        ("forceHttpBasicAuth", creds.force_http_basic_auth),
        ("enableOCI", creds.enable_oci),
    ] {
        put(key, set.then_some("true"));
    }
    if let Some(app) = &creds.github_app {
        put("githubAppID", Some(&app.app_id.to_string()));
        put(
            "githubAppInstallationID",
            Some(&app.installation_id.to_string()),
        );
        put("githubAppPrivateKey", Some(app.private_key.expose()));
        put(
            "githubAppEnterpriseBaseUrl",
            app.enterprise_base_url.as_deref(),
        );
    }
    data
}

/// The Secret `repo add` creates for `creds` in `namespace`: Argo CD's name, type label and
/// `managed-by` annotation.
#[must_use]
pub fn repo_secret(kind: RepoSecretKind, creds: &RepoCredentials, namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(kind, &creds.url, &creds.project)),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                SECRET_TYPE_LABEL.to_owned(),
                kind.label_value().to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                MANAGED_BY_ANNOTATION.to_owned(),
                MANAGED_BY_ARGOCD.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            secret_data(creds)
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// `existing` updated to say what `wanted` says: Argo CD's keys replaced, other keys,
/// labels and annotations kept (Argo CD's `repositoryToSecret` on an existing Secret).
#[must_use]
pub fn updated_secret(existing: &Secret, wanted: &Secret) -> Secret {
    let mut updated = existing.clone();
    let data = updated.data.get_or_insert_with(BTreeMap::new);
    // `stringData` is write-only; a Secret read back never has it, but be exact anyway.
    updated.string_data = None;
    data.retain(|key, _| !ARGO_CD_KEYS.contains(&key.as_str()));
    data.extend(wanted.data.clone().unwrap_or_default());
    for (mine, theirs) in [
        (
            &mut updated.metadata.labels,
            wanted.metadata.labels.as_ref(),
        ),
        (
            &mut updated.metadata.annotations,
            wanted.metadata.annotations.as_ref(),
        ),
    ] {
        mine.get_or_insert_with(BTreeMap::new)
            .extend(theirs.cloned().unwrap_or_default());
    }
    updated
}

/// `data[key]` as written, when it is text: a Secret that does not parse can still be
/// found by its URL (and removed).
fn data_text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

fn raw_url(secret: &Secret) -> Option<String> {
    data_text(secret, "url")
}

/// The Secrets of `kind` that are `url`'s: repositories by normalized URL and project,
/// templates by exact URL (Argo CD's lookups).
fn same_repository<'s>(
    secrets: &'s [Secret],
    kind: RepoSecretKind,
    url: &str,
    project: Option<&str>,
) -> Vec<&'s Secret> {
    let wanted = normalize_repo_url(url);
    secrets
        .iter()
        .filter(|s| secret_kind(s) == Some(kind))
        .filter(|s| {
            let Some(theirs) = raw_url(s) else {
                return false;
            };
            match kind {
                RepoSecretKind::Repository => {
                    normalize_repo_url(&theirs) == wanted
                        && project.is_none_or(|p| data_text(s, "project").unwrap_or_default() == p)
                }
                RepoSecretKind::RepoCreds => theirs == url,
            }
        })
        .collect()
}

/// What `add` does with the Secret it built, given what exists.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Create(Secret),
    /// `--upsert` over an existing Secret with other settings.
    Update(Secret),
    /// The existing Secret already says exactly this (Argo CD succeeds without a write).
    Unchanged(String),
}

/// `wanted` against the Secrets listed in its namespace (`existing`) and the Secret that
/// holds its name, if any (`named`, read by name: it may lack the type label).
pub fn plan(
    kind: RepoSecretKind,
    wanted: &Secret,
    creds: &RepoCredentials,
    existing: &[Secret],
    named: Option<&Secret>,
    upsert: bool,
) -> Result<Plan, RepoCliError> {
    let url = redact_url(&creds.url);
    let same = same_repository(existing, kind, &creds.url, Some(&creds.project));
    if let Some(named) = named {
        let id = argosy_crds::cluster::secret_id(named);
        if !same.iter().any(|s| s.metadata.name == named.metadata.name) {
            return Err(RepoCliError::NameTaken {
                secret: id,
                what: what(kind),
                url,
            });
        }
    }
    match same.as_slice() {
        [] => Ok(Plan::Create(wanted.clone())),
        [one] => {
            let updated = updated_secret(one, wanted);
            let id = argosy_crds::cluster::secret_id(one);
            // Settings are the data (Argo CD compares the repository, not the metadata).
            if updated.data == one.data {
                Ok(Plan::Unchanged(id))
            } else if upsert {
                Ok(Plan::Update(updated))
            } else {
                Err(RepoCliError::Exists {
                    what: what(kind),
                    url,
                    secret: id,
                })
            }
        }
        many => Err(RepoCliError::Ambiguous {
            what: what(kind),
            url,
            secrets: many
                .iter()
                .map(|s| argosy_crds::cluster::secret_id(s))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// What `add` did, for its one line.
fn added_line(kind: RepoSecretKind, url: &str, plan: &Plan, namespace: &str) -> String {
    let (verb, secret) = match plan {
        Plan::Create(s) => ("added", secret_ref(s, namespace)),
        Plan::Update(s) => ("updated", secret_ref(s, namespace)),
        Plan::Unchanged(id) => ("unchanged", id.clone()),
    };
    format!(
        "{} {} {verb} (Secret {secret})\n",
        what(kind),
        redact_url(url)
    )
}

fn secret_ref(secret: &Secret, namespace: &str) -> String {
    format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or(namespace),
        secret.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What the check reads `creds.url` with, resolved as the controller will resolve it
/// ([`crate::repo_credentials::git_auth`]): the repository's own credentials, or, when it
/// has none, those a template in `existing` lends it; the known hosts and CA the ConfigMaps
/// hold.
fn check_auth(
    wanted: &Secret,
    creds: &RepoCredentials,
    existing: &[Secret],
    known_hosts: &str,
    tls_certs: &BTreeMap<String, String>,
) -> Result<GitAuth, String> {
    let templates = existing
        .iter()
        .filter(|s| secret_kind(s) == Some(RepoSecretKind::RepoCreds));
    let index = RepoCredentialIndex::from_secrets(templates.chain([wanted]));
    git_auth(&index, known_hosts, tls_certs, &creds.url, &creds.project)
}

/// Lists the remote's refs with `auth` through the sync engine's own Git transport, so
/// "works here" means "the controller's code can read it" (from this machine's network).
/// Blocking. `Ok`: how many refs were listed.
///
/// The URL policy is the permissive one: the request leaves this machine, not the
/// controller, so a loopback or `http://` URL endangers nothing here; the controller
/// applies its own policy when it reads the repository.
fn check_access(url: &str, auth: &GitAuth) -> Result<usize, String> {
    ls_remote(url, auth, &UrlPolicy::permissive())
        .map(|refs| refs.len())
        .map_err(|e| e.message)
}

/// Reads a credential file (`-`: standard input).
fn read_file(flag: &'static str, path: &Path) -> Result<String, RepoCliError> {
    let shown = path.display().to_string();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|error| RepoCliError::ReadFile {
        flag,
        path: shown.clone(),
        error,
    })?;
    if text.trim().is_empty() {
        return Err(RepoCliError::EmptyFile { flag, path: shown });
    }
    Ok(text)
}

async fn client(management: &Management) -> Result<Client, RepoCliError> {
    if management.kubeconfig.is_none() && management.context.is_none() {
        return crate::run::client()
            .await
            .map_err(|e| RepoCliError::Client(format!("{e:#}")));
    }
    let (kubeconfig, path) = cluster_add::read_kubeconfig(management.kubeconfig.as_deref())?;
    let context =
        cluster_add::management_context(&kubeconfig, management.context.as_deref(), &path)?;
    Ok(cluster_add::client_for(&kubeconfig, &context).await?)
}

/// Every repository and template Secret of `namespace`.
async fn repo_secrets(secrets: &Api<Secret>, namespace: &str) -> Result<Vec<Secret>, RepoCliError> {
    let selector =
        format!("{SECRET_TYPE_LABEL} in ({SECRET_TYPE_REPOSITORY},{SECRET_TYPE_REPO_CREDS})");
    let mut list = secrets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|error| RepoCliError::ListSecrets {
            namespace: namespace.to_owned(),
            error,
        })?
        .items;
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(list)
}

async fn config_map(
    client: &Client,
    namespace: &str,
    name: &'static str,
) -> Result<Option<ConfigMap>, RepoCliError> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|error| RepoCliError::ReadConfigMap {
            namespace: namespace.to_owned(),
            name,
            error,
        })
}

/// `argosy repo add|list|rm` in `namespace`; `add` reports its check on `progress`.
pub async fn run(
    management: &Management,
    namespace: &str,
    command: RepoCommand,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<(), RepoCliError> {
    match command {
        RepoCommand::Add(flags) => {
            // Flags and files first: a typo costs no round trip.
            let creds = credentials(&flags, &mut read_file)?;
            let client = client(management).await?;
            let line = add(&client, namespace, &flags, &creds, progress).await?;
            emit(out, &line)?;
        }
        RepoCommand::List { output } => {
            let client = client(management).await?;
            let secrets = Api::<Secret>::namespaced(client, namespace);
            let listed = repo_secrets(&secrets, namespace).await?;
            let (rows, warnings) = rows(&listed);
            for warning in warnings {
                let _ = writeln!(progress, "warning: {warning}");
            }
            let text = match output {
                Output::Table => format::table(&rows),
                other => encode(
                    &json!({"kind": "List", "items": serde_json::to_value(&rows).unwrap_or_default()}),
                    other,
                )?,
            };
            emit(out, &text)?;
        }
        RepoCommand::Rm {
            url,
            creds_template,
            project,
        } => {
            let kind = if creds_template {
                RepoSecretKind::RepoCreds
            } else {
                RepoSecretKind::Repository
            };
            let client = client(management).await?;
            let text = remove(&client, namespace, kind, &url, project.as_deref()).await?;
            emit(out, &text)?;
        }
    }
    Ok(())
}

/// `repo add` once the flags are read: plan, check, write.
async fn add(
    client: &Client,
    namespace: &str,
    flags: &AddFlags,
    creds: &RepoCredentials,
    progress: &mut dyn Write,
) -> Result<String, RepoCliError> {
    let kind = if flags.creds_template {
        RepoSecretKind::RepoCreds
    } else {
        RepoSecretKind::Repository
    };
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let wanted = repo_secret(kind, creds, namespace);
    let name = wanted.metadata.name.clone().unwrap_or_default();
    let existing = repo_secrets(&secrets, namespace).await?;
    let named = secrets
        .get_opt(&name)
        .await
        .map_err(|error| RepoCliError::ReadSecret {
            secret: format!("{namespace}/{name}"),
            error,
        })?;
    let plan = plan(
        kind,
        &wanted,
        creds,
        &existing,
        named.as_ref(),
        flags.upsert,
    )?;
    let shown = redact_url(&creds.url);
    if kind == RepoSecretKind::Repository && !matches!(plan, Plan::Unchanged(_)) {
        if flags.no_check {
            let _ = writeln!(progress, "not checking access to {shown} (--no-check)");
        } else if flags.repo_type == RepoType::Helm {
            let _ = writeln!(
                progress,
                "not checking access to {shown}: argosy checks Git repositories only"
            );
        } else {
            check(client, namespace, &wanted, creds, &existing, progress).await?;
        }
    }
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match &plan {
        Plan::Create(secret) => {
            secrets
                .create(&params, secret)
                .await
                .map_err(|error| written(kind, &shown, namespace, &name, error))?;
        }
        Plan::Update(secret) => {
            let updated_name = secret.metadata.name.clone().unwrap_or_default();
            // `replace` carries the resourceVersion read: a concurrent change is a conflict,
            // not silently overwritten.
            secrets
                .replace(&updated_name, &params, secret)
                .await
                .map_err(|error| RepoCliError::Write {
                    secret: format!("{namespace}/{updated_name}"),
                    error,
                })?;
        }
        Plan::Unchanged(_) => {}
    }
    Ok(added_line(kind, &creds.url, &plan, namespace))
}

/// A create that lost a race to another writer of the same name is [`RepoCliError::Exists`].
fn written(
    kind: RepoSecretKind,
    url: &str,
    namespace: &str,
    name: &str,
    error: kube::Error,
) -> RepoCliError {
    let secret = format!("{namespace}/{name}");
    match error {
        kube::Error::Api(status) if status.is_already_exists() => RepoCliError::Exists {
            what: what(kind),
            url: url.to_owned(),
            secret,
        },
        error => RepoCliError::Write { secret, error },
    }
}

/// The access check, as a progress step; a failure is [`RepoCliError::Check`].
async fn check(
    client: &Client,
    namespace: &str,
    wanted: &Secret,
    creds: &RepoCredentials,
    existing: &[Secret],
    progress: &mut dyn Write,
) -> Result<(), RepoCliError> {
    let shown = redact_url(&creds.url);
    let failed = |reason: String| RepoCliError::Check {
        url: shown.clone(),
        reason,
    };
    let known_hosts = config_map(client, namespace, SSH_KNOWN_HOSTS_CONFIGMAP)
        .await?
        .map(|cm| known_hosts(&cm))
        .unwrap_or_default();
    let tls_certs = config_map(client, namespace, TLS_CERTS_CONFIGMAP)
        .await?
        .map(|cm| tls_certs(&cm))
        .unwrap_or_default();
    let auth = check_auth(wanted, creds, existing, &known_hosts, &tls_certs).map_err(failed)?;
    let url = creds.url.clone();
    let mut progress = Progress { out: progress };
    progress
        .step(
            &format!("checking access to {shown}"),
            async {
                tokio::task::spawn_blocking(move || check_access(&url, &auth))
                    .await
                    .map_err(|e| failed(format!("the check did not finish: {e}")))?
                    .map_err(failed)
            },
            |refs| format!("ok ({refs} refs)"),
        )
        .await?;
    Ok(())
}

/// `repo rm`: Secrets annotated as Argo CD's (or Argosy's) are deleted, others only lose
/// their type label (Argo CD's `deleteSecret`).
async fn remove(
    client: &Client,
    namespace: &str,
    kind: RepoSecretKind,
    url: &str,
    project: Option<&str>,
) -> Result<String, RepoCliError> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let existing = repo_secrets(&secrets, namespace).await?;
    let matching = same_repository(&existing, kind, url, project);
    if matching.is_empty() {
        return Err(RepoCliError::NotFound {
            what: what(kind),
            url: redact_url(url),
            namespace: namespace.to_owned(),
        });
    }
    let mut text = String::new();
    for secret in matching {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let id = format!("{namespace}/{name}");
        let failed = |error| RepoCliError::Delete {
            secret: id.clone(),
            error,
        };
        let shown = redact_url(&raw_url(secret).unwrap_or_default());
        if managed_by_argo_cd(secret) {
            secrets
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(failed)?;
            text.push_str(&format!(
                "{} {shown} removed: deleted Secret {id}\n",
                what(kind)
            ));
        } else {
            let patch = json!({"metadata": {"labels": {SECRET_TYPE_LABEL: null}}});
            secrets
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(failed)?;
            text.push_str(&format!(
                "{} {shown} removed: Secret {id} was not written by argosy or Argo CD, so it is kept without its {SECRET_TYPE_LABEL} label\n",
                what(kind)
            ));
        }
    }
    Ok(text)
}

fn managed_by_argo_cd(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_BY_ANNOTATION))
        .is_some_and(|v| v == MANAGED_BY_ARGOCD)
}

/// Which kinds of credentials `creds` holds, by name.
#[must_use]
pub fn credential_kinds(creds: &RepoCredentials) -> Vec<&'static str> {
    [
        (
            creds.username.is_some() || creds.password.is_some(),
            "https",
        ),
        (creds.bearer_token.is_some(), "bearer"),
        (creds.ssh_private_key.is_some(), "ssh"),
        (creds.tls_client_cert.is_some(), "tls-client-cert"),
        (creds.github_app.is_some(), "github-app"),
    ]
    .into_iter()
    .filter_map(|(has, kind)| has.then_some(kind))
    .collect()
}

/// The rows of `repo list` (repositories, then templates, each by URL), and a warning per
/// Secret that does not parse (naming the field, never a value).
#[must_use]
pub fn rows(secrets: &[Secret]) -> (Vec<RepoRow>, Vec<String>) {
    let index = RepoCredentialIndex::from_secrets(secrets);
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for secret in secrets {
        let Some(kind) = secret_kind(secret) else {
            continue;
        };
        let id = argosy_crds::cluster::secret_id(secret);
        let row = match parse_secret(secret) {
            Ok(creds) => {
                let mut credentials = credential_kinds(&creds);
                if credentials.is_empty() {
                    let lent = kind == RepoSecretKind::Repository
                        && index
                            .resolve(&creds.url, &creds.project)
                            .ok()
                            .flatten()
                            .is_some_and(|c| c.has_credentials());
                    credentials.push(if lent { "inherited" } else { "none" });
                }
                RepoRow {
                    url: redact_url(&creds.url),
                    kind: format::kind_name(kind),
                    repo_type: if creds.repo_type.is_empty() {
                        "git".to_owned()
                    } else {
                        creds.repo_type
                    },
                    name: creds.name,
                    project: creds.project,
                    credentials: credentials.into_iter().map(str::to_owned).collect(),
                    insecure: creds.insecure || creds.insecure_ignore_host_key,
                    secret: id,
                }
            }
            Err(error) => {
                warnings.push(error.to_string());
                RepoRow {
                    url: redact_url(&raw_url(secret).unwrap_or_default()),
                    kind: format::kind_name(kind),
                    repo_type: String::new(),
                    name: String::new(),
                    project: String::new(),
                    credentials: vec!["invalid".to_owned()],
                    insecure: false,
                    secret: id,
                }
            }
        };
        rows.push(row);
    }
    // Repositories first, then templates; each by URL.
    rows.sort_by(|a, b| {
        let key = |r: &RepoRow| {
            (
                r.kind != format::kind_name(RepoSecretKind::Repository),
                r.url.clone(),
                r.secret.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    (rows, warnings)
}

#[cfg(test)]
mod tests;
