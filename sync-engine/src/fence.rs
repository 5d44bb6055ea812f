//! The write fence: every request that changes anything on any API server (applies,
//! patches, deletes, Events, status) passes one gate that checks this replica still holds
//! the leader Lease, right before the request goes out.
//!
//! # Flow
//!
//! [`Fence::wrap`] puts the gate in front of a [`kube::Client`]; the controller wraps its
//! management client and [`crate::clients::ClusterClients`] wraps every destination
//! cluster's client, so no write path can miss it (reads — `GET`, lists and watches — pass
//! untouched: followers keep their caches warm). Two clients are not wrapped, each behind a
//! narrower guard of its own instead:
//!
//! * the lease manager's: it must be able to take the Lease. Its patches of the Lease are
//!   compare-and-swap, and never overwrite a Lease another replica validly holds
//!   ([`guard_lease`]);
//! * the refresh requester's: a push webhook may reach any replica, and the replica it
//!   reaches asks the leader to refresh by annotating the affected Applications
//!   (`argocd.argoproj.io/refresh`) and `ApplicationSets`
//!   (`argocd.argoproj.io/application-set-refresh`), as Argo CD's webhook handler does. That
//!   annotation is a request to the leader, not fleet state: the leader acts on it and
//!   removes it through its fenced client. The guard ([`refresh_requests_only`]) lets
//!   through nothing but JSON merge patches that set those annotations (and the request's
//!   timestamp) on one Application or `ApplicationSet`; every other request, reads included,
//!   is refused before it is sent.
//!
//! The fence is open while both of these hold:
//! * the lease manager says this replica leads ([`Fence::set_leader`]), and
//! * the Lease object itself, as last seen by a watch on it ([`Fence::observe_lease`]),
//!   names this replica as holder, and was last seen renewed less than one lease duration
//!   ago (a monotonic clock, so a paused process or a stalled watch closes the fence on
//!   its own: when the process resumes, time has passed and every write is refused until
//!   a fresh renewal is seen).
//!
//! # Guarantees
//!
//! * Another replica taking the Lease closes the fence as soon as the watch event arrives
//!   (milliseconds on a healthy API server), not at the next renewal attempt of the lease
//!   manager (which polls once per lease duration).
//! * A refused write fails with [`Fenced`] and is counted ([`Fence::refused`]); nothing
//!   is queued to be sent later.
//!
//! # Caveats
//!
//! * A request that passed the gate just before the Lease changed hands can still reach
//!   the API server after it: the window is one request's flight time. The fence bounds
//!   how late the old leader writes; it does not make writes transactional.
//! * Without leader election ([`Fence::open`]) every write passes: one replica only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::client::Body;

/// The error of a write a fence refused.
#[derive(Debug, thiserror::Error)]
pub enum Fenced {
    /// The leader fence: this replica does not lead.
    #[error("write refused: this replica does not hold the leader Lease")]
    NotLeader,
    /// The per-cluster fence ([`crate::shard`]): another replica syncs this cluster, or
    /// this replica's membership Lease has run out.
    #[error("write refused: this replica does not hold the cluster {cluster}")]
    NotHeld {
        /// The cluster's server key.
        cluster: String,
    },
}

/// The gate every write passes; cheap to clone (one shared state).
#[derive(Clone, Debug)]
pub struct Fence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: no leader election, always open.
    leased: Option<Leased>,
    refused: AtomicU64,
}

#[derive(Debug)]
struct Leased {
    identity: String,
    state: Mutex<LeaseView>,
}

/// What this replica knows of its leadership.
#[derive(Debug, Default, Clone)]
struct LeaseView {
    /// The lease manager's verdict.
    manager_leads: bool,
    /// Until when the last observed renewal of the Lease by this replica is valid.
    held_until: Option<Instant>,
    /// The Lease's resourceVersion at that renewal: a re-list that delivers the same
    /// version again is no new renewal and does not extend `held_until`.
    seen_version: Option<String>,
}

