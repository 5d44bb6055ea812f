//! Helm repositories over HTTP(S): `index.yaml` and chart packages, read with the
//! repository Secret's credentials (basic auth), TLS settings and the cache's timeouts.
//!
//! Credentials go only to the repository's own host, unless `passCredentials` is set: a
//! chart URL in an index may point anywhere (a CDN, or a host the index's author wants the
//! password sent to), and Helm withholds them there too.

use std::io::Read as _;

use crate::repo::transport::HttpClientSettings;
use crate::repo::{GitAuth, Timeouts};

/// One GET, its body bounded.
pub(super) struct Get<'a> {
    pub auth: &'a GitAuth,
    pub timeouts: Timeouts,
    /// The repository URL: basic auth is sent to its host (and port) only...
    pub repo_url: &'a str,
    /// ... unless this is set (`helm.passCredentials`).
    pub pass_credentials: bool,
    /// Bodies larger than this fail the request.
    pub max_bytes: u64,
}

impl Get<'_> {
    /// The body of `url`. Errors name the URL (without credentials) and the status, never
    /// a secret.
    pub(super) fn bytes(&self, url: &str) -> Result<Vec<u8>, String> {
        let settings = HttpClientSettings::of(self.auth)?;
        let client = settings
            .apply(reqwest::blocking::Client::builder(), self.timeouts)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let mut request = client.get(url);
        if let Some((user, password)) = self.basic_auth_for(url) {
            request = request.basic_auth(user, Some(password));
        }
        let shown = crate::url_policy::redact_url(url);
        let response = request
            .send()
            .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {shown}: {status}"));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(format!(
                "GET {shown}: the answer is larger than {} bytes",
                self.max_bytes
            ));
        }
        let mut body = Vec::new();
        response
            .take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| format!("GET {shown}: reading the answer: {e}"))?;
        if body.len() as u64 > self.max_bytes {
            return Err(format!(
                "GET {shown}: the answer is larger than {} bytes",
                self.max_bytes
            ));
        }
        Ok(body)
    }

    fn basic_auth_for(&self, url: &str) -> Option<(String, String)> {
        let creds = self.auth.creds.as_ref()?;
        let user = creds.username.clone().filter(|u| !u.is_empty())?;
        let password = creds.password.as_ref()?.expose().to_owned();
        (self.pass_credentials || same_origin(self.repo_url, url)).then_some((user, password))
    }
}

/// Same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

/// An error with its sources (reqwest's own message is only the outermost step).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_the_repository_host_only_unless_passed() {
        use argosy_crds::cluster::Sensitive;
        use argosy_crds::repository::RepoCredentials;
        let auth = GitAuth {
            creds: Some(RepoCredentials {
                username: Some("u".into()),
                password: Some(Sensitive::from("p".to_owned())),
                ..RepoCredentials::default()
            }),
            ..GitAuth::default()
        };
        let get = |pass_credentials| Get {
            auth: &auth,
            timeouts: Timeouts::default(),
            repo_url: "https://charts.example.com/stable",
            pass_credentials,
            max_bytes: 1,
        };
        let own = "https://charts.example.com:443/stable/web-1.0.0.tgz";
        let cdn = "https://cdn.example.net/web-1.0.0.tgz";
        assert_eq!(
            get(false).basic_auth_for(own),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(get(false).basic_auth_for(cdn), None);
        assert!(get(true).basic_auth_for(cdn).is_some());
        assert_eq!(
            get(false).basic_auth_for("http://charts.example.com/stable/x.tgz"),
            None,
            "a downgrade to plain HTTP is another origin"
        );
    }
}
