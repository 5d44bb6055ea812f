//! A real Helm chart repository for integration tests, and chart fixtures made with the real
//! `helm` (issue #17).
//!
//! * [`HelmRepoServer`]: nginx serving a directory (charts and `index.yaml`) over HTTPS on a
//!   free loopback port, with the certificates of [`Certificates`] and optional HTTP basic auth
//!   (an htpasswd file nginx re-reads on every request, so [`HelmRepoServer::set_password`]
//!   rotates at once). A plain HTTP listener serves the same files with the same auth. The
//!   access log counts requests per path ([`HelmRepoServer::requests`]), so a test can assert
//!   how often `index.yaml` or a chart archive was fetched. Process handling (parent-death
//!   signal, kill on drop, readiness polled, `ARGOSY_KEEP_TEMP=1`) is
//!   [`crate::git_servers`]'s, whose nginx plumbing it shares.
//! * [`ChartDir`]: a small chart written to disk (`Chart.yaml` apiVersion v2, a ConfigMap and
//!   a Deployment whose fields come from `values.yaml`), with builder methods for
//!   dependencies and extra templates.
//! * [`helm_package`], [`helm_repo_index`], [`helm_template`]: the real `helm package`,
//!   `helm repo index --url` and `helm template`, each in an isolated Helm home
//!   ([`HelmHome`]: no configuration, cache or repositories of the user's), and
//!   [`normalize_manifests`] to compare `helm template`'s objects with the objects Argosy
//!   renders or applies.
//!
//! `helm` is `~/.cache/argosy/tools/bin/helm` (`scripts/install-tools.sh`, under
//! `$ARGOSY_CACHE` when set) when it is there, else the one on `PATH`; nginx and openssl come
//! from `scripts/install-git-servers.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use crate::cache_dir;
use crate::git_servers::{
    AccessLogEntry, Certificates, Listener, LogFile, Proc, ServerDir, lock, log_barrier,
    nginx_barrier_location, nginx_main_conf, parse_access_line, run, start_nginx, write_htpasswd,
};

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// How to start a [`HelmRepoServer`].
#[derive(Debug, Clone)]
pub struct HelmRepoOptions {
    root: PathBuf,
    basic_auth: Option<(String, String)>,
}

impl HelmRepoOptions {
    /// Serve the files under `root` (which must exist), without authentication.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HelmRepoOptions {
            root: root.into(),
            basic_auth: None,
        }
    }

    /// Require HTTP basic auth with this user and password.
    #[must_use]
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_owned(), password.to_owned()));
        self
    }
}

/// nginx serving a chart repository directory; see the module docs.
pub struct HelmRepoServer {
    root: PathBuf,
    certs: Certificates,
    https_port: u16,
    http_port: u16,
    /// The user and current password, when basic auth is on.
    auth: Mutex<Option<(String, String)>>,
    htpasswd: PathBuf,
    access_log: LogFile,
    error_log: PathBuf,
    /// nginx. Before `dir`: killed before its files go.
    procs: Vec<Proc>,
    dir: ServerDir,
}

