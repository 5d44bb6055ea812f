//! The Git push webhook: `POST /api/webhook` from GitHub or GitLab, authenticated, read
//! down to the URLs of the repository that was pushed to, and handed to a callback (the
//! controller refreshes those repositories and reconciles what reads them).
//!
//! * GitHub: `X-GitHub-Event`, signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw
//!   body under the configured secret).
//! * GitLab: `X-Gitlab-Event`, with the configured token in `X-Gitlab-Token`.
//!
//! A provider without a configured secret is refused: an unauthenticated webhook would let
//! anyone trigger fetches. Authenticated events other than pushes are acknowledged with
//! 204 and ignored (GitHub sends `ping` when a hook is created, and marks 4xx answers as
//! failed deliveries). Secrets are compared in constant time and never appear in answers.

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

/// Who may call the webhook.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The secret of the GitHub webhook; GitHub events are refused without one.
    pub github_secret: Option<String>,
    /// The secret token of the GitLab webhook; GitLab events are refused without one.
    pub gitlab_token: Option<String>,
    /// The largest payload accepted.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<redacted>" } else { "<none>" };
        f.debug_struct("WebhookConfig")
            .field("github_secret", &set(&self.github_secret))
            .field("gitlab_token", &set(&self.gitlab_token))
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            github_secret: None,
            gitlab_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Called with the normalized URLs (see [`normalize_repo_url`]) of a pushed repository.
pub type OnPush = Arc<dyn Fn(Vec<String>) + Send + Sync>;

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
    #[error("neither X-GitHub-Event nor X-Gitlab-Event is set")]
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
    let Some(urls) = push_urls(&hook.config, &headers, &body)? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    tracing::info!(repos = ?urls, "push webhook");
    (hook.on_push)(urls);
    Ok(StatusCode::ACCEPTED)
}

/// Authenticates a webhook request and reads its push payload down to the normalized
/// repository URLs; `None` for an authenticated event that is not a push (acknowledged and
/// ignored). Pure, so the fuzz loop and property tests reach it without an HTTP server.
pub fn push_urls(
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Vec<String>>, WebhookError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(event) = header("x-github-event") {
        const PROVIDER: &str = "GitHub";
        let secret = configured(PROVIDER, config.github_secret.as_deref())?;
        if !github_signature_valid(secret, header("x-hub-signature-256"), body) {
            return Err(WebhookError::Authenticate {
                provider: PROVIDER,
                header: "X-Hub-Signature-256",
            });
        }
        if event != "push" {
            return Ok(None);
        }
        let push: GitHubPush = parse(PROVIDER, body)?;
        let r = push.repository;
        repo_urls(PROVIDER, [r.clone_url, r.html_url, r.ssh_url, r.git_url]).map(Some)
    } else if let Some(event) = header("x-gitlab-event") {
        const PROVIDER: &str = "GitLab";
        let token = configured(PROVIDER, config.gitlab_token.as_deref())?;
        if !tokens_equal(token, header("x-gitlab-token").unwrap_or("")) {
            return Err(WebhookError::Authenticate {
                provider: PROVIDER,
                header: "X-Gitlab-Token",
            });
        }
        if !matches!(event, "Push Hook" | "Tag Push Hook") {
            return Ok(None);
        }
        let push: GitLabPush = parse(PROVIDER, body)?;
        let p = push.project;
        repo_urls(
            PROVIDER,
            [p.git_http_url, p.git_ssh_url, p.web_url, p.http_url],
        )
        .map(Some)
    } else {
        Err(WebhookError::IdentifyProvider)
    }
}

fn configured<'a>(
    provider: &'static str,
    secret: Option<&'a str>,
) -> Result<&'a str, WebhookError> {
    secret
        .filter(|s| !s.is_empty())
        .ok_or(WebhookError::NotConfigured { provider })
}

type HmacSha256 = Hmac<Sha256>;

