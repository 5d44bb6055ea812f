//! Argo CD's own health scripts and their `health_test.yaml` cases (issue #18 item 6), from
//! `../shared/argocd-resource-customizations/` beside the checkout (or the directory
//! `ARGOSY_RESOURCE_CUSTOMIZATIONS` names). The directory is loaded as
//! `--resource-customizations` loads it, every case runs through Argosy's Lua runner with
//! Argo CD's lookup, and the exact status and message must match; the Argo Rollouts cases
//! must also match Argosy's native checks. A missing corpus fails the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use argosy_sync_engine::health::scripts::{HealthChecks, Overrides};
use argosy_sync_engine::health::{self, Health, script_dir};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct TestFile {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "healthStatus")]
    health_status: Expected,
    #[serde(rename = "inputPath")]
    input_path: String,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct Expected {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("ARGOSY_RESOURCE_CUSTOMIZATIONS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/argocd-resource-customizations")
        },
        PathBuf::from,
    )
}

/// Every `health_test.yaml` under `dir`, sorted.
fn test_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            test_files(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "health_test.yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The first YAML document of a file, as Go's `yaml.Unmarshal` reads it.
fn first_document(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let document = serde_yaml_ng::Deserializer::from_str(&text)
        .next()
        .ok_or_else(|| format!("{}: no YAML document", path.display()))?;
    Ok(Value::deserialize(document).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn as_expected(health: Option<Health>) -> Expected {
    health.map_or(
        Expected {
            status: String::new(),
            message: String::new(),
        },
        |h| Expected {
            status: h.code.as_str().to_owned(),
            message: h.message,
        },
    )
}

fn group_kind(obj: &Value) -> (String, String) {
    let text = |key| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let group = text("apiVersion")
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    (group.to_owned(), text("kind").to_owned())
}

#[test]
fn every_argo_cd_health_case_passes_through_argosys_runner()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "the corpus {} is missing: check out ../shared or set ARGOSY_RESOURCE_CUSTOMIZATIONS",
        dir.display()
    );
    let (builtins, broken) = script_dir::load(&dir)?;
    assert_eq!(
        broken,
        Vec::<String>::new(),
        "built-in scripts that do not compile"
    );
    let checks = HealthChecks::new(Arc::new(builtins), Overrides::default());
    let mut files = Vec::new();
    test_files(&dir, &mut files)?;
    let (mut cases, mut native_cases) = (0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let tests: TestFile = serde_yaml_ng::from_str(&std::fs::read_to_string(file)?)?;
        let case_dir = file.parent().unwrap_or(&dir);
        for case in tests.tests {
            cases += 1;
            let input = case_dir.join(&case.input_path);
            let obj = first_document(&input)?;
            let (group, kind) = group_kind(&obj);
            let name = input
                .strip_prefix(&dir)
                .unwrap_or(&input)
                .display()
                .to_string();
            let Some(script) = checks.script_for(&group, &kind) else {
                failures.push(format!("{name}: no script for {group}/{kind}"));
                continue;
            };
            match script.run(&obj, checks.limits()) {
                Ok(got) => {
                    let got = as_expected(got);
                    if got != case.health_status {
                        failures.push(format!(
                            "{name} ({}): got {got:?}, want {:?}",
                            script.origin(),
                            case.health_status
                        ));
                    }
                }
                Err(e) => failures.push(format!("{name} ({}): {e}", script.origin())),
            }
            // Argosy's native checks judge Argo Rollouts as the scripts do.
            if group == "argoproj.io" && matches!(kind.as_str(), "Rollout" | "AnalysisRun") {
                native_cases += 1;
                let got = as_expected(health::assess(&obj));
                if got != case.health_status {
                    failures.push(format!(
                        "{name} (native): got {got:?}, want {:?}",
                        case.health_status
                    ));
                }
            }
        }
    }
    eprintln!(
        "{cases} cases from {} health_test.yaml files ({native_cases} also through the native Argo Rollouts checks), {} failures",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus is about 200 scripts; far fewer means the walk went wrong.
    assert!(files.len() >= 100, "only {} test files", files.len());
    assert!(native_cases > 0, "no Argo Rollouts case");
    Ok(())
}
