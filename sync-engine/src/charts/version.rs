//! The chart version Argo CD deploys for a Helm source's `targetRevision`.
//!
//! Versions and constraints are Masterminds semver v3 as Helm and Argo CD read them, from
//! [`argosy_templates::semver`] (re-exported here: [`parse_version`], [`compare`],
//! [`Constraint`], [`MAX_CONSTRAINT_BYTES`]); this module adds Argo CD's rules for choosing
//! among a repository's versions.
//!
//! ## The version Argo CD deploys ([`newest_matching`])
//!
//! Argo CD resolves a Helm chart's `targetRevision` in the repo-server
//! (`reposerver/repository/repository.go`, `newHelmClientResolveRevision`) and then runs
//! `helm pull --version` with the result:
//!
//! * a revision that parses as a version (`1.2.3`, `v1.2`, `1.0.0-rc.1`) goes to Helm as is
//!   (`versions.IsVersion`); Helm (`IndexFile.Get` for a repository, the same rule for OCI
//!   tags) takes the entry whose version is that exact text, or else the newest entry that
//!   the text read as a constraint matches (`1.2` then means the newest 1.2.x; `1.2.3` also
//!   takes `1.2.3+build`);
//! * a constraint (`^1.2`, `>=1.0.0 <2.0.0`, `1.x`, `*`) picks the newest version that
//!   matches (`util/versions/tags.go`, `MaxVersion`), among the index's entries for the chart
//!   (`util/helm/index.go`, `GetEntries`) or, for OCI, the repository's tags with `_` read as
//!   `+` ([`oci_tag_version`]). Entries that are no semantic version at all are skipped; a
//!   version that looks like one but is malformed (a numeric prerelease identifier with a
//!   leading zero, a number over 64 bits) makes Argo CD refuse the whole resolution, and so
//!   does this module. Among equal versions (`1.0.0` and `1.0.0+b`) the first one listed wins;
//! * anything else (`latest`, `stable`) must be the exact text of an entry or tag;
//! * an empty revision is refused: Argo CD's validation requires a `targetRevision` for a
//!   Helm chart (`util/argo/argo.go`). `latest` has no special meaning (an OCI tag of that
//!   name is found by its text), and `*` is the newest version that is not a prerelease.

use std::cmp::Ordering;

use argosy_templates::semver::shown;
pub use argosy_templates::semver::{
    Constraint, InvalidConstraint, InvalidVersion, MAX_CONSTRAINT_BYTES, Malformed, Version,
    compare, parse_version,
};

/// Why no version could be chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// No version or constraint was given (Argo CD requires a `targetRevision` for a chart).
    #[error(
        "no chart version given: a Helm chart needs a targetRevision (a version or a constraint)"
    )]
    Empty,
    /// The wanted text reads as a version but not as a constraint (it is longer than
    /// [`MAX_CONSTRAINT_BYTES`]).
    #[error(transparent)]
    Constraint(#[from] InvalidConstraint),
    /// The wanted text is neither a version nor a constraint, and no available version is
    /// that text.
    #[error(
        "{wanted:?} is neither a version nor a constraint ({reason}) and none of the {available} available versions is named so"
    )]
    UnknownRevision {
        /// The text given.
        wanted: String,
        /// Why it is no constraint.
        reason: String,
        /// How many versions there were.
        available: usize,
    },
    /// Choosing for a constraint: an available version looks like a semantic version but
    /// is malformed, which makes Argo CD refuse the whole resolution (`MaxVersion`).
    #[error(
        "available version {version:?} is malformed ({reason}); Argo CD refuses to resolve constraint {wanted:?} then"
    )]
    MalformedAvailable {
        /// The constraint.
        wanted: String,
        /// The malformed version.
        version: String,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// No available version matches.
    #[error("no version matches {wanted:?} among the {available} available")]
    NoMatch {
        /// The version or constraint.
        wanted: String,
        /// How many versions there were.
        available: usize,
    },
}

/// Whether `text` reads as a version ([`parse_version`]); Argo CD passes such a
/// `targetRevision` to Helm unresolved (`versions.IsVersion`).
#[must_use]
pub fn is_version(text: &str) -> bool {
    parse_version(text).is_ok()
}

/// An OCI tag as the version it stands for: OCI tags cannot hold `+`, so Helm pushes
/// `1.0.0+build` as the tag `1.0.0_build`, and Argo CD and Helm read every `_` back as `+`.
#[must_use]
pub fn oci_tag_version(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The OCI tag Helm pushes a chart version under (every `+` as `_`).
#[must_use]
pub fn oci_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// The chart version Argo CD deploys for `wanted` (a chart's `targetRevision`) among
/// `available` (an index's versions of the chart, or an OCI repository's tags read with
/// [`oci_tag_version`]); see the module docs for the rules. The result is one of
/// `available`, as written there.
pub fn newest_matching<'a>(
    wanted: &str,
    available: impl IntoIterator<Item = &'a str>,
) -> Result<&'a str, VersionError> {
    let available: Vec<&'a str> = available.into_iter().collect();
    let position = select(wanted, &available)?;
    available
        .get(position)
        .copied()
        .ok_or_else(|| VersionError::NoMatch {
            wanted: shown(wanted),
            available: available.len(),
        })
}

/// [`newest_matching`] as a position in `available`.
pub(crate) fn select(wanted: &str, available: &[&str]) -> Result<usize, VersionError> {
    if wanted.is_empty() {
        return Err(VersionError::Empty);
    }
    if is_version(wanted) {
        // Passed to Helm unresolved: the exact text first, then the version as a constraint
        // (always one: a version's syntax is a subset of a comparison's).
        if let Some(position) = available.iter().position(|a| *a == wanted) {
            return Ok(position);
        }
        let constraint = Constraint::parse(wanted)?;
        return newest(&constraint, available, false);
    }
    match Constraint::parse(wanted) {
        Ok(constraint) => newest(&constraint, available, true),
        Err(e) => available.iter().position(|a| *a == wanted).ok_or_else(|| {
            VersionError::UnknownRevision {
                wanted: shown(wanted),
                reason: e.reason,
                available: available.len(),
            }
        }),
    }
}

/// The first of the highest versions in `available` that `constraint` matches. Texts that
/// are no version are skipped; with `strict` (Argo CD's `MaxVersion`), a malformed one
/// fails the choice, otherwise (Helm's `IndexFile.Get`) it is skipped too.
fn newest(
    constraint: &Constraint,
    available: &[&str],
    strict: bool,
) -> Result<usize, VersionError> {
    let mut best: Option<(usize, Version)> = None;
    for (position, text) in available.iter().enumerate() {
        let version = match parse_version(text) {
            Ok(version) => version,
            Err(InvalidVersion {
                reason: Malformed::NotSemver,
                ..
            }) => continue,
            Err(InvalidVersion { input, reason }) if strict => {
                return Err(VersionError::MalformedAvailable {
                    wanted: shown(constraint.as_str()),
                    version: input,
                    reason,
                });
            }
            Err(_) => continue,
        };
        if constraint.matches(&version)
            && best
                .as_ref()
                .is_none_or(|(_, b)| compare(&version, b) == Ordering::Greater)
        {
            best = Some((position, version));
        }
    }
    best.map(|(position, _)| position)
        .ok_or_else(|| VersionError::NoMatch {
            wanted: shown(constraint.as_str()),
            available: available.len(),
        })
}

#[cfg(test)]
mod tests;
