//! Git access through gix (no `git` CLI): the [`RepoSource`] behind the generators, and the
//! controller's cache of remote repositories.
//!
//! A revision is resolved to a commit and its tree is read straight from the object
//! database, never checked out. Snapshots are cached by commit id, so a warm
//! directory/file listing costs one ref lookup. Repositories come from local paths
//! (`--repo URL=PATH`, `file://` URLs, read as they are) or are cloned bare into a cache
//! directory and kept up to date by the refresh policy below.
//!
//! # Refresh policy (remote repositories)
//!
//! * The first request for a remote clones it. After that, a request checks the remote's
//!   refs at most once per refresh interval (default [`DEFAULT_REFRESH_INTERVAL`], Argo CD's
//!   repository polling period) with one ref listing (handshake + ls-refs, no pack), and
//!   fetches only when a branch or tag there differs from the cached copy. Between checks
//!   requests are served from the cached copy without touching the network.
//! * The check covers every branch and tag, not only the requested revision: one check
//!   vouches for every revision served until the next one.
//! * [`GitRepos::refresh`] (the push webhook) makes the next request check at once.
//! * One check, clone or fetch per repository at a time: concurrent requests for the same
//!   repository wait for it and are then served from its result.
//! * A failed check or fetch is returned as the request's error, and every later request
//!   checks again until one succeeds. The cache never serves a copy it could not confirm:
//!   its callers hold (they never delete on error) rather than act on a stale view.

pub use crate::url_policy::redact_url;
use crate::url_policy::{UrlPolicy, credentials};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argosy_generators::source::{RepoError, RepoSnapshot, RepoSource};
use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::remote::Direction;

/// How often a remote repository's refs are checked unless told otherwise (Argo CD's
/// `timeout.reconciliation` default).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(180);

/// What the cache mirrors of a remote: branches and tags under their own names (the layout
/// of `git clone --bare`), so a revision resolves the same way before and after a fetch.
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Repositories by URL: local overrides first, else a bare clone in `cache_dir`.
pub struct GitRepos {
    /// Which URLs may be read at all (local paths, plain http, internal hosts).
    url_policy: UrlPolicy,
    local: BTreeMap<String, PathBuf>,
    cache_dir: PathBuf,
    refresh_interval: Duration,
    /// Remote repositories by [`normalize_repo_url`], so a webhook's spelling of a URL
    /// finds the application's.
    remotes: Mutex<HashMap<String, Arc<Remote>>>,
    /// Repositories opened so far, by path: opening reads the config and probes the layout,
    /// too much to repeat on every reconcile. (Refs and objects are still read from disk
    /// on each lookup, so commits written or fetched since are seen.)
    opened: Mutex<HashMap<PathBuf, gix::ThreadSafeRepository>>,
    snapshots: Mutex<SnapshotCache>,
    /// Who is told about every request to a remote (the controller's `/metrics`), if anyone.
    observer: Option<Arc<dyn GitRequestObserver>>,
}

/// The kinds of request the cache makes to a remote.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum GitRequest {
    /// A ref listing (handshake + ls-refs), Argo CD's `ls-remote`.
    LsRemote,
    /// A pack download: a clone or a fetch.
    Fetch,
}

impl GitRequest {
    /// Argo CD's `request_type` label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LsRemote => "ls-remote",
            Self::Fetch => "fetch",
        }
    }
}

/// Told about every request the cache makes to a remote, after it ends. Implemented by the
/// controller's metrics; the cache itself knows nothing of Prometheus.
pub trait GitRequestObserver: Send + Sync {
    /// One request of `kind` to `repo` (the URL as configured: the observer must drop any
    /// credentials it carries before showing it anywhere) ended, `ok` or not, after `took`.
    fn git_request(&self, repo: &str, kind: GitRequest, ok: bool, took: Duration);
}

/// What the cache did with one remote repository, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoStats {
    /// Ref listings sent to the remote (failed ones included, the clone not).
    pub ref_checks: u64,
    /// Packs requested: the clone, then every fetch after a check saw a ref move.
    pub fetches: u64,
    /// The last failure (credentials redacted); cleared by the next successful check.
    pub last_error: Option<String>,
}

