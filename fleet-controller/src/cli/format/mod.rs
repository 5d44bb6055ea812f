//! Pure text output of the commands (tables, summaries); no cluster.

pub mod app;
pub mod fleet;
pub mod plan;
pub mod repo;
