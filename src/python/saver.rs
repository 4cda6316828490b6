//! Bindings of the saver core: `NativeSaver` (sync and async doors) and its streaming list cursor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::client::PyNativeClient;
use super::convert::error_to_py;
use super::door::{Door, ToPy, run};
use crate::error::{Error, Result};
use crate::saver::layout::Typed;
use crate::saver::{CheckpointRecord, ListCursor, PutCheckpoint, PutWrites, Saver, SaverOptions};
use crate::store::SessionStore;

/// The arguments of one put_writes call, as Python passes them.
type WritesArgs<'py> = (
    String,
    String,
    String,
    String,
    String,
    Vec<(String, i64, Bound<'py, PyAny>)>,
);

/// What a saver call gives back, turned into Python objects (or an exception) under the GIL.
enum Out {
    Unit,
    Str(String),
    Record(Option<CheckpointRecord>),
    Records(Vec<CheckpointRecord>),
}

fn typed<'py>(py: Python<'py>, t: &Typed) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            t.0.as_str().into_pyobject(py)?.into_any(),
            PyBytes::new(py, &t.1).into_any(),
        ],
    )
}

fn record<'py>(py: Python<'py>, r: &CheckpointRecord) -> PyResult<Bound<'py, PyAny>> {
    let values = match &r.channel_values {
        Some(vals) => {
            let list = PyList::empty(py);
            for (ch, v) in vals {
                list.append(PyTuple::new(
                    py,
                    [
                        ch.as_str().into_pyobject(py)?.into_any(),
                        typed(py, v)?.into_any(),
                    ],
                )?)?;
            }
            list.into_any()
        }
        None => py.None().into_bound(py),
    };
    let writes = PyList::empty(py);
    for w in &r.writes {
        writes.append((
            w.task_id.as_str(),
            w.channel.as_str(),
            typed(py, &w.value)?,
            w.task_path.as_str(),
            w.idx,
        ))?;
    }
    Ok((
        r.thread_id.as_str(),
        r.checkpoint_ns.as_str(),
        r.checkpoint_id.as_str(),
        r.parent_checkpoint_id.as_deref(),
        typed(py, &r.checkpoint)?,
        r.metadata_json.as_str(),
        values,
        writes,
    )
        .into_pyobject(py)?
        .into_any())
}

impl ToPy for Out {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        match self {
            Out::Unit => Ok(py.None().into_bound(py)),
            Out::Str(s) => Ok(s.into_pyobject(py)?.into_any()),
            Out::Record(None) => Ok(py.None().into_bound(py)),
            Out::Record(Some(r)) => record(py, &r),
            Out::Records(rs) => {
                let list = PyList::empty(py);
                for r in &rs {
                    list.append(record(py, r)?)?;
                }
                Ok(list.into_any())
            }
        }
    }
}

fn extract_typed(t: &Bound<'_, PyAny>) -> PyResult<Typed> {
    let (tag, data): (String, Vec<u8>) = t.extract()?;
    Ok(Typed(tag, data))
}

