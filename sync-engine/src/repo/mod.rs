//! Git access through gix (no `git` CLI): the [`RepoSource`] behind the generators, and the
//! controller's cache of remote repositories.
//!
//! A revision is resolved to a commit and its tree is read straight from the object
//! database, never checked out. Snapshots are cached by commit id, so a warm
//! directory/file listing costs one ref lookup. Repositories come from local paths
//! (`--repo URL=PATH`, `file://` URLs, read as they are) or are fetched into a cache
//! directory and kept up to date by the policy below.
//!
//! # What is fetched
//!
//! Only what was asked for: each branch, tag or `HEAD` some Application or generator reads,
//! at depth 1 (the commit and its tree; no history is needed to render). A commit id that
//! is no branch or tag tip switches that copy to full history of every branch and tag,
//! once. A copy that has grown to twice its size since it was last cloned (every fetch adds
//! a pack) is cloned afresh and swapped in, so a busy repository does not accumulate packs.
//!
//! A copy is keyed by the repository URL *and* the Secret(s) its credentials come from
//! ([`GitAuth::identity`]): what one tenant's credentials fetched is never served to a
//! reader whose credentials come from elsewhere.
//!
//! # Refresh policy
//!
//! * A request checks the remote's refs at most once per refresh interval (default
//!   [`DEFAULT_REFRESH_INTERVAL`], Argo CD's repository polling period) with one ref listing
//!   (handshake + ls-refs, no pack), and fetches only when a wanted ref there differs from the
//!   cached copy. Between checks requests are served from the cached copy without touching
//!   the network; a commit id already in the copy never needs the network.
//! * [`GitRepos::refresh`] (push webhooks, the refresh annotations) makes the next request
//!   check at once, even during a backoff.
//! * One remote operation per repository at a time, and no lock is held while it runs: a
//!   request that finds one under way is served the confirmed copy if the check was only
//!   periodic, waits for it if it has no confirmed copy (the first clone) or asked for a
//!   refresh the operation covers, and gets the last error at once if the operation is a
//!   retry after a failure. Readers of other repositories never wait.
//! * After a failure the repository is backed off (exponential from
//!   [`Backoff::initial`], capped at [`Backoff::max`]): until the next attempt is due every
//!   request gets the last error without a request to the remote, so a thousand
//!   Applications on a down server make one request per interval. The cache never serves
//!   a copy it could not confirm: its callers hold (they never delete on error) rather than
//!   act on a stale view.
//! * Every operation has connect and stall timeouts ([`Timeouts`]), so a server that hangs
//!   fails it instead of holding it forever.
//!
//! # Disk
//!
//! With [`GitRepos::with_max_bytes`], after every fetch the least recently used copies (and
//! the renderer's materialized trees, [`GitRepos::with_evictable_dirs`]) are deleted until
//! the cache fits. A copy being fetched is never deleted, nor the copy the fetch was for
//! (a repository larger than the budget is still served; everything else goes); a tree
//! used in the last minute is kept (a tool may be reading it). A reader still holding a
//! snapshot of a deleted copy may get a read error: the caller fails that reconcile
//! (nothing is written) and the next one fetches again.

pub(crate) mod disk;
pub(crate) mod transport;

pub use crate::url_policy::redact_url;
use crate::url_policy::{UrlPolicy, credentials};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use argosy_generators::source::{RepoError, RepoSnapshot, RepoSource};
use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::remote::Direction;

pub use transport::{Anonymous, CredentialSource, GitAuth, Timeouts};

/// How often a remote repository's refs are checked unless told otherwise (Argo CD's
/// `timeout.reconciliation` default).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(180);

/// The local name of the remote's `HEAD` (a bare copy's own `HEAD` is not the remote's).
const REMOTE_HEAD: &str = "refs/argosy/HEAD";

/// How long a request waits for another request's operation on the same repository before
/// giving up (the operation's own timeouts end it much sooner unless it is transferring).
const MAX_WAIT: Duration = Duration::from_secs(600);

/// How a repository is backed off after a failed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; doubled after each further one.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 10 s, doubling to 3 minutes (the refresh interval).
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 for the first).
    #[must_use]
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// How every remote is reached, Git repositories and Helm chart repositories and registries
/// alike: the controller builds one and gives it to [`GitRepos`] and
/// [`crate::charts::ChartRepos`].
#[derive(Clone)]
pub struct RemoteSettings {
    /// Where credentials come from (Argo CD's repository Secrets in the controller).
    pub credentials: Arc<dyn CredentialSource>,
    /// Which URLs may be read at all (local paths, plain http, internal hosts).
    pub url_policy: UrlPolicy,
    /// Connect and stall timeouts of every request.
    pub timeouts: Timeouts,
    /// How long a failing remote is left alone.
    pub backoff: Backoff,
    /// How long what a remote offers (refs, an index, tags) is used before it is read again.
    pub refresh_interval: Duration,
}

