//! The stored layout of LangGraph checkpoints in sessions, version "bs1".
//!
//! - A thread is a session. Each checkpoint namespace has one invocation, whose id is derived from the
//!   namespace (created once; a checkpoint costs a single PutInvocationStep).
//! - Every step id carries a 48-bit tag of its checkpoint id, so the step *summaries* of a listing tell
//!   which namespace (by the invocation) and which checkpoint (by the tag) each step belongs to, and
//!   whether it is the checkpoint, a revision of it, or writes — no payload is fetched to find things.
//! - The checkpoint step's id is the checkpoint id itself (LangGraph's uuid6 ids are lower-case UUIDs)
//!   and its time is the uuid6 time, so newest-first listings are also newest-checkpoint-first.
//! - One step per `put_writes` call holds all the writes of that call, so parallel tasks never
//!   overwrite each other. Regular writes have a deterministic step id (a retry is a no-op); a call
//!   with special writes (error, interrupt, resume...) gets a fresh id and a sequence number, and the
//!   newest wins.
//! - Each step holds one text block: a JSON envelope with the state serialized once
//!   (`serde.dumps_typed` bytes, base64).
//!
//! Id bit layout (RFC 9562 version-8 UUIDs): namespace invocation `nnnnnnnn-nnnn-8B51-vhhh-hhhhhhhhhhhh`
//! (n: namespace tag); marked steps `cccccccc-cccc-8Bkk-vrrr-rrrrrrrrrrrr` (c: checkpoint tag; kk: 0x57
//! writes, 0x52 revision, 0x43 checkpoint whose id is not a UUID; r: hash or random).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::validate::is_uuid;

pub const LAYOUT: &str = "bs1";
/// Session metadata keys written by the saver.
pub const META_THREAD: &str = "langgraph:thread_id";
pub const META_LAYOUT: &str = "langgraph:layout";
/// The earlier generations of the thread, newest first, space-separated (see `chain`).
pub const META_PREVIOUS: &str = "langgraph:previous";
/// How many generations came before this session (see `chain`).
pub const META_GENERATION: &str = "langgraph:generation";
/// The session the thread moved on to (a thread whose id is a session id; see `chain`).
pub const META_NEXT: &str = "langgraph:next";

const MARK: u8 = crate::ids::MARK;
const KIND_INVOCATION: u8 = 0x51;
const KIND_WRITES: u8 = 0x57;
const KIND_HASHED_CHECKPOINT: u8 = 0x43;
const KIND_REVISION: u8 = 0x52;
const KIND_BATCH: u8 = 0x42;
/// Flag bit (in byte 8) of a batch step id: the batch holds a checkpoint.
const BATCH_HAS_CHECKPOINT: u8 = 0x01;
/// The widest time span of a batch step, in milliseconds (16 bits in its id).
pub const BATCH_MAX_SPAN_MS: i64 = 0xFFFF;

const NS: Uuid = Uuid::from_u128(0x6c61_6e67_6772_6170_6862_6564_726f_636b); // "langgraphbedrock"

/// A 48-bit tag: of a namespace (in invocation ids) or of a checkpoint id (in step ids).
pub type Tag = [u8; 6];

fn hash(name: &str) -> [u8; 16] {
    *Uuid::new_v5(&NS, name.as_bytes()).as_bytes()
}

fn marked(mut b: [u8; 16], tag: Tag, kind: u8) -> String {
    b[..6].copy_from_slice(&tag);
    Uuid::from_bytes(crate::ids::mark(b, kind)).to_string()
}

fn bytes_of(id: &str) -> Option<[u8; 16]> {
    if !is_uuid(id) {
        return None;
    }
    Uuid::parse_str(id).ok().map(|u| *u.as_bytes())
}

fn tag_of(h: [u8; 16]) -> Tag {
    [h[0], h[1], h[2], h[3], h[4], h[5]]
}

