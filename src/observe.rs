//! What the session API requests we make look like from outside: one record per request (its operation,
//! request id, session, outcome and latency) and one per retried attempt, handed to a [`Recorder`] (the
//! Python bindings queue them for Python's `logging`, logger `bedrock_sessions.requests`).
//!
//! Every request is recorded in one place, [`Observed`]: the store wrapper every backend opened for Python
//! sits in (under the thread index, so the index's own requests are recorded too). It times each operation
//! and takes its request id from the backend: the Bedrock backend notes the service's id
//! (`x-amzn-RequestId`) of each attempt with [`attempt`] and reports the attempts it retries with
//! [`retrying`]; an embedded store has none, so one is made (uuid4). A caller that wants the id of the
//! request it made (the session clients put it in boto3's `ResponseMetadata`) runs it under
//! [`with_request_id`].
//!
//! Nothing is done unless the recorder wants the records: an embedded store's operation then goes straight
//! to the store (no timing, no id, no allocation).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ErrorCode, Result};
use crate::model::{
    CreateInvocation, CreateSession, GetStep, Invocation, ListSteps, Page, PageRequest, PutStep,
    ResourceArn, Session, SessionRef, Step, StepSummary, UpdateSession,
};
use crate::ops::Operation;
use crate::store::SessionStore;

/// Which records a recorder takes now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// A record of every request (DEBUG).
    pub requests: bool,
    /// A record of every attempt that is retried (WARNING).
    pub retries: bool,
}

/// Where records go. `wants` is asked before each request, so it must be cheap (an atomic load).
pub trait Recorder: Send + Sync + fmt::Debug {
    fn wants(&self) -> Wants;
    fn record(&self, event: Event);
}

/// A request, once it is answered (or has failed for good).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation's AWS name (`PutInvocationStep`).
    pub operation: &'static str,
    /// The service's request id of the last attempt; one made here for an embedded store; empty when the
    /// service never answered (the connection failed).
    pub request_id: String,
    /// The session the request names (for CreateSession, the session it created).
    pub session: Option<String>,
    /// `None`: success; else the error's code.
    pub error: Option<ErrorCode>,
    /// From the request's start to its outcome, retries and their waits included.
    pub latency: Duration,
    /// Attempts made (1 unless retried).
    pub attempts: u32,
}

