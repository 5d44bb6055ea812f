//! `argosy test`: runs ApplicationSet test cases (the conformance-case schema).
//!
//! Each case's Git trees are written into real bare repositories first and read back
//! through [`GitRepos`], so a user's tests run the same gix code as production. The
//! comparison is `argosy_generators::conformance::compare`, shared with the crate's own
//! conformance test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use argosy_generators::conformance::{Case, compare};
use argosy_generators::memory::MemoryProjects;
use argosy_generators::{PipelineOptions, Sources, generate_applications};

use argosy_sync_engine::repo::{GitRepos, write_commit};
use argosy_sync_engine::url_policy::UrlPolicy;

/// The outcome of `argosy test`.
#[derive(Debug)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// One block per failing case, then the closing `N passed, M failed` line.
    pub text: String,
}

/// Runs every case file under `paths` (files, or directories of `*.yaml`).
pub fn run(paths: &[PathBuf]) -> anyhow::Result<Report> {
    let files = case_files(paths)?;
    let mut report = Report {
        passed: 0,
        failed: 0,
        text: String::new(),
    };
    for file in &files {
        match run_case(file) {
            Ok(()) => report.passed += 1,
            Err(diff) => {
                report.failed += 1;
                let _ = writeln!(report.text, "FAIL {}: {}", file.display(), indent(&diff));
            }
        }
    }
    let _ = writeln!(
        report.text,
        "{} passed, {} failed",
        report.passed, report.failed
    );
    Ok(report)
}

/// Runs one case; the error is what to show the user.
pub fn run_case(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading: {e}"))?;
    let case = Case::from_yaml(&text).map_err(|e| e.to_string())?;
    let scratch = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
    let mut local = BTreeMap::new();
    for (n, (url, revisions)) in case.input.git.iter().enumerate() {
        let dir = scratch.path().join(format!("repo-{n}.git"));
        // Named revisions become branches; `HEAD` goes last so it cannot be overwritten.
        let mut ordered: Vec<_> = revisions.iter().collect();
        ordered.sort_by_key(|(rev, _)| rev.as_str() == "HEAD");
        for (revision, tree) in ordered {
            let reference = if revision == "HEAD" {
                "HEAD".to_owned()
            } else {
                format!("refs/heads/{revision}")
            };
            write_commit(&dir, &reference, &tree.files)
                .map_err(|e| format!("writing git fixture {url}@{revision}: {e}"))?;
        }
        local.insert(url.clone(), dir);
    }
    let repos =
        GitRepos::new(local, scratch.path().join("cache")).with_url_policy(UrlPolicy::permissive());
    let clusters = case.clusters();
    let projects = MemoryProjects::default_only();
    let sources = Sources {
        clusters: &clusters,
        repos: &repos,
        projects: &projects,
    };
    let result = generate_applications(
        &case.input.application_set,
        sources,
        &PipelineOptions::default(),
    );
    compare(&case.expected, &result).map_err(|diff| format!("{}\n{diff}", case.name))
}

fn case_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

fn indent(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_public_conformance_cases_pass_through_real_git() {
        let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/cases");
        let report = run(&[cases]).unwrap();
        assert_eq!(report.failed, 0, "{}", report.text);
        assert!(report.passed >= 81, "{}", report.text);
    }

    #[test]
    fn a_wrong_expectation_fails_with_a_diff() {
        let dir = tempfile::tempdir().unwrap();
        let case = dir.path().join("bad.yaml");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/conformance/cases/list-002-basic-gotemplate.yaml");
        let text = std::fs::read_to_string(src).unwrap();
        let (input, expected) = text.split_once("\nexpected:").unwrap();
        let text = format!(
            "{input}\nexpected:{}",
            expected.replace("namespace: guestbook", "namespace: not-what-renders")
        );
        std::fs::write(&case, text).unwrap();
        let report = run(&[case]).unwrap();
        assert_eq!((report.passed, report.failed), (0, 1));
        assert!(report.text.contains("not-what-renders"), "{}", report.text);
        assert!(
            report.text.ends_with("0 passed, 1 failed\n"),
            "{}",
            report.text
        );
    }
}
