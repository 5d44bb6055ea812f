//! Well-known names shared with Argo CD: labels, annotations, finalizers, servers.

/// API group of all Argo CD kinds.
pub const GROUP: &str = "argoproj.io";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value of all Argo CD kinds.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Label that marks a Secret as a declarative cluster (value [`SECRET_TYPE_CLUSTER`]).
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// Value of [`SECRET_TYPE_LABEL`] for cluster Secrets.
pub const SECRET_TYPE_CLUSTER: &str = "cluster";

/// Finalizer that makes deleting an Application cascade to its resources.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// Annotation that asks the `ApplicationSet` controller to refresh now (any value; push
/// webhooks set `"true"`). Removed by the controller after a successful reconcile.
pub const APPSET_REFRESH_ANNOTATION: &str = "argocd.argoproj.io/application-set-refresh";
/// Annotation that asks the Application controller to refresh now: `hard` also drops
/// rendered-manifest caches, any other value is a normal refresh. Removed once acted on.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
/// A unique time set next to a refresh request, so that a request arriving while an
/// earlier one is being acted on is told apart from it (and not removed with it).
pub const REFRESH_TIMESTAMP_ANNOTATION: &str = "argocd.argoproj.io/refresh-timestamp";

/// `kubectl apply`'s copy of the whole object it applied. On a cluster Secret it holds the
/// Secret's data, bearer token included, so it is never read into a [`crate::Cluster`].
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Server URL of the cluster the controller runs in.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// Name of the implicit local cluster.
pub const IN_CLUSTER_NAME: &str = "in-cluster";

/// Annotations the `ApplicationSet` controller never overwrites on live Applications.
pub const ALWAYS_PRESERVED_ANNOTATIONS: [&str; 3] = [
    "notified.notifications.argoproj.io",
    REFRESH_ANNOTATION,
    "argocd.argoproj.io/hydrate",
];