impl Request {
    /// "ok" or the error code.
    pub fn status(&self) -> &'static str {
        self.error.map_or("ok", ErrorCode::as_str)
    }

    pub fn latency_ms(&self) -> f64 {
        self.latency.as_secs_f64() * 1000.0
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = if self.request_id.is_empty() {
            "-"
        } else {
            &self.request_id
        };
        let ms = self.latency_ms();
        // Sub-millisecond requests (the embedded stores) keep their microseconds.
        let digits = if ms < 1.0 { 3 } else { 1 };
        write!(
            f,
            "{} {} {} {ms:.digits$} ms",
            self.operation,
            id,
            self.status(),
        )?;
        if let Some(s) = &self.session {
            write!(f, " session {s}")?;
        }
        if self.attempts > 1 {
            write!(f, " ({} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

/// An attempt that failed and is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub operation: &'static str,
    /// The service's id of the failed attempt; empty when there was no answer.
    pub request_id: String,
    pub session: Option<String>,
    /// The failed attempt's number (1 = the first).
    pub attempt: u32,
    pub max_attempts: u32,
    pub error: ErrorCode,
    /// Why it failed, as the service or the connection said.
    pub message: String,
    /// The wait before the next attempt.
    pub delay: Duration,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = if self.request_id.is_empty() {
            "-"
        } else {
            &self.request_id
        };
        write!(
            f,
            "{} {} attempt {} of {} failed: {}: {}; retrying in {:.0} ms",
            self.operation,
            id,
            self.attempt,
            self.max_attempts,
            self.error.as_str(),
            self.message,
            self.delay.as_secs_f64() * 1000.0
        )?;
        if let Some(s) = &self.session {
            write!(f, " session {s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Request(Request),
    Retry(Retry),
}

/// The request being made: what the backend notes its attempts in.
struct Call {
    recorder: Arc<dyn Recorder>,
    operation: &'static str,
    session: Option<String>,
    /// The backend's request id of the last attempt, and the attempts made.
    noted: RefCell<(Option<String>, u32)>,
}

tokio::task_local! {
    static CALL: Call;
    /// Set by [`with_request_id`]: the id and attempts of the last request made under it.
    static ASKED: RefCell<Option<(String, u32)>>;
}

/// For a backend, once per attempt: the request id the service answered with (`None`: no answer).
pub fn attempt(request_id: Option<&str>) {
    let _ = CALL.try_with(|c| {
        let mut n = c.noted.borrow_mut();
        n.0 = request_id.map(String::from);
        n.1 += 1;
    });
}

/// For a backend, before it waits to try again: the attempt `attempt` (1 = the first) failed with `error`.
pub fn retrying(attempt: u32, max_attempts: u32, error: &crate::error::Error, delay: Duration) {
    let _ = CALL.try_with(|c| {
        if !c.recorder.wants().retries {
            return;
        }
        c.recorder.record(Event::Retry(Retry {
            operation: c.operation,
            request_id: c.noted.borrow().0.clone().unwrap_or_default(),
            session: c.session.clone(),
            attempt,
            max_attempts,
            error: error.code,
            message: error.message.clone(),
            delay,
        }));
    });
}

/// Runs `fut` (which makes one request) and returns its output with the request id and attempts of the
/// last request recorded while it ran (`None` when nothing was recorded: the recorder wanted no records
/// of an embedded store's request).
pub async fn with_request_id<T>(fut: impl Future<Output = T>) -> (T, Option<(String, u32)>) {
    let scoped = ASKED.scope(RefCell::new(None), fut);
    tokio::pin!(scoped);
    let out = scoped.as_mut().await;
    let asked = scoped.as_mut().take_value().and_then(RefCell::into_inner);
    (out, asked)
}

/// Makes one request (`fut`) under observation and records it.
async fn request<T>(
    recorder: Arc<dyn Recorder>,
    operation: &'static str,
    session: Option<String>,
    network: bool,
    fut: impl Future<Output = Result<T>>,
    session_of: fn(&T) -> Option<String>,
) -> Result<T> {
    let start = Instant::now();
    let call = Call {
        recorder,
        operation,
        session,
        noted: RefCell::new((None, 0)),
    };
    let scoped = CALL.scope(call, fut);
    tokio::pin!(scoped);
    let result = scoped.as_mut().await;
    let latency = start.elapsed();
    let Some(call) = scoped.as_mut().take_value() else {
        return result;
    };
    let (noted, attempts) = call.noted.into_inner();
    let request_id = match noted {
        Some(id) => id,
        // The service never answered: no id to report.
        None if network => String::new(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let attempts = attempts.max(1);
    let _ = ASKED.try_with(|a| *a.borrow_mut() = Some((request_id.clone(), attempts)));
    if call.recorder.wants().requests {
        let session = call
            .session
            .or_else(|| result.as_ref().ok().and_then(session_of));
        call.recorder.record(Event::Request(Request {
            operation,
            request_id,
            session,
            error: result.as_ref().err().map(|e| e.code),
            latency,
            attempts,
        }));
    }
    result
}

/// For a backend: a request it makes of its own while making another (the Bedrock backend's check of a
/// step after a conflict), recorded as a request of its own when the outer one is observed.
pub async fn nested<T>(
    operation: Operation,
    session: Option<String>,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match CALL.try_with(|c| c.recorder.clone()) {
        Ok(recorder) => request(recorder, operation.name(), session, true, fut, |_| None).await,
        Err(_) => fut.await,
    }
}

/// A session store whose every operation is recorded (see the module's documentation).
#[derive(Debug)]
pub struct Observed {
    inner: Arc<dyn SessionStore>,
    recorder: Arc<dyn Recorder>,
    /// A network backend: always observed, so that its request ids reach the caller and its retries are
    /// reported. An embedded store only when the recorder wants request records.
    network: bool,
}

impl Observed {
    pub fn new(inner: Arc<dyn SessionStore>, recorder: Arc<dyn Recorder>, network: bool) -> Self {
        Observed {
            inner,
            recorder,
            network,
        }
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    fn quiet(&self) -> bool {
        !self.network && !self.recorder.wants().requests
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn no_session<T>(_: &T) -> Option<String> {
    None
}

/// One operation of [`Observed`]: straight to the store when quiet (its own boxed future, nothing added),
/// else through [`request`]. Written out (not `#[async_trait]`) so that the quiet path allocates nothing.
macro_rules! observed {
    ($name:ident($($arg:ident: $ty:ty),*) -> $out:ty, $op:ident, $session:expr) => {
        observed!($name($($arg: $ty),*) -> $out, $op, $session, no_session);
    };
    ($name:ident($($arg:ident: $ty:ty),*) -> $out:ty, $op:ident, $session:expr, $session_of:expr) => {
        fn $name<'life0, 'async_trait>(&'life0 self, $($arg: $ty),*) -> BoxFuture<'async_trait, $out>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            if self.quiet() {
                return self.inner.$name($($arg),*);
            }
            let session: Option<String> = $session;
            let fut = self.inner.$name($($arg),*);
            Box::pin(request(
                self.recorder.clone(),
                Operation::$op.name(),
                session,
                self.network,
                fut,
                $session_of,
            ))
        }
    };
}

impl SessionStore for Observed {
    observed!(create_session(req: CreateSession) -> Session, CreateSession, None, |s: &Session| Some(s.id.clone()));
    observed!(get_session(session: SessionRef) -> Session, GetSession, Some(session.id.clone()));
    observed!(list_sessions(page: PageRequest) -> Page<Session>, ListSessions, None);
    observed!(update_session(req: UpdateSession) -> Session, UpdateSession, Some(req.session.id.clone()));
    observed!(end_session(session: SessionRef) -> Session, EndSession, Some(session.id.clone()));
    observed!(delete_session(session: SessionRef) -> (), DeleteSession, Some(session.id.clone()));
    observed!(create_invocation(req: CreateInvocation) -> Invocation, CreateInvocation, Some(req.session.id.clone()));
    observed!(list_invocations(session: SessionRef, page: PageRequest) -> Page<Invocation>, ListInvocations, Some(session.id.clone()));
    observed!(put_invocation_step(req: PutStep) -> String, PutInvocationStep, Some(req.session.id.clone()));
    observed!(get_invocation_step(req: GetStep) -> Step, GetInvocationStep, Some(req.session.id.clone()));
    observed!(list_invocation_steps(req: ListSteps) -> Page<StepSummary>, ListInvocationSteps, Some(req.session.id.clone()));
    observed!(tag_resource(arn: ResourceArn, tags: std::collections::BTreeMap<String, String>) -> (), TagResource, Some(arn.arn.session_id.clone()));
    observed!(untag_resource(arn: ResourceArn, keys: Vec<String>) -> (), UntagResource, Some(arn.arn.session_id.clone()));
    observed!(list_tags_for_resource(arn: ResourceArn) -> std::collections::BTreeMap<String, String>, ListTagsForResource, Some(arn.arn.session_id.clone()));

    fn thread_index(&self) -> Option<&dyn crate::threads::ThreadIndex> {
        self.inner.thread_index()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::Error;
    use crate::store::StoreConfig;
    use crate::store::memory::MemoryStore;

    #[derive(Debug, Default)]
    struct Collect {
        wants: Mutex<Wants>,
        events: Mutex<Vec<Event>>,
    }

    impl Recorder for Collect {
        fn wants(&self) -> Wants {
            *self.wants.lock().unwrap()
        }
        fn record(&self, event: Event) {
            self.events.lock().unwrap().push(event);
        }
    }

    fn collect(requests: bool, retries: bool) -> Arc<Collect> {
        let c = Arc::new(Collect::default());
        *c.wants.lock().unwrap() = Wants { requests, retries };
        c
    }

    fn requests(c: &Collect) -> Vec<Request> {
        c.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Request(r) => Some(r.clone()),
                Event::Retry(_) => None,
            })
            .collect()
    }

    fn new_session() -> CreateSession {
        CreateSession {
            encryption_key_arn: None,
            metadata: Default::default(),
            tags: Default::default(),
        }
    }

    fn memory() -> Arc<dyn SessionStore> {
        Arc::new(MemoryStore::new(StoreConfig::default()).unwrap())
    }

    #[tokio::test]
    async fn each_operation_is_recorded_once_with_its_session_and_outcome() {
        let rec = collect(true, true);
        let store = Observed::new(memory(), rec.clone(), false);
        let s = store.create_session(new_session()).await.unwrap();
        let (got, asked) = with_request_id(store.get_session(SessionRef::of_id(&s.id))).await;
        got.unwrap();
        let missing = store
            .get_session(SessionRef::of_id("00000000-0000-0000-0000-000000000000"))
            .await;
        assert_eq!(missing.unwrap_err().code, ErrorCode::ResourceNotFound);
        let r = requests(&rec);
        assert_eq!(
            r.iter().map(|r| r.operation).collect::<Vec<_>>(),
            ["CreateSession", "GetSession", "GetSession"]
        );
        // CreateSession names the session it created.
        assert_eq!(r[0].session.as_deref(), Some(s.id.as_str()));
        assert_eq!(r[1].status(), "ok");
        assert_eq!(r[2].status(), "ResourceNotFoundException");
        // An embedded store's request gets an id of its own, the one the caller is told.
        assert_eq!(asked.unwrap(), (r[1].request_id.clone(), 1));
        assert_eq!(
            uuid::Uuid::parse_str(&r[1].request_id)
                .unwrap()
                .get_version_num(),
            4
        );
        assert_ne!(r[1].request_id, r[2].request_id);
        assert!(
            r[1].to_string()
                .starts_with(&format!("GetSession {} ok ", r[1].request_id))
        );
        assert!(r[1].to_string().ends_with(&format!(" ms session {}", s.id)));
    }

    #[tokio::test]
    async fn an_embedded_store_unwatched_is_called_directly() {
        let rec = collect(false, true);
        let store = Observed::new(memory(), rec.clone(), false);
        let (s, asked) = with_request_id(store.create_session(new_session())).await;
        s.unwrap();
        assert!(asked.is_none());
        assert!(rec.events.lock().unwrap().is_empty());
        // Wanted again: recorded again.
        rec.wants.lock().unwrap().requests = true;
        store.list_sessions(PageRequest::default()).await.unwrap();
        assert_eq!(requests(&rec).len(), 1);
    }

    /// A store that behaves like the Bedrock backend: notes a request id per attempt and retries once.
    #[derive(Debug)]
    struct Flaky(Arc<dyn SessionStore>);

    #[async_trait::async_trait]
    impl SessionStore for Flaky {
        async fn create_session(&self, req: CreateSession) -> Result<Session> {
            self.0.create_session(req).await
        }
        async fn get_session(&self, session: SessionRef) -> Result<Session> {
            attempt(Some("req-1"));
            let e = Error::new(ErrorCode::Throttling, "Rate exceeded");
            retrying(1, 3, &e, Duration::from_millis(20));
            attempt(Some("req-2"));
            self.0.get_session(session).await
        }
        async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>> {
            // A request without an answer.
            attempt(None);
            let _ = page;
            Err(Error::internal("cannot reach the service"))
        }
        async fn update_session(&self, req: UpdateSession) -> Result<Session> {
            self.0.update_session(req).await
        }
        async fn end_session(&self, session: SessionRef) -> Result<Session> {
            self.0.end_session(session).await
        }
        async fn delete_session(&self, session: SessionRef) -> Result<()> {
            self.0.delete_session(session).await
        }
        async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
            self.0.create_invocation(req).await
        }
        async fn list_invocations(
            &self,
            session: SessionRef,
            page: PageRequest,
        ) -> Result<Page<Invocation>> {
            self.0.list_invocations(session, page).await
        }
        async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
            attempt(Some("put-1"));
            let sid = req.session.id.clone();
            let check = GetStep {
                session: req.session.clone(),
                invocation_id: req.invocation_id.clone(),
                step_id: "s".into(),
            };
            let _ = nested(
                Operation::GetInvocationStep,
                Some(sid),
                self.get_invocation_step(check),
            )
            .await;
            self.0.put_invocation_step(req).await
        }
        async fn get_invocation_step(&self, req: GetStep) -> Result<Step> {
            attempt(Some("get-1"));
            self.0.get_invocation_step(req).await
        }
        async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>> {
            self.0.list_invocation_steps(req).await
        }
        async fn tag_resource(
            &self,
            arn: ResourceArn,
            tags: std::collections::BTreeMap<String, String>,
        ) -> Result<()> {
            self.0.tag_resource(arn, tags).await
        }
        async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()> {
            self.0.untag_resource(arn, keys).await
        }
        async fn list_tags_for_resource(
            &self,
            arn: ResourceArn,
        ) -> Result<std::collections::BTreeMap<String, String>> {
            self.0.list_tags_for_resource(arn).await
        }
    }

    #[tokio::test]
    async fn a_network_backend_reports_its_ids_attempts_and_retries() {
        let rec = collect(false, true);
        let store = Observed::new(Arc::new(Flaky(memory())), rec.clone(), true);
        let s = store.create_session(new_session()).await.unwrap();
        // Observed even without request records: the caller gets the service's id, and the retry is reported.
        let (got, asked) = with_request_id(store.get_session(SessionRef::of_id(&s.id))).await;
        got.unwrap();
        assert_eq!(asked.unwrap(), ("req-2".to_string(), 2));
        let events = rec.events.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        let Event::Retry(r) = &events[0] else {
            panic!("not a retry: {events:?}")
        };
        assert_eq!(
            (r.operation, r.request_id.as_str()),
            ("GetSession", "req-1")
        );
        assert_eq!(
            (r.attempt, r.max_attempts, r.error),
            (1, 3, ErrorCode::Throttling)
        );
        assert_eq!(r.session.as_deref(), Some(s.id.as_str()));
        assert_eq!(
            r.to_string(),
            format!(
                "GetSession req-1 attempt 1 of 3 failed: ThrottlingException: Rate exceeded; retrying in 20 ms session {}",
                s.id
            )
        );

        *rec.wants.lock().unwrap() = Wants {
            requests: true,
            retries: true,
        };
        rec.events.lock().unwrap().clear();
        // No answer: no id is made up.
        let (_, asked) = with_request_id(store.list_sessions(PageRequest::default())).await;
        assert_eq!(asked.unwrap(), (String::new(), 1));
        // A request made inside another is a record of its own, and leaves the outer one's id alone.
        let inv = store
            .create_invocation(CreateInvocation {
                session: SessionRef::of_id(&s.id),
                invocation_id: None,
                description: None,
            })
            .await
            .unwrap();
        let _ = store
            .put_invocation_step(PutStep {
                session: SessionRef::of_id(&s.id),
                invocation_id: inv.invocation_id.clone(),
                step_id: None,
                time: 1,
                payload: crate::model::Payload {
                    blocks: vec![crate::model::ContentBlock::Text("x".into())],
                },
            })
            .await;
        let r = requests(&rec);
        let seen: Vec<_> = r
            .iter()
            .map(|r| (r.operation, r.request_id.as_str(), r.status()))
            .collect();
        assert_eq!(seen[0], ("ListSessions", "", "InternalServerException"));
        assert!(
            r[0].to_string()
                .starts_with("ListSessions - InternalServerException ")
        );
        assert_eq!(seen[1].0, "CreateInvocation");
        assert_eq!(
            &seen[2..],
            [
                ("GetInvocationStep", "get-1", "ResourceNotFoundException"),
                ("PutInvocationStep", "put-1", "ok")
            ]
        );
    }
}
