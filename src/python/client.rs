//! The native client behind `SessionClient` and `AsyncSessionClient`: one store handle, a sync door
//! (blocks on the runtime with the GIL released) and an async door (an asyncio awaitable), both over
//! the same async operation code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{datetime_to_us, error_to_py, py_to_value, us_to_datetime, value_to_py};
use super::log;
use super::runtime::{ForkAwareRuntime, InFlight, runtime};
use crate::aws::{BedrockConfig, RetryPolicy};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::crypto::KeySourceSpec;
use crate::error::Error;
use crate::observe::{Observed, with_request_id};
use crate::ops::{self, Operation};
use crate::store::memory::MemoryStore;
use crate::store::retention::{Erasure, SWEEP_INTERVAL, sweep_every};
use crate::store::sqlite::SqliteStore;
use crate::store::{Durability, SessionStore, StoreConfig};
use crate::value::Value;

/// A clock for tests: moves only when told to.
#[pyclass(name = "ManualClock", frozen, module = "bedrock_sessions._core")]
pub struct PyManualClock {
    pub inner: Arc<ManualClock>,
}

#[pymethods]
impl PyManualClock {
    #[new]
    #[pyo3(signature = (start=None))]
    fn new(start: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let us = match start {
            None => SystemClock.now_us(),
            Some(dt) => datetime_to_us(dt)?
                .ok_or_else(|| PyValueError::new_err("start must be a datetime"))?,
        };
        Ok(PyManualClock {
            inner: Arc::new(ManualClock::new(us)),
        })
    }

    /// Moves the clock forward by `seconds` (may be fractional; negative moves it back).
    fn advance(&self, seconds: f64) -> PyResult<()> {
        if !seconds.is_finite() {
            return Err(PyValueError::new_err("seconds must be finite"));
        }
        self.inner
            .advance((seconds * crate::clock::MICROS_PER_SEC as f64).round() as i64);
        Ok(())
    }

    /// Sets the clock to a datetime (naive means UTC).
    fn set(&self, when: &Bound<'_, PyAny>) -> PyResult<()> {
        let us = datetime_to_us(when)?
            .ok_or_else(|| PyValueError::new_err("when must be a datetime"))?;
        self.inner.set(us);
        Ok(())
    }

    /// The clock's time as a UTC datetime.
    fn now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        us_to_datetime(py, self.inner.now_us())
    }
}

#[derive(Debug, Clone)]
enum Spec {
    File(String),
    Memory,
    Bedrock(Box<BedrockConfig>),
}

#[derive(Debug)]
struct Handle {
    pid: u32,
    store: Option<Stores>,
}

/// A client's store: as our calls use it (every request recorded, `crate::observe`), and as the local server
/// serves it (an embedded store's requests are the server's, not ours; the same store for Bedrock).
#[derive(Debug, Clone)]
struct Stores {
    observed: Arc<dyn SessionStore>,
    served: Arc<dyn SessionStore>,
    /// An embedded store's erasure of sessions past retention (None on Bedrock: the service's own).
    erasure: Option<Arc<dyn Erasure>>,
    /// The task that sweeps the store on a schedule (when it has a retention period); stopped with the store.
    _sweeper: Option<Arc<Sweeper>>,
}

#[derive(Debug)]
struct Sweeper(tokio::task::AbortHandle);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[pyclass(name = "NativeClient", frozen, module = "bedrock_sessions._core")]
pub struct PyNativeClient {
    spec: Spec,
    cfg: StoreConfig,
    /// An embedded store's key source, made anew by each process that opens the store.
    keys: Option<KeySourceSpec>,
    handle: Mutex<Handle>,
}

