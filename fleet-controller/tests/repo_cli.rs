#![allow(clippy::unwrap_used)]
//! `argosy repo add|list|rm` end to end: the real `argosy` binary, a real management API
//! server (the kubeconfig's current context) and real Git servers on loopback (nginx + `git
//! http-backend` over HTTPS with basic auth, sshd), so `add`'s access check runs through
//! the sync engine's own transport with the CA and known hosts the CLI reads from
//! `argocd-tls-certs-cm` and `argocd-ssh-known-hosts-cm`. No password may appear in any
//! output. Needs `kube-apiserver` (`scripts/install-control-plane.sh`) and the Git servers
//! (`scripts/install-git-servers.sh`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use anyhow::{Context as _, Result};
use argosy_crds::repository::{RepoSecretKind, parse_secret, secret_kind};
use argosy_sync_engine::url_policy::redact_url;
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{ARGOCD_NAMESPACE, init_tracing, install_crds, prepare_namespace};
use argosy_tests::git_servers::{GitHttpServer, GitRepoDir, GitSshServer};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `argosy ARGS` with `KUBECONFIG` set.
async fn argosy(kubeconfig: &Path, args: &[&str]) -> Ran {
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::process::Command::new(env!("CARGO_BIN_EXE_argosy"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .unwrap();
    let ran = Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    eprintln!(
        "$ argosy {}\n-> {:?}\n{}{}",
        args.join(" "),
        ran.code,
        ran.stdout,
        ran.stderr
    );
    ran
}

/// The whitespace-separated cells of the table row whose first cell is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_default()
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

/// The single `error: ...` line of a failed command.
fn one_error_line(ran: &Ran) -> &str {
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("error: "), "{}", ran.stderr);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{}",
        ran.stderr
    );
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_are_checked_added_listed_and_removed() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(0)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management().client().await?;
    install_crds(&mgmt).await?;
    prepare_namespace(&mgmt).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.management().kubeconfig_yaml())?;

    let served = dir.path().join("served");
    std::fs::create_dir_all(&served)?;
    let shop = GitRepoDir::init_bare(&served, "shop")?;
    shop.commit_files(&[("app/cm.yaml", "kind: ConfigMap\n")], "first")?;
    let catalog = GitRepoDir::init_bare(&served, "catalog")?;
    catalog.commit_files(&[("app/cm.yaml", "kind: ConfigMap\n")], "first")?;
    let http = GitHttpServer::start(&served)
        .context("starting nginx (run scripts/install-git-servers.sh first)")?;
    let ssh = GitSshServer::start(&served)?;

    // What the controller trusts, the CLI's check trusts: the servers' CA and host key.
    let config_maps: Api<ConfigMap> = Api::namespaced(mgmt.clone(), ARGOCD_NAMESPACE);
    config_maps
        .create(
            &PostParams::default(),
            &config_map("argocd-tls-certs-cm", &[("127.0.0.1", http.ca_pem())]),
        )
        .await?;
    config_maps
        .create(
            &PostParams::default(),
            &config_map(
                "argocd-ssh-known-hosts-cm",
                &[("ssh_known_hosts", ssh.known_hosts_line())],
            ),
        )
        .await?;
    let password = http.password();
    assert!(password.len() >= 8, "a password worth looking for");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{password}\n"))?;
    let password_file = password_file.to_str().unwrap();
    let shop_url = http.https_url("shop");
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), ARGOCD_NAMESPACE);
    let mut outputs = Vec::new();

    // add: checked with the credentials, then written.
    let added = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            &shop_url,
            "--username",
            "argosy",
            "--password-file",
            password_file,
        ],
    )
    .await;
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    assert!(
        added
            .stderr
            .contains(&format!("checking access to {shop_url}... ok (")),
        "{}",
        added.stderr
    );
    let shop_secret_name = added
        .stdout
        .strip_prefix(&format!("repository {shop_url} added (Secret argocd/"))
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("unexpected: {}", added.stdout))
        .to_owned();
    assert!(shop_secret_name.starts_with("repo-"));
    let written = secrets.get(&shop_secret_name).await?;
    assert_eq!(secret_kind(&written), Some(RepoSecretKind::Repository));
    let creds = parse_secret(&written)?;
    assert_eq!(creds.url, shop_url);
    assert_eq!(creds.username.as_deref(), Some("argosy"));
    assert_eq!(
        creds.password.as_ref().map(|p| p.expose().to_owned()),
        Some(password.clone()),
        "the file's trailing newline is not part of the password"
    );
    outputs.push(added);

    // The same again: nothing to do. Other settings: refused without --upsert.
    let again = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            &shop_url,
            "--username",
            "argosy",
            "--password-file",
            password_file,
        ],
    )
    .await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(
        again.stdout,
        format!("repository {shop_url} unchanged (Secret argocd/{shop_secret_name})\n")
    );
    // Another spelling of the same repository is the same repository.
    let respelled = shop_url.trim_end_matches(".git");
    let exists = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            respelled,
            "--insecure-skip-server-verification",
        ],
    )
    .await;
    assert_eq!(
        one_error_line(&exists),
        format!(
            "error: repository {respelled} already exists as Secret argocd/{shop_secret_name} with other settings; pass --upsert to replace them"
        )
    );

    // A wrong password fails the check: one line naming the repository, nothing written.
    let wrong = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            &shop_url,
            "--username",
            "argosy",
            "--password",
            "not-the-password",
            "--upsert",
        ],
    )
    .await;
    let line = one_error_line(&wrong);
    assert!(
        line.starts_with(&format!(
            "error: repository {shop_url}: access check failed: "
        )) && line.ends_with("(nothing was written)"),
        "{line}"
    );
    assert!(
        !wrong.stderr.contains("not-the-password"),
        "{}",
        wrong.stderr
    );
    let unchanged = parse_secret(&secrets.get(&shop_secret_name).await?)?;
    assert_eq!(unchanged.password, creds.password);
    let anonymous = argosy(&kubeconfig, &["repo", "add", &http.https_url("catalog")]).await;
    one_error_line(&anonymous);
    assert_eq!(secrets.list(&Default::default()).await?.items.len(), 1);
    outputs.push(wrong);

    // SSH with a key, against the host key of argocd-ssh-known-hosts-cm; management cluster
    // named by flags instead of $KUBECONFIG's current context.
    let ssh_url = ssh.url("shop");
    let ssh_added = argosy(
        Path::new("/nonexistent"),
        &[
            "repo",
            "add",
            &ssh_url,
            "--ssh-private-key-path",
            ssh.client_key_path().to_str().unwrap(),
            "--project",
            "team-a",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--mgmt-context",
            "mgmt",
        ],
    )
    .await;
    assert_eq!(ssh_added.code, Some(0), "{}", ssh_added.stderr);
    assert!(
        ssh_added.stderr.contains("... ok ("),
        "{}",
        ssh_added.stderr
    );
    outputs.push(ssh_added);

    // A credential template for the whole server: not checked (a prefix is no repository),
    // and it lends its credentials to catalog, whose check now passes.
    let prefix = format!("https://127.0.0.1:{}/", http.ports().0);
    let template = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            &prefix,
            "--creds-template",
            "--username",
            "argosy",
            "--password-file",
            password_file,
        ],
    )
    .await;
    assert_eq!(template.code, Some(0), "{}", template.stderr);
    assert!(
        template.stdout.starts_with(&format!(
            "credential template {prefix} added (Secret argocd/creds-"
        )),
        "{}",
        template.stdout
    );
    assert!(!template.stderr.contains("checking"), "{}", template.stderr);
    let catalog_url = http.https_url("catalog");
    let inherited = argosy(&kubeconfig, &["repo", "add", &catalog_url]).await;
    assert_eq!(inherited.code, Some(0), "{}", inherited.stderr);
    assert!(
        inherited.stderr.contains("... ok ("),
        "{}",
        inherited.stderr
    );
    let unreachable = argosy(
        &kubeconfig,
        &[
            "repo",
            "add",
            "https://git.internal.invalid/x.git",
            "--no-check",
        ],
    )
    .await;
    assert_eq!(unreachable.code, Some(0), "{}", unreachable.stderr);
    assert_eq!(
        unreachable.stderr,
        "not checking access to https://git.internal.invalid/x.git (--no-check)\n"
    );
    outputs.extend([template, inherited, unreachable]);

    // list: kinds of credentials, never the credentials.
    let list = argosy(&kubeconfig, &["repo", "list"]).await;
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert_eq!(
        row(&list.stdout, &shop_url)[1..6],
        ["repository", "git", "-", "-", "https"]
    );
    assert_eq!(
        row(&list.stdout, &catalog_url)[1..6],
        ["repository", "git", "-", "-", "inherited"]
    );
    // User info is never shown (an HTTPS URL may carry a token there).
    assert_eq!(
        row(&list.stdout, &redact_url(&ssh_url))[1..6],
        ["repository", "git", "-", "team-a", "ssh"]
    );
    assert_eq!(
        row(&list.stdout, &prefix)[1..6],
        ["creds-template", "git", "-", "-", "https"]
    );
    let json = argosy(&kubeconfig, &["repo", "list", "-o", "json"]).await;
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let listed: Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(5));
    outputs.extend([list, json]);

    // rm: by any spelling of the URL; a Secret written by hand (no managed-by annotation)
    // only loses its type label.
    let spelled = shop_url.trim_end_matches(".git").to_uppercase();
    let rm = argosy(&kubeconfig, &["repo", "rm", &spelled]).await;
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    assert_eq!(
        rm.stdout,
        format!("repository {shop_url} removed: deleted Secret argocd/{shop_secret_name}\n")
    );
    assert!(secrets.get_opt(&shop_secret_name).await?.is_none());
    let missing = argosy(&kubeconfig, &["repo", "rm", &shop_url]).await;
    assert_eq!(
        one_error_line(&missing),
        format!(
            "error: repository {shop_url} not found (no Secret in namespace argocd has this URL)"
        )
    );
    let by_hand: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "declared", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"url": "https://git.example.com/declared", "password": "declared-pw"},
    }))?;
    secrets.create(&PostParams::default(), &by_hand).await?;
    let rm_declared = argosy(
        &kubeconfig,
        &["repo", "rm", "https://git.example.com/declared"],
    )
    .await;
    assert_eq!(rm_declared.code, Some(0), "{}", rm_declared.stderr);
    let kept = secrets.get("declared").await?;
    let labels: BTreeMap<String, String> = kept.metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("argocd.argoproj.io/secret-type"));
    let rm_template = argosy(&kubeconfig, &["repo", "rm", &prefix, "--creds-template"]).await;
    assert_eq!(rm_template.code, Some(0), "{}", rm_template.stderr);
    assert!(rm_template.stdout.starts_with(&format!(
        "credential template {prefix} removed: deleted Secret argocd/creds-"
    )));
    outputs.extend([rm, missing, rm_declared, rm_template]);

    // Bad flags: one line, exit 1, before any cluster is contacted; clap's usage errors: 2.
    let not_ssh = argosy(
        Path::new("/nonexistent"),
        &["repo", "add", "https://x/y", "--ssh-private-key-path", "/k"],
    )
    .await;
    assert_eq!(
        one_error_line(&not_ssh),
        "error: --ssh-private-key-path is only supported for SSH repositories"
    );
    let no_file = argosy(
        Path::new("/nonexistent"),
        &[
            "repo",
            "add",
            "https://x/y",
            "--password-file",
            "/nonexistent/pw",
        ],
    )
    .await;
    assert!(
        one_error_line(&no_file).starts_with("error: --password-file: reading /nonexistent/pw: ")
    );
    let usage = argosy(
        Path::new("/nonexistent"),
        &[
            "repo",
            "add",
            "https://x/y",
            "--password",
            "p",
            "--password-file",
            "/p",
        ],
    )
    .await;
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    assert!(
        usage.stderr.starts_with("error: the argument '--password"),
        "{}",
        usage.stderr
    );
    outputs.extend([not_ssh, no_file]);

    for ran in &outputs {
        for secret in [password.as_str(), "not-the-password", "declared-pw"] {
            assert!(
                !ran.stdout.contains(secret) && !ran.stderr.contains(secret),
                "a credential was printed:\n{}{}",
                ran.stdout,
                ran.stderr
            );
        }
        assert!(!ran.stdout.contains("PRIVATE KEY") && !ran.stderr.contains("PRIVATE KEY"));
    }
    Ok(())
}
