//! PLACEHOLDER until the helmrepo branch lands: exact versions only.

/// A version or constraint that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// No available version matches.
    #[error("no version matches {wanted:?}")]
    NoMatch {
        /// The constraint.
        wanted: String,
    },
}

/// The newest of `available` matching `wanted`.
pub fn newest_matching<'a>(
    wanted: &str,
    available: impl IntoIterator<Item = &'a str>,
) -> Result<&'a str, VersionError> {
    available
        .into_iter()
        .find(|v| *v == wanted)
        .ok_or_else(|| VersionError::NoMatch {
            wanted: wanted.to_owned(),
        })
}