impl Default for RemoteSettings {
    /// Anonymous, the strict URL policy, default timeouts, backoff and refresh interval.
    fn default() -> Self {
        Self {
            credentials: Arc::new(Anonymous),
            url_policy: UrlPolicy::default(),
            timeouts: Timeouts::default(),
            backoff: Backoff::default(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

/// Repositories by URL: local overrides first, else a copy in `cache_dir`.
pub struct GitRepos {
    /// Credentials, URL policy, timeouts, backoff, refresh interval.
    remote: RemoteSettings,
    local: BTreeMap<String, PathBuf>,
    cache_dir: PathBuf,
    /// Exchanges a GitHub App's identity for an installation token.
    github_tokens: crate::github_app::GitHubAppTokens,
    /// The disk budget of copies and `evictable` directories; `None`: unbounded.
    max_bytes: Option<u64>,
    /// Directories whose entries count against the budget and may be deleted (the
    /// renderer's materialized trees).
    evictable: Vec<PathBuf>,
    /// Remote repositories by [`cache_key`] of URL and credentials.
    remotes: Mutex<HashMap<String, Arc<Remote>>>,
    /// Repositories opened so far, by path: opening reads the config and probes the layout,
    /// too much to repeat on every reconcile. (Refs and objects are still read from disk
    /// on each lookup, so commits written or fetched since are seen.)
    opened: Mutex<HashMap<PathBuf, gix::ThreadSafeRepository>>,
    snapshots: Mutex<SnapshotCache>,
    /// Sizes of directories that never change (materialized trees), by path.
    sizes: Mutex<HashMap<PathBuf, u64>>,
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
    /// Requests answered with the last error during a backoff, without a request.
    pub backed_off: u64,
    /// The last failure (credentials redacted); cleared by the next successful check.
    pub last_error: Option<String>,
}

/// One remote repository (with one set of credentials) in the cache.
struct Remote {
    /// Incremented by [`GitRepos::refresh`]; a check started at generation `g` answers
    /// every refresh up to `g`.
    refresh_generation: AtomicU64,
    state: Mutex<RemoteState>,
    /// Signalled when an operation ends.
    done: Condvar,
    /// Outside `state` so that reading stats never waits.
    stats: Mutex<RepoStats>,
}

struct RemoteState {
    /// The copy's directory (a new one after each re-clone).
    dir: PathBuf,
    /// Bumped by each re-clone, naming the next directory.
    generation: u64,
    /// When the copy was last confirmed against the remote; `None` until a check succeeds
    /// (and again after a failure).
    confirmed_at: Option<Instant>,
    /// The refresh generation the last successful check started at.
    checked_generation: u64,
    /// The refresh generation of the operation under way, if one is.
    in_flight: Option<u64>,
    failure: Option<Failure>,
    /// Branch and tag names (and `HEAD`) asked for: what is fetched.
    wanted: BTreeSet<String>,
    /// Every branch and tag with full history (a commit id was asked for).
    full_history: bool,
    last_used: SystemTime,
    /// Size on disk after the last operation, and right after the last clone.
    bytes: u64,
    cloned_bytes: u64,
}

/// The last failure of a repository and when it may be tried again.
struct Failure {
    error: RepoError,
    failures: u32,
    retry_at: Instant,
    /// [`GitAuth::fingerprint`] of the credentials that failed: new ones (a rotated
    /// password) are tried at once.
    auth: u64,
}

/// A step of keeping a cached copy in line with its remote failed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("creating cache directory {path}: {message}")]
    CreateDir { path: String, message: String },
    #[error("opening the cached copy: {0}")]
    OpenCache(String),
    #[error("connecting: {0}")]
    Connect(String),
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
            Self::Connect(_) => "connect",
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

/// What a request asks of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// A branch, tag or `HEAD`.
    Named(String),
    /// A full commit id.
    Commit(ObjectId),
}

impl Want {
    fn of(revision: &str) -> Self {
        let revision = revision.trim();
        if revision.is_empty() || revision == "HEAD" {
            return Self::Named("HEAD".to_owned());
        }
        match ObjectId::from_hex(revision.as_bytes()) {
            Ok(id) if revision.len() == 40 => Self::Commit(id),
            _ => Self::Named(revision.to_owned()),
        }
    }
}

/// Locks a mutex whose data stays valid if a holder panicked: timestamps and counters only,
/// and a panic mid-operation leaves `in_flight` set on a state nobody waits for forever
/// (waits are bounded by [`MAX_WAIT`]).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GitRepos {
    /// `local` maps repo URLs to local repository paths; other URLs are fetched into
    /// `cache_dir`, anonymously until [`Self::with_remote`].
    #[must_use]
    pub fn new(local: BTreeMap<String, PathBuf>, cache_dir: PathBuf) -> Self {
        Self {
            remote: RemoteSettings::default(),
            local,
            cache_dir,
            github_tokens: crate::github_app::GitHubAppTokens::default(),
            max_bytes: None,
            evictable: Vec::new(),
            remotes: Mutex::default(),
            opened: Mutex::default(),
            snapshots: Mutex::default(),
            sizes: Mutex::default(),
            observer: None,
        }
    }

    /// Tells `observer` of every ref listing and pack download (to count and time them).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn GitRequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Reaches remotes as `remote` says (credentials, URL policy, timeouts, backoff, and
    /// checks each remote repository's refs at most once per refresh interval).
    #[must_use]
    pub fn with_remote(mut self, remote: RemoteSettings) -> Self {
        self.remote = remote;
        self
    }

    /// Fetches only what `policy` allows (default: the strict policy, see [`UrlPolicy`]).
    #[must_use]
    pub fn with_url_policy(mut self, policy: UrlPolicy) -> Self {
        self.remote.url_policy = policy;
        self
    }

    /// Checks each remote repository's refs at most once per `interval`.
    #[must_use]
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.remote.refresh_interval = interval;
        self
    }

    /// Keeps the cache directory, with the `evictable` directories, under `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Counts the entries of `dirs` against the disk budget, deleting the least recently
    /// modified first (the renderer's materialized trees).
    #[must_use]
    pub fn with_evictable_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.evictable = dirs;
        self
    }

