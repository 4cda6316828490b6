//! The LangGraph checkpoint saver's core: LangGraph's operations over any [`SessionStore`], in the
//! "bs1" layout of [`layout`]. Python does the (de)serialization of user objects (`serde.dumps_typed`);
//! everything else — envelopes, base64, JSON, ids, merging writes, concurrency — happens here.
//!
//! Round trips (every store call is one on the HTTP backends):
//! - `put`: CreateInvocation (once per session and namespace) then PutInvocationStep.
//! - `put_writes`: one PutInvocationStep.
//! - `get_tuple` by id: ListInvocationSteps of the checkpoint's invocation, then its steps fetched at once.
//! - `get_tuple` latest: ListInvocationSteps of the session (newest first, usually one page), then the
//!   checkpoint and its writes fetched at once.
//! - `list`: the session's step summaries (one call per 1000 steps), then checkpoints fetched
//!   concurrently in bounded batches, in order.
//!
//! The files of the saver, one concern each (each adds its methods to the one [`Saver`]):
//! - `mod.rs`: the [`Saver`], its fields and options; the requests and records of the saver's API
//!   ([`PutCheckpoint`], [`PutWrites`], [`CheckpointRecord`], [`WriteRecord`]); small helpers the files
//!   below share.
//! - `write.rs`: `put`, `put_writes`, `put_with_writes` and their deferred forms, `flush`: a request made
//!   once into a record, written into its thread's session (resolved, recovered after a deletion, moved on
//!   when full), stored alone or with others as a batch step.
//! - `lanes.rs`: group commit: writes of a thread that meet in flight share one request; deferred mode's
//!   queues.
//! - `read.rs`: `get_tuple` (by id, or the latest of a namespace): steps fetched and decoded, and a
//!   checkpoint assembled with its writes.
//! - `list.rs`: `list` (streaming, through a [`ListCursor`]) and `all_records`.
//! - `legacy.rs`: reading the checkpoints of the replaced saver's layout (threads it wrote).
//! - `rewrite.rs`: `delete_thread`, `copy_thread`, `prune`, `delete_for_runs`: changing a thread's
//!   stored history (steps are immutable: removing some rewrites the rest).
//! - `chain.rs`: a thread's generations: rollover to a new session when its session is full, expired or
//!   ended.
//! - `resolve.rs`: which session a thread is in (`resolve`), `create_thread`.
//! - `cache.rs`: what this process remembers: the steps it wrote, thread → session bindings.
//! - `layout.rs`: the stored format ("bs1"): envelopes, step and invocation ids, batches, compression,
//!   and the replaced saver's envelopes.
//! - `tests.rs`: unit tests.

mod cache;
mod chain;
mod lanes;
pub mod layout;
mod legacy;
mod list;
mod read;
mod resolve;
mod rewrite;
mod write;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::clock::MICROS_PER_MS;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ListSteps, PageRequest, SessionRef, StepSummary};
use crate::store::SessionStore;
use cache::StepCache;
use layout::Typed;

pub use list::{LIST_BATCH, ListCursor};

/// The saver: what this process knows of thread → session bindings, invocations and the steps it wrote
/// (caches, never required for correctness), and the lanes that group writes (see [`lanes`]).
#[derive(Default)]
pub struct Saver {
    threads: Mutex<HashMap<String, String>>,
    /// Sessions this saver created: their invocations are created before the first step, not after a 404.
    created: Mutex<HashSet<String>>,
    /// (session, namespace) whose invocation exists.
    invocations: Mutex<HashSet<(String, String)>>,
    cache: Mutex<StepCache>,
    lanes: lanes::Lanes,
    deferred: bool,
    group_commit: bool,
    compress: bool,
    round_trips: bool,
    /// Held while a deleted thread is rebound, so that concurrent writers of this process rebind it once.
    recovering: tokio::sync::Mutex<()>,
    /// The generations of threads (see [`chain`]): newest session → the chain, newest first.
    chains: Mutex<HashMap<String, Vec<String>>>,
    /// Held while a thread moves on to a new generation, so that this process's writers move it once.
    advancing: tokio::sync::Mutex<()>,
}

/// How a saver writes.
#[derive(Debug, Clone, Copy)]
pub struct SaverOptions {
    /// Writes return once queued, not once stored (opt-in; see [`lanes`]).
    pub deferred: bool,
    /// Durable mode: writes of a thread that meet in flight share one request (see [`lanes`]). Worth it
    /// where a request is a network round trip; on an embedded store a write costs less than handing
    /// the lane from one thread to another, so each call writes alone there.
    pub group_commit: bool,
    /// Large envelopes are stored zstd-compressed (see [`layout::pack`]): fewer bytes on the wire, in
    /// the service and on disk. A store in memory has neither wire nor disk, and there the compression
    /// was most of a write's cost, so it stores envelopes as they are (readers take both forms).
    pub compress: bool,
    /// Each store call is a network round trip (Bedrock, the local server): fewer, larger calls pay.
    /// An embedded store's calls cost microseconds: small answers pay there.
    pub round_trips: bool,
}

