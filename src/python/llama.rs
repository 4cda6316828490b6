//! Bindings of the LlamaIndex stores' engine (`crate::llama`): `NativeChatLog` and `NativeWorkflowLog`,
//! each with sync and async doors. Messages cross as the JSON of their `model_dump(mode="json")`.

use std::future::Future;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::client::{PyManualClock, PyNativeClient};
use super::door::{Door, ToPy, run};
use crate::clock::Clock;
use crate::llama::Generations;
use crate::llama::chat::{ChatLog, ChatOptions, Message, Op, OpResult, Select};
use crate::llama::view::Entry;
use crate::llama::workflow::WorkflowLog;
use crate::store::SessionStore;

/// What a LlamaIndex call gives back.
enum Out {
    Nothing,
    Count(usize),
    Text(Option<String>),
    Texts(Vec<String>),
    One(Option<Message>),
    Messages(Vec<Message>),
}

impl ToPy for Out {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(match self {
            Out::Nothing => py.None().into_bound(py),
            Out::Count(n) => n.into_pyobject(py)?.into_any(),
            Out::Text(t) => t.into_pyobject(py)?.into_any(),
            Out::Texts(t) => PyList::new(py, t)?.into_any(),
            Out::One(m) => m.into_pyobject(py)?.into_any(),
            Out::Messages(ms) => PyList::new(py, ms)?.into_any(),
        })
    }
}

impl From<OpResult> for Out {
    fn from(r: OpResult) -> Self {
        match r {
            OpResult::Nothing => Out::Nothing,
            OpResult::One(m) => Out::One(m),
            OpResult::List(ms) => Out::Messages(ms),
        }
    }
}

/// The clock a store plans idle expiry with: the caller's ManualClock, else the client's.
fn clock_of(client: &PyNativeClient, clock: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<dyn Clock>> {
    match clock {
        None => Ok(client.clock()),
        Some(c) if c.is_none() => Ok(client.clock()),
        Some(c) => match c.cast::<PyManualClock>() {
            Ok(m) => Ok(m.get().inner.clone()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "clock must be a bedrock_sessions ManualClock (got {})",
                c.get_type().name()?
            ))),
        },
    }
}

/// The parts every call needs.
struct Native<T> {
    client: Py<PyNativeClient>,
    log: Arc<T>,
    in_memory: bool,
}

impl<T> Native<T> {
    fn new(client: Py<PyNativeClient>, log: T) -> Self {
        let in_memory = client.get().in_memory();
        Native {
            client,
            log: Arc::new(log),
            in_memory,
        }
    }

    fn parts(&self) -> PyResult<(Arc<dyn SessionStore>, Arc<T>)> {
        Ok((self.client.get().store()?, self.log.clone()))
    }

    fn door(&self, asynchronous: bool) -> Door {
        Door {
            asynchronous,
            keep_gil: self.in_memory && !asynchronous,
        }
    }

    /// Runs `f` on the store and the engine through the door `asynchronous` picks.
    fn call<'py, F, Fut>(
        &self,
        py: Python<'py>,
        asynchronous: bool,
        op: &'static str,
        f: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Arc<dyn SessionStore>, Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = crate::error::Result<Out>> + Send + 'static,
    {
        let (store, log) = self.parts()?;
        run(py, self.door(asynchronous), op, move || f(store, log))
    }
}

fn with_status<'a>(
    entries: &'a [Entry],
    status: &'a Option<String>,
) -> impl Iterator<Item = &'a Entry> {
    entries
        .iter()
        .filter(move |e| status.as_deref().is_none_or(|s| &*e.status == s))
}

/// A namespace's chat logs (`SessionChatStore`, `SessionDBChatStore`).
#[pyclass(name = "NativeChatLog", frozen, module = "bedrock_sessions._core")]
pub struct PyChatLog {
    native: Native<ChatLog>,
}

impl PyChatLog {
    fn write<'py>(
        &self,
        py: Python<'py>,
        key: String,
        op: Op,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "PutInvocationStep",
            move |store, log| async move { log.write(&*store, &key, &op).await.map(Out::from) },
        )
    }
}

