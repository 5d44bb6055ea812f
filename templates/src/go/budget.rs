//! What one render may spend ([`Budget`]) and the engine's nesting limits.
//!
//! A leaf module (it names nothing else of this crate): the lexer, parser, executor,
//! value printing and the function library all share it without depending on `go`'s
//! facade.

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
