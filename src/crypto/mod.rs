//! Encryption at rest with customer keys (issue 16): the building blocks. The embedded stores use them through
//! `store::encryption` (which records are sealed with which AAD, the key decision at CreateSession, the data key
//! cache); docs/encryption.md is the user's view.
//!
//! # The envelope scheme
//! An encrypted session has a data key of its own ([`DataKey`], 256 random bits), made when the session is
//! created. Every record the embedded store keeps for it (a step payload with its images, the session's metadata,
//! an invocation's description) is sealed under that key with AES-256-GCM ([`seal()`], [`open()`]), with additional
//! authenticated data that names the session ARN, the kind of record and its id ([`RecordAad`]). The data key
//! is stored only wrapped ([`WrappedKey`]) by a key-encryption key named by a KMS key ARN (the session's
//! `encryptionKeyArn`, or the key source's default), under the encryption context
//! `aws:bedrock:session:arn = <session ARN>` ([`EncryptionContext::session`]), the one the service documents.
//! A [`KeySource`] makes and unwraps data keys: a local keyring file ([`Keyring`], key-encryption keys held in
//! the file, rotated by adding versions) or AWS KMS ([`KmsKeySource`]: `GenerateDataKey` and `Decrypt` with that
//! context, `DescribeKey` to vet a key at CreateSession). The store keeps one wrapped key per session, unwraps it
//! once and caches the [`DataKey`] for a while (`store::encryption`), and seals each record with it.
//!
//! # Formats
//! Integers are big-endian; `lp(x)` is `x`'s byte length as a u32, then `x`. Each format opens with a version
//! byte, so that a later format can be read beside this one; an unknown version is refused, never guessed.
//! - **Sealed record** v1: `01 | nonce (12) | ciphertext | tag (16)`, 29 bytes more than the plaintext.
//!   Its AAD: `lp("bedrock-sessions/record") | 01 | lp(kind) | lp(session ARN) | lp(record id)`: the fields are
//!   length-prefixed, so no two distinct (ARN, kind, id) give the same AAD.
//! - **Wrapped key** v1 (one column value): `01 | source (1 keyring, 2 KMS) | u16 length | key ARN |
//!   u32 length | blob`. The source byte lets a store opened with the wrong kind of key source say so.
//! - **Keyring blob** v1: `01 | key version id (8) | nonce (12) | encrypted data key (32) | tag (16)`, AES-256-GCM
//!   under that version of the key-encryption key, with AAD
//!   `lp("bedrock-sessions/keyring-wrap") | 01 | version id | lp(key ARN) | context`, where the context is
//!   `u32 count | (lp(key) | lp(value))*` sorted by key ([`EncryptionContext::canonical_bytes`]). The version id
//!   is the first 8 bytes of SHA-256(`"bedrock-sessions/keyring-key-id" | 00 | key material`): it names the
//!   version without revealing it.
//! - **KMS blob**: KMS's `CiphertextBlob` as it is (it names its key and binds the context itself).
//!
//! # What each layer protects against
//! - **Sealing** keeps payloads, images and metadata unreadable to whoever reads the database file (a copy, a
//!   backup, a stolen disk) without the data key; it makes any change to a sealed record fail to open; and the
//!   AAD makes a record copied to another session, another record id or another kind of record fail to open, so
//!   records cannot be swapped or replayed across sessions (nor their version byte changed: it is
//!   authenticated too). It does not hide sizes, ids, times, tags or ARNs (clear columns), and does not detect
//!   a record put back to an older value of the same record (same session, kind and id), a deleted record, or
//!   the whole file rolled back: the AAD binds a record to its place, not to a time.
//! - **Wrapping** makes the data key worthless without the key-encryption key. With KMS, every unwrap is a
//!   `Decrypt` call that the key policy allows or refuses and CloudTrail logs with the session ARN in its
//!   context; disabling or deleting the key makes the key's sessions unreadable (crypto-shredding). The
//!   context binds a wrapped key to its session: a wrapped key copied to another session's row does not
//!   unwrap there. A keyring is as safe as its file: it is refused when group or others may access it.
//! - **Not covered**: a process that holds data keys (they are wiped from memory when dropped, best effort:
//!   the SDK's response buffers are not ours to wipe); anyone who can run code as the store's user.
//!
//! Random 96-bit nonces are safe for up to about 2^32 seals under one key; a data key seals one session's
//! records (the service's quota is 1,000 steps) and a key-encryption key wraps one data key per session.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_trait::async_trait;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

