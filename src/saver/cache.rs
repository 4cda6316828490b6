//! What this process remembers of what it did (caches, never required for correctness): the steps it
//! wrote, as envelopes (reading a thread this process writes costs no GetInvocationStep and no
//! decoding), and which session each thread it met is in. The other caches of [`Saver`] are kept where
//! they are used: the sessions this saver created and their namespace invocations (`put_step`, in
//! `write.rs`), the generations of threads (`chain.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::layout::{self, Envelope};
use super::{Saver, locked};

/// A stored envelope as this process wrote it (shared, not copied, with the record it came from).
#[derive(Debug, Clone)]
pub(super) enum CachedEnv {
    Checkpoint(Arc<layout::CheckpointEnvelope>),
    Writes(Arc<layout::WritesEnvelope>),
}

impl CachedEnv {
    pub(super) fn envelope(&self) -> Envelope {
        match self {
            CachedEnv::Checkpoint(c) => Envelope::Checkpoint((**c).clone()),
            CachedEnv::Writes(w) => Envelope::Writes((**w).clone()),
        }
    }
}

type StepKey = (String, String, String);

/// Steps this process wrote, by (session, invocation, step id), as envelopes: steps are immutable, so
/// a copy is always right, and reading a thread this process writes costs no GetInvocationStep and no
/// decoding.
#[derive(Debug, Default)]
pub(super) struct StepCache {
    map: HashMap<StepKey, (Arc<[CachedEnv]>, usize)>,
    order: VecDeque<StepKey>,
    bytes: usize,
}

/// Bounds of the step cache (by the steps' JSON size).
const CACHE_BYTES: usize = 16 * 1024 * 1024;
const CACHE_STEP_MAX: usize = 1024 * 1024;

impl StepCache {
    fn insert(&mut self, key: StepKey, envs: Vec<CachedEnv>, size: usize) {
        if size > CACHE_STEP_MAX || self.map.contains_key(&key) {
            return;
        }
        self.bytes += size;
        self.map.insert(key.clone(), (Arc::from(envs), size));
        self.order.push_back(key);
        while self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, n)) = self.map.remove(&old) {
                self.bytes -= n;
            }
        }
    }
}

impl Saver {
    pub(super) fn cached_step(&self, sid: &str, inv: &str, step: &str) -> Option<Arc<[CachedEnv]>> {
        locked(&self.cache)
            .map
            .get(&(sid.to_string(), inv.to_string(), step.to_string()))
            .map(|(envs, _)| envs.clone())
    }

    pub(super) fn remember_step(
        &self,
        sid: &str,
        inv: &str,
        step: &str,
        envs: Vec<CachedEnv>,
        size: usize,
    ) {
        let key = (sid.to_string(), inv.to_string(), step.to_string());
        locked(&self.cache).insert(key, envs, size);
    }

    pub(super) fn cached_thread(&self, thread_id: &str) -> Option<String> {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(thread_id)
            .cloned()
    }

    pub(super) fn remember_thread(&self, thread_id: &str, session_id: &str) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(thread_id.to_string(), session_id.to_string());
    }

    pub(crate) fn forget_thread(&self, thread_id: &str) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(thread_id);
    }
}