/// One remote repository in the cache.
struct Remote {
    /// Set by [`GitRepos::refresh`]. Outside `sync` so that a webhook never waits for a fetch.
    refresh_requested: AtomicBool,
    /// Held across a check, clone or fetch: one network operation per repository at a time.
    sync: Mutex<SyncState>,
    /// Outside `sync` so that reading stats never waits for a fetch.
    stats: Mutex<RepoStats>,
}

struct SyncState {
    dir: PathBuf,
    /// When the cached copy was last confirmed against the remote; `None` until a clone or
    /// check succeeds (and again after a failure).
    checked_at: Option<Instant>,
}

/// A step of keeping a cached copy in line with its remote failed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("creating cache directory {path}: {message}")]
    CreateDir { path: String, message: String },
    #[error("cloning: {0}")]
    Clone(String),
    #[error("opening the cached copy: {0}")]
    OpenCache(String),
    #[error("listing remote refs: {0}")]
    ListRefs(String),
    #[error("fetching: {0}")]
    Fetch(String),
}

impl SyncError {
    /// A bounded label for logs and metrics.
    fn category(&self) -> &'static str {
        match self {
            Self::CreateDir { .. } | Self::OpenCache(_) => "cache",
            Self::Clone(_) => "clone",
            Self::ListRefs(_) => "ref_check",
            Self::Fetch(_) => "fetch",
        }
    }
}

/// What one visit to the remote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synced {
    Cloned,
    Unchanged,
    Fetched,
}

/// Locks a mutex whose data stays valid if a holder panicked: timestamps and counters only,
/// and a panic mid-fetch leaves `checked_at` unconfirmed, so the next request checks again.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GitRepos {
    /// `local` maps repo URLs to local repository paths; other URLs are cloned into `cache_dir`.
    #[must_use]
    pub fn new(local: BTreeMap<String, PathBuf>, cache_dir: PathBuf) -> Self {
        Self {
            url_policy: UrlPolicy::default(),
            local,
            cache_dir,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            remotes: Mutex::default(),
            opened: Mutex::default(),
            snapshots: Mutex::default(),
            observer: None,
        }
    }

    /// Tells `observer` of every ref listing and pack download (to count and time them).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn GitRequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Fetches only what `policy` allows (default: the strict policy, see [`UrlPolicy`]).
    #[must_use]
    pub fn with_url_policy(mut self, policy: UrlPolicy) -> Self {
        self.url_policy = policy;
        self
    }

    /// Checks each remote repository's refs at most once per `interval`.
    #[must_use]
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Makes the next request for `url` (any spelling [`normalize_repo_url`] equates) check
    /// the remote's refs, whatever the interval. Never waits for a check under way; a
    /// repository not cached yet is cloned on its first request anyway.
    pub fn refresh(&self, url: &str) {
        if let Some(remote) = lock(&self.remotes).get(&normalize_repo_url(url)) {
            remote.refresh_requested.store(true, Ordering::SeqCst);
        }
    }

    /// What the cache did with the remote repository `url`; `None` for a repository it has
    /// not been asked for, or one read from a local path.
    pub fn stats(&self, url: &str) -> Option<RepoStats> {
        let remote = lock(&self.remotes).get(&normalize_repo_url(url)).cloned()?;
        let stats = lock(&remote.stats).clone();
        Some(stats)
    }

    fn err(repo: &str, message: impl std::fmt::Display) -> RepoError {
        let mut message = message.to_string();
        // Transport errors may quote the URL they were given, password included.
        if let Some(credentials) = credentials(repo) {
            message = message.replace(credentials, "***");
        }
        RepoError {
            repo: redact_url(repo),
            message,
        }
    }

    /// Local path of the repository, cloning a remote one or checking it when due.
    fn path_for(&self, url: &str) -> Result<PathBuf, RepoError> {
        if let Some(p) = self.local.get(url) {
            return Ok(p.clone());
        }
        self.url_policy
            .check(url)
            .map_err(|refusal| Self::err(url, refusal))?;
        if let Some(p) = url.strip_prefix("file://") {
            return Ok(PathBuf::from(p));
        }
        let remote = {
            let key = normalize_repo_url(url);
            let mut remotes = lock(&self.remotes);
            let dir = self.cache_dir.join(cache_key(&key));
            remotes
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(Remote {
                        refresh_requested: AtomicBool::new(false),
                        sync: Mutex::new(SyncState {
                            dir,
                            checked_at: None,
                        }),
                        stats: Mutex::default(),
                    })
                })
                .clone()
        };
        let mut state = lock(&remote.sync);
        // Taken before the check: a refresh arriving during it asks for another one.
        let requested = remote.refresh_requested.swap(false, Ordering::SeqCst);
        let due = requested
            || state
                .checked_at
                .is_none_or(|at| at.elapsed() >= self.refresh_interval);
        if !due {
            return Ok(state.dir.clone());
        }
        let observe = |kind: GitRequest, ok: bool, took: Duration| {
            if let Some(observer) = &self.observer {
                observer.git_request(url, kind, ok, took);
            }
        };
        // Just before the network: the host's addresses, as the resolver answers now.
        self.url_policy
            .check_resolved(url)
            .map_err(|refusal| Self::err(url, refusal))?;
        let result = sync_remote(url, &state.dir, &observe);
        let mut counters = lock(&remote.stats);
        count(&mut counters, &result);
        match result {
            Ok(_) => {
                counters.last_error = None;
                state.checked_at = Some(Instant::now());
                Ok(state.dir.clone())
            }
            Err(e) => {
                let error = Self::err(url, &e);
                // The caller reports the error; this records which step failed.
                tracing::debug!(repo = %error.repo, category = e.category(), "{}", error.message);
                counters.last_error = Some(error.to_string());
                state.checked_at = None;
                Err(error)
            }
        }
    }
}

