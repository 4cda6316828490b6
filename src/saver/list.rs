//! Listing: a streaming `list` of one thread (every generation, newest first) or of every thread of the
//! store, through a [`ListCursor`]. A thread's step summaries are listed and queued as checkpoints and
//! batch steps, newest first; the next window of them is loaded concurrently. `all_records` lists a
//! whole thread.

use std::collections::{HashMap, HashSet, VecDeque};

use futures::future::join_all;

use super::layout::{self, Envelope, StepKind};
use super::read::{assemble, checkpoint_key, record_of};
use super::{CheckpointRecord, Saver, all_steps, is_code, sref};
use crate::error::{ErrorCode, Result};
use crate::model::{PageRequest, StepSummary};
use crate::store::SessionStore;

/// How many checkpoints `list` loads at once.
pub const LIST_BATCH: usize = 16;

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
    /// Steps of checkpoints (revisions, writes) whose checkpoint is in a batch, by checkpoint tag: the
    /// sessions (generations) holding some, and their steps there.
    orphans: HashMap<layout::Tag, Vec<(String, Vec<StepSummary>)>>,
    /// Writes loaded in a window whose checkpoint was not (it is in an older batch, listed later):
    /// they join it in a later window. (thread, ns, checkpoint id) → (time, envelopes).
    pending: HashMap<(String, String, String), (i64, Vec<Envelope>)>,
    /// List the given session alone, not its thread's chain (the seeds of a new generation).
    single_session: bool,
    /// Per session of a chain: the checkpoints that a newer generation holds too (its copy wins).
    superseded: HashMap<String, HashSet<layout::Tag>>,
    /// The namespaces (tags) met in the listed sessions.
    ns_tags: HashSet<layout::Tag>,
    /// A single-session listing keeps the session's step summaries (a rollover reads them again).
    pub(super) listing: Option<ByInvocation>,
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

impl Saver {
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
    pub(super) fn list_session(&self, sid: &str) -> ListCursor {
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
    ///
    /// [`chain`]: super::chain
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
        cursor.pending.clear();
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
        // Writes of a checkpoint kept in another generation than the checkpoint's listed step join its
        // entry; the steps of a checkpoint that has an entry are no orphans (they would be read twice).
        for item in items.iter_mut() {
            if let Item::Entry(e) = item {
                let Some(first) = e.steps.first() else {
                    continue;
                };
                let tag = layout::classify_step(&first.step_id).1;
                cursor.orphans.remove(&tag);
                if let Some(more) = strays.remove(&tag) {
                    e.later
                        .extend(more.into_iter().filter(|(s, _)| *s != e.session_id));
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
        let steps = match all_steps(store, sid, None).await {
            Ok(steps) => steps,
            Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut by_inv: ByInvocation = HashMap::new();
        for s in steps {
            by_inv.entry(s.invocation_id.clone()).or_default().push(s);
        }
        Ok(Some(by_inv))
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
                                cursor
                                    .orphans
                                    .entry(cp_tag)
                                    .or_default()
                                    .push((sid.to_string(), group));
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
        let mut groups: HashMap<Key, (i64, Vec<Envelope>)> = std::mem::take(&mut cursor.pending);
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
                    // A checkpoint found in a batch: its own steps (revisions, writes) too, in
                    // whichever generations hold them.
                    let tag = layout::checkpoint_tag(&c.checkpoint_id);
                    for (in_sid, steps) in cursor.orphans.remove(&tag).unwrap_or_default() {
                        more.push((thread.clone(), in_sid, *time, steps));
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
            if !envs.iter().any(|e| matches!(e, Envelope::Checkpoint(_))) {
                // Writes ahead of their checkpoint's window (in a newer batch, or generation).
                cursor.pending.insert((thread, ns, cp), (time, envs));
                continue;
            }
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
}
