//! Refresh requests, made and honoured as Argo CD does.
//!
//! * `argocd.argoproj.io/refresh: normal|hard` on an Application: the Application
//!   controller (the leader) checks the app's repositories at once, whatever the refresh
//!   interval (`hard`: and drops what was rendered from them), reconciles, and removes the
//!   request once the reconcile got past reading Git.
//! * `argocd.argoproj.io/application-set-refresh` on an ApplicationSet: the ApplicationSet
//!   controller checks every repository its generators read at once, regenerates, and
//!   removes the request after a successful reconcile.
//! * A push webhook, on whichever replica receives it, makes these requests for the
//!   Applications and ApplicationSets that read the pushed branch ([`Requester`]): a
//!   follower cannot act on a push (it does not write), the leader can. This is the one
//!   write that does not pass the write fence (see `argosy_sync_engine::fence`).
//!
//! Each request made here carries `argocd.argoproj.io/refresh-timestamp`, and a request is
//! removed with a JSON patch that first tests the value and timestamp it was acted on with:
//! a request made while an earlier one was being acted on changes them, so it stays, and
//! its own watch event reconciles again (Argo CD's `removeRefreshAnnotationCombo`).

use argosy_crds::applicationset::{Generator, GitGenerator};
use argosy_crds::consts::{
    APPSET_REFRESH_ANNOTATION, REFRESH_ANNOTATION, REFRESH_TIMESTAMP_ANNOTATION,
};
use argosy_crds::{Application, ApplicationSet};
use json_patch::jsonptr::PointerBuf;
use json_patch::{PatchOperation, RemoveOperation, TestOperation};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::webhook::Push;

/// The field manager of refresh-request traffic: the requests a push webhook makes and
/// their removal by the controllers (so audit logs tell it from fleet-state writes).
pub const FIELD_MANAGER: &str = "argosy-refresh";

/// A refresh request as found on an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    annotation: &'static str,
    value: String,
    timestamp: Option<String>,
}

impl Request {
    /// The request on an Application (`argocd.argoproj.io/refresh`), if any.
    pub fn of_app(app: &Application) -> Option<Request> {
        Self::of(app, REFRESH_ANNOTATION)
    }

    /// The request on an ApplicationSet (`argocd.argoproj.io/application-set-refresh`).
    pub fn of_appset(appset: &ApplicationSet) -> Option<Request> {
        Self::of(appset, APPSET_REFRESH_ANNOTATION)
    }

    fn of<K: Resource>(object: &K, annotation: &'static str) -> Option<Request> {
        let annotations = object.meta().annotations.as_ref()?;
        Some(Request {
            annotation,
            value: annotations.get(annotation)?.clone(),
            timestamp: annotations.get(REFRESH_TIMESTAMP_ANNOTATION).cloned(),
        })
    }

    /// Whether rendered results must be dropped too (`refresh: hard`; any other value of
    /// an Application's request is a normal refresh, as in Argo CD).
    pub fn is_hard(&self) -> bool {
        self.annotation == REFRESH_ANNOTATION && self.value == "hard"
    }

    /// The JSON patch that removes this request: it tests that the request still has the
    /// value and timestamp it was acted on with, so the API server refuses it (422) when a
    /// newer request replaced it meanwhile, or when it is already gone.
    pub fn removal(&self) -> Patch<()> {
        let pointer = |key: &str| PointerBuf::from_tokens(["metadata", "annotations", key]);
        let mut operations = vec![PatchOperation::Test(TestOperation {
            path: pointer(self.annotation),
            value: Value::from(self.value.as_str()),
        })];
        if let Some(timestamp) = &self.timestamp {
            operations.push(PatchOperation::Test(TestOperation {
                path: pointer(REFRESH_TIMESTAMP_ANNOTATION),
                value: Value::from(timestamp.as_str()),
            }));
            operations.push(PatchOperation::Remove(RemoveOperation {
                path: pointer(REFRESH_TIMESTAMP_ANNOTATION),
            }));
        }
        operations.push(PatchOperation::Remove(RemoveOperation {
            path: pointer(self.annotation),
        }));
        Patch::Json(json_patch::Patch(operations))
    }
}

/// Whether a removal failed because the request changed or went meanwhile (its JSON patch
/// test failed): nothing to do, the change's own watch event reconciles again.
pub fn superseded(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 422 || status.code == 404)
}

/// Whether `push` moved a source of `app`: one whose `repoURL` names the pushed repository
/// and whose `targetRevision` the push moved (Argo CD's webhook handler).
pub fn moves_app(push: &Push, app: &Application) -> bool {
    app.spec
        .source
        .iter()
        .chain(&app.spec.sources)
        .any(|s| push.names(&s.repo_url) && push.moves(&s.target_revision))
}

