//! The Git push webhook: `POST /api/webhook` from GitHub, GitLab, Bitbucket Cloud,
//! Bitbucket Server, Gogs, Gitea or Azure DevOps, authenticated the way each provider signs,
//! read down to what the push moved ([`Push`]: the repository's URLs, the branch or tag,
//! whether it was the default branch) and handed to a callback (the controller asks the
//! leader to refresh what reads that repository: see [`crate::refresh`]).
//!
//! | provider | identified by | authenticated by | push events |
//! |---|---|---|---|
//! | Azure DevOps | `X-Vss-Activityid` | HTTP basic auth: the configured username and password | body `eventType: git.push` |
//! | Gitea | `X-Gitea-Event` | `X-Gitea-Signature`: hex HMAC-SHA256 of the body (the Gitea secret, else the Gogs one) | `push` |
//! | Gogs | `X-Gogs-Event` | `X-Gogs-Signature`: hex HMAC-SHA256 of the body | `push` |
//! | GitHub | `X-GitHub-Event` | `X-Hub-Signature-256`: `sha256=` and hex HMAC-SHA256 of the body | `push` |
//! | GitLab | `X-Gitlab-Event` | `X-Gitlab-Token`: the configured token | `Push Hook`, `Tag Push Hook` |
//! | Bitbucket Cloud | `X-Hook-UUID` | `X-Hook-UUID`: the webhook's UUID (Argo CD's check) | `X-Event-Key: repo:push` |
//! | Bitbucket Server | `X-Event-Key` | `X-Hub-Signature`: `sha256=` and hex HMAC-SHA256 of the body | `repo:refs_changed` |
//!
//! Providers are identified in that order, as Argo CD does: Gitea also sends Gogs' and
//! GitHub's headers, Gogs GitHub's, and Bitbucket Cloud and Server both send
//! `X-Event-Key`. Argo CD reads Gitea's hooks with its Gogs parser, so a setup moved from
//! Argo CD has only the Gogs secret: Gitea events are checked with it when no Gitea secret
//! is configured.
//!
//! A provider without a configured secret is refused: an unauthenticated webhook would let
//! anyone trigger fetches. Authenticated events other than pushes are acknowledged with
//! 204 and ignored (GitHub sends `ping` when a hook is created, and marks 4xx answers as
//! failed deliveries). Bitbucket Server's `diagnostics:ping` (its "Test connection") is
//! acknowledged without a signature check: it carries nothing and triggers nothing.
//! Secrets are compared in constant time and never appear in answers.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use argosy_sync_engine::repo::normalize_repo_url;

/// Payloads above this are refused with 413 unless configured otherwise (GitHub caps its
/// payloads at 25 MB, but a push event's repository fields come first and are small).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Who may call the webhook: one secret per provider (Argo CD's `webhook.*` keys of
/// `argocd-secret`). A provider whose secret is not set is refused.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The secret of the GitHub webhook.
    pub github_secret: Option<String>,
    /// The secret token of the GitLab webhook.
    pub gitlab_token: Option<String>,
    /// The UUID of the Bitbucket Cloud webhook (`X-Hook-UUID`).
    pub bitbucket_uuid: Option<String>,
    /// The secret of the Bitbucket Server webhook.
    pub bitbucket_server_secret: Option<String>,
    /// The secret of the Gogs webhook (and of Gitea's without [`Self::gitea_secret`]).
    pub gogs_secret: Option<String>,
    /// The secret of the Gitea webhook.
    pub gitea_secret: Option<String>,
    /// The basic-auth username of the Azure DevOps service hook (empty when unset).
    pub azure_devops_username: Option<String>,
    /// The basic-auth password of the Azure DevOps service hook.
    pub azure_devops_password: Option<String>,
    /// The largest payload accepted.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<redacted>" } else { "<none>" };
        f.debug_struct("WebhookConfig")
            .field("github_secret", &set(&self.github_secret))
            .field("gitlab_token", &set(&self.gitlab_token))
            .field("bitbucket_uuid", &set(&self.bitbucket_uuid))
            .field(
                "bitbucket_server_secret",
                &set(&self.bitbucket_server_secret),
            )
            .field("gogs_secret", &set(&self.gogs_secret))
            .field("gitea_secret", &set(&self.gitea_secret))
            .field("azure_devops_username", &set(&self.azure_devops_username))
            .field("azure_devops_password", &set(&self.azure_devops_password))
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            github_secret: None,
            gitlab_token: None,
            bitbucket_uuid: None,
            bitbucket_server_secret: None,
            gogs_secret: None,
            gitea_secret: None,
            azure_devops_username: None,
            azure_devops_password: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What one push moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The pushed repository's URLs, normalized ([`normalize_repo_url`]), distinct, sorted.
    pub urls: Vec<String>,
    /// The branch or tag pushed, as Argo CD's `ParseRevision` reads the ref
    /// (`refs/heads/main` is `main`); `None` when the payload names none, or several (then
    /// every revision of the repository may have moved).
    pub revision: Option<String>,
    /// Whether the push moved the repository's default branch (what `HEAD` means). True
    /// when the payload cannot tell (Bitbucket), as in Argo CD.
    pub touched_head: bool,
}

impl Push {
    /// Whether `repo_url` names the pushed repository. As Argo CD's match of the payload's
    /// URL: whatever the scheme, user and port, an `ssh.`/`altssh.` host prefix, and case.
    pub fn names(&self, repo_url: &str) -> bool {
        let wanted = repo_key(repo_url);
        self.urls.iter().any(|url| repo_key(url) == wanted)
    }

    /// Whether a source or generator at `target_revision` may have moved (Argo CD's
    /// `sourceRevisionHasChanged`): `HEAD` or empty when the default branch moved, else
    /// when it names the pushed branch or tag (`main`, `refs/heads/main`). A commit id
    /// never moves. (Argo CD also matches semver constraints against pushed tags; Argosy
    /// resolves no constraints, so none is matched.)
    pub fn moves(&self, target_revision: &str) -> bool {
        let Some(revision) = &self.revision else {
            return true;
        };
        let target = parse_revision(target_revision);
        if target.is_empty() || target == "HEAD" {
            return self.touched_head;
        }
        target == revision || target_revision == revision
    }
}

