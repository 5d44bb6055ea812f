//! A Helm repository's `index.yaml`: the charts it offers, their versions and where each
//! version's archive is ([`Index`], [`ChartVersion`]).
//!
//! * [`Index::parse`] reads untrusted bytes: a size limit first (Argo CD's default is
//!   [`ARGO_CD_MAX_INDEX_BYTES`]; where Argo CD silently truncates a larger index, this refuses
//!   it), the YAML depth guard, then YAML (or JSON, which Helm also serves). Fields Argosy
//!   does not use are ignored; `null` entries are skipped as Helm skips them; an empty file or
//!   one without `apiVersion` is refused as Helm refuses it. Scalars Helm reads as text
//!   (`version: 1.0`, `appVersion: 2` unquoted) are kept as text, as YAML wrote them as far as a
//!   number allows (`1.0` becomes `1`: quote versions).
//! * [`Index::resolve`] picks the version Argo CD deploys for a `targetRevision`
//!   ([`super::version::newest_matching`]); when none matches, the error lists the newest
//!   versions there are.
//! * [`ChartVersion::download_url`] resolves the version's first URL against the repository
//!   URL as Helm does (`repo.ResolveReferenceURL`): an absolute URL stays as it is; a relative
//!   one is taken relative to the repository URL with a trailing slash (so
//!   `https://h/charts` + `web-1.0.0.tgz` is `https://h/charts/web-1.0.0.tgz`, and
//!   `/web-1.0.0.tgz` is `https://h/web-1.0.0.tgz`), and the result carries the repository
//!   URL's query string, not the entry's (`https://h/charts?token=t` +
//!   `web-1.0.0.tgz?x=1` is `https://h/charts/web-1.0.0.tgz?token=t`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::version::{self, VersionError};
use crate::url_policy::redact_url;

/// Argo CD's default limit for an `index.yaml` (`--helm-registry-max-index-size`, `1G`).
pub const ARGO_CD_MAX_INDEX_BYTES: usize = 1_000_000_000;

/// How many versions a [`IndexError::NoMatchingVersion`] lists.
const LISTED_VERSIONS: usize = 5;

/// Why an index could not be read, or had no version or URL to offer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Reading: the index is larger than allowed (nothing of it was parsed).
    #[error("index.yaml is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Reading: the file is empty (Helm: "empty index.yaml file").
    #[error("index.yaml is empty")]
    Empty,
    /// Reading: not YAML or JSON of an index, or nested too deep to parse safely.
    #[error("index.yaml does not parse: {reason}")]
    Parse {
        /// The parser's message.
        reason: String,
    },
    /// Reading: no `apiVersion` (Helm: "no API version specified").
    #[error("index.yaml has no apiVersion")]
    NoApiVersion,
    /// Resolving: the chart is not in the index.
    #[error("chart {chart:?} is not in the repository's index")]
    ChartNotFound {
        /// The chart asked for.
        chart: String,
    },
    /// Resolving: the `targetRevision` is not usable ([`VersionError`]).
    #[error("chart {chart:?}: {source}")]
    Version {
        /// The chart.
        chart: String,
        /// Why.
        #[source]
        source: VersionError,
    },
    /// Resolving: no version of the chart matches.
    #[error("chart {chart:?} has no version matching {wanted:?} ({})", listed(newest, *count))]
    NoMatchingVersion {
        /// The chart.
        chart: String,
        /// The version or constraint asked for.
        wanted: String,
        /// The newest versions of the chart, newest first (at most five).
        newest: Vec<String>,
        /// How many versions the chart has in the index.
        count: usize,
    },
    /// Downloading: the chosen version lists no URL.
    #[error("chart {chart:?} version {version:?} has no download URL in the index")]
    NoUrl {
        /// The chart.
        chart: String,
        /// The version.
        version: String,
    },
    /// Downloading: the repository URL (credentials removed) or the chart's URL is not a URL.
    #[error("chart URL {url:?} does not resolve against repository {repo}: {reason}")]
    Url {
        /// The repository URL, credentials removed.
        repo: String,
        /// The URL in the index.
        url: String,
        /// Why.
        reason: String,
    },
}

