//! The parsers under test, each as a [`Target`]: every parser that takes user input, called
//! the way the CLI and the controllers call it. Besides "no panic", a few properties are
//! asserted where they are cheap: Go durations print back to themselves, an Application
//! survives a YAML round trip, a glob without metacharacters matches itself, a webhook
//! with a wrong signature or token is refused.

use std::path::Path;

use arbitrary::{Result, Unstructured};
use argosy::cli::inputs::{Manifests, clusters_in, manifests_in};
use argosy::webhook::{WebhookConfig, read_push};
use argosy_crds::application::{ApplicationDestination, ApplicationSource};
use argosy_crds::glob::Glob;
use argosy_crds::project::normalize_repo_url;
use argosy_crds::{
    AppProject, Application, Cluster, GoDuration, ProjectPolicy, resolve_destination,
};
use argosy_sync_engine::charts::index::Index;
use argosy_sync_engine::charts::version::{
    Constraint, MAX_CONSTRAINT_BYTES, newest_matching, parse_version,
};
use argosy_sync_engine::jq::{self, PathExpr};
use argosy_sync_engine::render::RenderTarget;
use argosy_sync_engine::render::helm::helm_template_args;
use argosy_sync_engine::render::kustomize::kustomize_wrapper;
use argosy_templates::{Mode, Params, StringTemplate, apply_template_patch};
use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::corpus::{Corpus, as_json};
use super::shape::{Shape, string, value};

