//! `dockfleet._native`: the pyo3 module behind `import dockfleet`.
//!
//! One file per core module; this file holds the module table and the conversion plumbing every file
//! shares. No dockfleet logic lives here: types are mirrored, errors mapped, futures handed to asyncio.

use dockfleet::embed::Origin;
use pyo3::prelude::*;

mod backend;
mod balancer;
mod discovery;
mod docker;
mod embed;
mod error;
mod etcd;
mod fleet;
mod health;
mod host;
mod image;
mod proxy;
mod reconcile;
mod registrator;
mod registry;
mod render;
mod rollout;
mod schedule;
mod spec;
mod stack;
mod stats;
mod swarm;

/// Converts between a core type and its Python mirror (and between plain values, identically).
pub(crate) trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
identity!(String, bool, u8, u16, i32, u32, u64, i64, f64, std::path::PathBuf, std::collections::BTreeSet<String>);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<B>, B> Conv<std::collections::BTreeMap<String, B>> for std::collections::BTreeMap<String, A> {
    fn conv(self) -> std::collections::BTreeMap<String, B> {
        self.into_iter().map(|(k, v)| (k, v.conv())).collect()
    }
}

/// A duration: float seconds in Python, as in asyncio. Taking one refuses a negative, NaN or infinite
/// number (or one beyond the longest `Duration`), where a plain float would have become 0 or "forever"
/// without a word: a data class's constructor and an attribute assignment raise `InvalidArgumentError`
/// naming the field, as a duration argument (see [`seconds`]) raises it naming the argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub std::time::Duration);

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    /// A `ValueError`, as for an int out of range (`OverflowError`); a data class reports either as
    /// `InvalidArgumentError` naming the field.
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        duration(obj.extract()?).map(Seconds).map_err(pyo3::exceptions::PyValueError::new_err)
    }
}

/// `v` seconds as a `Duration`, or why not.
fn duration(v: f64) -> Result<std::time::Duration, String> {
    // As Python writes them (`inf`, `nan`), not Rust (`NaN`).
    let shown = if v.is_nan() { "nan".to_string() } else { v.to_string() };
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{shown} s is negative or not finite"));
    }
    std::time::Duration::try_from_secs_f64(v).map_err(|_| format!("{shown} s is beyond the longest duration"))
}

/// A count argument (a slot, a replica count), with `InvalidArgumentError` naming the argument when it
/// is out of range: pyo3's own conversion raises a bare `OverflowError` that names nothing. (A float or
/// a str is pyo3's `TypeError`, which names the argument.)
pub(crate) fn count(name: &str, v: i128) -> PyResult<u32> {
    u32::try_from(v).map_err(|_| {
        error::to_py(dockfleet::Error::invalid(name, format!("{v} is not an integer from 0 to {}", u32::MAX)))
    })
}

/// Runs a synchronous call into core and converts its error. A panic in it becomes `InternalError`
/// (code `internal`), as one in an awaited call does; pyo3 alone would raise its `PanicException`, a
/// `BaseException` with no `.code` that `except Exception` lets through. Every synchronous function of
/// the module that runs core code goes through it (an awaited call goes through [`call`] or
/// [`call_here`], which catch panics in the future).
pub(crate) fn sync_call<T>(f: impl FnOnce() -> dockfleet::Result<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(dockfleet::Error::from_panic(payload)))
        .map_err(error::to_py)
}

/// A duration argument in seconds, refused as [`Seconds`] refuses, with `InvalidArgumentError`
/// naming the argument.
pub(crate) fn seconds(name: &str, v: f64) -> PyResult<std::time::Duration> {
    duration(v).map_err(|why| error::to_py(dockfleet::Error::invalid(name, why)))
}

impl<'py> IntoPyObject<'py> for Seconds {
    type Target = pyo3::types::PyFloat;
    type Output = Bound<'py, pyo3::types::PyFloat>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        self.0.as_secs_f64().into_pyobject(py)
    }
}

impl<'py> IntoPyObject<'py> for &Seconds {
    type Target = pyo3::types::PyFloat;
    type Output = Bound<'py, pyo3::types::PyFloat>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        (*self).into_pyobject(py)
    }
}

impl Conv<std::time::Duration> for Seconds {
    fn conv(self) -> std::time::Duration {
        self.0
    }
}

impl Conv<Seconds> for std::time::Duration {
    fn conv(self) -> Seconds {
        Seconds(self)
    }
}

