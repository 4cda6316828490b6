//! One tokio runtime per process, built on first use and rebuilt in a forked child.
//!
//! A child of `os.fork()` inherits the parent's memory but none of its threads: the parent's runtime
//! must be neither used nor dropped there (dropping would wait for threads that do not exist), so it
//! is leaked and a new one is built, keyed by process id.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, Runtime as GenericRuntime};
use tokio::runtime::{Builder, Runtime};

struct ProcessRuntime {
    pid: u32,
    runtime: Runtime,
}

static CURRENT: AtomicPtr<ProcessRuntime> = AtomicPtr::new(std::ptr::null_mut());
static BUILD: Mutex<()> = Mutex::new(());

/// The runtime of this process.
pub fn runtime() -> &'static Runtime {
    let pid = std::process::id();
    let ptr = CURRENT.load(Ordering::Acquire);
    // SAFETY: pointers stored in CURRENT come from Box::leak and are never freed.
    if let Some(pr) = unsafe { ptr.as_ref() } {
        if pr.pid == pid {
            return &pr.runtime;
        }
    }
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let ptr = CURRENT.load(Ordering::Acquire);
    // SAFETY: as above.
    if let Some(pr) = unsafe { ptr.as_ref() } {
        if pr.pid == pid {
            return &pr.runtime;
        }
    }
    let runtime = Builder::new_multi_thread()
        .enable_all()
        .thread_name("bedrock-sessions")
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(2),
        )
        .build()
        .expect("cannot start the tokio runtime");
    let leaked: &'static ProcessRuntime = Box::leak(Box::new(ProcessRuntime { pid, runtime }));
    CURRENT.store(leaked as *const _ as *mut _, Ordering::Release);
    &leaked.runtime
}

/// The runtime as pyo3-async-runtimes sees it: its spawns go to this process's runtime.
pub struct ForkAwareRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

impl GenericRuntime for ForkAwareRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        runtime().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        runtime().spawn_blocking(f)
    }
}

impl ContextExt for ForkAwareRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// Async calls whose result has not been handed to Python yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts an async call from its start to the end of its future (see [`quiesce`]).
pub struct InFlight;

impl InFlight {
    pub fn start() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (up to `timeout`) until no async call is in flight, then a short grace for the completion
/// callbacks, which attach to Python from runtime threads. Called at interpreter exit: a runtime thread
/// attaching while the interpreter finalizes aborts the process.
pub fn quiesce(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    true
}
