//! core's `embed`: asyncio's loop drives a runtime of its own thread, so that an engine call awaited
//! in a coroutine does its I/O on the loop's thread instead of handing off to dockfleet's threads and
//! back. The loop watches the runtime's epoll descriptor (`loop.add_reader`) and ticks the runtime
//! when it is readable, and on a timer while calls are pending (tokio's timers: request timeouts).
//! The blocking facade runs such calls on the same runtime.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use dockfleet::embed::EmbeddedRuntime;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// This thread's embedded runtime and the event loop that drives it.
pub(crate) struct Local {
    pub(crate) rt: EmbeddedRuntime,
    /// The loop that watches `rt.fd()`.
    watched: RefCell<Option<Py<PyAny>>>,
    /// Calls in flight on the watched loop.
    pending: Cell<usize>,
    /// Whether a timer tick is scheduled on the watched loop.
    timer_armed: Cell<bool>,
}

thread_local! {
    /// None where the runtime could not be made (then calls take the shared runtime).
    pub(crate) static LOCAL: Option<Local> = EmbeddedRuntime::new().ok().map(|rt| Local {
        rt,
        watched: RefCell::new(None),
        pending: Cell::new(0),
        timer_armed: Cell::new(false),
    });
}

/// Whether the running asyncio loop of this thread drives this thread's runtime (registering it with
/// the loop on first use, and again when the thread runs a new loop). False without a running loop,
/// or when the loop cannot watch a descriptor.
pub(crate) fn watched(py: Python<'_>) -> bool {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOCAL.with(|local| {
        let Some(l) = local else { return false };
        let Ok(get) = GET_RUNNING_LOOP
            .get_or_try_init(py, || Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind()))
        else {
            return false;
        };
        let Ok(running) = get.call0(py) else { return false };
        if l.watched.borrow().as_ref().is_some_and(|w| w.is(&running)) {
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
        *l.watched.borrow_mut() = Some(running);
        l.timer_armed.set(false);
        true
    })
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
    LOCAL.with(|local| {
        if let Some(l) = local {
            let rt = &l.rt;
            py.detach(|| rt.tick());
            arm_timer(py, l);
        }
    });
}

/// The timer callback.
fn timer(py: Python<'_>) {
    LOCAL.with(|local| {
        if let Some(l) = local {
            l.timer_armed.set(false);
        }
    });
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

/// A call's future polled on the loop's thread inside this thread's runtime, the GIL released, and the
/// runtime ticked after it, so that what the poll started (a request written by a connection task)
/// goes out at once.
pub(crate) struct InLoop<F>(Pin<Box<F>>);

impl<F> InLoop<F> {
    /// Counts the call as pending; call only after [`watched`] returned true on this thread.
    pub(crate) fn new(fut: F) -> Self {
        LOCAL.with(|l| {
            if let Some(l) = l {
                l.pending.set(l.pending.get() + 1);
            }
        });
        Self(Box::pin(fut))
    }
}

impl<F> Drop for InLoop<F> {
    fn drop(&mut self) {
        // Dropped on the loop's thread (the coroutine that owns it runs there).
        let _ = LOCAL.try_with(|l| {
            if let Some(l) = l {
                l.pending.set(l.pending.get().saturating_sub(1));
            }
        });
    }
}

impl<F: Future + Send> Future for InLoop<F>
where
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let fut = self.0.as_mut();
        let waker = cx.waker();
        LOCAL.with(|local| {
            let l = local.as_ref().expect("InLoop is made only where the runtime exists");
            let rt = &l.rt;
            Python::attach(|py| {
                let out = py.detach(|| rt.tick_after(|| fut.poll(&mut Context::from_waker(waker))));
                if out.is_pending() {
                    arm_timer(py, l);
                }
                out
            })
        })
    }
}
