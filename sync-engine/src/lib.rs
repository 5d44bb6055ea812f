//! Argosy's sync engine: everything between an Application's spec and the objects on its
//! destination cluster, without the process around it (no CLI, HTTP or metrics; the
//! `argosy` binary wires it up and owns the writes' fence).
//!
//! * [`repo`]: Git through gix, and the cache of remote repositories; [`url_policy`]: which
//!   repository URLs may be read at all;
//! * [`render`]: an Application's source rendered to manifests (directories, Kustomize, Helm);
//!   [`app_sources`]: every source of one Application read and rendered;
//! * [`charts`]: Helm charts from Helm repositories and OCI registries: the version a
//!   `targetRevision` picks, the packages (cached under a byte budget) read as trees;
//! * [`target`]: what an Application wants deployed (sources, revisions) and what it got;
//! * [`resource`]: object keys, tracking ids, sync options, waves and hook roles;
//! * [`boundary`]: the pure check that a sync stays inside its `AppProject` and its cluster
//!   Secret's scope (nothing is written otherwise);
//! * [`plan`]: the pure comparison of desired and live objects and the sync steps;
//!   [`diff`]: the text diffs of out-of-sync resources (`argosy app diff`, the dashboard);
//! * [`fleet_plan`]: what a revision range changes across an `ApplicationSet`'s fleet, per
//!   destination, rendered from Git (`argosy plan`, the controller's plan API);
//! * [`ssa`]: server-side apply comparisons (what a field manager owns), shared with the
//!   `ApplicationSet` controller; [`jq`]: the jq path expressions of ignore rules;
//! * [`health`]: health of live objects, per kind;
//! * [`clients`]: clients for the destination clusters, built from cluster Secrets;
//! * [`github_app`]: GitHub App installation tokens for repositories (signed JWT, cached);
//! * [`live`]: the watches of the live objects, indexed by tracking id;
//! * [`echo`]: telling the watch echo of the engine's own writes from real changes;
//! * [`execute`]: running a sync plan against a cluster, and an Application's finalizer,
//!   through [`writer::ClusterWriter`] (the writes as a trait, implemented by
//!   [`clients::ClusterConn`]); [`fence`]: the gate that lets a write out only while this
//!   replica holds the leader Lease;
//! * [`decide`]: the pure decision whether to sync (automation, self-heal backoff, retries);
//!   [`operation`]: the pure operation state machine (`operationState` from pass to pass);
//! * [`status`]: the Application status the engine reports;
//! * [`ready`]: the wait for a reflector store's first list.

#![warn(clippy::pedantic)]
#![warn(missing_docs)]
// The errors of every public function are the variants of its error type (`RenderError`,
// `RepoError`, `ClientError`, `LiveError`, `ExecuteError`), each documented there, or the
// API server's answer (`kube::Error`), passed on as is.
#![allow(clippy::missing_errors_doc)]

pub mod app_sources;
pub mod boundary;
pub mod charts;
pub mod clients;
pub mod decide;
pub mod diff;
pub mod echo;
pub mod execute;
pub mod fence;
pub mod fleet_plan;
pub mod github_app;
pub mod health;
pub mod jq;
pub mod live;
pub mod operation;
pub mod plan;
pub mod ready;
pub mod render;
pub mod repo;
pub mod resource;
pub mod shard;
pub mod ssa;
pub mod status;
pub mod target;
pub mod url_policy;
pub mod writer;
