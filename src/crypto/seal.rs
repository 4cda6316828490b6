//! Record sealing: AES-256-GCM under a session's data key, bound to the record's place by its AAD.
//!
//! Sealed record v1: `01 | nonce (12) | ciphertext | tag (16)`; AAD
//! `lp("bedrock-sessions/record") | 01 | lp(kind) | lp(session ARN) | lp(record id)` (see the module `crypto`).

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};

use super::{CryptoError, DataKey, put_lp};

/// The version byte of a sealed record.
pub const SEAL_VERSION: u8 = 1;

const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;

/// Bytes a sealed record has beyond its plaintext: the version byte, the nonce and the tag.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Separates this AAD from every other use of a data key.
const AAD_LABEL: &[u8] = b"bedrock-sessions/record";

/// What a sealed record is. Its name is part of the AAD, so a record of one kind does not open as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A step's payload; the id is the step id.
    Step,
    /// An image kept apart from its step; the id names it within the session (e.g. `<step id>/<block index>`).
    Image,
    /// One session metadata value; the id is its metadata key.
    Metadata,
    /// The session's whole metadata map; the id is empty (or a version the store keeps).
    SessionMetadata,
    /// An invocation's description; the id is the invocation id.
    InvocationDescription,
}

impl RecordKind {
    /// The name in the AAD ("step", "image", "metadata", "session-metadata", "invocation-description"): fixed
    /// forever.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Step => "step",
            RecordKind::Image => "image",
            RecordKind::Metadata => "metadata",
            RecordKind::SessionMetadata => "session-metadata",
            RecordKind::InvocationDescription => "invocation-description",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a record belongs: its session, its kind and its id. Sealed with one, a record opens only with the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordAad<'a> {
    pub session_arn: &'a str,
    pub kind: RecordKind,
    pub id: &'a str,
}

impl<'a> RecordAad<'a> {
    pub fn new(session_arn: &'a str, kind: RecordKind, id: &'a str) -> Self {
        RecordAad {
            session_arn,
            kind,
            id,
        }
    }

    /// The canonical AAD bytes (format version `version`): length-prefixed fields, so that no two distinct
    /// (ARN, kind, id) give the same bytes.
    fn encode(&self, version: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            AAD_LABEL.len()
                + 17
                + self.kind.as_str().len()
                + self.session_arn.len()
                + self.id.len(),
        );
        put_lp(&mut out, AAD_LABEL);
        out.push(version);
        put_lp(&mut out, self.kind.as_str().as_bytes());
        put_lp(&mut out, self.session_arn.as_bytes());
        put_lp(&mut out, self.id.as_bytes());
        out
    }

    /// "step record \"s1\" of session arn:...", for messages.
    fn describe(&self) -> String {
        format!(
            "sealed {} record {:?} of session {}",
            self.kind, self.id, self.session_arn
        )
    }
}

fn cipher(key: &DataKey) -> RandomizedNonceKey {
    // Only fails for a key of the wrong length, which a DataKey cannot be.
    RandomizedNonceKey::new(&AES_256_GCM, key.expose()).expect("a 32-byte AES-256-GCM key")
}

