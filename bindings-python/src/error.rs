//! dockfleet errors as Python exceptions: `DockfleetError` and one subclass per stable code, each
//! carrying `.code` and, as `__cause__`, the chain of underlying causes.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;

create_exception!(
    dockfleet,
    DockfleetError,
    PyException,
    "Base class of every dockfleet error; `.code` is its stable code."
);
create_exception!(
    dockfleet,
    InvalidArgumentError,
    DockfleetError,
    "code `invalid_argument`: a bad option or field (named in the message)."
);
create_exception!(
    dockfleet,
    InvalidAddressError,
    DockfleetError,
    "code `invalid_address`: an engine address that cannot be used."
);
create_exception!(
    dockfleet,
    InsecureError,
    DockfleetError,
    "code `insecure`: plain TCP to a non-loopback engine without `insecure=True`."
);
create_exception!(dockfleet, TlsError, DockfleetError, "code `tls`: certificates or the TLS handshake failed.");
create_exception!(
    dockfleet,
    EngineUnreachableError,
    DockfleetError,
    "code `engine_unreachable`: the engine could not be reached."
);
create_exception!(dockfleet, TimeoutError, DockfleetError, "code `timeout`: an operation exceeded its limit.");
create_exception!(dockfleet, NotFoundError, DockfleetError, "code `not_found`: no such container, image or host.");
create_exception!(
    dockfleet,
    ConflictError,
    DockfleetError,
    "code `conflict`: the object's state forbids the operation."
);
create_exception!(
    dockfleet,
    UnauthorizedError,
    DockfleetError,
    "code `unauthorized`: a registry refused a pull or push (no credentials, or wrong ones)."
);
create_exception!(dockfleet, EngineError, DockfleetError, "code `engine`: the engine reported another error.");
create_exception!(dockfleet, IoError, DockfleetError, "code `io`: a local file could not be read or written.");
create_exception!(dockfleet, CancelledError, DockfleetError, "code `cancelled`: the operation was cancelled.");
create_exception!(dockfleet, InternalError, DockfleetError, "code `internal`: a bug in dockfleet (a caught panic).");

/// Builds the Python exception for a core error.
pub(crate) fn to_py(e: dockfleet::Error) -> PyErr {
    let code = e.code();
    let msg = e.to_string();
    let err = match code {
        "invalid_argument" => InvalidArgumentError::new_err(msg),
        "invalid_address" => InvalidAddressError::new_err(msg),
        "insecure" => InsecureError::new_err(msg),
        "tls" => TlsError::new_err(msg),
        "engine_unreachable" => EngineUnreachableError::new_err(msg),
        "timeout" => TimeoutError::new_err(msg),
        "not_found" => NotFoundError::new_err(msg),
        "conflict" => ConflictError::new_err(msg),
        "unauthorized" => UnauthorizedError::new_err(msg),
        "engine" => EngineError::new_err(msg),
        "io" => IoError::new_err(msg),
        "cancelled" => CancelledError::new_err(msg),
        "internal" => InternalError::new_err(msg),
        _ => DockfleetError::new_err(msg),
    };
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("code", code);
        // The cause chain, innermost last, as nested RuntimeErrors linked by __cause__.
        let mut cause: Option<PyErr> = None;
        for text in e.cause_chain().into_iter().rev() {
            let c = PyRuntimeError::new_err(text);
            c.set_cause(py, cause.take());
            cause = Some(c);
        }
        err.set_cause(py, cause);
    });
    err
}

/// A value a data class's field cannot take (a keyword argument or an attribute assignment), named as
/// `Class.field`.
pub(crate) fn field_type_error(class: &str, field: &str, cause: PyErr) -> PyErr {
    let err = InvalidArgumentError::new_err(format!("invalid {class}.{field}: {cause}"));
    Python::attach(|py| {
        let _ = err.value(py).setattr("code", "invalid_argument");
        err.set_cause(py, Some(cause));
    });
    err
}

/// Raises `InternalError` from a deliberate Rust panic inside a tokio task; the tests use it to prove a
/// panic never aborts the interpreter.
#[pyfunction]
async fn _panic_for_tests(message: String) -> PyResult<()> {
    crate::call(dockfleet::error::panic_for_tests(message)).await
}

/// Raises `InternalError` from a deliberate Rust panic in a synchronous call; the tests use it to prove
/// that such a panic is no `PanicException` either.
#[pyfunction]
fn _panic_now_for_tests(message: String) -> PyResult<()> {
    crate::sync_call(|| dockfleet::error::panic_now_for_tests(message))
}

impl crate::Conv<()> for () {
    fn conv(self) {}
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DockfleetError", py.get_type::<DockfleetError>())?;
    m.add("InvalidArgumentError", py.get_type::<InvalidArgumentError>())?;
    m.add("InvalidAddressError", py.get_type::<InvalidAddressError>())?;
    m.add("InsecureError", py.get_type::<InsecureError>())?;
    m.add("TlsError", py.get_type::<TlsError>())?;
    m.add("EngineUnreachableError", py.get_type::<EngineUnreachableError>())?;
    m.add("TimeoutError", py.get_type::<TimeoutError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("UnauthorizedError", py.get_type::<UnauthorizedError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("ERROR_CODES", dockfleet::Error::CODES.to_vec())?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_now_for_tests, m)?)?;
    Ok(())
}
