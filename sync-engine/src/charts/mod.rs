//! Helm charts from Helm repositories: which chart version a `targetRevision` names
//! ([`version`]).

pub mod version;
