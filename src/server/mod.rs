//! A local server that speaks the Bedrock session REST API (rest-json) over any [`SessionStore`], so
//! boto3, the AWS SDKs and langgraph-checkpoint-aws's saver run against the embedded store.
//!
//! Wire rules (see `bedrock-sessions-api.md`): labels are percent-encoded path segments (an ARN arrives
//! with `%3A`/`%2F`), timestamps are ISO-8601, image bytes are base64 in JSON, errors carry
//! `x-amzn-ErrorType` and `{"message", "__type"}`, every response has `x-amzn-RequestId`.
//!
//! For testing users' code: an injected latency per request and injected faults (throttling, 500s,
//! dropped connections before or after the operation ran) at a given rate, from a seeded generator.
//!
//! Observability: every API request is counted in [`metrics`] (Prometheus text at `GET /metrics`) and,
//! when a [`LogTarget`] is set, written as one JSON line to the request log ([`access_log`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorCode};
use crate::ops::{self, Operation};
use crate::store::SessionStore;
use crate::timefmt;
use crate::value::Value;

mod access_log;
mod audit;
pub mod auth;
pub mod authz;
mod guard;
mod http;
pub mod metrics;
pub mod policy;
mod ui_proxy;
pub use self::access_log::LogTarget;
use self::access_log::{LogLine, LogWriter, RequestLog};
use self::http::{Request, Response};
use self::metrics::{Metrics, Observation};

/// Requests larger than this are refused (a step may hold 50 MB; base64 and JSON add a third).
pub const MAX_BODY: usize = 80 * 1024 * 1024;
/// Request bodies of 1 MiB or more held in memory at once, all connections together, in KiB: one body of the
/// largest size. A request whose body would pass it waits (unread, in the socket) until others are answered.
/// Without it, 8 concurrent 79 MB requests took the server from 280 MB to 920 MB.
pub const BODY_BUDGET_KIB: usize = MAX_BODY / 1024;

/// A fault the server can inject instead of (or after) running an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 ThrottlingException, the operation not run.
    Throttle,
    /// 500 InternalServerException, the operation not run.
    Internal,
    /// The connection drops before the operation runs.
    DropBefore,
    /// The operation runs (and commits), then the connection drops: the client cannot know.
    DropAfter,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "throttle" | "throttling" | "429" => Some(Fault::Throttle),
            "500" | "internal" | "error" => Some(Fault::Internal),
            "drop" | "drop-before" => Some(Fault::DropBefore),
            "drop-after" => Some(Fault::DropAfter),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Internal => "500",
            Fault::DropBefore => "drop-before",
            Fault::DropAfter => "drop-after",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Added before each API request is handled.
    pub latency: Duration,
    /// Probability (0..=1) that an API request gets a fault.
    pub fault_rate: f64,
    /// The faults to draw from (uniformly).
    pub faults: Vec<Fault>,
    pub seed: u64,
    /// Where the request log goes (one JSON line per API request).
    pub log: LogTarget,
    /// The loopback port of the web inspector whose pages `GET /ui/...` relays (see [`ui_proxy`]).
    pub ui_upstream: Option<u16>,
    /// With identities, every API request must be signed (SigV4) by one of their keys (see [`auth`]), and is
    /// decided by its principal's account and policies (see [`authz`]).
    pub identities: Option<Arc<auth::Identities>>,
    /// Where the audit log goes (one JSON line per API request: who, what, the decision, the outcome).
    pub audit: LogTarget,
    /// The region of the store's sessions (the audit log's `awsRegion`; identities are loaded for it too).
    pub region: String,
    /// A connection that sends nothing for this long is closed; a request head or body that stalls this long
    /// is answered 408 (head) or dropped (body).
    pub read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            latency: Duration::ZERO,
            fault_rate: 0.0,
            faults: vec![
                Fault::Throttle,
                Fault::Internal,
                Fault::DropBefore,
                Fault::DropAfter,
            ],
            seed: 0x5eed,
            log: LogTarget::Off,
            ui_upstream: None,
            identities: None,
            audit: LogTarget::Off,
            region: "us-east-1".into(),
            read_timeout: Duration::from_secs(20),
        }
    }
}

