//! The store abstraction: the 14 operations of the session API over typed, validated requests.
//! The embedded stores implement it here (SQLite for files, Rust collections for a store in memory); the
//! Bedrock backend (the AWS SDK, against Amazon Bedrock or the local server) plugs in beside them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::model::{
    CreateInvocation, CreateSession, GetStep, Invocation, ListSteps, Page, PageRequest, PutStep,
    ResourceArn, Session, SessionRef, SessionStatus, Step, StepSummary, UpdateSession,
};

#[cfg(test)]
pub(crate) mod conformance;
pub(crate) mod encryption;
pub mod memory;
pub(crate) mod payload;
pub mod retention;
pub mod sqlite;
#[cfg(test)]
pub mod testing;

#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    async fn create_session(&self, req: CreateSession) -> Result<Session>;
    async fn get_session(&self, session: SessionRef) -> Result<Session>;
    /// Session summaries, newest first. Their metadata may be left out (Bedrock's ListSessions returns none; the
    /// embedded stores leave out an encrypted session's, so that listing needs no key): read it with
    /// `get_session`.
    async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>>;
    async fn update_session(&self, req: UpdateSession) -> Result<Session>;
    async fn end_session(&self, session: SessionRef) -> Result<Session>;
    async fn delete_session(&self, session: SessionRef) -> Result<()>;
    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation>;
    async fn list_invocations(
        &self,
        session: SessionRef,
        page: PageRequest,
    ) -> Result<Page<Invocation>>;
    /// Returns the step id (generated when the request has none).
    async fn put_invocation_step(&self, req: PutStep) -> Result<String>;
    async fn get_invocation_step(&self, req: GetStep) -> Result<Step>;
    async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>>;
    async fn tag_resource(&self, arn: ResourceArn, tags: BTreeMap<String, String>) -> Result<()>;
    async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()>;
    async fn list_tags_for_resource(&self, arn: ResourceArn) -> Result<BTreeMap<String, String>>;

    /// The thread index this store keeps (the embedded stores' native one, or one set beside the store
    /// with [`crate::threads::WithIndex`]); `None`: thread ids must be session ids.
    fn thread_index(&self) -> Option<&dyn crate::threads::ThreadIndex> {
        None
    }

    /// A handle on the same data that acts for `account` alone (the local server's tenants): the sessions it
    /// creates belong to `account` (their ARNs name it), and no session of another account exists for it, by
    /// id, by ARN or in ListSessions. It has no thread index (thread ids are not kept per account).
    /// `None`: this store cannot keep accounts apart.
    fn for_account(&self, _account: &str) -> Option<Arc<dyn SessionStore>> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Rules both embedded stores apply (one copy, so that they cannot drift apart).

/// A session's status: ENDED when ended, else EXPIRED once idle for `idle_timeout`, else ACTIVE.
pub(crate) fn session_status(
    ended: bool,
    last_updated_at: crate::clock::Micros,
    cfg: &StoreConfig,
) -> SessionStatus {
    if ended {
        return SessionStatus::Ended;
    }
    let idle = cfg.clock.now_us().saturating_sub(last_updated_at);
    if idle >= cfg.idle_timeout.as_micros() as i64 {
        SessionStatus::Expired
    } else {
        SessionStatus::Active
    }
}

/// Writes are refused on ENDED and EXPIRED sessions.
pub(crate) fn require_writable(session_id: &str, status: SessionStatus, what: &str) -> Result<()> {
    match status {
        SessionStatus::Active => Ok(()),
        s => Err(crate::error::Error::conflict(format!(
            "Session {session_id} is {}: {what} is not allowed (only ACTIVE sessions accept writes)",
            s.as_str()
        ))),
    }
}

/// Whether a handle sees the session of this ARN: every session, unless the handle acts for one account
/// ([`StoreConfig::account_only`]), then only that account's.
pub(crate) fn visible(session_arn: &str, cfg: &StoreConfig) -> bool {
    !cfg.account_only || session_arn.split(':').nth(4) == Some(cfg.account_id.as_str())
}

/// A handle's configuration for one account (see [`SessionStore::for_account`]).
pub(crate) fn account_config(
    cfg: &StoreConfig,
    account: &str,
) -> std::result::Result<StoreConfig, String> {
    let scoped = StoreConfig {
        account_id: account.to_string(),
        account_only: true,
        ..cfg.clone()
    };
    scoped.validate()?;
    Ok(scoped)
}

pub(crate) fn not_found_session(raw: &str) -> crate::error::Error {
    crate::error::Error::not_found(format!("Session {raw} was not found"))
        .with_reason(crate::error::Reason::SessionNotFound)
}

pub(crate) fn not_found_invocation(session_id: &str, invocation_id: &str) -> crate::error::Error {
    crate::error::Error::not_found(format!(
        "Invocation {invocation_id} was not found in session {session_id}"
    ))
    .with_reason(crate::error::Reason::InvocationNotFound)
}

pub(crate) fn not_found_step(
    session_id: &str,
    invocation_id: &str,
    step_id: &str,
) -> crate::error::Error {
    crate::error::Error::not_found(format!(
        "Invocation step {step_id} was not found in invocation {invocation_id} of session {session_id}"
    ))
    .with_reason(crate::error::Reason::StepNotFound)
}

