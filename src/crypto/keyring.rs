//! A local keyring: key-encryption keys in a JSON file, named by KMS key ARNs, for machines without KMS (and
//! for tests). The file:
//!
//! ```json
//! {
//!   "keys": {
//!     "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab": "<base64 of 32 bytes>",
//!     "arn:aws:kms:us-east-1:111122223333:alias/sessions": ["<version 1>", "<version 2, newest>"]
//!   },
//!   "default": "arn:aws:kms:us-east-1:111122223333:alias/sessions"
//! }
//! ```
//!
//! A key is one base64 string of 32 bytes, or a list of them: its versions, oldest first. New data keys are
//! wrapped with the newest version; a wrapped key names its version (by an id derived from the key with
//! SHA-256), so data wrapped with an older version still unwraps while that version stays listed: rotating
//! a key is adding a version at the end, and nothing is rewritten. `default` (optional) is the key of a new
//! session that names none. Nothing else may be in the file; it must be readable and writable by its owner
//! only (mode 600 or 400 on Unix, as ssh requires of a private key). Make a key with
//! `openssl rand -base64 32` or [`Keyring::generate_key_material`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use zeroize::{Zeroize, Zeroizing};

use super::{
    DATA_KEY_LEN, DataKey, EncryptionContext, KeyProvider, KeySource, WrappedKey, check_key_arn,
    check_provider, is_key_or_alias_arn, put_lp,
};
use crate::error::{Error, ErrorCode, Result};

/// The version byte of a keyring blob.
const BLOB_VERSION: u8 = 1;
const VERSION_ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// `01 | version id | nonce | encrypted data key | tag`.
const BLOB_LEN: usize = 1 + VERSION_ID_LEN + NONCE_LEN + DATA_KEY_LEN + TAG_LEN;
const WRAP_LABEL: &[u8] = b"bedrock-sessions/keyring-wrap";
const KEY_ID_LABEL: &[u8] = b"bedrock-sessions/keyring-key-id";
/// A keyring file is a few hundred bytes; a large file is not one (and is not read into memory).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One version of a key-encryption key.
struct KekVersion {
    id: [u8; VERSION_ID_LEN],
    key: RandomizedNonceKey,
}

/// Each key's versions, oldest first, by key ARN.
type Keys = BTreeMap<String, Vec<KekVersion>>;

/// Key-encryption keys from a keyring file, by KMS key ARN. See the module's doc for the file.
pub struct Keyring {
    /// "keyring file <path>", for messages.
    origin: String,
    keys: Keys,
    default: Option<String>,
}

impl fmt::Debug for Keyring {
    /// The file, the key ARNs and their number of versions: no key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("origin", &self.origin)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|(arn, v)| (arn.as_str(), v.len()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("default", &self.default)
            .finish()
    }
}

/// The version id of a key: the first 8 bytes of SHA-256(label | 00 | key).
fn version_id(material: &[u8]) -> [u8; VERSION_ID_LEN] {
    let mut input = Zeroizing::new(Vec::with_capacity(KEY_ID_LABEL.len() + 1 + material.len()));
    input.extend_from_slice(KEY_ID_LABEL);
    input.push(0);
    input.extend_from_slice(material);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut id = [0u8; VERSION_ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..VERSION_ID_LEN]);
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The AAD of a wrapped data key: `lp(label) | 01 | version id | lp(key ARN) | context`.
fn wrap_aad(header: &[u8], key_arn: &str, context: &EncryptionContext) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + key_arn.len());
    put_lp(&mut aad, WRAP_LABEL);
    aad.extend_from_slice(header);
    put_lp(&mut aad, key_arn.as_bytes());
    aad.extend_from_slice(&context.canonical_bytes());
    aad
}

