//! The one error type of dockfleet, with a stable machine-readable code per variant.
//!
//! The codes ([`Error::code`]) are part of the public API: the Python binding raises a `DockfleetError`
//! subclass per code and the Node binding rejects with an `Error` whose `.code` is the same string.

use std::time::Duration;

/// A boxed error cause, kept so callers can walk the whole chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout dockfleet.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure dockfleet reports. Match on [`Error::code`] for a stable string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument, option or file field is invalid. `field` is the path of the offending field
    /// (`hosts[2].address`, `ports[0].container_port`, …). Nothing was changed.
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An engine address could not be parsed or uses an unsupported scheme.
    #[error("invalid address {address:?} ({field}): {message}")]
    InvalidAddress {
        /// Path of the offending field.
        field: String,
        /// The address as given.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// Plain TCP to a non-loopback engine without the explicit `insecure` opt-in.
    #[error(
        "refusing plain TCP to {address} ({field}): an unauthenticated Docker port is root for anyone on \
         the network; use TLS, or set insecure=true to accept that risk"
    )]
    Insecure {
        /// Path of the offending field.
        field: String,
        /// The address as given.
        address: String,
    },
    /// A TLS certificate or key could not be loaded, or the TLS handshake failed.
    #[error("TLS error for {target}: {message}")]
    Tls {
        /// The host name or certificate path concerned.
        target: String,
        /// What went wrong.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<Cause>,
    },
    /// The engine could not be reached (refused, reset, DNS, wrong protocol, engine stopped).
    #[error("engine {host} unreachable: {message}")]
    EngineUnreachable {
        /// Host name.
        host: String,
        /// What went wrong.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<Cause>,
    },
    /// An operation took longer than its timeout.
    #[error("{operation} on {host} timed out after {after:?}")]
    Timeout {
        /// Host name.
        host: String,
        /// What was being done.
        operation: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// A container, image or other object does not exist.
    #[error("{kind} {id:?} not found on {host}: {message}")]
    NotFound {
        /// `container`, `image`, `host`, …
        kind: String,
        /// The identifier that was looked up.
        id: String,
        /// Host name.
        host: String,
        /// The engine's message.
        message: String,
    },
    /// The object exists or is in a state that forbids the operation (name in use, container running…).
    #[error("conflict on {host}: {message}")]
    Conflict {
        /// Host name.
        host: String,
        /// The engine's message.
        message: String,
    },
    /// A registry refused a pull or push: it asked for credentials and got none, or refused those given.
    #[error("registry {registry} refused {host}'s request: {message}")]
    Unauthorized {
        /// Host name (the engine that talked to the registry).
        host: String,
        /// The registry, `host[:port]`.
        registry: String,
        /// The registry's message, as the engine passed it on.
        message: String,
    },
    /// The engine answered with an error that has no more specific code.
    #[error("engine {host} returned {status}: {message}")]
    Engine {
        /// Host name.
        host: String,
        /// HTTP status code from the engine.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path concerned.
        path: String,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// The operation was cancelled by the caller.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A bug in dockfleet (a caught panic, a broken invariant). Please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable machine code of this error: `invalid_argument`, `invalid_address`, `insecure`, `tls`,
    /// `engine_unreachable`, `timeout`, `not_found`, `conflict`, `unauthorized`, `engine`, `io`, `cancelled`,
    /// `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::InvalidAddress { .. } => "invalid_address",
            Error::Insecure { .. } => "insecure",
            Error::Tls { .. } => "tls",
            Error::EngineUnreachable { .. } => "engine_unreachable",
            Error::Timeout { .. } => "timeout",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Engine { .. } => "engine",
            Error::Io { .. } => "io",
            Error::Cancelled(_) => "cancelled",
            Error::Internal(_) => "internal",
        }
    }

    /// Every code [`Error::code`] can return, for bindings that declare one exception class per code.
    pub const CODES: &'static [&'static str] = &[
        "invalid_argument",
        "invalid_address",
        "insecure",
        "tls",
        "engine_unreachable",
        "timeout",
        "not_found",
        "conflict",
        "unauthorized",
        "engine",
        "io",
        "cancelled",
        "internal",
    ];

    /// The messages of this error's causes, outermost first (not including this error's own message).
    pub fn cause_chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in chain(self).skip(1) {
            let s = e.to_string();
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), message: message.into() }
    }

    /// Turns a caught panic payload into [`Error::Internal`].
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        Error::Internal(format!("panic: {msg}"))
    }
}

/// Runs a future and turns a panic inside it into [`Error::Internal`] instead of unwinding.
/// The bindings wrap every call in this so no Rust panic reaches Python or Node.
pub async fn catch_panic<T, F>(fut: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => Err(Error::from_panic(payload)),
    }
}

/// A deliberate panic, reachable from every binding, used by the tests to prove that a Rust panic
/// becomes an `internal` error instead of aborting the Python or Node process.
#[doc(hidden)]
pub async fn panic_for_tests(message: String) -> Result<()> {
    tokio::task::yield_now().await;
    panic!("{message}");
}

/// A deliberate panic in a synchronous call, for the same tests: the bindings' synchronous functions
/// must turn it into an `internal` error too.
#[doc(hidden)]
pub fn panic_now_for_tests(message: String) -> Result<()> {
    panic!("{message}");
}

/// `e` and its causes, outermost first.
pub(crate) fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed() {
        let samples = [
            Error::invalid("a", "b"),
            Error::Cancelled("x".into()),
            Error::Internal("x".into()),
            Error::Timeout { host: "h".into(), operation: "ping".into(), after: Duration::from_secs(1) },
        ];
        for e in samples {
            assert!(Error::CODES.contains(&e.code()), "{} missing from CODES", e.code());
        }
    }

    #[tokio::test]
    async fn panics_become_internal_errors() {
        let err = catch_panic(panic_for_tests("boom".into())).await.unwrap_err();
        assert_eq!(err.code(), "internal");
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn cause_chain_walks_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::EngineUnreachable { host: "h".into(), message: "connect".into(), source: Some(Box::new(io)) };
        assert_eq!(e.cause_chain(), vec!["refused".to_string()]);
    }
}
