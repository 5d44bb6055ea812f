//! Self-tests of the Helm repository harness (`argosy_tests::helm_repo`) with the real
//! `helm`, and a cross-check of `argosy_sync_engine::charts` against it: the chart versions
//! Argosy picks for a `targetRevision` are the ones `helm pull --version` picks from the
//! same served index, and Argosy's Masterminds semver (`argosy_templates::semver`, which
//! `charts::version` re-exports) and its Sprig `semverCompare` agree with Helm's own
//! constraint check (`semverCompare`, the same Masterminds library) on a table of
//! constraints and versions.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use argosy_sync_engine::charts::index::{ARGO_CD_MAX_INDEX_BYTES, Index, IndexError};
use argosy_sync_engine::charts::version::{Constraint, parse_version};
use argosy_templates::{GoOptions, Mode, Params, render_string};
use argosy_tests::git_servers::Listener;
use argosy_tests::helm_repo::{
    ChartDir, HelmHome, HelmRepoOptions, HelmRepoServer, helm_repo_index, helm_template,
    normalize_manifests, parse_documents, remove_fields,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const USER: &str = "helm-user";
const PASSWORD: &str = "s3cret-pw";

/// The versions of chart `web` served: releases, prereleases, build metadata, a `v` prefix.
const VERSIONS: &[&str] = &[
    "0.9.0",
    "1.0.0",
    "1.1.0+build.7",
    "1.1.1-rc.1",
    "1.2.0",
    "2.0.0-beta.1",
    "2.0.0",
    "v2.1.0",
];

/// `ROOT/charts` holds the archives and an index with relative URLs, served with basic auth.
struct Repo {
    _root: TempDir,
    server: HelmRepoServer,
    /// `https://127.0.0.1:PORT/charts`.
    url: String,
}

fn repo() -> Result<Repo> {
    let root = TempDir::new().context("repository root")?;
    let charts = root.path().join("charts");
    fs::create_dir_all(&charts)?;
    for version in VERSIONS {
        let archive = ChartDir::new("web", version).package(&charts)?;
        assert_eq!(archive, charts.join(format!("web-{version}.tgz")));
    }
    // No --url: relative URLs, which clients resolve against the repository URL.
    helm_repo_index(&charts, None)?;
    let server =
        HelmRepoServer::start(HelmRepoOptions::new(root.path()).basic_auth(USER, PASSWORD))?;
    let url = server.url_of("charts");
    Ok(Repo {
        _root: root,
        server,
        url,
    })
}

/// `helm repo add NAME URL --ca-file --username --password` in `home`.
fn repo_add(home: &HelmHome, repo: &Repo, name: &str, password: &str) -> Result<String> {
    let ca = repo.server.ca_path();
    home.run(&[
        "repo",
        "add",
        name,
        &repo.url,
        "--ca-file",
        ca.to_str().context("CA path")?,
        "--username",
        USER,
        "--password",
        password,
    ])
}

/// `helm pull REF --version WANTED` into a fresh directory: the archive's file name.
fn helm_pull(home: &HelmHome, chart: &str, wanted: &str) -> Result<String> {
    let out = TempDir::new()?;
    home.run(&[
        "pull",
        chart,
        "--version",
        wanted,
        "--destination",
        out.path().to_str().context("temp path")?,
    ])?;
    let names: Vec<String> = fs::read_dir(out.path())?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    match names.as_slice() {
        [one] => Ok(one.clone()),
        other => bail!("helm pull left {other:?}"),
    }
}

async fn get(repo: &Repo, path: &str, password: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let ca = reqwest::Certificate::from_pem(repo.server.ca_pem().as_bytes())?;
    let client = reqwest::Client::builder().tls_certs_only([ca]).build()?;
    let mut request = client.get(format!("{}/{path}", repo.url));
    if let Some(password) = password {
        request = request.basic_auth(USER, Some(password));
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn helm_pulls_the_newest_matching_chart_over_https_with_basic_auth() -> Result<()> {
    let repo = repo()?;
    let home = HelmHome::new()?;

    // `helm repo add` reads the index once, with the credentials.
    repo.server.reset_requests();
    repo_add(&home, &repo, "test", PASSWORD)?;
    assert_eq!(repo.server.served("charts/index.yaml"), 1);
    let log = repo.server.access_log();
    assert!(
        log.iter().all(|e| e.user.as_deref() == Some(USER)
            && e.listener == Listener::Https
            && e.status == 200),
        "{log:?}"
    );

    // `helm pull` takes the newest 1.x from the cached index: one archive request, no index.
    repo.server.reset_requests();
    let pulled = helm_pull(&home, "test/web", ">=1.0.0 <2.0.0")?;
    assert_eq!(pulled, "web-1.2.0.tgz");
    assert_eq!(repo.server.requests("charts/index.yaml"), 0);
    assert_eq!(repo.server.served("charts/web-1.2.0.tgz"), 1);
    assert_eq!(repo.server.access_log().len(), 1);

    // The wrong password, or none, is refused; so is a client that does not trust the CA.
    repo.server.reset_requests();
    let wrong = repo_add(&home, &repo, "wrong", "not-the-password").unwrap_err();
    assert!(format!("{wrong:#}").contains("401"), "{wrong:#}");
    let refused = repo.server.access_log();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (
            refused[0].status,
            refused[0].user.as_deref(),
            refused[0].path.as_str()
        ),
        (401, Some(USER), "/charts/index.yaml")
    );
    let ca = repo.server.ca_path();
    let no_creds = home.run(&[
        "repo",
        "add",
        "anon",
        &repo.url,
        "--ca-file",
        ca.to_str().context("CA path")?,
    ]);
    assert!(format!("{:#}", no_creds.unwrap_err()).contains("401"));
    let untrusted = home.run(&[
        "repo",
        "add",
        "untrusted",
        &repo.url,
        "--username",
        USER,
        "--password",
        PASSWORD,
    ]);
    let untrusted = format!("{:#}", untrusted.unwrap_err());
    assert!(untrusted.contains("certificate"), "{untrusted}");

    // The same over reqwest (Argosy's HTTP client): 401 without credentials, the index with.
    let (status, _) = get(&repo, "index.yaml", None).await?;
    assert_eq!(status, 401);
    let (status, _) = get(&repo, "index.yaml", Some("nope")).await?;
    assert_eq!(status, 401);
    let (status, bytes) = get(&repo, "index.yaml", Some(PASSWORD)).await?;
    assert_eq!(status, 200);
    let index = Index::parse(&bytes, ARGO_CD_MAX_INDEX_BYTES)?;
    assert_eq!(index.entries["web"].len(), VERSIONS.len());

    // Relative URLs resolve to what is served: the archive downloads.
    let chosen = index.resolve("web", ">=1.0.0 <2.0.0")?;
    let url = chosen.download_url(&repo.url)?;
    assert_eq!(url, format!("{}/web-1.2.0.tgz", repo.url));
    let (status, archive) = get(&repo, "web-1.2.0.tgz", Some(PASSWORD)).await?;
    assert_eq!(status, 200);
    assert_eq!(
        archive,
        fs::read(repo.server.root().join("charts/web-1.2.0.tgz"))?
    );

    // A password change takes effect at once.
    repo.server.set_password("rotated")?;
    let (status, _) = get(&repo, "index.yaml", Some(PASSWORD)).await?;
    assert_eq!(status, 401);
    let (status, _) = get(&repo, "index.yaml", Some("rotated")).await?;
    assert_eq!(status, 200);
    Ok(())
}

/// What `helm pull --version` picks from the served index, and what `Index::resolve` picks
/// for the same text, for constraints, exact versions, prereleases, builds and `v` prefixes.
#[tokio::test]
async fn argosy_picks_the_chart_version_helm_picks() -> Result<()> {
    let repo = repo()?;
    let home = HelmHome::new()?;
    repo_add(&home, &repo, "test", PASSWORD)?;
    let (_, bytes) = get(&repo, "index.yaml", Some(PASSWORD)).await?;
    let index = Index::parse(&bytes, bytes.len())?;

    let cases = [
        (">=1.0.0 <2.0.0", "1.2.0"),
        ("^1", "1.2.0"),
        ("~1.1", "1.1.0+build.7"),
        ("1.x", "1.2.0"),
        ("*", "v2.1.0"),
        ("<1.0.0", "0.9.0"),
        ("1.0.0 - 1.1.0", "1.1.0+build.7"),
        (">=2, !=2.1.0", "2.0.0"),
        ("<1 || ~2.0", "2.0.0"),
        // Versions: the exact text, or else the newest the version reads as a constraint.
        ("1.0.0", "1.0.0"),
        ("1.1.0", "1.1.0+build.7"),
        ("1.1", "1.1.0+build.7"),
        ("2.1.0", "v2.1.0"),
        ("v2.1.0", "v2.1.0"),
        ("2", "v2.1.0"),
        // Prereleases only when the constraint names one; a prerelease of 2.0.0 is below it.
        ("2.0.0-beta.1", "2.0.0-beta.1"),
        (">=1.1.1-0 <1.2.0", "1.1.1-rc.1"),
        (">=1.0.0-0 <2.0.0", "2.0.0-beta.1"),
        ("~2.0.0-0", "2.0.0"),
        ("1.x || >=2.0.0-0 <2.0.0", "2.0.0-beta.1"),
        ("^1.1.1-0", "1.2.0"),
        ("*-0", "v2.1.0"),
    ];
    let mut disagreements = Vec::new();
    for (wanted, expected) in cases {
        let helm = helm_pull(&home, "test/web", wanted)?;
        let ours = index.resolve("web", wanted)?.version.clone();
        if helm != format!("web-{ours}.tgz") || ours != expected {
            disagreements.push(format!(
                "{wanted:?}: helm {helm}, argosy {ours}, expected {expected}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");

    // Where helm finds nothing, neither does Argosy.
    for wanted in ["^3", ">2.1.0", "1.3", "3.0.0", "~0.9.1"] {
        assert!(
            helm_pull(&home, "test/web", wanted).is_err(),
            "helm found {wanted}"
        );
        match index.resolve("web", wanted) {
            Err(IndexError::NoMatchingVersion { newest, count, .. }) => {
                assert_eq!(count, VERSIONS.len());
                assert_eq!(
                    newest,
                    ["v2.1.0", "2.0.0", "2.0.0-beta.1", "1.2.0", "1.1.1-rc.1"]
                );
            }
            other => panic!("{wanted}: {other:?}"),
        }
    }
    Ok(())
}

const CONSTRAINTS: &[&str] = &[
    "1.2.3",
    "=1.2.3",
    "v1.2.3",
    "1.2",
    "1",
    "=1.2",
    "1.2.x",
    "1.x",
    "x",
    "*",
    "*-0",
    "2.*",
    "!=1.2.3",
    "!=1.2",
    "!=1.x",
    "!=*",
    "!=1.2.3-beta.2",
    ">1.2.3",
    ">1.2",
    ">1",
    ">0",
    ">*",
    ">0.0.0-0",
    "<1.2.3",
    "<1.2",
    "<1.x",
    "<0-z",
    ">=1.2.3",
    ">=1.2",
    "=>1",
    ">=1.2.3-0",
    "<=1.2.3",
    "<=1.2",
    "=<1",
    "<=1.x",
    "<=*",
    "<=1.2.3-beta.2",
    "~1.2.3",
    "~1.2",
    "~1",
    "~>1.2",
    "~0.0.0",
    "~*",
    "~1.2.3-beta.2",
    "~1.2-0",
    "^1.2.3",
    "^1.2",
    "^1",
    "^0.2.3",
    "^0.2",
    "^0.0.3",
    "^0.0",
    "^0",
    "^*",
    "^1.2.3-beta.2",
    "^0.0.3-0",
    ">=1.0.0 <2.0.0",
    ">=1.0.0, <2.0.0",
    ">1.1 <2 !=1.2.3",
    ">=1.0.0-0 <2.0.0",
    "1.0.0 - 1.2.3",
    "1.2 - 1.4.5",
    "1.0.0 - 2.0.0, <=2.0.0",
    "1.5, 1.0 - 2.0",
    "1.0 -\t2.0",
    "<1 || >=2.0.0-0",
    "~1.2 || ^2 || 0.0.3",
    "1.2.3-beta.2",
    "1.1-3",
    "1.2.x-0",
    "v1.x",
    "X.1.2",
];

const CHECKED_VERSIONS: &[&str] = &[
    "0.0.0",
    "0.0.3",
    "0.0.4-alpha",
    "0.1.0",
    "0.2.3",
    "0.2.9",
    "0.3.0",
    "1",
    "v1.0",
    "1.0.0-0",
    "1.1.5",
    "1.2.0",
    "1.2.2",
    "1.2.3",
    "1.2.3+build.9",
    "1.2.3-alpha",
    "1.2.3-beta.2",
    "1.2.3-beta.11",
    "1.2.3-BETA",
    "1.2.4",
    "1.3.0",
    "1.4.5",
    "1.4.6",
    "01.2.3",
    "1.9.9-rc.1",
    "2.0.0-rc.1",
    "2.0.0",
    "2.5.0",
    "10.0.0",
    "1.2.3-99999999999999999999",
];

/// `Constraint::matches`, and Argosy's Sprig `semverCompare`, against Helm's own
/// `semverCompare` for every pair of a table of constraints and versions, in one
/// `helm template` run.
#[test]
fn constraints_agree_with_helms_semver_compare() -> Result<()> {
    let pairs: Vec<(&str, &str)> = CONSTRAINTS
        .iter()
        .flat_map(|c| CHECKED_VERSIONS.iter().map(move |v| (*c, *v)))
        .collect();
    let helm = semver_compare_in_helm(&pairs)?;
    let mut disagreements = Vec::new();
    for ((constraint, version), helm) in pairs.iter().zip(&helm) {
        let ours = Constraint::parse(constraint)?.matches(&parse_version(version)?);
        let sprig = sprig_semver_compare(constraint, version)?;
        if ours != *helm || sprig != helm.to_string() {
            disagreements.push(format!(
                "{constraint:?} {version:?}: helm {helm}, argosy {ours}, sprig {sprig}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {}: {disagreements:#?}",
        disagreements.len(),
        pairs.len()
    );
    // The table is no formality: both answers occur for most constraints.
    let trues = helm.iter().filter(|b| **b).count();
    assert!(
        trues > pairs.len() / 5 && trues < pairs.len() * 4 / 5,
        "{trues} of {}",
        pairs.len()
    );
    Ok(())
}

/// Texts Helm refuses as constraints (`semverCompare` fails the render), and so does Argosy;
/// and one it accepts, so the check can fail.
#[test]
fn improper_constraints_are_refused_by_helm_and_argosy_alike() -> Result<()> {
    for constraint in [
        "",
        "latest",
        "1.2.3.4",
        ">=1.0<2.0",
        "==1",
        "1.0 ||",
        ">1.0 - 2.0",
        "1x",
        "1.0 | 2.0",
        "1.0.0-01",
        ">99999999999999999999",
        "1.5 1.0 - 2.0",
        "1.0,",
        "1.0~2.0",
        "&&",
    ] {
        let helm = semver_compare_in_helm(&[(constraint, "1.0.0")]);
        let ours = Constraint::parse(constraint);
        assert!(helm.is_err(), "helm accepts {constraint:?}");
        assert!(ours.is_err(), "argosy accepts {constraint:?}");
        let sprig = sprig_semver_compare(constraint, "1.0.0");
        assert!(
            sprig.is_err(),
            "argosy's semverCompare accepts {constraint:?}"
        );
    }
    assert_eq!(semver_compare_in_helm(&[(">=1.0 <2", "1.5.0")])?, [true]);
    for version in ["1.2.3.4", "1.0.0-01", "V1.0.0", "latest", "1.2.x"] {
        assert!(
            semver_compare_in_helm(&[("*", version)]).is_err(),
            "helm reads {version:?}"
        );
        assert!(parse_version(version).is_err(), "argosy reads {version:?}");
        let sprig = sprig_semver_compare("*", version);
        assert!(sprig.is_err(), "argosy's semverCompare reads {version:?}");
    }
    Ok(())
}

/// Argosy's Sprig `semverCompare CONSTRAINT VERSION`, rendered by its Go template engine.
fn sprig_semver_compare(constraint: &str, version: &str) -> Result<String> {
    Ok(render_string(
        &format!("{{{{ semverCompare {constraint:?} {version:?} }}}}"),
        &Params::default(),
        &Mode::Go(GoOptions::default()),
    )?)
}

/// Helm's `semverCompare CONSTRAINT VERSION` for each pair, rendered by `helm template`.
fn semver_compare_in_helm(pairs: &[(&str, &str)]) -> Result<Vec<bool>> {
    let work = TempDir::new()?;
    let template = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: semver
data:
{{- range $i, $p := .Values.pairs }}
  p{{ $i }}: {{ semverCompare (index $p 0) (index $p 1) | quote }}
{{- end }}
"#;
    let chart = ChartDir::new("semver", "0.1.0")
        .values("{}\n")
        .template("semver.yaml", template)
        .write(work.path())?;
    // Only the pairs' template: the built-in ones need values this chart does not have.
    for builtin in ["configmap.yaml", "deployment.yaml"] {
        fs::remove_file(chart.join("templates").join(builtin))?;
    }
    let values = work.path().join("pairs.json");
    fs::write(&values, serde_json::to_vec(&json!({ "pairs": pairs }))?)?;
    let objects = helm_template(
        chart.to_str().context("chart path")?,
        &["--values", values.to_str().context("values path")?],
    )?;
    let data = &objects.first().context("helm template printed nothing")?["data"];
    (0..pairs.len())
        .map(
            |i| match data.get(format!("p{i}")).and_then(Value::as_str) {
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                other => bail!("pair {i}: {other:?}"),
            },
        )
        .collect()
}

/// The chart fixture renders with the real helm, its values reach its objects, and the
/// normalization makes helm's YAML and the same objects written otherwise compare equal.
#[test]
fn chart_fixtures_render_and_normalize() -> Result<()> {
    let work = TempDir::new()?;
    let chart: PathBuf = ChartDir::new("api", "3.1.4")
        .app_version("9.9.9")
        .template(
            "extra.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-svc\nspec:\n  selector: {}\n  ports:\n  - port: {{ .Values.port }}\n",
        )
        .write(work.path())?;
    let chart_ref = chart.to_str().context("chart path")?;
    let objects = helm_template(
        chart_ref,
        &[
            "--name-template",
            "rel",
            "--set",
            "replicaCount=3",
            "--set",
            "message=hi",
        ],
    )?;
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    // Helm prints in its install order: ConfigMaps before Services before Deployments.
    assert_eq!(kinds, ["ConfigMap", "Service", "Deployment"]);
    let normalized = normalize_manifests(objects.clone());
    let deployment = normalized
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .context("a Deployment")?;
    assert_eq!(deployment["metadata"]["name"], "rel-api");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/api:9.9.9");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    // `resources: {}` and the Service's `selector: {}` are gone after normalization.
    assert!(container.get("resources").is_none(), "{container}");
    assert!(objects[1]["spec"].get("selector").is_some());
    let config_map = normalized
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .context("a ConfigMap")?;
    assert_eq!(
        config_map["data"],
        json!({"chartVersion": "3.1.4", "message": "hi"})
    );

    // The same objects as JSON, keys in another order, with nulls, empties, floats and a
    // namespace and tracking annotation added on apply: equal once those are removed.
    let mut applied: Vec<Value> = objects
        .iter()
        .rev()
        .map(|o| {
            let mut o = o.clone();
            o["metadata"]["namespace"] = json!("prod");
            o["metadata"]["annotations"] = json!({"argocd.argoproj.io/tracking-id": "x"});
            o["metadata"]["labels"]["empty"] = Value::Null;
            o["status"] = json!({});
            if o["kind"] == "Deployment" {
                o["spec"]["replicas"] = json!(3.0);
            }
            o
        })
        .collect();
    for o in &mut applied {
        remove_fields(
            o,
            &[
                "/metadata/namespace",
                "/metadata/annotations/argocd.argoproj.io~1tracking-id",
            ],
        );
    }
    assert_eq!(normalize_manifests(applied.clone()), normalized);
    // And a real difference still shows.
    let service = applied
        .iter_mut()
        .find(|o| o["kind"] == "Service")
        .context("a Service")?;
    service["spec"]["ports"][0]["port"] = json!(9090);
    assert_ne!(normalize_manifests(applied), normalized);

    // Dependencies land in Chart.yaml as written.
    let with_deps = ChartDir::new("umbrella", "1.0.0")
        .dependency("web", "^1", "https://charts.example/repo")
        .dependency("db", "2.x", "oci://registry.example/charts")
        .dependency("local", "*", "file://../local");
    let chart_yaml: Value = serde_yaml_ng::from_str(&with_deps.chart_yaml()?)?;
    assert_eq!(
        chart_yaml["dependencies"],
        json!([
            {"name": "web", "version": "^1", "repository": "https://charts.example/repo"},
            {"name": "db", "version": "2.x", "repository": "oci://registry.example/charts"},
            {"name": "local", "version": "*", "repository": "file://../local"},
        ])
    );
    // A file:// dependency builds and renders with the real helm.
    let local = ChartDir::new("local", "0.2.0").write(work.path())?;
    let umbrella = ChartDir::new("umbrella", "1.0.0")
        .dependency("local", "0.2.0", "file://../local")
        .write(work.path())?;
    let home = HelmHome::new()?;
    home.run(&["dependency", "build", umbrella.to_str().context("path")?])?;
    let rendered = helm_template(umbrella.to_str().context("path")?, &[])?;
    let names: Vec<&str> = rendered
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "release-name-local",
            "release-name-umbrella",
            "release-name-local",
            "release-name-umbrella"
        ]
    );
    assert!(local.join("Chart.yaml").is_file());
    assert!(parse_documents("---\n# only a comment\n---\n")?.is_empty());
    Ok(())
}
