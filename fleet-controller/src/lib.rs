//! Argosy: the `argosy` CLI and controller.
//!
//! * [`cli`]: the command line: its flags ([`cli::args`]), what each command does
//!   ([`cli::cmd`]: `generate`, `test`, `app`, `appset`, `cluster`, `status`) and their text
//!   output ([`cli::format`]);
//! * [`run`]: the controller process (watches, leader election, shutdown);
//! * [`appset`]: the ApplicationSet controller (reconcile, plan, status, writer);
//! * [`registry`]: clusters and projects as the generators see them, and the wait for a
//!   store's first list; [`fanout`]: the one Application watch handed to both controllers;
//! * [`http`]: the listener (`/healthz`, `/readyz`, optional TLS), the dashboard's session
//!   cookie, the failed-login limit and what readiness checks;
//! * [`webhook`]: the Git push webhook (GitHub, GitLab, Bitbucket Cloud and Server, Gogs,
//!   Gitea, Azure DevOps); [`refresh`]: refresh requests (Argo CD's refresh annotations),
//!   which a push webhook makes on any replica and the leader acts on;
//! * [`metrics`]: Prometheus metrics on `/metrics`; [`queue`]: bounded trigger queues;
//! * [`dashboard`]: the fleet dashboard and its JSON API (token-protected), which asks the
//!   controllers only through [`query::ControllerQueries`];
//! * [`defaults`]: every default setting, in one place;
//! * [`fleet`]: the fleet summary (clusters, ApplicationSets, groups, app matrix);
//! * [`application`]: the Application controller, which drives the sync engine
//!   (`argosy_sync_engine`: render, diff, apply, prune, health) for each Application.

pub mod application;
pub mod appset;
pub mod cli;
pub mod contain;
pub mod dashboard;
pub mod defaults;
pub mod events;
pub mod fanout;
pub mod fleet;
pub mod health_checks;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod query;
pub mod queue;
pub mod refresh;
pub mod registry;
pub mod repo_credentials;
pub mod rollout_view;
pub mod run;
#[cfg(test)]
mod testing;
pub mod webhook;