/// `derive(ns)`, computed once for the root namespace (the one that holds most of a graph's steps).
fn per_namespace<T: Clone>(
    root: &std::sync::OnceLock<T>,
    ns: &str,
    derive: impl Fn(&str) -> T,
) -> T {
    if ns.is_empty() {
        root.get_or_init(|| derive("")).clone()
    } else {
        derive(ns)
    }
}

/// The tag of a namespace.
pub fn ns_tag(ns: &str) -> Tag {
    static ROOT: std::sync::OnceLock<Tag> = std::sync::OnceLock::new();
    per_namespace(&ROOT, ns, |ns| tag_of(hash(&format!("ns|{ns}"))))
}

/// The tag of a checkpoint id.
pub fn checkpoint_tag(checkpoint_id: &str) -> Tag {
    tag_of(hash(&format!("cp|{checkpoint_id}")))
}

/// The invocation of namespace `ns`: every step of its checkpoints and writes.
pub fn namespace_invocation_id(ns: &str) -> String {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    per_namespace(&ROOT, ns, |ns| {
        marked(hash(&format!("nsinv|{ns}")), ns_tag(ns), KIND_INVOCATION)
    })
}

/// The step id of a checkpoint: the id itself when it is a lower-case UUID (LangGraph's uuid6).
pub fn checkpoint_step_id(checkpoint_id: &str) -> String {
    if is_uuid(checkpoint_id) && bytes_of(checkpoint_id).is_some_and(|b| b[6] != MARK) {
        checkpoint_id.to_string()
    } else {
        marked(
            hash(&format!("cps|{checkpoint_id}")),
            checkpoint_tag(checkpoint_id),
            KIND_HASHED_CHECKPOINT,
        )
    }
}

/// A new revision step id, for a checkpoint put again with other content.
pub fn revision_step_id(checkpoint_id: &str) -> String {
    marked(
        *Uuid::new_v4().as_bytes(),
        checkpoint_tag(checkpoint_id),
        KIND_REVISION,
    )
}

/// The step id of one put_writes call: deterministic for regular writes, fresh otherwise.
pub fn writes_step_id(
    checkpoint_id: &str,
    task_id: &str,
    keys: &[(String, i64)],
    special: bool,
) -> String {
    let tag = checkpoint_tag(checkpoint_id);
    if special {
        return marked(*Uuid::new_v4().as_bytes(), tag, KIND_WRITES);
    }
    let mut name = format!("w|{checkpoint_id}|{task_id}");
    for (ch, idx) in keys {
        name.push('|');
        name.push_str(&idx.to_string());
        name.push(':');
        name.push_str(ch);
    }
    marked(hash(&name), tag, KIND_WRITES)
}

/// A new batch step id: `hi` is the time of the newest checkpoint the batch holds data of (its tag and
/// the step's time), `span` how far back (ms) its oldest checkpoint is, `has_checkpoint` whether it holds
/// a checkpoint (not only writes). Id: `hhhhhhhh-hhhh-8B42-vfss-rrrrrrrrrrrr` (h: tag of the newest checkpoint;
/// f: flags; s: span; r: random).
pub fn batch_step_id(newest_checkpoint_id: &str, span_ms: i64, has_checkpoint: bool) -> String {
    let mut b = *Uuid::new_v4().as_bytes();
    b[..6].copy_from_slice(&checkpoint_tag(newest_checkpoint_id));
    b[6] = MARK;
    b[7] = KIND_BATCH;
    b[8] = 0x80
        | (b[8] & 0x3E)
        | if has_checkpoint {
            BATCH_HAS_CHECKPOINT
        } else {
            0
        };
    let span = span_ms.clamp(0, BATCH_MAX_SPAN_MS) as u16;
    b[9..11].copy_from_slice(&span.to_be_bytes());
    Uuid::from_bytes(b).to_string()
}

/// A batch step's span (ms back from its time) and whether it holds a checkpoint.
pub fn batch_info(step_id: &str) -> Option<(i64, bool)> {
    let b = bytes_of(step_id)?;
    (b[6] == MARK && b[7] == KIND_BATCH).then(|| {
        (
            u16::from_be_bytes([b[9], b[10]]) as i64,
            b[8] & BATCH_HAS_CHECKPOINT != 0,
        )
    })
}

