//! core's `embed`: asyncio's loop drives a runtime of its own thread, so that an engine call awaited
//! in a coroutine does its I/O on the loop's thread instead of handing off to dockfleet's threads and
//! back. The loop watches the runtime's epoll descriptor (`loop.add_reader`) and ticks the runtime
//! when it is readable, and on a timer while calls are pending (tokio's timers: request timeouts).
//! An awaited call is a [`Call`], a coroutine of its own whose asyncio future the loop's tick completes
//! directly (no `call_soon_threadsafe`, no second poll of the call). The blocking facade runs such
//! calls on the same runtime.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use dockfleet::embed::{EmbeddedRuntime, Origin};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// This thread's embedded runtime and the event loop that drives it.
pub(crate) struct Local {
    /// The blocking facade's signal check (see [`Local::block_slice`]). Declared before `rt`, so that
    /// it is dropped while the runtime is there.
    signal_check: RefCell<Option<Pin<Box<tokio::time::Sleep>>>>,
    pub(crate) rt: EmbeddedRuntime,
    /// The loop that watches `rt.fd()`.
    watched: RefCell<Option<Py<PyAny>>>,
    /// Calls in flight on the watched loop.
    pending: Cell<usize>,
    /// Whether a timer tick is scheduled on the watched loop.
    timer_armed: Cell<bool>,
}

/// A thread's [`Local`] once made, with the process it was made in; `None` inside where the runtime
/// could not be made.
struct Made(Option<(Origin, Option<Rc<Local>>)>);

impl Drop for Made {
    fn drop(&mut self) {
        // A forked child exiting with its parent's runtime forgets it (see `Origin::release`).
        if let Some((origin, l)) = self.0.take() {
            origin.release(l);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Made> = const { RefCell::new(Made(None)) };
}

/// This thread's embedded runtime, made on first use, and made again in a forked child (`os.fork`,
/// `multiprocessing`): the one the child inherits shares its epoll instance with the parent, and is
/// forgotten there (see `dockfleet::embed::forks`). None where the runtime cannot be made (then calls
/// take the shared runtime).
pub(crate) fn local() -> Option<Rc<Local>> {
    LOCAL
        .try_with(|cell| {
            let mut cell = cell.borrow_mut();
            match cell.0.take() {
                Some((origin, l)) if origin.is_here() => {
                    cell.0 = Some((origin, l.clone()));
                    return l;
                }
                Some((inherited, l)) => inherited.release(l),
                None => {}
            }
            let l = EmbeddedRuntime::new().ok().map(|rt| {
                Rc::new(Local {
                    signal_check: RefCell::new(None),
                    rt,
                    watched: RefCell::new(None),
                    pending: Cell::new(0),
                    timer_armed: Cell::new(false),
                })
            });
            cell.0 = Some((Origin::here(), l.clone()));
            l
        })
        .ok()
        .flatten()
}

/// This thread's embedded runtime if it has been made (in this process), without making one.
fn made() -> Option<Rc<Local>> {
    LOCAL
        .try_with(|cell| match cell.try_borrow().ok()?.0.as_ref()? {
            (origin, l) if origin.is_here() => l.clone(),
            _ => None,
        })
        .ok()
        .flatten()
}

impl Local {
    /// Runs `fut` on this thread's runtime until it completes (`Ok`) or a slice of `slice` runs out
    /// (`Err`: the blocking facade then looks for signals and goes on). One timer serves every call of
    /// the thread, set again only once it has fired: a call that returns within the slice costs no
    /// timer of its own (registering one and removing it again cost about 2k instructions per call).
    pub(crate) fn block_slice<F: Future>(&self, mut fut: Pin<&mut F>, slice: Duration) -> Result<F::Output, ()> {
        let mut first = true;
        self.rt.block_on(std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            let mut check = self.signal_check.borrow_mut();
            // Made inside the runtime (a timer belongs to the runtime it is made in).
            let timer = check.get_or_insert_with(|| Box::pin(tokio::time::sleep(slice)));
            if std::mem::take(&mut first) && timer.is_elapsed() {
                timer.as_mut().reset(tokio::time::Instant::now() + slice);
            }
            timer.as_mut().poll(cx).map(|()| Err(()))
        }))
    }
}

/// Whether `running`, the running asyncio loop of this thread, drives this thread's runtime
/// (registering it with the loop on first use, and again when the thread runs a new loop). False when
/// the loop cannot watch a descriptor.
fn watched(py: Python<'_>, running: &Py<PyAny>) -> bool {
    let Some(l) = local() else { return false };
    if l.watched.borrow().as_ref().is_some_and(|w| w.is(running)) {
        return true;
    }
    let fd = l.rt.fd();
    if let Some(old) = l.watched.take() {
        // A loop this thread ran before (closed by now, most likely).
        let _ = old.call_method1(py, "remove_reader", (fd,));
    }
    let Ok(tick) = callback(py, &TICK, tick) else { return false };
    if running.call_method1(py, "add_reader", (fd, tick)).is_err() {
        return false;
    }
    *l.watched.borrow_mut() = Some(running.clone_ref(py));
    l.timer_armed.set(false);
    true
}

