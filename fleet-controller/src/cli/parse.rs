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

/// A byte count: a number with an optional suffix, decimal (`K`, `M`, `G`, `T`) or binary
/// (`Ki`, `Mi`, `Gi`, `Ti`), as Kubernetes quantities write them.
pub fn byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("{s:?} is not a byte size (a number, optionally with K, M, G, Ki, Mi, Gi)")
    })?;
    let unit: u64 = match suffix {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => {
            return Err(format!(
                "unknown byte size suffix {other:?} (use K, M, G, Ki, Mi, Gi)"
            ));
        }
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod byte_size_tests {
    use super::byte_size;

    #[test]
    fn byte_sizes_take_quantity_suffixes() {
        assert_eq!(byte_size("512"), Ok(512));
        assert_eq!(byte_size("20Mi"), Ok(20 << 20));
        assert_eq!(byte_size("2G"), Ok(2_000_000_000));
        assert!(byte_size("").is_err());
        assert!(byte_size("1Zi").is_err());
        assert!(byte_size("99999999999999999999").is_err());
        assert!(byte_size("20000000Ti").is_err());
    }
}
