//! How one remote operation reaches its server: the credentials Argo CD's repository
//! Secrets give a URL, applied to the gix transport of that URL's scheme, with a timeout on
//! every step that waits for the network.
//!
//! * HTTP(S) (gix's reqwest backend): basic auth through gix's credential callback (after
//!   the server's 401, or up front with `forceHttpBasicAuth`), `bearerToken` as an
//!   `Authorization` header, a TLS client certificate, extra CAs from `argocd-tls-certs-cm`,
//!   `insecure`, `proxy`/`noProxy`. A fresh client per operation, so a rotated password is
//!   used by the next request without a restart.
//! * SSH (the `ssh` program, as gix always runs it): the private key and the known hosts are
//!   written to 0600 temporary files for the one operation and removed after it; the
//!   user's and the system's SSH configuration are ignored (`-F /dev/null`), host keys are
//!   checked strictly unless `insecure`/`insecureIgnoreHostKey`, and `BatchMode` keeps ssh
//!   from ever prompting.
//! * `git://`: a TCP connection with connect and read timeouts.
//!
//! Timeouts: [`Timeouts::connect`] bounds reaching the server (TCP, TLS, the SSH
//! handshake); [`Timeouts::stall`] bounds any wait for the next bytes (HTTP reads, SSH
//! keep-alives, `git://` reads). A server that accepts connections and then says nothing
//! (a stopped process) fails the operation within `connect + stall`, whatever the size of
//! the transfer.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use argosy_crds::cluster::Sensitive;
use argosy_crds::repository::RepoCredentials;
use gix::protocol::transport::Protocol;
use gix::protocol::transport::client::blocking_io::{Transport, http, ssh};

/// What a remote is read with: the resolved credentials and the trust anchors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitAuth {
    /// The repository's credentials; `None` reads anonymously.
    pub creds: Option<RepoCredentials>,
    /// `argocd-ssh-known-hosts-cm`'s `ssh_known_hosts` (OpenSSH `known_hosts` lines).
    pub known_hosts: String,
    /// `argocd-tls-certs-cm`'s PEM for the URL's host, trusted next to the system roots.
    pub ca_pem: Option<String>,
}

impl GitAuth {
    /// Reads anonymously, trusting only the system roots and no SSH host.
    #[must_use]
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Which Secrets the credentials come from (`""`: anonymous). Part of the cache key: a
    /// copy fetched with one tenant's credentials is never served to a reader whose
    /// credentials come from elsewhere.
    #[must_use]
    pub fn identity(&self) -> &str {
        self.creds.as_ref().map_or("", |c| c.secret.as_str())
    }

    /// A hash of everything that decides whether a connection authenticates: a failure
    /// recorded under one fingerprint does not hold back a request made with another.
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let c = self.creds.as_ref();
        c.and_then(|c| c.username.as_deref()).hash(&mut hasher);
        c.map(RepoCredentials::is_insecure).hash(&mut hasher);
        for value in self.secret_values() {
            value.hash(&mut hasher);
        }
        c.and_then(|c| c.tls_client_cert.as_ref().map(Sensitive::expose))
            .hash(&mut hasher);
        self.known_hosts.hash(&mut hasher);
        self.ca_pem.hash(&mut hasher);
        hasher.finish()
    }

    /// Every secret value, to scrub from error messages before they leave the cache.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        let Some(c) = &self.creds else {
            return Vec::new();
        };
        [
            &c.password,
            &c.bearer_token,
            &c.ssh_private_key,
            &c.tls_client_key,
        ]
        .into_iter()
        .flatten()
        .map(Sensitive::expose)
        .chain(c.github_app.as_ref().map(|app| app.private_key.expose()))
        .filter(|s| s.len() >= 4)
        .collect()
    }
}

/// Where the credentials of a repository come from (the controller: Argo CD's repository
/// Secrets and `ConfigMap`s, watched; the CLI: what it read once).
pub trait CredentialSource: Send + Sync {
    /// The credentials an Application of `project` reads `url` with. An error (a broken
    /// Secret that would serve `url`) fails the read with that message.
    fn auth_for(&self, url: &str, project: &str) -> Result<GitAuth, String>;
}

