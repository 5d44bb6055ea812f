//! The sender: takes deliveries off the bounded queue and POSTs them, each with a
//! timeout, retried with backoff, several at once. It runs on its own task: nothing a
//! receiver does (hang, fail, answer slowly) reaches a reconcile, which only queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Semaphore, mpsc};

use super::config;
use crate::defaults;
use crate::metrics::Metrics;

/// How notifications are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifySettings {
    /// One request's limit (connect, send, answer).
    pub timeout: Duration,
    /// Attempts per webhook and notification (the first included).
    pub attempts: u32,
    /// The wait before the second attempt, doubled for each further one.
    pub backoff: Duration,
    /// Deliveries queued or under way at most, all webhooks together; more are dropped and
    /// counted.
    pub queue: usize,
    /// Webhooks on loopback, link-local and metadata hosts (`--allow-internal-notify-hosts`).
    pub allow_internal_hosts: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(defaults::NOTIFY_TIMEOUT_SECONDS),
            attempts: defaults::NOTIFY_ATTEMPTS,
            backoff: Duration::from_millis(defaults::NOTIFY_BACKOFF_MILLIS),
            queue: defaults::NOTIFY_QUEUE,
            allow_internal_hosts: false,
        }
    }
}

/// One POST to make: the body is the same bytes on every attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub body: Arc<[u8]>,
    /// `rollout`, `syncFailed` or `healthDegraded` (the metric's label).
    pub kind: &'static str,
}

/// How one attempt ended.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("refused: {0}")]
    CheckUrl(#[from] config::UrlError),
    #[error("checking the webhook's addresses: {0}")]
    ResolveTask(#[from] tokio::task::JoinError),
    #[error("no answer within {}s", .0.as_secs_f32())]
    AwaitAnswer(Duration),
    /// The request failed (the error is given without its URL).
    #[error("sending: {0}")]
    Post(reqwest::Error),
    #[error("the receiver answered {0}")]
    ReadStatus(reqwest::StatusCode),
}

impl SendError {
    /// Whether a later attempt may succeed: network errors, timeouts, `408`, `429` and
    /// `5xx` answers. A refused URL or another `4xx` will not change by itself.
    pub fn retryable(&self) -> bool {
        match self {
            SendError::CheckUrl(_) => false,
            SendError::ResolveTask(_) | SendError::AwaitAnswer(_) | SendError::Post(_) => true,
            SendError::ReadStatus(status) => {
                status.is_server_error()
                    || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || *status == reqwest::StatusCode::REQUEST_TIMEOUT
            }
        }
    }

    /// A bounded label for the failure metric.
    pub fn category(&self) -> &'static str {
        match self {
            SendError::CheckUrl(_) => "refused",
            SendError::ResolveTask(_) | SendError::Post(_) => "network",
            SendError::AwaitAnswer(_) => "timeout",
            SendError::ReadStatus(_) => "status",
        }
    }
}

/// The wait before attempt `attempt` (1-based; none before the first): `backoff`, doubled
/// for each further attempt, at most a minute.
pub fn delay_before(attempt: u32, backoff: Duration) -> Duration {
    match attempt {
        0 | 1 => Duration::ZERO,
        n => backoff
            .saturating_mul(1 << (n - 2).min(16))
            .min(Duration::from_secs(60)),
    }
}

/// Delivers everything `queue` brings until every sender is gone. Each webhook has its
/// own lane: its notifications are sent one at a time, in the order they happened, so a
/// receiver that hangs delays only its own (up to [`defaults::NOTIFY_WEBHOOK_BACKLOG`]
/// waiting; more are dropped and counted in `dropped`, as are deliveries beyond
/// `settings.queue` in all lanes). This loop itself never waits for a delivery.
pub async fn run(
    mut queue: mpsc::Receiver<Delivery>,
    settings: NotifySettings,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    metrics: Metrics,
    dropped: Counter,
) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        // A redirect could lead past the URL check; receivers answer, they do not redirect.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(argosy_sync_engine::clients::USER_AGENT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "notifications are off: building the HTTP client failed");
            while let Some(delivery) = queue.recv().await {
                metrics.notification(delivery.kind, "failed");
            }
            return;
        }
    };
    let lanes = Arc::new(Mutex::new(Lanes::default()));
    let tasks = Arc::new(Semaphore::new(settings.queue.max(1)));
    while let Some(delivery) = queue.recv().await {
        let Ok(task) = tasks.clone().try_acquire_owned() else {
            dropped.inc();
            continue;
        };
        let Some(lane) = lock(&lanes).enter(&delivery.url, defaults::NOTIFY_WEBHOOK_BACKLOG) else {
            dropped.inc();
            continue;
        };
        let (client, metrics, leader, lanes) = (
            client.clone(),
            metrics.clone(),
            leader.clone(),
            lanes.clone(),
        );
        tokio::spawn(async move {
            if let Ok(_turn) = lane.acquire().await {
                deliver(&client, &delivery, settings, leader.as_ref(), &metrics).await;
            }
            lock(&lanes).leave(&delivery.url);
            drop(task);
        });
    }
}

/// The deliveries under way or waiting, per webhook URL.
#[derive(Default)]
struct Lanes(HashMap<String, Lane>);

struct Lane {
    /// One delivery at a time (tokio's semaphore is fair: in arrival order).
    turn: Arc<Semaphore>,
    /// Deliveries entered and not yet left.
    pending: usize,
}

