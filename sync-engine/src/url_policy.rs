//! Which repository URLs Argosy may fetch, whoever wrote them: a tenant's Application or
//! `ApplicationSet` must not make the controller read its own filesystem (other tenants'
//! cached clones, its service account token) or reach the cloud metadata service and
//! other loopback-only endpoints with its network identity.
//!
//! [`UrlPolicy::check`] runs on every URL the repository cache is asked for (generators and
//! the sync engine alike) before any file is opened or connection made:
//!
//! - schemes `https`, `ssh` (and `user@host:path`), `git`; `http` only when allowed;
//! - `file://` URLs and bare paths only when local repositories are allowed (demo, tests);
//! - hosts that are loopback, link-local (169.254.0.0/16, `fe80::/10`, the metadata address),
//!   unspecified, or named `localhost` / `*.localhost` / a cloud metadata name only when
//!   internal hosts are allowed. A host name is also resolved before the first fetch and
//!   refused when any address it resolves to is internal ([`UrlPolicy::check_resolved`]).
//!
//! Caveat: the resolution check and the fetch resolve separately, so a name whose DNS
//! answer changes between the two (rebinding) is not caught; private networks (10/8 and
//! friends) stay allowed, since self-hosted Git servers live there.
//!
//! URLs mapped to local paths by the operator (`--repo URL=PATH`) are the operator's own
//! configuration and are not checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// Why a URL is refused. Messages name the flag that would allow it; the URL (credentials
/// removed) is kept for the caller, whose error names the repository.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// A `file://` URL or a path.
    #[error(
        "refused: local paths would read the controller's own filesystem (allowed only with --allow-local-repos)"
    )]
    LocalPath {
        /// The URL as given (credentials removed).
        url: String,
    },
    /// Plain `http://`.
    #[error("refused: plain http is not allowed (allowed only with --allow-http-repos)")]
    PlainHttp {
        /// The URL (credentials removed).
        url: String,
    },
    /// A scheme Argosy does not fetch.
    #[error("refused: scheme {scheme} is not supported (https, ssh, git)")]
    Scheme {
        /// The URL (credentials removed).
        url: String,
        /// The scheme.
        scheme: String,
    },
    /// A loopback, link-local or metadata host.
    #[error(
        "refused: host {host} is internal ({why}; allowed only with --allow-internal-repo-hosts)"
    )]
    InternalHost {
        /// The URL (credentials removed).
        url: String,
        /// The host, or the address it resolved to.
        host: String,
        /// Which kind of internal address.
        why: &'static str,
    },
    /// The URL cannot be parsed.
    #[error("refused: not a valid URL ({reason})")]
    Invalid {
        /// The URL (credentials removed).
        url: String,
        /// The parser's reason.
        reason: String,
    },
}

impl UrlRefusal {
    /// A bounded label for metrics and logs.
    #[must_use]
    pub fn category(&self) -> &'static str {
        match self {
            UrlRefusal::LocalPath { .. } => "local_path",
            UrlRefusal::PlainHttp { .. } => "plain_http",
            UrlRefusal::Scheme { .. } => "scheme",
            UrlRefusal::InternalHost { .. } => "internal_host",
            UrlRefusal::Invalid { .. } => "invalid",
        }
    }
}

/// What the repository cache may fetch. The default is the strict policy of a controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
// Three independent switches, one per flag.
#[allow(clippy::struct_excessive_bools)]
pub struct UrlPolicy {
    /// `file://` URLs and paths (`--allow-local-repos`).
    pub allow_local: bool,
    /// Plain `http://` (`--allow-http-repos`).
    pub allow_http: bool,
    /// Loopback, link-local and metadata hosts (`--allow-internal-repo-hosts`).
    pub allow_internal_hosts: bool,
}

/// The parts of a URL the policy looks at.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Local,
    Remote {
        scheme: String,
        host: String,
        port: u16,
    },
}

impl UrlPolicy {
    /// Everything allowed: for a user's own CLI on their own machine, and tests.
    #[must_use]
    pub fn permissive() -> UrlPolicy {
        UrlPolicy {
            allow_local: true,
            allow_http: true,
            allow_internal_hosts: true,
        }
    }

    /// Checks the URL as written (no DNS).
    pub fn check(self, url: &str) -> Result<(), UrlRefusal> {
        self.check_parsed(url).map(|_| ())
    }

