//! A thread index kept in the session API itself, for backends without a native one (Amazon Bedrock):
//! any thread id string maps to a session, across processes.
//!
//! The index is a designated session. Each thread has an invocation there whose id is derived from the
//! thread id; CreateInvocation's "already exists" conflict makes "bind unless bound" atomic across
//! processes. The binding is a step of that invocation whose step id *is* the session id, so a lookup is
//! one ListInvocationSteps call; rebinding (prune) adds a newer step (always to a fresh session: a thread
//! cannot be bound back to a session it left, its step id being taken). Limits: the index session holds
//! at most the service's steps per session (1000 bindings), and it must stay ACTIVE (the service expires
//! sessions idle for an hour; writes to an EXPIRED index fail with a clear error).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::ThreadIndex;
use crate::error::{Error, ErrorCode, Result};
use crate::model::*;
use crate::store::SessionStore;
use crate::validate::is_uuid;

#[derive(Debug, Clone)]
pub struct SessionKeptIndex {
    inner: Arc<dyn SessionStore>,
    index: SessionRef,
}

/// The invocation of `thread_id` in the index session.
pub fn thread_invocation_id(thread_id: &str) -> String {
    crate::ids::derived_id(
        0x7468_7265_6164_696e_6465_7862_7331_0001,
        thread_id.as_bytes(),
        0x54,
    )
}

fn now_us() -> i64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now_us()
}

impl SessionKeptIndex {
    pub fn new(inner: Arc<dyn SessionStore>, index_session: &str) -> Result<Self> {
        Ok(SessionKeptIndex {
            inner,
            index: SessionRef::parse("thread_index", index_session)?,
        })
    }

    /// The newest binding: (session id, step time).
    async fn newest_binding(&self, thread_id: &str) -> Result<Option<(String, i64)>> {
        let page = self
            .inner
            .list_invocation_steps(ListSteps {
                session: self.index.clone(),
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
                self.index.raw
            ))),
            Err(e) => Err(e),
        }
    }

    async fn put_binding(&self, thread_id: &str, session_id: &str, time: i64) -> Result<()> {
        self.inner
            .put_invocation_step(PutStep {
                session: self.index.clone(),
                invocation_id: thread_invocation_id(thread_id),
                step_id: Some(session_id.to_string()),
                time,
                payload: Payload {
                    blocks: vec![ContentBlock::Text(format!(
                        "{{\"thread_id\":{}}}",
                        serde_json::Value::String(thread_id.into())
                    ))],
                },
            })
            .await
            .map(|_| ())
            .map_err(|e| index_error(&self.index.raw, e))
    }

    async fn create_thread_invocation(&self, thread_id: &str) -> Result<bool> {
        let mut description: String = format!("thread {thread_id}");
        if description.chars().count() > 200 {
            description = description.chars().take(200).collect();
        }
        match self
            .inner
            .create_invocation(CreateInvocation {
                session: self.index.clone(),
                invocation_id: Some(thread_invocation_id(thread_id)),
                description: Some(description),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_already_exists() => Ok(false),
            Err(e) => Err(index_error(&self.index.raw, e)),
        }
    }
}

fn index_error(index: &str, e: Error) -> Error {
    match e.code {
        ErrorCode::Conflict | ErrorCode::ServiceQuotaExceeded => {
            e.context(format_args!("thread index session {index}"))
        }
        _ => e,
    }
}

