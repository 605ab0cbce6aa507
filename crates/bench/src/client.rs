//! A minimal HTTPS client for the benchmark: TLS with the admin client certificate the server
//! wrote into its data dir; HTTP/1.1 connections (one per simulated client) for requests and
//! HTTP/2 connections (many streams each) for watches.

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS settings shared by every connection to one server.
#[derive(Clone)]
pub struct Tls {
    h1: TlsConnector,
    h2: TlsConnector,
    port: u16,
}

impl Tls {
    /// Trust `DIR/tls/ca.crt` and authenticate with `DIR/tls/client-admin.{crt,key}`.
    pub fn from_data_dir(dir: &Path, port: u16) -> Result<Tls> {
        let tls = dir.join("tls");
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(tls.join("ca.crt"))? {
            roots.add(c?)?;
        }
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls.join("client-admin.crt"))?
                .collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(tls.join("client-admin.key"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)?;
        let mut h1 = cfg.clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut h2 = cfg;
        h2.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            h1: TlsConnector::from(Arc::new(h1)),
            h2: TlsConnector::from(Arc::new(h2)),
            port,
        })
    }

    async fn tls_stream(&self, connector: &TlsConnector) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("127.0.0.1")?.to_owned();
        Ok(connector.connect(name, tcp).await?)
    }

    /// One HTTP/1.1 connection.
    pub async fn connect(&self) -> Result<Conn> {
        let tls = self.tls_stream(&self.h1).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// One HTTP/2 connection (ALPN h2); clone the handle to multiplex streams over it.
    pub async fn connect_h2(&self) -> Result<H2> {
        let tls = self.tls_stream(&self.h2).await?;
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2 { sender })
    }

    /// Poll `/readyz` until it answers 200, for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match self.connect().await {
                Ok(mut c) => match c.send("GET", "/readyz", None).await {
                    Ok(r) if r.status() == 200 => return Ok(()),
                    Ok(r) => last = format!("/readyz answered {}", r.status()),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server was not ready within {limit:?}: {last}")
    }
}

/// One HTTP/1.1 connection.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>> {
        self.sender.ready().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        Ok(self.sender.send_request(req).await?)
    }

    /// Send and read the whole body; errors on non-2xx.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(bytes)
    }
}

/// An HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    /// Start a GET and return the response head; the body streams.
    pub async fn get(&mut self, path: &str) -> Result<hyper::Response<Incoming>> {
        self.sender.ready().await?;
        let req = hyper::Request::builder()
            .method("GET")
            .uri(format!("https://127.0.0.1{path}"))
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))?;
        let resp = self.sender.send_request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Ok(resp)
    }
}

/// A pod of realistic size (about 1.1 KB of JSON, like a Deployment's pod): one container with
/// env vars, ports, resources, a probe and a volume mount; labels and annotations.
pub fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "bench", "app.kubernetes.io/component": "web",
                "app.kubernetes.io/part-of": "capstan-bench", "pod-template-hash": "5d9c7b8f4d",
                "tier": "frontend", "release": "stable"
            },
            "annotations": {
                "example.com/owner": "benchmark",
                "example.com/purpose": "measure create, list and watch latency"
            }
        },
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "containers": [{
                "name": "app", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c"], "args": ["httpd -f -p 8080 -h /srv"],
                "env": [
                    {"name": "MODE", "value": "bench"}, {"name": "LEVEL", "value": "3"},
                    {"name": "REGION", "value": "local"}, {"name": "LOG_FORMAT", "value": "json"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "data", "mountPath": "/srv"}]
            }],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    }))
    .expect("a JSON literal serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_is_realistic() {
        for name in ["c1-0", "r-99999", "w1000-199"] {
            let body = pod(name);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["metadata"]["name"], name);
            assert_eq!(v["spec"]["containers"].as_array().unwrap().len(), 1);
            assert!((1024..2048).contains(&body.len()), "{} bytes", body.len());
        }
    }
}
