//! The API server's client for kubelets: TLS to `<node InternalIP>:<kubeletEndpoint.Port>`
//! (the kubelet's certificate verified against the cluster CA, the API server's
//! kubelet-client certificate presented), then either a log body streamed through or an
//! upgrade request forwarded, its 101 relayed and both upgraded connections spliced.
//! Kubelet errors (plain text) become `Status` objects.

use crate::handlers::streaming::{node_address, read_node};
use crate::handlers::Req;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::ApiServer;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::convert::Infallible;
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// Where a node's kubelet listens.
pub struct Endpoint {
    pub node: String,
    pub host: String,
    pub port: u16,
}

pub async fn endpoint(api: &ApiServer, node_name: &str) -> ApiResult<Endpoint> {
    let node = read_node(api, node_name).await?;
    let (host, port) = node_address(&node).ok_or_else(|| {
        ApiError::internal(format!(
            "no preferred addresses found for node {node_name}; known addresses: []"
        ))
    })?;
    Ok(Endpoint {
        node: node_name.to_string(),
        host,
        port,
    })
}

fn dial_error(ep: &Endpoint, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!(
        "error dialing backend: dial tcp {}:{}: {e}",
        ep.host, ep.port
    ))
}

/// A connection to the kubelet, HTTP/1.1 with upgrades.
async fn connect(api: &ApiServer, ep: &Endpoint) -> ApiResult<SendRequest<Empty<Bytes>>> {
    let cfg = api.config.kubelet_client.clone().ok_or_else(|| {
        ApiError::unavailable("the API server has no kubelet client credential configured")
    })?;
    let addr = format!("{}:{}", ep.host, ep.port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| dial_error(ep, "i/o timeout"))?
    .map_err(|e| dial_error(ep, e))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(ep.host.clone()).map_err(|e| dial_error(ep, e))?;
    let tls = TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| dial_error(ep, format!("tls: {e}")))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| dial_error(ep, e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

fn request(ep: &Endpoint, method: http::Method, path: &str) -> http::request::Builder {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, format!("{}:{}", ep.host, ep.port))
}

/// A kubelet's error answer as a Status (kube-apiserver's GenericHttpResponseChecker).
async fn error_from(resp: Response<hyper::body::Incoming>, prefix: &str) -> ApiError {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if v["kind"] == "Status" {
            let mut e = ApiError::new(
                v["code"].as_u64().map_or(code, |c| c as u16),
                reason(code),
                v["message"].as_str().unwrap_or(""),
            );
            e.details = v.get("details").cloned();
            return e;
        }
    }
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let text = if text.is_empty() {
        format!(
            "the server responded with the status code {code} but did not return more information"
        )
    } else {
        text
    };
    ApiError::new(code, reason(code), format!("{prefix}{text}"))
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// GET the kubelet's log endpoint and stream its body to the client.
pub async fn logs(api: &ApiServer, ep: &Endpoint, path: &str) -> ApiResult<Response<Body>> {
    let mut sender = connect(api, ep).await?;
    let req = request(ep, http::Method::GET, path)
        .body(Empty::new())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| dial_error(ep, e))?;
    if resp.status() != StatusCode::OK {
        return Err(error_from(resp, "").await);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    let mut body = resp.into_body();
    tokio::spawn(async move {
        // Keep the connection (`sender`) alive as long as the body streams; a client that goes
        // away closes it at once (the kubelet then stops following), not at the next line.
        let _sender = sender;
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = tx.closed() => return,
            };
            let Some(Ok(frame)) = frame else { return };
            if let Ok(data) = frame.into_data() {
                if tx.send(Ok(Frame::data(data))).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .header("cache-control", "no-cache, private")
        .body(StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed())
        .expect("static headers are valid"))
}

/// Headers of the client's request that are not passed to the kubelet.
fn hop_only(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "authorization" | "content-length" | "transfer-encoding" | "keep-alive" | "cookie"
    )
}

/// Forward an upgrade request to the kubelet; on 101, relay it and splice the connections.
pub async fn upgrade(
    api: &ApiServer,
    ep: &Endpoint,
    req: &Req,
    path: &str,
    client: hyper::upgrade::OnUpgrade,
) -> ApiResult<Response<Body>> {
    let mut sender = connect(api, ep).await?;
    let mut out = request(ep, req.method.clone(), path);
    for (k, v) in &req.headers {
        if !hop_only(k) {
            out = out.header(k, v);
        }
    }
    let out = out
        .body(Empty::new())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|e| dial_error(ep, e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(error_from(resp, "unable to upgrade connection: ").await);
    }
    let backend = hyper::upgrade::on(&mut resp);
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        answer = answer.header(k, v);
    }
    let node = ep.node.clone();
    tokio::spawn(async move {
        match (client.await, backend.await) {
            (Ok(c), Ok(b)) => {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b)).await;
            }
            (c, b) => {
                tracing::debug!(%node, client = c.is_ok(), kubelet = b.is_ok(), "upgrade failed")
            }
        }
    });
    answer
        .body(crate::respond::full(Bytes::new()))
        .map_err(|e| ApiError::internal(e.to_string()))
}
