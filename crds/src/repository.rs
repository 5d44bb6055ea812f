//! Argo CD's repository credentials: `repository` Secrets (one URL each) and `repo-creds`
//! Secrets (credential templates for every URL under a prefix), parsed, and the one pure
//! resolver that says which credentials a repository URL is read with.
//!
//! The rules are Argo CD's (`util/db/repository_secrets.go`, `repository_types.go`):
//!
//! * A `repository` Secret matches a URL when both normalize to the same string
//!   ([`normalize_repo_url`]). A Secret with `project` set is used only by that project's
//!   Applications and wins over an unscoped one; an unscoped one serves every project.
//! * When the matching `repository` Secret carries no credentials of its own (or there is
//!   none), the `repo-creds` template whose normalized URL is the longest prefix of the
//!   normalized repository URL lends its credentials, field by field where the repository
//!   left them empty (`CopyCredentialsFrom`).
//! * Fields of the Secrets' `data` keep Argo CD's names: `url`, `type`, `name`, `project`,
//!   `username`, `password`, `bearerToken`, `tlsClientCertData`, `tlsClientCertKey`,
//!   `insecure`, `insecureIgnoreHostKey`, `forceHttpBasicAuth`, `proxy`, `noProxy`,
//!   `sshPrivateKey`, `githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey`,
//!   `githubAppEnterpriseBaseUrl`, `enableOCI`.
//!
//! Every credential is [`Sensitive`]; parse errors name the Secret and the field, never a
//! value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::cluster::Sensitive;
use crate::project::normalize_repo_url;

/// Value of [`crate::consts::SECRET_TYPE_LABEL`] on a repository Secret.
pub const SECRET_TYPE_REPOSITORY: &str = "repository";
/// Value of [`crate::consts::SECRET_TYPE_LABEL`] on a credential template Secret.
pub const SECRET_TYPE_REPO_CREDS: &str = "repo-creds";
/// The `ConfigMap` of SSH host keys (`data.ssh_known_hosts`, OpenSSH `known_hosts` format).
pub const SSH_KNOWN_HOSTS_CONFIGMAP: &str = "argocd-ssh-known-hosts-cm";
/// The key of [`SSH_KNOWN_HOSTS_CONFIGMAP`] holding the host keys.
pub const SSH_KNOWN_HOSTS_KEY: &str = "ssh_known_hosts";
/// The `ConfigMap` of extra CA certificates, PEM by server host name.
pub const TLS_CERTS_CONFIGMAP: &str = "argocd-tls-certs-cm";

/// Which of Argo CD's two repository Secret kinds a Secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoSecretKind {
    /// `repository`: credentials for one URL.
    Repository,
    /// `repo-creds`: a template for every URL under a prefix.
    RepoCreds,
}

impl RepoSecretKind {
    /// The label value Argo CD uses for this kind.
    #[must_use]
    pub fn label_value(self) -> &'static str {
        match self {
            Self::Repository => SECRET_TYPE_REPOSITORY,
            Self::RepoCreds => SECRET_TYPE_REPO_CREDS,
        }
    }
}

/// A GitHub App's identity, exchanged for an installation token before each use (cached
/// until it expires).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubApp {
    /// `githubAppID`.
    pub app_id: i64,
    /// `githubAppInstallationID`.
    pub installation_id: i64,
    /// `githubAppPrivateKey`, PEM.
    pub private_key: Sensitive,
    /// `githubAppEnterpriseBaseUrl`: the API root of GitHub Enterprise (default
    /// `https://api.github.com`).
    pub enterprise_base_url: Option<String>,
}

