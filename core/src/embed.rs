//! Driving dockfleet from another event loop (asyncio's, libuv's, glib's…) on that loop's own thread.
//!
//! A call made from a foreign event loop normally runs on a tokio runtime of its own threads: the I/O
//! completes there and the result is handed back to the loop's thread, which costs a thread wake-up
//! each way per call. An [`EmbeddedRuntime`] is a current-thread tokio runtime that the foreign loop
//! drives instead: the loop watches [`EmbeddedRuntime::fd`] (readable when the runtime has I/O or a
//! wake-up to process) and calls [`EmbeddedRuntime::tick`] when it is, and also every
//! [`EmbeddedRuntime::TIMER_TICK`] while calls are pending (tokio's timers are not visible to the
//! loop). Futures polled with the runtime entered (see [`EmbeddedRuntime::enter`]) then do all their
//! I/O on the loop's thread. Connection tasks started by dockfleet's transport run inside `tick`.
//!
//! Only calls that leave no task running after they return belong here (a request to an engine, say):
//! a background task would run only while the loop ticks the runtime.
//!
//! A loop of one's own, with `poll(2)` standing for the foreign loop's wait:
//!
//! ```
//! use dockfleet::embed::EmbeddedRuntime;
//! use std::sync::{Arc, Mutex};
//!
//! let rt = EmbeddedRuntime::new()?;
//! let answer = Arc::new(Mutex::new(None));
//! let slot = answer.clone();
//! rt.tick_after(|| {
//!     rt.spawn(async move {
//!         tokio::time::sleep(std::time::Duration::from_millis(5)).await;
//!         *slot.lock().unwrap() = Some(42);
//!     })
//! });
//! while answer.lock().unwrap().is_none() {
//!     // Wait until the descriptor is readable, or for the timer tick (the sleep is a tokio timer).
//!     let mut fd = libc::pollfd { fd: rt.fd(), events: libc::POLLIN, revents: 0 };
//!     unsafe { libc::poll(&mut fd, 1, EmbeddedRuntime::TIMER_TICK.as_millis() as i32) };
//!     rt.tick();
//! }
//! assert_eq!(*answer.lock().unwrap(), Some(42));
//! # Ok::<(), dockfleet::Error>(())
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::error::{Error, Result};

thread_local! {
    /// Set when a task spawned through [`tracked`] is woken on this thread, cleared when one is polled:
    /// after a scheduler round, set only if a task was woken that the round did not run (by the
    /// drivers, which run after the tasks).
    static WOKEN: Cell<bool> = const { Cell::new(false) };
    /// Polls of tasks spawned through [`tracked`] on this thread since [`Settle`] last looked.
    static POLLED: Cell<u32> = const { Cell::new(0) };
    /// Set while [`EmbeddedRuntime::tick`] runs on this thread.
    static TICKING: Cell<bool> = const { Cell::new(false) };
}

/// A current-thread tokio runtime driven by a foreign event loop; see the [module docs](self).
pub struct EmbeddedRuntime {
    rt: tokio::runtime::Runtime,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
}

impl std::fmt::Debug for EmbeddedRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRuntime").field("fd", &self.fd()).finish()
    }
}

impl EmbeddedRuntime {
    /// How often a loop should tick the runtime while calls are pending and nothing else woke it, so
    /// that tokio's timers (request and connect timeouts) fire: at most this late.
    pub const TIMER_TICK: Duration = Duration::from_millis(20);

    /// A new runtime. Fails (`internal`) where its readiness cannot be exposed as a file
    /// descriptor (outside Linux, or when the runtime's epoll instance cannot be told apart).
    pub fn new() -> Result<Self> {
        #[cfg(target_os = "linux")]
        {
            // Runtimes made at once by other threads of this process would be told apart only by luck.
            static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one_at_a_time = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..3 {
                let before = anon_fds();
                let rt = build()?;
                let new: Vec<_> = anon_fds().into_iter().filter(|fd| !before.contains(fd)).collect();
                // The I/O driver's epoll instance is the one watching its waker (an eventfd); tokio also
                // makes others (the signal driver's), and other threads may open descriptors meanwhile.
                let eventfds: Vec<_> = new.iter().filter(|(_, kind)| kind == "eventfd").map(|(fd, _)| *fd).collect();
                // (It may also appear under a second number, a duplicate that watches the same set.)
                let drivers: Vec<_> = new
                    .iter()
                    .filter(|(_, kind)| kind == "eventpoll")
                    .map(|(fd, _)| (*fd, watched_fds(*fd)))
                    .filter(|(_, watched)| watched.iter().any(|t| eventfds.contains(t)))
                    .collect();
                if let Some((fd, watched)) = drivers.iter().min_by_key(|(fd, _)| *fd) {
                    if drivers.iter().all(|(_, w)| w == watched) {
                        let this = Self { rt, fd: *fd };
                        this.spawn(keep_a_timer());
                        return Ok(this);
                    }
                }
            }
            Err(Error::Internal("the embedded runtime's epoll instance could not be identified".into()))
        }
        #[cfg(not(target_os = "linux"))]
        Err(Error::Internal("an embedded runtime needs Linux's epoll".into()))
    }

    /// The descriptor a foreign loop watches for readability: tokio's epoll instance, readable while
    /// it has events to deliver (I/O, or a wake-up from another thread).
    pub fn fd(&self) -> i32 {
        #[cfg(target_os = "linux")]
        return self.fd;
        #[cfg(not(target_os = "linux"))]
        -1
    }