mod keyring;
mod kms;
mod seal;

pub use keyring::Keyring;
pub use kms::KmsKeySource;
pub use seal::{RecordAad, RecordKind, SEAL_OVERHEAD, SEAL_VERSION, open, seal};

/// The key of the encryption context that binds a data key to its session (the service's).
pub const SESSION_ARN_CONTEXT_KEY: &str = "aws:bedrock:session:arn";

/// Bytes of a data key (AES-256).
pub const DATA_KEY_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------
// Data keys

/// A session's data key: 32 bytes, wiped from memory when dropped, never printed (its `Debug` says only that
/// it is a data key). Boxed, so that moving it around copies no key bytes.
pub struct DataKey(Box<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A new random key (the system's generator, through aws-lc).
    pub fn generate() -> Result<DataKey> {
        let mut key = DataKey(Box::new([0u8; DATA_KEY_LEN]));
        aws_lc_rs::rand::fill(&mut key.0[..])
            .map_err(|_| Error::internal("the system random generator failed"))?;
        Ok(key)
    }

    /// A key from exactly 32 bytes (an unwrapped key); `None` for another length.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let mut key = DataKey(Box::new([0u8; DATA_KEY_LEN]));
        if bytes.len() != DATA_KEY_LEN {
            return None;
        }
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// The key's bytes, for the ciphers of this module only.
    pub(crate) fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for DataKey {}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Encryption contexts

/// A KMS-style encryption context: string pairs, kept sorted by key. What a wrapped data key is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    pub fn new() -> Self {
        EncryptionContext::default()
    }

    /// `{"aws:bedrock:session:arn": arn}`: the context of a session's data key.
    pub fn session(arn: &str) -> Self {
        EncryptionContext::new().with(SESSION_ARN_CONTEXT_KEY, arn)
    }

    /// The context with one more pair (a key given twice keeps the last value).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The canonical bytes (an AAD): `u32 count | (lp(key) | lp(value))*`, sorted by key.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            4 + self
                .0
                .iter()
                .map(|(k, v)| 8 + k.len() + v.len())
                .sum::<usize>(),
        );
        out.extend_from_slice(&len_u32(self.0.len()).to_be_bytes());
        for (k, v) in &self.0 {
            put_lp(&mut out, k.as_bytes());
            put_lp(&mut out, v.as_bytes());
        }
        out
    }

    /// The context as the AWS SDK takes it.
    pub(crate) fn to_hash_map(&self) -> HashMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl fmt::Display for EncryptionContext {
    /// `{k=v, ...}`, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str("}")
    }
}

/// A length as the u32 of the formats. Every length-prefixed field here is an ARN, an id, a context value or a
/// record far under 4 GiB (the store's limit on a step is 50 MiB); truncating one would make two inputs encode
/// alike, so a larger one stops rather than wraps.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a field of an encryption format is under 4 GiB")
}

/// Appends `lp(bytes)`: the length as a big-endian u32, then the bytes.
fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len_u32(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

// ---------------------------------------------------------------------------------------------
// Wrapped keys

/// Who wrapped a data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyProvider {
    /// A local keyring file ([`Keyring`]).
    Keyring = 1,
    /// AWS KMS ([`KmsKeySource`]).
    Kms = 2,
}

impl KeyProvider {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(KeyProvider::Keyring),
            2 => Some(KeyProvider::Kms),
            _ => None,
        }
    }

    /// For messages: "a local keyring", "AWS KMS".
    pub fn describe(self) -> &'static str {
        match self {
            KeyProvider::Keyring => "a local keyring",
            KeyProvider::Kms => "AWS KMS",
        }
    }
}

