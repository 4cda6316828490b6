//! How a session names its successor without a thread index: the first writer to create one claim
//! invocation in the old session wins the right to make the successor (a second writer's create is refused
//! as "already exists"), then names it in the old session's metadata under a key of the caller's (the
//! saver's `langgraph:next`, the session-kept index's own), which readers follow. That needs the old session
//! to still take writes: a full one does (the step quota does not count invocations or metadata), an
//! EXPIRED or ENDED one does not, and the claim's error says so to the caller.

use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{CreateInvocation, SessionRef, UpdateSession};
use crate::store::SessionStore;

/// How long a loser waits for the winner to name the successor.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// The claim invocation of session `sid`.
fn claim_invocation_id(sid: &str) -> String {
    crate::ids::derived_id(
        0x6e65_7874_6765_6e65_7261_7469_6f6e_0001,
        sid.as_bytes(),
        0x4E,
    )
}

/// The outcome of a claim on moving on from a session.
pub enum Claim {
    /// Ours: make the successor and [`point`] to it.
    Ours,
    /// Another writer's successor.
    Theirs(String),
}

/// Claims the move on from `old`. `key` is the metadata key naming the successor; `what` names the
/// thread or index in the error when the winner does not finish. A refusal other than "already exists"
/// (an EXPIRED or ENDED session) is returned as it came, for the caller to explain.
pub async fn claim(
    store: &dyn SessionStore,
    old: &str,
    key: &str,
    description: &str,
    what: &str,
) -> Result<Claim> {
    let claimed = store
        .create_invocation(CreateInvocation {
            session: SessionRef::of_id(old),
            invocation_id: Some(claim_invocation_id(old)),
            description: Some(description.to_string()),
        })
        .await;
    match claimed {
        Ok(_) => Ok(Claim::Ours),
        Err(e) if e.is_already_exists() => {
            // The claimer names its successor in `old` right after making it.
            let start = std::time::Instant::now();
            while start.elapsed() < WAIT {
                let next = follow(store, old, key).await?;
                if next != old {
                    return Ok(Claim::Theirs(next));
                }
                tokio::time::sleep(POLL).await;
            }
            Err(Error::conflict(format!(
                "{what}: another writer claimed the move from session {old} to a new session and did not \
                 finish it within {} s",
                WAIT.as_secs()
            )))
        }
        Err(e) => Err(e),
    }
}

/// Names `new` as the successor of `old` in `old`'s metadata (its other keys kept).
pub async fn point(store: &dyn SessionStore, old: &str, new: &str, key: &str) -> Result<()> {
    let s = store.get_session(SessionRef::of_id(old)).await?;
    let mut metadata = s.metadata;
    metadata.insert(key.into(), new.into());
    store
        .update_session(UpdateSession {
            session: SessionRef::of_id(old),
            metadata: Some(metadata),
        })
        .await?;
    Ok(())
}

/// The newest session of the succession that `sid` starts (`sid` itself when none names a successor). A
/// successor deleted by hand ends the succession at its predecessor.
pub async fn follow(store: &dyn SessionStore, sid: &str, key: &str) -> Result<String> {
    let all = successors(store, sid, key).await?;
    Ok(all.last().cloned().unwrap_or_else(|| sid.to_string()))
}

/// The succession that `sid` starts, `sid` first.
pub async fn successors(store: &dyn SessionStore, sid: &str, key: &str) -> Result<Vec<String>> {
    let mut out = vec![sid.to_string()];
    for _ in 0..100_000 {
        let at = out.last().expect("not empty");
        let s = match store.get_session(SessionRef::of_id(at)).await {
            Ok(s) => s,
            Err(e) if e.code == ErrorCode::ResourceNotFound && out.len() > 1 => {
                out.pop();
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        match s.metadata.get(key) {
            Some(next) if *next != *at && !out.contains(next) => out.push(next.clone()),
            _ => return Ok(out),
        }
    }
    Ok(out)
}