/// Whether `header` is `sha256=<hex HMAC-SHA256 of body under secret>`.
fn github_signature_valid(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(signature) = header
        .and_then(|h| h.strip_prefix("sha256="))
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

/// The distinct normalized forms of the payload's repository URLs.
fn repo_urls(
    provider: &'static str,
    urls: impl IntoIterator<Item = Option<String>>,
) -> Result<Vec<String>, WebhookError> {
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
    Ok(urls.into_iter().collect())
}

/// The fields of a GitHub `push` event that name the repository.
#[derive(Deserialize)]
struct GitHubPush {
    repository: GitHubRepository,
}

#[derive(Deserialize)]
struct GitHubRepository {
    clone_url: Option<String>,
    html_url: Option<String>,
    ssh_url: Option<String>,
    git_url: Option<String>,
}

/// The fields of a GitLab `Push Hook` / `Tag Push Hook` event that name the repository.
#[derive(Deserialize)]
struct GitLabPush {
    project: GitLabProject,
}

#[derive(Deserialize)]
struct GitLabProject {
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    web_url: Option<String>,
    http_url: Option<String>,
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

    const GITHUB_PUSH: &str = r#"{
        "ref": "refs/heads/main",
        "repository": {
            "clone_url": "https://GitHub.com/org/Repo.git",
            "html_url": "https://github.com/org/Repo",
            "ssh_url": "git@github.com:org/Repo.git",
            "git_url": "git://github.com/org/Repo.git"
        }
    }"#;

    const GITLAB_PUSH: &str = r#"{
        "object_kind": "push",
        "project": {
            "git_http_url": "https://gitlab.example.com/group/app.git",
            "git_ssh_url": "git@gitlab.example.com:group/app.git",
            "web_url": "https://gitlab.example.com/group/app",
            "http_url": "https://gitlab.example.com/group/app.git"
        }
    }"#;

    fn config() -> WebhookConfig {
        WebhookConfig {
            github_secret: Some(SECRET.to_owned()),
            gitlab_token: Some(TOKEN.to_owned()),
            ..WebhookConfig::default()
        }
    }

    /// Sends one request; returns the status, the answer's body and what the callback got.
    async fn send(
        config: WebhookConfig,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, String, Vec<Vec<String>>) {
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let seen = pushes.clone();
        let app = router(
            config,
            Arc::new(move |urls| seen.lock().unwrap().push(urls)),
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
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
        let pushes = pushes.lock().unwrap().clone();
        (status, text, pushes)
    }

    fn sign(secret: &str, body: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[tokio::test]
    async fn signed_github_push_calls_back_with_normalized_urls() {
        let signature = sign(SECRET, GITHUB_PUSH);
        let headers = [
            ("x-github-event", "push"),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let (status, _, pushes) = send(config(), &headers, GITHUB_PUSH).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            pushes,
            [[
                "git://github.com/org/Repo",
                "https://github.com/org/Repo",
                "ssh://github.com/org/Repo",
            ]]
        );
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
    async fn gitlab_push_with_the_right_token_only() {
        let (status, _, pushes) = send(
            config(),
            &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", TOKEN)],
            GITLAB_PUSH,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            pushes,
            [[
                "https://gitlab.example.com/group/app",
                "ssh://gitlab.example.com/group/app",
            ]]
        );

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
        let config = WebhookConfig {
            github_secret: None,
            gitlab_token: Some(String::new()),
            ..config()
        };
        let signature = sign(SECRET, GITHUB_PUSH);
        let github = [
            ("x-github-event", "push"),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let gitlab = [("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "")];
        for (headers, body) in [(&github[..], GITHUB_PUSH), (&gitlab[..], GITLAB_PUSH)] {
            let (status, text, pushes) = send(config.clone(), headers, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
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
    async fn other_events_are_ignored_and_unknown_senders_refused() {
        let ping = r#"{"zen": "Keep it logically awesome."}"#;
        let signature = sign(SECRET, ping);
        let headers = [
            ("x-github-event", "ping"),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let (status, _, pushes) = send(config(), &headers, ping).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(pushes.is_empty());

        let headers = [("x-gitlab-event", "Issue Hook"), ("x-gitlab-token", TOKEN)];
        let (status, _, pushes) = send(config(), &headers, "{}").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(pushes.is_empty());

        // Authentication comes before the event type: an unsigned ping is still refused.
        let (status, _, _) = send(config(), &[("x-github-event", "ping")], ping).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, _, pushes) = send(config(), &[], GITHUB_PUSH).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(pushes.is_empty());
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("abc", ""));
    }

    mod properties {
        //! Property tests (issue #15 item 9): any payload, signed or not, any headers.
        use proptest::prelude::*;

        use super::*;

        fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(v) = value.parse() {
                    h.insert(*name, v);
                }
            }
            h
        }

        /// A payload near GitHub's and GitLab's, with any values.
        fn payload() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..128),
                (
                    prop::sample::select(vec!["repository", "project"]),
                    prop::sample::select(vec!["clone_url", "ssh_url", "git_http_url", "web_url"]),
                    prop_oneof![
                        "\\PC{0,32}".prop_map(serde_json::Value::from),
                        any::<i64>().prop_map(serde_json::Value::from),
                        Just(serde_json::Value::Null)
                    ],
                )
                    .prop_map(|(object, field, value)| {
                        serde_json::json!({ object: { field: value } })
                            .to_string()
                            .into_bytes()
                    }),
            ]
        }

        proptest! {
            #[test]
            fn signed_payloads_never_panic_and_urls_are_normalized(body in payload(), event in "\\PC{0,12}") {
                let signature = sign(SECRET, &String::from_utf8_lossy(&body));
                // `sign` signs the lossy text; sign the bytes as GitHub does.
                let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(&body);
                let exact = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                for h in [
                    headers(&[("x-github-event", "push"), ("x-hub-signature-256", &exact)]),
                    headers(&[("x-github-event", &event), ("x-hub-signature-256", &signature)]),
                    headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", TOKEN)]),
                    headers(&[("x-gitlab-event", &event), ("x-gitlab-token", TOKEN)]),
                ] {
                    if let Ok(Some(urls)) = push_urls(&config(), &h, &body) {
                        prop_assert!(!urls.is_empty());
                        for url in urls {
                            prop_assert_eq!(normalize_repo_url(&url), url.clone());
                        }
                    }
                }
            }

            #[test]
            fn wrong_signatures_and_tokens_are_refused(body in payload(), signature in "\\PC{0,80}", token in "\\PC{0,12}") {
                let github = push_urls(&config(), &headers(&[("x-github-event", "push"), ("x-hub-signature-256", &signature)]), &body);
                prop_assert!(matches!(github, Err(WebhookError::Authenticate { .. })), "{github:?}");
                prop_assume!(token != TOKEN);
                let gitlab = push_urls(&config(), &headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", &token)]), &body);
                prop_assert!(matches!(gitlab, Err(WebhookError::Authenticate { .. })), "{gitlab:?}");
            }
        }
    }
}
