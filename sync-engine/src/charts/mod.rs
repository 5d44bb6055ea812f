//! Helm charts from Helm repositories (`index.yaml` over HTTP(S)) and OCI registries: a
//! source with `chart` set resolved to one chart version and its package, read as a
//! [`RepoSnapshot`] the renderer treats like a Git tree.
//!
//! Flow of [`ProjectCharts::fetch`]: the URL policy (as for Git) -> the repository Secret's
//! credentials for the Application's project -> the version: an exact version already in
//! the cache is served without the network; otherwise the repository's versions (its
//! `index.yaml`, or the registry's tags) are read, cached for the refresh interval like Git
//! refs, and the newest one matching `targetRevision` (a version or a semver range) is
//! taken -> the package, downloaded once per (repository, credentials, chart, version),
//! its digest checked against the index, stored on disk under the byte budget, and read
//! into memory.
//!
//! Guarantees: a failing repository is asked again only after a backoff (the last error is
//! served meanwhile, with when the next attempt is); a refresh request ([`ChartRepos::refresh`])
//! re-reads the versions at once. No lock is held across network I/O except the one of the
//! repository being read (readers of the same repository wait for that one request).
//! Packages fetched with one tenant's credentials are keyed by those credentials' Secret:
//! never served to a reader whose credentials come from elsewhere. Errors never hold a
//! credential (basic auth is a header, never in a URL shown).

pub mod archive;
mod http;
pub mod index;
mod oci;
pub mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use argosy_generators::source::RepoSnapshot;
use sha2::Digest as _;

pub use archive::{ArchiveError, PackagedChart};

use crate::repo::{GitAuth, RemoteSettings, normalize_repo_url};
use crate::url_policy::redact_url;

/// Largest `index.yaml` read (the Bitnami index, among the largest public ones, is ~15 MiB).
const MAX_INDEX_BYTES: usize = 64 << 20;
/// How many packages stay parsed in memory (the disk keeps the rest).
const PARSED_KEPT: usize = 64;

/// A chart could not be resolved or fetched. The message never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// The URL policy refused the repository.
    #[error("{0}")]
    Refused(String),
    /// The repository Secret for this URL is broken.
    #[error("repository credentials: {0}")]
    Credentials(String),
    /// The source is not a chart source Argosy can read.
    #[error("{0}")]
    Source(String),
    /// Reading the repository's versions failed (network, auth, not an index).
    #[error("Helm repository {repo}: {message}")]
    Versions {
        /// The repository, redacted.
        repo: String,
        /// What failed.
        message: String,
    },
    /// No version of the chart matches `targetRevision`.
    #[error("Helm repository {repo}: {message}")]
    NoVersion {
        /// The repository, redacted.
        repo: String,
        /// Which chart, what was asked and what exists.
        message: String,
    },
    /// Downloading or reading the package failed.
    #[error("chart {chart} {version} from {repo}: {message}")]
    Package {
        /// The repository, redacted.
        repo: String,
        /// The chart.
        chart: String,
        /// The version.
        version: String,
        /// What failed.
        message: String,
    },
}

impl ChartError {
    /// A bounded name for metrics and logs.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::Credentials(_) => "credentials",
            Self::Source(_) => "source",
            Self::Versions { .. } => "versions",
            Self::NoVersion { .. } => "no_version",
            Self::Package { .. } => "package",
        }
    }
}

/// One chart to fetch: `repoURL`, `chart`, `targetRevision` and `helm.passCredentials`.
#[derive(Debug, Clone, Copy)]
pub struct ChartRequest<'a> {
    /// `repoURL`: `https://...` (a Helm repository) or `oci://...`.
    pub repo_url: &'a str,
    /// `chart`.
    pub chart: &'a str,
    /// `targetRevision`: an exact version or a semver range; empty means the newest.
    pub wanted: &'a str,
    /// `helm.passCredentials`: send the repository's credentials to any host the index
    /// names for the package.
    pub pass_credentials: bool,
}

/// A chart version and its package.
#[derive(Debug, Clone)]
pub struct FetchedChart {
    /// The version chosen (what `status.sync.revision` shows for a chart source).
    pub version: String,
    /// The package's files.
    pub package: Arc<PackagedChart>,
}