static TICK: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
static TIMER: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();

/// A Python callable for `f` (made once).
fn callback<'a>(
    py: Python<'_>,
    cell: &'a PyOnceLock<Py<PyCFunction>>,
    f: fn(Python<'_>),
) -> PyResult<&'a Py<PyCFunction>> {
    cell.get_or_try_init(py, || {
        PyCFunction::new_closure(py, None, None, move |args, _| f(args.py())).map(Bound::unbind)
    })
}

/// The reader callback: the runtime has events.
fn tick(py: Python<'_>) {
    if let Some(l) = made() {
        // With the GIL held: a tick only runs what is ready and never waits, and releasing and
        // taking the GIL back twice per call costs more than the tick itself.
        l.rt.tick();
        wake_finished(py);
        arm_timer(py, &l);
    }
}

/// The timer callback.
fn timer(py: Python<'_>) {
    if let Some(l) = made() {
        l.timer_armed.set(false);
    }
    tick(py);
}

/// Schedules a timer tick while calls are pending.
fn arm_timer(py: Python<'_>, l: &Local) {
    if l.pending.get() == 0 || l.timer_armed.get() {
        return;
    }
    let Some(lp) = l.watched.borrow().as_ref().map(|w| w.clone_ref(py)) else { return };
    let Ok(cb) = callback(py, &TIMER, timer) else { return };
    if lp.call_method1(py, "call_later", (EmbeddedRuntime::TIMER_TICK.as_secs_f64(), cb)).is_ok() {
        l.timer_armed.set(true);
    }
}

/// What a finished call hands back: its value or error, made into Python objects once the GIL is held.
pub(crate) type Finish = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A call's future, its output not yet converted.
type CallFuture = Pin<Box<dyn Future<Output = Finish> + Send>>;

/// Where a running call leaves its outcome, and the asyncio future its coroutine waits on.
struct Slot {
    finish: std::sync::Mutex<Option<Finish>>,
    future: Py<PyAny>,
}

/// Held by a call's task on the embedded runtime: the call counts as pending until the task is dropped
/// (finished, or aborted), which happens on the runtime's own thread.
struct Pending;

impl Pending {
    fn new(l: &Local) -> Self {
        l.pending.set(l.pending.get() + 1);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(l) = made() {
            l.pending.set(l.pending.get().saturating_sub(1));
        }
    }
}