/// One parser under test.
pub struct Target {
    /// Its name for `--parser`.
    pub name: &'static str,
    /// What it parses, for `--list`.
    pub about: &'static str,
    /// A structured input, near the real schema.
    pub generate: fn(&mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>>,
    /// The corpus inputs it takes (whole files, or values found under certain keys).
    pub seeds: fn(&Corpus) -> Vec<Vec<u8>>,
    /// Runs one input; must not panic.
    pub run: fn(&[u8]),
}

/// Every target, in the order a full run takes them.
#[must_use]
pub fn all() -> Vec<Target> {
    vec![
        Target {
            name: "appset-yaml",
            about: "ApplicationSet/AppProject/cluster Secret YAML files, as `argosy generate` reads them",
            generate: |u| yaml_of(u, &APPSET_FILE),
            seeds: |c| c.files.clone(),
            run: run_appset_yaml,
        },
        Target {
            name: "application-yaml",
            about: "Application YAML/JSON (serde), with a parse -> serialize -> parse round trip",
            generate: |u| yaml_of(u, &APPLICATION),
            seeds: |c| c.files.clone(),
            run: run_application_yaml,
        },
        Target {
            name: "cluster-secret",
            about: "cluster Secret fields (`config` JSON, `namespaces`, non-UTF-8 data): Cluster::from_secret",
            generate: |u| json_of(u, &CLUSTER_CONFIG),
            seeds: |c| {
                let mut seeds = c.strings(|s| s.trim_start().starts_with('{'));
                seeds.extend(as_json(c.under(&["config"])));
                seeds
            },
            run: run_cluster_secret,
        },
        Target {
            name: "gotemplate",
            about: "goTemplate: Go text/template + Sprig, compile and render",
            generate: |u| template_text(u, GO_WORDS),
            seeds: template_seeds,
            run: |input| run_template(input, &Mode::Go(argosy_templates::GoOptions::default())),
        },
        Target {
            name: "fasttemplate",
            about: "fasttemplate `{{param}}` substitution, compile and render",
            generate: |u| template_text(u, FAST_WORDS),
            seeds: template_seeds,
            run: |input| run_template(input, &Mode::Fast),
        },
        Target {
            name: "template-patch",
            about: "templatePatch: render (goTemplate), parse as JSON/YAML, strategic merge",
            generate: |u| {
                let patch = yaml_of(u, &APPLICATION)?;
                if u.arbitrary()? {
                    return Ok(patch);
                }
                let mut text = String::from_utf8_lossy(&patch).into_owned();
                let at = u.int_in_range(0..=text.len())?;
                if text.is_char_boundary(at) {
                    text.insert_str(at, &string(u, GO_WORDS)?);
                }
                Ok(text.into_bytes())
            },
            seeds: |c| {
                let mut seeds = as_text(c.under(&["templatePatch"]));
                seeds.extend(template_seeds(c));
                seeds
            },
            run: run_template_patch,
        },
        Target {
            name: "duration",
            about: "Go durations (time.ParseDuration, Argo CD's seconds-or-duration), print round trip",
            generate: |u| Ok(string(u, DURATIONS)?.into_bytes()),
            seeds: |c| {
                let mut seeds = c.strings(|s| {
                    s.len() < 48
                        && s.starts_with(|ch: char| ch.is_ascii_digit() || "+-.".contains(ch))
                });
                seeds.extend(DURATIONS.iter().map(|d| d.as_bytes().to_vec()));
                seeds
            },
            run: run_duration,
        },
        Target {
            name: "jq",
            about: "jqPathExpressions: compile (with Argosy's refusals) and evaluate on a Deployment",
            generate: |u| Ok(string(u, JQ)?.into_bytes()),
            seeds: |c| {
                let mut seeds = as_text(c.under(&["jqPathExpressions"]));
                seeds.extend(JQ.iter().map(|d| d.as_bytes().to_vec()));
                seeds
            },
            run: run_jq,
        },
        Target {
            name: "kustomize-options",
            about: "spec.source.kustomize block -> the wrapper kustomization",
            generate: |u| json_of(u, &KUSTOMIZE),
            seeds: |c| as_json(c.under(&["kustomize"])),
            run: run_kustomize,
        },
        Target {
            name: "helm-options",
            about: "spec.source.helm block -> `helm template` arguments",
            generate: |u| json_of(u, &HELM),
            seeds: |c| as_json(c.under(&["helm"])),
            run: run_helm,
        },
        Target {
            name: "webhook-github",
            about: "GitHub push webhook: HMAC signature check and payload parsing",
            generate: |u| json_of(u, &GITHUB_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::GitHub),
        },
        Target {
            name: "webhook-gitlab",
            about: "GitLab push webhook: token check and payload parsing",
            generate: |u| json_of(u, &GITLAB_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::GitLab),
        },
        Target {
            name: "webhook-bitbucket-cloud",
            about: "Bitbucket Cloud push webhook: UUID check and payload parsing",
            generate: |u| json_of(u, &BITBUCKET_CLOUD_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::BitbucketCloud),
        },
        Target {
            name: "webhook-bitbucket-server",
            about: "Bitbucket Server push webhook: HMAC signature check and payload parsing",
            generate: |u| json_of(u, &BITBUCKET_SERVER_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::BitbucketServer),
        },
        Target {
            name: "webhook-gogs",
            about: "Gogs push webhook: HMAC signature check and payload parsing",
            generate: |u| json_of(u, &GOGS_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::Gogs),
        },
        Target {
            name: "webhook-gitea",
            about: "Gitea push webhook (Gogs' payload, Gitea's headers): HMAC signature check and payload parsing",
            generate: |u| json_of(u, &GOGS_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::Gitea),
        },
        Target {
            name: "webhook-azure-devops",
            about: "Azure DevOps push webhook: basic auth check and payload parsing",
            generate: |u| json_of(u, &AZURE_PUSH),
            seeds: webhook_seeds,
            run: |input| run_webhook(input, Provider::AzureDevOps),
        },
        Target {
            name: "glob",
            about: "AppProject globs: gobwas (with and without separator) and filepath.Match; `pattern\\ntext`",
            generate: |u| {
                let pattern = string(u, GLOBS)?;
                let text = string(u, URLS)?;
                Ok(format!("{pattern}\n{text}").into_bytes())
            },
            seeds: |c| {
                let mut seeds =
                    as_text(c.under(&["sourceRepos", "server", "namespace", "kind", "group"]));
                seeds.extend(GLOBS.iter().map(|d| d.as_bytes().to_vec()));
                seeds
            },
            run: run_glob,
        },
        Target {
            name: "project-policy",
            about: "AppProject spec -> ProjectPolicy, checking sources, destinations, resources, namespaces",
            generate: |u| json_of(u, &PROJECT_SPEC),
            seeds: |c| {
                let mut seeds: Vec<Vec<u8>> = PROJECT_SAMPLES
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect();
                seeds.extend(as_json(
                    c.documents
                        .iter()
                        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("AppProject"))
                        .filter_map(|d| d.get("spec").cloned())
                        .collect(),
                ));
                seeds
            },
            run: run_project_policy,
        },
        Target {
            name: "repo-url",
            about: "repository URLs: normalize_repo_url (projects, webhooks), redact_url",
            generate: |u| Ok(string(u, URLS)?.into_bytes()),
            seeds: |c| c.strings(|s| s.contains("://") || s.contains('@')),
            run: run_repo_url,
        },
        Target {
            name: "chart-version",
            about: "Helm chart versions and constraints (targetRevision): parse, match, choose; `constraint\\nversion`",
            generate: |u| {
                let constraint = string(u, CHART_CONSTRAINTS)?;
                let version = string(u, CHART_VERSIONS)?;
                Ok(format!("{constraint}\n{version}").into_bytes())
            },
            seeds: |c| {
                let mut seeds = as_text(c.under(&["targetRevision"]));
                seeds.extend(CHART_CONSTRAINTS.iter().map(|d| d.as_bytes().to_vec()));
                seeds
            },
            run: run_chart_version,
        },
        Target {
            name: "helm-index",
            about: "Helm repository index.yaml: parse, resolve every chart, download URLs",
            generate: |u| yaml_of(u, &HELM_INDEX),
            seeds: |_| vec![HELM_INDEX_SAMPLE.as_bytes().to_vec()],
            run: run_helm_index,
        },
        Target {
            name: "source-destination",
            about: "ApplicationSource and destination parsing, destination::resolve against clusters",
            generate: |u| json_of(u, &SOURCE_AND_DESTINATION),
            seeds: |c| {
                let mut seeds = as_json(c.under(&["source", "destination"]));
                seeds.extend(as_json(c.under(&["sources"])));
                seeds
            },
            run: run_source_destination,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Generation helpers.

fn json_of(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Vec<u8>> {
    Ok(value(u, shape)?.to_string().into_bytes())
}

/// YAML text of a value of `shape` (JSON text now and then: it is YAML too).
fn yaml_of(u: &mut Unstructured<'_>, shape: &Shape) -> Result<Vec<u8>> {
    let v = value(u, shape)?;
    if u.ratio(1, 4)? {
        return Ok(v.to_string().into_bytes());
    }
    Ok(serde_yaml_ng::to_string(&v)
        .unwrap_or_default()
        .into_bytes())
}

/// Text with template actions mixed in.
fn template_text(u: &mut Unstructured<'_>, words: &[&str]) -> Result<Vec<u8>> {
    let mut text = String::new();
    for _ in 0..u.int_in_range(1..=6)? {
        if u.ratio(1, 3)? {
            text.push_str(&string(u, &["name-", "/", "-", " ", "\n", "https://x/"])?);
        } else {
            text.push_str(&string(u, words)?);
        }
    }
    Ok(text.into_bytes())
}

fn as_text(values: Vec<Value>) -> Vec<Vec<u8>> {
    values
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.into_bytes()),
            _ => None,
        })
        .collect()
}

fn template_seeds(c: &Corpus) -> Vec<Vec<u8>> {
    let mut seeds = c.strings(|s| s.contains("{{"));
    seeds.extend(
        c.files
            .iter()
            .filter(|f| f.windows(2).any(|w| w == b"{{"))
            .cloned(),
    );
    seeds.extend(GO_WORDS.iter().map(|w| w.as_bytes().to_vec()));
    seeds
}

fn webhook_seeds(c: &Corpus) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = c
        .files
        .iter()
        .filter(|f| f.first() == Some(&b'{'))
        .cloned()
        .collect();
    seeds.extend(
        [
            GITHUB_SAMPLE,
            GITLAB_SAMPLE,
            BITBUCKET_CLOUD_SAMPLE,
            BITBUCKET_SERVER_SAMPLE,
            GOGS_SAMPLE,
            AZURE_SAMPLE,
        ]
        .map(|sample| sample.as_bytes().to_vec()),
    );
    seeds
}

fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

// ---------------------------------------------------------------------------------------
// The runs.

fn run_appset_yaml(input: &[u8]) {
    let text = text(input);
    let path = Path::new("fuzz.yaml");
    let mut manifests = Manifests::default();
    let _ = manifests_in(path, &text, &mut manifests);
    let _ = clusters_in(path, &text);
    for (_, appset) in &manifests.application_sets {
        // What the controller does next with a parsed ApplicationSet's settings.
        let _ = Mode::from_spec(appset.spec.go_template, &appset.spec.go_template_options);
        let _ = serde_json::to_value(appset);
    }
}

fn run_application_yaml(input: &[u8]) {
    let text = text(input);
    let _ = serde_json::from_slice::<Application>(input);
    let Ok(app) = serde_yaml_ng::from_str::<Application>(&text) else {
        return;
    };
    let _ = app.operation_typed();
    if let Some(status) = &app.status {
        let _ = status.operation_state();
        let _ = status.history();
    }
    // Round trip: what Argosy writes back reads as the same object (unknown fields kept).
    let Ok(first) = serde_json::to_value(&app) else {
        return;
    };
    let yaml = serde_yaml_ng::to_string(&app).expect("an Application serializes to YAML");
    let again: Application =
        serde_yaml_ng::from_str(&yaml).expect("Argosy's own YAML of an Application parses");
    let second = serde_json::to_value(&again).expect("serializes");
    assert_eq!(first, second, "YAML round trip changed the Application");
}

