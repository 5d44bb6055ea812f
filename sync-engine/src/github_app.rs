//! GitHub App installation tokens: what a repository Secret with `githubAppID`,
//! `githubAppInstallationID` and `githubAppPrivateKey` is read with.
//!
//! GitHub does not accept the App's key for Git. The App signs a short-lived JWT with it
//! (RS256, `iss` = the App ID), trades that JWT for an installation token at
//! `POST {api}/app/installations/{id}/access_tokens`, and the installation token is the
//! HTTPS password (user `x-access-token`) for about an hour. [`GitHubAppTokens`] does the
//! trade and keeps each token until 5 minutes before it expires, so a busy repository cache
//! asks GitHub once an hour, not once per fetch.
//!
//! Blocking on purpose: it runs on the `spawn_blocking` threads where gix fetches, and
//! reqwest's blocking client (the one gix's HTTP transport already builds) is created on
//! first use there, since building it inside an async runtime panics.
//!
//! Nothing secret leaves: errors name the App, the installation, the API URL (credentials
//! removed) and the step; never the key, the JWT, the token, or a response body (an error
//! body could echo anything). [`GitHubAppTokens`]' `Debug` shows only how many tokens it
//! holds.
//!
//! Installations are not discovered: `githubAppInstallationID` must be set (Argo CD 3.x
//! can look it up from the repository's organization; Argosy refuses with a message
//! naming the field instead of guessing).

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argosy_crds::cluster::Sensitive;
use argosy_crds::repository::GitHubApp;
use sha2::{Digest as _, Sha256};

use crate::url_policy::redact_url;

/// GitHub's API root, used when a Secret has no `githubAppEnterpriseBaseUrl`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The user name GitHub expects with an installation token as the password.
pub const TOKEN_USERNAME: &str = "x-access-token";
/// `iat` is backdated by this much: GitHub refuses a JWT issued "in the future", and the
/// two clocks are never exactly in step (GitHub's own advice).
const JWT_BACKDATE: Duration = Duration::from_secs(60);
/// `exp` of the JWT from now: GitHub refuses more than 10 minutes after `iat`.
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// A cached token is replaced this long before it expires, so a fetch that starts with it
/// does not end with a token GitHub no longer accepts.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// How long to wait for a TCP/TLS connection to the API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one token request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: a token answer is a few hundred bytes plus the permissions.
const MAX_BODY_BYTES: u64 = 256 * 1024;

/// Why no installation token could be had. Messages never contain the key, the JWT, the
/// token or the answer's body.
#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    /// `githubAppInstallationID` is missing or zero.
    #[error(
        "GitHub App {app_id}: githubAppInstallationID is not set (Argosy does not discover installations)"
    )]
    MissingInstallation {
        /// `githubAppID`.
        app_id: i64,
    },
    /// `githubAppPrivateKey` is not an RSA private key in PEM (PKCS#1 or PKCS#8).
    #[error("GitHub App {app_id}: githubAppPrivateKey is not an RSA private key in PEM")]
    ParseKey {
        /// `githubAppID`.
        app_id: i64,
    },
    /// The JWT could not be signed (a key GitHub would refuse too, such as one under 2048
    /// bits).
    #[error("GitHub App {app_id}: signing the JWT with githubAppPrivateKey failed")]
    SignJwt {
        /// `githubAppID`.
        app_id: i64,
    },
    /// The HTTP client could not be built (an extra CA that is not PEM, no TLS backend).
    #[error("building the GitHub API client: {reason}")]
    Client {
        /// What failed.
        reason: String,
    },
    /// The request did not get an answer (DNS, connection, TLS, timeout).
    #[error(
        "GitHub App {app_id} installation {installation_id}: requesting a token from {url}: {reason}"
    )]
    Request {
        /// `githubAppID`.
        app_id: i64,
        /// `githubAppInstallationID`.
        installation_id: i64,
        /// The token URL, credentials removed.
        url: String,
        /// What failed, from the HTTP client (it never quotes headers).
        reason: String,
    },
    /// GitHub answered, but not with a token.
    #[error(
        "GitHub App {app_id} installation {installation_id}: {url} answered HTTP {status}{hint}"
    )]
    Status {
        /// `githubAppID`.
        app_id: i64,
        /// `githubAppInstallationID`.
        installation_id: i64,
        /// The token URL, credentials removed.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// What the status usually means, or empty.
        hint: &'static str,
    },
    /// The answer was successful but not a token with an expiry.
    #[error(
        "GitHub App {app_id} installation {installation_id}: the answer of {url} is not an installation token: {reason}"
    )]
    Body {
        /// `githubAppID`.
        app_id: i64,
        /// `githubAppInstallationID`.
        installation_id: i64,
        /// The token URL, credentials removed.
        url: String,
        /// Which part is missing or malformed (never its value).
        reason: &'static str,
    },
}

