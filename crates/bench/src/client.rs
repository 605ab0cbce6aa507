//! A minimal HTTPS client for the benchmark: one HTTP/1.1 connection per client, TLS with the
//! admin client certificate the server wrote into its data dir.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// TLS settings shared by every connection to one server.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    h2: TlsConnector,
    pub port: u16,
}

impl Tls {
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
        let mut h2 = cfg.clone();
        h2.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(cfg)),
            h2: TlsConnector::from(Arc::new(h2)),
            port,
        })
    }

    /// One HTTP/2 connection (ALPN h2); clone the sender to multiplex streams over it.
    pub async fn connect_h2(&self) -> Result<H2> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .h2
            .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
            .await?;
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2 { sender })
    }

    pub async fn connect(&self) -> Result<Conn> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
            .await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
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

/// An HTTP/2 connection.
#[derive(Clone)]
pub struct H2 {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    pub async fn get(&mut self, path: &str) -> Result<hyper::Response<Incoming>> {
        self.sender.ready().await?;
        let req = hyper::Request::builder()
            .method("GET")
            .uri(format!("https://127.0.0.1{path}"))
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))?;
        Ok(self.sender.send_request(req).await?)
    }
}

/// A pod of realistic size (~1.3 KB of JSON).
pub fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web", "release": "stable"},
            "annotations": {"example.com/owner": "benchmark", "example.com/purpose": "measure create latency"}},
        "spec": {"containers": [{
            "name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"],
            "env": [{"name": "MODE", "value": "bench"}, {"name": "LEVEL", "value": "3"}, {"name": "REGION", "value": "local"}],
            "ports": [{"containerPort": 8080, "name": "http"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
        }]}
    }))
    .expect("serializes")
}
