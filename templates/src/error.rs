//! Error types. Messages follow Argo CD's and Go's wording, because users and conformance cases
//! match on substrings of the `ApplicationSet`'s error condition.

use std::fmt;

/// A single template string failed to compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// fasttemplate could not split the string into text and tags (an unterminated `{{`).
    #[error("invalid template: {0}")]
    Invalid(String),
    /// Go template syntax error; `message` is Go's, e.g. `template: :1: function "x" not defined`.
    #[error("failed to parse template {template}: {message}")]
    Parse {
        /// The template source.
        template: String,
        /// Go's parse error.
        message: String,
    },
    /// Go template execution error; `message` is Go's, e.g.
    /// `template: :1:7: executing "" at <.a.b>: map has no entry for key "b"`.
    #[error("failed to execute go template {template}: {message}")]
    Execute {
        /// The template source.
        template: String,
        /// Go's execution error.
        message: String,
    },
    /// An unknown `goTemplateOptions` entry (`unrecognized option: X`).
    #[error("{0}")]
    BadOption(String),
}

/// A field of a JSON template failed to render; `path` names it (`metadata.name`,
/// `spec.source.helm.valueFiles[1]`, empty for the document itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// Path of the field whose template failed.
    pub path: String,
    /// Why it failed.
    pub source: TemplateError,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}: {}", self.path, self.source)
        }
    }
}

impl std::error::Error for RenderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `templatePatch` failed (spec §2.4); messages as in Argo's `controllers/template/patch.go`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Rendering the patch text failed.
    #[error("error replacing values in templatePatch: {0}")]
    Render(#[source] TemplateError),
    /// The rendered patch is neither JSON (it starts with `{`) nor YAML.
    #[error(
        "error while converting template to json {}: {message}",
        crate::go::strconv::quote(patch)
    )]
    Convert {
        /// The rendered patch text.
        patch: String,
        /// The YAML parser's error.
        message: String,
    },
    /// The rendered patch does not decode as an Application.
    #[error(
        "invalid templatePatch {}: {message}",
        crate::go::strconv::quote(patch)
    )]
    Invalid {
        /// The rendered patch (converted to JSON when it was YAML).
        patch: String,
        /// A JSON syntax error, or why it does not decode (`encoding/json`'s wording).
        message: String,
    },
}