/// Adds what one visit to the remote sent over the network to `stats`.
fn count(stats: &mut RepoStats, result: &Result<Synced, SyncError>) {
    let (checks, fetches) = match result {
        Ok(Synced::Cloned) | Err(SyncError::Clone(_)) => (0, 1),
        Ok(Synced::Unchanged) | Err(SyncError::ListRefs(_)) => (1, 0),
        Ok(Synced::Fetched) | Err(SyncError::Fetch(_)) => (1, 1),
        Err(SyncError::CreateDir { .. } | SyncError::OpenCache(_)) => (0, 0),
    };
    stats.ref_checks += checks;
    stats.fetches += fetches;
}

impl RepoSource for GitRepos {
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        let path = self.path_for(repo_url)?;
        let repo = self.open(&path).map_err(|e| Self::err(repo_url, e))?;
        let commit = resolve(&repo, revision).map_err(|e| Self::err(repo_url, e))?;
        let slot = lock(&self.snapshots).slot((repo_url.to_owned(), commit));
        // Held while the tree is listed: the reconciles that ask for the same commit at
        // once (all of them, after a push or at startup) wait for this one listing.
        let mut built = lock(&slot);
        if let Some(hit) = &*built {
            return Ok(hit.clone());
        }
        let snapshot =
            Arc::new(GitSnapshot::read(repo, commit).map_err(|e| Self::err(repo_url, e))?);
        *built = Some(snapshot.clone());
        Ok(snapshot)
    }
}

/// How many snapshots (repository x commit) stay cached. Each holds the commit's file list;
/// the least recently used goes first, so a repository that moves on does not pile up
/// old commits.
const SNAPSHOT_CACHE_SIZE: usize = 128;

/// One snapshot's place in the cache: empty until its first request has listed the tree.
type SnapshotSlot = Arc<Mutex<Option<Arc<GitSnapshot>>>>;

/// Snapshots by `(repository URL, commit)`, least recently used evicted.
#[derive(Default)]
struct SnapshotCache {
    slots: HashMap<(String, ObjectId), (SnapshotSlot, u64)>,
    /// Incremented on every lookup; a slot's stamp is its last use.
    clock: u64,
}

impl SnapshotCache {
    /// The slot of `key`, created (and the least recently used one evicted) if new.
    fn slot(&mut self, key: (String, ObjectId)) -> SnapshotSlot {
        self.clock += 1;
        let clock = self.clock;
        if let Some((slot, used)) = self.slots.get_mut(&key) {
            *used = clock;
            return slot.clone();
        }
        if self.slots.len() >= SNAPSHOT_CACHE_SIZE
            && let Some(oldest) = self
                .slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            self.slots.remove(&oldest);
        }
        let slot = SnapshotSlot::default();
        self.slots.insert(key, (slot.clone(), clock));
        slot
    }
}