impl Fence {
    /// A fence that is always open: a single replica without leader election.
    #[must_use]
    pub fn open() -> Self {
        Self {
            inner: Arc::new(Inner {
                leased: None,
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// A fence for the replica `identity`, closed until it leads and its Lease is seen.
    pub fn leased(identity: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                leased: Some(Leased {
                    identity: identity.into(),
                    state: Mutex::default(),
                }),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// Records the lease manager's verdict (from its leadership channel).
    pub fn set_leader(&self, leads: bool) {
        if let Some(leased) = &self.inner.leased {
            leased.lock().manager_leads = leads;
        }
    }

    /// Records the Lease object as a watch delivered it (`now` is when it arrived): at
    /// resourceVersion `version`, held by `holder` for `duration` from its last renewal.
    /// A Lease held by someone else closes the fence at once; one held by this replica
    /// keeps it open for `duration` from the moment a new version of it was seen.
    pub fn observe_lease(
        &self,
        holder: Option<&str>,
        version: &str,
        duration: Duration,
        now: Instant,
    ) {
        let Some(leased) = &self.inner.leased else {
            return;
        };
        let mut view = leased.lock();
        if holder != Some(leased.identity.as_str()) {
            view.held_until = None;
            view.seen_version = None;
            return;
        }
        if view.seen_version.as_deref() == Some(version) {
            return;
        }
        view.seen_version = Some(version.to_owned());
        view.held_until = now.checked_add(duration);
    }

    /// Forgets the Lease (its watch failed or the Lease is gone): closed until seen again.
    pub fn lease_unknown(&self) {
        if let Some(leased) = &self.inner.leased {
            let mut view = leased.lock();
            view.held_until = None;
            view.seen_version = None;
        }
    }

    /// Whether a write may go out now.
    #[must_use]
    pub fn permits(&self) -> bool {
        self.permits_at(Instant::now())
    }

    fn permits_at(&self, now: Instant) -> bool {
        match &self.inner.leased {
            None => true,
            Some(leased) => {
                let view = leased.lock();
                view.manager_leads && view.held_until.is_some_and(|until| now < until)
            }
        }
    }

    /// How many writes the fence refused since the process started.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// `client` with the gate in front: a request that would change something fails with
    /// [`Fenced`] (as a [`kube::Error::Service`]) unless [`Fence::permits`] at that moment.
    #[must_use]
    pub fn wrap(&self, client: kube::Client) -> kube::Client {
        let fence = self.clone();
        gated(client, move || {
            if fence.permits() {
                Ok(())
            } else {
                fence.inner.refused.fetch_add(1, Ordering::Relaxed);
                Err(Fenced::NotLeader)
            }
        })
    }
}

/// `client` with a gate in front of every write: `check` runs right before each request
/// that would change something, and a refusal fails the request unsent. Reads pass.
/// Shared by the leader fence and the per-cluster fence of [`crate::shard`].
pub(crate) fn gated(
    client: kube::Client,
    check: impl Fn() -> Result<(), Fenced> + Send + Sync + 'static,
) -> kube::Client {
    let check = Arc::new(check);
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let check = check.clone();
        let client = client.clone();
        async move {
            if is_write(request.method())
                && let Err(refused) = check()
            {
                tracing::debug!(method = %request.method(), uri = %request.uri().path(), %refused, "write fenced");
                return Err(tower::BoxError::from(refused));
            }
            client.send(request).await.map_err(tower::BoxError::from)
        }
    });
    kube::Client::new(service, namespace)
}

impl Leased {
    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseView> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `client` for the lease manager: its patches of the Lease `namespace/name` become
/// compare-and-swap operations that never overwrite a Lease validly held by another
/// replica.
///
/// kube-lease-manager renews blindly: it patches `renewTime` and `leaseDurationSeconds`
/// without a resourceVersion, trusting its cached view of the holder. After another
/// replica took the Lease, that renewal rewrites the new holder's duration with our own
/// (shorter) one, and once that runs out the old leader "acquires the expired Lease" and
/// writes again: a split brain the write fence would then let through, since the Lease
/// says so. Here every patch of the Lease first reads it: held by someone else and not
/// expired, the patch is answered with a `409 Conflict` without being sent (the lease
/// manager backs off and re-reads); otherwise the patch is sent with the read
/// resourceVersion as a precondition, so a takeover between the read and the write makes
/// the API server refuse it with a Conflict too.
///
/// Expiry is judged like the lease manager judges it: `renewTime + leaseDurationSeconds`
/// against the local wall clock. Other requests pass untouched.
#[must_use]
pub fn guard_lease(
    client: kube::Client,
    namespace: &str,
    name: &str,
    identity: &str,
) -> kube::Client {
    use k8s_openapi::api::coordination::v1::Lease;

    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}");
    let namespace = namespace.to_owned();
    let name = name.to_owned();
    let identity = identity.to_owned();
    let default_namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let client = client.clone();
        let guarded = request.method() == http::Method::PATCH && request.uri().path() == path;
        let (namespace, name, identity) = (namespace.clone(), name.clone(), identity.clone());
        async move {
            if !guarded {
                return client.send(request).await.map_err(tower::BoxError::from);
            }
            let api: kube::Api<Lease> = kube::Api::namespaced(client.clone(), &namespace);
            let Some(live) = api.get_opt(&name).await? else {
                // Nothing to protect: the API server answers 404 and the manager recreates it.
                return client.send(request).await.map_err(tower::BoxError::from);
            };
            let spec = live.spec.unwrap_or_default();
            if let Some(holder) = held_by_other(&spec, &identity, jiff_now()) {
                tracing::debug!(%holder, "not writing the Lease another replica holds");
                return Ok(conflict(&format!(
                    "the Lease {namespace}/{name} is held by {holder}"
                )));
            }
            let (mut parts, body) = request.into_parts();
            let body = body.collect_bytes().await?;
            let body = with_resource_version(&body, live.metadata.resource_version.as_deref());
            // The body changed size; let the client compute the length again.
            parts.headers.remove(http::header::CONTENT_LENGTH);
            client
                .send(http::Request::from_parts(parts, Body::from(body)))
                .await
                .map_err(tower::BoxError::from)
        }
    });
    kube::Client::new(service, default_namespace)
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// The holder of a Lease that is held by someone other than `identity` and has not
/// expired at `now`. A Lease without renewTime or duration counts as expired (as the
/// lease manager counts it).
fn held_by_other(
    spec: &k8s_openapi::api::coordination::v1::LeaseSpec,
    identity: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Option<String> {
    let holder = spec.holder_identity.as_deref()?;
    if holder == identity {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration =
        k8s_openapi::jiff::SignedDuration::from_secs(i64::from(spec.lease_duration_seconds?));
    let expiry = renewed.checked_add(duration).ok()?;
    (now < expiry).then(|| holder.to_owned())
}

/// `patch` (a JSON object) with `metadata.resourceVersion` set to `version`: the API
/// server then applies it only to that version. Anything else is returned unchanged.
fn with_resource_version(patch: &[u8], version: Option<&str>) -> Vec<u8> {
    let Some(version) = version else {
        return patch.to_vec();
    };
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(patch) else {
        return patch.to_vec();
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return patch.to_vec();
    };
    metadata.insert("resourceVersion".to_owned(), version.into());
    serde_json::to_vec(&object).unwrap_or_else(|_| patch.to_vec())
}

/// The API server's answer to a write whose precondition failed.
fn conflict(message: &str) -> http::Response<Body> {
    refusal(http::StatusCode::CONFLICT, "Conflict", message)
}

/// A `Status` answer as the API server gives it, for a request answered without sending it.
fn refusal(code: http::StatusCode, reason: &str, message: &str) -> http::Response<Body> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut response = http::Response::new(Body::from(status.to_string().into_bytes()));
    *response.status_mut() = code;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `client` (not fenced) for refresh requests only: a request is sent only if it is a JSON
/// merge patch of one Application or `ApplicationSet` that sets refresh-request annotations
/// and nothing else (see `refresh_request`); anything else is answered `403 Forbidden`
/// without being sent. The one write a follower makes (see the module docs): a push webhook
/// reaching a follower must still reach the leader, and the leader alone acts on it.
#[must_use]
pub fn refresh_requests_only(client: kube::Client) -> kube::Client {
    let default_namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await?;
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if let Err(why) = refresh_request(&parts.method, parts.uri.path(), content_type, &body)
            {
                tracing::warn!(method = %parts.method, uri = %parts.uri.path(), why, "not a refresh request: not sent");
                return Ok(refusal(
                    http::StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!("not a refresh request: {why}"),
                ));
            }
            client
                .send(http::Request::from_parts(parts, Body::from(body)))
                .await
                .map_err(tower::BoxError::from)
        }
    });
    kube::Client::new(service, default_namespace)
}

/// Checks that a request only asks for a refresh: `PATCH` of
/// `/apis/argoproj.io/v1alpha1/namespaces/NS/{applications,applicationsets}/NAME` (no
/// subresource) with a JSON merge patch `{"metadata": {"annotations": {...}}}` whose keys are
/// the refresh-request annotations of that kind and whose values are strings (so a request
/// can be made, never removed or anything else changed). Says why not, if not.
fn refresh_request(
    method: &http::Method,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), &'static str> {
    use argosy_crds::consts::{
        APPSET_REFRESH_ANNOTATION, REFRESH_ANNOTATION, REFRESH_TIMESTAMP_ANNOTATION,
    };
    if method != http::Method::PATCH {
        return Err("not a patch");
    }
    let target: Vec<&str> = path
        .strip_prefix("/apis/argoproj.io/v1alpha1/namespaces/")
        .map(|rest| rest.split('/').collect())
        .unwrap_or_default();
    let allowed: &[&str] = match target.as_slice() {
        [namespace, "applications", name] if !namespace.is_empty() && !name.is_empty() => {
            &[REFRESH_ANNOTATION, REFRESH_TIMESTAMP_ANNOTATION]
        }
        [namespace, "applicationsets", name] if !namespace.is_empty() && !name.is_empty() => {
            &[APPSET_REFRESH_ANNOTATION, REFRESH_TIMESTAMP_ANNOTATION]
        }
        _ => return Err("not one Application or ApplicationSet"),
    };
    if content_type != Some("application/merge-patch+json") {
        return Err("not a JSON merge patch");
    }
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the patch is not JSON")?;
    let only = |value: &serde_json::Value, key: &str| {
        value
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get(key))
            .cloned()
    };
    let annotations = only(&document, "metadata")
        .and_then(|metadata| only(&metadata, "annotations"))
        .ok_or("the patch changes more than metadata.annotations")?;
    let annotations = annotations
        .as_object()
        .filter(|a| !a.is_empty())
        .ok_or("the patch sets no annotation")?;
    if annotations
        .iter()
        .all(|(key, value)| allowed.contains(&key.as_str()) && value.is_string())
    {
        Ok(())
    } else {
        Err("the patch sets other annotations, or removes one")
    }
}