/// What to read a repository with: one `repository` or `repo-creds` Secret, parsed, or the
/// two merged by [`RepoCredentialIndex::resolve`].
// Argo CD's flags, one field each, as its Secret has them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoCredentials {
    /// `namespace/name` of the Secret(s) these came from, for messages (`a + b` when a
    /// template filled in a repository Secret).
    pub secret: String,
    /// `url`: the repository (or, for a template, the prefix).
    pub url: String,
    /// `name`, shown by the CLI.
    pub name: String,
    /// `project`: only this project's Applications use a scoped repository Secret.
    pub project: String,
    /// `type`: `git` (default) or `helm`.
    pub repo_type: String,
    /// `username`, for HTTP basic auth (a token goes in `password`).
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Sensitive>,
    /// `bearerToken`: sent as `Authorization: Bearer`.
    pub bearer_token: Option<Sensitive>,
    /// `tlsClientCertData`, PEM.
    pub tls_client_cert: Option<Sensitive>,
    /// `tlsClientCertKey`, PEM.
    pub tls_client_key: Option<Sensitive>,
    /// `insecure`: skip TLS verification (and, as in Argo CD, SSH host key checking).
    pub insecure: bool,
    /// `insecureIgnoreHostKey`: skip SSH host key checking.
    pub insecure_ignore_host_key: bool,
    /// `forceHttpBasicAuth`: send basic auth with the first request instead of after a 401.
    pub force_http_basic_auth: bool,
    /// `proxy`: an HTTP(S) proxy URL.
    pub proxy: Option<String>,
    /// `noProxy`: hosts not proxied (comma separated).
    pub no_proxy: Option<String>,
    /// `sshPrivateKey`, OpenSSH or PEM.
    pub ssh_private_key: Option<Sensitive>,
    /// `githubApp*` fields, when `githubAppPrivateKey` and `githubAppID` are both set.
    pub github_app: Option<GitHubApp>,
    /// `enableOCI` (Helm repositories).
    pub enable_oci: bool,
}

/// A repository Secret could not be read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepoSecretError {
    /// `data.url` is missing or empty.
    #[error("repository Secret {secret}: data.url is missing")]
    MissingUrl {
        /// `namespace/name`.
        secret: String,
    },
    /// A field is not valid UTF-8, or a flag or number does not parse. The value is not
    /// quoted: it may be a secret.
    #[error("repository Secret {secret}: data.{field} is not {expected}")]
    Field {
        /// `namespace/name`.
        secret: String,
        /// The `data` key.
        field: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
}

impl RepoSecretError {
    /// A bounded label for logs and metrics.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::MissingUrl { .. } => "missing_url",
            Self::Field { .. } => "field",
        }
    }
}

/// The kind of repository Secret `secret` is, by its label; `None` for any other Secret.
#[must_use]
pub fn secret_kind(secret: &Secret) -> Option<RepoSecretKind> {
    let labels = secret.metadata.labels.as_ref()?;
    match labels.get(crate::consts::SECRET_TYPE_LABEL)?.as_str() {
        SECRET_TYPE_REPOSITORY => Some(RepoSecretKind::Repository),
        SECRET_TYPE_REPO_CREDS => Some(RepoSecretKind::RepoCreds),
        _ => None,
    }
}

/// Reads a `repository` or `repo-creds` Secret (`data`, and `stringData` as the API server
/// would have merged it).
pub fn parse_secret(secret: &Secret) -> Result<RepoCredentials, RepoSecretError> {
    let name = format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    let fields = Fields {
        secret: &name,
        data: &data,
    };
    let url = fields.text("url")?.unwrap_or_default();
    if url.trim().is_empty() {
        return Err(RepoSecretError::MissingUrl { secret: name });
    }
    let app_id = fields.int("githubAppID")?;
    let installation_id = fields.int("githubAppInstallationID")?;
    let app_key = fields.sensitive("githubAppPrivateKey")?;
    let github_app = match (app_key, app_id) {
        (Some(private_key), Some(app_id)) if app_id != 0 => Some(GitHubApp {
            app_id,
            installation_id: installation_id.unwrap_or_default(),
            private_key,
            enterprise_base_url: fields.text("githubAppEnterpriseBaseUrl")?,
        }),
        _ => None,
    };
    Ok(RepoCredentials {
        url,
        name: fields.text("name")?.unwrap_or_default(),
        project: fields.text("project")?.unwrap_or_default(),
        repo_type: fields.text("type")?.unwrap_or_default(),
        username: fields.text("username")?,
        password: fields.sensitive("password")?,
        bearer_token: fields.sensitive("bearerToken")?,
        tls_client_cert: fields.sensitive("tlsClientCertData")?,
        tls_client_key: fields.sensitive("tlsClientCertKey")?,
        insecure: fields.flag("insecure")?,
        insecure_ignore_host_key: fields.flag("insecureIgnoreHostKey")?,
        force_http_basic_auth: fields.flag("forceHttpBasicAuth")?,
        proxy: fields.text("proxy")?,
        no_proxy: fields.text("noProxy")?,
        ssh_private_key: fields.sensitive("sshPrivateKey")?,
        github_app,
        enable_oci: fields.flag("enableOCI")?,
        secret: name,
    })
}

