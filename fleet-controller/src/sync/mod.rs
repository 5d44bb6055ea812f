//! The built-in sync engine: renders an Application's source from Git, compares it with
//! the live objects on the destination cluster, applies the difference with server-side
//! apply, prunes what Git no longer has, and reports sync status and health.

pub mod clients;
pub mod controller;
pub mod echo;
pub mod execute;
pub mod health;
pub mod live;
pub mod plan;
pub mod render;
pub mod resource;
pub mod status;
pub mod target;
