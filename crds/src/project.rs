//! The tenant boundary: what an `AppProject` lets its Applications read from and write to.
//!
//! Pure and compiled once per project: [`ProjectPolicy::new`] takes the `AppProject` and
//! the clusters whose Secret names the project (Argo CD's project-scoped clusters) and
//! answers the questions the `ApplicationSet` controller asks before it creates an
//! Application and the sync engine asks before it writes anything:
//!
//! - may an Application in this namespace use the project ([`ProjectPolicy::check_app_namespace`],
//!   `sourceNamespaces`, Argo CD's `IsAppNamespacePermitted`);
//! - may it read this repository ([`ProjectPolicy::check_source`], `sourceRepos`,
//!   `IsSourcePermitted`);
//! - may it deploy to this cluster and namespace ([`ProjectPolicy::check_destination`],
//!   `destinations`, project-scoped clusters, `permitOnlyProjectScopedClusters`,
//!   `IsDestinationPermitted`);
//! - which sync windows apply to it ([`ProjectPolicy::sync_windows`], `syncWindows`,
//!   `SyncWindows.Matches`; evaluated by [`crate::sync_window`]);
//! - may it create this object ([`ProjectPolicy::check_resource`], the cluster/namespace
//!   resource white/blacklists and the object's namespace as a destination,
//!   `IsResourcePermitted`).
//!
//! The rules, including their corner cases, are Argo CD's (`app_project_types.go`):
//! a `!` pattern that does not match forbids, and one that matches counts as a match;
//! `namespaceResourceWhitelist` absent allows every namespaced kind, empty allows none;
//! `clusterResourceWhitelist` empty allows no cluster-scoped kind. Project-scoped clusters
//! are added to the destinations (with their Secret's `namespaces`, else every namespace),
//! as Argo CD's `GetAppProjectByName` does. Each refusal is a [`Violation`] naming the
//! object and the rule, so a tenant sees which line of the project stopped them.

use crate::application::ApplicationDestination;
use crate::appproject::{AppProject, ClusterResourceRestrictionItem, GroupKind, SyncWindow};
use crate::cluster::Cluster;
use crate::glob::Glob;
use crate::sync_window::MatchedWindows;

/// Why the project refuses. Messages start as Argo CD's and end with the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The Application's namespace is neither the control plane's nor in `sourceNamespaces`.
    #[error(
        "application in namespace {namespace} is not allowed to use project '{project}' (spec.sourceNamespaces)"
    )]
    AppNamespace {
        /// The Application's namespace.
        namespace: String,
        /// The project.
        project: String,
    },
    /// The repository matches no `sourceRepos` entry, or a `!` entry excludes it.
    #[error("application repo {repo} is not permitted in project '{project}' (spec.sourceRepos)")]
    Source {
        /// The source's `repoURL`.
        repo: String,
        /// The project.
        project: String,
    },
    /// The cluster/namespace pair matches no `destinations` entry, or a `!` entry excludes it.
    #[error(
        "application destination server '{server}' and namespace '{namespace}' do not match any of the allowed destinations in project '{project}' (spec.destinations)"
    )]
    Destination {
        /// The cluster's server (its name when the Application names it by name).
        server: String,
        /// The namespace.
        namespace: String,
        /// The project.
        project: String,
    },
    /// `permitOnlyProjectScopedClusters` and the cluster's Secret does not name the project.
    #[error(
        "cluster '{server}' is not scoped to project '{project}' (spec.permitOnlyProjectScopedClusters)"
    )]
    NotProjectScoped {
        /// The cluster's server.
        server: String,
        /// The project.
        project: String,
    },
    /// The kind (and name) of an object is not allowed by the resource lists.
    #[error("resource {group}:{kind} '{name}' is not permitted in project '{project}' ({rule})")]
    Resource {
        /// API group.
        group: String,
        /// Kind.
        kind: String,
        /// Object name.
        name: String,
        /// The project.
        project: String,
        /// The list that refuses it.
        rule: ResourceRule,
    },
    /// A namespaced object's namespace is not an allowed destination on this cluster.
    #[error(
        "namespace {namespace} of {kind} '{name}' is not permitted in project '{project}' (spec.destinations)"
    )]
    ResourceNamespace {
        /// Kind.
        kind: String,
        /// Object name.
        name: String,
        /// The namespace.
        namespace: String,
        /// The project.
        project: String,
    },
}