/// A data key as it is stored: wrapped by the key `key_arn` of `provider`; `blob` is opaque outside the source
/// that made it. [`WrappedKey::to_bytes`] gives the column value (format in the module's doc).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The key ARN that wrapped it (KMS's key ARN, never an alias: aliases can be moved to other keys).
    pub key_arn: String,
    pub provider: KeyProvider,
    pub blob: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("key_arn", &self.key_arn)
            .field("provider", &self.provider)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

impl WrappedKey {
    /// The version byte of [`WrappedKey::to_bytes`].
    pub const FORMAT_VERSION: u8 = 1;

    /// `01 | provider | u16 length | key ARN | u32 length | blob`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let arn = self.key_arn.as_bytes();
        let arn_len = u16::try_from(arn.len()).expect("a key ARN has at most 2048 bytes");
        let mut out = Vec::with_capacity(8 + arn.len() + self.blob.len());
        out.push(Self::FORMAT_VERSION);
        out.push(self.provider as u8);
        out.extend_from_slice(&arn_len.to_be_bytes());
        out.extend_from_slice(arn);
        put_lp(&mut out, &self.blob);
        out
    }

    /// Reads [`WrappedKey::to_bytes`]'s format; anything else (another version, a cut or padded value) is an
    /// error.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<WrappedKey, CryptoError> {
        let malformed = |detail: &str| CryptoError::Malformed {
            what: "stored wrapped data key".into(),
            detail: detail.into(),
        };
        let (&version, rest) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
        if version != Self::FORMAT_VERSION {
            return Err(CryptoError::UnknownVersion {
                what: "stored wrapped data key".into(),
                version,
            });
        }
        let (&provider, rest) = rest.split_first().ok_or_else(|| malformed("cut short"))?;
        let provider = KeyProvider::from_byte(provider)
            .ok_or_else(|| malformed(&format!("unknown key source {provider}")))?;
        let (len, rest) = rest
            .split_at_checked(2)
            .ok_or_else(|| malformed("cut short"))?;
        let arn_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (arn, rest) = rest
            .split_at_checked(arn_len)
            .ok_or_else(|| malformed("cut short"))?;
        let key_arn = std::str::from_utf8(arn)
            .map_err(|_| malformed("the key ARN is not UTF-8"))?
            .to_string();
        let (len, blob) = rest
            .split_at_checked(4)
            .ok_or_else(|| malformed("cut short"))?;
        let blob_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if blob.len() != blob_len {
            return Err(malformed(&format!(
                "the blob has {} bytes, its length says {blob_len}",
                blob.len()
            )));
        }
        Ok(WrappedKey {
            key_arn,
            provider,
            blob: blob.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Key sources

/// Where data keys come from and are unwrapped: a local [`Keyring`] or AWS KMS ([`KmsKeySource`]).
///
/// Errors: `ValidationException` for a key that cannot be used for a new session ([`KeySource::check_key`];
/// a malformed or missing key ARN, a key the keyring does not hold); `AccessDeniedException` when the source
/// refuses a key while a session is read or written (disabled, pending deletion, not allowed by its policy,
/// a key or key version no longer in the keyring); `InternalServerException` when a stored wrapped key does
/// not unwrap (another session's context, altered); `ThrottlingException` and `InternalServerException` for
/// KMS's transient failures (after our retries).
#[async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    /// A new data key, and the same key wrapped by `key_arn` (`None`: the source's default key; an error when
    /// it has none) under `context`.
    async fn generate_data_key(
        &self,
        key_arn: Option<&str>,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey)>;

    /// Unwraps a data key that this source wrapped under the same `context`.
    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey>;

    /// The key used when none is given, if any.
    fn default_key(&self) -> Option<String>;

    /// Whether this source can use `key_arn` for new data keys: CreateSession refuses a session whose key
    /// fails this (`ValidationException` naming the key and why).
    async fn check_key(&self, key_arn: &str) -> Result<()>;
}

/// A wrapped key that another kind of source made: say which, rather than fail to decrypt it.
fn check_provider(wrapped: &WrappedKey, expected: KeyProvider) -> Result<()> {
    if wrapped.provider == expected {
        return Ok(());
    }
    Err(Error::validation(format!(
        "the data key was wrapped by {} with key {}, but this store's keys come from {}: open the store \
         with the key source its sessions were encrypted with",
        wrapped.provider.describe(),
        wrapped.key_arn,
        expected.describe()
    )))
}

// ---------------------------------------------------------------------------------------------
// Key sources from settings

/// How to make a store's key source: kept as settings so that a forked child makes its own (a KMS client
/// holds connections that are its parent's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceSpec {
    /// A keyring file ([`Keyring::load`]).
    Keyring(std::path::PathBuf),
    /// AWS KMS with the standard credential chain (environment, profile, SSO, container, instance).
    Kms {
        /// The key of sessions that name none (a key or alias ARN); without it, such sessions stay clear.
        default_key: Option<String>,
        /// KMS's region; else the default key's region, else the store's (the region of its session ARNs).
        region: Option<String>,
        /// KMS's endpoint (an emulator, a VPC endpoint); else the region's.
        endpoint_url: Option<String>,
    },
}

