//! The disk side of the repository cache's budget: sizes of directories, and which entries
//! go first when the cache is over it (least recently used).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An evictable directory used this recently may still be read by a tool; it is kept.
pub(crate) const IN_USE: Duration = Duration::from_secs(60);

/// One directory counted against the budget.
pub(crate) struct Entry<O> {
    pub path: PathBuf,
    pub bytes: u64,
    pub last_used: SystemTime,
    /// What owns it (a cached copy), if anything.
    pub owner: Option<O>,
    /// Counted, but never evicted (the copy a request is about to read).
    pub pinned: bool,
}

/// Bytes of the files under `path` (symlinks not followed); 0 if it cannot be read.
pub(crate) fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| size_of(&entry.path()))
        .sum()
}

/// The directories directly under `root`, with their modification times.
pub(crate) fn children(root: &Path) -> Vec<(PathBuf, SystemTime)> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let modified = meta.modified().ok()?;
            meta.is_dir().then(|| (entry.path(), modified))
        })
        .collect()
}

/// The entries to delete, least recently used first, until the rest fit in `max_bytes`.
/// Pinned entries count but stay: when they alone exceed the budget, everything else goes.
pub(crate) fn over_budget<O>(mut entries: Vec<Entry<O>>, max_bytes: u64) -> Vec<Entry<O>> {
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    entries.sort_by_key(|e| e.last_used);
    let mut evicted = Vec::new();
    for entry in entries {
        if total <= max_bytes {
            break;
        }
        if entry.pinned {
            continue;
        }
        total = total.saturating_sub(entry.bytes);
        evicted.push(entry);
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, bytes: u64, age_secs: u64) -> Entry<()> {
        Entry {
            path: PathBuf::from(name),
            bytes,
            last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 - age_secs),
            owner: None,
            pinned: false,
        }
    }

    #[test]
    fn the_least_recently_used_go_first_until_the_rest_fits() {
        let evicted = over_budget(
            vec![
                entry("new", 40, 1),
                entry("old", 30, 100),
                entry("mid", 50, 10),
            ],
            60,
        );
        let names: Vec<_> = evicted
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(names, ["old", "mid"]);
        assert!(over_budget(vec![entry("a", 10, 1)], 10).is_empty());
    }

    #[test]
    fn a_pinned_entry_stays_even_alone_over_the_budget() {
        let pinned = Entry {
            pinned: true,
            ..entry("pinned", 100, 1_000)
        };
        let evicted = over_budget(vec![pinned, entry("other", 10, 1)], 50);
        let names: Vec<_> = evicted
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(names, ["other"]);
    }

    #[test]
    fn sizes_sum_the_files_below() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 20]).unwrap();
        assert_eq!(size_of(dir.path()), 120);
        assert_eq!(children(dir.path()).len(), 1);
        assert_eq!(size_of(&dir.path().join("missing")), 0);
    }
}