impl Violation {
    /// A bounded label for metrics and logs.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            Violation::AppNamespace { .. } => "source_namespace",
            Violation::Source { .. } => "source_repo",
            Violation::Destination { .. } => "destination",
            Violation::NotProjectScoped { .. } => "project_scoped_cluster",
            Violation::Resource { .. } => "resource_kind",
            Violation::ResourceNamespace { .. } => "resource_namespace",
        }
    }
}

/// Which resource list refuses an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceRule {
    /// A cluster-scoped kind not in `clusterResourceWhitelist`.
    ClusterNotWhitelisted,
    /// A cluster-scoped kind in `clusterResourceBlacklist`.
    ClusterBlacklisted,
    /// A namespaced kind not in `namespaceResourceWhitelist`.
    NamespaceNotWhitelisted,
    /// A namespaced kind in `namespaceResourceBlacklist`.
    NamespaceBlacklisted,
}

impl std::fmt::Display for ResourceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceRule::ClusterNotWhitelisted => {
                "cluster-scoped kind not in spec.clusterResourceWhitelist"
            }
            ResourceRule::ClusterBlacklisted => {
                "cluster-scoped kind in spec.clusterResourceBlacklist"
            }
            ResourceRule::NamespaceNotWhitelisted => {
                "namespaced kind not in spec.namespaceResourceWhitelist"
            }
            ResourceRule::NamespaceBlacklisted => {
                "namespaced kind in spec.namespaceResourceBlacklist"
            }
        })
    }
}

/// A pattern that may deny (`!`), compiled.
#[derive(Clone, Debug)]
struct Pattern {
    deny: bool,
    /// `*`: Argo CD short-cuts it before compiling.
    any: bool,
    glob: Glob,
}

impl Pattern {
    fn gobwas(pattern: &str, separator: Option<char>) -> Pattern {
        let (deny, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        Pattern {
            deny,
            any: !deny && body == "*",
            glob: Glob::gobwas(body, separator),
        }
    }

    /// Argo CD's `globMatch(pattern, value, allowNegation=true)`: a deny pattern "matches"
    /// every value it does not match.
    fn matches(&self, value: &str) -> bool {
        if self.deny {
            !self.glob.is_match(value)
        } else {
            self.any || self.glob.is_match(value)
        }
    }
}

#[derive(Clone, Debug)]
struct DestinationRule {
    server: Pattern,
    name: Pattern,
    namespace: Pattern,
}

#[derive(Clone, Debug)]
struct KindRule {
    group: Glob,
    kind: Glob,
    /// `None`: every name.
    name: Option<Glob>,
}

impl KindRule {
    fn of_group_kind(item: &GroupKind) -> KindRule {
        KindRule {
            group: Glob::filepath(&item.group),
            kind: Glob::filepath(&item.kind),
            name: None,
        }
    }

    fn of_restriction(item: &ClusterResourceRestrictionItem) -> KindRule {
        KindRule {
            group: Glob::filepath(&item.group),
            kind: Glob::filepath(&item.kind),
            name: (!item.name.is_empty()).then(|| Glob::filepath(&item.name)),
        }
    }

    fn matches(&self, group: &str, kind: &str, name: &str) -> bool {
        self.kind.is_match(kind)
            && self.group.is_match(group)
            && self.name.as_ref().is_none_or(|n| n.is_match(name))
    }
}

fn any_matches(rules: &[KindRule], group: &str, kind: &str, name: &str) -> bool {
    rules.iter().any(|r| r.matches(group, kind, name))
}

/// A list of namespace patterns, each `/regex/` or a glob (Argo CD's `glob.REGEXP` list
/// mode, used for `sourceNamespaces` and the `--application-namespaces` flag).
#[derive(Clone, Debug, Default)]
pub struct NamespacePatterns(Vec<NamespacePattern>);

#[derive(Clone, Debug)]
enum NamespacePattern {
    /// `None`: the expression does not compile, and matches nothing.
    Regex(Option<regex::Regex>),
    Glob(Glob),
}

impl NamespacePatterns {
    /// Compiles `patterns`.
    #[must_use]
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        NamespacePatterns(
            patterns
                .iter()
                .map(|p| {
                    let p = p.as_ref();
                    match p.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
                        Some(re) => NamespacePattern::Regex(regex::Regex::new(re).ok()),
                        None => NamespacePattern::Glob(Glob::gobwas(p, None)),
                    }
                })
                .collect(),
        )
    }

    /// Whether any pattern matches `namespace`.
    #[must_use]
    pub fn matches(&self, namespace: &str) -> bool {
        self.0.iter().any(|p| match p {
            NamespacePattern::Regex(re) => re.as_ref().is_some_and(|re| re.is_match(namespace)),
            NamespacePattern::Glob(glob) => glob.is_match(namespace),
        })
    }

    /// Whether there are no patterns.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A cluster whose Secret names a project.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ScopedCluster {
    name: String,
    server: String,
}