/// Requests seen, per operation, and faults injected.
#[derive(Debug, Default)]
pub struct Stats {
    pub per_operation: Mutex<BTreeMap<String, u64>>,
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    /// Requests being handled right now, and the most at once (concurrency seen by the server).
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64, BTreeMap<String, u64>) {
        (
            self.requests.load(Ordering::SeqCst),
            self.faults.load(Ordering::SeqCst),
            self.max_in_flight.load(Ordering::SeqCst),
            self.per_operation
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
    pub fn reset(&self) {
        self.requests.store(0, Ordering::SeqCst);
        self.faults.store(0, Ordering::SeqCst);
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        self.per_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

struct AppState {
    store: Arc<dyn SessionStore>,
    options: ServerOptions,
    /// The budget of large request bodies in memory ([`BODY_BUDGET_KIB`] permits).
    bodies: Arc<tokio::sync::Semaphore>,
    /// Bound to a loopback address: the `Host` values accepted (a page elsewhere cannot reach the server
    /// through a name of its own that resolves to 127.0.0.1: DNS rebinding). `None`: any.
    hosts: Option<Vec<String>>,
    rng: Mutex<u64>,
    stats: Arc<Stats>,
    metrics: Arc<Metrics>,
    log: Option<RequestLog>,
    /// With identities: the store's handle for each account.
    tenants: Option<authz::Tenants>,
    audit: Option<RequestLog>,
}

impl AppState {
    /// xorshift64*: small, seeded, good enough to spread faults.
    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mut x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&self) -> Option<Fault> {
        let o = &self.options;
        if o.fault_rate <= 0.0 || o.faults.is_empty() || self.draw() >= o.fault_rate {
            return None;
        }
        let i = (self.draw() * o.faults.len() as f64) as usize;
        Some(o.faults[i.min(o.faults.len() - 1)])
    }
}

/// The generator's first state: splitmix64 of the seed, so that every seed (neighbours included) gives its
/// own sequence, and never the zero state xorshift cannot leave.
fn seed_state(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z == 0 { 0x5EED } else { z }
}

/// How long stopping waits for the request log's queued lines to be written.
const LOG_FINISH: Duration = Duration::from_secs(5);

/// A running server: its address, statistics, and a way to stop it.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
    shutdown: Option<watch::Sender<bool>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    log_writers: Vec<LogWriter>,
}

impl ServerHandle {
    /// Stops accepting connections, lets in-flight requests finish, and waits for the server to end and
    /// its request log to be written out.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        self.wait_done().await
    }

    /// Sends the stop signal without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }

    /// Waits for the server to end (after a stop signal).
    pub async fn wait(mut self) -> std::io::Result<()> {
        self.wait_done().await
    }

    async fn wait_done(&mut self) -> std::io::Result<()> {
        let result = match self.done.take() {
            Some(j) => j.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        };
        // The accept loop has ended and dropped the server's state, the log's sending side with it: the
        // writer writes what is queued, then ends.
        for w in std::mem::take(&mut self.log_writers) {
            let _ = tokio::task::spawn_blocking(move || w.finish(LOG_FINISH)).await;
        }
        result
    }
}

/// Binds `host:port` (port 0 picks a free one) and serves until stopped. Must be called within a runtime.
pub async fn start(
    store: Arc<dyn SessionStore>,
    host: &str,
    port: u16,
    options: ServerOptions,
) -> std::io::Result<ServerHandle> {
    if !(0.0..=1.0).contains(&options.fault_rate) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "fault_rate must be between 0 and 1",
        ));
    }
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let metrics = Arc::new(Metrics::default());
    let tenants = match &options.identities {
        Some(ids) => Some(authz::Tenants::new(&*store, ids)?),
        None => None,
    };
    let mut log_writers = Vec::new();
    let mut open_log = |target: &LogTarget, name: &str, lossless: bool| {
        RequestLog::open(target, metrics.clone(), name, lossless).map(|opened| {
            opened.map(|(log, writer)| {
                log_writers.push(writer);
                log
            })
        })
    };
    let log = open_log(&options.log, "request log", false)?;
    let audit = open_log(&options.audit, "audit log", true)?;
    let hosts = addr.ip().is_loopback().then(|| {
        let p = addr.port();
        let mut names = vec![format!("localhost:{p}"), "localhost".to_string()];
        let ip = match addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        names.push(format!("{ip}:{p}"));
        names.push(ip);
        names
    });
    let state = Arc::new(AppState {
        store,
        bodies: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_KIB)),
        hosts,
        rng: Mutex::new(seed_state(options.seed)),
        options,
        stats: stats.clone(),
        metrics: metrics.clone(),
        log,
        tenants,
        audit,
    });
    let (tx, rx) = watch::channel(false);
    let done = tokio::spawn(accept_loop(listener, state, rx));
    Ok(ServerHandle {
        addr,
        stats,
        metrics,
        shutdown: Some(tx),
        done: Some(done),
        log_writers,
    })
}