/// Whether an invocation id is a "bs1" namespace invocation, and of which namespace tag.
pub fn parse_invocation(id: &str) -> Option<Tag> {
    let b = bytes_of(id)?;
    (b[6] == MARK && b[7] == KIND_INVOCATION).then(|| tag_of(b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The checkpoint itself (its step id is its id, or hashed).
    Checkpoint,
    Revision,
    Writes,
    /// Records of several checkpoints (see [`batch_step_id`]); its tag is its newest checkpoint's.
    Batch,
}

/// The kind of a step of a "bs1" invocation and the tag of its checkpoint, from its id alone.
pub fn classify_step(step_id: &str) -> (StepKind, Tag) {
    match bytes_of(step_id) {
        Some(b) if b[6] == MARK && b[7] == KIND_WRITES => (StepKind::Writes, tag_of(b)),
        Some(b) if b[6] == MARK && b[7] == KIND_REVISION => (StepKind::Revision, tag_of(b)),
        Some(b) if b[6] == MARK && b[7] == KIND_BATCH => (StepKind::Batch, tag_of(b)),
        Some(b) if b[6] == MARK && b[7] == KIND_HASHED_CHECKPOINT => {
            (StepKind::Checkpoint, tag_of(b))
        }
        _ => (StepKind::Checkpoint, checkpoint_tag(step_id)),
    }
}

/// The time a uuid6 (or uuid1) id carries, in milliseconds since the epoch.
pub fn uuid_time_ms(id: &str) -> Option<i64> {
    let u = Uuid::parse_str(id).ok()?;
    if !is_uuid(id) {
        return None;
    }
    let ts = match u.get_version_num() {
        6 => {
            let b = u.as_bytes();
            let hi = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
            let lo = (((b[6] & 0x0F) as u64) << 8) | b[7] as u64;
            (hi << 12) | lo
        }
        1 => {
            let (ticks, _) = u.get_timestamp()?.to_gregorian();
            ticks
        }
        _ => return None,
    };
    // 100 ns ticks since 1582-10-15.
    const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
    Some((ts.checked_sub(GREGORIAN_OFFSET)? / 10_000) as i64)
}

// ---------------------------------------------------------------------------------------------
// Envelopes

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// `serde.dumps_typed` output: (type tag, bytes); JSON `[tag, base64]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typed(pub String, #[serde(with = "b64")] pub Vec<u8>);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointEnvelope {
    pub v: String,
    pub kind: String,
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    /// Orders revisions of one checkpoint (nanoseconds at write).
    pub seq: i64,
    /// The checkpoint without its channel values.
    pub checkpoint: Typed,
    /// Plain JSON, so that filters and auditors can read it.
    pub metadata: Box<RawValue>,
    pub channel_values: Vec<(String, Typed)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WritesEnvelope {
    pub v: String,
    pub kind: String,
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub task_id: String,
    pub task_path: String,
    pub seq: i64,
    /// (channel, idx, value)
    pub writes: Vec<(String, i64, Typed)>,
}

/// Envelope JSON written directly into one buffer: the same text `serde_json::to_string` gives, at a
/// fraction of the cost. Base64 never needs escaping, so values (most of an envelope) are encoded in
/// place instead of encoded, then scanned for escapes, then copied.
struct JsonOut(Vec<u8>);

impl JsonOut {
    fn with_capacity(n: usize) -> Self {
        JsonOut(Vec::with_capacity(n))
    }

    fn raw(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, s);
        self
    }

    fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    fn int(&mut self, n: i64) -> &mut Self {
        let _ = serde_json::to_writer(&mut self.0, &n);
        self
    }

    fn typed(&mut self, t: &Typed) -> &mut Self {
        self.raw("[").str(&t.0).raw(",\"");
        let at = self.0.len();
        self.0
            .resize(at + base64::encoded_len(t.1.len(), true).unwrap_or(0), 0);
        let n = STANDARD.encode_slice(&t.1, &mut self.0[at..]).unwrap_or(0);
        self.0.truncate(at + n);
        self.raw("\"]")
    }

    fn finish(self) -> String {
        // Only str pieces and serde_json's output went in.
        String::from_utf8(self.0).expect("JSON is UTF-8")
    }
}

fn typed_len(t: &Typed) -> usize {
    t.0.len() + t.1.len() * 4 / 3 + 12
}

impl CheckpointEnvelope {
    /// This envelope's JSON (as `serde_json::to_string` writes it).
    pub fn to_json(&self) -> String {
        let cap = 256
            + self.thread_id.len()
            + self.checkpoint_ns.len()
            + self.metadata.get().len()
            + typed_len(&self.checkpoint)
            + self
                .channel_values
                .iter()
                .map(|(k, v)| k.len() + 8 + typed_len(v))
                .sum::<usize>();
        let mut o = JsonOut::with_capacity(cap);
        o.raw("{\"v\":").str(&self.v);
        o.raw(",\"kind\":").str(&self.kind);
        o.raw(",\"thread_id\":").str(&self.thread_id);
        o.raw(",\"checkpoint_ns\":").str(&self.checkpoint_ns);
        o.raw(",\"checkpoint_id\":").str(&self.checkpoint_id);
        o.raw(",\"parent_checkpoint_id\":")
            .opt_str(self.parent_checkpoint_id.as_deref());
        o.raw(",\"seq\":").int(self.seq);
        o.raw(",\"checkpoint\":").typed(&self.checkpoint);
        o.raw(",\"metadata\":").raw(self.metadata.get());
        o.raw(",\"channel_values\":[");
        for (i, (k, v)) in self.channel_values.iter().enumerate() {
            o.raw(if i == 0 { "[" } else { ",[" })
                .str(k)
                .raw(",")
                .typed(v)
                .raw("]");
        }
        o.raw("]}");
        o.finish()
    }
}

impl WritesEnvelope {
    /// This envelope's JSON (as `serde_json::to_string` writes it).
    pub fn to_json(&self) -> String {
        let cap = 256
            + self.thread_id.len()
            + self.checkpoint_ns.len()
            + self.task_id.len()
            + self.task_path.len()
            + self
                .writes
                .iter()
                .map(|(c, _, v)| c.len() + 28 + typed_len(v))
                .sum::<usize>();
        let mut o = JsonOut::with_capacity(cap);
        o.raw("{\"v\":").str(&self.v);
        o.raw(",\"kind\":").str(&self.kind);
        o.raw(",\"thread_id\":").str(&self.thread_id);
        o.raw(",\"checkpoint_ns\":").str(&self.checkpoint_ns);
        o.raw(",\"checkpoint_id\":").str(&self.checkpoint_id);
        o.raw(",\"task_id\":").str(&self.task_id);
        o.raw(",\"task_path\":").str(&self.task_path);
        o.raw(",\"seq\":").int(self.seq);
        o.raw(",\"writes\":[");
        for (i, (c, idx, v)) in self.writes.iter().enumerate() {
            o.raw(if i == 0 { "[" } else { ",[" })
                .str(c)
                .raw(",")
                .int(*idx)
                .raw(",")
                .typed(v)
                .raw("]");
        }
        o.raw("]}");
        o.finish()
    }
}

/// A decoded step of either layout.
#[derive(Debug, Clone)]
pub enum Envelope {
    Checkpoint(CheckpointEnvelope),
    Writes(WritesEnvelope),
    /// A batch: checkpoints and writes of several checkpoints of one namespace, written as one step.
    Batch(Vec<Envelope>),
    LegacyCheckpoint(LegacyCheckpoint),
    LegacyWrites(Vec<LegacyWrite>),
}

/// A checkpoint step of langgraph-checkpoint-aws's BedrockSessionSaver.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyCheckpoint {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    /// The whole checkpoint, channel values included, `[type, base64]`.
    pub checkpoint: Typed,
    /// `["json", base64(json)]`
    pub metadata: Typed,
    pub parent_checkpoint_id: Option<String>,
}

