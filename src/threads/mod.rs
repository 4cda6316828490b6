//! Threads: a thread id (a LangGraph thread, a LlamaIndex chat key, a workflow run) names a chain of
//! sessions, its generations (`src/saver/chain.rs` tells how a thread moves on). Where a thread id is
//! not itself a session id, a **thread index** maps it to the thread's current session. This module is
//! that index:
//!
//! - [`ThreadIndex`]: the three operations every index offers (look up, bind unless bound, compare and
//!   swap), atomic across processes;
//! - the embedded stores keep theirs natively (a table in the SQLite file, a map in memory) and implement
//!   the trait themselves;
//! - [`session_kept`]: an index kept in sessions of the API itself (Amazon Bedrock without other
//!   services), a chain of index sessions that moves on when one is full;
//! - [`dynamodb`]: an index in a DynamoDB table (the AWS SDK for Rust), without a session's limits;
//! - [`WithIndex`]: any session store combined with any index, which is what the saver is given;
//! - [`successor`]: how a session names its successor where no index can (a claim invocation and a
//!   metadata key), used by threads whose id is a session id and by the session-kept index itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;
use crate::store::SessionStore;

pub mod dynamodb;
pub mod session_kept;
pub mod successor;

/// Maps thread ids to the current session of each thread.
#[async_trait]
pub trait ThreadIndex: Send + Sync + std::fmt::Debug {
    /// The session bound to `thread_id`, if any.
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>>;

    /// Binds `thread_id` to `session_id` unless it is already bound; returns the session it is bound to
    /// afterwards (the existing one when another writer won the race). With `replace`, rebinds.
    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String>;

    /// Points `thread_id` at `to` if it is bound to `from` (compare and swap, atomic across processes);
    /// returns the session it is bound to afterwards: `to`, or what another writer bound first. Two
    /// writers that move one thread on at once thus agree on one next session.
    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String>;

    /// Removes the binding of a deleted thread if it still names `session_id`. The embedded stores drop
    /// bindings with their sessions, and a session-kept index cannot remove a step (a thread bound to a
    /// deleted session is bound afresh on its next write), so only an index of its own storage acts.
    async fn forget(&self, thread_id: &str, session_id: &str) -> Result<()> {
        let _ = (thread_id, session_id);
        Ok(())
    }
}

/// A session store with a thread index beside it (the Bedrock backend with a session-kept or DynamoDB
/// index). Every session operation goes to the store.
#[derive(Debug, Clone)]
pub struct WithIndex {
    store: Arc<dyn SessionStore>,
    index: Arc<dyn ThreadIndex>,
}

impl WithIndex {
    pub fn new(store: Arc<dyn SessionStore>, index: Arc<dyn ThreadIndex>) -> Self {
        WithIndex { store, index }
    }
}

#[async_trait]
impl SessionStore for WithIndex {
    async fn create_session(&self, req: CreateSession) -> Result<Session> {
        self.store.create_session(req).await
    }
    async fn get_session(&self, session: SessionRef) -> Result<Session> {
        self.store.get_session(session).await
    }
    async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>> {
        self.store.list_sessions(page).await
    }
    async fn update_session(&self, req: UpdateSession) -> Result<Session> {
        self.store.update_session(req).await
    }
    async fn end_session(&self, session: SessionRef) -> Result<Session> {
        self.store.end_session(session).await
    }
    async fn delete_session(&self, session: SessionRef) -> Result<()> {
        self.store.delete_session(session).await
    }
    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
        self.store.create_invocation(req).await
    }
    async fn list_invocations(
        &self,
        session: SessionRef,
        page: PageRequest,
    ) -> Result<Page<Invocation>> {
        self.store.list_invocations(session, page).await
    }
    async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
        self.store.put_invocation_step(req).await
    }
    async fn get_invocation_step(&self, req: GetStep) -> Result<Step> {
        self.store.get_invocation_step(req).await
    }
    async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>> {
        self.store.list_invocation_steps(req).await
    }
    async fn tag_resource(&self, arn: ResourceArn, tags: BTreeMap<String, String>) -> Result<()> {
        self.store.tag_resource(arn, tags).await
    }
    async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()> {
        self.store.untag_resource(arn, keys).await
    }
    async fn list_tags_for_resource(&self, arn: ResourceArn) -> Result<BTreeMap<String, String>> {
        self.store.list_tags_for_resource(arn).await
    }
    fn thread_index(&self) -> Option<&dyn ThreadIndex> {
        Some(&*self.index)
    }
    /// The store's handle for the account, without this index (thread ids are not kept per account).
    fn for_account(&self, account: &str) -> Option<Arc<dyn SessionStore>> {
        self.store.for_account(account)
    }
}