/// Argo CD's `ParseRevision`: what follows `refs/heads/`, `refs/tags/` (the ref's third
/// `/`-separated part on), else the last part.
fn parse_revision(reference: &str) -> &str {
    reference.splitn(3, '/').last().unwrap_or(reference)
}

/// A repository URL reduced to what Argo CD's webhook match compares: host (without port
/// and `ssh.`/`altssh.` prefix) and path, lowercased.
fn repo_key(url: &str) -> String {
    let normalized = normalize_repo_url(url);
    let rest = normalized
        .split_once("://")
        .map_or(normalized.as_str(), |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    // A port follows the last `:`, unless that is inside an IPv6 address's brackets.
    let host = match host.rsplit_once(':') {
        Some((address, _port)) if !host.ends_with(']') => address,
        _ => host,
    };
    let host = ["altssh.", "ssh."]
        .iter()
        .find_map(|prefix| host.strip_prefix(prefix))
        .unwrap_or(host);
    format!("{host}/{path}").to_ascii_lowercase()
}

/// Called with each authenticated push.
pub type OnPush = Arc<dyn Fn(Push) + Send + Sync>;

/// A webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{provider} webhooks are not accepted: no {provider} secret is configured")]
    NotConfigured { provider: &'static str },
    #[error("{provider} webhook: {header} is missing or wrong")]
    Authenticate {
        provider: &'static str,
        header: &'static str,
    },
    #[error("{provider} push payload: {message}")]
    ParsePayload {
        provider: &'static str,
        message: String,
    },
    #[error(
        "no webhook provider header (X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event, X-Gogs-Event, X-Hook-UUID, X-Event-Key, X-Vss-Activityid)"
    )]
    IdentifyProvider,
}

impl WebhookError {
    /// A bounded label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotConfigured { .. } => "not_configured",
            Self::Authenticate { .. } => "authentication",
            Self::ParsePayload { .. } => "payload",
            Self::IdentifyProvider => "unknown_provider",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotConfigured { .. } => StatusCode::FORBIDDEN,
            Self::Authenticate { .. } => StatusCode::UNAUTHORIZED,
            Self::ParsePayload { .. } | Self::IdentifyProvider => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        tracing::warn!(category = self.category(), "webhook refused: {self}");
        (self.status(), self.to_string()).into_response()
    }
}

struct Webhook {
    config: WebhookConfig,
    on_push: OnPush,
}

/// `POST /api/webhook`, calling `on_push` for each authenticated push event.
pub fn router(config: WebhookConfig, on_push: OnPush) -> Router {
    let limit = config.max_body_bytes;
    Router::new()
        .route("/api/webhook", post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(Webhook { config, on_push }))
}

async fn receive(
    State(hook): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, WebhookError> {
    let Some(push) = read_push(&hook.config, &headers, &body)? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    tracing::info!(repos = ?push.urls, revision = ?push.revision, touched_head = push.touched_head, "push webhook");
    (hook.on_push)(push);
    Ok(StatusCode::ACCEPTED)
}

/// The Git servers whose push webhooks are understood, in the order they are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    AzureDevOps,
    Gitea,
    Gogs,
    GitHub,
    GitLab,
    BitbucketCloud,
    BitbucketServer,
}

/// How a provider proves a request comes from it.
enum Credential {
    /// `header` is `prefix` and the hex HMAC-SHA256 of the body under the secret.
    Hmac {
        header: &'static str,
        prefix: &'static str,
    },
    /// `header` is the secret itself.
    Token { header: &'static str },
    /// `Authorization: Basic` with the configured username and the secret as password.
    BasicAuth,
}

impl Provider {
    const ALL: [Provider; 7] = [
        Provider::AzureDevOps,
        Provider::Gitea,
        Provider::Gogs,
        Provider::GitHub,
        Provider::GitLab,
        Provider::BitbucketCloud,
        Provider::BitbucketServer,
    ];

    fn name(self) -> &'static str {
        match self {
            Provider::AzureDevOps => "Azure DevOps",
            Provider::Gitea => "Gitea",
            Provider::Gogs => "Gogs",
            Provider::GitHub => "GitHub",
            Provider::GitLab => "GitLab",
            Provider::BitbucketCloud => "Bitbucket Cloud",
            Provider::BitbucketServer => "Bitbucket Server",
        }
    }

