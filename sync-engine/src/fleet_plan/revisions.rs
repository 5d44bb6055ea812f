//! One side of a fleet plan is the fleet as one revision of the repositories under review
//! would make it: that revision replaces the `revision` of every Git generator reading
//! such a repository (at any depth of a matrix or merge) and the `targetRevision` of every
//! generated Application source from it. Repositories are matched as the webhook matches
//! them ([`normalize_repo_url`]). Pure.

use std::collections::BTreeMap;

use argosy_crds::application::ApplicationSource;
use argosy_crds::applicationset::Generator;
use argosy_crds::{Application, ApplicationSet};

use crate::repo::normalize_repo_url;

/// The repositories under review, as first written: `chosen` when given, else every
/// repository a Git generator of `appset` reads (a templated `repoURL` names none). One
/// entry per repository, however it is spelled.
#[must_use]
pub fn review_repos(appset: &ApplicationSet, chosen: &[String]) -> Vec<String> {
    let candidates = if chosen.is_empty() {
        let mut found = Vec::new();
        git_generator_repos(&appset.spec.generators, &mut found);
        found
    } else {
        chosen.to_vec()
    };
    let mut seen = Vec::new();
    let mut repos = Vec::new();
    for repo in candidates {
        let key = normalize_repo_url(&repo);
        if !seen.contains(&key) {
            seen.push(key);
            repos.push(repo);
        }
    }
    repos
}

fn git_generator_repos(generators: &[Generator], out: &mut Vec<String>) {
    for generator in generators {
        if let Some(git) = &generator.git
            && !git.repo_url.is_empty()
            && !git.repo_url.contains("{{")
        {
            out.push(git.repo_url.clone());
        }
        for combination in [&generator.matrix, &generator.merge].into_iter().flatten() {
            git_generator_repos(&combination.generators, out);
        }
    }
}

/// The revision each repository under review is read at on one side of the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// Normalized repository URL -> revision.
    revisions: BTreeMap<String, String>,
}

impl Pins {
    /// Pins each `(repository, revision)`.
    pub fn new<'a>(pins: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            revisions: pins
                .into_iter()
                .map(|(repo, revision)| (normalize_repo_url(repo), revision.to_owned()))
                .collect(),
        }
    }

    /// The revision `repo_url` is pinned to, if it is under review.
    fn revision_for(&self, repo_url: &str) -> Option<&str> {
        self.revisions
            .get(&normalize_repo_url(repo_url))
            .map(String::as_str)
    }
}

/// `appset` with every Git generator reading a pinned repository set to its revision.
#[must_use]
pub fn pin_generators(appset: &ApplicationSet, pins: &Pins) -> ApplicationSet {
    fn pin(generators: &mut [Generator], pins: &Pins) {
        for generator in generators {
            if let Some(git) = &mut generator.git
                && let Some(revision) = pins.revision_for(&git.repo_url)
            {
                revision.clone_into(&mut git.revision);
            }
            for combination in [&mut generator.matrix, &mut generator.merge]
                .into_iter()
                .flatten()
            {
                pin(&mut combination.generators, pins);
            }
        }
    }
    let mut pinned = appset.clone();
    pin(&mut pinned.spec.generators, pins);
    pinned
}

/// `app` with every Git source (not a chart) from a pinned repository set to its revision.
#[must_use]
pub fn pin_sources(app: &Application, pins: &Pins) -> Application {
    let pin = |source: &mut ApplicationSource| {
        if source.chart.is_empty()
            && let Some(revision) = pins.revision_for(&source.repo_url)
        {
            revision.clone_into(&mut source.target_revision);
        }
    };
    let mut pinned = app.clone();
    pinned.spec.source.iter_mut().for_each(pin);
    pinned.spec.sources.iter_mut().for_each(pin);
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FLEET: &str = "https://git.example.com/platform/fleet.git";

    fn appset() -> ApplicationSet {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
            "metadata": {"name": "s", "namespace": "argocd"},
            "spec": {
                "generators": [
                    {"matrix": {"generators": [
                        {"clusters": {}},
                        {"git": {"repoURL": FLEET, "revision": "HEAD", "directories": [{"path": "apps/*"}]}},
                    ]}},
                    {"git": {"repoURL": "https://git.example.com/other.git", "revision": "main", "files": [{"path": "x.json"}]}},
                    {"git": {"repoURL": "{{.repo}}", "revision": "main", "files": [{"path": "x.json"}]}},
                    {"list": {"elements": []}},
                ],
                "template": {"metadata": {"name": "a"}, "spec": {}},
            },
        }))
        .unwrap()
    }

    fn revisions(appset: &ApplicationSet) -> Vec<String> {
        let g = &appset.spec.generators;
        vec![
            g[0].matrix.as_ref().unwrap().generators[1]
                .git
                .as_ref()
                .unwrap()
                .revision
                .clone(),
            g[1].git.as_ref().unwrap().revision.clone(),
            g[2].git.as_ref().unwrap().revision.clone(),
        ]
    }

    #[test]
    fn the_repositories_under_review_default_to_the_git_generators() {
        assert_eq!(
            review_repos(&appset(), &[]),
            vec![FLEET, "https://git.example.com/other.git"]
        );
        let chosen = [
            "HTTPS://Git.Example.com/platform/fleet/".to_owned(),
            FLEET.to_owned(),
        ];
        assert_eq!(
            review_repos(&appset(), &chosen),
            vec!["HTTPS://Git.Example.com/platform/fleet/"]
        );
    }

    #[test]
    fn only_generators_of_the_repositories_under_review_are_pinned() {
        let pins = Pins::new([("https://GIT.example.com/platform/fleet/", "abc123")]);
        let pinned = pin_generators(&appset(), &pins);
        assert_eq!(revisions(&pinned), vec!["abc123", "main", "main"]);
        // The ApplicationSet given is left as it was.
        assert_eq!(revisions(&appset()), vec!["HEAD", "main", "main"]);
    }

    #[test]
    fn only_git_sources_of_the_repositories_under_review_are_pinned() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a"},
            "spec": {
                "project": "default",
                "destination": {"server": "https://k", "namespace": "n"},
                "sources": [
                    {"repoURL": "https://git.example.com/platform/fleet", "targetRevision": "HEAD", "path": "a"},
                    {"repoURL": FLEET, "targetRevision": "1.0.0", "chart": "fleet"},
                    {"repoURL": "https://git.example.com/other.git", "targetRevision": "main", "path": "b"},
                ],
            },
        }))
        .unwrap();
        let pinned = pin_sources(&app, &Pins::new([(FLEET, "abc123")]));
        let revisions: Vec<&str> = pinned
            .spec
            .sources
            .iter()
            .map(|s| s.target_revision.as_str())
            .collect();
        assert_eq!(revisions, vec!["abc123", "1.0.0", "main"]);
    }
}
