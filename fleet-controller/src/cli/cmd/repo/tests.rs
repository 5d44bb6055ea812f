use super::*;
use clap::Parser as _;

use crate::cli::args::{Cli, Command, RepoFlags};

/// `argosy repo add ARGS...` parsed as the binary parses it.
fn add_flags(args: &[&str]) -> AddFlags {
    let argv = ["argosy", "repo", "add"].iter().chain(args);
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Repo(RepoFlags {
            command: RepoCommand::Add(flags),
            ..
        })) => *flags,
        other => panic!("{args:?} did not parse as repo add: {other:?}"),
    }
}

/// Files as the test names them: `path` → `content of path`.
fn fake_files(flag: &'static str, path: &Path) -> Result<String, RepoCliError> {
    let _ = flag;
    Ok(format!("content of {}", path.display()))
}

fn creds_of(args: &[&str]) -> Result<RepoCredentials, RepoCliError> {
    credentials(&add_flags(args), &mut fake_files)
}

fn flag_error(args: &[&str]) -> String {
    match creds_of(args) {
        Err(RepoCliError::Flags(reason)) => reason,
        other => panic!("{args:?}: expected a flag error, got {other:?}"),
    }
}

fn data(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn secret_names_are_argo_cds() {
    // Argo CD's own TestRepoURLToSecretName and Test_CredsURLToSecretName vectors.
    for (url, project, name) in [
        (
            "git://git@github.com:argoproj/ARGO-cd.git",
            "",
            "repo-83273445",
        ),
        (
            "git://git@github.com:argoproj/ARGO-cd.git",
            "foobar",
            "repo-2733415816",
        ),
        ("https://github.com/argoproj/ARGO-cd", "", "repo-1890113693"),
        ("https://github.com/argoproj/argo-cd", "", "repo-42374749"),
        (
            "https://github.com/argoproj/argo-cd",
            "foobar",
            "repo-1894545728",
        ),
        (
            "https://github.com/argoproj/argo-cd.git",
            "",
            "repo-821842295",
        ),
        (
            "ssh://git@github.com/argoproj/argo-cd.git",
            "foobar",
            "repo-754834421",
        ),
    ] {
        assert_eq!(
            secret_name(RepoSecretKind::Repository, url, project),
            name,
            "{url} {project}"
        );
    }
    assert_eq!(
        secret_name(
            RepoSecretKind::RepoCreds,
            "git://git@github.com:argoproj",
            ""
        ),
        "creds-2483499391"
    );
}

#[test]
fn flags_become_argo_cds_fields() {
    let creds = creds_of(&[
        "https://git.example.com/org/app.git",
        "--username",
        "bot",
        "--password-file",
        "/run/pw",
        "--tls-client-cert-path",
        "/c.pem",
        "--tls-client-cert-key-path",
        "/k.pem",
        "--insecure-skip-server-verification",
        "--proxy",
        "http://proxy:3128",
        "--no-proxy",
        "internal",
        "--force-http-basic-auth",
        "--project",
        "team-a",
        "--name",
        "app",
    ])
    .unwrap();
    let secret = repo_secret(RepoSecretKind::Repository, &creds, "argocd");
    assert_eq!(
        data(&secret),
        map(&[
            ("url", "https://git.example.com/org/app.git"),
            ("type", "git"),
            ("name", "app"),
            ("project", "team-a"),
            ("username", "bot"),
            ("password", "content of /run/pw"),
            ("tlsClientCertData", "content of /c.pem"),
            ("tlsClientCertKey", "content of /k.pem"),
            ("insecure", "true"),
            ("forceHttpBasicAuth", "true"),
            ("proxy", "http://proxy:3128"),
            ("noProxy", "internal"),
        ])
    );
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(
            secret_name(
                RepoSecretKind::Repository,
                "https://git.example.com/org/app.git",
                "team-a"
            )
            .as_str()
        )
    );
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()[SECRET_TYPE_LABEL],
        "repository"
    );
    assert_eq!(
        secret.metadata.annotations.as_ref().unwrap()[MANAGED_BY_ANNOTATION],
        MANAGED_BY_ARGOCD
    );
    assert_eq!(secret.metadata.namespace.as_deref(), Some("argocd"));
    // What the controller reads back is what the flags said.
    let parsed = parse_secret(&secret).unwrap();
    assert_eq!(
        RepoCredentials {
            secret: String::new(),
            ..parsed
        },
        creds
    );
}

