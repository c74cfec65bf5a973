//! dockfleet errors as JS `Error`s: `.code` is the stable dockfleet code, `.cause` the chain of causes.

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Builds the JS error for a core error (on the JS thread) and wraps it so napi rejects with it as is.
pub(crate) fn js_error(env: &Env, e: dockfleet::Error) -> Error {
    match build(env, &e) {
        Ok(err) => err,
        // Could not build the object (environment tearing down): fall back to a plain error.
        Err(_) => Error::new(Status::GenericFailure, format!("[{}] {e}", e.code())),
    }
}

fn build(env: &Env, e: &dockfleet::Error) -> Result<Error> {
    let mut obj = env.create_error(Error::new(Status::GenericFailure, e.to_string()))?;
    obj.set_named_property("code", e.code())?;
    // The causes, outermost first, as nested Errors linked by `.cause`.
    let mut cause: Option<Object<'_>> = None;
    for text in e.cause_chain().into_iter().rev() {
        let mut c = env.create_error(Error::new(Status::GenericFailure, text))?;
        if let Some(inner) = cause.take() {
            c.set_named_property("cause", inner)?;
        }
        cause = Some(c);
    }
    if let Some(c) = cause {
        obj.set_named_property("cause", c)?;
    }
    Ok(Error::from(obj.to_unknown()))
}

/// Every code a dockfleet error can carry in `.code`.
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<String> {
    dockfleet::Error::CODES.iter().map(|c| c.to_string()).collect()
}

/// Throws with code `internal` from a deliberate Rust panic in a synchronous call (napi's
/// `catch_unwind`, which every function of the binding has; `dockfleet.js` sets the code): without it
/// the panic would abort the Node process.
#[napi(js_name = "_panicNowForTests", catch_unwind)]
pub fn panic_now_for_tests(env: Env, message: String) -> Result<()> {
    dockfleet::error::panic_now_for_tests(message).map_err(|e| js_error(&env, e))
}

/// Rejects with code `internal` from a deliberate Rust panic inside a tokio task; the tests use it to
/// prove a panic never aborts the Node process.
#[napi(js_name = "_panicForTests", catch_unwind)]
pub fn panic_for_tests<'env>(env: &'env Env, message: String) -> Result<PromiseRaw<'env, ()>> {
    crate::call(env, dockfleet::error::panic_for_tests(message))
}
