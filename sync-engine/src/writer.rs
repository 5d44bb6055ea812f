//! The writes a sync and a finalizer make on a destination cluster, as one trait.
//!
//! [`crate::execute`] is written against [`ClusterWriter`] rather than a `kube::Client`, so
//! the order of its requests (waves, hooks, prunes, deletions) is tested with a fake
//! writer and no cluster. [`ClusterConn`] is the real writer: every method is one request
//! through the connection's (fenced) request client.

use std::future::Future;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams,
    PropagationPolicy,
};
use serde_json::Value;

use crate::clients::{ClusterConn, Scope};
use crate::resource::ObjKey;
use crate::ssa::FIELD_MANAGER;

/// How an object kind is reached on its cluster.
#[derive(Clone, Debug)]
pub struct Reach {
    /// The API resource serving the kind.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
}

/// The cluster requests of a sync and of an Application's finalizer. Each method is one
/// request and returns the API server's answer as is: the callers decide what a 404 or
/// a conflict means for their step.
///
/// `reach` says how `key`'s kind is served (resource and scope); an object of a
/// namespaced kind with an empty namespace is addressed cluster-wide, as `kubectl` would.
pub trait ClusterWriter: Send + Sync {
    /// Server-side apply of `object` at `key`, field manager [`FIELD_MANAGER`], conflicts
    /// forced (Argosy owns what it applies).
    fn apply(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &Value,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Creates `object` (hooks; `Replace=true` objects that do not exist yet).
    fn create(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Replaces (PUT) the object at `key` with `object`, whose `resourceVersion` is the
    /// live one (`Replace=true`).
    fn replace(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> impl Future<Output = kube::Result<DynamicObject>> + Send;

    /// Deletes the object at `key` with background propagation: the API server deletes
    /// it at once and the garbage collector its dependents.
    fn delete(&self, reach: &Reach, key: &ObjKey) -> impl Future<Output = kube::Result<()>> + Send;

    /// Whether namespace `name` exists.
    fn namespace_exists(&self, name: &str) -> impl Future<Output = kube::Result<bool>> + Send;

    /// Creates namespace `name` by server-side apply (field manager [`FIELD_MANAGER`],
    /// not forced: a namespace someone else manages is left to them).
    fn apply_namespace(&self, name: &str) -> impl Future<Output = kube::Result<()>> + Send;
}

impl ClusterConn {
    fn api_for(&self, reach: &Reach, namespace: &str) -> Api<DynamicObject> {
        match reach.scope {
            Scope::Namespaced if !namespace.is_empty() => {
                Api::namespaced_with(self.client.clone(), namespace, &reach.resource)
            }
            _ => Api::all_with(self.client.clone(), &reach.resource),
        }
    }
}

/// Background propagation.
fn background() -> DeleteParams {
    DeleteParams {
        // Foreground deletion waits on the garbage collector's finalizer; background
        // deletes at once and lets the collector clean up dependents.
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

impl ClusterWriter for ClusterConn {
    async fn apply(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &Value,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .patch(
                &key.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
    }

    async fn create(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .create(&PostParams::default(), object)
            .await
    }

    async fn replace(
        &self,
        reach: &Reach,
        key: &ObjKey,
        object: &DynamicObject,
    ) -> kube::Result<DynamicObject> {
        self.api_for(reach, &key.namespace)
            .replace(&key.name, &PostParams::default(), object)
            .await
    }

    async fn delete(&self, reach: &Reach, key: &ObjKey) -> kube::Result<()> {
        self.api_for(reach, &key.namespace)
            .delete(&key.name, &background())
            .await
            .map(|_| ())
    }

    async fn namespace_exists(&self, name: &str) -> kube::Result<bool> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.get_opt(name).await.map(|ns| ns.is_some())
    }

    async fn apply_namespace(&self, name: &str) -> kube::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&ns))
            .await
            .map(|_| ())
    }
}

/// A [`ClusterWriter`] for unit tests: records every request as one line (`apply
/// ConfigMap/cfg`, `replace ConfigMap/r@7` with the resourceVersion sent, `delete Job/x`,
/// `get Namespace/ns`) and answers at once, from the request itself, or with the error it
/// was told to give for that line.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{BTreeMap, BTreeSet};
    use std::future::{Future, ready};
    use std::sync::Mutex;

    use kube::api::DynamicObject;
    use serde_json::{Value, json};

    use super::{ClusterWriter, Reach};
    use crate::resource::ObjKey;

    /// The recording fake; see the module.
    #[derive(Default)]
    pub(crate) struct FakeWriter {
        requests: Mutex<Vec<String>>,
        /// Request line -> (HTTP code, message) of the error to answer with.
        failures: BTreeMap<String, (u16, String)>,
        /// Object name -> fields merged into every answer for it (e.g. a status).
        responses: BTreeMap<String, Value>,
        namespaces: BTreeSet<String>,
    }

    /// A Kubernetes API error as kube returns it.
    pub(crate) fn api_status(code: u16, message: &str) -> kube::Error {
        let status = serde_json::from_value(json!({
            "status": "Failure", "code": code, "reason": "Test", "message": message,
        }))
        .expect("a Status");
        kube::Error::Api(Box::new(status))
    }

    impl FakeWriter {
        /// Answers request `line` with an API error.
        pub(crate) fn fail(mut self, line: &str, code: u16, message: &str) -> Self {
            self.failures
                .insert(line.to_owned(), (code, message.to_owned()));
            self
        }

        /// Merges `extra` into every answer about objects named `name`.
        pub(crate) fn respond(mut self, name: &str, extra: Value) -> Self {
            self.responses.insert(name.to_owned(), extra);
            self
        }

        /// Namespace `name` exists.
        pub(crate) fn with_namespace(mut self, name: &str) -> Self {
            self.namespaces.insert(name.to_owned());
            self
        }

        /// Every request so far, in order.
        pub(crate) fn requests(&self) -> Vec<String> {
            self.requests.lock().expect("not poisoned").clone()
        }

        fn record(&self, line: String) -> kube::Result<()> {
            let failure = self.failures.get(&line).cloned();
            self.requests.lock().expect("not poisoned").push(line);
            match failure {
                Some((code, message)) => Err(api_status(code, &message)),
                None => Ok(()),
            }
        }

        fn answer(&self, key: &ObjKey, object: Value) -> kube::Result<DynamicObject> {
            let mut object = object;
            if let Some(extra) = self.responses.get(&key.name) {
                merge(&mut object, extra.clone());
            }
            if object.pointer("/metadata/resourceVersion").is_none() {
                object["metadata"]["resourceVersion"] = json!("1");
            }
            serde_json::from_value(object).map_err(kube::Error::SerdeError)
        }

        fn write(&self, line: String, key: &ObjKey, object: Value) -> kube::Result<DynamicObject> {
            self.record(line)?;
            self.answer(key, object)
        }
    }

    /// Merges `b` into `a`, objects key by key.
    pub(crate) fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn line(verb: &str, key: &ObjKey) -> String {
        format!("{verb} {}/{}", key.kind, key.name)
    }

    fn to_value(object: &DynamicObject) -> Value {
        serde_json::to_value(object).expect("a DynamicObject is JSON")
    }

    impl ClusterWriter for FakeWriter {
        fn apply(
            &self,
            _reach: &Reach,
            key: &ObjKey,
            object: &Value,
        ) -> impl Future<Output = kube::Result<DynamicObject>> + Send {
            ready(self.write(line("apply", key), key, object.clone()))
        }

        fn create(
            &self,
            _reach: &Reach,
            key: &ObjKey,
            object: &DynamicObject,
        ) -> impl Future<Output = kube::Result<DynamicObject>> + Send {
            ready(self.write(line("create", key), key, to_value(object)))
        }

        fn replace(
            &self,
            _reach: &Reach,
            key: &ObjKey,
            object: &DynamicObject,
        ) -> impl Future<Output = kube::Result<DynamicObject>> + Send {
            let version = object.metadata.resource_version.clone().unwrap_or_default();
            let line = format!("{}@{version}", line("replace", key));
            ready(self.write(line, key, to_value(object)))
        }

        fn delete(
            &self,
            _reach: &Reach,
            key: &ObjKey,
        ) -> impl Future<Output = kube::Result<()>> + Send {
            ready(self.record(line("delete", key)))
        }

        fn namespace_exists(&self, name: &str) -> impl Future<Output = kube::Result<bool>> + Send {
            let result = self
                .record(format!("get Namespace/{name}"))
                .map(|()| self.namespaces.contains(name));
            ready(result)
        }

        fn apply_namespace(&self, name: &str) -> impl Future<Output = kube::Result<()>> + Send {
            ready(self.record(format!("apply Namespace/{name}")))
        }
    }
}
