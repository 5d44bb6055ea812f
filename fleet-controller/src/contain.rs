//! Panics contained: a reconcile that panics (a bug, or input nobody thought of) must not
//! take the controller down with it, nor poison the other apps' reconciles. The panic
//! becomes an error the controllers report on the object (a condition, a Warning Event),
//! count (`argosy_reconcile_panics_total{controller}`) and requeue with backoff, while
//! every other object keeps being served.
//!
//! This relies on unwinding: the release profile must not set `panic = "abort"` (a test
//! in this module reads the workspace's `Cargo.toml`).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt as _;

/// First requeue after a panic; doubles per consecutive panic of the same object.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// The longest requeue after repeated panics.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Runs `future`; a panic inside it becomes `Err(message)`.
///
/// `AssertUnwindSafe`: after a panic the controllers only read their shared state through
/// poison-tolerant locks and report; nothing half-written is trusted (the next reconcile
/// observes the cluster afresh).
pub async fn catch<T>(future: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(payload.as_ref()))
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
#[must_use]
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The message reported on the object.
#[must_use]
pub fn report(message: &str) -> String {
    format!("internal error: reconcile panicked: {message}")
}

/// Consecutive panics per object, for the requeue backoff.
#[derive(Debug, Default)]
pub struct PanicBackoff {
    counts: Mutex<HashMap<String, u32>>,
}

impl PanicBackoff {
    /// Counts a panic of `key` and returns how long to wait before the next reconcile:
    /// 5 s doubling, capped at 5 min.
    pub fn panicked(&self, key: &str) -> Duration {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.to_owned()).or_insert(0);
        let delay = BACKOFF_BASE
            .saturating_mul(1u32.checked_shl((*n).min(16)).unwrap_or(u32::MAX))
            .min(BACKOFF_MAX);
        *n = n.saturating_add(1);
        delay
    }

    /// `key` reconciled without panicking: its backoff starts over.
    pub fn recovered(&self, key: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(catch(async { 7 }).await, Ok(7));
        let caught = catch(async {
            tokio::task::yield_now().await;
            panic!("index out of bounds: the len is 0 but the index is 3");
        })
        .await;
        assert_eq!(
            caught.map_err(|m| report(&m)),
            Err::<(), _>(
                "internal error: reconcile panicked: index out of bounds: the len is 0 but the index is 3".to_owned()
            )
        );
        let n = 3;
        let caught: Result<(), String> = catch(async move { panic!("formatted {n}") }).await;
        assert_eq!(caught, Err("formatted 3".to_owned()));
    }

    #[test]
    fn repeated_panics_back_off_and_recovery_resets() {
        let b = PanicBackoff::default();
        assert_eq!(b.panicked("a"), Duration::from_secs(5));
        assert_eq!(b.panicked("a"), Duration::from_secs(10));
        assert_eq!(b.panicked("b"), Duration::from_secs(5));
        for _ in 0..40 {
            b.panicked("a");
        }
        assert_eq!(b.panicked("a"), Duration::from_secs(300));
        b.recovered("a");
        assert_eq!(b.panicked("a"), Duration::from_secs(5));
    }

    /// Unwinding is what makes containment possible: `panic = "abort"` in a profile would
    /// turn every contained panic back into a crash.
    #[test]
    fn no_profile_aborts_on_panic() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(
            !manifest
                .lines()
                .any(|l| l.replace(' ', "").starts_with("panic=\"abort\"")),
            "a profile sets panic = \"abort\""
        );
    }
}
