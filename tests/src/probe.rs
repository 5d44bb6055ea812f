//! Plain HTTP/1.1 requests to a controller's listener over TCP, for tests that only need a
//! status line and a body (no client library, no TLS).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `GET path` on `127.0.0.1:port` (with `Authorization: Bearer token` when given): the
/// status code and the whole answer as text. Reads what arrives within 5 s, so a stream
/// that stays open (server-sent events) still returns.
pub async fn get(port: u16, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status line in the answer to GET {path}: {text:?}"))?;
    Ok((status, text))
}

/// How many reconciles each ApplicationSet has had, by `namespace/name`, from the
/// controller's `argocd_appset_reconcile_count` on `GET /metrics` (the listener at
/// `127.0.0.1:port`, no metrics token). An ApplicationSet never reconciled is absent.
pub async fn appset_reconciles(port: u16) -> Result<BTreeMap<String, u64>> {
    let (status, answer) = get(port, "/metrics", None).await?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("no end of headers in the answer to GET /metrics")?;
    anyhow::ensure!(status == 200, "GET /metrics answered {head}");
    body.lines()
        .filter_map(|l| l.strip_prefix("argocd_appset_reconcile_count{"))
        .map(|sample| {
            let (labels, value) = sample
                .rsplit_once("} ")
                .with_context(|| format!("malformed sample {sample:?}"))?;
            let label = |name: &str| {
                let start = labels
                    .find(&format!("{name}=\""))
                    .with_context(|| format!("no label {name} in {labels:?}"))?
                    + name.len()
                    + 2;
                let len = labels[start..]
                    .find('"')
                    .with_context(|| format!("unterminated label {name} in {labels:?}"))?;
                anyhow::Ok(&labels[start..start + len])
            };
            let key = format!("{}/{}", label("namespace")?, label("name")?);
            let count: f64 = value
                .trim()
                .parse()
                .with_context(|| format!("count {value:?} of {key}"))?;
            // A count is a whole number, written as one in the text format.
            Ok((key, count as u64))
        })
        .collect()
}

/// The ApplicationSets (`namespace/name`) whose reconcile count grew from `before` to
/// `after` (two [`appset_reconciles`] answers), with by how much.
pub fn reconciled_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(key, &n)| {
            let grew = n.saturating_sub(before.get(key).copied().unwrap_or(0));
            (grew > 0).then(|| (key.clone(), grew))
        })
        .collect()
}