/// One write block of langgraph-checkpoint-aws's BedrockSessionSaver.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyWrite {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub task_id: String,
    pub channel: String,
    pub value: Typed,
    pub task_path: String,
    pub write_idx: i64,
}

/// Envelopes at least this long are compressed (when it pays).
pub const COMPRESS_MIN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Compressed {
    v: String,
    z: String,
    /// base64 of zstd(envelope JSON)
    data: String,
}

/// Compression contexts, shared by every thread. A context is costly to create (allocated and zeroed,
/// then paged in): LangGraph's sync API runs `put` on short-lived pool threads, so a context per thread
/// was created anew on most calls.
struct Pool<T>(std::sync::Mutex<Vec<T>>);

impl<T> Pool<T> {
    const fn new() -> Self {
        Pool(std::sync::Mutex::new(Vec::new()))
    }

    /// Runs `f` with a pooled context (made by `make` when none is idle), then keeps it for reuse.
    fn with<R>(&self, make: impl FnOnce() -> Option<T>, f: impl FnOnce(Option<&mut T>) -> R) -> R {
        // At most this many idle contexts are kept: more threads than that rarely compress at once.
        const KEEP: usize = 8;
        let idle = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut ctx = idle.or_else(make);
        let out = f(ctx.as_mut());
        if let Some(c) = ctx {
            let mut idle = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < KEEP {
                idle.push(c);
            }
        }
        out
    }
}

