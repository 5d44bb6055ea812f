//! Helm chart benchmark (issue #17), run with
//! `PATH=~/.cache/argosy/tools/bin:$PATH cargo bench -p argosy-tests --bench helm`
//! (the renderer runs the `helm` on `PATH`, as the controller does).
//!
//! A chart repository (`argosy_tests::helm_repo::HelmRepoServer`: nginx over HTTPS on
//! loopback) holding 10 versions of a chart with 40 templates. Timed, in the same run and
//! against the same server, Argosy (`ChartRepos::fetch` + `Renderer::render_with`, the
//! controller's path) next to the real `helm`:
//!
//! * cold: nothing cached. Argosy reads `index.yaml`, picks the newest `^1.0.0`, downloads
//!   and checks the package and runs `helm template`; helm runs
//!   `helm template --repo URL --version ^1.0.0` (index, download, render) in a fresh home;
//! * new release of a cached chart: the index and the package are cached, another
//!   Application (release name) renders it. Argosy: fetch (no request) + render; helm:
//!   `helm template` of the downloaded package (its best case, no network at all);
//! * unchanged: the same Application again. Argosy answers from its render cache; helm has
//!   no cache and renders again.
//!
//! Each run starts from empty caches; the order alternates between runs. Results replace
//! the `helm` section of BENCHMARKS.md at the workspace root.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use argosy_sync_engine::charts::{ChartRepos, ChartRequest};
use argosy_sync_engine::render::{Inputs, Limits, RenderTarget, Renderer};
use argosy_sync_engine::repo::{GitAuth, RemoteSettings};
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::bench::{load_average, machine, median, ms, update_benchmarks_md};
use argosy_tests::helm_repo::{
    ChartDir, HelmHome, HelmRepoOptions, HelmRepoServer, helm_repo_index, parse_documents,
};

const RUNS: usize = 5;
const TEMPLATES: usize = 40;
const VERSIONS: usize = 10;

/// The chart repository's CA, as `argocd-tls-certs-cm` would give it.
struct TrustRepo(String);

impl argosy_sync_engine::repo::CredentialSource for TrustRepo {
    fn auth_for(&self, _url: &str, _project: &str) -> Result<GitAuth, String> {
        Ok(GitAuth {
            ca_pem: Some(self.0.clone()),
            ..GitAuth::default()
        })
    }
}

