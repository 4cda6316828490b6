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

pub mod layout;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    ContentBlock, CreateInvocation, CreateSession, GetStep, ListSteps, PageRequest, Payload,
    PutStep, SessionRef, StepSummary,
};
use crate::store::SessionStore;
use crate::validate::{self, is_uuid};
use layout::{Envelope, StepKind, Typed};

/// How many checkpoints `list` loads at once.
pub const LIST_BATCH: usize = 16;

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

/// The stored text of an envelope: its JSON, compressed when large (see `layout::pack`).
fn pack_json<T: Serialize>(envelope: &T) -> Result<String> {
    serde_json::to_string(envelope)
        .map(layout::pack)
        .map_err(|e| Error::internal(e.to_string()))
}

/// "Session ... not found": the thread's session was deleted. (The store's codes do not tell a missing
/// session from a missing invocation; its messages do.)
fn is_deleted_session(e: &Error) -> bool {
    is_code(e, ErrorCode::ResourceNotFound) && e.message.starts_with("Session")
}

/// An id that already exists (ConflictException "... already exists ...").
fn is_already_exists(e: &Error) -> bool {
    is_code(e, ErrorCode::Conflict) && e.message.contains("already exists")
}

/// A checkpoint ready to store, built once from the request (moved, not copied): a retry resends it.
struct CheckpointPut {
    env: layout::CheckpointEnvelope,
    text: String,
    time: i64,
}

impl CheckpointPut {
    fn new(req: PutCheckpoint) -> Result<Self> {
        let metadata = RawValue::from_string(req.metadata_json).map_err(|e| {
            Error::validation(format!("checkpoint metadata is not valid JSON: {e}"))
        })?;
        let time = layout::uuid_time_ms(&req.checkpoint_id).unwrap_or_else(now_ms);
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
        let text = pack_json(&env)?;
        Ok(CheckpointPut { env, text, time })
    }
}

/// The writes of one put_writes call, ready to store (their step id fixed once).
struct WritesPut {
    ns: String,
    step_id: String,
    time: i64,
    text: String,
}

impl WritesPut {
    fn new(req: PutWrites) -> Result<Self> {
        let special = req.writes.iter().any(|(_, idx, _)| *idx < 0);
        let keys: Vec<(String, i64)> = req.writes.iter().map(|(c, i, _)| (c.clone(), *i)).collect();
        let step_id = layout::writes_step_id(&req.checkpoint_id, &req.task_id, &keys, special);
        // Never older than the checkpoint, so a newest-first listing meets a checkpoint's writes first.
        let time = now_ms().max(layout::uuid_time_ms(&req.checkpoint_id).unwrap_or(0));
        let ns = req.checkpoint_ns.clone();
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
        Ok(WritesPut {
            ns,
            step_id,
            time,
            text: pack_json(&env)?,
        })
    }
}

fn is_code(e: &Error, code: ErrorCode) -> bool {
    e.code == code
}

/// A step summary grouped by invocation, from a session listing.
type ByInvocation = HashMap<String, Vec<StepSummary>>;

/// One checkpoint to load in a listing.
#[derive(Debug, Clone)]
struct ListEntry {
    thread_id: String,
    session_id: String,
    ns: Option<String>,
    checkpoint_id: Option<String>,
    legacy: bool,
    /// The steps of the checkpoint's invocation (this layout) or its legacy write steps.
    steps: Vec<StepSummary>,
    /// Legacy: the checkpoint step's (invocation, step id).
    legacy_step: Option<(String, String)>,
    sort: (i64, String),
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
    queue: VecDeque<ListEntry>,
}

/// What this process knows of thread → session bindings (a cache, never required for correctness).
#[derive(Debug, Default)]
pub struct Saver {
    threads: Mutex<HashMap<String, String>>,
}