impl GitHubAppError {
    /// A bounded label for logs and metrics.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::MissingInstallation { .. } => "missing_installation",
            Self::ParseKey { .. } => "parse_key",
            Self::SignJwt { .. } => "sign_jwt",
            Self::Client { .. } => "client",
            Self::Request { .. } => "request",
            Self::Status { .. } => "status",
            Self::Body { .. } => "body",
        }
    }
}

/// What a cached token is filed under: a change of any of these is another identity (a
/// rotated key gets a new token at once).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    api_url: String,
    app_id: i64,
    installation_id: i64,
    /// SHA-256 of the PEM: the key itself is not kept twice.
    key_hash: [u8; 32],
}

impl CacheKey {
    fn of(app: &GitHubApp) -> Self {
        CacheKey {
            api_url: api_url(app),
            app_id: app.app_id,
            installation_id: app.installation_id,
            key_hash: Sha256::digest(app.private_key.expose().as_bytes()).into(),
        }
    }
}

struct Cached {
    token: Sensitive,
    /// When to ask for a new one: [`REFRESH_BEFORE_EXPIRY`] before `expires_at`.
    refresh_at: SystemTime,
}

/// Installation tokens of GitHub Apps, fetched when needed and cached until shortly before
/// they expire. One per process; share it (`&self` methods, internally locked).
pub struct GitHubAppTokens {
    /// Extra trust anchors for the API (a GitHub Enterprise with a private CA; tests).
    extra_roots: Vec<reqwest::Certificate>,
    /// Built on first use, on a blocking thread (see the module docs).
    client: Mutex<Option<reqwest::blocking::Client>>,
    tokens: Mutex<HashMap<CacheKey, Cached>>,
}

impl std::fmt::Debug for GitHubAppTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("GitHubAppTokens")
            .field("cached_tokens", &cached)
            .field("extra_roots", &self.extra_roots.len())
            .finish_non_exhaustive()
    }
}

impl Default for GitHubAppTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl GitHubAppTokens {
    /// A cache that trusts the system's roots.
    #[must_use]
    pub fn new() -> Self {
        GitHubAppTokens {
            extra_roots: Vec::new(),
            client: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A cache that also trusts the CA certificates of `pem` (one or more PEM blocks).
    pub fn with_root_ca_pem(pem: &str) -> Result<Self, GitHubAppError> {
        let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            GitHubAppError::Client {
                reason: format!("the extra CA is not PEM certificates: {}", chain(&e)),
            }
        })?;
        if roots.is_empty() {
            return Err(GitHubAppError::Client {
                reason: "the extra CA holds no certificate".to_owned(),
            });
        }
        Ok(GitHubAppTokens {
            extra_roots: roots,
            ..Self::new()
        })
    }

    /// An installation token for `app`: the cached one while it has more than
    /// [`REFRESH_BEFORE_EXPIRY`] left, else a new one from GitHub. Blocks (up to the
    /// request timeout); call it from a blocking thread, never inside an async task.
    pub fn token(&self, app: &GitHubApp) -> Result<Sensitive, GitHubAppError> {
        self.token_at(app, SystemTime::now())
    }

