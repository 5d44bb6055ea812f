//! [`Params`]: one parameter set, the input of every render.
//!
//! A leaf module (it names nothing else of this crate); the crate root re-exports it.

/// One parameter set, as produced by a generator (JSON types; maps are key-ordered).
pub type Params = serde_json::Map<String, serde_json::Value>;