fn open(spec: &Spec, cfg: &StoreConfig, keys: Option<&KeySourceSpec>) -> PyResult<Stores> {
    let mut cfg = cfg.clone();
    if let Some(k) = keys {
        cfg.key_source = Some(
            runtime()
                .block_on(k.build(&cfg.region))
                .map_err(PyValueError::new_err)?,
        );
    }
    fn embedded<S: SessionStore + Erasure + 'static>(s: S, retention: bool) -> Stores {
        let s = Arc::new(s);
        let erasure: Arc<dyn Erasure> = s.clone();
        let sweeper = retention.then(|| sweeper(&erasure));
        Stores {
            observed: Arc::new(Observed::new(s.clone(), log::recorder(), false)),
            served: s,
            erasure: Some(erasure),
            _sweeper: sweeper,
        }
    }
    let retention = cfg.retention.is_some();
    let stores = match spec {
        Spec::File(path) => SqliteStore::open(path, cfg).map(|s| embedded(s, retention)),
        Spec::Memory => MemoryStore::new(cfg).map(|s| embedded(s, retention)),
        Spec::Bedrock(b) => runtime()
            .block_on(crate::aws::open(b, Some(log::recorder())))
            .inspect(|_| log::retrying_store_opened())
            .map(|s| Stores {
                observed: s.clone(),
                served: s,
                erasure: None,
                _sweeper: None,
            }),
    };
    stores.map_err(PyOSError::new_err)
}

/// Sweeps `store` every [`SWEEP_INTERVAL`] on this process's runtime; it holds the store weakly and ends when the
/// store is released (or the handle dropped).
fn sweeper(store: &Arc<dyn Erasure>) -> Arc<Sweeper> {
    let task = runtime().spawn(sweep_every(Arc::downgrade(store), SWEEP_INTERVAL));
    Arc::new(Sweeper(task.abort_handle()))
}

/// The key source of the options of `SessionClient.local()`/`.memory()`: a keyring file, or KMS.
fn key_spec(
    keyring: Option<std::path::PathBuf>,
    kms: bool,
    kms_key: Option<String>,
    kms_region: Option<String>,
    kms_endpoint_url: Option<String>,
) -> PyResult<Option<KeySourceSpec>> {
    let wants_kms = kms || kms_key.is_some();
    if !wants_kms && (kms_region.is_some() || kms_endpoint_url.is_some()) {
        return Err(PyValueError::new_err(
            "kms_region and kms_endpoint_url configure KMS: give kms_key=ARN (or kms=True) too",
        ));
    }
    match (keyring, wants_kms) {
        (Some(_), true) => Err(PyValueError::new_err(
            "a store has one key source: give keyring= or KMS (kms_key=, kms=True), not both",
        )),
        (Some(path), false) => Ok(Some(KeySourceSpec::Keyring(path))),
        (None, true) => Ok(Some(KeySourceSpec::Kms {
            default_key: kms_key,
            region: kms_region,
            endpoint_url: kms_endpoint_url,
        })),
        (None, false) => Ok(None),
    }
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Adds boto3's `ResponseMetadata` to a response.
fn with_metadata(v: Value, status: u16, request_id: String, attempts: u32) -> Value {
    let meta = Value::Map(vec![
        ("RequestId".into(), Value::Str(request_id)),
        ("HTTPStatusCode".into(), Value::Int(status as i64)),
        ("HTTPHeaders".into(), Value::Map(Vec::new())),
        (
            "RetryAttempts".into(),
            Value::Int(attempts.saturating_sub(1).into()),
        ),
    ]);
    match v {
        Value::Map(mut items) => {
            items.push(("ResponseMetadata".into(), meta));
            Value::Map(items)
        }
        other => other,
    }
}

/// The outcome of a call, turned into a Python value or exception under the GIL: the response with the
/// request's id and retries (`ResponseMetadata`), or the error raised with them.
struct Outcome {
    op: Operation,
    result: Result<Value, Error>,
    /// The request's id and attempts (None: no request was recorded, a new id is made).
    request: Option<(String, u32)>,
}

impl<'py> IntoPyObject<'py> for Outcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        log::drain(py);
        let (request_id, attempts) = self.request.unwrap_or_else(|| (new_request_id(), 1));
        match self.result {
            Ok(v) => value_to_py(
                py,
                &with_metadata(v, self.op.success_status(), request_id, attempts),
            ),
            Err(e) => Err(error_to_py(py, &e, self.op.name(), &request_id)),
        }
    }
}

/// A sweep's outcome, raised or returned under the GIL.
struct Swept(Result<usize, Error>);

impl<'py> IntoPyObject<'py> for Swept {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        match self.0 {
            Ok(n) => Ok(n.into_pyobject(py)?.into_any()),
            Err(e) => Err(error_to_py(py, &e, "Sweep", &new_request_id())),
        }
    }
}

