//! Helm charts from Helm repositories: which chart version a `targetRevision` names
//! ([`version`]) and what a repository's `index.yaml` offers ([`index`]).

pub mod index;
pub mod version;