impl Keyring {
    /// Loads a keyring file, refusing one that group or others may access (Unix), that is not JSON of the
    /// form above, has members other than `keys` and `default`, a key id that is not a KMS key or alias ARN,
    /// a key that is not base64 of 32 bytes, the same key id twice, or a `default` that is not one of its keys.
    pub fn load(path: impl AsRef<Path>) -> std::result::Result<Keyring, String> {
        let path = path.as_ref();
        let origin = format!("keyring file {}", path.display());
        let fail = |what: &str, e: std::io::Error| format!("{origin}: {what}: {e}");
        let mut file = std::fs::File::open(path).map_err(|e| fail("cannot open it", e))?;
        // The checks look at the file that was opened, not at the path again.
        let meta = file
            .metadata()
            .map_err(|e| fail("cannot read its metadata", e))?;
        if !meta.is_file() {
            return Err(format!("{origin}: not a regular file"));
        }
        check_permissions(path, &meta).map_err(|e| format!("{origin}: {e}"))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{origin}: {} bytes is too large for a keyring (at most {MAX_FILE_BYTES})",
                meta.len()
            ));
        }
        // Sized up front so that reading leaves no stray copies of the keys in reallocated memory.
        let mut text = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
        file.read_to_string(&mut text)
            .map_err(|e| fail("cannot read it", e))?;
        Self::parse(&text, origin)
    }

    /// A keyring from JSON text (the file's form) without a file: no permission check.
    pub fn from_json(json: &str) -> std::result::Result<Keyring, String> {
        Self::parse(json, "keyring (JSON text)".into())
    }

    fn parse(text: &str, origin: String) -> std::result::Result<Keyring, String> {
        let mut file: KeyringFile = serde_json::from_str(text)
            .map_err(|e| format!("{origin}: not a valid keyring: {e}"))?;
        let result = Self::build(&file, &origin);
        for (_, versions) in &mut file.keys.0 {
            versions.zeroize();
        }
        let (keys, default) = result.map_err(|e| format!("{origin}: {e}"))?;
        Ok(Keyring {
            origin,
            keys,
            default,
        })
    }

    fn build(
        file: &KeyringFile,
        origin: &str,
    ) -> std::result::Result<(Keys, Option<String>), String> {
        if file.keys.0.is_empty() {
            return Err("it has no keys (\"keys\" is empty)".into());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut keys = BTreeMap::new();
        for (arn, encoded) in &file.keys.0 {
            if !is_key_or_alias_arn(arn) {
                return Err(format!(
                    "key id {arn:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>) \
                     nor a KMS alias ARN (arn:aws:kms:<region>:<account>:alias/<name>)"
                ));
            }
            if encoded.is_empty() {
                return Err(format!("key {arn}: the list of versions is empty"));
            }
            let mut versions: Vec<KekVersion> = Vec::with_capacity(encoded.len());
            for (i, text) in encoded.iter().enumerate() {
                let n = i + 1;
                let material = Zeroizing::new(
                    b64.decode(text)
                        .map_err(|e| format!("key {arn}, version {n}: not base64 ({e})"))?,
                );
                if material.len() != DATA_KEY_LEN {
                    return Err(format!(
                        "key {arn}, version {n}: {} bytes, a key has {DATA_KEY_LEN} \
                         (make one with `openssl rand -base64 32`)",
                        material.len()
                    ));
                }
                let id = version_id(&material);
                if let Some(j) = versions.iter().position(|v| v.id == id) {
                    return Err(format!(
                        "key {arn}: versions {} and {n} are the same key",
                        j + 1
                    ));
                }
                let key = RandomizedNonceKey::new(&AES_256_GCM, &material)
                    .map_err(|_| format!("key {arn}, version {n}: not an AES-256 key"))?;
                versions.push(KekVersion { id, key });
            }
            keys.insert(arn.clone(), versions);
        }
        if let Some(d) = &file.default {
            if !keys.contains_key(d) {
                return Err(format!(
                    "\"default\" {d:?} is not one of its keys (add it to \"keys\" in {origin})"
                ));
            }
        }
        Ok((keys, file.default.clone()))
    }

    /// The key ARNs (ids) of the keyring, sorted.
    pub fn key_arns(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// How many versions `key_arn` has (`None` when the keyring does not hold it).
    pub fn versions(&self, key_arn: &str) -> Option<usize> {
        self.keys.get(key_arn).map(Vec::len)
    }

    /// A new key for a keyring file: base64 of 32 random bytes.
    pub fn generate_key_material() -> Result<String> {
        let key = DataKey::generate()?;
        Ok(base64::engine::general_purpose::STANDARD.encode(key.expose()))
    }

    fn not_held(&self, key_arn: &str) -> String {
        format!(
            "KMS key {key_arn} is not in {} (its keys: {})",
            self.origin,
            self.keys.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

#[async_trait]
impl KeySource for Keyring {
    async fn generate_data_key(
        &self,
        key_arn: Option<&str>,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey)> {
        let key_arn = match key_arn {
            Some(k) => k.to_string(),
            None => self.default.clone().ok_or_else(|| {
                Error::validation(format!(
                    "no KMS key ARN was given and {} has no \"default\"",
                    self.origin
                ))
            })?,
        };
        check_key_arn(&key_arn)?;
        let newest = self
            .keys
            .get(&key_arn)
            .and_then(|v| v.last())
            .ok_or_else(|| Error::validation(self.not_held(&key_arn)))?;
        let data_key = DataKey::generate()?;
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&newest.id);
        let aad = wrap_aad(&blob, &key_arn, context);
        let mut sealed = Zeroizing::new(*data_key.expose());
        let (nonce, tag) = newest
            .key
            .seal_in_place_separate_tag(Aad::from(aad), &mut sealed[..])
            .map_err(|_| Error::internal("AES-256-GCM failed to wrap a data key"))?;
        blob.extend_from_slice(nonce.as_ref());
        blob.extend_from_slice(&sealed[..]);
        blob.extend_from_slice(tag.as_ref());
        let wrapped = WrappedKey {
            key_arn,
            provider: KeyProvider::Keyring,
            blob,
        };
        Ok((data_key, wrapped))
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        check_provider(wrapped, KeyProvider::Keyring)?;
        let key_arn = &wrapped.key_arn;
        let blob = &wrapped.blob;
        let versions = self.keys.get(key_arn).ok_or_else(|| {
            Error::new(
                ErrorCode::AccessDenied,
                format!(
                    "cannot unwrap the data key under context {context}: {}",
                    self.not_held(key_arn)
                ),
            )
        })?;
        if blob.first() != Some(&BLOB_VERSION) {
            return Err(super::CryptoError::UnknownVersion {
                what: format!("data key wrapped by keyring key {key_arn}"),
                version: blob.first().copied().unwrap_or(0),
            }
            .into());
        }
        if blob.len() != BLOB_LEN {
            return Err(super::CryptoError::Malformed {
                what: format!("data key wrapped by keyring key {key_arn}"),
                detail: format!("{} bytes, a wrapped key has {BLOB_LEN}", blob.len()),
            }
            .into());
        }
        let header = &blob[..1 + VERSION_ID_LEN];
        let id = &header[1..];
        let version = versions.iter().find(|v| v.id == id).ok_or_else(|| {
            Error::new(
                ErrorCode::AccessDenied,
                format!(
                    "cannot unwrap the data key under context {context}: it was wrapped with a version of \
                     KMS key {key_arn} (version id {}) that {} does not hold; put that version back in \
                     its list (rotation adds versions, it never removes them)",
                    hex(id),
                    self.origin
                ),
            )
        })?;
        let nonce = Nonce::try_assume_unique_for_key(&blob[header.len()..header.len() + NONCE_LEN])
            .expect("a 12-byte nonce");
        let mut buf = Zeroizing::new([0u8; DATA_KEY_LEN + TAG_LEN]);
        buf.copy_from_slice(&blob[header.len() + NONCE_LEN..]);
        let aad = wrap_aad(header, key_arn, context);
        let plain = version
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf[..])
            .map_err(|_| {
                Error::internal(format!(
                    "cannot unwrap the data key with KMS key {key_arn} of {}: the encryption context \
                     {context} is not the one it was wrapped under (the wrapped key belongs to another \
                     session), or the wrapped key was altered",
                    self.origin
                ))
            })?;
        Ok(DataKey::from_slice(plain).expect("a 32-byte data key"))
    }

    fn default_key(&self) -> Option<String> {
        self.default.clone()
    }

    async fn check_key(&self, key_arn: &str) -> Result<()> {
        check_key_arn(key_arn)?;
        if self.keys.contains_key(key_arn) {
            Ok(())
        } else {
            Err(Error::validation(self.not_held(key_arn)))
        }
    }
}

/// On Unix, the file must be accessible by its owner only, as ssh requires of a private key.
#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "permissions {mode:04o} are too open: a keyring holds keys and must be readable and writable \
             by its owner only; run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &std::fs::Metadata) -> std::result::Result<(), String> {
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The file's JSON

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    keys: KeyEntries,
    #[serde(default)]
    default: Option<String>,
}

/// The `keys` object in file order: each key id with its versions (base64), oldest first. A key id given
/// twice is refused (JSON parsers keep one of the two silently, and a version would be lost).
struct KeyEntries(Vec<(String, Vec<String>)>);

#[derive(Deserialize)]
#[serde(untagged)]
enum Material {
    One(String),
    Versions(Vec<String>),
}

impl<'de> Deserialize<'de> for KeyEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = KeyEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of KMS key ARNs to base64 keys")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<KeyEntries, A::Error> {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                while let Some(arn) = map.next_key::<String>()? {
                    if !seen.insert(arn.clone()) {
                        return Err(de::Error::custom(format!(
                            "key {arn} is given twice (give the versions of a key as one list, oldest first)"
                        )));
                    }
                    let versions = match map.next_value::<Material>() {
                        Ok(Material::One(s)) => vec![s],
                        Ok(Material::Versions(v)) => v,
                        Err(_) => {
                            return Err(de::Error::custom(format!(
                                "key {arn}: the value must be a base64 string of 32 bytes, or a list of \
                                 them (its versions, oldest first)"
                            )));
                        }
                    };
                    out.push((arn, versions));
                }
                Ok(KeyEntries(out))
            }
        }
        d.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{RecordAad, RecordKind, open, seal};
    use std::path::PathBuf;

    const K1: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const K2: &str = "arn:aws:kms:us-east-1:123456789012:key/5678efgh-12ab-34cd-56ef-1234567890ab";
    const ALIAS: &str = "arn:aws:kms:us-east-1:123456789012:alias/sessions";
    const SESSION: &str = "arn:aws:bedrock:us-east-1:123456789012:session/s1";
    const OTHER_SESSION: &str = "arn:aws:bedrock:us-east-1:123456789012:session/s2";

    fn material() -> String {
        Keyring::generate_key_material().unwrap()
    }

    /// Writes `json` to a new file of the temporary directory with permissions `mode`.
    fn write(dir: &tempfile::TempDir, json: &str, mode: u32) -> PathBuf {
        let path = dir
            .path()
            .join(format!("keyring-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, json).unwrap();
        set_mode(&path, mode);
        path
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(not(unix))]
    fn set_mode(_path: &Path, _mode: u32) {}

    fn same(a: &DataKey, b: &DataKey) -> bool {
        a.expose() == b.expose()
    }

    #[tokio::test]
    async fn load_generate_unwrap_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let materials = [material(), material(), material()];
        let json = serde_json::json!({
            "keys": {K1: materials[0], ALIAS: [materials[1], materials[2]]},
            "default": ALIAS,
        })
        .to_string();
        let ring = Keyring::load(write(&dir, &json, 0o600)).unwrap();
        assert_eq!(ring.key_arns().collect::<Vec<_>>(), [ALIAS, K1]);
        assert_eq!(ring.versions(ALIAS), Some(2));
        assert_eq!(ring.default_key().as_deref(), Some(ALIAS));
        let shown = format!("{ring:?}");
        assert!(shown.contains(K1), "{shown}");
        assert!(!materials.iter().any(|m| shown.contains(m)), "{shown}");

        let ctx = EncryptionContext::session(SESSION);
        for key in [None, Some(K1), Some(ALIAS)] {
            let (dk, wrapped) = ring.generate_data_key(key, &ctx).await.unwrap();
            assert_eq!(wrapped.key_arn, key.unwrap_or(ALIAS));
            assert_eq!(wrapped.provider, KeyProvider::Keyring);
            assert_eq!(wrapped.blob.len(), BLOB_LEN);
            // Stored as bytes and read back, the wrapped key unwraps to the same data key.
            let stored = WrappedKey::from_bytes(&wrapped.to_bytes()).unwrap();
            let back = ring.decrypt_data_key(&stored, &ctx).await.unwrap();
            assert!(same(&dk, &back));
            let aad = RecordAad::new(SESSION, RecordKind::Step, "step-1");
            assert_eq!(open(&back, &aad, &seal(&dk, &aad, b"hi")).unwrap(), b"hi");
        }
        // 0400 is fine too.
        assert!(Keyring::load(write(&dir, &json, 0o400)).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_access_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({"keys": {K1: material()}}).to_string();
        for mode in [
            0o644, 0o640, 0o604, 0o660, 0o606, 0o620, 0o602, 0o610, 0o601,
        ] {
            let path = write(&dir, &json, mode);
            let e = Keyring::load(&path).unwrap_err();
            assert!(
                e.contains(&path.display().to_string())
                    && e.contains(&format!("{mode:04o}"))
                    && e.contains(&format!("chmod 600 {}", path.display())),
                "{mode:o}: {e}"
            );
        }
        let missing = dir.path().join("missing.json");
        let e = Keyring::load(&missing).unwrap_err();
        assert!(e.contains("cannot open it"), "{e}");
        let e = Keyring::load(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_with_the_problem_named() {
        let dir = tempfile::tempdir().unwrap();
        let m = material();
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), "not a valid keyring"),
            ("[]".into(), "not a valid keyring"),
            (r#"{"default": "x"}"#.into(), "missing field `keys`"),
            (
                format!(r#"{{"keys": {{"{K1}": "{m}"}}, "extra": 1}}"#),
                "unknown field `extra`",
            ),
            (r#"{"keys": {}}"#.into(), "has no keys"),
            (
                format!(r#"{{"keys": {{"{K1}": "{short}"}}}}"#),
                "16 bytes, a key has 32",
            ),
            (
                format!(r#"{{"keys": {{"{K1}": "not base64!"}}}}"#),
                "not base64",
            ),
            (
                format!(r#"{{"keys": {{"{K1}": 42}}}}"#),
                "must be a base64 string",
            ),
            (format!(r#"{{"keys": {{"{K1}": []}}}}"#), "empty"),
            (
                format!(r#"{{"keys": {{"{K1}": ["{m}", "{m}"]}}}}"#),
                "versions 1 and 2 are the same key",
            ),
            (
                format!(r#"{{"keys": {{"{K1}": "{m}", "{K1}": "{m}"}}}}"#),
                "given twice",
            ),
            (
                format!(r#"{{"keys": {{"my-key": "{m}"}}}}"#),
                "\"my-key\" is not a KMS key ARN",
            ),
            (
                format!(r#"{{"keys": {{"{K1}": "{m}"}}, "default": "{K2}"}}"#),
                "is not one of its keys",
            ),
        ];
        for (json, problem) in cases {
            let path = write(&dir, &json, 0o600);
            let e = Keyring::load(&path).unwrap_err();
            assert!(
                e.starts_with(&format!("keyring file {}: ", path.display())) && e.contains(problem),
                "{json}: {e}"
            );
            assert!(!e.contains(&m), "no key material in messages: {e}");
        }
    }

    #[tokio::test]
    async fn rotation_keeps_old_wrapped_keys_readable() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, v2) = (material(), material());
        let ctx = EncryptionContext::session(SESSION);
        let ring1 = Keyring::load(write(
            &dir,
            &serde_json::json!({"keys": {K1: v1}, "default": K1}).to_string(),
            0o600,
        ))
        .unwrap();
        let (dk1, w1) = ring1.generate_data_key(None, &ctx).await.unwrap();

        // Version 2 added at the end: the old wrapped key still unwraps; new keys are wrapped with version 2.
        let ring2 = Keyring::load(write(
            &dir,
            &serde_json::json!({"keys": {K1: [v1, v2]}, "default": K1}).to_string(),
            0o600,
        ))
        .unwrap();
        assert!(same(
            &ring2.decrypt_data_key(&w1, &ctx).await.unwrap(),
            &dk1
        ));
        let (dk2, w2) = ring2.generate_data_key(None, &ctx).await.unwrap();
        let id = |w: &WrappedKey| w.blob[1..1 + VERSION_ID_LEN].to_vec();
        let v2_bytes = base64::engine::general_purpose::STANDARD
            .decode(&v2)
            .unwrap();
        assert_eq!(id(&w2), version_id(&v2_bytes));
        assert_ne!(id(&w1), id(&w2));
        assert!(same(
            &ring2.decrypt_data_key(&w2, &ctx).await.unwrap(),
            &dk2
        ));

        // A keyring without version 2 cannot unwrap it, and says which version it lacks.
        let e = ring1.decrypt_data_key(&w2, &ctx).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(
            e.message.contains(&hex(&id(&w2))) && e.message.contains("does not hold"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn wrong_context_other_key_or_altered_blob_fail_clearly() {
        let ring = Keyring::from_json(
            &serde_json::json!({"keys": {K1: material(), K2: material()}}).to_string(),
        )
        .unwrap();
        let ctx = EncryptionContext::session(SESSION);
        let (_, w) = ring.generate_data_key(Some(K1), &ctx).await.unwrap();

        // Another session's context.
        let other = EncryptionContext::session(OTHER_SESSION);
        let e = ring.decrypt_data_key(&w, &other).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InternalServer);
        assert!(
            e.message.contains("encryption context") && e.message.contains(OTHER_SESSION),
            "{e}"
        );
        // More pairs than it was wrapped with.
        let wider = EncryptionContext::session(SESSION).with("extra", "1");
        assert!(ring.decrypt_data_key(&w, &wider).await.is_err());

        // Relabelled as wrapped by another key of the keyring.
        let relabelled = WrappedKey {
            key_arn: K2.into(),
            ..w.clone()
        };
        let e = ring.decrypt_data_key(&relabelled, &ctx).await.unwrap_err();
        assert!(e.message.contains("does not hold"), "{e}");

        // A key the keyring does not have.
        let unknown = WrappedKey {
            key_arn: ALIAS.into(),
            ..w.clone()
        };
        let e = ring.decrypt_data_key(&unknown, &ctx).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("is not in keyring"), "{e}");

        // Any altered byte, a cut blob, another version byte.
        for i in 0..w.blob.len() {
            let mut bad = w.clone();
            bad.blob[i] ^= 0x04;
            assert!(ring.decrypt_data_key(&bad, &ctx).await.is_err(), "byte {i}");
        }
        let mut cut = w.clone();
        cut.blob.pop();
        let e = ring.decrypt_data_key(&cut, &ctx).await.unwrap_err();
        assert!(e.message.contains("malformed"), "{e}");

        // A key wrapped by KMS.
        let kms = WrappedKey {
            provider: KeyProvider::Kms,
            ..w
        };
        let e = ring.decrypt_data_key(&kms, &ctx).await.unwrap_err();
        assert!(e.message.contains("wrapped by AWS KMS"), "{e}");
    }

    #[tokio::test]
    async fn check_key_refuses_unknown_keys() {
        let ring =
            Keyring::from_json(&serde_json::json!({"keys": {K1: material()}}).to_string()).unwrap();
        ring.check_key(K1).await.unwrap();
        let e = ring.check_key(K2).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message.contains(K2) && e.message.contains("is not in keyring"),
            "{e}"
        );
        let e = ring.check_key("not-an-arn").await.unwrap_err();
        assert!(e.message.contains("is not a KMS key ARN"), "{e}");
        // No default: generating without a key says so.
        let ctx = EncryptionContext::session(SESSION);
        let e = ring.generate_data_key(None, &ctx).await.unwrap_err();
        assert!(e.message.contains("no \"default\""), "{e}");
        let e = ring.generate_data_key(Some(K2), &ctx).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
    }
}
