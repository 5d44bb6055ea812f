#![allow(clippy::unwrap_used)]
//! `GET /metrics` of a controller running against a real kube-apiserver: the state
//! metrics show the cluster's real Applications, ApplicationSets and cluster Secrets, and
//! nothing of the Secrets' credentials.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use argosy_crds::Application;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, apply_json, appset_resource, argocd_control_plane, init_tracing, run_args,
    start_controller, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, AppSetBuilder, ClusterSecretBuilder, free_port};
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TOKEN: &str = "bearer-token-5f1c0a9e77";

/// An Application of Argo CD's guestbook example, deployed to namespace `guestbook`.
fn guestbook(name: &str) -> AppBuilder {
    AppBuilder::new(name)
        .source(
            "https://github.com/argoproj/argocd-example-apps.git",
            "guestbook",
        )
        .destination_namespace("guestbook")
}

/// The body of `GET /metrics` (plain HTTP/1.1 over TCP: the tests crate has no HTTP client).
async fn scrape(port: u16) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no end of headers")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET /metrics answered {head}");
    }
    if !head
        .to_ascii_lowercase()
        .contains("content-type: application/openmetrics-text; version=1.0.0")
    {
        bail!("unexpected headers {head}");
    }
    Ok(body.to_owned())
}

/// `(labels, value)` of each sample of `family`.
fn samples<'a>(text: &'a str, family: &str) -> Vec<(&'a str, &'a str)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(family))
        .filter_map(|rest| rest.strip_prefix('{'))
        .filter_map(|rest| rest.rsplit_once("} "))
        .collect()
}

/// The value of label `name` in a label set `a="x",b="y"` (values without quotes inside).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_clusters_real_objects() -> Result<()> {
    init_tracing();
    let (cp, client) = argocd_control_plane(0).await?;
    for (name, server) in [
        ("east", "https://east.clusters.example.com"),
        ("west", "https://west.clusters.example.com"),
    ] {
        ClusterSecretBuilder::new(name, server)
            .label("env", "prod")
            .bearer_token(TOKEN)
            .apply(&client)
            .await?;
    }
    // An Application no ApplicationSet owns, with a status (Applications have no status
    // subresource, as in Argo CD).
    apply_json(
        &client,
        &kube::api::ApiResource::erase::<Application>(&()),
        {
            let mut app = guestbook("standalone")
                .server("https://kubernetes.default.svc")
                .json();
            app["status"] =
                json!({ "sync": { "status": "Synced" }, "health": { "status": "Healthy" } });
            app
        },
    )
    .await?;

    let port = free_port()?;
    let repo_cache = tempfile::tempdir()?;
    let mut args = run_args("metrics", repo_cache.path().to_owned());
    args.listen = Some(([127, 0, 0, 1], port).into());
    let controller = start_controller(cp.management(), "argosy-metrics-test", args).await?;

    apply_json(
        &client,
        &appset_resource(),
        AppSetBuilder::new("guestbook")
            .cluster_generator(&[("env", "prod")])
            .template("{{name}}-guestbook", &guestbook("").server("{{server}}"))
            .json(),
    )
    .await?;

    let apps: Api<Application> = Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    let text = wait_for(
        "metrics to show every Application",
        Duration::from_secs(30),
        || {
            let apps = apps.clone();
            async move {
                let real: BTreeSet<String> = apps
                    .list(&Default::default())
                    .await?
                    .items
                    .into_iter()
                    .filter_map(|a| a.metadata.name)
                    .collect();
                let text = scrape(port).await?;
                let shown: BTreeSet<String> = samples(&text, "argocd_app_info")
                    .iter()
                    .filter_map(|(labels, _)| label(labels, "name").map(str::to_owned))
                    .collect();
                let owned = samples(&text, "argocd_appset_owned_applications");
                let expected: BTreeSet<String> = ["east-guestbook", "west-guestbook", "standalone"]
                    .map(String::from)
                    .into();
                if real == expected
                    && shown == real
                    && owned == [(r#"namespace="argocd",name="guestbook""#, "2")]
                {
                    Ok(Some(text))
                } else {
                    Err(anyhow::anyhow!(
                        "real {real:?}, shown {shown:?}, owned {owned:?}"
                    ))
                }
            }
        },
    )
    .await?;

    let info = samples(&text, "argocd_app_info");
    let east = info
        .iter()
        .find(|(labels, _)| label(labels, "name") == Some("east-guestbook"))
        .unwrap();
    assert_eq!(
        label(east.0, "dest_server"),
        Some("https://east.clusters.example.com")
    );
    assert_eq!(
        label(east.0, "repo"),
        Some("https://github.com/argoproj/argocd-example-apps")
    );
    assert_eq!(label(east.0, "project"), Some("default"));
    assert_eq!(east.1, "1");
    let standalone = info
        .iter()
        .find(|(labels, _)| label(labels, "name") == Some("standalone"))
        .unwrap();
    assert_eq!(label(standalone.0, "sync_status"), Some("Synced"));
    assert_eq!(label(standalone.0, "health_status"), Some("Healthy"));

    let counts: u64 = samples(&text, "argosy_apps")
        .iter()
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(counts, 3);
    let owned_by_status: u64 = samples(&text, "argosy_applicationset_apps")
        .iter()
        .filter(|(labels, _)| label(labels, "applicationset") == Some("guestbook"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(owned_by_status, 2);

    let clusters: BTreeSet<(String, String)> = samples(&text, "argocd_cluster_info")
        .iter()
        .map(|(labels, _)| {
            (
                label(labels, "name").unwrap().to_owned(),
                label(labels, "server").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        clusters,
        [
            (
                "east".to_owned(),
                "https://east.clusters.example.com".to_owned()
            ),
            (
                "west".to_owned(),
                "https://west.clusters.example.com".to_owned()
            ),
        ]
        .into()
    );
    assert_eq!(samples(&text, "argocd_appset_info").len(), 1);
    assert!(!text.contains(TOKEN), "a credential leaked into /metrics");
    assert!(text.ends_with("# EOF\n"));

    controller.stop().await?;
    Ok(())
}