    /// Makes the next request for `url` (any spelling [`normalize_repo_url`] equates, any
    /// credentials) check the remote's refs, whatever the interval or backoff. Never waits
    /// for an operation under way.
    pub fn refresh(&self, url: &str) {
        let url = normalize_repo_url(url);
        for (key, remote) in lock(&self.remotes).iter() {
            if key_url(key) == url {
                remote.refresh_generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// What the cache did with the remote repository `url` (summed over the credentials it
    /// was read with); `None` for a repository it has not been asked for, or a local one.
    pub fn stats(&self, url: &str) -> Option<RepoStats> {
        let url = normalize_repo_url(url);
        let remotes: Vec<Arc<Remote>> = lock(&self.remotes)
            .iter()
            .filter(|(key, _)| key_url(key) == url)
            .map(|(_, remote)| remote.clone())
            .collect();
        remotes
            .into_iter()
            .fold(None, |sum: Option<RepoStats>, remote| {
                let stats = lock(&remote.stats).clone();
                Some(match sum {
                    None => stats,
                    Some(mut sum) => {
                        sum.ref_checks += stats.ref_checks;
                        sum.fetches += stats.fetches;
                        sum.backed_off += stats.backed_off;
                        sum.last_error = sum.last_error.or(stats.last_error);
                        sum
                    }
                })
            })
    }

    /// A [`RepoSource`] reading with the credentials of `project`'s Applications
    /// (project-scoped repository Secrets serve only their project).
    #[must_use]
    pub fn for_project<'a>(&'a self, project: &'a str) -> ProjectRepos<'a> {
        ProjectRepos {
            repos: self,
            project,
        }
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

    /// Local path of the repository, fetching a remote one when due.
    fn path_for(&self, url: &str, revision: &str, project: &str) -> Result<PathBuf, RepoError> {
        if let Some(p) = self.local.get(url) {
            return Ok(p.clone());
        }
        self.remote
            .url_policy
            .check(url)
            .map_err(|refusal| Self::err(url, refusal))?;
        if let Some(p) = url.strip_prefix("file://") {
            return Ok(PathBuf::from(p));
        }
        let auth = self
            .remote
            .credentials
            .auth_for(url, project)
            .map_err(|message| Self::err(url, message))?;
        let remote = self.remote(url, &auth);
        let want = Want::of(revision);
        if let Want::Commit(id) = &want {
            // A commit never changes: one already here is served without the network.
            let dir = lock(&remote.state).dir.clone();
            if dir.join("HEAD").exists()
                && self
                    .open(&dir)
                    .is_ok_and(|repo| repo.find_commit(*id).is_ok())
            {
                lock(&remote.state).last_used = SystemTime::now();
                return Ok(dir);
            }
        }
        let (plan, generation) = match self.claim(url, &auth, &remote, &want)? {
            Claim::Serve(dir) => return Ok(dir),
            Claim::Run { plan, generation } => (plan, generation),
        };

        let observe = |kind: GitRequest, ok: bool, took: Duration| {
            if let Some(observer) = &self.observer {
                observer.git_request(url, kind, ok, took);
            }
        };
        // Just before the network: the host's addresses, as the resolver answers now.
        let result = self
            .remote
            .url_policy
            .check_resolved(url)
            .map_err(|refusal| SyncError::Connect(refusal.to_string()))
            .and_then(|()| self.sync(url, &auth, &plan, &observe));

        self.record(url, &auth, &remote, generation, result)
    }

    /// Decides, under the repository's lock, whether a request is served the cached copy,
    /// gets the last error, waits for an operation under way, or runs one itself (then
    /// marked in flight; [`Self::record`] ends it).
    fn claim(
        &self,
        url: &str,
        auth: &GitAuth,
        remote: &Remote,
        want: &Want,
    ) -> Result<Claim, RepoError> {
        let waited_since = Instant::now();
        let mut state = lock(&remote.state);
        loop {
            state.last_used = SystemTime::now();
            let refresh = remote.refresh_generation.load(Ordering::SeqCst);
            let refresh_pending = state.checked_generation < refresh;
            let wanted_known = match want {
                Want::Named(name) => state.wanted.contains(name),
                Want::Commit(_) => state.full_history,
            };
            let due = refresh_pending
                || !wanted_known
                || state
                    .confirmed_at
                    .is_none_or(|at| at.elapsed() >= self.remote.refresh_interval);
            if !due {
                return Ok(Claim::Serve(state.dir.clone()));
            }
            if let Some(covers) = state.in_flight {
                if state.confirmed_at.is_some() && !refresh_pending && wanted_known {
                    // Only a periodic check is under way: the confirmed copy stands.
                    return Ok(Claim::Serve(state.dir.clone()));
                }
                if let Some(failure) = &state.failure
                    && covers >= refresh
                {
                    // A retry after a failure: its outcome is not awaited by everyone.
                    return Err(failure.error.clone());
                }
                if waited_since.elapsed() >= MAX_WAIT {
                    return Err(Self::err(
                        url,
                        "another fetch of this repository is still running",
                    ));
                }
                state = remote
                    .done
                    .wait_timeout(state, Duration::from_secs(1))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            if let Some(failure) = &state.failure
                && !refresh_pending
                && wanted_known
                && failure.auth == auth.fingerprint()
                && Instant::now() < failure.retry_at
            {
                let next_attempt = failure.retry_at.saturating_duration_since(Instant::now());
                lock(&remote.stats).backed_off += 1;
                return Err(RepoError {
                    repo: failure.error.repo.clone(),
                    message: format!(
                        "{} (backed off after {} failure(s); next attempt in {}s)",
                        failure.error.message,
                        failure.failures,
                        next_attempt.as_secs() + 1
                    ),
                });
            }
            match want {
                Want::Named(name) => {
                    state.wanted.insert(name.clone());
                }
                Want::Commit(_) => state.full_history = true,
            }
            state.in_flight = Some(refresh);
            return Ok(Claim::Run {
                plan: Plan {
                    dir: state.dir.clone(),
                    next_dir: self.dir_for(&remote_key(url, auth), state.generation + 1),
                    wanted: state.wanted.clone(),
                    full_history: state.full_history,
                    cloned_bytes: state.cloned_bytes,
                },
                generation: refresh,
            });
        }
    }

    /// Ends the operation [`Self::claim`] started: the copy confirmed (or the failure and
    /// its backoff recorded), waiters woken, the budget enforced.
    fn record(
        &self,
        url: &str,
        auth: &GitAuth,
        remote: &Remote,
        generation: u64,
        result: Result<Done, SyncError>,
    ) -> Result<PathBuf, RepoError> {
        let mut state = lock(&remote.state);
        state.in_flight = None;
        let outcome = match result {
            Ok(done) => {
                state.confirmed_at = Some(Instant::now());
                state.checked_generation = generation;
                state.failure = None;
                state.bytes = done.bytes;
                if done.cloned {
                    state.cloned_bytes = done.bytes;
                }
                let old =
                    (done.dir != state.dir).then(|| std::mem::replace(&mut state.dir, done.dir));
                if let Some(old) = old {
                    state.generation += 1;
                    lock(&self.opened).remove(&old);
                    let _ = std::fs::remove_dir_all(&old);
                }
                let mut counters = lock(&remote.stats);
                count(&mut counters, &Ok(done.synced));
                counters.last_error = None;
                Ok(state.dir.clone())
            }
            Err(e) => {
                let mut error = Self::err(url, &e);
                for secret in auth.secret_values() {
                    error.message = error.message.replace(secret, "***");
                }
                // The caller reports the error; this records which step failed.
                tracing::debug!(repo = %error.repo, category = e.category(), "{}", error.message);
                // The refresh was answered, with this failure: only a newer one skips the
                // backoff.
                state.checked_generation = generation;
                let failures = state.failure.as_ref().map_or(0, |f| f.failures) + 1;
                state.failure = Some(Failure {
                    error: error.clone(),
                    failures,
                    retry_at: Instant::now() + self.remote.backoff.delay(failures),
                    auth: auth.fingerprint(),
                });
                state.confirmed_at = None;
                let mut counters = lock(&remote.stats);
                count(&mut counters, &Err(e));
                counters.last_error = Some(error.to_string());
                Err(error)
            }
        };
        drop(state);
        remote.done.notify_all();
        if let Ok(dir) = &outcome {
            // The copy this request is about to read stays, even if it alone is over the
            // budget: deleting it would fail the request and make the next one clone again.
            self.enforce_budget(dir);
        }
        outcome
    }

    /// The cache entry of `url` read with `auth`, created on first use.
    fn remote(&self, url: &str, auth: &GitAuth) -> Arc<Remote> {
        let key = remote_key(url, auth);
        let mut remotes = lock(&self.remotes);
        remotes
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Remote {
                    refresh_generation: AtomicU64::new(0),
                    state: Mutex::new(RemoteState {
                        dir: self.dir_for(&key, 0),
                        generation: 0,
                        confirmed_at: None,
                        checked_generation: 0,
                        in_flight: None,
                        failure: None,
                        wanted: BTreeSet::new(),
                        full_history: false,
                        last_used: SystemTime::now(),
                        bytes: 0,
                        cloned_bytes: 0,
                    }),
                    done: Condvar::new(),
                    stats: Mutex::default(),
                })
            })
            .clone()
    }

    fn dir_for(&self, key: &str, generation: u64) -> PathBuf {
        self.cache_dir
            .join(format!("{}-{generation}", cache_key(key)))
    }

    /// One visit to the remote: clone into the plan's directory, or check it and fetch what
    /// moved (re-cloning into `next_dir` when the copy has doubled).
    fn sync(
        &self,
        url: &str,
        auth: &GitAuth,
        plan: &Plan,
        observe: &dyn Fn(GitRequest, bool, Duration),
    ) -> Result<Done, SyncError> {
        let password = password(auth, &self.github_tokens).map_err(SyncError::Connect)?;
        let session = |dir: &Path| -> Result<Synced, SyncError> {
            fetch_into(
                url,
                auth,
                password
                    .as_ref()
                    .map(argosy_crds::cluster::Sensitive::expose),
                plan,
                dir,
                self.remote.timeouts,
                &self.cache_dir.join(".ssh"),
                observe,
            )
        };
        let synced = session(&plan.dir)?;
        let bytes = disk::size_of(&plan.dir);
        let grown = plan.cloned_bytes > 0 && bytes > plan.cloned_bytes.saturating_mul(2);
        if synced == Synced::Fetched && grown {
            // Packs pile up with every fetch; a fresh shallow clone drops them.
            match session(&plan.next_dir) {
                Ok(_) => {
                    return Ok(Done {
                        synced,
                        dir: plan.next_dir.clone(),
                        bytes: disk::size_of(&plan.next_dir),
                        cloned: true,
                    });
                }
                Err(e) => tracing::debug!(error = %e, "re-cloning a grown copy failed; keeping it"),
            }
        }
        Ok(Done {
            synced,
            dir: plan.dir.clone(),
            bytes,
            cloned: synced == Synced::Cloned,
        })
    }

    /// Deletes the least recently used copies and evictable entries until the cache fits;
    /// never `serving`, the copy a request was just given.
    fn enforce_budget(&self, serving: &Path) {
        let Some(max_bytes) = self.max_bytes else {
            return;
        };
        let remotes: Vec<Arc<Remote>> = lock(&self.remotes).values().cloned().collect();
        let mut entries = Vec::new();
        let mut known = BTreeSet::new();
        for remote in &remotes {
            let state = lock(&remote.state);
            known.insert(state.dir.clone());
            entries.push(disk::Entry {
                path: state.dir.clone(),
                bytes: state.bytes,
                last_used: state.last_used,
                owner: Some(remote.clone()),
                pinned: state.dir == serving,
            });
        }
        let roots = std::iter::once(self.cache_dir.clone()).chain(self.evictable.iter().cloned());
        for root in roots {
            let is_cache_dir = root == self.cache_dir;
            for (path, modified) in disk::children(&root) {
                // In the cache directory only copies count (`<key>-<generation>`): the
                // renderer's work directory may live there too.
                let copy_like = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split_once('-'))
                    .is_some_and(|(key, generation)| {
                        key.len() == 24
                            && key.bytes().all(|b| b.is_ascii_hexdigit())
                            && generation.bytes().all(|b| b.is_ascii_digit())
                    });
                if known.contains(&path) || (is_cache_dir && !copy_like) {
                    continue;
                }
                let bytes = *lock(&self.sizes)
                    .entry(path.clone())
                    .or_insert_with(|| disk::size_of(&path));
                entries.push(disk::Entry {
                    path,
                    bytes,
                    last_used: modified,
                    owner: None,
                    pinned: false,
                });
            }
        }
        for evicted in disk::over_budget(entries, max_bytes) {
            if let Some(remote) = &evicted.owner {
                let mut state = lock(&remote.state);
                if state.in_flight.is_some() || state.dir != evicted.path {
                    continue;
                }
                // The next request clones afresh, into the next generation's directory.
                state.confirmed_at = None;
                state.bytes = 0;
                state.cloned_bytes = 0;
                state.generation += 1;
                let key = state
                    .dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('-'))
                    .map_or_else(String::new, |(key, _)| key.to_owned());
                state.dir = state
                    .dir
                    .with_file_name(format!("{key}-{}", state.generation));
            } else {
                let recent = evicted
                    .last_used
                    .elapsed()
                    .is_ok_and(|age| age < disk::IN_USE);
                if recent {
                    continue;
                }
                lock(&self.sizes).remove(&evicted.path);
            }
            lock(&self.opened).remove(&evicted.path);
            if let Err(e) = std::fs::remove_dir_all(&evicted.path) {
                tracing::warn!(path = %evicted.path.display(), "evicting from the repository cache: {e}");
            }
        }
    }
}