fn run_cluster_secret(input: &[u8]) {
    let text = text(input).into_owned();
    let string_data = json!({
        "name": text, "server": "https://10.0.0.1:6443", "config": text,
        "namespaces": text, "project": text, "clusterResources": text,
    });
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "c", "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        "stringData": string_data,
    }))
    .expect("a Secret");
    let _ = Cluster::from_secret(&secret);
    // The same bytes in `data`, where they need not be UTF-8.
    let mut raw = secret.clone();
    raw.string_data = None;
    raw.data = Some(
        ["server", "config", "name", "namespaces"]
            .into_iter()
            .map(|k| (k.to_owned(), ByteString(input.to_vec())))
            .collect(),
    );
    let _ = Cluster::from_secret(&raw);
}

/// The parameter set templates render against: a cluster generator's, plus nesting.
fn params() -> Params {
    let v = json!({
        "name": "prod-eu", "server": "https://10.0.0.1", "nameNormalized": "prod-eu",
        "metadata": {"labels": {"customer": "acme", "tier": "gold"}, "annotations": {}},
        "path": {"path": "apps/web", "basename": "web", "segments": ["apps", "web"]},
        "values": {"replicas": "3"}, "n": 3, "f": 1.5, "list": [1, "a", null, true],
        "big": 9_223_372_036_854_775_807_i64, "empty": "",
    });
    match v {
        Value::Object(map) => map,
        _ => Params::default(),
    }
}

fn run_template(input: &[u8], mode: &Mode) {
    let text = text(input);
    if let Ok(template) = StringTemplate::compile(&text, mode) {
        let _ = template.render(&params());
    }
}

fn run_template_patch(input: &[u8]) {
    let app = json!({
        "metadata": {"name": "web", "finalizers": ["a"]},
        "spec": {"project": "default", "source": {"repoURL": "https://x", "path": "p"},
                 "destination": {"server": "https://kubernetes.default.svc"}}
    });
    let mode = Mode::Go(argosy_templates::GoOptions::default());
    let _ = apply_template_patch(&app, &text(input), &params(), &mode);
}

fn run_duration(input: &[u8]) {
    let text = text(input);
    for parsed in [
        GoDuration::parse(&text),
        GoDuration::parse_seconds_or_duration(&text),
    ] {
        let Ok(d) = parsed else { continue };
        // Go's String() of a duration parses back to the same duration.
        let printed = d.to_string();
        assert_eq!(
            GoDuration::parse(&printed),
            Ok(d),
            "{printed} does not parse back"
        );
        let _ = d.to_std();
        let _ = d.mul_f64(2.0).saturating_mul(i64::MAX).saturating_add(d);
        let _ = serde_json::from_value::<GoDuration>(Value::String(printed));
    }
}

/// The document jq expressions are evaluated on: a Deployment with a sidecar.
fn jq_document() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a/b": "c~d"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}]},
            {"name": "istio-proxy", "image": "istio"}
        ]}}}
    })
}

fn run_jq(input: &[u8]) {
    let Ok(expr) = PathExpr::compile(&text(input)) else {
        return;
    };
    let mut doc = jq_document();
    for path in expr.paths(&doc.clone()) {
        let _ = jq::pointer(&path);
        let _ = jq::get(&doc, &path);
        let _ = jq::set(&mut doc, &path, Value::Null);
    }
}

/// Parses an option block as the Application carries it (JSON; YAML when it is not JSON).
fn block(input: &[u8]) -> Option<Value> {
    serde_json::from_slice(input)
        .ok()
        .or_else(|| serde_yaml_ng::from_str(&text(input)).ok())
}

fn run_kustomize(input: &[u8]) {
    let Some(options) = block(input) else { return };
    for app in ["apps/web", ""] {
        let _ = kustomize_wrapper(Some(&options), app, |path| Ok(format!("patch {path}")));
    }
}

fn run_helm(input: &[u8]) {
    let Some(options) = block(input) else { return };
    let target = RenderTarget {
        app_name: "web",
        namespace: "prod",
        kube_version: "1.30.0",
        api_versions: &[],
    };
    let _ = helm_template_args(Some(&options), "charts/web", target);
    let _ = helm_template_args(Some(&options), "", target);
}

#[derive(Clone, Copy)]
enum Provider {
    GitHub,
    GitLab,
    BitbucketCloud,
    BitbucketServer,
    Gogs,
    Gitea,
    AzureDevOps,
}

const WEBHOOK_SECRET: &str = "fuzz-secret";
const AZURE_USER: &str = "fuzz";

fn run_webhook(input: &[u8], provider: Provider) {
    use base64::Engine as _;
    use http::{HeaderMap, HeaderValue};
    let secret = || Some(WEBHOOK_SECRET.to_owned());
    let config = WebhookConfig {
        github_secret: secret(),
        gitlab_token: secret(),
        bitbucket_uuid: secret(),
        bitbucket_server_secret: secret(),
        gogs_secret: secret(),
        gitea_secret: secret(),
        azure_devops_username: Some(AZURE_USER.to_owned()),
        azure_devops_password: secret(),
        ..WebhookConfig::default()
    };
    let headers = |good: bool| {
        let key = if good { WEBHOOK_SECRET } else { "fuzz-secreT" };
        let hmac = || {
            let mut mac =
                Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
            mac.update(input);
            hex_lower(&mac.finalize().into_bytes())
        };
        let pairs: Vec<(&str, String)> = match provider {
            Provider::GitHub => vec![
                ("x-github-event", "push".into()),
                ("x-hub-signature-256", format!("sha256={}", hmac())),
            ],
            Provider::GitLab => vec![
                ("x-gitlab-event", "Push Hook".into()),
                ("x-gitlab-token", key.into()),
            ],
            Provider::BitbucketCloud => vec![
                ("x-event-key", "repo:push".into()),
                ("x-hook-uuid", key.into()),
            ],
            Provider::BitbucketServer => vec![
                ("x-event-key", "repo:refs_changed".into()),
                ("x-hub-signature", format!("sha256={}", hmac())),
            ],
            Provider::Gogs => vec![
                ("x-gogs-event", "push".into()),
                ("x-gogs-signature", hmac()),
            ],
            Provider::Gitea => vec![
                ("x-gitea-event", "push".into()),
                ("x-gogs-event", "push".into()),
                ("x-gitea-signature", hmac()),
            ],
            Provider::AzureDevOps => {
                let credentials =
                    base64::engine::general_purpose::STANDARD.encode(format!("{AZURE_USER}:{key}"));
                vec![
                    ("x-vss-activityid", "fuzz".into()),
                    ("authorization", format!("Basic {credentials}")),
                ]
            }
        };
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(
                name,
                HeaderValue::from_str(&value).expect("ASCII is a header value"),
            );
        }
        h
    };
    let _ = read_push(&config, &headers(true), input);
    assert!(
        matches!(
            read_push(&config, &headers(false), input),
            Err(argosy::webhook::WebhookError::Authenticate { .. })
        ),
        "a webhook with a wrong signature or token was not refused"
    );
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn run_glob(input: &[u8]) {
    let text = text(input);
    let (pattern, subject) = text.split_once('\n').unwrap_or((&text, ""));
    let globs = [
        Glob::gobwas(pattern, Some('/')),
        Glob::gobwas(pattern, None),
        Glob::filepath(pattern),
    ];
    let literal = !pattern.contains(['*', '?', '[', '{', '\\']);
    for glob in &globs {
        let _ = glob.is_match(subject);
        // A pattern without metacharacters means itself.
        assert!(
            !literal || glob.is_match(pattern),
            "{pattern:?} does not match itself"
        );
    }
}