/// No credentials for anything: public repositories only.
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn auth_for(&self, _url: &str, _project: &str) -> Result<GitAuth, String> {
        Ok(GitAuth::anonymous())
    }
}

/// How long a remote operation may wait for the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Reaching the server: TCP connect, TLS, the SSH handshake.
    pub connect: Duration,
    /// Waiting for the next bytes of an answer.
    pub stall: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 15 s of silence: a hung server fails an operation in 20 s, so a
    /// reconcile of its apps fails well within 30 s.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            stall: Duration::from_secs(15),
        }
    }
}

/// A transport ready for one operation, with what must live as long as it.
pub(super) struct Session {
    pub transport: Box<dyn Transport + Send>,
    /// Options gix hands to the HTTP transport when it connects.
    pub http_options: Option<http::Options>,
    /// Basic-auth account for gix's credential callback (after a 401).
    pub account: Option<(String, String)>,
    /// The key, known-hosts and stderr files of an SSH operation, removed on drop.
    pub files: Vec<tempfile::NamedTempFile>,
    /// Where ssh writes its diagnostics ("Host key verification failed."), which gix
    /// would otherwise pass to the controller's stderr instead of the error.
    pub ssh_stderr: Option<std::path::PathBuf>,
}

impl Session {
    /// What ssh said, to add to an error: its last lines, without noise. Lines naming the
    /// operation's temporary files (the known-hosts file in "Offending key in ..." and
    /// "ssh-keygen -f ... -R" hints) are left out: they differ on every attempt, so the
    /// error (an Application condition) would change with each retry, and they name files
    /// that are gone by the time anyone reads it.
    pub fn ssh_diagnostics(path: Option<&Path>) -> Option<String> {
        let path = path?;
        let text = std::fs::read_to_string(path).ok()?;
        let scratch = path
            .parent()
            .and_then(Path::to_str)
            .filter(|dir| !dir.is_empty());
        let lines: Vec<&str> = text
            .lines()
            // Indented lines are hints ("  remove with:").
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .filter(|l| scratch.is_none_or(|dir| !l.contains(dir)))
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" ");
        (!tail.is_empty()).then(|| tail.chars().take(500).collect())
    }
}

/// Builds the transport for `url` with `auth`. `scratch` holds the temporary SSH files.
/// `password` is the password to use, already exchanged for a token where the credentials
/// name a GitHub App.
pub(super) fn connect(
    url: &str,
    auth: &GitAuth,
    password: Option<&str>,
    timeouts: Timeouts,
    scratch: &Path,
) -> Result<Session, String> {
    let parsed =
        gix::url::parse(gix::bstr::BStr::new(url)).map_err(|e| format!("parsing the URL: {e}"))?;
    let creds = auth.creds.as_ref();
    match parsed.scheme {
        gix::url::Scheme::Http | gix::url::Scheme::Https => {
            let http_options = http_options(auth, password, timeouts)?;
            let transport = http::connect::<http::reqwest::Remote>(parsed, Protocol::V2, false);
            let account = password
                .filter(|_| !creds.is_some_and(|c| c.force_http_basic_auth))
                .map(|password| (http_username(creds), password.to_owned()));
            Ok(Session {
                transport: Box::new(transport),
                http_options: Some(http_options),
                account,
                files: Vec::new(),
                ssh_stderr: None,
            })
        }
        gix::url::Scheme::Ssh => {
            let (command, files) = ssh_command(auth, timeouts, scratch)?;
            let ssh_stderr = files.last().map(|f| f.path().to_owned());
            let options = ssh::connect::Options {
                command: Some(command.into()),
                disallow_shell: false,
                kind: Some(ssh::ProgramKind::Ssh),
            };
            let transport = ssh::connect(parsed, Protocol::V2, options, false)
                .map_err(|e| format!("preparing ssh: {e}"))?;
            Ok(Session {
                transport: Box::new(transport),
                http_options: None,
                account: None,
                files,
                ssh_stderr,
            })
        }
        gix::url::Scheme::Git => {
            let transport = git_daemon(&parsed, timeouts)?;
            Ok(Session {
                transport: Box::new(transport),
                http_options: None,
                account: None,
                files: Vec::new(),
                ssh_stderr: None,
            })
        }
        other => Err(format!("the {other} scheme is not supported for remotes")),
    }
}