/// Typed reads of one Secret's `data`, errors naming the field only.
struct Fields<'a> {
    secret: &'a str,
    data: &'a BTreeMap<String, Vec<u8>>,
}

impl Fields<'_> {
    fn error(&self, field: &'static str, expected: &'static str) -> RepoSecretError {
        RepoSecretError::Field {
            secret: self.secret.to_owned(),
            field,
            expected,
        }
    }

    /// The field as text; an empty value counts as absent, as Go's `""` does.
    fn text(&self, field: &'static str) -> Result<Option<String>, RepoSecretError> {
        match self.data.get(field) {
            None => Ok(None),
            Some(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|_| self.error(field, "UTF-8"))?;
                Ok((!text.is_empty()).then(|| text.to_owned()))
            }
        }
    }

    fn sensitive(&self, field: &'static str) -> Result<Option<Sensitive>, RepoSecretError> {
        Ok(self.text(field)?.map(Sensitive::from))
    }

    /// Go's `strconv.ParseBool`, absent or empty being false (Argo CD's `boolOrFalse`).
    fn flag(&self, field: &'static str) -> Result<bool, RepoSecretError> {
        match self.text(field)?.as_deref() {
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            None | Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(_) => Err(self.error(field, "a boolean")),
        }
    }

    /// A decimal integer, absent or empty being none (Argo CD's `intOrZero`).
    fn int(&self, field: &'static str) -> Result<Option<i64>, RepoSecretError> {
        self.text(field)?
            .map(|text| {
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| self.error(field, "an integer"))
            })
            .transpose()
    }
}

impl RepoCredentials {
    /// Argo CD's `HasCredentials`: whether this Secret authenticates by itself (else a
    /// template may lend it credentials).
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
            || self.password.is_some()
            || self.bearer_token.is_some()
            || self.ssh_private_key.is_some()
            || self.tls_client_cert.is_some()
            || self.github_app.is_some()
    }

    /// Argo CD's `CopyCredentialsFrom`: fills what this repository left empty from the
    /// template; the template's flags win.
    fn inherit(&mut self, template: &RepoCredentials) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: Option<&T>) {
            if mine.is_none() {
                *mine = theirs.cloned();
            }
        }
        fill(&mut self.username, template.username.as_ref());
        fill(&mut self.password, template.password.as_ref());
        fill(&mut self.bearer_token, template.bearer_token.as_ref());
        fill(&mut self.ssh_private_key, template.ssh_private_key.as_ref());
        fill(&mut self.tls_client_cert, template.tls_client_cert.as_ref());
        fill(&mut self.tls_client_key, template.tls_client_key.as_ref());
        fill(&mut self.github_app, template.github_app.as_ref());
        fill(&mut self.proxy, template.proxy.as_ref());
        fill(&mut self.no_proxy, template.no_proxy.as_ref());
        if self.repo_type.is_empty() {
            self.repo_type.clone_from(&template.repo_type);
        }
        self.enable_oci = template.enable_oci;
        self.force_http_basic_auth = template.force_http_basic_auth;
        self.secret = format!("{} + {}", self.secret, template.secret);
    }

    /// Argo CD's `IsInsecure`: either flag skips both TLS verification and host key checks.
    #[must_use]
    pub fn is_insecure(&self) -> bool {
        self.insecure || self.insecure_ignore_host_key
    }
}

