//! Bindings of the local server: started on this process's runtime, stopped gracefully.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::client::PyNativeClient;
use super::runtime::runtime;
use crate::server::{self, Fault, LogTarget, ServerHandle, ServerOptions, Stats};

#[pyclass(name = "NativeServer", frozen, module = "bedrock_sessions._core")]
pub struct PyNativeServer {
    handle: Mutex<Option<ServerHandle>>,
    host: String,
    port: u16,
    stats: Arc<Stats>,
}

/// `None` (off), `"-"` (stderr) or a file path (appended to).
fn log_target(path: Option<std::path::PathBuf>) -> LogTarget {
    match path {
        None => LogTarget::Off,
        Some(p) if p.as_os_str() == "-" => LogTarget::Stderr,
        Some(p) => LogTarget::File(p),
    }
}

#[pymethods]
impl PyNativeServer {
    /// Starts serving `client`'s store on `host:port` (0: a free port) in the background. `log`: where
    /// the request log goes, `None` (off), `"-"` (stderr) or a file path (appended to). `ui_upstream`: the
    /// loopback port of a web inspector whose pages `GET /ui/...` relays. `iam`: an identities file, after
    /// which every API request must be signed (SigV4) for `region` by one of its keys and is decided by its
    /// principal's account and policies. `audit`: where the audit log goes, as `log`.
    #[staticmethod]
    #[pyo3(signature = (client, host="127.0.0.1", port=0, *, latency=0.0, fault_rate=0.0, faults=None, seed=24301, log=None, ui_upstream=None, iam=None, region="us-east-1", read_timeout=20.0, audit=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        client: &PyNativeClient,
        host: &str,
        port: u16,
        latency: f64,
        fault_rate: f64,
        faults: Option<Vec<String>>,
        seed: u64,
        log: Option<std::path::PathBuf>,
        ui_upstream: Option<u16>,
        iam: Option<std::path::PathBuf>,
        region: &str,
        read_timeout: f64,
        audit: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        if !(read_timeout.is_finite() && read_timeout > 0.0) {
            return Err(PyValueError::new_err(
                "read_timeout must be a positive number of seconds",
            ));
        }
        let identities = match iam {
            None => None,
            Some(path) => Some(Arc::new(
                crate::server::auth::Identities::load(&path, region)
                    .map_err(PyValueError::new_err)?,
            )),
        };
        if !(latency.is_finite() && latency >= 0.0) {
            return Err(PyValueError::new_err(
                "latency must be a non-negative number of seconds",
            ));
        }
        let mut options = ServerOptions {
            latency: Duration::from_secs_f64(latency),
            fault_rate,
            seed,
            log: log_target(log),
            audit: log_target(audit),
            region: region.to_string(),
            ui_upstream,
            identities,
            read_timeout: Duration::from_secs_f64(read_timeout),
            ..Default::default()
        };
        if let Some(names) = faults {
            options.faults = names
                .iter()
                .map(|n| {
                    Fault::parse(n).ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "unknown fault {n:?}: use throttle, 500, drop-before (drop) or drop-after"
                        ))
                    })
                })
                .collect::<PyResult<_>>()?;
        }
        let store = client.served_store()?;
        let host_owned = host.to_string();
        let rt = runtime();
        let handle = py
            .detach(|| rt.block_on(server::start(store, &host_owned, port, options)))
            .map_err(|e| PyOSError::new_err(format!("cannot serve on {host}:{port}: {e}")))?;
        Ok(PyNativeServer {
            host: handle.addr.ip().to_string(),
            port: handle.addr.port(),
            stats: handle.stats.clone(),
            handle: Mutex::new(Some(handle)),
        })
    }

    #[getter]
    fn host(&self) -> String {
        self.host.clone()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    #[getter]
    fn running(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops accepting connections, lets in-flight requests finish, then returns. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let rt = runtime();
            py.detach(|| rt.block_on(h.stop()))
                .map_err(|e| PyOSError::new_err(e.to_string()))?;
        }
        Ok(())
    }

    /// Requests counted by the server: total, per operation, faults injected, most in flight at once.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (requests, faults, max_in_flight, per) = self.stats.snapshot();
        let d = PyDict::new(py);
        d.set_item("requests", requests)?;
        d.set_item("faults", faults)?;
        d.set_item("max_in_flight", max_in_flight)?;
        d.set_item("operations", per)?;
        Ok(d)
    }

    fn reset_stats(&self) {
        self.stats.reset();
    }
}
