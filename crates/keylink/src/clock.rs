//! Time, injected: logic takes a [`Clock`] so claim checks and expiry are testable with a
//! fixed instant instead of reading the system time deep inside.
//!
//! ```
//! use std::sync::Arc;
//! use keylink::clock::{FixedClock, rfc3339};
//!
//! # fn main() -> Result<(), keylink::Error> {
//! // Tests and demos pin the time; expiry and ID-token checks read it from here.
//! let clock = FixedClock(1_796_000_000);
//! assert_eq!(rfc3339(clock.0), "2026-11-30T00:53:20Z");
//! let keylink = keylink::Keylink::builder(keylink::AppIdentity::new("com.example.notes")?)
//!     .config(keylink::Config::default())
//!     .data_dir("/tmp/notes-example")
//!     .clock(Arc::new(clock))
//!     .build()?;
//! # let _ = keylink;
//! # Ok(()) }
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock stuck at one instant, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub UnixTime);

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0
    }
}

/// How far this computer's clock is from a provider's, as measured by
/// [`Keylink::clock_offset`](crate::Keylink::clock_offset) from the HTTP `Date` of the
/// provider's answer (to the second; the time the answer took is not subtracted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOffset {
    /// This computer's clock is ahead of the provider's by this much (or equal to it).
    Ahead(std::time::Duration),
    /// This computer's clock is behind the provider's by this much.
    Behind(std::time::Duration),
}

impl ClockOffset {
    /// How much the clocks differ, whichever is ahead.
    pub fn magnitude(self) -> std::time::Duration {
        match self {
            ClockOffset::Ahead(d) | ClockOffset::Behind(d) => d,
        }
    }

    pub(crate) fn between(ours: UnixTime, theirs: UnixTime) -> Self {
        let by = std::time::Duration::from_secs(ours.abs_diff(theirs));
        if ours >= theirs {
            ClockOffset::Ahead(by)
        } else {
            ClockOffset::Behind(by)
        }
    }
}

/// Why the clocks could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockOffsetError {
    /// The provider's authorization endpoint did not answer.
    #[error("its authorization endpoint could not be reached ({0})")]
    Unreachable(String),
    /// The answer had no valid `Date` header (RFC 9110 §6.6.1).
    #[error("its authorization endpoint sent no valid Date header")]
    NoDate,
}

/// Formats a Unix time as RFC 3339 UTC (`2026-11-27T09:10:00Z`).
pub fn rfc3339(t: UnixTime) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Parses an RFC 3339 time into a Unix time.
pub fn parse_rfc3339(s: &str) -> Option<UnixTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|dt| dt.unix_timestamp())
}

/// `timeout` from now, or a century from now when `timeout` is too large to add (a hostile
/// or mistyped number must not panic, SECURITY 40).
pub(crate) fn deadline_after(timeout: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}
