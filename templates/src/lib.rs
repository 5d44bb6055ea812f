//! `ApplicationSet` template rendering, compatible with Argo CD's `ApplicationSet` controller.
//!
//! Argo CD renders an Application template field by field: every string value and every map key
//! of the template is rendered on its own, in one of two modes (spec §2):
//!
//! * **fasttemplate** ([`Mode::Fast`], the default): `{{ key }}` tags are looked up as flat keys in
//!   the parameter set; only string parameters substitute, anything else leaves the tag verbatim
//!   (module `fast`).
//! * **goTemplate** ([`Mode::Go`]): Go `text/template` with Sprig's functions and Argo's additions
//!   (`normalize`, `slugify`, `toYaml`, `fromYaml`, `fromYamlArray`), re-implemented here: a lexer,
//!   parser and executor with Go's semantics and error messages (module `go`), the function library
//!   (module `funcs`) and the `yaml.v2`-compatible YAML writer behind `toYaml` (module `yaml`).
//!
//! On top of single strings, [`ValueTemplate`] compiles a whole JSON document leaf by leaf,
//! [`render_application`] adds Argo's finalizer rule and [`apply_template_patch`] implements
//! `templatePatch` (spec §2.4, module `patch`).
//!
//! Outside `ApplicationSet`s, [`Library::Helm`] adds Helm's `include` and `required`, enough to
//! render Argosy's own Helm chart in tests without a `helm` binary.
//!
//! Templates are compiled once and rendered many times: compilation does all parsing and function
//! lookup; rendering borrows the parameters and allocates little more than its output.
//!
//! Every render is bounded: output is capped at [`MAX_OUTPUT_BYTES`], lists built by functions at
//! [`MAX_LIST_LEN`] elements, nesting (parse depth, template calls, value depth) at small fixed
//! limits, and the total work and memory of a render at fixed budgets, so hostile templates fail
//! with an error instead of exhausting memory, stack or time.
//!
//! Known differences from Argo CD (each rare in `ApplicationSet`s):
//! * parameter maps are read-only to `set`/`unset`/`merge` (they return a modified copy), where Go
//!   would modify the shared parameter set;
//! * `fromYaml` and YAML `templatePatch`es are parsed as YAML 1.2 (`yes`/`on` stay strings);
//! * regex classes `\d \w \s \b` are Unicode-aware;
//! * complex-number literals, `%x` on floats and the functions the `funcs` module lists as absent
//!   (dates, randomness, crypto, `urlParse`, `call`, `tpl`) are not supported.

#![warn(clippy::pedantic)]
#![warn(missing_docs)]
// The errors of every public function are the variants of its error type (`TemplateError`,
// `RenderError`, `PatchError`), each documented there.
#![allow(clippy::missing_errors_doc)]

mod error;
mod fast;
mod funcs;
mod go;
mod patch;
mod render;
mod yaml;

pub use error::{PatchError, RenderError, TemplateError};
/// Argo CD's `SanitizeName` (the `normalize` function, `nameNormalized` parameters).
pub use funcs::yamlfns::sanitize_name;
pub use patch::apply_template_patch;
pub use render::{ValueTemplate, render_application, render_application_with_policy};

/// One parameter set, as produced by a generator (JSON types; maps are key-ordered).
pub type Params = serde_json::Map<String, serde_json::Value>;

/// Largest string a single render (or a single function call inside it) may produce.
pub const MAX_OUTPUT_BYTES: usize = 10 * 1024 * 1024;
/// Largest list a template function may build (`until`, `seq`, `concat`, ...).
pub const MAX_LIST_LEN: usize = 1_000_000;

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

/// One template string, compiled once and rendered many times.
#[derive(Debug)]
pub struct StringTemplate {
    inner: Compiled,
}

#[derive(Debug)]
enum Compiled {
    /// Renders to itself whatever the parameters (no template syntax in it).
    Const(String),
    Fast(fast::FastTemplate),
    Go(go::GoTemplate),
}

impl StringTemplate {
    /// Compiles `src` in `mode`. Fails on syntax errors (an unterminated fasttemplate tag, a Go
    /// parse error), with Argo's messages (`invalid template: ...`, `failed to parse template ...`).
    pub fn compile(src: &str, mode: &Mode) -> Result<Self, TemplateError> {
        let inner = match mode {
            Mode::Fast => match fast::FastTemplate::compile(src)? {
                Some(t) => Compiled::Fast(t),
                None => Compiled::Const(src.to_string()),
            },
            Mode::Go(opts) => {
                if src.contains("{{") {
                    Compiled::Go(go::GoTemplate::compile(src, opts)?)
                } else {
                    Compiled::Const(src.to_string())
                }
            }
        };
        Ok(StringTemplate { inner })
    }

    /// Renders against one parameter set.
    pub fn render(&self, params: &Params) -> Result<String, TemplateError> {
        match &self.inner {
            Compiled::Const(s) => Ok(s.clone()),
            Compiled::Fast(t) => Ok(t.render(params)),
            Compiled::Go(t) => t.render(params),
        }
    }

    /// The fixed output of a template without any template syntax.
    pub(crate) fn constant(&self) -> Option<&str> {
        match &self.inner {
            Compiled::Const(s) => Some(s),
            _ => None,
        }
    }
}

/// Compiles and renders `src` once (Argo's `Render.Replace`).
pub fn render_string(src: &str, params: &Params, mode: &Mode) -> Result<String, TemplateError> {
    StringTemplate::compile(src, mode)?.render(params)
}

#[cfg(test)]
mod tests;
