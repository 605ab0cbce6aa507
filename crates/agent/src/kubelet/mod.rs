//! The kubelet's HTTPS server (port `--kubelet-port`, default 10250), the endpoint the API
//! server proxies `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` to:
//! `/containerLogs/…` reads the container's CRI log file ([`logs`]); `/exec/…`, `/attach/…` and
//! `/portForward/…` ask CRI for a streaming URL on containerd and hand the upgrade request on
//! to it ([`proxy`]). Containers are found through CRI by the pod sync loop's labels
//! ([`find`]). Clients must present a certificate of the cluster CA ([`tls`]).

pub mod find;
pub mod logs;
pub mod paths;
pub mod proxy;
pub mod tls;

use crate::cri::Runtime;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use paths::{Endpoint, Target};
use proxy::Kind;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>) -> Body {
    StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed()
}

/// A plain-text answer, as the kubelet gives its errors.
pub fn text(code: StatusCode, msg: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(format!("{msg}\n")))
        .expect("static headers are valid")
}

/// Serve until the listener fails; each connection on its own task.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, rt: Runtime) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let rt = rt.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "kubelet server: TLS handshake failed");
                    return;
                }
            };
            let svc = service_fn(move |req: Request<Incoming>| {
                let rt = rt.clone();
                async move { Ok::<_, Infallible>(handle(rt, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "kubelet connection ended");
            }
        });
    }
}

async fn handle(rt: Runtime, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    let Some(ep) = paths::parse(&path) else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let allowed = match ep {
        Endpoint::Logs(_) => method == Method::GET,
        _ => method == Method::GET || method == Method::POST,
    };
    if !allowed {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    let query = paths::query(req.uri().query());
    let resp = match ep {
        Endpoint::Logs(t) => match paths::log_opts(&query, chrono::Utc::now()) {
            Ok(opts) => logs::serve(rt, t, opts).await,
            Err(e) => text(StatusCode::BAD_REQUEST, &e),
        },
        Endpoint::Exec(t) => remote_command(rt, t, req, &query, true).await,
        Endpoint::Attach(t) => remote_command(rt, t, req, &query, false).await,
        Endpoint::PortForward(t) => port_forward(rt, t, req, &query).await,
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "kubelet request");
    resp
}

/// The checks every upgrade request passes first: it asks for an upgrade, and a websocket
/// one offers a subprotocol containerd speaks.
fn check_upgrade(kind: Kind, req: &Request<Incoming>) -> Result<(), String> {
    let h = req.headers();
    if !h.contains_key(http::header::UPGRADE) {
        return Err("Upgrade request required".into());
    }
    if proxy::is_websocket(h) {
        proxy::websocket_decision(kind, &proxy::offered(h))?;
    }
    Ok(())
}

fn cri_error(e: tonic::Status) -> Response<Body> {
    let code = match e.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(code, e.message())
}

async fn remote_command(
    mut rt: Runtime,
    t: Target,
    req: Request<Incoming>,
    query: &[(String, String)],
    exec: bool,
) -> Response<Body> {
    if let Err(e) = check_upgrade(Kind::RemoteCommand, &req) {
        return text(StatusCode::BAD_REQUEST, &e);
    }
    let opts = match paths::stream_opts(query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    if exec && opts.command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "you must specify a command");
    }
    let all = match find::containers(&mut rt, &t).await {
        Ok(a) => a,
        Err(e) => return cri_error(e),
    };
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    let name = match find::pick_name(&t.pod, &t.container, &names) {
        Ok(n) => n,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    let Some(c) = find::current(&all, &name).filter(|c| c.running) else {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("container not found ({name:?})"),
        );
    };
    let url = if exec {
        rt.exec(k8s_cri::v1::ExecRequest {
            container_id: c.id.clone(),
            cmd: opts.command,
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
        .map(|r| r.into_inner().url)
    } else {
        rt.attach(k8s_cri::v1::AttachRequest {
            container_id: c.id.clone(),
            stdin: opts.stdin,
            tty: opts.tty,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
        .map(|r| r.into_inner().url)
    };
    match url {
        Ok(url) => proxy::upgrade(&url, req).await,
        Err(e) => cri_error(e),
    }
}

async fn port_forward(
    mut rt: Runtime,
    t: Target,
    req: Request<Incoming>,
    query: &[(String, String)],
) -> Response<Body> {
    if let Err(e) = check_upgrade(Kind::PortForward, &req) {
        return text(StatusCode::BAD_REQUEST, &e);
    }
    let mut ports = Vec::new();
    for (_, v) in query.iter().filter(|(k, _)| k == "port") {
        for p in v.split(',').filter(|p| !p.is_empty()) {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n as i32),
                _ => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!("invalid port {p:?}: must be between 1 and 65535"),
                    )
                }
            }
        }
    }
    let sandbox = match find::sandbox(&mut rt, &t).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("pod not found ({:?})", find::full_name(&t)),
            )
        }
        Err(e) => return cri_error(e),
    };
    match rt
        .port_forward(k8s_cri::v1::PortForwardRequest {
            pod_sandbox_id: sandbox,
            port: ports,
        })
        .await
    {
        Ok(r) => proxy::upgrade(&r.into_inner().url, req).await,
        Err(e) => cri_error(e),
    }
}
