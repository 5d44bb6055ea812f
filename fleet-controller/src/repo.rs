//! Git access through gix (no `git` CLI): the [`RepoSource`] behind the generators.
//!
//! A revision is resolved to a commit and its tree is read straight from the object
//! database, never checked out. Snapshots are cached by commit id, so a warm
//! directory/file listing costs one ref lookup. Repositories come from local paths
//! (`--repo URL=PATH`, `file://` URLs) or are cloned bare into a cache directory and
//! fetched once per [`GitRepos`] (the controller's repo cache refines this).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use argosy_generators::source::{RepoError, RepoSnapshot, RepoSource};
use gix::ObjectId;

/// Repositories by URL: local overrides first, else a bare clone in `cache_dir`.
pub struct GitRepos {
    local: BTreeMap<String, PathBuf>,
    cache_dir: PathBuf,
    /// Remote URLs already fetched by this instance.
    fetched: Mutex<HashMap<String, PathBuf>>,
    snapshots: Mutex<HashMap<(String, ObjectId), Arc<GitSnapshot>>>,
}

impl GitRepos {
    /// `local` maps repo URLs to local repository paths; other URLs are cloned into `cache_dir`.
    pub fn new(local: BTreeMap<String, PathBuf>, cache_dir: PathBuf) -> Self {
        Self {
            local,
            cache_dir,
            fetched: Mutex::default(),
            snapshots: Mutex::default(),
        }
    }

    fn err(repo: &str, message: impl std::fmt::Display) -> RepoError {
        RepoError {
            repo: redact_url(repo),
            message: message.to_string(),
        }
    }

    /// Local path of the repository, cloning or fetching a remote one first.
    fn path_for(&self, url: &str) -> Result<PathBuf, RepoError> {
        if let Some(p) = self.local.get(url) {
            return Ok(p.clone());
        }
        if let Some(p) = url.strip_prefix("file://") {
            return Ok(PathBuf::from(p));
        }
        let mut fetched = self
            .fetched
            .lock()
            .map_err(|_| Self::err(url, "repo cache lock poisoned"))?;
        if let Some(p) = fetched.get(url) {
            return Ok(p.clone());
        }
        let dir = self.cache_dir.join(cache_key(url));
        fetch_bare(url, &dir).map_err(|e| Self::err(url, e))?;
        fetched.insert(url.to_owned(), dir.clone());
        Ok(dir)
    }
}

impl RepoSource for GitRepos {
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        let path = self.path_for(repo_url)?;
        let repo = open(&path).map_err(|e| Self::err(repo_url, e))?;
        let commit = resolve(&repo, revision).map_err(|e| Self::err(repo_url, e))?;
        let key = (repo_url.to_owned(), commit);
        if let Some(hit) = self
            .snapshots
            .lock()
            .ok()
            .and_then(|s| s.get(&key).cloned())
        {
            return Ok(hit);
        }
        let snapshot =
            Arc::new(GitSnapshot::read(repo, commit).map_err(|e| Self::err(repo_url, e))?);
        if let Ok(mut s) = self.snapshots.lock() {
            s.insert(key, snapshot.clone());
        }
        Ok(snapshot)
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

/// Clones `url` bare into `dir`, or fetches into it when it exists.
fn fetch_bare(url: &str, dir: &Path) -> Result<(), String> {
    let interrupt = AtomicBool::new(false);
    if dir.join("HEAD").exists() {
        let repo = open(dir)?;
        let remote = repo
            .find_remote("origin")
            .map_err(|e| format!("finding remote: {e}"))?;
        remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| format!("connecting: {}", chain(&e)))?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| format!("preparing fetch: {}", chain(&e)))?
            .receive(gix::progress::Discard, &interrupt)
            .map_err(|e| format!("fetching: {}", chain(&e)))?;
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = gix::prepare_clone_bare(url, dir)
        .map_err(|e| format!("preparing clone: {}", chain(&e)))
        .and_then(|mut p| {
            p.fetch_only(gix::progress::Discard, &interrupt)
                .map_err(|e| format!("cloning: {}", chain(&e)))
        });
    if result.is_err() {
        // Leave no half-cloned directory behind: the next attempt must start clean.
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map(|_| ())
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
    let digest = sha2::Sha256::digest(url.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Removes `user:password@` from a URL before it appears in a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
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
    let commit = repo
        .commit_as(
            signature,
            signature,
            reference,
            "argosy test fixture",
            tree,
            Vec::<ObjectId>::new(),
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
    fn snapshot_knows_symlinks_and_reads_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = dir.path().join("r.git");
        let entries = BTreeMap::from([
            ("a/link".to_owned(), TreeEntry::Symlink("../b".to_owned())),
            ("b".to_owned(), TreeEntry::File("x".to_owned())),
        ]);
        write_tree_commit(&repo_dir, "HEAD", &entries).unwrap();
        let url = format!("file://{}", repo_dir.display());
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"));
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
        let repo_dir = dir.path().join("r.git");
        write_commit(&repo_dir, "HEAD", &files(&[("a", "main")])).unwrap();
        write_commit(&repo_dir, "refs/heads/release", &files(&[("a", "release")])).unwrap();
        let url = format!("file://{}", repo_dir.display());
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"));
        let snap = repos.snapshot(&url, "release").unwrap();
        assert_eq!(snap.read("a").unwrap(), b"release");
        let err = repos.snapshot(&url, "nope").err().unwrap().to_string();
        assert!(err.contains("revision \"nope\" not found"), "{err}");
    }

    #[test]
    fn unreachable_remote_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let repos = GitRepos::new(BTreeMap::new(), dir.path().join("cache"));
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

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("https://u:p@h/x"), "https://***@h/x");
        assert_eq!(redact_url("https://h/x"), "https://h/x");
    }
}
