//! AWS KMS as a key source (the AWS SDK for Rust): `GenerateDataKey` (KeySpec AES_256) and `Decrypt`, both with
//! the session's encryption context and the key named (so that KMS refuses a blob of another key), and
//! `DescribeKey` to vet a key before a session is created with it. The principal needs `kms:GenerateDataKey`,
//! `kms:Decrypt` and `kms:DescribeKey` on the key, as for the service.
//!
//! Every call goes through our retry policy (`crate::aws::with_retries`; the SDK's own retries are turned off):
//! throttling, KMS's internal and dependency errors and dropped connections are retried, the rest is not.
//! KMS's errors become ours with the key's ARN and the cause in the message: a disabled or deleted key, a
//! denied call, a wrapped key that does not match its context.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kms as kms;
use kms::config::http::HttpResponse;
use kms::error::{ProvideErrorMetadata, SdkError};
use kms::primitives::{Blob, DateTimeFormat};
use kms::types::{DataKeySpec, KeySpec, KeyState, KeyUsageType};
use zeroize::Zeroizing;

use super::{
    DataKey, EncryptionContext, KeyProvider, KeySource, WrappedKey, check_key_arn, check_provider,
};
use crate::aws::{Attempt, RetryPolicy, classify, with_retries};
use crate::error::{Error, ErrorCode, Result};

/// Data keys from AWS KMS (or an endpoint that speaks its API).
#[derive(Debug, Clone)]
pub struct KmsKeySource {
    client: kms::Client,
    default_key: Option<String>,
    retry: RetryPolicy,
}