fn typed_values(values: &[(String, Bound<'_, PyAny>)]) -> PyResult<Vec<(String, Typed)>> {
    values
        .iter()
        .map(|(k, v)| Ok((k.clone(), extract_typed(v)?)))
        .collect()
}

/// One put_writes call's arguments as a request.
fn writes_request(args: WritesArgs<'_>) -> PyResult<PutWrites> {
    let (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes) = args;
    Ok(PutWrites {
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        task_id,
        task_path,
        writes: writes
            .iter()
            .map(|(c, i, v)| Ok((c.clone(), *i, extract_typed(v)?)))
            .collect::<PyResult<_>>()?,
    })
}

/// The LangGraph saver's native half: one per saver, shared by its `with_allowlist` copies.
#[pyclass(name = "NativeSaver", frozen, module = "bedrock_sessions._core")]
pub struct PyNativeSaver {
    client: Py<PyNativeClient>,
    saver: Arc<Saver>,
    in_memory: bool,
}

impl PyNativeSaver {
    fn parts(&self) -> PyResult<(Arc<dyn SessionStore>, Arc<Saver>)> {
        Ok((self.client.get().store()?, self.saver.clone()))
    }

    fn door(&self, asynchronous: bool) -> Door {
        Door {
            asynchronous,
            keep_gil: self.in_memory && !asynchronous,
        }
    }
}

#[pymethods]
impl PyNativeSaver {
    /// `group_commit` defaults to on for network backends and off for embedded stores; `compress` to on,
    /// but for a store in memory (see SaverOptions).
    #[new]
    #[pyo3(signature = (client, *, deferred=false, group_commit=None, compress=None))]
    fn new(
        client: Py<PyNativeClient>,
        deferred: bool,
        group_commit: Option<bool>,
        compress: Option<bool>,
    ) -> Self {
        let group_commit = group_commit.unwrap_or_else(|| !client.get().embedded());
        let in_memory = client.get().in_memory();
        let compress = compress.unwrap_or(!in_memory);
        let round_trips = !client.get().embedded();
        PyNativeSaver {
            in_memory,
            client,
            saver: Arc::new(Saver::with_options(SaverOptions {
                deferred,
                group_commit,
                compress,
                round_trips,
            })),
        }
    }

    /// Whether writes return once queued (deferred mode) rather than once stored.
    #[getter]
    fn deferred(&self) -> bool {
        self.saver.is_deferred()
    }

    /// Waits until the queued writes of a thread (of every thread with None) are stored; raises the
    /// failure of a deferred write.
    #[pyo3(signature = (thread_id=None, *, asynchronous=false))]
    fn flush<'py>(
        &self,
        py: Python<'py>,
        thread_id: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Needs no store: a closed client has nothing left to send (its queue failed or was stored).
        let saver = self.saver.clone();
        run(py, self.door(asynchronous), "flush", move || async move {
            saver.flush(thread_id.as_deref()).await.map(|_| Out::Unit)
        })
    }

    /// Whether any thread id string works (a thread index), or only session ids and ARNs.
    #[getter]
    fn thread_index(&self) -> PyResult<bool> {
        Ok(self.client.get().store()?.thread_index().is_some())
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata_json, channel_values, *, asynchronous=false))]
    fn put<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: String,
        parent_checkpoint_id: Option<String>,
        checkpoint: &Bound<'py, PyAny>,
        metadata_json: String,
        channel_values: Vec<(String, Bound<'py, PyAny>)>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = PutCheckpoint {
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            parent_checkpoint_id,
            checkpoint: extract_typed(checkpoint)?,
            metadata_json,
            channel_values: typed_values(&channel_values)?,
        };
        let (store, saver) = self.parts()?;
        run(py, self.door(asynchronous), "put", move || async move {
            if saver.is_deferred() {
                saver.put_deferred(store, req).await.map(|_| Out::Unit)
            } else {
                saver.put(&*store, req).await.map(|_| Out::Unit)
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes, *, asynchronous=false))]
    fn put_writes<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: String,
        task_id: String,
        task_path: String,
        writes: Vec<(String, i64, Bound<'py, PyAny>)>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = writes_request((
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            task_id,
            task_path,
            writes,
        ))?;
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "put_writes",
            move || async move {
                if saver.is_deferred() {
                    saver
                        .put_writes_deferred(store, req)
                        .await
                        .map(|_| Out::Unit)
                } else {
                    saver.put_writes(&*store, req).await.map(|_| Out::Unit)
                }
            },
        )
    }

    /// A checkpoint and buffered writes, `(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes)`
    /// each, stored together (one step when they fit one).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata_json, channel_values, writes, *, asynchronous=false))]
    fn put_with_writes<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: String,
        parent_checkpoint_id: Option<String>,
        checkpoint: &Bound<'py, PyAny>,
        metadata_json: String,
        channel_values: Vec<(String, Bound<'py, PyAny>)>,
        writes: Vec<WritesArgs<'py>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = PutCheckpoint {
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            parent_checkpoint_id,
            checkpoint: extract_typed(checkpoint)?,
            metadata_json,
            channel_values: typed_values(&channel_values)?,
        };
        let writes = writes
            .into_iter()
            .map(writes_request)
            .collect::<PyResult<Vec<_>>>()?;
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "put_with_writes",
            move || async move {
                saver
                    .put_with_writes(store, req, writes)
                    .await
                    .map(|_| Out::Unit)
            },
        )
    }

    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id=None, *, asynchronous=false))]
    fn get_tuple<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "get_tuple",
            move || async move {
                saver
                    .get_tuple(
                        &*store,
                        &thread_id,
                        &checkpoint_ns,
                        checkpoint_id.as_deref(),
                    )
                    .await
                    .map(Out::Record)
            },
        )
    }

    /// Starts a streaming listing; `thread_id=None` lists every thread, `checkpoint_ns=None` every namespace.
    #[pyo3(signature = (thread_id=None, checkpoint_ns=None, before=None))]
    fn list(
        &self,
        thread_id: Option<String>,
        checkpoint_ns: Option<String>,
        before: Option<String>,
    ) -> PyResult<PyListCursor> {
        let (store, saver) = self.parts()?;
        Ok(PyListCursor {
            store,
            saver,
            start: Mutex::new(Some((thread_id, checkpoint_ns, before))),
            cursor: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    #[pyo3(signature = (thread_id, *, asynchronous=false))]
    fn delete_thread<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "delete_thread",
            move || async move {
                saver
                    .delete_thread(&*store, &thread_id)
                    .await
                    .map(|_| Out::Unit)
            },
        )
    }

    #[pyo3(signature = (thread_id, *, asynchronous=false))]
    fn continue_thread<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "continue_thread",
            move || async move {
                saver
                    .continue_thread(&*store, &thread_id)
                    .await
                    .map(Out::Str)
            },
        )
    }

    #[pyo3(signature = (source_thread_id, target_thread_id, *, asynchronous=false))]
    fn copy_thread<'py>(
        &self,
        py: Python<'py>,
        source_thread_id: String,
        target_thread_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "copy_thread",
            move || async move {
                saver
                    .copy_thread(&*store, &source_thread_id, &target_thread_id)
                    .await
                    .map(|_| Out::Unit)
            },
        )
    }

    #[pyo3(signature = (thread_ids, keep_latest, *, asynchronous=false))]
    fn prune<'py>(
        &self,
        py: Python<'py>,
        thread_ids: Vec<String>,
        keep_latest: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(py, self.door(asynchronous), "prune", move || async move {
            saver
                .prune(&*store, &thread_ids, keep_latest)
                .await
                .map(|_| Out::Unit)
        })
    }

    #[pyo3(signature = (run_ids, *, asynchronous=false))]
    fn delete_for_runs<'py>(
        &self,
        py: Python<'py>,
        run_ids: Vec<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "delete_for_runs",
            move || async move {
                saver
                    .delete_for_runs(&*store, &run_ids)
                    .await
                    .map(|_| Out::Unit)
            },
        )
    }

    /// The session of a thread id (thread index, then session id or ARN); with `create`, a new session bound
    /// to it. None when the thread has no session and `create` is false.
    #[pyo3(signature = (thread_id, create=false, *, asynchronous=false))]
    fn resolve_thread<'py>(
        &self,
        py: Python<'py>,
        thread_id: String,
        create: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "resolve_thread",
            move || async move {
                match saver.resolve(&*store, &thread_id, create).await? {
                    Some(sid) => Ok(Out::Str(sid)),
                    None => Ok(Out::Record(None)),
                }
            },
        )
    }

    #[pyo3(signature = (metadata=None, tags=None, *, asynchronous=false))]
    fn create_thread<'py>(
        &self,
        py: Python<'py>,
        metadata: Option<BTreeMap<String, String>>,
        tags: Option<BTreeMap<String, String>>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let metadata = metadata.unwrap_or_default();
        let tags = tags.unwrap_or_default();
        crate::model::check_metadata("metadata", &metadata)
            .map_err(|e| error_to_py(py, &e, "create_thread", ""))?;
        if !tags.is_empty() {
            crate::model::check_tags("tags", &tags)
                .map_err(|e| error_to_py(py, &e, "create_thread", ""))?;
        }
        let (store, saver) = self.parts()?;
        run(
            py,
            self.door(asynchronous),
            "create_thread",
            move || async move {
                saver
                    .create_thread(&*store, metadata, tags)
                    .await
                    .map(Out::Str)
            },
        )
    }
}

