//! Go `text/template`, re-implemented: [`lex`] (tokens, trim markers, comments), [`parse`] into the
//! [`ast`], and [`exec`] over runtime [`value`]s, with Go's `fmt` printing in [`fmt`].
//!
//! The engine follows Go 1.22+ semantics, including `break`/`continue`, `range` over integers,
//! short-circuit `and`/`or`, and Go's error texts (`template: :1:7: executing "" at <.a.b>: ...`).
//! Functions are resolved at parse time against the chosen [`crate::Library`] in [`crate::funcs`];
//! an unknown name is a parse error, as in Go.

pub(crate) mod ast;
pub(crate) mod exec;
pub(crate) mod fmt;
pub(crate) mod lex;
pub(crate) mod parse;
pub(crate) mod value;

pub(crate) use fmt::quote;

use crate::error::TemplateError;
use crate::{GoOptions, MissingKey, Params};

/// Deepest nesting of parenthesised pipelines and control blocks the parser accepts.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;
/// Deepest nesting of control blocks and template calls during execution.
pub(crate) const MAX_EXEC_DEPTH: usize = 100;
/// Deepest value nesting that printing, encoding and comparison walk into.
pub(crate) const MAX_VALUE_DEPTH: usize = 128;
/// Work units (commands, loop iterations, visited values) one render may spend.
const WORK_BUDGET: u64 = 20_000_000;
/// Bytes of strings and lists one render may create in total (function results and the copies
/// made while converting values), on top of its output.
const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// What one render may still spend: every loop and value walk spends work, every created string
/// or list spends memory, so no template can run unboundedly long or grow without limit (say, by
/// appending a large string to a list in a loop).
#[derive(Debug)]
pub(crate) struct Budget {
    work: u64,
    memory: usize,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Budget {
            work: WORK_BUDGET,
            memory: MEMORY_BUDGET,
        }
    }

    pub(crate) fn spend(&mut self, n: u64) -> Result<(), String> {
        match self.work.checked_sub(n) {
            Some(left) => {
                self.work = left;
                Ok(())
            }
            None => Err("template execution exceeded its work budget".to_string()),
        }
    }

    pub(crate) fn alloc(&mut self, bytes: usize) -> Result<(), String> {
        match self.memory.checked_sub(bytes) {
            Some(left) => {
                self.memory = left;
                Ok(())
            }
            None => Err("template execution exceeded its memory budget".to_string()),
        }
    }
}

/// Go's `int` of a Rust length or index. Lengths never exceed `isize::MAX`, so this never
/// saturates in practice.
pub(crate) fn go_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

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
