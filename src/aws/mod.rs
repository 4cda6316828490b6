//! The Amazon Bedrock backend: the session API through the AWS Rust SDK (`aws-sdk-bedrockagentruntime`),
//! against the service or any endpoint that speaks it (the local server).
//!
//! Retries are ours (the SDK's are turned off, so there is one policy): exponential backoff with full
//! jitter on throttling, 5xx, timeouts and dropped connections; bounded attempts and a total deadline;
//! never on 4xx. A retried write never duplicates data: invocation and step ids are fixed before the first
//! attempt, and "already exists" after a retry is checked and taken as success when it is our own write.
//! (CreateSession takes no id: a response lost after the service created the session leaves that session
//! unused; the retry creates another.)

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_bedrockagentruntime as sdk;
use aws_sdk_bedrockagentruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockagentruntime::types as t;
use aws_smithy_types::{Blob, DateTime};

use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    ContentBlock, CreateInvocation, CreateSession, GetStep, ImageFormat, ImageSource, Invocation,
    ListSteps, Page, PageRequest, Payload, PutStep, ResourceArn, Session, SessionRef,
    SessionStatus, Step, StepSummary, UpdateSession,
};
use crate::store::SessionStore;

/// Where and how to reach Bedrock.
#[derive(Debug, Clone, Default)]
pub struct BedrockConfig {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub endpoint_url: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub retry: RetryPolicy,
    /// Opt-in thread index: a DynamoDB table (`dynamodb:<table>` or a table ARN, see `threads::dynamodb`)
    /// or the id of a session that maps thread ids to sessions (see `threads::session_kept`).
    pub thread_index: Option<String>,
    /// DynamoDB's endpoint for a table index (an emulator); else the SDK's resolution (environment, profile).
    pub dynamodb_endpoint_url: Option<String>,
}

/// Bounded retries with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// No new attempt starts after this much time since the first.
    pub total_timeout: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            total_timeout: Duration::from_secs(60),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(max, base * 2^attempt)].
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let r = (uuid::Uuid::new_v4().as_u128() as u64) as f64 / u64::MAX as f64;
        cap.mul_f64(r)
    }
}

/// An error of one attempt, and whether another attempt may help.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

pub(crate) fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: SdkError<E, sdk::config::http::HttpResponse>,
) -> Attempt {
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("InternalServerException");
            let message = err.message().unwrap_or("").to_string();
            let status = se.raw().status().as_u16();
            let code = ErrorCode::from_name(code).unwrap_or(if status >= 500 {
                ErrorCode::InternalServer
            } else {
                ErrorCode::Validation
            });
            let retryable = matches!(code, ErrorCode::Throttling | ErrorCode::InternalServer)
                || status >= 500
                || status == 429;
            let reason = crate::error::Reason::from_service(code, &message);
            Attempt {
                error: Error::new(code, message).with_reason(reason),
                retryable,
            }
        }
        SdkError::TimeoutError(_) => Attempt {
            error: Error::new(
                ErrorCode::InternalServer,
                format!("request timed out: {e:?}"),
            ),
            retryable: true,
        },
        SdkError::DispatchFailure(d) => Attempt {
            error: Error::new(
                ErrorCode::InternalServer,
                format!("cannot reach the service: {d:?}"),
            ),
            // Connection refused, reset, dropped: retry. A bad configuration (e.g. an invalid URL) is not.
            retryable: d.is_io() || d.is_timeout() || d.is_other(),
        },
        SdkError::ResponseError(_) => Attempt {
            error: Error::new(
                ErrorCode::InternalServer,
                format!("the response was cut or unreadable: {e:?}"),
            ),
            retryable: true,
        },
        SdkError::ConstructionFailure(_) => Attempt {
            error: Error::validation(format!("the request could not be built: {e:?}")),
            retryable: false,
        },
        _ => Attempt {
            error: Error::internal(format!("{e:?}")),
            retryable: false,
        },
    }
}