/// An `AppProject`, compiled for checking.
#[derive(Clone, Debug)]
pub struct ProjectPolicy {
    name: String,
    source_repos: Vec<Pattern>,
    destinations: Vec<DestinationRule>,
    scoped_clusters: Vec<ScopedCluster>,
    permit_only_scoped: bool,
    cluster_whitelist: Vec<KindRule>,
    cluster_blacklist: Vec<KindRule>,
    /// `None`: every namespaced kind.
    namespace_whitelist: Option<Vec<KindRule>>,
    namespace_blacklist: Vec<KindRule>,
    source_namespaces: NamespacePatterns,
    orphans: Option<OrphanRules>,
    /// `syncWindows`, as written (each Application matches its own subset).
    sync_windows: Vec<SyncWindow>,
}

/// `orphanedResources`, compiled: whether to warn, and the ignore list as (group, kind,
/// name) globs (`None`: any kind / any name).
#[derive(Clone, Debug)]
struct OrphanRules {
    warn: bool,
    ignore: Vec<(Glob, Option<Glob>, Option<Glob>)>,
}

/// Argo CD's `NormalizeGitURL` for comparing repository URLs: lower case, `.git` dropped,
/// `user@host:path` SSH form turned into `user@host/path`.
#[must_use]
pub fn normalize_repo_url(url: &str) -> String {
    let mut url = url.trim().to_lowercase();
    if is_scp_like(&url) {
        url = url.replacen(':', "/", 1);
    }
    let url = url.strip_suffix(".git").unwrap_or(&url);
    url.strip_prefix("ssh://").unwrap_or(url).to_owned()
}

/// `user@host:path` (SCP-like SSH syntax, no scheme).
fn is_scp_like(url: &str) -> bool {
    !url.contains("://")
        && url.split_once('@').is_some_and(|(user, rest)| {
            !user.is_empty() && !user.contains('/') && rest.contains(':')
        })
}

