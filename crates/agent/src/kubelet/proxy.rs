//! Handing an exec/attach/port-forward upgrade request on to containerd's streaming server (the
//! URL CRI Exec/Attach/PortForward returned): the request goes on with its method, query and
//! upgrade headers, the 101 comes back, then bytes are copied both ways. Which websocket
//! subprotocols containerd 1.6 can serve is decided here too (pure).

use super::{text, Body};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;

/// What is being streamed: a command's stdio (exec, attach) or ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RemoteCommand,
    PortForward,
}

/// Websocket subprotocols containerd 1.6's streaming server speaks.
pub fn supported(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::RemoteCommand => &[
            "v4.channel.k8s.io",
            "v4.base64.channel.k8s.io",
            "channel.k8s.io",
            "base64.channel.k8s.io",
        ],
        Kind::PortForward => &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"],
    }
}

/// The subprotocols a websocket request offers (all `Sec-WebSocket-Protocol` values).
pub fn offered(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether a websocket request can be passed to containerd: yes when it offers no subprotocol
/// or one containerd speaks; otherwise the message of the refusal (a non-101 answer, on which
/// kubectl falls back to SPDY).
pub fn websocket_decision(kind: Kind, offered: &[String]) -> Result<(), String> {
    let ok = supported(kind);
    if offered.is_empty() || offered.iter().any(|p| ok.contains(&p.as_str())) {
        Ok(())
    } else {
        Err(format!(
            "websocket subprotocol(s) {offered:?} not supported by the container runtime (it speaks {ok:?}); use SPDY/3.1"
        ))
    }
}

/// Headers that describe the hop, not the request.
fn skip_header(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "content-length" | "transfer-encoding" | "authorization" | "keep-alive"
    )
}

/// Forward `req` to `url` (http://host:port/path from CRI) and splice the upgraded streams.
pub async fn upgrade(url: &str, mut req: Request<Incoming>) -> Response<Body> {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("bad URL {url}: {e}"),
            )
        }
    };
    let Some(authority) = uri.authority().cloned() else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("bad URL {url}"));
    };
    let client_upgrade = hyper::upgrade::on(&mut req);
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(path)
        .header(http::header::HOST, authority.as_str());
    for (k, v) in req.headers() {
        if !skip_header(k) {
            out = out.header(k, v);
        }
    }
    let Ok(out) = out.body(Empty::<Bytes>::new()) else {
        return text(StatusCode::BAD_REQUEST, "invalid request headers");
    };
    let tcp = match tokio::net::TcpStream::connect(authority.as_str()).await {
        Ok(t) => t,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("connecting to the runtime's streaming server {authority}: {e}"),
            )
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(x) => x,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let mut r = text(status, String::from_utf8_lossy(&body).trim());
        *r.status_mut() = status;
        return r;
    }
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        answer = answer.header(k, v);
    }
    tokio::spawn(async move {
        let (Ok(client), Ok(backend)) = (client_upgrade.await, backend_upgrade.await) else {
            return;
        };
        let _ =
            tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(backend))
                .await;
    });
    answer
        .body(super::empty())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad upgrade response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_protocol_decisions() {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let cases: Vec<(Kind, Vec<String>, bool)> = vec![
            // kubectl >= 1.30 exec: v5 only → refuse, kubectl falls back to SPDY.
            (Kind::RemoteCommand, v(&["v5.channel.k8s.io"]), false),
            // The Python client: v4 → pass through.
            (Kind::RemoteCommand, v(&["v4.channel.k8s.io"]), true),
            (
                Kind::RemoteCommand,
                v(&["v5.channel.k8s.io", "v4.channel.k8s.io"]),
                true,
            ),
            (Kind::RemoteCommand, v(&["base64.channel.k8s.io"]), true),
            (Kind::RemoteCommand, v(&[]), true),
            // kubectl >= 1.31 port-forward: SPDY tunnelled in websocket → refuse.
            (
                Kind::PortForward,
                v(&["SPDY/3.1+portforward.k8s.io"]),
                false,
            ),
            (Kind::PortForward, v(&["v4.channel.k8s.io"]), true),
            (Kind::PortForward, v(&["channel.k8s.io"]), false),
        ];
        for (kind, offered, ok) in cases {
            assert_eq!(
                websocket_decision(kind, &offered).is_ok(),
                ok,
                "{kind:?} {offered:?}"
            );
        }
    }

    #[test]
    fn reads_offered_protocols() {
        let mut h = http::HeaderMap::new();
        h.append(
            "sec-websocket-protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        h.append("sec-websocket-protocol", "channel.k8s.io".parse().unwrap());
        h.insert("upgrade", "WebSocket".parse().unwrap());
        assert_eq!(
            offered(&h),
            ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
        assert!(is_websocket(&h));
    }
}