#[pymethods]
impl PyChatLog {
    #[new]
    #[pyo3(signature = (client, namespace, *, max_staleness, snapshot_every, max_steps_per_session, max_step_bytes, idle_timeout, clock=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        client: Py<PyNativeClient>,
        namespace: &str,
        max_staleness: f64,
        snapshot_every: u64,
        max_steps_per_session: u64,
        max_step_bytes: usize,
        idle_timeout: f64,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let clock = clock_of(client.get(), clock)?;
        let opts = ChatOptions {
            max_staleness,
            snapshot_every: snapshot_every.max(1),
            max_steps_per_session,
            max_step_bytes,
            idle_timeout_ms: (idle_timeout * 1000.0) as i64,
        };
        let log = ChatLog::new(Generations::new("chat", namespace, clock), opts);
        Ok(PyChatLog {
            native: Native::new(client, log),
        })
    }

    /// The key's messages of a status (all with None), after `offset`, at most `limit`: (id, status, JSON).
    #[pyo3(signature = (key, status=None, offset=None, limit=None, *, asynchronous=false))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        key: String,
        status: Option<String>,
        offset: Option<i64>,
        limit: Option<i64>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "GetInvocationStep",
            move |store, log| async move {
                let st = log.read(&*store, &key).await?;
                let skip = offset.filter(|o| *o > 0).unwrap_or(0) as usize;
                let take = limit.filter(|l| *l >= 0).map_or(usize::MAX, |l| l as usize);
                let chosen = with_status(&st.view.entries, &status).skip(skip).take(take);
                st.messages(chosen).map(Out::Messages)
            },
        )
    }

    /// The number of the key's messages of a status (all with None).
    #[pyo3(signature = (key, status=None, *, asynchronous=false))]
    fn count<'py>(
        &self,
        py: Python<'py>,
        key: String,
        status: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "ListInvocationSteps",
            move |store, log| async move {
                let st = log.read(&*store, &key).await?;
                Ok(Out::Count(with_status(&st.view.entries, &status).count()))
            },
        )
    }

    /// The session that holds the key's messages now (None if the key has none).
    fn session_of<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            false,
            "ListInvocationSteps",
            move |store, log| async move { Ok(Out::Text(log.read(&*store, &key).await?.sid)) },
        )
    }

    /// The namespace's keys with messages (`present`: also keys set to no messages).
    #[pyo3(signature = (present, *, asynchronous=false))]
    fn keys<'py>(
        &self,
        py: Python<'py>,
        present: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "ListSessions",
            move |store, log| async move {
                let states = log.keys(&*store).await?;
                Ok(Out::Texts(
                    states
                        .into_iter()
                        .filter(|st| !st.view.entries.is_empty() || (present && st.view.present))
                        .map(|st| st.key)
                        .collect(),
                ))
            },
        )
    }

    /// Adds messages (JSON) with a status, at the end or at `position`.
    #[pyo3(signature = (key, messages, status, position=None, *, asynchronous=false))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        key: String,
        messages: Vec<String>,
        status: String,
        position: Option<i64>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.write(py, key, Op::Add(messages, status, position), asynchronous)
    }

    /// Replaces the key's messages.
    #[pyo3(signature = (key, messages, status, *, asynchronous=false))]
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        messages: Vec<String>,
        status: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.write(py, key, Op::Set(messages, status), asynchronous)
    }

    /// Removes the messages one of `id`, `position`, `status` or `oldest` (active ones) selects and returns
    /// them (`one`: the first, or None).
    #[pyo3(signature = (key, *, id=None, position=None, status=None, oldest=None, one=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn remove<'py>(
        &self,
        py: Python<'py>,
        key: String,
        id: Option<u64>,
        position: Option<i64>,
        status: Option<String>,
        oldest: Option<i64>,
        one: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let select = match (id, position, status, oldest) {
            (Some(i), None, None, None) => Select::Id(i),
            (None, Some(p), None, None) => Select::Position(p),
            (None, None, Some(s), None) => Select::Status(s),
            (None, None, None, Some(n)) => Select::OldestActive(n.max(0) as usize),
            _ => {
                return Err(PyTypeError::new_err(
                    "remove takes one of id, position, status, oldest",
                ));
            }
        };
        self.write(py, key, Op::Remove(select, one), asynchronous)
    }

    /// Removes every message (the key stops existing); returns them, or None when there were none.
    #[pyo3(signature = (key, *, asynchronous=false))]
    fn clear<'py>(
        &self,
        py: Python<'py>,
        key: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.write(py, key, Op::Clear, asynchronous)
    }

    /// Archives the oldest `n` active messages and returns them.
    #[pyo3(signature = (key, n, *, asynchronous=false))]
    fn archive<'py>(
        &self,
        py: Python<'py>,
        key: String,
        n: i64,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.write(py, key, Op::Archive(n.max(0) as usize), asynchronous)
    }

    /// Drops what this process has cached (of one key, or all).
    #[pyo3(signature = (key=None))]
    fn forget(&self, key: Option<&str>) {
        self.native.log.forget(key);
    }
}

/// A namespace's saved workflow contexts (`SessionWorkflowStore`).
#[pyclass(name = "NativeWorkflowLog", frozen, module = "bedrock_sessions._core")]
pub struct PyWorkflowLog {
    native: Native<WorkflowLog>,
}

#[pymethods]
impl PyWorkflowLog {
    #[new]
    #[pyo3(signature = (client, namespace, *, max_step_bytes, clock=None))]
    fn new(
        client: Py<PyNativeClient>,
        namespace: &str,
        max_step_bytes: usize,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let clock = clock_of(client.get(), clock)?;
        let log = WorkflowLog::new(
            Generations::new("workflow", namespace, clock),
            max_step_bytes,
        );
        Ok(PyWorkflowLog {
            native: Native::new(client, log),
        })
    }

    /// Stores a save of the run: the context's JSON, or None for a tombstone.
    #[pyo3(signature = (key, run_id, data, *, asynchronous=false))]
    fn save<'py>(
        &self,
        py: Python<'py>,
        key: String,
        run_id: String,
        data: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "PutInvocationStep",
            move |store, log| async move {
                log.save(&*store, &key, &run_id, data.as_deref())
                    .await
                    .map(|_| Out::Nothing)
            },
        )
    }

    /// The JSON of the run's newest save, or None.
    #[pyo3(signature = (key, run_id, *, asynchronous=false))]
    fn load<'py>(
        &self,
        py: Python<'py>,
        key: String,
        run_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.native.call(
            py,
            asynchronous,
            "GetInvocationStep",
            move |store, log| async move { log.load(&*store, &key, &run_id).await.map(Out::Text) },
        )
    }
}