impl GitRepos {
    /// The repository at `path`, opened once and then shared.
    fn open(&self, path: &Path) -> Result<gix::Repository, String> {
        if let Some(repo) = lock(&self.opened).get(path) {
            return Ok(repo.to_thread_local());
        }
        let repo = open(path)?;
        lock(&self.opened).insert(path.to_owned(), repo.clone().into_sync());
        Ok(repo)
    }
}

/// The file list of one commit, with blob ids for on-demand reads.
pub struct GitSnapshot {
    commit: String,
    files: Vec<String>,
    entries: Vec<TreeFile>,
    repo: gix::ThreadSafeRepository,
}

/// The blob behind one path of [`GitSnapshot::files`].
struct TreeFile {
    blob: ObjectId,
    symlink: bool,
}

impl GitSnapshot {
    fn read(repo: gix::Repository, commit: ObjectId) -> Result<Self, String> {
        let (files, entries) = list_files(&repo, commit)?;
        Ok(Self {
            commit: commit.to_string(),
            files,
            entries,
            repo: repo.into_sync(),
        })
    }

    fn index(&self, path: &str) -> Option<usize> {
        self.files.binary_search_by(|f| f.as_str().cmp(path)).ok()
    }
}

/// Every blob and symlink of the commit's tree, sorted by path, with their ids.
fn list_files(
    repo: &gix::Repository,
    commit: ObjectId,
) -> Result<(Vec<String>, Vec<TreeFile>), String> {
    let tree = repo
        .find_commit(commit)
        .map_err(|e| format!("reading commit {commit}: {e}"))?
        .tree()
        .map_err(|e| format!("reading tree of {commit}: {e}"))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| format!("walking tree of {commit}: {e}"))?;
    let mut entries: Vec<(String, TreeFile)> = recorder
        .records
        .into_iter()
        .filter(|e| e.mode.is_blob() || e.mode.is_link())
        .map(|e| {
            let file = TreeFile {
                blob: e.oid,
                symlink: e.mode.is_link(),
            };
            (e.filepath.to_string(), file)
        })
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(entries.into_iter().unzip())
}

impl RepoSnapshot for GitSnapshot {
    fn commit(&self) -> &str {
        &self.commit
    }

    fn files(&self) -> &[String] {
        &self.files
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
        let err = |m: String| RepoError {
            repo: self.commit.clone(),
            message: m,
        };
        let idx = self
            .index(path)
            .ok_or_else(|| err(format!("no file {path} at {}", self.commit)))?;
        let repo = self.repo.to_thread_local();
        let object = repo
            .find_object(self.entries[idx].blob)
            .map_err(|e| err(format!("reading {path}: {e}")))?;
        Ok(object.detach().data)
    }

    fn is_symlink(&self, path: &str) -> bool {
        self.index(path).is_some_and(|i| self.entries[i].symlink)
    }
}