    fn check_parsed(self, url: &str) -> Result<Parsed, UrlRefusal> {
        let shown = || redact_url(url);
        let parsed = parse(url).map_err(|reason| UrlRefusal::Invalid {
            url: shown(),
            reason,
        })?;
        match &parsed {
            Parsed::Local if !self.allow_local => Err(UrlRefusal::LocalPath { url: shown() }),
            Parsed::Local => Ok(parsed),
            Parsed::Remote { scheme, host, .. } => {
                match scheme.as_str() {
                    "https" | "ssh" | "git" => {}
                    "http" if self.allow_http => {}
                    "http" => return Err(UrlRefusal::PlainHttp { url: shown() }),
                    other => {
                        return Err(UrlRefusal::Scheme {
                            url: shown(),
                            scheme: other.to_owned(),
                        });
                    }
                }
                if !self.allow_internal_hosts
                    && let Some(why) = internal_host(host)
                {
                    return Err(UrlRefusal::InternalHost {
                        url: shown(),
                        host: host.clone(),
                        why,
                    });
                }
                Ok(parsed)
            }
        }
    }

    /// [`Self::check`], then resolves the host and refuses it when any of its addresses is
    /// internal (blocking: call it where network I/O is expected anyway). A name that does
    /// not resolve passes: the fetch will fail with the resolver's own error.
    pub fn check_resolved(self, url: &str) -> Result<(), UrlRefusal> {
        self.check_resolved_with(url, |host, port| {
            (host, port)
                .to_socket_addrs()
                .map(|addresses| addresses.map(|a| a.ip()).collect())
                .unwrap_or_default()
        })
    }

    /// [`Self::check_resolved`] with the resolver given (tests).
    fn check_resolved_with(
        self,
        url: &str,
        resolve: impl FnOnce(&str, u16) -> Vec<IpAddr>,
    ) -> Result<(), UrlRefusal> {
        let parsed = self.check_parsed(url)?;
        let Parsed::Remote { host, port, .. } = parsed else {
            return Ok(());
        };
        if self.allow_internal_hosts || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        for ip in resolve(&host, port) {
            if let Some(why) = internal_ip(ip) {
                return Err(UrlRefusal::InternalHost {
                    url: redact_url(url),
                    host: format!("{host} ({ip})"),
                    why,
                });
            }
        }
        Ok(())
    }
}

/// Splits a repository URL into what the policy needs. Forms: `scheme://...`,
/// `user@host:path` (SSH), and anything else is a local path.
fn parse(url: &str) -> Result<Parsed, String> {
    let url = url.trim();
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return Ok(Parsed::Local);
        }
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("no host".to_owned()),
        };
        let scheme = parsed.scheme().to_owned();
        let port = parsed
            .port_or_known_default()
            .unwrap_or(match scheme.as_str() {
                "ssh" => 22,
                "git" => 9418,
                _ => 443,
            });
        return Ok(Parsed::Remote { scheme, host, port });
    }
    if let Some((user_host, _path)) = url.split_once(':')
        && let Some((user, host)) = user_host.split_once('@')
        && !user.is_empty()
        && !host.is_empty()
        && !user_host.contains('/')
    {
        return Ok(Parsed::Remote {
            scheme: "ssh".to_owned(),
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port: 22,
        });
    }
    Ok(Parsed::Local)
}

/// Why `host` (a name or an address literal) is internal, if it is.
fn internal_host(host: &str) -> Option<&'static str> {
    let name = host.trim_end_matches('.');
    if name == "localhost" || name.ends_with(".localhost") {
        return Some("loopback name");
    }
    if matches!(
        name,
        "metadata" | "metadata.google.internal" | "metadata.goog" | "instance-data"
    ) || name.ends_with(".metadata.google.internal")
    {
        return Some("cloud metadata name");
    }
    name.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .and_then(internal_ip)
}

/// Why `ip` is internal, if it is (IPv4-mapped IPv6 addresses judged as IPv4).
fn internal_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local, where cloud metadata services answer")
    } else if ip.is_unspecified() || ip.is_broadcast() {
        Some("unspecified or broadcast")
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // fd00:ec2::254 is AWS's IPv6 metadata endpoint (a unique-local address, unlike the
    // other ULAs, which stay allowed as private networks).
    const AWS_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unicast_link_local() || ip == AWS_METADATA {
        Some("link-local, where cloud metadata services answer")
    } else if ip.is_unspecified() {
        Some("unspecified or broadcast")
    } else {
        None
    }
}

/// Removes `user:password@` from a URL before it appears in a message.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match credentials_range(url) {
        // Replaced where it is: the same text may also occur earlier (`https://h@host` has
        // an `h` in its scheme), and replacing the first occurrence would leave it unredacted.
        Some(range) => format!("{}***{}", &url[..range.start], &url[range.end..]),
        None => url.to_owned(),
    }
}

/// The `user:password` part of a URL with a scheme, if any.
pub(crate) fn credentials(url: &str) -> Option<&str> {
    credentials_range(url).map(|range| &url[range])
}

