//! Reading a checkpoint: `get_tuple`, by id (in the thread's generations, newest first) or the latest
//! of a namespace. Steps are listed, fetched at once and decoded (from the step cache when this process
//! wrote them; batches opened into their records); a checkpoint's newest revision is assembled with its
//! writes into a [`CheckpointRecord`]. Checkpoints of the replaced saver's layout are read in
//! `legacy.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::future::join_all;

use super::cache::CachedEnv;
use super::layout::{self, Envelope, StepKind};
use super::{CheckpointRecord, Saver, WriteRecord, all_steps, is_code, layout_time, sref};
use crate::error::{ErrorCode, Result};
use crate::model::{ContentBlock, GetStep, ListSteps, PageRequest, StepSummary};
use crate::store::SessionStore;

/// Whether a batch step may hold data of a checkpoint of time `t`.
fn covers(s: &StepSummary, t: i64) -> bool {
    let span = layout::batch_info(&s.step_id).map_or(0, |(span, _)| span);
    s.time - span <= t && t <= s.time
}

/// The order of checkpoints: newest first by (time, id).
pub(super) fn checkpoint_key(c: &layout::CheckpointEnvelope, step_time: i64) -> (i64, String) {
    (
        layout::uuid_time_ms(&c.checkpoint_id).unwrap_or(step_time),
        c.checkpoint_id.clone(),
    )
}

impl Saver {
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

    pub(super) async fn list_invocation(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
    ) -> Result<Option<Vec<StepSummary>>> {
        match all_steps(store, sid, Some(inv)).await {
            Ok(steps) => Ok(Some(steps)),
            Err(e) if e.is_invocation_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn fetch(
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
    pub(super) async fn fetch_all(
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
    ///
    /// [`chain`]: super::chain
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
}

/// Picks a checkpoint's newest revision and its write steps among decoded envelopes; `want` narrows to
/// one (namespace, checkpoint id), else the first checkpoint found decides.
pub(super) fn assemble(
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

pub(super) fn record_of(
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

/// LangGraph's order for the writes of one checkpoint: (task_path, task_id, idx).
pub(super) fn sort_writes(writes: &mut [WriteRecord]) {
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
