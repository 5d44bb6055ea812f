//! The dashboard's browser session: a cookie that carries its own issue and expiry time
//! under an HMAC, so the server alone decides when it ends.
//!
//! The value is `v1.<issued>.<expires>.<mac>` (Unix seconds; the MAC is HMAC-SHA256 of
//! the rest under a key derived from the dashboard token). Nothing is stored on the
//! server, so every replica behind a Service accepts a cookie any of them issued, and a
//! restart logs nobody out. A client cannot extend its session (the times are under the
//! MAC), and the server checks the age against its *current* TTL as well, so lowering
//! `--dashboard-session-ttl` shortens sessions already issued. Changing the token revokes
//! every session at once (the key changes); logging out only clears the browser's copy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Name of the browser session cookie.
pub const COOKIE: &str = "argosy_dashboard";
/// Version tag of the cookie format (a changed format must not verify as the old one).
const VERSION: &str = "v1";
/// How far a cookie's issue time may lie ahead of this replica's clock (replicas' clocks
/// differ a little).
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Why a session cookie was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session cookie is not in the v1.<issued>.<expires>.<mac> form")]
    ParseCookie,
    #[error("the session cookie's MAC does not match (forged, altered, or from another token)")]
    VerifyMac,
    #[error("the session cookie was issued in the future")]
    CheckIssued,
    #[error("the session has expired")]
    CheckExpiry,
}

/// Issues and verifies session cookies for one dashboard token.
#[derive(Clone)]
pub struct Sessions {
    /// HMAC key for cookies: derived from the token, so a cookie never contains the token
    /// and rotating the token revokes every session.
    key: [u8; 32],
    ttl: Duration,
    /// Whether cookies get `Secure` (served over TLS).
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sessions {
    /// Sessions of `token` lasting `ttl` (at least one second); `secure` when served over TLS.
    pub fn new(token: &str, ttl: Duration, secure: bool) -> Sessions {
        let mut key = [0u8; 32];
        // HMAC accepts keys of any length, so this cannot fail; an all-zero key would
        // only be reached if it did, and it would still verify nothing issued before.
        if let Ok(mut mac) = HmacSha256::new_from_slice(token.as_bytes()) {
            mac.update(b"argosy dashboard session key v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        Sessions {
            key,
            ttl: ttl.max(Duration::from_secs(1)),
            secure,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, issued: u64, expires: u64) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(format!("argosy-session|{VERSION}|{issued}|{expires}").as_bytes());
        Some(mac)
    }

    /// A cookie value valid from `now` for the TTL.
    pub fn issue(&self, now: SystemTime) -> String {
        let issued = unix_seconds(now);
        let expires = issued.saturating_add(self.ttl.as_secs());
        let tag = self
            .mac(issued, expires)
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{VERSION}.{issued}.{expires}.{tag}")
    }

    /// Accepts `value` if this server issued it and it has not expired at `now` (by the
    /// expiry it carries and by the current TTL).
    pub fn verify(&self, value: &str, now: SystemTime) -> Result<(), SessionError> {
        let mut parts = value.split('.');
        let (Some(VERSION), Some(issued), Some(expires), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionError::ParseCookie);
        };
        let issued: u64 = issued.parse().map_err(|_| SessionError::ParseCookie)?;
        let expires: u64 = expires.parse().map_err(|_| SessionError::ParseCookie)?;
        let tag = hex::decode(tag).map_err(|_| SessionError::ParseCookie)?;
        let mac = self.mac(issued, expires).ok_or(SessionError::VerifyMac)?;
        // Constant time: the comparison must not tell how much of a guess was right.
        mac.verify_slice(&tag)
            .map_err(|_| SessionError::VerifyMac)?;
        let now = unix_seconds(now);
        if issued > now.saturating_add(CLOCK_SKEW.as_secs()) {
            return Err(SessionError::CheckIssued);
        }
        let ends = expires.min(issued.saturating_add(self.ttl.as_secs()));
        if now >= ends {
            return Err(SessionError::CheckExpiry);
        }
        Ok(())
    }

    /// The `Set-Cookie` value of a new session.
    pub fn set_cookie(&self, now: SystemTime) -> String {
        format!(
            "{COOKIE}={}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{}",
            self.issue(now),
            self.ttl.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session from the browser.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_cookie_is_valid_until_it_expires() {
        let sessions = Sessions::new("token", 12 * HOUR, false);
        let t0 = 1_700_000_000;
        let value = sessions.issue(at(t0));
        assert!(!value.contains("token"), "{value}");
        assert_eq!(sessions.verify(&value, at(t0)), Ok(()));
        assert_eq!(sessions.verify(&value, at(t0 + 12 * 3600 - 1)), Ok(()));
        assert_eq!(
            sessions.verify(&value, at(t0 + 12 * 3600)),
            Err(SessionError::CheckExpiry)
        );
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let sessions = Sessions::new("token", HOUR, false);
        let t0 = 1_700_000_000;
        let value = sessions.issue(at(t0));
        let parts: Vec<&str> = value.split('.').collect();
        // Pushing the expiry out keeps the MAC of the old expiry: refused.
        let extended = format!("v1.{}.{}.{}", parts[1], t0 + 100 * 3600, parts[3]);
        assert_eq!(
            sessions.verify(&extended, at(t0 + 2 * 3600)),
            Err(SessionError::VerifyMac)
        );
        let mut flipped = value.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            sessions.verify(&flipped, at(t0)),
            Err(SessionError::VerifyMac)
        );
        for garbage in [
            "",
            "forged",
            "v1.1.2",
            "v2.1.2.00",
            "v1.x.2.00",
            "v1.1.2.zz",
            "v1.1.2.00.extra",
        ] {
            assert!(sessions.verify(garbage, at(t0)).is_err(), "{garbage}");
        }
        // Another token's cookie (a rotated token) is refused.
        let other = Sessions::new("rotated", HOUR, false).issue(at(t0));
        assert_eq!(
            sessions.verify(&other, at(t0)),
            Err(SessionError::VerifyMac)
        );
    }

    #[test]
    fn a_shorter_ttl_shortens_issued_sessions_and_the_future_is_refused() {
        let t0 = 1_700_000_000;
        let long = Sessions::new("token", 12 * HOUR, false).issue(at(t0));
        let short = Sessions::new("token", HOUR, false);
        assert_eq!(short.verify(&long, at(t0 + 10)), Ok(()));
        assert_eq!(
            short.verify(&long, at(t0 + 3600)),
            Err(SessionError::CheckExpiry)
        );
        assert_eq!(
            short.verify(&long, at(t0 - 3600)),
            Err(SessionError::CheckIssued)
        );
    }

    #[test]
    fn the_cookie_attributes() {
        let now = at(1_700_000_000);
        let plain = Sessions::new("token", 12 * HOUR, false).set_cookie(now);
        assert!(plain.starts_with("argosy_dashboard=v1."), "{plain}");
        for attribute in ["Max-Age=43200", "Path=/", "HttpOnly", "SameSite=Strict"] {
            assert!(
                plain.split("; ").any(|a| a == attribute),
                "{attribute}: {plain}"
            );
        }
        assert!(!plain.contains("Secure"), "{plain}");
        let tls = Sessions::new("token", HOUR, true);
        assert!(tls.set_cookie(now).ends_with("; Secure"));
        assert!(tls.clear_cookie().contains("Max-Age=0"));
    }
}
