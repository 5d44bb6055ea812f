//! [`GitHubAppTokens`] against a real HTTPS server on 127.0.0.1 (rustls, a throwaway CA
//! as a GitHub Enterprise would have) that verifies each JWT's RS256 signature with the
//! App's public key, as GitHub does. Keys and certificates come from the `openssl` binary,
//! so the key formats are the ones GitHub and users hand over.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use super::*;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Keys and certificates, made once per test binary.
struct Fixture {
    /// The App's key as GitHub issues it (PKCS#1, `BEGIN RSA PRIVATE KEY`).
    app_key: String,
    app_public: String,
    /// A second App key, PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genrsa` writes now).
    other_key: String,
    other_public: String,
    ca: String,
    server_cert: String,
    server_key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, &["genrsa", "-traditional", "-out", "app.pem", "2048"]);
        openssl(d, &["rsa", "-in", "app.pem", "-pubout", "-out", "app.pub"]);
        openssl(d, &["genrsa", "-out", "other.pem", "2048"]);
        openssl(
            d,
            &["rsa", "-in", "other.pem", "-pubout", "-out", "other.pub"],
        );
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=argosy test CA",
                "-days",
                "2",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            d.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
        let fixture = Fixture {
            app_key: read("app.pem"),
            app_public: read("app.pub"),
            other_key: read("other.pem"),
            other_public: read("other.pub"),
            ca: read("ca.pem"),
            server_cert: read("server.pem"),
            server_key: read("server.key"),
        };
        assert!(
            fixture
                .app_key
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
        assert!(fixture.other_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        fixture
    })
}

/// One request as the server saw it, with the JWT's claims if its signature verified.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    accept: String,
    jwt: String,
    /// `(iss, iat, exp)` when the signature verified with one of the App public keys.
    claims: Option<(String, u64, u64)>,
}

type Respond = dyn Fn(&Seen, usize) -> (u16, String) + Send + Sync;

/// An HTTPS server answering every connection with `respond(request, index)`.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(respond: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static) -> Server {
        let f = fixture();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(f.server_cert.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(f.server_key.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let log = Arc::clone(&seen);
        // Lives until the test binary exits (blocked in accept once its test is done).
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { continue };
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // A client that gave up on our certificate is not an answer to write.
                let Some(seen) = read_request(&mut tls) else {
                    continue;
                };
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(seen.clone());
                    log.len() - 1
                };
                let (status, body) = respond(&seen, index);
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut impl std::io::Read) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut accept, mut jwt, mut length) = (String::new(), String::new(), 0usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "accept" => accept = value.to_owned(),
            "authorization" => jwt = value.strip_prefix("Bearer ").unwrap_or("").to_owned(),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(&mut reader, &mut body).ok()?;
    let claims = verify(&jwt);
    Some(Seen {
        method,
        path,
        accept,
        jwt,
        claims,
    })
}

/// What GitHub checks: an RS256 signature by the App's key, and `exp` after now.
fn verify(jwt: &str) -> Option<(String, u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        iat: u64,
        exp: u64,
    }
    let f = fixture();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.leeway = 0;
    [&f.app_public, &f.other_public]
        .into_iter()
        .find_map(|public| {
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).ok()?;
            let data = jsonwebtoken::decode::<Claims>(jwt, &key, &validation).ok()?;
            Some((data.claims.iss, data.claims.iat, data.claims.exp))
        })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// GitHub's answer: `token` expiring `ttl` from now.
fn answer(token: &str, ttl: Duration) -> String {
    let expires = k8s_openapi::jiff::Timestamp::try_from(SystemTime::now() + ttl).unwrap();
    serde_json::json!({"token": token, "expires_at": expires.to_string(), "permissions": {"contents": "read"}})
        .to_string()
}

/// A GitHub that checks the JWT like the real one and hands out `ghs_N` tokens valid `ttl`.
fn github(ttl: Duration) -> Server {
    Server::start(move |seen, index| match &seen.claims {
        Some((iss, _, _)) if iss == "42" => (201, answer(&format!("ghs_{index}"), ttl)),
        _ => (
            401,
            r#"{"message":"A JSON web token could not be decoded"}"#.to_owned(),
        ),
    })
}

