//! A chart package (`.tgz`, as `helm package` writes it) read into memory as a
//! [`RepoSnapshot`], so the renderer treats it like a Git tree: the same path confinement,
//! the same materialization for `helm template`, the same result cache.
//!
//! Only regular files and directories are accepted: no symlinks, hard links or device
//! entries, no absolute paths or `..`, and the package must hold exactly one top directory
//! (the chart) with a `Chart.yaml`. The extracted size and the number of files are bounded,
//! so a small hostile archive cannot fill memory.

use std::collections::BTreeMap;
use std::io::Read as _;

use argosy_generators::source::{RepoError, RepoSnapshot};
use sha2::Digest as _;

/// Most files one chart package may hold.
const MAX_FILES: usize = 10_000;

/// A chart package could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// Not a gzip'd tar, or a truncated one.
    #[error("the chart package is not a readable .tgz: {0}")]
    Unreadable(String),
    /// An entry that could escape the chart or is not a plain file.
    #[error("the chart package holds {entry:?}, which is {why}")]
    RefusedEntry {
        /// The entry's path.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Over the size or file-count limit once extracted.
    #[error("the chart package extracts to more than {limit} {unit}")]
    TooLarge {
        /// The limit.
        limit: u64,
        /// `bytes` or `files`.
        unit: &'static str,
    },
    /// No single chart directory with a `Chart.yaml`.
    #[error("the chart package has no single top directory with a Chart.yaml")]
    NoChart,
}

/// A chart package's files, in memory.
#[derive(Debug)]
pub struct PackagedChart {
    /// `sha256:<hex>` of the package: its identity (the renderer's cache key and
    /// materialized directory).
    digest: String,
    files: Vec<String>,
    data: BTreeMap<String, Vec<u8>>,
    /// The package's top directory: the chart (`helm template` is run on it).
    top: String,
}

impl PackagedChart {
    /// Reads a `.tgz` package, extracting at most `max_bytes`.
    pub fn read(package: &[u8], max_bytes: u64) -> Result<Self, ArchiveError> {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(package)));
        let gz = flate2::read::GzDecoder::new(package);
        let mut archive = tar::Archive::new(gz);
        let mut data = BTreeMap::new();
        let mut total = 0u64;
        let entries = archive
            .entries()
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
            let path = entry
                .path()
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let kind = entry.header().entry_type();
            let refused = |why| ArchiveError::RefusedEntry {
                entry: path.clone(),
                why,
            };
            if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            }
            if !kind.is_file() {
                return Err(refused("not a regular file (links are not allowed)"));
            }
            let clean = clean_path(&path).ok_or_else(|| refused("outside the chart"))?;
            if data.len() >= MAX_FILES {
                return Err(ArchiveError::TooLarge {
                    limit: MAX_FILES as u64,
                    unit: "files",
                });
            }
            let mut content = Vec::new();
            let room = max_bytes.saturating_sub(total);
            (&mut entry)
                .take(room.saturating_add(1))
                .read_to_end(&mut content)
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
            total += content.len() as u64;
            if total > max_bytes {
                return Err(ArchiveError::TooLarge {
                    limit: max_bytes,
                    unit: "bytes",
                });
            }
            data.insert(clean, content);
        }
        let top = single_top(&data).ok_or(ArchiveError::NoChart)?;
        Ok(Self {
            digest,
            files: data.keys().cloned().collect(),
            data,
            top,
        })
    }

    /// The chart's directory in this snapshot (the package's top directory).
    #[must_use]
    pub fn chart_dir(&self) -> &str {
        &self.top
    }

    /// `sha256:<hex>` of the package.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Bytes of the extracted files.
    #[must_use]
    pub fn extracted_bytes(&self) -> u64 {
        self.data.values().map(|d| d.len() as u64).sum()
    }
}

