//! The embedded store in this process's memory: the session model in Rust collections.
//!
//! It behaves as the SQLite store does (same checks, errors, lifecycle, quotas, newest-first order with
//! insertion order breaking ties, keyset pagination tokens, thread index); the store tests run against both.
//! It exists for speed: a write is a few map insertions under one lock, where a SQLite transaction (even on an
//! in-memory database) journals and rewrites several pages — on a LangGraph turn that was most of what this
//! store cost over LangGraph's own `InMemorySaver`. Nothing here outlives the process (a forked child gets a
//! copy, as it would of any memory).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::threads::ThreadIndex;

use super::encryption::{
    AtRest, Kept, Record, Sealing, metadata_from_json, metadata_json, open_invocations,
};
use super::payload::{decode_payload, encode_payload};
use super::retention::{self, Erasure, retained};
use super::{
    SessionStore, StoreConfig, already_ended, check_step_size, check_tag_count, delete_active,
    invocation_exists, not_found_invocation, not_found_session, not_found_step, require_writable,
    session_status, step_conflict, step_quota, tagged_error, tagged_session_ref, visible,
};
use crate::clock::Micros;
use crate::error::Result;
use crate::model::{
    CreateInvocation, CreateSession, GetStep, Invocation, ListSteps, Page, PageRequest, Payload,
    PutStep, ResourceArn, Session, SessionRef, SessionStatus, Step, StepSummary, UpdateSession,
};
use crate::token::{self, Cursor};
use crate::validate::SessionArn;

/// Newest-first listing keys: (time, seq), the sequence number breaking ties in insertion order.
type Key = (Micros, i64);

#[derive(Debug)]
struct SessionRec {
    seq: i64,
    id: String,
    arn: String,
    ended: bool,
    created_at: Micros,
    last_updated_at: Micros,
    /// Sealed when the session is encrypted (`store::encryption`).
    metadata: Kept<BTreeMap<String, String>>,
    encryption_key_arn: Option<String>,
    /// The wrapped data key of an encrypted session (`crypto::WrappedKey` bytes).
    wrapped: Option<Vec<u8>>,
    tags: BTreeMap<String, String>,
    step_count: u64,
    invocations: HashMap<String, InvocationRec>,
    invocations_newest: BTreeMap<Key, String>,
    steps: HashMap<String, StepRec>,
    /// Every step of the session: (step id, invocation id).
    steps_newest: BTreeMap<Key, (String, String)>,
}

#[derive(Debug)]
struct InvocationRec {
    description: Option<Kept<String>>,
    created_at: Micros,
    steps_newest: BTreeMap<Key, String>,
}

#[derive(Debug)]
struct StepRec {
    invocation_id: String,
    time: Micros,
    payload: Kept<Payload>,
}

#[derive(Debug, Default)]
struct State {
    /// One sequence for every row kind: only its order within a kind matters.
    next_seq: i64,
    sessions: HashMap<String, SessionRec>,
    sessions_newest: BTreeMap<Key, String>,
    /// Thread index: thread id → session id (a deleted session's bindings go with it).
    threads: HashMap<String, String>,
}

impl State {
    fn seq(&mut self) -> i64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn session(&self, sref: &SessionRef, cfg: &StoreConfig) -> Result<&SessionRec> {
        let s = self
            .sessions
            .get(&sref.id)
            .ok_or_else(|| not_found_session(&sref.raw))?;
        // An ARN must be this session's exact ARN: another region, account or partition names no session here.
        if sref.arn.is_some() && sref.raw != s.arn {
            return Err(not_found_session(&sref.raw));
        }
        // Another account's session does not exist for a handle that acts for one account; nor does a session
        // past retention.
        if !visible(&s.arn, cfg) || !retained(s.last_updated_at, cfg) {
            return Err(not_found_session(&sref.raw));
        }
        Ok(s)
    }

    fn session_mut(&mut self, sref: &SessionRef, cfg: &StoreConfig) -> Result<&mut SessionRec> {
        self.session(sref, cfg)?;
        Ok(self.sessions.get_mut(&sref.id).expect("found above"))
    }

    fn tagged(&self, arn: &ResourceArn, cfg: &StoreConfig) -> Result<&SessionRec> {
        self.session(&tagged_session_ref(arn), cfg)
            .map_err(|e| tagged_error(arn, e))
    }

