//! Test support: the embedded store wrapped, with or without its thread index and with slow writes
//! (a network backend's shape and timing, deterministically).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::SessionStore;
use super::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::*;

#[derive(Debug)]
pub struct Wrapped {
    pub inner: SqliteStore,
    /// Whether the store's native thread index is offered.
    pub index: bool,
    /// Added before each PutInvocationStep.
    pub put_delay: Duration,
}

impl Wrapped {
    pub fn new(inner: SqliteStore, index: bool) -> Self {
        Wrapped {
            inner,
            index,
            put_delay: Duration::ZERO,
        }
    }
}

#[async_trait]
impl SessionStore for Wrapped {
    fn thread_index(&self) -> Option<&dyn crate::threads::ThreadIndex> {
        if self.index { Some(&self.inner) } else { None }
    }
    async fn create_session(&self, r: CreateSession) -> Result<Session> {
        self.inner.create_session(r).await
    }
    async fn get_session(&self, s: SessionRef) -> Result<Session> {
        self.inner.get_session(s).await
    }
    async fn list_sessions(&self, p: PageRequest) -> Result<Page<Session>> {
        self.inner.list_sessions(p).await
    }
    async fn update_session(&self, r: UpdateSession) -> Result<Session> {
        self.inner.update_session(r).await
    }
    async fn end_session(&self, s: SessionRef) -> Result<Session> {
        self.inner.end_session(s).await
    }
    async fn delete_session(&self, s: SessionRef) -> Result<()> {
        self.inner.delete_session(s).await
    }
    async fn create_invocation(&self, r: CreateInvocation) -> Result<Invocation> {
        self.inner.create_invocation(r).await
    }
    async fn list_invocations(&self, s: SessionRef, p: PageRequest) -> Result<Page<Invocation>> {
        self.inner.list_invocations(s, p).await
    }
    async fn put_invocation_step(&self, r: PutStep) -> Result<String> {
        if !self.put_delay.is_zero() {
            tokio::time::sleep(self.put_delay).await;
        }
        self.inner.put_invocation_step(r).await
    }
    async fn get_invocation_step(&self, r: GetStep) -> Result<Step> {
        self.inner.get_invocation_step(r).await
    }
    async fn list_invocation_steps(&self, r: ListSteps) -> Result<Page<StepSummary>> {
        self.inner.list_invocation_steps(r).await
    }
    async fn tag_resource(&self, a: ResourceArn, t: BTreeMap<String, String>) -> Result<()> {
        self.inner.tag_resource(a, t).await
    }
    async fn untag_resource(&self, a: ResourceArn, k: Vec<String>) -> Result<()> {
        self.inner.untag_resource(a, k).await
    }
    async fn list_tags_for_resource(&self, a: ResourceArn) -> Result<BTreeMap<String, String>> {
        self.inner.list_tags_for_resource(a).await
    }
}