#[test]
fn every_credential_kind_round_trips_through_the_secret() {
    let ssh = creds_of(&[
        "git@github.com:org/app.git",
        "--ssh-private-key-path",
        "/id",
        "--insecure-ignore-host-key",
    ])
    .unwrap();
    let app = creds_of(&[
        "https://ghe.example.com/org/app",
        "--github-app-id",
        "42",
        "--github-app-installation-id",
        "7",
        "--github-app-private-key-path",
        "/app.pem",
        "--github-app-enterprise-base-url",
        "https://ghe.example.com/api/v3",
    ])
    .unwrap();
    let bearer = creds_of(&[
        "https://bitbucket.example.com/scm/app.git",
        "--bearer-token",
        "tok",
    ])
    .unwrap();
    let helm = creds_of(&[
        "https://charts.example.com",
        "--type",
        "helm",
        "--name",
        "stable",
        "--enable-oci",
        "--username",
        "u",
        "--password",
        "p",
    ])
    .unwrap();
    let template = creds_of(&[
        "https://github.com/org",
        "--creds-template",
        "--password",
        "p",
    ])
    .unwrap();
    for (creds, kinds) in [
        (&ssh, vec!["ssh"]),
        (&app, vec!["github-app"]),
        (&bearer, vec!["bearer"]),
        (&helm, vec!["https"]),
        (&template, vec!["https"]),
    ] {
        assert_eq!(credential_kinds(creds), kinds, "{}", creds.url);
        let kind = if creds.url == "https://github.com/org" {
            RepoSecretKind::RepoCreds
        } else {
            RepoSecretKind::Repository
        };
        let parsed = parse_secret(&repo_secret(kind, creds, "argocd")).unwrap();
        assert_eq!(
            &RepoCredentials {
                secret: String::new(),
                ..parsed
            },
            creds
        );
    }
    let app_data = secret_data(&app);
    assert_eq!(app_data["githubAppID"], "42");
    assert_eq!(app_data["githubAppInstallationID"], "7");
    assert_eq!(
        app_data["githubAppEnterpriseBaseUrl"],
        "https://ghe.example.com/api/v3"
    );
    assert_eq!(secret_data(&ssh)["insecureIgnoreHostKey"], "true");
    assert_eq!(secret_data(&helm)["enableOCI"], "true");
    let template_secret = repo_secret(RepoSecretKind::RepoCreds, &template, "argocd");
    assert!(
        template_secret
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("creds-")
    );
    assert_eq!(
        template_secret.metadata.labels.unwrap()[SECRET_TYPE_LABEL],
        "repo-creds"
    );
}