pub(crate) fn already_ended(session_id: &str) -> crate::error::Error {
    crate::error::Error::conflict(format!("Session {session_id} is already ENDED"))
}

pub(crate) fn delete_active(session_id: &str) -> crate::error::Error {
    crate::error::Error::conflict(format!(
        "Session {session_id} is ACTIVE: end it (EndSession) before deleting it"
    ))
}

pub(crate) fn invocation_exists(session_id: &str, invocation_id: &str) -> crate::error::Error {
    crate::error::Error::conflict(format!(
        "Invocation {invocation_id} already exists in session {session_id}"
    ))
    .with_reason(crate::error::Reason::AlreadyExists)
}

/// A step id that exists with other content (a retry of the same step is a success instead).
pub(crate) fn step_conflict(session_id: &str, step_id: &str) -> crate::error::Error {
    crate::error::Error::conflict(format!(
        "Invocation step {step_id} already exists in session {session_id} with other content"
    ))
    .with_reason(crate::error::Reason::AlreadyExists)
}

pub(crate) fn step_quota(session_id: &str, cfg: &StoreConfig) -> crate::error::Error {
    crate::error::Error::quota(format!(
        "Session {session_id} has reached its quota of {} invocation steps",
        cfg.max_steps_per_session
    ))
}

/// A step's payload fits `max_step_bytes` (checked before anything is locked or written).
pub(crate) fn check_step_size(payload: &crate::model::Payload, cfg: &StoreConfig) -> Result<()> {
    let size = payload.byte_size();
    if size > cfg.max_step_bytes {
        return Err(crate::error::Error::validation(format!(
            "Invalid payload: {size} bytes, a step may hold at most {} bytes",
            cfg.max_step_bytes
        )));
    }
    Ok(())
}

/// A session holds at most `MAX_TAGS` tags (checked on the merged set).
pub(crate) fn check_tag_count(n: usize) -> Result<()> {
    use crate::model::MAX_TAGS;
    if n > MAX_TAGS {
        return Err(crate::error::Error::validation(format!(
            "Invalid tags: the session would have {n} tags, at most {MAX_TAGS} are allowed"
        )));
    }
    Ok(())
}

/// The session named by a tagging ARN, and the error the tagging operations give when there is none.
pub(crate) fn tagged_session_ref(arn: &ResourceArn) -> SessionRef {
    SessionRef {
        raw: arn.raw.clone(),
        id: arn.arn.session_id.clone(),
        arn: Some(arn.arn.clone()),
    }
}

pub(crate) fn tagged_error(arn: &ResourceArn, e: crate::error::Error) -> crate::error::Error {
    if e.code == crate::error::ErrorCode::ResourceNotFound {
        crate::error::Error::not_found(format!("Resource {} was not found", arn.raw))
    } else {
        e
    }
}

/// How hard a commit is pushed to disk. Both survive `kill -9` of the writer (WAL frames are in the
/// OS page cache); `Full` also survives power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Full,
    Normal,
}

/// Settings of the embedded store. The defaults are the service's documented quotas.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub partition: String,
    pub region: String,
    pub account_id: String,
    /// An ACTIVE session not written for this long reads as EXPIRED (service: 1 hour).
    pub idle_timeout: Duration,
    pub max_steps_per_session: u64,
    pub max_step_bytes: usize,
    pub default_page_size: u32,
    /// How long a writer waits for another process's lock before giving up (ThrottlingException).
    pub busy_timeout: Duration,
    pub durability: Durability,
    pub clock: Arc<dyn Clock>,
    /// This handle acts for `account_id` alone: it sees no other account's session (the local server's
    /// tenants, see [`SessionStore::for_account`]). Off: every session in the store, whatever its account.
    pub account_only: bool,
    /// Where data keys come from (a keyring, KMS): sessions are encrypted at rest when they name a key, or when
    /// it has a default key (`store::encryption`). None: every session is stored in clear, and a session that
    /// names a key is refused.
    pub key_source: Option<Arc<dyn crate::crypto::KeySource>>,
    /// Sessions not updated for this long are erased (`store::retention`). None: kept until deleted.
    pub retention: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            idle_timeout: Duration::from_secs(3600),
            max_steps_per_session: 1000,
            max_step_bytes: 50 * 1024 * 1024,
            default_page_size: 10,
            busy_timeout: Duration::from_secs(30),
            durability: Durability::Full,
            clock: Arc::new(SystemClock),
            account_only: false,
            key_source: None,
            retention: None,
        }
    }
}

impl StoreConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(format!("region {:?} must match [a-z0-9-]+", self.region));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "account_id {:?} must be 12 digits",
                self.account_id
            ));
        }
        if self.max_steps_per_session == 0 || self.max_step_bytes == 0 {
            return Err("max_steps_per_session and max_step_bytes must be positive".into());
        }
        if !(1..=1000).contains(&self.default_page_size) {
            return Err("default_page_size must be between 1 and 1000".into());
        }
        if self.retention.is_some_and(|r| r.is_zero()) {
            return Err(
                "the retention period must be positive (None keeps sessions until deleted)".into(),
            );
        }
        Ok(())
    }
}