impl HelmRepoServer {
    /// Starts nginx for `opts`.
    pub fn start(opts: HelmRepoOptions) -> Result<Self> {
        let root = opts
            .root
            .canonicalize()
            .with_context(|| format!("chart repository root {}", opts.root.display()))?;
        let dir = ServerDir::new("argosy-helm-repo-")?;
        let d = dir.path();
        fs::create_dir_all(d.join("tmp")).context("creating tmp")?;
        let certs = Certificates::generate(d)?;
        let htpasswd = d.join("htpasswd");
        if let Some((user, password)) = &opts.basic_auth {
            write_htpasswd(
                &htpasswd,
                &BTreeMap::from([(user.clone(), password.clone())]),
            )?;
        }
        let auth = match &opts.basic_auth {
            Some(_) => format!(
                "auth_basic \"helm\";\n        auth_basic_user_file {};",
                htpasswd.display()
            ),
            None => String::new(),
        };
        let tls = certs.nginx_server_tls();
        let barrier = nginx_barrier_location();
        let error_log = d.join("error.log");
        let access_log = d.join("access.log");
        let (nginx, ports) = start_nginx(d, 2, &error_log, |ports| {
            let servers = format!(
                r"    default_type application/octet-stream;
    types {{
        application/x-yaml yaml yml;
        application/json json;
        application/gzip tgz;
        text/plain prov;
    }}
    server {{
        listen 127.0.0.1:{https} ssl;
        {tls}
        {auth}
        root {root};
    }}
    server {{
        listen 127.0.0.1:{http};
        {barrier}
        location / {{
            {auth}
            root {root};
        }}
    }}",
                https = ports[0],
                http = ports[1],
                root = root.display(),
            );
            nginx_main_conf(d, &error_log, &access_log, &servers)
        })?;
        Ok(HelmRepoServer {
            root,
            certs,
            https_port: ports[0],
            http_port: ports[1],
            auth: Mutex::new(opts.basic_auth),
            htpasswd,
            access_log: LogFile::new(access_log),
            error_log,
            procs: vec![nginx],
            dir,
        })
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's temp dir: configuration, certificates and logs (kept with
    /// `ARGOSY_KEEP_TEMP=1`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:PORT`: the repository URL of the served root (no trailing slash).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    /// `https://127.0.0.1:PORT/PATH`: a repository in a subdirectory, or a file.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}/{}", self.url(), path.trim_start_matches('/'))
    }

    /// `http://127.0.0.1:PORT`: the same files over plain HTTP (same auth).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The CA of the server certificate (PEM): what a client must trust.
    pub fn ca_pem(&self) -> &str {
        self.certs.ca_pem()
    }

    /// The file of [`HelmRepoServer::ca_pem`] (for `helm repo add --ca-file`).
    pub fn ca_path(&self) -> PathBuf {
        self.certs.ca_path()
    }

    /// The certificates (a client certificate is made too, unused here).
    pub fn certificates(&self) -> &Certificates {
        &self.certs
    }

    /// The basic-auth user, when auth is on.
    pub fn username(&self) -> Option<String> {
        lock(&self.auth).as_ref().map(|(user, _)| user.clone())
    }

    /// The current basic-auth password, when auth is on.
    pub fn password(&self) -> Option<String> {
        lock(&self.auth)
            .as_ref()
            .map(|(_, password)| password.clone())
    }

    /// Changes the password (auth must be on): the next request must use the new one.
    pub fn set_password(&self, password: &str) -> Result<()> {
        let mut auth = lock(&self.auth);
        let Some((user, _)) = auth.as_ref() else {
            bail!("this server was started without basic auth");
        };
        let user = user.clone();
        write_htpasswd(
            &self.htpasswd,
            &BTreeMap::from([(user.clone(), password.to_owned())]),
        )?;
        *auth = Some((user, password.to_owned()));
        Ok(())
    }