fn clusters() -> Vec<Cluster> {
    let cluster = |name: &str, server: &str, project: &str| Cluster {
        secret: Some(format!("argocd/{name}")),
        name: name.to_owned(),
        server: server.to_owned(),
        project: project.to_owned(),
        ..Cluster::default()
    };
    vec![
        cluster("prod", "https://10.0.0.1:6443", "p"),
        cluster("dev", "https://10.0.0.2/", ""),
        cluster("dup", "https://10.0.0.2", "p"),
        Cluster::in_cluster(),
    ]
}

fn run_project_policy(input: &[u8]) {
    let Some(spec) = block(input) else { return };
    let Ok(project) = serde_json::from_value::<AppProject>(
        json!({"metadata": {"name": "p", "namespace": "argocd"}, "spec": spec}),
    ) else {
        return;
    };
    let clusters = clusters();
    let policy = ProjectPolicy::new(&project, &clusters);
    // Check against the project's own strings too: they are the likeliest to match.
    let mut words: Vec<String> = URLS.iter().map(|s| (*s).to_owned()).collect();
    words.extend(project.spec.source_repos.iter().cloned());
    words.extend(
        project
            .spec
            .destinations
            .iter()
            .map(|d| d.namespace.clone()),
    );
    // Each check walks every rule: checking every word of a project with thousands of
    // rules would be quadratic in the harness, not in the parser (a first run "hung" so).
    words.truncate(32);
    for word in &words {
        let _ = policy.check_source(word);
        let _ = policy.check_app_namespace(word, "argocd");
        for cluster in &clusters {
            let _ = policy.check_destination(cluster, word, false);
            let _ = policy.check_resource("apps", "Deployment", word, Some(word), cluster);
            let _ = policy.check_resource("", word, word, None, cluster);
        }
    }
}

fn run_repo_url(input: &[u8]) {
    let text = text(input);
    let _ = normalize_repo_url(&text);
    let _ = argosy_sync_engine::repo::normalize_repo_url(&text);
    let redacted = argosy_sync_engine::repo::redact_url(&text);
    let _ = argosy_sync_engine::repo::redact_url(&redacted);
}

fn run_chart_version(input: &[u8]) {
    let text = text(input);
    let (wanted, version) = text.split_once('\n').unwrap_or((&text, ""));
    let constraint = Constraint::parse(wanted);
    if let Ok(v) = parse_version(version) {
        if let Ok(c) = &constraint {
            let _ = c.matches(&v);
        }
        // A version matches itself read as a constraint (one not too long to read).
        let exact = Constraint::parse(&format!("={version}"));
        assert!(
            version.len() >= MAX_CONSTRAINT_BYTES || exact.as_ref().is_ok_and(|c| c.matches(&v)),
            "{version:?} does not match ={version}: {exact:?}"
        );
    }
    let available = ["1.0.0", "v1.2", "2.0.0-rc.1", "latest", version];
    if let Ok(chosen) = newest_matching(wanted, available) {
        assert!(available.contains(&chosen), "{chosen:?}");
    }
}

fn run_helm_index(input: &[u8]) {
    let Ok(index) = Index::parse(input, 1 << 20) else {
        return;
    };
    for (chart, versions) in &index.entries {
        for wanted in ["*", ">=0.0.0-0", "1.0.0", "latest"] {
            if let Ok(v) = index.resolve(chart, wanted) {
                let _ = v.download_url("https://charts.example/repo?token=t");
            }
        }
        // Each resolve reads the whole list: a few, or the run is quadratic in the entries.
        for v in versions.iter().take(8) {
            let _ = index.resolve(chart, &v.version);
            let _ = v.download_url("https://u:p@charts.example/");
        }
    }
}

fn run_source_destination(input: &[u8]) {
    let Some(v) = block(input) else { return };
    let _ = serde_json::from_value::<ApplicationSource>(v.clone());
    let _ = serde_json::from_value::<Vec<ApplicationSource>>(v.clone());
    let Ok(destination) = serde_json::from_value::<ApplicationDestination>(v) else {
        return;
    };
    let _ = resolve_destination(&destination, &clusters());
    let _ = argosy_crds::server_key(&destination.server);
}

// ---------------------------------------------------------------------------------------
// Shapes and vocabularies.

const URLS: &[&str] = &[
    "https://github.com/argoproj/argocd-example-apps.git",
    "https://GitHub.com/Org/Repo",
    "git@github.com:org/repo.git",
    "ssh://git@gitlab.example.com:2222/group/sub/app.git",
    "https://user:p4ss@git.example/team/app?x=1#frag",
    "https://git.example/team/*",
    "https://git.example/team/**",
    "!https://git.example/secret/*",
    "*",
    "file:///tmp/repo",
    "https://kubernetes.default.svc",
    "prod-*",
    "{dev,prod}-*",
];
const CHART_CONSTRAINTS: &[&str] = &[
    "1.2.3",
    "v1.2",
    "*",
    "*-0",
    "1.x",
    "^1.2.3",
    "~1.2",
    "~>1",
    ">=1.0.0 <2.0.0",
    ">=1.0.0, <2.0.0-0",
    "!=1.2.3 || >3",
    "1.2 - 1.4.5",
    "=<1.2",
    "=>1",
    "1.1-3",
    "latest",
    "",
    "1.0 ||",
    "x.|.5",
    "99999999999999999999",
];

