//! PLACEHOLDER until the helmrepo branch lands.
use std::collections::BTreeMap;

use serde::Deserialize;

/// `index.yaml` could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Not YAML of an index.
    #[error("index.yaml: {0}")]
    Parse(String),
    /// No such chart.
    #[error("chart {0:?} not found")]
    NoChart(String),
    /// No version.
    #[error("{0}")]
    Version(#[from] super::version::VersionError),
}

/// A Helm repository's index.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    /// Chart name -> its versions.
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
}

/// One version of a chart.
#[derive(Debug, Clone, Deserialize)]
pub struct ChartVersion {
    /// Its version.
    pub version: String,
    /// Where to download it.
    #[serde(default)]
    pub urls: Vec<String>,
    /// sha256 of the package.
    #[serde(default)]
    pub digest: String,
}

impl Index {
    /// Parses `index.yaml`.
    pub fn parse(bytes: &[u8], _max_bytes: u64) -> Result<Index, IndexError> {
        serde_yaml_ng::from_slice(bytes).map_err(|e| IndexError::Parse(e.to_string()))
    }
    /// The version of `chart` that `wanted` selects.
    pub fn resolve(&self, chart: &str, wanted: &str) -> Result<&ChartVersion, IndexError> {
        let versions = self
            .entries
            .get(chart)
            .ok_or_else(|| IndexError::NoChart(chart.to_owned()))?;
        let v =
            super::version::newest_matching(wanted, versions.iter().map(|v| v.version.as_str()))?;
        versions
            .iter()
            .find(|c| c.version == v)
            .ok_or_else(|| IndexError::NoChart(chart.to_owned()))
    }
}

impl ChartVersion {
    /// The first URL, resolved against the repository URL.
    pub fn download_url(&self, repo_url: &str) -> Result<String, IndexError> {
        let first = self
            .urls
            .first()
            .ok_or_else(|| IndexError::Parse("no urls".into()))?;
        let base = url::Url::parse(&format!("{}/", repo_url.trim_end_matches('/')))
            .map_err(|e| IndexError::Parse(e.to_string()))?;
        base.join(first)
            .map(|u| u.to_string())
            .map_err(|e| IndexError::Parse(e.to_string()))
    }
}
