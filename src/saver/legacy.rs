//! Threads written by the replaced saver: reading one of its checkpoints with its writes. Its envelopes
//! are decoded in `layout.rs`; `get_tuple` of the latest checkpoint (`read.rs`) and listings (`list.rs`)
//! find its checkpoint steps beside this layout's.

use std::collections::HashSet;

use super::layout::{self, Envelope};
use super::read::sort_writes;
use super::{CheckpointRecord, Saver, WriteRecord};
use crate::error::Result;
use crate::model::StepSummary;
use crate::store::SessionStore;

impl Saver {
    /// The replaced saver's layout: the checkpoint step in `UUID(md5("CHECKPOINTS#ns"))`, every write
    /// step in `UUID(md5("WRITES#ns#id"))` (all of them: the replaced saver read only the newest).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn load_legacy(
        &self,
        store: &dyn SessionStore,
        thread_id: &str,
        sid: &str,
        ns: &str,
        cp: &str,
        write_steps: Option<Vec<StepSummary>>,
        extra_writes: Vec<WriteRecord>,
    ) -> Result<Option<CheckpointRecord>> {
        let cp_inv = layout::legacy_checkpoint_invocation(ns);
        let w_inv = layout::legacy_writes_invocation(ns, cp);
        let (checkpoint, steps) = futures::join!(self.fetch(store, sid, &cp_inv, cp), async {
            match write_steps {
                Some(s) => Ok(Some(s)),
                None => self.list_invocation(store, sid, &w_inv).await,
            }
        });
        let Some(Envelope::LegacyCheckpoint(c)) = checkpoint? else {
            return Ok(None);
        };
        if c.checkpoint_id != cp || c.checkpoint_ns != ns {
            return Ok(None);
        }
        let steps = steps?.unwrap_or_default();
        let mut writes: Vec<WriteRecord> = Vec::new();
        let mut seen = HashSet::new();
        // Newest step first: keep the first of each (task, idx) for special writes, as an overwrite would.
        for env in self.fetch_all(store, sid, &steps).await? {
            if let Envelope::LegacyWrites(ws) = env {
                for w in ws {
                    let key = (w.task_id.clone(), w.write_idx);
                    if seen.insert(key) {
                        writes.push(WriteRecord {
                            task_id: w.task_id,
                            channel: w.channel,
                            value: w.value,
                            task_path: w.task_path,
                            idx: w.write_idx,
                        });
                    }
                }
            }
        }
        for w in extra_writes {
            if seen.insert((w.task_id.clone(), w.idx)) || w.idx < 0 {
                writes.retain(|x| !(x.task_id == w.task_id && x.idx == w.idx && w.idx < 0));
                writes.push(w);
            }
        }
        sort_writes(&mut writes);
        Ok(Some(CheckpointRecord {
            thread_id: thread_id.to_string(),
            checkpoint_ns: c.checkpoint_ns,
            checkpoint_id: c.checkpoint_id,
            parent_checkpoint_id: c.parent_checkpoint_id,
            checkpoint: c.checkpoint,
            metadata_json: layout::legacy_metadata_json(&c.metadata)?,
            channel_values: None,
            writes,
        }))
    }
}