/// The KMS operations we call, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    GenerateDataKey,
    Decrypt,
    DescribeKey,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl KmsKeySource {
    /// A client of an already loaded SDK configuration (credentials, region, timeouts: see
    /// `crate::aws::load_sdk_config`), at `endpoint_url` when given (else KMS's endpoint for the region).
    pub fn from_sdk_config(shared: &aws_config::SdkConfig, endpoint_url: Option<&str>) -> Self {
        let mut conf = kms::config::Builder::from(shared)
            .retry_config(kms::config::retry::RetryConfig::disabled());
        if let Some(url) = endpoint_url {
            conf = conf.endpoint_url(url);
        }
        Self::from_client(kms::Client::from_conf(conf.build()))
    }

    /// A client of `endpoint_url` in `region` with static credentials: a KMS emulator, in tests.
    pub fn from_static_credentials(
        endpoint_url: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        let conf = kms::Config::builder()
            .behavior_version(kms::config::BehaviorVersion::latest())
            .region(kms::config::Region::new(region.to_string()))
            .credentials_provider(kms::config::Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "bedrock-sessions",
            ))
            .endpoint_url(endpoint_url)
            .retry_config(kms::config::retry::RetryConfig::disabled())
            .timeout_config(
                kms::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build();
        Self::from_client(kms::Client::from_conf(conf))
    }

    /// A source over a client built elsewhere (our retry policy applies on top of its own settings).
    pub fn from_client(client: kms::Client) -> Self {
        KmsKeySource {
            client,
            default_key: None,
            retry: RetryPolicy::default(),
        }
    }

    /// The key of new data keys when a call names none (a KMS key or alias ARN).
    pub fn with_default_key(mut self, key_arn: &str) -> std::result::Result<Self, String> {
        check_key_arn(key_arn).map_err(|e| format!("default KMS key: {}", e.message))?;
        self.default_key = Some(key_arn.to_string());
        Ok(self)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The SDK client (for administration and tests).
    pub fn client(&self) -> &kms::Client {
        &self.client
    }
}

#[async_trait]
impl KeySource for KmsKeySource {
    async fn generate_data_key(
        &self,
        key_arn: Option<&str>,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey)> {
        let key = match key_arn.or(self.default_key.as_deref()) {
            Some(k) => k,
            None => {
                return Err(Error::validation(
                    "no KMS key ARN was given and this KMS key source has no default key",
                ));
            }
        };
        check_key_arn(key)?;
        let ctx = context.to_hash_map();
        let mut out = with_retries(self.retry, |_| {
            let call = self
                .client
                .generate_data_key()
                .key_id(key)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(ctx.clone()))
                .send();
            async move {
                call.await
                    .map_err(|e| failure(Op::GenerateDataKey, key, context, e))
            }
        })
        .await?;
        let data_key = data_key_of(out.plaintext.take(), "GenerateDataKey", key)?;
        let blob = out
            .ciphertext_blob
            .take()
            .map(Blob::into_inner)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Error::internal(format!(
                    "KMS GenerateDataKey with key {key} returned no CiphertextBlob"
                ))
            })?;
        // KMS names the key by its ARN, also when it was asked through an alias: an alias may later point
        // at another key, the wrapped key stays with this one.
        let key_arn = out.key_id.take().unwrap_or_else(|| key.to_string());
        let wrapped = WrappedKey {
            key_arn,
            provider: KeyProvider::Kms,
            blob,
        };
        Ok((data_key, wrapped))
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        check_provider(wrapped, KeyProvider::Kms)?;
        let key = wrapped.key_arn.as_str();
        let ctx = context.to_hash_map();
        let mut out = with_retries(self.retry, |_| {
            let call = self
                .client
                .decrypt()
                .ciphertext_blob(Blob::new(wrapped.blob.clone()))
                .key_id(key)
                .set_encryption_context(Some(ctx.clone()))
                .send();
            async move {
                call.await
                    .map_err(|e| failure(Op::Decrypt, key, context, e))
            }
        })
        .await?;
        data_key_of(out.plaintext.take(), "Decrypt", key)
    }

    fn default_key(&self) -> Option<String> {
        self.default_key.clone()
    }

    async fn check_key(&self, key_arn: &str) -> Result<()> {
        check_key_arn(key_arn)?;
        let context = EncryptionContext::new();
        let out = with_retries(self.retry, |_| {
            let call = self.client.describe_key().key_id(key_arn).send();
            let context = &context;
            async move {
                call.await
                    .map_err(|e| failure(Op::DescribeKey, key_arn, context, e))
            }
        })
        .await?;
        let meta = out.key_metadata.ok_or_else(|| {
            Error::internal(format!(
                "KMS DescribeKey of {key_arn} returned no key metadata"
            ))
        })?;
        let refuse = |why: String| Err(Error::validation(format!("KMS key {key_arn} {why}")));
        match meta.key_state.as_ref() {
            Some(KeyState::Enabled) | None if meta.enabled => {}
            Some(KeyState::Disabled) | None => {
                return refuse(
                    "is disabled: enable it (EnableKey) before creating sessions with it".into(),
                );
            }
            Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) => {
                let when = meta
                    .deletion_date
                    .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
                    .map(|d| format!(" (deleted on {d})"))
                    .unwrap_or_default();
                return refuse(format!(
                    "is pending deletion{when}: a session cannot be encrypted with it \
                     (CancelKeyDeletion and EnableKey restore it)"
                ));
            }
            Some(state) => {
                return refuse(format!(
                    "is {} (KeyState {}): only an enabled key can encrypt a session",
                    if meta.enabled { "unusable" } else { "disabled" },
                    state.as_str()
                ));
            }
        }
        let usage_ok = meta
            .key_usage
            .as_ref()
            .is_none_or(|u| *u == KeyUsageType::EncryptDecrypt);
        let spec_ok = meta
            .key_spec
            .as_ref()
            .is_none_or(|s| *s == KeySpec::SymmetricDefault);
        if !usage_ok || !spec_ok {
            return refuse(format!(
                "is not a symmetric encryption key (KeySpec {}, KeyUsage {}): a session needs KeySpec \
                 SYMMETRIC_DEFAULT and KeyUsage ENCRYPT_DECRYPT",
                meta.key_spec.as_ref().map_or("?", |s| s.as_str()),
                meta.key_usage.as_ref().map_or("?", |u| u.as_str()),
            ));
        }
        Ok(())
    }
}

/// A failed KMS call as our error: KMS's own codes first, then the general mapping of SDK errors.
fn failure<E: ProvideErrorMetadata + fmt::Debug>(
    op: Op,
    key: &str,
    context: &EncryptionContext,
    e: SdkError<E, HttpResponse>,
) -> Attempt {
    if let Some(code) = e.code() {
        if let Some(a) = kms_failure(op, key, context, code, e.message().unwrap_or("")) {
            return a;
        }
    }
    let mut a = classify(e);
    a.error = a.error.context(format_args!("KMS {op} with key {key}"));
    a
}

