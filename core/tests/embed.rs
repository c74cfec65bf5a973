//! `EmbeddedRuntime` driven the way a foreign event loop drives it: wait for its descriptor to be
//! readable (or for `TIMER_TICK`), tick, repeat. Engine calls against the testbed must then finish on
//! readiness alone: a tick that returned while a woken task still waited in the run queue would leave
//! the descriptor quiet and the call stalled until the timer.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::*;
use dockfleet::embed::EmbeddedRuntime;

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Whether `fd` turned readable within `timeout` (what an event loop's poll would report).
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    n == 1
}

/// What a loop does with one call: poll it with the runtime entered, tick, then sleep on the
/// descriptor. Returns the output and how many times a tick after a wait that ended by the timer,
/// with the descriptor still quiet, made progress: work a previous tick had left behind. (A wait that
/// times out because the engine is slow to answer is not counted: its tick finds nothing to do.)
fn drive<F: Future>(rt: &EmbeddedRuntime, fut: F) -> (F::Output, usize) {
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(flag.clone());
    let mut fut = pin!(fut);
    let mut timer_waits = 0;
    loop {
        if flag.0.swap(false, Ordering::SeqCst) {
            // As the bindings poll a call: inside the runtime, then a tick.
            if let Poll::Ready(out) = rt.tick_after(|| fut.as_mut().poll(&mut Context::from_waker(&waker))) {
                return (out, timer_waits);
            }
        }
        if flag.0.load(Ordering::SeqCst) {
            continue;
        }
        let quiet = !readable(rt.fd(), EmbeddedRuntime::TIMER_TICK) && !readable(rt.fd(), Duration::ZERO);
        rt.tick();
        if quiet && flag.0.load(Ordering::SeqCst) {
            timer_waits += 1;
        }
    }
}

#[test]
fn engine_calls_finish_on_readiness_alone() {
    let rt = EmbeddedRuntime::new().expect("an embedded runtime on Linux");
    let h = host("df-1");
    let mut stalls = 0;
    for i in 0..300 {
        let (out, timer_waits) = match i % 3 {
            0 => drive(&rt, async { h.ping().await.map(|_| ()) }),
            1 => drive(&rt, async { h.list_containers(&Default::default()).await.map(|_| ()) }),
            _ => drive(&rt, async { h.info().await.map(|_| ()) }),
        };
        out.unwrap_or_else(|e| panic!("call {i}: {e}"));
        stalls += timer_waits;
    }
    assert_eq!(stalls, 0, "calls waited for the timer tick {stalls} times: a tick left work behind");
}

#[test]
fn timers_fire_on_timer_ticks_and_other_threads_wake_the_descriptor() {
    let rt = EmbeddedRuntime::new().unwrap();
    let t = Instant::now();
    let sleep = {
        let _entered = rt.enter();
        tokio::time::sleep(Duration::from_millis(30))
    };
    let ((), _) = drive(&rt, sleep);
    let took = t.elapsed();
    // (A generous bound: the tests share two cores with the engines, and a tick can come late.)
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_millis(30) + 25 * EmbeddedRuntime::TIMER_TICK,
        "{took:?}"
    );

    // A task woken from another thread: the descriptor turns readable, with no timer needed.
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let task = {
        let _entered = rt.enter();
        tokio::spawn(async move { rx.await.unwrap() + 1 })
    };
    rt.tick();
    assert!(!readable(rt.fd(), Duration::ZERO), "nothing to do yet");
    std::thread::spawn(move || tx.send(41).unwrap()).join().unwrap();
    assert!(readable(rt.fd(), Duration::from_secs(1)), "a wake from another thread shows on the descriptor");
    let (out, timer_waits) = drive(&rt, task);
    assert_eq!((out.unwrap(), timer_waits), (42, 0));
}

#[test]
fn a_tick_inside_a_tick_returns_and_blocking_callers_share_the_runtime() {
    let rt = EmbeddedRuntime::new().unwrap();
    // From inside a tick (a call's future polled by `tick_after`), a tick is a no-op, not a panic, and
    // a nested `tick_after` only calls its function.
    let nested = rt.tick_after(|| {
        rt.tick();
        rt.tick_after(|| 42)
    });
    assert_eq!(nested, 42);
    // Blocking callers drive the same runtime (Python's blocking facade does), and the connection a
    // blocking call opened serves the calls a loop drives next, and the other way round.
    let h = host("df-1");
    rt.block_on(h.ping()).unwrap();
    let ((), timer_waits) = drive(&rt, async { h.ping().await.map(|_| ()).unwrap() });
    assert_eq!(timer_waits, 0);
    rt.block_on(h.ping()).unwrap();
}