fn app(server: &Server, key: &str) -> GitHubApp {
    GitHubApp {
        app_id: 42,
        installation_id: 7,
        private_key: Sensitive::from(key.to_owned()),
        // GitHub Enterprise's shape (an API root with a path), trailing slash included.
        enterprise_base_url: Some(format!("{}/api/v3/", server.base)),
    }
}

fn tokens() -> GitHubAppTokens {
    GitHubAppTokens::with_root_ca_pem(&fixture().ca).unwrap()
}

#[test]
fn a_token_is_fetched_with_a_signed_jwt_and_then_served_from_the_cache() {
    let server = github(Duration::from_secs(3600));
    let tokens = tokens();
    let app = app(&server, &fixture().app_key);
    let first = tokens.token(&app).unwrap();
    assert_eq!(first.expose(), "ghs_0");
    assert_eq!(tokens.token(&app).unwrap().expose(), "ghs_0");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "the second call is served from the cache");
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v3/app/installations/7/access_tokens");
    assert_eq!(request.accept, "application/vnd.github+json");
    let (iss, iat, exp) = request.claims.clone().expect("the JWT verifies");
    assert_eq!(iss, "42");
    let now = unix_now();
    assert!(iat <= now - 59 && iat >= now - 70, "iat {iat} now {now}");
    assert_eq!(exp - iat, 600, "exp is 9 minutes after now, 10 after iat");
    // Nothing secret in Debug.
    let debug = format!("{tokens:?}");
    assert!(debug.contains("cached_tokens: 1"), "{debug}");
    assert!(!debug.contains("ghs_") && !debug.contains(&request.jwt));
    assert!(!format!("{first:?}").contains("ghs_"));
}

#[test]
fn a_token_near_its_expiry_is_fetched_again() {
    // Four minutes left is inside the 5-minute margin: never served from the cache.
    let short = github(Duration::from_secs(4 * 60));
    let tokens = tokens();
    let app_short = app(&short, &fixture().app_key);
    assert_eq!(tokens.token(&app_short).unwrap().expose(), "ghs_0");
    assert_eq!(tokens.token(&app_short).unwrap().expose(), "ghs_1");
    assert_eq!(short.seen().len(), 2);

    // An hour's token is kept for 55 minutes, then replaced.
    let long = github(Duration::from_secs(3600));
    let app_long = app(&long, &fixture().app_key);
    let now = SystemTime::now();
    assert_eq!(tokens.token_at(&app_long, now).unwrap().expose(), "ghs_0");
    let later = now + Duration::from_secs(54 * 60);
    assert_eq!(tokens.token_at(&app_long, later).unwrap().expose(), "ghs_0");
    let too_late = now + Duration::from_secs(56 * 60);
    assert_eq!(
        tokens.token_at(&app_long, too_late).unwrap().expose(),
        "ghs_1"
    );
    assert_eq!(long.seen().len(), 2);
}

#[test]
fn another_key_or_installation_is_another_token() {
    let server = github(Duration::from_secs(3600));
    let tokens = tokens();
    let original = app(&server, &fixture().app_key);
    // A PKCS#8 key (rotated, or converted by a secret store) works too.
    let rotated = app(&server, &fixture().other_key);
    let other_installation = GitHubApp {
        installation_id: 8,
        ..original.clone()
    };
    assert_eq!(tokens.token(&original).unwrap().expose(), "ghs_0");
    assert_eq!(tokens.token(&rotated).unwrap().expose(), "ghs_1");
    assert_eq!(tokens.token(&other_installation).unwrap().expose(), "ghs_2");
    assert_eq!(tokens.token(&original).unwrap().expose(), "ghs_0");
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v3/app/installations/7/access_tokens",
            "/api/v3/app/installations/7/access_tokens",
            "/api/v3/app/installations/8/access_tokens",
        ]
    );
}