    /// The access log since the last [`HelmRepoServer::reset_requests`], both listeners;
    /// every request whose response a client has finished reading is in it (see
    /// [`crate::git_servers::GitHttpServer::access_log`]).
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        log_barrier(self.http_port);
        let https = self.https_port;
        self.access_log
            .lines()
            .iter()
            .filter_map(|line| {
                parse_access_line(line, |port| {
                    if port == https {
                        Listener::Https
                    } else {
                        Listener::Http
                    }
                })
            })
            .collect()
    }

    /// How many requests (any status, 401s included) were for `path` (`/index.yaml`,
    /// `/charts/web-1.0.0.tgz`; the leading `/` may be left out) since the last reset.
    pub fn requests(&self, path: &str) -> usize {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.access_log().iter().filter(|e| e.path == path).count()
    }

    /// Requests for `path` that were served (status 200).
    pub fn served(&self, path: &str) -> usize {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.access_log()
            .iter()
            .filter(|e| e.path == path && e.status == 200)
            .count()
    }

    /// Counts from now on.
    pub fn reset_requests(&self) {
        log_barrier(self.http_port);
        self.access_log.reset();
    }

    /// nginx's error log (auth failures, missing files).
    pub fn error_log(&self) -> String {
        fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for HelmRepoServer {
    fn drop(&mut self) {
        // Before the temp dir (a later field) is removed.
        self.procs.clear();
    }
}

// ---------------------------------------------------------------------------------------
// helm
// ---------------------------------------------------------------------------------------

/// The `helm` to run: the one `scripts/install-tools.sh` installed, else `helm` on `PATH`.
pub fn helm_binary() -> PathBuf {
    let installed = cache_dir().join("tools").join("bin").join("helm");
    if installed.is_file() {
        installed
    } else {
        PathBuf::from("helm")
    }
}

/// An isolated Helm home: its own configuration (repositories, registry logins), cache and
/// data directories in a temp dir, so `helm repo add` in one test is seen by no other.
pub struct HelmHome(TempDir);

impl HelmHome {
    /// A new, empty home.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("argosy-helm-home-")
            .tempdir()
            .context("creating a Helm home")?;
        Ok(HelmHome(dir))
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `helm` with this home: no `HELM_*` variable of the caller, its config, cache and data
    /// directories (and `HOME`) here, no kubeconfig, stdin closed.
    pub fn command(&self) -> Command {
        let home = self.path();
        let mut cmd = Command::new(helm_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HELM_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", home.join("no-kubeconfig"))
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs `helm ARGS...` to completion: its stdout, or an error with its stderr.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let what = format!("helm {}", args.first().copied().unwrap_or_default());
        run(&what, self.command().args(args))
    }

    /// `helm registry login` to `host_port` with the password on stdin, trusting `ca_file`:
    /// later `helm push`/`pull`/`dependency build` of this home use the login.
    pub fn registry_login(
        &self,
        host_port: &str,
        user: &str,
        password: &str,
        ca_file: &Path,
    ) -> Result<()> {
        use std::io::Write as _;
        let mut child = self
            .command()
            .args(["registry", "login", host_port, "--username", user])
            .arg("--password-stdin")
            .arg("--ca-file")
            .arg(ca_file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting helm registry login")?;
        child
            .stdin
            .take()
            .context("helm has no stdin")?
            .write_all(password.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "helm registry login failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// `helm package CHART_DIR --destination OUT_DIR`: the archive's path.
pub fn helm_package(chart_dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    let home = HelmHome::new()?;
    let out = run(
        "helm package",
        home.command()
            .arg("package")
            .arg(chart_dir)
            .arg("--destination")
            .arg(out_dir),
    )?;
    let saved = out
        .lines()
        .find_map(|l| l.split_once("saved it to: ").map(|(_, path)| path.trim()))
        .with_context(|| format!("helm package said nothing of where it saved: {out}"))?;
    Ok(PathBuf::from(saved))
}

/// `helm repo index DIR [--url URL]`: writes `DIR/index.yaml` for the archives in `DIR`.
/// Without a URL the index has relative URLs (`web-1.0.0.tgz`), resolved against the
/// repository URL by its clients.
pub fn helm_repo_index(dir: &Path, url: Option<&str>) -> Result<()> {
    let home = HelmHome::new()?;
    let mut cmd = home.command();
    cmd.args(["repo", "index"]).arg(dir);
    if let Some(url) = url {
        cmd.args(["--url", url]);
    }
    run("helm repo index", &mut cmd)?;
    Ok(())
}

/// `helm template CHART_REF ARGS...` (a chart directory, an archive, or `REPO/CHART` with a
/// home where the repository was added: use [`helm_template_in`]): the objects it prints, in
/// its order, empty documents left out. The release is `release-name` unless `ARGS` say
/// otherwise (`--name-template`, `--namespace`, `--set`, `-f`...).
pub fn helm_template(chart_ref: &str, args: &[&str]) -> Result<Vec<Value>> {
    helm_template_in(&HelmHome::new()?, chart_ref, args)
}

/// [`helm_template`] with the given home.
pub fn helm_template_in(home: &HelmHome, chart_ref: &str, args: &[&str]) -> Result<Vec<Value>> {
    let mut full = vec!["template", chart_ref];
    full.extend_from_slice(args);
    let out = home.run(&full)?;
    parse_documents(&out).context("parsing helm template's output")
}

/// The non-empty YAML documents of `text`, as JSON values.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

// ---------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------

/// One object made comparable, whoever wrote it (`helm template`'s YAML, Argosy's rendered
/// JSON, or an object read back): recursively, map entries whose value is `null`, `{}` or
/// `[]` are dropped (after their own normalization, so a map of only nulls goes too), as
/// Kubernetes and server-side apply treat them as absent; numbers with an integral value
/// become integers (`1.0` is `1`); map keys are sorted. Kept as they are: empty strings,
/// `false` and `0` (values with meaning), list order, and every other value.
pub fn normalize_manifest(value: &Value) -> Value {
    normalized(value).unwrap_or(Value::Null)
}

/// `None`: absent after normalization.
fn normalized(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let out: Map<String, Value> = keys
                .into_iter()
                .filter_map(|k| Some((k.clone(), normalized(&map[k])?)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            // Inside a list an element stays (as `null` when it normalizes away), so positions
            // keep their meaning.
            let out: Vec<Value> = items
                .iter()
                .map(|item| normalized(item).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => value.clone(),
        }),
        other => Some(other.clone()),
    }
}

/// [`normalize_manifest`] of each object, then sorted by `apiVersion`, `kind`,
/// `metadata.namespace` and `metadata.name` (helm prints kinds in its install order, Argosy
/// in sync-wave order), so two lists of the same objects compare equal.
pub fn normalize_manifests(objects: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = objects
        .into_iter()
        .map(|o| normalize_manifest(&o))
        .collect();
    out.sort_by_key(object_key);
    out
}

/// `apiVersion`, `kind`, namespace and name of an object (empty when absent).
pub fn object_key(object: &Value) -> (String, String, String, String) {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (
        text("/apiVersion"),
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// Removes the fields at `pointers` (JSON pointers: `/metadata/namespace`,
/// `/metadata/labels/app.kubernetes.io~1instance`) where present: what Argosy adds on apply
/// and helm does not print. Normalize afterwards, so emptied maps go too.
pub fn remove_fields(object: &mut Value, pointers: &[&str]) {
    for pointer in pointers {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = object.pointer_mut(parent) {
            map.remove(&key);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------

/// A dependency in a [`ChartDir`]'s `Chart.yaml`.
#[derive(Debug, Clone)]
pub struct ChartDependency {
    /// The chart's name.
    pub name: String,
    /// A version or constraint.
    pub version: String,
    /// `https://...` (a Helm repository), `oci://...`, or `file://../x`.
    pub repository: String,
    /// `alias:`, if any.
    pub alias: Option<String>,
    /// `condition:`, if any (`sub.enabled`).
    pub condition: Option<String>,
}

/// A small chart to write to disk; see the module docs. Its objects are named
/// `RELEASE-CHART`: a ConfigMap with `data.message` (`.Values.message`) and
/// `data.chartVersion`, and a Deployment with `replicas` (`.Values.replicaCount`), an image
/// (`.Values.image.repository`:`.Values.image.tag`, the appVersion when the tag is empty),
/// a container port (`.Values.port`), annotations (`.Values.annotations`) and resources
/// (`.Values.resources`, `{}` by default).
#[derive(Debug, Clone)]
pub struct ChartDir {
    name: String,
    version: String,
    app_version: String,
    dependencies: Vec<ChartDependency>,
    templates: Vec<(String, String)>,
    values: Option<String>,
}

/// The `metadata` of both built-in objects: `RELEASE-CHART`, with the usual labels.
const METADATA: &str = r#"metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
"#;

const CONFIG_MAP: (&str, &str) = (
    "apiVersion: v1\nkind: ConfigMap\n",
    r#"data:
  message: {{ .Values.message | quote }}
  chartVersion: {{ .Chart.Version | quote }}
"#,
);

const DEPLOYMENT: (&str, &str) = (
    "apiVersion: apps/v1\nkind: Deployment\n",
    r#"  {{- with .Values.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .Chart.Name }}
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          ports:
            - containerPort: {{ .Values.port }}
          envFrom:
            - configMapRef:
                name: {{ .Release.Name }}-{{ .Chart.Name }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
"#,
);

impl ChartDir {
    /// Chart `name` at `version` (appVersion `1.0.0`).
    pub fn new(name: &str, version: &str) -> Self {
        ChartDir {
            name: name.to_owned(),
            version: version.to_owned(),
            app_version: "1.0.0".to_owned(),
            dependencies: Vec::new(),
            templates: Vec::new(),
            values: None,
        }
    }

    /// The chart's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chart's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Sets `appVersion` (the Deployment's image tag when `image.tag` is empty).
    #[must_use]
    pub fn app_version(mut self, app_version: &str) -> Self {
        app_version.clone_into(&mut self.app_version);
        self
    }

    /// Adds a dependency on `name` at `version` (a version or constraint) from `repository`
    /// (`https://...`, `oci://...`, `file://../x`).
    #[must_use]
    pub fn dependency(self, name: &str, version: &str, repository: &str) -> Self {
        self.dependency_with(ChartDependency {
            name: name.to_owned(),
            version: version.to_owned(),
            repository: repository.to_owned(),
            alias: None,
            condition: None,
        })
    }

    /// Adds a dependency with every field given.
    #[must_use]
    pub fn dependency_with(mut self, dependency: ChartDependency) -> Self {
        self.dependencies.push(dependency);
        self
    }

    /// Adds `templates/FILE` with `text` (Go template).
    #[must_use]
    pub fn template(mut self, file: &str, text: &str) -> Self {
        self.templates.push((file.to_owned(), text.to_owned()));
        self
    }

    /// Replaces `values.yaml` (keep the keys the built-in templates use, or override them).
    #[must_use]
    pub fn values(mut self, yaml: &str) -> Self {
        self.values = Some(yaml.to_owned());
        self
    }

    /// The default `values.yaml`.
    pub fn default_values(&self) -> String {
        format!(
            "replicaCount: 1\nimage:\n  repository: registry.example/{name}\n  tag: \"\"\nmessage: hello from {name}\nport: 8080\nannotations: {{}}\nresources: {{}}\n",
            name = self.name
        )
    }

    /// `Chart.yaml`.
    pub fn chart_yaml(&self) -> Result<String> {
        let mut chart = json!({
            "apiVersion": "v2",
            "name": self.name,
            "description": "A test chart (argosy-tests)",
            "type": "application",
            "version": self.version,
            "appVersion": self.app_version,
        });
        if !self.dependencies.is_empty() {
            chart["dependencies"] = self
                .dependencies
                .iter()
                .map(|d| {
                    let mut entry = json!({
                        "name": d.name,
                        "version": d.version,
                        "repository": d.repository,
                    });
                    if let Some(alias) = &d.alias {
                        entry["alias"] = json!(alias);
                    }
                    if let Some(condition) = &d.condition {
                        entry["condition"] = json!(condition);
                    }
                    entry
                })
                .collect();
        }
        serde_yaml_ng::to_string(&chart).context("writing Chart.yaml")
    }

    /// Writes the chart to `parent/NAME` (replacing what is there); its directory.
    pub fn write(&self, parent: &Path) -> Result<PathBuf> {
        let dir = parent.join(&self.name);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let templates = dir.join("templates");
        fs::create_dir_all(&templates)
            .with_context(|| format!("creating {}", templates.display()))?;
        let values = self.values.clone().unwrap_or_else(|| self.default_values());
        let mut files = vec![
            (dir.join("Chart.yaml"), self.chart_yaml()?),
            (dir.join("values.yaml"), values),
            (
                templates.join("configmap.yaml"),
                [CONFIG_MAP.0, METADATA, CONFIG_MAP.1].concat(),
            ),
            (
                templates.join("deployment.yaml"),
                [DEPLOYMENT.0, METADATA, DEPLOYMENT.1].concat(),
            ),
        ];
        for (file, text) in &self.templates {
            files.push((templates.join(file), text.clone()));
        }
        for (path, text) in files {
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(dir)
    }

    /// Writes the chart into a temp dir and packages it into `out_dir` ([`helm_package`]):
    /// the archive's path.
    pub fn package(&self, out_dir: &Path) -> Result<PathBuf> {
        let work = TempDir::new().context("creating a temp dir for a chart")?;
        let dir = self.write(work.path())?;
        helm_package(&dir, out_dir)
    }
}
