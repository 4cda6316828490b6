//! The LangGraph checkpoint saver's core: LangGraph's operations over any [`SessionStore`], in the
//! "bs1" layout of [`layout`]. Python does the (de)serialization of user objects (`serde.dumps_typed`);
//! everything else — envelopes, base64, JSON, ids, merging writes, concurrency — happens here.
//!
//! Round trips (every store call is one on the HTTP backends):
//! - `put`: CreateInvocation (once per checkpoint) then PutInvocationStep.
//! - `put_writes`: one PutInvocationStep.
//! - `get_tuple` by id: ListInvocationSteps of the checkpoint's invocation, then its steps fetched at once.
//! - `get_tuple` latest: ListInvocationSteps of the session (newest first, usually one page), then the
//!   checkpoint and its writes fetched at once.
//! - `list`: the session's step summaries (one call per 1000 steps), then checkpoints fetched
//!   concurrently in bounded batches, in order.

mod chain;
mod lanes;
pub mod layout;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::value::RawValue;

use crate::clock::MICROS_PER_MS;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    ContentBlock, CreateInvocation, CreateSession, GetStep, ListSteps, PageRequest, Payload,
    PutStep, SessionRef, StepSummary,
};
use crate::store::SessionStore;
use crate::threads::successor;
use crate::validate::{self, is_uuid};
use layout::{Envelope, StepKind, Typed};

/// How many checkpoints `list` loads at once.
pub const LIST_BATCH: usize = 16;
/// How many times one write follows its thread to a next generation before giving up (concurrent writers
/// may fill a new generation before this one's write lands).
const MAX_MOVES: usize = 8;

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

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

/// The layout keeps step times in milliseconds (a checkpoint step's time is its uuid6 id's millisecond);
/// stores keep microseconds. These two convert at the store's boundary.
fn store_time(ms: i64) -> i64 {
    ms.saturating_mul(MICROS_PER_MS)
}

fn layout_time(mut s: StepSummary) -> StepSummary {
    s.time = s.time.div_euclid(MICROS_PER_MS);
    s
}

fn sref(session_id: &str) -> SessionRef {
    SessionRef {
        raw: session_id.to_string(),
        id: session_id.to_string(),
        arn: None,
    }
}

fn text_payload(text: String) -> Payload {
    Payload {
        blocks: vec![ContentBlock::Text(text)],
    }
}

/// What a record is: a checkpoint, or the writes of one put_writes call (their step id fixed once).
pub(crate) enum RecKind {
    Checkpoint {
        env: Arc<layout::CheckpointEnvelope>,
    },
    Writes {
        step_id: String,
        env: Arc<layout::WritesEnvelope>,
    },
}

/// One put or put_writes, ready to store, built once from the request (moved, not copied): a retry,
/// or a batch, reuses its JSON.
pub(crate) struct Rec {
    kind: RecKind,
    ns: String,
    cp_id: String,
    /// The time the checkpoint id carries (uuid6): only such records go into batches.
    cp_time: Option<i64>,
    /// Special writes (error, interrupt, resume...).
    special: bool,
    /// The envelope's JSON (uncompressed).
    json: String,
    /// The step's time when it is written alone.
    time: i64,
}

impl Rec {
    fn checkpoint(req: PutCheckpoint) -> Result<Self> {
        let metadata = RawValue::from_string(req.metadata_json).map_err(|e| {
            Error::validation(format!("checkpoint metadata is not valid JSON: {e}"))
        })?;
        let cp_time = layout::uuid_time_ms(&req.checkpoint_id);
        let env = layout::CheckpointEnvelope {
            v: layout::LAYOUT.into(),
            kind: "checkpoint".into(),
            thread_id: req.thread_id,
            checkpoint_ns: req.checkpoint_ns,
            checkpoint_id: req.checkpoint_id,
            parent_checkpoint_id: req.parent_checkpoint_id,
            seq: 0,
            checkpoint: req.checkpoint,
            metadata,
            channel_values: req.channel_values,
        };
        let json = env.to_json();
        Ok(Rec {
            ns: env.checkpoint_ns.clone(),
            cp_id: env.checkpoint_id.clone(),
            cp_time,
            special: false,
            json,
            time: cp_time.unwrap_or_else(now_ms),
            kind: RecKind::Checkpoint { env: Arc::new(env) },
        })
    }

    fn writes(req: PutWrites) -> Result<Self> {
        let special = req.writes.iter().any(|(_, idx, _)| *idx < 0);
        let keys: Vec<(String, i64)> = req.writes.iter().map(|(c, i, _)| (c.clone(), *i)).collect();
        let step_id = layout::writes_step_id(&req.checkpoint_id, &req.task_id, &keys, special);
        let cp_time = layout::uuid_time_ms(&req.checkpoint_id);
        // Never older than the checkpoint, so a newest-first listing meets a checkpoint's writes first.
        let time = now_ms().max(cp_time.unwrap_or(0));
        let ns = req.checkpoint_ns.clone();
        let cp_id = req.checkpoint_id.clone();
        let env = layout::WritesEnvelope {
            v: layout::LAYOUT.into(),
            kind: "writes".into(),
            thread_id: req.thread_id,
            checkpoint_ns: req.checkpoint_ns,
            checkpoint_id: req.checkpoint_id,
            task_id: req.task_id,
            task_path: req.task_path,
            seq: now_ns(),
            writes: req.writes,
        };
        Ok(Rec {
            json: env.to_json(),
            kind: RecKind::Writes {
                step_id,
                env: Arc::new(env),
            },
            ns,
            cp_id,
            cp_time,
            special,
            time,
        })
    }

    fn thread_id(&self) -> &str {
        match &self.kind {
            RecKind::Checkpoint { env } => &env.thread_id,
            RecKind::Writes { env, .. } => &env.thread_id,
        }
    }

    fn is_checkpoint(&self) -> bool {
        matches!(self.kind, RecKind::Checkpoint { .. })
    }

    /// The record as stored alone.
    fn cached(&self) -> CachedEnv {
        match &self.kind {
            RecKind::Checkpoint { env } => CachedEnv::Checkpoint(env.clone()),
            RecKind::Writes { env, .. } => CachedEnv::Writes(env.clone()),
        }
    }
}

/// A stored envelope as this process wrote it (shared, not copied, with the record it came from).
#[derive(Debug, Clone)]
enum CachedEnv {
    Checkpoint(Arc<layout::CheckpointEnvelope>),
    Writes(Arc<layout::WritesEnvelope>),
}

impl CachedEnv {
    fn envelope(&self) -> Envelope {
        match self {
            CachedEnv::Checkpoint(c) => Envelope::Checkpoint((**c).clone()),
            CachedEnv::Writes(w) => Envelope::Writes((**w).clone()),
        }
    }
}

type StepKey = (String, String, String);

/// Steps this process wrote, by (session, invocation, step id), as envelopes: steps are immutable, so
/// a copy is always right, and reading a thread this process writes costs no GetInvocationStep and no
/// decoding.
#[derive(Debug, Default)]
struct StepCache {
    map: HashMap<StepKey, (Arc<[CachedEnv]>, usize)>,
    order: VecDeque<StepKey>,
    bytes: usize,
}

/// Bounds of the step cache (by the steps' JSON size).
const CACHE_BYTES: usize = 16 * 1024 * 1024;
const CACHE_STEP_MAX: usize = 1024 * 1024;

impl StepCache {
    fn insert(&mut self, key: StepKey, envs: Vec<CachedEnv>, size: usize) {
        if size > CACHE_STEP_MAX || self.map.contains_key(&key) {
            return;
        }
        self.bytes += size;
        self.map.insert(key.clone(), (Arc::from(envs), size));
        self.order.push_back(key);
        while self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, n)) = self.map.remove(&old) {
                self.bytes -= n;
            }
        }
    }
}

/// Whether a batch step may hold data of a checkpoint of time `t`.
fn covers(s: &StepSummary, t: i64) -> bool {
    let span = layout::batch_info(&s.step_id).map_or(0, |(span, _)| span);
    s.time - span <= t && t <= s.time
}

/// The order of checkpoints: newest first by (time, id).
fn checkpoint_key(c: &layout::CheckpointEnvelope, step_time: i64) -> (i64, String) {
    (
        layout::uuid_time_ms(&c.checkpoint_id).unwrap_or(step_time),
        c.checkpoint_id.clone(),
    )
}

fn is_code(e: &Error, code: ErrorCode) -> bool {
    e.code == code
}

/// A step summary grouped by invocation, from a session listing.
type ByInvocation = HashMap<String, Vec<StepSummary>>;

/// While a chain is queued: the checkpoints a newer generation holds, and steps of checkpoints that it
/// does not (by checkpoint tag: (session, steps)).
type Strays<'a> = (
    &'a HashSet<layout::Tag>,
    &'a mut HashMap<layout::Tag, Vec<(String, Vec<StepSummary>)>>,
);

