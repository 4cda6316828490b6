//! A key's messages as its log replays them, and the messages' encoding.
//!
//! A message is stored as LlamaIndex's `model_dump(mode="json")` of it (Python makes that JSON; nothing
//! here knows LlamaIndex's classes), except its images: an image block whose `image` is base64 of a PNG,
//! JPEG, GIF or WebP of at most [`MAX_IMAGE_BYTES`] is stored as an image block of the step, and the
//! message keeps a reference `{"$bs_img": [seq, k]}` (the k-th image of step `seq` of the view's home
//! session). While an event is being written, its new images are `{"$bs_new": i}` until placed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use super::MAX_IMAGE_BYTES;
use super::parts::{Img, sniff};
use crate::error::{Error, Result};

/// An image of a session: (session id, seq of its step, k-th image of the step).
pub type ImageKey = (String, u64, usize);
pub type Images = HashMap<ImageKey, Img>;

pub const ACTIVE: &str = "active";
pub const ARCHIVED: &str = "archived";

/// One message of a key: its id (1, 2, 3... per key, never reused), status and data.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub status: Arc<str>,
    pub data: Arc<Value>,
    /// The `$bs_img` references of `data`.
    refs: Arc<[(u64, usize)]>,
}

impl Entry {
    pub fn new(id: u64, status: Arc<str>, data: Value) -> Self {
        let refs = image_blocks(&data)
            .filter_map(|b| stored_ref(b.get("image")?))
            .collect();
        Entry {
            id,
            status,
            data: Arc::new(data),
            refs,
        }
    }

    fn has_new_images(&self) -> bool {
        image_blocks(&self.data).any(|b| new_ref(b.get("image")).is_some())
    }
}

/// The replayed state of a key.
#[derive(Debug, Clone)]
pub struct View {
    pub entries: Arc<Vec<Entry>>,
    pub next_id: u64,
    /// The key exists (BaseChatStore: `set_messages(key, [])` makes it exist).
    pub present: bool,
    /// The session the entries' image references point into.
    pub home: Option<String>,
}

impl Default for View {
    fn default() -> Self {
        View {
            entries: Arc::new(Vec::new()),
            next_id: 1,
            present: false,
            home: None,
        }
    }
}

impl View {
    pub fn refs(&self) -> HashSet<ImageKey> {
        let home = self.home.clone().unwrap_or_default();
        self.entries
            .iter()
            .flat_map(|e| e.refs.iter().map(|&(s, k)| (home.clone(), s, k)))
            .collect()
    }
}

/// A delta of the log.
#[derive(Debug, Clone)]
pub enum DeltaOp {
    /// New entries, appended (`None`) or inserted at a position (negative: from the end).
    Add(Option<i64>, Vec<Entry>),
    Delete(Vec<u64>),
    Archive(Vec<u64>),
}

pub fn apply_ops(view: &View, ops: &[DeltaOp]) -> View {
    let mut entries: Vec<Entry> = view.entries.as_ref().clone();
    let (mut next_id, mut present) = (view.next_id, view.present);
    for op in ops {
        match op {
            DeltaOp::Add(pos, new) => {
                match pos {
                    None => entries.extend(new.iter().cloned()),
                    Some(p) => {
                        let len = entries.len() as i64;
                        let p = if *p < 0 { (len + p).max(0) } else { *p };
                        let at = (p.min(len)) as usize;
                        entries.splice(at..at, new.iter().cloned());
                    }
                }
                if let Some(max) = new.iter().map(|e| e.id).max() {
                    next_id = next_id.max(max + 1);
                }
                present = true;
            }
            DeltaOp::Delete(ids) => {
                let ids: HashSet<u64> = ids.iter().copied().collect();
                entries.retain(|e| !ids.contains(&e.id));
            }
            DeltaOp::Archive(ids) => {
                let ids: HashSet<u64> = ids.iter().copied().collect();
                let archived: Arc<str> = Arc::from(ARCHIVED);
                for e in entries.iter_mut().filter(|e| ids.contains(&e.id)) {
                    e.status = archived.clone();
                }
            }
        }
    }
    View {
        entries: Arc::new(entries),
        next_id,
        present,
        home: view.home.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Events' JSON

fn entry_of(v: &Value) -> Option<Entry> {
    let a = v.as_array()?;
    Some(Entry::new(
        a.first()?.as_u64()?,
        Arc::from(a.get(1)?.as_str()?),
        a.get(2)?.clone(),
    ))
}

fn entries_of(v: Option<&Value>) -> Vec<Entry> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(entry_of).collect())
        .unwrap_or_default()
}