/// Argo CD sends tokens as passwords; an empty user name becomes the one GitHub documents
/// for tokens (GitLab and Bitbucket accept any name with a token).
fn http_username(creds: Option<&RepoCredentials>) -> String {
    creds
        .and_then(|c| c.username.clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "x-access-token".to_owned())
}

/// What a repository's credentials and trust anchors ask of an HTTP client: extra CA
/// roots (`argocd-tls-certs-cm`), a client certificate, a proxy, `insecure`. Parsed once, so
/// applying them to a client builder cannot fail. Shared by Git over HTTP(S) and Helm
/// repositories.
#[derive(Clone)]
pub(crate) struct HttpClientSettings {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
    proxy: Option<reqwest::Proxy>,
    insecure: bool,
}

impl HttpClientSettings {
    pub(crate) fn of(auth: &GitAuth) -> Result<Self, String> {
        let creds = auth.creds.as_ref();
        let roots = match &auth.ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(
                |_| "argocd-tls-certs-cm: the certificate for this host is not valid PEM",
            )?,
            None => Vec::new(),
        };
        let identity =
            match creds.and_then(|c| c.tls_client_cert.as_ref().zip(c.tls_client_key.as_ref())) {
                Some((cert, key)) => {
                    let pem = format!("{}\n{}", cert.expose(), key.expose());
                    Some(reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
                    "tlsClientCertData/tlsClientCertKey are not a valid PEM certificate and key"
                })?)
                }
                None => None,
            };
        let proxy = match creds.and_then(|c| c.proxy.as_deref()) {
            Some(proxy) => {
                let no_proxy = creds
                    .and_then(|c| c.no_proxy.as_deref())
                    .and_then(reqwest::NoProxy::from_string);
                Some(
                    reqwest::Proxy::all(proxy)
                        .map_err(|_| "proxy is not a valid proxy URL")?
                        .no_proxy(no_proxy),
                )
            }
            None => None,
        };
        Ok(Self {
            roots,
            identity,
            proxy,
            insecure: creds.is_some_and(RepoCredentials::is_insecure),
        })
    }

    /// The builder with these settings and the timeouts: reqwest's blocking timeout bounds
    /// the connect, each read and each write (a stall, not the length of a large transfer).
    pub(crate) fn apply(
        &self,
        mut builder: reqwest::blocking::ClientBuilder,
        timeouts: Timeouts,
    ) -> reqwest::blocking::ClientBuilder {
        builder = builder
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.connect + timeouts.stall);
        if !self.roots.is_empty() {
            builder = builder.tls_certs_merge(self.roots.clone());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(proxy.clone());
        }
        if self.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder
    }
}

/// The HTTP options of one operation: headers for bearer tokens and forced basic auth, and
/// the reqwest client's TLS, proxy and timeout settings.
fn http_options(
    auth: &GitAuth,
    password: Option<&str>,
    timeouts: Timeouts,
) -> Result<http::Options, String> {
    use base64::Engine as _;
    let creds = auth.creds.as_ref();
    let mut extra_headers = Vec::new();
    if let Some(token) = creds.and_then(|c| c.bearer_token.as_ref()) {
        extra_headers.push(format!("Authorization: Bearer {}", token.expose()));
    } else if let (Some(password), true) =
        (password, creds.is_some_and(|c| c.force_http_basic_auth))
    {
        let pair = format!("{}:{password}", http_username(creds));
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        extra_headers.push(format!("Authorization: Basic {encoded}"));
    }

    // Everything that can fail is parsed here, so the client callback cannot.
    let settings = HttpClientSettings::of(auth)?;
    let configure =
        move |builder: reqwest::blocking::ClientBuilder| Ok(settings.apply(builder, timeouts));
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(configure)),
        configure_request: None,
    };
    Ok(http::Options {
        extra_headers,
        connect_timeout: Some(timeouts.connect),
        backend: Some(std::sync::Arc::new(std::sync::Mutex::new(backend))),
        ..http::Options::default()
    })
}

