//! core's `embed`: Node's libuv loop drives a runtime of the JS thread's own, so that an engine call
//! does its I/O on the JS thread and settles its Promise there, without a hand-off to napi's tokio
//! threads and back (a thread wake-up each way). libuv watches the runtime's epoll descriptor (a
//! `uv_poll`) and ticks the runtime when it is readable, and on a `uv_timer` every `TIMER_TICK` while
//! calls are pending (tokio's timers: request timeouts). Both hold the loop open only while calls are
//! pending (the poll handle is referenced, the timer runs), so they keep the process alive exactly as
//! long as a Promise is unsettled.
//!
//! libuv's functions are looked up in the process (Node exports them); where they are missing (a
//! runtime other than Node that implements napi), or the runtime cannot be made, calls take napi's
//! tokio runtime as the other calls do.

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::future::Future;
use std::ptr;
use std::rc::Rc;

use dockfleet::embed::EmbeddedRuntime;
use napi::bindgen_prelude::*;
use napi::sys;

use crate::Conv;

type PollCb = unsafe extern "C" fn(*mut c_void, i32, i32);
type TimerCb = unsafe extern "C" fn(*mut c_void);
type CloseCb = unsafe extern "C" fn(*mut c_void);

/// The libuv functions used, from the process's symbols.
struct Uv {
    handle_size: unsafe extern "C" fn(i32) -> usize,
    poll_init: unsafe extern "C" fn(*mut c_void, *mut c_void, i32) -> i32,
    poll_start: unsafe extern "C" fn(*mut c_void, i32, PollCb) -> i32,
    ref_: unsafe extern "C" fn(*mut c_void),
    unref: unsafe extern "C" fn(*mut c_void),
    timer_init: unsafe extern "C" fn(*mut c_void, *mut c_void) -> i32,
    timer_start: unsafe extern "C" fn(*mut c_void, TimerCb, u64, u64) -> i32,
    timer_stop: unsafe extern "C" fn(*mut c_void) -> i32,
    close: unsafe extern "C" fn(*mut c_void, Option<CloseCb>),
}

/// `uv_handle_type` values (uv.h).
const UV_POLL: i32 = 8;
const UV_TIMER: i32 = 13;
const UV_READABLE: i32 = 1;

/// libuv's function `name` from the process's symbols, as the function pointer type `F`.
///
/// # Safety
/// `F` must be the C signature of that function.
unsafe fn uv_fn<F: Copy>(name: &CStr) -> Option<F> {
    // SAFETY: dlsym with a NUL-terminated name; a null result is checked. A function pointer has a
    // data pointer's size.
    unsafe {
        let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
        (!p.is_null()).then(|| std::mem::transmute_copy::<*mut c_void, F>(&p))
    }
}

fn uv() -> Option<&'static Uv> {
    static UV: std::sync::OnceLock<Option<Uv>> = std::sync::OnceLock::new();
    UV.get_or_init(|| {
        // SAFETY: each field's type is the C signature of the libuv function of that name (uv.h).
        unsafe {
            Some(Uv {
                handle_size: uv_fn(c"uv_handle_size")?,
                poll_init: uv_fn(c"uv_poll_init")?,
                poll_start: uv_fn(c"uv_poll_start")?,
                timer_init: uv_fn(c"uv_timer_init")?,
                timer_start: uv_fn(c"uv_timer_start")?,
                timer_stop: uv_fn(c"uv_timer_stop")?,
                close: uv_fn(c"uv_close")?,
                ref_: uv_fn(c"uv_ref")?,
                unref: uv_fn(c"uv_unref")?,
            })
        }
    })
    .as_ref()
}

/// A call's settlement, run on the JS thread: resolves or rejects its Promise.
type Settle = Box<dyn FnOnce(sys::napi_env)>;