/// Accepts connections until shutdown, then waits for the open ones: a request in flight finishes and is
/// answered, idle keep-alive connections close.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(http::serve_connection(stream, state.clone(), shutdown.clone()));
                }
                // Out of descriptors or an aborted handshake: the listener itself is fine.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------------
// Routing

/// Splits the raw path on '/' and percent-decodes each segment (so an encoded ARN stays one segment).
fn segments(path: &str) -> Result<Vec<String>, Error> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| {
                    Error::validation("request path is not valid UTF-8 after percent-decoding")
                })
        })
        .collect()
}

/// URI labels of a request: (member name, decoded value).
type Labels = Vec<(&'static str, String)>;

/// The operation of a request and its URI labels.
fn route(method: &str, path: &str) -> Result<Option<(Operation, Labels)>, Error> {
    let mut segs = segments(path)?;
    // `/sessions/` and `/sessions` route alike: drop one trailing empty segment.
    if segs.len() > 1 && segs.last().is_some_and(|s| s.is_empty()) {
        segs.pop();
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let sid = |i: usize| vec![("sessionIdentifier", segs[i].clone())];
    let op = match (method, s.as_slice()) {
        ("PUT", ["sessions"]) => (Operation::CreateSession, vec![]),
        ("POST", ["sessions"]) => (Operation::ListSessions, vec![]),
        ("GET", ["sessions", _]) => (Operation::GetSession, sid(1)),
        ("PUT", ["sessions", _]) => (Operation::UpdateSession, sid(1)),
        ("PATCH", ["sessions", _]) => (Operation::EndSession, sid(1)),
        ("DELETE", ["sessions", _]) => (Operation::DeleteSession, sid(1)),
        ("PUT", ["sessions", _, "invocations"]) => (Operation::CreateInvocation, sid(1)),
        ("POST", ["sessions", _, "invocations"]) => (Operation::ListInvocations, sid(1)),
        ("PUT", ["sessions", _, "invocationSteps"]) => (Operation::PutInvocationStep, sid(1)),
        ("POST", ["sessions", _, "invocationSteps"]) => (Operation::ListInvocationSteps, sid(1)),
        ("POST", ["sessions", _, "invocationSteps", _]) => {
            let mut l = sid(1);
            l.push(("invocationStepId", segs[3].clone()));
            (Operation::GetInvocationStep, l)
        }
        ("POST", ["tags", _]) => (
            Operation::TagResource,
            vec![("resourceArn", segs[1].clone())],
        ),
        ("DELETE", ["tags", _]) => (
            Operation::UntagResource,
            vec![("resourceArn", segs[1].clone())],
        ),
        ("GET", ["tags", _]) => (
            Operation::ListTagsForResource,
            vec![("resourceArn", segs[1].clone())],
        ),
        _ => return Ok(None),
    };
    Ok(Some(op))
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    let Some(q) = query else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| Error::validation("query string is not valid UTF-8"))
            };
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// JSON <-> Value

pub fn json_to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect())
        }
    }
}

pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null | Value::Unsupported(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Bytes(b) => serde_json::Value::String(STANDARD.encode(b)),
        Value::Timestamp(us) => serde_json::Value::String(timefmt::format_rfc3339(*us)),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_to_json).collect()),
        Value::Map(items) => serde_json::Value::Object(
            items
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}

