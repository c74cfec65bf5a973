//! Aborting a call from an `AbortSignal`: the binding's plumbing, not a core module. dockfleet.js
//! arms a registration (`_armAbort`) just before it starts a call that was given a signal; the call's
//! future is bound to it ([`bind`], in [`crate::call`] and [`crate::embed::call_here`]), and the
//! signal's `abort` event aborts it (`_abort`): the future is dropped, which cancels its work as
//! dropping it does in Rust and cancelling the task does in Python, and the call rejects with the code
//! `cancelled`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;

use futures::future::{AbortHandle, AbortRegistration, Abortable};

thread_local! {
    /// The registration for the call about to start on this (the JS) thread.
    static ARMED: RefCell<Option<AbortRegistration>> = const { RefCell::new(None) };
    /// The handles of the calls started with a signal and not settled yet, by id.
    static HANDLES: RefCell<HashMap<u32, AbortHandle>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
}

/// Arms a registration for the next call this thread starts, and returns the id that aborts it.
#[napi_derive::napi(js_name = "_armAbort", catch_unwind)]
pub fn arm_abort() -> u32 {
    let (handle, registration) = AbortHandle::new_pair();
    let id = NEXT_ID.with(|n| {
        n.set(n.get().wrapping_add(1));
        n.get()
    });
    HANDLES.with(|h| h.borrow_mut().insert(id, handle));
    ARMED.with(|a| *a.borrow_mut() = Some(registration));
    id
}

/// Drops a registration that no call took (the call threw before it started).
#[napi_derive::napi(js_name = "_disarmAbort", catch_unwind)]
pub fn disarm_abort() {
    ARMED.with(|a| a.borrow_mut().take());
}

/// Aborts the call armed as `id`, if it has not settled.
#[napi_derive::napi(js_name = "_abort", catch_unwind)]
pub fn abort(id: u32) {
    if let Some(h) = HANDLES.with(|h| h.borrow_mut().remove(&id)) {
        h.abort();
    }
}

/// Forgets the handle of the call armed as `id` (it settled).
#[napi_derive::napi(js_name = "_forgetAbort", catch_unwind)]
pub fn forget_abort(id: u32) {
    HANDLES.with(|h| h.borrow_mut().remove(&id));
}

/// `fut`, bound to the registration armed for it, if any: aborting it ends it with
/// [`dockfleet::Error::Cancelled`], dropping `fut`.
pub(crate) fn bind<T, F>(fut: F) -> impl Future<Output = dockfleet::Result<T>> + Send + 'static
where
    F: Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let registration = ARMED.with(|a| a.borrow_mut().take());
    async move {
        match registration {
            None => fut.await,
            Some(r) => Abortable::new(fut, r)
                .await
                .unwrap_or_else(|_| Err(dockfleet::Error::Cancelled("aborted by its AbortSignal".into()))),
        }
    }
}
