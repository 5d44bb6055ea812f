//! The fleet dashboard end to end: real kube-apiservers (management + three workload
//! clusters), the bundled per-customer example synced by the in-process controller, and the
//! page rendered by headless Chromium (Debian's `chromium` + `chromedriver`, installed by
//! scripts/install-browser.sh).
//!
//! The browser is driven over WebDriver (plain HTTP + JSON to chromedriver) so that ONE page
//! stays open for the whole test: the page's matrix must match the Applications' real
//! status, and after a workload API server is stopped its column must turn "unreachable"
//! on that same page, through the Server-Sent Events stream, without a reload (a marker
//! set in the page's `window` before the stop must still be there). The JSON API and
//! /metrics must agree. Screenshots go under the target dir (their paths are printed).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, appset_resource, init_tracing,
    install_crds, prepare_namespace, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::free_port;
use argosy_tests::fixtures::register_cluster;
use base64::Engine as _;
use kube::api::DynamicObject;
use kube::{Api, Client};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
const TOKEN: &str = "dashboard-test-token";
/// Workload index, cluster name and labels, as in examples/per-customer/clusters.
const CLUSTERS: [(usize, &str, &str, &str); 3] = [
    (0, "acme-prod", "acme", "gold"),
    (1, "globex-prod", "globex", "silver"),
    (2, "initech-prod", "initech", "bronze"),
];
const APPS: [&str; 6] = [
    "web-acme",
    "worker-acme",
    "web-globex",
    "worker-globex",
    "web-initech",
    "worker-initech",
];
/// The cluster whose API server the test stops.
const STOPPED: usize = 1;

/// Every file under `dir`, as repository paths under `prefix`.
fn files_under(dir: &Path, prefix: &str) -> Result<BTreeMap<String, TreeEntry>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            out.extend(files_under(&path, &format!("{name}/"))?);
        } else {
            out.insert(name, TreeEntry::File(std::fs::read_to_string(&path)?));
        }
    }
    Ok(out)
}

/// Where this test's artifacts go (inside the target dir; not committed).
fn artifact(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(name))
}

/// A chromedriver process and one browser session, spoken to in WebDriver's JSON over HTTP.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Result<Browser> {
        let port = free_port()?;
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver (run scripts/install-browser.sh first)")?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_for(
            "chromedriver to be ready",
            Duration::from_secs(20),
            || async {
                let status = http
                    .get(format!("{base}/status"))
                    .send()
                    .await?
                    .text()
                    .await?;
                let status: Value = serde_json::from_str(&status)?;
                Ok((status["value"]["ready"] == true).then_some(()))
            },
        )
        .await?;
        let profile = tempfile::tempdir()?;
        // The flags that keep Chromium quiet on a machine without outside network.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1500,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut browser = Browser {
            http,
            base,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let created = browser
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
                }}}),
            )
            .await
            .context("creating a Chromium session")?;
        browser.session = created["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_owned();
        Ok(browser)
    }

    /// One WebDriver command; returns its `value`.
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let answer: Value = serde_json::from_str(&response.text().await?)?;
        ensure!(status.is_success(), "WebDriver {path}: {status} {answer}");
        Ok(answer["value"].clone())
    }

    fn session_path(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/url"),
            json!({ "url": url }),
        )
        .await
        .map(|_| ())
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn script(&self, script: &str) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self
            .call(
                reqwest::Method::GET,
                &self.session_path("/screenshot"),
                Value::Null,
            )
            .await?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or(""))?;
        let path = artifact(name)?;
        std::fs::write(&path, bytes)?;
        eprintln!("dashboard screenshot: {}", path.display());
        Ok(path)
    }

    /// Ends the session (and the browser), then chromedriver.
    async fn quit(mut self) {
        let path = self.session_path("");
        let _ = self.call(reqwest::Method::DELETE, &path, Value::Null).await;
        let _ = self.driver.kill().await;
    }
}

/// What the page shows: the matrix's columns and cells, the SSE update count and the
/// no-reload marker.
const READ_MATRIX: &str = r#"
const table = document.querySelector('#matrix');
if (!table) return null;
return {
  columns: [...table.querySelectorAll('th.cluster')].map(th => ({
    server: th.dataset.server, name: th.dataset.cluster, connection: th.dataset.connection,
    text: th.querySelector('.state').textContent })),
  cells: [...table.querySelectorAll('a.app')].map(a => ({
    app: a.dataset.app, sync: a.dataset.sync, health: a.dataset.health, revision: a.dataset.revision,
    server: a.closest('td').dataset.server, unreachable: a.closest('td').classList.contains('unreachable'),
    note: (a.closest('td').querySelector('.note') || {}).textContent || '' })),
  updates: Number(document.body.dataset.updates),
  live: document.body.dataset.live,
  marker: window.__argosyMarker || null,
};
"#;

