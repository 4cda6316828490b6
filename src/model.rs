//! The session model (sessions → invocations → invocation steps) and its requests, parsed from a
//! [`Value`] and validated against every pattern and limit of the service model. No pyo3 types here.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::clock::Micros;
use crate::error::{Error, Result};
use crate::timefmt;
use crate::validate::{self, SessionArn, check_len};
use crate::value::Value;

pub const MAX_METADATA_ENTRIES: usize = 50;
pub const MAX_TAGS: usize = 200;
pub const MAX_RESULTS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Expired,
    Ended,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "ACTIVE",
            SessionStatus::Expired => "EXPIRED",
            SessionStatus::Ended => "ENDED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(SessionStatus::Active),
            "EXPIRED" => Some(SessionStatus::Expired),
            "ENDED" => Some(SessionStatus::Ended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub arn: String,
    pub status: SessionStatus,
    pub created_at: Micros,
    pub last_updated_at: Micros,
    pub metadata: BTreeMap<String, String>,
    pub encryption_key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub session_id: String,
    pub invocation_id: String,
    pub description: Option<String>,
    pub created_at: Micros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "png" => Some(ImageFormat::Png),
            "jpeg" => Some(ImageFormat::Jpeg),
            "gif" => Some(ImageFormat::Gif),
            "webp" => Some(ImageFormat::Webp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Bytes(Vec<u8>),
    S3 { uri: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentBlock {
    Text(String),
    Image {
        format: ImageFormat,
        source: ImageSource,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub blocks: Vec<ContentBlock>,
}

impl Payload {
    /// Bytes counted against the per-step quota: UTF-8 text, image bytes, S3 URIs.
    pub fn byte_size(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| match b {
                ContentBlock::Text(t) => t.len(),
                ContentBlock::Image {
                    source: ImageSource::Bytes(b),
                    ..
                } => b.len(),
                ContentBlock::Image {
                    source: ImageSource::S3 { uri },
                    ..
                } => uri.len(),
            })
            .sum()
    }

    pub fn to_value(&self) -> Value {
        let blocks = self
            .blocks
            .iter()
            .map(|b| match b {
                ContentBlock::Text(t) => Value::Map(vec![("text".into(), Value::Str(t.clone()))]),
                ContentBlock::Image { format, source } => {
                    let src = match source {
                        ImageSource::Bytes(b) => ("bytes".to_string(), Value::Bytes(b.clone())),
                        ImageSource::S3 { uri } => (
                            "s3Location".to_string(),
                            Value::Map(vec![("uri".into(), Value::Str(uri.clone()))]),
                        ),
                    };
                    Value::Map(vec![(
                        "image".into(),
                        Value::Map(vec![
                            ("format".into(), Value::Str(format.as_str().into())),
                            ("source".into(), Value::Map(vec![src])),
                        ]),
                    )])
                }
            })
            .collect();
        Value::Map(vec![("contentBlocks".into(), Value::List(blocks))])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepSummary {
    pub session_id: String,
    pub invocation_id: String,
    pub step_id: String,
    pub time: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub summary: StepSummary,
    pub payload: Payload,
}

/// A page of a newest-first listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Identifiers

/// A `sessionIdentifier` as given: a session id or a session ARN (kept whole for the HTTP backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub raw: String,
    pub id: String,
    pub arn: Option<SessionArn>,
}

impl SessionRef {
    /// A session id the service gave us (no validation: ours to use as an identifier).
    pub fn of_id(session_id: &str) -> Self {
        SessionRef {
            raw: session_id.to_string(),
            id: session_id.to_string(),
            arn: None,
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self> {
        if validate::is_uuid(s) {
            return Ok(SessionRef {
                raw: s.to_string(),
                id: s.to_string(),
                arn: None,
            });
        }
        match validate::parse_session_arn(s, false) {
            Some(arn) => Ok(SessionRef {
                raw: s.to_string(),
                id: arn.session_id.clone(),
                arn: Some(arn),
            }),
            None => Err(Error::validation(format!(
                "Invalid {field}: {s:?} is neither a session id (lower-case UUID) nor a session ARN \
                 (arn:aws:bedrock:<region>:<account>:session/<id>)"
            ))),
        }
    }
}

/// A `resourceArn` of the tagging operations (only sessions are taggable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArn {
    pub raw: String,
    pub arn: SessionArn,
}

impl ResourceArn {
    pub fn parse(s: &str) -> Result<Self> {
        let n = validate::char_len(s);
        match validate::parse_session_arn(s, true) {
            Some(arn) if (20..=1011).contains(&n) => Ok(ResourceArn {
                raw: s.to_string(),
                arn,
            }),
            _ => Err(Error::validation(format!(
                "Invalid resourceArn: {s:?} is not a session ARN (arn:aws:bedrock:<region>:<account>:session/<id>)"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageRequest {
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSession {
    pub encryption_key_arn: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSession {
    pub session: SessionRef,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateInvocation {
    pub session: SessionRef,
    pub invocation_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PutStep {
    pub session: SessionRef,
    pub invocation_id: String,
    pub step_id: Option<String>,
    pub time: Micros,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GetStep {
    pub session: SessionRef,
    pub invocation_id: String,
    pub step_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListSteps {
    pub session: SessionRef,
    pub invocation_id: Option<String>,
    pub page: PageRequest,
}

// ---------------------------------------------------------------------------------------------
// Parsing from a Value, field by field, so every error names its field.

/// The members of one request; unknown members are refused up front, as botocore does.
pub struct Fields {
    items: Vec<(String, Value)>,
}

fn type_error(field: &str, v: &Value, expected: &str) -> Error {
    Error::validation(format!(
        "Invalid type for parameter {field}, value: {}, type: {}, valid types: {expected}",
        short_repr(v),
        v.type_name()
    ))
}

fn short_repr(v: &Value) -> String {
    let s = match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "None".into(),
        other => format!("<{}>", other.type_name()),
    };
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

impl Fields {
    pub fn new(input: Value, allowed: &[&str]) -> Result<Self> {
        let items = match input {
            Value::Map(items) => items,
            Value::Null => Vec::new(),
            other => return Err(type_error("input", &other, "dict")),
        };
        for (k, _) in &items {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::validation(format!(
                    "Unknown parameter in input: {k:?}, must be one of: {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(Fields { items })
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let i = self.items.iter().position(|(k, _)| k == name)?;
        Some(self.items.swap_remove(i).1)
    }

    fn missing(name: &str) -> Error {
        Error::validation(format!("Missing required parameter in input: {name:?}"))
    }

    pub fn opt_str(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(name, &other, "str")),
        }
    }

    pub fn req_str(&mut self, name: &str) -> Result<String> {
        self.opt_str(name)?.ok_or_else(|| Self::missing(name))
    }

    pub fn opt_value(&mut self, name: &str) -> Option<Value> {
        self.take(name)
    }

    pub fn req_value(&mut self, name: &str) -> Result<Value> {
        self.take(name).ok_or_else(|| Self::missing(name))
    }

    pub fn session(&mut self) -> Result<SessionRef> {
        let s = self.req_str("sessionIdentifier")?;
        SessionRef::parse("sessionIdentifier", &s)
    }

    pub fn opt_uuid(&mut self, name: &str) -> Result<Option<String>> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) if validate::is_uuid(&s) => Ok(Some(s)),
            Some(s) => Err(Error::validation(format!(
                "Invalid {name}: {s:?} must be a lower-case UUID (^[a-f0-9]{{8}}-[a-f0-9]{{4}}-[a-f0-9]{{4}}-[a-f0-9]{{4}}-[a-f0-9]{{12}}$)"
            ))),
        }
    }

    pub fn req_uuid(&mut self, name: &str) -> Result<String> {
        if self.items.iter().all(|(k, _)| k != name) {
            return Err(Self::missing(name));
        }
        Ok(self.opt_uuid(name)?.expect("present"))
    }

    pub fn page(&mut self) -> Result<PageRequest> {
        let max_results = match self.take("maxResults") {
            None => None,
            Some(Value::Int(n)) if (1..=MAX_RESULTS).contains(&n) => Some(n as u32),
            Some(Value::Int(n)) => {
                return Err(Error::validation(format!(
                    "Invalid value for parameter maxResults: {n}, must be between 1 and {MAX_RESULTS}"
                )));
            }
            Some(other) => return Err(type_error("maxResults", &other, "int")),
        };
        let next_token = match self.opt_str("nextToken")? {
            None => None,
            Some(t) => {
                check_len("nextToken", &t, 1, 2048)?;
                if t.chars().any(char::is_whitespace) {
                    return Err(Error::validation(
                        "Invalid nextToken: it must not contain whitespace",
                    ));
                }
                Some(t)
            }
        };
        Ok(PageRequest {
            max_results,
            next_token,
        })
    }

    pub fn opt_string_map(&mut self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Map(items)) => {
                let mut out = BTreeMap::new();
                for (k, v) in items {
                    match v {
                        Value::Str(s) => {
                            out.insert(k, s);
                        }
                        other => return Err(type_error(&format!("{name}.{k}"), &other, "str")),
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(type_error(name, &other, "dict")),
        }
    }

    pub fn timestamp(&mut self, name: &str) -> Result<Micros> {
        let v = self.req_value(name)?;
        parse_timestamp(name, &v)
    }

    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>> {
        match self.req_value(name)? {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Str(s) => Ok(s),
                    other => Err(type_error(&format!("{name}[{i}]"), &other, "str")),
                })
                .collect(),
            other => Err(type_error(name, &other, "list")),
        }
    }
}

/// A timestamp parameter: a `datetime` (from Python), epoch seconds (a number, or a string of one, as
/// botocore accepts), or an RFC 3339 string. Only real instants of years 1 to 9999 are taken, so that
/// nothing stored can make a later read fail.
pub fn parse_timestamp(name: &str, v: &Value) -> Result<Micros> {
    let invalid = |why: &dyn std::fmt::Display| {
        Error::validation(format!("Invalid timestamp for parameter {name}: {why}"))
    };
    let checked = |r: std::result::Result<Micros, timefmt::TimeError>,
                   shown: &dyn std::fmt::Display| {
        r.map_err(|e| invalid(&format_args!("{shown}: {e}")))
    };
    match v {
        Value::Timestamp(us) => checked(timefmt::check_range(*us), &"datetime"),
        Value::Int(secs) => checked(timefmt::from_epoch_seconds(*secs as f64), secs),
        Value::Float(secs) => checked(timefmt::from_epoch_seconds(*secs), secs),
        Value::Str(s) => match s.trim().parse::<f64>() {
            Ok(secs) => checked(timefmt::from_epoch_seconds(secs), &format_args!("{s:?}")),
            Err(_) => checked(timefmt::parse_iso8601(s), &format_args!("{s:?}")),
        },
        other => Err(type_error(name, other, "datetime, timestamp")),
    }
}

pub fn check_metadata(field: &str, m: &BTreeMap<String, String>) -> Result<()> {
    if m.len() > MAX_METADATA_ENTRIES {
        return Err(Error::validation(format!(
            "Invalid length for parameter {field}: {} entries, must be at most {MAX_METADATA_ENTRIES}",
            m.len()
        )));
    }
    for (k, v) in m {
        check_len(&format!("{field} key"), k, 1, 100)?;
        check_len(&format!("{field}.{k}"), v, 0, 5000)?;
    }
    Ok(())
}

pub fn check_tag_key(field: &str, k: &str) -> Result<()> {
    check_len(field, k, 1, 128)?;
    if !validate::is_tag_text(k) {
        return Err(Error::validation(format!(
            "Invalid {field}: {k:?} must match ^[a-zA-Z0-9\\s._:/=+@-]*$"
        )));
    }
    Ok(())
}

pub fn check_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.is_empty() || tags.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "Invalid length for parameter {field}: {} entries, must be between 1 and {MAX_TAGS}",
            tags.len()
        )));
    }
    for (k, v) in tags {
        check_tag_key(&format!("{field} key"), k)?;
        check_len(&format!("{field}.{k}"), v, 0, 256)?;
        if !validate::is_tag_text(v) {
            return Err(Error::validation(format!(
                "Invalid {field}.{k}: {v:?} must match ^[a-zA-Z0-9\\s._:/=+@-]*$"
            )));
        }
    }
    Ok(())
}

pub fn parse_create_session(input: Value) -> Result<CreateSession> {
    let mut f = Fields::new(input, &["encryptionKeyArn", "sessionMetadata", "tags"])?;
    let encryption_key_arn = f.opt_str("encryptionKeyArn")?;
    if let Some(k) = &encryption_key_arn {
        check_len("encryptionKeyArn", k, 1, 2048)?;
        if !validate::is_kms_key_arn(k) {
            return Err(Error::validation(format!(
                "Invalid encryptionKeyArn: {k:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)"
            )));
        }
    }
    let metadata = f.opt_string_map("sessionMetadata")?.unwrap_or_default();
    check_metadata("sessionMetadata", &metadata)?;
    let tags = match f.opt_string_map("tags")? {
        Some(t) => {
            check_tags("tags", &t)?;
            t
        }
        None => BTreeMap::new(),
    };
    Ok(CreateSession {
        encryption_key_arn,
        metadata,
        tags,
    })
}

pub fn parse_session_only(input: Value) -> Result<SessionRef> {
    let mut f = Fields::new(input, &["sessionIdentifier"])?;
    f.session()
}

pub fn parse_list_sessions(input: Value) -> Result<PageRequest> {
    let mut f = Fields::new(input, &["maxResults", "nextToken"])?;
    f.page()
}

pub fn parse_update_session(input: Value) -> Result<UpdateSession> {
    let mut f = Fields::new(input, &["sessionIdentifier", "sessionMetadata"])?;
    let session = f.session()?;
    let metadata = f.opt_string_map("sessionMetadata")?;
    if let Some(m) = &metadata {
        check_metadata("sessionMetadata", m)?;
    }
    Ok(UpdateSession { session, metadata })
}

pub fn parse_create_invocation(input: Value) -> Result<CreateInvocation> {
    let mut f = Fields::new(input, &["sessionIdentifier", "invocationId", "description"])?;
    let session = f.session()?;
    let invocation_id = f.opt_uuid("invocationId")?;
    let description = f.opt_str("description")?;
    if let Some(d) = &description {
        check_len("description", d, 1, 200)?;
    }
    Ok(CreateInvocation {
        session,
        invocation_id,
        description,
    })
}

pub fn parse_list_invocations(input: Value) -> Result<(SessionRef, PageRequest)> {
    let mut f = Fields::new(input, &["sessionIdentifier", "maxResults", "nextToken"])?;
    Ok((f.session()?, f.page()?))
}

pub fn parse_put_step(input: Value) -> Result<PutStep> {
    let mut f = Fields::new(
        input,
        &[
            "sessionIdentifier",
            "invocationIdentifier",
            "invocationStepId",
            "invocationStepTime",
            "payload",
        ],
    )?;
    let session = f.session()?;
    let invocation_id = f.req_uuid("invocationIdentifier")?;
    let step_id = f.opt_uuid("invocationStepId")?;
    let time = f.timestamp("invocationStepTime")?;
    let payload = parse_payload(f.req_value("payload")?)?;
    Ok(PutStep {
        session,
        invocation_id,
        step_id,
        time,
        payload,
    })
}

pub fn parse_get_step(input: Value) -> Result<GetStep> {
    let mut f = Fields::new(
        input,
        &[
            "sessionIdentifier",
            "invocationIdentifier",
            "invocationStepId",
        ],
    )?;
    let session = f.session()?;
    let invocation_id = f.req_uuid("invocationIdentifier")?;
    let step_id = f.req_uuid("invocationStepId")?;
    Ok(GetStep {
        session,
        invocation_id,
        step_id,
    })
}

pub fn parse_list_steps(input: Value) -> Result<ListSteps> {
    let mut f = Fields::new(
        input,
        &[
            "sessionIdentifier",
            "invocationIdentifier",
            "maxResults",
            "nextToken",
        ],
    )?;
    let session = f.session()?;
    let invocation_id = f.opt_uuid("invocationIdentifier")?;
    let page = f.page()?;
    Ok(ListSteps {
        session,
        invocation_id,
        page,
    })
}

pub fn parse_tag_resource(input: Value) -> Result<(ResourceArn, BTreeMap<String, String>)> {
    let mut f = Fields::new(input, &["resourceArn", "tags"])?;
    let arn = ResourceArn::parse(&f.req_str("resourceArn")?)?;
    let tags = f
        .opt_string_map("tags")?
        .ok_or_else(|| Fields::missing("tags"))?;
    check_tags("tags", &tags)?;
    Ok((arn, tags))
}

pub fn parse_untag_resource(input: Value) -> Result<(ResourceArn, Vec<String>)> {
    let mut f = Fields::new(input, &["resourceArn", "tagKeys"])?;
    let arn = ResourceArn::parse(&f.req_str("resourceArn")?)?;
    let keys = f.string_list("tagKeys")?;
    if keys.is_empty() || keys.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "Invalid length for parameter tagKeys: {} entries, must be between 1 and {MAX_TAGS}",
            keys.len()
        )));
    }
    for (i, k) in keys.iter().enumerate() {
        check_tag_key(&format!("tagKeys[{i}]"), k)?;
    }
    Ok((arn, keys))
}

pub fn parse_resource_only(input: Value) -> Result<ResourceArn> {
    let mut f = Fields::new(input, &["resourceArn"])?;
    ResourceArn::parse(&f.req_str("resourceArn")?)
}

/// The per-request limits of a payload that do not depend on the store's configuration.
pub const MAX_IMAGES_PER_STEP: usize = 20;
/// 3.75 MB per image.
pub const MAX_IMAGE_BYTES: usize = 3_932_160;

pub fn parse_payload(v: Value) -> Result<Payload> {
    let mut f = Fields::new(v, &["contentBlocks"]).map_err(|e| prefix("payload", e))?;
    let blocks = match f
        .req_value("contentBlocks")
        .map_err(|e| prefix("payload", e))?
    {
        Value::List(items) => items,
        other => return Err(type_error("payload.contentBlocks", &other, "list")),
    };
    if blocks.is_empty() {
        return Err(Error::validation(
            "Invalid length for parameter payload.contentBlocks: 0 blocks, must be at least 1",
        ));
    }
    let mut out = Vec::with_capacity(blocks.len());
    let mut images = 0usize;
    for (i, b) in blocks.into_iter().enumerate() {
        let field = format!("payload.contentBlocks[{i}]");
        let mut bf = Fields::new(b, &["text", "image"]).map_err(|e| prefix(&field, e))?;
        let text = bf.opt_value("text");
        let image = bf.opt_value("image");
        let block = match (text, image) {
            (Some(t), None) => match t {
                Value::Str(s) => {
                    check_len(&format!("{field}.text"), &s, 1, usize::MAX)?;
                    ContentBlock::Text(s)
                }
                other => return Err(type_error(&format!("{field}.text"), &other, "str")),
            },
            (None, Some(img)) => {
                images += 1;
                parse_image(&format!("{field}.image"), img)?
            }
            _ => {
                return Err(Error::validation(format!(
                    "Invalid {field}: a content block must have exactly one of text or image"
                )));
            }
        };
        out.push(block);
    }
    if images > MAX_IMAGES_PER_STEP {
        return Err(Error::validation(format!(
            "Invalid payload.contentBlocks: {images} images, at most {MAX_IMAGES_PER_STEP} per step"
        )));
    }
    Ok(Payload { blocks: out })
}

fn prefix(field: &str, e: Error) -> Error {
    Error::new(e.code, format!("{} (in {field})", e.message))
}

fn parse_image(field: &str, v: Value) -> Result<ContentBlock> {
    let mut f = Fields::new(v, &["format", "source"]).map_err(|e| prefix(field, e))?;
    let fmt = f.req_str("format").map_err(|e| prefix(field, e))?;
    let format = ImageFormat::parse(&fmt).ok_or_else(|| {
        Error::validation(format!(
            "Invalid {field}.format: {fmt:?}, must be one of: png, jpeg, gif, webp"
        ))
    })?;
    let src_field = format!("{field}.source");
    let mut sf = Fields::new(
        f.req_value("source").map_err(|e| prefix(field, e))?,
        &["bytes", "s3Location"],
    )
    .map_err(|e| prefix(&src_field, e))?;
    let bytes = sf.opt_value("bytes");
    let s3 = sf.opt_value("s3Location");
    let source = match (bytes, s3) {
        (Some(b), None) => {
            let data = match b {
                Value::Bytes(b) => b,
                // On the wire, blobs are base64 text; from Python, a str is encoded as UTF-8 (botocore's habit).
                Value::Str(s) => s.into_bytes(),
                other => {
                    return Err(type_error(
                        &format!("{src_field}.bytes"),
                        &other,
                        "bytes, bytearray",
                    ));
                }
            };
            if data.is_empty() {
                return Err(Error::validation(format!(
                    "Invalid length for parameter {src_field}.bytes: 0 bytes, must be at least 1"
                )));
            }
            if data.len() > MAX_IMAGE_BYTES {
                return Err(Error::validation(format!(
                    "Invalid {src_field}.bytes: {} bytes, an image may be at most {MAX_IMAGE_BYTES} bytes (3.75 MB)",
                    data.len()
                )));
            }
            ImageSource::Bytes(data)
        }
        (None, Some(loc)) => {
            let loc_field = format!("{src_field}.s3Location");
            let mut lf = Fields::new(loc, &["uri"]).map_err(|e| prefix(&loc_field, e))?;
            let uri = lf.req_str("uri").map_err(|e| prefix(&loc_field, e))?;
            if !validate::is_s3_uri(&uri) {
                return Err(Error::validation(format!(
                    "Invalid {loc_field}.uri: {uri:?} must match ^s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/.{{1,1024}}$"
                )));
            }
            ImageSource::S3 { uri }
        }
        _ => {
            return Err(Error::validation(format!(
                "Invalid {src_field}: an image source must have exactly one of bytes or s3Location"
            )));
        }
    };
    Ok(ContentBlock::Image { format, source })
}

/// Decodes base64 image bytes arriving as JSON text (used by the wire layer).
pub fn decode_base64(field: &str, s: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(s)
        .map_err(|_| Error::validation(format!("Invalid {field}: not valid base64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(items: Vec<(&str, Value)>) -> Value {
        Value::Map(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }
    const SID: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";

    fn step_with(payload: Value) -> Value {
        m(vec![
            ("sessionIdentifier", s(SID)),
            ("invocationIdentifier", s(SID)),
            ("invocationStepTime", Value::Timestamp(0)),
            ("payload", payload),
        ])
    }

    #[test]
    fn payload_rules() {
        let ok = m(vec![(
            "contentBlocks",
            Value::List(vec![m(vec![("text", s("hi"))])]),
        )]);
        assert!(parse_put_step(step_with(ok)).is_ok());
        let empty = m(vec![("contentBlocks", Value::List(vec![]))]);
        assert!(
            parse_put_step(step_with(empty))
                .unwrap_err()
                .message
                .contains("contentBlocks")
        );
        let both = m(vec![(
            "contentBlocks",
            Value::List(vec![m(vec![("text", s("a")), ("image", m(vec![]))])]),
        )]);
        assert!(
            parse_put_step(step_with(both))
                .unwrap_err()
                .message
                .contains("contentBlocks[0]")
        );
        let img = |n: usize| {
            m(vec![(
                "image",
                m(vec![
                    ("format", s("png")),
                    ("source", m(vec![("bytes", Value::Bytes(vec![0; n]))])),
                ]),
            )])
        };
        let too_big = m(vec![(
            "contentBlocks",
            Value::List(vec![img(MAX_IMAGE_BYTES + 1)]),
        )]);
        assert!(parse_put_step(step_with(too_big)).is_err());
        let twenty_one = m(vec![(
            "contentBlocks",
            Value::List((0..21).map(|_| img(1)).collect()),
        )]);
        assert!(
            parse_put_step(step_with(twenty_one))
                .unwrap_err()
                .message
                .contains("images")
        );
        let bad_format = m(vec![(
            "contentBlocks",
            Value::List(vec![m(vec![(
                "image",
                m(vec![
                    ("format", s("bmp")),
                    ("source", m(vec![("bytes", Value::Bytes(vec![1]))])),
                ]),
            )])]),
        )]);
        assert!(
            parse_put_step(step_with(bad_format))
                .unwrap_err()
                .message
                .contains("format")
        );
    }

    #[test]
    fn metadata_and_tags_limits() {
        let meta = |n: usize| {
            m(vec![(
                "sessionMetadata",
                Value::Map((0..n).map(|i| (format!("k{i}"), s("v"))).collect()),
            )])
        };
        assert!(parse_create_session(meta(50)).is_ok());
        assert!(parse_create_session(meta(51)).is_err());
        let tags = |k: &str| m(vec![("tags", m(vec![(k, s("v"))]))]);
        assert!(parse_create_session(tags("ok-key")).is_ok());
        assert!(
            parse_create_session(tags("bad;key"))
                .unwrap_err()
                .message
                .contains("tags")
        );
        assert!(parse_create_session(m(vec![("tags", m(vec![]))])).is_err());
        let kms = m(vec![(
            "encryptionKeyArn",
            s("arn:aws:kms:us-east-1:123456789012:alias/x"),
        )]);
        assert!(
            parse_create_session(kms)
                .unwrap_err()
                .message
                .contains("encryptionKeyArn")
        );
    }

    #[test]
    fn types_and_missing_fields_are_named() {
        let e = parse_session_only(m(vec![("sessionIdentifier", Value::Int(3))])).unwrap_err();
        assert!(
            e.message.contains("sessionIdentifier") && e.message.contains("int"),
            "{}",
            e.message
        );
        let e = parse_session_only(m(vec![])).unwrap_err();
        assert!(
            e.message.contains("Missing required parameter"),
            "{}",
            e.message
        );
        let e = parse_create_invocation(m(vec![
            ("sessionIdentifier", s(SID)),
            ("description", s("")),
        ]))
        .unwrap_err();
        assert!(e.message.contains("description"));
        let e = parse_create_invocation(m(vec![
            ("sessionIdentifier", s(SID)),
            ("invocationId", s("ABC")),
        ]))
        .unwrap_err();
        assert!(e.message.contains("invocationId"));
        let t = parse_timestamp("t", &s("2025-01-02T03:04:05.5Z")).unwrap();
        assert_eq!(t, 1_735_787_045_500_000);
        assert!(parse_timestamp("t", &Value::Bool(true)).is_err());
    }
}
