//! Value parsers of flags that several commands share.

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