impl Lanes {
    /// A place in `url`'s lane, unless `backlog` deliveries are already in it.
    fn enter(&mut self, url: &str, backlog: usize) -> Option<Arc<Semaphore>> {
        let lane = self.0.entry(url.to_owned()).or_insert_with(|| Lane {
            turn: Arc::new(Semaphore::new(1)),
            pending: 0,
        });
        if lane.pending >= backlog.max(1) {
            return None;
        }
        lane.pending += 1;
        Some(lane.turn.clone())
    }

    /// A delivery of `url` ended; an empty lane is forgotten.
    fn leave(&mut self, url: &str) {
        if let Some(lane) = self.0.get_mut(url) {
            lane.pending = lane.pending.saturating_sub(1);
            if lane.pending == 0 {
                self.0.remove(url);
            }
        }
    }
}

fn lock(lanes: &Mutex<Lanes>) -> std::sync::MutexGuard<'_, Lanes> {
    lanes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn deliver(
    client: &reqwest::Client,
    delivery: &Delivery,
    settings: NotifySettings,
    leader: Option<&tokio::sync::watch::Receiver<bool>>,
    metrics: &Metrics,
) {
    let shown = config::redact(&delivery.url);
    let attempts = settings.attempts.max(1);
    for attempt in 1..=attempts {
        tokio::time::sleep(delay_before(attempt, settings.backoff)).await;
        // A replica that lost the Lease leaves the rest of a rollout's to the new leader
        // (an Application's notice comes from the replica syncing it, leader or not).
        if delivery.kind == "rollout" && leader.is_some_and(|rx| !*rx.borrow()) {
            tracing::debug!(webhook = %shown, kind = delivery.kind, "no longer leader: notification dropped");
            return;
        }
        match post(client, delivery, settings).await {
            Ok(()) => {
                metrics.notification(delivery.kind, "sent");
                tracing::debug!(webhook = %shown, kind = delivery.kind, attempt, "notification sent");
                return;
            }
            Err(e) if e.retryable() && attempt < attempts => {
                tracing::info!(webhook = %shown, kind = delivery.kind, attempt, error = %e, "notification failed; retrying");
            }
            Err(e) => {
                metrics.notification(delivery.kind, "failed");
                tracing::warn!(webhook = %shown, kind = delivery.kind, attempt, category = e.category(), error = %e, "notification not delivered");
                return;
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    delivery: &Delivery,
    settings: NotifySettings,
) -> Result<(), SendError> {
    let url = delivery.url.clone();
    let allow_internal = settings.allow_internal_hosts;
    // The host's addresses too (blocking DNS, off the runtime's threads).
    tokio::task::spawn_blocking(move || {
        config::policy(allow_internal)
            .check_resolved(&url)
            .map_err(|refusal| config::UrlError::CheckHost {
                url: config::redact(&url),
                refusal,
            })
    })
    .await??;
    let request = client
        .post(&delivery.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(delivery.body.to_vec());
    // The client's own timeout covers the exchange; this one also bounds a body that
    // trickles in after the headers.
    let answer = tokio::time::timeout(settings.timeout, async {
        let response = request.send().await?;
        let status = response.status();
        // Read (and bound) the answer so the connection can be reused; it is not kept.
        let _ = response.bytes().await;
        Ok::<_, reqwest::Error>(status)
    })
    .await
    .map_err(|_| SendError::AwaitAnswer(settings.timeout))?;
    match answer {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(SendError::ReadStatus(status)),
        Err(e) if e.is_timeout() => Err(SendError::AwaitAnswer(settings.timeout)),
        Err(e) => Err(SendError::Post(e.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_attempt_and_is_capped() {
        let b = Duration::from_secs(1);
        assert_eq!(delay_before(1, b), Duration::ZERO);
        assert_eq!(delay_before(2, b), Duration::from_secs(1));
        assert_eq!(delay_before(3, b), Duration::from_secs(2));
        assert_eq!(delay_before(4, b), Duration::from_secs(4));
        assert_eq!(delay_before(u32::MAX, b), Duration::from_secs(60));
        assert_eq!(delay_before(40, Duration::MAX), Duration::from_secs(60));
    }

    #[test]
    fn each_webhook_has_its_own_bounded_lane() {
        let mut lanes = Lanes::default();
        let a = lanes.enter("https://a.example/", 2).unwrap();
        let a2 = lanes.enter("https://a.example/", 2).unwrap();
        assert!(Arc::ptr_eq(&a, &a2), "one lane per webhook");
        assert!(
            lanes.enter("https://a.example/", 2).is_none(),
            "its backlog is full"
        );
        assert!(
            lanes.enter("https://b.example/", 2).is_some(),
            "another webhook is not held up"
        );
        lanes.leave("https://a.example/");
        assert!(lanes.enter("https://a.example/", 2).is_some());
        for _ in 0..2 {
            lanes.leave("https://a.example/");
        }
        lanes.leave("https://b.example/");
        assert!(lanes.0.is_empty(), "empty lanes are forgotten");
        lanes.leave("https://never.example/");
    }

    #[test]
    fn only_what_may_change_is_retried() {
        let status =
            |code: u16| SendError::ReadStatus(reqwest::StatusCode::from_u16(code).unwrap());
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(status(408).retryable());
        assert!(!status(404).retryable());
        assert!(!status(400).retryable());
        assert!(SendError::AwaitAnswer(Duration::from_secs(5)).retryable());
        let refused = config::check("gopher://x/", false).unwrap_err();
        assert!(!SendError::CheckUrl(refused).retryable());
    }
}
