//! The HTTPS listener: TLS with optional client certificates, HTTP/1.1 and HTTP/2,
//! authentication, and hand-off to the router.

use crate::auth::{self, User};
use crate::router;
use crate::ApiServer;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub type Body = BoxBody<Bytes, Infallible>;

/// Accept connections until the listener fails. Each connection is served on its own task.
pub async fn serve(api: Arc<ApiServer>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let cert_user = {
                let (_, conn) = tls.get_ref();
                conn.peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| auth::user_from_cert(c.as_ref()))
            };
            serve_connection(api, TokioIo::new(tls), peer, cert_user).await;
        });
    }
}

async fn serve_connection<I>(api: Arc<ApiServer>, io: I, peer: SocketAddr, cert_user: Option<User>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let api = api.clone();
        let cert_user = cert_user.clone();
        async move { Ok::<_, Infallible>(handle(api, req, cert_user, peer).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(1000);
    if let Err(e) = builder.serve_connection_with_upgrades(io, svc).await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

async fn handle(
    api: Arc<ApiServer>,
    req: Request<Incoming>,
    cert_user: Option<User>,
    peer: SocketAddr,
) -> Response<Body> {
    let user = cert_user.or_else(|| auth::user_from_bearer(&api, req.headers()));
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = router::route(api, req, user).await;
    tracing::debug!(%peer, %method, %uri, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}
