//! Changing a thread's stored history: `delete_thread`, `copy_thread`, `prune`, `delete_for_runs`.
//! Steps are immutable: removing some checkpoints rewrites the rest into a new session (`rewrite`),
//! which the thread index then points at. `write_records` writes records (ids, parents and writes
//! preserved) into a thread or a session; it also writes the seeds of a new generation (`chain.rs`).

use std::collections::{BTreeMap, HashSet};

use super::layout::Typed;
use super::write::Rec;
use super::{
    CheckpointRecord, LIST_BATCH, PutCheckpoint, PutWrites, Saver, drop_session, layout, locked,
    sref,
};
use crate::error::{Error, Result};
use crate::store::SessionStore;

/// Writes of one checkpoint grouped as put_writes made them: (task id, task path) → writes.
type WriteGroups = BTreeMap<(String, String), Vec<(String, i64, Typed)>>;

impl Saver {
    pub async fn delete_thread(&self, store: &dyn SessionStore, thread_id: &str) -> Result<()> {
        let Some(sid) = self.resolve(store, thread_id, false).await? else {
            return Ok(());
        };
        if self.deferred {
            // Queued writes land first (a failure of theirs no longer matters).
            let _ = self.flush_lanes(Some(&sid)).await;
        }
        self.forget_thread(thread_id);
        // Every generation (see `chain`), the newest first: its binding in the index goes with it.
        for s in self.generations(store, &sid).await? {
            drop_session(store, &s).await?;
        }
        locked(&self.chains).remove(&sid);
        if let Some(index) = store.thread_index() {
            index.forget(thread_id, &sid).await?;
        }
        Ok(())
    }

    /// Writes records (oldest first, ids, parents and writes preserved) into `thread_id`, or straight
    /// into `session` when given (a rewrite fills its new session before the thread points at it). A
    /// session that fills up moves on to a next generation (see [`chain`]); returns the session written
    /// last. `batch`: a checkpoint and its writes share a step when they fit (seeds keep a step each, so
    /// that a listing sees which checkpoints a generation holds).
    ///
    /// [`chain`]: super::chain
    async fn write_records(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        records: &[CheckpointRecord],
        session: Option<&str>,
        batch: bool,
    ) -> Result<Option<String>> {
        if records.iter().any(|r| r.channel_values.is_none()) {
            return Err(Error::validation(
                "checkpoints of the replaced saver's layout cannot be copied or rewritten: continue the \
                 thread once under this saver first",
            ));
        }
        let mut target = session.map(String::from);
        let mut ordered: Vec<&CheckpointRecord> = records.iter().collect();
        ordered.sort_by(|a, b| a.checkpoint_id.cmp(&b.checkpoint_id));
        for r in ordered {
            let mut recs = vec![Rec::checkpoint(PutCheckpoint {
                thread_id: thread_id.to_string(),
                checkpoint_ns: r.checkpoint_ns.clone(),
                checkpoint_id: r.checkpoint_id.clone(),
                parent_checkpoint_id: r.parent_checkpoint_id.clone(),
                checkpoint: r.checkpoint.clone(),
                metadata_json: r.metadata_json.clone(),
                channel_values: r.channel_values.clone().unwrap_or_default(),
            })?];
            // The writes as put_writes made them, by (task, path).
            let mut groups: WriteGroups = BTreeMap::new();
            for w in &r.writes {
                groups
                    .entry((w.task_id.clone(), w.task_path.clone()))
                    .or_default()
                    .push((w.channel.clone(), w.idx, w.value.clone()));
            }
            for ((task_id, task_path), writes) in groups {
                recs.push(Rec::writes(PutWrites {
                    thread_id: thread_id.to_string(),
                    checkpoint_ns: r.checkpoint_ns.clone(),
                    checkpoint_id: r.checkpoint_id.clone(),
                    task_id,
                    task_path,
                    writes,
                })?);
            }
            // A checkpoint and its writes in one step when they fit in a batch; seeds keep the checkpoint
            // in a step of its own (a listing sees which checkpoints a generation holds), its writes batched.
            let write = |sid: String| {
                let recs = &recs;
                async move {
                    if batch {
                        return self.write_grouped(store, &sid, recs).await;
                    }
                    let (checkpoint, writes) = recs.split_at(1);
                    self.write_batch(store, &sid, &[&checkpoint[0]]).await?;
                    self.write_grouped(store, &sid, writes).await
                }
            };
            match &mut target {
                None => self.in_thread(store, thread_id, write).await?,
                Some(sid) => loop {
                    match write(sid.clone()).await {
                        Err(e) if self.needs_rollover(store, sid, &e).await? => {
                            *sid = self.new_generation(store, Some(thread_id), sid).await?;
                        }
                        other => break other.map_err(|e| Self::thread_error(thread_id, e))?,
                    }
                },
            }
        }
        Ok(target)
    }

