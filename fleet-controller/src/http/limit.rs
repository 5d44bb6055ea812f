//! Failed-login limiting: after too many wrong tokens from one client within a window,
//! every further attempt from it gets 429 with `Retry-After` until the window ends, right
//! or wrong (otherwise a guesser would still learn when it guessed right).
//!
//! Clients are keyed by IP address (an IPv6 client by its /64, which one host usually
//! owns whole). Behind a proxy or `kubectl port-forward` every client shares the proxy's
//! address; `X-Forwarded-For` is not trusted, since anyone can send it. Memory is bounded:
//! at most `capacity` clients are tracked; when full, expired windows are dropped first,
//! then the client whose window started first.
//!
//! Pure: every method takes the time, so tests inject it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::defaults;

/// A client that failed too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("too many failed logins from this address; retry after {} s", retry_after.as_secs())]
    CheckFailures { retry_after: Duration },
}

impl LimitError {
    /// Whole seconds for `Retry-After` (at least 1: 0 would invite an immediate retry).
    pub fn retry_after_seconds(&self) -> u64 {
        let Self::CheckFailures { retry_after } = self;
        retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// How many failures, over which window, for how many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    pub max_failures: u32,
    pub window: Duration,
    pub capacity: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_failures: defaults::LOGIN_MAX_FAILURES,
            window: Duration::from_secs(defaults::LOGIN_WINDOW_SECONDS),
            capacity: defaults::LOGIN_LIMIT_CLIENTS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    started: Instant,
    failures: u32,
}

/// Failures per client within a fixed window that starts at the client's first failure.
#[derive(Debug)]
pub struct LoginLimiter {
    settings: LimitSettings,
    clients: HashMap<IpAddr, Entry>,
}

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl LoginLimiter {
    pub fn new(settings: LimitSettings) -> LoginLimiter {
        LoginLimiter {
            settings: LimitSettings {
                max_failures: settings.max_failures.max(1),
                capacity: settings.capacity.max(1),
                ..settings
            },
            clients: HashMap::new(),
        }
    }

    fn live(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.started) < self.settings.window
    }

