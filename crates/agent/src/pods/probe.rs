//! Probes and lifecycle hook handlers: exec (CRI ExecSync), httpGet (HTTP/1.1 to the pod IP,
//! success is 200–399) and tcpSocket (a connect). Each returns Ok or the failure message the
//! kubelet would put in the Unhealthy event.

use crate::cri::Runtime;
use k8s_openapi::api::core::v1::{Container, ExecAction, HTTPGetAction, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;
use std::time::Duration;

/// A handler of a probe or hook.
pub enum Handler<'a> {
    Exec(&'a ExecAction),
    Http(&'a HTTPGetAction),
    Tcp(&'a TCPSocketAction),
}

fn port(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => Ok(*n as u16),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .map(|cp| cp.container_port as u16)
            .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name)),
    }
}

/// Run a handler against the container `id` of a pod at `pod_ip`.
pub async fn run(
    rt: &mut Runtime,
    id: &str,
    c: &Container,
    pod_ip: &str,
    h: Handler<'_>,
    timeout: Duration,
) -> Result<(), String> {
    match h {
        Handler::Exec(e) => {
            let cmd = e.command.clone().unwrap_or_default();
            let req = k8s_cri::v1::ExecSyncRequest {
                container_id: id.to_string(),
                cmd,
                timeout: timeout.as_secs().max(1) as i64,
            };
            match tokio::time::timeout(timeout + Duration::from_secs(1), rt.exec_sync(req)).await {
                Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
                Ok(Err(e)) => Err(e.message().to_string()),
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    if r.exit_code == 0 {
                        Ok(())
                    } else {
                        let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                        out.push_str(&String::from_utf8_lossy(&r.stderr));
                        Err(out.trim_end().to_string())
                    }
                }
            }
        }
        Handler::Tcp(t) => {
            let host = t
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            let p = port(&t.port, c)?;
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), p)))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial tcp {host}:{p}: connect: {e}")),
                Err(_) => Err(format!("dial tcp {host}:{p}: i/o timeout")),
            }
        }
        Handler::Http(g) => {
            let host = g
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            let p = port(&g.port, c)?;
            let path = g.path.clone().unwrap_or_else(|| "/".into());
            let scheme = g
                .scheme
                .clone()
                .unwrap_or_else(|| "HTTP".into())
                .to_lowercase();
            let url = format!("{scheme}://{host}:{p}{path}");
            if scheme != "http" && scheme != "https" {
                return Err(format!(
                    "Get \"{url}\": unsupported protocol scheme \"{scheme}\""
                ));
            }
            let headers: Vec<(String, String)> = g
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            let fut = async {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), p))
                    .await
                    .map_err(|e| format!("Get \"{url}\": dial tcp {host}:{p}: connect: {e}"))?;
                let code = if scheme == "https" {
                    // As the kubelet: HTTPS probes do not verify the certificate.
                    let name = rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|e| format!("Get \"{url}\": {e}"))?;
                    let tls = tokio_rustls::TlsConnector::from(insecure_tls())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("Get \"{url}\": {e}"))?;
                    http_get(tls, &host, p, &path, &headers).await
                } else {
                    http_get(tcp, &host, p, &path, &headers).await
                }
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                }
            };
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
            }
        }
    }
}

/// One GET over an established connection; the status code.
async fn http_get<IO>(
    io: IO,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path)
        .header("host", format!("{host}:{port}"))
        .header("user-agent", "kube-probe/1.32")
        .header("accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CFG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    // The kubelet's HTTPS probes skip certificate verification.
    CFG.get_or_init(|| Arc::new(crate::api::unverified_tls()))
        .clone()
}

/// The handler of a probe, if it has one this agent supports.
pub fn probe_handler(p: &k8s_openapi::api::core::v1::Probe) -> Option<Handler<'_>> {
    if let Some(e) = &p.exec {
        Some(Handler::Exec(e))
    } else if let Some(h) = &p.http_get {
        Some(Handler::Http(h))
    } else {
        p.tcp_socket.as_ref().map(Handler::Tcp)
    }
}

/// The handler of a lifecycle hook.
pub fn hook_handler(h: &k8s_openapi::api::core::v1::LifecycleHandler) -> Option<Handler<'_>> {
    if let Some(e) = &h.exec {
        Some(Handler::Exec(e))
    } else if let Some(g) = &h.http_get {
        Some(Handler::Http(g))
    } else {
        h.tcp_socket.as_ref().map(Handler::Tcp)
    }
}

