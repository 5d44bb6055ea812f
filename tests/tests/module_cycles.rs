//! No crate of the workspace has import cycles between its modules (the check of
//! `cargo run -p argosy-tests --bin module-cycles`, see `argosy_tests::modgraph`).

use std::path::Path;

#[test]
fn workspace_has_no_module_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = argosy_tests::modgraph::check_workspace(&root).expect("reading the workspace");
    assert!(report.cycles.is_empty(), "{report}");
}
