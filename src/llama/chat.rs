//! The message log of a key, for both chat stores.
//!
//! A key's messages are an append-only log of events in one invocation of the key's session: a `state`
//! (the whole view), a `delta` (add / delete / archive) or a `moved` marker (the session is full: readers
//! go on to the next generation). Step ids are derived from the log's sequence number, so a write that
//! raced another writer's is refused by the store (optimistic concurrency) and retried on the fresh log.
//! A full state is written every `snapshot_every` steps, so a cold read fetches about that many steps
//! (newest first, stopping at a complete state). When a session can take no more steps (the quota,
//! EXPIRED after an idle hour, ENDED), the key moves on to its next generation, which starts with a full
//! state. This process caches each key's log and confirms it with one listing (or trusts it for
//! `max_staleness`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::join_all;

use super::parts::{self, Part, decode_part};
use super::view::{
    ACTIVE, DeltaOp, Entry, Images, View, apply_ops, decode_message, delta_body, encode_message,
    ops_of_delta, place_images, rehome, state_body, view_of_state,
};
use super::{
    Generations, MAX_ATTEMPTS, back_off, invocation_missing, is_not_found, truncate_chars,
};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::li1::{self, StepIds};
use crate::model::{
    CreateInvocation, GetStep, ListSteps, PageRequest, PutStep, SessionRef, SessionStatus,
    UpdateSession,
};
use crate::store::SessionStore;

/// maxResults of the listing that confirms a cached log.
const LIST_PEEK: u32 = 8;
/// Concurrent GetInvocationStep calls.
const GET_BATCH: usize = 16;
/// Clock skew allowed when guessing that a session may have expired.
const IDLE_MARGIN_MS: i64 = 120_000;
/// Keys refreshed at once by [`ChatLog::keys`].
const KEYS_BATCH: usize = 16;

/// The chat log's settings (the store's quotas, planned around).
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Seconds a read may use this process's cached log without asking the store (may be infinite).
    pub max_staleness: f64,
    pub snapshot_every: u64,
    pub max_steps_per_session: u64,
    pub max_step_bytes: usize,
    pub idle_timeout_ms: i64,
}

/// A message as the caller gets it: (id, status, the JSON of its `model_dump`).
pub type Message = (u64, String, String);

/// What this process knows of a key's log. Each operation works on a copy, merged back when it succeeds.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub key: String,
    loaded: bool,
    pub generation: u64,
    /// The session of the current generation (`None`: the key has no session).
    pub sid: Option<String>,
    /// Generation 0 is a session the caller named (marked for `keys`).
    user_session: bool,
    inv_ready: bool,
    /// Newest seq seen in the generation.
    seq: u64,
    /// Seqs up to here are consumed (applied, or part of a broken event).
    applied: u64,
    /// Fetched parts of an incomplete tail event.
    parts: BTreeMap<u64, Arc<Part>>,
    /// A complete state event exists in this generation.
    has_state: bool,
    /// Last seq of the newest complete state event.
    state_end: u64,
    /// The view this generation starts from is not known yet (a reader that skipped generations).
    base_unknown: bool,
    last_time_ms: i64,
    pub view: View,
    images: Arc<Images>,
    confirmed: Option<Instant>,
    /// The generation takes no more writes (expired, ended, full).
    frozen: bool,
    /// The generation's session was deleted.
    dead: bool,
    /// A `moved` marker closes the generation.
    moved: bool,
}

impl KeyState {
    fn new(key: &str) -> Self {
        KeyState {
            key: key.to_string(),
            loaded: false,
            generation: 0,
            sid: None,
            user_session: false,
            inv_ready: false,
            seq: 0,
            applied: 0,
            parts: BTreeMap::new(),
            has_state: false,
            state_end: 0,
            base_unknown: false,
            last_time_ms: 0,
            view: View::default(),
            images: Arc::new(Images::new()),
            confirmed: None,
            frozen: false,
            dead: false,
            moved: false,
        }
    }

    /// Starts reading generation `generation` from `base`, the view it starts from (the previous one's
    /// last view); `None` when unknown (read when needed).
    fn enter(&mut self, generation: u64, sid: String, base: Option<View>) {
        let loaded = self.loaded;
        let confirmed = self.confirmed;
        let images = self.images.clone();
        let mut fresh = KeyState::new(&self.key);
        fresh.generation = generation;
        fresh.sid = Some(sid);
        fresh.base_unknown = base.is_none();
        fresh.view = base.unwrap_or_default();
        fresh.loaded = loaded;
        fresh.confirmed = confirmed;
        fresh.images = images;
        *self = fresh;
    }

