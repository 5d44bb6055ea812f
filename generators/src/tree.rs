//! [`Tree`]: a repository snapshot with its directory list, cached per generation.
//!
//! A leaf module (it names only the [`RepoSnapshot`] trait of `source`): the
//! per-generation [`Context`](crate::context::Context) caches trees and the Git generator
//! reads them.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use crate::source::RepoSnapshot;

/// A repository snapshot with its directory list, computed once per generation even when
/// a matrix runs the generator once per parameter set of its sibling.
pub(crate) struct Tree {
    pub snapshot: Arc<dyn RepoSnapshot>,
    directories: OnceLock<Vec<String>>,
}

impl Tree {
    pub fn new(snapshot: Arc<dyn RepoSnapshot>) -> Self {
        Self {
            snapshot,
            directories: OnceLock::new(),
        }
    }

    pub fn directories(&self) -> &[String] {
        self.directories
            .get_or_init(|| directories(self.snapshot.files()))
    }
}

/// Every directory holding a tracked file, intermediate ones included, hidden ones
/// (and their subtrees) excluded, in the repo-server's walk order.
fn directories(files: &[String]) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for file in files {
        let Some((parent, _)) = file.rsplit_once('/') else {
            continue;
        };
        let mut end = 0;
        for segment in parent.split('/') {
            if segment.starts_with('.') {
                break;
            }
            end += segment.len();
            dirs.insert(&file[..end]);
            end += 1;
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().map(str::to_owned).collect();
    dirs.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_directories() {
        let files: Vec<String> = [
            "a/b/c.yaml",
            "a/x.yaml",
            "a-b/y",
            ".hidden/z/f",
            "d/.cache/f",
            "top",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(directories(&files), ["a", "a/b", "a-b", "d"]);
    }
}
