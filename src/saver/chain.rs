//! A thread is a chain of sessions, its generations. A session holds at most the service's steps (1,000),
//! expires after an idle hour and cannot be written once ended; a thread outlives all three: when its
//! session refuses a write for one of these reasons, the thread moves on to a new session (the next
//! generation), and the write goes there.
//!
//! - A new generation is seeded with the latest checkpoint of every namespace and its pending writes, each
//!   in its own step (ids, parents and writes kept), so that `get_tuple` of the latest checkpoint reads the
//!   newest session alone. Older checkpoints stay where they are, readable (an EXPIRED or ENDED session
//!   can still be read): reads by id and listings walk the chain, newest first; a checkpoint found in a
//!   newer generation (a seed) hides its older copy.
//! - Each generation names its predecessors in its session metadata (`langgraph:previous`, newest first,
//!   at most [`MAX_LISTED_PREVIOUS`]; `langgraph:generation` counts them), so the whole chain is known from
//!   its newest session in one request per 100 generations, and cached (links never change).
//! - Who moves a thread on: with a thread index, a compare-and-swap of the binding
//!   ([`crate::threads::ThreadIndex::rebind`]): two writers that move one thread at once agree on one next session,
//!   the loser drops its own. A thread whose id is a session id (no index) is moved on through its old
//!   session: a claim invocation (created once; a second writer's is refused) and the successor's id in
//!   the old session's metadata (`langgraph:next`), which readers follow. That needs the old session to
//!   still take writes, so it works for a full session; an EXPIRED or ENDED one cannot point anywhere, and
//!   the error says to use [`Saver::continue_thread`] (a new session continuing the thread, whose id is
//!   the new thread id) or a thread index.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::write::Rec;
use super::{LIST_BATCH, PutWrites, Saver, drop_session, is_code, locked, sref};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{CreateSession, ResourceArn, SessionStatus};
use crate::saver::{CheckpointRecord, layout, layout::Envelope};
use crate::store::SessionStore;
use crate::threads::successor;

/// Predecessors a generation lists in its metadata (each id takes 37 of a value's 5,000 characters).
pub const MAX_LISTED_PREVIOUS: usize = 100;