    /// The caller's form of entries.
    pub fn messages<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<Vec<Message>> {
        entries
            .into_iter()
            .map(|e| {
                Ok((
                    e.id,
                    e.status.to_string(),
                    decode_message(e, self.view.home.as_deref(), &self.images)?,
                ))
            })
            .collect()
    }
}

/// Which entries an operation removes.
#[derive(Debug, Clone)]
pub enum Select {
    /// The entry with this id.
    Id(u64),
    /// The entry at this position (negative: from the end).
    Position(i64),
    /// Every entry of this status.
    Status(String),
    /// The oldest `n` active entries.
    OldestActive(usize),
}

impl Select {
    fn ids(&self, view: &View) -> Vec<u64> {
        let entries = &view.entries;
        match self {
            Select::Id(id) => vec![*id],
            Select::Position(p) => {
                let n = entries.len() as i64;
                if -n <= *p && *p < n {
                    vec![entries[p.rem_euclid(n) as usize].id]
                } else {
                    vec![]
                }
            }
            Select::Status(s) => entries
                .iter()
                .filter(|e| &*e.status == s)
                .map(|e| e.id)
                .collect(),
            Select::OldestActive(n) => entries
                .iter()
                .filter(|e| &*e.status == ACTIVE)
                .take(*n)
                .map(|e| e.id)
                .collect(),
        }
    }
}

/// An operation of the chat stores, a pure function of the cached view.
#[derive(Debug, Clone)]
pub enum Op {
    /// Messages (their JSON) with a status, appended or inserted at a position.
    Add(Vec<String>, String, Option<i64>),
    /// The key's messages replaced.
    Set(Vec<String>, String),
    /// Entries removed; their messages returned (`one`: the first, or none).
    Remove(Select, bool),
    /// Every message removed (the key stops existing); returned when there were any.
    Clear,
    /// The oldest `n` active messages archived and returned.
    Archive(usize),
}

/// What an operation gives back.
#[derive(Debug)]
pub enum OpResult {
    Nothing,
    One(Option<Message>),
    List(Vec<Message>),
}

/// What an operation does: the new view, the delta ops that lead there (`None`: write the whole state),
/// and the images of its new messages.
struct Change {
    view: View,
    ops: Option<Vec<DeltaOp>>,
    new_images: Vec<parts::Img>,
}