/// One checkpoint to load in a listing.
#[derive(Debug, Clone)]
struct ListEntry {
    thread_id: String,
    session_id: String,
    ns: Option<String>,
    legacy: bool,
    /// The steps of the checkpoint's invocation (this layout) or its legacy write steps.
    steps: Vec<StepSummary>,
    /// Legacy: the checkpoint step's (invocation, step id).
    legacy_step: Option<(String, String)>,
    sort: (i64, String),
    /// Steps of the checkpoint (writes) in newer generations: (session, steps).
    later: Vec<(String, Vec<StepSummary>)>,
}

/// The state of a streaming `list`.
#[derive(Debug, Default)]
pub struct ListCursor {
    ns: Option<String>,
    before: Option<String>,
    /// Threads still to list: (thread id, session id).
    threads: VecDeque<(String, String)>,
    all_threads: bool,
    sessions_token: Option<String>,
    sessions_done: bool,
    queue: VecDeque<Item>,
    /// Steps of checkpoints (revisions, writes) whose checkpoint is in a batch: (session, tag) → steps.
    orphans: HashMap<(String, layout::Tag), Vec<StepSummary>>,
    /// List the given session alone, not its thread's chain (the seeds of a new generation).
    single_session: bool,
    /// Per session of a chain: the checkpoints that a newer generation holds too (its copy wins).
    superseded: HashMap<String, HashSet<layout::Tag>>,
    /// The namespaces (tags) met in the listed sessions.
    ns_tags: HashSet<layout::Tag>,
    /// A single-session listing keeps the session's step summaries (a rollover reads them again).
    listing: Option<ByInvocation>,
}

impl ListCursor {
    /// Whether `latest` has a checkpoint of every namespace met so far.
    pub(crate) fn namespaces_found(&self, latest: &HashMap<String, CheckpointRecord>) -> bool {
        let found: HashSet<layout::Tag> = latest.keys().map(|ns| layout::ns_tag(ns)).collect();
        self.ns_tags.is_subset(&found)
    }
}

/// One thing to load in a listing.
#[derive(Debug, Clone)]
enum Item {
    /// A checkpoint with its own steps (this layout), or one of the replaced saver's.
    Entry(ListEntry),
    /// A batch step: records of checkpoints whose times lie in `[lo, step.time]`.
    Batch {
        thread_id: String,
        session_id: String,
        step: StepSummary,
        lo: i64,
    },
}

impl Item {
    fn hi(&self) -> i64 {
        match self {
            Item::Entry(e) => e.sort.0,
            Item::Batch { step, .. } => step.time,
        }
    }

    fn lo(&self) -> i64 {
        match self {
            Item::Entry(e) => e.sort.0,
            Item::Batch { lo, .. } => *lo,
        }
    }