/// What KMS's error `code` means for a call `op` with `key`; `None` for codes the general mapping handles
/// (throttling, validation, ...). A key refused for a new session (DescribeKey) is the caller's
/// `ValidationException`; refused when reading or writing a session, an `AccessDeniedException`.
fn kms_failure(
    op: Op,
    key: &str,
    context: &EncryptionContext,
    code: &str,
    message: &str,
) -> Option<Attempt> {
    let cause = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    let refused = if op == Op::DescribeKey {
        ErrorCode::Validation
    } else {
        ErrorCode::AccessDenied
    };
    let (code, message, retryable) = match code {
        "DisabledException" => (
            refused,
            format!(
                "KMS key {key} is disabled ({cause}): kms:{op} was refused; enable the key (EnableKey) to \
                 read or write the sessions it encrypts"
            ),
            false,
        ),
        "KMSInvalidStateException" => (
            refused,
            format!(
                "KMS key {key} cannot be used in its current state ({cause}); a key pending deletion is \
                 restored with CancelKeyDeletion and EnableKey"
            ),
            false,
        ),
        "NotFoundException" => (
            refused,
            format!("KMS key {key} was not found ({cause})"),
            false,
        ),
        "AccessDeniedException" => (
            ErrorCode::AccessDenied,
            format!(
                "kms:{op} on KMS key {key} was denied ({cause}): the caller needs kms:GenerateDataKey, \
                 kms:Decrypt and kms:DescribeKey on the key"
            ),
            false,
        ),
        "InvalidCiphertextException" => (
            ErrorCode::InternalServer,
            format!(
                "KMS cannot decrypt the data key with key {key} ({cause}): the encryption context {context} \
                 is not the one it was wrapped under (the wrapped key belongs to another session), or the \
                 wrapped key was altered"
            ),
            false,
        ),
        "IncorrectKeyException" => (
            ErrorCode::InternalServer,
            format!("the data key was not wrapped by KMS key {key} ({cause})"),
            false,
        ),
        "InvalidKeyUsageException" => (
            refused,
            format!(
                "KMS key {key} cannot be used for kms:{op} ({cause}): a session needs a symmetric \
                 encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)"
            ),
            false,
        ),
        "KeyUnavailableException" | "DependencyTimeoutException" | "KMSInternalException" => (
            ErrorCode::InternalServer,
            format!("KMS could not serve kms:{op} with key {key} ({cause})"),
            true,
        ),
        _ => return None,
    };
    Some(Attempt {
        error: Error::new(code, message),
        retryable,
    })
}

