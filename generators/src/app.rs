//! [`GeneratedApp`]: one generated Application and how it came about.
//!
//! A leaf module: the pipeline produces these and validation checks them, so neither
//! has to depend on the other for the type. `crate::pipeline::GeneratedApp` re-exports
//! it.

use argosy_crds::Application;

use crate::params::ParamSet;

/// One generated Application and how it came about.
#[derive(Debug)]
pub struct GeneratedApp {
    /// The rendered Application, in the `ApplicationSet`'s namespace.
    pub application: Application,
    /// Field path of the generator kind, e.g. `spec.generators[0].matrix`.
    pub generator_path: String,
    /// The parameters it was rendered with and their provenance; empty unless
    /// [`PipelineOptions::keep_params`](crate::pipeline::PipelineOptions::keep_params).
    pub params: ParamSet,
}
