//! Encryption at rest in the embedded stores (issue 16), written once for both: which records are sealed and
//! with which AAD, which key a new session gets, and the cache of unwrapped data keys. The envelope itself
//! (data keys, sealing, keyrings, KMS) is `crate::crypto`'s.
//!
//! # What is sealed
//! A session is encrypted or clear for life, decided at CreateSession ([`AtRest::new_session_key`]): encrypted
//! when the request names a key (`encryptionKeyArn`), or when it names none and the store's key source has a
//! default key; clear otherwise. An encrypted session has one wrapped data key, stored beside it; each of these
//! records is sealed under its data key ([`Record`]):
//! - a step's payload (text blocks, image bytes and S3 URIs alike: the whole encoded payload), AAD kind `step`,
//!   id the step id;
//! - the session's metadata (the whole map: keys and values), kind `session-metadata`, id empty;
//! - an invocation's description, kind `invocation-description`, id the invocation id.
//!
//! Each AAD names the session ARN too, so a record copied into another session, another record or another kind
//! of record does not open there. What stays clear: ids, ARNs, times, statuses, counts, sizes, tags (the service
//! matches them in IAM policies, and tagging works on them without the key), the key ARN a session names, and
//! the thread index (thread ids → session ids). A clear record found in an encrypted session, or a sealed one in
//! a clear session, is refused: a record cannot be downgraded to plaintext behind the store's back.
//!
//! # Keys in memory
//! A session's data key is unwrapped once (one `Decrypt` with KMS) and kept in a small cache for
//! [`KEY_CACHE_TTL`] (so that a disabled or revoked KMS key stops serving within that time), at most
//! [`KEY_CACHE_CAPACITY`] sessions; keys are wiped from memory when they leave it. Deleting or erasing a
//! session drops its key.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::crypto::{
    self, CryptoError, DataKey, EncryptionContext, KeySource, RecordAad, RecordKind, WrappedKey,
};
use crate::error::{Error, ErrorCode, Result};

/// How long an unwrapped data key is kept in memory: the longest a revoked KMS key (or a key removed from a
/// keyring file, once reloaded) goes on serving a store that has already unwrapped a session's key.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// How many sessions' data keys are kept in memory at most.
pub const KEY_CACHE_CAPACITY: usize = 4096;