#[test]
fn a_refusal_is_a_status_error_without_the_jwt_or_the_body() {
    // The server knows no key of this App: every JWT is refused.
    let server = Server::start(|_, _| {
        (
            401,
            r#"{"message":"Bad credentials","echo":"ghs_leaked"}"#.to_owned(),
        )
    });
    let tokens = tokens();
    let error = tokens.token(&app(&server, &fixture().app_key)).unwrap_err();
    assert_eq!(error.category(), "status");
    assert!(matches!(error, GitHubAppError::Status { status: 401, .. }));
    let jwt = server.seen()[0].jwt.clone();
    assert!(jwt.len() > 100, "the request carried a JWT");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(&jwt), "{shown}");
        assert!(
            !shown.contains("Bad credentials") && !shown.contains("ghs_"),
            "{shown}"
        );
    }
    assert!(
        error
            .to_string()
            .contains("/api/v3/app/installations/7/access_tokens answered HTTP 401"),
        "{error}"
    );
    // A refusal is not cached: the next call asks again.
    let _ = tokens.token(&app(&server, &fixture().app_key)).unwrap_err();
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn an_untrusted_or_absent_server_is_a_request_error() {
    let server = github(Duration::from_secs(3600));
    // The system roots do not include the test CA.
    let error = GitHubAppTokens::new()
        .token(&app(&server, &fixture().app_key))
        .unwrap_err();
    assert_eq!(error.category(), "request", "{error}");
    assert!(server.seen().is_empty());

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = GitHubApp {
        enterprise_base_url: Some(format!("https://user:hunter2@127.0.0.1:{port}")),
        ..app(&server, &fixture().app_key)
    };
    let error = tokens().token(&nowhere).unwrap_err();
    assert_eq!(error.category(), "request", "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn bad_input_is_named_without_its_value() {
    let tokens = GitHubAppTokens::new();
    let app = GitHubApp {
        app_id: 42,
        installation_id: 7,
        private_key: Sensitive::from(
            "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n".to_owned(),
        ),
        enterprise_base_url: None,
    };
    let error = tokens.token(&app).unwrap_err();
    assert_eq!(error.category(), "parse_key");
    assert!(!error.to_string().contains("c2VjcmV0"));
    let no_installation = GitHubApp {
        installation_id: 0,
        ..app
    };
    assert_eq!(
        tokens.token(&no_installation).unwrap_err().to_string(),
        "GitHub App 42: githubAppInstallationID is not set (Argosy does not discover installations)"
    );
    assert_eq!(
        GitHubAppTokens::with_root_ca_pem("not a certificate")
            .unwrap_err()
            .category(),
        "client"
    );
}

#[test]
fn answers_without_a_usable_token_are_body_errors() {
    assert_eq!(
        parse_token_answer(b"<html>").unwrap_err(),
        "the answer is not JSON"
    );
    assert_eq!(
        parse_token_answer(br#"{"expires_at":"2030-01-01T00:00:00Z"}"#).unwrap_err(),
        "it has no token"
    );
    assert_eq!(
        parse_token_answer(br#"{"token":"ghs_x"}"#).unwrap_err(),
        "it has no expires_at"
    );
    assert_eq!(
        parse_token_answer(br#"{"token":"ghs_x","expires_at":"tomorrow"}"#).unwrap_err(),
        "expires_at is not an RFC 3339 time"
    );
    let (token, expires) =
        parse_token_answer(br#"{"token":"ghs_x","expires_at":"2030-01-01T00:00:00Z"}"#).unwrap();
    assert_eq!(token.expose(), "ghs_x");
    assert_eq!(
        expires.duration_since(UNIX_EPOCH).unwrap().as_secs(),
        1_893_456_000
    );

    let server = Server::start(|_, _| (200, r#"{"token":"ghs_x","expires_at":"soon"}"#.to_owned()));
    let error = tokens()
        .token(&app(&server, &fixture().app_key))
        .unwrap_err();
    assert_eq!(error.category(), "body");
    assert!(!error.to_string().contains("ghs_x"), "{error}");
}

#[test]
fn the_api_url_defaults_to_github_and_loses_its_trailing_slash() {
    let mut app = GitHubApp {
        app_id: 1,
        installation_id: 2,
        private_key: Sensitive::default(),
        enterprise_base_url: None,
    };
    assert_eq!(api_url(&app), "https://api.github.com");
    app.enterprise_base_url = Some(" ".into());
    assert_eq!(api_url(&app), "https://api.github.com");
    app.enterprise_base_url = Some("https://ghe.example.com/api/v3/".into());
    assert_eq!(api_url(&app), "https://ghe.example.com/api/v3");
}
