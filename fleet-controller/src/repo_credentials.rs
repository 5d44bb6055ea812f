//! Argo CD's repository credentials, live: the `repository` and `repo-creds` Secrets and the
//! `argocd-ssh-known-hosts-cm` / `argocd-tls-certs-cm` ConfigMaps of the control plane's
//! namespace, watched, indexed once per change and resolved for every Git operation
//! ([`CredentialSource`]). A rotated password is used by the next operation, without a
//! restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use argosy_crds::repository::{
    RepoCredentialIndex, SSH_KNOWN_HOSTS_CONFIGMAP, TLS_CERTS_CONFIGMAP, known_hosts, tls_certs,
};
use argosy_sync_engine::repo::{CredentialSource, GitAuth};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::Store;

/// The stores the credentials are read from.
#[derive(Clone)]
pub struct RepoCredentialRegistry {
    secrets: Store<Secret>,
    config_maps: Store<ConfigMap>,
    /// The index of the Secrets and ConfigMaps at the versions it was built from.
    built: Arc<Mutex<Option<Built>>>,
}

struct Built {
    versions: Vec<String>,
    index: Arc<RepoCredentialIndex>,
    known_hosts: Arc<String>,
    tls_certs: Arc<BTreeMap<String, String>>,
}

impl RepoCredentialRegistry {
    /// `secrets`: the repository Secrets (by label); `config_maps`: the control plane's
    /// ConfigMaps (only the two named ones are read).
    #[must_use]
    pub fn new(secrets: Store<Secret>, config_maps: Store<ConfigMap>) -> Self {
        Self {
            secrets,
            config_maps,
            built: Arc::default(),
        }
    }

    /// The index, rebuilt when any Secret or ConfigMap changed since the last build.
    fn current(
        &self,
    ) -> (
        Arc<RepoCredentialIndex>,
        Arc<String>,
        Arc<BTreeMap<String, String>>,
    ) {
        let secrets = self.secrets.state();
        let config_maps: Vec<_> = self
            .config_maps
            .state()
            .into_iter()
            .filter(|cm| {
                matches!(
                    cm.metadata.name.as_deref(),
                    Some(SSH_KNOWN_HOSTS_CONFIGMAP | TLS_CERTS_CONFIGMAP)
                )
            })
            .collect();
        let mut versions: Vec<String> = secrets
            .iter()
            .map(|s| version(&s.metadata))
            .chain(config_maps.iter().map(|c| version(&c.metadata)))
            .collect();
        versions.sort_unstable();
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = built.as_ref()
            && b.versions == versions
        {
            return (b.index.clone(), b.known_hosts.clone(), b.tls_certs.clone());
        }
        let named = |name: &str| {
            config_maps
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))
        };
        let fresh = Built {
            versions,
            index: Arc::new(RepoCredentialIndex::from_secrets(
                secrets.iter().map(AsRef::as_ref),
            )),
            known_hosts: Arc::new(
                named(SSH_KNOWN_HOSTS_CONFIGMAP)
                    .map(|c| known_hosts(c))
                    .unwrap_or_default(),
            ),
            tls_certs: Arc::new(
                named(TLS_CERTS_CONFIGMAP)
                    .map(|c| tls_certs(c))
                    .unwrap_or_default(),
            ),
        };
        let out = (
            fresh.index.clone(),
            fresh.known_hosts.clone(),
            fresh.tls_certs.clone(),
        );
        *built = Some(fresh);
        out
    }
}

/// `uid/resourceVersion`: what tells one version of an object from the next.
fn version(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}/{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
        meta.resource_version.as_deref().unwrap_or_default()
    )
}

/// The host of a repository URL (`argocd-tls-certs-cm` is keyed by it), for any of Git's
/// URL spellings.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// What a Git operation on `url` for `project`'s Applications reads with: the resolved
/// credentials, the known hosts, and the CA of the URL's host. One rule for the controller
/// (watched stores) and `argosy repo add`'s check (what it read once).
pub fn git_auth(
    index: &RepoCredentialIndex,
    known_hosts: &str,
    tls_certs: &BTreeMap<String, String>,
    url: &str,
    project: &str,
) -> Result<GitAuth, String> {
    let creds = index.resolve(url, project).map_err(|e| e.to_string())?;
    let ca_pem = host_of(url).and_then(|host| tls_certs.get(&host).cloned());
    Ok(GitAuth {
        creds,
        known_hosts: known_hosts.to_owned(),
        ca_pem,
    })
}

impl CredentialSource for RepoCredentialRegistry {
    fn auth_for(&self, url: &str, project: &str) -> Result<GitAuth, String> {
        let (index, known_hosts, tls_certs) = self.current();
        git_auth(&index, &known_hosts, &tls_certs, url, project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    fn repo_secret(name: &str, rv: &str, url: &str, password: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("argocd".into()),
                resource_version: Some(rv.into()),
                labels: Some(BTreeMap::from([(
                    "argocd.argoproj.io/secret-type".to_owned(),
                    "repository".to_owned(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("url".to_owned(), ByteString(url.as_bytes().to_vec())),
                (
                    "password".to_owned(),
                    ByteString(password.as_bytes().to_vec()),
                ),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn a_rotated_password_is_seen_on_the_next_lookup() {
        let (secrets, mut secrets_writer) = store::<Secret>();
        let (config_maps, mut cm_writer) = store::<ConfigMap>();
        let tls = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(TLS_CERTS_CONFIGMAP.into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "git.example.com".to_owned(),
                "PEM".to_owned(),
            )])),
            ..Default::default()
        };
        cm_writer.apply_watcher_event(&Event::Apply(tls));
        secrets_writer.apply_watcher_event(&Event::Apply(repo_secret(
            "r",
            "1",
            "https://git.example.com/a",
            "one",
        )));
        let registry = RepoCredentialRegistry::new(secrets, config_maps);
        let password = |registry: &RepoCredentialRegistry| {
            let auth = registry
                .auth_for("https://git.example.com/a.git", "p")
                .unwrap();
            assert_eq!(auth.ca_pem.as_deref(), Some("PEM"));
            auth.creds
                .and_then(|c| c.password)
                .map(|p| p.expose().to_owned())
        };
        assert_eq!(password(&registry).as_deref(), Some("one"));
        secrets_writer.apply_watcher_event(&Event::Apply(repo_secret(
            "r",
            "2",
            "https://git.example.com/a",
            "two",
        )));
        assert_eq!(password(&registry).as_deref(), Some("two"));
    }

    #[test]
    fn hosts_of_every_url_spelling() {
        assert_eq!(
            host_of("https://u:p@Git.Example.com:8443/x").as_deref(),
            Some("git.example.com")
        );
        assert_eq!(
            host_of("git@github.com:org/repo.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(host_of("ssh://git@[::1]:22/x").as_deref(), Some("::1"));
        assert_eq!(host_of(""), None);
    }
}