/// Whether `push` moved what a git generator of `appset` reads, at any depth of matrix
/// and merge generators (Argo CD's ApplicationSet webhook handler).
pub fn moves_appset(push: &Push, appset: &ApplicationSet) -> bool {
    generators_moved(push, &appset.spec.generators)
}

fn generators_moved(push: &Push, generators: &[Generator]) -> bool {
    generators.iter().any(|g| {
        g.git
            .as_ref()
            .is_some_and(|git| git_generator_moved(push, git))
            || g.matrix
                .iter()
                .chain(&g.merge)
                .any(|combination| generators_moved(push, &combination.generators))
    })
}

/// A git generator whose URL or revision is a template (a matrix child fed by its sibling's
/// parameters) may read any repository and revision: it counts as moved. (Argo CD
/// generates the sibling's parameters to find out; a spare refresh costs less.)
fn git_generator_moved(push: &Push, git: &GitGenerator) -> bool {
    let templated = |text: &str| text.contains("{{");
    (templated(&git.repo_url) || push.names(&git.repo_url))
        && (templated(&git.revision) || push.moves(&git.revision))
}

/// Makes refresh requests on behalf of a push webhook, on any replica. Its client sends
/// nothing but merge patches of the request annotations (see
/// `argosy_sync_engine::fence::refresh_requests_only`), and this type builds no other.
#[derive(Clone)]
pub struct Requester {
    client: Client,
}

/// A refresh request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("requesting a refresh of Application {namespace}/{name}: {source}")]
    RequestAppRefresh {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("requesting a refresh of ApplicationSet {namespace}/{name}: {source}")]
    RequestAppSetRefresh {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A bounded label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::RequestAppRefresh { .. } => "request_app_refresh",
            Error::RequestAppSetRefresh { .. } => "request_appset_refresh",
        }
    }
}

impl Requester {
    /// A requester over `unfenced`, the management client without the write fence: a
    /// follower must be able to make requests.
    pub fn new(unfenced: Client) -> Requester {
        Requester {
            client: argosy_sync_engine::fence::refresh_requests_only(unfenced),
        }
    }

