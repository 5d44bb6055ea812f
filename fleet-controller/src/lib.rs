//! Argosy: the `argosy` CLI and controller.
//!
//! * [`cli`]: the command line; [`generate`] and [`casetest`] are its offline commands,
//!   [`inputs`] reads their files, [`explain`] says where parameters came from;
//! * [`appcli`]: `argosy app list|get|diff|sync|rollback` against a cluster;
//! * [`fleetcli`]: `argosy status`, `argosy appset list|get`, `argosy cluster add|list|rm`;
//! * [`run`]: the controller process (watches, leader election, shutdown);
//! * [`appset`]: the ApplicationSet controller (reconcile, plan, status, writer);
//! * [`registry`]: clusters and projects as the generators see them, and the wait for a
//!   store's first list; [`fanout`]: the one Application watch handed to both controllers;
//! * [`repo`]: Git through gix, and the cache of remote repositories;
//! * [`webhook`]: the Git push webhook (GitHub, GitLab);
//! * [`metrics`]: Prometheus metrics on `/metrics`;
//! * [`dashboard`]: the fleet dashboard and its JSON API (token-protected);
//! * [`fleet`]: the fleet summary (clusters, ApplicationSets, groups, app matrix);
//! * [`sync`]: the built-in sync engine (render, diff, apply, prune, health);
//! * [`ssa`]: server-side apply comparisons shared by both controllers, and [`jq`]: the
//!   jq path expressions of their ignore rules.

pub mod appcli;
pub mod appset;
pub mod casetest;
pub mod cli;
pub mod dashboard;
pub mod events;
pub mod explain;
pub mod fanout;
pub mod fleet;
pub mod fleetcli;
pub mod generate;
pub mod http;
pub mod inputs;
pub mod jq;
pub mod metrics;
pub mod registry;
pub mod repo;
pub mod run;
pub mod ssa;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod webhook;
