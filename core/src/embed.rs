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
//! The tasks of [`EmbeddedRuntime::spawn`], and the connections their calls open, are a local task
//! set that the ticks poll directly: starting a call ([`EmbeddedRuntime::tick_after`]) writes its
//! request with no trip through tokio's scheduler and no look at the drivers, and a tick that
//! completes it looks at the drivers once. The runtime is therefore tied to the thread that made it
//! (it is neither `Send` nor `Sync`).
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
    /// The [`EmbeddedRuntime::id`] of the runtime this thread is ticking, 0 outside a tick.
    static TICKING: Cell<usize> = const { Cell::new(0) };
    /// Set when the local tasks of the runtime being ticked are woken: [`EmbeddedRuntime::run_local`]
    /// polls them again.
    static LOCAL_WOKEN: Cell<bool> = const { Cell::new(false) };
    /// Set while an embedded runtime's local tasks are polled (its `LocalSet` is current), where
    /// [`spawn_here`] spawns onto them.
    static IN_LOCAL: Cell<bool> = const { Cell::new(false) };
    /// `Some` while [`Repoll`] polls on this thread: `Some(true)` once the future it polls was woken.
    static REPOLL: Cell<Option<bool>> = const { Cell::new(None) };
}

/// A current-thread tokio runtime driven by a foreign event loop; see the [module docs](self).
pub struct EmbeddedRuntime {
    /// The tasks of [`spawn`](Self::spawn) and the connections they open: polled by the ticks
    /// directly, outside the scheduler's `block_on`. (Declared first, so dropped before `rt`.)
    local: tokio::task::LocalSet,
    /// Handed to `local` while the ticks poll it: see [`LocalWake`].
    local_waker: Waker,
    id: usize,
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
                        return Ok(Self::with(rt, *fd));
                    }
                }
            }
            Err(Error::Internal("the embedded runtime's epoll instance could not be identified".into()))
        }
        #[cfg(not(target_os = "linux"))]
        Err(Error::Internal("an embedded runtime needs Linux's epoll".into()))
    }

    #[cfg(target_os = "linux")]
    fn with(rt: tokio::runtime::Runtime, fd: std::os::fd::RawFd) -> Self {
        static IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let id = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nudge = Arc::new(tokio::sync::Notify::new());
        let local_waker = Waker::from(Arc::new(LocalWake { id, nudge: nudge.clone() }));
        let this = Self { local: tokio::task::LocalSet::new(), local_waker, id, rt, fd };
        this.rt.spawn(tracked(keep_a_timer()));
        this.rt.spawn(tracked(async move {
            loop {
                nudge.notified().await;
            }
        }));
        // Both wait from now on, and the wake-up their spawning made is taken: the descriptor is quiet.
        this.tick();
        this
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
        self.rt.block_on(Repoll(InLocal(self.local.run_until(Hooked::<_, AskRepoll>::new(fut)))))
    }

    /// Starts `fut` as a task of this runtime: it runs while the runtime is ticked (or blocked on), and
    /// its wake-ups are seen by [`tick`](Self::tick), so a tick never returns while it is ready to run.
    /// Aborting it through the handle takes effect at the next tick.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.local.spawn_local(fut)
    }

    /// Processes the I/O and timer events that are pending and runs every task that is ready, until
    /// nothing is left to do without waiting; returns at once when called from inside a tick. Cheap
    /// when there is nothing to do (one non-blocking `epoll_wait`).
    pub fn tick(&self) {
        let Some(_ticking) = start_ticking(self.id) else { return };
        // One look at the drivers (more only while tasks of the scheduler's own keep being woken),
        // which wakes the local tasks that have events; then those run.
        self.rt.block_on(Settle { rounds: 0 });
        let _entered = self.rt.enter();
        self.run_local(|| ());
    }

    /// Calls `f` inside the runtime, as one of its tasks would be (what it spawns or wakes is queued
    /// directly, with no wake-up of the descriptor), then runs every task that is ready. A binding
    /// polls a call's future this way, so that the request it starts goes out before the loop waits
    /// again. Unlike [`tick`](Self::tick), it does not look at the drivers: events that are pending
    /// keep the descriptor readable. Inside a tick, only calls `f`.
    pub fn tick_after<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(_ticking) = start_ticking(self.id) else { return f() };
        let _entered = self.rt.enter();
        self.run_local(f)
    }

    /// Calls `f` with the local task set current, then polls the local tasks until none is ready.
    /// Tasks of the scheduler's own that this wakes run at the next tick (their wake-up, from outside
    /// the scheduler, makes the descriptor readable).
    fn run_local<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        {
            let first = std::future::poll_fn(|_| {
                if let Some(f) = f.take() {
                    out = Some(f());
                }
                Poll::<()>::Pending
            });
            let mut run = std::pin::pin!(InLocal(self.local.run_until(first)));
            let mut cx = Context::from_waker(&self.local_waker);
            loop {
                LOCAL_WOKEN.with(|w| w.set(false));
                let _ = run.as_mut().poll(&mut cx);
                if !LOCAL_WOKEN.with(|w| w.get()) {
                    break;
                }
            }
        }
        out.expect("the first poll calls f")
    }
}