/// Seals `plaintext` as the record `aad` names: `01 | nonce | ciphertext | tag`, [`SEAL_OVERHEAD`] bytes longer.
/// The nonce is random (aws-lc draws it), so sealing the same record twice gives different bytes.
pub fn seal(key: &DataKey, aad: &RecordAad<'_>, plaintext: &[u8]) -> Vec<u8> {
    // Laid out in place: the header, then the plaintext encrypted where it lies, then the tag.
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plaintext);
    // aws-lc fails here only for an input beyond GCM's limit (64 GiB, far over a step's 50 MiB) or when the
    // system's random generator fails (aws-lc aborts the process first).
    let (nonce, tag) = cipher(key)
        .seal_in_place_separate_tag(Aad::from(aad.encode(SEAL_VERSION)), &mut out[HEADER_LEN..])
        .expect("AES-256-GCM sealing of a record under 64 GiB");
    out[1..HEADER_LEN].copy_from_slice(nonce.as_ref());
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens a record sealed by [`seal`] for the same `aad` under the same key. A record altered in any byte,
/// moved from another session, kind or id, or sealed under another key gives [`CryptoError::NotAuthentic`].
pub fn open(
    key: &DataKey,
    aad: &RecordAad<'_>,
    sealed: &[u8],
) -> std::result::Result<Vec<u8>, CryptoError> {
    let Some(&version) = sealed.first() else {
        return Err(CryptoError::Malformed {
            what: aad.describe(),
            detail: "empty".into(),
        });
    };
    if version != SEAL_VERSION {
        return Err(CryptoError::UnknownVersion {
            what: aad.describe(),
            version,
        });
    }
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Malformed {
            what: aad.describe(),
            detail: format!(
                "{} bytes, a sealed record has at least {SEAL_OVERHEAD}",
                sealed.len()
            ),
        });
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..HEADER_LEN]).expect("a 12-byte nonce");
    let mut buf = sealed[HEADER_LEN..].to_vec();
    let len = cipher(key)
        .open_in_place(nonce, Aad::from(aad.encode(version)), &mut buf)
        .map_err(|_| CryptoError::NotAuthentic {
            what: aad.describe(),
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:session/a1b2c3";
    const OTHER_ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:session/d4e5f6";

    fn key() -> DataKey {
        DataKey::generate().unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key();
        for plaintext in [&b""[..], b"x", b"a step payload \x00\xff with bytes"] {
            let aad = RecordAad::new(ARN, RecordKind::Step, "step-1");
            let sealed = seal(&k, &aad, plaintext);
            assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
            assert_eq!(sealed[0], SEAL_VERSION);
            assert_eq!(open(&k, &aad, &sealed).unwrap(), plaintext);
        }
        // A large record (an image-sized payload) too.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        let aad = RecordAad::new(ARN, RecordKind::Image, "step-1/0");
        assert_eq!(open(&k, &aad, &seal(&k, &aad, &big)).unwrap(), big);
    }

    #[test]
    fn sealing_twice_gives_different_bytes() {
        let k = key();
        let aad = RecordAad::new(ARN, RecordKind::Metadata, "color");
        let (a, b) = (seal(&k, &aad, b"blue"), seal(&k, &aad, b"blue"));
        assert_ne!(a, b, "random nonces");
        assert_ne!(&a[HEADER_LEN..HEADER_LEN + 4], b"blue", "encrypted");
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let k = key();
        let aad = RecordAad::new(ARN, RecordKind::Step, "s");
        let sealed = seal(&k, &aad, b"hello, sessions");
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                let e = open(&k, &aad, &bad).unwrap_err();
                if i == 0 {
                    assert!(
                        matches!(e, CryptoError::UnknownVersion { .. }),
                        "byte {i}: {e}"
                    );
                } else {
                    assert!(
                        matches!(e, CryptoError::NotAuthentic { .. }),
                        "byte {i}: {e}"
                    );
                }
            }
        }
        // Cut or extended records fail too.
        for cut in 0..sealed.len() {
            assert!(open(&k, &aad, &sealed[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(
            open(&k, &aad, &longer),
            Err(CryptoError::NotAuthentic { .. })
        ));
    }

    #[test]
    fn a_record_moved_to_another_session_kind_or_id_fails() {
        let k = key();
        let aad = RecordAad::new(ARN, RecordKind::Step, "step-1");
        let sealed = seal(&k, &aad, b"payload");
        for other in [
            RecordAad::new(OTHER_ARN, RecordKind::Step, "step-1"),
            RecordAad::new(ARN, RecordKind::Step, "step-2"),
            RecordAad::new(ARN, RecordKind::Image, "step-1"),
            RecordAad::new(ARN, RecordKind::Metadata, "step-1"),
            RecordAad::new(ARN, RecordKind::Step, ""),
        ] {
            let e = open(&k, &other, &sealed).unwrap_err();
            assert!(matches!(e, CryptoError::NotAuthentic { .. }), "{other:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(other.session_arn) && msg.contains(other.kind.as_str()),
                "{msg}"
            );
        }
        // Another session's data key does not open it either.
        assert!(matches!(
            open(&key(), &aad, &sealed),
            Err(CryptoError::NotAuthentic { .. })
        ));
    }

    #[test]
    fn aad_encoding_is_injective() {
        // Every split of the same characters between ARN and id, over every kind: all distinct.
        let text = "arn:x/yz";
        let kinds = [
            RecordKind::Step,
            RecordKind::Image,
            RecordKind::Metadata,
            RecordKind::SessionMetadata,
            RecordKind::InvocationDescription,
        ];
        let mut seen = std::collections::HashSet::new();
        for kind in kinds {
            for cut in 0..=text.len() {
                let (arn, id) = text.split_at(cut);
                assert!(
                    seen.insert(RecordAad::new(arn, kind, id).encode(SEAL_VERSION)),
                    "{kind} {arn:?} {id:?}"
                );
            }
        }
        assert_eq!(seen.len(), kinds.len() * (text.len() + 1));
        // The version byte is part of it.
        let aad = RecordAad::new(ARN, RecordKind::Step, "s");
        assert_ne!(aad.encode(1), aad.encode(2));
    }
}
