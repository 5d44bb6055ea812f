//! [`Version`]: Sprig's `*semver.Version`, a value templates can hold: a version read by
//! [`crate::semver`], with the text it was read from.
//!
//! A leaf of the function library (it names only `crate::semver`): the Go engine's `Value`
//! holds versions and the `semver` functions create them.

use std::fmt;

use crate::semver::{self, Malformed};

/// A parsed semantic version (Masterminds/semver's `Version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) version: semver::Version,
    /// The text it was read from (`.Original`).
    pub(crate) original: String,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.version, f)
    }
}

impl Version {
    /// Masterminds' `NewVersion`, with the error texts of the Masterminds version Sprig's
    /// tests were written against (v3.2/v3.3).
    pub(crate) fn parse(input: &str) -> Result<Version, String> {
        match semver::parse_version(input) {
            Ok(version) => Ok(Version {
                version,
                original: input.to_owned(),
            }),
            Err(e) => Err(match e.reason {
                Malformed::NotSemver => "Invalid Semantic Version",
                Malformed::Overflow => {
                    "Error parsing version segment: number too large to fit in target type"
                }
                Malformed::LeadingZero => "Version segment starts with 0",
            }
            .to_owned()),
        }
    }
}