    /// Asks for a normal refresh of the Application `namespace/name`.
    pub async fn refresh_app(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), namespace);
        self.request(&api, name, REFRESH_ANNOTATION, "normal")
            .await
            .map_err(|source| Error::RequestAppRefresh {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })
    }

    /// Asks for a refresh of the ApplicationSet `namespace/name`.
    pub async fn refresh_appset(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let api: Api<ApplicationSet> = Api::namespaced(self.client.clone(), namespace);
        self.request(&api, name, APPSET_REFRESH_ANNOTATION, "true")
            .await
            .map_err(|source| Error::RequestAppSetRefresh {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })
    }

    async fn request<K>(
        &self,
        api: &Api<K>,
        name: &str,
        annotation: &str,
        value: &str,
    ) -> Result<(), kube::Error>
    where
        K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        // A new timestamp each time: a request made while the previous one is being acted
        // on is then a change, not a no-op, and is not removed with it.
        let timestamp = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"metadata": {"annotations": {
            annotation: value,
            REFRESH_TIMESTAMP_ANNOTATION: timestamp,
        }}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch_metadata(name, &params, &Patch::Merge(&patch))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(annotations: Value, spec: Value) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "argocd", "annotations": annotations},
            "spec": spec,
        }))
        .expect("an Application")
    }

    fn push(url: &str, revision: &str, touched_head: bool) -> Push {
        Push {
            urls: vec![url.to_owned()],
            revision: Some(revision.to_owned()),
            touched_head,
        }
    }

    #[test]
    fn a_request_is_read_with_its_kind_and_removed_only_as_it_was_seen() {
        let none = app(json!({"team": "a"}), json!({}));
        assert_eq!(Request::of_app(&none), None);

        let hard = app(
            json!({REFRESH_ANNOTATION: "hard", REFRESH_TIMESTAMP_ANNOTATION: "t1"}),
            json!({}),
        );
        let request = Request::of_app(&hard).expect("a request");
        assert!(request.is_hard());
        let Patch::Json(patch) = request.removal() else {
            panic!("a JSON patch");
        };
        assert_eq!(
            serde_json::to_value(&patch).expect("JSON"),
            json!([
                {"op": "test", "path": "/metadata/annotations/argocd.argoproj.io~1refresh", "value": "hard"},
                {"op": "test", "path": "/metadata/annotations/argocd.argoproj.io~1refresh-timestamp", "value": "t1"},
                {"op": "remove", "path": "/metadata/annotations/argocd.argoproj.io~1refresh-timestamp"},
                {"op": "remove", "path": "/metadata/annotations/argocd.argoproj.io~1refresh"},
            ])
        );
        // Any value but `hard` is a normal refresh; without a timestamp only the value is
        // tested.
        let normal = app(json!({REFRESH_ANNOTATION: "yes"}), json!({}));
        let request = Request::of_app(&normal).expect("a request");
        assert!(!request.is_hard());
        let mut doc = serde_json::to_value(&normal).expect("JSON");
        let Patch::Json(patch) = request.removal() else {
            panic!("a JSON patch");
        };
        json_patch::patch(&mut doc, &patch).expect("applies to what it was made from");
        assert_eq!(doc.pointer("/metadata/annotations"), Some(&json!({})));

        // A newer request (another value or timestamp) makes the removal fail.
        let Patch::Json(patch) = Request::of_app(&hard).expect("a request").removal() else {
            panic!("a JSON patch");
        };
        for newer in [
            json!({REFRESH_ANNOTATION: "hard", REFRESH_TIMESTAMP_ANNOTATION: "t2"}),
            json!({REFRESH_ANNOTATION: "normal", REFRESH_TIMESTAMP_ANNOTATION: "t1"}),
            json!({REFRESH_TIMESTAMP_ANNOTATION: "t1"}),
        ] {
            let mut doc = serde_json::to_value(app(newer.clone(), json!({}))).expect("JSON");
            assert!(json_patch::patch(&mut doc, &patch).is_err(), "{newer}");
        }
    }

    #[test]
    fn an_appsets_request_is_any_value_of_its_annotation() {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "metadata": {"name": "fleet", "namespace": "argocd",
                         "annotations": {APPSET_REFRESH_ANNOTATION: "true"}},
            "spec": {"generators": [], "template": {"metadata": {}, "spec": {}}},
        }))
        .expect("an ApplicationSet");
        let request = Request::of_appset(&appset).expect("a request");
        assert!(!request.is_hard());
        assert_eq!(
            Request::of_app(&app(json!({APPSET_REFRESH_ANNOTATION: "true"}), json!({}))),
            None
        );
    }

    #[test]
    fn a_push_moves_the_apps_deployed_from_its_branch() {
        let single = app(
            json!({}),
            json!({"source": {"repoURL": "git@github.com:org/fleet.git", "targetRevision": "main"}}),
        );
        let multi = app(
            json!({}),
            json!({"sources": [
                {"repoURL": "https://github.com/org/charts", "targetRevision": "v2"},
                {"repoURL": "https://github.com/org/fleet", "targetRevision": "HEAD"},
            ]}),
        );
        let main = push("https://github.com/org/fleet", "main", true);
        assert!(moves_app(&main, &single));
        assert!(moves_app(&main, &multi), "HEAD is main");
        let release = push("https://github.com/org/fleet", "release", false);
        assert!(!moves_app(&release, &single) && !moves_app(&release, &multi));
        let chart_tag = push("https://github.com/org/charts.git", "v2", false);
        assert!(!moves_app(&chart_tag, &single) && moves_app(&chart_tag, &multi));
        let elsewhere = push("https://github.com/org/other", "main", true);
        assert!(!moves_app(&elsewhere, &single) && !moves_app(&elsewhere, &multi));
    }

    #[test]
    fn a_push_moves_the_appsets_whose_git_generators_read_it_at_any_depth() {
        let appset = |generators: Value| -> ApplicationSet {
            serde_json::from_value(json!({
                "metadata": {"name": "fleet", "namespace": "argocd"},
                "spec": {"generators": generators, "template": {"metadata": {}, "spec": {}}},
            }))
            .expect("an ApplicationSet")
        };
        let git = |url: &str, revision: &str| json!({"git": {"repoURL": url, "revision": revision, "directories": [{"path": "*"}]}});
        let main = push("https://github.com/org/fleet", "main", true);
        assert!(moves_appset(
            &main,
            &appset(json!([git("https://github.com/org/fleet.git", "HEAD")]))
        ));
        assert!(!moves_appset(
            &main,
            &appset(json!([git("https://github.com/org/fleet.git", "release")]))
        ));
        assert!(!moves_appset(
            &main,
            &appset(json!([{"list": {"elements": []}}]))
        ));
        let nested = json!([{"matrix": {"generators": [
            {"clusters": {}},
            {"merge": {"mergeKeys": ["path"], "generators": [
                {"list": {"elements": []}},
                git("git@github.com:org/fleet.git", "main"),
            ]}},
        ]}}]);
        assert!(moves_appset(&main, &appset(nested)));
        let templated = json!([{"matrix": {"generators": [
            {"list": {"elements": [{"repo": "https://github.com/org/fleet"}]}},
            git("{{repo}}", "main"),
        ]}}]);
        assert!(moves_appset(&main, &appset(templated)));
        let elsewhere = push("https://github.com/org/other", "main", true);
        assert!(!moves_appset(
            &elsewhere,
            &appset(json!([git("https://github.com/org/fleet", "main")]))
        ));
    }
}