/// Where in `url` the `user:password` part is, if it has one.
fn credentials_range(url: &str) -> Option<std::ops::Range<usize>> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, _) = authority.rsplit_once('@')?;
    // An SSH user name (`git@`) is no secret (the key is), and the URL is unrecognizable
    // without it; in an HTTP URL a lone user name is often a token.
    if scheme.eq_ignore_ascii_case("ssh") && !userinfo.contains(':') {
        return None;
    }
    let start = scheme.len() + "://".len();
    (!userinfo.is_empty()).then_some(start..start + userinfo.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: UrlPolicy, url: &str) -> Option<&'static str> {
        policy.check(url).err().map(|e| e.category())
    }

    #[test]
    fn ssh_user_names_stay_and_http_tokens_go() {
        assert_eq!(redact_url("ssh://git@host/x"), "ssh://git@host/x");
        assert_eq!(redact_url("ssh://git:pw@host/x"), "ssh://***@host/x");
        assert_eq!(redact_url("https://ghp_token@host/x"), "https://***@host/x");
    }

    #[test]
    fn strict_policy_allows_remote_git_only() {
        let strict = UrlPolicy::default();
        for ok in [
            "https://github.com/org/repo.git",
            "ssh://git@github.com/org/repo.git",
            "git@github.com:org/repo.git",
            "git://git.example.com/repo",
            "https://10.1.2.3/gitlab/repo.git",
        ] {
            assert_eq!(refused(strict, ok), None, "{ok}");
        }
        for (url, why) in [
            ("file:///etc", "local_path"),
            ("FILE:///etc", "local_path"),
            ("/var/lib/argosy/cache/other-tenant", "local_path"),
            ("../other", "local_path"),
            ("http://git.example.com/repo", "plain_http"),
            ("ftp://git.example.com/repo", "scheme"),
            ("https://127.0.0.1/repo", "internal_host"),
            ("https://127.1.2.3:8443/repo", "internal_host"),
            ("https://2130706433/repo", "internal_host"),
            ("https://0x7f.0.0.1/repo", "internal_host"),
            ("https://localhost/repo", "internal_host"),
            ("https://api.localhost./repo", "internal_host"),
            ("https://[::1]/repo", "internal_host"),
            ("https://[::ffff:127.0.0.1]/repo", "internal_host"),
            ("https://169.254.169.254/latest/meta-data", "internal_host"),
            ("https://[fe80::1]/x", "internal_host"),
            ("https://[fd00:ec2::254]/x", "internal_host"),
            ("https://metadata.google.internal/x", "internal_host"),
            ("https://0.0.0.0/x", "internal_host"),
            ("git@127.0.0.1:org/repo.git", "internal_host"),
            ("ssh://git@localhost/repo", "internal_host"),
            ("https://", "invalid"),
        ] {
            assert_eq!(refused(strict, url), Some(why), "{url}");
        }
    }

    #[test]
    fn flags_open_one_door_each() {
        let local = UrlPolicy {
            allow_local: true,
            ..UrlPolicy::default()
        };
        assert_eq!(refused(local, "file:///srv/repo"), None);
        assert_eq!(
            refused(local, "http://git.example.com/r"),
            Some("plain_http")
        );
        let http = UrlPolicy {
            allow_http: true,
            ..UrlPolicy::default()
        };
        assert_eq!(refused(http, "http://git.example.com/r"), None);
        assert_eq!(refused(http, "http://127.0.0.1/r"), Some("internal_host"));
        let internal = UrlPolicy {
            allow_internal_hosts: true,
            ..UrlPolicy::default()
        };
        assert_eq!(refused(internal, "https://127.0.0.1/r"), None);
        assert_eq!(refused(internal, "file:///srv"), Some("local_path"));
        assert_eq!(refused(UrlPolicy::permissive(), "file:///srv"), None);
    }

    #[test]
    fn refusals_never_show_credentials_and_name_the_flag() {
        let e = UrlPolicy::default()
            .check("http://user:s3cret@git.example.com/r")
            .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("--allow-http-repos"), "{text}");
    }

    #[test]
    fn names_resolving_to_internal_addresses_are_refused() {
        let strict = UrlPolicy::default();
        let rebound = |_: &str, port: u16| {
            assert_eq!(port, 443);
            vec![
                "10.0.0.7".parse().unwrap(),
                "169.254.169.254".parse().unwrap(),
            ]
        };
        let e = strict
            .check_resolved_with("https://git.attacker.example/r", rebound)
            .unwrap_err();
        assert_eq!(e.category(), "internal_host");
        assert!(
            e.to_string()
                .contains("git.attacker.example (169.254.169.254)"),
            "{e}"
        );
        let private = |_: &str, _: u16| vec!["10.0.0.7".parse().unwrap()];
        assert!(
            strict
                .check_resolved_with("https://gitlab.corp/r", private)
                .is_ok()
        );
        // Unresolvable names pass here (the fetch reports the resolver's own error), and the
        // real resolver runs.
        assert!(
            strict
                .check_resolved("https://does-not-exist.invalid/r")
                .is_ok()
        );
        assert!(strict.check_resolved("https://localhost/r").is_err());
    }
}
