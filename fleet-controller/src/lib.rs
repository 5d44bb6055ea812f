//! Argosy: the `argosy` CLI and controller.
//!
//! Modules: [`repo`] (Git via gix), [`cli`] (command-line entry points).

pub mod repo;
