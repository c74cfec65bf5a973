//! The HTTP transport under bollard: pooled keep-alive connections, a connect timeout on every
//! connection, and TLS that trusts exactly the configured CA.
//!
//! bollard's own transports open a new connection for every request (`pool_max_idle_per_host(0)`):
//! besides a handshake per call, a busy client piles up sockets in TIME-WAIT until the ephemeral ports
//! run out (30,000 sequential calls did, on the testbed). Its TLS transport also trusts the system's
//! public roots next to the given CA. This transport is handed to bollard through
//! `Docker::connect_with_custom_transport`.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::BollardRequest;
use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::docker::TlsConfig;
use crate::embed::Origin;
use crate::error::{Error, Result};

/// bollard's request body type (crate-private there, the same type here).
type Body =
    Either<Full<Bytes>, StreamBody<Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>>>>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// How a pool makes its connections.
#[derive(Clone)]
enum Connector {
    Http(HttpConnector),
    Https(hyper_rustls::HttpsConnector<HttpConnector>),
    Unix(Arc<Path>),
}

/// A connection pool (cheap to clone: clones share the pool).
#[derive(Clone)]
enum Pool {
    Http(Client<HttpConnector, Body>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>),
    Unix(Client<hyperlocal::UnixConnector, Body>, Arc<Path>),
}

/// How many runtimes keep a pool of their own at once; past this, the pool used least recently is
/// dropped (its idle connections close). Each thread calling through Python's blocking facade has a
/// runtime, so this is sized for a thread pool's worth of them.
const RUNTIME_POOLS: usize = 64;

/// One engine's connection pools, one per tokio runtime that uses the engine.
///
/// A pooled connection is served by a task on the runtime that opened it, and makes progress only
/// while that runtime runs. Sharing one pool across runtimes would hand a request made on one runtime
/// a connection served by another, which costs two thread wake-ups per request at best and hangs at
/// worst (a runtime that is not being driven, or one that has shut down). So each runtime gets its own
/// pool: a request made on a current-thread runtime does all its I/O on the calling thread.
pub(crate) struct Transport {
    connector: Connector,
    pools: std::sync::Mutex<Pools>,
}

/// A transport's pools, by runtime, the most recently used last.
struct Pools {
    /// Where these pools were made.
    origin: Origin,
    by_runtime: Vec<(Option<tokio::runtime::Id>, Pool)>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        let pools = self.pools.get_mut().unwrap_or_else(|p| p.into_inner());
        // Dropped in a forked child, the pools' connections are the parent's: forgotten.
        pools.origin.release(std::mem::take(&mut pools.by_runtime));
    }
}

fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

/// Spawns hyper's connection tasks on the current runtime, where an
/// [`EmbeddedRuntime`](crate::embed::EmbeddedRuntime)'s ticks run them (see
/// [`spawn_here`](crate::embed::spawn_here)).
#[derive(Clone, Copy)]
struct Exec;

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        crate::embed::spawn_here(fut);
    }
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(Exec);
    b.pool_idle_timeout(POOL_IDLE);
    b
}

impl Transport {
    /// Plain HTTP over TCP.
    pub(crate) fn http(connect_timeout: Duration) -> Self {
        Self::new(Connector::Http(http_connector(connect_timeout)))
    }

    /// A unix socket.
    pub(crate) fn unix(socket: &Path) -> Self {
        Self::new(Connector::Unix(Arc::from(socket)))
    }

    /// TLS with a client certificate; only `tls.ca` is trusted to sign the engine's certificate.
    pub(crate) fn https(connect_timeout: Duration, tls: &TlsConfig, host: &str) -> Result<Self> {
        let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| Error::Tls {
            target: host.to_string(),
            message: format!("cannot load the {what} {}: {e}", path.display()),
            source: None,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&tls.ca).map_err(|e| bad("CA", &tls.ca, &e))? {
            roots.add(cert.map_err(|e| bad("CA", &tls.ca, &e))?).map_err(|e| bad("CA", &tls.ca, &e))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
            .map_err(|e| bad("certificate", &tls.cert, &e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad("certificate", &tls.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| bad("key", &tls.key, &e))?;
        // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange. Docker
        // engines (Go's crypto/tls) accept the classical groups it offers, and aws-lc-rs would add a C
        // and cmake build to every install. Allowed so a `cargo update` keeps `-D warnings` builds
        // passing.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS settings for", &tls.ca, &e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("certificate/key pair", &tls.cert, &e))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(http_connector(connect_timeout));
        Ok(Self::new(Connector::Https(https)))
    }

    fn new(connector: Connector) -> Self {
        let pools = Pools { origin: Origin::here(), by_runtime: Vec::new() };
        Transport { connector, pools: std::sync::Mutex::new(pools) }
    }

    /// The scheme bollard should put in request URIs for this transport.
    pub(crate) fn scheme(&self) -> &'static str {
        match self.connector {
            Connector::Http(_) => "http",
            Connector::Https(_) => "https",
            Connector::Unix(_) => "unix",
        }
    }

    /// The pool of the runtime this is called on, made on first use.
    fn pool(&self) -> Pool {
        let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        let mut guard = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if !guard.origin.is_here() {
            // A forked child of the process that made these pools: their connections are the parent's
            // sockets, served by the parent's runtimes. Forgotten, not dropped.
            guard.origin.release(std::mem::take(&mut guard.by_runtime));
            guard.origin = Origin::here();
        }
        let pools = &mut guard.by_runtime;
        // Kept in order of use, the most recent last: the usual lookup ends at the first comparison.
        if let Some(i) = pools.iter().rposition(|(id, _)| *id == runtime) {
            let used = pools.remove(i);
            let pool = used.1.clone();
            pools.push(used);
            return pool;
        }
        let pool = match &self.connector {
            Connector::Http(c) => Pool::Http(builder().build(c.clone())),
            Connector::Https(c) => Pool::Https(builder().build(c.clone())),
            Connector::Unix(socket) => Pool::Unix(builder().build(hyperlocal::UnixConnector), socket.clone()),
        };
        if pools.len() >= RUNTIME_POOLS {
            pools.remove(0);
        }
        pools.push((runtime, pool.clone()));
        pool
    }

    /// Sends one request.
    pub(crate) fn request(
        &self,
        mut req: BollardRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Incoming>, BollardError>> + Send>> {
        match self.pool() {
            Pool::Http(c) => Box::pin(map(c.request(req))),
            Pool::Https(c) => Box::pin(map(c.request(req))),
            Pool::Unix(c, socket) => {
                let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
                *req.uri_mut() = hyperlocal::Uri::new(&*socket, &pq).into();
                Box::pin(map(c.request(req)))
            }
        }
    }
}

async fn map(f: hyper_util::client::legacy::ResponseFuture) -> Result<Response<Incoming>, BollardError> {
    f.await.map_err(BollardError::from)
}