/// The ApplicationSet with a RollingSync (one step, one Application on acme's cluster).
const ROLLING: &str = "canary";

/// (Its destination is a server: the matrix check compares servers.)
fn rolling_appset(server: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
           "metadata": {"name": ROLLING, "namespace": ARGOCD_NAMESPACE},
           "spec": {
               "generators": [{"list": {"elements": [{"cluster": "acme-prod", "server": server}]}}],
               "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                   {"matchExpressions": [{"key": "ring", "operator": "In", "values": ["canary"]}]}]}},
               "template": {
                   "metadata": {"name": "canary-{{cluster}}", "labels": {"ring": "canary"}},
                   "spec": {"project": "default",
                            "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "rollout"},
                            "destination": {"server": "{{server}}", "namespace": "canary"},
                            "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]}}}}})
}

/// What the page shows of a rollout: its phase and step, and each Application's row.
const READ_ROLLOUT: &str = r#"
const phase = document.querySelector('#rollout [data-phase]');
if (!phase) return null;
return {
  phase: phase.dataset.phase, step: phase.dataset.step,
  rows: [...document.querySelectorAll('#rollout tr[data-app]')].map(r => ({
    app: r.dataset.app, progress: r.dataset.progress, customer: r.dataset.customer,
    step: r.closest('[data-step]').dataset.step })),
};
"#;

/// `(app, server, revision[..7], sync, health)` of each Application, as the API server has it.
async fn real_cells(client: &Client) -> Result<BTreeSet<(String, String, String, String, String)>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    let mut cells = BTreeSet::new();
    for app in api.list(&Default::default()).await?.items {
        let app = serde_json::to_value(app)?;
        let text = |pointer: &str| {
            app.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let revision: String = text("/status/sync/revision").chars().take(7).collect();
        cells.insert((
            text("/metadata/name"),
            text("/spec/destination/server"),
            revision,
            text("/status/sync/status"),
            text("/status/health/status"),
        ));
    }
    Ok(cells)
}

fn shown_cells(page: &Value) -> BTreeSet<(String, String, String, String, String)> {
    page["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            (s("app"), s("server"), s("revision"), s("sync"), s("health"))
        })
        .collect()
}

async fn http_get(url: &str, bearer: Option<&str>) -> Result<(reqwest::StatusCode, String)> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_fleet_and_an_unreachable_cluster_live() -> Result<()> {
    init_tracing();
    let mut cp = ControlPlane::start(3)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let client = cp.management().client().await?;
    install_crds(&client).await?;
    prepare_namespace(&client).await?;

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/per-customer");
    let mut files = files_under(&example.join("repo"), "")?;
    files.insert(
        "rollout/settings.yaml".to_owned(),
        TreeEntry::File(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: v1\n"
                .to_owned(),
        ),
    );
    write_tree_commit(&repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;
    for (i, name, customer, tier) in CLUSTERS {
        let cluster = &cp.workloads()[i];
        register_cluster(
            &client,
            name,
            cluster,
            &[("customer", customer), ("tier", tier)],
        )
        .await?;
    }
    let appset: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(example.join("appset.yaml"))?)?;
    apply_json(&client, &appset_resource(), appset).await?;
    apply_json(
        &client,
        &appset_resource(),
        rolling_appset(&cp.workloads()[0].server),
    )
    .await?;

    let port = free_port()?;
    let mut args = run_args("dashboard", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    args.sync.resync = Duration::from_secs(5);
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(TOKEN.to_owned().into());
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    let base = format!("http://127.0.0.1:{port}");

    // Every app compared: gold-tier acme syncs by hand (OutOfSync), the others sync.
    wait_for(
        "all six Applications compared",
        Duration::from_secs(120),
        || async {
            let cells = real_cells(&client).await?;
            let cells: Vec<_> = cells
                .into_iter()
                .filter(|(name, ..)| APPS.contains(&name.as_str()))
                .collect();
            let done = cells.len() == APPS.len()
                && cells.iter().all(|(name, _, _, sync, health)| {
                    let expected = if name.ends_with("-acme") {
                        "OutOfSync"
                    } else {
                        "Synced"
                    };
                    sync == expected && !health.is_empty()
                });
            Ok(done.then_some(()))
        },
    )
    .await?;

    let browser = Browser::start().await?;
    let result = scenario(&browser, &mut cp, &client, &base).await;
    if result.is_err() {
        let _ = browser.screenshot("failure.png").await;
    }
    browser.quit().await;
    result
}

async fn scenario(
    browser: &Browser,
    cp: &mut ControlPlane,
    client: &Client,
    base: &str,
) -> Result<()> {
    // Unauthenticated: the API refuses, the page offers the login form.
    let (status, _) = http_get(&format!("{base}/api/v1/fleet"), None).await?;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // Log in as a person does: the form, with the token pasted (never in the URL).
    browser.goto(&format!("{base}/login")).await?;
    browser
        .script(&format!(
            "document.querySelector('input[name=token]').value = {};
             document.querySelector('form[action=\"/login\"]').submit();
             return null;",
            json!(TOKEN)
        ))
        .await?;
    // The page's matrix shows exactly the Applications' real revision, sync and health.
    let page = wait_for(
        "the matrix to show the real statuses",
        Duration::from_secs(30),
        || async {
            let page = browser.script(READ_MATRIX).await?;
            let real = real_cells(client).await?;
            Ok(
                (!page.is_null() && shown_cells(&page) == real && page["live"] == "true")
                    .then_some(page),
            )
        },
    )
    .await?;
    let columns = page["columns"].as_array().context("columns")?;
    assert_eq!(columns.len(), 3, "{page}");
    for column in columns {
        assert_eq!(column["connection"], "Connected", "{column}");
        assert_eq!(column["text"], "connected");
    }
    assert!(
        shown_cells(&page)
            .iter()
            .any(|(_, _, revision, _, _)| revision.len() == 7),
        "short revisions: {page}"
    );
    browser.screenshot("fleet.png").await?;

    // The app view: resources by kind and the diff of an app that is not synced yet.
    browser
        .script("location.hash = '#/app/argocd/web-acme'; return null;")
        .await?;
    let detail = wait_for("the app view with its diff", Duration::from_secs(30), || async {
        let view = browser
            .script(
                "const d = document.querySelector('#diff');
                 if (!d || d.textContent.startsWith('computing')) return null;
                 return { kinds: [...document.querySelectorAll('#resources [data-kind]')].map(e => e.dataset.kind),
                          diff: d.textContent };",
            )
            .await?;
        Ok((!view.is_null()).then_some(view))
    })
    .await?;
    let kinds: Vec<&str> = detail["kinds"]
        .as_array()
        .context("kinds")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(kinds.contains(&"Deployment.apps"), "{detail}");
    let diff = detail["diff"].as_str().unwrap_or("");
    assert!(
        diff.contains("+++ desired") && diff.contains("acme-web"),
        "{diff}"
    );

    // The ApplicationSet preview: what it generates now, all six already existing.
    browser
        .script("location.hash = '#/appset/argocd/customer-apps'; return null;")
        .await?;
    let preview = wait_for("the ApplicationSet preview", Duration::from_secs(30), || async {
        let rows = browser
            .script("return [...document.querySelectorAll('#preview tr[data-app]')].map(r => r.dataset.app);")
            .await?;
        Ok((rows.as_array().is_some_and(|r| r.len() == APPS.len())).then_some(rows))
    })
    .await?;
    for app in APPS {
        assert!(
            preview.as_array().unwrap().contains(&json!(app)),
            "{preview}"
        );
    }

    // A RollingSync ApplicationSet: its rollout as the API server has it (phase, step),
    // and its Application's row with the destination's customer.
    browser
        .script(&format!(
            "location.hash = '#/appset/argocd/{ROLLING}'; return null;"
        ))
        .await?;
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &appset_resource());
    let rollout = wait_for(
        "the rollout in the page",
        Duration::from_secs(60),
        || async {
            let status = serde_json::to_value(appsets.get(ROLLING).await?)?["status"].clone();
            let (rollout, apps) = (&status["rollout"], &status["applicationStatus"]);
            let shown = browser.script(READ_ROLLOUT).await?;
            // (Before its Application exists, the rollout is Completed with nothing in it.)
            let same = !shown.is_null()
                && apps.as_array().is_some_and(|a| !a.is_empty())
                && shown["rows"].as_array().map(Vec::len) == apps.as_array().map(Vec::len)
                && rollout["phase"].as_str().is_some_and(|p| !p.is_empty())
                && shown["phase"] == rollout["phase"]
                && shown["step"].as_str().and_then(|s| s.parse::<u64>().ok())
                    == rollout["step"].as_u64();
            Ok(same.then_some(shown))
        },
    )
    .await?;
    let rows = rollout["rows"].as_array().context("rows")?;
    assert_eq!(rows.len(), 1, "{rollout}");
    assert_eq!(rows[0]["app"], format!("{ROLLING}-acme-prod"), "{rollout}");
    assert_eq!(rows[0]["customer"], "acme", "{rollout}");
    assert_eq!(rows[0]["step"], "1", "{rollout}");
    assert!(
        ["Waiting", "Pending", "Progressing", "Healthy"]
            .contains(&rows[0]["progress"].as_str().unwrap_or("")),
        "{rollout}"
    );
    browser.screenshot("rollout.png").await?;

    // Back to the matrix (a hash change, not a load); mark the page to prove no reload.
    browser
        .script("location.hash = '#/'; window.__argosyMarker = 'same-page'; return null;")
        .await?;
    let before = wait_for("the matrix again", Duration::from_secs(10), || async {
        let page = browser.script(READ_MATRIX).await?;
        Ok((!page.is_null() && page["marker"] == "same-page").then_some(page))
    })
    .await?;

    let stopped = &cp.workloads()[STOPPED];
    let (server, cluster_name) = (stopped.server.clone(), CLUSTERS[STOPPED].1);
    let name = stopped.name.clone();
    cp.stop_cluster(&name).await?;
    let at = Instant::now();

    let page = wait_for(
        "the stopped cluster's column to read unreachable",
        Duration::from_secs(30),
        || async {
            let page = browser.script(READ_MATRIX).await?;
            let unreachable = page["columns"].as_array().into_iter().flatten().any(|c| {
                c["server"] == server.as_str()
                    && c["connection"] == "Unreachable"
                    && c["text"] == "unreachable"
            });
            Ok(unreachable.then_some(page))
        },
    )
    .await?;
    eprintln!(
        "column unreachable in the page {:?} after the stop",
        at.elapsed()
    );
    assert_eq!(page["marker"], "same-page", "the page was reloaded: {page}");
    assert!(
        page["updates"].as_u64() > before["updates"].as_u64(),
        "no Server-Sent Event arrived: {page}"
    );
    for column in page["columns"].as_array().unwrap() {
        let expected = if column["server"] == server.as_str() {
            "Unreachable"
        } else {
            "Connected"
        };
        assert_eq!(column["connection"], expected, "{column}");
        assert_ne!(column["text"], "degraded");
    }
    for cell in page["cells"].as_array().unwrap() {
        if cell["server"] == server.as_str() {
            assert_eq!(cell["unreachable"], true, "{cell}");
            assert_eq!(cell["note"], "unreachable", "{cell}");
            assert_ne!(cell["health"], "Degraded", "{cell}");
        } else {
            assert_eq!(cell["unreachable"], false, "{cell}");
        }
    }
    browser.screenshot("fleet-unreachable.png").await?;

    // The JSON API and /metrics say the same.
    let (status, body) = http_get(
        &format!("{base}/api/v1/fleet?groupBy=customer"),
        Some(TOKEN),
    )
    .await?;
    assert_eq!(status, reqwest::StatusCode::OK);
    let fleet: Value = serde_json::from_str(&body)?;
    let cluster = fleet["clusters"]
        .as_array()
        .context("clusters")?
        .iter()
        .find(|c| c["server"] == server.as_str())
        .context("the stopped cluster in /api/v1/fleet")?;
    assert_eq!(cluster["connection"]["state"], "Unreachable", "{cluster}");
    assert_eq!(cluster["name"], cluster_name);
    let group = fleet["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["value"] == "globex")
        .unwrap();
    assert_eq!(group["unreachable"], 1, "{group}");

    wait_for(
        "/metrics to report the cluster down",
        Duration::from_secs(30),
        || async {
            let (_, text) = http_get(&format!("{base}/metrics"), None).await?;
            let down = |family: &str| {
                text.lines().any(|l| {
                    l.starts_with(&format!("{family}{{"))
                        && l.contains(&format!("server=\"{server}\""))
                        && l.ends_with(" 0")
                })
            };
            Ok((down("argosy_cluster_connection_status")
                && down("argocd_cluster_connection_status"))
            .then_some(()))
        },
    )
    .await?;
    if at.elapsed() > Duration::from_secs(30) {
        bail!("unreachable took {:?}", at.elapsed());
    }
    Ok(())
}