/// The data key of a KMS answer's `Plaintext` (wiped once copied into the [`DataKey`]).
fn data_key_of(plaintext: Option<Blob>, op: &str, key: &str) -> Result<DataKey> {
    let plain = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    DataKey::from_slice(&plain).ok_or_else(|| {
        Error::internal(format!(
            "KMS {op} with key {key} returned a data key of {} bytes, not 32",
            plain.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, RecordAad, RecordKind, open, seal};
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    const SESSION: &str = "arn:aws:bedrock:us-east-1:123456789012:session/s1";
    const OTHER_SESSION: &str = "arn:aws:bedrock:us-east-1:123456789012:session/s2";

    #[test]
    fn kms_error_codes_become_clear_errors() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let ctx = EncryptionContext::session(SESSION);
        let a = kms_failure(
            Op::Decrypt,
            key,
            &ctx,
            "DisabledException",
            "key is disabled",
        )
        .unwrap();
        assert_eq!(a.error.code, ErrorCode::AccessDenied);
        assert!(!a.retryable);
        assert!(
            a.error.message.contains(key) && a.error.message.contains("is disabled"),
            "{}",
            a.error
        );
        let a = kms_failure(Op::DescribeKey, key, &ctx, "NotFoundException", "").unwrap();
        assert_eq!(a.error.code, ErrorCode::Validation);
        let a = kms_failure(Op::Decrypt, key, &ctx, "InvalidCiphertextException", "").unwrap();
        assert_eq!(a.error.code, ErrorCode::InternalServer);
        assert!(
            a.error.message.contains(SESSION) && a.error.message.contains("encryption context"),
            "{}",
            a.error
        );
        let a = kms_failure(
            Op::GenerateDataKey,
            key,
            &ctx,
            "KMSInvalidStateException",
            "pending deletion",
        )
        .unwrap();
        assert_eq!(a.error.code, ErrorCode::AccessDenied);
        assert!(a.error.message.contains("CancelKeyDeletion"));
        assert!(
            kms_failure(Op::Decrypt, key, &ctx, "KMSInternalException", "")
                .unwrap()
                .retryable
        );
        assert!(kms_failure(Op::Decrypt, key, &ctx, "ThrottlingException", "").is_none());
    }

    // -----------------------------------------------------------------------------------------
    // Against moto's KMS server, started here on 127.0.0.1.

    /// moto's server in a child process on a free port of 127.0.0.1 (port 0: no race for the port); it prints
    /// the port and serves until killed.
    const MOTO: &str = "\
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
";

    /// The running server; killed when dropped (also when a test panics).
    struct Moto {
        child: Child,
        url: String,
        _log: tempfile::NamedTempFile,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A Python that can import moto's server: `$PYTHON` when set, else `python3` or `python` (in CI, the one
    /// `pip install '.[test]'` installed moto[server] into).
    fn python_with_moto() -> std::result::Result<String, String> {
        let candidates: Vec<String> = match std::env::var("PYTHON") {
            Ok(p) if !p.is_empty() => vec![p],
            _ => vec!["python3".into(), "python".into()],
        };
        for py in &candidates {
            let ok = Command::new(py)
                .args(["-c", "import moto.server"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(py.clone());
            }
        }
        Err(format!(
            "none of {candidates:?} can import moto.server (install moto[server], e.g. pip install '.[test]', \
             or set PYTHON to a Python that has it)"
        ))
    }

    /// Starts moto's server, or `None` (the test is skipped, with the reason printed) when there is no Python
    /// with moto; under CI (`CI` set) that is a failure instead.
    fn start_moto() -> Option<Moto> {
        let python = match python_with_moto() {
            Ok(p) => p,
            Err(why) => {
                if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                    panic!("the KMS tests need moto's server under CI: {why}");
                }
                eprintln!("skipped: the KMS tests need moto's server: {why}");
                return None;
            }
        };
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&python)
            .args(["-c", MOTO])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut moto = Moto {
            child,
            url: String::new(),
            _log: log,
        };
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let log = std::fs::read_to_string(moto._log.path()).unwrap_or_default();
            panic!("moto's server did not start within 60 s (printed {line:?}); its log:\n{log}");
        };
        // It answers once it accepts connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto's server does not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto.url = format!("http://127.0.0.1:{port}");
        Some(moto)
    }

    fn source(moto: &Moto) -> KmsKeySource {
        KmsKeySource::from_static_credentials(&moto.url, "us-east-1", "AKIDEXAMPLE", "secret")
            .with_retry(RetryPolicy {
                max_attempts: 2,
                total_timeout: Duration::from_secs(30),
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
            })
    }

    async fn create_key(kms: &KmsKeySource) -> String {
        let out = kms
            .client()
            .create_key()
            .description("bedrock-sessions test")
            .send()
            .await
            .unwrap();
        out.key_metadata.unwrap().arn.unwrap()
    }

    #[tokio::test]
    async fn against_moto_kms() {
        let Some(moto) = start_moto() else {
            return;
        };
        let kms = source(&moto);
        let key = create_key(&kms).await;
        assert!(crate::validate::is_kms_key_arn(&key), "{key}");
        kms.check_key(&key).await.unwrap();

        // GenerateDataKey / Decrypt with the session's context; the wrapped key as stored and read back.
        let ctx = EncryptionContext::session(SESSION);
        let (dk, wrapped) = kms.generate_data_key(Some(&key), &ctx).await.unwrap();
        assert_eq!(wrapped.key_arn, key);
        assert_eq!(wrapped.provider, KeyProvider::Kms);
        let stored = WrappedKey::from_bytes(&wrapped.to_bytes()).unwrap();
        let back = kms.decrypt_data_key(&stored, &ctx).await.unwrap();
        assert_eq!(back.expose(), dk.expose());
        let aad = RecordAad::new(SESSION, RecordKind::Step, "step-1");
        assert_eq!(
            open(&back, &aad, &seal(&dk, &aad, b"hello")).unwrap(),
            b"hello"
        );

        // Another session's context: a clear error, not garbage.
        let e = kms
            .decrypt_data_key(&stored, &EncryptionContext::session(OTHER_SESSION))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InternalServer, "{e}");
        assert!(
            e.message.contains("encryption context") && e.message.contains(&key),
            "{e}"
        );
        // An altered blob.
        let mut altered = stored.clone();
        let last = altered.blob.len() - 1;
        altered.blob[last] ^= 1;
        assert!(kms.decrypt_data_key(&altered, &ctx).await.is_err());
        // A keyring's wrapped key.
        let keyring = Keyring::from_json(
            &serde_json::json!({"keys": {&key: Keyring::generate_key_material().unwrap()}})
                .to_string(),
        )
        .unwrap();
        let (_, from_keyring) = keyring.generate_data_key(Some(&key), &ctx).await.unwrap();
        let e = kms.decrypt_data_key(&from_keyring, &ctx).await.unwrap_err();
        assert!(e.message.contains("wrapped by a local keyring"), "{e}");

        // The default key, and an alias (the wrapped key names the key itself).
        let e = kms.generate_data_key(None, &ctx).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(e.message.contains("no default key"), "{e}");
        let key_id = key.rsplit('/').next().unwrap();
        kms.client()
            .create_alias()
            .alias_name("alias/bedrock-sessions-test")
            .target_key_id(key_id)
            .send()
            .await
            .unwrap();
        let alias = "arn:aws:kms:us-east-1:123456789012:alias/bedrock-sessions-test";
        kms.check_key(alias).await.unwrap();
        let with_default = kms.clone().with_default_key(alias).unwrap();
        assert_eq!(with_default.default_key().as_deref(), Some(alias));
        let (dk2, w2) = with_default.generate_data_key(None, &ctx).await.unwrap();
        assert_eq!(w2.key_arn, key);
        assert_eq!(
            kms.decrypt_data_key(&w2, &ctx).await.unwrap().expose(),
            dk2.expose()
        );
        assert!(kms.clone().with_default_key("alias/x").is_err());

        // Unknown and malformed keys are refused by check_key.
        let unknown = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
        let e = kms.check_key(unknown).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation, "{e}");
        assert!(
            e.message.contains(unknown) && e.message.contains("not found"),
            "{e}"
        );
        let e = kms.check_key("my-key").await.unwrap_err();
        assert!(e.message.contains("is not a KMS key ARN"), "{e}");

        // A disabled key, a key pending deletion. (moto's DisableKey and ScheduleKeyDeletion take a key id,
        // not an ARN.)
        kms.client()
            .disable_key()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        let e = kms.check_key(&key).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message.contains(&key) && e.message.contains("is disabled"),
            "{e}"
        );
        let doomed = create_key(&kms).await;
        kms.client()
            .schedule_key_deletion()
            .key_id(doomed.rsplit('/').next().unwrap())
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let e = kms.check_key(&doomed).await.unwrap_err();
        assert!(
            e.message.contains(&doomed) && e.message.contains("pending deletion"),
            "{e}"
        );
        drop(moto);
    }

    #[tokio::test]
    async fn an_unreachable_kms_is_a_clear_error() {
        // A port nobody listens on: the connection is refused, retried, then reported.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let kms = KmsKeySource::from_static_credentials(
            &format!("http://127.0.0.1:{port}"),
            "us-east-1",
            "AKIDEXAMPLE",
            "secret",
        )
        .with_retry(RetryPolicy {
            max_attempts: 2,
            total_timeout: Duration::from_secs(5),
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        });
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let e = kms.check_key(key).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InternalServer);
        assert!(
            e.message.contains("KMS DescribeKey") && e.message.contains(key),
            "{e}"
        );
    }
}
