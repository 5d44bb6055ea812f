//! Path confinement: the snapshot as a file tree whose paths are normalized and whose
//! symlinks are resolved in memory, so that a source path, a value file or a link leading
//! out of the repository is refused before anything touches the disk; and that tree
//! written to disk for the tools, within the tree size limit.

use std::path::{Path, PathBuf};

use argosy_generators::source::RepoSnapshot;
use sha2::Digest;

use super::error::RenderError;

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// Read-only view of a snapshot as a directory tree whose symlinks are resolved in
/// memory, so that where a link leads is decided before anything touches the disk.
pub(super) struct Tree<'a> {
    pub(super) snap: &'a dyn RepoSnapshot,
}

impl Tree<'_> {
    pub(super) fn is_file(&self, path: &str) -> bool {
        self.snap
            .files()
            .binary_search_by(|f| f.as_str().cmp(path))
            .is_ok()
    }

    /// The files under directory `dir` ("" for the root), with their paths relative to it.
    pub(super) fn files_under<'s>(&'s self, dir: &str) -> impl Iterator<Item = (&'s str, &'s str)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let files = self.snap.files();
        let start = files.partition_point(|f| f.as_str() < prefix.as_str());
        let skip = prefix.len();
        files[start..]
            .iter()
            .take_while(move |f| f.starts_with(&prefix))
            .map(move |f| (f.as_str(), &f[skip..]))
    }

    pub(super) fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.files_under(path).next().is_some()
    }

    /// The source's `path` as a repo-relative directory, after following symlinks.
    pub(super) fn app_dir(&self, path: &str) -> Result<String, RenderError> {
        let bad = |reason| RenderError::SourcePath {
            path: path.to_owned(),
            reason,
        };
        if path.starts_with('/') {
            return Err(bad("absolute paths are not allowed"));
        }
        let dir = match self.resolve(path)? {
            Resolved::Inside(dir) => dir,
            Resolved::Outside => return Err(bad("leaves the repository")),
        };
        if !self.is_dir(&dir) {
            return Err(bad("no such directory in the repository"));
        }
        Ok(dir)
    }

    /// Where the symlink `link` leads; an error when that is outside the repository.
    pub(super) fn link_target(&self, link: &str) -> Result<String, RenderError> {
        match self.resolve(link)? {
            Resolved::Inside(target) => Ok(target),
            Resolved::Outside => Err(RenderError::Symlink {
                link: link.to_owned(),
                reason: "points outside the repository",
            }),
        }
    }

    /// Normalizes a repo-relative path, following every symlink on the way (in a link's
    /// target too), the way the kernel would in a checkout of this tree.
    pub(super) fn resolve(&self, path: &str) -> Result<Resolved, RenderError> {
        let mut pending: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => {}
                ".." => {
                    if resolved.pop().is_none() {
                        return Ok(Resolved::Outside);
                    }
                }
                _ => {
                    resolved.push(part);
                    let current = resolved.join("/");
                    if !self.snap.is_symlink(&current) {
                        continue;
                    }
                    hops += 1;
                    let link_err = |reason| RenderError::Symlink {
                        link: current.clone(),
                        reason,
                    };
                    if hops > MAX_LINK_HOPS {
                        return Err(link_err("has too many levels of symlinks"));
                    }
                    let target = String::from_utf8(self.snap.read(&current)?)
                        .map_err(|_| link_err("has a target that is not UTF-8"))?;
                    if target.starts_with('/') {
                        return Ok(Resolved::Outside);
                    }
                    resolved.pop();
                    pending.extend(target.rsplit('/').map(str::to_owned));
                }
            }
        }
        Ok(Resolved::Inside(resolved.join("/")))
    }
}

pub(super) enum Resolved {
    Inside(String),
    Outside,
}

/// `dir/name`, or `name` at the root.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

// ---------------------------------------------------------------------------------------
// The tree on disk, for the tools.