/// One attempt's outcome, its request id (`x-amzn-RequestId`) noted for the request's record
/// (`crate::observe`).
fn sent<R: sdk::operation::RequestId>(r: R) -> R {
    crate::observe::attempt(r.request_id());
    r
}

/// Runs `call` under the retry policy (every AWS call of ours: Bedrock's, DynamoDB's). An attempt about to
/// be retried is reported to the request's record (`crate::observe::retrying`).
pub(crate) async fn with_retries<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = std::result::Result<T, Attempt>>,
{
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        match call(attempt).await {
            Ok(v) => return Ok(v),
            Err(a) => {
                attempt += 1;
                let delay = policy.delay(attempt - 1);
                let out_of_time = start.elapsed() + delay >= policy.total_timeout;
                if !a.retryable || attempt >= policy.max_attempts || out_of_time {
                    if a.retryable && attempt > 1 {
                        return Err(Error::new(
                            a.error.code,
                            format!("{} (after {attempt} attempts)", a.error.message),
                        ));
                    }
                    return Err(a.error);
                }
                crate::observe::retrying(attempt, policy.max_attempts, &a.error, delay);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Microseconds since the epoch ⇄ the SDK's date-times (which carry nanoseconds: no precision is lost).
fn dt(us: i64) -> DateTime {
    DateTime::from_secs_and_nanos(
        us.div_euclid(crate::clock::MICROS_PER_SEC),
        (us.rem_euclid(crate::clock::MICROS_PER_SEC) * 1_000) as u32,
    )
}

fn us(d: &DateTime) -> i64 {
    d.secs()
        .saturating_mul(crate::clock::MICROS_PER_SEC)
        .saturating_add(i64::from(d.subsec_nanos() / 1_000))
}

fn status(s: &t::SessionStatus) -> SessionStatus {
    match s {
        t::SessionStatus::Active => SessionStatus::Active,
        t::SessionStatus::Expired => SessionStatus::Expired,
        _ => SessionStatus::Ended,
    }
}

fn to_sdk_payload(p: &Payload) -> Result<t::InvocationStepPayload> {
    let mut blocks = Vec::with_capacity(p.blocks.len());
    for b in &p.blocks {
        blocks.push(match b {
            ContentBlock::Text(s) => t::BedrockSessionContentBlock::Text(s.clone()),
            ContentBlock::Image { format, source } => {
                let fmt = match format {
                    ImageFormat::Png => t::ImageFormat::Png,
                    ImageFormat::Jpeg => t::ImageFormat::Jpeg,
                    ImageFormat::Gif => t::ImageFormat::Gif,
                    ImageFormat::Webp => t::ImageFormat::Webp,
                };
                let src = match source {
                    ImageSource::Bytes(b) => t::ImageSource::Bytes(Blob::new(b.clone())),
                    ImageSource::S3 { uri } => t::ImageSource::S3Location(
                        t::S3Location::builder()
                            .uri(uri)
                            .build()
                            .map_err(|e| Error::validation(e.to_string()))?,
                    ),
                };
                let img = t::ImageBlock::builder()
                    .format(fmt)
                    .source(src)
                    .build()
                    .map_err(|e| Error::validation(e.to_string()))?;
                t::BedrockSessionContentBlock::Image(img)
            }
        });
    }
    Ok(t::InvocationStepPayload::ContentBlocks(blocks))
}

fn from_sdk_payload(p: &t::InvocationStepPayload) -> Result<Payload> {
    let t::InvocationStepPayload::ContentBlocks(blocks) = p else {
        return Err(Error::internal(
            "the service returned a payload of an unknown kind",
        ));
    };
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        out.push(match b {
            t::BedrockSessionContentBlock::Text(s) => ContentBlock::Text(s.clone()),
            t::BedrockSessionContentBlock::Image(img) => {
                let format = ImageFormat::parse(img.format().as_str()).ok_or_else(|| {
                    Error::internal(format!("unknown image format {:?}", img.format()))
                })?;
                let source = match img.source() {
                    Some(t::ImageSource::Bytes(b)) => ImageSource::Bytes(b.as_ref().to_vec()),
                    Some(t::ImageSource::S3Location(l)) => ImageSource::S3 {
                        uri: l.uri().to_string(),
                    },
                    _ => {
                        return Err(Error::internal(
                            "the service returned an image of an unknown source",
                        ));
                    }
                };
                ContentBlock::Image { format, source }
            }
            _ => {
                return Err(Error::internal(
                    "the service returned a content block of an unknown kind",
                ));
            }
        });
    }
    Ok(Payload { blocks: out })
}

fn string_map(m: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The session store of Amazon Bedrock (or of any endpoint speaking its API).
#[derive(Debug, Clone)]
pub struct BedrockStore {
    client: sdk::Client,
    retry: RetryPolicy,
    region: String,
}

/// The SDK's shared configuration from `cfg` (credentials, region, profile, timeouts, the SDK's own retries
/// off), without an endpoint: each service client sets its own (Bedrock's, DynamoDB's).
pub(crate) async fn load_sdk_config(
    cfg: &BedrockConfig,
) -> std::result::Result<aws_config::SdkConfig, String> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled());
    if let Some(r) = &cfg.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(p) = &cfg.profile {
        loader = loader.profile_name(p);
    }
    match (&cfg.access_key_id, &cfg.secret_access_key) {
        (Some(id), Some(secret)) => {
            loader = loader.credentials_provider(sdk::config::Credentials::new(
                id,
                secret,
                cfg.session_token.clone(),
                None,
                "bedrock-sessions",
            ));
        }
        (None, None) => {}
        _ => return Err("aws_access_key_id and aws_secret_access_key go together".into()),
    }
    let mut timeouts = TimeoutConfig::builder();
    if let Some(c) = cfg.connect_timeout {
        timeouts = timeouts.connect_timeout(c);
    }
    if let Some(r) = cfg.read_timeout {
        timeouts = timeouts.read_timeout(r);
    }
    loader = loader.timeout_config(timeouts.build());
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(
            "no AWS region: pass region_name or set AWS_REGION / AWS_DEFAULT_REGION".into(),
        );
    }
    Ok(shared)
}

