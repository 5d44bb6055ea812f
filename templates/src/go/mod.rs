//! Go `text/template`, re-implemented: [`lex`] (tokens, trim markers, comments), [`parse`] into the
//! [`ast`], and [`exec`] over runtime [`value`]s, with Go's `fmt` printing in [`fmt`] and its
//! `strconv` quoting and number text in [`strconv`]; render limits are in [`budget`].
//!
//! The engine follows Go 1.22+ semantics, including `break`/`continue`, `range` over integers,
//! short-circuit `and`/`or`, and Go's error texts (`template: :1:7: executing "" at <.a.b>: ...`).
//! Functions are resolved at parse time against the chosen [`crate::mode::Library`] in [`crate::funcs`];
//! an unknown name is a parse error, as in Go.

pub(crate) mod ast;
pub(crate) mod budget;
pub(crate) mod exec;
pub(crate) mod fmt;
pub(crate) mod lex;
pub(crate) mod parse;
pub(crate) mod strconv;
pub(crate) mod value;

use crate::error::TemplateError;
use crate::mode::{GoOptions, MissingKey};
use crate::params::Params;

/// A parsed Go template.
#[derive(Debug)]
pub(crate) struct GoTemplate {
    src: Box<str>,
    program: ast::Program,
    missing_key: MissingKey,
}

impl GoTemplate {
    pub(crate) fn compile(src: &str, options: &GoOptions) -> Result<Self, TemplateError> {
        let program =
            parse::parse(src, options.library).map_err(|message| TemplateError::Parse {
                template: src.to_string(),
                message,
            })?;
        Ok(GoTemplate {
            src: src.into(),
            program,
            missing_key: options.missing_key,
        })
    }

    pub(crate) fn render(&self, params: &Params) -> Result<String, TemplateError> {
        exec::execute(&self.src, &self.program, params, self.missing_key).map_err(|message| {
            TemplateError::Execute {
                template: self.src.to_string(),
                message,
            }
        })
    }
}