    /// The first steps of a new generation: the seeds (see [`chain`]).
    ///
    /// [`chain`]: super::chain
    pub(crate) async fn write_seeds(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        seeds: &[CheckpointRecord],
        sid: &str,
    ) -> Result<()> {
        self.write_records(store, thread_id, seeds, Some(sid), false)
            .await
            .map(|_| ())
    }

    pub async fn copy_thread(
        &self,
        store: &dyn SessionStore,
        source: &str,
        target: &str,
    ) -> Result<()> {
        let records = self.all_records(store, source).await?;
        if records.is_empty() {
            return Ok(());
        }
        self.write_records(store, target, &records, None, true)
            .await
            .map(|_| ())
    }

    /// Replaces a thread's session by a new one holding only `keep` (steps are immutable: the only way
    /// to remove some is to rewrite the rest). Needs the thread index, which then points at the new session.
    async fn rewrite(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        keep: Vec<CheckpointRecord>,
    ) -> Result<()> {
        let Some(old) = self.resolve(store, thread_id, false).await? else {
            return Ok(());
        };
        let Some(index) = store.thread_index() else {
            return Err(Error::validation(
                "removing some checkpoints of a thread rewrites its session and needs a thread index",
            ));
        };
        let info = store.get_session(sref(&old)).await?;
        let mut metadata = info.metadata.clone();
        for key in [
            layout::META_THREAD,
            layout::META_PREVIOUS,
            layout::META_GENERATION,
            layout::META_NEXT,
        ] {
            metadata.remove(key);
        }
        let tags = store
            .list_tags_for_resource(crate::model::ResourceArn::parse(&info.arn)?)
            .await
            .unwrap_or_default();
        let new = self
            .create_thread_session(store, thread_id, metadata, tags)
            .await?;
        // Write into the new session under a private name (more sessions when it fills up), then point
        // the thread at the newest, and drop every old generation.
        let written = self
            .write_records(store, thread_id, &keep, Some(&new), true)
            .await;
        let newest = match written {
            Ok(n) => n.unwrap_or(new),
            Err(e) => {
                let _ = drop_session(store, &new).await;
                return Err(e);
            }
        };
        index.bind(thread_id, &newest, true).await?;
        self.forget_thread(thread_id);
        self.remember_thread(thread_id, &newest);
        for s in self.generations(store, &old).await? {
            drop_session(store, &s).await?;
        }
        locked(&self.chains).remove(&old);
        Ok(())
    }

    pub async fn prune(
        &self,
        store: &dyn SessionStore,
        thread_ids: &[String],
        keep_latest: bool,
    ) -> Result<()> {
        for t in thread_ids {
            if !keep_latest {
                self.delete_thread(store, t).await?;
                continue;
            }
            let records = self.all_records(store, t).await?;
            if records.is_empty() {
                continue;
            }
            let mut latest: BTreeMap<String, CheckpointRecord> = BTreeMap::new();
            for r in records.iter() {
                if latest
                    .get(&r.checkpoint_ns)
                    .is_none_or(|b| r.checkpoint_id > b.checkpoint_id)
                {
                    latest.insert(r.checkpoint_ns.clone(), r.clone());
                }
            }
            if latest.len() == records.len() {
                continue;
            }
            self.rewrite(store, t, latest.into_values().collect())
                .await?;
        }
        Ok(())
    }

    pub async fn delete_for_runs(
        &self,
        store: &dyn SessionStore,
        run_ids: &[String],
    ) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let runs: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
        let mut cursor = self.list_start(store, None, None, None).await?;
        // Gather per thread, then rewrite the threads that hold any of the runs.
        let mut per_thread: BTreeMap<String, Vec<CheckpointRecord>> = BTreeMap::new();
        loop {
            let batch = self.list_next(store, &mut cursor, LIST_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                per_thread.entry(r.thread_id.clone()).or_default().push(r);
            }
        }
        for (thread, records) in per_thread {
            let total = records.len();
            let keep: Vec<CheckpointRecord> = records
                .into_iter()
                .filter(|r| r.run_id().is_none_or(|id| !runs.contains(id.as_str())))
                .collect();
            if keep.len() == total {
                continue;
            }
            if keep.is_empty() {
                self.delete_thread(store, &thread).await?;
            } else {
                self.rewrite(store, &thread, keep).await?;
            }
        }
        Ok(())
    }
}
