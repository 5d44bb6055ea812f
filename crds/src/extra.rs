//! [`Extra`]: the map every Argo CD type flattens its unmodelled fields into.
//!
//! A leaf module (it names nothing else of this crate), so every resource module can
//! use it without depending on the crate root.

/// Unmodelled fields of an Argo CD object, kept verbatim for round trips.
pub type Extra = std::collections::BTreeMap<String, serde_json::Value>;