fn get_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match v {
        Value::Map(items) => items.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

/// Image bytes travel base64-encoded in JSON: decode them where the shape says blob.
fn decode_blobs(input: &mut Value) -> Result<(), Error> {
    let Some(Value::List(blocks)) =
        get_mut(input, "payload").and_then(|p| get_mut(p, "contentBlocks"))
    else {
        return Ok(());
    };
    for (i, block) in blocks.iter_mut().enumerate() {
        let Some(bytes) = get_mut(block, "image")
            .and_then(|im| get_mut(im, "source"))
            .and_then(|s| get_mut(s, "bytes"))
        else {
            continue;
        };
        if let Value::Str(s) = bytes {
            let decoded = STANDARD.decode(s.as_bytes()).map_err(|_| {
                Error::validation(format!(
                    "Invalid payload.contentBlocks[{i}].image.source.bytes: not valid base64"
                ))
            })?;
            *bytes = Value::Bytes(decoded);
        }
    }
    Ok(())
}

/// Members of the inputs that are maps (their entries are data, not members).
const MAP_MEMBERS: &[&str] = &["sessionMetadata", "tags"];

/// `null` for a member of a structure means the member is absent, as the service reads JSON; list items
/// keep theirs (and are then refused by type).
fn without_null_members(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_null_members(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(without_null_members).collect())
        }
        other => other,
    }
}

fn build_input(
    op: Operation,
    labels: Vec<(&'static str, String)>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Value, Error> {
    let mut items = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(o)) => o
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let v = if MAP_MEMBERS.contains(&k.as_str()) {
                        v
                    } else {
                        without_null_members(v)
                    };
                    (k, json_to_value(v))
                })
                .collect(),
            Ok(_) => return Err(Error::validation("the request body must be a JSON object")),
            Err(e) => {
                return Err(Error::validation(format!(
                    "the request body is not valid JSON: {e}"
                )));
            }
        }
    };
    for (k, v) in labels {
        items.retain(|(name, _)| name != k);
        items.push((k.to_string(), Value::Str(v)));
    }
    let mut tag_keys = Vec::new();
    for (k, v) in query_pairs(query)? {
        match (op, k.as_str()) {
            (_, "maxResults") => {
                items.push((k, v.parse::<i64>().map(Value::Int).unwrap_or(Value::Str(v))));
            }
            (_, "nextToken") => items.push((k, Value::Str(v))),
            (Operation::UntagResource, "tagKeys") => tag_keys.push(Value::Str(v)),
            _ => {} // unknown query parameters are ignored, as AWS does
        }
    }
    if !tag_keys.is_empty() {
        items.push(("tagKeys".into(), Value::List(tag_keys)));
    }
    let mut input = Value::Map(items);
    decode_blobs(&mut input)?;
    Ok(input)
}

// ---------------------------------------------------------------------------------------------
// Responses

fn core_error(e: &Error, request_id: &str) -> Response {
    Response::error(
        e.code.as_str(),
        e.code.http_status(),
        &e.message,
        request_id,
    )
}

/// A response whose body never comes: the client sees the connection drop.
fn dropped(request_id: &str) -> Response {
    let mut r = Response::json(200, Vec::new(), request_id);
    r.drop = true;
    r
}

struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn new(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Observability: the request log and the metrics

/// The server's own routes: not API requests, neither logged nor counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Internal {
    Health,
    Stats,
    Metrics,
}

fn internal_route(method: &str, path: &str) -> Option<Internal> {
    match path {
        "/health" | "/_bedrock_sessions/health" if method == "GET" => Some(Internal::Health),
        "/_bedrock_sessions/stats" => Some(Internal::Stats),
        "/metrics" | "/_bedrock_sessions/metrics" if method == "GET" => Some(Internal::Metrics),
        _ => None,
    }
}

/// The content type of the metrics (Prometheus text exposition format 0.0.4).
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// When a request arrived: the instant (for its duration) and the wall clock (for its log line).
struct Arrival {
    at: Instant,
    wall: time::OffsetDateTime,
}

impl Arrival {
    fn now() -> Self {
        Arrival {
            at: Instant::now(),
            wall: time::OffsetDateTime::now_utc(),
        }
    }
}

/// What the logs and the metrics know of an API request beyond its response.
#[derive(Debug, Default)]
struct Exchange {
    operation: Option<Operation>,
    /// Method and raw path of a request that names no operation (the log says what was asked).
    target: Option<(String, String)>,
    /// The session id or ARN of the path (for CreateSession, the new session's id).
    session: Option<String>,
    fault: Option<Fault>,
    /// A PutInvocationStep that stored its step (a drop-after fault included: the step is stored).
    step_written: bool,
    /// Who asked, from where, and what was decided (the audit log).
    facts: audit::Facts,
}