/// The versions of one repository (its `index.yaml`, or a registry's tags of one chart as
/// an index with no URLs), as last read.
#[derive(Default)]
struct Versions {
    index: Arc<index::Index>,
    read_at: Option<Instant>,
    failures: u32,
    last_error: Option<(String, Instant)>,
    refresh_requested: bool,
}

/// The version chosen, and for a Helm repository where its package is.
#[derive(Clone, Debug)]
struct Chosen {
    version: String,
    url: String,
    digest: String,
}

/// The chart cache shared by every Application's reconcile (one per process).
pub struct ChartRepos {
    cache_dir: PathBuf,
    remote: RemoteSettings,
    max_bytes: u64,
    max_package_bytes: u64,
    /// key (repository + credentials [+ chart for OCI]) -> its versions; the inner lock is
    /// held while they are read.
    versions: Mutex<HashMap<String, Arc<Mutex<Versions>>>>,
    /// package key -> parsed package (at most [`PARSED_KEPT`]).
    parsed: Mutex<HashMap<String, (Arc<PackagedChart>, Instant)>>,
    /// package key -> lock held while it is downloaded.
    downloads: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ChartRepos {
    /// A cache in `cache_dir` with the default [`RemoteSettings`] (anonymous, strict URL
    /// policy), 1 GiB of packages.
    #[must_use]
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            remote: RemoteSettings::default(),
            max_bytes: 1 << 30,
            max_package_bytes: 64 << 20,
            versions: Mutex::default(),
            parsed: Mutex::default(),
            downloads: Mutex::default(),
        }
    }

    /// Reaches repositories and registries as `remote` says (the same settings as Git's:
    /// credentials, URL policy, timeouts, backoff, refresh interval).
    #[must_use]
    pub fn with_remote(mut self, remote: RemoteSettings) -> Self {
        self.remote = remote;
        self
    }

    /// The disk budget of downloaded packages (least recently used go first).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest package (compressed, and again extracted) one chart may be.
    #[must_use]
    pub fn with_max_package_bytes(mut self, max_bytes: u64) -> Self {
        self.max_package_bytes = max_bytes;
        self
    }

    /// The next fetch from `repo_url` reads its versions again, whatever their age (a
    /// refresh annotation or webhook), and a failure's backoff is lifted.
    pub fn refresh(&self, repo_url: &str) {
        let prefix = normalize_repo_url(repo_url);
        for (key, versions) in lock(&self.versions).iter() {
            if key.starts_with(&prefix) {
                let mut v = lock(versions);
                v.refresh_requested = true;
            }
        }
    }

    /// The cache as Applications of `project` see it (project-scoped repository Secrets).
    #[must_use]
    pub fn for_project<'a>(&'a self, project: &'a str) -> ProjectCharts<'a> {
        ProjectCharts {
            charts: self,
            project,
        }
    }
}

/// [`ChartRepos`] for one project.
pub struct ProjectCharts<'a> {
    charts: &'a ChartRepos,
    project: &'a str,
}

/// Whether a source reads an OCI registry: `oci://`, or a repository Secret with
/// `enableOCI` for a URL without a scheme.
fn is_oci(repo_url: &str, auth: &GitAuth) -> bool {
    repo_url.starts_with("oci://")
        || (!repo_url.contains("://") && auth.creds.as_ref().is_some_and(|c| c.enable_oci))
}

/// Whether `wanted` names one version (no range): an index holding it as written picks it
/// (see [`version::newest_matching`]), so a package cached under that text is served.
fn exact_version(wanted: &str) -> Option<&str> {
    version::is_version(wanted).then_some(wanted)
}

