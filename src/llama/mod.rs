//! The LlamaIndex stores' engine (layout "li1"): the Python classes in `bedrock_sessions.llama_index` are
//! thin adapters to LlamaIndex's interfaces over what lives here.
//!
//! - [`parts`]: an event as step payloads (its JSON split across steps, images as image blocks), and back;
//! - [`view`]: a key's messages as the log replays them (entries, statuses, image references), the
//!   operations of the chat stores, and messages' images turned into references and back;
//! - [`chat`]: the message log of a key (an append-only log of state and delta events in one invocation,
//!   replayed on read, with this process's cache), for both chat stores;
//! - [`workflow`]: saved workflow contexts (an invocation per run);
//! - [`Generations`] (here): a key is a thread whose sessions are its generations, 0, 1, 2..., each bound
//!   in the thread index ([`crate::threads`]) under its own thread id; both stores move on through it.
//!
//! Layout, costs and choices: docs/llama-index.md. The ids are [`crate::ids::li1`].

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::{Error, ErrorCode, Result};
use crate::saver::Saver;
use crate::store::SessionStore;

pub mod chat;
pub mod parts;
pub mod view;
pub mod workflow;

/// The layout's name, in every part's header.
pub const LAYOUT: &str = "li1";
/// Image blocks a step may hold (the service's limit).
pub const MAX_IMAGES_PER_STEP: usize = 20;
/// The largest image stored as an image block (3.75 MB, the service's limit); larger ones stay inline.
pub const MAX_IMAGE_BYTES: usize = 3_932_160;
/// The service's bytes per step.
pub const DEFAULT_MAX_STEP_BYTES: usize = 52_428_800;
/// Write attempts under contention before giving up.
const MAX_ATTEMPTS: u32 = 32;

/// The thread id of a key's generation: `["llama_index",kind,namespace,key,generation]` as compact JSON
/// (non-ASCII kept), as layout li1 has always bound it.
pub fn thread_id(kind: &str, ns: &str, key: &str, generation: u64) -> String {
    serde_json::to_string(&serde_json::json!([
        "llama_index",
        kind,
        ns,
        key,
        generation
    ]))
    .expect("strings and a number")
}