/// Probe bookkeeping for one container: when it is due and the running counts.
#[derive(Debug, Clone)]
pub struct ProbeState {
    pub next: tokio::time::Instant,
    pub successes: i32,
    pub failures: i32,
    /// The current verdict (`None` until the first threshold is reached).
    pub ok: Option<bool>,
}

impl ProbeState {
    pub fn new(started: tokio::time::Instant, p: &k8s_openapi::api::core::v1::Probe) -> ProbeState {
        ProbeState {
            next: started + Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
            successes: 0,
            failures: 0,
            ok: None,
        }
    }

    /// Fold one result in, following successThreshold / failureThreshold. Returns whether the
    /// verdict changed.
    pub fn record(
        &mut self,
        p: &k8s_openapi::api::core::v1::Probe,
        success: bool,
        now: tokio::time::Instant,
    ) -> bool {
        self.next = now + Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
        let before = self.ok;
        if success {
            self.failures = 0;
            self.successes += 1;
            if self.successes >= p.success_threshold.unwrap_or(1).max(1) {
                self.ok = Some(true);
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= p.failure_threshold.unwrap_or(3).max(1) {
                self.ok = Some(false);
            }
        }
        before != self.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds() {
        let p: k8s_openapi::api::core::v1::Probe = serde_json::from_value(
            json!({"successThreshold": 2, "failureThreshold": 2, "periodSeconds": 1}),
        )
        .unwrap();
        let t0 = tokio::time::Instant::now();
        let mut s = ProbeState::new(t0, &p);
        // (result, verdict after it)
        for (i, (ok, want)) in [
            (true, None),
            (true, Some(true)),
            (false, Some(true)),
            (false, Some(false)),
            (true, Some(false)),
            (true, Some(true)),
        ]
        .into_iter()
        .enumerate()
        {
            s.record(&p, ok, t0);
            assert_eq!(s.ok, want, "step {i}");
        }
        assert_eq!(s.next, t0 + Duration::from_secs(1));
    }

    #[test]
    fn named_ports() {
        let c: Container = serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}),
        )
        .unwrap();
        assert_eq!(port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(port(&IntOrString::Int(81), &c), Ok(81));
        assert!(port(&IntOrString::String("nope".into()), &c).is_err());
    }

    /// A loopback server answering every connection with `status` (over TLS with a
    /// self-signed certificate when `tls`); its port.
    async fn serve(status: u16, tls: bool) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.then(|| {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
                .unwrap();
            let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
        });
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                    let mut buf = [0u8; 1024];
                    match acceptor {
                        Some(a) => {
                            let Ok(mut s) = a.accept(tcp).await else {
                                return;
                            };
                            let _ = s.read(&mut buf).await;
                            let _ = s.write_all(reply.as_bytes()).await;
                            let _ = s.shutdown().await;
                        }
                        None => {
                            let mut s = tcp;
                            let _ = s.read(&mut buf).await;
                            let _ = s.write_all(reply.as_bytes()).await;
                        }
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn http_and_https_probes() {
        let channel = tonic::transport::Endpoint::from_static("http://[::1]:1").connect_lazy();
        let mut rt = crate::cri::Runtime::new(channel);
        let c: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
        // (scheme, server status, tls, want ok)
        for (scheme, status, tls, ok) in [
            ("HTTP", 200, false, true),
            ("HTTP", 500, false, false),
            ("HTTPS", 204, true, true),
            ("HTTPS", 503, true, false),
        ] {
            let port = serve(status, tls).await;
            let g: HTTPGetAction =
                serde_json::from_value(json!({"path": "/healthz", "port": port, "scheme": scheme}))
                    .unwrap();
            let r = run(
                &mut rt,
                "id",
                &c,
                "127.0.0.1",
                Handler::Http(&g),
                Duration::from_secs(2),
            )
            .await;
            assert_eq!(r.is_ok(), ok, "{scheme} {status}: {r:?}");
            if !ok {
                assert_eq!(
                    r.unwrap_err(),
                    format!("HTTP probe failed with statuscode: {status}")
                );
            }
        }
        let t: TCPSocketAction = serde_json::from_value(json!({"port": 1})).unwrap();
        let r = run(
            &mut rt,
            "id",
            &c,
            "127.0.0.1",
            Handler::Tcp(&t),
            Duration::from_secs(1),
        )
        .await;
        assert!(r.unwrap_err().starts_with("dial tcp 127.0.0.1:1: connect:"));
    }
}
