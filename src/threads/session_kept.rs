//! A thread index kept in the session API itself, for backends without a native one (Amazon Bedrock
//! without DynamoDB): any thread id string maps to a session, across processes.
//!
//! The index is a chain of sessions, starting at the one the user names. In each, a thread has an
//! invocation whose id is derived from the thread id; CreateInvocation's "already exists" conflict makes
//! "bind unless bound" atomic across processes. A binding is a step of that invocation whose step id *is*
//! the bound session's id, so a lookup is one ListInvocationSteps call per index session; moving a thread on
//! puts a newer binding, after a claim step whose id is derived from (thread, old session) decides between
//! writers (the first put stands).
//!
//! **When an index session is full** (the service's steps per session: 1,000 bindings and claims), the
//! index moves on to a new session, named in the full one's metadata (`bedrock-sessions:next-index`, see
//! [`super::successor`]: one claim invocation decides which writer makes it). A full session never
//! changes again, so what it holds is final: a binding or claim found there stands, and a writer checks
//! the full sessions before it binds or claims in the newest. Lookups read the newest session first, then
//! the older ones; the chain is read again at most once a second (one GetSession), so a process sees
//! another's move to a new index session within a second.
//!
//! **Limits** (docs/saver.md): a lookup of a thread bound k index sessions ago costs k + 1 requests; and
//! the index needs its newest session to stay ACTIVE: the service expires a session idle for an hour, after
//! which no thread can be bound or moved on through it (reads still work), and the error says so and names
//! the ways forward. A DynamoDB table ([`super::dynamodb`]) has neither limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{ThreadIndex, successor};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorCode, Result};
use crate::model::*;
use crate::store::SessionStore;
use crate::validate::is_uuid;

/// The metadata key of a full index session that names the next one.
pub const META_NEXT_INDEX: &str = "bedrock-sessions:next-index";
/// The metadata key that marks a session of an index chain (its value: the chain's first session).
pub const META_INDEX: &str = "bedrock-sessions:thread-index";
/// How stale a process's view of the chain may be.
const REFRESH: Duration = Duration::from_secs(1);
/// Moves to a new index session one operation may make before giving up.
const MAX_MOVES: usize = 8;

#[derive(Debug)]
struct Known {
    /// The chain, oldest first (the user's session first).
    sessions: Vec<SessionRef>,
    refreshed: Option<Instant>,
}

#[derive(Debug)]
pub struct SessionKeptIndex {
    inner: Arc<dyn SessionStore>,
    known: Mutex<Known>,
}

/// The invocation of `thread_id` in an index session.
fn thread_invocation_id(thread_id: &str) -> String {
    crate::ids::derived_id(
        0x7468_7265_6164_696e_6465_7862_7331_0001,
        thread_id.as_bytes(),
        0x54,
    )
}

/// What a put into the newest index session came to.
enum Put {
    Done,
    Exists,
    Full,
}

