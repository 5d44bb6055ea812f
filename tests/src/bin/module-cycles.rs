//! `module-cycles`: fails when a crate of the workspace has import cycles between its
//! modules (see [`argosy_tests::modgraph`] for what counts as an edge).
//!
//! ```text
//! cargo run -p argosy-tests --bin module-cycles [WORKSPACE_ROOT]
//! ```
//!
//! `WORKSPACE_ROOT` defaults to this repository's root. Prints every cycle (its files,
//! a shortest cycle, and the `file:line` of one `use` or path creating each edge) and
//! exits 1; without a cycle prints `no module cycles in N files of M crates` and exits 0.
//! Exits 2 when a source cannot be read or parsed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    match argosy_tests::modgraph::check_workspace(&root) {
        Ok(report) => {
            print!("{report}");
            if report.cycles.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("module-cycles: {e:#}");
            ExitCode::from(2)
        }
    }
}
