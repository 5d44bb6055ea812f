//! Defaults and value parsers that several commands share, in one place.

use std::path::PathBuf;

/// Parses `--repo URL=PATH` (a local clone standing in for a repository URL).
pub fn parse_repo_override(s: &str) -> Result<(String, PathBuf), String> {
    match s.rsplit_once('=') {
        Some((url, path)) if !url.is_empty() && !path.is_empty() => {
            Ok((url.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("expected URL=PATH, got {s:?}")),
    }
}

/// `hostname-pid`, unique per process on a machine and readable in the Lease.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "argosy".into());
    format!("{}-{}", host.trim(), std::process::id())
}

/// `$XDG_CACHE_HOME/argosy` or `~/.cache/argosy`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("argosy")
        .join("repos")
}
