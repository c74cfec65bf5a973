//! The HTTP transport under bollard: pooled keep-alive connections, a connect timeout on every
//! connection, and TLS that trusts exactly the configured CA.
//!
//! bollard's own transports open a new connection for every request (`pool_max_idle_per_host(0)`):
//! besides a handshake per call, a busy client piles up sockets in TIME-WAIT until the ephemeral ports
//! run out (30,000 sequential calls did, on the testbed). Its TLS transport also trusts the system's
//! public roots next to the given CA. This transport is handed to bollard through
//! `Docker::connect_with_custom_transport`.

use std::future::Future;
use std::path::{Path, PathBuf};
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
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::docker::TlsConfig;
use crate::error::{Error, Result};

/// bollard's request body type (crate-private there, the same type here).
type Body =
    Either<Full<Bytes>, StreamBody<Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>>>>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// One engine's connection pool.
pub(crate) enum Transport {
    Http(Client<HttpConnector, Body>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>),
    Unix { client: Client<hyperlocal::UnixConnector, Body>, socket: PathBuf },
}

fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(POOL_IDLE);
    b
}

impl Transport {
    /// Plain HTTP over TCP.
    pub(crate) fn http(connect_timeout: Duration) -> Self {
        Transport::Http(builder().build(http_connector(connect_timeout)))
    }

    /// A unix socket.
    pub(crate) fn unix(socket: &Path) -> Self {
        Transport::Unix { client: builder().build(hyperlocal::UnixConnector), socket: socket.to_path_buf() }
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
        Ok(Transport::Https(builder().build(https)))
    }

    /// The scheme bollard should put in request URIs for this transport.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Transport::Http(_) => "http",
            Transport::Https(_) => "https",
            Transport::Unix { .. } => "unix",
        }
    }

    /// Sends one request.
    pub(crate) fn request(
        &self,
        mut req: BollardRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Incoming>, BollardError>> + Send>> {
        match self {
            Transport::Http(c) => Box::pin(map(c.request(req))),
            Transport::Https(c) => Box::pin(map(c.request(req))),
            Transport::Unix { client, socket } => {
                let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
                *req.uri_mut() = hyperlocal::Uri::new(socket, &pq).into();
                Box::pin(map(client.request(req)))
            }
        }
    }
}

async fn map(f: hyper_util::client::legacy::ResponseFuture) -> Result<Response<Incoming>, BollardError> {
    f.await.map_err(BollardError::from)
}
