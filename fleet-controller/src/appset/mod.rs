//! The ApplicationSet controller.

pub mod plan;