/// `name=repr(value)` for a data class's `repr`; a secret (a field named `password` or
/// `identity_token`) shows only whether it is set.
pub(crate) fn repr_field(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if ["password", "identity_token"].contains(&name) && value.is_truthy()? {
        return Ok(format!("{name}='<hidden>'"));
    }
    Ok(format!("{name}={}", value.repr()?))
}

/// Declares a Python data class mirroring a core struct field by field: keyword-only constructor
/// with the core type's defaults, attribute access, `==`, a readable `repr`, and conversions both ways.
/// A value a field cannot take, passed to the constructor or assigned to the attribute, raises
/// `InvalidArgumentError` naming `Class.field`.
macro_rules! dto {
    ($(#[doc = $doc:literal])* $py:ident => $core:path { $($(#[doc = $fdoc:literal])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[pyclass(module = "dockfleet", get_all, from_py_object)]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $py { $( $(#[doc = $fdoc])* pub $f: $t, )* }

        impl $py {
            /// Sets the field `key` from `v`; `Ok(false)` when there is no such field.
            #[allow(unused_variables)]
            fn assign(&mut self, key: &str, v: &pyo3::Bound<'_, pyo3::PyAny>) -> pyo3::PyResult<bool> {
                match key {
                    $( stringify!($f) => {
                        self.$f = v.extract::<$t>().map_err(|e| crate::error::field_type_error(stringify!($py), key, pyo3::PyErr::from(e)))?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }
        }

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (**kwargs))]
            fn __new__(kwargs: Option<&pyo3::Bound<'_, pyo3::types::PyDict>>) -> pyo3::PyResult<Self> {
                let mut this: Self = crate::Conv::conv(<$core as Default>::default());
                if let Some(kw) = kwargs {
                    for (k, v) in kw.iter() {
                        let key: String = k.extract()?;
                        if !this.assign(&key, &v)? {
                            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                                "{}() got an unexpected keyword argument {:?}", stringify!($py), key
                            )));
                        }
                    }
                }
                Ok(this)
            }

            fn __setattr__(&mut self, name: &str, value: &pyo3::Bound<'_, pyo3::PyAny>) -> pyo3::PyResult<()> {
                if self.assign(name, value)? {
                    Ok(())
                } else {
                    Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                        "'{}' object has no attribute '{}'", stringify!($py), name
                    )))
                }
            }

            fn __repr__(slf: &pyo3::Bound<'_, Self>) -> pyo3::PyResult<String> {
                #[allow(unused_mut)]
                let mut parts: Vec<String> = Vec::new();
                $( parts.push(crate::repr_field(stringify!($f), &slf.getattr(stringify!($f))?)?); )*
                Ok(format!("{}({})", stringify!($py), parts.join(", ")))
            }

            fn __eq__(&self, other: &Self) -> bool {
                self == other
            }
        }

        impl crate::Conv<$core> for $py {
            fn conv(self) -> $core {
                $core { $( $f: crate::Conv::conv(self.$f), )* }
            }
        }

        impl crate::Conv<$py> for $core {
            fn conv(self) -> $py {
                $py { $( $f: crate::Conv::conv(self.$f), )* }
            }
        }
    };
}
pub(crate) use dto;

/// dockfleet's tokio runtime, shared by every call from Python, with the process it was made in; shut
/// down at interpreter exit.
static RUNTIME: std::sync::Mutex<Option<(Origin, tokio::runtime::Runtime)>> = std::sync::Mutex::new(None);

/// A handle on dockfleet's tokio runtime (started on first use, and again in a forked child, where
/// the parent's has no threads: that one is forgotten, see `dockfleet::embed::forks`).
pub(crate) fn runtime() -> &'static tokio::runtime::Handle {
    static HANDLE: std::sync::Mutex<Option<(Origin, &'static tokio::runtime::Handle)>> = std::sync::Mutex::new(None);
    let mut current = HANDLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((origin, handle)) = *current {
        if origin.is_here() {
            return handle;
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dockfleet")
        .build()
        .expect("dockfleet: cannot start the tokio runtime");
    // One handle per process (the first, and one in each forked child), kept for its lifetime.
    let handle: &'static tokio::runtime::Handle = Box::leak(Box::new(rt.handle().clone()));
    if let Some((inherited, old)) = RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).replace((Origin::here(), rt)) {
        inherited.release(old);
    }
    *current = Some((Origin::here(), handle));
    handle
}

/// Registered with `atexit`: stops the runtime's threads while the interpreter is still whole. A tokio
/// thread that woke a coroutine during finalization would need the GIL, and CPython ends such threads
/// with `pthread_exit`, which cannot unwind through Rust frames and aborts the process.
#[pyfunction]
fn _shutdown_runtime(py: Python<'_>) {
    let rt = RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).take();
    match rt {
        Some((origin, rt)) if origin.is_here() => py.detach(|| rt.shutdown_timeout(std::time::Duration::from_secs(2))),
        // A forked child exiting with its parent's runtime: shutting it down would unregister the
        // parent's connections from the epoll instance they share.
        Some((inherited, rt)) => inherited.release(rt),
        None => {}
    }
}