    fn key(&self) -> (i64, &str) {
        match self {
            Item::Entry(e) => (e.sort.0, e.sort.1.as_str()),
            Item::Batch { step, .. } => (step.time, step.step_id.as_str()),
        }
    }
}

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

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The stored text of an envelope's JSON: compressed when large and this saver compresses.
    fn pack<'a>(&self, json: &'a str) -> std::borrow::Cow<'a, str> {
        if self.compress {
            layout::pack(json)
        } else {
            std::borrow::Cow::Borrowed(json)
        }
    }

    fn cached_step(&self, sid: &str, inv: &str, step: &str) -> Option<Arc<[CachedEnv]>> {
        locked(&self.cache)
            .map
            .get(&(sid.to_string(), inv.to_string(), step.to_string()))
            .map(|(envs, _)| envs.clone())
    }

    fn remember_step(&self, sid: &str, inv: &str, step: &str, envs: Vec<CachedEnv>, size: usize) {
        let key = (sid.to_string(), inv.to_string(), step.to_string());
        locked(&self.cache).insert(key, envs, size);
    }

    fn cached_thread(&self, thread_id: &str) -> Option<String> {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(thread_id)
            .cloned()
    }

    fn remember_thread(&self, thread_id: &str, session_id: &str) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(thread_id.to_string(), session_id.to_string());
    }

    fn forget_thread(&self, thread_id: &str) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(thread_id);
    }

    /// The session of a thread: the thread index first, then a session id or ARN, else (with `create`)
    /// a new session bound in the index.
    pub async fn resolve(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        create: bool,
    ) -> Result<Option<String>> {
        if let Some(sid) = self.cached_thread(thread_id) {
            return Ok(Some(sid));
        }
        if let Some(index) = store.thread_index() {
            if let Some(sid) = index.lookup(thread_id).await? {
                self.remember_thread(thread_id, &sid);
                return Ok(Some(sid));
            }
        }
        if is_uuid(thread_id) || validate::parse_session_arn(thread_id, false).is_some() {
            match store
                .get_session(SessionRef::parse("thread_id", thread_id)?)
                .await
            {
                Ok(s) => {
                    // The thread may have moved on to newer sessions (see `chain`).
                    let newest = match s.metadata.get(layout::META_NEXT) {
                        Some(_) => successor::follow(store, &s.id, layout::META_NEXT).await?,
                        None => s.id,
                    };
                    self.remember_thread(thread_id, &newest);
                    return Ok(Some(newest));
                }
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if !create {
            return Ok(None);
        }
        let Some(index) = store.thread_index() else {
            return Err(Error::validation(format!(
                "thread {thread_id:?} is not a session of this store: create one with create_thread() \
                 (or the session API) and use its id as the thread id"
            )));
        };
        let sid = self
            .create_thread_session(store, thread_id, BTreeMap::new(), BTreeMap::new())
            .await?;
        let bound = match index.bind(thread_id, &sid, false).await {
            Ok(bound) => bound,
            Err(e) => {
                // Refused (e.g. an id the index cannot key): leave nothing behind.
                let _ = drop_session(store, &sid).await;
                return Err(e);
            }
        };
        if bound != sid {
            // Another writer created the thread at the same time: use theirs, drop ours.
            let _ = drop_session(store, &sid).await;
        }
        self.remember_thread(thread_id, &bound);
        Ok(Some(bound))
    }

    /// The session of a thread for a read. On an embedded store, where a lookup costs microseconds, the
    /// binding is read again: another process may have moved the thread on to a newer generation (see
    /// [`chain`]) since this one cached it. Over the network the cache stands until a write meets the move.
    async fn resolve_for_read(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
    ) -> Result<Option<String>> {
        if !self.round_trips && self.cached_thread(thread_id).is_some() {
            let bound = match store.thread_index() {
                Some(index) => index.lookup(thread_id).await?,
                None => None,
            };
            match bound {
                Some(now) => self.remember_thread(thread_id, &now),
                None if is_uuid(thread_id) => self.forget_thread(thread_id),
                None => {}
            }
        }
        self.resolve(store, thread_id, false).await
    }

    async fn create_thread_session(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        mut metadata: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        if validate::char_len(thread_id) <= 5000 {
            metadata.insert(layout::META_THREAD.into(), thread_id.into());
        }
        metadata.insert(layout::META_LAYOUT.into(), layout::LAYOUT.into());
        let s = store
            .create_session(CreateSession {
                encryption_key_arn: None,
                metadata,
                tags,
            })
            .await?;
        locked(&self.created).insert(s.id.clone());
        Ok(s.id)
    }

    /// Creates a session for a new thread and returns its id, usable as a thread id on any backend.
    pub async fn create_thread(
        &self,
        store: &dyn SessionStore,
        metadata: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        let mut metadata = metadata;
        metadata.insert(layout::META_LAYOUT.into(), layout::LAYOUT.into());
        let s = store
            .create_session(CreateSession {
                encryption_key_arn: None,
                metadata,
                tags,
            })
            .await?;
        locked(&self.created).insert(s.id.clone());
        self.remember_thread(&s.id, &s.id);
        Ok(s.id)
    }

    /// Creates the invocation of a namespace ("already exists" is fine).
    async fn create_ns_invocation(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
        ns: &str,
    ) -> Result<()> {
        let mut description = format!("langgraph checkpoints, namespace {ns:?}");
        if validate::char_len(&description) > 200 {
            description = description.chars().take(200).collect();
        }
        match store
            .create_invocation(CreateInvocation {
                session: sref(sid),
                invocation_id: Some(inv.to_string()),
                description: Some(description),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Puts a step into its namespace invocation: one request when the invocation exists (the usual
    /// case). The first step of a namespace creates it: first, in a session this saver created; else
    /// after a 404, then tries again. A missing session stays an error.
    async fn put_step(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        ns: &str,
        step: impl Fn() -> PutStep,
    ) -> Result<String> {
        let key = (sid.to_string(), ns.to_string());
        if !locked(&self.invocations).contains(&key) && locked(&self.created).contains(sid) {
            let inv = layout::namespace_invocation_id(ns);
            self.create_ns_invocation(store, sid, &inv, ns).await?;
            locked(&self.invocations).insert(key.clone());
        }
        let out = match store.put_invocation_step(step()).await {
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) && !e.is_session_not_found() => {
                let inv = layout::namespace_invocation_id(ns);
                self.create_ns_invocation(store, sid, &inv, ns).await?;
                store.put_invocation_step(step()).await
            }
            other => other,
        };
        if out.is_ok() {
            locked(&self.invocations).insert(key);
        }
        out
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

    /// After "session not found" on a write: the thread was deleted (here or by another process). A
    /// native index forgets it with the session; an index kept in sessions still points at the deleted
    /// one, so the thread is bound to a fresh session.
    async fn recover_deleted_thread(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
    ) -> Result<()> {
        self.forget_thread(thread_id);
        let Some(index) = store.thread_index() else {
            return Ok(());
        };
        // Writers of one thread meet the deletion together (a put and its writes are concurrent): the first
        // rebinds the thread, the others find its fresh session bound and use it.
        let _one_at_a_time = self.recovering.lock().await;
        let Some(sid) = index.lookup(thread_id).await? else {
            return Ok(());
        };
        match store.get_session(sref(&sid)).await {
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => {
                let fresh = self
                    .create_thread_session(store, thread_id, BTreeMap::new(), BTreeMap::new())
                    .await?;
                index.bind(thread_id, &fresh, true).await?;
                self.remember_thread(thread_id, &fresh);
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Writes into a thread's session: resolve it (creating the session), write, and write once more if
    /// the thread turns out to have been deleted since this process cached it. Errors name the thread.
    async fn in_thread<F, Fut>(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        write: F,
    ) -> Result<()>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let (mut recovered, mut moves) = (false, 0);
        loop {
            let sid = self
                .resolve(store, thread_id, true)
                .await
                .map_err(|e| Self::thread_error(thread_id, e))?
                .expect("created");
            match write(sid.clone()).await {
                Err(e) if e.is_session_not_found() && !recovered => {
                    recovered = true;
                    self.recover_deleted_thread(store, thread_id).await?;
                }
                // Full, expired or ended: the thread moves on to its next generation (see `chain`).
                Err(e) if moves < MAX_MOVES && self.needs_rollover(store, &sid, &e).await? => {
                    moves += 1;
                    self.advance(store, thread_id, &sid)
                        .await
                        .map_err(|e| Self::thread_error(thread_id, e))?;
                }
                other => return other.map_err(|e| Self::thread_error(thread_id, e)),
            }
        }
    }

    pub async fn put(&self, store: &dyn SessionStore, req: PutCheckpoint) -> Result<()> {
        let thread_id = req.thread_id.clone();
        self.write(store, &thread_id, Rec::checkpoint(req)?).await
    }

    pub async fn put_writes(&self, store: &dyn SessionStore, req: PutWrites) -> Result<()> {
        if req.writes.is_empty() {
            return Ok(());
        }
        let thread_id = req.thread_id.clone();
        self.write(store, &thread_id, Rec::writes(req)?).await
    }

    /// A record through its lane, returning once it is stored.
    async fn write(&self, store: &dyn SessionStore, thread_id: &str, rec: Rec) -> Result<()> {
        if !self.group_commit {
            return self
                .in_thread(store, thread_id, |sid| {
                    let rec = &rec;
                    async move { self.write_batch(store, &sid, &[rec]).await }
                })
                .await;
        }
        let rec = std::sync::Arc::new(rec);
        self.in_thread(store, thread_id, |sid| {
            let rec = rec.clone();
            async move { self.write_durable(store, &sid, rec).await }
        })
        .await
    }

    /// A checkpoint and buffered writes (of it or of earlier checkpoints of the thread) in one call: one
    /// batch step when they can share one (see [`lanes`]), else a step each. Returns once all are stored
    /// (queued, in deferred mode).
    pub async fn put_with_writes(
        self: &Arc<Self>,
        store: Arc<dyn SessionStore>,
        req: PutCheckpoint,
        writes: Vec<PutWrites>,
    ) -> Result<()> {
        let thread_id = req.thread_id.clone();
        if let Some(w) = writes.iter().find(|w| w.thread_id != thread_id) {
            return Err(Error::validation(format!(
                "put_with_writes: writes of thread {:?} given with a checkpoint of thread {thread_id:?}",
                w.thread_id
            )));
        }
        let mut recs = vec![Rec::checkpoint(req)?];
        for w in writes.into_iter().filter(|w| !w.writes.is_empty()) {
            recs.push(Rec::writes(w)?);
        }
        if self.deferred {
            for rec in recs {
                self.enqueue(store.clone(), &thread_id, rec).await?;
            }
            return Ok(());
        }
        let (lo, hi) = recs.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
            let t = r.cp_time.unwrap_or_default();
            (lo.min(t), hi.max(t))
        });
        // One step when a batch can hold them all (only the first record is a checkpoint).
        let one_step = recs
            .iter()
            .all(|r| r.cp_time.is_some() && r.ns == recs[0].ns)
            && hi - lo <= layout::BATCH_MAX_SPAN_MS
            && recs.iter().map(|r| r.json.len()).sum::<usize>() <= lanes::MAX_BATCH_BYTES;
        let store = &*store;
        self.in_thread(store, &thread_id, |sid| {
            let recs = &recs;
            async move {
                if one_step {
                    let refs: Vec<&Rec> = recs.iter().collect();
                    return self.write_batch(store, &sid, &refs).await;
                }
                for r in recs {
                    self.write_batch(store, &sid, &[r]).await?;
                }
                Ok(())
            }
        })
        .await
    }

    /// Deferred mode: `put` that returns once its checkpoint is queued.
    pub async fn put_deferred(
        self: &std::sync::Arc<Self>,
        store: std::sync::Arc<dyn SessionStore>,
        req: PutCheckpoint,
    ) -> Result<()> {
        let thread_id = req.thread_id.clone();
        self.enqueue(store, &thread_id, Rec::checkpoint(req)?).await
    }

    /// Deferred mode: `put_writes` that returns once its writes are queued; special writes (interrupts,
    /// errors, resumes) return once stored, with everything queued before them.
    pub async fn put_writes_deferred(
        self: &std::sync::Arc<Self>,
        store: std::sync::Arc<dyn SessionStore>,
        req: PutWrites,
    ) -> Result<()> {
        if req.writes.is_empty() {
            return Ok(());
        }
        let thread_id = req.thread_id.clone();
        self.enqueue(store, &thread_id, Rec::writes(req)?).await
    }

    async fn enqueue(
        self: &std::sync::Arc<Self>,
        store: std::sync::Arc<dyn SessionStore>,
        thread_id: &str,
        rec: Rec,
    ) -> Result<()> {
        let rec = std::sync::Arc::new(rec);
        let special = rec.special;
        self.in_thread(&*store, thread_id, |sid| {
            let (rec, store) = (rec.clone(), store.clone());
            async move {
                self.write_deferred(store, &sid, rec)?;
                if special {
                    self.flush_lanes(Some(&sid)).await?;
                }
                Ok(())
            }
        })
        .await
    }

    /// Waits until the queued writes of a thread (of every thread with `None`) are stored; raises a
    /// failure of a deferred write.
    pub async fn flush(&self, thread_id: Option<&str>) -> Result<()> {
        match thread_id {
            None => self.flush_lanes(None).await,
            // A thread this process never resolved has nothing queued here.
            Some(t) => match self.cached_thread(t) {
                Some(sid) => self
                    .flush_lanes(Some(&sid))
                    .await
                    .map_err(|e| Self::thread_error(t, e)),
                None => Ok(()),
            },
        }
    }

    /// Before a read in deferred mode: this process's queued writes of the thread are stored first.
    /// Returns the thread's session afterwards: storing its queue may have moved the thread on.
    async fn settle(&self, sid: &str, thread_id: &str) -> Result<String> {
        if self.deferred {
            // Every generation's lanes: writes queued for an older one land in the newest (see `chain`).
            let mut sids = locked(&self.chains).get(sid).cloned().unwrap_or_default();
            sids.retain(|s| s != sid);
            sids.insert(0, sid.to_string());
            for s in sids {
                self.flush_lanes(Some(&s))
                    .await
                    .map_err(|e| Self::thread_error(thread_id, e))?;
            }
            if let Some(now) = self.cached_thread(thread_id) {
                return Ok(now);
            }
        }
        Ok(sid.to_string())
    }

    /// Stores records as one step: alone in the regular layout, or several as a batch.
    pub(crate) async fn write_batch(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        recs: &[&Rec],
    ) -> Result<()> {
        let [first, rest @ ..] = recs else {
            return Ok(());
        };
        if rest.is_empty() {
            return match &first.kind {
                RecKind::Checkpoint { env } => self.put_checkpoint(store, sid, first, env).await,
                RecKind::Writes { step_id, .. } => {
                    self.put_writes_step(store, sid, first, step_id).await
                }
            };
        }
        let ns = &first.ns;
        let newest = recs
            .iter()
            .max_by(|a, b| (a.cp_time, &a.cp_id).cmp(&(b.cp_time, &b.cp_id)))
            .expect("not empty");
        let hi = newest.cp_time.unwrap_or_default();
        let lo = recs.iter().filter_map(|r| r.cp_time).min().unwrap_or(hi);
        let has_checkpoint = recs.iter().any(|r| r.is_checkpoint());
        let envs: Vec<CachedEnv> = recs.iter().map(|r| r.cached()).collect();
        let json = layout::batch_json(recs.iter().map(|r| r.json.as_str()));
        let size = json.len();
        let text = self.pack(&json);
        let inv = layout::namespace_invocation_id(ns);
        let mut attempt = 0;
        loop {
            let id = layout::batch_step_id(&newest.cp_id, hi - lo, has_checkpoint);
            let step = || PutStep {
                session: sref(sid),
                invocation_id: inv.clone(),
                step_id: Some(id.clone()),
                time: store_time(hi),
                payload: text_payload(text.to_string()),
            };
            match self.put_step(store, sid, ns, step).await {
                Ok(_) => {
                    self.remember_step(sid, &inv, &id, envs, size);
                    return Ok(());
                }
                // A random id met another: draw again.
                Err(e) if e.is_already_exists() && attempt < 3 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Stores a checkpoint alone: its own step, or a revision step when it exists with other content.
    async fn put_checkpoint(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        rec: &Rec,
        env: &layout::CheckpointEnvelope,
    ) -> Result<()> {
        let inv = layout::namespace_invocation_id(&env.checkpoint_ns);
        let step = |step_id: &str, text: &str| PutStep {
            session: sref(sid),
            invocation_id: inv.clone(),
            step_id: Some(step_id.to_string()),
            time: store_time(rec.time),
            payload: text_payload(text.to_string()),
        };
        let main = layout::checkpoint_step_id(&env.checkpoint_id);
        let text = self.pack(&rec.json);
        match self
            .put_step(store, sid, &env.checkpoint_ns, || step(&main, &text))
            .await
        {
            Ok(_) => {
                self.remember_step(sid, &inv, &main, vec![rec.cached()], rec.json.len());
                Ok(())
            }
            Err(e) if e.is_already_exists() => {
                // The same checkpoint put again with other content: steps are immutable, so a revision
                // step is added and readers take the newest.
                let mut revision = env.clone();
                revision.seq = now_ns();
                let text = self.pack(&revision.to_json()).into_owned();
                let id = layout::revision_step_id(&env.checkpoint_id);
                self.put_step(store, sid, &env.checkpoint_ns, || step(&id, &text))
                    .await?;
                let size = text.len();
                let env = CachedEnv::Checkpoint(Arc::new(revision));
                self.remember_step(sid, &inv, &id, vec![env], size);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Stores the writes of one put_writes call alone.
    async fn put_writes_step(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        rec: &Rec,
        step_id: &str,
    ) -> Result<()> {
        let inv = layout::namespace_invocation_id(&rec.ns);
        let text = self.pack(&rec.json);
        let step = || PutStep {
            session: sref(sid),
            invocation_id: inv.clone(),
            step_id: Some(step_id.to_string()),
            time: store_time(rec.time),
            payload: text_payload(text.to_string()),
        };
        match self.put_step(store, sid, &rec.ns, step).await {
            Ok(_) => {
                self.remember_step(sid, &inv, step_id, vec![rec.cached()], rec.json.len());
                Ok(())
            }
            // Regular writes are insert-or-ignore: the step of an earlier identical call stands.
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A checkpoint with its writes: by id, or the latest of the namespace.
    pub async fn get_tuple(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        ns: &str,
        checkpoint_id: Option<&str>,
    ) -> Result<Option<CheckpointRecord>> {
        // A session just looked up in the index is current; a cached one may not be (see below).
        let cached = self.cached_thread(thread_id).is_some();
        let Some(sid) = self.resolve_for_read(store, thread_id).await? else {
            return Ok(None);
        };
        let sid = self.settle(&sid, thread_id).await?;
        let load = |sid: String| async move {
            match checkpoint_id {
                Some(cp) => self.load_by_id(store, thread_id, &sid, ns, cp).await,
                None => self.load_latest(store, thread_id, &sid, ns).await,
            }
        };
        let got = if self.round_trips && cached {
            // Over the network the cached session may be one another process has since moved the thread on
            // from (see `chain`): checked alongside the read (no added latency), read again only if so.
            let (newer, got) = futures::join!(
                self.newer_session(store, thread_id, &sid),
                load(sid.clone())
            );
            match newer {
                Ok(Some(now)) => {
                    self.remember_thread(thread_id, &now);
                    load(now).await
                }
                _ => got,
            }
        } else {
            load(sid).await
        };
        match got {
            // A deleted thread that an index kept in sessions still points at.
            Err(e) if e.is_session_not_found() => {
                self.forget_thread(thread_id);
                Ok(None)
            }
            other => other,
        }
    }

    async fn list_invocation(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
    ) -> Result<Option<Vec<StepSummary>>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = store
                .list_invocation_steps(ListSteps {
                    session: sref(sid),
                    invocation_id: Some(inv.to_string()),
                    page: PageRequest {
                        max_results: Some(1000),
                        next_token: token,
                    },
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if e.is_invocation_not_found() => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            out.extend(page.items.into_iter().map(layout_time));
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(Some(out)),
            }
        }
    }

    async fn fetch(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
        step: &str,
    ) -> Result<Option<Envelope>> {
        if let Some(envs) = self.cached_step(sid, inv, step) {
            return Ok(Some(match &*envs {
                [one] => one.envelope(),
                many => Envelope::Batch(many.iter().map(CachedEnv::envelope).collect()),
            }));
        }
        let got = store
            .get_invocation_step(GetStep {
                session: sref(sid),
                invocation_id: inv.to_string(),
                step_id: step.to_string(),
            })
            .await;
        let step = match got {
            Ok(s) => s,
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let texts: Vec<&str> = step
            .payload
            .blocks
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        layout::decode(&texts)
    }

    /// The envelopes of steps, fetched at once; batches are opened into their records.
    async fn fetch_all(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        steps: &[StepSummary],
    ) -> Result<Vec<Envelope>> {
        let results = join_all(
            steps
                .iter()
                .map(|s| self.fetch(store, sid, &s.invocation_id, &s.step_id)),
        )
        .await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r? {
                Some(Envelope::Batch(records)) => {
                    out.extend(records.into_iter().map(|mut env| {
                        // A checkpoint's copy in a batch ranks below a step of its own (seq 0, or a
                        // revision's time): putting it again alone later wins.
                        if let Envelope::Checkpoint(c) = &mut env {
                            c.seq = c.seq.min(-1);
                        }
                        env
                    }))
                }
                Some(env) => out.push(env),
                None => {}
            }
        }
        Ok(out)
    }

    /// The steps of a namespace invocation that may hold data of checkpoint `cp`: its own steps (checkpoint,
    /// revisions, writes) and the batches whose span covers its time.
    async fn checkpoint_steps(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
        cp: &str,
    ) -> Result<Vec<StepSummary>> {
        let tag = layout::checkpoint_tag(cp);
        let time = layout::uuid_time_ms(cp);
        Ok(self
            .list_invocation(store, sid, inv)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|s| match layout::classify_step(&s.step_id) {
                (StepKind::Batch, _) => time.is_some_and(|t| covers(s, t)),
                (_, t) => t == tag,
            })
            .collect())
    }

    /// A checkpoint by id: in the newest generation of the thread, else in the older ones, newest first
    /// (see [`chain`]). Writes of it put after the thread moved on are in newer generations: they join it.
    async fn load_by_id(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        newest: &str,
        ns: &str,
        cp: &str,
    ) -> Result<Option<CheckpointRecord>> {
        let chain = self.generations(store, newest).await?;
        let inv = layout::namespace_invocation_id(ns);
        let mut later: Vec<layout::WritesEnvelope> = Vec::new();
        for (i, sid) in chain.iter().enumerate() {
            let steps = self.checkpoint_steps(store, sid, &inv, cp).await?;
            let oldest = i + 1 == chain.len();
            if steps.is_empty() && !oldest {
                continue;
            }
            let mut envs = self.fetch_all(store, sid, &steps).await?;
            let found = envs.iter().any(|e| {
                matches!(e, Envelope::Checkpoint(c) if c.checkpoint_id == cp && c.checkpoint_ns == ns)
            });
            if found {
                envs.extend(later.into_iter().map(Envelope::Writes));
                // Writes stored just before the thread moved on, whose checkpoint (queued, in deferred mode)
                // was stored only after: in the generation before this one.
                if let Some(older) = chain.get(i + 1) {
                    let steps = self.checkpoint_steps(store, older, &inv, cp).await?;
                    envs.extend(
                        self.fetch_all(store, older, &steps)
                            .await?
                            .into_iter()
                            .filter(|e| matches!(e, Envelope::Writes(_))),
                    );
                }
                return Ok(assemble(envs, Some((ns, cp)))
                    .map(|(c, writes)| record_of(thread_id, c, writes)));
            }
            later.extend(envs.into_iter().filter_map(|e| match e {
                Envelope::Writes(w) if w.checkpoint_id == cp && w.checkpoint_ns == ns => Some(w),
                _ => None,
            }));
            if oldest {
                // Only writes of ours: the checkpoint may be one of the replaced saver's (which only the
                // first generation can hold).
                return self
                    .load_legacy(store, thread_id, sid, ns, cp, None, merge_writes(later))
                    .await;
            }
        }
        Ok(None)
    }

    /// The replaced saver's layout: the checkpoint step in `UUID(md5("CHECKPOINTS#ns"))`, every write
    /// step in `UUID(md5("WRITES#ns#id"))` (all of them: the replaced saver read only the newest).
    #[allow(clippy::too_many_arguments)]
    async fn load_legacy(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
        ns: &str,
        cp: &str,
        write_steps: Option<Vec<StepSummary>>,
        extra_writes: Vec<WriteRecord>,
    ) -> Result<Option<CheckpointRecord>> {
        let cp_inv = layout::legacy_checkpoint_invocation(ns);
        let w_inv = layout::legacy_writes_invocation(ns, cp);
        let (checkpoint, steps) = futures::join!(self.fetch(store, sid, &cp_inv, cp), async {
            match write_steps {
                Some(s) => Ok(Some(s)),
                None => self.list_invocation(store, sid, &w_inv).await,
            }
        });
        let Some(Envelope::LegacyCheckpoint(c)) = checkpoint? else {
            return Ok(None);
        };
        if c.checkpoint_id != cp || c.checkpoint_ns != ns {
            return Ok(None);
        }
        let steps = steps?.unwrap_or_default();
        let mut writes: Vec<WriteRecord> = Vec::new();
        let mut seen = HashSet::new();
        // Newest step first: keep the first of each (task, idx) for special writes, as an overwrite would.
        for env in self.fetch_all(store, sid, &steps).await? {
            if let Envelope::LegacyWrites(ws) = env {
                for w in ws {
                    let key = (w.task_id.clone(), w.write_idx);
                    if seen.insert(key) {
                        writes.push(WriteRecord {
                            task_id: w.task_id,
                            channel: w.channel,
                            value: w.value,
                            task_path: w.task_path,
                            idx: w.write_idx,
                        });
                    }
                }
            }
        }
        for w in extra_writes {
            if seen.insert((w.task_id.clone(), w.idx)) || w.idx < 0 {
                writes.retain(|x| !(x.task_id == w.task_id && x.idx == w.idx && w.idx < 0));
                writes.push(w);
            }
        }
        sort_writes(&mut writes);
        Ok(Some(CheckpointRecord {
            thread_id: thread_id.to_string(),
            checkpoint_ns: c.checkpoint_ns,
            checkpoint_id: c.checkpoint_id,
            parent_checkpoint_id: c.parent_checkpoint_id,
            checkpoint: c.checkpoint,
            metadata_json: layout::legacy_metadata_json(&c.metadata)?,
            channel_values: None,
            writes,
        }))
    }

    async fn load_latest(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
        ns: &str,
    ) -> Result<Option<CheckpointRecord>> {
        let tag = layout::ns_tag(ns);
        let legacy_inv = layout::legacy_checkpoint_invocation(ns);
        // Steps of this namespace's invocation, by checkpoint tag; batches apart.
        let mut by_checkpoint: HashMap<layout::Tag, Vec<StepSummary>> = HashMap::new();
        let mut batches: Vec<StepSummary> = Vec::new();
        // (time, step id) of the newest checkpoint step of ours, and of the replaced saver's.
        let mut best: Option<(i64, String)> = None;
        let mut best_legacy: Option<(i64, String)> = None;
        // Every step the answer needs is at least this new (the lower bounds of the candidates seen).
        let mut stop_below: Option<i64> = None;
        let raise = |stop: &mut Option<i64>, t: i64| *stop = Some(stop.map_or(t, |s| s.max(t)));
        let mut token = None;
        // The newest steps come first: a short first page is usually enough (the newest checkpoint and
        // the steps written in its millisecond). Over the network one page of 20 saves a second round
        // trip, and the next pages are as large as the service allows. On an embedded store a page costs
        // by its rows (all read before the first is looked at), so pages start small and grow.
        let mut page_size = if self.round_trips { 20 } else { 8 };
        'pages: loop {
            let page = store
                .list_invocation_steps(ListSteps {
                    session: sref(sid),
                    invocation_id: None,
                    page: PageRequest {
                        max_results: Some(page_size),
                        next_token: token,
                    },
                })
                .await?;
            page_size = if self.round_trips {
                1000
            } else {
                (page_size * 8).min(1000)
            };
            for s in page.items.into_iter().map(layout_time) {
                if stop_below.is_some_and(|t| s.time < t) {
                    break 'pages;
                }
                if layout::parse_invocation(&s.invocation_id) == Some(tag) {
                    match layout::classify_step(&s.step_id) {
                        (StepKind::Batch, _) => {
                            if let Some((span, true)) = layout::batch_info(&s.step_id) {
                                raise(&mut stop_below, s.time - span);
                            }
                            batches.push(s);
                        }
                        (kind, cp_tag) => {
                            if kind == StepKind::Checkpoint {
                                let c = (s.time, s.step_id.clone());
                                if best.as_ref().is_none_or(|b| c > *b) {
                                    best = Some(c);
                                }
                                raise(&mut stop_below, s.time);
                            }
                            by_checkpoint.entry(cp_tag).or_default().push(s);
                        }
                    }
                } else if s.invocation_id == legacy_inv {
                    let c = (
                        layout::uuid_time_ms(&s.step_id).unwrap_or(s.time),
                        s.step_id.clone(),
                    );
                    if best_legacy.as_ref().is_none_or(|b| c > *b) {
                        best_legacy = Some(c);
                    }
                    raise(&mut stop_below, s.time);
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        // Ours: the newest checkpoint step's group and every batch seen, fetched at once.
        let mut steps = batches;
        let mut fetched = HashSet::new();
        if let Some((_, id)) = &best {
            let t = layout::classify_step(id).1;
            steps.extend(by_checkpoint.get(&t).cloned().unwrap_or_default());
            fetched.insert(t);
        }
        let mut envs = self.fetch_all(store, sid, &steps).await?;
        let step_time = best.as_ref().map_or(0, |b| b.0);
        let newest = envs
            .iter()
            .filter_map(|e| match e {
                Envelope::Checkpoint(c) if c.checkpoint_ns == ns => {
                    Some(checkpoint_key(c, step_time))
                }
                _ => None,
            })
            .max();
        match (newest, best_legacy) {
            (None, None) => Ok(None),
            (Some(ours), Some(legacy)) if legacy > ours => {
                self.load_legacy(store, thread_id, sid, ns, &legacy.1, None, Vec::new())
                    .await
            }
            (None, Some(legacy)) => {
                self.load_legacy(store, thread_id, sid, ns, &legacy.1, None, Vec::new())
                    .await
            }
            (Some((_, cp)), _) => {
                // A checkpoint from a batch: its own steps (revisions, writes put alone) too.
                let t = layout::checkpoint_tag(&cp);
                if !fetched.contains(&t) {
                    if let Some(more) = by_checkpoint.get(&t) {
                        envs.extend(self.fetch_all(store, sid, more).await?);
                    }
                }
                Ok(assemble(envs, Some((ns, &cp)))
                    .map(|(c, writes)| record_of(thread_id, c, writes)))
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // list

    /// Starts a listing: one thread (`Some`) or every thread of the store (`None`).
    pub async fn list_start(
        &self,
        store: &dyn SessionStore,
        thread_id: Option<&str>,
        ns: Option<&str>,
        before: Option<&str>,
    ) -> Result<ListCursor> {
        let mut cursor = ListCursor {
            ns: ns.map(String::from),
            before: before.map(String::from),
            ..ListCursor::default()
        };
        match thread_id {
            Some(t) => {
                let cached = self.cached_thread(t).is_some();
                if let Some(sid) = self.resolve_for_read(store, t).await? {
                    let mut sid = self.settle(&sid, t).await?;
                    if self.round_trips && cached {
                        // As in `get_tuple`: another process may have moved the thread on (one request).
                        if let Some(now) = self.newer_session(store, t, &sid).await? {
                            self.remember_thread(t, &now);
                            sid = now;
                        }
                    }
                    cursor.threads.push_back((t.to_string(), sid));
                }
                cursor.sessions_done = true;
            }
            None => {
                if self.deferred {
                    self.flush_lanes(None).await?;
                }
                cursor.all_threads = true
            }
        }
        Ok(cursor)
    }

    /// A listing of one session alone, every namespace (not the rest of its thread's chain).
    fn list_session(&self, sid: &str) -> ListCursor {
        let mut cursor = ListCursor {
            single_session: true,
            sessions_done: true,
            ..ListCursor::default()
        };
        cursor.threads.push_back((String::new(), sid.to_string()));
        cursor
    }

    async fn next_sessions(&self, store: &dyn SessionStore, cursor: &mut ListCursor) -> Result<()> {
        let page = store
            .list_sessions(PageRequest {
                max_results: Some(100),
                next_token: cursor.sessions_token.take(),
            })
            .await?;
        let gets = join_all(page.items.iter().map(|s| store.get_session(sref(&s.id)))).await;
        for got in gets {
            match got {
                Ok(s) => {
                    // A thread is listed once, from its newest generation, which lists the others.
                    if s.metadata.contains_key(layout::META_NEXT) {
                        continue;
                    }
                    let thread = s
                        .metadata
                        .get(layout::META_THREAD)
                        .cloned()
                        .unwrap_or_else(|| s.id.clone());
                    if thread != s.id
                        && self
                            .resolve(store, &thread, false)
                            .await?
                            .is_some_and(|newest| newest != s.id)
                    {
                        continue;
                    }
                    cursor.threads.push_back((thread, s.id));
                }
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        cursor.sessions_token = page.next_token;
        cursor.sessions_done = cursor.sessions_token.is_none();
        Ok(())
    }

    /// Lists the step summaries of a thread (every generation, newest first: see [`chain`]) and queues its
    /// checkpoints and batches, newest first. A checkpoint that a newer generation holds too (a seed) is
    /// taken from there.
    async fn queue_thread(
        &self,
        store: &dyn SessionStore,
        cursor: &mut ListCursor,
        thread: String,
        newest: String,
    ) -> Result<()> {
        let chain = if cursor.single_session {
            vec![newest]
        } else {
            self.generations(store, &newest).await?
        };
        cursor.orphans.clear();
        let mut items = Vec::new();
        // Checkpoints with a step of their own in a newer generation.
        let mut newer: HashSet<layout::Tag> = HashSet::new();
        // Steps (writes) of checkpoints that a newer generation does not hold: they join the checkpoint's
        // entry in an older one (writes put just after the thread moved on).
        let mut strays: HashMap<layout::Tag, Vec<(String, Vec<StepSummary>)>> = HashMap::new();
        for sid in chain {
            let Some(by_inv) = self.session_steps(store, &sid).await? else {
                continue;
            };
            if cursor.single_session {
                cursor.listing = Some(by_inv.clone());
            }
            let here = self.queue_session(
                cursor,
                (&thread, &sid),
                &by_inv,
                (&newer, &mut strays),
                &mut items,
            );
            if !newer.is_empty() {
                cursor.superseded.insert(sid.clone(), newer.clone());
            }
            newer.extend(here);
        }
        // Writes of a checkpoint kept in another generation than the checkpoint's listed step.
        if !strays.is_empty() {
            for item in items.iter_mut() {
                if let Item::Entry(e) = item {
                    let Some(first) = e.steps.first() else {
                        continue;
                    };
                    if let Some(more) = strays.remove(&layout::classify_step(&first.step_id).1) {
                        e.later
                            .extend(more.into_iter().filter(|(s, _)| *s != e.session_id));
                    }
                }
            }
        }
        items.sort_by(|a, b| b.key().cmp(&a.key()));
        cursor.queue.extend(items);
        Ok(())
    }

    /// Every step summary of a session, by invocation (`None`: the session is gone).
    async fn session_steps(
        &self,
        store: &dyn SessionStore,
        sid: &str,
    ) -> Result<Option<ByInvocation>> {
        let mut by_inv: ByInvocation = HashMap::new();
        let mut token = None;
        loop {
            let page = store
                .list_invocation_steps(ListSteps {
                    session: sref(sid),
                    invocation_id: None,
                    page: PageRequest {
                        max_results: Some(1000),
                        next_token: token,
                    },
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            for s in page.items.into_iter().map(layout_time) {
                by_inv.entry(s.invocation_id.clone()).or_default().push(s);
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(Some(by_inv)),
            }
        }
    }

    /// Queues the checkpoints and batches of one session, except the checkpoints in `newer`; returns the
    /// checkpoints that have a step of their own here.
    fn queue_session(
        &self,
        cursor: &mut ListCursor,
        (thread, sid): (&str, &str),
        by_inv: &ByInvocation,
        (newer, strays): Strays<'_>,
        items: &mut Vec<Item>,
    ) -> HashSet<layout::Tag> {
        let mut here = HashSet::new();
        let tag = cursor.ns.as_deref().map(layout::ns_tag);
        let legacy_ns = cursor.ns.clone().unwrap_or_default();
        let legacy_inv = layout::legacy_checkpoint_invocation(&legacy_ns);
        let before_time = cursor.before.as_deref().and_then(layout::uuid_time_ms);
        for (inv, steps) in by_inv {
            if let Some(t) = layout::parse_invocation(inv) {
                cursor.ns_tags.insert(t);
                if tag.is_some_and(|want| want != t) {
                    continue;
                }
                // One entry per checkpoint of the namespace: its step, revisions and writes share a tag.
                let mut by_checkpoint: HashMap<layout::Tag, Vec<StepSummary>> = HashMap::new();
                for s in steps {
                    match layout::classify_step(&s.step_id) {
                        (StepKind::Batch, _) => {
                            let span = layout::batch_info(&s.step_id).map_or(0, |b| b.0);
                            let lo = s.time - span;
                            // Everything in it is newer than `before`.
                            if before_time.is_some_and(|b| lo > b) {
                                continue;
                            }
                            items.push(Item::Batch {
                                thread_id: thread.to_string(),
                                session_id: sid.to_string(),
                                step: s.clone(),
                                lo,
                            });
                        }
                        (_, cp_tag) => by_checkpoint.entry(cp_tag).or_default().push(s.clone()),
                    }
                }
                for (cp_tag, group) in by_checkpoint {
                    let main = group
                        .iter()
                        .find(|s| layout::classify_step(&s.step_id).0 == StepKind::Checkpoint)
                        .cloned();
                    let main = match main {
                        Some(m) if !newer.contains(&cp_tag) => m,
                        _ => {
                            // The checkpoint is listed from elsewhere (a newer generation's copy, another
                            // generation, a batch): its other steps here (writes put before or after the thread
                            // moved on) join it there.
                            let rest: Vec<StepSummary> = group
                                .iter()
                                .filter(|s| layout::classify_step(&s.step_id).0 == StepKind::Writes)
                                .cloned()
                                .collect();
                            if !rest.is_empty() {
                                strays
                                    .entry(cp_tag)
                                    .or_default()
                                    .push((sid.to_string(), rest));
                            }
                            if !newer.contains(&cp_tag) {
                                cursor.orphans.insert((sid.to_string(), cp_tag), group);
                            }
                            continue;
                        }
                    };
                    here.insert(cp_tag);
                    let cp = (layout::checkpoint_step_id(&main.step_id) == main.step_id)
                        .then(|| main.step_id.clone());
                    if let (Some(b), Some(id)) = (&cursor.before, &cp) {
                        if id >= b {
                            continue;
                        }
                    }
                    items.push(Item::Entry(ListEntry {
                        thread_id: thread.to_string(),
                        session_id: sid.to_string(),
                        ns: cursor.ns.clone(),
                        legacy: false,
                        steps: group,
                        legacy_step: None,
                        sort: (main.time, cp.unwrap_or_default()),
                        later: Vec::new(),
                    }));
                }
            } else if *inv == legacy_inv {
                for s in steps {
                    if cursor.before.as_ref().is_some_and(|b| s.step_id >= *b) {
                        continue;
                    }
                    let w_inv = layout::legacy_writes_invocation(&legacy_ns, &s.step_id);
                    items.push(Item::Entry(ListEntry {
                        thread_id: thread.to_string(),
                        session_id: sid.to_string(),
                        ns: Some(legacy_ns.clone()),
                        legacy: true,
                        steps: by_inv.get(&w_inv).cloned().unwrap_or_default(),
                        legacy_step: Some((inv.clone(), s.step_id.clone())),
                        sort: (
                            layout::uuid_time_ms(&s.step_id).unwrap_or(s.time),
                            s.step_id.clone(),
                        ),
                        later: Vec::new(),
                    }));
                }
            }
        }
        here
    }

    /// The next checkpoints of a listing (empty when it is over), loaded concurrently.
    pub async fn list_next(
        &self,
        store: &dyn SessionStore,
        cursor: &mut ListCursor,
        n: usize,
    ) -> Result<Vec<CheckpointRecord>> {
        loop {
            while cursor.queue.is_empty() {
                if let Some((thread, sid)) = cursor.threads.pop_front() {
                    self.queue_thread(store, cursor, thread, sid).await?;
                } else if cursor.all_threads && !cursor.sessions_done {
                    self.next_sessions(store, cursor).await?;
                } else {
                    return Ok(Vec::new());
                }
            }
            // A window: `n` items, and every item whose times meet the window's (a batch may hold
            // records of checkpoints listed next to it), so that each checkpoint is loaded whole, once.
            // (Lowest time of the batches taken, of the checkpoints taken.)
            let (mut batch_lo, mut entry_lo) = (i64::MAX, i64::MAX);
            let mut take = Vec::new();
            while let Some(f) = cursor.queue.front() {
                let needed = match f {
                    Item::Entry(_) => f.hi() >= batch_lo,
                    Item::Batch { .. } => f.hi() >= batch_lo.min(entry_lo),
                };
                if take.len() >= n && !needed {
                    break;
                }
                match f {
                    Item::Entry(_) => entry_lo = entry_lo.min(f.lo()),
                    Item::Batch { .. } => batch_lo = batch_lo.min(f.lo()),
                }
                take.extend(cursor.queue.pop_front());
            }
            let mut out = Vec::new();
            for rec in self.load_window(store, cursor, take).await? {
                if cursor.ns.as_ref().is_none_or(|ns| *ns == rec.checkpoint_ns)
                    && cursor
                        .before
                        .as_ref()
                        .is_none_or(|b| rec.checkpoint_id < *b)
                {
                    out.push(rec);
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Loads the checkpoints of a window of items, newest first.
    async fn load_window(
        &self,
        store: &dyn SessionStore,
        cursor: &mut ListCursor,
        items: Vec<Item>,
    ) -> Result<Vec<CheckpointRecord>> {
        // (thread, session, fallback time, steps, session the steps are in): one unit per entry of ours
        // and per batch, and one per newer generation holding writes of an entry's checkpoint.
        let mut units: Vec<(String, String, i64, Vec<StepSummary>, String)> = Vec::new();
        let mut legacy = Vec::new();
        for item in items {
            match item {
                Item::Entry(e) if e.legacy => legacy.push(e),
                Item::Entry(e) => {
                    for (in_sid, steps) in e.later {
                        units.push((
                            e.thread_id.clone(),
                            e.session_id.clone(),
                            e.sort.0,
                            steps,
                            in_sid,
                        ));
                    }
                    units.push((
                        e.thread_id,
                        e.session_id.clone(),
                        e.sort.0,
                        e.steps,
                        e.session_id,
                    ))
                }
                Item::Batch {
                    thread_id,
                    session_id,
                    step,
                    ..
                } => units.push((
                    thread_id,
                    session_id.clone(),
                    step.time,
                    vec![step],
                    session_id,
                )),
            }
        }
        let (fetched, legacy_loaded) = futures::join!(
            join_all(
                units
                    .iter()
                    .map(|(_, _, _, steps, in_sid)| self.fetch_all(store, in_sid, steps))
            ),
            join_all(legacy.iter().map(|e| self.load_entry(store, e)))
        );
        // (thread, ns, checkpoint id) → (fallback time, envelopes), whichever generations they come from.
        type Key = (String, String, String);
        let mut groups: HashMap<Key, (i64, Vec<Envelope>)> = HashMap::new();
        let mut more: Vec<(String, String, i64, Vec<StepSummary>)> = Vec::new();
        let superseded = std::mem::take(&mut cursor.superseded);
        let place = |groups: &mut HashMap<Key, (i64, Vec<Envelope>)>,
                     thread: &str,
                     sid: &str,
                     time: i64,
                     env: Envelope| {
            let (ns, cp) = match &env {
                Envelope::Checkpoint(c) => {
                    // A newer generation holds this checkpoint too: its copy is the one listed.
                    if superseded.get(sid).is_some_and(|tags| {
                        tags.contains(&layout::checkpoint_tag(&c.checkpoint_id))
                    }) {
                        return;
                    }
                    (c.checkpoint_ns.clone(), c.checkpoint_id.clone())
                }
                Envelope::Writes(w) => (w.checkpoint_ns.clone(), w.checkpoint_id.clone()),
                _ => return,
            };
            groups
                .entry((thread.to_string(), ns, cp))
                .or_insert_with(|| (time, Vec::new()))
                .1
                .push(env);
        };
        for ((thread, _, time, _, sid), envs) in units.iter().zip(fetched) {
            for env in envs? {
                if let Envelope::Checkpoint(c) = &env {
                    // A checkpoint found in a batch: its own steps (revisions, writes) too.
                    let tag = layout::checkpoint_tag(&c.checkpoint_id);
                    if let Some(steps) = cursor.orphans.remove(&(sid.clone(), tag)) {
                        more.push((thread.clone(), sid.clone(), *time, steps));
                    }
                }
                place(&mut groups, thread, sid, *time, env);
            }
        }
        let extra = join_all(
            more.iter()
                .map(|(_, sid, _, steps)| self.fetch_all(store, sid, steps)),
        )
        .await;
        for ((thread, sid, time, _), envs) in more.iter().zip(extra) {
            for env in envs? {
                place(&mut groups, thread, sid, *time, env);
            }
        }
        cursor.superseded = superseded;
        let mut out: Vec<((i64, String), CheckpointRecord)> = Vec::new();
        for ((thread, ns, cp), (time, envs)) in groups {
            if let Some((c, writes)) = assemble(envs, Some((&ns, &cp))) {
                out.push((checkpoint_key(&c, time), record_of(&thread, c, writes)));
            }
        }
        for (e, r) in legacy.iter().zip(legacy_loaded) {
            if let Some(rec) = r? {
                out.push((e.sort.clone(), rec));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    async fn load_entry(
        &self,
        store: &dyn SessionStore,
        e: &ListEntry,
    ) -> Result<Option<CheckpointRecord>> {
        let (_, cp) = e.legacy_step.clone().expect("legacy entry");
        let ns = e.ns.clone().unwrap_or_default();
        self.load_legacy(
            store,
            &e.thread_id,
            &e.session_id,
            &ns,
            &cp,
            Some(e.steps.clone()),
            Vec::new(),
        )
        .await
    }

    /// Every checkpoint of a thread (all namespaces), newest first.
    pub async fn all_records(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
    ) -> Result<Vec<CheckpointRecord>> {
        let mut cursor = self.list_start(store, Some(thread_id), None, None).await?;
        let mut out = Vec::new();
        loop {
            let batch = self.list_next(store, &mut cursor, LIST_BATCH).await?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch);
        }
    }

    // -----------------------------------------------------------------------------------------
    // delete, copy, prune

    pub async fn delete_thread(&self, store: &dyn SessionStore, thread_id: &str) -> Result<()> {
        let Some(sid) = self.resolve(store, thread_id, false).await? else {
            return Ok(());
        };
        if self.deferred {
            // Queued writes land first (a failure of theirs no longer matters).
            let _ = self.flush_lanes(Some(&sid)).await;
        }
        self.forget_thread(thread_id);
        // Every generation (see `chain`), the newest first: its binding in the index goes with it.
        for s in self.generations(store, &sid).await? {
            drop_session(store, &s).await?;
        }
        locked(&self.chains).remove(&sid);
        if let Some(index) = store.thread_index() {
            index.forget(thread_id, &sid).await?;
        }
        Ok(())
    }

    /// Writes records (oldest first, ids, parents and writes preserved) into `thread_id`, or straight
    /// into `session` when given (a rewrite fills its new session before the thread points at it). A
    /// session that fills up moves on to a next generation (see [`chain`]); returns the session written
    /// last. `batch`: a checkpoint and its writes share a step when they fit (seeds keep a step each, so
    /// that a listing sees which checkpoints a generation holds).
    async fn write_records(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        records: &[CheckpointRecord],
        session: Option<&str>,
        batch: bool,
    ) -> Result<Option<String>> {
        if records.iter().any(|r| r.channel_values.is_none()) {
            return Err(Error::validation(
                "checkpoints of the replaced saver's layout cannot be copied or rewritten: continue the \
                 thread once under this saver first",
            ));
        }
        let mut target = session.map(String::from);
        let mut ordered: Vec<&CheckpointRecord> = records.iter().collect();
        ordered.sort_by(|a, b| a.checkpoint_id.cmp(&b.checkpoint_id));
        for r in ordered {
            let mut recs = vec![Rec::checkpoint(PutCheckpoint {
                thread_id: thread_id.to_string(),
                checkpoint_ns: r.checkpoint_ns.clone(),
                checkpoint_id: r.checkpoint_id.clone(),
                parent_checkpoint_id: r.parent_checkpoint_id.clone(),
                checkpoint: r.checkpoint.clone(),
                metadata_json: r.metadata_json.clone(),
                channel_values: r.channel_values.clone().unwrap_or_default(),
            })?];
            // The writes as put_writes made them, by (task, path).
            let mut groups: WriteGroups = BTreeMap::new();
            for w in &r.writes {
                groups
                    .entry((w.task_id.clone(), w.task_path.clone()))
                    .or_default()
                    .push((w.channel.clone(), w.idx, w.value.clone()));
            }
            for ((task_id, task_path), writes) in groups {
                recs.push(Rec::writes(PutWrites {
                    thread_id: thread_id.to_string(),
                    checkpoint_ns: r.checkpoint_ns.clone(),
                    checkpoint_id: r.checkpoint_id.clone(),
                    task_id,
                    task_path,
                    writes,
                })?);
            }
            // A checkpoint and its writes in one step when they fit in a batch; seeds keep the checkpoint
            // in a step of its own (a listing sees which checkpoints a generation holds), its writes batched.
            let write = |sid: String| {
                let recs = &recs;
                async move {
                    if batch {
                        return self.write_grouped(store, &sid, recs).await;
                    }
                    let (checkpoint, writes) = recs.split_at(1);
                    self.write_batch(store, &sid, &[&checkpoint[0]]).await?;
                    self.write_grouped(store, &sid, writes).await
                }
            };
            match &mut target {
                None => self.in_thread(store, thread_id, write).await?,
                Some(sid) => loop {
                    match write(sid.clone()).await {
                        Err(e) if self.needs_rollover(store, sid, &e).await? => {
                            *sid = self.new_generation(store, Some(thread_id), sid).await?;
                        }
                        other => break other.map_err(|e| Self::thread_error(thread_id, e))?,
                    }
                },
            }
        }
        Ok(target)
    }

    /// Records of one namespace in as few steps as batches allow (each alone where they cannot share one).
    pub(crate) async fn write_grouped(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        recs: &[Rec],
    ) -> Result<()> {
        let (batchable, alone): (Vec<&Rec>, Vec<&Rec>) =
            recs.iter().partition(|r| r.cp_time.is_some());
        let mut chunk: Vec<&Rec> = Vec::new();
        let (mut size, mut lo, mut hi) = (0usize, i64::MAX, i64::MIN);
        for r in batchable {
            let t = r.cp_time.unwrap_or_default();
            let fits = size + r.json.len() <= lanes::MAX_BATCH_BYTES
                && hi.max(t) - lo.min(t) <= layout::BATCH_MAX_SPAN_MS;
            if !chunk.is_empty() && !fits {
                self.write_batch(store, sid, &chunk).await?;
                chunk.clear();
                (size, lo, hi) = (0, i64::MAX, i64::MIN);
            }
            size += r.json.len();
            (lo, hi) = (lo.min(t), hi.max(t));
            chunk.push(r);
        }
        if !chunk.is_empty() {
            self.write_batch(store, sid, &chunk).await?;
        }
        for r in alone {
            self.write_batch(store, sid, &[r]).await?;
        }
        Ok(())
    }

    /// The first steps of a new generation: the seeds (see [`chain`]).
    pub(crate) async fn write_seeds(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        seeds: &[CheckpointRecord],
        sid: &str,
    ) -> Result<()> {
        self.write_records(store, thread_id, seeds, Some(sid), false)
            .await
            .map(|_| ())
    }

    pub async fn copy_thread(
        &self,
        store: &dyn SessionStore,
        source: &str,
        target: &str,
    ) -> Result<()> {
        let records = self.all_records(store, source).await?;
        if records.is_empty() {
            return Ok(());
        }
        self.write_records(store, target, &records, None, true)
            .await
            .map(|_| ())
    }

    /// Replaces a thread's session by a new one holding only `keep` (steps are immutable: the only way
    /// to remove some is to rewrite the rest). Needs the thread index, which then points at the new session.
    async fn rewrite(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        keep: Vec<CheckpointRecord>,
    ) -> Result<()> {
        let Some(old) = self.resolve(store, thread_id, false).await? else {
            return Ok(());
        };
        let Some(index) = store.thread_index() else {
            return Err(Error::validation(
                "removing some checkpoints of a thread rewrites its session and needs a thread index",
            ));
        };
        let info = store.get_session(sref(&old)).await?;
        let mut metadata = info.metadata.clone();
        for key in [
            layout::META_THREAD,
            layout::META_PREVIOUS,
            layout::META_GENERATION,
            layout::META_NEXT,
        ] {
            metadata.remove(key);
        }
        let tags = store
            .list_tags_for_resource(crate::model::ResourceArn::parse(&info.arn)?)
            .await
            .unwrap_or_default();
        let new = self
            .create_thread_session(store, thread_id, metadata, tags)
            .await?;
        // Write into the new session under a private name (more sessions when it fills up), then point
        // the thread at the newest, and drop every old generation.
        let written = self
            .write_records(store, thread_id, &keep, Some(&new), true)
            .await;
        let newest = match written {
            Ok(n) => n.unwrap_or(new),
            Err(e) => {
                let _ = drop_session(store, &new).await;
                return Err(e);
            }
        };
        index.bind(thread_id, &newest, true).await?;
        self.forget_thread(thread_id);
        self.remember_thread(thread_id, &newest);
        for s in self.generations(store, &old).await? {
            drop_session(store, &s).await?;
        }
        locked(&self.chains).remove(&old);
        Ok(())
    }

    pub async fn prune(
        &self,
        store: &dyn SessionStore,
        thread_ids: &[String],
        keep_latest: bool,
    ) -> Result<()> {
        for t in thread_ids {
            if !keep_latest {
                self.delete_thread(store, t).await?;
                continue;
            }
            let records = self.all_records(store, t).await?;
            if records.is_empty() {
                continue;
            }
            let mut latest: BTreeMap<String, CheckpointRecord> = BTreeMap::new();
            for r in records.iter() {
                if latest
                    .get(&r.checkpoint_ns)
                    .is_none_or(|b| r.checkpoint_id > b.checkpoint_id)
                {
                    latest.insert(r.checkpoint_ns.clone(), r.clone());
                }
            }
            if latest.len() == records.len() {
                continue;
            }
            self.rewrite(store, t, latest.into_values().collect())
                .await?;
        }
        Ok(())
    }

    pub async fn delete_for_runs(
        &self,
        store: &dyn SessionStore,
        run_ids: &[String],
    ) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let runs: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
        let mut cursor = self.list_start(store, None, None, None).await?;
        // Gather per thread, then rewrite the threads that hold any of the runs.
        let mut per_thread: BTreeMap<String, Vec<CheckpointRecord>> = BTreeMap::new();
        loop {
            let batch = self.list_next(store, &mut cursor, LIST_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                per_thread.entry(r.thread_id.clone()).or_default().push(r);
            }
        }
        for (thread, records) in per_thread {
            let total = records.len();
            let keep: Vec<CheckpointRecord> = records
                .into_iter()
                .filter(|r| r.run_id().is_none_or(|id| !runs.contains(id.as_str())))
                .collect();
            if keep.len() == total {
                continue;
            }
            if keep.is_empty() {
                self.delete_thread(store, &thread).await?;
            } else {
                self.rewrite(store, &thread, keep).await?;
            }
        }
        Ok(())
    }
}

/// Picks a checkpoint's newest revision and its write steps among decoded envelopes; `want` narrows to
/// one (namespace, checkpoint id), else the first checkpoint found decides.
fn assemble(
    envs: Vec<Envelope>,
    want: Option<(&str, &str)>,
) -> Option<(layout::CheckpointEnvelope, Vec<layout::WritesEnvelope>)> {
    let target: Option<(String, String)> = want
        .map(|(ns, cp)| (ns.to_string(), cp.to_string()))
        .or_else(|| {
            envs.iter().find_map(|e| match e {
                Envelope::Checkpoint(c) => Some((c.checkpoint_ns.clone(), c.checkpoint_id.clone())),
                _ => None,
            })
        });
    let (ns, cp) = target?;
    let mut best: Option<layout::CheckpointEnvelope> = None;
    let mut writes = Vec::new();
    for env in envs {
        match env {
            Envelope::Checkpoint(c)
                if c.checkpoint_id == cp
                    && c.checkpoint_ns == ns
                    && best.as_ref().is_none_or(|b| c.seq > b.seq) =>
            {
                best = Some(c);
            }
            Envelope::Writes(w) if w.checkpoint_id == cp && w.checkpoint_ns == ns => writes.push(w),
            _ => {}
        }
    }
    best.map(|b| (b, writes))
}

fn record_of(
    thread_id: &str,
    c: layout::CheckpointEnvelope,
    writes: Vec<layout::WritesEnvelope>,
) -> CheckpointRecord {
    CheckpointRecord {
        thread_id: thread_id.to_string(),
        checkpoint_ns: c.checkpoint_ns,
        checkpoint_id: c.checkpoint_id,
        parent_checkpoint_id: c.parent_checkpoint_id,
        checkpoint: c.checkpoint,
        metadata_json: c.metadata.get().to_string(),
        channel_values: Some(c.channel_values),
        writes: merge_writes(writes),
    }
}

/// Writes of one checkpoint grouped as put_writes made them: (task id, task path) → writes.
type WriteGroups = BTreeMap<(String, String), Vec<(String, i64, Typed)>>;

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

/// LangGraph's order for the writes of one checkpoint: (task_path, task_id, idx).
fn sort_writes(writes: &mut [WriteRecord]) {
    writes
        .sort_by(|a, b| (&a.task_path, &a.task_id, a.idx).cmp(&(&b.task_path, &b.task_id, b.idx)));
}

/// Merges the write steps of one checkpoint: regular writes keep the first stored, special writes
/// (idx < 0) the last.
fn merge_writes(mut steps: Vec<layout::WritesEnvelope>) -> Vec<WriteRecord> {
    steps.sort_by_key(|s| s.seq);
    let mut by_key: BTreeMap<(String, i64), WriteRecord> = BTreeMap::new();
    for s in steps {
        for (channel, idx, value) in s.writes {
            let key = (s.task_id.clone(), idx);
            if idx >= 0 && by_key.contains_key(&key) {
                continue;
            }
            by_key.insert(
                key,
                WriteRecord {
                    task_id: s.task_id.clone(),
                    channel,
                    value,
                    task_path: s.task_path.clone(),
                    idx,
                },
            );
        }
    }
    let mut out: Vec<WriteRecord> = by_key.into_values().collect();
    sort_writes(&mut out);
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
