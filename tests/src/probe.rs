//! Plain HTTP/1.1 requests to a controller's listener over TCP, for tests that only need a
//! status line and a body (no client library, no TLS).

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