impl Saver {
    pub fn new() -> Self {
        Saver::default()
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
        if store.has_thread_index() {
            if let Some(sid) = store.thread_session(thread_id).await? {
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
                    self.remember_thread(thread_id, &s.id);
                    return Ok(Some(s.id));
                }
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if !create {
            return Ok(None);
        }
        if !store.has_thread_index() {
            return Err(Error::validation(format!(
                "thread {thread_id:?} is not a session of this store: create one with create_thread() \
                 (or the session API) and use its id as the thread id"
            )));
        }
        let sid = self
            .create_thread_session(store, thread_id, BTreeMap::new(), BTreeMap::new())
            .await?;
        let bound = store.bind_thread(thread_id, &sid, false).await?;
        if bound != sid {
            // Another writer created the thread at the same time: use theirs, drop ours.
            let _ = store.end_session(sref(&sid)).await;
            let _ = store.delete_session(sref(&sid)).await;
        }
        self.remember_thread(thread_id, &bound);
        Ok(Some(bound))
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
            Err(e) if is_already_exists(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Puts a step into its namespace invocation: one request when the invocation exists (the usual
    /// case); the first step of a namespace creates it and tries again. A missing session stays an error.
    async fn put_step(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        ns: &str,
        step: impl Fn() -> PutStep,
    ) -> Result<String> {
        match store.put_invocation_step(step()).await {
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) && !is_deleted_session(&e) => {
                let inv = layout::namespace_invocation_id(ns);
                self.create_ns_invocation(store, sid, &inv, ns).await?;
                store.put_invocation_step(step()).await
            }
            other => other,
        }
    }

    /// Names the thread in errors from the store (ended, expired, over quota).
    fn thread_error(thread_id: &str, e: Error) -> Error {
        match e.code {
            ErrorCode::Conflict | ErrorCode::ServiceQuotaExceeded => {
                Error::new(e.code, format!("thread {thread_id:?}: {}", e.message))
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
        if !store.has_thread_index() {
            return Ok(());
        }
        let Some(sid) = store.thread_session(thread_id).await? else {
            return Ok(());
        };
        match store.get_session(sref(&sid)).await {
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => {
                let fresh = self
                    .create_thread_session(store, thread_id, BTreeMap::new(), BTreeMap::new())
                    .await?;
                store.bind_thread(thread_id, &fresh, true).await?;
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
        let once = || async {
            let sid = self
                .resolve(store, thread_id, true)
                .await?
                .expect("created");
            write(sid).await
        };
        match once().await {
            Err(e) if is_deleted_session(&e) => {
                self.recover_deleted_thread(store, thread_id).await?;
                once().await
            }
            other => other,
        }
        .map_err(|e| Self::thread_error(thread_id, e))
    }

    pub async fn put(&self, store: &dyn SessionStore, req: PutCheckpoint) -> Result<()> {
        let thread_id = req.thread_id.clone();
        let put = CheckpointPut::new(req)?;
        self.in_thread(store, &thread_id, |sid| {
            let put = &put;
            async move { self.put_checkpoint(store, &sid, put).await }
        })
        .await
    }

    /// Stores a prepared checkpoint in a given session.
    async fn put_checkpoint(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        put: &CheckpointPut,
    ) -> Result<()> {
        let env = &put.env;
        let step = |step_id: &str, text: &str| PutStep {
            session: sref(sid),
            invocation_id: layout::namespace_invocation_id(&env.checkpoint_ns),
            step_id: Some(step_id.to_string()),
            time: put.time,
            payload: text_payload(text.to_string()),
        };
        let main = layout::checkpoint_step_id(&env.checkpoint_id);
        match self
            .put_step(store, sid, &env.checkpoint_ns, || step(&main, &put.text))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_already_exists(&e) => {
                // The same checkpoint put again with other content: steps are immutable, so a revision
                // step is added and readers take the newest.
                let mut revision = env.clone();
                revision.seq = now_ns();
                let text = pack_json(&revision)?;
                let id = layout::revision_step_id(&env.checkpoint_id);
                self.put_step(store, sid, &env.checkpoint_ns, || step(&id, &text))
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn put_writes(&self, store: &dyn SessionStore, req: PutWrites) -> Result<()> {
        if req.writes.is_empty() {
            return Ok(());
        }
        let thread_id = req.thread_id.clone();
        let put = WritesPut::new(req)?;
        self.in_thread(store, &thread_id, |sid| {
            let put = &put;
            async move { self.put_writes_step(store, &sid, put).await }
        })
        .await
    }

    /// Stores prepared writes in a given session.
    async fn put_writes_step(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        put: &WritesPut,
    ) -> Result<()> {
        let step = || PutStep {
            session: sref(sid),
            invocation_id: layout::namespace_invocation_id(&put.ns),
            step_id: Some(put.step_id.clone()),
            time: put.time,
            payload: text_payload(put.text.clone()),
        };
        match self.put_step(store, sid, &put.ns, step).await {
            Ok(_) => Ok(()),
            // Regular writes are insert-or-ignore: the step of an earlier identical call stands.
            Err(e) if is_already_exists(&e) => Ok(()),
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
        let Some(sid) = self.resolve(store, thread_id, false).await? else {
            return Ok(None);
        };
        let got = match checkpoint_id {
            Some(cp) => self.load_by_id(store, thread_id, &sid, ns, cp).await,
            None => self.load_latest(store, thread_id, &sid, ns).await,
        };
        match got {
            // A deleted thread that an index kept in sessions still points at.
            Err(e) if is_deleted_session(&e) => {
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
                Err(e)
                    if is_code(&e, ErrorCode::ResourceNotFound)
                        && e.message.starts_with("Invocation") =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            out.extend(page.items);
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
            if let Some(env) = r? {
                out.push(env);
            }
        }
        Ok(out)
    }

    async fn load_by_id(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
        ns: &str,
        cp: &str,
    ) -> Result<Option<CheckpointRecord>> {
        let inv = layout::namespace_invocation_id(ns);
        let tag = layout::checkpoint_tag(cp);
        let steps: Vec<StepSummary> = self
            .list_invocation(store, sid, &inv)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|s| layout::classify_step(&s.step_id).1 == tag)
            .collect();
        self.load_ours(store, thread_id, sid, ns, cp, steps).await
    }

    /// Loads a checkpoint of this layout from its invocation's steps; falls back to the legacy layout.
    async fn load_ours(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
        ns: &str,
        cp: &str,
        steps: Vec<StepSummary>,
    ) -> Result<Option<CheckpointRecord>> {
        let envs = self.fetch_all(store, sid, &steps).await?;
        let writes_only: Vec<layout::WritesEnvelope> = envs
            .iter()
            .filter_map(|e| match e {
                Envelope::Writes(w) if w.checkpoint_id == cp && w.checkpoint_ns == ns => {
                    Some(w.clone())
                }
                _ => None,
            })
            .collect();
        match assemble(envs, Some((ns, cp))) {
            Some((c, writes)) => Ok(Some(record_of(thread_id, c, writes))),
            // Only writes of ours: the checkpoint may be one of the replaced saver's.
            None => {
                self.load_legacy(
                    store,
                    thread_id,
                    sid,
                    ns,
                    cp,
                    None,
                    merge_writes(writes_only),
                )
                .await
            }
        }
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
        // Steps of this namespace's invocation, by checkpoint tag.
        let mut by_checkpoint: HashMap<layout::Tag, Vec<StepSummary>> = HashMap::new();
        // (time, checkpoint id, legacy)
        let mut best: Option<(i64, String, bool)> = None;
        let mut stop_below: Option<i64> = None;
        let mut token = None;
        let mut page_size = 100;
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
            page_size = 1000;
            for s in page.items {
                if stop_below.is_some_and(|t| s.time < t) {
                    break 'pages;
                }
                let ours = layout::parse_invocation(&s.invocation_id) == Some(tag);
                let legacy = s.invocation_id == legacy_inv;
                let candidate = if ours {
                    let (kind, cp_tag) = layout::classify_step(&s.step_id);
                    let c =
                        (kind == StepKind::Checkpoint).then(|| (s.time, s.step_id.clone(), false));
                    by_checkpoint.entry(cp_tag).or_default().push(s.clone());
                    c
                } else if legacy {
                    let t = layout::uuid_time_ms(&s.step_id).unwrap_or(s.time);
                    Some((t, s.step_id.clone(), true))
                } else {
                    None
                };
                if let Some(c) = candidate {
                    if best.as_ref().is_none_or(|b| (c.0, &c.1) > (b.0, &b.1)) {
                        best = Some(c);
                    }
                    stop_below.get_or_insert(s.time);
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let Some((_, step_id, legacy)) = best else {
            return Ok(None);
        };
        if legacy {
            return self
                .load_legacy(store, thread_id, sid, ns, &step_id, None, Vec::new())
                .await;
        }
        let steps = by_checkpoint
            .remove(&layout::classify_step(&step_id).1)
            .unwrap_or_default();
        let envs = self.fetch_all(store, sid, &steps).await?;
        Ok(assemble(envs, None).map(|(c, writes)| record_of(thread_id, c, writes)))
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
                if let Some(sid) = self.resolve(store, t, false).await? {
                    cursor.threads.push_back((t.to_string(), sid));
                }
                cursor.sessions_done = true;
            }
            None => cursor.all_threads = true,
        }
        Ok(cursor)
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
                    let thread = s
                        .metadata
                        .get(layout::META_THREAD)
                        .cloned()
                        .unwrap_or_else(|| s.id.clone());
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

    /// Lists the step summaries of a thread and queues its checkpoints, newest first.
    async fn queue_thread(
        &self,
        store: &dyn SessionStore,
        cursor: &mut ListCursor,
        thread: String,
        sid: String,
    ) -> Result<()> {
        let mut by_inv: ByInvocation = HashMap::new();
        let mut token = None;
        loop {
            let page = store
                .list_invocation_steps(ListSteps {
                    session: sref(&sid),
                    invocation_id: None,
                    page: PageRequest {
                        max_results: Some(1000),
                        next_token: token,
                    },
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => return Ok(()),
                Err(e) => return Err(e),
            };
            for s in page.items {
                by_inv.entry(s.invocation_id.clone()).or_default().push(s);
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let tag = cursor.ns.as_deref().map(layout::ns_tag);
        let legacy_ns = cursor.ns.clone().unwrap_or_default();
        let legacy_inv = layout::legacy_checkpoint_invocation(&legacy_ns);
        let mut entries = Vec::new();
        for (inv, steps) in &by_inv {
            if let Some(t) = layout::parse_invocation(inv) {
                if tag.is_some_and(|want| want != t) {
                    continue;
                }
                // One entry per checkpoint of the namespace: its step, revisions and writes share a tag.
                let mut by_checkpoint: HashMap<layout::Tag, Vec<StepSummary>> = HashMap::new();
                for s in steps {
                    by_checkpoint
                        .entry(layout::classify_step(&s.step_id).1)
                        .or_default()
                        .push(s.clone());
                }
                for group in by_checkpoint.into_values() {
                    let main = group
                        .iter()
                        .find(|s| layout::classify_step(&s.step_id).0 == StepKind::Checkpoint)
                        .cloned();
                    let Some(main) = main else { continue };
                    let cp = (layout::checkpoint_step_id(&main.step_id) == main.step_id)
                        .then(|| main.step_id.clone());
                    entries.push(ListEntry {
                        thread_id: thread.clone(),
                        session_id: sid.clone(),
                        ns: cursor.ns.clone(),
                        checkpoint_id: cp.clone(),
                        legacy: false,
                        steps: group,
                        legacy_step: None,
                        sort: (main.time, cp.unwrap_or_default()),
                    });
                }
            } else if *inv == legacy_inv {
                for s in steps {
                    let w_inv = layout::legacy_writes_invocation(&legacy_ns, &s.step_id);
                    entries.push(ListEntry {
                        thread_id: thread.clone(),
                        session_id: sid.clone(),
                        ns: Some(legacy_ns.clone()),
                        checkpoint_id: Some(s.step_id.clone()),
                        legacy: true,
                        steps: by_inv.get(&w_inv).cloned().unwrap_or_default(),
                        legacy_step: Some((inv.clone(), s.step_id.clone())),
                        sort: (
                            layout::uuid_time_ms(&s.step_id).unwrap_or(s.time),
                            s.step_id.clone(),
                        ),
                    });
                }
            }
        }
        if let Some(b) = &cursor.before {
            entries.retain(|e| e.checkpoint_id.as_ref().is_none_or(|id| id < b));
        }
        entries.sort_by(|a, b| b.sort.cmp(&a.sort));
        cursor.queue.extend(entries);
        Ok(())
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
            let take: Vec<ListEntry> = (0..n.min(cursor.queue.len()))
                .filter_map(|_| cursor.queue.pop_front())
                .collect();
            let loaded = join_all(take.iter().map(|e| self.load_entry(store, e))).await;
            let mut out = Vec::new();
            for r in loaded {
                if let Some(rec) = r? {
                    if cursor.ns.as_ref().is_none_or(|ns| *ns == rec.checkpoint_ns)
                        && cursor
                            .before
                            .as_ref()
                            .is_none_or(|b| rec.checkpoint_id < *b)
                    {
                        out.push(rec);
                    }
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    async fn load_entry(
        &self,
        store: &dyn SessionStore,
        e: &ListEntry,
    ) -> Result<Option<CheckpointRecord>> {
        if e.legacy {
            let (_, cp) = e.legacy_step.clone().expect("legacy entry");
            let ns = e.ns.clone().unwrap_or_default();
            return self
                .load_legacy(
                    store,
                    &e.thread_id,
                    &e.session_id,
                    &ns,
                    &cp,
                    Some(e.steps.clone()),
                    Vec::new(),
                )
                .await;
        }
        let envs = self.fetch_all(store, &e.session_id, &e.steps).await?;
        Ok(assemble(envs, None).map(|(c, writes)| record_of(&e.thread_id, c, writes)))
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
        self.forget_thread(thread_id);
        drop_session(store, &sid).await
    }

    /// Writes records into a session (oldest first), ids, parents and writes preserved.
    /// Writes records (oldest first, ids, parents and writes preserved) into `thread_id`, or straight
    /// into `session` when given (a rewrite fills its new session before the thread points at it).
    async fn write_records(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        records: &[CheckpointRecord],
        session: Option<&str>,
    ) -> Result<()> {
        if records.iter().any(|r| r.channel_values.is_none()) {
            return Err(Error::validation(
                "checkpoints of the replaced saver's layout cannot be copied or rewritten: continue the \
                 thread once under this saver first",
            ));
        }
        let sid = match session {
            Some(s) => s.to_string(),
            None => self
                .resolve(store, thread_id, true)
                .await?
                .expect("created"),
        };
        let mut ordered: Vec<&CheckpointRecord> = records.iter().collect();
        ordered.sort_by(|a, b| a.checkpoint_id.cmp(&b.checkpoint_id));
        for r in ordered {
            let put = CheckpointPut::new(PutCheckpoint {
                thread_id: thread_id.to_string(),
                checkpoint_ns: r.checkpoint_ns.clone(),
                checkpoint_id: r.checkpoint_id.clone(),
                parent_checkpoint_id: r.parent_checkpoint_id.clone(),
                checkpoint: r.checkpoint.clone(),
                metadata_json: r.metadata_json.clone(),
                channel_values: r.channel_values.clone().unwrap_or_default(),
            })?;
            self.put_checkpoint(store, &sid, &put)
                .await
                .map_err(|e| Self::thread_error(thread_id, e))?;
            // One step per (task, path), as put_writes made them.
            let mut groups: WriteGroups = BTreeMap::new();
            for w in &r.writes {
                groups
                    .entry((w.task_id.clone(), w.task_path.clone()))
                    .or_default()
                    .push((w.channel.clone(), w.idx, w.value.clone()));
            }
            let puts = groups
                .into_iter()
                .map(|((task_id, task_path), writes)| {
                    WritesPut::new(PutWrites {
                        thread_id: thread_id.to_string(),
                        checkpoint_ns: r.checkpoint_ns.clone(),
                        checkpoint_id: r.checkpoint_id.clone(),
                        task_id,
                        task_path,
                        writes,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            for res in join_all(puts.iter().map(|w| self.put_writes_step(store, &sid, w))).await {
                res.map_err(|e| Self::thread_error(thread_id, e))?;
            }
        }
        Ok(())
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
        self.write_records(store, target, &records, None).await
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
        if !store.has_thread_index() {
            return Err(Error::validation(
                "removing some checkpoints of a thread rewrites its session and needs a thread index",
            ));
        }
        let info = store.get_session(sref(&old)).await?;
        let mut metadata = info.metadata.clone();
        metadata.remove(layout::META_THREAD);
        let tags = store
            .list_tags_for_resource(crate::model::ResourceArn::parse(&info.arn)?)
            .await
            .unwrap_or_default();
        let new = self
            .create_thread_session(store, thread_id, metadata, tags)
            .await?;
        // Write into the new session under a private name, then point the thread at it.
        let written = self
            .write_records(store, thread_id, &keep, Some(&new))
            .await;
        if let Err(e) = written {
            let _ = drop_session(store, &new).await;
            return Err(e);
        }
        store.bind_thread(thread_id, &new, true).await?;
        self.forget_thread(thread_id);
        self.remember_thread(thread_id, &new);
        drop_session(store, &old).await
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