/// What [`GitRepos::claim`] decided for a request.
enum Claim {
    /// Served this copy, no network.
    Serve(PathBuf),
    /// This request runs the operation.
    Run { plan: Plan, generation: u64 },
}

/// What one operation is to do, decided under the lock and run without it.
struct Plan {
    dir: PathBuf,
    next_dir: PathBuf,
    wanted: BTreeSet<String>,
    full_history: bool,
    cloned_bytes: u64,
}

/// What one operation did.
struct Done {
    synced: Synced,
    /// The copy's directory now (another one after a re-clone).
    dir: PathBuf,
    bytes: u64,
    cloned: bool,
}

/// The cache key of a URL read with some credentials: the normalized URL, the Secrets the
/// credentials come from, and (hashed) any credentials written in the URL itself.
fn remote_key(url: &str, auth: &GitAuth) -> String {
    let in_url = credentials(url).map(cache_key).unwrap_or_default();
    format!("{}\n{}\n{in_url}", normalize_repo_url(url), auth.identity())
}

/// The URL part of a [`remote_key`].
fn key_url(key: &str) -> &str {
    key.split('\n').next().unwrap_or_default()
}

/// Adds what one visit to the remote sent over the network to `stats`.
fn count(stats: &mut RepoStats, result: &Result<Synced, SyncError>) {
    let (checks, fetches) = match result {
        Ok(Synced::Cloned) => (0, 1),
        Ok(Synced::Unchanged) | Err(SyncError::ListRefs(_) | SyncError::Connect(_)) => (1, 0),
        Ok(Synced::Fetched) | Err(SyncError::Fetch(_)) => (1, 1),
        Err(SyncError::CreateDir { .. } | SyncError::OpenCache(_)) => (0, 0),
    };
    stats.ref_checks += checks;
    stats.fetches += fetches;
}

