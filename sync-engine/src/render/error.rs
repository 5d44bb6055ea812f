//! Why a source could not be rendered.

use std::time::Duration;

use argosy_generators::source::RepoError;

/// Why a source could not be rendered. Messages name the file, link or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    ReadRepo(#[from] RepoError),
    #[error("source path {path:?}: {reason}")]
    SourcePath { path: String, reason: &'static str },
    #[error("symlink {link}: {reason}")]
    Symlink { link: String, reason: &'static str },
    #[error("{what} is not supported")]
    Unsupported { what: String },
    #[error("{field}: {message}")]
    Options { field: String, message: String },
    #[error("{file} is {size} bytes, over the {limit}-byte limit for one manifest file")]
    FileTooLarge { file: String, size: u64, limit: u64 },
    #[error("{what} exceeds the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("the source renders more than {limit} objects")]
    TooManyObjects { limit: usize },
    #[error("{file}: {message}")]
    ParseManifest { file: String, message: String },
    #[error("writing the tree of commit {commit} to disk: {message}")]
    Materialize { commit: String, message: String },
    #[error(
        "Kustomize application at {path} needs the `kustomize` or `kubectl` binary, which is not installed"
    )]
    KustomizeUnavailable { path: String },
    #[error("Helm chart at {path} needs the `helm` binary, which is not installed")]
    HelmUnavailable { path: String },
    #[error("{tool} failed: {message}")]
    Tool { tool: &'static str, message: String },
    #[error("{tool} did not finish within {timeout:?} and was killed")]
    ToolTimeout {
        tool: &'static str,
        timeout: Duration,
    },
}

impl RenderError {
    /// A bounded label for metrics and Events.
    pub fn category(&self) -> &'static str {
        match self {
            Self::ReadRepo(_) => "repo",
            Self::SourcePath { .. } => "source_path",
            Self::Symlink { .. } => "symlink",
            Self::Unsupported { .. } => "unsupported",
            Self::Options { .. } => "options",
            Self::FileTooLarge { .. } | Self::TooLarge { .. } | Self::TooManyObjects { .. } => {
                "limit"
            }
            Self::ParseManifest { .. } => "manifest",
            Self::Materialize { .. } => "materialize",
            Self::KustomizeUnavailable { .. } | Self::HelmUnavailable { .. } => "tool_unavailable",
            Self::Tool { .. } => "tool",
            Self::ToolTimeout { .. } => "tool_timeout",
        }
    }
}