fn open(path: &Path) -> Result<gix::Repository, String> {
    gix::open_opts(path, gix::open::Options::isolated())
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// Resolves a branch, tag, `HEAD` or commit to a commit id (remote-tracking names too).
fn resolve(repo: &gix::Repository, revision: &str) -> Result<ObjectId, String> {
    let revision = if revision.is_empty() {
        "HEAD"
    } else {
        revision
    };
    let candidates = [revision.to_owned(), format!("origin/{revision}")];
    for spec in &candidates {
        if let Ok(id) = repo.rev_parse_single(spec.as_str())
            && let Ok(commit) = id
                .object()
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
                .ok_or(())
        {
            return Ok(commit.id);
        }
    }
    Err(format!("revision {revision:?} not found"))
}

/// Clones `url` bare into `dir`, or checks the cached copy there and fetches if a ref moved.
/// Each request sent to the remote is reported to `observe` (kind, success, duration).
fn sync_remote(
    url: &str,
    dir: &Path,
    observe: &dyn Fn(GitRequest, bool, Duration),
) -> Result<Synced, SyncError> {
    if !dir.join("HEAD").exists() {
        let started = Instant::now();
        let cloned = clone_bare(url, dir);
        // A cache directory that cannot be created never reached the remote.
        if !matches!(cloned, Err(SyncError::CreateDir { .. })) {
            observe(GitRequest::Fetch, cloned.is_ok(), started.elapsed());
        }
        return cloned.map(|()| Synced::Cloned);
    }
    let repo = open(dir).map_err(SyncError::OpenCache)?;
    let remote = repo
        .find_remote("origin")
        .map_err(|e| SyncError::OpenCache(format!("remote origin: {}", chain(&e))))?
        .with_refspecs(MIRROR_REFSPECS, Direction::Fetch)
        .map_err(|e| SyncError::OpenCache(format!("refspecs: {}", chain(&e))))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    // The handshake and ref listing happen here; no pack is requested until `receive`.
    let started = Instant::now();
    let prepared = remote
        .connect(Direction::Fetch)
        .map_err(|e| SyncError::ListRefs(format!("connecting: {}", chain(&e))))
        .and_then(|connection| {
            connection
                .prepare_fetch(
                    gix::progress::Discard,
                    gix::remote::ref_map::Options::default(),
                )
                .map_err(|e| SyncError::ListRefs(chain(&e)))
        });
    observe(GitRequest::LsRemote, prepared.is_ok(), started.elapsed());
    let prepared = prepared?;
    if !refs_moved(&repo, prepared.ref_map()) {
        return Ok(Synced::Unchanged);
    }
    let started = Instant::now();
    let received = prepared
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| SyncError::Fetch(chain(&e)));
    observe(GitRequest::Fetch, received.is_ok(), started.elapsed());
    received.map(|_| Synced::Fetched)
}

/// Whether any remote branch or tag points elsewhere than its copy in `repo` (or has none).
fn refs_moved(repo: &gix::Repository, ref_map: &gix::remote::fetch::RefMap) -> bool {
    ref_map.mappings.iter().any(|mapping| {
        let Some(remote_id) = mapping.remote.as_id() else {
            return false; // unborn on the remote: nothing to fetch
        };
        let local_id = mapping.local.as_ref().and_then(|name| {
            repo.try_find_reference(name.as_bstr())
                .ok()
                .flatten()
                .and_then(|r| r.target().try_id().map(ToOwned::to_owned))
        });
        local_id.as_deref() != Some(remote_id)
    })
}

