//! The per-customer example's repository (`examples/per-customer/repo`) with a short
//! history, for the fleet plan's tests (`argosy plan`, the controller's plan API):
//!
//! 1. the example as it is;
//! 2. acme's web overlay moves to `nginx:1.28`, and the worker base gains a ConfigMap
//!    (every customer's worker gets `<customer>-worker-settings`);
//! 3. initech's worker overlay runs 2 replicas.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use argosy_sync_engine::repo::write_commit;

/// The URL the example's ApplicationSet reads.
pub const EXAMPLE_REPO_URL: &str = "https://git.example.com/platform/fleet.git";

/// The example's directory (`examples/per-customer`).
#[must_use]
pub fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/per-customer")
}

/// Every file under `dir`, by path relative to `dir` (with `/`).
pub fn files_under(dir: &Path) -> Result<BTreeMap<String, String>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let relative = path
                    .strip_prefix(root)?
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                out.insert(relative, text);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Writes the three commits on `reference` of a new bare repository at `repo`; returns
/// their ids, oldest first.
pub fn write_history(repo: &Path, reference: &str) -> Result<[String; 3]> {
    let mut files = files_under(&example_dir().join("repo"))?;
    let commit = |files: &BTreeMap<String, String>| {
        write_commit(repo, reference, files)
            .map(|id| id.to_string())
            .map_err(|e| anyhow!(e))
    };
    let first = commit(&files)?;

    edit(
        &mut files,
        "apps/web/overlays/acme/kustomization.yaml",
        |text| format!("{text}images:\n- name: nginx\n  newTag: \"1.28\"\n"),
    )?;
    files.insert(
        "apps/worker/base/settings.yaml".to_owned(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker-settings\ndata:\n  interval: \"60\"\n"
            .to_owned(),
    );
    edit(&mut files, "apps/worker/base/kustomization.yaml", |text| {
        format!("{text}- settings.yaml\n")
    })?;
    let second = commit(&files)?;

    edit(
        &mut files,
        "apps/worker/overlays/initech/kustomization.yaml",
        |text| text.replace("count: 1", "count: 2"),
    )?;
    let third = commit(&files)?;
    Ok([first, second, third])
}

fn edit(
    files: &mut BTreeMap<String, String>,
    path: &str,
    change: impl FnOnce(&str) -> String,
) -> Result<()> {
    let text = files
        .get_mut(path)
        .with_context(|| format!("{path} is not in the example"))?;
    let changed = change(text);
    anyhow::ensure!(changed != *text, "{path}: the edit changed nothing");
    *text = changed;
    Ok(())
}

/// One Application of a plan: customer, Application, its change, and each object that
/// differs as `Kind/name` with its change.
pub type PlannedChange = (String, String, String, Vec<(String, String)>);

/// The Applications of a plan (the JSON of `argosy plan -o json` and of the plan API), in
/// the plan's order.
#[must_use]
pub fn plan_shape(plan: &serde_json::Value) -> Vec<PlannedChange> {
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("?").to_owned();
    let list = |v: &serde_json::Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for destination in list(plan, "destinations") {
        for app in list(&destination, "applications") {
            let objects = list(&app, "objects")
                .iter()
                .map(|o| {
                    (
                        format!("{}/{}", text(o, "kind"), text(o, "name")),
                        text(o, "change"),
                    )
                })
                .collect();
            out.push((
                text(&destination, "group"),
                text(&app, "name"),
                text(&app, "change"),
                objects,
            ));
        }
    }
    out
}

/// What a plan from the first commit to the second must find, exactly.
#[must_use]
pub fn first_to_second() -> Vec<PlannedChange> {
    let change = |customer: &str, app: &str, how: &str, objects: &[(&str, &str)]| {
        (
            customer.to_owned(),
            format!("{app}-{customer}"),
            how.to_owned(),
            objects
                .iter()
                .map(|(o, c)| ((*o).to_owned(), (*c).to_owned()))
                .collect(),
        )
    };
    vec![
        change(
            "acme",
            "web",
            "changed",
            &[("Deployment/acme-web", "changed")],
        ),
        change(
            "acme",
            "worker",
            "changed",
            &[("ConfigMap/acme-worker-settings", "added")],
        ),
        change("globex", "web", "unchanged", &[]),
        change(
            "globex",
            "worker",
            "changed",
            &[("ConfigMap/globex-worker-settings", "added")],
        ),
        change("initech", "web", "unchanged", &[]),
        change(
            "initech",
            "worker",
            "changed",
            &[("ConfigMap/initech-worker-settings", "added")],
        ),
    ]
}
