//! What each subcommand does. Each module takes its parsed flags (from
//! [`super::args`]) and returns an exit code or an error of one line.

pub mod app;
pub mod cluster_add;
pub mod fleet;
pub mod generate;
pub mod plan;
pub mod repo;
pub mod rollout;
pub mod test;