    /// Whether `ip` may try a credential now.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), LimitError> {
        match self.clients.get(&client_key(ip)) {
            Some(entry)
                if self.live(entry, now) && entry.failures >= self.settings.max_failures =>
            {
                Err(LimitError::CheckFailures {
                    retry_after: (entry.started + self.settings.window)
                        .saturating_duration_since(now),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong credential from `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        let key = client_key(ip);
        if !self.clients.contains_key(&key) && self.clients.len() >= self.settings.capacity {
            self.make_room(now);
        }
        let window = self.settings.window;
        let entry = self.clients.entry(key).or_insert(Entry {
            started: now,
            failures: 0,
        });
        if now.saturating_duration_since(entry.started) >= window {
            *entry = Entry {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        let window = self.settings.window;
        self.clients
            .retain(|_, entry| now.saturating_duration_since(entry.started) < window);
        if self.clients.len() >= self.settings.capacity
            && let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, entry)| entry.started)
                .map(|(ip, _)| *ip)
        {
            self.clients.remove(&oldest);
        }
    }
}

/// One [`LoginLimiter`] shared by every route that checks a token (dashboard login,
/// dashboard bearer tokens, `/metrics`).
#[derive(Debug, Clone)]
pub struct SharedLimiter(Arc<Mutex<LoginLimiter>>);

impl SharedLimiter {
    pub fn new(settings: LimitSettings) -> SharedLimiter {
        SharedLimiter(Arc::new(Mutex::new(LoginLimiter::new(settings))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut LoginLimiter) -> T) -> T {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        let mut limiter = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut limiter)
    }

    /// Checks `ip`, then runs `attempt` and counts it if it fails: `Ok(true)` for a right
    /// credential, `Ok(false)` for a wrong one; `Err` when `ip` is blocked (`attempt` is
    /// not run). A right credential does not reset the count: clients behind one proxy
    /// share an address, and a scraper's or colleague's logins must not give a guesser
    /// there fresh attempts.
    pub fn attempt(&self, ip: IpAddr, attempt: impl FnOnce() -> bool) -> Result<bool, LimitError> {
        let now = Instant::now();
        self.with(|limiter| {
            limiter.check(ip, now)?;
            let right = attempt();
            if !right {
                limiter.failed(ip, now);
            }
            Ok(right)
        })
    }
}

impl Default for SharedLimiter {
    fn default() -> Self {
        SharedLimiter::new(LimitSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SECOND: Duration = Duration::from_secs(1);

    fn settings(capacity: usize) -> LimitSettings {
        LimitSettings {
            max_failures: 3,
            window: 60 * SECOND,
            capacity,
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let t0 = Instant::now();
        let mut limiter = LoginLimiter::new(settings(10));
        for i in 0..3 {
            assert_eq!(limiter.check(v4(1), t0 + i * SECOND), Ok(()));
            limiter.failed(v4(1), t0 + i * SECOND);
        }
        let blocked = limiter.check(v4(1), t0 + 10 * SECOND).unwrap_err();
        assert_eq!(
            blocked,
            LimitError::CheckFailures {
                retry_after: 50 * SECOND
            }
        );
        assert_eq!(blocked.retry_after_seconds(), 50);
        // Other clients are not affected.
        assert_eq!(limiter.check(v4(2), t0 + 10 * SECOND), Ok(()));
        // The window ends: allowed again, and a new failure starts a new window.
        assert_eq!(limiter.check(v4(1), t0 + 60 * SECOND), Ok(()));
        limiter.failed(v4(1), t0 + 61 * SECOND);
        assert_eq!(limiter.check(v4(1), t0 + 62 * SECOND), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut limiter = LoginLimiter::new(settings(4));
        for last in 0..200 {
            limiter.failed(v4(last), t0 + u32::from(last) * SECOND / 100);
            assert!(limiter.len() <= 4, "{}", limiter.len());
        }
        // Expired windows go first: a full map of stale clients makes room for a new one
        // without evicting a live, blocked client.
        let mut limiter = LoginLimiter::new(settings(2));
        for _ in 0..3 {
            limiter.failed(v4(1), t0 + 100 * SECOND);
        }
        limiter.failed(v4(2), t0);
        limiter.failed(v4(3), t0 + 100 * SECOND);
        assert_eq!(limiter.len(), 2);
        assert!(limiter.check(v4(1), t0 + 101 * SECOND).is_err());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let t0 = Instant::now();
        let mut limiter = LoginLimiter::new(settings(10));
        let a: IpAddr = "2001:db8:1:2::1".parse::<Ipv6Addr>().unwrap().into();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse::<Ipv6Addr>().unwrap().into();
        let other: IpAddr = "2001:db8:1:3::1".parse::<Ipv6Addr>().unwrap().into();
        limiter.failed(a, t0);
        limiter.failed(b, t0);
        limiter.failed(a, t0);
        assert!(limiter.check(b, t0).is_err());
        assert_eq!(limiter.check(other, t0), Ok(()));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(client_key(mapped), v4(7));
    }

    #[test]
    fn the_shared_limiter_does_not_run_a_blocked_attempt() {
        let shared = SharedLimiter::new(settings(10));
        for _ in 0..3 {
            assert_eq!(shared.attempt(v4(1), || false), Ok(false));
        }
        let mut ran = false;
        assert!(
            shared
                .attempt(v4(1), || {
                    ran = true;
                    true
                })
                .is_err()
        );
        assert!(!ran, "a blocked client's credential was checked");
        // Right credentials do not reset a client's count (a shared address).
        assert_eq!(shared.attempt(v4(2), || false), Ok(false));
        assert_eq!(shared.attempt(v4(2), || true), Ok(true));
        assert_eq!(shared.attempt(v4(2), || false), Ok(false));
        assert_eq!(shared.attempt(v4(2), || false), Ok(false));
        assert!(shared.attempt(v4(2), || true).is_err());
    }
}