type StartArgs = (Option<String>, Option<String>, Option<String>);

/// A streaming `list`: each `next` loads the next batch of checkpoints concurrently.
#[pyclass(name = "ListCursor", frozen, module = "bedrock_sessions._core")]
pub struct PyListCursor {
    store: Arc<dyn SessionStore>,
    saver: Arc<Saver>,
    start: Mutex<Option<StartArgs>>,
    cursor: Arc<tokio::sync::Mutex<Option<ListCursor>>>,
}

async fn next_batch(
    store: Arc<dyn SessionStore>,
    saver: Arc<Saver>,
    start: Option<StartArgs>,
    cursor: Arc<tokio::sync::Mutex<Option<ListCursor>>>,
    n: usize,
) -> Result<Out> {
    let mut guard = cursor.lock().await;
    if guard.is_none() {
        let Some((thread, ns, before)) = start else {
            return Err(Error::internal("list cursor used after an error"));
        };
        *guard = Some(
            saver
                .list_start(&*store, thread.as_deref(), ns.as_deref(), before.as_deref())
                .await?,
        );
    }
    let c = guard.as_mut().expect("started");
    saver.list_next(&*store, c, n).await.map(Out::Records)
}

#[pymethods]
impl PyListCursor {
    /// The next batch of records (an empty list when the listing is over).
    #[pyo3(signature = (n=16, *, asynchronous=false))]
    fn next<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let start = self.start.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (store, saver, cursor) = (self.store.clone(), self.saver.clone(), self.cursor.clone());
        let door = Door {
            asynchronous,
            keep_gil: false,
        };
        run(py, door, "list", move || {
            next_batch(store, saver, start, cursor, n.max(1))
        })
    }
}