impl ProjectCharts<'_> {
    /// Resolves and fetches one chart (blocking: network and disk).
    pub fn fetch(&self, request: ChartRequest<'_>) -> Result<FetchedChart, ChartError> {
        let repos = self.charts;
        let shown = redact_url(request.repo_url);
        if request.chart.is_empty() {
            return Err(ChartError::Source(
                "a Helm repository source needs `chart`".into(),
            ));
        }
        let auth = repos
            .remote
            .credentials
            .auth_for(request.repo_url, self.project)
            .map_err(ChartError::Credentials)?;
        let oci = if is_oci(request.repo_url, &auth) {
            Some(oci::OciChart::new(request.repo_url, request.chart).map_err(ChartError::Source)?)
        } else {
            None
        };
        let policy_url = oci
            .as_ref()
            .map_or_else(|| request.repo_url.to_owned(), oci::OciChart::policy_url);
        let refused = |e: crate::url_policy::UrlRefusal| ChartError::Refused(e.to_string());
        repos
            .remote
            .url_policy
            .check(&policy_url)
            .map_err(refused)?;

        let repo_key = format!(
            "{}\n{}\n{}",
            normalize_repo_url(request.repo_url),
            auth.identity(),
            if oci.is_some() { request.chart } else { "" }
        );
        let package_key = |version: &str| {
            let key = format!("{repo_key}\n{}\n{version}", request.chart);
            hex::encode(&sha2::Sha256::digest(key.as_bytes())[..12])
        };
        // An exact version already downloaded needs no network.
        if let Some(version) = exact_version(request.wanted)
            && let Some(package) = repos.cached(&package_key(version))
        {
            return Ok(FetchedChart {
                version: version.to_owned(),
                package,
            });
        }

        repos
            .remote
            .url_policy
            .check_resolved(&policy_url)
            .map_err(refused)?;
        let chosen = repos.version_of(&repo_key, &request, &auth, oci.as_ref())?;
        let key = package_key(&chosen.version);
        let download = || -> Result<Vec<u8>, String> {
            if let Some(chart) = &oci {
                return oci::Registry::new(&auth, repos.remote.timeouts)?.pull(
                    chart,
                    &chosen.version,
                    repos.max_package_bytes,
                );
            }
            repos
                .remote
                .url_policy
                .check_resolved(&chosen.url)
                .map_err(|e| e.to_string())?;
            let bytes = http::Get {
                auth: &auth,
                timeouts: repos.remote.timeouts,
                repo_url: request.repo_url,
                pass_credentials: request.pass_credentials,
                max_bytes: repos.max_package_bytes,
            }
            .bytes(&chosen.url)?;
            check_digest(&bytes, &chosen.digest)?;
            Ok(bytes)
        };
        let package = repos
            .package(&key, download)
            .map_err(|message| ChartError::Package {
                repo: shown.clone(),
                chart: request.chart.to_owned(),
                version: chosen.version.clone(),
                message: scrub(&message, &auth),
            })?;
        Ok(FetchedChart {
            version: chosen.version,
            package,
        })
    }
}

/// `message` without any of the credentials' secret values.
fn scrub(message: &str, auth: &GitAuth) -> String {
    let mut message = message.to_owned();
    for secret in auth.secret_values() {
        message = message.replace(secret, "***");
    }
    message
}

/// The index's digest (hex sha256, as `helm repo index` writes it), if it gives one.
fn check_digest(bytes: &[u8], digest: &str) -> Result<(), String> {
    let want = digest.trim().trim_start_matches("sha256:");
    if want.is_empty() {
        return Ok(());
    }
    let got = hex::encode(sha2::Sha256::digest(bytes));
    if got.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(format!(
            "the package's sha256 is {got}, the index says {want}"
        ))
    }
}