/// Counts an answered API request and writes its log lines. Called once its answer is ready, before it
/// is sent, so that a client holding the answer finds the request counted.
fn record(app: &AppState, arrival: &Arrival, bytes_in: usize, response: &Response, x: &Exchange) {
    let status = if response.drop { 0 } else { response.status };
    let error = if response.drop {
        None
    } else {
        response.header("x-amzn-ErrorType")
    };
    let bytes_out = if response.drop {
        0
    } else {
        response.body.len()
    };
    let duration = arrival.at.elapsed();
    app.metrics.observe(&Observation {
        operation: x.operation,
        status,
        error,
        fault: x.fault,
        duration,
        bytes_in: bytes_in as u64,
        bytes_out: bytes_out as u64,
        step_written: x.step_written,
    });
    let micros = (arrival.wall.unix_timestamp_nanos() / 1_000) as i64;
    let request_id = response.header("x-amzn-RequestId").unwrap_or_default();
    if let Some(log) = &app.log {
        log.write(&LogLine {
            time: timefmt::format_rfc3339(micros),
            request_id,
            operation: x.operation.map(Operation::name),
            method: x.target.as_ref().map(|(m, _)| m.as_str()),
            path: x.target.as_ref().map(|(_, p)| p.as_str()),
            session: x.session.as_deref(),
            status,
            error,
            fault: x.fault.map(Fault::name),
            // Microseconds are enough, and keep the line short.
            latency_ms: (duration.as_secs_f64() * 1e6).round() / 1e3,
            bytes_in: bytes_in as u64,
            bytes_out: bytes_out as u64,
        });
    }
    if let Some(log) = &app.audit {
        let answer = audit::Answer {
            time: timefmt::format_rfc3339(micros),
            request_id,
            status,
            error_code: error,
            error_message: response.error_message.as_deref().filter(|_| !response.drop),
        };
        let checked = app.options.identities.is_some();
        let target = x.target.as_ref().map(|(m, p)| (m.as_str(), p.as_str()));
        log.write(&audit::AuditLine::new(
            &x.facts,
            checked,
            &app.options.region,
            x.operation,
            target,
            answer,
        ));
    }
}