const CHART_VERSIONS: &[&str] = &[
    "1.2.3",
    "v1.2",
    "1",
    "01.02.03",
    "1.2.3-rc.1",
    "1.2.3+build.5",
    "1.2.3-01",
    "2024.03-LTS-RC19",
    "1.0.0-99999999999999999999",
    "1.2.3.4",
];

const HELM_INDEX: Shape = Shape::Obj(&[
    ("apiVersion", Shape::Str(&["v1", ""])),
    ("generated", Shape::Str(&["2024-01-01T00:00:00Z"])),
    (
        "entries",
        Shape::Map(&Shape::List(&Shape::Obj(&[
            ("name", Shape::Str(&["web", "lib"])),
            ("version", Shape::Str(CHART_VERSIONS)),
            (
                "urls",
                Shape::List(&Shape::Str(&[
                    "web-1.0.0.tgz",
                    "/abs/web.tgz",
                    "../up.tgz",
                    "https://cdn.example/web.tgz",
                    "oci://r.example/web:1.0.0",
                    "//other.example/x.tgz",
                    ":bad",
                ])),
            ),
            ("digest", Shape::Str(&["abc"])),
            ("appVersion", Shape::Str(&["1.0"])),
            ("deprecated", Shape::Bool),
        ]))),
    ),
]);

const HELM_INDEX_SAMPLE: &str = "apiVersion: v1\nentries:\n  web:\n  - apiVersion: v2\n    name: web\n    version: 1.2.0\n    urls:\n    - web-1.2.0.tgz\n  - name: web\n    version: 1.0.0-rc.1\n    urls:\n    - https://cdn.example/web-1.0.0-rc.1.tgz\ngenerated: \"2024-01-01T00:00:00Z\"\n";

const GLOBS: &[&str] = &[
    "*",
    "**",
    "prod-*",
    "{dev,prod}-*",
    "[a-z]*",
    "[!a]x",
    "[^C]*",
    "a\\*b",
    "*.k8s.io",
    "Cluster?ole",
    "{a,{b,c}}x",
    "[z-a]",
    "[]a]",
    "[\\]]",
    "https://git.example/**",
];
const GO_WORDS: &[&str] = &[
    "{{ .name }}",
    "{{.metadata.labels.customer}}",
    "{{ index .metadata.labels \"tier\" }}",
    "{{ .path.basename | upper }}",
    "{{ range $i, $s := .path.segments }}{{ $i }}{{ $s }}{{ end }}",
    "{{ if eq .name \"x\" }}a{{ else }}b{{ end }}",
    "{{ toYaml .metadata | nindent 2 }}",
    "{{ printf \"%v-%d\" .name .n }}",
    "{{ default \"d\" .missing }}",
    "{{ .values.replicas | int }}",
    "{{ normalize .name }}",
    "{{ slugify .name }}",
    "{{ fromYaml \"a: 1\" }}",
    "{{ regexReplaceAll \"(a+)+$\" .name \"x\" }}",
    "{{ repeat 100000 \"x\" }}",
    "{{ until 1000000 }}",
    "{{ seq 1 100000 }}",
    "{{ semverCompare \">=1.2\" \"1.3.0\" }}",
    "{{ define \"t\" }}{{ template \"t\" . }}{{ end }}{{ template \"t\" . }}",
    "{{ with .metadata }}{{ .labels }}{{ end }}",
    "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
    "{{- /* comment */ -}}",
    "{{ len .list }}",
    "{{ .big | add 1 }}",
    "{{ div 1 0 }}",
    "{{ mod .n 0 }}",
    "{{ b64dec \"!!\" }}",
    "{{ sha256sum .name }}",
    "{{ toJson . }}",
    "{{ dict \"a\" 1 | merge (dict \"b\" 2) }}",
    "{{ printf \"%*d\" 1000000000 1 }}",
    "{{ trunc -1 .name }}",
    "{{ substr 5 1 .name }}",
    "{{ .f | floor }}",
    "{{ index .list 99 }}",
    "{{ break }}",
    "{{ range 5 }}{{ . }}{{ continue }}{{ end }}",
    "{{ block \"b\" . }}x{{ end }}",
];
const FAST_WORDS: &[&str] = &[
    "{{name}}",
    "{{ name }}",
    "{{metadata.labels.customer}}",
    "{{path.basename}}",
    "{{",
    "}}",
    "{{}}",
    "{{{{name}}}}",
    "{{ values.replicas }}",
    "{{n}}",
    "{{list}}",
];
const DURATIONS: &[&str] = &[
    "0",
    "-0",
    "+0",
    "5",
    "1h2m3s",
    "1.5h",
    "300ms",
    "1µs",
    "1μs",
    "10ns",
    "2562047h47m16.854775807s",
    "-2562047h47m16.854775808s",
    "2562047h47m16.854775808s",
    "9223372036854775807ns",
    "9223372036854775808ns",
    ".5s",
    "1.s",
    "1e3s",
    "1d",
    "",
    "-",
    "+.s",
    "3m-1s",
    "0.0000000000000000000001h",
    "18446744073709551616s",
    "-9223372036854775808",
];
const JQ: &[&str] = &[
    ".spec.replicas",
    ".spec.template.spec.containers[] | select(.name == \"istio-proxy\")",
    ".metadata.annotations[\"a/b\"]",
    "..",
    ".spec.template.spec.containers[].env[]?",
    ".metadata.labels | to_entries[] | select(.key | startswith(\"app\"))",
    ".spec.template.spec.containers[1:]",
    ".a[-1]",
    ".a[1e300]",
    "getpath([\"spec\"])",
    "paths",
    ".[]?",
    "first(.spec)",
    "def f: f; f",
    "recurse",
    "range(1e9)",
    "limit(5; ..)",
    "[.[] | ..] | .[0]",
    "env",
    "$__loc__",
    "input",
    ".x as $x | $x",
    "reduce .[] as $x (0; .)",
    "if . then .a else .b end",
    "try error(\"x\") catch .",
    "label $out | break $out",
];

const STRINGS: Shape = Shape::Str(&[
    "web",
    "default",
    "argocd",
    "HEAD",
    "main",
    "{{ .name }}",
    "{{name}}",
]);
const STRING_LIST: Shape = Shape::List(&STRINGS);
const STRING_MAP: Shape = Shape::Map(&STRINGS);
const URL: Shape = Shape::Str(URLS);
const DURATION: Shape = Shape::Str(DURATIONS);
const JQ_LIST: Shape = Shape::List(&Shape::Str(JQ));