/// Every repository and template Secret, indexed for [`Self::resolve`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoCredentialIndex {
    repositories: Vec<(String, RepoCredentials)>,
    /// Templates by normalized URL prefix, longest first.
    templates: Vec<(String, RepoCredentials)>,
    /// Secrets that did not parse, by the normalized URL they name (if readable): a
    /// repository they would serve gets their error, not an anonymous read that fails
    /// with a puzzling "authentication required".
    invalid: Vec<(RepoSecretKind, String, RepoSecretError)>,
}

impl RepoCredentialIndex {
    /// Indexes parsed Secrets of both kinds.
    #[must_use]
    pub fn new(secrets: impl IntoIterator<Item = (RepoSecretKind, RepoCredentials)>) -> Self {
        let mut index = Self::default();
        for (kind, creds) in secrets {
            let key = normalize_repo_url(&creds.url);
            match kind {
                RepoSecretKind::Repository => index.repositories.push((key, creds)),
                RepoSecretKind::RepoCreds => index.templates.push((key, creds)),
            }
        }
        // Longest prefix first; equal lengths keep the order given (Argo CD takes the first
        // and warns).
        index
            .templates
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        index
    }

    /// Indexes Secrets as listed: those that are not repository Secrets are skipped, those
    /// that do not parse are kept as errors for the URLs they name.
    #[must_use]
    pub fn from_secrets<'s>(secrets: impl IntoIterator<Item = &'s Secret>) -> Self {
        let mut parsed = Vec::new();
        let mut invalid = Vec::new();
        for secret in secrets {
            let Some(kind) = secret_kind(secret) else {
                continue;
            };
            match parse_secret(secret) {
                Ok(creds) => parsed.push((kind, creds)),
                Err(error) => {
                    let url = raw_url(secret).map(|u| normalize_repo_url(&u));
                    invalid.push((kind, url.unwrap_or_default(), error));
                }
            }
        }
        let mut index = Self::new(parsed);
        index.invalid = invalid;
        index
    }

    /// The credentials an Application of `project` reads `url` with; `None`: anonymous.
    /// A Secret that would serve `url` but does not parse is an error.
    pub fn resolve(
        &self,
        url: &str,
        project: &str,
    ) -> Result<Option<RepoCredentials>, RepoSecretError> {
        let key = normalize_repo_url(url);
        let broken = self.invalid.iter().find(|(kind, at, _)| {
            !at.is_empty()
                && match kind {
                    RepoSecretKind::Repository => *at == key,
                    RepoSecretKind::RepoCreds => key.starts_with(at.as_str()),
                }
        });
        if let Some((_, _, error)) = broken {
            return Err(error.clone());
        }
        Ok(self.resolve_parsed(&key, url, project))
    }

    fn resolve_parsed(&self, key: &str, url: &str, project: &str) -> Option<RepoCredentials> {
        let matching = self.repositories.iter().filter(|(k, _)| k == key);
        let mut repository = None;
        for (_, creds) in matching {
            if !creds.project.is_empty() && creds.project == project {
                repository = Some(creds);
                break;
            }
            if creds.project.is_empty() && repository.is_none() {
                repository = Some(creds);
            }
        }
        if let Some(repository) = repository
            && repository.has_credentials()
        {
            return Some(repository.clone());
        }
        let template = self
            .templates
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map(|(_, creds)| creds);
        match (repository, template) {
            (Some(repository), Some(template)) => {
                let mut merged = repository.clone();
                merged.inherit(template);
                Some(merged)
            }
            (Some(only), None) | (None, Some(only)) => {
                let mut creds = only.clone();
                if repository.is_none() {
                    // A template's URL is a prefix; the credentials are for this repository.
                    url.clone_into(&mut creds.url);
                    creds.project.clear();
                }
                Some(creds)
            }
            (None, None) => None,
        }
    }

    /// The `repository` Secrets, as listed by `argosy repo list`.
    pub fn repositories(&self) -> impl Iterator<Item = &RepoCredentials> {
        self.repositories.iter().map(|(_, creds)| creds)
    }

    /// The `repo-creds` templates, longest prefix first.
    pub fn templates(&self) -> impl Iterator<Item = &RepoCredentials> {
        self.templates.iter().map(|(_, creds)| creds)
    }
}

