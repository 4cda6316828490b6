//! How both embedded stores keep a step's payload as bytes: compact and deterministic (byte equality means
//! payload equality), and the plaintext that an encrypted session's step record seals.
//!
//! Layout: version byte 1, then per block: kind (0 text, 1 image bytes, 2 image s3), format byte, u32 LE length,
//! data.

use crate::error::{Error, Result};
use crate::model::{ContentBlock, ImageFormat, ImageSource, Payload};

pub(crate) fn encode_payload(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.byte_size() + 1 + 6 * p.blocks.len());
    out.push(1u8);
    for b in &p.blocks {
        let (kind, fmt, data): (u8, u8, &[u8]) = match b {
            ContentBlock::Text(t) => (0, 0, t.as_bytes()),
            ContentBlock::Image { format, source } => {
                let f = *format as u8;
                match source {
                    ImageSource::Bytes(b) => (1, f, b),
                    ImageSource::S3 { uri } => (2, f, uri.as_bytes()),
                }
            }
        };
        out.push(kind);
        out.push(fmt);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

pub(crate) fn decode_payload(buf: &[u8]) -> Result<Payload> {
    let corrupt = || Error::internal("stored step payload is corrupt");
    if buf.first() != Some(&1) {
        return Err(corrupt());
    }
    let mut i = 1;
    let mut blocks = Vec::new();
    while i < buf.len() {
        let head = buf.get(i..i + 6).ok_or_else(corrupt)?;
        let (kind, fmt) = (head[0], head[1]);
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let data = buf.get(i + 6..i + 6 + len).ok_or_else(corrupt)?;
        i += 6 + len;
        let format = match fmt {
            0 => ImageFormat::Png,
            1 => ImageFormat::Jpeg,
            2 => ImageFormat::Gif,
            3 => ImageFormat::Webp,
            _ => return Err(corrupt()),
        };
        let text = || String::from_utf8(data.to_vec()).map_err(|_| corrupt());
        blocks.push(match kind {
            0 => ContentBlock::Text(text()?),
            1 => ContentBlock::Image {
                format,
                source: ImageSource::Bytes(data.to_vec()),
            },
            2 => ContentBlock::Image {
                format,
                source: ImageSource::S3 { uri: text()? },
            },
            _ => return Err(corrupt()),
        });
    }
    Ok(Payload { blocks })
}
