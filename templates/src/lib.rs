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
//! Module [`semver`] is Masterminds semver v3, versions and constraints as Helm, Argo CD and
//! Sprig read them: Sprig's `semver` and `semverCompare` use it, and so does the sync engine
//! to choose chart versions.
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
mod limits;
mod mode;
mod params;
mod patch;
mod render;
pub mod semver;
mod template;
mod yaml;

pub use error::{PatchError, RenderError, TemplateError};
/// Argo CD's `SanitizeName` (the `normalize` function, `nameNormalized` parameters).
pub use funcs::yamlfns::sanitize_name;
pub use limits::{MAX_LIST_LEN, MAX_OUTPUT_BYTES};
pub use mode::{GoOptions, Library, MissingKey, Mode};
pub use params::Params;
pub use patch::apply_template_patch;
pub use render::{ValueTemplate, render_application, render_application_with_policy};
pub use template::{StringTemplate, render_string};

#[cfg(test)]
mod tests;
