//! Group commit of a thread's writes.
//!
//! Every `(session, namespace)` has a lane. A write that finds its lane idle is sent at once; writes
//! that arrive while a request of the lane is in flight wait, and are then sent together as one step
//! (a *batch*, see [`layout::batch_step_id`]). The concurrent `put_writes` of a superstep therefore cost
//! one request, and so do the writes of a task together with the checkpoint that follows them.
//!
//! - Durable mode (the default): each call returns once the request that carried its data succeeded
//!   (or with that request's error). The caller whose request completes hands the lane to the first
//!   waiting caller, which sends everything queued by then: nothing runs in the background. A lane that
//!   holds only regular writes waits a little (a fraction of the store's round trip, at most
//!   [`MAX_LINGER`]) for the checkpoint that usually follows them, so that both go in one request.
//! - Deferred mode (opt-in): calls return once their data is queued; a background task per busy lane
//!   sends it. Reads and `flush` wait for the lanes of their threads; a failure is reported by the next
//!   call on the lane.
//!
//! A batch holds at most [`MAX_BATCH_BYTES`] of envelopes, spans at most `BATCH_MAX_SPAN_MS` of
//! checkpoint time, never holds one checkpoint twice, and only holds records whose checkpoint id
//! carries a time (LangGraph's uuid6 ids); any other record is written alone, in the regular layout.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::Saver;
use super::layout;
use super::write::{Rec, RecKind};
use crate::error::{Error, Result};
use crate::store::SessionStore;

/// The most envelope bytes one batch carries.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The longest a lane of regular writes waits for a checkpoint to carry them.
pub const MAX_LINGER: Duration = Duration::from_millis(5);
/// Round trips shorter than this are not worth waiting for (an embedded store).
const LINGER_FROM: Duration = Duration::from_micros(100);
/// Checkpoint ids remembered per lane (to write a checkpoint put twice as a revision).
const REMEMBERED: usize = 4096;

pub(crate) enum Signal {
    Done(Result<()>),
    /// The lane is yours: send what is queued (your record is first).
    Lead,
}

pub(crate) struct Pending {
    id: u64,
    rec: Arc<Rec>,
    /// None in deferred mode.
    done: Option<oneshot::Sender<Signal>>,
}

#[derive(Default)]
struct LaneState {
    busy: bool,
    queue: VecDeque<Pending>,
    /// A failure of a deferred write, reported by the next call.
    error: Option<Error>,
}

