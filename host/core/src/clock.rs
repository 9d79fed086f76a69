//! Time, passed in. The routing core never reads the wall clock itself: it asks a
//! [`Clock`], so the same core runs in real time (`serve`, [`SystemClock`]) and on
//! the simulator's [`VirtualClock`], and a run is replayable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time in milliseconds.
pub trait Clock: Send + Sync {
    /// Milliseconds since the clock's epoch (the Unix epoch for [`SystemClock`],
    /// the start of the run for [`VirtualClock`]).
    fn now_ms(&self) -> u64;
}

/// The wall clock: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock that only moves when told to. Clones share the same time, so the
/// simulator keeps one handle and gives another to the router.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        VirtualClock { now: Arc::new(AtomicU64::new(start_ms)) }
    }

    /// Set the time. Time never goes backwards: an earlier `ms` is ignored.
    pub fn set(&self, ms: u64) {
        self.now.fetch_max(ms, Ordering::Relaxed);
    }

    /// Move the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_is_shared_and_never_goes_back() {
        let clock = VirtualClock::new(1_000);
        let other = clock.clone();
        clock.advance(500);
        assert_eq!(other.now_ms(), 1_500);
        other.set(1_200);
        assert_eq!(clock.now_ms(), 1_500);
        other.set(2_000);
        assert_eq!(clock.now_ms(), 2_000);
    }
}