const KUSTOMIZE: Shape = Shape::Obj(&[
    ("namePrefix", STRINGS),
    ("nameSuffix", STRINGS),
    (
        "images",
        Shape::List(&Shape::Str(&[
            "nginx:1.2",
            "nginx=registry:5000/nginx:1.3@sha256:abc",
            "a@b",
            ":",
            "=",
            "x=:@",
            "registry:5000/ns/img",
        ])),
    ),
    ("commonLabels", STRING_MAP),
    ("commonAnnotations", STRING_MAP),
    ("forceCommonLabels", Shape::Bool),
    ("forceCommonAnnotations", Shape::Bool),
    ("labelWithoutSelector", Shape::Bool),
    ("labelIncludeTemplates", Shape::Bool),
    ("namespace", STRINGS),
    (
        "replicas",
        Shape::List(&Shape::Obj(&[
            ("name", STRINGS),
            (
                "count",
                Shape::OneOf(&[Shape::Int, Shape::Str(&["3", " 4 ", "x", "1e3"])]),
            ),
        ])),
    ),
    (
        "patches",
        Shape::List(&Shape::Obj(&[
            (
                "path",
                Shape::Str(&["patch.yaml", "../../etc/passwd", "/abs", ""]),
            ),
            ("patch", STRINGS),
            (
                "target",
                Shape::Obj(&[("kind", STRINGS), ("name", STRINGS)]),
            ),
        ])),
    ),
    (
        "components",
        Shape::List(&Shape::Str(&[
            "../c",
            "../../..",
            "https://x/c",
            "/abs",
            "./a/../b",
            "",
        ])),
    ),
]);

const HELM: Shape = Shape::Obj(&[
    (
        "valueFiles",
        Shape::List(&Shape::Str(&[
            "values.yaml",
            "../x.yaml",
            "$values/x",
            "https://x/v",
            "/etc/v",
        ])),
    ),
    ("values", Shape::Str(&["a: 1", "{{ .name }}", "- x"])),
    ("valuesObject", Shape::Any),
    (
        "parameters",
        Shape::List(&Shape::Obj(&[
            ("name", STRINGS),
            ("value", STRINGS),
            ("forceString", Shape::Bool),
        ])),
    ),
    ("releaseName", STRINGS),
    ("namespace", STRINGS),
    ("ignoreMissingValueFiles", Shape::Bool),
    ("skipCrds", Shape::Bool),
    ("skipTests", Shape::Bool),
    ("kubeVersion", Shape::Str(&["1.30", "v1.33.0", "x"])),
    ("apiVersions", STRING_LIST),
]);

const DESTINATION: Shape = Shape::Obj(&[
    (
        "server",
        Shape::Str(&[
            "https://kubernetes.default.svc",
            "https://10.0.0.2/",
            "https://10.0.0.1:6443",
            "*",
            "!https://x",
        ]),
    ),
    (
        "name",
        Shape::Str(&["in-cluster", "prod", "dev", "*", "!dev"]),
    ),
    (
        "namespace",
        Shape::Str(&["prod", "*", "team-*", "!kube-system", ""]),
    ),
]);

const SOURCE: Shape = Shape::Obj(&[
    ("repoURL", URL),
    ("path", Shape::Str(&["apps/web", ".", "..", "/abs", ""])),
    ("targetRevision", STRINGS),
    ("chart", STRINGS),
    ("ref", STRINGS),
    ("helm", HELM),
    ("kustomize", KUSTOMIZE),
    (
        "directory",
        Shape::Obj(&[
            ("recurse", Shape::Bool),
            ("include", STRINGS),
            ("exclude", STRINGS),
        ]),
    ),
]);

const SOURCE_AND_DESTINATION: Shape = Shape::OneOf(&[SOURCE, DESTINATION, Shape::List(&SOURCE)]);

const METADATA: Shape = Shape::Obj(&[
    ("name", STRINGS),
    ("namespace", STRINGS),
    ("labels", STRING_MAP),
    ("annotations", STRING_MAP),
    ("finalizers", STRING_LIST),
]);

const APP_SPEC: Shape = Shape::Obj(&[
    ("project", STRINGS),
    ("source", SOURCE),
    ("sources", Shape::List(&SOURCE)),
    ("destination", DESTINATION),
    (
        "syncPolicy",
        Shape::Obj(&[
            (
                "automated",
                Shape::Obj(&[
                    ("prune", Shape::Bool),
                    ("selfHeal", Shape::Bool),
                    ("allowEmpty", Shape::Bool),
                ]),
            ),
            (
                "syncOptions",
                Shape::List(&Shape::Str(&["CreateNamespace=true", "Prune=false", "x"])),
            ),
            (
                "retry",
                Shape::Obj(&[
                    ("limit", Shape::Int),
                    (
                        "backoff",
                        Shape::Obj(&[
                            ("duration", DURATION),
                            ("factor", Shape::Int),
                            ("maxDuration", DURATION),
                        ]),
                    ),
                ]),
            ),
        ]),
    ),
    (
        "ignoreDifferences",
        Shape::List(&Shape::Obj(&[
            ("group", STRINGS),
            ("kind", STRINGS),
            (
                "jsonPointers",
                Shape::List(&Shape::Str(&["/spec/replicas", "~", "/a~1b"])),
            ),
            ("jqPathExpressions", JQ_LIST),
            ("managedFieldsManagers", STRING_LIST),
        ])),
    ),
    ("revisionHistoryLimit", Shape::Int),
]);

const APPLICATION: Shape = Shape::Obj(&[
    ("apiVersion", Shape::Str(&["argoproj.io/v1alpha1"])),
    ("kind", Shape::Str(&["Application"])),
    ("metadata", METADATA),
    ("spec", APP_SPEC),
    (
        "operation",
        Shape::Obj(&[
            (
                "sync",
                Shape::Obj(&[
                    ("revision", STRINGS),
                    ("prune", Shape::Bool),
                    ("syncStrategy", Shape::Any),
                ]),
            ),
            (
                "retry",
                Shape::Obj(&[
                    ("limit", Shape::Int),
                    (
                        "backoff",
                        Shape::Obj(&[
                            ("duration", DURATION),
                            ("factor", Shape::Int),
                            ("maxDuration", DURATION),
                        ]),
                    ),
                ]),
            ),
            (
                "initiatedBy",
                Shape::Obj(&[("username", STRINGS), ("automated", Shape::Bool)]),
            ),
        ]),
    ),
    (
        "status",
        Shape::Obj(&[
            (
                "sync",
                Shape::Obj(&[
                    ("status", Shape::Str(&["Synced", "OutOfSync", "Unknown"])),
                    ("revision", STRINGS),
                ]),
            ),
            (
                "health",
                Shape::Obj(&[(
                    "status",
                    Shape::Str(&["Healthy", "Degraded", "Progressing"]),
                )]),
            ),
            (
                "operationState",
                Shape::Obj(&[
                    (
                        "phase",
                        Shape::Str(&["Running", "Succeeded", "Failed", "Error"]),
                    ),
                    ("message", STRINGS),
                    ("retryCount", Shape::Int),
                    ("startedAt", STRINGS),
                ]),
            ),
            (
                "history",
                Shape::List(&Shape::Obj(&[
                    ("id", Shape::Int),
                    ("revision", STRINGS),
                    ("deployedAt", STRINGS),
                ])),
            ),
            ("resources", Shape::List(&Shape::Any)),
        ]),
    ),
]);

