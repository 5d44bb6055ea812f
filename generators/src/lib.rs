//! `ApplicationSet` generators and the pure generate -> render pipeline of Argosy.
//!
//! [`generate_applications`] takes an `ApplicationSet` and its [`Sources`] (clusters,
//! repositories, projects) and returns the Applications it wants, or an error that must
//! stop the controller from changing anything. Everything here is pure over the
//! [`source`] traits; the controller, the CLI and the tests plug in their own sources.
//!
//! Modules: [`pipeline`] (generation, rendering, errors), [`validate`] (per-Application
//! checks), `generator` (running one generator entry) with the generator kinds `list`,
//! `cluster`, `git` and `combine` (matrix, merge), [`params`] (parameter sets and their
//! provenance), [`selector`] and [`glob`] (selectors and path patterns), [`source`] and
//! [`memory`] (the IO boundary and in-memory sources), [`conformance`] (the conformance
//! case format and comparison).

#![warn(clippy::pedantic)]
#![warn(missing_docs)]
// The errors of every public function are the variants of its error type (`GenerateError`,
// `GeneratorError`, `RepoError`, ...), each documented there; the conformance helpers that
// return a `String` say in their summary what it holds.
#![allow(clippy::missing_errors_doc)]

mod app;
mod cluster;
mod combine;
pub mod conformance;
mod context;
mod destinations;
mod error;
mod generator;
mod git;
pub mod glob;
mod list;
pub mod memory;
pub mod params;
pub mod pipeline;
pub mod selector;
pub mod source;
#[cfg(test)]
mod testing;
mod tree;
pub mod validate;
mod values;

pub use app::GeneratedApp;
pub use error::GeneratorError;
pub use params::{ParamOrigin, ParamSet, Params, Provenance};
pub use pipeline::{GenerateError, Generated, PipelineOptions, generate_applications};
pub use source::Sources;
pub use validate::ValidationError;