/// The checkpoint ids a saver wrote last (bounded), oldest first.
#[derive(Default)]
struct Written {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Written {
    fn insert(&mut self, id: &str) {
        if self.set.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            if self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Lane {
    state: Mutex<LaneState>,
    /// A checkpoint or special write arrived (ends a linger).
    wake: Notify,
    /// The lane went idle.
    idle: Notify,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The lanes of a saver: only lanes with work (or an unreported failure) are kept.
#[derive(Default)]
pub(crate) struct Lanes {
    map: Mutex<HashMap<(String, String), Arc<Lane>>>,
    next: AtomicU64,
    /// Round trip of the store's writes (exponential average).
    rtt: Mutex<Option<Duration>>,
    written: Mutex<Written>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lanes {
    /// Queues a record in its lane (created if needed); true when the caller is to lead the lane. With
    /// `report`, an unreported failure of the lane is returned instead (and the record not queued).
    /// The map stays locked while queueing, so that a lane is never retired with a record in it.
    fn push(
        &self,
        sid: &str,
        rec: Arc<Rec>,
        done: Option<oneshot::Sender<Signal>>,
        report: bool,
    ) -> Result<(Arc<Lane>, u64, bool)> {
        let mut map = locked(&self.map);
        let lane = map
            .entry((sid.to_string(), rec.ns.clone()))
            .or_default()
            .clone();
        let mut st = lane.lock();
        if report {
            if let Some(e) = st.error.take() {
                return Err(e);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let wake = ends_linger(&rec);
        st.queue.push_back(Pending { id, rec, done });
        let lead = !st.busy;
        st.busy = true;
        if wake && !lead {
            lane.wake.notify_one();
        }
        drop(st);
        Ok((lane, id, lead))
    }

    /// How many lanes are kept.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        locked(&self.map).len()
    }

    /// Drops an idle lane from the map (its lock is not held by the caller).
    fn retire(&self, sid: &str, ns: &str, lane: &Arc<Lane>) {
        let mut map = locked(&self.map);
        let key = (sid.to_string(), ns.to_string());
        let idle = {
            let st = lane.lock();
            !st.busy && st.queue.is_empty() && st.error.is_none()
        };
        if idle && map.get(&key).is_some_and(|l| Arc::ptr_eq(l, lane)) {
            map.remove(&key);
        }
    }

    /// The lanes of a session (all of them with `None`).
    fn of_session(&self, sid: Option<&str>) -> Vec<((String, String), Arc<Lane>)> {
        let map = locked(&self.map);
        map.iter()
            .filter(|((s, _), _)| sid.is_none_or(|want| want == s))
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect()
    }
}

/// Wakes a lingering leader when a record arrives that ends the wait.
fn ends_linger(rec: &Rec) -> bool {
    matches!(rec.kind, RecKind::Checkpoint { .. }) || rec.special
}

/// Takes the next batch off the front of a queue (at least one record when the queue is not empty).
fn take_batch(st: &mut LaneState, written: &mut Written) -> Vec<Pending> {
    let mut bytes = 0usize;
    let mut checkpoints: HashSet<&str> = HashSet::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut n = 0;
    for p in st.queue.iter() {
        let rec = &p.rec;
        let alone = rec.cp_time.is_none()
            || rec.json.len() > MAX_BATCH_BYTES / 2
            || matches!(rec.kind, RecKind::Checkpoint { .. }) && written.set.contains(&rec.cp_id);
        if alone {
            if n == 0 {
                n = 1;
            }
            break;
        }
        let t = rec.cp_time.unwrap_or_default();
        let is_cp = matches!(rec.kind, RecKind::Checkpoint { .. });
        if n > 0
            && (bytes + rec.json.len() > MAX_BATCH_BYTES
                || is_cp && checkpoints.contains(rec.cp_id.as_str())
                || hi.max(t) - lo.min(t) > layout::BATCH_MAX_SPAN_MS)
        {
            break;
        }
        if is_cp {
            checkpoints.insert(&rec.cp_id);
        }
        bytes += rec.json.len();
        lo = lo.min(t);
        hi = hi.max(t);
        n += 1;
    }
    let batch: Vec<Pending> = st.queue.drain(..n).collect();
    // A checkpoint put again goes alone: as a revision of its own step, or as its own step above its copy in
    // a batch (readers rank batch copies below); never as a batch copy, which would rank below the first put.
    for p in &batch {
        if matches!(p.rec.kind, RecKind::Checkpoint { .. }) {
            written.insert(&p.rec.cp_id);
        }
    }
    batch
}

impl Saver {
    /// Writes a record through its lane and returns once it is stored (durable mode).
    pub(crate) async fn write_durable(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        rec: Arc<Rec>,
    ) -> Result<()> {
        let ns = rec.ns.clone();
        let (tx, rx) = oneshot::channel();
        let (lane, id, lead) = self.lanes.push(sid, rec, Some(tx), false)?;
        if !lead {
            match rx.await {
                Ok(Signal::Done(r)) => return r,
                Ok(Signal::Lead) => {}
                Err(_) => return Err(Error::internal("a write was dropped by its lane")),
            }
        }
        self.lead(store, sid, &ns, &lane, Some(id)).await
    }

    /// Queues a record and returns (deferred mode); a background task sends it.
    pub(crate) fn write_deferred(
        self: &Arc<Self>,
        store: Arc<dyn SessionStore>,
        sid: &str,
        rec: Arc<Rec>,
    ) -> Result<()> {
        let ns = rec.ns.clone();
        let (lane, _, start) = self.lanes.push(sid, rec, None, true)?;
        if start {
            let saver = self.clone();
            let sid = sid.to_string();
            tokio::spawn(async move {
                let _ = saver.lead(&*store, &sid, &ns, &lane, None).await;
            });
        }
        Ok(())
    }

    /// Sends the lane's queue, batch by batch. A durable caller (`mine`) sends until its own record is
    /// stored, then hands the lane to the next waiting caller; a background leader sends until the queue
    /// is empty.
    async fn lead(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        ns: &str,
        lane: &Arc<Lane>,
        mine: Option<u64>,
    ) -> Result<()> {
        let mut result: Option<Result<()>> = None;
        loop {
            // Regular writes alone: wait a little for the checkpoint that usually follows them. Not once our
            // own record is stored: we hand the lane over at once (the next leader lingers if it must), since
            // that checkpoint's put may wait for our return (LangGraph chains a thread's puts).
            let linger = if result.is_some() {
                None
            } else {
                let only_writes = {
                    let st = lane.lock();
                    !st.queue.is_empty() && !st.queue.iter().any(|p| ends_linger(&p.rec))
                };
                match *locked(&self.lanes.rtt) {
                    Some(rtt) if mine.is_some() && only_writes && rtt >= LINGER_FROM => {
                        Some((rtt / 2).min(MAX_LINGER))
                    }
                    _ => None,
                }
            };
            if let Some(d) = linger {
                let woken = lane.wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let still = {
                    let st = lane.lock();
                    !st.queue.iter().any(|p| ends_linger(&p.rec))
                };
                if still {
                    let _ = tokio::time::timeout(d, woken).await;
                }
            }
            let batch = {
                let mut st = lane.lock();
                if result.is_some() {
                    // Our record is stored: hand the lane to the first waiting caller, if any.
                    if let Some(k) = st.queue.iter().position(|p| p.done.is_some()) {
                        // Its record goes first, so that the next batch carries it.
                        let mut p = st.queue.remove(k).expect("found");
                        let tx = p.done.take().expect("found");
                        st.queue.push_front(p);
                        let _ = tx.send(Signal::Lead);
                        return result.unwrap_or(Ok(()));
                    }
                }
                let batch = take_batch(&mut st, &mut locked(&self.lanes.written));
                if batch.is_empty() {
                    st.busy = false;
                    drop(st);
                    lane.idle.notify_waiters();
                    self.lanes.retire(sid, ns, lane);
                    return result.unwrap_or(Ok(()));
                }
                batch
            };
            let started = tokio::time::Instant::now(); // virtual time in paused tests
            let recs: Vec<&Rec> = batch.iter().map(|p| &*p.rec).collect();
            let r = match self.write_batch(store, sid, &recs).await {
                // A background leader has no caller to try again: it follows the thread to its next
                // generation itself (see `chain`).
                Err(e) if mine.is_none() => self.write_moved_on(store, sid, &recs, e).await,
                r => r,
            };
            let took = started.elapsed();
            {
                let mut rtt = locked(&self.lanes.rtt);
                *rtt = Some(rtt.map_or(took, |old| (old * 3 + took) / 4));
            }
            if mine.is_none() {
                if let Err(e) = &r {
                    lane.lock().error.get_or_insert_with(|| e.clone());
                }
            }
            for p in batch {
                if Some(p.id) == mine {
                    result = Some(r.clone());
                } else if let Some(tx) = p.done {
                    let _ = tx.send(Signal::Done(r.clone()));
                }
            }
        }
    }

    /// After a write into `sid` failed with `e`: if the session is done with (full, expired, ended), the
    /// thread moves on and the records go to its new session.
    async fn write_moved_on(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        recs: &[&Rec],
        mut e: Error,
    ) -> Result<()> {
        let Some(thread) = recs.first().map(|r| r.thread_id().to_string()) else {
            return Err(e);
        };
        let mut sid = sid.to_string();
        for _ in 0..super::MAX_MOVES {
            if !self.needs_rollover(store, &sid, &e).await? {
                break;
            }
            sid = self.advance(store, &thread, &sid).await?;
            match self.write_batch(store, &sid, recs).await {
                Ok(()) => return Ok(()),
                Err(next) => e = next,
            }
        }
        Err(Self::thread_error(&thread, e))
    }

    /// Waits until the lanes of a session (all with `None`) are idle; returns a deferred failure.
    pub(crate) async fn flush_lanes(&self, sid: Option<&str>) -> Result<()> {
        for ((sid, ns), lane) in self.lanes.of_session(sid) {
            loop {
                let idle = lane.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                {
                    let mut st = lane.lock();
                    if !st.busy {
                        let failed = st.error.take();
                        drop(st);
                        // Reported: the lane has nothing left to keep.
                        self.lanes.retire(&sid, &ns, &lane);
                        if let Some(e) = failed {
                            return Err(e);
                        }
                        break;
                    }
                }
                idle.await;
            }
        }
        Ok(())
    }
}