/// `path` with `.` components dropped; `None` for an absolute path or one with `..`.
fn clean_path(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The one top directory of every file, if it holds a `Chart.yaml`.
fn single_top(data: &BTreeMap<String, Vec<u8>>) -> Option<String> {
    let mut tops = data.keys().map(|p| p.split_once('/').map(|(top, _)| top));
    let first = tops.next()??;
    if !tops.all(|t| t == Some(first)) {
        return None;
    }
    data.contains_key(&format!("{first}/Chart.yaml"))
        .then(|| first.to_owned())
}

impl RepoSnapshot for PackagedChart {
    fn commit(&self) -> &str {
        // The renderer keys materialized trees and results by this; hex only, so it is
        // used as a directory name as is.
        self.digest.trim_start_matches("sha256:")
    }

    fn files(&self) -> &[String] {
        &self.files
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
        self.data.get(path).cloned().ok_or_else(|| RepoError {
            repo: format!("chart package {}", self.digest),
            message: format!("{path} not found"),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `.tgz` of `(path, content, kind)` entries.
    pub(crate) fn tgz(entries: &[(&str, &str, tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, content, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(if kind.is_file() {
                content.len() as u64
            } else {
                0
            });
            header.set_mode(0o644);
            if !kind.is_file() {
                header.set_link_name(content).unwrap();
            }
            // Raw path bytes: `append_data` would refuse `..`, which a hostile archive has.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            let body: &[u8] = if kind.is_file() {
                content.as_bytes()
            } else {
                &[]
            };
            builder.append(&header, body).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn a_package_reads_as_a_snapshot_of_its_chart_directory() {
        let package = tgz(&[
            ("web/Chart.yaml", "name: web\nversion: 1.0.0\n", FILE),
            ("web/templates/cm.yaml", "kind: ConfigMap\n", FILE),
            ("./web/values.yaml", "a: 1\n", FILE),
        ]);
        let chart = PackagedChart::read(&package, 1 << 20).unwrap();
        assert_eq!(chart.chart_dir(), "web");
        assert_eq!(
            chart.files(),
            ["web/Chart.yaml", "web/templates/cm.yaml", "web/values.yaml"]
        );
        assert_eq!(chart.read("web/values.yaml").unwrap(), b"a: 1\n");
        assert!(chart.digest().starts_with("sha256:"));
        assert_eq!(chart.commit().len(), 64);
        assert!(chart.read("web/nope").is_err());
    }

    #[test]
    fn links_escapes_and_bombs_are_refused() {
        let link = tgz(&[
            ("web/Chart.yaml", "name: web\n", FILE),
            ("web/x", "/etc/passwd", tar::EntryType::Symlink),
        ]);
        assert!(matches!(
            PackagedChart::read(&link, 1 << 20),
            Err(ArchiveError::RefusedEntry { .. })
        ));
        let hard = tgz(&[
            ("web/Chart.yaml", "name: web\n", FILE),
            ("web/x", "web/Chart.yaml", tar::EntryType::Link),
        ]);
        assert!(matches!(
            PackagedChart::read(&hard, 1 << 20),
            Err(ArchiveError::RefusedEntry { .. })
        ));
        let escape = tgz(&[
            ("web/Chart.yaml", "name: web\n", FILE),
            ("web/../../x", "x", FILE),
        ]);
        assert_eq!(
            PackagedChart::read(&escape, 1 << 20)
                .unwrap_err()
                .to_string(),
            "the chart package holds \"web/../../x\", which is outside the chart"
        );
        let big = "x".repeat(5000);
        let bomb = tgz(&[
            ("web/Chart.yaml", "name: web\n", FILE),
            ("web/big", &big, FILE),
        ]);
        assert_eq!(
            PackagedChart::read(&bomb, 4096).unwrap_err(),
            ArchiveError::TooLarge {
                limit: 4096,
                unit: "bytes"
            }
        );
        assert!(matches!(
            PackagedChart::read(b"not gzip", 4096),
            Err(ArchiveError::Unreadable(_))
        ));
    }

    #[test]
    fn a_package_must_be_one_chart() {
        let two = tgz(&[
            ("a/Chart.yaml", "name: a\n", FILE),
            ("b/Chart.yaml", "name: b\n", FILE),
        ]);
        assert_eq!(
            PackagedChart::read(&two, 1 << 20).unwrap_err(),
            ArchiveError::NoChart
        );
        let none = tgz(&[("a/values.yaml", "x: 1\n", FILE)]);
        assert_eq!(
            PackagedChart::read(&none, 1 << 20).unwrap_err(),
            ArchiveError::NoChart
        );
    }
}
