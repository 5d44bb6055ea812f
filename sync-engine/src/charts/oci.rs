//! Helm charts in OCI registries (`oci://registry/path` + `chart`, or a repository Secret
//! of `type: helm` with `enableOCI: true` and a URL without a scheme), through the
//! `oci-client` crate: tags listed for version ranges, the chart layer pulled with a size
//! bound and its digest checked.
//!
//! Helm stores a version's `+` as `_` in tags (OCI tags cannot hold `+`); tags are read back
//! the same way. The registry's credentials are the repository Secret's username and
//! password (basic auth, exchanged for a token when the registry asks for one).

use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::repo::{GitAuth, Timeouts};

/// The media type of a chart package layer.
pub(super) const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Where a chart lives in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OciChart {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path of the chart (`path/chart`).
    pub repository: String,
}

impl OciChart {
    /// `oci://host/path` (or `host/path`) and the chart name.
    pub(super) fn new(repo_url: &str, chart: &str) -> Result<Self, String> {
        let rest = repo_url.strip_prefix("oci://").unwrap_or(repo_url);
        let rest = rest.trim_end_matches('/');
        let (registry, path) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() || registry.contains('@') {
            return Err(format!(
                "{repo_url:?} is not an OCI repository (oci://host/path)"
            ));
        }
        let chart = chart.trim_matches('/');
        if chart.is_empty() {
            return Err("an OCI Helm source needs `chart`".to_owned());
        }
        let repository = if path.is_empty() {
            chart.to_owned()
        } else {
            format!("{path}/{chart}")
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository,
        })
    }

    /// The URL the URL policy checks: the registry is reached over HTTPS.
    pub(super) fn policy_url(&self) -> String {
        format!("https://{}/{}", self.registry, self.repository)
    }

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            tag.to_owned(),
        )
    }
}

/// A registry session for one operation.
pub(super) struct Registry {
    client: Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
}

impl Registry {
    pub(super) fn new(auth: &GitAuth, timeouts: Timeouts) -> Result<Self, String> {
        let creds = auth.creds.as_ref();
        // One certificate each: the client reads only the first of a PEM bundle, and
        // argocd-tls-certs-cm may hold several for a host.
        let extra_root_certificates = auth
            .ca_pem
            .iter()
            .flat_map(|pem| pem_certificates(pem))
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.into_bytes(),
            })
            .collect();
        let config = ClientConfig {
            protocol: ClientProtocol::Https,
            accept_invalid_certificates: creds
                .is_some_and(argosy_crds::repository::RepoCredentials::is_insecure),
            extra_root_certificates,
            connect_timeout: Some(timeouts.connect),
            read_timeout: Some(timeouts.stall),
            https_proxy: creds.and_then(|c| c.proxy.clone()),
            no_proxy: creds.and_then(|c| c.no_proxy.clone()),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| format!("OCI client: {e}"))?;
        let auth = match creds.and_then(|c| c.username.clone().zip(c.password.as_ref())) {
            Some((user, password)) if !user.is_empty() => {
                RegistryAuth::Basic(user, password.expose().to_owned())
            }
            _ => RegistryAuth::Anonymous,
        };
        // The cache runs on blocking threads; the client is async. A small runtime of its
        // own per operation keeps it independent of the caller's (and usable from tests).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("OCI client runtime: {e}"))?;
        Ok(Self {
            client,
            auth,
            runtime,
        })
    }

    /// The chart's versions: its tags, `_` read back as `+`.
    pub(super) fn versions(&self, chart: &OciChart) -> Result<Vec<String>, String> {
        let reference = chart.reference("latest");
        let tags = self
            .runtime
            .block_on(self.client.list_tags(&reference, &self.auth, None, None))
            .map_err(|e| format!("listing the tags of {}: {e}", chart.policy_url()))?;
        Ok(tags
            .tags
            .iter()
            .map(|t| super::version::oci_tag_version(t))
            .collect())
    }

    /// The chart package of `version`, at most `max_bytes`.
    pub(super) fn pull(
        &self,
        chart: &OciChart,
        version: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, String> {
        let reference = chart.reference(&super::version::oci_tag(version));
        let shown = format!("{}:{version}", chart.policy_url());
        self.runtime.block_on(async {
            let (manifest, _) = self
                .client
                .pull_image_manifest(&reference, &self.auth)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
            let layer = manifest
                .layers
                .iter()
                .find(|l| l.media_type == CHART_LAYER)
                .ok_or_else(|| format!("{shown} is not a Helm chart (no {CHART_LAYER} layer)"))?;
            if u64::try_from(layer.size).map_or(true, |size| size > max_bytes) {
                return Err(format!(
                    "{shown}: the chart layer is larger than {max_bytes} bytes"
                ));
            }
            let mut out = Bounded {
                data: Vec::new(),
                max_bytes,
            };
            self.client
                .pull_blob(&reference, layer, &mut out)
                .await
                .map_err(|e| format!("{shown}: pulling the chart layer: {e}"))?;
            Ok(out.data)
        })
    }
}

/// The certificates of a PEM bundle, one PEM block each.
fn pem_certificates(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|block| block.contains(END))
        .map(|block| format!("{}\n", block.trim_start()))
        .collect()
}

/// An in-memory writer that fails past `max_bytes` (a registry may send more than the
/// manifest said; the digest check would only come at the end).
struct Bounded {
    data: Vec<u8>,
    max_bytes: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if (self.data.len() + buf.len()) as u64 > self.max_bytes {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "more than {} bytes",
                self.max_bytes
            ))));
        }
        self.data.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_bundle_is_split_into_certificates() {
        let one = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----";
        let two = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let split = pem_certificates(&format!("{one}\n{two}"));
        assert_eq!(split, [format!("{one}\n"), two.to_owned()]);
        assert!(pem_certificates("garbage").is_empty());
    }

    #[test]
    fn oci_urls_name_a_registry_and_a_repository() {
        assert_eq!(
            OciChart::new("oci://registry.example.com:5000/charts/", "web").unwrap(),
            OciChart {
                registry: "registry.example.com:5000".into(),
                repository: "charts/web".into()
            }
        );
        // A repository Secret with enableOCI names the registry without a scheme.
        let bare = OciChart::new("ghcr.io/acme", "web").unwrap();
        assert_eq!(bare.repository, "acme/web");
        assert_eq!(bare.policy_url(), "https://ghcr.io/acme/web");
        assert_eq!(
            OciChart::new("oci://r.io", "web").unwrap().repository,
            "web"
        );
        assert!(OciChart::new("oci://", "web").is_err());
        assert!(OciChart::new("oci://u:p@r.io/x", "web").is_err());
        assert!(OciChart::new("oci://r.io/x", "").is_err());
    }
}
