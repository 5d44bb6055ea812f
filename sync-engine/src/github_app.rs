//! GitHub App installation tokens (being written on branch repo-cli; this placeholder
//! refuses every App until it lands).

use argosy_crds::cluster::Sensitive;
use argosy_crds::repository::GitHubApp;

/// Installation tokens by App, cached until they expire.
#[derive(Default)]
pub struct GitHubAppTokens;

/// A token could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    /// Not built yet.
    #[error("GitHub App credentials are not supported yet")]
    Unsupported,
}

impl GitHubAppTokens {
    /// The installation token of `app`.
    pub fn token(&self, _app: &GitHubApp) -> Result<Sensitive, GitHubAppError> {
        Err(GitHubAppError::Unsupported)
    }
}