#[async_trait]
impl ThreadIndex for SessionKeptIndex {
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>> {
        Ok(self.newest_binding(thread_id).await?.map(|(s, _)| s))
    }

    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String> {
        let created = self.create_thread_invocation(thread_id).await?;
        if replace {
            let newest = self
                .newest_binding(thread_id)
                .await?
                .map(|(_, t)| t)
                .unwrap_or(0);
            // Strictly newer than the binding it replaces.
            self.put_binding(thread_id, session_id, now_us().max(newest + 1))
                .await?;
            return Ok(session_id.to_string());
        }
        if created {
            self.put_binding(thread_id, session_id, now_us()).await?;
            return Ok(session_id.to_string());
        }
        // Bound by another writer: wait for its binding step (it follows its invocation closely).
        for _ in 0..100 {
            if let Some((s, _)) = self.newest_binding(thread_id).await? {
                return Ok(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // That writer died between its two calls: take the thread.
        self.put_binding(thread_id, session_id, now_us()).await?;
        Ok(session_id.to_string())
    }

    /// Who moves a thread on from `from` is decided by one claim step, whose id is derived from (thread,
    /// `from`): the first put stands, another with a different next session is refused, and its writer
    /// reads the winner's from the claim. Claims carry the epoch as their time, so a lookup (the newest
    /// step) never takes one for a binding.
    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String> {
        self.create_thread_invocation(thread_id).await?;
        let claim = claim_step_id(thread_id, from);
        let inv = thread_invocation_id(thread_id);
        let body =
            serde_json::json!({"thread_id": thread_id, "from": from, "next": to}).to_string();
        let put = self
            .inner
            .put_invocation_step(PutStep {
                session: self.index.clone(),
                invocation_id: inv.clone(),
                step_id: Some(claim.clone()),
                time: 0,
                payload: Payload {
                    blocks: vec![ContentBlock::Text(body)],
                },
            })
            .await;
        let winner = match put {
            Ok(_) => to.to_string(),
            Err(e) if e.is_already_exists() => {
                let step = self
                    .inner
                    .get_invocation_step(GetStep {
                        session: self.index.clone(),
                        invocation_id: inv,
                        step_id: claim,
                    })
                    .await
                    .map_err(|e| index_error(&self.index.raw, e))?;
                let next = step.payload.blocks.iter().find_map(|b| match b {
                    ContentBlock::Text(t) => serde_json::from_str::<serde_json::Value>(t)
                        .ok()
                        .and_then(|v| v["next"].as_str().map(String::from)),
                    _ => None,
                });
                next.ok_or_else(|| {
                    Error::new(
                        ErrorCode::InternalServer,
                        format!(
                            "thread index session {}: the claim step of thread {thread_id:?} is unreadable",
                            self.index.raw
                        ),
                    )
                })?
            }
            Err(e) => return Err(index_error(&self.index.raw, e)),
        };
        // The winner's binding (written again by whoever gets here: identical steps are one).
        let current = self.newest_binding(thread_id).await?;
        if current.as_ref().map(|(s, _)| s.as_str()) != Some(winner.as_str()) {
            let newest = current.map_or(0, |(_, t)| t);
            match self
                .put_binding(thread_id, &winner, now_us().max(newest + 1))
                .await
            {
                Err(e) if e.is_already_exists() => {}
                other => other?,
            }
        }
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
    use crate::saver::Saver;
    use crate::store::StoreConfig;
    use crate::store::sqlite::SqliteStore;
    use crate::threads::WithIndex;

    use crate::store::testing::Wrapped;

    /// An index kept in a session of the embedded store without its native index (as an HTTP backend
    /// is), and that store with the index beside it.
    async fn indexed_store() -> (Arc<SessionKeptIndex>, WithIndex) {
        let base: Arc<dyn SessionStore> = Arc::new(Wrapped::new(
            SqliteStore::memory(StoreConfig::default()).unwrap(),
            false,
        ));
        let index = base
            .create_session(CreateSession {
                encryption_key_arn: None,
                metadata: Default::default(),
                tags: Default::default(),
            })
            .await
            .unwrap();
        let index = Arc::new(SessionKeptIndex::new(base.clone(), &index.id).unwrap());
        (index.clone(), WithIndex::new(base, index))
    }

    #[tokio::test]
    async fn binds_once_across_writers_and_rebinds() {
        let (store, _) = indexed_store().await;
        assert!(store.inner.thread_index().is_none());
        assert_eq!(store.lookup("t").await.unwrap(), None);
        let a = "0a1b2c3d-0000-4000-8000-00000000000a";
        let b = "0a1b2c3d-0000-4000-8000-00000000000b";
        let (ra, rb) = futures::join!(store.bind("t", a, false), store.bind("t", b, false));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra, rb, "both writers see one binding");
        assert_eq!(
            store.lookup("t").await.unwrap().as_deref(),
            Some(ra.as_str())
        );
        // Rewrites (prune) rebind to fresh sessions; the newest binding wins.
        let c = "0a1b2c3d-0000-4000-8000-00000000000c";
        let d = "0a1b2c3d-0000-4000-8000-00000000000d";
        store.bind("t", c, true).await.unwrap();
        assert_eq!(store.lookup("t").await.unwrap().as_deref(), Some(c));
        store.bind("t", d, true).await.unwrap();
        assert_eq!(store.lookup("t").await.unwrap().as_deref(), Some(d));
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
