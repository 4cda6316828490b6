//! Pagination tokens: opaque to callers, keyset cursors inside, so pages stay stable while items are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Position after the last item of a page: items sort by (time, seq) descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub seq: i64,
}

/// `scope` ties a token to its listing (which operation, which session and invocation).
pub fn encode(scope: &str, cursor: Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{scope}|{}|{}", cursor.time, cursor.seq))
}

/// Where a page starts: after the token's cursor, or at the newest item when there is no token.
pub fn start(scope: &str, token: Option<&str>) -> Result<Cursor> {
    match token {
        Some(t) => decode(scope, t),
        None => Ok(Cursor {
            time: i64::MAX,
            seq: i64::MAX,
        }),
    }
}

pub fn decode(scope: &str, token: &str) -> Result<Cursor> {
    let bad = || Error::validation("Invalid nextToken: it was not returned by this listing");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let rest = text.strip_prefix("v1|").ok_or_else(bad)?;
    let (tok_scope, nums) = rest
        .rsplit_once('|')
        .and_then(|(a, seq)| {
            let (scope, time) = a.rsplit_once('|')?;
            Some((scope, (time, seq)))
        })
        .ok_or_else(bad)?;
    if tok_scope != scope {
        return Err(bad());
    }
    let time = nums.0.parse().map_err(|_| bad())?;
    let seq = nums.1.parse().map_err(|_| bad())?;
    Ok(Cursor { time, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_scope() {
        let c = Cursor {
            time: 1_700_000_000_123,
            seq: 42,
        };
        let t = encode("steps|abc|*", c);
        assert_eq!(decode("steps|abc|*", &t).unwrap(), c);
        assert!(decode("steps|other|*", &t).is_err());
        assert!(decode("steps|abc|*", "not-a-token!").is_err());
        assert!(decode("steps|abc|*", &URL_SAFE_NO_PAD.encode("v1|steps|abc|*|x|1")).is_err());
    }
}
