//! An event as step payloads ("parts"), and back. Each part starts with a header text block,
//! `{"li":"li1","e":<nonce>,"p":<part>,"n":<parts>,"k":<kind>}` (`k` in the first part only); then a text
//! block with the part's share of the event's JSON (split at character boundaries), then its images. Images
//! go first when planning (at most [`MAX_IMAGES_PER_STEP`] a part, within the byte budget), the JSON fills
//! the room left.

use std::sync::Arc;

use super::{LAYOUT, MAX_IMAGES_PER_STEP};
use crate::model::{ContentBlock, ImageFormat, ImageSource, Payload, Step};

/// Bytes of a part kept for its header and block overhead.
const HEADER_RESERVE: usize = 4096;

/// An image as stored: its bytes and format (shared by the cache, views and payloads).
pub type Img = Arc<(Vec<u8>, ImageFormat)>;

/// One stored part of an event.
#[derive(Debug, Clone)]
pub struct Part {
    pub seq: u64,
    pub nonce: String,
    pub p: u64,
    pub n: u64,
    pub kind: Option<String>,
    pub text: String,
    pub images: Vec<Img>,
}

/// A step's part, or `None` when the step is not one of this layout's.
pub fn decode_part(seq: u64, step: &Step) -> Option<Part> {
    let mut blocks = step.payload.blocks.iter();
    let ContentBlock::Text(head) = blocks.next()? else {
        return None;
    };
    let head: serde_json::Value = serde_json::from_str(head).ok()?;
    if head.get("li")?.as_str()? != LAYOUT {
        return None;
    }
    let nonce = match head.get("e")? {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let p = head.get("p")?.as_u64()?;
    let n = head.get("n")?.as_u64()?;
    let kind = head.get("k").and_then(|k| k.as_str()).map(String::from);
    let mut text = String::new();
    let mut images = Vec::new();
    for b in blocks {
        match b {
            ContentBlock::Text(t) => text.push_str(t),
            ContentBlock::Image { format, source } => {
                let bytes = match source {
                    ImageSource::Bytes(b) => b.clone(),
                    ImageSource::S3 { .. } => Vec::new(),
                };
                images.push(Arc::new((bytes, *format)));
            }
        }
    }
    Some(Part {
        seq,
        nonce,
        p,
        n,
        kind,
        text,
        images,
    })
}

/// The format of an image's bytes, from their signature (the formats a step may hold).
pub fn sniff(raw: &[u8]) -> Option<ImageFormat> {
    if raw.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if raw.starts_with(b"\xff\xd8\xff") {
        Some(ImageFormat::Jpeg)
    } else if raw.starts_with(b"GIF87a") || raw.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if raw.len() >= 12 && &raw[0..4] == b"RIFF" && &raw[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

/// Where an event's images go: the parts they fill and, per image, (part, k-th image of the part).
#[derive(Debug)]
pub struct Plan {
    budget: usize,
    part_images: Vec<Vec<Img>>,
    used: Vec<usize>,
    pub place: Vec<(u64, usize)>,
}

/// Plans an event's images within `max_step_bytes` a part.
pub fn plan(images: &[Img], max_step_bytes: usize) -> Plan {
    let budget = max_step_bytes.saturating_sub(HEADER_RESERVE).max(1024);
    let mut part_images: Vec<Vec<Img>> = vec![Vec::new()];
    let mut used = vec![0usize];
    let mut place = Vec::with_capacity(images.len());
    for img in images {
        let cost = (img.0.len() * 4).div_ceil(3) + 64; // as base64 on the wire, with block overhead
        let last = part_images.len() - 1;
        if part_images[last].len() >= MAX_IMAGES_PER_STEP
            || (!part_images[last].is_empty() && used[last] + cost > budget)
        {
            part_images.push(Vec::new());
            used.push(0);
        }
        let last = part_images.len() - 1;
        place.push((last as u64, part_images[last].len()));
        part_images[last].push(img.clone());
        used[last] += cost;
    }
    Plan {
        budget,
        part_images,
        used,
        place,
    }
}

/// Splits UTF-8 text into chunks of at most `size(i)` bytes (at least 4), never inside a character.
fn split_utf8(data: &str, size: impl Fn(usize) -> usize) -> Vec<&str> {
    let bytes = data.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let cap = size(out.len()).max(4);
        let mut end = bytes.len().min(pos + cap);
        while end < bytes.len() && !data.is_char_boundary(end) {
            end -= 1;
        }
        out.push(&data[pos..end]);
        pos = end;
    }
    out
}

/// The event's parts: its JSON `body` after the images that `plan` placed.
pub fn assemble(kind: &str, body: &str, plan: Plan, nonce: &str) -> Vec<Payload> {
    let Plan {
        budget,
        part_images,
        used,
        ..
    } = plan;
    let chunks = split_utf8(body, |i| {
        if i < used.len() {
            budget.saturating_sub(used[i])
        } else {
            budget
        }
    });
    let n = part_images.len().max(chunks.len()).max(1);
    let mut part_images = part_images.into_iter();
    (0..n)
        .map(|p| {
            let mut head = format!(
                r#"{{"li":"{LAYOUT}","e":{},"p":{p},"n":{n}"#,
                json_str(nonce)
            );
            if p == 0 {
                head.push_str(&format!(r#","k":{}"#, json_str(kind)));
            }
            head.push('}');
            let mut blocks = vec![ContentBlock::Text(head)];
            if let Some(c) = chunks.get(p).filter(|c| !c.is_empty()) {
                blocks.push(ContentBlock::Text(c.to_string()));
            }
            for img in part_images.next().unwrap_or_default() {
                blocks.push(ContentBlock::Image {
                    format: img.1,
                    source: ImageSource::Bytes(img.0.clone()),
                });
            }
            Payload { blocks }
        })
        .collect()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// A fresh nonce naming one event's parts.
pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(n: usize) -> Img {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.resize(n, 7);
        Arc::new((b, ImageFormat::Png))
    }

    fn step(payload: Payload) -> Step {
        Step {
            summary: crate::model::StepSummary {
                session_id: String::new(),
                invocation_id: String::new(),
                step_id: String::new(),
                time: 0,
            },
            payload,
        }
    }

    #[test]
    fn an_event_splits_and_joins_back() {
        let body = format!("{{\"t\":\"{}\"}}", "日本語✓".repeat(20_000));
        let images: Vec<Img> = (0..25).map(|i| img(1000 + i)).collect();
        let p = plan(&images, 65_536);
        // 20 images at most a part
        assert_eq!(p.place[19], (0, 19));
        assert_eq!(p.place[20], (1, 0));
        let parts = assemble("state", &body, p, "abc");
        assert!(parts.len() >= 4, "{}", parts.len());
        let decoded: Vec<Part> = parts
            .into_iter()
            .enumerate()
            .map(|(i, pl)| {
                assert!(pl.byte_size() <= 65_536);
                decode_part(i as u64, &step(pl)).expect("ours")
            })
            .collect();
        assert_eq!(decoded[0].kind.as_deref(), Some("state"));
        assert!(
            decoded
                .iter()
                .all(|d| d.nonce == "abc" && d.n == decoded.len() as u64)
        );
        let text: String = decoded.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(text, body);
        let n_images: usize = decoded.iter().map(|d| d.images.len()).sum();
        assert_eq!(n_images, 25);
    }

    #[test]
    fn an_empty_body_is_one_part_and_foreign_steps_are_not_parts() {
        let parts = assemble("moved", "", plan(&[], 1 << 20), "n");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].blocks.len(), 1);
        let other = Payload {
            blocks: vec![ContentBlock::Text("{\"li\":\"xx\"}".into())],
        };
        assert!(decode_part(1, &step(other)).is_none());
    }

    #[test]
    fn formats_are_sniffed() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a.."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"BM...."), None);
    }
}
