//! `argosy plan` as a user runs it, on the per-customer example: a real Git history
//! (argosy_tests::fleet_history), the real binary, Kustomize from PATH
//! (scripts/install-tools.sh puts `kubectl` in ~/.cache/argosy/tools/bin).

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

use std::path::Path;
use std::process::{Command, Output};

use argosy_tests::fleet_history::{
    EXAMPLE_REPO_URL, example_dir, first_to_second, plan_shape, write_history,
};
use serde_json::Value;

fn plan(repo: &Path, args: &[&str]) -> Output {
    let example = example_dir();
    let repo_arg = format!("{EXAMPLE_REPO_URL}={}", repo.display());
    Command::new(env!("CARGO_BIN_EXE_argosy"))
        .arg("plan")
        .arg("-f")
        .arg(example.join("appset.yaml"))
        .arg("--clusters")
        .arg(example.join("clusters"))
        .args(["--repo", &repo_arg])
        .args(args)
        .env(
            "ARGOSY_REPO_CACHE",
            std::env::temp_dir().join("argosy-plan-test-cache"),
        )
        .output()
        .unwrap()
}

fn json_plan(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "argosy plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_two_commit_range_lists_exactly_the_changed_objects_per_customer() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet.git");
    let [first, second, _] = write_history(&repo, "HEAD").unwrap();

    let out = plan(&repo, &["--from", &first, "--to", &second, "-o", "json"]);
    let planned = json_plan(&out);
    assert_eq!(plan_shape(&planned), first_to_second(), "{planned:#}");
    assert_eq!(planned["from"]["commits"][EXAMPLE_REPO_URL], first.as_str());
    assert_eq!(planned["to"]["commits"][EXAMPLE_REPO_URL], second.as_str());
    let summary = &planned["summary"];
    assert_eq!(
        (
            summary["appsChanged"].as_u64(),
            summary["appsUnchanged"].as_u64(),
            summary["objectsAdded"].as_u64(),
            summary["objectsChanged"].as_u64(),
        ),
        (Some(4), Some(2), Some(3), Some(1)),
        "{summary}"
    );
    // The image change is the Deployment's only difference.
    let acme_web = &planned["destinations"][0]["applications"][0];
    let diff = acme_web["objects"][0]["diff"].as_str().unwrap();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(
        changed,
        ["-      - image: nginx:1.27", "+      - image: nginx:1.28"],
        "{diff}"
    );
    assert_eq!(acme_web["unchangedObjects"], 1, "the Service stays");
}

#[test]
fn the_text_names_only_the_customers_that_change() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet.git");
    let [_, second, third] = write_history(&repo, "HEAD").unwrap();

    let out = plan(&repo, &["--from", &second, "--to", &third]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\ncustomer initech (cluster initech-prod)\n"),
        "{text}"
    );
    assert!(
        text.contains("  ~ Application worker-initech (changed)\n      ~ Deployment.apps/initech-worker (changed)\n"),
        "{text}"
    );
    assert!(
        text.contains("-  replicas: 1\n") && text.contains("+  replicas: 2\n"),
        "{text}"
    );
    assert!(
        !text.contains("customer acme") && !text.contains("customer globex"),
        "{text}"
    );
    assert!(
        text.contains("\nNo change: acme (acme-prod), globex (globex-prod)\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 1 of 3 destinations change; Applications: 0 added, 0 removed, 1 changed, 5 unchanged, 0 failed; objects: 0 added, 0 removed, 1 changed.\n"),
        "{text}"
    );
}

#[test]
fn from_defaults_to_the_revision_the_applicationset_names() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet.git");
    let [first, _, third] = write_history(&repo, "HEAD").unwrap();

    // The ApplicationSet reads HEAD (the third commit): back to the first undoes it all.
    let planned = json_plan(&plan(&repo, &["--to", &first, "-o", "json"]));
    assert!(planned["from"]["revision"].is_null(), "{planned:#}");
    let changes: Vec<(String, String)> = plan_shape(&planned)
        .into_iter()
        .filter(|(_, _, change, _)| change != "unchanged")
        .map(|(_, app, _, objects)| (app, format!("{objects:?}")))
        .collect();
    assert_eq!(
        changes,
        [
            ("web-acme".to_owned(), r#"[("Deployment/acme-web", "changed")]"#.to_owned()),
            ("worker-acme".to_owned(), r#"[("ConfigMap/acme-worker-settings", "removed")]"#.to_owned()),
            ("worker-globex".to_owned(), r#"[("ConfigMap/globex-worker-settings", "removed")]"#.to_owned()),
            (
                "worker-initech".to_owned(),
                r#"[("ConfigMap/initech-worker-settings", "removed"), ("Deployment/initech-worker", "changed")]"#.to_owned()
            ),
        ],
        "HEAD is {third}: {planned:#}"
    );
}

#[test]
fn a_revision_that_does_not_exist_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet.git");
    write_history(&repo, "HEAD").unwrap();
    let out = plan(&repo, &["--to", "no-such-branch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("appset.yaml: ApplicationSet customer-apps: to revision no-such-branch: "),
        "{stderr}"
    );
}