fn chart(version: &str) -> ChartDir {
    (0..TEMPLATES).fold(ChartDir::new("web", version), |chart, i| {
        chart.template(
            &format!("extra-{i}.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-extra-{i}\n\
                 data:\n  message: {{{{ .Values.message | quote }}}}\n  index: \"{i}\"\n"
            ),
        )
    })
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("helm benchmark: run with `cargo bench`");
        return;
    }
    let load = load_average();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let repo_root = scratch.path().join("repo");
    std::fs::create_dir_all(&repo_root).expect("repo root");
    for minor in 0..VERSIONS {
        chart(&format!("1.{minor}.0"))
            .package(&repo_root)
            .expect("helm package");
    }
    helm_repo_index(&repo_root, None).expect("helm repo index");
    let server = HelmRepoServer::start(HelmRepoOptions::new(&repo_root)).expect("nginx");
    let url = server.url();
    let newest = format!("1.{}.0", VERSIONS - 1);
    let package = repo_root.join(format!("web-{newest}.tgz"));

    let mut rows: BTreeMap<(&str, &str), Vec<Duration>> = BTreeMap::new();
    let mut requests: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut objects = 0;
    for run in 0..RUNS {
        let cache = tempfile::tempdir().expect("cache dir");
        let charts = ChartRepos::new(cache.path().join("charts")).with_remote(RemoteSettings {
            credentials: std::sync::Arc::new(TrustRepo(server.ca_pem().to_owned())),
            url_policy: UrlPolicy {
                allow_internal_hosts: true,
                ..UrlPolicy::default()
            },
            ..RemoteSettings::default()
        });
        let renderer = Renderer::new(cache.path().join("render"), Limits::default());
        let argosy = |release: &str| {
            let start = Instant::now();
            let fetched = charts
                .for_project("default")
                .fetch(ChartRequest {
                    repo_url: &url,
                    chart: "web",
                    wanted: "^1.0.0",
                    pass_credentials: false,
                })
                .expect("fetch");
            assert_eq!(fetched.version, newest);
            let mut source: argosy_crds::application::ApplicationSource =
                serde_json::from_value(serde_json::json!({
                    "repoURL": url, "chart": "web", "targetRevision": "^1.0.0",
                    "helm": {"valuesObject": {"message": "bench"}},
                }))
                .expect("source");
            source.chart = "web".to_owned();
            let target = RenderTarget {
                app_name: release,
                namespace: "bench",
                kube_version: "",
                api_versions: &[],
            };
            let rendered = renderer
                .render_with(
                    &url,
                    fetched.package.as_ref(),
                    &source,
                    target,
                    Inputs::default(),
                )
                .expect("render");
            (start.elapsed(), rendered.objects.len())
        };
        let home = HelmHome::new().expect("helm home");
        let values = cache.path().join("values.yaml");
        std::fs::write(&values, "message: bench\n").expect("values");
        let helm = |chart_ref: &[&str], release: &str| {
            let start = Instant::now();
            let mut args = vec!["template"];
            args.extend_from_slice(chart_ref);
            let values = values.to_string_lossy();
            args.extend([
                "--name-template",
                release,
                "--namespace",
                "bench",
                "--include-crds",
                "--values",
                &values,
            ]);
            let out = home.run(&args).expect("helm template");
            (
                start.elapsed(),
                parse_documents(&out).expect("documents").len(),
            )
        };
        let ca = server.ca_path();
        let ca = ca.to_string_lossy();
        let helm_remote = || {
            helm(
                &[
                    "web",
                    "--repo",
                    &url,
                    "--version",
                    "^1.0.0",
                    "--ca-file",
                    &ca,
                ],
                "one",
            )
        };
        let local = package.to_string_lossy();

        // One case: both sides timed against the same server, request counts reset before
        // each, the first one alternating between runs.
        let mut measure = |case: &'static str,
                           argosy_side: &dyn Fn() -> (Duration, usize),
                           helm_side: &dyn Fn() -> (Duration, usize)| {
            let counted = |side: &dyn Fn() -> (Duration, usize)| {
                server.reset_requests();
                let (took, rendered) = side();
                let asked =
                    server.requests("index.yaml") + server.requests(&format!("web-{newest}.tgz"));
                (took, rendered, asked)
            };
            let (a, h) = if run.is_multiple_of(2) {
                let a = counted(argosy_side);
                (a, counted(helm_side))
            } else {
                let h = counted(helm_side);
                (counted(argosy_side), h)
            };
            assert_eq!(
                a.1, h.1,
                "{case}: Argosy and helm render different object counts"
            );
            objects = a.1;
            for (tool, (took, _, asked)) in [("argosy", a), ("helm", h)] {
                rows.entry((case, tool)).or_default().push(took);
                requests.insert((case, tool), asked);
            }
        };
        measure("cold", &|| argosy("one"), &helm_remote);
        measure("release", &|| argosy("two"), &|| helm(&[&local], "two"));
        measure("unchanged", &|| argosy("two"), &|| helm(&[&local], "two"));
        println!(
            "run {run}: cold argosy {:.0} ms, helm {:.0} ms; release argosy {:.0} ms, helm {:.0} ms; unchanged argosy {:.1} ms, helm {:.0} ms",
            ms(rows[&("cold", "argosy")][run]),
            ms(rows[&("cold", "helm")][run]),
            ms(rows[&("release", "argosy")][run]),
            ms(rows[&("release", "helm")][run]),
            ms(rows[&("unchanged", "argosy")][run]),
            ms(rows[&("unchanged", "helm")][run]),
        );
    }

    let stat = |key: (&str, &str)| {
        let mut samples = rows[&key].clone();
        samples.sort();
        (
            ms(median(samples.clone())),
            ms(samples[0]),
            ms(samples[samples.len() - 1]),
        )
    };
    let mut table = String::from(
        "| case | Argosy (`ChartRepos::fetch` + `Renderer::render_with`) | `helm` CLI | ratio argosy/helm | requests argosy / helm |\n|---|---|---|---|---|\n",
    );
    for (key, label) in [
        (
            "cold",
            "cold: index, newest `^1.0.0`, download, render (helm: `helm template --repo --version`)",
        ),
        (
            "release",
            "another release of the cached chart (helm: `helm template` of the local package)",
        ),
        (
            "unchanged",
            "the same Application again (Argosy: render cache; helm: renders again)",
        ),
    ] {
        let (a, a_min, a_max) = stat((key, "argosy"));
        let (h, h_min, h_max) = stat((key, "helm"));
        table.push_str(&format!(
            "| {label} | median {a:.1} ms (min {a_min:.1}, max {a_max:.1}) | median {h:.0} ms (min {h_min:.0}, max {h_max:.0}) | {:.3}x | {} / {} |\n",
            a / h,
            requests[&(key, "argosy")],
            requests[&(key, "helm")],
        ));
    }
    let body = format!(
        "{}. Load average at the start: {load}. `cargo bench -p argosy-tests --bench helm`.\n\n\
         A chart repository (nginx, HTTPS, loopback) with {VERSIONS} versions of a chart of {} templates \
         ({objects} objects rendered); {RUNS} runs, empty caches each, order alternating. Argosy runs the same \
         `helm` binary for `helm template`; what differs is everything around it.\n\n{table}\n",
        machine(),
        TEMPLATES + 2,
    );
    println!("\n{table}");
    update_benchmarks_md(
        "helm",
        "Helm charts: Argosy's chart cache and renderer next to the helm CLI",
        &body,
    );
}