/// The JS thread's embedded runtime and the libuv handles that drive it.
struct Local {
    rt: EmbeddedRuntime,
    uv: &'static Uv,
    env: sys::napi_env,
    poll: *mut c_void,
    timer: *mut c_void,
    async_context: sys::napi_async_context,
    /// Calls whose Promise is not settled yet.
    pending: Cell<usize>,
    /// Calls that finished, waiting to be settled.
    done: RefCell<Vec<Settle>>,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

/// This thread's runtime for `env`, set up on first use; None where it cannot be.
fn local(env: &Env) -> Option<Rc<Local>> {
    if let Some(l) = LOCAL.with(|c| c.borrow().clone()) {
        return (l.env == env.raw()).then_some(l);
    }
    let uv = uv()?;
    let rt = EmbeddedRuntime::new().ok()?;
    let uv_loop = env.get_uv_event_loop().ok()?.cast::<c_void>();
    // SAFETY: handles are allocated with the size libuv reports and initialized on the env's own loop
    // (this is its JS thread); they are closed by the env's cleanup hook.
    unsafe {
        let poll = libc::calloc(1, (uv.handle_size)(UV_POLL));
        let timer = libc::calloc(1, (uv.handle_size)(UV_TIMER));
        if poll.is_null() || timer.is_null() || (uv.poll_init)(uv_loop, poll, rt.fd()) != 0 {
            libc::free(poll);
            libc::free(timer);
            return None;
        }
        // Watched from now on, but holding the loop open only while calls are pending.
        if (uv.poll_start)(poll, UV_READABLE, on_ready) != 0 || (uv.timer_init)(uv_loop, timer) != 0 {
            (uv.close)(poll, Some(free_handle));
            libc::free(timer);
            return None;
        }
        (uv.unref)(poll);
        let mut name = ptr::null_mut();
        let mut async_context = ptr::null_mut();
        let made = sys::napi_create_string_utf8(env.raw(), c"dockfleet".as_ptr(), 9, &mut name) == sys::Status::napi_ok
            && sys::napi_async_init(env.raw(), ptr::null_mut(), name, &mut async_context) == sys::Status::napi_ok
            && sys::napi_add_env_cleanup_hook(env.raw(), Some(cleanup), ptr::null_mut()) == sys::Status::napi_ok;
        if !made {
            (uv.close)(poll, Some(free_handle));
            (uv.close)(timer, Some(free_handle));
            return None;
        }
        let l = Rc::new(Local {
            rt,
            uv,
            env: env.raw(),
            poll,
            timer,
            async_context,
            pending: Cell::new(0),
            done: RefCell::new(Vec::new()),
        });
        LOCAL.with(|c| *c.borrow_mut() = Some(l.clone()));
        Some(l)
    }
}

unsafe extern "C" fn free_handle(handle: *mut c_void) {
    // SAFETY: the handle was allocated with calloc in `local`, and libuv is done with it.
    unsafe { libc::free(handle) }
}

/// The env is going away (a worker thread ending, or the process): close the handles before libuv's
/// loop closes, and drop the runtime (calls still pending are dropped unsettled with the env).
unsafe extern "C" fn cleanup(_: *mut c_void) {
    if let Some(l) = LOCAL.with(|c| c.borrow_mut().take()) {
        // SAFETY: the handles were initialized in `local` and are closed once, here.
        unsafe {
            (l.uv.close)(l.poll, Some(free_handle));
            (l.uv.close)(l.timer, Some(free_handle));
            if let Some(f) = FLOOR.with(|f| f.borrow_mut().take()) {
                (l.uv.close)(f.poll, Some(free_handle));
                libc::close(f.fds[0]);
                libc::close(f.fds[1]);
            }
            sys::napi_async_destroy(l.env, l.async_context);
        }
    }
}

/// The `uv_poll` callback: the runtime has events.
unsafe extern "C" fn on_ready(_: *mut c_void, _status: i32, _events: i32) {
    drive();
}

/// The `uv_timer` callback.
unsafe extern "C" fn on_timer(_: *mut c_void) {
    drive();
}

fn drive() {
    if let Some(l) = LOCAL.with(|c| c.borrow().clone()) {
        l.rt.tick();
        settle(&l, true);
    }
}

/// A pointer that only the JS thread uses, carried through a `Send` task of the embedded runtime
/// (which runs only on that thread).
struct OnJsThread<T>(T);
// SAFETY: see above; the embedded runtime's tasks are polled only by `tick`, on the JS thread.
unsafe impl<T> Send for OnJsThread<T> {}

/// Runs a core future as a Promise, its I/O on the JS thread (see the module docs); for calls that
/// leave no task running when they return. Rejections, panics and aborts as in [`crate::call`].
pub(crate) fn call_here<'env, T, J, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, J>>
where
    F: Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Conv<J> + Send + 'static,
    J: ToNapiValue + 'static,
{
    let Some(l) = local(env) else { return crate::call(env, fut) };
    let fut = crate::abort::bind(fut);
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: called on the JS thread with its env.
    check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
    let deferred = OnJsThread(deferred);
    if l.pending.replace(l.pending.get() + 1) == 0 {
        let tick = EmbeddedRuntime::TIMER_TICK.as_millis() as u64;
        // SAFETY: the handles are initialized and belong to this thread's loop.
        unsafe {
            (l.uv.ref_)(l.poll);
            (l.uv.timer_start)(l.timer, on_timer, tick, tick);
        }
    }
    // Spawned inside the runtime and ticked: the request the call starts goes out now.
    l.rt.tick_after(|| {
        l.rt.spawn(async move {
            let out = dockfleet::catch_panic(fut).await;
            let deferred = deferred;
            let settle: Settle = Box::new(move |env| {
                let env = Env::from_raw(env);
                // SAFETY: run by `settle` on the JS thread, with a handle scope open.
                unsafe {
                    match crate::outcome(&env, out).and_then(|v: J| ToNapiValue::to_napi_value(env.raw(), v)) {
                        Ok(v) => sys::napi_resolve_deferred(env.raw(), deferred.0, v),
                        Err(e) => {
                            sys::napi_reject_deferred(env.raw(), deferred.0, JsError::from(e).into_value(env.raw()))
                        }
                    };
                }
            });
            if let Some(l) = LOCAL.with(|c| c.borrow().clone()) {
                l.done.borrow_mut().push(settle);
            }
        })
    });
    settle(&l, false);
    Ok(PromiseRaw::new(env.raw(), promise))
}

/// Settles the calls that finished (in a callback scope from a libuv callback: see [`in_scope`]).
fn settle(l: &Local, from_loop: bool) {
    loop {
        let batch = std::mem::take(&mut *l.done.borrow_mut());
        if batch.is_empty() {
            break;
        }
        in_scope(l, from_loop, || {
            for s in batch {
                s(l.env);
                l.pending.set(l.pending.get() - 1);
            }
        });
    }
    if l.pending.get() == 0 {
        // SAFETY: as in `call_here`.
        unsafe {
            (l.uv.unref)(l.poll);
            (l.uv.timer_stop)(l.timer);
        }
    }
}

/// Runs `f` on the JS thread inside a handle scope and, from a libuv callback (`from_loop`), a callback
/// scope, so that the Promise reactions (microtasks) it queues run when that closes, as after any other
/// Node callback.
fn in_scope(l: &Local, from_loop: bool, f: impl FnOnce()) {
    // SAFETY: on the JS thread, outside any other scope of ours; scopes are closed in reverse.
    unsafe {
        let mut handles = ptr::null_mut();
        sys::napi_open_handle_scope(l.env, &mut handles);
        let mut scope = ptr::null_mut();
        if from_loop {
            let mut resource = ptr::null_mut();
            sys::napi_create_object(l.env, &mut resource);
            sys::napi_open_callback_scope(l.env, resource, l.async_context, &mut scope);
        }
        f();
        if !scope.is_null() {
            sys::napi_close_callback_scope(l.env, scope);
        }
        sys::napi_close_handle_scope(l.env, handles);
    }
}

/// The benchmarks' Node floor: one end of a socket pair watched by a `uv_poll`, whose callback
/// resolves the Promises waiting on it, and the Promises waiting, oldest first.
struct Floor {
    poll: *mut c_void,
    fds: [i32; 2],
    waiting: RefCell<std::collections::VecDeque<sys::napi_deferred>>,
}

thread_local! {
    static FLOOR: RefCell<Option<Rc<Floor>>> = const { RefCell::new(None) };
}

/// What Node itself takes to complete an awaited call from an I/O callback, with no dockfleet work:
/// the Promise returned is resolved by a `uv_poll` callback once the byte this writes to one end of a
/// socket pair can be read at the other. An engine call's completion takes the same path (a readable
/// descriptor, a libuv callback, a Promise settled in a callback scope), plus the runtime's tick and
/// the call's own work: `benches/node_floor.js` measures it, as `benches/asyncio_floor.py` does
/// asyncio's. Rejects where the binding cannot reach libuv.
#[napi_derive::napi(js_name = "_ioFloor", catch_unwind)]
pub fn io_floor(env: &Env) -> Result<PromiseRaw<'_, ()>> {
    let Some(l) = local(env) else { return Err(Error::from_reason("libuv is not reachable from this runtime")) };
    let floor = match FLOOR.with(|f| f.borrow().clone()) {
        Some(f) => f,
        None => {
            let f = Rc::new(new_floor(&l)?);
            FLOOR.with(|c| *c.borrow_mut() = Some(f.clone()));
            f
        }
    };
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: on the JS thread with its env; the descriptor is the floor's own, non-blocking.
    unsafe {
        check_status!(sys::napi_create_promise(env.raw(), &mut deferred, &mut promise))?;
        if floor.waiting.borrow().is_empty() {
            (l.uv.ref_)(floor.poll);
        }
        floor.waiting.borrow_mut().push_back(deferred);
        libc::write(floor.fds[0], b"x".as_ptr().cast(), 1);
    }
    Ok(PromiseRaw::new(env.raw(), promise))
}

