//! What `/readyz` answers: whether this replica can do its work now.
//!
//! Not ready (503) until every watched store has had its first list (a controller
//! deciding from a half-filled cache would, for example, see Applications as missing),
//! and not ready while a controller loop is stuck: reconciles are running but none has
//! finished for longer than the stall bound. A reconcile that returns an error finished
//! (errors are progress: they are reported and requeued), and so did one that panicked
//! (its [`Running`] guard is dropped while unwinding), so one bad Application never
//! makes the replica unready. An idle loop (nothing running) is ready however long it
//! has been quiet. `/healthz` asks none of this: it says the process serves.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argosy_sync_engine::ready::StoreReady;

/// Why this replica is not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadyError {
    #[error("waiting for the first list of: {}", stores.join(", "))]
    SyncCaches { stores: Vec<&'static str> },
    #[error(
        "{controller} controller stalled: {running} reconcile(s) running, none finished for {} s",
        idle.as_secs()
    )]
    Reconcile {
        controller: &'static str,
        running: usize,
        idle: Duration,
    },
}

#[derive(Debug)]
struct Beat {
    running: usize,
    /// When a reconcile last finished, or work began after an idle spell.
    progress: Instant,
}

/// A controller loop's progress record, shared by its reconciles and `/readyz`.
#[derive(Debug, Clone)]
pub struct Heartbeat(Arc<Mutex<Beat>>);

/// One running reconcile; dropping it (return, error or unwinding panic) records that
/// the reconcile finished.
#[derive(Debug)]
pub struct Running(Heartbeat);

impl Heartbeat {
    pub fn new(now: Instant) -> Heartbeat {
        Heartbeat(Arc::new(Mutex::new(Beat {
            running: 0,
            progress: now,
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Beat) -> T) -> T {
        // The record stays meaningful if a holder panicked: counts and a time.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A reconcile starts at `now`.
    pub fn start_at(&self, now: Instant) -> Running {
        self.with(|beat| {
            if beat.running == 0 {
                // Idle time before this is not a stall.
                beat.progress = now;
            }
            beat.running += 1;
        });
        Running(self.clone())
    }

    /// A reconcile starts now.
    pub fn start(&self) -> Running {
        self.start_at(Instant::now())
    }

    fn finish_at(&self, now: Instant) {
        self.with(|beat| {
            beat.running = beat.running.saturating_sub(1);
            beat.progress = now;
        });
    }

    /// `Err` if reconciles are running and none finished within `stall` before `now`.
    pub fn check(
        &self,
        controller: &'static str,
        stall: Duration,
        now: Instant,
    ) -> Result<(), ReadyError> {
        self.with(|beat| {
            let idle = now.saturating_duration_since(beat.progress);
            if beat.running > 0 && idle > stall {
                Err(ReadyError::Reconcile {
                    controller,
                    running: beat.running,
                    idle,
                })
            } else {
                Ok(())
            }
        })
    }
}

impl Running {
    /// Ends the reconcile at `now` (tests; dropping ends it at the current time).
    pub fn finish_at(self, now: Instant) {
        let heartbeat = self.0.clone();
        std::mem::forget(self);
        heartbeat.finish_at(now);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.finish_at(Instant::now());
    }
}

/// Everything `/readyz` looks at.
#[derive(Debug, Clone)]
pub struct Readiness {
    stores: Vec<(&'static str, StoreReady)>,
    loops: Vec<(&'static str, Heartbeat)>,
    stall: Duration,
}

impl Readiness {
    /// Ready once `stores` are listed, while `loops` progress within `stall`.
    pub fn new(
        stores: Vec<(&'static str, StoreReady)>,
        loops: Vec<(&'static str, Heartbeat)>,
        stall: Duration,
    ) -> Readiness {
        Readiness {
            stores,
            loops,
            stall,
        }
    }

    /// Always ready (tests, embedders without controllers).
    pub fn always() -> Readiness {
        Readiness::new(Vec::new(), Vec::new(), Duration::MAX)
    }

    pub fn check(&self, now: Instant) -> Result<(), ReadyError> {
        let waiting: Vec<&'static str> = self
            .stores
            .iter()
            .filter(|(_, ready)| !ready.is_ready())
            .map(|(name, _)| *name)
            .collect();
        if !waiting.is_empty() {
            return Err(ReadyError::SyncCaches { stores: waiting });
        }
        for (name, heartbeat) in &self.loops {
            heartbeat.check(name, self.stall, now)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use kube::runtime::watcher;

    const SECOND: Duration = Duration::from_secs(1);
    const STALL: Duration = Duration::from_secs(300);

    #[test]
    fn not_ready_until_every_store_is_listed() {
        let (clusters_listed, clusters) = StoreReady::new();
        let (_apps_listed, apps) = StoreReady::new();
        let readiness = Readiness::new(
            vec![
                ("clusters", clusters),
                ("applications", apps),
                ("projects", StoreReady::already()),
            ],
            Vec::new(),
            STALL,
        );
        let now = Instant::now();
        assert_eq!(
            readiness.check(now),
            Err(ReadyError::SyncCaches {
                stores: vec!["clusters", "applications"]
            })
        );
        clusters_listed.observe::<Secret, ()>(&Ok(watcher::Event::InitDone));
        assert_eq!(
            readiness.check(now),
            Err(ReadyError::SyncCaches {
                stores: vec!["applications"]
            })
        );
        assert!(Readiness::always().check(now).is_ok());
    }

    #[test]
    fn a_loop_that_stops_finishing_reconciles_is_not_ready() {
        let t0 = Instant::now();
        let heartbeat = Heartbeat::new(t0);
        let readiness = Readiness::new(Vec::new(), vec![("application", heartbeat.clone())], STALL);
        // Idle for a long time: ready.
        assert_eq!(readiness.check(t0 + 3600 * SECOND), Ok(()));
        // Work starts after the idle spell; within the bound: ready.
        let stuck = heartbeat.start_at(t0 + 3600 * SECOND);
        assert_eq!(readiness.check(t0 + 3800 * SECOND), Ok(()));
        // Others keep finishing while one hangs: ready.
        heartbeat
            .start_at(t0 + 3850 * SECOND)
            .finish_at(t0 + 3851 * SECOND);
        assert_eq!(readiness.check(t0 + 4100 * SECOND), Ok(()));
        // Nothing finishes for longer than the bound: not ready.
        assert_eq!(
            readiness.check(t0 + 4200 * SECOND),
            Err(ReadyError::Reconcile {
                controller: "application",
                running: 1,
                idle: 349 * SECOND,
            })
        );
        // It finishes (an error is a finish too): ready again.
        stuck.finish_at(t0 + 4201 * SECOND);
        assert_eq!(readiness.check(t0 + 9000 * SECOND), Ok(()));
    }

    #[test]
    fn a_panicking_reconcile_counts_as_finished() {
        let heartbeat = Heartbeat::new(Instant::now());
        let inner = heartbeat.clone();
        let result = std::panic::catch_unwind(move || {
            let _running = inner.start();
            panic!("a bad Application");
        });
        assert!(result.is_err());
        let later = Instant::now() + 3600 * SECOND;
        assert_eq!(heartbeat.check("application", STALL, later), Ok(()));
    }
}