/// The `ssh` command line of one operation and the temporary files it names.
fn ssh_command(
    auth: &GitAuth,
    timeouts: Timeouts,
    scratch: &Path,
) -> Result<(String, Vec<tempfile::NamedTempFile>), String> {
    let creds = auth.creds.as_ref();
    let mut files = Vec::new();
    let mut command = vec![
        "ssh".to_owned(),
        "-F".to_owned(),
        "/dev/null".to_owned(),
        "-o".to_owned(),
        "BatchMode=yes".to_owned(),
        "-o".to_owned(),
        format!("ConnectTimeout={}", timeouts.connect.as_secs().max(1)),
        "-o".to_owned(),
        // Keep-alives every stall/3 seconds, three unanswered: a hung server is dropped
        // after about `stall`.
        format!(
            "ServerAliveInterval={}",
            (timeouts.stall.as_secs() / 3).max(1)
        ),
        "-o".to_owned(),
        "ServerAliveCountMax=3".to_owned(),
    ];
    if let Some(key) = creds.and_then(|c| c.ssh_private_key.as_ref()) {
        let mut text = key.expose().replace("\r\n", "\n");
        if !text.ends_with('\n') {
            // OpenSSH refuses a key file without the final newline.
            text.push('\n');
        }
        let file = private_file(scratch, "key-", text.as_bytes())?;
        command.extend([
            "-o".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            "-i".to_owned(),
            quoted(file.path())?,
        ]);
        files.push(file);
    }
    if creds.is_some_and(RepoCredentials::is_insecure) {
        command.extend(
            [
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ]
            .map(str::to_owned),
        );
    } else {
        let file = private_file(scratch, "known-hosts-", auth.known_hosts.as_bytes())?;
        command.extend([
            "-o".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            "-o".to_owned(),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "-o".to_owned(),
            format!("UserKnownHostsFile={}", quoted(file.path())?),
        ]);
        files.push(file);
    }
    // Last, so the caller finds it: gix runs the command through `sh -c '<command> "$@"'`,
    // where a redirection may stand before the arguments.
    let stderr = private_file(scratch, "stderr-", b"")?;
    command.push(format!("2>>{}", quoted(stderr.path())?));
    files.push(stderr);
    Ok((command.join(" "), files))
}

/// A path for the shell gix runs the ssh command through, in single quotes.
fn quoted(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .filter(|p| !p.contains('\''))
        .ok_or_else(|| format!("the cache path {} cannot be quoted", path.display()))?;
    Ok(format!("'{text}'"))
}

/// A file only this user can read, removed when dropped.
fn private_file(
    dir: &Path,
    prefix: &str,
    content: &[u8],
) -> Result<tempfile::NamedTempFile, String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| format!("creating a file in {}: {e}", dir.display()))?;
    file.write_all(content)
        .and_then(|()| file.flush())
        .map_err(|e| format!("writing {}: {e}", file.path().display()))?;
    Ok(file)
}

/// A `git://` connection with timeouts (gix's own connector has no read timeout).
fn git_daemon(
    url: &gix::url::Url,
    timeouts: Timeouts,
) -> Result<
    gix::protocol::transport::client::git::blocking_io::Connection<
        std::net::TcpStream,
        std::net::TcpStream,
    >,
    String,