/// Keeps `fence` current until both sources end: the lease manager's leadership channel
/// `leader`, and a watch (through `client`, which must not be fenced) on the Lease
/// `namespace/name`, whose own `leaseDurationSeconds` (else `duration`) bounds how long a
/// seen renewal counts.
pub async fn follow(
    fence: Fence,
    client: kube::Client,
    namespace: String,
    name: String,
    duration: Duration,
    mut leader: tokio::sync::watch::Receiver<bool>,
) {
    use futures::StreamExt as _;
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::runtime::{WatchStreamExt as _, watcher};

    let manager = {
        let fence = fence.clone();
        async move {
            loop {
                fence.set_leader(*leader.borrow_and_update());
                if leader.changed().await.is_err() {
                    fence.set_leader(false);
                    return;
                }
            }
        }
    };
    let api: kube::Api<Lease> = kube::Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let lease = watcher(api, config).default_backoff().for_each(|event| {
        let now = Instant::now();
        match event {
            Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                let lease_duration = spec
                    .lease_duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(duration, Duration::from_secs);
                fence.observe_lease(
                    spec.holder_identity.as_deref(),
                    lease
                        .metadata
                        .resource_version
                        .as_deref()
                        .unwrap_or_default(),
                    lease_duration,
                    now,
                );
            }
            Ok(watcher::Event::Delete(_)) => fence.lease_unknown(),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            // The watcher retries by itself; until it sees the Lease again the last seen
            // renewal runs out on the local clock.
            Err(error) => tracing::debug!(%error, "watching the leader Lease"),
        }
        async {}
    });
    futures::join!(manager, lease);
}