    fn token_at(&self, app: &GitHubApp, now: SystemTime) -> Result<Sensitive, GitHubAppError> {
        if app.installation_id == 0 {
            return Err(GitHubAppError::MissingInstallation { app_id: app.app_id });
        }
        let key = CacheKey::of(app);
        if let Some(cached) = self.lock_tokens().get(&key)
            && now < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        // The lock is not held across the request: a slow GitHub must not stall the other
        // Apps' cached reads. Two threads missing at once both fetch; both tokens are valid.
        let jwt = sign_jwt(app, now)?;
        let (token, expires_at) = self.request(app, &key.api_url, &jwt)?;
        let refresh_at = expires_at
            .checked_sub(REFRESH_BEFORE_EXPIRY)
            .unwrap_or(UNIX_EPOCH);
        let mut tokens = self.lock_tokens();
        // Expired entries go whenever one is added, so rotated keys do not pile up.
        tokens.retain(|_, cached| now < cached.refresh_at);
        if now < refresh_at {
            tokens.insert(
                key,
                Cached {
                    token: token.clone(),
                    refresh_at,
                },
            );
        }
        Ok(token)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Cached>> {
        // A panic elsewhere while holding the lock leaves a consistent map (inserts and
        // removals are single calls), so a poisoned lock is still usable.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client(&self) -> Result<reqwest::blocking::Client, GitHubAppError> {
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let built = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The token endpoint does not redirect; following one would carry the JWT
            // somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::clients::USER_AGENT)
            .tls_certs_merge(self.extra_roots.iter().cloned())
            .build()
            .map_err(|e| GitHubAppError::Client { reason: chain(&e) })?;
        *client = Some(built.clone());
        Ok(built)
    }

    /// `POST .../access_tokens`: the token and when it expires.
    fn request(
        &self,
        app: &GitHubApp,
        api_url: &str,
        jwt: &str,
    ) -> Result<(Sensitive, SystemTime), GitHubAppError> {
        let url = format!(
            "{api_url}/app/installations/{}/access_tokens",
            app.installation_id
        );
        let shown = redact_url(&url);
        let request_failed = |reason: String| GitHubAppError::Request {
            app_id: app.app_id,
            installation_id: app.installation_id,
            url: shown.clone(),
            reason,
        };
        let body_error = |reason: &'static str| GitHubAppError::Body {
            app_id: app.app_id,
            installation_id: app.installation_id,
            url: shown.clone(),
            reason,
        };
        let response = self
            .client()?
            .post(&url)
            .bearer_auth(jwt)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .map_err(|e| request_failed(chain(&e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GitHubAppError::Status {
                app_id: app.app_id,
                installation_id: app.installation_id,
                url: shown.clone(),
                status: status.as_u16(),
                hint: status_hint(status.as_u16()),
            });
        }
        let mut body = Vec::new();
        response
            .take(MAX_BODY_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| request_failed(format!("reading the answer: {e}")))?;
        parse_token_answer(&body).map_err(body_error)
    }
}

/// `githubAppEnterpriseBaseUrl` (or GitHub's API), without a trailing `/`.
fn api_url(app: &GitHubApp) -> String {
    app.enterprise_base_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .unwrap_or(DEFAULT_API_URL)
        .trim_end_matches('/')
        .to_owned()
}

/// The claims GitHub reads from an App's JWT.
#[derive(serde::Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    /// The App ID, as a string (as Argo CD's ghinstallation sends it).
    iss: String,
}

/// The App's JWT for `now`: RS256, `iat` a minute back, `exp` 9 minutes ahead.
fn sign_jwt(app: &GitHubApp, now: SystemTime) -> Result<String, GitHubAppError> {
    let app_id = app.app_id;
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = Claims {
        iat: seconds(now.checked_sub(JWT_BACKDATE).unwrap_or(UNIX_EPOCH)),
        exp: seconds(now.checked_add(JWT_LIFETIME).unwrap_or(now)),
        iss: app_id.to_string(),
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(app.private_key.expose().as_bytes())
        .map_err(|_| GitHubAppError::ParseKey { app_id })?;
    // `encode` panics when the crate was built with no (or two) crypto providers; this
    // crate asks for exactly one, but a feature added elsewhere must not become a panic.
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        return Err(GitHubAppError::SignJwt { app_id });
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|_| GitHubAppError::SignJwt { app_id })
}

/// `token` and `expires_at` (RFC 3339) of GitHub's answer; errors name the field only.
fn parse_token_answer(body: &[u8]) -> Result<(Sensitive, SystemTime), &'static str> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON")?;
    let token = answer
        .get("token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("it has no token")?;
    let expires_at = answer
        .get("expires_at")
        .and_then(serde_json::Value::as_str)
        .ok_or("it has no expires_at")?;
    let expires_at: k8s_openapi::jiff::Timestamp = expires_at
        .parse()
        .map_err(|_| "expires_at is not an RFC 3339 time")?;
    Ok((
        Sensitive::from(token.to_owned()),
        SystemTime::from(expires_at),
    ))
}

/// What a refusal usually means, for the one line an operator reads.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 => {
            " (GitHub refused the JWT: check githubAppID and githubAppPrivateKey, and this host's clock)"
        }
        403 => " (the App may not create tokens for this installation, or is rate limited)",
        404 => {
            " (no such installation of this App: check githubAppInstallationID and githubAppEnterpriseBaseUrl)"
        }
        _ => "",
    }
}

/// An error and its sources on one line (reqwest's own message is only the outermost).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests;