#[test]
fn spawned_tasks_run_in_ticks_and_wakes_from_elsewhere_show_on_the_descriptor() {
    let rt = EmbeddedRuntime::new().unwrap();
    // A spawned task woken from another thread: the descriptor turns readable, and a tick runs it.
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let task = rt.tick_after(|| {
        rt.spawn(async move {
            let v = rx.await.unwrap() + 1;
            done_tx.send(v).unwrap();
        })
    });
    assert!(!readable(rt.fd(), Duration::ZERO), "nothing to do yet");
    std::thread::spawn(move || tx.send(41).unwrap()).join().unwrap();
    assert!(readable(rt.fd(), Duration::from_secs(1)), "a wake from another thread shows on the descriptor");
    rt.tick();
    assert_eq!(done_rx.try_recv(), Ok(42), "the tick ran the woken task");
    assert!(task.is_finished());

    // Aborted between ticks: the descriptor turns readable, and the next tick drops the task.
    let dropped = Arc::new(AtomicBool::new(false));
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let guard = SetOnDrop(dropped.clone());
    let task = rt.tick_after(|| {
        rt.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
    });
    rt.tick();
    assert!(!dropped.load(Ordering::SeqCst));
    task.abort();
    assert!(readable(rt.fd(), Duration::from_secs(1)), "an abort between ticks shows on the descriptor");
    rt.tick();
    assert!(dropped.load(Ordering::SeqCst), "the tick after the abort dropped the task");
}

/// The count of the eventfd that wakes the runtime's I/O driver (it only grows: tokio never reads it).
fn waker_count(epoll: i32) -> u64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epoll}")).unwrap();
    let mut watched =
        info.lines().filter_map(|l| l.strip_prefix("tfd:")?.split_whitespace().next()?.parse::<i32>().ok());
    let eventfd = watched
        .find(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventfd]")
        })
        .expect("the driver's epoll instance watches its eventfd");
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{eventfd}")).unwrap();
    let count = info.lines().find_map(|l| l.strip_prefix("eventfd-count:")).expect("an eventfd's count");
    u64::from_str_radix(count.trim(), 16).unwrap()
}

#[test]
fn engine_calls_do_not_wake_the_driver_to_set_their_timeouts() {
    // Every request sets a timer (its timeout); with no earlier one set, tokio would wake the driver
    // for it (an eventfd write, and one more event for the loop) on every call.
    let rt = EmbeddedRuntime::new().unwrap();
    let h = host("df-1");
    let (out, _) = drive(&rt, h.ping());
    out.unwrap();
    let before = waker_count(rt.fd());
    for _ in 0..50 {
        let (out, _) = drive(&rt, h.ping());
        out.unwrap();
    }
    let woken = waker_count(rt.fd()) - before;
    assert!(woken <= 3, "50 pings woke the driver {woken} times");
}

#[test]
fn a_blocking_caller_that_keeps_waking_itself_still_lets_the_drivers_turn() {
    // `block_on` polls a future again at once when it is woken while being polled, but only a few
    // times in a row: a future that wakes itself on every poll until a timer fires must see the timer
    // fire (the drivers turn between its polls), not spin.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = EmbeddedRuntime::new().unwrap();
        let t = Instant::now();
        let polls = rt.block_on(async {
            let mut sleep = pin!(tokio::time::sleep(Duration::from_millis(20)));
            let mut polls = 0u64;
            std::future::poll_fn(|cx| {
                polls += 1;
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(polls);
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await
        });
        // And yields (deferred wake-ups) go through the scheduler too.
        rt.block_on(async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        });
        tx.send((polls, t.elapsed())).unwrap();
    });
    let (polls, took) = rx.recv_timeout(Duration::from_secs(10)).expect("block_on returned");
    assert!(took >= Duration::from_millis(20), "{took:?}");
    assert!(polls > 1, "{polls}");
}

/// `forks()` in a forked child is one more than in its parent (the child does nothing but read it and
/// exit: the test harness's other threads do not exist there).
#[test]
fn forks_counts_the_forks_since_the_first_use() {
    let before = dockfleet::embed::forks();
    // SAFETY: the child only reads an atomic and calls `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let child = dockfleet::embed::forks();
        unsafe { libc::_exit(if child == before + 1 { 0 } else { 1 }) };
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw no fork: {status}");
    assert_eq!(dockfleet::embed::forks(), before, "the parent's count is its own");
}