/// Writes the snapshot's tree once per commit to `<work_dir>/trees/<key>/repo`
/// (atomically: built in a temporary directory, then renamed) and returns the
/// `<key>` directory; a tree over `max_tree_bytes` is refused. Symlinks are written as
/// symlinks, after checking that they resolve inside the repository, so a tool following
/// them stays in the tree; one leading out fails the render wherever it is, like Argo CD's
/// out-of-bounds symlink check of the whole checkout.
pub(super) fn materialize(
    work_dir: &Path,
    max_tree_bytes: u64,
    tree: &Tree<'_>,
) -> Result<PathBuf, RenderError> {
    let commit = tree.snap.commit();
    let err = |message: String| RenderError::Materialize {
        commit: commit.to_owned(),
        message,
    };
    // The key is the commit, but only when it is safe as a directory name.
    let key = if !commit.is_empty() && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        commit.to_owned()
    } else {
        hex::encode(&sha2::Sha256::digest(commit.as_bytes())[..16])
    };
    let trees = work_dir.join("trees");
    let dir = trees.join(key);
    if dir.join("repo").is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&trees).map_err(|e| err(format!("{}: {e}", trees.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&trees)
        .map_err(|e| err(format!("{}: {e}", trees.display())))?;
    let root = staging.path().join("repo");
    let mut total = 0u64;
    for file in tree.snap.files() {
        if file
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
        {
            return Err(err(format!("refusing the tree entry {file:?}")));
        }
        let dest = root.join(file);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(format!("{file}: {e}")))?;
        }
        let data = tree.snap.read(file)?;
        total += data.len() as u64;
        if total > max_tree_bytes {
            return Err(RenderError::TooLarge {
                what: format!("the tree of commit {commit}"),
                limit: max_tree_bytes,
            });
        }
        if tree.snap.is_symlink(file) {
            tree.link_target(file)?;
            let target = String::from_utf8(data).map_err(|_| RenderError::Symlink {
                link: file.clone(),
                reason: "has a target that is not UTF-8",
            })?;
            std::os::unix::fs::symlink(target, &dest).map_err(|e| err(format!("{file}: {e}")))?;
        } else {
            std::fs::write(&dest, data).map_err(|e| err(format!("{file}: {e}")))?;
        }
    }
    match std::fs::rename(staging.path(), &dir) {
        Ok(()) => Ok(dir),
        // Another render of the same commit got there first: its tree is as good.
        Err(_) if dir.join("repo").is_dir() => Ok(dir),
        Err(e) => Err(err(format!("{}: {e}", dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use crate::render::testing::*;

    #[test]
    fn source_path_must_stay_in_the_repository() {
        let snap = snapshot(
            &[("app/a.yaml", &cm("a"))],
            &[("alias", "app"), ("up", "app/../.."), ("abs", "/etc")],
        );
        for path in ["../x", "app/../../x", "/app", "up", "abs/x"] {
            let err = render(&snap, &source(path, json!({}))).unwrap_err();
            assert_eq!(err.category(), "source_path", "{path}: {err}");
            assert!(err.to_string().contains(&format!("{path:?}")), "{err}");
        }
        let err = render(&snap, &source("nope", json!({})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "source path \"nope\": no such directory in the repository"
        );
        // A path through an in-repo symlink is the directory it leads to.
        assert_eq!(
            names(&render(&snap, &source("alias", json!({}))).unwrap()),
            ["a"]
        );
        assert_eq!(
            names(&render(&snap, &source("app/..//app/.", json!({}))).unwrap()),
            ["a"]
        );
    }

    #[test]
    fn symlinks_are_followed_inside_and_refused_outside() {
        let inside = snapshot(
            &[("shared/s.yaml", &cm("s")), ("app/a.yaml", &cm("a"))],
            &[
                ("app/link.yaml", "../shared/s.yaml"),
                ("app/dangling.yaml", "../missing.yaml"),
                ("app/dir.yaml", "../shared"),
            ],
        );
        assert_eq!(
            names(&render(&inside, &source("app", json!({}))).unwrap()),
            ["a", "s"]
        );
        let escapes = [
            ("../../etc/passwd.yaml", "app/evil.yaml"),
            ("/etc/passwd.yaml", "app/evil.yaml"),
        ];
        for (target, link) in escapes {
            let snap = snapshot(&[("app/a.yaml", &cm("a"))], &[("app/evil.yaml", target)]);
            // Refused even when excluded: Argo CD checks links before the globs.
            let src = source("app", json!({"directory": {"exclude": "evil.yaml"}}));
            let err = render(&snap, &src).unwrap_err();
            assert_eq!(err.category(), "symlink");
            assert_eq!(
                err.to_string(),
                format!("symlink {link}: points outside the repository")
            );
        }
        // Each link is inside on its own, but following `p/q/d` (-> `e` at the root)
        // makes `x`'s `../..` leave the repository: resolution must follow links.
        let chained = snapshot(
            &[("e/f.yaml", &cm("f"))],
            &[("p/q/d", "../../e"), ("p/q/x.yaml", "d/../../../f.yaml")],
        );
        let src = source("p/q", json!({}));
        let err = render(&chained, &src).unwrap_err().to_string();
        assert_eq!(err, "symlink p/q/x.yaml: points outside the repository");
        let looped = snapshot(&[], &[("a/x.yaml", "y.yaml"), ("a/y.yaml", "x.yaml")]);
        let err = render(&looped, &source("a", json!({})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many levels of symlinks"), "{err}");
    }
}