/// Polls a future with dockfleet's tokio runtime entered (so tokio I/O and timers work while asyncio's
/// loop drives it through a pyo3 coroutine) and with the GIL released: a tokio thread that wakes the
/// coroutine needs the GIL, and may hold a lock this very poll wants (hyper's connection pool, say);
/// polling with the GIL held could deadlock the two.
struct InRuntime<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future + Send> std::future::Future for InRuntime<F>
where
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let waker = cx.waker();
        let fut = self.0.as_mut();
        Python::attach(|py| {
            py.detach(|| {
                let _entered = runtime().enter();
                fut.poll(&mut std::task::Context::from_waker(waker))
            })
        })
    }
}

thread_local! {
    /// Set while [`_run_sync`] drives a coroutine on this thread: [`call`] then blocks instead of
    /// waiting on an event loop.
    static BLOCKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a core future as the body of a Python coroutine and converts its result. The future is polled
/// on asyncio's thread (no hand-off to another thread for calls that need no waiting); cancelling the
/// coroutine drops it; a panic becomes `InternalError`. Under [`_run_sync`] (the blocking facade) it
/// runs to completion right here instead, with the GIL released.
pub(crate) async fn call<T, P, F>(fut: F) -> PyResult<P>
where
    F: std::future::Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Conv<P> + Send + 'static,
{
    let fut = dockfleet::catch_panic(fut);
    outcome(if blocking_now() { block(fut, On::Shared)? } else { InRuntime(Box::pin(fut)).await })
}

/// A call's outcome as Python sees it: the value converted, or the error as its exception.
fn outcome<T: Conv<P>, P>(out: dockfleet::Result<T>) -> PyResult<P> {
    match out {
        Ok(v) => Ok(v.conv()),
        Err(e) => Err(error::to_py(e)),
    }
}

/// As [`call`], for a call that leaves no task running when it returns (a request to an engine): the
/// awaitable is an [`embed::Call`], which runs the call on a runtime of the calling thread's own
/// ([`embed`]), driven by the running asyncio loop and completing the coroutine's future on the loop's
/// thread (or blocked on under the blocking facade), so its I/O is done on that thread and the call
/// costs no hand-off to dockfleet's threads and back.
pub(crate) fn call_here<T, P, F>(fut: F) -> embed::Call
where
    F: std::future::Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Conv<P> + Send + 'static,
    P: for<'py> pyo3::IntoPyObject<'py>,
{
    embed::Call::new(async move {
        let out = dockfleet::catch_panic(fut).await;
        Box::new(move |py: Python<'_>| outcome::<T, P>(out).and_then(|v| pyo3::IntoPyObjectExt::into_py_any(v, py)))
            as embed::Finish
    })
}

/// Whether the blocking facade is running a call on this thread (see [`_run_sync`]).
pub(crate) fn blocking_now() -> bool {
    BLOCKING.with(std::cell::Cell::get)
}

/// Which runtime a call runs on.
#[derive(Clone, Copy)]
pub(crate) enum On {
    /// dockfleet's multi-thread runtime, where tasks a call starts keep running after it returns.
    Shared,
    /// The calling thread's embedded runtime, driven by its asyncio loop or while a blocking call runs.
    ThisThread,
}

/// Runs `fut` until it completes, with the GIL released, looking for signals every 100 ms so that
/// Ctrl-C interrupts a long wait (dropping the future cancels the work).
pub(crate) fn block<O: Send>(fut: impl std::future::Future<Output = O> + Send, on: On) -> PyResult<O> {
    let mut fut = std::pin::pin!(fut);
    Python::attach(|py| loop {
        let step = py.detach(|| {
            // (The timeout is made inside the runtime: a timer belongs to the runtime it is made in.)
            let on_shared =
                |fut| runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, fut).await }).map_err(|_| ());
            match on {
                On::ThisThread => match embed::local() {
                    Some(l) => l.block_slice(fut.as_mut(), SIGNAL_CHECK),
                    None => on_shared(fut.as_mut()),
                },
                On::Shared => on_shared(fut.as_mut()),
            }
        });
        match step {
            Ok(out) => return Ok(out),
            Err(()) => py.check_signals()?,
        }
    })
}

