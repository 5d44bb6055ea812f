//! A directory in Argo CD's `resource_customizations` layout (`--resource-customizations`):
//! `<group>/<Kind>/health.lua`, `<Kind>/health.lua` for the core group, `_` in a directory
//! name a wildcard (`_.crossplane.io/_`). Read once at start, with bounds: at most
//! [`MAX_SCRIPTS`] scripts of at most [`MAX_SCRIPT_BYTES`] each. Entries starting with `.`
//! are skipped (a mounted `ConfigMap`'s `..data` links).

use std::path::{Path, PathBuf};

use super::lua;
use super::scripts::BuiltinScripts;

/// Largest `health.lua` read (Argo CD's largest built-in is a few KiB).
pub const MAX_SCRIPT_BYTES: u64 = 256 * 1024;
/// Most scripts read from one directory (Argo CD ships about 200).
pub const MAX_SCRIPTS: usize = 10_000;

const HEALTH_SCRIPT: &str = "health.lua";

/// Why the directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptDirError {
    /// A directory could not be listed (the flag's directory missing included).
    #[error("reading directory {}: {source}", path.display())]
    ListDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A script could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadScript {
        /// The script.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A script is larger than [`MAX_SCRIPT_BYTES`].
    #[error("{} is larger than {MAX_SCRIPT_BYTES} bytes", path.display())]
    ScriptTooLarge {
        /// The script.
        path: PathBuf,
    },
    /// A script is not text.
    #[error("{} is not UTF-8", path.display())]
    NotUtf8 {
        /// The script.
        path: PathBuf,
    },
    /// The directory holds more than [`MAX_SCRIPTS`] scripts.
    #[error("{} holds more than {MAX_SCRIPTS} health scripts", path.display())]
    TooManyScripts {
        /// The directory.
        path: PathBuf,
    },
}

/// The scripts of `dir`, and the ones that do not compile (kept: running them reports the
/// error as the object's health, as Argo CD would).
pub fn load(dir: &Path) -> Result<(BuiltinScripts, Vec<String>), ScriptDirError> {
    // A missing directory is a mistake in the flag, not an empty set of scripts.
    std::fs::read_dir(dir).map_err(|source| ScriptDirError::ListDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut scripts = BuiltinScripts::default();
    let mut broken = Vec::new();
    for first in entries(dir)? {
        let first_name = name_of(&first);
        // `<Kind>/health.lua`: a core kind.
        add(&mut scripts, &mut broken, dir, &first, &first_name)?;
        if !first.is_dir() {
            continue;
        }
        for second in entries(&first)? {
            let key = format!("{first_name}/{}", name_of(&second));
            add(&mut scripts, &mut broken, dir, &second, &key)?;
        }
    }
    Ok((scripts, broken))
}

/// The visible entries of a directory, sorted (empty for a file).
fn entries(dir: &Path) -> Result<Vec<PathBuf>, ScriptDirError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let list = |source| ScriptDirError::ListDir {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        if !name_of(&path).starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Adds `<kind_dir>/health.lua` under `key`, if there is one.
fn add(
    scripts: &mut BuiltinScripts,
    broken: &mut Vec<String>,
    root: &Path,
    kind_dir: &Path,
    key: &str,
) -> Result<(), ScriptDirError> {
    let path = kind_dir.join(HEALTH_SCRIPT);
    if !path.is_file() {
        return Ok(());
    }
    if scripts.len() >= MAX_SCRIPTS {
        return Err(ScriptDirError::TooManyScripts {
            path: root.to_owned(),
        });
    }
    let read = |source| ScriptDirError::ReadScript {
        path: path.clone(),
        source,
    };
    let size = std::fs::metadata(&path).map_err(read)?.len();
    if size > MAX_SCRIPT_BYTES {
        return Err(ScriptDirError::ScriptTooLarge { path });
    }
    let bytes = std::fs::read(&path).map_err(read)?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(ScriptDirError::ScriptTooLarge { path });
    }
    let source =
        String::from_utf8(bytes).map_err(|_| ScriptDirError::NotUtf8 { path: path.clone() })?;
    let origin = format!("{key}/{HEALTH_SCRIPT}");
    if let Err(e) = lua::check_syntax(&source, &origin) {
        broken.push(format!("{}: {e}", path.display()));
    }
    scripts.insert(key, &source, &origin);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::scripts::{HealthChecks, Overrides};
    use std::sync::Arc;

    #[test]
    fn the_layout_is_read_with_bounds() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let write = |rel: &str, text: &str| -> std::io::Result<()> {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)
        };
        write(
            "example.com/Widget/health.lua",
            "return {status = 'Healthy'}",
        )?;
        write("example.com/Widget/health_test.yaml", "tests: []")?;
        write(
            "_.example.com/_/health.lua",
            "return {status = 'Suspended'}",
        )?;
        write("ConfigMap/health.lua", "return {")?;
        write("..data/x/health.lua", "return nil")?;
        write("example.com/NoScript/action.lua", "return nil")?;
        let (scripts, broken) = load(dir.path())?;
        assert_eq!(scripts.len(), 3);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].contains("ConfigMap/health.lua"), "{broken:?}");
        let checks = HealthChecks::new(Arc::new(scripts), Overrides::default());
        let origin = |g: &str, k: &str| checks.script_for(g, k).map(|s| s.origin().to_owned());
        assert_eq!(
            origin("example.com", "Widget").as_deref(),
            Some("example.com/Widget/health.lua")
        );
        assert_eq!(
            origin("a.example.com", "Any").as_deref(),
            Some("_.example.com/_/health.lua")
        );
        assert_eq!(
            origin("", "ConfigMap").as_deref(),
            Some("ConfigMap/health.lua")
        );
        assert_eq!(origin("", "x"), None);

        write(
            "big.io/Huge/health.lua",
            &"-".repeat(usize::try_from(MAX_SCRIPT_BYTES)? + 1),
        )?;
        assert!(matches!(
            load(dir.path()),
            Err(ScriptDirError::ScriptTooLarge { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(ScriptDirError::ListDir { .. })
        ));
        Ok(())
    }
}
