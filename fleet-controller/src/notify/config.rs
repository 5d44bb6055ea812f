//! Where notifications go: the webhook URLs an annotation names, checked before any
//! request, and how a URL is shown in logs. Pure.
//!
//! `argosy.io/notify-webhooks` on an ApplicationSet or an AppProject holds one or more
//! URLs separated by commas or whitespace. Only `http` and `https` URLs are kept; loopback,
//! link-local and cloud metadata hosts are refused unless the operator allows them
//! (`--allow-internal-notify-hosts`), with the repository cache's own rules
//! ([`argosy_sync_engine::url_policy`]): an annotation is tenant input, and the controller
//! must not become a way to POST to its own node's endpoints.
//!
//! A webhook URL is a credential (a Slack or Teams incoming webhook's path is its token),
//! so a URL never appears in a log line, metric or error whole: [`redact`] keeps the
//! scheme and host only.

use std::collections::BTreeSet;

use argosy_sync_engine::url_policy::{UrlPolicy, UrlRefusal};
use reqwest::Url;

/// The annotation naming the webhooks of an ApplicationSet or an AppProject.
pub const WEBHOOKS_ANNOTATION: &str = "argosy.io/notify-webhooks";

/// Why a URL of the annotation is not used (the URL redacted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("webhook {url}: not a URL ({reason})")]
    ParseUrl { url: String, reason: String },
    #[error("webhook {url}: scheme {scheme} is not http or https")]
    CheckScheme { url: String, scheme: String },
    #[error("webhook {url}: {refusal}")]
    CheckHost { url: String, refusal: UrlRefusal },
}

/// The URLs of every annotation value in `values` (duplicates once, in order of first
/// appearance), and the ones refused.
pub fn webhooks<'a>(
    values: impl IntoIterator<Item = &'a str>,
    allow_internal_hosts: bool,
) -> (Vec<String>, Vec<UrlError>) {
    let mut seen = BTreeSet::new();
    let (mut urls, mut refused) = (Vec::new(), Vec::new());
    for value in values {
        for candidate in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            if !seen.insert(candidate) {
                continue;
            }
            match check(candidate, allow_internal_hosts) {
                Ok(()) => urls.push(candidate.to_owned()),
                Err(e) => refused.push(e),
            }
        }
    }
    (urls, refused)
}

/// Checks one webhook URL as written (no DNS; the sender checks the resolved addresses).
pub fn check(url: &str, allow_internal_hosts: bool) -> Result<(), UrlError> {
    let parsed = Url::parse(url).map_err(|e| UrlError::ParseUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(UrlError::CheckScheme {
            url: redact(url),
            scheme: parsed.scheme().to_owned(),
        });
    }
    policy(allow_internal_hosts)
        .check(url)
        .map_err(|refusal| UrlError::CheckHost {
            url: redact(url),
            refusal,
        })
}

/// The repository cache's URL policy as it applies to webhooks: plain http is allowed
/// (receivers inside a cluster often have no certificate), local paths never are.
pub fn policy(allow_internal_hosts: bool) -> UrlPolicy {
    UrlPolicy {
        allow_local: false,
        allow_http: true,
        allow_internal_hosts,
    }
}

/// A URL as logs may show it: scheme, host and port; the path, query and any
/// `user:password@` (where webhook tokens live) replaced by `…`.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some() => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = parsed.path() != "/"
                || parsed.query().is_some()
                || !parsed.username().is_empty()
                || parsed.password().is_some();
            format!(
                "{}://{host}{port}/{}",
                parsed.scheme(),
                if hidden { "…" } else { "" }
            )
        }
        _ => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_on_commas_and_whitespace_and_kept_once() {
        let (urls, refused) = webhooks(
            [
                "https://hooks.example/a, https://hooks.example/b\nhttps://hooks.example/a",
                " http://receiver.team.svc:8080/notify ,,",
            ],
            false,
        );
        assert_eq!(
            urls,
            [
                "https://hooks.example/a",
                "https://hooks.example/b",
                "http://receiver.team.svc:8080/notify"
            ]
        );
        assert!(refused.is_empty());
        assert_eq!(webhooks([""], false), (vec![], vec![]));
    }

    #[test]
    fn only_http_and_https_to_outside_hosts_are_kept() {
        let (urls, refused) = webhooks(
            [
                "ftp://files.example/x file:///etc/passwd ssh://git@example.com/x not-a-url \
                 http://127.0.0.1:9/x http://169.254.169.254/latest http://localhost/ https://ok.example/",
            ],
            false,
        );
        assert_eq!(urls, ["https://ok.example/"]);
        let kinds: Vec<&str> = refused
            .iter()
            .map(|e| match e {
                UrlError::ParseUrl { .. } => "parse",
                UrlError::CheckScheme { .. } => "scheme",
                UrlError::CheckHost { .. } => "host",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "scheme", "scheme", "scheme", "parse", "host", "host", "host"
            ]
        );
        let (urls, refused) = webhooks(["http://127.0.0.1:9/x"], true);
        assert_eq!(
            (urls.len(), refused.len()),
            (1, 0),
            "allowed by the operator"
        );
    }

    mod parsers_proptest {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_annotation_parses_and_keeps_only_http_urls(
                value in "(https?://|[a-z]{1,6}://)?\\PC{0,60}([ ,\n]\\PC{0,40}){0,3}",
                allow in any::<bool>(),
            ) {
                let (urls, _) = webhooks([value.as_str()], allow);
                for url in urls {
                    prop_assert!(url.starts_with("http://") || url.starts_with("https://"), "{}", url);
                    let shown = redact(&url);
                    prop_assert!(shown.ends_with('/') || shown.ends_with('…'), "{}", shown);
                }
            }
        }
    }

    #[test]
    fn logs_never_show_a_webhook_token() {
        let slack = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        assert_eq!(redact(slack), "https://hooks.slack.com/…");
        assert_eq!(
            redact("https://user:SECRET@hooks.example:8443/?token=SECRET"),
            "https://hooks.example:8443/…"
        );
        assert_eq!(redact("http://receiver:8080/"), "http://receiver:8080/");
        assert_eq!(redact("not a url SECRET"), "(unparsable URL)");
        let (_, refused) = webhooks(["http://169.254.169.254/SECRET gopher://h/SECRET"], false);
        for e in refused {
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
    }
}