fn new_floor(l: &Local) -> Result<Floor> {
    let mut fds = [0; 2];
    // SAFETY: a socket pair of this process's own; the handle is allocated with the size libuv reports
    // and initialized on the env's loop (this is its JS thread); `cleanup` closes both with the env.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        ) != 0
        {
            return Err(Error::from_reason(std::io::Error::last_os_error().to_string()));
        }
        let uv_loop = Env::from_raw(l.env).get_uv_event_loop()?.cast::<c_void>();
        let poll = libc::calloc(1, (l.uv.handle_size)(UV_POLL));
        let watched = !poll.is_null() && (l.uv.poll_init)(uv_loop, poll, fds[1]) == 0;
        if !watched || (l.uv.poll_start)(poll, UV_READABLE, on_floor) != 0 {
            if watched {
                (l.uv.close)(poll, Some(free_handle));
            } else {
                libc::free(poll);
            }
            libc::close(fds[0]);
            libc::close(fds[1]);
            return Err(Error::from_reason("cannot watch the floor's socket"));
        }
        (l.uv.unref)(poll);
        Ok(Floor { poll, fds, waiting: RefCell::new(Default::default()) })
    }
}

/// The floor's `uv_poll` callback: resolves a waiting Promise per byte read, in a callback scope.
unsafe extern "C" fn on_floor(_: *mut c_void, _status: i32, _events: i32) {
    let (Some(l), Some(floor)) = (LOCAL.with(|c| c.borrow().clone()), FLOOR.with(|f| f.borrow().clone())) else {
        return;
    };
    let mut buf = [0u8; 64];
    // SAFETY: the floor's own non-blocking descriptor.
    let n = unsafe { libc::read(floor.fds[1], buf.as_mut_ptr().cast(), buf.len()) };
    in_scope(&l, true, || {
        // SAFETY: on the JS thread, inside the scopes `in_scope` opened; each deferred is resolved once.
        unsafe {
            let mut undefined = ptr::null_mut();
            sys::napi_get_undefined(l.env, &mut undefined);
            for _ in 0..n.max(0) {
                if let Some(d) = floor.waiting.borrow_mut().pop_front() {
                    sys::napi_resolve_deferred(l.env, d, undefined);
                }
            }
        }
    });
    if floor.waiting.borrow().is_empty() {
        // SAFETY: the floor's handle, initialized in `new_floor`, on its loop's thread.
        unsafe { (l.uv.unref)(floor.poll) };
    }
}