/// `data.url` (or `stringData.url`) as written, when readable.
fn raw_url(secret: &Secret) -> Option<String> {
    let from_string = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get("url"))
        .cloned();
    from_string.or_else(|| {
        let bytes = secret.data.as_ref()?.get("url")?;
        String::from_utf8(bytes.0.clone()).ok()
    })
}

/// `argocd-ssh-known-hosts-cm`'s host keys (`known_hosts` text), empty when absent.
#[must_use]
pub fn known_hosts(config_map: &ConfigMap) -> String {
    config_map
        .data
        .as_ref()
        .and_then(|data| data.get(SSH_KNOWN_HOSTS_KEY))
        .cloned()
        .unwrap_or_default()
}

/// `argocd-tls-certs-cm`'s CA certificates, PEM by server host name.
#[must_use]
pub fn tls_certs(config_map: &ConfigMap) -> BTreeMap<String, String> {
    config_map.data.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(kind: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("s-{}", data.len())),
                namespace: Some("argocd".into()),
                labels: Some(BTreeMap::from([(
                    crate::consts::SECRET_TYPE_LABEL.to_owned(),
                    kind.to_owned(),
                )])),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn parsed(kind: &str, data: &[(&str, &str)]) -> (RepoSecretKind, RepoCredentials) {
        let s = secret(kind, data);
        (
            secret_kind(&s).expect("a repository Secret"),
            parse_secret(&s).expect("parses"),
        )
    }

    #[test]
    fn fields_keep_argo_cd_names() {
        let (kind, creds) = parsed(
            "repository",
            &[
                ("url", "https://git.example.com/org/app.git"),
                ("username", "bot"),
                ("password", "hunter2"),
                ("insecure", "true"),
                ("forceHttpBasicAuth", "True"),
                ("proxy", "http://proxy:3128"),
                ("noProxy", "internal"),
                ("githubAppID", "42"),
                ("githubAppInstallationID", "7"),
                ("githubAppPrivateKey", "PEM"),
            ],
        );
        assert_eq!(kind, RepoSecretKind::Repository);
        assert_eq!(creds.username.as_deref(), Some("bot"));
        assert_eq!(
            creds.password.as_ref().map(Sensitive::expose),
            Some("hunter2")
        );
        assert!(creds.insecure && creds.force_http_basic_auth);
        assert_eq!(creds.proxy.as_deref(), Some("http://proxy:3128"));
        let app = creds.github_app.clone().expect("a GitHub App");
        assert_eq!((app.app_id, app.installation_id), (42, 7));
        assert!(!format!("{creds:?}").contains("hunter2"));
    }

    #[test]
    fn bad_fields_are_named_without_their_value() {
        let s = secret(
            "repository",
            &[("url", "https://x/y"), ("insecure", "s3cr3t-ish")],
        );
        let error = parse_secret(&s).expect_err("not a boolean");
        assert_eq!(error.category(), "field");
        assert!(error.to_string().contains("data.insecure"));
        assert!(!error.to_string().contains("s3cr3t"));
        let no_url = secret("repository", &[("username", "u")]);
        assert_eq!(
            parse_secret(&no_url).expect_err("no url").category(),
            "missing_url"
        );
        let other = secret("cluster", &[("url", "x")]);
        assert_eq!(secret_kind(&other), None);
    }

    #[test]
    fn the_longest_template_prefix_wins_and_fills_only_what_is_missing() {
        let index = RepoCredentialIndex::new([
            parsed(
                "repo-creds",
                &[
                    ("url", "https://git.example.com/"),
                    ("password", "org-wide"),
                ],
            ),
            parsed(
                "repo-creds",
                &[
                    ("url", "https://git.example.com/team-a"),
                    ("username", "a"),
                    ("password", "team-a"),
                ],
            ),
            parsed(
                "repository",
                &[("url", "https://GIT.example.com/team-a/app.git")],
            ),
        ]);
        let app = index
            .resolve("https://git.example.com/team-a/app", "default")
            .expect("no broken Secret")
            .expect("a template covers it");
        assert_eq!(app.password.as_ref().map(Sensitive::expose), Some("team-a"));
        assert_eq!(app.username.as_deref(), Some("a"));
        let other = index
            .resolve("https://git.example.com/team-b/x.git", "p")
            .expect("no broken Secret")
            .expect("the org-wide template");
        assert_eq!(
            other.password.as_ref().map(Sensitive::expose),
            Some("org-wide")
        );
        assert_eq!(other.url, "https://git.example.com/team-b/x.git");
        assert_eq!(index.resolve("https://elsewhere/x", "p"), Ok(None));
    }

    #[test]
    fn a_repository_with_its_own_credentials_ignores_templates() {
        let index = RepoCredentialIndex::new([
            parsed(
                "repo-creds",
                &[("url", "https://git.example.com"), ("password", "template")],
            ),
            parsed(
                "repository",
                &[
                    ("url", "https://git.example.com/app"),
                    ("sshPrivateKey", "KEY"),
                ],
            ),
        ]);
        let creds = index
            .resolve("https://git.example.com/app.git", "p")
            .expect("no broken Secret")
            .expect("the repository Secret");
        assert!(creds.password.is_none());
        assert!(creds.ssh_private_key.is_some());
    }

    #[test]
    fn a_project_scoped_repository_serves_only_its_project() {
        let index = RepoCredentialIndex::new([
            parsed(
                "repository",
                &[
                    ("url", "git@git.example.com:org/app.git"),
                    ("project", "tenant-a"),
                    ("password", "a"),
                ],
            ),
            parsed(
                "repository",
                &[
                    ("url", "ssh://git@git.example.com/org/app"),
                    ("password", "shared"),
                ],
            ),
        ]);
        let pw = |project: &str| {
            index
                .resolve("git@git.example.com:org/app.git", project)
                .expect("no broken Secret")
                .and_then(|c| c.password.map(|p| p.expose().to_owned()))
        };
        assert_eq!(pw("tenant-a").as_deref(), Some("a"));
        assert_eq!(pw("tenant-b").as_deref(), Some("shared"));
        let scoped_only = RepoCredentialIndex::new([parsed(
            "repository",
            &[
                ("url", "https://x/app"),
                ("project", "a"),
                ("password", "a"),
            ],
        )]);
        assert_eq!(scoped_only.resolve("https://x/app", "b"), Ok(None));
    }

    #[test]
    fn a_broken_secret_is_the_error_of_the_repositories_it_names() {
        let broken = secret(
            "repo-creds",
            &[
                ("url", "https://git.example.com/org"),
                ("insecure", "maybe"),
            ],
        );
        let fine = secret(
            "repository",
            &[("url", "https://other/app"), ("password", "p")],
        );
        let index = RepoCredentialIndex::from_secrets([&broken, &fine]);
        let error = index
            .resolve("https://git.example.com/org/app", "p")
            .expect_err("the template under that prefix is broken");
        assert_eq!(error.category(), "field");
        assert!(
            index
                .resolve("https://other/app", "p")
                .expect("fine")
                .is_some()
        );
        assert_eq!(index.resolve("https://third/app", "p"), Ok(None));
    }
}