const SIGNAL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Drives a coroutine of this module to its end on the calling thread, blocking it (the GIL released
/// while it waits), without an event loop: what `dockfleet.sync` does for every call. Returns the
/// coroutine's value; raises what it raises.
#[pyfunction]
fn _run_sync(py: Python<'_>, coroutine: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    // An engine call not started yet (most of the facade's calls) runs directly.
    if let Ok(call) = coroutine.cast::<embed::Call>() {
        if let Some(out) = call.try_borrow_mut().ok().and_then(|mut c| c.run_blocking(py)) {
            return out;
        }
    }
    let was = BLOCKING.with(|b| b.replace(true));
    let sent = coroutine.call_method1("send", (py.None(),));
    BLOCKING.with(|b| b.set(was));
    match sent {
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
            Ok(e.value(py).getattr("value")?.unbind())
        }
        Err(e) => Err(e),
        Ok(_) => {
            // Not one of this module's coroutines (every await of theirs goes through `call`).
            let _ = coroutine.call_method0("close");
            Err(pyo3::exceptions::PyRuntimeError::new_err("dockfleet: the coroutine waited on an event loop"))
        }
    }
}

/// Declares an async iterator class over a core stream (`async for x in stream`); `aclose()` drops it.
macro_rules! stream_class {
    ($(#[doc = $doc:literal])* $name:ident, $core_item:ty => $py_item:ty) => {
        $(#[doc = $doc])*
        #[pyclass(module = "dockfleet")]
        pub struct $name {
            pub(crate) inner: dockfleet::SharedStream<$core_item>,
        }

        impl $name {
            /// The stream `open` returns; a panic in opening it is `InternalError` (see
            /// [`crate::sync_call`]).
            pub(crate) fn open(open: impl FnOnce() -> dockfleet::ResultStream<$core_item>) -> pyo3::PyResult<Self> {
                crate::sync_call(|| Ok(open())).map(|s| Self { inner: dockfleet::SharedStream::new(s) })
            }
        }

        #[pymethods]
        impl $name {
            fn __aiter__(slf: pyo3::PyRef<'_, Self>) -> pyo3::PyRef<'_, Self> {
                slf
            }

            fn __anext__<'py>(slf: &pyo3::Bound<'py, Self>) -> pyo3::PyResult<pyo3::Bound<'py, pyo3::PyAny>> {
                slf.call_method0("_next")
            }

            /// The coroutine behind `__anext__`.
            async fn _next(&self) -> pyo3::PyResult<$py_item> {
                let inner = self.inner.clone();
                let next: Option<$py_item> = crate::call(async move { inner.next().await }).await?;
                next.ok_or_else(|| pyo3::exceptions::PyStopAsyncIteration::new_err(()))
            }

            /// Stops the stream and releases its connection.
            async fn aclose(&self) -> pyo3::PyResult<()> {
                let inner = self.inner.clone();
                crate::call(async move {
                    inner.close().await;
                    Ok(())
                })
                .await
            }
        }
    };
}
pub(crate) use stream_class;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_shutdown_runtime, m)?)?;
    m.add_function(wrap_pyfunction!(_run_sync, m)?)?;
    // The type of the awaitables engine calls return, for the blocking facade's fast path.
    m.setattr("_Call", m.py().get_type::<embed::Call>())?;
    m.py().import("atexit")?.call_method1("register", (m.getattr("_shutdown_runtime")?,))?;
    error::register(m)?;
    registry::register(m)?;
    host::register(m)?;
    docker::register(m)?;
    fleet::register(m)?;
    image::register(m)?;
    spec::register(m)?;
    schedule::register(m)?;
    reconcile::register(m)?;
    rollout::register(m)?;
    stack::register(m)?;
    stats::register(m)?;
    swarm::register(m)?;
    backend::register(m)?;
    balancer::register(m)?;
    discovery::register(m)?;
    etcd::register(m)?;
    health::register(m)?;
    registrator::register(m)?;
    proxy::register(m)?;
    render::register(m)?;
    Ok(())
}
