//! Argo CD-compatible API types for Argosy.
//!
//! This crate owns the shapes users write and Argosy reads: `argoproj.io/v1alpha1`
//! [`ApplicationSet`], [`Application`] and [`AppProject`], the declarative cluster
//! Secret model ([`cluster::Cluster`]), the well-known labels/annotations, and the CRD
//! manifests generated from these types ([`crd::all`]).
//!
//! Every struct keeps fields it does not model in a flattened `extra` map, so a real
//! Argo CD manifest survives a parse/serialize round trip without losing anything.
//!
//! Beside the resources:
//! - [`duration`]: [`GoDuration`], Go's `time.ParseDuration` and `Duration.String()`
//!   exactly, for the duration strings in Argo CD objects;
//! - [`operation`]: typed `operation` / `status.operationState` / `status.history`, with
//!   Argo CD's retry backoff computation;
//! - [`destination`]: [`resolve_destination`], the one mapping from an Application's
//!   destination to a registered cluster, and [`server_key`] to group by server;
//! - [`project`]: [`ProjectPolicy`], the tenant boundary an `AppProject` draws (sources,
//!   destinations, kinds, source namespaces), checked before anything is written, with
//!   [`glob`], Argo CD's two glob dialects;
//! - [`sync_window`]: whether an `AppProject`'s `syncWindows` let an Application sync at a
//!   given time and when that changes ([`sync_window::sync_blocked`]), over [`cron`],
//!   Argo CD's cron dialect.

#![warn(clippy::pedantic)]
#![warn(missing_docs)]
// The errors of every public function are the variants of its error type (`DurationError`,
// `ClusterSecretError`, `DestinationError`, `OperationError`), each documented there; the
// few that return a serde error say in their summary when they fail.
#![allow(clippy::missing_errors_doc)]

pub mod application;
pub mod applicationset;
pub mod appproject;
pub mod cluster;
pub mod consts;
pub mod crd;
pub mod cron;
pub mod destination;
pub mod duration;
mod extra;
pub mod glob;
pub mod operation;
pub mod project;
pub mod repository;
mod resource;
mod source;
pub mod sync_window;
pub mod yaml_depth;

pub use application::{Application, ApplicationSpec, ApplicationStatus};
pub use applicationset::{ApplicationSet, ApplicationSetSpec, ApplicationSetStatus, Generator};
pub use appproject::{AppProject, AppProjectSpec};
pub use cluster::{Cluster, ClusterSecretError};
pub use destination::{DestinationError, resolve as resolve_destination, server_key};
pub use duration::{DurationError, GoDuration};
pub use extra::Extra;
pub use operation::{Operation, OperationPhase, OperationState};
pub use project::{ProjectPolicy, Violation};