/// The view a state event holds.
pub fn view_of_state(body: &Value, home: &str) -> View {
    let entries = entries_of(body.get("msgs"));
    let present = body
        .get("present")
        .and_then(Value::as_bool)
        .unwrap_or(!entries.is_empty());
    View {
        next_id: body.get("next").and_then(Value::as_u64).unwrap_or(1),
        present,
        entries: Arc::new(entries),
        home: Some(home.to_string()),
    }
}

/// The ops of a delta event (unknown ones are skipped).
pub fn ops_of_delta(body: &Value) -> Vec<DeltaOp> {
    let ids = |v: Option<&Value>| -> Vec<u64> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    body.get("ops")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .filter_map(|op| {
                    let a = op.as_array()?;
                    match a.first()?.as_str()? {
                        "add" => Some(DeltaOp::Add(
                            a.get(1).and_then(Value::as_i64),
                            entries_of(a.get(2)),
                        )),
                        "del" => Some(DeltaOp::Delete(ids(a.get(1)))),
                        "arch" => Some(DeltaOp::Archive(ids(a.get(1)))),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn push_json<T: serde::Serialize + ?Sized>(out: &mut String, v: &T) {
    out.push_str(&serde_json::to_string(v).expect("JSON values serialize"));
}

fn push_entries(out: &mut String, entries: &[Entry]) {
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("[{},", e.id));
        push_json(out, &*e.status);
        out.push(',');
        push_json(out, &*e.data);
        out.push(']');
    }
    out.push(']');
}

/// The JSON of a state event: the key's whole view.
pub fn state_body(key: &str, view: &View) -> String {
    let mut out = String::from(r#"{"k":"state","key":"#);
    push_json(&mut out, &key);
    out.push_str(&format!(
        r#","next":{},"present":{},"msgs":"#,
        view.next_id, view.present
    ));
    push_entries(&mut out, &view.entries);
    out.push('}');
    out
}

/// The JSON of a delta event.
pub fn delta_body(ops: &[DeltaOp]) -> String {
    let mut out = String::from(r#"{"k":"delta","ops":["#);
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match op {
            DeltaOp::Add(pos, entries) => {
                out.push_str(r#"["add","#);
                push_json(&mut out, pos);
                out.push(',');
                push_entries(&mut out, entries);
                out.push(']');
            }
            DeltaOp::Delete(ids) => {
                out.push_str(r#"["del","#);
                push_json(&mut out, ids);
                out.push(']');
            }
            DeltaOp::Archive(ids) => {
                out.push_str(r#"["arch","#);
                push_json(&mut out, ids);
                out.push(']');
            }
        }
    }
    out.push_str("]}");
    out
}

// ---------------------------------------------------------------------------------------------
// Images

fn image_blocks(data: &Value) -> impl Iterator<Item = &Value> {
    data.get("blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("block_type").and_then(Value::as_str) == Some("image"))
}

fn image_blocks_mut(data: &mut Value) -> impl Iterator<Item = &mut Value> {
    data.get_mut("blocks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter(|b| b.get("block_type").and_then(Value::as_str) == Some("image"))
}

fn stored_ref(v: &Value) -> Option<(u64, usize)> {
    let r = v.get("$bs_img")?.as_array()?;
    Some((r.first()?.as_u64()?, r.get(1)?.as_u64()? as usize))
}

fn new_ref(v: Option<&Value>) -> Option<usize> {
    Some(v?.get("$bs_new")?.as_u64()? as usize)
}

/// The raw bytes of a base64 image value when they round-trip exactly (so the message reads back
/// unchanged) and are an image a step may hold.
fn storable_image(value: &str) -> Option<Img> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64.decode(value).ok()?;
    if raw.is_empty() || raw.len() > MAX_IMAGE_BYTES || b64.encode(&raw) != value {
        return None;
    }
    let format = sniff(&raw)?;
    Some(Arc::new((raw, format)))
}

/// A new message (the JSON of its `model_dump(mode="json")`), its images replaced by `$bs_new`
/// placeholders numbered from `new_images`' length, into which they go.
pub fn encode_message(json: &str, new_images: &mut Vec<Img>) -> Result<Value> {
    let mut data: Value = serde_json::from_str(json)
        .map_err(|e| Error::validation(format!("a message is not JSON: {e}")))?;
    if !data.is_object() {
        return Err(Error::validation("a message must be a JSON object"));
    }
    for block in image_blocks_mut(&mut data) {
        let img = block
            .get("image")
            .and_then(Value::as_str)
            .and_then(storable_image);
        if let Some(img) = img {
            block["image"] = serde_json::json!({ "$bs_new": new_images.len() });
            new_images.push(img);
        }
    }
    Ok(data)
}

/// A copy of a message's data with each stored image reference replaced by `with(image)`.
fn replace_stored(
    entry: &Entry,
    home: Option<&str>,
    images: &Images,
    mut with: impl FnMut(&Img) -> Value,
) -> Result<Value> {
    let mut data = entry.data.as_ref().clone();
    let home = home.unwrap_or_default().to_string();
    for block in image_blocks_mut(&mut data) {
        let Some((s, k)) = block.get("image").and_then(stored_ref) else {
            continue;
        };
        let img = images.get(&(home.clone(), s, k)).ok_or_else(|| {
            Error::internal(format!(
                "the image {k} of step {s} of session {home} is missing from the log"
            ))
        })?;
        block["image"] = with(img);
    }
    Ok(data)
}

/// A stored message as JSON for the caller, its image references turned back into base64.
pub fn decode_message(entry: &Entry, home: Option<&str>, images: &Images) -> Result<String> {
    if entry.refs.is_empty() {
        return Ok(serde_json::to_string(&*entry.data).expect("JSON values serialize"));
    }
    let data = replace_stored(entry, home, images, |img| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&img.0))
    })?;
    Ok(serde_json::to_string(&data).expect("JSON values serialize"))
}

/// Puts the `$bs_new` placeholders of the entries in their places: `place[i]` is (part, k) of new image
/// `i`, and the event's first part is step `first_seq`.
pub fn place_images(entries: &[Entry], first_seq: u64, place: &[(u64, usize)]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| {
            if !e.has_new_images() {
                return e.clone();
            }
            let mut data = e.data.as_ref().clone();
            for block in image_blocks_mut(&mut data) {
                if let Some(i) = new_ref(block.get("image")) {
                    let (part, k) = place[i];
                    block["image"] = serde_json::json!({ "$bs_img": [first_seq + part, k] });
                }
            }
            Entry::new(e.id, e.status.clone(), data)
        })
        .collect()
}

/// The view with its stored images turned back into new images (the first state of a new session holds
/// them again), and the new images with them.
pub fn rehome(view: &View, images: &Images, mut new_images: Vec<Img>) -> Result<(View, Vec<Img>)> {
    let mut entries = Vec::with_capacity(view.entries.len());
    for e in view.entries.iter() {
        if e.refs.is_empty() {
            entries.push(e.clone());
            continue;
        }
        let data = replace_stored(e, view.home.as_deref(), images, |img| {
            new_images.push(img.clone());
            serde_json::json!({ "$bs_new": new_images.len() - 1 })
        })?;
        entries.push(Entry::new(e.id, e.status.clone(), data));
    }
    let view = View {
        entries: Arc::new(entries),
        next_id: view.next_id,
        present: view.present,
        home: None,
    };
    Ok((view, new_images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_b64() -> String {
        let mut raw = b"\x89PNG\r\n\x1a\n".to_vec();
        raw.extend_from_slice(&[1, 2, 3, 4, 5]);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    #[test]
    fn images_become_references_and_come_back() {
        let json = format!(
            r#"{{"role":"user","blocks":[{{"block_type":"image","image":"{}"}},{{"block_type":"image","image":"bm90IGFuIGltYWdl"}},{{"block_type":"text","text":"hi"}}]}}"#,
            png_b64()
        );
        let mut new = Vec::new();
        let data = encode_message(&json, &mut new).unwrap();
        assert_eq!(new.len(), 1, "only the PNG is stored as an image block");
        let entries = place_images(&[Entry::new(1, Arc::from(ACTIVE), data)], 7, &[(1, 0)]);
        assert_eq!(&*entries[0].refs, &[(8, 0)]);
        let images: Images = [(("s".to_string(), 8, 0), new[0].clone())].into();
        let back: Value =
            serde_json::from_str(&decode_message(&entries[0], Some("s"), &images).unwrap())
                .unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(&json).unwrap());
    }

    #[test]
    fn deltas_replay_and_bodies_parse_back() {
        let e = |id| Entry::new(id, Arc::from(ACTIVE), serde_json::json!({"n": id}));
        let v = apply_ops(
            &View::default(),
            &[DeltaOp::Add(None, vec![e(1), e(2), e(3)])],
        );
        let ops = vec![
            DeltaOp::Add(Some(-1), vec![e(4)]),
            DeltaOp::Delete(vec![1]),
            DeltaOp::Archive(vec![2]),
        ];
        let body: Value = serde_json::from_str(&delta_body(&ops)).unwrap();
        let v = apply_ops(&v, &ops_of_delta(&body));
        let ids: Vec<(u64, &str)> = v.entries.iter().map(|e| (e.id, &*e.status)).collect();
        assert_eq!(ids, vec![(2, ARCHIVED), (4, ACTIVE), (3, ACTIVE)]);
        assert_eq!(v.next_id, 5);
        let state: Value = serde_json::from_str(&state_body("k\"ey", &v)).unwrap();
        let again = view_of_state(&state, "s");
        assert_eq!(again.entries.len(), 3);
        assert_eq!((again.next_id, again.present), (5, true));
        assert_eq!(state["key"], "k\"ey");
    }
}