/// (kind, namespace, key, generation) of a thread id of this layout.
pub fn parse_thread_id(text: &str) -> Option<(String, String, String, u64)> {
    if !text.starts_with("[\"llama_index\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let a = v.as_array()?;
    if a.len() != 5 {
        return None;
    }
    Some((
        a[1].as_str()?.to_string(),
        a[2].as_str()?.to_string(),
        a[3].as_str()?.to_string(),
        a[4].as_u64()?,
    ))
}

/// Whether a key names a session (its id or ARN): such a key's first generation is that session.
pub fn is_session_identifier(key: &str) -> bool {
    crate::validate::is_uuid(key) || crate::validate::parse_session_arn(key, false).is_some()
}

/// A key's chain of sessions. Bindings are never removed, so "generation g is bound" is monotonic in g:
/// the newest is found by galloping then bisecting, and two writers that move a key on at once bind the
/// next generation once (bind unless bound, atomic in every index).
#[derive(Debug)]
pub struct Generations {
    kind: &'static str,
    ns: String,
    /// The thread resolver of the saver (its cache of bindings), so keys map to sessions as threads do.
    resolver: Saver,
    clock: Arc<dyn Clock>,
}

impl Generations {
    pub fn new(kind: &'static str, ns: &str, clock: Arc<dyn Clock>) -> Self {
        Generations {
            kind,
            ns: ns.to_string(),
            resolver: Saver::new(),
            clock,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_us().div_euclid(1000)
    }

    pub fn tid(&self, key: &str, generation: u64) -> String {
        thread_id(self.kind, &self.ns, key, generation)
    }

    /// The session of a generation (`None` when unbound); with `create`, bound to a new session if unbound.
    pub async fn resolve(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
        create: bool,
    ) -> Result<Option<String>> {
        match self
            .resolver
            .resolve(store, &self.tid(key, generation), create)
            .await
        {
            Err(e) if create && e.code == ErrorCode::Validation => Err(e.context(format_args!(
                "key {key:?} (generation {generation}) needs a session of its own: on Amazon Bedrock pass \
                 thread_index=\"dynamodb:<table>\" (or an index session id) to SessionClient.bedrock(), or use \
                 session ids as keys (then a session that expires or fills up cannot be replaced)"
            ))),
            other => other,
        }
    }

    /// Like [`Self::resolve`] with `create`, which always gives a session.
    pub async fn bind(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
    ) -> Result<String> {
        self.resolve(store, key, generation, true)
            .await?
            .ok_or_else(|| Error::internal(format!("key {key:?}: no session after binding one")))
    }

    /// Generation 0: (its session, whether the caller named it): our thread id first, else the session
    /// the key names.
    pub async fn resolve_first(
        &self,
        store: &dyn SessionStore,
        key: &str,
    ) -> Result<(Option<String>, bool)> {
        if let Some(sid) = self.resolve(store, key, 0, false).await? {
            return Ok((Some(sid), false));
        }
        if is_session_identifier(key) {
            let sid = self.resolver.resolve(store, key, false).await?;
            // Only the session the key names: not a LangGraph thread that happens to use it as its id.
            if let Some(sid) = sid {
                if key.rsplit('/').next() == Some(sid.as_str()) {
                    return Ok((Some(sid), true));
                }
            }
        }
        Ok((None, false))
    }

    /// The newest bound generation (gallop, then bisect), knowing `generation` is bound to `sid`.
    pub async fn newest(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
        sid: String,
    ) -> Result<(u64, String)> {
        let (mut lo, mut lo_sid, mut step) = (generation, sid, 1u64);
        let mut hi;
        loop {
            match self.resolve(store, key, generation + step, false).await? {
                None => {
                    hi = generation + step;
                    break;
                }
                Some(s) => {
                    lo = generation + step;
                    lo_sid = s;
                    step *= 2;
                }
            }
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            match self.resolve(store, key, mid, false).await? {
                None => hi = mid,
                Some(s) => {
                    lo = mid;
                    lo_sid = s;
                }
            }
        }
        Ok((lo, lo_sid))
    }

    /// The next generation after `generation` (full, expired or ended): the one another writer bound
    /// already, followed to the newest, else a new one bound here.
    pub async fn next(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
    ) -> Result<(u64, String)> {
        match self.resolve(store, key, generation + 1, false).await? {
            Some(s) => self.newest(store, key, generation + 1, s).await,
            None => Ok((generation + 1, self.bind(store, key, generation + 1).await?)),
        }
    }

    /// A new session for a generation whose session was deleted: the embedded stores forget a deleted
    /// session's binding, so the generation is bound again (a cold reader finds it there); an index kept
    /// in sessions still points at the deleted one, so the next generation is used.
    pub async fn replace_dead(
        &self,
        store: &dyn SessionStore,
        key: &str,
        generation: u64,
        dead: &str,
    ) -> Result<(u64, String)> {
        self.resolver.forget_thread(&self.tid(key, generation));
        self.resolver.forget_thread(&self.tid(key, generation + 1));
        let sid = self.bind(store, key, generation).await?;
        if sid != dead {
            return Ok((generation, sid));
        }
        Ok((generation + 1, self.bind(store, key, generation + 1).await?))
    }
}

/// A random pause for the `contention`-th lost race (full jitter, at most half a second).
async fn back_off(contention: u32) {
    if contention < 2 {
        return;
    }
    let cap = (0.005 * 2f64.powi(contention as i32)).min(0.5);
    let r = uuid::Uuid::new_v4().as_u128() as u64 as f64 / u64::MAX as f64;
    tokio::time::sleep(std::time::Duration::from_secs_f64(cap * r)).await;
}

/// Whether an error is the store's "not found" for a missing invocation (the session exists).
fn invocation_missing(e: &Error) -> bool {
    e.code == ErrorCode::ResourceNotFound && e.is_invocation_not_found()
}

fn is_not_found(e: &Error) -> bool {
    e.code == ErrorCode::ResourceNotFound
}

/// At most `n` characters of `s` (the service counts characters).
fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
