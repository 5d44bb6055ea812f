//! Argo CD-compatible API types for Argosy.
//!
//! This crate owns the shapes users write and Argosy reads: `argoproj.io/v1alpha1`
//! [`ApplicationSet`], [`Application`] and [`AppProject`], the declarative cluster
//! Secret model ([`cluster::Cluster`]), the well-known labels/annotations, and the CRD
//! manifests generated from these types ([`crd::all`]).
//!
//! Every struct keeps fields it does not model in a flattened `extra` map, so a real
//! Argo CD manifest survives a parse/serialize round trip without losing anything.

pub mod application;
pub mod applicationset;
pub mod appproject;
pub mod cluster;
pub mod consts;
pub mod crd;
pub mod duration;
pub mod operation;
mod resource;

pub use application::{Application, ApplicationSpec, ApplicationStatus};
pub use applicationset::{ApplicationSet, ApplicationSetSpec, ApplicationSetStatus, Generator};
pub use appproject::{AppProject, AppProjectSpec};
pub use cluster::{Cluster, ClusterSecretError};
pub use duration::{DurationError, GoDuration};
pub use operation::{Operation, OperationPhase, OperationState};

/// Unmodelled fields of an Argo CD object, kept verbatim for round trips.
pub type Extra = std::collections::BTreeMap<String, serde_json::Value>;