#[test]
fn bad_flag_combinations_are_one_line_each() {
    for (args, expected) in [
        (
            &["https://x/y", "--ssh-private-key-path", "/id"][..],
            "--ssh-private-key-path is only supported for SSH repositories",
        ),
        (
            &[
                "git@x:y",
                "--tls-client-cert-path",
                "/c",
                "--tls-client-cert-key-path",
                "/k",
            ],
            "--tls-client-cert-path is only supported for HTTPS repositories",
        ),
        (
            &["https://x/y", "--tls-client-cert-path", "/c"],
            "--tls-client-cert-path and --tls-client-cert-key-path must be specified together",
        ),
        (
            &["https://x/y", "--type", "helm"],
            "--name is required for repositories of type helm",
        ),
        (
            &["https://x/y", "--enable-oci"],
            "--enable-oci is only valid for repositories of type helm",
        ),
        (
            &["https://x/y", "--username", "u"],
            "--username needs --password or --password-file (argosy does not prompt)",
        ),
        (
            &["https://x/y", "--bearer-token", "t", "--password", "p"],
            "only --bearer-token or --password is allowed, not both",
        ),
        (
            &["ssh://git@x/y", "--bearer-token", "t"],
            "--bearer-token is only supported for HTTPS repositories",
        ),
        (
            &[
                "https://x/y",
                "--github-app-id",
                "1",
                "--github-app-private-key-path",
                "/k",
            ],
            "a GitHub App needs --github-app-id, --github-app-installation-id and --github-app-private-key-path",
        ),
        (
            &[
                "git@x:y",
                "--github-app-id",
                "1",
                "--github-app-installation-id",
                "2",
                "--github-app-private-key-path",
                "/k",
            ],
            "--github-app-private-key-path is only supported for HTTPS repositories",
        ),
        (
            &["https://x/", "--creds-template", "--project", "p"],
            "--project is a repository setting; a credential template (--creds-template) cannot carry it",
        ),
        (&[" "], "the repository URL is empty"),
    ] {
        let reason = flag_error(args);
        assert_eq!(reason, expected, "{args:?}");
        assert_eq!(RepoCliError::Flags(reason).category(), "flags");
    }
    // Structural mistakes are clap's usage errors (exit code 2).
    let parse = |args: &[&str]| {
        Cli::try_parse_from(["argosy", "repo", "add"].iter().chain(args)).map(|_| ())
    };
    assert!(parse(&["https://x/y", "--password", "p", "--password-file", "/p"]).is_err());
    assert!(parse(&["https://x/y", "--type", "oci"]).is_err());
    assert!(parse(&["https://x/y", "--github-app-id", "0"]).is_err());
    assert!(parse(&[]).is_err());
}

#[test]
fn credentials_stay_out_of_debug_and_files_are_read_once_each() {
    let flags = add_flags(&[
        "https://x/y",
        "--password",
        "hunter2",
        "--bearer-token",
        "tok3n",
    ]);
    let shown = format!("{flags:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("tok3n"),
        "{shown}"
    );
    let mut asked = Vec::new();
    let mut read = |flag: &'static str, path: &Path| {
        asked.push((flag, path.display().to_string()));
        Ok("PEM\n".to_owned())
    };
    let creds = credentials(
        &add_flags(&[
            "git@x:y",
            "--ssh-private-key-path",
            "/id",
            "--username",
            "u",
            "--password-file",
            "/pw",
        ]),
        &mut read,
    )
    .unwrap();
    assert_eq!(
        asked,
        [
            ("--password-file", "/pw".to_owned()),
            ("--ssh-private-key-path", "/id".to_owned())
        ]
    );
    // A password file's trailing newline is not part of the password; a key keeps it.
    assert_eq!(creds.password.unwrap().expose(), "PEM");
    assert_eq!(creds.ssh_private_key.unwrap().expose(), "PEM\n");
    let missing = credentials(
        &add_flags(&["git@x:y", "--ssh-private-key-path", "/nonexistent/id"]),
        &mut read_file,
    )
    .unwrap_err();
    assert_eq!(missing.category(), "read_file");
    assert!(
        missing
            .to_string()
            .starts_with("--ssh-private-key-path: reading /nonexistent/id: "),
        "{missing}"
    );
}

#[test]
fn url_helpers_follow_argo_cd() {
    for ssh in [
        "git@github.com:org/app.git",
        "ssh://git@github.com/org/app",
        "ssh://git@host:2222/org/app",
    ] {
        assert!(is_ssh_url(ssh), "{ssh}");
    }
    for not_ssh in [
        "https://github.com/org/app",
        "https://user@github.com/org/app",
        "github.com:org/app",
        "file:///tmp/repo",
    ] {
        assert!(!is_ssh_url(not_ssh), "{not_ssh}");
    }
}