impl KeySourceSpec {
    /// The key source: the keyring loaded (its permissions checked), or a KMS client configured (no call is
    /// made until a session needs a key). `store_region`: the region of the store's session ARNs.
    pub async fn build(
        &self,
        store_region: &str,
    ) -> std::result::Result<std::sync::Arc<dyn KeySource>, String> {
        match self {
            KeySourceSpec::Keyring(path) => Ok(std::sync::Arc::new(Keyring::load(path)?)),
            KeySourceSpec::Kms {
                default_key,
                region,
                endpoint_url,
            } => {
                if let Some(k) = default_key {
                    check_key_arn(k).map_err(|e| format!("kms_key: {}", e.message))?;
                }
                // A key ARN names its region: KMS must be asked there.
                let region = region
                    .clone()
                    .or_else(|| {
                        default_key
                            .as_deref()
                            .and_then(|k| k.split(':').nth(3))
                            .map(String::from)
                    })
                    .unwrap_or_else(|| store_region.to_string());
                let shared = crate::aws::load_sdk_config(&crate::aws::BedrockConfig {
                    region: Some(region),
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("KMS: {e}"))?;
                let source = KmsKeySource::from_sdk_config(&shared, endpoint_url.as_deref());
                Ok(std::sync::Arc::new(match default_key {
                    Some(k) => source.with_default_key(k)?,
                    None => source,
                }))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key ARNs

/// A KMS key ARN (`arn:aws:kms:<region>:<account>:key/<key-id>`, the form CreateSession takes) or a KMS alias
/// ARN (`arn:aws:kms:<region>:<account>:alias/<name>`).
pub fn is_key_or_alias_arn(s: &str) -> bool {
    crate::validate::is_kms_key_arn(s) || is_alias_arn(s)
}

/// `arn:<aws|aws-cn|aws-us-gov>:kms:<region>:<12 digits>:alias/<name>`, the name 1–256 of `[a-zA-Z0-9/_-]`.
fn is_alias_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "kms"
        && !region.is_empty()
        && region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && account.len() == 12
        && account.bytes().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("alias/").is_some_and(|name| {
            (1..=256).contains(&name.len())
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-'))
        })
}

/// `ValidationException` unless `arn` is a KMS key or alias ARN.
fn check_key_arn(arn: &str) -> Result<()> {
    if is_key_or_alias_arn(arn) {
        return Ok(());
    }
    Err(Error::validation(format!(
        "{arn:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>) nor a KMS alias ARN \
         (arn:aws:kms:<region>:<account>:alias/<name>)"
    )))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a sealed record or a stored wrapped key cannot be read. Stored data that does not open is the store's
/// failure, not the caller's: as an [`Error`] it is an `InternalServerException` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Written in a format version this build does not know (a newer build's, or not ours).
    #[error("{what}: unknown format version {version}")]
    UnknownVersion { what: String, version: u8 },
    /// Not a value of the format (cut short, padded, a field out of range).
    #[error("{what} is malformed: {detail}")]
    Malformed { what: String, detail: String },
    /// The authentication tag does not match: the record was altered, or belongs to another session, kind or
    /// id (moved or replayed), or was sealed under another data key.
    #[error(
        "{what} does not open: it was altered, or it belongs to another session or record, or it was \
         sealed with another data key"
    )]
    NotAuthentic { what: String },
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ARN: &str =
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn data_key_debug_prints_no_key_bytes() {
        let key = DataKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "DataKey(<redacted>)");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(DataKey::from_slice(&[0; 31]).is_none());
        assert!(DataKey::from_slice(&[0; 33]).is_none());
        let (a, b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
        assert_ne!(a.expose(), b.expose(), "two random keys");
    }

    #[test]
    fn encryption_context_is_sorted_and_canonical() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:session/abc";
        let ctx = EncryptionContext::session(arn);
        assert_eq!(ctx.get(SESSION_ARN_CONTEXT_KEY), Some(arn));
        let a = EncryptionContext::new().with("b", "2").with("a", "1");
        let b = EncryptionContext::new().with("a", "1").with("b", "2");
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        assert_eq!(a.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(a.to_string(), "{a=1, b=2}");
        // Length prefixes: moving bytes between a key and its value changes the encoding.
        let c = EncryptionContext::new().with("ab", "c");
        let d = EncryptionContext::new().with("a", "bc");
        assert_ne!(c.canonical_bytes(), d.canonical_bytes());
        assert_ne!(
            EncryptionContext::new().canonical_bytes(),
            EncryptionContext::new().with("", "").canonical_bytes()
        );
    }

    #[test]
    fn wrapped_key_bytes_round_trip_and_refuse_other_values() {
        let w = WrappedKey {
            key_arn: KEY_ARN.into(),
            provider: KeyProvider::Kms,
            blob: vec![1, 2, 3, 4, 5],
        };
        let bytes = w.to_bytes();
        assert_eq!(bytes[0], WrappedKey::FORMAT_VERSION);
        assert_eq!(WrappedKey::from_bytes(&bytes).unwrap(), w);
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    WrappedKey::from_bytes(&bytes[..cut]),
                    Err(CryptoError::Malformed { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(
            WrappedKey::from_bytes(&padded),
            Err(CryptoError::Malformed { .. })
        ));
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            WrappedKey::from_bytes(&newer),
            Err(CryptoError::UnknownVersion {
                what: "stored wrapped data key".into(),
                version: 2
            })
        );
        let mut source = bytes;
        source[1] = 9;
        let e = WrappedKey::from_bytes(&source).unwrap_err();
        assert!(e.to_string().contains("unknown key source 9"), "{e}");
        assert_eq!(Error::from(e).code, crate::error::ErrorCode::InternalServer);
    }

    #[test]
    fn key_and_alias_arns() {
        assert!(is_key_or_alias_arn(KEY_ARN));
        assert!(is_key_or_alias_arn(
            "arn:aws:kms:eu-west-1:123456789012:alias/bedrock/sessions_1"
        ));
        assert!(is_key_or_alias_arn(
            "arn:aws-cn:kms:cn-north-1:123456789012:alias/x"
        ));
        for bad in [
            "",
            "alias/x",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:alias/",
            "arn:aws:kms:us-east-1:12345678901:alias/x",
            "arn:aws:kms::123456789012:alias/x",
            "arn:aws:s3:us-east-1:123456789012:alias/x",
            "arn:aws:kms:us-east-1:123456789012:alias/a b",
            "arn:aws:kms:us-east-1:123456789012:key/short",
        ] {
            assert!(!is_key_or_alias_arn(bad), "{bad}");
            assert!(check_key_arn(bad).is_err(), "{bad}");
        }
    }
}