/// The Bedrock backend as the savers use it: the store, with the thread index `cfg` names beside it. With a
/// `recorder`, every request is recorded (`crate::observe`), the index's own included.
pub async fn open(
    cfg: &BedrockConfig,
    recorder: Option<Arc<dyn crate::observe::Recorder>>,
) -> std::result::Result<Arc<dyn SessionStore>, String> {
    use crate::threads::{WithIndex, dynamodb, session_kept::SessionKeptIndex};
    let shared = load_sdk_config(cfg).await?;
    let mut store: Arc<dyn SessionStore> = Arc::new(BedrockStore::from_sdk_config(&shared, cfg)?);
    if let Some(recorder) = recorder {
        store = Arc::new(crate::observe::Observed::new(store, recorder, true));
    }
    let Some(spec) = &cfg.thread_index else {
        return Ok(store);
    };
    let index: Arc<dyn crate::threads::ThreadIndex> = match dynamodb::TableSpec::parse(spec) {
        Some(table) => Arc::new(
            dynamodb::DynamoIndex::connect(
                &shared,
                cfg.retry,
                &table?,
                cfg.dynamodb_endpoint_url.as_deref(),
            )
            .await?,
        ),
        None => Arc::new(SessionKeptIndex::new(store.clone(), spec).map_err(|e| e.message)?),
    };
    Ok(Arc::new(WithIndex::new(store, index)))
}

impl BedrockStore {
    /// Builds the SDK client: the standard credential chain unless keys or a profile are given.
    pub async fn connect(cfg: BedrockConfig) -> std::result::Result<Self, String> {
        let shared = load_sdk_config(&cfg).await?;
        Self::from_sdk_config(&shared, &cfg)
    }