const SELECTOR: Shape = Shape::Obj(&[
    ("matchLabels", STRING_MAP),
    (
        "matchExpressions",
        Shape::List(&Shape::Obj(&[
            ("key", STRINGS),
            (
                "operator",
                Shape::Str(&["In", "NotIn", "Exists", "DoesNotExist", "Gt"]),
            ),
            ("values", STRING_LIST),
        ])),
    ),
]);

const LEAF_GENERATOR: Shape = Shape::Obj(&[
    (
        "list",
        Shape::Obj(&[
            ("elements", Shape::List(&STRING_MAP)),
            ("elementsYaml", Shape::Str(&["- a: 1", "{{ .x }}"])),
        ]),
    ),
    (
        "clusters",
        Shape::Obj(&[("selector", SELECTOR), ("values", STRING_MAP)]),
    ),
    (
        "git",
        Shape::Obj(&[
            ("repoURL", URL),
            ("revision", STRINGS),
            (
                "directories",
                Shape::List(&Shape::Obj(&[
                    ("path", Shape::Str(&["apps/*", "**", "[", "apps/{a,b}"])),
                    ("exclude", Shape::Bool),
                ])),
            ),
            (
                "files",
                Shape::List(&Shape::Obj(&[(
                    "path",
                    Shape::Str(&["config/*.json", "**/*.yaml"]),
                )])),
            ),
            ("requeueAfterSeconds", Shape::Int),
        ]),
    ),
    ("selector", SELECTOR),
]);

const GENERATOR: Shape = Shape::OneOf(&[
    LEAF_GENERATOR,
    Shape::Obj(&[(
        "matrix",
        Shape::Obj(&[("generators", Shape::List(&LEAF_GENERATOR))]),
    )]),
    Shape::Obj(&[(
        "merge",
        Shape::Obj(&[
            ("mergeKeys", STRING_LIST),
            ("generators", Shape::List(&LEAF_GENERATOR)),
        ]),
    )]),
]);

const APPSET: Shape = Shape::Obj(&[
    ("apiVersion", Shape::Str(&["argoproj.io/v1alpha1"])),
    ("kind", Shape::Str(&["ApplicationSet"])),
    ("metadata", METADATA),
    (
        "spec",
        Shape::Obj(&[
            ("goTemplate", Shape::Bool),
            (
                "goTemplateOptions",
                Shape::List(&Shape::Str(&[
                    "missingkey=error",
                    "missingkey=zero",
                    "missingkey=invalid",
                    "x",
                ])),
            ),
            ("generators", Shape::List(&GENERATOR)),
            (
                "template",
                Shape::Obj(&[("metadata", METADATA), ("spec", APP_SPEC)]),
            ),
            ("templatePatch", Shape::Str(GO_WORDS)),
            (
                "syncPolicy",
                Shape::Obj(&[
                    (
                        "applicationsSync",
                        Shape::Str(&["create-only", "create-update", "create-delete", "sync", "x"]),
                    ),
                    ("preserveResourcesOnDeletion", Shape::Bool),
                ]),
            ),
            (
                "preservedFields",
                Shape::Obj(&[("annotations", STRING_LIST), ("labels", STRING_LIST)]),
            ),
            (
                "ignoreApplicationDifferences",
                Shape::List(&Shape::Obj(&[
                    ("name", STRINGS),
                    ("jsonPointers", STRING_LIST),
                    ("jqPathExpressions", JQ_LIST),
                ])),
            ),
        ]),
    ),
]);

const PROJECT_SPEC: Shape = Shape::Obj(&[
    ("sourceRepos", Shape::List(&URL)),
    ("destinations", Shape::List(&DESTINATION)),
    (
        "sourceNamespaces",
        Shape::List(&Shape::Str(&["team-*", "/^team-[a-z]+$/", "/(/", "*"])),
    ),
    (
        "clusterResourceWhitelist",
        Shape::List(&Shape::Obj(&[
            ("group", Shape::Str(GLOBS)),
            ("kind", Shape::Str(GLOBS)),
            ("name", Shape::Str(GLOBS)),
        ])),
    ),
    (
        "clusterResourceBlacklist",
        Shape::List(&Shape::Obj(&[
            ("group", Shape::Str(GLOBS)),
            ("kind", Shape::Str(GLOBS)),
            ("name", Shape::Str(GLOBS)),
        ])),
    ),
    (
        "namespaceResourceWhitelist",
        Shape::List(&Shape::Obj(&[
            ("group", Shape::Str(GLOBS)),
            ("kind", Shape::Str(GLOBS)),
        ])),
    ),
    (
        "namespaceResourceBlacklist",
        Shape::List(&Shape::Obj(&[
            ("group", Shape::Str(GLOBS)),
            ("kind", Shape::Str(GLOBS)),
        ])),
    ),
    ("permitOnlyProjectScopedClusters", Shape::Bool),
]);

const APPPROJECT: Shape = Shape::Obj(&[
    ("apiVersion", Shape::Str(&["argoproj.io/v1alpha1"])),
    ("kind", Shape::Str(&["AppProject"])),
    ("metadata", METADATA),
    ("spec", PROJECT_SPEC),
]);

const CLUSTER_CONFIG: Shape = Shape::Obj(&[
    ("bearerToken", STRINGS),
    ("username", STRINGS),
    ("password", STRINGS),
    (
        "tlsClientConfig",
        Shape::Obj(&[
            ("insecure", Shape::Bool),
            ("caData", Shape::Str(&["LS0tLS1CRUdJTg==", "!!", ""])),
            ("certData", STRINGS),
            ("keyData", STRINGS),
            ("serverName", STRINGS),
        ]),
    ),
    (
        "execProviderConfig",
        Shape::Obj(&[
            ("command", STRINGS),
            ("args", STRING_LIST),
            ("env", STRING_MAP),
            ("apiVersion", STRINGS),
            ("installHint", STRINGS),
        ]),
    ),
    (
        "awsAuthConfig",
        Shape::Obj(&[("clusterName", STRINGS), ("roleARN", STRINGS)]),
    ),
    ("proxyUrl", URL),
    ("disableCompression", Shape::Bool),
]);

