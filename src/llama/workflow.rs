//! Saved workflow contexts: a run is an invocation of the key's session; a save is one event (more
//! steps for a large context) whose step ids carry a nonce, the part and the count, and the newest
//! complete save wins. A key's workflow sessions are generations of their own (kind `workflow`), and a
//! load searches them newest first.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::join_all;

use super::parts::{self, decode_part};
use super::{Generations, MAX_ATTEMPTS, invocation_missing, is_not_found, truncate_chars};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::li1::{self, StepIds};
use crate::model::{
    CreateInvocation, GetStep, ListSteps, PageRequest, PutStep, SessionRef, SessionStatus,
};
use crate::store::SessionStore;

/// At most this many parts a save (the count is one byte of the step id).
const MAX_PARTS: usize = 255;

#[derive(Debug)]
pub struct WorkflowLog {
    gens: Generations,
    max_step_bytes: usize,
    ids: StepIds,
    /// key → (generation, session) to save into, and the time of its last save.
    sessions: Mutex<HashMap<String, (u64, String)>>,
    last_time: Mutex<HashMap<String, i64>>,
}

/// A save's parts found in a listing.
struct Group {
    n: u8,
    parts: HashMap<u8, String>,
    time: i64,
}

impl WorkflowLog {
    pub fn new(gens: Generations, max_step_bytes: usize) -> Self {
        let ids = StepIds::new(gens.kind(), gens.namespace());
        WorkflowLog {
            gens,
            max_step_bytes,
            ids,
            sessions: Mutex::new(HashMap::new()),
            last_time: Mutex::new(HashMap::new()),
        }
    }

    fn inv(&self, run_id: &str) -> String {
        li1::invocation_id(self.gens.kind(), self.gens.namespace(), Some(run_id))
    }