    /// The header whose presence says the request comes from this provider.
    fn identified_by(self) -> &'static str {
        match self {
            Provider::AzureDevOps => "x-vss-activityid",
            Provider::BitbucketCloud => "x-hook-uuid",
            other => other.event_header().unwrap_or_default(),
        }
    }

    /// The header naming the event (Azure DevOps names it in the body).
    fn event_header(self) -> Option<&'static str> {
        match self {
            Provider::AzureDevOps => None,
            Provider::Gitea => Some("x-gitea-event"),
            Provider::Gogs => Some("x-gogs-event"),
            Provider::GitHub => Some("x-github-event"),
            Provider::GitLab => Some("x-gitlab-event"),
            Provider::BitbucketCloud | Provider::BitbucketServer => Some("x-event-key"),
        }
    }

    /// The events that are pushes.
    fn push_events(self) -> &'static [&'static str] {
        match self {
            Provider::AzureDevOps => &["git.push"],
            Provider::Gitea | Provider::Gogs | Provider::GitHub => &["push"],
            Provider::GitLab => &["Push Hook", "Tag Push Hook"],
            Provider::BitbucketCloud => &["repo:push"],
            Provider::BitbucketServer => &["repo:refs_changed"],
        }
    }

    fn credential(self) -> Credential {
        match self {
            Provider::AzureDevOps => Credential::BasicAuth,
            Provider::Gitea => Credential::Hmac {
                header: "X-Gitea-Signature",
                prefix: "",
            },
            Provider::Gogs => Credential::Hmac {
                header: "X-Gogs-Signature",
                prefix: "",
            },
            Provider::GitHub => Credential::Hmac {
                header: "X-Hub-Signature-256",
                prefix: "sha256=",
            },
            Provider::BitbucketServer => Credential::Hmac {
                header: "X-Hub-Signature",
                prefix: "sha256=",
            },
            Provider::GitLab => Credential::Token {
                header: "X-Gitlab-Token",
            },
            Provider::BitbucketCloud => Credential::Token {
                header: "X-Hook-UUID",
            },
        }
    }

    /// The configured secret (for Azure DevOps: the password), if set and not empty.
    fn secret(self, config: &WebhookConfig) -> Option<&str> {
        let secret = match self {
            Provider::AzureDevOps => config.azure_devops_password.as_deref(),
            Provider::Gitea => config
                .gitea_secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .or(config.gogs_secret.as_deref()),
            Provider::Gogs => config.gogs_secret.as_deref(),
            Provider::GitHub => config.github_secret.as_deref(),
            Provider::GitLab => config.gitlab_token.as_deref(),
            Provider::BitbucketCloud => config.bitbucket_uuid.as_deref(),
            Provider::BitbucketServer => config.bitbucket_server_secret.as_deref(),
        };
        secret.filter(|s| !s.is_empty())
    }

    /// Checks the request's credential against the configured secret.
    fn authenticate(
        self,
        config: &WebhookConfig,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        let secret = self.secret(config).ok_or(WebhookError::NotConfigured {
            provider: self.name(),
        })?;
        let (valid, header) = match self.credential() {
            Credential::Hmac { header, prefix } => (
                signature_valid(secret, header_text(headers, header), prefix, body),
                header,
            ),
            Credential::Token { header } => (
                tokens_equal(secret, header_text(headers, header).unwrap_or("")),
                header,
            ),
            Credential::BasicAuth => {
                let username = config.azure_devops_username.as_deref().unwrap_or("");
                (
                    basic_auth_valid(username, secret, header_text(headers, "authorization")),
                    "Authorization",
                )
            }
        };
        if valid {
            Ok(())
        } else {
            Err(WebhookError::Authenticate {
                provider: self.name(),
                header,
            })
        }
    }

    /// What the push payload `body` says moved.
    fn read(self, body: &[u8]) -> Result<Push, WebhookError> {
        let provider = self.name();
        match self {
            Provider::GitHub => {
                let push: GitHubPush = parse(provider, body)?;
                let r = push.repository;
                let urls = vec![r.clone_url, r.html_url, r.ssh_url, r.git_url];
                let head = Head::Branch(r.default_branch);
                read_push_of(provider, urls, push.reference.into_iter().collect(), head)
            }
            Provider::GitLab => {
                let push: GitLabPush = parse(provider, body)?;
                let p = push.project;
                let urls = vec![p.git_http_url, p.git_ssh_url, p.web_url, p.http_url];
                let head = Head::Branch(p.default_branch);
                read_push_of(provider, urls, push.reference.into_iter().collect(), head)
            }
            Provider::Gogs | Provider::Gitea => {
                let push: GogsPush = parse(provider, body)?;
                let r = push.repository;
                let urls = vec![r.clone_url, r.ssh_url, r.html_url];
                let head = Head::Branch(r.default_branch);
                read_push_of(provider, urls, push.reference.into_iter().collect(), head)
            }
            Provider::BitbucketCloud => {
                let push: BitbucketCloudPush = parse(provider, body)?;
                let r = push.repository;
                // The payload has only the web page; the clone URLs follow from the full name.
                let derived = r.full_name.iter().flat_map(|name| {
                    [
                        Some(format!("https://bitbucket.org/{name}")),
                        Some(format!("git@bitbucket.org:{name}.git")),
                    ]
                });
                let urls = std::iter::once(r.links.html.href).chain(derived).collect();
                let refs = push
                    .push
                    .changes
                    .into_iter()
                    .filter_map(|c| c.new.and_then(|n| n.name))
                    .collect();
                read_push_of(provider, urls, refs, Head::Unknown)
            }
            Provider::BitbucketServer => {
                let push: BitbucketServerPush = parse(provider, body)?;
                let links = push.repository.links.clone;
                let urls = links.into_iter().map(|link| link.href).collect();
                let refs = push
                    .changes
                    .into_iter()
                    .filter_map(|c| c.reference.and_then(|r| r.id).or(c.ref_id))
                    .collect();
                read_push_of(provider, urls, refs, Head::Unknown)
            }
            Provider::AzureDevOps => {
                let push: AzurePush = parse(provider, body)?;
                let r = push.resource.repository;
                let derived_ssh = r.remote_url.as_deref().and_then(azure_ssh_url);
                let urls = vec![r.remote_url, r.ssh_url, r.web_url, derived_ssh];
                let refs = push
                    .resource
                    .ref_updates
                    .into_iter()
                    .filter_map(|u| u.name)
                    .collect();
                // Azure DevOps names the default branch in full (`refs/heads/main`).
                let head = Head::Branch(r.default_branch.map(|b| parse_revision(&b).to_owned()));
                read_push_of(provider, urls, refs, head)
            }
        }
    }
}

/// What a payload says of the repository's default branch.
enum Head {
    /// Its name, if the payload has it.
    Branch(Option<String>),
    /// The provider does not say (Bitbucket): any push may have moved it.
    Unknown,
}

/// Authenticates a webhook request and reads its push payload (see [`Push`]); `None` for
/// an authenticated event that is not a push (acknowledged and ignored). Pure, so the fuzz
/// loop and property tests reach it without an HTTP server.
pub fn read_push(
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Push>, WebhookError> {
    let provider = Provider::ALL
        .into_iter()
        .find(|p| headers.contains_key(p.identified_by()))
        .ok_or(WebhookError::IdentifyProvider)?;
    let event = provider
        .event_header()
        .map(|name| header_text(headers, name).unwrap_or_default());
    if provider == Provider::BitbucketServer && event == Some("diagnostics:ping") {
        provider.secret(config).ok_or(WebhookError::NotConfigured {
            provider: provider.name(),
        })?;
        return Ok(None);
    }
    provider.authenticate(config, headers, body)?;
    let event = match event {
        Some(event) => event.to_owned(),
        None => {
            let kind: AzureEvent = parse(provider.name(), body)?;
            kind.event_type.unwrap_or_default()
        }
    };
    if !provider.push_events().contains(&event.as_str()) {
        return Ok(None);
    }
    provider.read(body).map(Some)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

type HmacSha256 = Hmac<Sha256>;

/// Whether `header` is `prefix` followed by the hex HMAC-SHA256 of `body` under `secret`.
fn signature_valid(secret: &str, header: Option<&str>, prefix: &str, body: &[u8]) -> bool {
    let Some(signature) = header
        .and_then(|h| h.strip_prefix(prefix))
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
    else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// Whether `header` is `Basic` with `username:password`; both are compared in full, in
/// constant time, whichever differs.
fn basic_auth_valid(username: &str, password: &str, header: Option<&str>) -> bool {
    use base64::Engine as _;
    let Some(credentials) = header
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return false;
    };
    let (given_user, given_password) = credentials.split_once(':').unwrap_or((&credentials, ""));
    tokens_equal(username, given_user) & tokens_equal(password, given_password)
}

/// Compares two tokens in constant time: both are MACed under one key and the tags compared
/// with `verify_slice`, which neither stops at the first differing byte nor tells lengths apart.
pub(crate) fn tokens_equal(expected: &str, given: &str) -> bool {
    let tag = |token: &str| {
        HmacSha256::new_from_slice(b"argosy webhook token").map(|mut mac| {
            mac.update(token.as_bytes());
            mac
        })
    };
    match (tag(expected), tag(given)) {
        (Ok(expected), Ok(given)) => given.verify(&expected.finalize().into_bytes()).is_ok(),
        _ => false,
    }
}

fn parse<'a, T: Deserialize<'a>>(
    provider: &'static str,
    body: &'a [u8],
) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::ParsePayload {
        provider,
        message: e.to_string(),
    })
}

