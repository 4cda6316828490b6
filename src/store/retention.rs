//! Retention and erasure in the embedded stores (issue 16): a session is kept for the retention period after
//! it was last updated (its `lastUpdatedAt`: created, written, updated or ended), then erased. The rules both
//! stores follow live here; the erasing itself is each store's (`SqliteStore`: secure delete, checkpoint,
//! space reclaimed; `MemoryStore`: the records dropped).
//!
//! - A session past retention is gone from the API at once (not found by id or ARN, not listed), whether or
//!   not a sweep has run yet.
//! - A sweep erases such sessions for good: for an encrypted session its data key is destroyed first
//!   (crypto-shredding), in a transaction of its own, then its records. A sweep runs when a store is opened,
//!   then every [`SWEEP_INTERVAL`] on the core's runtime ([`sweep_every`]); [`Erasure::sweep`] runs one now
//!   (tests drive it with a `ManualClock`).
//! - DeleteSession erases the same way, at once.

use std::sync::Weak;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreConfig;
use crate::clock::Micros;
use crate::error::Result;

/// How often a store's sweeper runs (after the sweep at opening). Retention is counted in days: an hour late
/// at most; the API hides expired sessions meanwhile.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The service's retention period (its sessions are deleted after 30 days): the local server's default.
pub const SERVICE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A store that erases sessions past their retention period.
#[async_trait]
pub trait Erasure: Send + Sync + std::fmt::Debug {
    /// Erases every session past the retention period (and finishes any erasure a crash interrupted); returns
    /// how many sessions it erased.
    async fn sweep(&self) -> Result<usize>;
}

/// The last-update time at or before which a session is past retention (`None`: no retention period).
pub(crate) fn cutoff(cfg: &StoreConfig) -> Option<Micros> {
    cfg.retention.map(|r| {
        cfg.clock
            .now_us()
            .saturating_sub(i64::try_from(r.as_micros()).unwrap_or(i64::MAX))
    })
}

/// Whether a session last updated at `last_updated_at` is within retention (visible to the API).
pub(crate) fn retained(last_updated_at: Micros, cfg: &StoreConfig) -> bool {
    cutoff(cfg).is_none_or(|c| last_updated_at > c)
}

/// Sweeps `store` every `every` until the store is dropped (spawn it on the runtime that serves the store). A
/// failed sweep (a busy file, ...) is tried again at the next tick.
pub async fn sweep_every(store: Weak<dyn Erasure>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now: the store swept itself when it opened
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else {
            return;
        };
        let _ = store.sweep().await;
    }
}
