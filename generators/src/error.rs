//! [`GeneratorError`]: the one error type every generator kind reports.
//!
//! A leaf of the generator modules (it names only [`RepoError`] of `source`), so the
//! generator kinds, the dispatch in `generator` and the pipeline all use it without
//! depending on each other for it.

use crate::source::RepoError;

/// A generator failed; every variant names the generator's field path, e.g.
/// `spec.generators[0].matrix.generators[1].git`.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The generator cannot run as written (structure, selector, missing fields).
    #[error("{path}: {message}")]
    InvalidSpec {
        /// Field path of the generator.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The generator ran, but its input is unusable (a file, an element, a Secret).
    #[error("{path}: {message}")]
    Generator {
        /// Field path of the generator.
        path: String,
        /// What is wrong with the input.
        message: String,
    },
    /// A repository could not be read.
    #[error("{path}: {source}")]
    Repo {
        /// Field path of the generator.
        path: String,
        /// Why the repository could not be read.
        #[source]
        source: RepoError,
    },
    /// A template in the generator (`values`, matrix interpolation) failed to render.
    #[error("{path}: {message}")]
    Render {
        /// Field path of the generator.
        path: String,
        /// The template error.
        message: String,
    },
    /// A generator kind Argosy does not implement.
    #[error("{path}: {kind} generator is not supported by this version of Argosy")]
    Unsupported {
        /// Field path of the generator.
        path: String,
        /// The generator's key (`pullRequest`, `scmProvider`, ...).
        kind: &'static str,
    },
}

impl GeneratorError {
    pub(crate) fn spec(path: &str, message: impl Into<String>) -> Self {
        Self::InvalidSpec {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn data(path: &str, message: impl Into<String>) -> Self {
        Self::Generator {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn render(path: &str, message: impl Into<String>) -> Self {
        Self::Render {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// A static category for metrics and events.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } | Self::Unsupported { .. } => "InvalidSpec",
            Self::Generator { .. } => "GeneratorError",
            Self::Repo { .. } => "RepoError",
            Self::Render { .. } => "RenderError",
        }
    }

    /// False only for failures outside the user's control (reading a repository).
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Repo { .. })
    }
}
