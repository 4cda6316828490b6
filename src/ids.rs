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