impl ProjectPolicy {
    /// Compiles `project`; `clusters` are the registered clusters (those whose Secret's
    /// `project` names this project become destinations of it).
    #[must_use]
    pub fn new<'c>(project: &AppProject, clusters: impl IntoIterator<Item = &'c Cluster>) -> Self {
        let name = project.metadata.name.clone().unwrap_or_default();
        let spec = &project.spec;
        let mut destinations: Vec<ApplicationDestination> = spec.destinations.clone();
        let mut scoped_clusters = Vec::new();
        for cluster in clusters {
            if cluster.project.is_empty() || cluster.project != name {
                continue;
            }
            scoped_clusters.push(ScopedCluster {
                name: cluster.name.clone(),
                server: cluster.server.clone(),
            });
            let namespaces = if cluster.namespaces.is_empty() {
                vec!["*".to_owned()]
            } else {
                cluster.namespaces.clone()
            };
            destinations.extend(
                namespaces
                    .into_iter()
                    .map(|namespace| ApplicationDestination {
                        server: cluster.server.clone(),
                        namespace,
                        name: String::new(),
                    }),
            );
        }
        ProjectPolicy {
            source_repos: spec
                .source_repos
                .iter()
                .map(|repo| {
                    let (deny, body) = match repo.strip_prefix('!') {
                        Some(rest) => ("!", rest),
                        None => ("", repo.as_str()),
                    };
                    Pattern::gobwas(&format!("{deny}{}", normalize_repo_url(body)), Some('/'))
                })
                .collect(),
            destinations: destinations
                .iter()
                .map(|d| DestinationRule {
                    server: Pattern::gobwas(&d.server, None),
                    name: Pattern::gobwas(&d.name, None),
                    namespace: Pattern::gobwas(&d.namespace, None),
                })
                .collect(),
            scoped_clusters,
            permit_only_scoped: spec.permit_only_project_scoped_clusters,
            cluster_whitelist: spec
                .cluster_resource_whitelist
                .iter()
                .map(KindRule::of_restriction)
                .collect(),
            cluster_blacklist: spec
                .cluster_resource_blacklist
                .iter()
                .map(KindRule::of_restriction)
                .collect(),
            namespace_whitelist: spec
                .namespace_resource_whitelist
                .as_ref()
                .map(|list| list.iter().map(KindRule::of_group_kind).collect()),
            namespace_blacklist: spec
                .namespace_resource_blacklist
                .iter()
                .map(KindRule::of_group_kind)
                .collect(),
            source_namespaces: NamespacePatterns::new(&spec.source_namespaces),
            orphans: spec.orphaned_resources.as_ref().map(|o| OrphanRules {
                warn: o.warn == Some(true),
                ignore: o
                    .ignore
                    .iter()
                    .map(|i| {
                        let optional = |p: &str| (!p.is_empty()).then(|| Glob::gobwas(p, None));
                        (
                            Glob::gobwas(&i.group, None),
                            optional(&i.kind),
                            optional(&i.name),
                        )
                    })
                    .collect(),
            }),
            sync_windows: spec.sync_windows.clone(),
            name,
        }
    }

    /// The project's sync windows that apply to an Application named `app_name`
    /// deploying to `destination` (see [`crate::sync_window`]).
    #[must_use]
    pub fn sync_windows(
        &self,
        app_name: &str,
        destination: &ApplicationDestination,
    ) -> MatchedWindows {
        MatchedWindows::of(&self.sync_windows, app_name, destination)
    }

    /// The project's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the project asks for orphaned-object warnings (`orphanedResources.warn`).
    #[must_use]
    pub fn warns_orphans(&self) -> bool {
        self.orphans.as_ref().is_some_and(|o| o.warn)
    }

    /// Whether a namespaced object with no tracking id counts as orphaned (Argo CD's
    /// `getResourceTree`): not one of the objects every namespace has, not in
    /// `orphanedResources.ignore`, and of a kind the project may deploy.
    #[must_use]
    pub fn counts_as_orphan(&self, group: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let Some(orphans) = &self.orphans else {
            return false;
        };
        let everywhere = (namespace == "default"
            && group.is_empty()
            && kind == "Service"
            && name == "kubernetes")
            || (group.is_empty() && kind == "ServiceAccount" && name == "default")
            || (group.is_empty() && kind == "ConfigMap" && name == "kube-root-ca.crt");
        let ignored = orphans.ignore.iter().any(|(g, k, n)| {
            k.as_ref().is_none_or(|k| k.is_match(kind))
                && g.is_match(group)
                && n.as_ref().is_none_or(|n| n.is_match(name))
        });
        let permitted = self
            .namespace_whitelist
            .as_ref()
            .is_none_or(|list| any_matches(list, group, kind, name))
            && !any_matches(&self.namespace_blacklist, group, kind, name);
        !everywhere && !ignored && permitted
    }

    /// May an Application in `namespace` use this project? The control plane's namespace
    /// always may; others must match `sourceNamespaces`.
    pub fn check_app_namespace(
        &self,
        namespace: &str,
        controller_namespace: &str,
    ) -> Result<(), Violation> {
        if namespace.is_empty() || namespace == controller_namespace {
            return Ok(());
        }
        if self.source_namespaces.matches(namespace) {
            Ok(())
        } else {
            Err(Violation::AppNamespace {
                namespace: namespace.to_owned(),
                project: self.name.clone(),
            })
        }
    }

    /// May the project's Applications read `repo_url`?
    pub fn check_source(&self, repo_url: &str) -> Result<(), Violation> {
        let normalized = normalize_repo_url(repo_url);
        let mut matched = false;
        for pattern in &self.source_repos {
            if pattern.matches(&normalized) {
                matched = true;
            } else if pattern.deny {
                matched = false;
                break;
            }
        }
        if matched {
            Ok(())
        } else {
            Err(Violation::Source {
                repo: repo_url.to_owned(),
                project: self.name.clone(),
            })
        }
    }

    /// May the project deploy to `namespace` of `cluster`? `by_name`: the Application
    /// names the cluster by name (the message then shows the name, as Argo CD's does).
    pub fn check_destination(
        &self,
        cluster: &Cluster,
        namespace: &str,
        by_name: bool,
    ) -> Result<(), Violation> {
        if !self.destination_matched(&cluster.name, &cluster.server, namespace) {
            return Err(Violation::Destination {
                server: if by_name {
                    cluster.name.clone()
                } else {
                    cluster.server.clone()
                },
                namespace: namespace.to_owned(),
                project: self.name.clone(),
            });
        }
        if self.permit_only_scoped
            && !self
                .scoped_clusters
                .iter()
                .any(|c| c.name == cluster.name || c.server == cluster.server)
        {
            return Err(Violation::NotProjectScoped {
                server: cluster.server.clone(),
                project: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Argo CD's `isDestinationMatched`, including its precedence: a deny pattern on the
    /// name or server refuses outright; on the server only when the namespace matched; on
    /// the namespace only when the server matched.
    fn destination_matched(&self, name: &str, server: &str, namespace: &str) -> bool {
        let mut any = false;
        for rule in &self.destinations {
            let name_matched = !name.is_empty() && rule.name.matches(name);
            let server_matched = !server.is_empty() && rule.server.matches(server);
            let namespace_matched = rule.namespace.matches(namespace);
            if (server_matched || name_matched) && namespace_matched {
                any = true;
            } else if (!name_matched && rule.name.deny)
                || (!server_matched && rule.server.deny && namespace_matched)
                || (!namespace_matched && rule.namespace.deny && server_matched)
            {
                return false;
            }
        }
        any
    }

    /// May the project create this object on `cluster`? `namespace`: `None` for a
    /// cluster-scoped object.
    pub fn check_resource(
        &self,
        group: &str,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        cluster: &Cluster,
    ) -> Result<(), Violation> {
        let refuse = |rule| Violation::Resource {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            project: self.name.clone(),
            rule,
        };
        let Some(namespace) = namespace else {
            if !any_matches(&self.cluster_whitelist, group, kind, name) {
                return Err(refuse(ResourceRule::ClusterNotWhitelisted));
            }
            if any_matches(&self.cluster_blacklist, group, kind, name) {
                return Err(refuse(ResourceRule::ClusterBlacklisted));
            }
            return Ok(());
        };
        // The namespace lists carry no names: Argo CD checks kinds only.
        let whitelisted = self
            .namespace_whitelist
            .as_ref()
            .is_none_or(|list| any_matches(list, group, kind, name));
        if !whitelisted {
            return Err(refuse(ResourceRule::NamespaceNotWhitelisted));
        }
        if any_matches(&self.namespace_blacklist, group, kind, name) {
            return Err(refuse(ResourceRule::NamespaceBlacklisted));
        }
        self.check_destination(cluster, namespace, false)
            .map_err(|_| Violation::ResourceNamespace {
                kind: kind.to_owned(),
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                project: self.name.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)] // every caller builds the spec in place
    fn project(spec: serde_json::Value) -> AppProject {
        let mut doc = json!({"metadata": {"name": "team-a", "namespace": "argocd"}});
        doc["spec"] = spec;
        serde_json::from_value(doc).expect("an AppProject")
    }

    fn cluster(name: &str, server: &str) -> Cluster {
        Cluster {
            name: name.to_owned(),
            server: server.to_owned(),
            ..Cluster::default()
        }
    }

    fn policy(spec: serde_json::Value) -> ProjectPolicy {
        ProjectPolicy::new(&project(spec), &[])
    }

    #[test]
    fn source_repos_globs_and_negation_as_argo_cd() {
        let p = policy(json!({"sourceRepos": ["https://git.example/team-a/*"]}));
        assert!(p.check_source("https://git.example/team-a/apps").is_ok());
        assert!(
            p.check_source("https://GIT.example/team-a/apps.git")
                .is_ok()
        );
        assert!(
            p.check_source("https://git.example/team-a/apps/sub")
                .is_err()
        );
        assert!(p.check_source("https://git.example/team-b/apps").is_err());
        // Deny entries: a match forbids...
        let p = policy(json!({"sourceRepos": ["*", "!https://git.example/secret/*"]}));
        assert!(p.check_source("https://git.example/public/x").is_ok());
        let err = p.check_source("https://git.example/secret/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "application repo https://git.example/secret/x is not permitted in project 'team-a' (spec.sourceRepos)"
        );
        // ...and, as in Argo CD, a deny entry alone permits everything it does not match.
        let p = policy(json!({"sourceRepos": ["!https://git.example/secret/*"]}));
        assert!(p.check_source("https://elsewhere.example/x").is_ok());
        // No entries: nothing.
        assert!(
            policy(json!({}))
                .check_source("https://git.example/x")
                .is_err()
        );
        // SSH forms compare after normalization.
        let p = policy(json!({"sourceRepos": ["git@git.example:team-a/*"]}));
        assert!(p.check_source("git@git.example:team-a/apps.git").is_ok());
        assert!(p.check_source("ssh://git@git.example/team-a/apps").is_ok());
    }

    #[test]
    fn destinations_by_server_name_namespace_and_deny() {
        let w1 = cluster("workload-1", "https://10.0.0.1:6443");
        let w2 = cluster("workload-2", "https://10.0.0.2:6443");
        let p = policy(
            json!({"destinations": [{"server": "https://10.0.0.1:6443", "namespace": "team-a"}]}),
        );
        assert!(p.check_destination(&w1, "team-a", false).is_ok());
        assert!(p.check_destination(&w1, "kube-system", false).is_err());
        assert!(p.check_destination(&w2, "team-a", false).is_err());
        let p = policy(json!({"destinations": [{"name": "workload-*", "namespace": "team-*"}]}));
        assert!(p.check_destination(&w2, "team-x", true).is_ok());
        let err = p.check_destination(&w2, "default", true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "application destination server 'workload-2' and namespace 'default' do not match any of the allowed destinations in project 'team-a' (spec.destinations)"
        );
        // A denied namespace refuses even when another entry allows it.
        let p = policy(json!({"destinations": [
            {"server": "*", "namespace": "*"},
            {"server": "*", "namespace": "!kube-system"}]}));
        assert!(p.check_destination(&w1, "apps", false).is_ok());
        assert!(p.check_destination(&w1, "kube-system", false).is_err());
        // A denied server refuses.
        let p = policy(json!({"destinations": [
            {"server": "!https://10.0.0.2:6443", "namespace": "*"},
            {"server": "*", "namespace": "*"}]}));
        assert!(p.check_destination(&w2, "apps", false).is_err());
        assert!(p.check_destination(&w1, "apps", false).is_ok());
    }

    #[test]
    fn project_scoped_clusters_are_destinations_and_can_be_required() {
        let mut scoped = cluster("customer-1", "https://10.0.0.3:6443");
        scoped.project = "team-a".into();
        scoped.namespaces = vec!["shop".into()];
        let other = cluster("workload-1", "https://10.0.0.1:6443");
        let spec = json!({"destinations": [{"server": "*", "namespace": "*"}],
                          "permitOnlyProjectScopedClusters": true});
        let p = ProjectPolicy::new(&project(spec), [&scoped, &other]);
        assert!(p.check_destination(&scoped, "shop", false).is_ok());
        assert_eq!(
            p.check_destination(&other, "shop", false)
                .unwrap_err()
                .category(),
            "project_scoped_cluster"
        );
        // Without destinations of its own, the project still reaches its scoped cluster's
        // namespaces (and only those).
        let p = ProjectPolicy::new(&project(json!({})), [&scoped, &other]);
        assert!(p.check_destination(&scoped, "shop", false).is_ok());
        assert!(p.check_destination(&scoped, "kube-system", false).is_err());
        assert!(p.check_destination(&other, "shop", false).is_err());
    }

    #[test]
    fn resource_lists_as_argo_cd() {
        let w1 = cluster("workload-1", "https://10.0.0.1:6443");
        let p = policy(json!({"destinations": [{"server": "*", "namespace": "team-a"}]}));
        // Cluster-scoped: nothing unless whitelisted.
        let err = p
            .check_resource(
                "rbac.authorization.k8s.io",
                "ClusterRoleBinding",
                "admin",
                None,
                &w1,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource rbac.authorization.k8s.io:ClusterRoleBinding 'admin' is not permitted in project 'team-a' (cluster-scoped kind not in spec.clusterResourceWhitelist)"
        );
        // Namespaced: every kind when no whitelist, in allowed namespaces only.
        assert!(
            p.check_resource("apps", "Deployment", "web", Some("team-a"), &w1)
                .is_ok()
        );
        assert_eq!(
            p.check_resource("apps", "Deployment", "web", Some("kube-system"), &w1)
                .unwrap_err()
                .category(),
            "resource_namespace"
        );
        // An empty namespace whitelist allows no namespaced kind.
        let p = policy(json!({"destinations": [{"server": "*", "namespace": "*"}],
                              "namespaceResourceWhitelist": []}));
        assert!(
            p.check_resource("", "ConfigMap", "c", Some("a"), &w1)
                .is_err()
        );
        let p = policy(json!({"destinations": [{"server": "*", "namespace": "*"}],
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace", "name": "team-*"}],
            "clusterResourceBlacklist": [{"group": "", "kind": "Namespace", "name": "team-admin"}]}));
        assert!(
            p.check_resource("", "ConfigMap", "c", Some("a"), &w1)
                .is_ok()
        );
        assert!(p.check_resource("", "Secret", "s", Some("a"), &w1).is_err());
        assert!(
            p.check_resource("", "Namespace", "team-x", None, &w1)
                .is_ok()
        );
        assert!(
            p.check_resource("", "Namespace", "payments", None, &w1)
                .is_err()
        );
        assert!(
            p.check_resource("", "Namespace", "team-admin", None, &w1)
                .is_err()
        );
    }

    #[test]
    fn orphans_as_argo_cd_counts_them() {
        let p = policy(json!({"orphanedResources": {"warn": true,
            "ignore": [{"group": "", "kind": "Secret"}, {"group": "apps", "name": "legacy-*"}]},
            "namespaceResourceBlacklist": [{"group": "", "kind": "Event"}]}));
        assert!(p.warns_orphans());
        assert!(p.counts_as_orphan("", "ConfigMap", "shop", "leftover"));
        assert!(!p.counts_as_orphan("", "ConfigMap", "shop", "kube-root-ca.crt"));
        assert!(!p.counts_as_orphan("", "ServiceAccount", "shop", "default"));
        assert!(!p.counts_as_orphan("", "Secret", "shop", "anything"));
        assert!(!p.counts_as_orphan("apps", "Deployment", "shop", "legacy-web"));
        assert!(p.counts_as_orphan("apps", "Deployment", "shop", "web"));
        assert!(!p.counts_as_orphan("", "Event", "shop", "e"));
        // `warn` must be set: the block alone does not warn (Argo CD's IsWarn).
        assert!(!policy(json!({"orphanedResources": {}})).warns_orphans());
        assert!(!policy(json!({})).counts_as_orphan("", "ConfigMap", "shop", "x"));
    }

    #[test]
    fn source_namespaces_globs_and_regexes() {
        let p = policy(json!({"sourceNamespaces": ["team-a-*", "/^ci-[0-9]+$/"]}));
        assert!(p.check_app_namespace("argocd", "argocd").is_ok());
        assert!(p.check_app_namespace("team-a-dev", "argocd").is_ok());
        assert!(p.check_app_namespace("ci-42", "argocd").is_ok());
        assert!(p.check_app_namespace("ci-x", "argocd").is_err());
        assert!(p.check_app_namespace("team-b", "argocd").is_err());
        // The built-in default project admits no other namespace.
        let d = ProjectPolicy::new(&AppProject::builtin_default(), &[]);
        assert!(d.check_app_namespace("team-b", "argocd").is_err());
        assert!(d.check_source("https://anything.example/x").is_ok());
        let w1 = cluster("workload-1", "https://10.0.0.1:6443");
        assert!(
            d.check_resource("rbac.authorization.k8s.io", "ClusterRole", "x", None, &w1)
                .is_ok()
        );
    }
}