impl SessionKeptIndex {
    pub fn new(inner: Arc<dyn SessionStore>, index_session: &str) -> Result<Self> {
        Ok(SessionKeptIndex {
            inner,
            known: Mutex::new(Known {
                sessions: vec![SessionRef::parse("thread_index", index_session)?],
                refreshed: None,
            }),
        })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain, oldest first; read again from its newest known session when stale or `force`d.
    async fn sessions(&self, force: bool) -> Result<Vec<SessionRef>> {
        let (last, fresh) = {
            let k = self.known();
            let fresh = k.refreshed.is_some_and(|t| t.elapsed() < REFRESH);
            (k.sessions.last().expect("not empty").clone(), fresh)
        };
        if fresh && !force {
            return Ok(self.known().sessions.clone());
        }
        let more = match successor::successors(&*self.inner, &last.raw, META_NEXT_INDEX).await {
            Ok(m) => m,
            Err(e) if e.code == ErrorCode::ResourceNotFound => {
                return Err(Error::not_found(format!(
                    "the thread index session {} was not found",
                    last.raw
                )));
            }
            Err(e) => return Err(e),
        };
        let mut k = self.known();
        for id in more.into_iter().skip(1) {
            if !k.sessions.iter().any(|s| s.id == id) {
                k.sessions.push(SessionRef::of_id(&id));
            }
        }
        k.refreshed = Some(Instant::now());
        Ok(k.sessions.clone())
    }

    /// The newest binding of a thread in one index session: (session id, step time).
    async fn binding_in(
        &self,
        index: &SessionRef,
        thread_id: &str,
    ) -> Result<Option<(String, i64)>> {
        let page = self
            .inner
            .list_invocation_steps(ListSteps {
                session: index.clone(),
                invocation_id: Some(thread_invocation_id(thread_id)),
                page: PageRequest {
                    max_results: Some(1),
                    next_token: None,
                },
            })
            .await;
        match page {
            Ok(p) => Ok(p
                .items
                .into_iter()
                .next()
                .filter(|s| is_uuid(&s.step_id))
                .map(|s| (s.step_id, s.time))),
            Err(e) if e.is_invocation_not_found() => Ok(None),
            Err(e) if e.code == ErrorCode::ResourceNotFound => Err(Error::not_found(format!(
                "the thread index session {} was not found",
                index.raw
            ))),
            Err(e) => Err(e),
        }
    }

    /// The thread's newest binding in `sessions`, read newest session first.
    async fn find_binding(
        &self,
        sessions: &[SessionRef],
        thread_id: &str,
    ) -> Result<Option<(String, i64)>> {
        for index in sessions.iter().rev() {
            if let Some(b) = self.binding_in(index, thread_id).await? {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// An index session that refuses writes for another reason than being full: its status, and the
    /// ways forward.
    async fn refused(&self, index: &SessionRef, e: Error) -> Error {
        if e.code != ErrorCode::Conflict || e.is_already_exists() {
            return e.context(format_args!("thread index session {}", index.raw));
        }
        let status = match self.inner.get_session(index.clone()).await {
            Ok(s) => s.status.as_str().to_string(),
            Err(_) => "closed".into(),
        };
        Error::conflict(format!(
            "thread index session {} is {status}: threads bound in it stay readable, but no thread can be              bound or moved on through it any more ({}). The service expires a session left idle for its              idle timeout (1 hour on Amazon Bedrock), and an index kept in sessions needs its newest session              ACTIVE. Use a DynamoDB table as the thread index (thread_index=\"dynamodb:<table>\"), which has              no idle expiry, or start a new index session (threads of the old one are not found through it)",
            index.raw, e.message
        ))
    }

    /// Puts a step into an index session: done, "already exists" (an identical step is done), or full.
    async fn put(&self, index: &SessionRef, req: PutStep) -> Result<Put> {
        match self.inner.put_invocation_step(req).await {
            Ok(_) => Ok(Put::Done),
            Err(e) if e.is_already_exists() => Ok(Put::Exists),
            Err(e) if e.code == ErrorCode::ServiceQuotaExceeded => Ok(Put::Full),
            Err(e) => Err(self.refused(index, e).await),
        }
    }

    async fn put_binding(
        &self,
        index: &SessionRef,
        thread_id: &str,
        session_id: &str,
        time: i64,
    ) -> Result<Put> {
        let body = serde_json::json!({ "thread_id": thread_id }).to_string();
        self.put(
            index,
            PutStep {
                session: index.clone(),
                invocation_id: thread_invocation_id(thread_id),
                step_id: Some(session_id.to_string()),
                time,
                payload: Payload {
                    blocks: vec![ContentBlock::Text(body)],
                },
            },
        )
        .await
    }

    /// Creates the thread's invocation in an index session; `false`: it existed (another writer's).
    async fn create_thread_invocation(&self, index: &SessionRef, thread_id: &str) -> Result<bool> {
        let mut description: String = format!("thread {thread_id}");
        if description.chars().count() > 200 {
            description = description.chars().take(200).collect();
        }
        match self
            .inner
            .create_invocation(CreateInvocation {
                session: index.clone(),
                invocation_id: Some(thread_invocation_id(thread_id)),
                description: Some(description),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_already_exists() => Ok(false),
            Err(e) => Err(self.refused(index, e).await),
        }
    }

    /// The index moves on from its full session `full`: one writer makes the next session and names it
    /// in `full` (see [`successor`]); everyone then reads the chain again.
    async fn move_on(&self, full: &SessionRef) -> Result<()> {
        let what = format!("thread index session {}", full.raw);
        // By its id: processes configured with the session's ARN or with its id derive one claim.
        let claimed = successor::claim(
            &*self.inner,
            &full.id,
            META_NEXT_INDEX,
            "bedrock-sessions: the thread index continues in a new session",
            &what,
        )
        .await;
        match claimed {
            Ok(successor::Claim::Ours) => {
                let root = self.known().sessions[0].id.clone();
                let next = self
                    .inner
                    .create_session(CreateSession {
                        encryption_key_arn: None,
                        metadata: [
                            (META_INDEX.to_string(), root),
                            (
                                "bedrock-sessions:previous-index".to_string(),
                                full.id.clone(),
                            ),
                        ]
                        .into(),
                        tags: Default::default(),
                    })
                    .await?;
                successor::point(&*self.inner, &full.id, &next.id, META_NEXT_INDEX).await?;
            }
            Ok(successor::Claim::Theirs(_)) => {}
            Err(e) => return Err(self.refused(full, e).await),
        }
        self.sessions(true).await?;
        Ok(())
    }

    /// The `next` a claim step names, if the claim exists in `index`.
    async fn read_claim(
        &self,
        index: &SessionRef,
        thread_id: &str,
        claim: &str,
    ) -> Result<Option<String>> {
        let step = self
            .inner
            .get_invocation_step(GetStep {
                session: index.clone(),
                invocation_id: thread_invocation_id(thread_id),
                step_id: claim.to_string(),
            })
            .await;
        let step = match step {
            Ok(s) => s,
            Err(e) if e.code == ErrorCode::ResourceNotFound && !e.is_session_not_found() => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let next = step.payload.blocks.iter().find_map(|b| match b {
            ContentBlock::Text(t) => serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .and_then(|v| v["next"].as_str().map(String::from)),
            _ => None,
        });
        next.map(Some).ok_or_else(|| {
            Error::internal(format!(
                "thread index session {}: the claim step of thread {thread_id:?} is unreadable",
                index.raw
            ))
        })
    }

    /// Publishes `session_id` as the thread's binding unless it already is the newest one.
    async fn publish(&self, thread_id: &str, session_id: &str) -> Result<()> {
        for _ in 0..MAX_MOVES {
            let sessions = self.sessions(false).await?;
            let current = self.find_binding(&sessions, thread_id).await?;
            if current.as_ref().map(|(s, _)| s.as_str()) == Some(session_id) {
                return Ok(());
            }
            let newest = sessions.last().expect("not empty");
            // Strictly newer than the binding it replaces.
            let time = SystemClock.now_us().max(current.map_or(0, |(_, t)| t + 1));
            // The thread's invocation there usually exists (a claim was just put in it): created on a miss.
            let put = match self.put_binding(newest, thread_id, session_id, time).await {
                Err(e) if e.is_invocation_not_found() => {
                    self.create_thread_invocation(newest, thread_id).await?;
                    self.put_binding(newest, thread_id, session_id, time)
                        .await?
                }
                other => other?,
            };
            match put {
                Put::Done | Put::Exists => return Ok(()),
                Put::Full => self.move_on(newest).await?,
            }
        }
        Err(self.too_many_moves(thread_id))
    }

    fn too_many_moves(&self, thread_id: &str) -> Error {
        Error::quota(format!(
            "thread {thread_id:?}: the thread index moved on to a new session {MAX_MOVES} times during one              operation (each of its sessions holds the service's steps per session)"
        ))
    }
}

#[async_trait]
impl ThreadIndex for SessionKeptIndex {
    /// The newest known index session is read alongside the chain's freshness check (no added latency);
    /// older ones only when the thread is not there.
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>> {
        let known = self.known().sessions.last().expect("not empty").clone();
        let (sessions, in_known) =
            futures::join!(self.sessions(false), self.binding_in(&known, thread_id));
        let sessions = sessions?;
        let found = if sessions.last().is_some_and(|s| s.id == known.id) {
            match in_known? {
                Some(b) => Some(b),
                None => {
                    self.find_binding(&sessions[..sessions.len() - 1], thread_id)
                        .await?
                }
            }
        } else {
            self.find_binding(&sessions, thread_id).await?
        };
        Ok(found.map(|(s, _)| s))
    }

    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String> {
        if replace {
            self.publish(thread_id, session_id).await?;
            return Ok(session_id.to_string());
        }
        for _ in 0..MAX_MOVES {
            let sessions = self.sessions(false).await?;
            let (older, newest) = sessions.split_at(sessions.len() - 1);
            let newest = &newest[0];
            if self.create_thread_invocation(newest, thread_id).await? {
                // The older index sessions are full, so final: a binding there stands.
                if let Some((s, _)) = self.find_binding(older, thread_id).await? {
                    return Ok(s);
                }
                match self
                    .put_binding(newest, thread_id, session_id, SystemClock.now_us())
                    .await?
                {
                    Put::Done | Put::Exists => return Ok(session_id.to_string()),
                    Put::Full => {
                        self.move_on(newest).await?;
                        continue;
                    }
                }
            }
            // Created by another writer: wait for its binding (it follows its invocation closely).
            for _ in 0..100 {
                let sessions = self.sessions(true).await?;
                if let Some((s, _)) = self.find_binding(&sessions, thread_id).await? {
                    return Ok(s);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // That writer died between its two calls: take the thread.
            self.publish(thread_id, session_id).await?;
            return Ok(session_id.to_string());
        }
        Err(self.too_many_moves(thread_id))
    }

    /// Who moves a thread on from `from` is decided by one claim step, whose id is derived from (thread,
    /// `from`): the first put stands (in the newest index session, or in a full one where it was put
    /// before that session filled up), and a writer whose put is refused reads the winner's. Claims carry
    /// the epoch as their time, so a lookup (the newest step) never takes one for a binding.
    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String> {
        let claim = claim_step_id(thread_id, from);
        let body =
            serde_json::json!({"thread_id": thread_id, "from": from, "next": to}).to_string();
        let mut winner = None;
        for _ in 0..MAX_MOVES {
            let sessions = self.sessions(false).await?;
            let (older, newest) = sessions.split_at(sessions.len() - 1);
            let newest = &newest[0];
            for index in older {
                if let Some(next) = self.read_claim(index, thread_id, &claim).await? {
                    winner = Some(next);
                    break;
                }
            }
            if winner.is_some() {
                break;
            }
            self.create_thread_invocation(newest, thread_id).await?;
            let put = PutStep {
                session: newest.clone(),
                invocation_id: thread_invocation_id(thread_id),
                step_id: Some(claim.clone()),
                time: 0,
                payload: Payload {
                    blocks: vec![ContentBlock::Text(body.clone())],
                },
            };
            match self.put(newest, put).await? {
                Put::Done => winner = Some(to.to_string()),
                Put::Exists => winner = self.read_claim(newest, thread_id, &claim).await?,
                Put::Full => match self.read_claim(newest, thread_id, &claim).await? {
                    Some(next) => winner = Some(next),
                    None => {
                        self.move_on(newest).await?;
                        continue;
                    }
                },
            }
            break;
        }
        let Some(winner) = winner else {
            return Err(self.too_many_moves(thread_id));
        };
        // The winner's binding (published again by whoever gets here: identical steps are one).
        self.publish(thread_id, &winner).await?;
        Ok(winner)
    }
}

/// The id of the claim step that moves `thread_id` on from session `from` (see `rebind`).
fn claim_step_id(thread_id: &str, from: &str) -> String {
    crate::ids::derived_id(
        0x7468_7265_6164_636c_6169_6d62_7331_0001,
        format!("{from}\n{thread_id}").as_bytes(),
        0x43,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::saver::Saver;
    use crate::store::StoreConfig;
    use crate::store::sqlite::SqliteStore;
    use crate::store::testing::Wrapped;
    use crate::threads::WithIndex;

    fn sid(n: u32) -> String {
        format!("0a1b2c3d-0000-4000-8000-{n:012x}")
    }

    /// A store without a native index (as an HTTP backend is) and the first session of an index in it.
    async fn base(cfg: StoreConfig) -> (Arc<dyn SessionStore>, String) {
        let base: Arc<dyn SessionStore> =
            Arc::new(Wrapped::new(SqliteStore::memory(cfg).unwrap(), false));
        let index = base
            .create_session(CreateSession {
                encryption_key_arn: None,
                metadata: Default::default(),
                tags: Default::default(),
            })
            .await
            .unwrap();
        (base, index.id)
    }

    /// An index kept in a session of that store, and the store with the index beside it.
    async fn indexed_store() -> (Arc<SessionKeptIndex>, WithIndex) {
        let (base, first) = base(StoreConfig::default()).await;
        let index = Arc::new(SessionKeptIndex::new(base.clone(), &first).unwrap());
        (index.clone(), WithIndex::new(base, index))
    }

    #[tokio::test]
    async fn binds_once_across_writers_and_rebinds() {
        let (store, _) = indexed_store().await;
        assert!(store.inner.thread_index().is_none());
        assert_eq!(store.lookup("t").await.unwrap(), None);
        let (a, b) = (sid(0xa), sid(0xb));
        let (ra, rb) = futures::join!(store.bind("t", &a, false), store.bind("t", &b, false));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra, rb, "both writers see one binding");
        assert_eq!(
            store.lookup("t").await.unwrap().as_deref(),
            Some(ra.as_str())
        );
        // Rewrites (prune) rebind to fresh sessions; the newest binding wins.
        let (c, d) = (sid(0xc), sid(0xd));
        store.bind("t", &c, true).await.unwrap();
        assert_eq!(
            store.lookup("t").await.unwrap().as_deref(),
            Some(c.as_str())
        );
        store.bind("t", &d, true).await.unwrap();
        assert_eq!(
            store.lookup("t").await.unwrap().as_deref(),
            Some(d.as_str())
        );
    }

    /// Four steps per session: the index moves on every few bindings; another process (a second index over
    /// the same first session) finds every thread, and moving threads on across index sessions agrees.
    #[tokio::test]
    async fn the_index_moves_on_when_a_session_is_full() {
        let cfg = StoreConfig {
            max_steps_per_session: 4,
            ..StoreConfig::default()
        };
        let (base, first) = base(cfg).await;
        let one = SessionKeptIndex::new(base.clone(), &first).unwrap();
        for n in 0..30 {
            assert_eq!(
                one.bind(&format!("t{n}"), &sid(n), false).await.unwrap(),
                sid(n)
            );
        }
        let other = SessionKeptIndex::new(base.clone(), &first).unwrap();
        for n in 0..30 {
            assert_eq!(other.lookup(&format!("t{n}")).await.unwrap(), Some(sid(n)));
            // Bound already: the first binding stands, whichever index session holds it.
            assert_eq!(
                other
                    .bind(&format!("t{n}"), &sid(1000 + n), false)
                    .await
                    .unwrap(),
                sid(n)
            );
        }
        let chain = other.sessions(true).await.unwrap();
        assert!(chain.len() >= 8, "{} index sessions", chain.len());
        for s in &chain[1..] {
            let meta = base.get_session(s.clone()).await.unwrap().metadata;
            assert_eq!(meta.get(META_INDEX), Some(&first));
        }
        // Both move the early threads on from their first sessions at once: one winner each.
        for n in 0..10 {
            let t = format!("t{n}");
            let (from, to_a, to_b) = (sid(n), sid(2000 + n), sid(3000 + n));
            let (a, b) =
                futures::join!(one.rebind(&t, &from, &to_a), other.rebind(&t, &from, &to_b));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a, b);
            assert!(a == sid(2000 + n) || a == sid(3000 + n));
            assert_eq!(one.lookup(&t).await.unwrap(), Some(a.clone()));
            // A late writer that still thinks the thread is at its first session learns the winner.
            assert_eq!(other.rebind(&t, &sid(n), &sid(4000 + n)).await.unwrap(), a);
        }
    }

    #[tokio::test]
    async fn writers_agree_on_new_threads_while_the_index_moves_on() {
        let cfg = StoreConfig {
            max_steps_per_session: 3,
            ..StoreConfig::default()
        };
        let (base, first) = base(cfg).await;
        let one = SessionKeptIndex::new(base.clone(), &first).unwrap();
        let other = SessionKeptIndex::new(base.clone(), &first).unwrap();
        let binds = (0..20).flat_map(|n| {
            let t = format!("race{n}");
            [(t.clone(), &one, sid(n)), (t, &other, sid(500 + n))]
        });
        let got = futures::future::join_all(binds.map(|(t, index, s)| async move {
            (t.clone(), index.bind(&t, &s, false).await.unwrap())
        }))
        .await;
        for pair in got.chunks(2) {
            assert_eq!(pair[0], pair[1], "one binding per thread");
            assert_eq!(
                one.lookup(&pair[0].0).await.unwrap(),
                Some(pair[0].1.clone())
            );
        }
    }

    #[tokio::test]
    async fn an_expired_index_is_a_clear_error_and_stays_readable() {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
        let cfg = StoreConfig {
            clock: clock.clone(),
            ..StoreConfig::default()
        };
        let (base, first) = base(cfg).await;
        let index = SessionKeptIndex::new(base, &first).unwrap();
        index.bind("early", &sid(1), false).await.unwrap();
        clock.advance(2 * 3600 * 1_000_000);
        let e = index.bind("late", &sid(2), false).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        for needle in [first.as_str(), "is EXPIRED", "idle", "dynamodb:<table>"] {
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
        }
        assert_eq!(index.lookup("early").await.unwrap(), Some(sid(1)));
        let e = index.rebind("early", &sid(1), &sid(3)).await.unwrap_err();
        assert!(e.message.contains("is EXPIRED"), "{}", e.message);
    }

    #[tokio::test]
    async fn the_saver_works_with_any_thread_id_over_the_index() {
        let (_, store) = indexed_store().await;
        let saver = Saver::new();
        let cp = crate::saver::PutCheckpoint {
            thread_id: "any thread/string".into(),
            checkpoint_ns: String::new(),
            checkpoint_id: "1ef4f797-8335-6428-8001-8a1503f9b875".into(),
            parent_checkpoint_id: None,
            checkpoint: crate::saver::layout::Typed("json".into(), b"{}".to_vec()),
            metadata_json: "{}".into(),
            channel_values: vec![],
        };
        saver.put(&store, cp).await.unwrap();
        let other_process = Saver::new();
        let got = other_process
            .get_tuple(&store, "any thread/string", "", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.checkpoint_id, "1ef4f797-8335-6428-8001-8a1503f9b875");
    }
}