    /// Enters the runtime's context: futures polled while the guard lives register their I/O and
    /// timers with this runtime.
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt.enter()
    }

    /// Runs `fut` to completion on this thread, driving everything else on the runtime meanwhile (for
    /// blocking callers). Panics when called from inside [`tick`](Self::tick) or another runtime.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Starts `fut` as a task of this runtime: it runs while the runtime is ticked (or blocked on), and
    /// its wake-ups are seen by [`tick`](Self::tick), so a tick never returns while it is ready to run.
    /// Aborting it through the handle takes effect at the next tick.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(tracked(fut))
    }

    /// Runs every task that is ready and processes the I/O and timer events that are pending, until
    /// nothing is left to do without waiting; returns at once when called from inside a tick. Cheap
    /// when there is nothing to do (two non-blocking `epoll_wait`s).
    pub fn tick(&self) {
        self.tick_after(|| ());
    }

    /// Calls `f` inside the runtime, as one of its tasks would be (what it spawns or wakes is queued
    /// directly, with no wake-up of the descriptor), then ticks. A binding polls a call's future this
    /// way, so that the request it starts goes out before the loop waits again. Inside a tick, only
    /// calls `f`.
    pub fn tick_after<R>(&self, f: impl FnOnce() -> R) -> R {
        if TICKING.with(|t| t.replace(true)) {
            return f();
        }
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                TICKING.with(|t| t.set(false));
            }
        }
        let _reset = Reset;
        self.rt.block_on(async {
            let out = f();
            Settle { rounds: 0 }.await;
            out
        })
    }
}

/// Completes once a round of the scheduler (every ready task, then a non-blocking look at the I/O and
/// timer drivers) left no tracked task woken and not yet run: the run queue is then empty, and anything
/// that happens later shows up as readiness of the epoll instance. A task woken by another task runs in
/// the same round, so it needs no further round (and no further look at the drivers): a tick that
/// starts a request takes one look, a tick that completes one two.
struct Settle {
    rounds: u32,
}

impl Future for Settle {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let woken = WOKEN.with(|w| w.replace(false));
        // A round cut short after `EVENT_INTERVAL` polls may leave woken tasks queued behind the last one.
        let cut_short = POLLED.with(|p| p.replace(0)) >= EVENT_INTERVAL;
        if self.rounds > 0 && !woken && !cut_short {
            return Poll::Ready(());
        }
        self.rounds += 1;
        // Woken at once: the scheduler runs the ready tasks, polls the drivers without blocking (it
        // has pending work: this future), and polls this future again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// How far ahead [`keep_a_timer`] keeps its timer.
const KEEPER: Duration = Duration::from_secs(1);

/// Keeps a timer set in the runtime's wheel, at most [`KEEPER`] ahead. tokio's time driver wakes its
/// I/O driver (a write to its eventfd, which turns [`EmbeddedRuntime::fd`] readable) whenever a timer
/// is set earlier than every one it knew of when it last parked, and with no timer set that is every
/// request's timeout: one system call and one more event for the loop per call. With this timer set,
/// a timeout longer than [`KEEPER`] is never the earliest, and setting it wakes nothing. (The timer
/// fires only while the runtime is ticked, and then costs one wake-up a second.)
async fn keep_a_timer() {
    loop {
        tokio::time::sleep(KEEPER).await;
    }
}

/// How many tasks a scheduler round polls at most before it looks at the drivers.
const EVENT_INTERVAL: u32 = 1024;

fn build() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // A tick runs every ready task before it polls the drivers (the default polls them every 61).
        .event_interval(EVENT_INTERVAL)
        .build()
        .map_err(|e| Error::Internal(format!("cannot build an embedded runtime: {e}")))
}

/// This process's anonymous-inode descriptors and their kinds (`eventpoll`, `eventfd`…).
#[cfg(target_os = "linux")]
fn anon_fds() -> Vec<(std::os::fd::RawFd, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let target = std::fs::read_link(e.path()).ok()?;
        let kind = target.to_str()?.strip_prefix("anon_inode:[")?.strip_suffix(']')?.to_string();
        Some((e.file_name().to_str()?.parse().ok()?, kind))
    })
    .collect()
}

/// The descriptors an epoll instance watches (its `tfd:` lines in `/proc/self/fdinfo`).
#[cfg(target_os = "linux")]
fn watched_fds(epoll: std::os::fd::RawFd) -> Vec<std::os::fd::RawFd> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epoll}")).unwrap_or_default();
    info.lines().filter_map(|l| l.strip_prefix("tfd:")?.split_whitespace().next()?.parse().ok()).collect()
}

/// `fut` wrapped so that waking it on this thread is seen by [`EmbeddedRuntime::tick`] (which must not
/// return while a woken task waits in the run queue). dockfleet's transport spawns its connection
/// tasks through this.
pub(crate) fn tracked<F: Future>(fut: F) -> Tracked<F> {
    Tracked { fut: Box::pin(fut), waker: None }
}

/// See [`tracked`].
pub(crate) struct Tracked<F> {
    fut: Pin<Box<F>>,
    /// The task's own waker, and the one wrapping it that the future is polled with.
    waker: Option<(Waker, Waker)>,
}

struct Flagging(Waker);

impl Wake for Flagging {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        WOKEN.with(|w| w.set(true));
        self.0.wake_by_ref();
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let fresh = !matches!(&this.waker, Some((of, _)) if of.will_wake(cx.waker()));
        if fresh {
            let flagging = Waker::from(Arc::new(Flagging(cx.waker().clone())));
            this.waker = Some((cx.waker().clone(), flagging));
        }
        let (_, flagging) = this.waker.as_ref().expect("set above");
        // Whatever woke this task is handled by this poll (see `WOKEN`).
        WOKEN.with(|w| w.set(false));
        POLLED.with(|p| p.set(p.get().saturating_add(1)));
        this.fut.as_mut().poll(&mut Context::from_waker(flagging))
    }
}