/// A thread-local cell set to a value, and given its previous value back when this is dropped.
struct Scoped<T: Copy + 'static> {
    cell: &'static std::thread::LocalKey<Cell<T>>,
    was: T,
}

impl<T: Copy + 'static> Scoped<T> {
    fn set(cell: &'static std::thread::LocalKey<Cell<T>>, value: T) -> Self {
        Scoped { cell, was: cell.with(|c| c.replace(value)) }
    }
}

impl<T: Copy + 'static> Drop for Scoped<T> {
    fn drop(&mut self) {
        self.cell.with(|c| c.set(self.was));
    }
}

/// Marks this thread as ticking the runtime `id` until dropped; None when it is in a tick already.
fn start_ticking(id: usize) -> Option<Scoped<usize>> {
    (TICKING.with(Cell::get) == 0).then(|| Scoped::set(&TICKING, id))
}

/// The waker of an embedded runtime's local task set. Woken inside a tick of that runtime (the I/O
/// driver waking a task during the tick's look, or one task another), it only asks the tick to poll
/// the set again. Woken anywhere else (another thread, an abort between ticks), it wakes a task of the
/// scheduler's own, which makes the runtime's descriptor readable so that the loop ticks.
struct LocalWake {
    id: usize,
    nudge: Arc<tokio::sync::Notify>,
}

impl Wake for LocalWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if TICKING.with(|t| t.get()) == self.id {
            LOCAL_WOKEN.with(|w| w.set(true));
        } else {
            self.nudge.notify_one();
        }
    }
}

/// How many times [`Repoll`] polls again at once before it leaves the rest to the scheduler.
const MAX_REPOLLS: u32 = 4;

/// [`EmbeddedRuntime::block_on`]'s future: the caller's future inside the local task set's
/// `run_until`, which polls the future and then the local tasks. When a local task wakes the future
/// (a connection task that read the answer), this polls it again at once, instead of letting the
/// scheduler come back for it after one more look at the drivers: a blocking call returns as soon as
/// its answer is read.
struct Repoll<F>(F);

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _restore = Scoped::set(&REPOLL, Some(false));
        // SAFETY: structural pinning of the only field; it is never moved out.
        let mut inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        for _ in 0..MAX_REPOLLS {
            REPOLL.with(|r| r.set(Some(false)));
            if let Poll::Ready(out) = inner.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            if REPOLL.with(|r| r.get()) != Some(true) {
                return Poll::Pending;
            }
        }
        // Still woken: the scheduler polls again after a look at the drivers.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// [`Hooked`] so that its wake-ups, while [`Repoll`] polls on this thread, only ask it to poll again.
struct AskRepoll;

impl Hook for AskRepoll {
    fn wake(outer: &Waker) {
        let inside = REPOLL.with(|r| r.get().is_some() && r.replace(Some(true)).is_some());
        if !inside {
            outer.wake_by_ref();
        }
    }
}

/// `fut` polled with [`IN_LOCAL`] set (it is a `LocalSet`'s `run_until`).
struct InLocal<F>(F);

impl<F: Future> Future for InLocal<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _in_local = Scoped::set(&IN_LOCAL, true);
        // SAFETY: structural pinning of the only field; it is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}

/// Spawns `fut` on the current runtime: onto the local tasks of the embedded runtime whose local tasks
/// are being polled on this thread, if any (so that its ticks poll it directly); otherwise as a task
/// of the runtime's scheduler, [tracked](tracked). dockfleet's transport spawns its connection tasks
/// through this.
pub(crate) fn spawn_here<F>(fut: F)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if IN_LOCAL.with(|l| l.get()) {
        tokio::task::spawn_local(fut);
    } else {
        tokio::spawn(tracked(fut));
    }
}