fn listed(newest: &[String], count: usize) -> String {
    if count == 0 {
        "it lists no versions".to_owned()
    } else if newest.is_empty() {
        format!("none of its {count} versions is a semantic version")
    } else {
        format!("newest of {count}: {}", newest.join(", "))
    }
}

/// A Helm repository index (`index.yaml`); see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// `v1` for every index Helm writes.
    #[serde(default, deserialize_with = "text")]
    pub api_version: String,
    /// When the index was generated, as written (RFC 3339).
    #[serde(default, deserialize_with = "optional_text")]
    pub generated: Option<String>,
    /// Every chart's versions, in the order of the file (Helm writes newest first).
    #[serde(default, deserialize_with = "entries")]
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
}

/// One version of a chart in an index: its `Chart.yaml` metadata and where its archive is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
    /// The chart's name.
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    /// The chart version (semantic version).
    #[serde(default, deserialize_with = "text")]
    pub version: String,
    /// Where the archive is: absolute, or relative to the repository URL
    /// ([`ChartVersion::download_url`]). Helm downloads the first.
    #[serde(default, deserialize_with = "texts")]
    pub urls: Vec<String>,
    /// `sha256` of the archive (hex), when the index has it.
    #[serde(default, deserialize_with = "optional_text")]
    pub digest: Option<String>,
    /// When the version was added, as written (RFC 3339).
    #[serde(default, deserialize_with = "optional_text")]
    pub created: Option<String>,
    /// The chart's API version (`v2` for Helm 3 charts; Helm reads none as `v1`).
    #[serde(default, deserialize_with = "optional_text")]
    pub api_version: Option<String>,
    /// The version of the application the chart deploys.
    #[serde(default, deserialize_with = "optional_text")]
    pub app_version: Option<String>,
    /// The chart's description.
    #[serde(default, deserialize_with = "optional_text")]
    pub description: Option<String>,
    /// `application` or `library`.
    #[serde(default, rename = "type", deserialize_with = "optional_text")]
    pub chart_type: Option<String>,
    /// The Kubernetes versions the chart supports (a constraint).
    #[serde(default, deserialize_with = "optional_text")]
    pub kube_version: Option<String>,
    /// Marked deprecated by its authors.
    #[serde(default, deserialize_with = "flag")]
    pub deprecated: bool,
    /// Marked removed from the repository.
    #[serde(default, deserialize_with = "flag")]
    pub removed: bool,
}

impl Index {
    /// Reads an index from untrusted bytes, refusing more than `max_bytes`.
    pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<Index, IndexError> {
        if bytes.len() > max_bytes {
            return Err(IndexError::TooLarge {
                size: bytes.len(),
                max: max_bytes,
            });
        }
        if bytes.is_empty() {
            return Err(IndexError::Empty);
        }
        let parse = |reason: String| IndexError::Parse { reason };
        argosy_crds::yaml_depth::check_bytes(bytes).map_err(|e| parse(e.to_string()))?;
        let index: Option<Index> =
            serde_yaml_ng::from_slice(bytes).map_err(|e| parse(e.to_string()))?;
        let index = index.unwrap_or_default();
        if index.api_version.is_empty() {
            return Err(IndexError::NoApiVersion);
        }
        Ok(index)
    }

    /// The version of `chart` Argo CD deploys for `wanted` (a `targetRevision`: a version,
    /// a constraint or a literal name; see [`super::version`]).
    pub fn resolve(&self, chart: &str, wanted: &str) -> Result<&ChartVersion, IndexError> {
        let versions = self
            .entries
            .get(chart)
            .ok_or_else(|| IndexError::ChartNotFound {
                chart: chart.to_owned(),
            })?;
        let texts: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        match version::select(wanted, &texts) {
            Ok(position) => versions.get(position).ok_or(IndexError::NoMatchingVersion {
                chart: chart.to_owned(),
                wanted: wanted.to_owned(),
                newest: newest_first(&texts, LISTED_VERSIONS),
                count: texts.len(),
            }),
            Err(VersionError::NoMatch { .. }) => Err(IndexError::NoMatchingVersion {
                chart: chart.to_owned(),
                wanted: wanted.to_owned(),
                newest: newest_first(&texts, LISTED_VERSIONS),
                count: texts.len(),
            }),
            Err(source) => Err(IndexError::Version {
                chart: chart.to_owned(),
                source,
            }),
        }
    }
}