/// [`GitRepos`] reading with the credentials of one project's Applications.
pub struct ProjectRepos<'a> {
    repos: &'a GitRepos,
    project: &'a str,
}

impl RepoSource for ProjectRepos<'_> {
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        self.repos.snapshot_as(repo_url, revision, self.project)
    }
}

impl RepoSource for GitRepos {
    /// Reads with the credentials every project may use (no project-scoped Secret).
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        self.snapshot_as(repo_url, revision, "")
    }
}

impl GitRepos {
    fn snapshot_as(
        &self,
        repo_url: &str,
        revision: &str,
        project: &str,
    ) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        let path = self.path_for(repo_url, revision, project)?;
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

/// The password to use: the Secret's, or a GitHub App's installation token from `tokens`.
fn password(
    auth: &GitAuth,
    tokens: &crate::github_app::GitHubAppTokens,
) -> Result<Option<argosy_crds::cluster::Sensitive>, String> {
    let Some(creds) = &auth.creds else {
        return Ok(None);
    };
    if let Some(password) = &creds.password {
        return Ok(Some(password.clone()));
    }
    match &creds.github_app {
        // The token source's errors name the App and installation already.
        Some(app) => tokens.token(app).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Lists the refs of `url` with `auth`, like `git ls-remote` (`argosy repo add` checks
/// credentials with it). Nothing is cached or written but temporary SSH files.
pub fn ls_remote(url: &str, auth: &GitAuth, policy: &UrlPolicy) -> Result<Vec<String>, RepoError> {
    policy
        .check(url)
        .and_then(|()| policy.check_resolved(url))
        .map_err(|refusal| GitRepos::err(url, refusal))?;
    let scrub = |message: String| {
        let mut error = GitRepos::err(url, message);
        for secret in auth.secret_values() {
            error.message = error.message.replace(secret, "***");
        }
        error
    };
    let scratch = tempfile::tempdir().map_err(|e| scrub(format!("a scratch directory: {e}")))?;
    let repo = gix::init_bare(scratch.path().join("probe"))
        .map_err(|e| scrub(format!("a scratch repository: {e}")))?;
    let password = password(auth, &crate::github_app::GitHubAppTokens::default()).map_err(scrub)?;
    let session = transport::connect(
        url,
        auth,
        password
            .as_ref()
            .map(argosy_crds::cluster::Sensitive::expose),
        Timeouts::default(),
        scratch.path(),
    )
    .map_err(scrub)?;
    let remote = repo
        .remote_at(url)
        .and_then(|r| r.with_refspecs(["+refs/*:refs/*"], Direction::Fetch))
        .map_err(|e| scrub(chain(&e)))?;
    let (prepared, _files) =
        prepare(&remote, session, RefListing::All).map_err(|e| scrub(e.to_string()))?;
    Ok(prepared
        .ref_map()
        .remote_refs
        .iter()
        .map(|r| r.unpack().0.to_string())
        .collect())
}

/// Which refs a ref listing asks the server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefListing {
    /// Only those the refspecs want (the server filters by their prefixes).
    Wanted,
    /// All of them (`ls-remote`).
    All,
}

/// A connection ready to fetch, with the files its ssh process uses (kept until it ends).
type Prepared<'remote, 'repo> = (
    gix::remote::fetch::Prepare<
        'remote,
        'repo,
        Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
    >,
    Vec<tempfile::NamedTempFile>,
);

/// Connects `remote` through `session` and lists its refs (no pack yet). Errors carry what
/// ssh said on its stderr.
fn prepare<'remote, 'repo>(
    remote: &'remote gix::Remote<'repo>,
    session: transport::Session,
    listing: RefListing,
) -> Result<Prepared<'remote, 'repo>, SyncError> {
    let transport::Session {
        transport,
        http_options,
        account,
        files,
        ssh_stderr,
    } = session;
    let mut connection = remote.to_connection_with_transport(transport);
    if let Some(options) = http_options {
        connection.set_transport_options(Box::new(options));
    }
    let connection = match account {
        Some((username, password)) => connection.with_credentials(move |action| match action {
            gix::credentials::helper::Action::Get(context) => {
                Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: username.clone(),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: context.into(),
                }))
            }
            // Nothing to store or forget: the Secret is the store.
            _ => Ok(None),
        }),
        None => connection.with_credentials(|_| Ok(None)),
    };
    let options = gix::remote::ref_map::Options {
        prefix_from_spec_as_filter_on_remote: listing == RefListing::Wanted,
        ..gix::remote::ref_map::Options::default()
    };
    let prepared = connection
        .prepare_fetch(gix::progress::Discard, options)
        .map_err(|e| {
            let mut message = chain(&e);
            if let Some(said) = transport::Session::ssh_diagnostics(ssh_stderr.as_deref()) {
                message = format!("{message} (ssh: {said})");
            }
            SyncError::ListRefs(message)
        })?;
    Ok((prepared, files))
}