const CLUSTER_SECRET: Shape = Shape::Obj(&[
    ("apiVersion", Shape::Str(&["v1"])),
    ("kind", Shape::Str(&["Secret"])),
    (
        "metadata",
        Shape::Obj(&[
            ("name", STRINGS),
            ("namespace", STRINGS),
            (
                "labels",
                Shape::Obj(&[("argocd.argoproj.io/secret-type", Shape::Str(&["cluster"]))]),
            ),
        ]),
    ),
    (
        "stringData",
        Shape::Obj(&[
            ("name", STRINGS),
            ("server", URL),
            (
                "config",
                Shape::Str(&[
                    "{\"bearerToken\":\"t\"}",
                    "{",
                    "{\"tlsClientConfig\":{\"insecure\":1}}",
                ]),
            ),
            ("namespaces", Shape::Str(&["a,b", ",", " a , ,b "])),
            ("project", STRINGS),
        ]),
    ),
    ("data", Shape::Map(&Shape::Str(&["aHR0cHM6Ly94", "!!", ""]))),
]);

/// One `argosy generate -f` file: an ApplicationSet, an AppProject or a cluster Secret.
const APPSET_FILE: Shape = Shape::OneOf(&[APPSET, APPSET, APPPROJECT, CLUSTER_SECRET]);

const GITHUB_PUSH: Shape = Shape::Obj(&[
    ("ref", STRINGS),
    (
        "repository",
        Shape::Obj(&[
            ("clone_url", URL),
            ("html_url", URL),
            ("ssh_url", URL),
            ("git_url", URL),
        ]),
    ),
]);

const GITLAB_PUSH: Shape = Shape::Obj(&[
    ("object_kind", Shape::Str(&["push", "tag_push"])),
    (
        "project",
        Shape::Obj(&[
            ("git_http_url", URL),
            ("git_ssh_url", URL),
            ("web_url", URL),
            ("http_url", URL),
        ]),
    ),
]);

const BITBUCKET_CLOUD_PUSH: Shape = Shape::Obj(&[
    (
        "repository",
        Shape::Obj(&[
            ("full_name", Shape::Str(&["team/fleet", "a/b/c", ""])),
            (
                "links",
                Shape::Obj(&[("html", Shape::Obj(&[("href", URL)]))]),
            ),
        ]),
    ),
    (
        "push",
        Shape::Obj(&[(
            "changes",
            Shape::List(&Shape::Obj(&[(
                "new",
                Shape::Obj(&[("name", STRINGS), ("type", Shape::Str(&["branch", "tag"]))]),
            )])),
        )]),
    ),
]);

const BITBUCKET_SERVER_PUSH: Shape = Shape::Obj(&[
    (
        "repository",
        Shape::Obj(&[(
            "links",
            Shape::Obj(&[(
                "clone",
                Shape::List(&Shape::Obj(&[
                    ("href", URL),
                    ("name", Shape::Str(&["http", "ssh"])),
                ])),
            )]),
        )]),
    ),
    (
        "changes",
        Shape::List(&Shape::Obj(&[
            ("ref", Shape::Obj(&[("id", STRINGS)])),
            ("refId", STRINGS),
        ])),
    ),
]);

const GOGS_PUSH: Shape = Shape::Obj(&[
    ("ref", STRINGS),
    (
        "repository",
        Shape::Obj(&[
            ("clone_url", URL),
            ("ssh_url", URL),
            ("html_url", URL),
            ("default_branch", STRINGS),
        ]),
    ),
]);

const AZURE_PUSH: Shape = Shape::Obj(&[
    (
        "eventType",
        Shape::Str(&["git.push", "git.pullrequest.created"]),
    ),
    (
        "resource",
        Shape::Obj(&[
            ("refUpdates", Shape::List(&Shape::Obj(&[("name", STRINGS)]))),
            (
                "repository",
                Shape::Obj(&[("remoteUrl", URL), ("defaultBranch", STRINGS)]),
            ),
        ]),
    ),
]);

const BITBUCKET_CLOUD_SAMPLE: &str = r#"{"repository":{"full_name":"team/fleet","links":{"html":{"href":"https://bitbucket.org/team/fleet"}}},"push":{"changes":[{"new":{"type":"branch","name":"main"}}]}}"#;
const BITBUCKET_SERVER_SAMPLE: &str = r#"{"eventKey":"repo:refs_changed","repository":{"links":{"clone":[{"href":"ssh://git@bitbucket.example.com:7999/p/r.git","name":"ssh"},{"href":"https://bitbucket.example.com/scm/p/r.git","name":"http"}]}},"changes":[{"ref":{"id":"refs/heads/master"},"refId":"refs/heads/master"}]}"#;
const GOGS_SAMPLE: &str = r#"{"ref":"refs/heads/master","repository":{"html_url":"https://gogs.example.com/john/r","ssh_url":"git@gogs.example.com:john/r.git","clone_url":"https://gogs.example.com/john/r.git","default_branch":"master"}}"#;
const AZURE_SAMPLE: &str = r#"{"eventType":"git.push","resource":{"refUpdates":[{"name":"refs/heads/main"}],"repository":{"remoteUrl":"https://org@dev.azure.com/org/p/_git/r","defaultBranch":"refs/heads/main"}}}"#;
const GITHUB_SAMPLE: &str = r#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/org/Repo.git","html_url":"https://github.com/org/Repo","ssh_url":"git@github.com:org/Repo.git","git_url":"git://github.com/org/Repo.git"}}"#;
const GITLAB_SAMPLE: &str = r#"{"object_kind":"push","project":{"git_http_url":"https://gitlab.example.com/group/app.git","git_ssh_url":"git@gitlab.example.com:group/app.git","web_url":"https://gitlab.example.com/group/app","http_url":"https://gitlab.example.com/group/app.git"}}"#;

/// AppProject specs as Argo CD's documentation writes them (the corpus has none).
const PROJECT_SAMPLES: &[&str] = &[
    r#"{"sourceRepos":["*"],"destinations":[{"namespace":"*","server":"*"}],"clusterResourceWhitelist":[{"group":"*","kind":"*"}]}"#,
    r#"{"sourceRepos":["https://github.com/org/*","!https://github.com/org/secret"],"destinations":[{"namespace":"team-*","server":"https://10.0.0.1:6443"},{"namespace":"!kube-system","name":"*"}],"sourceNamespaces":["team-*","/^apps-[0-9]+$/"],"namespaceResourceBlacklist":[{"group":"","kind":"ResourceQuota"}],"clusterResourceBlacklist":[{"group":"rbac.authorization.k8s.io","kind":"Cluster*","name":"admin-*"}],"permitOnlyProjectScopedClusters":true}"#,
];