impl ChartRepos {
    /// The version of the chart `request.wanted` selects, from the repository's versions
    /// (read again when older than the refresh interval or a refresh was asked for).
    fn version_of(
        &self,
        repo_key: &str,
        request: &ChartRequest<'_>,
        auth: &GitAuth,
        oci: Option<&oci::OciChart>,
    ) -> Result<Chosen, ChartError> {
        let shown = redact_url(request.repo_url);
        let slot = lock(&self.versions)
            .entry(repo_key.to_owned())
            .or_default()
            .clone();
        let mut versions = lock(&slot);
        let stale = versions.refresh_requested
            || versions
                .read_at
                .is_none_or(|at| at.elapsed() >= self.remote.refresh_interval);
        if stale {
            if let Some((error, at)) = &versions.last_error {
                let wait = self.remote.backoff.delay(versions.failures);
                if !versions.refresh_requested && at.elapsed() < wait {
                    let left = wait.saturating_sub(at.elapsed()).as_secs().max(1);
                    return Err(ChartError::Versions {
                        repo: shown,
                        message: format!("{error} (next attempt in {left}s)"),
                    });
                }
            }
            versions.refresh_requested = false;
            match self.read_versions(request, auth, oci) {
                Ok(index) => {
                    versions.index = Arc::new(index);
                    versions.read_at = Some(Instant::now());
                    versions.failures = 0;
                    versions.last_error = None;
                }
                Err(message) => {
                    let message = scrub(&message, auth);
                    versions.failures = versions.failures.saturating_add(1);
                    versions.last_error = Some((message.clone(), Instant::now()));
                    return Err(ChartError::Versions {
                        repo: shown,
                        message,
                    });
                }
            }
        }
        let index = versions.index.clone();
        drop(versions);
        let chosen =
            index
                .resolve(request.chart, request.wanted)
                .map_err(|e| ChartError::NoVersion {
                    repo: shown.clone(),
                    message: e.to_string(),
                })?;
        let url = if oci.is_some() {
            String::new()
        } else {
            chosen
                .download_url(request.repo_url)
                .map_err(|e| ChartError::NoVersion {
                    repo: shown,
                    message: e.to_string(),
                })?
        };
        Ok(Chosen {
            version: chosen.version.clone(),
            url,
            digest: chosen.digest.clone().unwrap_or_default(),
        })
    }

    /// Reads the repository's versions (network).
    fn read_versions(
        &self,
        request: &ChartRequest<'_>,
        auth: &GitAuth,
        oci: Option<&oci::OciChart>,
    ) -> Result<index::Index, String> {
        if let Some(chart) = oci {
            let tags = oci::Registry::new(auth, self.remote.timeouts)?.versions(chart)?;
            let versions = tags
                .into_iter()
                .map(|version| index::ChartVersion {
                    name: request.chart.to_owned(),
                    version,
                    ..index::ChartVersion::default()
                })
                .collect();
            return Ok(index::Index {
                entries: [(request.chart.to_owned(), versions)].into(),
                ..index::Index::default()
            });
        }
        let body = http::Get {
            auth,
            timeouts: self.remote.timeouts,
            repo_url: request.repo_url,
            pass_credentials: request.pass_credentials,
            max_bytes: MAX_INDEX_BYTES as u64,
        }
        .bytes(&index::index_url(request.repo_url).map_err(|e| e.to_string())?)?;
        index::Index::parse(&body, MAX_INDEX_BYTES).map_err(|e| e.to_string())
    }

    fn package_path(&self, key: &str) -> PathBuf {
        self.cache_dir.join(key).join("chart.tgz")
    }

    /// A package already parsed or on disk.
    fn cached(&self, key: &str) -> Option<Arc<PackagedChart>> {
        if let Some((package, used)) = lock(&self.parsed).get_mut(key) {
            *used = Instant::now();
            return Some(package.clone());
        }
        let path = self.package_path(key);
        let bytes = std::fs::read(&path).ok()?;
        let package = Arc::new(PackagedChart::read(&bytes, self.max_package_bytes).ok()?);
        touch(&path);
        self.keep_parsed(key, package.clone());
        Some(package)
    }

    fn keep_parsed(&self, key: &str, package: Arc<PackagedChart>) {
        let mut parsed = lock(&self.parsed);
        if parsed.len() >= PARSED_KEPT
            && let Some(oldest) = parsed
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            parsed.remove(&oldest);
        }
        parsed.insert(key.to_owned(), (package, Instant::now()));
    }

    /// The package `key`, downloaded with `download` unless cached; one download per key
    /// at a time.
    fn package(
        &self,
        key: &str,
        download: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Arc<PackagedChart>, String> {
        let gate = lock(&self.downloads)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let _one_at_a_time = lock(&gate);
        if let Some(package) = self.cached(key) {
            return Ok(package);
        }
        let bytes = download()?;
        let package = Arc::new(
            PackagedChart::read(&bytes, self.max_package_bytes).map_err(|e| e.to_string())?,
        );
        let path = self.package_path(key);
        write_atomically(&path, &bytes)?;
        self.keep_parsed(key, package.clone());
        self.enforce_budget(path.parent().unwrap_or(&self.cache_dir));
        Ok(package)
    }

    /// Deletes the least recently used packages until the cache fits its budget (`keep`,
    /// just written, stays).
    fn enforce_budget(&self, keep: &Path) {
        use crate::repo::disk;
        let entries = disk::children(&self.cache_dir)
            .into_iter()
            .map(|(path, modified)| disk::Entry {
                bytes: disk::size_of(&path),
                last_used: modified_of(&path.join("chart.tgz")).unwrap_or(modified),
                pinned: path == keep,
                owner: None::<()>,
                path,
            })
            .collect();
        for evicted in disk::over_budget(entries, self.max_bytes) {
            tracing::info!(path = %evicted.path.display(), bytes = evicted.bytes, "chart cache over budget: package evicted");
            let _ = std::fs::remove_dir_all(&evicted.path);
        }
    }
}