impl PyNativeClient {
    /// The embedded store's erasure (Bedrock erases its sessions itself).
    fn erasure(&self) -> PyResult<Arc<dyn Erasure>> {
        self.stores()?.erasure.ok_or_else(|| {
            PyValueError::new_err(
                "sweep() erases an embedded store's expired sessions; Amazon Bedrock deletes its own",
            )
        })
    }

    /// The store's clock (a ManualClock in tests; the system clock otherwise).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.cfg.clock.clone()
    }

    /// Whether the store is embedded (in this process), not a network service.
    pub fn embedded(&self) -> bool {
        matches!(self.spec, Spec::File(_) | Spec::Memory)
    }

    /// Whether the store lives in this process's memory (no I/O: its operations are microseconds of CPU).
    pub fn in_memory(&self) -> bool {
        matches!(self.spec, Spec::Memory)
    }

    /// The store of this process: a forked child reopens the file (the parent's connections must not be
    /// used or closed there, so they are leaked). An in-memory store is the child's own copy.
    pub fn store(&self) -> PyResult<Arc<dyn SessionStore>> {
        self.stores().map(|s| s.observed)
    }

    /// The store as the local server serves it (its requests are not ours to record).
    pub fn served_store(&self) -> PyResult<Arc<dyn SessionStore>> {
        self.stores().map(|s| s.served)
    }

    fn stores(&self) -> PyResult<Stores> {
        let pid = std::process::id();
        let mut h = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let Some(store) = h.store.clone() else {
            return Err(PyRuntimeError::new_err("the session client is closed"));
        };
        if h.pid == pid {
            return Ok(store);
        }
        let fresh = match self.spec {
            // The child's copy of the memory, with a sweeper of its own (the parent's task is not in the child).
            Spec::Memory => {
                std::mem::forget(h.store.take());
                let sweeper = store
                    .erasure
                    .as_ref()
                    .filter(|_| self.cfg.retention.is_some())
                    .map(sweeper);
                Stores {
                    _sweeper: sweeper,
                    ..store
                }
            }
            // A child rebuilds its SQLite connections and its HTTP client (the parent's pool is not its own).
            Spec::File(_) | Spec::Bedrock(_) => {
                std::mem::forget(h.store.take());
                open(&self.spec, &self.cfg, self.keys.as_ref())?
            }
        };
        h.pid = pid;
        h.store = Some(fresh.clone());
        Ok(fresh)
    }

    fn build(spec: Spec, cfg: StoreConfig, keys: Option<KeySourceSpec>) -> PyResult<Self> {
        let store = open(&spec, &cfg, keys.as_ref())?;
        Ok(PyNativeClient {
            spec,
            cfg,
            keys,
            handle: Mutex::new(Handle {
                pid: std::process::id(),
                store: Some(store),
            }),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn config(
    region: &str,
    account_id: &str,
    idle_timeout: f64,
    max_steps_per_session: u64,
    max_step_bytes: usize,
    default_page_size: u32,
    busy_timeout: f64,
    durability: &str,
    clock: Option<&Bound<'_, PyManualClock>>,
    retention_days: Option<f64>,
) -> PyResult<StoreConfig> {
    let secs = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(PyValueError::new_err(format!(
                "{name} must be a non-negative number of seconds"
            )))
        }
    };
    let durability = match durability {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => {
            return Err(PyValueError::new_err(format!(
                "durability must be 'full' or 'normal', not {other:?}"
            )));
        }
    };
    let clock: Arc<dyn Clock> = match clock {
        Some(c) => c.get().inner.clone(),
        None => Arc::new(SystemClock),
    };
    let retention = match retention_days {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 => Some(Duration::from_secs_f64(d * 86_400.0)),
        Some(_) => {
            return Err(PyValueError::new_err(
                "retention_days must be a positive number of days (None keeps sessions until deleted)",
            ));
        }
    };
    let cfg = StoreConfig {
        region: region.to_string(),
        account_id: account_id.to_string(),
        idle_timeout: secs("idle_timeout", idle_timeout)?,
        max_steps_per_session,
        max_step_bytes,
        default_page_size,
        busy_timeout: secs("busy_timeout", busy_timeout)?,
        durability,
        clock,
        retention,
        ..StoreConfig::default()
    };
    cfg.validate().map_err(PyValueError::new_err)?;
    Ok(cfg)
}

#[pymethods]
impl PyNativeClient {
    /// Opens the embedded store in a SQLite file (created if missing).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path, *, region="us-east-1", account_id="000000000000",
        idle_timeout=3600.0, max_steps_per_session=1000, max_step_bytes=52_428_800, default_page_size=10,
        busy_timeout=30.0, durability="full", clock=None, keyring=None, kms=false, kms_key=None,
        kms_region=None, kms_endpoint_url=None, retention_days=None))]
    fn open_local(
        py: Python<'_>,
        path: String,
        region: &str,
        account_id: &str,
        idle_timeout: f64,
        max_steps_per_session: u64,
        max_step_bytes: usize,
        default_page_size: u32,
        busy_timeout: f64,
        durability: &str,
        clock: Option<&Bound<'_, PyManualClock>>,
        keyring: Option<std::path::PathBuf>,
        kms: bool,
        kms_key: Option<String>,
        kms_region: Option<String>,
        kms_endpoint_url: Option<String>,
        retention_days: Option<f64>,
    ) -> PyResult<Self> {
        let keys = key_spec(keyring, kms, kms_key, kms_region, kms_endpoint_url)?;
        let cfg = config(
            region,
            account_id,
            idle_timeout,
            max_steps_per_session,
            max_step_bytes,
            default_page_size,
            busy_timeout,
            durability,
            clock,
            retention_days,
        )?;
        py.detach(|| Self::build(Spec::File(path), cfg, keys))
    }

    /// Opens an embedded store that lives in memory.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, region="us-east-1", account_id="000000000000",
        idle_timeout=3600.0, max_steps_per_session=1000, max_step_bytes=52_428_800, default_page_size=10,
        clock=None, keyring=None, kms=false, kms_key=None, kms_region=None, kms_endpoint_url=None,
        retention_days=None))]
    fn open_memory(
        py: Python<'_>,
        region: &str,
        account_id: &str,
        idle_timeout: f64,
        max_steps_per_session: u64,
        max_step_bytes: usize,
        default_page_size: u32,
        clock: Option<&Bound<'_, PyManualClock>>,
        keyring: Option<std::path::PathBuf>,
        kms: bool,
        kms_key: Option<String>,
        kms_region: Option<String>,
        kms_endpoint_url: Option<String>,
        retention_days: Option<f64>,
    ) -> PyResult<Self> {
        let keys = key_spec(keyring, kms, kms_key, kms_region, kms_endpoint_url)?;
        let cfg = config(
            region,
            account_id,
            idle_timeout,
            max_steps_per_session,
            max_step_bytes,
            default_page_size,
            30.0,
            "full",
            clock,
            retention_days,
        )?;
        py.detach(|| Self::build(Spec::Memory, cfg, keys))
    }

    /// Opens the Amazon Bedrock backend (or any endpoint speaking its API) through the AWS SDK. Unset
    /// credentials come from the standard chain (environment, profile, SSO, container, instance).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, region=None, profile=None, access_key_id=None, secret_access_key=None,
        session_token=None, endpoint_url=None, connect_timeout=None, read_timeout=None, max_attempts=5,
        total_timeout=60.0, thread_index=None, dynamodb_endpoint_url=None))]
    fn open_bedrock(
        py: Python<'_>,
        region: Option<String>,
        profile: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        endpoint_url: Option<String>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        max_attempts: u32,
        total_timeout: f64,
        thread_index: Option<String>,
        dynamodb_endpoint_url: Option<String>,
    ) -> PyResult<Self> {
        let secs = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(PyValueError::new_err(format!(
                    "{name} must be a positive number of seconds"
                )))
            }
        };
        if max_attempts == 0 {
            return Err(PyValueError::new_err("max_attempts must be at least 1"));
        }
        let cfg = BedrockConfig {
            region,
            profile,
            access_key_id,
            secret_access_key,
            session_token,
            endpoint_url,
            connect_timeout: connect_timeout
                .map(|v| secs("connect_timeout", v))
                .transpose()?,
            read_timeout: read_timeout.map(|v| secs("read_timeout", v)).transpose()?,
            retry: RetryPolicy {
                max_attempts,
                total_timeout: secs("total_timeout", total_timeout)?,
                ..RetryPolicy::default()
            },
            thread_index,
            dynamodb_endpoint_url,
        };
        let spec = Spec::Bedrock(Box::new(cfg));
        let store = py.detach(|| open(&spec, &StoreConfig::default(), None))?;
        Ok(PyNativeClient {
            spec,
            cfg: StoreConfig::default(),
            keys: None,
            handle: Mutex::new(Handle {
                pid: std::process::id(),
                store: Some(store),
            }),
        })
    }

    /// Runs an operation (AWS name, e.g. "CreateSession") with boto3's keyword arguments; blocks with the
    /// GIL released.
    fn call<'py>(
        &self,
        py: Python<'py>,
        operation: &str,
        params: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = Operation::from_name(operation)
            .ok_or_else(|| PyValueError::new_err(format!("unknown operation {operation:?}")))?;
        let input = py_to_value(params.as_any())?;
        let store = self.store()?;
        log::refresh(py);
        // An embedded store's request has no id unless it is recorded: the response gets a new one.
        let observed = !self.embedded() || log::requests_wanted();
        let unrecorded = (!observed).then(|| (new_request_id(), 1));
        let rt = runtime();
        let (result, request) = py.detach(|| {
            crate::store::sqlite::on_caller_thread(|| {
                let dispatch = ops::dispatch(&*store, op, input);
                if observed {
                    rt.block_on(with_request_id(dispatch))
                } else {
                    (rt.block_on(dispatch), unrecorded)
                }
            })
        });
        Outcome {
            op,
            result,
            request,
        }
        .into_pyobject(py)
    }

    /// Like `call`, but returns an awaitable for the running asyncio loop.
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        operation: &str,
        params: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = Operation::from_name(operation)
            .ok_or_else(|| PyValueError::new_err(format!("unknown operation {operation:?}")))?;
        let input = py_to_value(params.as_any())?;
        let store = self.store()?;
        log::refresh(py);
        let in_flight = InFlight::start();
        pyo3_async_runtimes::generic::future_into_py::<ForkAwareRuntime, _, _>(py, async move {
            let (result, request) = with_request_id(ops::dispatch(&*store, op, input)).await;
            drop(in_flight);
            Ok(Outcome {
                op,
                result,
                request,
            })
        })
    }

    /// Erases the embedded store's sessions past their retention period now (the store also does it when it
    /// opens and every hour); returns how many it erased. Blocks with the GIL released.
    fn sweep(&self, py: Python<'_>) -> PyResult<usize> {
        let erasure = self.erasure()?;
        let rt = runtime();
        py.detach(|| rt.block_on(erasure.sweep()))
            .map_err(|e| error_to_py(py, &e, "Sweep", &new_request_id()))
    }

    /// Like `sweep`, but returns an awaitable for the running asyncio loop.
    fn sweep_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let erasure = self.erasure()?;
        let in_flight = InFlight::start();
        pyo3_async_runtimes::generic::future_into_py::<ForkAwareRuntime, _, _>(py, async move {
            let result = erasure.sweep().await;
            drop(in_flight);
            Ok(Swept(result))
        })
    }

    /// Releases the store (connections close once in-flight calls finish). Idempotent.
    fn close(&self) {
        let mut h = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if h.pid == std::process::id() {
            h.store = None;
        } else {
            std::mem::forget(h.store.take());
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store
            .is_none()
    }

    /// The database file, or None in memory.
    #[getter]
    fn path(&self) -> Option<String> {
        match &self.spec {
            Spec::File(p) => Some(p.clone()),
            Spec::Memory | Spec::Bedrock(_) => None,
        }
    }

    /// "local", "memory" or "bedrock".
    #[getter]
    fn backend(&self) -> &'static str {
        match &self.spec {
            Spec::File(_) => "local",
            Spec::Memory => "memory",
            Spec::Bedrock(_) => "bedrock",
        }
    }

    /// The endpoint of the Bedrock backend, if one was given.
    #[getter]
    fn endpoint_url(&self) -> Option<String> {
        match &self.spec {
            Spec::Bedrock(b) => b.endpoint_url.clone(),
            _ => None,
        }
    }

    #[getter]
    fn region(&self) -> PyResult<String> {
        match &self.spec {
            Spec::Bedrock(b) => Ok(b.region.clone().unwrap_or_else(|| {
                std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_default()
            })),
            _ => Ok(self.cfg.region.clone()),
        }
    }

    #[getter]
    fn account_id(&self) -> String {
        self.cfg.account_id.clone()
    }
}