    fn remember(&self, key: &str, at: (u64, String)) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), at);
    }

    async fn session(&self, store: &dyn SessionStore, key: &str) -> Result<(u64, String)> {
        let known = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        let sid = match self.gens.resolve_first(store, key).await?.0 {
            Some(sid) => sid,
            None => self.gens.bind(store, key, 0).await?,
        };
        let found = self.gens.newest(store, key, 0, sid).await?;
        self.remember(key, found.clone());
        Ok(found)
    }

    /// Stores a save: `data_json` (the context's dict as JSON) or, with `None`, a tombstone.
    pub async fn save(
        &self,
        store: &dyn SessionStore,
        key: &str,
        run_id: &str,
        data_json: Option<&str>,
    ) -> Result<()> {
        let (kind, body) = match data_json {
            Some(d) => ("ctx", format!(r#"{{"k":"ctx","data":{d}}}"#)),
            None => ("deleted", r#"{"k":"deleted"}"#.to_string()),
        };
        let (mut generation, mut sid) = self.session(store, key).await?;
        let inv = self.inv(run_id);
        for _ in 0..MAX_ATTEMPTS {
            // A new attempt leaves the parts of a failed one behind (incomplete: ignored).
            let nonce: [u8; 5] = uuid::Uuid::new_v4().as_bytes()[..5]
                .try_into()
                .expect("5 bytes");
            let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
            let payloads =
                parts::assemble(kind, &body, parts::plan(&[], self.max_step_bytes), &hex);
            if payloads.len() > MAX_PARTS {
                return Err(Error::validation(format!(
                    "run {run_id:?}: the context needs over {MAX_PARTS} steps"
                )));
            }
            let n = payloads.len() as u8;
            let t0 = {
                let last = self.last_time.lock().unwrap_or_else(|p| p.into_inner());
                self.gens
                    .now_ms()
                    .max(last.get(key).copied().unwrap_or(0) + 1)
            };
            let mut failed = None;
            for (p, payload) in payloads.into_iter().enumerate() {
                let put = store
                    .put_invocation_step(PutStep {
                        session: SessionRef::of_id(&sid),
                        invocation_id: inv.clone(),
                        step_id: Some(self.ids.part_step(nonce, p as u8, n)),
                        time: (t0 + p as i64) * 1000,
                        payload,
                    })
                    .await;
                if let Err(e) = put {
                    failed = Some(e);
                    break;
                }
            }
            let Some(mut err) = failed else {
                self.last_time
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_string(), t0 + n as i64 - 1);
                return Ok(());
            };
            if invocation_missing(&err) {
                let created = store
                    .create_invocation(CreateInvocation {
                        session: SessionRef::of_id(&sid),
                        invocation_id: Some(inv.clone()),
                        description: Some(truncate_chars(
                            &format!("llama-index workflow run {run_id}"),
                            200,
                        )),
                    })
                    .await;
                match created {
                    Ok(_) => continue,
                    Err(e) if e.code == ErrorCode::Conflict => continue,
                    Err(e) if is_not_found(&e) => err = e,
                    Err(e) => return Err(e),
                }
            }
            match err.code {
                // The session was deleted.
                ErrorCode::ResourceNotFound => {
                    (generation, sid) =
                        self.gens.replace_dead(store, key, generation, &sid).await?;
                }
                ErrorCode::ServiceQuotaExceeded | ErrorCode::Conflict => {
                    if err.code == ErrorCode::Conflict {
                        let s = store.get_session(SessionRef::of_id(&sid)).await?;
                        if s.status == SessionStatus::Active {
                            return Err(err);
                        }
                    }
                    (generation, sid) = self.gens.next(store, key, generation).await?;
                }
                _ => return Err(err),
            }
            self.remember(key, (generation, sid.clone()));
        }
        Err(Error::new(
            ErrorCode::Throttling,
            format!("run {run_id:?}: gave up saving"),
        ))
    }

    /// The run's newest save (the JSON of its data), searching the key's generations from the newest;
    /// `None` when there is none or the newest is a tombstone.
    pub async fn load(
        &self,
        store: &dyn SessionStore,
        key: &str,
        run_id: &str,
    ) -> Result<Option<String>> {
        let Some(sid0) = self.gens.resolve_first(store, key).await?.0 else {
            return Ok(None);
        };
        let (newest, mut sid) = self.gens.newest(store, key, 0, sid0.clone()).await?;
        self.remember(key, (newest, sid.clone()));
        let inv = self.inv(run_id);
        for generation in (0..=newest).rev() {
            if generation != newest {
                sid = if generation == 0 {
                    sid0.clone()
                } else {
                    match self.gens.resolve(store, key, generation, false).await? {
                        Some(s) => s,
                        None => continue,
                    }
                };
            }
            let Some(best) = self.newest_save(store, &sid, &inv).await? else {
                continue;
            };
            let got = join_all((0..best.n).map(|p| {
                store.get_invocation_step(GetStep {
                    session: SessionRef::of_id(&sid),
                    invocation_id: inv.clone(),
                    step_id: best.parts[&p].clone(),
                })
            }))
            .await;
            let mut text = String::new();
            for step in got {
                let part = decode_part(0, &step?).ok_or_else(|| {
                    Error::validation(format!("run {run_id:?}: a saved step is not readable"))
                })?;
                text.push_str(&part.text);
            }
            let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::validation(format!(
                    "run {run_id:?}: a saved context is not readable: {e}"
                ))
            })?;
            if body.get("k").and_then(|k| k.as_str()) == Some("deleted") {
                return Ok(None);
            }
            return Ok(body.get("data").map(|d| d.to_string()));
        }
        Ok(None)
    }

    /// The newest complete save of a run in one session (`None`: none, or the session is gone).
    async fn newest_save(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        inv: &str,
    ) -> Result<Option<Group>> {
        // In listing order (newest first), found by nonce.
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<[u8; 5], usize> = HashMap::new();
        let mut token = None;
        loop {
            let page = store
                .list_invocation_steps(ListSteps {
                    session: SessionRef::of_id(sid),
                    invocation_id: Some(inv.to_string()),
                    page: PageRequest {
                        max_results: Some(1000),
                        next_token: token,
                    },
                })
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            for s in page.items {
                let Some((nonce, p, n)) = self.ids.part_of(&s.step_id) else {
                    continue;
                };
                let t = s.time.div_euclid(1000);
                let i = *index.entry(nonce).or_insert_with(|| {
                    groups.push(Group {
                        n,
                        parts: HashMap::new(),
                        time: 0,
                    });
                    groups.len() - 1
                });
                let g = &mut groups[i];
                g.parts.insert(p, s.step_id);
                g.time = g.time.max(t);
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        // Newest first in the listing: of equal times, the first listed wins.
        let mut best: Option<Group> = None;
        for g in groups {
            let complete =
                g.parts.len() == g.n as usize && (0..g.n).all(|p| g.parts.contains_key(&p));
            if complete && best.as_ref().is_none_or(|b| g.time > b.time) {
                best = Some(g);
            }
        }
        Ok(best)
    }
}