/// A record of a session that is sealed when the session is encrypted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Record<'a> {
    /// A step's encoded payload (`store::payload`), by step id.
    Step(&'a str),
    /// The session's metadata (its JSON text).
    Metadata,
    /// An invocation's description, by invocation id.
    Description(&'a str),
}

impl<'a> Record<'a> {
    fn aad(self, session_arn: &'a str) -> RecordAad<'a> {
        match self {
            Record::Step(id) => RecordAad::new(session_arn, RecordKind::Step, id),
            Record::Metadata => RecordAad::new(session_arn, RecordKind::SessionMetadata, ""),
            Record::Description(id) => {
                RecordAad::new(session_arn, RecordKind::InvocationDescription, id)
            }
        }
    }

    fn describe(self) -> String {
        match self {
            Record::Step(id) => format!("step {id}"),
            Record::Metadata => "the session metadata".into(),
            Record::Description(id) => format!("the description of invocation {id}"),
        }
    }
}

/// A value as a store holds it: in clear, or sealed (the bytes of [`crypto::seal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kept<T> {
    Clear(T),
    Sealed(Vec<u8>),
}

/// How one session's records are kept: its ARN (named in every AAD) and, when it is encrypted, its data key.
#[derive(Debug, Clone)]
pub(crate) struct Sealing {
    arn: String,
    key: Option<Arc<DataKey>>,
}

impl Sealing {
    pub fn clear(arn: &str) -> Self {
        Sealing {
            arn: arn.to_string(),
            key: None,
        }
    }

    pub fn is_sealed(&self) -> bool {
        self.key.is_some()
    }

    /// A sealing under `key` (a new session's).
    pub fn sealed(arn: &str, key: Arc<DataKey>) -> Self {
        Sealing {
            arn: arn.to_string(),
            key: Some(key),
        }
    }

    /// The bytes to store for `record`: sealed when the session is encrypted, else `plain` itself.
    pub fn seal_bytes<'b>(&self, record: Record<'_>, plain: &'b [u8]) -> Cow<'b, [u8]> {
        match &self.key {
            Some(k) => Cow::Owned(crypto::seal(k, &record.aad(&self.arn), plain)),
            None => Cow::Borrowed(plain),
        }
    }

    /// The plaintext of stored bytes (see [`Sealing::seal_bytes`]); a sealed record that does not open (altered,
    /// moved from another session or record, another key) is an error naming it.
    pub fn open_bytes<'b>(&self, record: Record<'_>, stored: &'b [u8]) -> Result<Cow<'b, [u8]>> {
        match &self.key {
            Some(k) => Ok(Cow::Owned(
                crypto::open(k, &record.aad(&self.arn), stored).map_err(|e| self.refused(e))?,
            )),
            None => Ok(Cow::Borrowed(stored)),
        }
    }

    /// `value` as the store keeps it: sealed (its bytes by `encode`) when the session is encrypted.
    pub fn keep<T>(
        &self,
        record: Record<'_>,
        value: T,
        encode: impl FnOnce(&T) -> Vec<u8>,
    ) -> Kept<T> {
        match &self.key {
            Some(k) => Kept::Sealed(crypto::seal(k, &record.aad(&self.arn), &encode(&value))),
            None => Kept::Clear(value),
        }
    }

    /// The value of a kept record; a clear record in an encrypted session (or a sealed one in a clear session) is
    /// refused, as is a sealed record that does not open.
    pub fn get<T>(
        &self,
        record: Record<'_>,
        kept: Kept<T>,
        decode: impl FnOnce(Vec<u8>) -> Result<T>,
    ) -> Result<T> {
        match (kept, &self.key) {
            (Kept::Clear(v), None) => Ok(v),
            (Kept::Sealed(b), Some(k)) => {
                decode(crypto::open(k, &record.aad(&self.arn), &b).map_err(|e| self.refused(e))?)
            }
            (Kept::Clear(_), Some(_)) => Err(Error::internal(format!(
                "{} of encrypted session {} is stored in clear: it was not written by this store (a sealed \
                 record was replaced), and is refused",
                record.describe(),
                self.arn
            ))),
            (Kept::Sealed(_), None) => Err(Error::internal(format!(
                "{} of session {} is sealed, but the session has no data key (it was destroyed, or the file \
                 was altered)",
                record.describe(),
                self.arn
            ))),
        }
    }

    fn refused(&self, e: CryptoError) -> Error {
        Error::internal(format!("{e} (session {})", self.arn))
    }
}

/// A new session's data key, and its wrapped form to store beside the session.
#[derive(Debug)]
pub(crate) struct NewKey {
    pub key: Arc<DataKey>,
    /// [`WrappedKey::to_bytes`].
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Cached {
    Clear,
    Sealed { arn: String, key: Arc<DataKey> },
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    until: Instant,
}

/// A store's encryption at rest: its key source (none: every session clear, and an encrypted one refused) and
/// its cache of data keys. One per store, shared by its account handles.
#[derive(Debug)]
pub(crate) struct AtRest {
    source: Option<Arc<dyn KeySource>>,
    cache: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
}

impl AtRest {
    pub fn new(source: Option<Arc<dyn KeySource>>) -> Self {
        AtRest {
            source,
            cache: Mutex::new(HashMap::new()),
            ttl: KEY_CACHE_TTL,
        }
    }

    /// Whether the store has a key source (without one, no session needs a key looked up).
    pub fn enabled(&self) -> bool {
        self.source.is_some()
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key decision of CreateSession, made before anything is written: the requested key, checked with
    /// the key source (`ValidationException` for a key it cannot use, `AccessDeniedException` when it refuses
    /// the caller); else the source's default key; else `None` (a clear session). A session that names a key
    /// is never stored in clear: without a key source it is refused.
    pub async fn new_session_key(
        &self,
        requested: Option<&str>,
        session_arn: &str,
    ) -> Result<Option<NewKey>> {
        let Some(source) = &self.source else {
            return match requested {
                None => Ok(None),
                Some(k) => Err(Error::validation(format!(
                    "Invalid encryptionKeyArn: KMS key {k} cannot encrypt a session here: this store has no \
                     key material (open it with a keyring or KMS: keyring=FILE or kms_key=ARN, serve \
                     --keyring FILE or --kms-key ARN); the session was not created"
                ))),
            };
        };
        if requested.is_none() && source.default_key().is_none() {
            return Ok(None);
        }
        // The source's messages name the key and why it cannot be used.
        let refuse = |e: Error| {
            let what = if requested.is_some() {
                "Invalid encryptionKeyArn"
            } else {
                "The store's default key cannot be used"
            };
            e.context(format_args!("{what} (the session was not created)"))
        };
        if let Some(k) = requested {
            source.check_key(k).await.map_err(refuse)?;
        }
        let (key, wrapped) = source
            .generate_data_key(requested, &EncryptionContext::session(session_arn))
            .await
            .map_err(refuse)?;
        Ok(Some(NewKey {
            key: Arc::new(key),
            wrapped: wrapped.to_bytes(),
        }))
    }

    /// [`AtRest::new_session_key`], and the sealing of the new session's records.
    pub async fn new_session(
        &self,
        requested: Option<&str>,
        session_arn: &str,
    ) -> Result<(Option<NewKey>, Sealing)> {
        let new_key = self.new_session_key(requested, session_arn).await?;
        let sealing = match &new_key {
            Some(k) => Sealing::sealed(session_arn, k.key.clone()),
            None => Sealing::clear(session_arn),
        };
        Ok((new_key, sealing))
    }

    /// Remembers a new session's key (or that it is clear) once it is stored.
    pub fn created(&self, session_id: &str, arn: &str, key: Option<&NewKey>) {
        if !self.enabled() {
            return;
        }
        let cached = match key {
            Some(k) => Cached::Sealed {
                arn: arn.to_string(),
                key: k.key.clone(),
            },
            None => Cached::Clear,
        };
        self.remember(session_id, cached);
    }

    fn remember(&self, session_id: &str, cached: Cached) {
        let now = Instant::now();
        let mut cache = self.cache();
        if cache.len() >= KEY_CACHE_CAPACITY && !cache.contains_key(session_id) {
            cache.retain(|_, e| e.until > now);
            if cache.len() >= KEY_CACHE_CAPACITY {
                // The entry closest to expiry goes (an O(n) scan, only when the cache is full).
                if let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| k.clone())
                {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(
            session_id.to_string(),
            Entry {
                cached,
                until: now + self.ttl,
            },
        );
    }

    fn lookup(&self, session_id: &str) -> Option<Cached> {
        let mut cache = self.cache();
        match cache.get(session_id) {
            Some(e) if e.until > Instant::now() => Some(e.cached.clone()),
            Some(_) => {
                cache.remove(session_id);
                None
            }
            None => None,
        }
    }

    /// Drops a session's key from memory (it is deleted, or erased).
    pub fn forget(&self, session_id: &str) {
        if self.enabled() {
            self.cache().remove(session_id);
        }
    }

    /// The sealing of a session as stored (its ARN and wrapped key, `None` for a clear session): its data key
    /// from the cache, or unwrapped by the key source under the session's encryption context.
    pub async fn sealing(
        &self,
        session_id: &str,
        arn: &str,
        wrapped: Option<&[u8]>,
    ) -> Result<Sealing> {
        let Some(wrapped) = wrapped else {
            return Ok(Sealing::clear(arn));
        };
        let Some(source) = &self.source else {
            return Err(self.no_source(session_id, wrapped));
        };
        if let Some(Cached::Sealed { arn: a, key }) = self.lookup(session_id) {
            if a == arn {
                return Ok(Sealing {
                    arn: a,
                    key: Some(key),
                });
            }
        }
        let w = WrappedKey::from_bytes(wrapped).map_err(|e| {
            Error::internal(format!("{e} (session {arn}): its records cannot be read"))
        })?;
        let key = Arc::new(
            source
                .decrypt_data_key(&w, &EncryptionContext::session(arn))
                .await
                .map_err(|e| e.context(format_args!("session {arn}")))?,
        );
        self.remember(
            session_id,
            Cached::Sealed {
                arn: arn.to_string(),
                key: key.clone(),
            },
        );
        Ok(Sealing {
            arn: arn.to_string(),
            key: Some(key),
        })
    }

    /// Before a write that seals records: the session's sealing, from the cache or, on a miss, from its stored
    /// row (`load`: its ARN and wrapped key). `None` when the store has no key source: the write stays clear,
    /// and is refused by [`AtRest::check`] if the session turns out to be encrypted.
    pub async fn prepare<F, Fut>(&self, session_id: &str, load: F) -> Result<Option<Sealing>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Option<Vec<u8>>)>>,
    {
        if !self.enabled() {
            return Ok(None);
        }
        match self.lookup(session_id) {
            Some(Cached::Sealed { arn, key }) => Ok(Some(Sealing {
                arn,
                key: Some(key),
            })),
            Some(Cached::Clear) => Ok(Some(Sealing {
                arn: String::new(),
                key: None,
            })),
            None => {
                let (arn, wrapped) = load().await?;
                let sealing = self.sealing(session_id, &arn, wrapped.as_deref()).await?;
                if !sealing.is_sealed() {
                    self.remember(session_id, Cached::Clear);
                }
                Ok(Some(sealing))
            }
        }
    }

    /// Inside a write, once the session's row is read: the sealing to use, checked against what
    /// [`AtRest::prepare`] sealed with (they disagree only if the file changed under the cache: a clear error,
    /// nothing written).
    pub fn check(
        &self,
        prepared: Option<&Sealing>,
        session_id: &str,
        arn: &str,
        wrapped: Option<&[u8]>,
    ) -> Result<Sealing> {
        match (prepared, wrapped) {
            (None, None) => Ok(Sealing::clear(arn)),
            (None, Some(w)) => Err(self.no_source(session_id, w)),
            (Some(p), None) if !p.is_sealed() => Ok(Sealing::clear(arn)),
            (Some(p), Some(_)) if p.is_sealed() && p.arn == arn => Ok(p.clone()),
            (Some(_), _) => {
                self.forget(session_id);
                Err(Error::internal(format!(
                    "session {arn} changed its encryption while it was written (its data key was \
                     destroyed or replaced): nothing was written"
                )))
            }
        }
    }

    /// An encrypted session met by a store without a key source.
    fn no_source(&self, session_id: &str, wrapped: &[u8]) -> Error {
        let by = match WrappedKey::from_bytes(wrapped) {
            Ok(w) => format!("KMS key {} ({})", w.key_arn, w.provider.describe()),
            Err(_) => "a data key this build cannot read".into(),
        };
        Error::new(
            ErrorCode::AccessDenied,
            format!(
                "Session {session_id} is encrypted with {by}, and this store was opened without key \
                 material: open it with the keyring or KMS key its sessions were encrypted with \
                 (keyring=FILE, kms_key=ARN; serve --keyring, --kms-key)"
            ),
        )
    }
}

/// A session's invocations as held, `(id, description, created_at)`, their descriptions opened with `sealing`.
pub(crate) fn open_invocations(
    sealing: &Sealing,
    session_id: &str,
    held: Vec<(String, Option<Kept<String>>, crate::clock::Micros)>,
) -> Result<Vec<crate::model::Invocation>> {
    held.into_iter()
        .map(|(invocation_id, kept, created_at)| {
            let description = kept
                .map(|k| sealing.get(Record::Description(&invocation_id), k, text_from_bytes))
                .transpose()?;
            Ok(crate::model::Invocation {
                session_id: session_id.to_string(),
                invocation_id,
                description,
                created_at,
            })
        })
        .collect()
}

/// Session metadata as stored: JSON text (the plaintext of a sealed one too).
pub(crate) fn metadata_json(m: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(m).expect("a map of strings serializes")
}

pub(crate) fn metadata_from_json(bytes: Vec<u8>) -> Result<BTreeMap<String, String>> {
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::internal(format!("stored session metadata is corrupt: {e}")))
}

pub(crate) fn text_from_bytes(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::internal("a stored description is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keyring;

    const K1: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const K2: &str = "arn:aws:kms:us-east-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab";
    const S1: &str = "arn:aws:bedrock:us-east-1:000000000000:session/s1";
    const S2: &str = "arn:aws:bedrock:us-east-1:000000000000:session/s2";

    fn keyring(default: bool) -> Arc<dyn KeySource> {
        let mut json = serde_json::json!({"keys": {K1: Keyring::generate_key_material().unwrap()}});
        if default {
            json["default"] = K1.into();
        }
        Arc::new(Keyring::from_json(&json.to_string()).unwrap())
    }

    #[tokio::test]
    async fn the_create_session_decision() {
        // No key source: clear, and a named key is refused.
        let none = AtRest::new(None);
        assert!(none.new_session_key(None, S1).await.unwrap().is_none());
        let e = none.new_session_key(Some(K1), S1).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message.contains(K1) && e.message.contains("no key material"),
            "{e}"
        );
        // A keyring without a default: clear unless a key is named; an unknown key is refused.
        let ring = AtRest::new(Some(keyring(false)));
        assert!(ring.new_session_key(None, S1).await.unwrap().is_none());
        let k = ring.new_session_key(Some(K1), S1).await.unwrap().unwrap();
        assert_eq!(WrappedKey::from_bytes(&k.wrapped).unwrap().key_arn, K1);
        let e = ring.new_session_key(Some(K2), S1).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message.contains(K2) && e.message.contains("the session was not created"),
            "{e}"
        );
        // With a default: every session is encrypted.
        let ring = AtRest::new(Some(keyring(true)));
        let k = ring.new_session_key(None, S1).await.unwrap().unwrap();
        assert_eq!(WrappedKey::from_bytes(&k.wrapped).unwrap().key_arn, K1);
    }

    #[tokio::test]
    async fn sealing_binds_records_to_their_session_and_refuses_downgrades() {
        let at = AtRest::new(Some(keyring(true)));
        let k1 = at.new_session_key(None, S1).await.unwrap().unwrap();
        let k2 = at.new_session_key(None, S2).await.unwrap().unwrap();
        let s1 = at.sealing("s1", S1, Some(&k1.wrapped)).await.unwrap();
        let s2 = at.sealing("s2", S2, Some(&k2.wrapped)).await.unwrap();
        assert!(s1.is_sealed());
        let sealed = s1.seal_bytes(Record::Step("a"), b"secret").into_owned();
        assert_eq!(
            &*s1.open_bytes(Record::Step("a"), &sealed).unwrap(),
            b"secret"
        );
        for (s, r) in [
            (&s1, Record::Step("b")),
            (&s1, Record::Metadata),
            (&s2, Record::Step("a")),
        ] {
            let e = s.open_bytes(r, &sealed).unwrap_err();
            assert_eq!(e.code, ErrorCode::InternalServer);
            assert!(e.message.contains("does not open"), "{e}");
        }
        // A wrapped key moved to another session does not unwrap there.
        let fresh = AtRest::new(at.source.clone());
        let e = fresh
            .sealing("s2", S2, Some(&k1.wrapped))
            .await
            .unwrap_err();
        assert!(
            e.message.contains("encryption context") && e.message.contains(S2),
            "{e}"
        );
        // Kept values: a clear one in an encrypted session and a sealed one in a clear session are refused.
        let kept = s1.keep(Record::Description("i"), "turn 1".to_string(), |t| {
            t.as_bytes().to_vec()
        });
        assert!(matches!(kept, Kept::Sealed(_)));
        assert_eq!(
            s1.get(Record::Description("i"), kept.clone(), text_from_bytes)
                .unwrap(),
            "turn 1"
        );
        let e = s1
            .get(
                Record::Description("i"),
                Kept::Clear("x".to_string()),
                text_from_bytes,
            )
            .unwrap_err();
        assert!(e.message.contains("stored in clear"), "{e}");
        let e = Sealing::clear(S1)
            .get(Record::Description("i"), kept, text_from_bytes)
            .unwrap_err();
        assert!(e.message.contains("no data key"), "{e}");
        // A store without a key source names the key of an encrypted session.
        let e = AtRest::new(None)
            .sealing("s1", S1, Some(&k1.wrapped))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(
            e.message.contains(K1) && e.message.contains("without key material"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn keys_are_unwrapped_once_and_forgotten() {
        let at = AtRest::new(Some(keyring(true)));
        let k = at.new_session_key(None, S1).await.unwrap().unwrap();
        at.created("s1", S1, Some(&k));
        // From the cache: no load.
        let p = at
            .prepare("s1", || async { panic!("loaded") })
            .await
            .unwrap()
            .unwrap();
        assert!(p.is_sealed());
        at.check(Some(&p), "s1", S1, Some(&k.wrapped)).unwrap();
        // A row without its key (destroyed under the cache) is refused.
        let e = at.check(Some(&p), "s1", S1, None).unwrap_err();
        assert!(e.message.contains("changed its encryption"), "{e}");
        // Forgotten: loaded again (and unwrapped).
        at.forget("s1");
        let wrapped = k.wrapped.clone();
        let p = at
            .prepare("s1", || async move { Ok((S1.to_string(), Some(wrapped))) })
            .await
            .unwrap()
            .unwrap();
        assert!(p.is_sealed());
        // Expired entries are not served.
        let short = AtRest {
            ttl: Duration::ZERO,
            ..AtRest::new(at.source.clone())
        };
        short.created("s1", S1, Some(&k));
        assert!(short.lookup("s1").is_none());
    }
}