/// The [`Push`] of a payload's repository URLs, the refs it updated and its default branch.
fn read_push_of(
    provider: &'static str,
    urls: Vec<Option<String>>,
    refs: Vec<String>,
    head: Head,
) -> Result<Push, WebhookError> {
    let urls: BTreeSet<String> = urls
        .into_iter()
        .flatten()
        .filter(|u| !u.trim().is_empty())
        .map(|u| normalize_repo_url(&u))
        .collect();
    if urls.is_empty() {
        return Err(WebhookError::ParsePayload {
            provider,
            message: "no repository URL".to_owned(),
        });
    }
    // One ref names the revision; several (Bitbucket Server, Azure DevOps) could be any.
    let revision = match refs.as_slice() {
        [one] => Some(parse_revision(one).to_owned()),
        _ => None,
    };
    let touched_head = match head {
        Head::Unknown => true,
        Head::Branch(default_branch) => {
            revision.is_some() && revision.as_deref() == default_branch.as_deref()
        }
    };
    Ok(Push {
        urls: urls.into_iter().collect(),
        revision,
        touched_head,
    })
}

/// The SSH clone URL of an Azure DevOps repository, from its HTTPS `remoteUrl`
/// (`https://dev.azure.com/ORG/PROJECT/_git/REPO` is `git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO`,
/// `https://ORG.visualstudio.com/PROJECT/_git/REPO` is
/// `ORG@vs-ssh.visualstudio.com:v3/ORG/PROJECT/REPO`); `None` for other hosts.
fn azure_ssh_url(remote_url: &str) -> Option<String> {
    let normalized = normalize_repo_url(remote_url);
    let (host, path) = normalized.strip_prefix("https://")?.split_once('/')?;
    let (before, repo) = path.split_once("/_git/")?;
    let mut parts = before.split('/');
    if host == "dev.azure.com" {
        let (org, project) = (parts.next()?, parts.next()?);
        Some(format!("git@ssh.dev.azure.com:v3/{org}/{project}/{repo}"))
    } else {
        let org = host.strip_suffix(".visualstudio.com")?;
        // An optional collection (`DefaultCollection`) comes before the project.
        let project = parts.next_back()?;
        Some(format!(
            "{org}@vs-ssh.visualstudio.com:v3/{org}/{project}/{repo}"
        ))
    }
}

/// The fields of a GitHub `push` event that say what moved.
#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    reference: Option<String>,
    repository: GitHubRepository,
}

#[derive(Deserialize)]
struct GitHubRepository {
    clone_url: Option<String>,
    html_url: Option<String>,
    ssh_url: Option<String>,
    git_url: Option<String>,
    default_branch: Option<String>,
}

/// The fields of a GitLab `Push Hook` / `Tag Push Hook` event that say what moved.
#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    reference: Option<String>,
    project: GitLabProject,
}

#[derive(Deserialize)]
struct GitLabProject {
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    web_url: Option<String>,
    http_url: Option<String>,
    default_branch: Option<String>,
}

/// The fields of a Gogs or Gitea `push` event that say what moved.
#[derive(Deserialize)]
struct GogsPush {
    #[serde(rename = "ref")]
    reference: Option<String>,
    repository: GogsRepository,
}

#[derive(Deserialize)]
struct GogsRepository {
    clone_url: Option<String>,
    ssh_url: Option<String>,
    html_url: Option<String>,
    default_branch: Option<String>,
}

/// The fields of a Bitbucket Cloud `repo:push` event that say what moved.
#[derive(Deserialize)]
struct BitbucketCloudPush {
    #[serde(default)]
    push: BitbucketChanges,
    repository: BitbucketCloudRepository,
}

#[derive(Default, Deserialize)]
struct BitbucketChanges {
    #[serde(default)]
    changes: Vec<BitbucketChange>,
}

#[derive(Deserialize)]
struct BitbucketChange {
    /// The ref after the push; `null` when it was deleted.
    new: Option<BitbucketRef>,
}

#[derive(Deserialize)]
struct BitbucketRef {
    name: Option<String>,
}

#[derive(Deserialize)]
struct BitbucketCloudRepository {
    full_name: Option<String>,
    #[serde(default)]
    links: BitbucketCloudLinks,
}

#[derive(Default, Deserialize)]
struct BitbucketCloudLinks {
    #[serde(default)]
    html: BitbucketLink,
}

#[derive(Default, Deserialize)]
struct BitbucketLink {
    href: Option<String>,
}

/// The fields of a Bitbucket Server `repo:refs_changed` event that say what moved.
#[derive(Deserialize)]
struct BitbucketServerPush {
    repository: BitbucketServerRepository,
    #[serde(default)]
    changes: Vec<BitbucketServerChange>,
}

#[derive(Deserialize)]
struct BitbucketServerRepository {
    #[serde(default)]
    links: BitbucketServerLinks,
}

#[derive(Default, Deserialize)]
struct BitbucketServerLinks {
    #[serde(default)]
    clone: Vec<BitbucketLink>,
}

#[derive(Deserialize)]
struct BitbucketServerChange {
    #[serde(rename = "ref")]
    reference: Option<BitbucketServerRef>,
    #[serde(rename = "refId")]
    ref_id: Option<String>,
}