    fn tagged_mut(&mut self, arn: &ResourceArn, cfg: &StoreConfig) -> Result<&mut SessionRec> {
        self.session_mut(&tagged_session_ref(arn), cfg)
            .map_err(|e| tagged_error(arn, e))
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl SessionRec {
    fn status(&self, cfg: &StoreConfig) -> SessionStatus {
        session_status(self.ended, self.last_updated_at, cfg)
    }

    /// The session as held (its metadata maybe sealed), to open outside the store's lock.
    fn raw(&self, cfg: &StoreConfig) -> RawSession {
        RawSession {
            session: Session {
                id: self.id.clone(),
                arn: self.arn.clone(),
                status: self.status(cfg),
                created_at: self.created_at,
                last_updated_at: self.last_updated_at,
                metadata: BTreeMap::new(),
                encryption_key_arn: self.encryption_key_arn.clone(),
            },
            metadata: self.metadata.clone(),
            wrapped: self.wrapped.clone(),
        }
    }

    /// The sealing of this session in a write that [`MemoryStore::prepare`]d `prepared`.
    fn sealing(&self, at_rest: &AtRest, prepared: Option<&Sealing>) -> Result<Sealing> {
        at_rest.check(prepared, &self.id, &self.arn, self.wrapped.as_deref())
    }

    fn require_writable(&self, cfg: &StoreConfig, what: &str) -> Result<()> {
        require_writable(&self.id, self.status(cfg), what)
    }

    fn invocation(&self, invocation_id: &str) -> Result<&InvocationRec> {
        self.invocations
            .get(invocation_id)
            .ok_or_else(|| not_found_invocation(&self.id, invocation_id))
    }
}

/// A session as held: its metadata still to open with its key.
struct RawSession {
    session: Session,
    metadata: Kept<BTreeMap<String, String>>,
    wrapped: Option<Vec<u8>>,
}

impl RawSession {
    fn open(self, sealing: &Sealing) -> Result<Session> {
        let mut session = self.session;
        session.metadata = sealing.get(Record::Metadata, self.metadata, metadata_from_json)?;
        Ok(session)
    }
}

/// One newest-first page of `index` after the request's cursor (as the SQLite store's keyset queries).
fn page<V, T>(
    index: &BTreeMap<Key, V>,
    keep: impl Fn(&V) -> bool,
    scope: &str,
    req: &PageRequest,
    cfg: &StoreConfig,
    map: impl Fn(&Key, &V) -> T,
) -> Result<Page<T>> {
    let cursor = token::start(scope, req.next_token.as_deref())?;
    let n = req.max_results.unwrap_or(cfg.default_page_size) as usize;
    let mut items = Vec::with_capacity(n.min(64));
    let mut next_token = None;
    let mut last: Key = (0, 0);
    let after_cursor = index.range(..(cursor.time, cursor.seq)).rev();
    for (key, v) in after_cursor.filter(|(_, v)| keep(v)) {
        if items.len() == n {
            next_token = Some(token::encode(
                scope,
                Cursor {
                    time: last.0,
                    seq: last.1,
                },
            ));
            break;
        }
        items.push(map(key, v));
        last = *key;
    }
    Ok(Page { items, next_token })
}

/// The embedded store in this process's memory. A clone is another handle on the same sessions.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    /// This handle's configuration: the store's, or one account's (see [`SessionStore::for_account`]).
    cfg: StoreConfig,
    state: Arc<Mutex<State>>,
    /// Encryption at rest (the same sealing as the file's: the same rules and errors, in memory).
    at_rest: Arc<AtRest>,
}

impl MemoryStore {
    pub fn new(cfg: StoreConfig) -> std::result::Result<Self, String> {
        cfg.validate()?;
        Ok(MemoryStore {
            at_rest: Arc::new(AtRest::new(cfg.key_source.clone())),
            cfg,
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation checks before it changes anything: a panic leaves no half-done change.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session as read: its metadata opened with its data key (from the cache, or unwrapped once).
    async fn finish(&self, raw: RawSession) -> Result<Session> {
        let s = &raw.session;
        let sealing = self
            .at_rest
            .sealing(&s.id, &s.arn, raw.wrapped.as_deref())
            .await?;
        raw.open(&sealing)
    }

    /// Before a write that seals records of a session: its sealing (see `AtRest::prepare`), checked again under
    /// the lock ([`SessionRec::sealing`]).
    async fn prepare(&self, sref: &SessionRef) -> Result<Option<Sealing>> {
        if !self.at_rest.enabled() {
            return Ok(None);
        }
        self.at_rest
            .prepare(&sref.id, || async {
                let st = self.state();
                let s = st.session(sref, &self.cfg)?;
                Ok((s.arn.clone(), s.wrapped.clone()))
            })
            .await
    }
}

/// Erasing in memory is dropping the records (and the session's data key).
#[async_trait]
impl Erasure for MemoryStore {
    async fn sweep(&self) -> Result<usize> {
        let Some(cutoff) = retention::cutoff(&self.cfg) else {
            return Ok(0);
        };
        let mut st = self.state();
        let expired: Vec<(String, Key)> = st
            .sessions
            .values()
            .filter(|s| s.last_updated_at <= cutoff)
            .map(|s| (s.id.clone(), (s.created_at, s.seq)))
            .collect();
        for (id, key) in &expired {
            st.sessions.remove(id);
            st.sessions_newest.remove(key);
            self.at_rest.forget(id);
        }
        st.threads
            .retain(|_, sid| !expired.iter().any(|(id, _)| id == sid));
        Ok(expired.len())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, req: CreateSession) -> Result<Session> {
        let cfg = &self.cfg;
        let id = new_id();
        let arn = SessionArn::format(&cfg.partition, &cfg.region, &cfg.account_id, &id);
        // The key decision first: a session that cannot be encrypted as asked is not stored at all.
        let (new_key, sealing) = self
            .at_rest
            .new_session(req.encryption_key_arn.as_deref(), &arn)
            .await?;
        let mut st = self.state();
        let now = cfg.clock.now_us();
        let seq = st.seq();
        let rec = SessionRec {
            seq,
            id: id.clone(),
            arn: arn.clone(),
            ended: false,
            created_at: now,
            last_updated_at: now,
            metadata: sealing.keep(Record::Metadata, req.metadata.clone(), metadata_json),
            encryption_key_arn: req.encryption_key_arn.clone(),
            wrapped: new_key.as_ref().map(|k| k.wrapped.clone()),
            tags: req.tags,
            step_count: 0,
            invocations: HashMap::new(),
            invocations_newest: BTreeMap::new(),
            steps: HashMap::new(),
            steps_newest: BTreeMap::new(),
        };
        let session = Session {
            id: id.clone(),
            arn: arn.clone(),
            status: rec.status(cfg),
            created_at: now,
            last_updated_at: now,
            metadata: req.metadata,
            encryption_key_arn: req.encryption_key_arn,
        };
        st.sessions_newest.insert((now, seq), id.clone());
        st.sessions.insert(id.clone(), rec);
        drop(st);
        self.at_rest.created(&id, &arn, new_key.as_ref());
        Ok(session)
    }

    async fn get_session(&self, session: SessionRef) -> Result<Session> {
        let raw = self.state().session(&session, &self.cfg)?.raw(&self.cfg);
        self.finish(raw).await
    }

    async fn list_sessions(&self, req: PageRequest) -> Result<Page<Session>> {
        let raws = {
            let st = self.state();
            let sessions = &st.sessions;
            // A handle for one account lists that account's sessions and no other; none lists a session past
            // retention.
            let keep = |id: &String| {
                let s = &sessions[id];
                visible(&s.arn, &self.cfg) && retained(s.last_updated_at, &self.cfg)
            };
            page(
                &st.sessions_newest,
                keep,
                "sessions",
                &req,
                &self.cfg,
                |_, id| sessions[id].raw(&self.cfg),
            )?
        };
        // Summaries: an encrypted session's metadata is left out (see `SessionStore::list_sessions`).
        let items = raws
            .items
            .into_iter()
            .map(|mut raw| {
                if raw.wrapped.is_some() {
                    raw.metadata = Kept::Clear(BTreeMap::new());
                }
                let sealing = Sealing::clear(&raw.session.arn);
                raw.open(&sealing)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            next_token: raws.next_token,
        })
    }

    async fn update_session(&self, req: UpdateSession) -> Result<Session> {
        let cfg = &self.cfg;
        let prepared = self.prepare(&req.session).await?;
        // Sealed before the lock is taken.
        let metadata = req.metadata.map(|m| match &prepared {
            Some(p) => p.keep(Record::Metadata, m, metadata_json),
            None => Kept::Clear(m),
        });
        let mut st = self.state();
        let s = st.session_mut(&req.session, &self.cfg)?;
        s.require_writable(cfg, "UpdateSession")?;
        let sealing = s.sealing(&self.at_rest, prepared.as_ref())?;
        if let Some(m) = metadata {
            s.metadata = m;
        }
        s.last_updated_at = cfg.clock.now_us();
        s.raw(cfg).open(&sealing)
    }

    async fn end_session(&self, session: SessionRef) -> Result<Session> {
        let cfg = &self.cfg;
        // The key is looked up first: a session whose key is unusable is refused before anything changes.
        let prepared = self.prepare(&session).await?;
        let mut st = self.state();
        let s = st.session_mut(&session, &self.cfg)?;
        if s.status(cfg) == SessionStatus::Ended {
            return Err(already_ended(&s.id));
        }
        let sealing = s.sealing(&self.at_rest, prepared.as_ref())?;
        s.ended = true;
        s.last_updated_at = cfg.clock.now_us();
        s.raw(cfg).open(&sealing)
    }

    async fn delete_session(&self, session: SessionRef) -> Result<()> {
        let mut st = self.state();
        let s = st.session(&session, &self.cfg)?;
        if s.status(&self.cfg) == SessionStatus::Active {
            return Err(delete_active(&s.id));
        }
        let (id, key) = (s.id.clone(), (s.created_at, s.seq));
        // Its invocations, steps, tags, data key and thread bindings go with it.
        st.sessions.remove(&id);
        st.sessions_newest.remove(&key);
        st.threads.retain(|_, sid| *sid != id);
        self.at_rest.forget(&id);
        Ok(())
    }

    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
        let cfg = &self.cfg;
        let prepared = self.prepare(&req.session).await?;
        let id = req.invocation_id.unwrap_or_else(new_id);
        let description = req.description.clone().map(|d| match &prepared {
            Some(p) => p.keep(Record::Description(&id), d, |t| t.as_bytes().to_vec()),
            None => Kept::Clear(d),
        });
        let mut st = self.state();
        let seq = st.seq();
        let s = st.session_mut(&req.session, &self.cfg)?;
        s.require_writable(cfg, "CreateInvocation")?;
        s.sealing(&self.at_rest, prepared.as_ref())?;
        if s.invocations.contains_key(&id) {
            return Err(invocation_exists(&s.id, &id));
        }
        let now = cfg.clock.now_us();
        s.invocations.insert(
            id.clone(),
            InvocationRec {
                description,
                created_at: now,
                steps_newest: BTreeMap::new(),
            },
        );
        s.invocations_newest.insert((now, seq), id.clone());
        s.last_updated_at = now;
        Ok(Invocation {
            session_id: s.id.clone(),
            invocation_id: id,
            description: req.description,
            created_at: now,
        })
    }

    async fn list_invocations(
        &self,
        session: SessionRef,
        req: PageRequest,
    ) -> Result<Page<Invocation>> {
        let (id, arn, wrapped, held) = {
            let st = self.state();
            let s = st.session(&session, &self.cfg)?;
            let scope = format!("invocations|{}", s.id);
            let held = page(
                &s.invocations_newest,
                |_| true,
                &scope,
                &req,
                &self.cfg,
                |_, id| {
                    let inv = &s.invocations[id];
                    (id.clone(), inv.description.clone(), inv.created_at)
                },
            )?;
            (s.id.clone(), s.arn.clone(), s.wrapped.clone(), held)
        };
        let sealing = self.at_rest.sealing(&id, &arn, wrapped.as_deref()).await?;
        let items = open_invocations(&sealing, &id, held.items)?;
        Ok(Page {
            items,
            next_token: held.next_token,
        })
    }

    async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
        let cfg = &self.cfg;
        check_step_size(&req.payload, cfg)?;
        let prepared = self.prepare(&req.session).await?;
        // A new step's id is chosen here: it is named in its sealed record. Sealed before the lock is taken.
        let step_id = req.step_id.clone().unwrap_or_else(new_id);
        let payload = match &prepared {
            Some(p) => p.keep(Record::Step(&step_id), req.payload.clone(), encode_payload),
            None => Kept::Clear(req.payload.clone()),
        };
        let mut st = self.state();
        let seq = st.seq();
        let s = st.session_mut(&req.session, &self.cfg)?;
        s.require_writable(cfg, "PutInvocationStep")?;
        let sealing = s.sealing(&self.at_rest, prepared.as_ref())?;
        s.invocation(&req.invocation_id)?;
        if let Some(e) = s.steps.get(&step_id) {
            // A retried write of the same step is a success; anything else is a conflict.
            if e.invocation_id == req.invocation_id
                && e.time == req.time
                && sealing.get(Record::Step(&step_id), e.payload.clone(), |b| {
                    decode_payload(&b)
                })? == req.payload
            {
                return Ok(step_id);
            }
            return Err(step_conflict(&s.id, &step_id));
        }
        if s.step_count >= cfg.max_steps_per_session {
            return Err(step_quota(&s.id, cfg));
        }
        let key = (req.time, seq);
        s.invocations
            .get_mut(&req.invocation_id)
            .expect("checked above")
            .steps_newest
            .insert(key, step_id.clone());
        s.steps_newest
            .insert(key, (step_id.clone(), req.invocation_id.clone()));
        s.steps.insert(
            step_id.clone(),
            StepRec {
                invocation_id: req.invocation_id,
                time: req.time,
                payload,
            },
        );
        s.step_count += 1;
        s.last_updated_at = cfg.clock.now_us();
        Ok(step_id)
    }

    async fn get_invocation_step(&self, req: GetStep) -> Result<Step> {
        let (arn, wrapped, session_id, time, payload) = {
            let st = self.state();
            let s = st.session(&req.session, &self.cfg)?;
            s.invocation(&req.invocation_id)?;
            match s.steps.get(&req.step_id) {
                Some(step) if step.invocation_id == req.invocation_id => (
                    s.arn.clone(),
                    s.wrapped.clone(),
                    s.id.clone(),
                    step.time,
                    step.payload.clone(),
                ),
                _ => return Err(not_found_step(&s.id, &req.invocation_id, &req.step_id)),
            }
        };
        let sealing = self
            .at_rest
            .sealing(&session_id, &arn, wrapped.as_deref())
            .await?;
        let payload = sealing.get(Record::Step(&req.step_id), payload, |b| decode_payload(&b))?;
        Ok(Step {
            summary: StepSummary {
                session_id,
                invocation_id: req.invocation_id,
                step_id: req.step_id,
                time,
            },
            payload,
        })
    }

    async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>> {
        let st = self.state();
        let s = st.session(&req.session, &self.cfg)?;
        let summary = |step_id: &String, invocation_id: &String, time: Micros| StepSummary {
            session_id: s.id.clone(),
            invocation_id: invocation_id.clone(),
            step_id: step_id.clone(),
            time,
        };
        match &req.invocation_id {
            Some(inv_id) => {
                let inv = s.invocation(inv_id)?;
                let scope = format!("steps|{}|{inv_id}", s.id);
                page(
                    &inv.steps_newest,
                    |_| true,
                    &scope,
                    &req.page,
                    &self.cfg,
                    |k, id| summary(id, inv_id, k.0),
                )
            }
            None => {
                let scope = format!("steps|{}|*", s.id);
                page(
                    &s.steps_newest,
                    |_| true,
                    &scope,
                    &req.page,
                    &self.cfg,
                    |k, (id, inv)| summary(id, inv, k.0),
                )
            }
        }
    }

    async fn tag_resource(&self, arn: ResourceArn, tags: BTreeMap<String, String>) -> Result<()> {
        let mut st = self.state();
        let s = st.tagged_mut(&arn, &self.cfg)?;
        let mut merged = s.tags.clone();
        merged.extend(tags);
        check_tag_count(merged.len())?;
        s.tags = merged;
        Ok(())
    }

    async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()> {
        let mut st = self.state();
        let s = st.tagged_mut(&arn, &self.cfg)?;
        for k in &keys {
            s.tags.remove(k);
        }
        Ok(())
    }

    async fn list_tags_for_resource(&self, arn: ResourceArn) -> Result<BTreeMap<String, String>> {
        Ok(self.state().tagged(&arn, &self.cfg)?.tags.clone())
    }

    fn thread_index(&self) -> Option<&dyn ThreadIndex> {
        (!self.cfg.account_only).then_some(self as &dyn ThreadIndex)
    }

    fn for_account(&self, account: &str) -> Option<Arc<dyn SessionStore>> {
        let cfg = super::account_config(&self.cfg, account).ok()?;
        Some(Arc::new(MemoryStore {
            cfg,
            state: self.state.clone(),
            at_rest: self.at_rest.clone(),
        }))
    }
}

/// The native thread index: a table of the file (a map in memory), bound and swapped in one transaction.
#[async_trait]
impl ThreadIndex for MemoryStore {
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>> {
        Ok(self.state().threads.get(thread_id).cloned())
    }

    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String> {
        let mut st = self.state();
        if !st.sessions.contains_key(session_id) {
            return Err(not_found_session(session_id));
        }
        if replace || !st.threads.contains_key(thread_id) {
            st.threads
                .insert(thread_id.to_string(), session_id.to_string());
        }
        Ok(st.threads[thread_id].clone())
    }

    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String> {
        let mut st = self.state();
        if !st.sessions.contains_key(to) {
            return Err(not_found_session(to));
        }
        let bound = st.threads.get(thread_id).cloned();
        if bound.is_none() || bound.as_deref() == Some(from) {
            st.threads.insert(thread_id.to_string(), to.to_string());
        }
        Ok(st.threads[thread_id].clone())
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