    /// The client of an already loaded SDK configuration (shared with the DynamoDB thread index).
    pub fn from_sdk_config(
        shared: &aws_config::SdkConfig,
        cfg: &BedrockConfig,
    ) -> std::result::Result<Self, String> {
        let mut conf = sdk::config::Builder::from(shared);
        if let Some(url) = &cfg.endpoint_url {
            conf = conf.endpoint_url(url);
        }
        let region = shared
            .region()
            .map(|r| r.to_string())
            .ok_or("no AWS region: pass region_name or set AWS_REGION / AWS_DEFAULT_REGION")?;
        Ok(BedrockStore {
            client: sdk::Client::from_conf(conf.build()),
            retry: cfg.retry,
            region,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

fn session_out(
    id: &str,
    arn: &str,
    st: &t::SessionStatus,
    created: Option<&DateTime>,
    updated: Option<&DateTime>,
) -> Session {
    Session {
        id: id.to_string(),
        arn: arn.to_string(),
        status: status(st),
        created_at: created.map(us).unwrap_or(0),
        last_updated_at: updated.or(created).map(us).unwrap_or(0),
        metadata: BTreeMap::new(),
        encryption_key_arn: None,
    }
}

#[async_trait]
impl SessionStore for BedrockStore {
    async fn create_session(&self, req: CreateSession) -> Result<Session> {
        with_retries(self.retry, |_| {
            let mut b = self.client.create_session();
            for (k, v) in &req.metadata {
                b = b.session_metadata(k, v);
            }
            for (k, v) in &req.tags {
                b = b.tags(k, v);
            }
            if let Some(k) = &req.encryption_key_arn {
                b = b.encryption_key_arn(k);
            }
            let (metadata, key) = (req.metadata.clone(), req.encryption_key_arn.clone());
            async move {
                let o = sent(b.send().await).map_err(classify)?;
                let mut s = session_out(
                    o.session_id(),
                    o.session_arn(),
                    o.session_status(),
                    Some(o.created_at()),
                    None,
                );
                s.metadata = metadata;
                s.encryption_key_arn = key;
                Ok(s)
            }
        })
        .await
    }

    async fn get_session(&self, session: SessionRef) -> Result<Session> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .get_session()
                .session_identifier(&session.raw)
                .send();
            async move {
                let o = sent(f.await).map_err(classify)?;
                let mut s = session_out(
                    o.session_id(),
                    o.session_arn(),
                    o.session_status(),
                    Some(o.created_at()),
                    Some(o.last_updated_at()),
                );
                s.metadata = string_map(o.session_metadata());
                s.encryption_key_arn = o.encryption_key_arn().map(String::from);
                Ok(s)
            }
        })
        .await
    }

    async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .list_sessions()
                .set_max_results(page.max_results.map(|n| n as i32))
                .set_next_token(page.next_token.clone())
                .send();
            async move {
                let o = sent(f.await).map_err(classify)?;
                let items = o
                    .session_summaries()
                    .iter()
                    .map(|s| {
                        session_out(
                            s.session_id(),
                            s.session_arn(),
                            s.session_status(),
                            Some(s.created_at()),
                            Some(s.last_updated_at()),
                        )
                    })
                    .collect();
                Ok(Page {
                    items,
                    next_token: o.next_token().map(String::from),
                })
            }
        })
        .await
    }

    async fn update_session(&self, req: UpdateSession) -> Result<Session> {
        with_retries(self.retry, |_| {
            let mut b = self
                .client
                .update_session()
                .session_identifier(&req.session.raw);
            if let Some(m) = &req.metadata {
                // Set as a whole: an empty map must be sent (it clears the metadata), not left out.
                b = b.set_session_metadata(Some(
                    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ));
            }
            let metadata = req.metadata.clone();
            async move {
                let o = sent(b.send().await).map_err(classify)?;
                let mut s = session_out(
                    o.session_id(),
                    o.session_arn(),
                    o.session_status(),
                    Some(o.created_at()),
                    Some(o.last_updated_at()),
                );
                s.metadata = metadata.unwrap_or_default();
                Ok(s)
            }
        })
        .await
    }

    async fn end_session(&self, session: SessionRef) -> Result<Session> {
        with_retries(self.retry, |attempt| {
            let f = self
                .client
                .end_session()
                .session_identifier(&session.raw)
                .send();
            let (sid, raw) = (session.id.clone(), session.raw.clone());
            async move {
                match sent(f.await) {
                    Ok(o) => Ok(session_out(
                        o.session_id(),
                        o.session_arn(),
                        o.session_status(),
                        None,
                        None,
                    )),
                    Err(e) => {
                        let a = classify(e);
                        // Our earlier attempt ended it and its answer was lost.
                        if attempt > 0 && a.error.code == ErrorCode::Conflict {
                            let mut s =
                                session_out(&sid, &raw, &t::SessionStatus::Ended, None, None);
                            s.status = SessionStatus::Ended;
                            return Ok(s);
                        }
                        Err(a)
                    }
                }
            }
        })
        .await
    }

    async fn delete_session(&self, session: SessionRef) -> Result<()> {
        with_retries(self.retry, |attempt| {
            let f = self
                .client
                .delete_session()
                .session_identifier(&session.raw)
                .send();
            async move {
                match sent(f.await) {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let a = classify(e);
                        if attempt > 0 && a.error.code == ErrorCode::ResourceNotFound {
                            return Ok(());
                        }
                        Err(a)
                    }
                }
            }
        })
        .await
    }

    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
        // The id is fixed before the first attempt, so a retry cannot create a second invocation.
        let id = req
            .invocation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let explicit = req.invocation_id.is_some();
        with_retries(self.retry, |attempt| {
            let mut b = self
                .client
                .create_invocation()
                .session_identifier(&req.session.raw)
                .invocation_id(&id);
            if let Some(d) = &req.description {
                b = b.description(d);
            }
            let id = id.clone();
            let session_id = req.session.id.clone();
            let description = req.description.clone();
            async move {
                match sent(b.send().await) {
                    Ok(o) => Ok(Invocation {
                        session_id: o.session_id().to_string(),
                        invocation_id: o.invocation_id().to_string(),
                        description: description.clone(),
                        created_at: us(o.created_at()),
                    }),
                    Err(e) => {
                        let a = classify(e);
                        // A lost answer to our own create: the id was ours alone (generated here), so the
                        // conflict is our invocation. With a caller's id the conflict may be someone else's.
                        if attempt > 0 && !explicit && a.error.code == ErrorCode::Conflict {
                            return Ok(Invocation {
                                session_id,
                                invocation_id: id,
                                description,
                                created_at: 0,
                            });
                        }
                        Err(a)
                    }
                }
            }
        })
        .await
    }

    async fn list_invocations(
        &self,
        session: SessionRef,
        page: PageRequest,
    ) -> Result<Page<Invocation>> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .list_invocations()
                .session_identifier(&session.raw)
                .set_max_results(page.max_results.map(|n| n as i32))
                .set_next_token(page.next_token.clone())
                .send();
            async move {
                let o = sent(f.await).map_err(classify)?;
                let items = o
                    .invocation_summaries()
                    .iter()
                    .map(|i| Invocation {
                        session_id: i.session_id().to_string(),
                        invocation_id: i.invocation_id().to_string(),
                        description: None,
                        created_at: us(i.created_at()),
                    })
                    .collect();
                Ok(Page {
                    items,
                    next_token: o.next_token().map(String::from),
                })
            }
        })
        .await
    }

    async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
        let step_id = req
            .step_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let payload = to_sdk_payload(&req.payload)?;
        let result = with_retries(self.retry, |_| {
            let f = self
                .client
                .put_invocation_step()
                .session_identifier(&req.session.raw)
                .invocation_identifier(&req.invocation_id)
                .invocation_step_id(&step_id)
                .invocation_step_time(dt(req.time))
                .payload(payload.clone())
                .send();
            async move {
                sent(f.await)
                    .map(|o| o.invocation_step_id().to_string())
                    .map_err(classify)
            }
        })
        .await;
        match result {
            // "Already exists": ours if the stored step has the same content (a retried or repeated write).
            Err(e) if e.code == ErrorCode::Conflict => {
                let check = self.get_invocation_step(GetStep {
                    session: req.session.clone(),
                    invocation_id: req.invocation_id.clone(),
                    step_id: step_id.clone(),
                });
                let existing = crate::observe::nested(
                    crate::ops::Operation::GetInvocationStep,
                    Some(req.session.id.clone()),
                    check,
                )
                .await;
                match existing {
                    Ok(s) if s.payload == req.payload && s.summary.time == req.time => Ok(step_id),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn get_invocation_step(&self, req: GetStep) -> Result<Step> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .get_invocation_step()
                .session_identifier(&req.session.raw)
                .invocation_identifier(&req.invocation_id)
                .invocation_step_id(&req.step_id)
                .send();
            async move {
                let o = sent(f.await).map_err(classify)?;
                let s = o.invocation_step().ok_or_else(|| Attempt {
                    error: Error::internal("the service returned no step"),
                    retryable: false,
                })?;
                let payload = s
                    .payload()
                    .map(from_sdk_payload)
                    .transpose()
                    .map_err(|error| Attempt {
                        error,
                        retryable: false,
                    })?
                    .unwrap_or(Payload { blocks: Vec::new() });
                Ok(Step {
                    summary: StepSummary {
                        session_id: s.session_id().to_string(),
                        invocation_id: s.invocation_id().to_string(),
                        step_id: s.invocation_step_id().to_string(),
                        time: us(s.invocation_step_time()),
                    },
                    payload,
                })
            }
        })
        .await
    }

    async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .list_invocation_steps()
                .session_identifier(&req.session.raw)
                .set_invocation_identifier(req.invocation_id.clone())
                .set_max_results(req.page.max_results.map(|n| n as i32))
                .set_next_token(req.page.next_token.clone())
                .send();
            async move {
                let o = sent(f.await).map_err(classify)?;
                let items = o
                    .invocation_step_summaries()
                    .iter()
                    .map(|s| StepSummary {
                        session_id: s.session_id().to_string(),
                        invocation_id: s.invocation_id().to_string(),
                        step_id: s.invocation_step_id().to_string(),
                        time: us(s.invocation_step_time()),
                    })
                    .collect();
                Ok(Page {
                    items,
                    next_token: o.next_token().map(String::from),
                })
            }
        })
        .await
    }

    async fn tag_resource(&self, arn: ResourceArn, tags: BTreeMap<String, String>) -> Result<()> {
        with_retries(self.retry, |_| {
            let mut b = self.client.tag_resource().resource_arn(&arn.raw);
            for (k, v) in &tags {
                b = b.tags(k, v);
            }
            async move { sent(b.send().await).map(|_| ()).map_err(classify) }
        })
        .await
    }

    async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .untag_resource()
                .resource_arn(&arn.raw)
                .set_tag_keys(Some(keys.clone()))
                .send();
            async move { sent(f.await).map(|_| ()).map_err(classify) }
        })
        .await
    }

    async fn list_tags_for_resource(&self, arn: ResourceArn) -> Result<BTreeMap<String, String>> {
        with_retries(self.retry, |_| {
            let f = self
                .client
                .list_tags_for_resource()
                .resource_arn(&arn.raw)
                .send();
            async move {
                sent(f.await)
                    .map(|o| string_map(o.tags()))
                    .map_err(classify)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 0..10 {
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << attempt)
                .min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.delay(attempt) <= cap);
            }
        }
        // Jitter: not always the same delay.
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| p.delay(3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn payload_round_trip_through_sdk_types() {
        let p = Payload {
            blocks: vec![
                ContentBlock::Text("hi".into()),
                ContentBlock::Image {
                    format: ImageFormat::Png,
                    source: ImageSource::Bytes(vec![1, 2, 3]),
                },
                ContentBlock::Image {
                    format: ImageFormat::Jpeg,
                    source: ImageSource::S3 {
                        uri: "s3://bucket/key".into(),
                    },
                },
            ],
        };
        assert_eq!(from_sdk_payload(&to_sdk_payload(&p).unwrap()).unwrap(), p);
    }
}
