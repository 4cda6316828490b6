//! Writing: `put`, `put_writes`, `put_with_writes`, their deferred forms and `flush`. A request is made
//! once into a record ([`Rec`]); records are written into their thread's session (`in_thread`: resolved,
//! written again after the thread was deleted, moved on to a next generation when the session is full)
//! and stored as one step: alone in the regular layout, or several as a batch (`write_batch`,
//! `write_grouped`). The first step of a namespace creates its invocation (`put_step`). The lanes that
//! group a thread's concurrent writes are in `lanes.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;

use super::cache::CachedEnv;
use super::{
    MAX_MOVES, PutCheckpoint, PutWrites, Saver, is_code, lanes, layout, locked, sref, store_time,
};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ContentBlock, CreateInvocation, Payload, PutStep};
use crate::store::SessionStore;
use crate::validate;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    now_ns() / 1_000_000
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
    pub(super) kind: RecKind,
    pub(super) ns: String,
    pub(super) cp_id: String,
    /// The time the checkpoint id carries (uuid6): only such records go into batches.
    pub(super) cp_time: Option<i64>,
    /// Special writes (error, interrupt, resume...).
    pub(super) special: bool,
    /// The envelope's JSON (uncompressed).
    pub(super) json: String,
    /// The step's time when it is written alone.
    time: i64,
}

impl Rec {
    pub(super) fn checkpoint(req: PutCheckpoint) -> Result<Self> {
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

    pub(super) fn writes(req: PutWrites) -> Result<Self> {
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

    pub(super) fn thread_id(&self) -> &str {
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

impl Saver {
    /// The stored text of an envelope's JSON: compressed when large and this saver compresses.
    fn pack<'a>(&self, json: &'a str) -> std::borrow::Cow<'a, str> {
        if self.compress {
            layout::pack(json)
        } else {
            std::borrow::Cow::Borrowed(json)
        }
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

    /// Writes into a thread's session: resolve it (creating the session), write, and write once more if
    /// the thread turns out to have been deleted since this process cached it. Errors name the thread.
    pub(super) async fn in_thread<F, Fut>(
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
    pub(super) async fn settle(&self, sid: &str, thread_id: &str) -> Result<String> {
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
}