/// The `n` highest versions among `texts` that are versions, highest first (equal ones in
/// their order).
fn newest_first(texts: &[&str], n: usize) -> Vec<String> {
    let mut versions: Vec<(version::Version, &str)> = texts
        .iter()
        .filter_map(|t| version::parse_version(t).ok().map(|v| (v, *t)))
        .collect();
    versions.sort_by(|a, b| version::compare(&b.0, &a.0));
    versions
        .into_iter()
        .take(n)
        .map(|(_, t)| t.to_owned())
        .collect()
}

impl ChartVersion {
    /// Where to download this version from: its first URL resolved against `repo_url` as Helm
    /// does (see the module docs).
    pub fn download_url(&self, repo_url: &str) -> Result<String, IndexError> {
        let first = self.urls.first().ok_or_else(|| IndexError::NoUrl {
            chart: self.name.clone(),
            version: self.version.clone(),
        })?;
        resolve_reference_url(repo_url, first)
    }
}

/// The URL of a repository's index: `index.yaml` resolved against the repository URL as Helm
/// does (`https://h/charts?t=1` gives `https://h/charts/index.yaml?t=1`).
pub fn index_url(repo_url: &str) -> Result<String, IndexError> {
    resolve_reference_url(repo_url, "index.yaml")
}

/// Helm's `repo.ResolveReferenceURL`: `reference` when it has a scheme; otherwise
/// `reference` resolved against `base` with one trailing slash, carrying `base`'s query.
pub fn resolve_reference_url(base: &str, reference: &str) -> Result<String, IndexError> {
    if has_scheme(reference) {
        return Ok(reference.to_owned());
    }
    let fail = |reason: String| IndexError::Url {
        repo: redact_url(base),
        url: reference.to_owned(),
        reason,
    };
    let mut base_url = url::Url::parse(base).map_err(|e| fail(e.to_string()))?;
    if base_url.cannot_be_a_base() {
        return Err(fail(
            "the repository URL has no path to resolve against".to_owned(),
        ));
    }
    let path = base_url.path();
    let path = format!("{}/", path.strip_suffix('/').unwrap_or(path));
    base_url.set_path(&path);
    let query = base_url.query().map(str::to_owned);
    let mut resolved = base_url.join(reference).map_err(|e| fail(e.to_string()))?;
    resolved.set_query(query.as_deref());
    Ok(resolved.to_string())
}

/// Whether `s` starts with a URL scheme (`letter *(letter | digit | + | - | .) :`), as Go's
/// `url.Parse` decides it: then Helm takes the URL as absolute.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

// ---------------------------------------------------------------------------------------
// Lenient scalars
// ---------------------------------------------------------------------------------------

/// A YAML scalar Helm reads as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(s) => f.write_str(s),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Unsigned(n) => write!(f, "{n}"),
            Scalar::Signed(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "{x}"),
        }
    }
}

fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| s.to_string()))
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(optional_text(d)?.unwrap_or_default())
}

fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list: Option<Vec<Option<Scalar>>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|s| s.to_string())
        .collect())
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or_default())
}

/// `entries`, `null` lists and `null` entries left out (Helm skips them).
fn entries<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<ChartVersion>>, D::Error> {
    type Raw = Option<BTreeMap<String, Option<Vec<Option<ChartVersion>>>>>;
    Ok(Raw::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|(name, versions)| (name, versions.into_iter().flatten().flatten().collect()))
        .collect())
}

#[cfg(test)]
mod tests;