#[derive(Deserialize)]
struct BitbucketServerRef {
    id: Option<String>,
}

/// The event type of an Azure DevOps service hook.
#[derive(Deserialize)]
struct AzureEvent {
    #[serde(rename = "eventType")]
    event_type: Option<String>,
}

/// The fields of an Azure DevOps `git.push` event that say what moved.
#[derive(Deserialize)]
struct AzurePush {
    resource: AzureResource,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureResource {
    #[serde(default)]
    ref_updates: Vec<AzureRefUpdate>,
    repository: AzureRepository,
}

#[derive(Deserialize)]
struct AzureRefUpdate {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureRepository {
    remote_url: Option<String>,
    ssh_url: Option<String>,
    web_url: Option<String>,
    default_branch: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "gh-s3cret";
    const TOKEN: &str = "gl-t0ken";
    const BITBUCKET_UUID: &str = "{3f1b7d0e-8d5c-4c47-9d1a-4b1f0e6c2a11}";
    const BITBUCKET_SERVER_SECRET: &str = "bbs-s3cret";
    const GOGS_SECRET: &str = "gogs-s3cret";
    const GITEA_SECRET: &str = "gitea-s3cret";
    const AZURE_USER: &str = "argosy";
    const AZURE_PASSWORD: &str = "azure-s3cret";

    const GITHUB_PUSH: &str = r#"{
        "ref": "refs/heads/main",
        "before": "9b2f9e7c5a3d1f0e8c6b4a2d0f9e7c5a3d1f0e8c",
        "after": "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
        "repository": {
            "full_name": "org/Repo",
            "clone_url": "https://GitHub.com/org/Repo.git",
            "html_url": "https://github.com/org/Repo",
            "ssh_url": "git@github.com:org/Repo.git",
            "git_url": "git://github.com/org/Repo.git",
            "default_branch": "main"
        },
        "commits": [{"id": "0d1e2f3a", "added": [], "modified": ["apps/web.yaml"], "removed": []}]
    }"#;

    const GITLAB_PUSH: &str = r#"{
        "object_kind": "push",
        "ref": "refs/heads/release/1.2",
        "project": {
            "git_http_url": "https://gitlab.example.com/group/app.git",
            "git_ssh_url": "git@gitlab.example.com:group/app.git",
            "web_url": "https://gitlab.example.com/group/app",
            "http_url": "https://gitlab.example.com/group/app.git",
            "default_branch": "main"
        }
    }"#;

