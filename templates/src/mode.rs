//! [`Mode`]: which template language an `ApplicationSet` uses, with its Go options
//! ([`GoOptions`], [`MissingKey`]) and function [`Library`].
//!
//! Depends only on [`TemplateError`]; the crate root re-exports every item.

use crate::error::TemplateError;

/// Which template language the `ApplicationSet` uses (`spec.goTemplate`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// valyala/fasttemplate substitution of flat string parameters.
    Fast,
    /// Go `text/template` with Sprig and Argo's functions.
    Go(GoOptions),
}

/// `spec.goTemplateOptions`, as understood by Go's `template.Option`, and the function library.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoOptions {
    /// What a missing map key evaluates to.
    pub missing_key: MissingKey,
    /// Which functions templates may call ([`Mode::from_spec`] always picks Argo CD's).
    pub library: Library,
}

/// The functions a Go template may call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Library {
    /// Argo CD's `ApplicationSet` function map: Go's builtins, Sprig (see the `funcs` module for
    /// what is absent) and Argo's additions.
    #[default]
    ArgoCd,
    /// Argo CD's plus Helm's `include` (execute a `define`d template into a string) and
    /// `required`, for rendering Helm charts (Argosy's own, in tests). Not for `ApplicationSet`s:
    /// Argo CD would reject their templates with these functions.
    Helm,
}

/// Go's `missingkey=` option.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum MissingKey {
    /// `missingkey=default` (or `invalid`): the missing value prints as `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the zero value of the map's element type; for the `interface{}`
    /// values of a parameter set that is nil, which also prints as `<no value>`.
    Zero,
    /// `missingkey=error`: execution fails with `map has no entry for key "k"`.
    Error,
}

impl Mode {
    /// The mode for an `ApplicationSet`'s `goTemplate` flag and `goTemplateOptions` list.
    ///
    /// Options only matter in Go mode (Argo ignores them otherwise). An unknown option is an
    /// error, as Go's `template.Option` panics on it and the controller turns that into an error.
    pub fn from_spec(go_template: bool, options: &[String]) -> Result<Mode, TemplateError> {
        if !go_template {
            return Ok(Mode::Fast);
        }
        let mut opts = GoOptions::default();
        for opt in options {
            if opt.is_empty() {
                return Err(TemplateError::BadOption("empty option string".to_string()));
            }
            opts.missing_key = match opt.split_once('=') {
                Some(("missingkey", "invalid" | "default")) => MissingKey::Default,
                Some(("missingkey", "zero")) => MissingKey::Zero,
                Some(("missingkey", "error")) => MissingKey::Error,
                _ => {
                    return Err(TemplateError::BadOption(format!(
                        "unrecognized option: {opt}"
                    )));
                }
            };
        }
        Ok(Mode::Go(opts))
    }
}