fn new_entries(
    msgs: &[String],
    status: &str,
    next_id: u64,
) -> Result<(Vec<Entry>, Vec<parts::Img>)> {
    let mut images = Vec::new();
    let status: Arc<str> = Arc::from(status);
    let entries = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(Entry::new(
                next_id + i as u64,
                status.clone(),
                encode_message(m, &mut images)?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok((entries, images))
}

impl Op {
    fn apply(&self, st: &KeyState) -> Result<(OpResult, Option<Change>)> {
        let view = &st.view;
        Ok(match self {
            Op::Add(msgs, status, pos) => {
                if msgs.is_empty() {
                    return Ok((OpResult::Nothing, None));
                }
                let (entries, new_images) = new_entries(msgs, status, view.next_id)?;
                let ops = vec![DeltaOp::Add(*pos, entries)];
                let change = Change {
                    view: apply_ops(view, &ops),
                    ops: Some(ops),
                    new_images,
                };
                (OpResult::Nothing, Some(change))
            }
            Op::Set(msgs, status) => {
                let (entries, new_images) = new_entries(msgs, status, view.next_id)?;
                let next_id = view.next_id + entries.len() as u64;
                let view = View {
                    entries: Arc::new(entries),
                    next_id,
                    present: true,
                    home: view.home.clone(),
                };
                let change = Change {
                    view,
                    ops: None,
                    new_images,
                };
                (OpResult::Nothing, Some(change))
            }
            Op::Remove(select, one) => {
                let ids: std::collections::HashSet<u64> = select.ids(view).into_iter().collect();
                let chosen: Vec<&Entry> = view
                    .entries
                    .iter()
                    .filter(|e| ids.contains(&e.id))
                    .collect();
                let msgs = st.messages(chosen.iter().copied())?;
                let result = if *one {
                    OpResult::One(msgs.into_iter().next())
                } else {
                    OpResult::List(msgs)
                };
                if chosen.is_empty() {
                    return Ok((result, None));
                }
                let ops = vec![DeltaOp::Delete(chosen.iter().map(|e| e.id).collect())];
                let change = Change {
                    view: apply_ops(view, &ops),
                    ops: Some(ops),
                    new_images: vec![],
                };
                (result, Some(change))
            }
            Op::Clear => {
                if view.entries.is_empty() && !view.present {
                    return Ok((OpResult::Nothing, None));
                }
                let msgs = st.messages(view.entries.iter())?;
                let change = Change {
                    view: View {
                        entries: Arc::new(vec![]),
                        next_id: view.next_id,
                        present: false,
                        home: view.home.clone(),
                    },
                    ops: None,
                    new_images: vec![],
                };
                (OpResult::List(msgs), Some(change))
            }
            Op::Archive(n) => {
                let chosen: Vec<&Entry> = view
                    .entries
                    .iter()
                    .filter(|e| &*e.status == ACTIVE)
                    .take(*n)
                    .collect();
                let msgs = st.messages(chosen.iter().copied())?;
                if chosen.is_empty() {
                    return Ok((OpResult::List(msgs), None));
                }
                let ops = vec![DeltaOp::Archive(chosen.iter().map(|e| e.id).collect())];
                let change = Change {
                    view: apply_ops(view, &ops),
                    ops: Some(ops),
                    new_images: vec![],
                };
                (OpResult::List(msgs), Some(change))
            }
        })
    }
}

/// The message logs of one namespace's keys, with this process's cache.
#[derive(Debug)]
pub struct ChatLog {
    gens: Generations,
    opts: ChatOptions,
    ids: StepIds,
    inv: String,
    cache: Mutex<HashMap<String, KeyState>>,
}

fn steps_of(sid: &str, inv: &str, page: PageRequest) -> ListSteps {
    ListSteps {
        session: SessionRef::of_id(sid),
        invocation_id: Some(inv.to_string()),
        page,
    }
}

impl ChatLog {
    pub fn new(gens: Generations, opts: ChatOptions) -> Self {
        let ids = StepIds::new(gens.kind(), gens.namespace());
        let inv = li1::invocation_id(gens.kind(), gens.namespace(), None);
        ChatLog {
            gens,
            opts,
            ids,
            inv,
            cache: Mutex::new(HashMap::new()),
        }
    }

    // ------------------------------------------------------------------ cache
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyState>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkout(&self, key: &str) -> KeyState {
        self.locked()
            .get(key)
            .cloned()
            .unwrap_or_else(|| KeyState::new(key))
    }

    fn commit(&self, st: &KeyState) {
        let mut cache = self.locked();
        let newer = match cache.get(&st.key) {
            None => true,
            Some(cur) => {
                (st.generation, st.seq, st.confirmed) >= (cur.generation, cur.seq, cur.confirmed)
            }
        };
        if newer {
            cache.insert(st.key.clone(), st.clone());
        }
    }

    /// Drops what this process has cached (of one key, or all).
    pub fn forget(&self, key: Option<&str>) {
        match key {
            None => self.locked().clear(),
            Some(k) => {
                self.locked().remove(k);
            }
        }
    }

    fn fresh(&self, st: &KeyState) -> bool {
        st.loaded
            && st
                .confirmed
                .is_some_and(|t| t.elapsed().as_secs_f64() <= self.opts.max_staleness)
    }

    // ------------------------------------------------------------------ operations
    /// The key's log, up to date (or fresh enough).
    pub async fn read(&self, store: &dyn SessionStore, key: &str) -> Result<KeyState> {
        let mut st = self.checkout(key);
        if !self.fresh(&st) {
            if let Err(e) = self.refresh(store, &mut st).await {
                self.forget(Some(key));
                return Err(e);
            }
            self.commit(&st);
        }
        Ok(st)
    }

    /// Runs an operation on the key's log and stores its change.
    pub async fn write(&self, store: &dyn SessionStore, key: &str, op: &Op) -> Result<OpResult> {
        let mut st = self.checkout(key);
        match self.write_op(store, &mut st, op).await {
            Ok(r) => {
                self.commit(&st);
                Ok(r)
            }
            Err(e) => {
                self.forget(Some(key));
                Err(e)
            }
        }
    }

    /// The keys of this namespace that have a session (found through session metadata), each caught up.
    pub async fn keys(&self, store: &dyn SessionStore) -> Result<Vec<KeyState>> {
        let mut ids = Vec::new();
        let mut token = None;
        loop {
            let page = store
                .list_sessions(PageRequest {
                    max_results: Some(1000),
                    next_token: token,
                })
                .await?;
            ids.extend(page.items.into_iter().map(|s| s.id));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let marker = li1::marker_key(self.gens.kind(), self.gens.namespace());
        let mut keys = std::collections::BTreeSet::new();
        for chunk in ids.chunks(32) {
            let got = join_all(
                chunk
                    .iter()
                    .map(|sid| store.get_session(SessionRef::of_id(sid))),
            )
            .await;
            for s in got.into_iter().flatten() {
                for text in [
                    s.metadata.get(crate::saver::layout::META_THREAD),
                    s.metadata.get(&marker),
                ]
                .into_iter()
                .flatten()
                {
                    if let Some((kind, ns, key, _)) = super::parse_thread_id(text) {
                        if kind == self.gens.kind() && ns == self.gens.namespace() {
                            keys.insert(key);
                        }
                    }
                }
            }
        }
        let keys: Vec<String> = keys.into_iter().collect();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_BATCH) {
            let mut states: Vec<KeyState> = chunk.iter().map(|k| self.checkout(k)).collect();
            let done = join_all(states.iter_mut().map(|st| self.refresh(store, st))).await;
            for r in done {
                r?;
            }
            for st in &states {
                self.commit(st);
            }
            out.extend(states);
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ reading
    /// Whether a newer generation may exist: only after a marker, a failure to write, a deleted session,
    /// or an idle time after which the session may have expired (and another process moved on).
    fn needs_probe(&self, st: &KeyState) -> bool {
        if st.moved || st.frozen || st.dead {
            return true;
        }
        st.seq > 0
            && self.gens.now_ms() - st.last_time_ms >= self.opts.idle_timeout_ms - IDLE_MARGIN_MS
    }

    /// Brings the cached log up to date: the key's newest generation, caught up.
    async fn refresh(&self, store: &dyn SessionStore, st: &mut KeyState) -> Result<()> {
        if !st.loaded || st.sid.is_none() {
            *st = KeyState::new(&st.key);
            let (sid, user) = self.gens.resolve_first(store, &st.key).await?;
            let Some(sid) = sid else {
                st.loaded = true;
                st.confirmed = Some(Instant::now());
                return Ok(());
            };
            st.sid = Some(sid);
            st.user_session = user;
        }
        self.catch_up(store, st).await?;
        while self.needs_probe(st) {
            let Some(sid) = self
                .gens
                .resolve(store, &st.key, st.generation + 1, false)
                .await?
            else {
                break;
            };
            let (generation, sid) = self
                .gens
                .newest(store, &st.key, st.generation + 1, sid)
                .await?;
            if generation == st.generation + 1 {
                if !st.moved && !st.dead {
                    self.catch_up(store, st).await?; // the next generation exists: this one is final now
                }
                let base = st.view.clone();
                st.enter(generation, sid, Some(base));
            } else {
                st.enter(generation, sid, None);
            }
            self.catch_up(store, st).await?;
        }
        st.loaded = true;
        st.confirmed = Some(Instant::now());
        Ok(())
    }

    /// The last view of an earlier generation (and its images), for a reader that skipped it.
    async fn final_view(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
    ) -> Result<(View, Images)> {
        let sid = if generation == 0 {
            self.gens.resolve_first(store, key).await?.0
        } else {
            self.gens.resolve(store, key, generation, false).await?
        };
        let Some(sid) = sid else {
            return Ok((View::default(), Images::new()));
        };
        let mut tmp = KeyState::new(key);
        tmp.generation = generation;
        tmp.sid = Some(sid);
        tmp.base_unknown = generation > 0;
        Box::pin(self.catch_up(store, &mut tmp)).await?;
        let images = Arc::try_unwrap(tmp.images).unwrap_or_else(|a| (*a).clone());
        Ok((tmp.view, images))
    }

    /// Steps of the generation newer than `st.seq`, oldest first: (seq, step time in ms); `None` if the
    /// session is gone. A peek at a few newest steps first (usually all there is to learn), full pages
    /// when more is new.
    async fn list(
        &self,
        store: &dyn SessionStore,
        st: &mut KeyState,
    ) -> Result<Option<Vec<(u64, i64)>>> {
        let sid = st.sid.clone().expect("a session");
        let mut found: BTreeMap<u64, i64> = BTreeMap::new();
        let mut token = None;
        let mut limit = if st.seq > 0 { LIST_PEEK } else { 1000 };
        let mut restarted = limit == 1000;
        loop {
            let page = PageRequest {
                max_results: Some(limit),
                next_token: token.take(),
            };
            let page = match store
                .list_invocation_steps(steps_of(&sid, &self.inv, page))
                .await
            {
                Ok(p) => p,
                Err(e) if invocation_missing(&e) => {
                    st.inv_ready = false;
                    return Ok(Some(vec![]));
                }
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            st.inv_ready = true;
            let mut lowest: Option<u64> = None;
            for s in &page.items {
                let Some(seq) = self.ids.log_seq(&s.step_id) else {
                    continue;
                };
                let t = s.time.div_euclid(1000);
                st.last_time_ms = st.last_time_ms.max(t);
                lowest = Some(lowest.map_or(seq, |l| l.min(seq)));
                if seq > st.seq {
                    found.insert(seq, t);
                }
            }
            token = page.next_token;
            if token.is_none() || lowest.is_some_and(|l| l <= st.seq + 1) {
                break;
            }
            if !restarted {
                restarted = true;
                token = None;
                limit = 1000;
                found.clear();
            }
        }
        Ok(Some(found.into_iter().collect()))
    }

    /// Fetches steps (concurrently, in batches): seq → part, or `None` when absent or not ours.
    async fn get_parts(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        seqs: &[u64],
    ) -> Result<HashMap<u64, Option<Arc<Part>>>> {
        let mut out = HashMap::new();
        for batch in seqs.chunks(GET_BATCH) {
            let got = join_all(batch.iter().map(|&s| async move {
                let step_id = self
                    .ids
                    .log_step(s)
                    .ok_or_else(|| Error::validation(format!("step number {s} is beyond 2**48")))?;
                store
                    .get_invocation_step(GetStep {
                        session: SessionRef::of_id(sid),
                        invocation_id: self.inv.clone(),
                        step_id,
                    })
                    .await
            }))
            .await;
            for (&s, r) in batch.iter().zip(got) {
                let part = match r {
                    Ok(step) => decode_part(s, &step).map(Arc::new),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => return Err(e),
                };
                out.insert(s, part);
            }
        }
        Ok(out)
    }

    /// The number of parts of the event starting at `s` when they are all there.
    fn complete(parts: &HashMap<u64, Option<Arc<Part>>>, s: u64) -> Option<u64> {
        let head = parts.get(&s)?.as_ref()?;
        if head.p != 0 {
            return None;
        }
        for j in 1..head.n {
            let q = parts.get(&(s + j))?.as_ref()?;
            if q.nonce != head.nonce || q.p != j {
                return None;
            }
        }
        Some(head.n)
    }

    /// Reads the generation's new steps into `st`. New steps are fetched newest first, and the fetching
    /// stops at a complete state event (a cold read costs one listing and about `snapshot_every` gets).
    async fn catch_up(&self, store: &dyn SessionStore, st: &mut KeyState) -> Result<()> {
        let sid = st.sid.clone().expect("a session");
        let Some(listed) = self.list(store, st).await? else {
            // The session was deleted: its data is gone.
            st.dead = true;
            st.view = View {
                next_id: st.view.next_id,
                ..View::default()
            };
            st.images = Arc::new(Images::new());
            st.base_unknown = false;
            return Ok(());
        };
        let mut images: Images = st.images.as_ref().clone();
        let mut parts: HashMap<u64, Option<Arc<Part>>> = st
            .parts
            .iter()
            .map(|(k, v)| (*k, Some(v.clone())))
            .collect();
        let mut state_at = None;
        let mut hi = st.seq;
        if let Some(&(last, _)) = listed.last() {
            hi = last;
            let mut todo: Vec<u64> = listed.iter().rev().map(|&(s, _)| s).collect();
            let mut size = (self.opts.snapshot_every as usize).clamp(1, GET_BATCH); // a state is within that many
            while !todo.is_empty() {
                let rest = todo.split_off(size.min(todo.len()));
                let batch = std::mem::replace(&mut todo, rest);
                size = GET_BATCH;
                parts.extend(self.get_parts(store, &sid, &batch).await?);
                let low = *batch.iter().min().expect("not empty");
                for s in (low..=hi).rev() {
                    let is_state = matches!(parts.get(&s), Some(Some(p)) if p.p == 0 && p.kind.as_deref() == Some("state"));
                    if is_state && Self::complete(&parts, s).is_some() {
                        state_at = Some(s);
                        break;
                    }
                }
                if state_at.is_some() {
                    break;
                }
            }
        }
        let mut view = st.view.clone();
        let mut s = st.applied + 1;
        if let Some(at) = state_at {
            s = at;
            st.base_unknown = false;
        } else if st.base_unknown && !st.has_state {
            let (v, old) = self.final_view(store, &st.key, st.generation - 1).await?;
            view = v;
            images.extend(old);
            st.base_unknown = false;
        }
        while s <= hi {
            let Some(Some(p)) = parts.get(&s) else {
                s += 1; // absent, or not ours
                continue;
            };
            if p.p != 0 {
                s += 1; // an orphan part, or a part consumed earlier
                continue;
            }
            if s + p.n - 1 > hi {
                break; // an incomplete tail: maybe still being written
            }
            let Some(n) = Self::complete(&parts, s) else {
                s += 1; // broken: another writer took one of its seqs
                continue;
            };
            let evt: Vec<Arc<Part>> = (0..n)
                .map(|j| parts[&(s + j)].clone().expect("complete"))
                .collect();
            let text: String = evt.iter().map(|q| q.text.as_str()).collect();
            let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::internal(format!(
                    "key {:?}: the event at step {s} of session {sid} is not readable: {e}",
                    st.key
                ))
            })?;
            match body.get("k").and_then(|k| k.as_str()) {
                Some("state") => {
                    view = view_of_state(&body, &sid);
                    st.has_state = true;
                    st.state_end = s + n - 1;
                }
                Some("delta") if st.has_state => view = apply_ops(&view, &ops_of_delta(&body)),
                Some("moved") => st.moved = true,
                _ => {}
            }
            for q in &evt {
                for (k, img) in q.images.iter().enumerate() {
                    images.insert((sid.clone(), q.seq, k), img.clone());
                }
            }
            s += n;
            if st.moved {
                s = hi + 1;
                break;
            }
        }
        st.applied = s - 1;
        st.seq = st.seq.max(hi);
        st.parts = parts
            .into_iter()
            .filter_map(|(q, v)| Some((q, v?)))
            .filter(|(q, _)| *q > st.applied)
            .collect();
        st.view = view;
        // Images of older steps that a state refers to, then drop what no entry uses.
        let wanted = st.view.refs();
        let mut missing: Vec<u64> = wanted
            .iter()
            .filter(|k| !images.contains_key(*k) && k.0 == sid)
            .map(|k| k.1)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            for (seq, p) in self.get_parts(store, &sid, &missing).await? {
                for (k, img) in p.iter().flat_map(|p| p.images.iter().enumerate()) {
                    images.insert((sid.clone(), seq, k), img.clone());
                }
            }
        }
        images.retain(|k, _| wanted.contains(k));
        st.images = Arc::new(images);
        Ok(())
    }

    // ------------------------------------------------------------------ writing
    async fn ensure_invocation(&self, store: &dyn SessionStore, st: &mut KeyState) -> Result<()> {
        let sid = st.sid.clone().expect("a session");
        let created = store
            .create_invocation(CreateInvocation {
                session: SessionRef::of_id(&sid),
                invocation_id: Some(self.inv.clone()),
                description: Some(truncate_chars(
                    &format!("llama-index chat log ({})", self.gens.namespace()),
                    200,
                )),
            })
            .await;
        match created {
            Err(e) if is_not_found(&e) => {
                st.dead = true;
                return Ok(());
            }
            Ok(_) if st.user_session => self.mark(store, &sid, &st.key).await,
            // A conflict means it exists, or that the session is read-only: the put will tell.
            _ => {}
        }
        st.inv_ready = true;
        Ok(())
    }

    /// Names the key in the metadata of a session the caller chose, so `keys` finds it (best effort).
    async fn mark(&self, store: &dyn SessionStore, sid: &str, key: &str) {
        let value = self.gens.tid(key, 0);
        if crate::validate::char_len(&value) > 5000 {
            return;
        }
        let Ok(s) = store.get_session(SessionRef::of_id(sid)).await else {
            return;
        };
        let mut metadata = s.metadata;
        metadata.insert(
            li1::marker_key(self.gens.kind(), self.gens.namespace()),
            value,
        );
        let _ = store
            .update_session(UpdateSession {
                session: SessionRef::of_id(sid),
                metadata: Some(metadata),
            })
            .await;
    }

    /// Puts an event's parts in order: `Ok(last seq)`, or (the error, the seq that failed).
    async fn put(
        &self,
        store: &dyn SessionStore,
        st: &mut KeyState,
        payloads: Vec<crate::model::Payload>,
        first: u64,
    ) -> Result<std::result::Result<u64, (Error, u64)>> {
        let sid = st.sid.clone().expect("a session");
        // Step times grow with seqs: newest first is highest seq first.
        let t0 = self.gens.now_ms().max(st.last_time_ms + 1);
        let n = payloads.len() as u64;
        for (j, payload) in payloads.into_iter().enumerate() {
            let seq = first + j as u64;
            let step_id = self.ids.log_step(seq).ok_or_else(|| {
                Error::validation(format!(
                    "key {:?}: step number {seq} is beyond 2**48",
                    st.key
                ))
            })?;
            let put = store
                .put_invocation_step(PutStep {
                    session: SessionRef::of_id(&sid),
                    invocation_id: self.inv.clone(),
                    step_id: Some(step_id),
                    time: (t0 + j as i64) * 1000,
                    payload,
                })
                .await;
            if let Err(e) = put {
                return Ok(Err((e, seq)));
            }
        }
        st.last_time_ms = t0 + n as i64 - 1;
        Ok(Ok(first + n - 1))
    }

    /// Why a put failed, into the cache: `true` when another writer took the seq. Errors it cannot
    /// handle are returned.
    async fn after_put_error(
        &self,
        store: &dyn SessionStore,
        st: &mut KeyState,
        err: Error,
        seq: u64,
    ) -> Result<bool> {
        match err.code {
            ErrorCode::Conflict => {
                let known = st.seq;
                self.catch_up(store, st).await?;
                if st.seq >= seq || st.seq > known || st.dead {
                    return Ok(true);
                }
                let sid = st.sid.clone().expect("a session");
                match store.get_session(SessionRef::of_id(&sid)).await {
                    Err(e) if is_not_found(&e) => {
                        st.dead = true;
                        Ok(false)
                    }
                    Err(e) => Err(e),
                    Ok(s) if s.status != SessionStatus::Active => {
                        st.frozen = true; // EXPIRED or ENDED: read-only for good (its log, just read, is final)
                        Ok(false)
                    }
                    Ok(_) => Err(err),
                }
            }
            ErrorCode::ServiceQuotaExceeded => {
                self.catch_up(store, st).await?;
                st.frozen = true;
                Ok(false)
            }
            ErrorCode::ResourceNotFound => {
                if invocation_missing(&err) {
                    st.inv_ready = false;
                } else {
                    st.dead = true;
                }
                Ok(false)
            }
            _ => Err(err),
        }
    }

    /// Moves the key to a new session: the next generation (or the same one, bound again, if its session
    /// was deleted on a store whose index forgets deleted sessions). The current view is final.
    async fn advance(&self, store: &dyn SessionStore, st: &mut KeyState) -> Result<()> {
        let key = st.key.clone();
        let (generation, sid) = match (&st.sid, st.dead) {
            (Some(dead), true) => {
                self.gens
                    .replace_dead(store, &key, st.generation, dead)
                    .await?
            }
            _ => self.gens.next(store, &key, st.generation).await?,
        };
        // The view carries on into the next generation; a reader further on reads it there.
        let base = (generation <= st.generation + 1).then(|| st.view.clone());
        st.enter(generation, sid, base);
        self.catch_up(store, st).await
    }

    async fn write_op(
        &self,
        store: &dyn SessionStore,
        st: &mut KeyState,
        op: &Op,
    ) -> Result<OpResult> {
        let mut refreshed = false;
        let mut contention = 0;
        for _ in 0..MAX_ATTEMPTS {
            back_off(contention).await;
            if !st.loaded {
                self.refresh(store, st).await?;
                refreshed = true;
            }
            let Some(sid) = st.sid.clone() else {
                // A new key.
                let sid = self.gens.bind(store, &st.key, 0).await?;
                let base = st.view.clone();
                st.enter(0, sid, Some(base));
                self.catch_up(store, st).await?;
                continue;
            };
            if st.frozen || st.moved || st.dead {
                self.advance(store, st).await?;
                continue;
            }
            let (result, change) = op.apply(st)?;
            let Some(change) = change else {
                // Nothing to write: the answer stands if the cache is current.
                if refreshed || self.fresh(st) {
                    return Ok(result);
                }
                self.refresh(store, st).await?;
                refreshed = true;
                continue;
            };
            if !st.inv_ready {
                self.ensure_invocation(store, st).await?;
                if st.dead {
                    continue;
                }
            }
            let first = st.seq + 1;
            let as_state = change.ops.is_none()
                || !st.has_state
                || first - st.state_end >= self.opts.snapshot_every;
            let (mut view, new_images) = (change.view, change.new_images);
            let new_images =
                if as_state && !st.has_state && view.home.as_deref().is_some_and(|h| h != sid) {
                    // A new session: the images go again.
                    let (v, imgs) = rehome(&view, &st.images, new_images)?;
                    view = v;
                    imgs
                } else {
                    new_images
                };
            let plan = parts::plan(&new_images, self.opts.max_step_bytes);
            let placed = Arc::new(place_images(&view.entries, first, &plan.place));
            view.entries = placed;
            let (kind, body) = if as_state {
                ("state", state_body(&st.key, &view))
            } else {
                let ops: Vec<DeltaOp> = change
                    .ops
                    .expect("a delta")
                    .into_iter()
                    .map(|op| match op {
                        DeltaOp::Add(pos, entries) => {
                            DeltaOp::Add(pos, place_images(&entries, first, &plan.place))
                        }
                        other => other,
                    })
                    .collect();
                ("delta", delta_body(&ops))
            };
            let place = plan.place.clone();
            let payloads = parts::assemble(kind, &body, plan, &parts::nonce());
            let n = payloads.len() as u64;
            if n + 2 > self.opts.max_steps_per_session {
                return Err(Error::validation(format!(
                    "key {:?}: the state needs {n} steps, more than a session holds",
                    st.key
                )));
            }
            let last = first + n - 1;
            if last + 1 > self.opts.max_steps_per_session {
                // No room: close the generation with a marker (the last slot is kept for it), then move on.
                let body = format!(r#"{{"k":"moved","gen":{}}}"#, st.generation + 1);
                let marker = parts::assemble(
                    "moved",
                    &body,
                    parts::plan(&[], self.opts.max_step_bytes),
                    &parts::nonce(),
                );
                match self.put(store, st, marker, first).await? {
                    Ok(at) => {
                        st.seq = at;
                        st.applied = at;
                        st.parts.clear();
                        st.moved = true;
                    }
                    Err((e, at)) => {
                        if self.after_put_error(store, st, e, at).await? {
                            contention += 1;
                        }
                    }
                }
                continue;
            }
            if let Err((e, at)) = self.put(store, st, payloads, first).await? {
                if self.after_put_error(store, st, e, at).await? {
                    contention += 1;
                }
                continue;
            }
            // Stored: the cache takes the new view, and the images just stored under their references.
            let home = if as_state || view.home.is_none() {
                Some(sid.clone())
            } else {
                view.home.clone()
            };
            view.home = home;
            let mut images: Images = st.images.as_ref().clone();
            for (img, &(part, k)) in new_images.iter().zip(&place) {
                images.insert((sid.clone(), first + part, k), img.clone());
            }
            let wanted = view.refs();
            images.retain(|k, _| wanted.contains(k));
            st.view = view;
            st.images = Arc::new(images);
            st.seq = last;
            st.applied = last;
            st.parts.clear();
            if as_state {
                st.has_state = true;
                st.state_end = last;
            }
            st.base_unknown = false;
            st.loaded = true;
            st.confirmed = Some(Instant::now());
            return Ok(result);
        }
        Err(Error::new(
            ErrorCode::Throttling,
            format!(
                "key {:?}: gave up after {MAX_ATTEMPTS} attempts (other writers kept taking the next step)",
                st.key
            ),
        ))
    }
}