static COMPRESSORS: Pool<zstd::bulk::Compressor<'static>> = Pool::new();
static DECOMPRESSORS: Pool<zstd::bulk::Decompressor<'static>> = Pool::new();

/// The text block stored for an envelope: the JSON itself, or, when large and compressible, its zstd
/// compression (base64 in a small JSON wrapper; the service takes text blocks).
pub fn pack(json: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    // zstd's fastest level: these are small JSON documents written on every call.
    const LEVEL: i32 = 1;
    // A large envelope is compressed only if a sample of it pays (a state of already-compressed or random
    // data does not, and compressing megabytes of it only to throw the result away costs more than the write).
    const PROBE_FROM: usize = 1 << 20;
    const SAMPLE: usize = 128 * 1024;
    // Compressed data travels as base64 (4/3 of its size) in a small wrapper: keep it only when that is
    // at least 10% smaller than the JSON itself.
    let pays = |z: usize, n: usize| z * 4 / 3 + 64 < n * 9 / 10;
    let compress = |data: &[u8]| {
        COMPRESSORS.with(
            || zstd::bulk::Compressor::new(LEVEL).ok(),
            |c| match c {
                Some(z) => z.compress(data),
                None => zstd::bulk::compress(data, LEVEL),
            },
        )
    };
    if json.len() < COMPRESS_MIN {
        return Cow::Borrowed(json);
    }
    if json.len() >= PROBE_FROM {
        // The middle of the envelope: its start is the checkpoint's small fields.
        let from = json.len() / 2 - SAMPLE / 2;
        let sample = &json.as_bytes()[from..from + SAMPLE];
        if !compress(sample).is_ok_and(|z| pays(z.len(), SAMPLE)) {
            return Cow::Borrowed(json);
        }
    }
    match compress(json.as_bytes()) {
        Ok(z) if pays(z.len(), json.len()) => serde_json::to_string(&Compressed {
            v: LAYOUT.into(),
            z: "zstd".into(),
            data: STANDARD.encode(z),
        })
        .map_or(Cow::Borrowed(json), Cow::Owned),
        _ => Cow::Borrowed(json),
    }
}