fn clone_bare(url: &str, dir: &Path) -> Result<(), SyncError> {
    std::fs::create_dir_all(dir).map_err(|e| SyncError::CreateDir {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let result = gix::prepare_clone_bare(url, dir)
        .map_err(|e| format!("preparing: {}", chain(&e)))
        .and_then(|prepare| {
            prepare
                // Persisted, so later fetches of this copy map refs exactly like the clone.
                .configure_remote(|remote| {
                    Ok(remote
                        .with_refspecs(MIRROR_REFSPECS, Direction::Fetch)?
                        .with_fetch_tags(gix::remote::fetch::Tags::None))
                })
                .fetch_only(gix::progress::Discard, &AtomicBool::new(false))
                .map_err(|e| chain(&e))
        });
    if result.is_err() {
        // Leave no half-cloned directory behind: the next attempt must start clean.
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map(|_| ()).map_err(SyncError::Clone)
}

/// `error: cause: cause...`, so a transport failure says why (gix's top-level messages
/// like "Transport handshake failed" hide the connection error underneath).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A filesystem-safe cache directory name for a URL.
fn cache_key(url: &str) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(url.as_bytes());
    digest.iter().take(12).fold(String::new(), |mut out, b| {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// One spelling per repository, for matching URLs (webhook payloads against applications'
/// `repoURL`s, and the cache's keys): scheme and host lowercased, credentials dropped, a
/// trailing `/` and `.git` removed, and scp-like `user@host:path` read as `ssh://host/path`.
/// The path keeps its case: only hosts are case-insensitive in general.
#[must_use]
pub fn normalize_repo_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest.to_owned()),
        None => match url.split_once(':') {
            // scp-like syntax: the colon comes before any slash
            Some((host, path)) if !host.contains('/') => {
                ("ssh".to_owned(), format!("{host}/{path}"))
            }
            _ => return trim_repo_suffix(url).to_owned(),
        },
    };
    let (authority, path) = rest.split_once('/').unwrap_or((&rest, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!(
        "{scheme}://{}/{}",
        host.to_ascii_lowercase(),
        trim_repo_suffix(path)
    )
}

/// `path` without trailing slashes and `.git`.
fn trim_repo_suffix(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    path.strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/')
}

/// Writes `files` (path -> content) as one commit on `reference` of a (new) bare repository.
///
/// `argosy test` materializes the Git trees of test cases with this, so generators read
/// real repositories the same way they do in production.
pub fn write_commit(
    repo_dir: &Path,
    reference: &str,
    files: &BTreeMap<String, String>,
) -> Result<ObjectId, String> {
    let entries = files
        .iter()
        .map(|(path, content)| (path.clone(), TreeEntry::File(content.clone())))
        .collect();
    write_tree_commit(repo_dir, reference, &entries)
}

/// One entry of a commit written by [`write_tree_commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular file with this content.
    File(String),
    /// A symlink to this target.
    Symlink(String),
}

/// [`write_commit`] with symlinks: the fixtures of the renderer's symlink checks.
pub fn write_tree_commit(
    repo_dir: &Path,
    reference: &str,
    entries: &BTreeMap<String, TreeEntry>,
) -> Result<ObjectId, String> {
    let repo = if repo_dir.join("HEAD").exists() {
        open(repo_dir)?
    } else {
        gix::init_bare(repo_dir).map_err(|e| format!("init {}: {e}", repo_dir.display()))?
    };
    let mut editor = repo
        .edit_tree(ObjectId::empty_tree(repo.object_hash()))
        .map_err(|e| format!("tree editor: {e}"))?;
    for (path, entry) in entries {
        let (kind, content) = match entry {
            TreeEntry::File(c) => (gix::object::tree::EntryKind::Blob, c),
            TreeEntry::Symlink(t) => (gix::object::tree::EntryKind::Link, t),
        };
        let blob = repo
            .write_blob(content.as_bytes())
            .map_err(|e| format!("writing {path}: {e}"))?;
        editor
            .upsert(path.as_str(), kind, blob)
            .map_err(|e| format!("adding {path}: {e}"))?;
    }
    let tree = editor.write().map_err(|e| format!("writing tree: {e}"))?;
    let signature = gix::actor::SignatureRef {
        name: "argosy".into(),
        email: "argosy@localhost".into(),
        time: "1700000000 +0000",
    };
    // The next commit of an existing branch has its tip as parent (the ref update
    // must fast-forward).
    let parents: Vec<ObjectId> = repo
        .try_find_reference(reference)
        .ok()
        .flatten()
        .and_then(|mut r| r.peel_to_id().ok())
        .map(gix::Id::detach)
        .into_iter()
        .collect();
    let commit = repo
        .commit_as(
            signature,
            signature,
            reference,
            "argosy test fixture",
            tree,
            parents,
        )
        .map_err(|e| format!("committing to {reference}: {e}"))?;
    Ok(commit.detach())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A bare repository `dir/r.git` with one commit of `pairs` on HEAD, its `file://` URL,
    /// and a repository cache under `dir/cache`.
    fn one_commit_repo(dir: &Path, pairs: &[(&str, &str)]) -> (PathBuf, String, GitRepos) {
        let repo_dir = dir.join("r.git");
        write_commit(&repo_dir, "HEAD", &files(pairs)).unwrap();
        let url = format!("file://{}", repo_dir.display());
        let repos = GitRepos::new(BTreeMap::new(), dir.join("cache"))
            .with_url_policy(UrlPolicy::permissive());
        (repo_dir, url, repos)
    }

    #[test]
    fn snapshot_lists_sorted_files_and_reads_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = dir.path().join("r.git");
        write_commit(
            &repo_dir,
            "HEAD",
            &files(&[("b/x.yaml", "x: 1"), ("a/c/d.json", "{}"), ("top", "t")]),
        )
        .unwrap();
        let repos = GitRepos::new(
            BTreeMap::from([("https://example.com/r.git".to_owned(), repo_dir.clone())]),
            dir.path().join("cache"),
        );
        let snap = repos.snapshot("https://example.com/r.git", "HEAD").unwrap();
        assert_eq!(snap.files(), ["a/c/d.json", "b/x.yaml", "top"]);
        assert_eq!(snap.read("b/x.yaml").unwrap(), b"x: 1");
        assert!(snap.read("nope").is_err());
        assert_eq!(snap.commit().len(), 40);
        assert!(!snap.is_symlink("top"));
    }

    #[test]
    fn a_commit_written_after_the_repository_was_opened_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (repo_dir, url, repos) = one_commit_repo(dir.path(), &[("a", "one")]);
        let first = repos.snapshot(&url, "HEAD").unwrap();
        assert_eq!(first.read("a").unwrap(), b"one");
        let again = repos.snapshot(&url, "HEAD").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "same commit: the cached snapshot"
        );

        write_commit(&repo_dir, "HEAD", &files(&[("a", "two"), ("b", "new")])).unwrap();
        let second = repos.snapshot(&url, "HEAD").unwrap();
        assert_ne!(second.commit(), first.commit());
        assert_eq!(second.read("a").unwrap(), b"two");
        assert_eq!(second.files(), ["a", "b"]);
    }

    #[test]
    fn the_snapshot_cache_evicts_the_least_recently_used() {
        let key = |i: u8| {
            (
                "https://example.com/r.git".to_owned(),
                ObjectId::from([i; 20]),
            )
        };
        let mut cache = SnapshotCache::default();
        let first = cache.slot(key(0));
        for i in 1..u8::try_from(SNAPSHOT_CACHE_SIZE).unwrap() {
            cache.slot(key(i));
        }
        // Touch the oldest: the second oldest is now the one to go.
        assert!(Arc::ptr_eq(&cache.slot(key(0)), &first));
        cache.slot(key(200));
        assert_eq!(cache.slots.len(), SNAPSHOT_CACHE_SIZE);
        assert!(cache.slots.contains_key(&key(0)));
        assert!(!cache.slots.contains_key(&key(1)));
        assert!(cache.slots.contains_key(&key(2)));
    }

    #[test]
    fn snapshot_knows_symlinks_and_reads_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = dir.path().join("r.git");
        let entries = BTreeMap::from([
            ("a/link".to_owned(), TreeEntry::Symlink("../b".to_owned())),
            ("b".to_owned(), TreeEntry::File("x".to_owned())),
        ]);
        write_tree_commit(&repo_dir, "HEAD", &entries).unwrap();
        let url = format!("file://{}", repo_dir.display());
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"))
            .with_url_policy(UrlPolicy::permissive());
        let snap = repos.snapshot(&url, "HEAD").unwrap();
        assert_eq!(snap.files(), ["a/link", "b"]);
        assert!(snap.is_symlink("a/link"));
        assert!(!snap.is_symlink("b"));
        assert!(!snap.is_symlink("missing"));
        assert_eq!(snap.read("a/link").unwrap(), b"../b");
    }

    #[test]
    fn branches_resolve_and_unknown_revision_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (repo_dir, url, repos) = one_commit_repo(dir.path(), &[("a", "main")]);
        write_commit(&repo_dir, "refs/heads/release", &files(&[("a", "release")])).unwrap();
        let snap = repos.snapshot(&url, "release").unwrap();
        assert_eq!(snap.read("a").unwrap(), b"release");
        let err = repos.snapshot(&url, "nope").err().unwrap().to_string();
        assert!(err.contains("revision \"nope\" not found"), "{err}");
    }

    #[test]
    fn unreachable_remote_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"))
            .with_url_policy(UrlPolicy::permissive());
        let err = repos
            .snapshot("http://user:pw@127.0.0.1:9/repo.git", "HEAD")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("repository http://***@127.0.0.1:9/repo.git"),
            "{err}"
        );
        assert!(!err.contains("pw"), "credentials leaked: {err}");
    }

    /// Records what a [`GitRequestObserver`] is told.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, GitRequest, bool)>>);

    impl GitRequestObserver for Recorder {
        fn git_request(&self, repo: &str, kind: GitRequest, ok: bool, _took: Duration) {
            lock(&self.0).push((repo.to_owned(), kind, ok));
        }
    }

    #[test]
    fn requests_to_remotes_are_reported_to_the_observer() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"))
            .with_url_policy(UrlPolicy::permissive())
            .with_observer(recorder.clone());
        let url = "http://user:pw@127.0.0.1:9/repo.git";
        assert!(repos.snapshot(url, "HEAD").is_err());
        assert!(repos.snapshot(url, "HEAD").is_err());
        // A local repository never reaches a remote.
        let local = dir.path().join("local.git");
        write_commit(&local, "HEAD", &files(&[("a", "1")])).unwrap();
        let local_url = format!("file://{}", local.display());
        repos.snapshot(&local_url, "HEAD").unwrap();

        let seen = lock(&recorder.0).clone();
        assert_eq!(
            seen,
            [
                (url.to_owned(), GitRequest::Fetch, false),
                (url.to_owned(), GitRequest::Fetch, false)
            ]
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("https://u:p@h/x"), "https://***@h/x");
        assert_eq!(redact_url("https://h/x"), "https://h/x");
        assert_eq!(redact_url("https://h/x@y"), "https://h/x@y");
        // Regression (found by the property tests): userinfo that also occurs in the scheme
        // was replaced there, leaving the credential in the URL.
        assert_eq!(redact_url("https://h@a/org/repo"), "https://***@a/org/repo");
        assert_eq!(redact_url("ssh://ssh:tok@a/r"), "ssh://***@a/r");
        let err = GitRepos::err("https://u:p@h/x", "GET https://u:p@h/x/info/refs failed");
        assert_eq!(err.repo, "https://***@h/x");
        assert_eq!(err.message, "GET https://***@h/x/info/refs failed");
    }

    #[test]
    fn normalized_urls_equate_the_spellings_of_one_repository() {
        let same = [
            "https://github.com/org/Repo",
            "https://github.com/org/Repo.git",
            "https://github.com/org/Repo/",
            "HTTPS://GitHub.COM/org/Repo.git/",
            " https://user:token@github.com/org/Repo.git ",
        ];
        for url in same {
            assert_eq!(
                normalize_repo_url(url),
                "https://github.com/org/Repo",
                "{url}"
            );
        }
        for url in [
            "git@github.com:org/Repo.git",
            "ssh://git@GitHub.com/org/Repo",
        ] {
            assert_eq!(
                normalize_repo_url(url),
                "ssh://github.com/org/Repo",
                "{url}"
            );
        }
        // Paths keep their case; other hosts, schemes and ports stay apart.
        assert_ne!(
            normalize_repo_url("https://github.com/org/repo"),
            normalize_repo_url("https://github.com/org/Repo")
        );
        assert_eq!(
            normalize_repo_url("git://github.com:9418/org/Repo.git"),
            "git://github.com:9418/org/Repo"
        );
        assert_eq!(
            normalize_repo_url("file:///srv/repo.git"),
            "file:///srv/repo"
        );
        assert_eq!(normalize_repo_url("/srv/repo.git/"), "/srv/repo");
    }

    #[test]
    fn stats_count_what_went_over_the_network() {
        let mut stats = RepoStats::default();
        count(&mut stats, &Ok(Synced::Cloned));
        count(&mut stats, &Ok(Synced::Unchanged));
        count(&mut stats, &Ok(Synced::Fetched));
        count(&mut stats, &Err(SyncError::ListRefs("refused".into())));
        count(&mut stats, &Err(SyncError::OpenCache("gone".into())));
        assert_eq!((stats.ref_checks, stats.fetches), (3, 2));
    }

    #[test]
    fn refresh_and_stats_ignore_unknown_and_local_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let (_repo_dir, url, repos) = one_commit_repo(dir.path(), &[("a", "1")]);
        repos.snapshot(&url, "HEAD").unwrap();
        repos.refresh(&url);
        repos.refresh("https://example.com/never-seen.git");
        assert_eq!(repos.stats(&url), None);
        assert_eq!(repos.stats("https://example.com/never-seen.git"), None);
    }
}
