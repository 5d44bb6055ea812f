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

/// Parses a positive Go duration (`90s`, `30m`, `12h`).
pub fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let duration = argosy_crds::duration::GoDuration::parse(s)
        .map_err(|e| format!("{s:?} is not a duration such as 30m or 12h: {e}"))?
        .to_std();
    if duration.is_zero() {
        return Err(format!("{s:?}: must be longer than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(
            parse_positive_duration("12h"),
            Ok(Duration::from_secs(43200))
        );
        assert_eq!(parse_positive_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("-1h").is_err());
        assert!(parse_positive_duration("soon").is_err());
    }
}
