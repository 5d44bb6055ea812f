//! Why a source could not be rendered.

use std::time::Duration;

use argosy_generators::source::RepoError;

/// Why a source could not be rendered. Messages name the file, link or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The repository could not be read.
    #[error(transparent)]
    ReadRepo(#[from] RepoError),
    /// The source path is invalid or leaves the repository.
    #[error("source path {path:?}: {reason}")]
    SourcePath {
        /// The path concerned.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A symlink that may not be followed.
    #[error("symlink {link}: {reason}")]
    Symlink {
        /// The symlink.
        link: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A source option or feature Argosy does not support.
    #[error("{what} is not supported")]
    Unsupported {
        /// What is at fault.
        what: String,
    },
    /// An invalid source option.
    #[error("{field}: {message}")]
    Options {
        /// The option.
        field: String,
        /// The error.
        message: String,
    },
    /// A manifest file over the size limit.
    #[error("{file} is {size} bytes, over the {limit}-byte limit for one manifest file")]
    FileTooLarge {
        /// The file.
        file: String,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Rendered output over a size limit.
    #[error("{what} exceeds the {limit}-byte limit")]
    TooLarge {
        /// What is at fault.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// More objects than the limit.
    #[error("the source renders more than {limit} objects")]
    TooManyObjects {
        /// The limit.
        limit: usize,
    },
    /// A manifest that does not parse.
    #[error("{file}: {message}")]
    ParseManifest {
        /// The file.
        file: String,
        /// The error.
        message: String,
    },
    /// The commit's tree could not be written out for a tool.
    #[error("writing the tree of commit {commit} to disk: {message}")]
    Materialize {
        /// The commit.
        commit: String,
        /// The error.
        message: String,
    },
    /// A Kustomize source, and no `kustomize` or `kubectl` binary.
    #[error(
        "Kustomize application at {path} needs the `kustomize` or `kubectl` binary, which is not installed"
    )]
    KustomizeUnavailable {
        /// The path concerned.
        path: String,
    },
    /// A Helm source, and no `helm` binary.
    #[error("Helm chart at {path} needs the `helm` binary, which is not installed")]
    HelmUnavailable {
        /// The path concerned.
        path: String,
    },
    /// An external tool failed.
    #[error("{tool} failed: {message}")]
    Tool {
        /// The tool (`helm`, `kustomize`, ...).
        tool: &'static str,
        /// The error.
        message: String,
    },
    /// An external tool ran out of time and was killed.
    #[error("{tool} did not finish within {timeout:?} and was killed")]
    ToolTimeout {
        /// The tool (`helm`, `kustomize`, ...).
        tool: &'static str,
        /// The time limit.
        timeout: Duration,
    },
}

impl RenderError {
    /// A bounded label for metrics and Events.
    #[must_use]
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