/// The predecessors listed in a session's metadata, newest first, and its generation number.
fn links(metadata: &BTreeMap<String, String>) -> (Vec<String>, usize) {
    let listed: Vec<String> = metadata
        .get(layout::META_PREVIOUS)
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let generation = metadata
        .get(layout::META_GENERATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(listed.len());
    (listed, generation)
}

impl Saver {
    /// Whether a refused write means the session is done with (full, expired, ended) and the thread must
    /// move on. A conflict other than "already exists" is checked against the session's status (the
    /// service's messages are no contract).
    pub(super) async fn needs_rollover(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        e: &Error,
    ) -> Result<bool> {
        match e.code {
            ErrorCode::ServiceQuotaExceeded => Ok(true),
            ErrorCode::Conflict if !e.is_already_exists() => {
                match store.get_session(sref(sid)).await {
                    Ok(s) => Ok(s.status != SessionStatus::Active),
                    Err(_) => Ok(false),
                }
            }
            _ => Ok(false),
        }
    }

    /// The sessions of a thread whose newest session is `newest`, newest first.
    pub(super) async fn generations(
        &self,
        store: &dyn SessionStore,
        newest: &str,
    ) -> Result<Vec<String>> {
        if let Some(chain) = locked(&self.chains).get(newest) {
            return Ok(chain.clone());
        }
        let mut chain = vec![newest.to_string()];
        let mut at = newest.to_string();
        let mut seen = HashSet::from([newest.to_string()]);
        loop {
            let s = match store.get_session(sref(&at)).await {
                Ok(s) => s,
                // A predecessor deleted by hand: the chain ends there.
                Err(e) if is_code(&e, ErrorCode::ResourceNotFound) => break,
                Err(e) => return Err(e),
            };
            let (listed, generation) = links(&s.metadata);
            let more = generation > listed.len();
            let Some(last) = listed.last().cloned() else {
                break;
            };
            for id in listed {
                if seen.insert(id.clone()) {
                    chain.push(id);
                }
            }
            if !more || at == last {
                break;
            }
            at = last;
        }
        locked(&self.chains).insert(newest.to_string(), chain.clone());
        Ok(chain)
    }

    /// The thread's session when it is no longer `sid` (another process moved the thread on), else `None`.
    pub(super) async fn newer_session(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
    ) -> Result<Option<String>> {
        if let Some(index) = store.thread_index() {
            if let Some(bound) = index.lookup(thread_id).await? {
                return Ok((bound != sid).then_some(bound));
            }
        }
        let s = store.get_session(sref(sid)).await?;
        if !s.metadata.contains_key(layout::META_NEXT) {
            return Ok(None);
        }
        let newest = successor::follow(store, sid, layout::META_NEXT).await?;
        Ok((newest != sid).then_some(newest))
    }

    /// Moves a thread on from `old` (full, expired or ended): a new session seeded from it, to which the
    /// thread then points. Returns the thread's session afterwards (another writer's, if one moved it
    /// first).
    pub(super) async fn advance(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        old: &str,
    ) -> Result<String> {
        let _one_at_a_time = self.advancing.lock().await;
        if let Some(now) = self.cached_thread(thread_id) {
            if now != old {
                return Ok(now);
            }
        }
        // Bound in the index, or a thread whose id is a session id (found through `langgraph:next`).
        let bound = match store.thread_index() {
            Some(index) => index.lookup(thread_id).await?,
            None => None,
        };
        let indexed = bound.is_some();
        // Another process may have moved it on already.
        let current = match bound {
            Some(b) => b,
            None => successor::follow(store, old, layout::META_NEXT).await?,
        };
        if current != old {
            self.remember_thread(thread_id, &current);
            return Ok(current);
        }
        if !indexed {
            if let Some(next) = self.claim_successor(store, thread_id, old).await? {
                self.remember_thread(thread_id, &next);
                return Ok(next);
            }
        }
        let thread_meta = Some(thread_id);
        let new = self.new_generation(store, thread_meta, old).await?;
        let winner = if indexed {
            store
                .thread_index()
                .expect("indexed")
                .rebind(thread_id, old, &new)
                .await?
        } else {
            successor::point(store, old, &new, layout::META_NEXT).await?;
            new.clone()
        };
        if winner != new {
            let _ = drop_session(store, &new).await;
        }
        self.remember_thread(thread_id, &winner);
        Ok(winner)
    }

    /// No thread index: the right to move the thread on from `old` is claimed in it (see
    /// [`successor`]). `None`: ours to do; else the successor another writer made.
    async fn claim_successor(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        old: &str,
    ) -> Result<Option<String>> {
        let claimed = successor::claim(
            store,
            old,
            layout::META_NEXT,
            "langgraph: the thread moves on to a new session",
            &format!("thread {thread_id:?}"),
        )
        .await;
        match claimed {
            Ok(successor::Claim::Ours) => Ok(None),
            Ok(successor::Claim::Theirs(next)) => Ok(Some(next)),
            Err(e) if e.code == ErrorCode::Conflict && !e.is_already_exists() => {
                Err(Error::conflict(format!(
                    "thread {thread_id:?}: its session {old} no longer accepts writes ({}), and the thread id is \
                     that session's id, with no thread index to find a successor by: call \
                     continue_thread({thread_id:?}) to carry the thread on in a new session (it returns the new \
                     thread id; the history stays readable through it), or use a store with a thread index",
                    e.message
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// A new session continuing the chain whose newest session is `old`: it lists its predecessors, keeps
    /// `old`'s tags, and is seeded with the latest checkpoint of each namespace and its pending writes.
    pub(super) async fn new_generation(
        &self,
        store: &dyn SessionStore,
        thread_meta: Option<&str>,
        old: &str,
    ) -> Result<String> {
        let chain = self.generations(store, old).await?;
        let info = store.get_session(sref(old)).await?;
        let (_, old_generation) = links(&info.metadata);
        // The thread's own metadata carries on; the chain's keys are this session's.
        let mut metadata = info.metadata.clone();
        metadata.remove(layout::META_NEXT);
        metadata.remove(layout::META_THREAD);
        if let Some(t) = thread_meta {
            if crate::validate::char_len(t) <= 5000 {
                metadata.insert(layout::META_THREAD.to_string(), t.to_string());
            }
        }
        metadata.insert(layout::META_LAYOUT.into(), layout::LAYOUT.into());
        let listed: Vec<&str> = chain
            .iter()
            .take(MAX_LISTED_PREVIOUS)
            .map(String::as_str)
            .collect();
        metadata.insert(layout::META_PREVIOUS.into(), listed.join(" "));
        metadata.insert(
            layout::META_GENERATION.into(),
            (old_generation + 1).to_string(),
        );
        let tags = match ResourceArn::parse(&info.arn) {
            Ok(arn) => store.list_tags_for_resource(arn).await.unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        let (seeds, strays) = self.latest_per_namespace(store, old).await?;
        let s = store
            .create_session(CreateSession {
                encryption_key_arn: info.encryption_key_arn.clone(),
                metadata,
                tags,
            })
            .await?;
        locked(&self.created).insert(s.id.clone());
        let mut new_chain = vec![s.id.clone()];
        new_chain.extend(chain);
        locked(&self.chains).insert(s.id.clone(), new_chain);
        let thread_of_records = thread_meta.unwrap_or(&s.id).to_string();
        // Boxed: seeding writes records, which may move a session on (a recursion, never deeper than one).
        let seeded = Box::pin(async {
            self.write_seeds(store, &thread_of_records, &seeds, &s.id)
                .await?;
            self.carry_writes(store, &s.id, strays).await
        })
        .await;
        if let Err(e) = seeded {
            let _ = drop_session(store, &s.id).await;
            return Err(e);
        }
        Ok(s.id)
    }

    /// The latest checkpoint of each namespace of one session (this layout's), with its writes; and the
    /// writes of checkpoints the session does not hold (LangGraph may put a checkpoint's writes before the
    /// checkpoint: when that put found the session full, the checkpoint went to the next generation).
    async fn latest_per_namespace(
        &self,
        store: &dyn SessionStore,
        sid: &str,
    ) -> Result<(Vec<CheckpointRecord>, Vec<layout::WritesEnvelope>)> {
        let mut cursor = self.list_session(sid);
        let mut latest: HashMap<String, CheckpointRecord> = HashMap::new();
        loop {
            let batch = self.list_next(store, &mut cursor, LIST_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                // Newest first: the first of each namespace is its latest. The replaced saver's
                // checkpoints are not carried (they stay readable where they are).
                if r.channel_values.is_some() {
                    latest.entry(r.checkpoint_ns.clone()).or_insert(r);
                }
            }
            if cursor.namespaces_found(&latest) {
                break;
            }
        }
        // Writes of checkpoints newer than the latest of their namespace here: steps of writes whose
        // checkpoint has no step here, and batches newer than that latest checkpoint.
        let newest_of: HashMap<layout::Tag, i64> = latest
            .values()
            .map(|r| {
                let t = layout::uuid_time_ms(&r.checkpoint_id).unwrap_or(i64::MIN);
                (layout::ns_tag(&r.checkpoint_ns), t)
            })
            .collect();
        let mut candidates = Vec::new();
        // The listing above read the session's step summaries: they are used again, not fetched again.
        for (inv, steps) in cursor.listing.take().unwrap_or_default() {
            let Some(ns) = layout::parse_invocation(&inv) else {
                continue;
            };
            let floor = newest_of.get(&ns).copied().unwrap_or(i64::MIN);
            let own: HashSet<layout::Tag> = steps
                .iter()
                .filter(|s| layout::classify_step(&s.step_id).0 == layout::StepKind::Checkpoint)
                .map(|s| layout::classify_step(&s.step_id).1)
                .collect();
            for s in steps {
                match layout::classify_step(&s.step_id) {
                    (layout::StepKind::Batch, _) if s.time >= floor => candidates.push(s),
                    (layout::StepKind::Writes, t) if !own.contains(&t) => candidates.push(s),
                    _ => {}
                }
            }
        }
        let strays = self
            .fetch_all(store, sid, &candidates)
            .await?
            .into_iter()
            .filter_map(|e| match e {
                Envelope::Writes(w) => {
                    let ahead = match latest.get(&w.checkpoint_ns) {
                        Some(r) => w.checkpoint_id > r.checkpoint_id,
                        None => true,
                    };
                    ahead.then_some(w)
                }
                _ => None,
            })
            .collect();
        Ok((latest.into_values().collect(), strays))
    }

    /// Writes (of checkpoints put after them) into a new generation, as their calls made them: a batch
    /// step per namespace where they fit in one.
    async fn carry_writes(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        writes: Vec<layout::WritesEnvelope>,
    ) -> Result<()> {
        let mut by_ns: BTreeMap<String, Vec<Rec>> = BTreeMap::new();
        for w in writes {
            by_ns
                .entry(w.checkpoint_ns.clone())
                .or_default()
                .push(Rec::writes(PutWrites {
                    thread_id: w.thread_id,
                    checkpoint_ns: w.checkpoint_ns,
                    checkpoint_id: w.checkpoint_id,
                    task_id: w.task_id,
                    task_path: w.task_path,
                    writes: w.writes,
                })?);
        }
        for recs in by_ns.values() {
            self.write_grouped(store, sid, recs).await?;
        }
        Ok(())
    }

    /// Continues a thread in a new session, whose id becomes the thread id (returned): for a thread whose id
    /// is a session id that no longer accepts writes (EXPIRED, ENDED) where there is no thread index to
    /// move it on. Its history stays readable through the new id.
    pub async fn continue_thread(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
    ) -> Result<String> {
        let Some(old) = self.resolve(store, thread_id, false).await? else {
            return Err(Error::not_found(format!(
                "thread {thread_id:?} has no session to continue"
            )));
        };
        if self.deferred {
            self.flush_lanes(Some(&old))
                .await
                .map_err(|e| Self::thread_error(thread_id, e))?;
        }
        let new = self.new_generation(store, None, &old).await?;
        self.remember_thread(&new, &new);
        Ok(new)
    }
}