fn listed(kind: &str, name: &str, pairs: &[(&str, &str)], annotations: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("argocd".to_owned()),
            labels: Some(map(&[(SECRET_TYPE_LABEL, kind)])),
            annotations: Some(map(annotations)),
            resource_version: Some("7".to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

#[test]
fn an_existing_repository_needs_upsert_unless_nothing_changes() {
    let creds = creds_of(&["https://git.example.com/org/app", "--password", "new"]).unwrap();
    let wanted = repo_secret(RepoSecretKind::Repository, &creds, "argocd");
    let plan_with = |existing: &[Secret], named: Option<&Secret>, upsert| {
        plan(
            RepoSecretKind::Repository,
            &wanted,
            &creds,
            existing,
            named,
            upsert,
        )
    };
    assert_eq!(
        plan_with(&[], None, false).unwrap(),
        Plan::Create(wanted.clone())
    );

    // Written by hand with another spelling of the URL and an old password, plus a key of
    // someone else's.
    let by_hand = listed(
        "repository",
        "shop-repo",
        &[
            ("url", "https://GIT.example.com/org/app.git"),
            ("password", "old"),
            ("sshPrivateKey", "KEY"),
            ("team", "shop"),
        ],
        &[],
    );
    let error = plan_with(std::slice::from_ref(&by_hand), None, false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "repository https://git.example.com/org/app already exists as Secret argocd/shop-repo with other settings; pass --upsert to replace them"
    );
    let Plan::Update(updated) = plan_with(std::slice::from_ref(&by_hand), None, true).unwrap()
    else {
        panic!("not an update");
    };
    assert_eq!(updated.metadata.name.as_deref(), Some("shop-repo"));
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("7"));
    // Argo CD's keys are replaced (the stale SSH key goes), the foreign key stays.
    assert_eq!(
        data(&updated),
        map(&[
            ("url", "https://git.example.com/org/app"),
            ("type", "git"),
            ("password", "new"),
            ("team", "shop"),
        ])
    );
    assert_eq!(
        updated.metadata.annotations.as_ref().unwrap()[MANAGED_BY_ANNOTATION],
        MANAGED_BY_ARGOCD
    );

    // The same settings again: nothing to write, with or without --upsert.
    let same = listed(
        "repository",
        "repo-1",
        &[
            ("url", "https://git.example.com/org/app"),
            ("type", "git"),
            ("password", "new"),
        ],
        &[],
    );
    assert_eq!(
        plan_with(std::slice::from_ref(&same), None, false).unwrap(),
        Plan::Unchanged("argocd/repo-1".to_owned())
    );

    // Another project's Secret of the same URL is another repository Secret.
    let scoped = listed(
        "repository",
        "repo-2",
        &[("url", "https://git.example.com/org/app"), ("project", "a")],
        &[],
    );
    assert!(matches!(
        plan_with(std::slice::from_ref(&scoped), None, false),
        Ok(Plan::Create(_))
    ));

    // Our name taken by something that is not this repository's Secret: never overwritten.
    let squatter = listed("cluster", "repo-x", &[("url", "https://w1")], &[]);
    let error = plan_with(&[], Some(&squatter), true).unwrap_err();
    assert_eq!(error.category(), "name_taken");
    assert!(matches!(
        plan_with(&[same.clone(), by_hand.clone()], None, true),
        Err(RepoCliError::Ambiguous { .. })
    ));
}

#[test]
fn templates_are_matched_by_exact_url_and_lend_credentials_to_the_check() {
    let template = listed(
        "repo-creds",
        "creds-1",
        &[
            ("url", "https://git.example.com/org"),
            ("password", "org-pw"),
        ],
        &[],
    );
    let creds = creds_of(&["https://git.example.com/org/app"]).unwrap();
    let wanted = repo_secret(RepoSecretKind::Repository, &creds, "argocd");
    let certs = map(&[("git.example.com", "CA PEM")]);
    let check = |wanted: &Secret, creds: &RepoCredentials, existing: &[Secret]| {
        check_auth(wanted, creds, existing, "KNOWN HOSTS", &certs).unwrap()
    };
    let auth = check(&wanted, &creds, std::slice::from_ref(&template));
    assert_eq!(auth.known_hosts, "KNOWN HOSTS");
    assert_eq!(
        auth.ca_pem.as_deref(),
        Some("CA PEM"),
        "the CA of the URL's host"
    );
    let effective = auth.creds.expect("the template lends its password");
    assert_eq!(effective.password.unwrap().expose(), "org-pw");
    assert_eq!(effective.url, "https://git.example.com/org/app");
    // Without a template it is read anonymously (its own settings, such as a proxy or
    // `insecure`, still apply).
    let anonymous = check(&wanted, &creds, &[]).creds.unwrap();
    assert!(!anonymous.has_credentials());
    // A repository with its own credentials is checked with those.
    let own = creds_of(&["https://git.example.com/org/app", "--password", "mine"]).unwrap();
    let own_secret = repo_secret(RepoSecretKind::Repository, &own, "argocd");
    let effective = check(&own_secret, &own, std::slice::from_ref(&template))
        .creds
        .unwrap();
    assert_eq!(effective.password.unwrap().expose(), "mine");

    assert_eq!(
        same_repository(
            std::slice::from_ref(&template),
            RepoSecretKind::RepoCreds,
            "https://git.example.com/org",
            None
        )
        .len(),
        1
    );
    assert!(
        same_repository(
            std::slice::from_ref(&template),
            RepoSecretKind::RepoCreds,
            "https://git.example.com/org/",
            None
        )
        .is_empty()
    );
    assert!(
        same_repository(
            std::slice::from_ref(&template),
            RepoSecretKind::Repository,
            "https://git.example.com/org",
            None
        )
        .is_empty()
    );
}

#[test]
fn list_rows_name_the_kind_of_credentials_only() {
    let secrets = [
        listed(
            "repo-creds",
            "creds-1",
            &[
                ("url", "https://git.example.com/org"),
                ("password", "org-pw"),
            ],
            &[],
        ),
        listed(
            "repository",
            "repo-2",
            &[("url", "https://git.example.com/org/app"), ("project", "a")],
            &[],
        ),
        listed(
            "repository",
            "repo-1",
            &[
                ("url", "https://bot:s3cret@other.example.com/x"),
                ("sshPrivateKey", "KEY"),
                ("bearerToken", "tok"),
                ("insecure", "true"),
            ],
            &[],
        ),
        listed(
            "repository",
            "repo-3",
            &[
                ("url", "https://elsewhere/x"),
                ("type", "helm"),
                ("name", "charts"),
            ],
            &[],
        ),
        listed(
            "repository",
            "broken",
            &[("url", "https://broken/x"), ("insecure", "s3cr3t-ish")],
            &[],
        ),
    ];
    let (rows, warnings) = rows(&secrets);
    let text = format::table(&rows);
    assert_eq!(
        text,
        "\
URL                              KIND            TYPE  NAME    PROJECT  CREDENTIALS  SECRET
https://***@other.example.com/x  repository      git   -       -        bearer,ssh   argocd/repo-1
https://broken/x                 repository      -     -       -        invalid      argocd/broken
https://elsewhere/x              repository      helm  charts  -        none         argocd/repo-3
https://git.example.com/org/app  repository      git   -       a        inherited    argocd/repo-2
https://git.example.com/org      creds-template  git   -       -        https        argocd/creds-1
"
    );
    assert_eq!(
        warnings,
        ["repository Secret argocd/broken: data.insecure is not a boolean"]
    );
    let json = serde_json::to_string(&rows).unwrap();
    for secret in ["org-pw", "s3cret", "KEY", "tok\"", "s3cr3t"] {
        assert!(!text.contains(secret) && !json.contains(secret), "{secret}");
    }
    assert!(json.contains(r#""insecure":true"#));
}

#[test]
fn rm_parses_with_project_or_template() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(["argosy", "repo"].iter().chain(args)).map(|c| c.command)
    };
    let Ok(Command::Repo(RepoFlags {
        namespace,
        mgmt_context,
        command:
            RepoCommand::Rm {
                url,
                creds_template: false,
                project: Some(project),
            },
        ..
    })) = parse(&[
        "rm",
        "https://x/y",
        "--project",
        "a",
        "-n",
        "team",
        "--mgmt-context",
        "mgmt",
    ])
    else {
        panic!("rm did not parse");
    };
    assert_eq!(
        (
            namespace.as_str(),
            mgmt_context.as_deref(),
            url.as_str(),
            project.as_str()
        ),
        ("team", Some("mgmt"), "https://x/y", "a")
    );
    assert!(parse(&["rm", "https://x/", "--creds-template", "--project", "a"]).is_err());
    assert!(matches!(
        parse(&["list", "-o", "json"]),
        Ok(Command::Repo(RepoFlags {
            command: RepoCommand::List {
                output: Output::Json
            },
            ..
        }))
    ));
}

#[test]
fn the_added_line_says_what_happened_without_credentials() {
    let creds = creds_of(&["https://u:pw@git.example.com/app", "--password", "x"]).unwrap();
    let secret = repo_secret(RepoSecretKind::Repository, &creds, "argocd");
    let name = secret.metadata.name.clone().unwrap();
    assert_eq!(
        added_line(
            RepoSecretKind::Repository,
            &creds.url,
            &Plan::Create(secret),
            "argocd"
        ),
        format!("repository https://***@git.example.com/app added (Secret argocd/{name})\n")
    );
    assert_eq!(
        added_line(
            RepoSecretKind::RepoCreds,
            "https://git.example.com/",
            &Plan::Unchanged("argocd/creds-1".into()),
            "argocd"
        ),
        "credential template https://git.example.com/ unchanged (Secret argocd/creds-1)\n"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever URL and values the flags hold: no panic; a repository that is accepted
        /// reads back from its Secret exactly as given, under an object name Kubernetes takes.
        #[test]
        fn any_flags_give_an_error_or_a_secret_that_reads_back(
            url in ".{0,80}",
            username in proptest::option::of(".{0,20}"),
            password in proptest::option::of(".{0,20}"),
            bearer in proptest::option::of(".{0,20}"),
            project in proptest::option::of("[a-z0-9-]{0,12}"),
            ssh_key in any::<bool>(),
            template in any::<bool>(),
            helm in any::<bool>(),
        ) {
            let flags = AddFlags {
                url,
                creds_template: template,
                repo_type: if helm { RepoType::Helm } else { RepoType::Git },
                name: helm.then(|| "charts".to_owned()),
                project,
                username,
                password: password.map(Sensitive::from),
                bearer_token: bearer.map(Sensitive::from),
                ssh_private_key_path: ssh_key.then(|| PathBuf::from("/id")),
                ..AddFlags::default()
            };
            let Ok(creds) = credentials(&flags, &mut fake_files) else {
                return Ok(());
            };
            let kind = if template { RepoSecretKind::RepoCreds } else { RepoSecretKind::Repository };
            let secret = repo_secret(kind, &creds, "argocd");
            let name = secret.metadata.name.clone().unwrap_or_default();
            prop_assert!(name.len() <= 16 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            let parsed = parse_secret(&secret).expect("an accepted repository parses");
            prop_assert_eq!(RepoCredentials { secret: String::new(), ..parsed }, creds);
        }
    }
}
