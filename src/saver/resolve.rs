//! Which session a thread is in: the cache, the thread index ([`crate::threads`]), a session id or ARN
//! used as the thread id, else (for a write) a new session bound in the index; and rebinding a thread
//! whose session was deleted. How a thread moves on to a newer session is in `chain.rs`.

use std::collections::BTreeMap;

use super::{Saver, drop_session, is_code, layout, locked, sref};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{CreateSession, SessionRef};
use crate::store::SessionStore;
use crate::threads::successor;
use crate::validate::{self, is_uuid};

impl Saver {
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
    ///
    /// [`chain`]: super::chain
    pub(super) async fn resolve_for_read(
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

    /// A new session for `thread_id` (named in its metadata when it fits), bound by the caller.
    pub(super) async fn create_thread_session(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        mut metadata: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        if validate::char_len(thread_id) <= 5000 {
            metadata.insert(layout::META_THREAD.into(), thread_id.into());
        }
        self.create_session_of_ours(store, metadata, tags).await
    }

    /// Creates a session for a new thread and returns its id, usable as a thread id on any backend.
    pub async fn create_thread(
        &self,
        store: &dyn SessionStore,
        metadata: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        let sid = self.create_session_of_ours(store, metadata, tags).await?;
        self.remember_thread(&sid, &sid);
        Ok(sid)
    }

    /// A session in this saver's layout, remembered as created here (its invocations are created before
    /// their first step, without a failed put first).
    async fn create_session_of_ours(
        &self,
        store: &dyn SessionStore,
        mut metadata: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
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

    /// After "session not found" on a write: the thread was deleted (here or by another process). A
    /// native index forgets it with the session; an index kept in sessions still points at the deleted
    /// one, so the thread is bound to a fresh session.
    pub(super) async fn recover_deleted_thread(
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
}