thread_local! {
    /// Calls of this thread's embedded runtime that finished during a tick, to be told to their
    /// coroutines once the GIL is held again.
    static DONE: RefCell<Vec<std::sync::Arc<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// Tells the coroutines of the calls that finished (their asyncio futures done), on the loop's thread.
fn wake_finished(py: Python<'_>) {
    loop {
        let batch = DONE.with(|d| std::mem::take(&mut *d.borrow_mut()));
        if batch.is_empty() {
            return;
        }
        for slot in batch {
            release(py, slot.future.bind(py));
        }
    }
}

/// `future.set_result(None)`, unless it is done (cancelled) already: then that raises, and nobody waits.
fn release(py: Python<'_>, future: &Bound<'_, PyAny>) {
    let _ = future.call_method1(pyo3::intern!(py, "set_result"), (py.None(),));
}

/// The awaitable an engine call returns (a coroutine: `await h.ping()`, `asyncio.run(h.ping())`,
/// `asyncio.wait_for(...)` all take it). Sent the first time it starts the call: on the embedded runtime
/// of the loop's thread when that loop drives it (see `watched`), its coroutine waiting on an asyncio
/// future that the loop's tick completes directly; on dockfleet's shared runtime otherwise; and under
/// the blocking facade it runs the call to its end there and then. Thrown into or closed (a cancelled
/// task), it aborts the call.
#[pyclass(module = "dockfleet")]
pub struct Call {
    state: CallState,
}

// SAFETY: the future is only touched through `&mut self` (pyo3 borrows a pyclass exclusively for
// that), so sharing a `&Call` between threads gives no access to it; pyo3's own coroutine does the same.
unsafe impl Sync for Call {}

enum CallState {
    Fresh(CallFuture),
    Waiting { slot: std::sync::Arc<Slot>, abort: tokio::task::AbortHandle },
    Over,
}

impl Call {
    pub(crate) fn new(fut: impl Future<Output = Finish> + Send + 'static) -> Self {
        Self { state: CallState::Fresh(Box::pin(fut)) }
    }

    /// Drives the call one step: `Ok` is the value the coroutine yields (a future to wait on); the
    /// call's value comes as `StopIteration`.
    fn step(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match std::mem::replace(&mut self.state, CallState::Over) {
            CallState::Fresh(fut) => self.start(py, fut),
            CallState::Waiting { slot, abort } => {
                let finish = slot.finish.lock().unwrap_or_else(|p| p.into_inner()).take();
                match finish {
                    Some(finish) => Err(pyo3::exceptions::PyStopIteration::new_err((finish(py)?,))),
                    None => {
                        // Resumed before the call finished (nothing does that but a stray send).
                        let future = blocking(py, slot.future.bind(py))?;
                        self.state = CallState::Waiting { slot, abort };
                        Ok(future)
                    }
                }
            }
            CallState::Over => Err(pyo3::exceptions::PyRuntimeError::new_err("cannot reuse already awaited coroutine")),
        }
    }

    /// Runs a call that has not started yet to its end on this thread's runtime, blocking (the GIL
    /// released meanwhile): its value, or `None` when it has started already. What the blocking facade
    /// does, without going through the coroutine protocol (no `send`, no `StopIteration`).
    pub(crate) fn run_blocking(&mut self, py: Python<'_>) -> Option<PyResult<Py<PyAny>>> {
        match std::mem::replace(&mut self.state, CallState::Over) {
            CallState::Fresh(fut) => Some(run_here(py, fut)),
            started => {
                self.state = started;
                None
            }
        }
    }

    fn start(&mut self, py: Python<'_>, fut: CallFuture) -> PyResult<Py<PyAny>> {
        if crate::blocking_now() {
            return Err(pyo3::exceptions::PyStopIteration::new_err((run_here(py, fut)?,)));
        }
        let event_loop = running_loop(py)?;
        let here = watched(py, &event_loop);
        let future = event_loop.call_method0(py, pyo3::intern!(py, "create_future"))?;
        let slot = std::sync::Arc::new(Slot { finish: std::sync::Mutex::new(None), future: future.clone_ref(py) });
        let abort = if here {
            let l = made().expect("watched() is true only where the runtime exists");
            let pending = Pending::new(&l);
            let done = slot.clone();
            let rt = &l.rt;
            // Spawned inside the runtime and ticked (with the GIL held, as in `tick`): the request
            // goes out now.
            let task = rt.tick_after(|| {
                rt.spawn(async move {
                    let finish = fut.await;
                    *done.finish.lock().unwrap_or_else(|p| p.into_inner()) = Some(finish);
                    DONE.with(|d| d.borrow_mut().push(done));
                    drop(pending);
                })
            });
            wake_finished(py);
            arm_timer(py, &l);
            task.abort_handle()
        } else {
            let done = slot.clone();
            let event_loop = event_loop.clone_ref(py);
            crate::runtime()
                .spawn(async move {
                    let finish = fut.await;
                    *done.finish.lock().unwrap_or_else(|p| p.into_inner()) = Some(finish);
                    Python::attach(move |py| {
                        if let Ok(release) = callback1(py) {
                            // Raises only when the loop is closed: then nobody waits for the call.
                            let _ =
                                event_loop.call_method1(py, "call_soon_threadsafe", (release, done.future.bind(py)));
                        }
                        drop((done, event_loop));
                    });
                })
                .abort_handle()
        };
        let yielded = blocking(py, future.bind(py))?;
        self.state = CallState::Waiting { slot, abort };
        Ok(yielded)
    }

    /// Stops a call in flight (the coroutine was thrown into, closed or dropped). The abort wakes the
    /// task's runtime, whose next tick drops the task (and with it the call's [`Pending`]).
    fn abort(&mut self) {
        if let CallState::Waiting { abort, .. } = std::mem::replace(&mut self.state, CallState::Over) {
            abort.abort();
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Runs a call's future to its end on this thread's runtime, blocking with the GIL released, and
/// converts its outcome.
fn run_here(py: Python<'_>, fut: CallFuture) -> PyResult<Py<PyAny>> {
    crate::block(fut, crate::On::ThisThread).and_then(|finish| finish(py))
}

/// `asyncio.get_running_loop()`.
fn running_loop(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind()))?
        .call0(py)
}

/// `future`, marked as awaited (what `yield from future` does), for a coroutine to yield to its task.
fn blocking(py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    future.setattr(pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
    Ok(future.clone().unbind())
}

/// [`release`] as a Python callable, for `call_soon_threadsafe`.
fn callback1(py: Python<'_>) -> PyResult<&'static Py<PyCFunction>> {
    static RELEASE: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
    RELEASE.get_or_try_init(py, || {
        PyCFunction::new_closure(py, None, None, |args, _| -> PyResult<()> {
            release(args.py(), &args.get_item(0)?);
            Ok(())
        })
        .map(Bound::unbind)
    })
}

#[pymethods]
impl Call {
    fn send(&mut self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// Aborts the call and raises the exception thrown in (`typ` an exception or its class; `val`, an
    /// instance or the argument to make one, as generators take them).
    #[pyo3(signature = (typ, val=None, tb=None))]
    fn throw(
        &mut self,
        typ: &Bound<'_, PyAny>,
        val: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = tb;
        self.abort();
        let exc = match val {
            Some(v) if v.is_instance_of::<pyo3::exceptions::PyBaseException>() => v.clone(),
            Some(v) if !v.is_none() => typ.call1((v,))?,
            _ => typ.clone(),
        };
        Err(PyErr::from_value(exc))
    }

    fn close(&mut self) {
        self.abort();
    }

    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }
}
