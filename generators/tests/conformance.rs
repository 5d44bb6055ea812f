//! Runs every ApplicationSet conformance case (`tests/conformance/cases/*.yaml`) through
//! `generate_applications` with in-memory sources and compares per the cases' README.

use std::path::Path;

use argosy_generators::conformance::Case;

#[test]
fn conformance_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());

    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outcome = Case::from_yaml(&text)
            .map_err(|e| e.to_string())
            .and_then(|case| case.run_in_memory());
        if let Err(diff) = outcome {
            failures.push(format!("--- {name}\n{diff}"));
        }
    }
    let passed = files.len() - failures.len();
    eprintln!("conformance: {passed}/{} cases pass", files.len());
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