/// Whether a request changes state on the API server (everything but reads and watches).
fn is_write(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// Whether `error` is a write the fence refused (not a failure of the cluster).
#[must_use]
pub fn is_fenced(error: &kube::Error) -> bool {
    match error {
        kube::Error::Service(inner) => inner.downcast_ref::<Fenced>().is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    const LEASE: Duration = Duration::from_secs(10);

    #[test]
    fn an_open_fence_always_permits() {
        assert!(Fence::open().permits());
    }

    #[test]
    fn a_leased_fence_needs_both_the_manager_and_the_lease() {
        let fence = Fence::leased("me");
        let now = Instant::now();
        assert!(!fence.permits_at(now), "closed until anything is known");
        fence.set_leader(true);
        assert!(!fence.permits_at(now), "the Lease has not been seen yet");
        fence.observe_lease(Some("me"), "1", LEASE, now);
        assert!(fence.permits_at(now));
        fence.set_leader(false);
        assert!(!fence.permits_at(now), "the manager stepped down");
    }

    #[test]
    fn another_holder_closes_the_fence_at_once() {
        let fence = Fence::leased("me");
        let now = Instant::now();
        fence.set_leader(true);
        fence.observe_lease(Some("me"), "1", LEASE, now);
        assert!(fence.permits_at(now));
        fence.observe_lease(Some("other"), "2", LEASE, now);
        assert!(
            !fence.permits_at(now),
            "the manager still thinks it leads, the Lease says otherwise"
        );
        fence.observe_lease(None, "3", LEASE, now);
        assert!(!fence.permits_at(now));
    }

    #[test]
    fn an_unrenewed_lease_expires_on_the_local_clock() {
        let fence = Fence::leased("me");
        let now = Instant::now();
        fence.set_leader(true);
        fence.observe_lease(Some("me"), "1", LEASE, now);
        assert!(fence.permits_at((now + LEASE).checked_sub(Duration::from_millis(1)).unwrap()));
        assert!(
            !fence.permits_at(now + LEASE),
            "no renewal seen for a whole lease duration (paused process, stalled watch)"
        );
        fence.observe_lease(Some("me"), "1", LEASE, now + LEASE);
        assert!(
            !fence.permits_at(now + LEASE),
            "a re-list of the same version is no renewal"
        );
        fence.observe_lease(Some("me"), "2", LEASE, now + LEASE);
        assert!(fence.permits_at(now + LEASE));
        fence.lease_unknown();
        assert!(!fence.permits_at(now + LEASE));
    }

    #[test]
    fn reads_pass_and_writes_are_gated() {
        for read in [http::Method::GET, http::Method::HEAD] {
            assert!(!is_write(&read));
        }
        for write in [
            http::Method::POST,
            http::Method::PUT,
            http::Method::PATCH,
            http::Method::DELETE,
        ] {
            assert!(is_write(&write));
        }
    }

    fn lease_spec(holder: &str, renewed: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(renewed.parse().expect("a timestamp"))),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn only_an_unexpired_lease_of_another_replica_is_protected() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().expect("a timestamp");
        let other = lease_spec("other", "2026-01-01T00:00:00Z", 3600);
        assert_eq!(held_by_other(&other, "me", now).as_deref(), Some("other"));
        assert_eq!(held_by_other(&other, "other", now), None, "our own Lease");
        let expired = lease_spec("other", "2026-01-01T00:00:00Z", 5);
        assert_eq!(held_by_other(&expired, "me", now), None);
        assert_eq!(held_by_other(&LeaseSpec::default(), "me", now), None);
        let unrenewed = LeaseSpec {
            renew_time: None,
            ..other
        };
        assert_eq!(held_by_other(&unrenewed, "me", now), None);
    }

    #[test]
    fn a_patch_gets_the_resource_version_as_precondition() {
        let patch = br#"{"kind":"Lease","spec":{"renewTime":"x"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&with_resource_version(patch, Some("42"))).expect("JSON");
        assert_eq!(out["metadata"]["resourceVersion"], "42");
        assert_eq!(out["spec"]["renewTime"], "x");
        assert_eq!(with_resource_version(patch, None), patch.to_vec());
        assert_eq!(
            with_resource_version(b"not json", Some("1")),
            b"not json".to_vec()
        );
    }

    /// A fake API server holding one Lease: answers GETs with it and records patches.
    fn fake_lease_server(
        lease: serde_json::Value,
    ) -> (kube::Client, Arc<Mutex<Vec<serde_json::Value>>>) {
        let patches = Arc::new(Mutex::new(Vec::new()));
        let seen = patches.clone();
        let client = kube::Client::new(
            tower::service_fn(move |request: http::Request<Body>| {
                let lease = lease.clone();
                let seen = seen.clone();
                async move {
                    if request.method() == http::Method::PATCH {
                        let body = request.into_body().collect_bytes().await?;
                        seen.lock()
                            .expect("not poisoned")
                            .push(serde_json::from_slice(&body)?);
                    }
                    Ok::<_, tower::BoxError>(http::Response::new(Body::from(
                        lease.to_string().into_bytes(),
                    )))
                }
            }),
            "default",
        );
        (client, patches)
    }

    const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l";

    fn renewal() -> http::Request<Body> {
        http::Request::patch(LEASE_PATH)
            .header(
                http::header::CONTENT_TYPE,
                "application/strategic-merge-patch+json",
            )
            .body(Body::from(
                br#"{"spec":{"leaseDurationSeconds":5}}"#.to_vec(),
            ))
            .expect("a request")
    }

    #[tokio::test]
    async fn the_lease_manager_does_not_overwrite_a_lease_held_by_another() {
        let renewed = MicroTime(Timestamp::now());
        let (inner, patches) = fake_lease_server(serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "7"},
            "spec": {"holderIdentity": "other", "renewTime": renewed, "leaseDurationSeconds": 3600},
        }));
        let client = guard_lease(inner, "ns", "l", "me");
        // Through `Api`, which turns the answer into an error as the lease manager sees it.
        let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(client, "ns");
        let patch = kube::api::Patch::Strategic(serde_json::json!({
            "spec": {"leaseDurationSeconds": 5},
        }));
        let error = api
            .patch("l", &kube::api::PatchParams::default(), &patch)
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict"),
            "{error:?}"
        );
        assert!(
            patches.lock().expect("not poisoned").is_empty(),
            "nothing was sent"
        );
    }

    #[tokio::test]
    async fn the_lease_managers_own_renewal_is_conditional_on_the_version_it_read() {
        let renewed = MicroTime(Timestamp::now());
        let (inner, patches) = fake_lease_server(serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "7"},
            "spec": {"holderIdentity": "me", "renewTime": renewed, "leaseDurationSeconds": 5},
        }));
        let client = guard_lease(inner, "ns", "l", "me");
        client.send(renewal()).await.expect("renewed");
        let sent = patches.lock().expect("not poisoned").clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["metadata"]["resourceVersion"], "7");
        assert_eq!(sent[0]["spec"]["leaseDurationSeconds"], 5);
    }

    #[test]
    fn only_refresh_annotation_patches_are_refresh_requests() {
        const APP: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/web";
        const APPSET: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/fleet";
        const MERGE: Option<&str> = Some("application/merge-patch+json");
        let patch = http::Method::PATCH;
        let app_request = br#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal","argocd.argoproj.io/refresh-timestamp":"t"}}}"#;
        let appset_request =
            br#"{"metadata":{"annotations":{"argocd.argoproj.io/application-set-refresh":"true"}}}"#;
        assert_eq!(refresh_request(&patch, APP, MERGE, app_request), Ok(()));
        assert_eq!(
            refresh_request(&patch, APPSET, MERGE, appset_request),
            Ok(())
        );

        let status = format!("{APP}/status");
        let refused: [(&http::Method, &str, Option<&str>, &[u8]); 11] = [
            (&http::Method::GET, APP, MERGE, b""),
            (&http::Method::DELETE, APP, MERGE, b""),
            (&http::Method::PUT, APP, MERGE, app_request),
            (&patch, &status, MERGE, app_request),
            (&patch, "/api/v1/namespaces/argocd/secrets/web", MERGE, app_request),
            (&patch, APP, Some("application/apply-patch+yaml"), app_request),
            // Each kind only takes its own request.
            (&patch, APP, MERGE, appset_request),
            (&patch, APP, MERGE, br#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":null}}}"#),
            (&patch, APP, MERGE, br#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal","team":"x"}}}"#),
            (&patch, APP, MERGE, br#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"},"labels":{"a":"b"}}}"#),
            (&patch, APP, MERGE, br#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}},"spec":{}}"#),
        ];
        for (method, path, content_type, body) in refused {
            assert!(
                refresh_request(method, path, content_type, body).is_err(),
                "{method} {path} {content_type:?} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// The refresh requester's client sends refresh requests and answers anything else
    /// with 403 before it leaves the process.
    #[tokio::test]
    async fn the_refresh_requester_sends_nothing_but_refresh_requests() {
        let reached = Arc::new(AtomicU64::new(0));
        let seen = reached.clone();
        let inner = kube::Client::new(
            tower::service_fn(move |_request: http::Request<Body>| {
                seen.fetch_add(1, Ordering::Relaxed);
                async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
                        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#
                            .to_vec(),
                    )))
                }
            }),
            "default",
        );
        let client = refresh_requests_only(inner);
        let cm: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client.clone(), "argocd");
        let error = cm.get("x").await.expect_err("refused");
        assert!(
            matches!(&error, kube::Error::Api(status) if status.code == 403),
            "{error:?}"
        );
        let error = cm
            .patch(
                "x",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(serde_json::json!({"data": {"a": "b"}})),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, kube::Error::Api(status) if status.code == 403),
            "{error:?}"
        );
        assert_eq!(reached.load(Ordering::Relaxed), 0, "nothing was sent");

        let request = http::Request::patch(
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/fleet",
        )
        .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
        .body(Body::from(
            br#"{"metadata":{"annotations":{"argocd.argoproj.io/application-set-refresh":"true"}}}"#
                .to_vec(),
        ))
        .expect("a request");
        client.send(request).await.expect("sent");
        assert_eq!(reached.load(Ordering::Relaxed), 1);
    }

    /// A wrapped client refuses a write before it leaves the process (the inner client
    /// would fail the test if it were reached) and lets reads through to it.
    #[tokio::test]
    async fn a_closed_fence_refuses_writes_before_they_are_sent() {
        let reached = Arc::new(AtomicU64::new(0));
        let seen = reached.clone();
        let inner = kube::Client::new(
            tower::service_fn(move |_request: http::Request<Body>| {
                seen.fetch_add(1, Ordering::Relaxed);
                async {
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(200)
                            .body(Body::from(b"{}".to_vec()))
                            .expect("a response"),
                    )
                }
            }),
            "default",
        );
        let fence = Fence::leased("me");
        let client = fence.wrap(inner);
        let write = http::Request::patch("/api/v1/namespaces/default/configmaps/x")
            .body(Body::from(b"{}".to_vec()))
            .expect("a request");
        let error = client.send(write).await.expect_err("fenced");
        assert!(is_fenced(&error), "{error:?}");
        assert_eq!(fence.refused(), 1);
        assert_eq!(reached.load(Ordering::Relaxed), 0, "nothing was sent");

        let read = http::Request::get("/api/v1/namespaces/default/configmaps/x")
            .body(Body::empty())
            .expect("a request");
        client.send(read).await.expect("reads pass");
        assert_eq!(reached.load(Ordering::Relaxed), 1);

        fence.set_leader(true);
        fence.observe_lease(Some("me"), "1", LEASE, Instant::now());
        let write = http::Request::delete("/api/v1/namespaces/default/configmaps/x")
            .body(Body::empty())
            .expect("a request");
        client.send(write).await.expect("the leader writes");
        assert_eq!(reached.load(Ordering::Relaxed), 2);
        assert_eq!(fence.refused(), 1);
    }
}