/// Marks a package as used (its file's modification time orders evictions).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn modified_of(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Written to a temporary file first, so a reader never sees half a package.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut file =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| format!("{}: {e}", dir.display()))?;
    file.persist(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// A package is rendered like a Git tree.
impl FetchedChart {
    /// The package as a tree.
    #[must_use]
    pub fn snapshot(&self) -> Arc<dyn RepoSnapshot> {
        self.package.clone()
    }
}

/// Chart dependencies of charts in Git come from the same cache, with the same project's
/// credentials.
impl crate::render::ChartFetcher for ProjectCharts<'_> {
    fn scope(&self) -> &str {
        self.project
    }

    fn fetch_chart(
        &self,
        repository: &str,
        name: &str,
        version: &str,
        pass_credentials: bool,
    ) -> Result<(String, Arc<dyn RepoSnapshot>), String> {
        let fetched = self
            .fetch(ChartRequest {
                repo_url: repository,
                chart: name,
                wanted: version,
                pass_credentials,
            })
            .map_err(|e| e.to_string())?;
        let snapshot = fetched.snapshot();
        Ok((fetched.version, snapshot))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::time::Duration;

    use super::*;
    use crate::charts::archive::tests::tgz;
    use crate::url_policy::UrlPolicy;

    /// A plain HTTP server on loopback answering `GET /<name>` from `files` (404
    /// otherwise, or no answer at all for a `None` body: the connection is dropped), and
    /// counting requests.
    struct Server {
        url: String,
        requests: Arc<AtomicUsize>,
    }

    fn serve(files: Vec<(&'static str, Option<Vec<u8>>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/charts", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let _ = reader.read_line(&mut line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let found = files
                    .iter()
                    .find(|(name, _)| path == format!("/charts/{name}"));
                match found {
                    Some((_, None)) => {}
                    Some((_, Some(body))) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(body);
                    }
                    None => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
            }
        });
        Server { url, requests }
    }

    fn package(version: &str) -> Vec<u8> {
        tgz(&[(
            "web/Chart.yaml",
            &format!("name: web\nversion: {version}\n"),
            tar::EntryType::Regular,
        )])
    }

    fn index(entries: &[(&str, &[u8], &str)]) -> Vec<u8> {
        let mut text = "apiVersion: v1\nentries:\n  web:\n".to_owned();
        for (version, package, file) in entries {
            let digest = hex::encode(sha2::Sha256::digest(package));
            let _ = writeln!(
                text,
                "  - name: web\n    version: {version}\n    digest: {digest}\n    urls: [{file}]"
            );
        }
        text.into_bytes()
    }

    fn cache(dir: &Path) -> ChartRepos {
        ChartRepos::new(dir.to_path_buf()).with_remote(RemoteSettings {
            url_policy: UrlPolicy::permissive(),
            backoff: crate::repo::Backoff {
                initial: Duration::from_secs(60),
                max: Duration::from_secs(60),
            },
            ..RemoteSettings::default()
        })
    }

    fn request<'a>(url: &'a str, wanted: &'a str) -> ChartRequest<'a> {
        ChartRequest {
            repo_url: url,
            chart: "web",
            wanted,
            pass_credentials: false,
        }
    }

    #[test]
    fn versions_are_read_once_per_interval_and_an_exact_cached_version_needs_no_request() {
        let (one, two) = (package("1.0.0"), package("1.1.0"));
        let idx = index(&[
            ("1.1.0", &two, "web-1.1.0.tgz"),
            ("1.0.0", &one, "web-1.0.0.tgz"),
        ]);
        let server = serve(vec![
            ("index.yaml", Some(idx)),
            ("web-1.0.0.tgz", Some(one)),
            ("web-1.1.0.tgz", Some(two)),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let charts = cache(dir.path());
        let project = charts.for_project("default");
        let got = project.fetch(request(&server.url, "^1.0.0")).unwrap();
        assert_eq!(got.version, "1.1.0");
        assert_eq!(got.package.chart_dir(), "web");
        assert_eq!(server.requests.load(Ordering::SeqCst), 2, "index + package");
        // Within the refresh interval the index is not read again; a cached exact version
        // is served from disk, even by a new cache over the same directory.
        assert_eq!(
            project.fetch(request(&server.url, "1.x")).unwrap().version,
            "1.1.0"
        );
        let fresh = cache(dir.path());
        let again = fresh
            .for_project("default")
            .fetch(request(&server.url, "1.1.0"))
            .unwrap();
        assert_eq!(again.version, "1.1.0");
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
        // A refresh request reads the index again.
        charts.refresh(&server.url);
        assert_eq!(
            project
                .fetch(request(&server.url, "1.0.0"))
                .unwrap()
                .version,
            "1.0.0"
        );
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            4,
            "index + the 1.0.0 package"
        );
        let err = project.fetch(request(&server.url, "3.0.0")).unwrap_err();
        assert_eq!(err.category(), "no_version");
        assert!(
            err.to_string().contains("newest of 2: 1.1.0, 1.0.0"),
            "{err}"
        );
    }

    #[test]
    fn internal_and_plain_http_repositories_are_refused_without_a_request() {
        let server = serve(vec![("index.yaml", Some(b"apiVersion: v1\n".to_vec()))]);
        let dir = tempfile::tempdir().unwrap();
        let strict = ChartRepos::new(dir.path().to_path_buf());
        let project = strict.for_project("default");
        for url in [
            server.url.clone(),
            server.url.replace("http://", "https://"),
            "oci://169.254.169.254/charts".to_owned(),
        ] {
            let err = project.fetch(request(&url, "1.0.0")).unwrap_err();
            assert_eq!(err.category(), "refused", "{url}: {err}");
        }
        assert_eq!(server.requests.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_failing_repository_is_asked_again_only_after_its_backoff_or_a_refresh() {
        let server = serve(vec![("index.yaml", None)]);
        let dir = tempfile::tempdir().unwrap();
        let charts = cache(dir.path());
        let project = charts.for_project("default");
        let first = project.fetch(request(&server.url, "1.0.0")).unwrap_err();
        assert_eq!(first.category(), "versions");
        let held = project.fetch(request(&server.url, "1.0.0")).unwrap_err();
        assert!(held.to_string().contains("next attempt in"), "{held}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);
        charts.refresh(&server.url);
        assert!(project.fetch(request(&server.url, "1.0.0")).is_err());
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_package_that_is_not_what_the_index_says_is_refused() {
        let real = package("1.0.0");
        let idx = index(&[("1.0.0", &real, "web-1.0.0.tgz")]);
        let server = serve(vec![
            ("index.yaml", Some(idx)),
            ("web-1.0.0.tgz", Some(package("6.6.6"))),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let charts = cache(dir.path());
        let err = charts
            .for_project("default")
            .fetch(request(&server.url, "1.0.0"))
            .unwrap_err();
        assert_eq!(err.category(), "package");
        assert!(err.to_string().contains("the index says"), "{err}");
        assert_eq!(disk::children(dir.path()).len(), 0, "nothing kept");
    }

    #[test]
    fn packages_stay_under_the_byte_budget_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = package("1.0.0");
        let charts = cache(dir.path()).with_max_bytes(bytes.len() as u64 * 2);
        for key in ["a", "b", "c"] {
            charts.package(key, || Ok(bytes.clone())).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut kept: Vec<String> = disk::children(dir.path())
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["b", "c"]);
    }

    use crate::repo::disk;
}
