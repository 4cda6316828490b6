//! Time source of the store. Tests inject a [`ManualClock`] to drive idle expiry without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, UTC: what a client sends is kept to the microsecond (Python's
/// `datetime` and botocore carry microseconds), end to end.
pub type Micros = i64;

/// Microseconds in a millisecond and in a second.
pub const MICROS_PER_MS: i64 = 1_000;
pub const MICROS_PER_SEC: i64 = 1_000_000;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_us(&self) -> Micros;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> Micros {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(start_us: Micros) -> Self {
        ManualClock {
            now: AtomicI64::new(start_us),
        }
    }
    pub fn set(&self, us: Micros) {
        self.now.store(us, Ordering::SeqCst);
    }
    pub fn advance(&self, us: i64) {
        self.now.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> Micros {
        self.now.load(Ordering::SeqCst)
    }
}
