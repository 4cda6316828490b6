//! How a native call reaches Python: through the sync door (the GIL released while it runs, or kept for
//! the in-memory store, whose calls are microseconds) or the async door (an awaitable on this process's
//! runtime). The saver's and the LlamaIndex stores' bindings share it.

use std::future::Future;

use pyo3::prelude::*;

use super::convert::error_to_py;
use super::runtime::{ForkAwareRuntime, InFlight, runtime};
use crate::error::Result;

/// A call's result, turned into a Python object under the GIL.
pub(super) trait ToPy: Send + 'static {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>>;
}

/// What a call gives back: its result, or the error raised as the operation `op`'s.
struct Outcome<T> {
    op: &'static str,
    result: Result<T>,
}

impl<'py, T: ToPy> IntoPyObject<'py> for Outcome<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> std::result::Result<Self::Output, Self::Error> {
        // The records of the call's requests go to `logging` here, where the GIL is held anyway.
        super::log::drain(py);
        match self.result {
            Err(e) => Err(error_to_py(py, &e, self.op, "")),
            Ok(v) => v.to_py(py),
        }
    }
}

/// How a call is run: sync or async, and (sync) whether the GIL is kept.
#[derive(Clone, Copy)]
pub(super) struct Door {
    pub asynchronous: bool,
    pub keep_gil: bool,
}

/// Runs a call through its door: its value (sync) or an awaitable of it (async).
pub(super) fn run<'py, T, F, Fut>(
    py: Python<'py>,
    door: Door,
    op: &'static str,
    f: F,
) -> PyResult<Bound<'py, PyAny>>
where
    T: ToPy,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    super::log::refresh(py);
    if door.asynchronous {
        let in_flight = InFlight::start();
        pyo3_async_runtimes::generic::future_into_py::<ForkAwareRuntime, _, _>(py, async move {
            let result = f().await;
            drop(in_flight);
            Ok(Outcome { op, result })
        })
    } else {
        let rt = runtime();
        let call = || crate::store::sqlite::on_caller_thread(|| rt.block_on(f()));
        // The in-memory store's calls are a few microseconds of CPU: releasing the GIL for them costs more
        // (another thread takes it, and this one waits to get it back) than it lets run.
        let result = if door.keep_gil {
            call()
        } else {
            py.detach(call)
        };
        Outcome { op, result }.into_pyobject(py)
    }
}
