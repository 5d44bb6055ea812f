//! A webhook receiver on loopback for the notification tests: records every request it
//! gets (the JSON body, in arrival order) and answers by a script: given status codes in
//! order, then a default; [`Answer::Hang`] reads the request and never answers (the
//! connection stays open until the sender gives up).
//!
//! Plain HTTP/1.1 over a tokio socket, one request per connection (`Connection: close`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body's bytes as text.
    pub raw: String,
    pub answer: Answer,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
}

/// A running receiver; stops when dropped.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// Requests larger than this are cut (a notification is a few hundred bytes).
const MAX_REQUEST: usize = 1 << 20;

impl WebhookReceiver {
    /// Starts a receiver answering `script` in order, then `default` to every request.
    pub async fn start(script: &[Answer], default: Answer) -> Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the webhook receiver")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, &state, default).await;
                });
            }
        });
        Ok(WebhookReceiver { url, state, task })
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, state: &Mutex<State>, default: Answer) -> Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        let n = socket.read(&mut chunk).await?;
        anyhow::ensure!(n > 0 && buffer.len() < MAX_REQUEST, "incomplete request");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    while buffer.len() < header_end + length {
        let n = socket.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "incomplete body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    let raw = String::from_utf8_lossy(&buffer[header_end..header_end + length]).into_owned();
    let answer = {
        let mut state = state.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let answer = state.script.pop_front().unwrap_or(default);
        state.received.push(Received {
            path: head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned(),
            content_type: header("content-type").unwrap_or_default(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
            answer,
        });
        answer
    };
    match answer {
        Answer::Status(code) => {
            let response = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            socket.write_all(response.as_bytes()).await?;
            socket.shutdown().await?;
        }
        Answer::Hang => {
            // Held open, unanswered, until the sender closes it.
            while socket.read(&mut chunk).await? > 0 {}
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
