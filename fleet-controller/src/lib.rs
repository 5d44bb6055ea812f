//! Argosy: the `argosy` CLI and controller.

pub mod appset;
pub mod repo;
