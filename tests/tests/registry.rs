//! Self-tests of the OCI registry harness (`argosy_tests::registry`) with the real `helm`
//! (scripts/install-tools.sh): a chart made with `helm package` is pushed over HTTPS with
//! basic auth and read back, byte for byte; wrong or missing credentials and an untrusted
//! certificate are refused. So the Helm OCI and image tests built on the registry test
//! what they claim.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, Result, anyhow};
use argosy_tests::registry::{Registry, RegistryOptions};
use tempfile::TempDir;

/// A `helm` whose configuration, cache and data (registry logins included) live in one
/// temp dir of its own: two `Helm`s share no login.
struct Helm {
    home: TempDir,
}

impl Helm {
    fn new() -> Result<Self> {
        Ok(Helm {
            home: tempfile::Builder::new()
                .prefix("argosy-helm-home-")
                .tempdir()
                .context("helm home")?,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new("helm");
        cmd.args(args)
            .env("HOME", home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("DOCKER_CONFIG", home.join("docker"))
            .env_remove("HELM_REGISTRY_CONFIG")
            .env_remove("HELM_DEBUG")
            .current_dir(home);
        cmd
    }

    /// Runs `helm ARGS`, with `stdin` written to its standard input.
    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Result<Output> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting helm (scripts/install-tools.sh puts it on PATH)")?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("helm has no stdin"))?
            .write_all(stdin.as_bytes())
            .context("writing helm's stdin")?;
        child.wait_with_output().context("waiting for helm")
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with_stdin(args, "")
    }

    /// Runs `helm ARGS` and fails unless it succeeds; its stdout and stderr.
    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        let text = describe(&out);
        anyhow::ensure!(out.status.success(), "helm {args:?} failed: {text}");
        Ok(text)
    }

    fn login(&self, registry: &Registry, password: &str) -> Result<Output> {
        let ca = registry.ca_path();
        self.run_with_stdin(
            &[
                "registry",
                "login",
                &registry.host_port(),
                "--username",
                registry.user().unwrap_or_default(),
                "--password-stdin",
                "--ca-file",
                path(&ca)?,
            ],
            password,
        )
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", p.display()))
}

/// `helm package` of a one-template chart `hello` 0.1.0; the .tgz.
fn package_chart(helm: &Helm, dir: &Path) -> Result<PathBuf> {
    let chart = dir.join("hello");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: hello\nversion: 0.1.0\ndescription: registry harness test chart\n",
    )?;
    std::fs::write(
        chart.join("values.yaml"),
        "greeting: hello from the registry\n",
    )?;
    std::fs::write(
        chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    )?;
    let out_dir = dir.join("packaged");
    helm.ok(&["package", path(&chart)?, "--destination", path(&out_dir)?])?;
    let tgz = out_dir.join("hello-0.1.0.tgz");
    anyhow::ensure!(tgz.is_file(), "helm package made no {}", tgz.display());
    Ok(tgz)
}

#[test]
fn helm_pushes_and_pulls_a_chart_with_basic_auth_over_tls() -> Result<()> {
    let registry = Registry::start(RegistryOptions::with_random_auth())?;
    let password = registry.password().unwrap_or_default().to_owned();
    assert_eq!(
        registry.v2_status()?,
        401,
        "an unauthenticated GET /v2/ must be refused"
    );
    let work = TempDir::new()?;
    let helm = Helm::new()?;
    let tgz = package_chart(&helm, work.path())?;
    let ca = registry.ca_path();
    let ca = path(&ca)?;
    let repo = registry.oci_url("charts");
    let chart_ref = registry.oci_url("charts/hello");

    // Without a login the push is refused.
    let anonymous = helm.run(&["push", path(&tgz)?, &repo, "--ca-file", ca])?;
    assert!(
        !anonymous.status.success(),
        "a push without credentials must fail: {}",
        describe(&anonymous)
    );

    // A wrong password is refused, and never printed.
    let wrong = "wrong-password-for-the-registry";
    let refused = helm.login(&registry, wrong)?;
    let text = describe(&refused);
    assert!(
        !refused.status.success(),
        "a wrong password logged in: {text}"
    );
    assert!(
        text.contains("401") || text.to_lowercase().contains("unauthorized"),
        "the refusal names the cause: {text}"
    );
    assert!(!text.contains(wrong), "helm printed the password: {text}");
    let still_anonymous = helm.run(&["push", path(&tgz)?, &repo, "--ca-file", ca])?;
    assert!(
        !still_anonymous.status.success(),
        "a failed login must store no credentials"
    );

    // The CA is needed: without it the certificate is not trusted.
    let untrusted = Helm::new()?.run_with_stdin(
        &[
            "registry",
            "login",
            &registry.host_port(),
            "--username",
            registry.user().unwrap_or_default(),
            "--password-stdin",
        ],
        &password,
    )?;
    let text = describe(&untrusted);
    assert!(
        !untrusted.status.success(),
        "a login without the registry's CA must fail: {text}"
    );
    assert!(
        text.contains("certificate"),
        "the failure is the certificate: {text}"
    );

    // The right password logs in; the push and the reads work.
    let login = helm.login(&registry, &password)?;
    assert!(login.status.success(), "login failed: {}", describe(&login));
    assert!(!describe(&login).contains(&password));
    let pushed = helm.ok(&["push", path(&tgz)?, &repo, "--ca-file", ca])?;
    assert!(
        pushed.contains(&format!("{}/charts/hello:0.1.0", registry.host_port())),
        "push output: {pushed}"
    );

    let shown = helm.ok(&[
        "show",
        "chart",
        &chart_ref,
        "--version",
        "0.1.0",
        "--ca-file",
        ca,
    ])?;
    assert!(shown.contains("name: hello"), "{shown}");
    assert!(shown.contains("version: 0.1.0"), "{shown}");

    let pulled_dir = work.path().join("pulled");
    std::fs::create_dir_all(&pulled_dir)?;
    helm.ok(&[
        "pull",
        &chart_ref,
        "--version",
        "0.1.0",
        "--ca-file",
        ca,
        "--destination",
        path(&pulled_dir)?,
    ])?;
    let pulled = std::fs::read(pulled_dir.join("hello-0.1.0.tgz")).context("the pulled chart")?;
    assert_eq!(
        pulled,
        std::fs::read(&tgz)?,
        "the pulled chart is the pushed package, byte for byte"
    );

    let rendered = helm.ok(&[
        "template",
        "demo",
        &chart_ref,
        "--version",
        "0.1.0",
        "--ca-file",
        ca,
    ])?;
    assert!(rendered.contains("name: demo-hello"), "{rendered}");
    assert!(
        rendered.contains("greeting: \"hello from the registry\""),
        "{rendered}"
    );

    // Another helm without a login reads nothing.
    let stranger = Helm::new()?;
    let refused = stranger.run(&[
        "show",
        "chart",
        &chart_ref,
        "--version",
        "0.1.0",
        "--ca-file",
        ca,
    ])?;
    assert!(
        !refused.status.success(),
        "a read without credentials must fail: {}",
        describe(&refused)
    );

    // The registry saw the push (and the refusals).
    let log = registry.log();
    assert!(log.contains("/v2/charts/hello/manifests/0.1.0"), "{log}");
    Ok(())
}

#[test]
fn an_anonymous_registry_takes_a_push_without_login() -> Result<()> {
    let registry = Registry::start(RegistryOptions::anonymous())?;
    assert_eq!(registry.v2_status()?, 200);
    assert_eq!(registry.user(), None);
    let work = TempDir::new()?;
    let helm = Helm::new()?;
    let tgz = package_chart(&helm, work.path())?;
    let ca = registry.ca_path();
    helm.ok(&[
        "push",
        path(&tgz)?,
        &registry.oci_url("charts"),
        "--ca-file",
        path(&ca)?,
    ])?;
    let shown = helm.ok(&[
        "show",
        "chart",
        &registry.oci_url("charts/hello"),
        "--version",
        "0.1.0",
        "--ca-file",
        path(&ca)?,
    ])?;
    assert!(shown.contains("name: hello"), "{shown}");
    Ok(())
}

#[test]
fn two_registries_get_their_own_ports_and_certificates() -> Result<()> {
    let a = Registry::start(RegistryOptions::anonymous())?;
    let b = Registry::start(RegistryOptions::with_auth("someone", "a-password"))?;
    assert_ne!(a.port(), b.port());
    assert_ne!(a.ca_pem(), b.ca_pem());
    assert_eq!(b.creds().as_deref(), Some("someone:a-password"));
    assert!(b.cert_dir().join("ca.crt").is_file());
    assert_eq!(
        std::fs::read_dir(b.cert_dir())?.count(),
        1,
        "the cert dir holds only ca.crt"
    );
    let dir = a.dir().to_owned();
    drop(a);
    assert!(
        !dir.exists() || std::env::var_os("ARGOSY_KEEP_TEMP").is_some(),
        "the temp dir goes with the registry"
    );
    // b still answers after a is gone.
    assert_eq!(b.v2_status()?, 401);
    Ok(())
}