    const BITBUCKET_CLOUD_PUSH: &str = r#"{
        "actor": {"display_name": "A. Dev"},
        "repository": {
            "type": "repository",
            "name": "fleet",
            "full_name": "team/fleet",
            "links": {
                "self": {"href": "https://api.bitbucket.org/2.0/repositories/team/fleet"},
                "html": {"href": "https://bitbucket.org/team/fleet"}
            }
        },
        "push": {"changes": [{
            "old": {"type": "branch", "name": "main", "target": {"hash": "1e65c05c"}},
            "new": {"type": "branch", "name": "main", "target": {"hash": "24f8a7c1"}},
            "created": false, "closed": false
        }]}
    }"#;

    const BITBUCKET_SERVER_PUSH: &str = r#"{
        "eventKey": "repo:refs_changed",
        "date": "2019-06-17T19:37:57+1000",
        "repository": {
            "slug": "test-repo",
            "project": {"key": "MYPROJECT"},
            "links": {
                "clone": [
                    {"href": "ssh://git@bitbucketserver:7999/myproject/test-repo.git", "name": "ssh"},
                    {"href": "https://bitbucketserver/scm/myproject/test-repo.git", "name": "http"}
                ],
                "self": [{"href": "https://bitbucketserver/projects/MYPROJECT/repos/test-repo/browse"}]
            }
        },
        "changes": [{
            "ref": {"id": "refs/heads/master", "displayId": "master", "type": "BRANCH"},
            "refId": "refs/heads/master",
            "fromHash": "f09c8889a2d234985734958795a31589cd91ffda",
            "toHash": "22671f0349857934857983457983475ec39f196b",
            "type": "UPDATE"
        }]
    }"#;

    const GOGS_PUSH: &str = r#"{
        "ref": "refs/heads/master",
        "before": "0000000000000000000000000000000000000000",
        "after": "2a4e4f2fdc5e0a1b0c7c6c4e0b9b7d1c2f3e4d5a",
        "repository": {
            "full_name": "john/repo-test",
            "html_url": "http://gogs-server/john/repo-test",
            "ssh_url": "git@gogs-server:john/repo-test.git",
            "clone_url": "http://gogs-server/john/repo-test.git",
            "default_branch": "master"
        }
    }"#;

    const GITEA_PUSH: &str = r#"{
        "ref": "refs/tags/v1.4.0",
        "before": "0000000000000000000000000000000000000000",
        "after": "8e1d6c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d",
        "repository": {
            "full_name": "infra/fleet",
            "html_url": "https://gitea.example.com/infra/fleet",
            "ssh_url": "git@gitea.example.com:infra/fleet.git",
            "clone_url": "https://gitea.example.com/infra/fleet.git",
            "default_branch": "main"
        }
    }"#;

    const AZURE_PUSH: &str = r#"{
        "subscriptionId": "8fd412f1-9873-4b45-8854-655b1b8a2eff",
        "eventType": "git.push",
        "publisherId": "tfs",
        "resource": {
            "refUpdates": [{
                "name": "refs/heads/master",
                "oldObjectId": "fa51eeb1e50b98293ce281e6d5492b9decae613b",
                "newObjectId": "298a79aa1552799a70718a0ee914d153d5a1a76b"
            }],
            "repository": {
                "id": "ba2967cc-02c2-414c-8d10-1b99197cbaa6",
                "name": "alex-test",
                "defaultBranch": "refs/heads/master",
                "remoteUrl": "https://alexander0053@dev.azure.com/alexander0053/alex-test/_git/alex-test"
            }
        }
    }"#;

    fn config() -> WebhookConfig {
        WebhookConfig {
            github_secret: Some(SECRET.to_owned()),
            gitlab_token: Some(TOKEN.to_owned()),
            bitbucket_uuid: Some(BITBUCKET_UUID.to_owned()),
            bitbucket_server_secret: Some(BITBUCKET_SERVER_SECRET.to_owned()),
            gogs_secret: Some(GOGS_SECRET.to_owned()),
            gitea_secret: Some(GITEA_SECRET.to_owned()),
            azure_devops_username: Some(AZURE_USER.to_owned()),
            azure_devops_password: Some(AZURE_PASSWORD.to_owned()),
            ..WebhookConfig::default()
        }
    }

    const SECRETS: [&str; 8] = [
        SECRET,
        TOKEN,
        BITBUCKET_UUID,
        BITBUCKET_SERVER_SECRET,
        GOGS_SECRET,
        GITEA_SECRET,
        AZURE_USER,
        AZURE_PASSWORD,
    ];

    /// Sends one request; returns the status, the answer's body and what the callback got.
    async fn send(
        config: WebhookConfig,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, String, Vec<Push>) {
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let seen = pushes.clone();
        let app = router(
            config,
            Arc::new(move |push| seen.lock().unwrap().push(push)),
        );
        let mut request = Request::post("/api/webhook");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let text = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(text.to_vec()).unwrap();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{text}");
        }
        let pushes = pushes.lock().unwrap().clone();
        (status, text, pushes)
    }

    fn hex_hmac(secret: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn sign(secret: &str, body: &str) -> String {
        format!("sha256={}", hex_hmac(secret, body.as_bytes()))
    }

    /// The headers `provider` sends with `body` for `event`, its credential made from
    /// `secret` (the configured one, or a wrong one).
    fn headers_of(
        provider: Provider,
        event: &str,
        body: &[u8],
        secret: &str,
    ) -> Vec<(&'static str, String)> {
        use base64::Engine as _;
        let event = event.to_owned();
        match provider {
            Provider::AzureDevOps => {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{AZURE_USER}:{secret}"));
                vec![
                    (
                        "x-vss-activityid",
                        "5d7f6e2a-1b3c-4d5e-8f90-a1b2c3d4e5f6".into(),
                    ),
                    ("authorization", format!("Basic {credentials}")),
                ]
            }
            Provider::Gitea => vec![
                ("x-gitea-event", event.clone()),
                ("x-gogs-event", event.clone()),
                ("x-github-event", event),
                ("x-gitea-signature", hex_hmac(secret, body)),
            ],
            Provider::Gogs => vec![
                ("x-gogs-event", event),
                ("x-gogs-signature", hex_hmac(secret, body)),
            ],
            Provider::GitHub => vec![
                ("x-github-event", event),
                (
                    "x-hub-signature-256",
                    format!("sha256={}", hex_hmac(secret, body)),
                ),
            ],
            Provider::GitLab => vec![("x-gitlab-event", event), ("x-gitlab-token", secret.into())],
            Provider::BitbucketCloud => {
                vec![("x-event-key", event), ("x-hook-uuid", secret.into())]
            }
            Provider::BitbucketServer => vec![
                ("x-event-key", event),
                (
                    "x-hub-signature",
                    format!("sha256={}", hex_hmac(secret, body)),
                ),
            ],
        }
    }

    fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
        headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
    }

    /// One push of each provider: its payload, its push event, its configured secret and
    /// what it moved.
    fn pushes() -> Vec<(Provider, &'static str, &'static str, &'static str, Push)> {
        let push = |urls: &[&str], revision: &str, touched_head: bool| Push {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            revision: Some(revision.to_owned()),
            touched_head,
        };
        vec![
            (
                Provider::GitHub,
                "push",
                SECRET,
                GITHUB_PUSH,
                push(
                    &[
                        "git://github.com/org/Repo",
                        "https://github.com/org/Repo",
                        "ssh://github.com/org/Repo",
                    ],
                    "main",
                    true,
                ),
            ),
            (
                Provider::GitLab,
                "Push Hook",
                TOKEN,
                GITLAB_PUSH,
                push(
                    &[
                        "https://gitlab.example.com/group/app",
                        "ssh://gitlab.example.com/group/app",
                    ],
                    "release/1.2",
                    false,
                ),
            ),
            (
                Provider::BitbucketCloud,
                "repo:push",
                BITBUCKET_UUID,
                BITBUCKET_CLOUD_PUSH,
                push(
                    &[
                        "https://bitbucket.org/team/fleet",
                        "ssh://bitbucket.org/team/fleet",
                    ],
                    "main",
                    true,
                ),
            ),
            (
                Provider::BitbucketServer,
                "repo:refs_changed",
                BITBUCKET_SERVER_SECRET,
                BITBUCKET_SERVER_PUSH,
                push(
                    &[
                        "https://bitbucketserver/scm/myproject/test-repo",
                        "ssh://bitbucketserver:7999/myproject/test-repo",
                    ],
                    "master",
                    true,
                ),
            ),
            (
                Provider::Gogs,
                "push",
                GOGS_SECRET,
                GOGS_PUSH,
                push(
                    &[
                        "http://gogs-server/john/repo-test",
                        "ssh://gogs-server/john/repo-test",
                    ],
                    "master",
                    true,
                ),
            ),
            (
                Provider::Gitea,
                "push",
                GITEA_SECRET,
                GITEA_PUSH,
                push(
                    &[
                        "https://gitea.example.com/infra/fleet",
                        "ssh://gitea.example.com/infra/fleet",
                    ],
                    "v1.4.0",
                    false,
                ),
            ),
            (
                Provider::AzureDevOps,
                "git.push",
                AZURE_PASSWORD,
                AZURE_PUSH,
                push(
                    &[
                        "https://dev.azure.com/alexander0053/alex-test/_git/alex-test",
                        "ssh://ssh.dev.azure.com/v3/alexander0053/alex-test/alex-test",
                    ],
                    "master",
                    true,
                ),
            ),
        ]
    }

    #[tokio::test]
    async fn each_provider_reads_a_push_with_its_credential() {
        for (provider, event, secret, body, expected) in pushes() {
            let headers = headers_of(provider, event, body.as_bytes(), secret);
            let (status, text, seen) = send(config(), &borrowed(&headers), body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{provider:?}: {text}");
            assert_eq!(seen, [expected], "{provider:?}");
        }
    }

    #[tokio::test]
    async fn each_provider_refuses_a_wrong_or_missing_credential() {
        for (provider, event, _, body, _) in pushes() {
            let wrong = headers_of(provider, event, body.as_bytes(), "wrong");
            let (status, text, seen) = send(config(), &borrowed(&wrong), body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{provider:?}: {text}");
            assert!(seen.is_empty());
            // Without the credential header: only the headers that name the provider.
            let credential = match provider.credential() {
                Credential::Hmac { header, .. } | Credential::Token { header } => header,
                Credential::BasicAuth => "Authorization",
            };
            let mut missing: Vec<(&'static str, String)> = wrong
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case(credential))
                .collect();
            if provider == Provider::BitbucketCloud {
                // Its credential is also what names it: without it, it is Bitbucket Server.
                missing.push(("x-hook-uuid", String::new()));
            }
            let (status, text, seen) = send(config(), &borrowed(&missing), body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{provider:?}: {text}");
            assert!(seen.is_empty());
        }
    }

    #[tokio::test]
    async fn each_provider_ignores_other_events_but_authenticates_them_first() {
        let others = [
            (Provider::GitHub, "ping", SECRET),
            (Provider::GitLab, "Issue Hook", TOKEN),
            (
                Provider::BitbucketCloud,
                "pullrequest:created",
                BITBUCKET_UUID,
            ),
            (
                Provider::BitbucketServer,
                "pr:opened",
                BITBUCKET_SERVER_SECRET,
            ),
            (Provider::Gogs, "issues", GOGS_SECRET),
            (Provider::Gitea, "create", GITEA_SECRET),
        ];
        let body = r#"{"zen": "Keep it logically awesome."}"#;
        for (provider, event, secret) in others {
            let headers = headers_of(provider, event, body.as_bytes(), secret);
            let (status, text, seen) = send(config(), &borrowed(&headers), body).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{provider:?}: {text}");
            assert!(seen.is_empty());
            let wrong = headers_of(provider, event, body.as_bytes(), "wrong");
            let (status, _, _) = send(config(), &borrowed(&wrong), body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{provider:?}");
        }
        // Azure DevOps names the event in the body.
        let pull_request = AZURE_PUSH.replace("git.push", "git.pullrequest.created");
        let headers = headers_of(
            Provider::AzureDevOps,
            "",
            pull_request.as_bytes(),
            AZURE_PASSWORD,
        );
        let (status, _, seen) = send(config(), &borrowed(&headers), pull_request).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(seen.is_empty());
    }

    #[tokio::test]
    async fn bitbucket_servers_ping_is_acknowledged_unsigned() {
        let ping = [("x-event-key", "diagnostics:ping")];
        let (status, _, seen) = send(config(), &ping, "").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(seen.is_empty());
        let unconfigured = WebhookConfig {
            bitbucket_server_secret: None,
            ..config()
        };
        let (status, _, _) = send(unconfigured, &ping, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn gitea_is_checked_with_the_gogs_secret_without_its_own() {
        let gogs_only = WebhookConfig {
            gitea_secret: None,
            ..config()
        };
        let headers = headers_of(Provider::Gitea, "push", GITEA_PUSH.as_bytes(), GOGS_SECRET);
        let (status, _, seen) = send(gogs_only, &borrowed(&headers), GITEA_PUSH).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(seen.len(), 1);
        // With its own secret the Gogs one does not do.
        let (status, _, _) = send(config(), &borrowed(&headers), GITEA_PUSH).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn bad_or_missing_github_signature_is_401() {
        let tampered = GITHUB_PUSH.replace("org/Repo", "org/Other");
        let wrong_secret = sign("other", GITHUB_PUSH);
        let signed_other_body = sign(SECRET, GITHUB_PUSH);
        for (signature, body) in [
            (Some(wrong_secret.as_str()), GITHUB_PUSH),
            (Some(signed_other_body.as_str()), tampered.as_str()),
            (Some("sha256=zz"), GITHUB_PUSH),
            (None, GITHUB_PUSH),
        ] {
            let mut headers = vec![("x-github-event", "push")];
            headers.extend(signature.map(|s| ("x-hub-signature-256", s)));
            let (status, text, pushes) = send(config(), &headers, body.to_owned()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}");
            assert!(text.contains("X-Hub-Signature-256"), "{text}");
            assert!(pushes.is_empty());
        }
    }

    #[tokio::test]
    async fn gitlab_tokens_must_match_exactly() {
        for token in ["gl-t0keN", "gl-t0ken ", ""] {
            let (status, _, pushes) = send(
                config(),
                &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", token)],
                GITLAB_PUSH,
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            assert!(pushes.is_empty());
        }
    }

    #[tokio::test]
    async fn a_provider_without_a_secret_is_refused() {
        let none = WebhookConfig {
            gitlab_token: Some(String::new()),
            ..WebhookConfig::default()
        };
        for (provider, event, secret, body, _) in pushes() {
            let headers = headers_of(provider, event, body.as_bytes(), secret);
            let (status, text, pushes) = send(none.clone(), &borrowed(&headers), body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{provider:?}");
            assert!(text.contains("no ") && text.contains("secret"), "{text}");
            assert!(pushes.is_empty());
        }
    }

    #[tokio::test]
    async fn oversized_payload_is_413() {
        let config = WebhookConfig {
            max_body_bytes: 64,
            ..config()
        };
        let signature = sign(SECRET, GITHUB_PUSH);
        let headers = [
            ("x-github-event", "push"),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let (status, _, pushes) = send(config, &headers, GITHUB_PUSH).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(pushes.is_empty());
    }

    #[tokio::test]
    async fn malformed_or_urlless_payload_is_400() {
        for body in ["{not json", r#"{"repository": {}}"#, r#"{"ref": "x"}"#] {
            let signature = sign(SECRET, body);
            let headers = [
                ("x-github-event", "push"),
                ("x-hub-signature-256", signature.as_str()),
            ];
            let (status, text, pushes) = send(config(), &headers, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(text.starts_with("GitHub push payload: "), "{text}");
            assert!(pushes.is_empty());
        }
    }

    #[tokio::test]
    async fn unknown_senders_are_refused() {
        let (status, text, pushes) = send(config(), &[], GITHUB_PUSH).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("no webhook provider header"), "{text}");
        assert!(pushes.is_empty());
    }

    #[test]
    fn a_push_moves_the_sources_at_its_branch_or_tag() {
        let push = |revision: Option<&str>, touched_head: bool| Push {
            urls: vec!["https://github.com/org/Repo".to_owned()],
            revision: revision.map(str::to_owned),
            touched_head,
        };
        let main = push(Some("main"), true);
        for target in ["", "HEAD", "main", "refs/heads/main"] {
            assert!(main.moves(target), "{target:?}");
        }
        for target in [
            "release",
            "v1.0",
            "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
        ] {
            assert!(!main.moves(target), "{target:?}");
        }
        let feature = push(Some("team/feature"), false);
        assert!(feature.moves("team/feature") && feature.moves("refs/heads/team/feature"));
        assert!(!feature.moves("HEAD") && !feature.moves("main"));
        let tag = push(Some("v1.4.0"), false);
        assert!(tag.moves("v1.4.0") && tag.moves("refs/tags/v1.4.0"));
        // A payload that names no single ref may have moved anything.
        let unknown = push(None, false);
        assert!(unknown.moves("HEAD") && unknown.moves("release"));
    }

    #[test]
    fn a_push_names_its_repository_whatever_the_spelling() {
        let push = Push {
            urls: vec!["https://github.com/org/Repo".to_owned()],
            revision: None,
            touched_head: true,
        };
        for url in [
            "https://github.com/org/Repo.git",
            "https://github.com/org/repo",
            "git@github.com:org/Repo.git",
            "ssh://git@ssh.github.com:443/org/Repo.git",
            "https://user:token@GitHub.com/org/Repo/",
        ] {
            assert!(push.names(url), "{url}");
        }
        for url in [
            "https://github.com/org/Repo2",
            "https://github.com/other/Repo",
            "https://gitlab.com/org/Repo",
        ] {
            assert!(!push.names(url), "{url}");
        }
    }

    #[test]
    fn azure_devops_ssh_urls_follow_from_the_https_ones() {
        assert_eq!(
            azure_ssh_url("https://org@dev.azure.com/org/Project/_git/repo").as_deref(),
            Some("git@ssh.dev.azure.com:v3/org/Project/repo")
        );
        assert_eq!(
            azure_ssh_url("https://org.visualstudio.com/DefaultCollection/Project/_git/repo")
                .as_deref(),
            Some("org@vs-ssh.visualstudio.com:v3/org/Project/repo")
        );
        assert_eq!(azure_ssh_url("https://tfs.example.com/c/p/_git/r"), None);
        assert_eq!(azure_ssh_url("https://dev.azure.com/org/repo"), None);
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("abc", ""));
    }

    #[test]
    fn basic_auth_needs_both_username_and_password() {
        use base64::Engine as _;
        let basic = |text: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        assert!(basic_auth_valid("u", "p", Some(&basic("u:p"))));
        assert!(basic_auth_valid("", "p:q", Some(&basic(":p:q"))));
        for wrong in ["u:x", "x:p", "u", "u:p ", ""] {
            assert!(!basic_auth_valid("u", "p", Some(&basic(wrong))), "{wrong}");
        }
        assert!(!basic_auth_valid("u", "p", Some("Basic !!!")));
        assert!(!basic_auth_valid("u", "p", Some("Bearer dTpw")));
        assert!(!basic_auth_valid("u", "p", None));
    }

    mod properties {
        //! Property tests (issue #15 item 9): any payload, signed or not, any headers, for
        //! every provider.
        use proptest::prelude::*;

        use super::*;

        fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(v) = value.parse() {
                    h.insert(*name, v);
                }
            }
            h
        }

        /// A payload near the providers', with any values.
        fn payload() -> impl Strategy<Value = Vec<u8>> {
            let value = || {
                prop_oneof![
                    "\\PC{0,32}".prop_map(serde_json::Value::from),
                    any::<i64>().prop_map(serde_json::Value::from),
                    Just(serde_json::Value::Null),
                    Just(serde_json::json!([{"href": "https://h/r", "name": "http"}])),
                ]
            };
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..128),
                (
                    prop::sample::select(vec!["repository", "project", "resource", "push"]),
                    prop::sample::select(vec![
                        "clone_url",
                        "ssh_url",
                        "git_http_url",
                        "web_url",
                        "full_name",
                        "remoteUrl",
                        "links",
                        "changes",
                        "refUpdates",
                        "default_branch",
                    ]),
                    value(),
                    prop::sample::select(vec!["ref", "eventType", "changes"]),
                    value(),
                )
                    .prop_map(|(object, field, value, top, top_value)| {
                        serde_json::json!({
                            object: { field: value },
                            top: top_value,
                            "resource": {"repository": {field: "https://h/o/r"}},
                        })
                        .to_string()
                        .into_bytes()
                    }),
            ]
        }

        fn provider() -> impl Strategy<Value = (Provider, &'static str, &'static str)> {
            prop::sample::select(vec![
                (Provider::GitHub, "push", SECRET),
                (Provider::GitLab, "Push Hook", TOKEN),
                (Provider::BitbucketCloud, "repo:push", BITBUCKET_UUID),
                (
                    Provider::BitbucketServer,
                    "repo:refs_changed",
                    BITBUCKET_SERVER_SECRET,
                ),
                (Provider::Gogs, "push", GOGS_SECRET),
                (Provider::Gitea, "push", GITEA_SECRET),
                (Provider::AzureDevOps, "git.push", AZURE_PASSWORD),
            ])
        }

        proptest! {
            #[test]
            fn signed_payloads_never_panic_and_urls_are_normalized(
                body in payload(),
                (provider, event, secret) in provider(),
                other_event in "\\PC{0,12}",
            ) {
                for event in [event, other_event.as_str()] {
                    let headers = header_map(&headers_of(provider, event, &body, secret));
                    if let Ok(Some(push)) = read_push(&config(), &headers, &body) {
                        prop_assert!(!push.urls.is_empty());
                        for url in push.urls {
                            prop_assert_eq!(normalize_repo_url(&url), url.clone());
                        }
                    }
                }
            }

            #[test]
            fn wrong_credentials_are_refused(
                body in payload(),
                (provider, event, secret) in provider(),
                wrong in "\\PC{0,80}",
            ) {
                prop_assume!(wrong != secret);
                let headers = header_map(&headers_of(provider, event, &body, &wrong));
                let read = read_push(&config(), &headers, &body);
                prop_assert!(matches!(read, Err(WebhookError::Authenticate { .. })), "{provider:?}: {read:?}");
            }
        }
    }
}