fn str_member<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v.get(key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// Answers a request. The exchange is `None` for the server's own routes (health, stats, metrics).
async fn handle(
    app: Arc<AppState>,
    req: Request,
    peer: Option<SocketAddr>,
) -> (Response, Option<Exchange>) {
    let request_id = new_request_id();
    let Request {
        method,
        path,
        query,
        headers,
        body,
    } = req;

    let own_route = internal_route(&method, &path);
    // What the audit log knows of every API request, whatever its answer.
    let mut facts = audit::Facts {
        peer,
        user_agent: headers
            .iter()
            .find(|(k, _)| k == "user-agent")
            .map(|(_, v)| v.chars().take(256).collect()),
        ..Default::default()
    };
    let signer = match guard::admit(
        &app,
        &method,
        &path,
        query.as_deref(),
        &headers,
        &body,
        own_route,
    ) {
        Ok(signer) => signer,
        Err((code, status, message)) => {
            // Refused API requests are logged and counted; the server's own routes are not.
            facts.claimed_key = auth::claimed_access_key(&headers);
            let x = own_route.is_none().then(|| Exchange {
                operation: route(&method, &path).ok().flatten().map(|(op, _)| op),
                target: Some((method, path)),
                facts,
                ..Exchange::default()
            });
            return (Response::error(code, status, &message, &request_id), x);
        }
    };
    facts.signer = signer;
    if let Some(port) = app.options.ui_upstream {
        if ui_proxy::is_ui(&method, &path) {
            return (
                ui_proxy::relay(port, &path, query.as_deref(), &request_id).await,
                None,
            );
        }
    }
    match own_route {
        Some(Internal::Health) => {
            let r = Response::json(200, br#"{"status":"ok"}"#.to_vec(), &request_id);
            return (r, None);
        }
        Some(Internal::Stats) => {
            if method == "DELETE" {
                app.stats.reset();
            }
            let (requests, faults, max_in_flight, per) = app.stats.snapshot();
            let body = serde_json::json!({"requests": requests, "faults": faults, "maxInFlight": max_in_flight, "operations": per});
            let r = Response::json(200, body.to_string().into_bytes(), &request_id);
            return (r, None);
        }
        Some(Internal::Metrics) => {
            let text = app.metrics.render().into_bytes();
            let r = Response::text(200, text, METRICS_CONTENT_TYPE, &request_id);
            return (r, None);
        }
        None => {}
    }

    let (op, labels) = match route(&method, &path) {
        Ok(Some(r)) => r,
        unrouted => {
            let r = match unrouted {
                Err(e) => core_error(&e, &request_id),
                _ => Response::error(
                    "UnknownOperationException",
                    404,
                    &format!("no operation at {method} {path}"),
                    &request_id,
                ),
            };
            let x = Exchange {
                target: Some((method, path)),
                facts,
                ..Exchange::default()
            };
            return (r, Some(x));
        }
    };
    // Every route with labels starts with the session (or, for tags, the session's ARN).
    let mut x = Exchange {
        operation: Some(op),
        session: labels.first().map(|(_, v)| v.clone()),
        facts,
        ..Exchange::default()
    };
    let response = run(
        &app,
        op,
        labels,
        query.as_deref(),
        &body,
        &request_id,
        &mut x,
    )
    .await;
    (response, Some(x))
}

/// Runs an API operation (with the injected latency and faults), noting what the log needs in `x`.
async fn run(
    app: &AppState,
    op: Operation,
    labels: Labels,
    query: Option<&str>,
    body: &[u8],
    request_id: &str,
    x: &mut Exchange,
) -> Response {
    let _in_flight = InFlight::new(&app.stats);
    app.stats.requests.fetch_add(1, Ordering::SeqCst);
    *app.stats
        .per_operation
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(op.name().to_string())
        .or_default() += 1;

    if !app.options.latency.is_zero() {
        tokio::time::sleep(app.options.latency).await;
    }
    let fault = app.fault();
    x.fault = fault;
    if fault.is_some() {
        app.stats.faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Throttle) => {
            return Response::error(
                ErrorCode::Throttling.as_str(),
                429,
                "Rate exceeded (injected fault)",
                request_id,
            );
        }
        Some(Fault::Internal) => {
            return Response::error(
                ErrorCode::InternalServer.as_str(),
                500,
                "Internal failure (injected fault)",
                request_id,
            );
        }
        Some(Fault::DropBefore) => return dropped(request_id),
        _ => {}
    }
    let input = match build_input(op, labels, query, body) {
        Ok(v) => v,
        Err(e) => return core_error(&e, request_id),
    };
    // With identities: the principal's account's handle, if its policies allow the request.
    let store = match (&app.tenants, &x.facts.signer) {
        (None, _) => app.store.clone(),
        (Some(tenants), Some(signer)) => {
            match authz::authorize(tenants, &signer.principal, op, &input).await {
                Ok(allowed) => {
                    x.facts.verdict = Some(allowed.verdict);
                    allowed.store
                }
                Err(denied) => {
                    x.facts.verdict = denied.verdict;
                    return core_error(&denied.error, request_id);
                }
            }
        }
        // The guard lets no unsigned API request through a server with identities; should one come, it is
        // refused, never run on the whole store.
        (Some(_), None) => {
            let e = Error::new(ErrorCode::AccessDenied, "the request is not signed");
            return core_error(&e, request_id);
        }
    };
    let result = ops::dispatch(&*store, op, input).await;
    if let Ok(v) = &result {
        x.step_written = op == Operation::PutInvocationStep;
        if op == Operation::CreateSession {
            x.session = str_member(v, "sessionId").map(str::to_string);
            x.facts.created_arn = str_member(v, "sessionArn").map(str::to_string);
        }
    }
    if fault == Some(Fault::DropAfter) {
        return dropped(request_id);
    }
    match result {
        Ok(v) => {
            let empty = matches!(&v, Value::Map(items) if items.is_empty());
            let body = if empty
                && matches!(
                    op,
                    Operation::DeleteSession | Operation::TagResource | Operation::UntagResource
                ) {
                Vec::new()
            } else {
                value_to_json(&v).to_string().into_bytes()
            };
            Response::json(op.success_status(), body, request_id)
        }
        Err(e) => core_error(&e, request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_percent_encoded_arns() {
        let arn =
            "arn:aws:bedrock:us-east-1:000000000000:session/0a1b2c3d-0000-4000-8000-00000000abcd";
        let enc = arn.replace(':', "%3A").replace('/', "%2F");
        let (op, labels) = route("GET", &format!("/sessions/{enc}/")).unwrap().unwrap();
        assert_eq!(op, Operation::GetSession);
        assert_eq!(labels, vec![("sessionIdentifier", arn.to_string())]);
        let (op, _) = route("PATCH", &format!("/sessions/{enc}"))
            .unwrap()
            .unwrap();
        assert_eq!(op, Operation::EndSession);
        let (op, labels) = route("POST", "/sessions/abc/invocationSteps/def")
            .unwrap()
            .unwrap();
        assert_eq!(op, Operation::GetInvocationStep);
        assert_eq!(labels[1], ("invocationStepId", "def".to_string()));
        let (op, _) = route("DELETE", &format!("/tags/{enc}")).unwrap().unwrap();
        assert_eq!(op, Operation::UntagResource);
        assert!(route("GET", "/nothing/here").unwrap().is_none());
        assert!(route("PATCH", "/sessions/").unwrap().is_none());
    }

    #[test]
    fn inputs_from_query_labels_and_body() {
        let input = build_input(
            Operation::UntagResource,
            vec![("resourceArn", "arn".into())],
            Some("tagKeys=a&tagKeys=b%20c"),
            b"",
        )
        .unwrap();
        assert_eq!(
            input,
            Value::Map(vec![
                ("resourceArn".into(), Value::Str("arn".into())),
                (
                    "tagKeys".into(),
                    Value::List(vec![Value::Str("a".into()), Value::Str("b c".into())])
                ),
            ])
        );
        let body = br#"{"payload":{"contentBlocks":[{"image":{"format":"png","source":{"bytes":"AAEC"}}}]}}"#;
        let input = build_input(
            Operation::PutInvocationStep,
            vec![],
            Some("maxResults=x"),
            body,
        )
        .unwrap();
        let json = value_to_json(&input);
        assert_eq!(
            json["payload"]["contentBlocks"][0]["image"]["source"]["bytes"],
            "AAEC"
        );
        assert!(matches!(
            get_mut(&mut input.clone(), "maxResults"),
            Some(Value::Str(_))
        ));
        // null means absent, at any depth of structures; map entries keep theirs.
        let input = build_input(
            Operation::PutInvocationStep,
            vec![],
            None,
            br#"{"invocationStepId":null,"payload":{"contentBlocks":[{"text":"t","image":null}]}}"#,
        )
        .unwrap();
        assert_eq!(
            value_to_json(&input),
            serde_json::json!({"payload": {"contentBlocks": [{"text": "t"}]}})
        );
        let input = build_input(
            Operation::CreateSession,
            vec![],
            None,
            br#"{"sessionMetadata":{"k":null},"tags":null}"#,
        )
        .unwrap();
        assert_eq!(
            value_to_json(&input),
            serde_json::json!({"sessionMetadata": {"k": null}})
        );
        assert!(build_input(Operation::CreateSession, vec![], None, b"[1]").is_err());
        assert!(build_input(Operation::CreateSession, vec![], None, b"{bad").is_err());
        let bad64 = br#"{"payload":{"contentBlocks":[{"image":{"format":"png","source":{"bytes":"!!"}}}]}}"#;
        assert!(build_input(Operation::PutInvocationStep, vec![], None, bad64).is_err());
    }

    #[test]
    fn faults_follow_the_rate() {
        let st = crate::store::sqlite::SqliteStore::memory(crate::store::StoreConfig::default())
            .unwrap();
        let state = AppState {
            store: Arc::new(st),
            bodies: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_KIB)),
            hosts: None,
            options: ServerOptions {
                fault_rate: 0.2,
                ..ServerOptions::default()
            },
            rng: Mutex::new(seed_state(42)),
            stats: Arc::new(Stats::default()),
            metrics: Arc::new(Metrics::default()),
            log: None,
            tenants: None,
            audit: None,
        };
        let n = 10_000;
        let hits = (0..n).filter(|_| state.fault().is_some()).count();
        assert!((1700..2300).contains(&hits), "{hits}");
    }
}
