//! Bounds on what one render may read, produce and take.

use std::time::Duration;

/// Bounds on what one render may read, produce and take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest file a directory source may contain.
    pub max_file_bytes: u64,
    /// Largest total of manifest bytes (directory files read, or tool output).
    pub max_total_bytes: u64,
    /// Most objects one render may produce (after `List` expansion).
    pub max_objects: usize,
    /// Largest commit tree written to disk for Kustomize or Helm.
    pub max_tree_bytes: u64,
    /// How long `kustomize`/`helm` may run before being killed.
    pub tool_timeout: Duration,
    /// How many rendered results the cache keeps (least recently used go first).
    pub cache_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 << 20,
            max_total_bytes: 64 << 20,
            max_objects: 20_000,
            max_tree_bytes: 512 << 20,
            tool_timeout: Duration::from_secs(60),
            cache_entries: 512,
        }
    }
}