/// The envelope JSON of a stored text block (inflating a compressed one); other text passes through.
pub fn unpack(text: &str) -> Result<std::borrow::Cow<'_, str>> {
    if !text.starts_with("{\"v\":\"bs1\",\"z\":") {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let c: Compressed =
        serde_json::from_str(text).map_err(|e| corrupt("compressed envelope", e))?;
    if c.z != "zstd" {
        return Err(Error::internal(format!(
            "unknown compression {:?}: upgrade bedrock-sessions",
            c.z
        )));
    }
    let z = STANDARD
        .decode(c.data.as_bytes())
        .map_err(|e| corrupt("compressed envelope", e))?;
    // Bounded: a step holds at most 50 MB; its JSON cannot be much more than 4/3 of that.
    const LIMIT: usize = 128 * 1024 * 1024;
    let json = DECOMPRESSORS
        .with(
            || zstd::bulk::Decompressor::new().ok(),
            |d| match d {
                // Allocates the frame's recorded size (ours record it), never more than the bound.
                Some(dz) => dz.decompress(&z, LIMIT),
                None => zstd::bulk::decompress(&z, LIMIT),
            },
        )
        .map_err(|e| corrupt("compressed envelope", e))?;
    String::from_utf8(json)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| corrupt("compressed envelope", e))
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// The JSON of a batch envelope holding the given envelope JSONs.
pub fn batch_json<'a>(records: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("{\"v\":\"bs1\",\"kind\":\"batch\",\"records\":[");
    for (i, r) in records.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("]}");
    out
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default)]
    v: Option<&'a str>,
    #[serde(default)]
    kind: Option<&'a str>,
    #[serde(default)]
    step_type: Option<&'a str>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("stored {what} cannot be read: {e}"))
}

/// Decodes the text blocks of a step. Returns None for steps that are not LangGraph state.
pub fn decode(texts: &[&str]) -> Result<Option<Envelope>> {
    let Some(first) = texts.first() else {
        return Ok(None);
    };
    let unpacked = unpack(first)?;
    let first: &str = &unpacked;
    let probe: Probe<'_> = match serde_json::from_str(first) {
        Ok(p) => p,
        Err(_) if texts.len() > 1 => {
            // A large envelope split over several blocks.
            let joined = texts.concat();
            return decode(&[joined.as_str()]);
        }
        Err(_) => return Ok(None),
    };
    match (probe.v, probe.kind, probe.step_type) {
        (Some(LAYOUT), Some("checkpoint"), _) => Ok(Some(Envelope::Checkpoint(
            serde_json::from_str(first).map_err(|e| corrupt("checkpoint", e))?,
        ))),
        (Some(LAYOUT), Some("writes"), _) => Ok(Some(Envelope::Writes(
            serde_json::from_str(first).map_err(|e| corrupt("writes", e))?,
        ))),
        (Some(LAYOUT), Some("batch"), _) => {
            let batch: BatchIn<'_> =
                serde_json::from_str(first).map_err(|e| corrupt("batch", e))?;
            let mut out = Vec::with_capacity(batch.records.len());
            for r in batch.records {
                match decode(&[r.get()])? {
                    Some(Envelope::Batch(_)) => return Err(corrupt("batch", "nested batch")),
                    Some(env) => out.push(env),
                    None => return Err(corrupt("batch", "a record that is not LangGraph state")),
                }
            }
            Ok(Some(Envelope::Batch(out)))
        }
        (Some(v), _, _) if v != LAYOUT => Err(Error::internal(format!(
            "stored layout {v:?} is newer than this bedrock-sessions understands ({LAYOUT}); upgrade the package"
        ))),
        (_, _, Some("CHECKPOINTS")) => Ok(Some(Envelope::LegacyCheckpoint(
            serde_json::from_str(first).map_err(|e| corrupt("legacy checkpoint", e))?,
        ))),
        (_, _, Some("WRITES")) => {
            let writes = texts
                .iter()
                .map(|t| {
                    serde_json::from_str::<LegacyWrite>(t).map_err(|e| corrupt("legacy write", e))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Envelope::LegacyWrites(writes)))
        }
        _ => Ok(None),
    }
}

/// langgraph-checkpoint-aws: `UUID(md5("CHECKPOINTS#" + ns))`.
pub fn legacy_checkpoint_invocation(ns: &str) -> String {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    per_namespace(&ROOT, ns, |ns| legacy_uuid(&format!("CHECKPOINTS#{ns}")))
}