/// The refspecs of what `plan` wants, mirrored under the same names (a revision resolves
/// the same way before and after a fetch).
fn refspecs(plan: &Plan) -> Vec<String> {
    if plan.full_history {
        return vec![
            "+refs/heads/*:refs/heads/*".to_owned(),
            "+refs/tags/*:refs/tags/*".to_owned(),
            format!("+HEAD:{REMOTE_HEAD}"),
        ];
    }
    plan.wanted
        .iter()
        .flat_map(|name| {
            if name == "HEAD" {
                return vec![format!("+HEAD:{REMOTE_HEAD}")];
            }
            if name.starts_with("refs/") {
                return vec![format!("+{name}:{name}")];
            }
            vec![
                format!("+refs/heads/{name}:refs/heads/{name}"),
                format!("+refs/tags/{name}:refs/tags/{name}"),
            ]
        })
        // A name that is no valid ref cannot be fetched; it fails to resolve later.
        .filter(|spec| {
            gix::refspec::parse(spec.as_str().into(), gix::refspec::parse::Operation::Fetch).is_ok()
        })
        .collect()
}

/// Fetches what `plan` wants into `dir` (initialized when empty): one ref listing, then a
/// pack only if a wanted ref moved. Each request is reported to `observe`.
#[allow(clippy::too_many_arguments)]
fn fetch_into(
    url: &str,
    auth: &GitAuth,
    password: Option<&str>,
    plan: &Plan,
    dir: &Path,
    timeouts: Timeouts,
    scratch: &Path,
    observe: &dyn Fn(GitRequest, bool, Duration),
) -> Result<Synced, SyncError> {
    let fresh = !dir.join("HEAD").exists();
    let repo = if fresh {
        std::fs::create_dir_all(dir).map_err(|e| SyncError::CreateDir {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        // Isolated like every other open: no environment or global configuration applies.
        gix::ThreadSafeRepository::init_opts(
            dir,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(|e| SyncError::OpenCache(chain(&e)))?
        .to_thread_local()
    } else {
        open(dir).map_err(SyncError::OpenCache)?
    };
    let result = fetch_with(
        &repo, url, auth, password, plan, fresh, timeouts, scratch, observe,
    );
    if fresh && result.is_err() {
        // Leave no half-cloned directory behind: the next attempt must start clean.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn fetch_with(
    repo: &gix::Repository,
    url: &str,
    auth: &GitAuth,
    password: Option<&str>,
    plan: &Plan,
    fresh: bool,
    timeouts: Timeouts,
    scratch: &Path,
    observe: &dyn Fn(GitRequest, bool, Duration),
) -> Result<Synced, SyncError> {
    let remote = repo
        .remote_at(url)
        .map_err(|e| SyncError::OpenCache(format!("remote: {}", chain(&e))))?
        .with_refspecs(refspecs(plan).iter().map(String::as_str), Direction::Fetch)
        .map_err(|e| SyncError::OpenCache(format!("refspecs: {}", chain(&e))))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let started = Instant::now();
    let kind = if fresh {
        GitRequest::Fetch
    } else {
        GitRequest::LsRemote
    };
    let prepared = transport::connect(url, auth, password, timeouts, scratch)
        .map_err(SyncError::Connect)
        .and_then(|session| prepare(&remote, session, RefListing::Wanted));
    if !fresh || prepared.is_err() {
        observe(kind, prepared.is_ok(), started.elapsed());
    }
    let (prepared, _files) = prepared?;
    if !fresh && !refs_moved(repo, prepared.ref_map()) {
        return Ok(Synced::Unchanged);
    }
    let shallow = if plan.full_history {
        if repo.is_shallow().unwrap_or(true) {
            gix::remote::fetch::Shallow::undo()
        } else {
            gix::remote::fetch::Shallow::NoChange
        }
    } else {
        gix::remote::fetch::Shallow::DepthAtRemote(std::num::NonZeroU32::MIN)
    };
    let started = if fresh { started } else { Instant::now() };
    let received = prepared
        .with_shallow(shallow)
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| SyncError::Fetch(chain(&e)));
    observe(GitRequest::Fetch, received.is_ok(), started.elapsed());
    received?;
    Ok(if fresh {
        Synced::Cloned
    } else {
        Synced::Fetched
    })
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
    // A copy in the cache names the remote's HEAD apart from its own (unborn) one.
    let candidates = [
        revision.to_owned(),
        format!("origin/{revision}"),
        if revision == "HEAD" {
            REMOTE_HEAD.to_owned()
        } else {
            format!("refs/tags/{revision}")
        },
    ];
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
        // The second request comes during the backoff: the same error, no request.
        let again = repos.snapshot(url, "HEAD").err().unwrap().to_string();
        assert!(again.contains("backed off after 1 failure"), "{again}");
        assert!(!again.contains("pw"), "credentials leaked: {again}");
        assert_eq!(repos.stats(url).unwrap().backed_off, 1);
        // An explicit refresh tries again at once.
        repos.refresh(url);
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
    fn the_backoff_doubles_up_to_its_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=5).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 60, 60]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn revisions_are_named_refs_or_full_commit_ids() {
        assert_eq!(Want::of(""), Want::Named("HEAD".into()));
        assert_eq!(Want::of("main"), Want::Named("main".into()));
        assert_eq!(Want::of("abc123"), Want::Named("abc123".into()));
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert!(matches!(Want::of(id), Want::Commit(_)));
        let plan = |wanted: &[&str], full_history| Plan {
            dir: PathBuf::new(),
            next_dir: PathBuf::new(),
            wanted: wanted.iter().map(|w| (*w).to_owned()).collect(),
            full_history,
            cloned_bytes: 0,
        };
        assert_eq!(
            refspecs(&plan(&["HEAD", "main"], false)),
            [
                "+HEAD:refs/argosy/HEAD",
                "+refs/heads/main:refs/heads/main",
                "+refs/tags/main:refs/tags/main"
            ]
        );
        assert!(refspecs(&plan(&["bad..name"], false)).is_empty());
        assert_eq!(refspecs(&plan(&["main"], true)).len(), 3);
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