impl Default for SaverOptions {
    fn default() -> Self {
        SaverOptions {
            deferred: false,
            group_commit: true,
            compress: true,
            round_trips: true,
        }
    }
}

impl std::fmt::Debug for Saver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saver")
            .field("deferred", &self.deferred)
            .finish_non_exhaustive()
    }
}

impl Saver {
    pub fn new() -> Self {
        Saver::with_options(SaverOptions::default())
    }

    pub fn with_options(options: SaverOptions) -> Self {
        Saver {
            deferred: options.deferred,
            group_commit: options.group_commit,
            compress: options.compress,
            round_trips: options.round_trips,
            ..Saver::default()
        }
    }

    /// A saver whose writes return once queued (see [`lanes`]): opt-in, for users who accept that a
    /// crash loses the writes of the last round trips.
    pub fn deferred() -> Self {
        Saver::with_options(SaverOptions {
            deferred: true,
            ..SaverOptions::default()
        })
    }

    pub fn is_deferred(&self) -> bool {
        self.deferred
    }

    /// Names the thread in errors from the store (ended, expired, over quota).
    fn thread_error(thread_id: &str, e: Error) -> Error {
        match e.code {
            ErrorCode::Conflict | ErrorCode::ServiceQuotaExceeded => {
                e.context(format_args!("thread {thread_id:?}"))
            }
            _ => e,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PutCheckpoint {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    pub checkpoint: Typed,
    pub metadata_json: String,
    pub channel_values: Vec<(String, Typed)>,
}

#[derive(Debug, Clone)]
pub struct PutWrites {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub task_id: String,
    pub task_path: String,
    /// (channel, idx, value); idx < 0 marks LangGraph's special writes.
    pub writes: Vec<(String, i64, Typed)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WriteRecord {
    pub task_id: String,
    pub channel: String,
    pub value: Typed,
    pub task_path: String,
    pub idx: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    /// This layout: the checkpoint without channel values. Legacy: the whole checkpoint.
    pub checkpoint: Typed,
    pub metadata_json: String,
    /// None for the replaced saver's layout, whose checkpoint holds its channel values.
    pub channel_values: Option<Vec<(String, Typed)>>,
    pub writes: Vec<WriteRecord>,
}

impl CheckpointRecord {
    /// The top-level `run_id` of the metadata, if any.
    pub fn run_id(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.metadata_json).ok()?;
        v.get("run_id").and_then(|r| r.as_str()).map(String::from)
    }
}

/// How many times one write follows its thread to a next generation before giving up (concurrent writers
/// may fill a new generation before this one's write lands).
const MAX_MOVES: usize = 8;

/// The layout keeps step times in milliseconds (a checkpoint step's time is its uuid6 id's millisecond);
/// stores keep microseconds. These two convert at the store's boundary.
fn store_time(ms: i64) -> i64 {
    ms.saturating_mul(MICROS_PER_MS)
}

fn layout_time(mut s: StepSummary) -> StepSummary {
    s.time = s.time.div_euclid(MICROS_PER_MS);
    s
}

/// Every step summary of a session (of one invocation, when given), newest first, in the saver's time
/// unit: ListInvocationSteps page after page (1,000 a page).
async fn all_steps(
    store: &dyn SessionStore,
    sid: &str,
    invocation: Option<&str>,
) -> Result<Vec<StepSummary>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list_invocation_steps(ListSteps {
                session: sref(sid),
                invocation_id: invocation.map(String::from),
                page: PageRequest {
                    max_results: Some(1000),
                    next_token: token,
                },
            })
            .await?;
        out.extend(page.items.into_iter().map(layout_time));
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

fn sref(session_id: &str) -> SessionRef {
    SessionRef::of_id(session_id)
}

fn is_code(e: &Error, code: ErrorCode) -> bool {
    e.code == code
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn drop_session(store: &dyn SessionStore, sid: &str) -> Result<()> {
    match store.end_session(sref(sid)).await {
        Ok(_) => {}
        Err(e) if matches!(e.code, ErrorCode::Conflict | ErrorCode::ResourceNotFound) => {}
        Err(e) => return Err(e),
    }
    match store.delete_session(sref(sid)).await {
        Ok(()) => Ok(()),
        Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
