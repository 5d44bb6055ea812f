//! [`StringTemplate`]: one template string compiled once in a [`Mode`] and rendered many
//! times, and [`render_string`] to compile and render once.
//!
//! Dispatches to the fasttemplate and Go engines; the crate root re-exports both items.

use crate::error::TemplateError;
use crate::fast;
use crate::go;
use crate::mode::Mode;
use crate::params::Params;

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