/// langgraph-checkpoint-aws: `UUID(md5("WRITES#" + ns + "#" + checkpoint_id))`.
pub fn legacy_writes_invocation(ns: &str, checkpoint_id: &str) -> String {
    legacy_uuid(&format!("WRITES#{ns}#{checkpoint_id}"))
}

fn legacy_uuid(s: &str) -> String {
    Uuid::from_bytes(md5(s.as_bytes())).to_string()
}

/// The metadata of a legacy checkpoint, as JSON text.
pub fn legacy_metadata_json(t: &Typed) -> Result<String> {
    if t.0 != "json" {
        return Err(Error::internal(format!(
            "legacy metadata of type {:?} is not supported",
            t.0
        )));
    }
    // Older versions stored base64 inside the typed pair; our Typed already decoded one layer.
    String::from_utf8(t.1.clone()).map_err(|e| corrupt("legacy metadata", e))
}

/// Decodes base64 text (used by legacy envelopes, whose typed pairs are `[type, base64]` too).
pub fn b64decode(s: &str) -> Result<Vec<u8>> {
    STANDARD.decode(s).map_err(|e| corrupt("base64", e))
}

// A small MD5, needed only to find the invocations of the replaced saver (which derived ids from MD5).
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a0.to_le_bytes());
    out[4..8].copy_from_slice(&b0.to_le_bytes());
    out[8..12].copy_from_slice(&c0.to_le_bytes());
    out[12..].copy_from_slice(&d0.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_json_is_what_serde_writes() {
        let odd = "th\"read\\ \u{1} \n é 🥾 </script>";
        let typed =
            |tag: &str, n: usize| Typed(tag.into(), (0..n).map(|i| (i * 37 % 256) as u8).collect());
        for (parent, values, metadata) in [
            (None, vec![], r#"{}"#),
            (
                Some("1f0c-parent".to_string()),
                vec![
                    ("messages".to_string(), typed("msgpack", 3000)),
                    (odd.to_string(), typed("null", 0)),
                ],
                r#"{"source":"loop","step":3,"writes":{"n":[1,2.5,null]},"é":"\u00e9"}"#,
            ),
            (
                Some(String::new()),
                vec![
                    ("a".into(), typed("bytes", 1)),
                    ("b".into(), typed("bytes", 2)),
                ],
                "null",
            ),
        ] {
            let env = CheckpointEnvelope {
                v: LAYOUT.into(),
                kind: "checkpoint".into(),
                thread_id: odd.into(),
                checkpoint_ns: "sub:1|inner:2".into(),
                checkpoint_id: "1f0c0000-0000-6000-8000-000000000000".into(),
                parent_checkpoint_id: parent,
                seq: -1,
                checkpoint: typed("msgpack", 77),
                metadata: RawValue::from_string(metadata.into()).unwrap(),
                channel_values: values,
            };
            assert_eq!(env.to_json(), serde_json::to_string(&env).unwrap());
        }
        for writes in [
            vec![],
            vec![
                ("cart".to_string(), 0, typed("msgpack", 10)),
                (odd.to_string(), -3, typed("pickle", 4)),
            ],
        ] {
            let env = WritesEnvelope {
                v: LAYOUT.into(),
                kind: "writes".into(),
                thread_id: "t".into(),
                checkpoint_ns: String::new(),
                checkpoint_id: "c".into(),
                task_id: odd.into(),
                task_path: "~__pregel_pull, think".into(),
                seq: i64::MAX,
                writes,
            };
            assert_eq!(env.to_json(), serde_json::to_string(&env).unwrap());
        }
    }

    #[test]
    fn md5_known_vectors() {
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        // The replaced saver's invocation for the root namespace.
        assert_eq!(
            legacy_checkpoint_invocation(""),
            Uuid::from_bytes(md5(b"CHECKPOINTS#")).to_string()
        );
    }

    #[test]
    fn ids_are_valid_and_classified() {
        let cp = "1ef4f797-8335-6428-8001-8a1503f9b875";
        let inv = namespace_invocation_id("");
        assert!(is_uuid(&inv));
        assert_eq!(parse_invocation(&inv), Some(ns_tag("")));
        assert_ne!(
            parse_invocation(&namespace_invocation_id("child:1")),
            Some(ns_tag(""))
        );
        assert_eq!(parse_invocation(cp), None);
        assert_eq!(checkpoint_step_id(cp), cp);
        assert_eq!(
            classify_step(cp),
            (StepKind::Checkpoint, checkpoint_tag(cp))
        );
        let keys = vec![("ch".to_string(), 0i64)];
        let w = writes_step_id(cp, "task", &keys, false);
        assert!(is_uuid(&w));
        assert_eq!(w, writes_step_id(cp, "task", &keys, false));
        assert_ne!(w, writes_step_id(cp, "task2", &keys, false));
        assert_eq!(classify_step(&w), (StepKind::Writes, checkpoint_tag(cp)));
        assert_ne!(
            writes_step_id(cp, "task", &keys, true),
            writes_step_id(cp, "task", &keys, true)
        );
        assert_eq!(
            classify_step(&revision_step_id(cp)),
            (StepKind::Revision, checkpoint_tag(cp))
        );
        let odd = checkpoint_step_id("not-a-uuid");
        assert!(is_uuid(&odd));
        assert_eq!(
            classify_step(&odd),
            (StepKind::Checkpoint, checkpoint_tag("not-a-uuid"))
        );
    }

    #[test]
    fn large_envelopes_are_compressed_and_read_back() {
        let small = r#"{"v":"bs1","kind":"writes"}"#.to_string();
        assert_eq!(pack(&small), small);
        let big = format!(
            r#"{{"v":"bs1","kind":"x","pad":"{}"}}"#,
            "abc".repeat(10_000)
        );
        assert_packs_smaller(&big, 10);
        // Whatever is chosen for data that compresses poorly, it reads back whole.
        let noise: String = (0..20_000)
            .map(|i| char::from(b'a' + ((i * 7919 + i / 3 * 104729) % 26) as u8))
            .collect();
        assert_eq!(unpack(&pack(&noise)).unwrap(), noise);
        assert!(unpack(r#"{"v":"bs1","z":"lzma","data":""}"#).is_err());
    }

    #[test]
    fn large_incompressible_envelopes_stay_as_they_are_and_text_is_compressed() {
        // 2 MB of base64 of pseudo-random bytes (a state of already-compressed data): kept as it is.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let random: Vec<u8> = (0..1_600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let noisy = format!(
            r#"{{"v":"bs1","kind":"x","pad":"{}"}}"#,
            STANDARD.encode(&random)
        );
        assert!(noisy.len() > 2_000_000);
        assert!(matches!(pack(&noisy), std::borrow::Cow::Borrowed(_)));
        // 2 MB of text: compressed, and read back whole.
        let words = [
            "shoe ",
            "trail ",
            "size ",
            "42 ",
            "cart ",
            "checkout ",
            "grip ",
            "sole ",
        ];
        let text: String = (0..400_000)
            .map(|i| words[(i * 7 + i / 5) % words.len()])
            .collect();
        let texty = format!(r#"{{"v":"bs1","kind":"x","pad":"{text}"}}"#);
        assert_packs_smaller(&texty, 4);
    }

    /// `json` is stored at least `factor` times smaller, and reads back whole.
    fn assert_packs_smaller(json: &str, factor: usize) {
        let packed = pack(json);
        assert!(
            packed.len() < json.len() / factor,
            "{} vs {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack(&packed).unwrap(), json);
    }

    #[test]
    fn uuid6_time() {
        // uuid6 of 2024-07-22T... from LangGraph; the time must be in a plausible range and monotonic.
        let t = uuid_time_ms("1ef4f797-8335-6428-8001-8a1503f9b875").unwrap();
        assert!(t > 1_700_000_000_000 && t < 1_800_000_000_000, "{t}");
        assert!(uuid_time_ms("1ef4f797-8335-6429-8001-8a1503f9b875").unwrap() >= t);
        assert_eq!(uuid_time_ms("0a1b2c3d-0000-4000-8000-00000000abcd"), None);
    }
}
