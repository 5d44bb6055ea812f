//! The controller's HTTP listener, hardened, end to end: an in-process controller against
//! a real kube-apiserver, served over HTTPS (`--tls-cert`/`--tls-key`, the harness's
//! throwaway CA; the client verifies the chain, no insecure mode), spoken to by reqwest.
//!
//! It shows: `/readyz` is 503 while the controller's caches cannot list (no CRDs yet) and
//! 200 once they have; `GET /login?token=` logs nobody in and no API route reads a query
//! token; `POST /login` sets a `Secure; HttpOnly; SameSite=Strict` cookie with `Max-Age`,
//! which works until it expires and not when altered; `/metrics` asks for its token; wrong
//! tokens get 429 with `Retry-After` after the limit; plain HTTP is not served.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy::defaults::LOGIN_MAX_FAILURES;
use argosy::run::TlsFiles;
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    init_tracing, install_crds, prepare_namespace, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::free_port;
use reqwest::{StatusCode, header};

const TOKEN: &str = "http-test-dashboard-token-3b9e";
const METRICS_TOKEN: &str = "http-test-metrics-token-7d21";
/// Short, so the test can watch a session expire.
const SESSION_SECONDS: u64 = 4;

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

async fn call(request: reqwest::RequestBuilder) -> Result<Answer> {
    let response = request.send().await?;
    Ok(Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await?,
    })
}

fn login(http: &reqwest::Client, base: &str, token: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_tls_expiring_sessions_limits_and_readiness() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(0)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let cluster = cp.management();
    let client = cluster.client().await?;

    // No CRDs yet: the Application, ApplicationSet and AppProject watches cannot list.
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut args = run_args("http-server", dir.path().join("cache"));
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(TOKEN.to_owned().into());
    args.http.metrics_token = Some(METRICS_TOKEN.to_owned().into());
    args.http.dashboard_session_ttl = Duration::from_secs(SESSION_SECONDS);
    // The harness's serving certificate (for IP:127.0.0.1), signed by its throwaway CA.
    args.http.tls = Some(TlsFiles {
        cert: cp.dir().join("serving.crt"),
        key: cp.dir().join("serving.key"),
    });
    let _controller = start_controller(cluster, argosy::run::USER_AGENT, args).await?;
    let base = format!("https://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cluster.ca_pem)?])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;

    wait_for("the HTTPS listener", Duration::from_secs(30), || async {
        Ok(call(http.get(format!("{base}/healthz")))
            .await
            .ok()
            .filter(|a| a.status == StatusCode::OK)
            .map(|_| ()))
    })
    .await?;
    // Plain HTTP on the same port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    ensure!(plain.is_err(), "plain HTTP answered: {plain:?}");

    let not_ready = call(http.get(format!("{base}/readyz"))).await?;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        not_ready.body.contains("waiting for the first list of")
            && not_ready.body.contains("applications"),
        "{}",
        not_ready.body
    );
    eprintln!(
        "before the CRDs: /readyz {}: {}",
        not_ready.status, not_ready.body
    );
    install_crds(&client).await?;
    prepare_namespace(&client).await?;
    wait_for("/readyz to say ok", Duration::from_secs(120), || async {
        let answer = call(http.get(format!("{base}/readyz"))).await?;
        Ok((answer.status == StatusCode::OK).then_some(()))
    })
    .await?;

    // A token in a URL logs nobody in, on the login page or on the API.
    let page = call(http.get(format!("{base}/login?token={TOKEN}"))).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    assert!(page.body.contains("method=\"post\""), "{}", page.body);
    let api = call(http.get(format!("{base}/api/v1/fleet?token={TOKEN}"))).await?;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    // POST /login: a Secure, HttpOnly, SameSite=Strict cookie with Max-Age.
    let at = std::time::Instant::now();
    let logged_in = call(login(&http, &base, TOKEN)).await?;
    assert_eq!(logged_in.status, StatusCode::SEE_OTHER);
    let set_cookie = logged_in.headers[header::SET_COOKIE].to_str()?.to_owned();
    let max_age = format!("Max-Age={SESSION_SECONDS}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", &max_age] {
        assert!(
            set_cookie.split("; ").any(|a| a == attribute),
            "{attribute}: {set_cookie}"
        );
    }
    assert!(!set_cookie.contains(TOKEN));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let fleet = call(
        http.get(format!("{base}/api/v1/fleet"))
            .header(header::COOKIE, &cookie),
    )
    .await?;
    assert_eq!(fleet.status, StatusCode::OK, "{}", fleet.body);

    // An altered cookie (its expiry pushed out) is refused.
    let (name, value) = cookie.split_once('=').unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    let altered = format!(
        "{name}={}.{}.{}.{}",
        parts[0], parts[1], 4_000_000_000u64, parts[3]
    );
    let refused = call(
        http.get(format!("{base}/api/v1/fleet"))
            .header(header::COOKIE, &altered),
    )
    .await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // The same cookie after its TTL: refused by the server (whatever the browser does).
    tokio::time::sleep(Duration::from_secs(SESSION_SECONDS + 1).saturating_sub(at.elapsed())).await;
    let expired = call(
        http.get(format!("{base}/api/v1/fleet"))
            .header(header::COOKIE, &cookie),
    )
    .await?;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    let page = call(http.get(format!("{base}/")).header(header::COOKIE, &cookie)).await?;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("action=\"/login\""));

    // /metrics asks for its own token (the dashboard's does not open it).
    let open = call(http.get(format!("{base}/metrics"))).await?;
    assert_eq!(open.status, StatusCode::UNAUTHORIZED);
    let wrong = call(http.get(format!("{base}/metrics")).bearer_auth(TOKEN)).await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let scraped = call(
        http.get(format!("{base}/metrics"))
            .bearer_auth(METRICS_TOKEN),
    )
    .await?;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(scraped.body.contains("argosy_apps"), "{}", scraped.body);

    // Wrong tokens: after the limit (the wrong metrics token above counted one), 429 with
    // Retry-After for every token check from this address, right tokens included.
    for _ in 1..LOGIN_MAX_FAILURES {
        let refused = call(login(&http, &base, "guess")).await?;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = call(login(&http, &base, TOKEN)).await?;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = blocked.headers[header::RETRY_AFTER].to_str()?.parse()?;
    assert!(retry_after >= 1, "{retry_after}");
    assert!(blocked.headers.get(header::SET_COOKIE).is_none());
    let scrape = call(
        http.get(format!("{base}/metrics"))
            .bearer_auth(METRICS_TOKEN),
    )
    .await?;
    assert_eq!(scrape.status, StatusCode::TOO_MANY_REQUESTS);
    // Probes ask for no token and stay open.
    let health = call(http.get(format!("{base}/healthz"))).await?;
    assert_eq!(health.status, StatusCode::OK);
    Ok(())
}