/// Completes once a round of the scheduler (every ready task, then a non-blocking look at the I/O and
/// timer drivers) left no tracked task woken and not yet run: the run queue is then empty, and anything
/// that happens later shows up as readiness of the epoll instance. A task woken by another task runs in
/// the same round, so it needs no further round (and no further look at the drivers). The local tasks
/// (a call and its connection) are not the scheduler's: a tick that completes a call takes one look.
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

/// How many `fork()`s lie between this process and the one that first used dockfleet: 0 there, 1 in a
/// child it forked (Python's `os.fork`, `multiprocessing`'s default start method on Linux), 2 in a
/// grandchild, and so on. Counted from the first call, which registers a `pthread_atfork` handler.
///
/// A forked child inherits its parent's memory but none of its other threads, and shares its
/// descriptors: a tokio runtime's epoll instance and the sockets of pooled connections are the
/// parent's too. A child that used them would read the parent's answers (and the parent the child's),
/// or wait on threads that do not exist. Whatever keeps runtimes or connections per process records
/// where it made them (an [`Origin`]) and, in another process, leaves them alone and makes new
/// ones: dockfleet's transport does so for its connection pools, and the bindings for their runtimes.
/// What was left behind is forgotten rather than dropped, because dropping a runtime or a connection
/// unregisters descriptors from an epoll instance that the parent still uses.
pub fn forks() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FORKS: AtomicU64 = AtomicU64::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forked() {
        // In the child, right after fork(): only async-signal-safe work belongs here.
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    #[cfg(unix)]
    // SAFETY: the handler is a plain function that only increments an atomic.
    REGISTER.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forked));
    });
    FORKS.load(Ordering::Relaxed)
}

/// The process something was made in (a runtime, a connection pool, a stream), told apart from the
/// processes forked after it: see [`forks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin(u64);

impl Origin {
    /// This process.
    pub fn here() -> Self {
        Origin(forks())
    }

    /// Whether this is still the process it was made in.
    pub fn is_here(self) -> bool {
        self.0 == forks()
    }

    /// Drops `value` in the process it was made in; in a process forked after it, forgets it instead
    /// (dropping it there would unregister the parent's descriptors, see [`forks`]).
    pub fn release<T>(self, value: T) {
        if self.is_here() {
            drop(value);
        } else {
            std::mem::forget(value);
        }
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
/// return while a woken task waits in the run queue). Tasks of the runtime's scheduler are spawned so.
pub(crate) fn tracked<F: Future>(fut: F) -> Hooked<F, Track> {
    Hooked::new(fut)
}

/// [`tracked`]'s hook: a wake-up on this thread sets [`WOKEN`], a poll clears it and counts in [`POLLED`].
pub(crate) struct Track;

impl Hook for Track {
    fn wake(outer: &Waker) {
        WOKEN.with(|w| w.set(true));
        outer.wake_by_ref();
    }
    fn poll() {
        // Whatever woke this task is handled by this poll (see `WOKEN`).
        WOKEN.with(|w| w.set(false));
        POLLED.with(|p| p.set(p.get().saturating_add(1)));
    }
}

/// What a [`Hooked`] future does on its wake-ups and polls.
pub(crate) trait Hook: 'static {
    /// A wake-up of the future; `outer` is the waker it was polled with.
    fn wake(outer: &Waker);
    /// Before each poll of the future.
    fn poll() {}
}

/// A future polled with a waker of its own, which calls `H` on its wake-ups.
pub(crate) struct Hooked<F, H> {
    fut: Pin<Box<F>>,
    /// The waker it was last polled with, and the one wrapping it that `fut` is polled with.
    waker: Option<(Waker, Waker)>,
    hook: std::marker::PhantomData<fn() -> H>,
}

impl<F, H> Hooked<F, H> {
    fn new(fut: F) -> Self {
        Hooked { fut: Box::pin(fut), waker: None, hook: std::marker::PhantomData }
    }
}

struct HookWake<H>(Waker, std::marker::PhantomData<fn() -> H>);

impl<H: Hook> Wake for HookWake<H> {
    fn wake(self: Arc<Self>) {
        H::wake(&self.0);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        H::wake(&self.0);
    }
}

impl<F: Future, H: Hook> Future for Hooked<F, H> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !matches!(&this.waker, Some((of, _)) if of.will_wake(cx.waker())) {
            let hooked = Waker::from(Arc::new(HookWake::<H>(cx.waker().clone(), std::marker::PhantomData)));
            this.waker = Some((cx.waker().clone(), hooked));
        }
        let (_, hooked) = this.waker.as_ref().expect("set above");
        H::poll();
        this.fut.as_mut().poll(&mut Context::from_waker(hooked))
    }
}
