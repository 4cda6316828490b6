//! Ids derived from names, one scheme for the whole core (the saver's layout, the session-kept thread index, the
//! claims that move a thread on): a version-5 hash of (a namespace of ours, the name) whose byte 6 is [`MARK`] and
//! byte 7 a kind, with the RFC 4122 variant. A listing tells our ids, and their kind, apart by these bytes alone.

use uuid::Uuid;

/// Byte 6 of every derived id.
pub const MARK: u8 = 0x8B;

/// Marks 16 bytes as a derived id of `kind`.
pub fn mark(mut b: [u8; 16], kind: u8) -> [u8; 16] {
    b[6] = MARK;
    b[7] = kind;
    b[8] = (b[8] & 0x3F) | 0x80;
    b
}

/// The id of `name` in `namespace`, of `kind`.
pub fn derived_id(namespace: u128, name: &[u8], kind: u8) -> String {
    let hashed = *Uuid::new_v5(&Uuid::from_u128(namespace), name).as_bytes();
    Uuid::from_bytes(mark(hashed, kind)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_marked() {
        let a = derived_id(1, b"thread", 0x54);
        assert_eq!(a, derived_id(1, b"thread", 0x54));
        assert_ne!(a, derived_id(2, b"thread", 0x54));
        assert_ne!(a, derived_id(1, b"thread", 0x55));
        let b = Uuid::parse_str(&a).unwrap();
        assert_eq!((b.as_bytes()[6], b.as_bytes()[7]), (MARK, 0x54));
    }
}

/// The LlamaIndex stores' ids (layout "li1"), kept bit for bit so that data written with them keeps
/// loading: SHA-256 of `bedrock-sessions/llama-index` and the parts (joined by U+001F); byte 6 is 0x8C and
/// byte 7 a kind: `I` an invocation, `L` a step of a log (its sequence number in bytes 10 to 15), `W` a
/// part of a saved workflow (part and count in bytes 9 and 10, a nonce in 11 to 15).
pub mod li1 {
    use sha2::{Digest, Sha256};
    use uuid::Uuid;

    const MARK: u8 = 0x8C;
    const INVOCATION: u8 = b'I';
    const LOG: u8 = b'L';
    const PART: u8 = b'W';
    /// Byte 8 of step ids (the RFC 4122 variant and 1).
    const STEP: u8 = 0x81;

    fn digest(parts: &[&str]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"bedrock-sessions/llama-index");
        for p in parts {
            h.update(b"\x1f");
            h.update(p.as_bytes());
        }
        h.finalize().into()
    }

    /// Version 8, RFC 4122 variant.
    fn uuid8(mut b: [u8; 16]) -> String {
        b[6] = 0x80 | (b[6] & 0x0F);
        b[8] = 0x80 | (b[8] & 0x3F);
        Uuid::from_bytes(b).to_string()
    }

    /// The invocation of a log (`run` none) or of a workflow run.
    pub fn invocation_id(kind: &str, ns: &str, run: Option<&str>) -> String {
        let d = digest(&["invocation", kind, ns, run.unwrap_or("")]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = MARK;
        b[7] = INVOCATION;
        uuid8(b)
    }

    /// The metadata key that marks a namespace's sessions.
    pub fn marker_key(kind: &str, ns: &str) -> String {
        let d = digest(&["marker", kind, ns]);
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("llama_index:{hex}")
    }

    /// The step ids of one (kind, namespace): derived from it and the step's place only, so that two
    /// writers of one place collide.
    #[derive(Debug, Clone)]
    pub struct StepIds {
        tag: [u8; 6],
    }

    impl StepIds {
        pub fn new(kind: &str, ns: &str) -> Self {
            let mut tag = [0u8; 6];
            tag.copy_from_slice(&digest(&["steps", kind, ns])[..6]);
            StepIds { tag }
        }

        fn head(&self, kind: u8) -> [u8; 16] {
            let mut b = [0u8; 16];
            b[..6].copy_from_slice(&self.tag);
            b[6] = MARK;
            b[7] = kind;
            b[8] = STEP;
            b
        }

        fn parse(&self, step_id: &str, kind: u8) -> Option<[u8; 16]> {
            let b = *Uuid::parse_str(step_id).ok()?.as_bytes();
            (b[..6] == self.tag && b[6] == MARK && b[7] == kind && b[8] == STEP).then_some(b)
        }

        /// The id of the log's step number `seq` (below 2^48).
        pub fn log_step(&self, seq: u64) -> Option<String> {
            if seq >= 1 << 48 {
                return None;
            }
            let mut b = self.head(LOG);
            b[10..].copy_from_slice(&seq.to_be_bytes()[2..]);
            Some(uuid8(b))
        }

        pub fn log_seq(&self, step_id: &str) -> Option<u64> {
            let b = self.parse(step_id, LOG)?;
            let mut n = [0u8; 8];
            n[2..].copy_from_slice(&b[10..]);
            Some(u64::from_be_bytes(n))
        }

        /// The id of part `part` of `count` of a save whose nonce is `nonce`.
        pub fn part_step(&self, nonce: [u8; 5], part: u8, count: u8) -> String {
            let mut b = self.head(PART);
            b[9] = part;
            b[10] = count;
            b[11..].copy_from_slice(&nonce);
            uuid8(b)
        }

        pub fn part_of(&self, step_id: &str) -> Option<([u8; 5], u8, u8)> {
            let b = self.parse(step_id, PART)?;
            let mut nonce = [0u8; 5];
            nonce.copy_from_slice(&b[11..]);
            Some((nonce, b[9], b[10]))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Values of the Python implementation these functions replace (bedrock_sessions/llama_index.py
        /// before the move): data written by it must keep loading.
        #[test]
        fn ids_are_those_of_layout_li1() {
            assert_eq!(
                invocation_id("chat", "default", None),
                "96fe5e17-d668-8c49-9716-b62ba6e55154"
            );
            assert_eq!(
                invocation_id("workflow", "ns é/x", Some("run-1")),
                "a018de55-fd39-8c49-b3b1-e26157722cab"
            );
            let log = StepIds::new("chat", "default");
            assert_eq!(
                log.log_step(0).unwrap(),
                "a4eb3204-55f8-8c4c-8100-000000000000"
            );
            assert_eq!(
                log.log_step(1).unwrap(),
                "a4eb3204-55f8-8c4c-8100-000000000001"
            );
            let last = log.log_step((1 << 48) - 1).unwrap();
            assert_eq!(last, "a4eb3204-55f8-8c4c-8100-ffffffffffff");
            assert_eq!(log.log_step(1 << 48), None);
            assert_eq!(log.log_seq(&last), Some((1 << 48) - 1));
            assert_eq!(
                log.log_seq("a4eb3204-55f8-8c4c-8100-00000000000a"),
                Some(10)
            );
            assert_eq!(StepIds::new("chat", "other").log_seq(&last), None);
            assert_eq!(log.log_seq("not a uuid"), None);
            assert_eq!(
                marker_key("chat", "default"),
                "llama_index:6374204048545df3"
            );
            let parts = StepIds::new("workflow", "default");
            let id = parts.part_step([1, 2, 3, 4, 5], 3, 7);
            assert_eq!(id, "139a02de-c3a2-8c57-8103-070102030405");
            assert_eq!(parts.part_of(&id), Some(([1, 2, 3, 4, 5], 3, 7)));
            assert_eq!(parts.log_seq(&id), None);
        }
    }
}