> {
    use std::net::ToSocketAddrs as _;
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port.unwrap_or(9418);
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let stream = std::net::TcpStream::connect_timeout(&address, timeouts.connect)
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeouts.stall))
        .and_then(|()| stream.set_write_timeout(Some(timeouts.stall)))
        .map_err(|e| format!("setting timeouts: {e}"))?;
    let write = stream
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    Ok(
        gix::protocol::transport::client::git::blocking_io::Connection::new(
            stream,
            write,
            Protocol::V2,
            url.path.clone(),
            Some((host.to_owned(), url.port)),
            gix::protocol::transport::client::git::ConnectMode::Daemon,
            false,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_diagnostics_leave_out_the_temporary_files() {
        let scratch = tempfile::tempdir().unwrap();
        let log = private_file(scratch.path(), "stderr-", b"").unwrap();
        let known_hosts = scratch.path().join("known-hosts-x1");
        std::fs::write(
            log.path(),
            format!(
                "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 Please contact your system administrator.\n\
                 Add correct host key in {kh} to get rid of this message.\n\
                 Offending ED25519 key in {kh}:1\n  remove with:\n\
                 \x20 ssh-keygen -f \"{kh}\" -R \"[h]:22\"\n\
                 Host key for [h]:22 has changed and you have requested strict checking.\n\
                 Host key verification failed.\n",
                kh = known_hosts.display()
            ),
        )
        .unwrap();
        let said = Session::ssh_diagnostics(Some(log.path())).unwrap();
        assert_eq!(
            said,
            "Please contact your system administrator. Host key for [h]:22 has changed and \
             you have requested strict checking. Host key verification failed."
        );
        assert_eq!(Session::ssh_diagnostics(None), None);
    }

    fn creds(f: impl FnOnce(&mut RepoCredentials)) -> GitAuth {
        let mut c = RepoCredentials {
            secret: "argocd/repo".into(),
            ..RepoCredentials::default()
        };
        f(&mut c);
        GitAuth {
            creds: Some(c),
            ..GitAuth::default()
        }
    }

    #[test]
    fn ssh_checks_host_keys_strictly_unless_told_not_to() {
        use std::os::unix::fs::PermissionsExt as _;
        let scratch = tempfile::tempdir().unwrap();
        let auth = creds(|c| c.ssh_private_key = Some("KEY".to_owned().into()));
        let (command, files) = ssh_command(&auth, Timeouts::default(), scratch.path()).unwrap();
        assert!(command.contains("StrictHostKeyChecking=yes"), "{command}");
        assert!(command.contains("-F /dev/null") && command.contains("BatchMode=yes"));
        assert_eq!(files.len(), 3, "key, known hosts and stderr");
        assert!(command.ends_with(&format!("2>>'{}'", files[2].path().display())));
        let key = std::fs::read_to_string(files[0].path()).unwrap();
        assert_eq!(key, "KEY\n");
        let mode = files[0].path().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!command.contains("KEY\n"), "the key is passed as a file");
        let paths: Vec<_> = files.iter().map(|f| f.path().to_owned()).collect();
        drop(files);
        assert!(
            paths.iter().all(|p| !p.exists()),
            "removed after the operation"
        );

        let insecure = creds(|c| c.insecure_ignore_host_key = true);
        let (command, _) = ssh_command(&insecure, Timeouts::default(), scratch.path()).unwrap();
        assert!(command.contains("StrictHostKeyChecking=no"), "{command}");
    }

    #[test]
    fn bad_pem_is_an_error_that_quotes_nothing() {
        let auth = creds(|c| {
            c.tls_client_cert = Some("not a cert".to_owned().into());
            c.tls_client_key = Some("s3cret-key".to_owned().into());
        });
        let error = http_options(&auth, None, Timeouts::default())
            .err()
            .unwrap();
        assert!(error.contains("tlsClientCertData"), "{error}");
        assert!(!error.contains("s3cret"));
    }

    #[test]
    fn bearer_tokens_and_forced_basic_auth_are_headers() {
        let bearer = creds(|c| c.bearer_token = Some("tok".to_owned().into()));
        let options = http_options(&bearer, None, Timeouts::default()).unwrap();
        assert_eq!(options.extra_headers, ["Authorization: Bearer tok"]);
        let forced = creds(|c| {
            c.username = Some("u".into());
            c.force_http_basic_auth = true;
        });
        let options = http_options(&forced, Some("p"), Timeouts::default()).unwrap();
        // base64("u:p")
        assert_eq!(options.extra_headers, ["Authorization: Basic dTpw"]);
    }

    #[test]
    fn secret_values_cover_every_credential() {
        let auth = creds(|c| {
            c.password = Some("password-1".to_owned().into());
            c.bearer_token = Some("bearer-1".to_owned().into());
        });
        assert_eq!(auth.secret_values(), ["password-1", "bearer-1"]);
        assert_eq!(auth.identity(), "argocd/repo");
        assert_eq!(GitAuth::anonymous().identity(), "");
    }
}
