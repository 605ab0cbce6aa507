//! A small HTTPS client for the agent's calls to the API server (JSON, client-certificate
//! authentication; a bearer token for joining). Calls share one HTTP/2 connection (streams multiplexed, as client-go does),
//! opened on first use and again whenever it has closed, so a pod start costs no TLS handshake;
//! each watch has an HTTP/1.1 connection of its own.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

type Sender = http2::SendRequest<Full<Bytes>>;

/// Where the API server is and how to authenticate; clones share the HTTP/2 connection.
#[derive(Clone)]
pub struct Api {
    /// ALPN http/1.1, for watches.
    h1: TlsConnector,
    /// ALPN h2, for calls.
    h2: TlsConnector,
    host: String,
    port: u16,
    shared: Arc<tokio::sync::Mutex<Option<Sender>>>,
    /// Sent as `Authorization: Bearer …` when set.
    bearer: Option<String>,
}

/// The node's client credential a joined node stores (issued by the server); the server's own
/// node uses the admin credential instead.
pub const NODE_CLIENT_CERT: &str = "client-node.crt";
pub const NODE_CLIENT_KEY: &str = "client-node.key";

/// An answer: status code and JSON body (Null when the body is not JSON).
pub struct Answer {
    pub code: u16,
    pub body: Value,
}

impl Api {
    /// Credentials from the data dir: `tls/ca.crt` and the node's client credential
    /// (`tls/client-node.{crt,key}`, a joined node) or the admin one (`tls/client-admin.*`,
    /// the server's own node).
    pub fn from_data_dir(data_dir: &Path, host: &str, port: u16) -> Result<Api> {
        let tls = data_dir.join("tls");
        let (cert, key) = if tls.join(NODE_CLIENT_CERT).exists() {
            (NODE_CLIENT_CERT, NODE_CLIENT_KEY)
        } else {
            ("client-admin.crt", "client-admin.key")
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls.join(cert))
            .with_context(|| format!("reading tls/{cert}"))?
            .collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(tls.join(key))
            .with_context(|| format!("reading tls/{key}"))?;
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(read_roots(&tls.join("ca.crt"))?)
        .with_client_auth_cert(certs, key)?;
        Ok(Api::with_tls(cfg, host, port))
    }

    /// Server and credentials from a kubeconfig's current context (embedded
    /// `certificate-authority-data`, `client-certificate-data`/`client-key-data` or `token`),
    /// as kube-scheduler's `--kubeconfig`.
    pub fn from_kubeconfig(path: &Path) -> Result<Api> {
        use base64::Engine;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading kubeconfig {}", path.display()))?;
        let cfg: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing kubeconfig {}", path.display()))?;
        let current = cfg["current-context"].as_str().unwrap_or_default();
        let named = |list: &str, name: &str, field: &str| -> Value {
            cfg[list]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| name.is_empty() || e["name"] == name)
                .map(|e| e[field].clone())
                .unwrap_or(Value::Null)
        };
        let ctx = named("contexts", current, "context");
        let cluster = named(
            "clusters",
            ctx["cluster"].as_str().unwrap_or_default(),
            "cluster",
        );
        let user = named("users", ctx["user"].as_str().unwrap_or_default(), "user");
        let b64 = |v: &Value, what: &str| -> Result<Vec<u8>> {
            let s = v
                .as_str()
                .with_context(|| format!("kubeconfig: no {what}"))?;
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .with_context(|| format!("kubeconfig: {what} is not base64"))
        };
        let server = cluster["server"]
            .as_str()
            .context("kubeconfig: no cluster server")?;
        let rest = server
            .strip_prefix("https://")
            .context("kubeconfig: the server must be https://")?
            .trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h.trim_matches(['[', ']']).to_string(), p.parse()?),
            None => (rest.to_string(), 443),
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&b64(
            &cluster["certificate-authority-data"],
            "certificate-authority-data",
        )?) {
            roots.add(c?)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        if let Some(token) = user["token"].as_str() {
            return Ok(Api::with_tls(builder.with_no_client_auth(), &host, port).with_bearer(token));
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&b64(
            &user["client-certificate-data"],
            "client-certificate-data",
        )?)
        .collect::<Result<_, _>>()?;
        let key =
            PrivateKeyDer::from_pem_slice(&b64(&user["client-key-data"], "client-key-data")?)?;
        Ok(Api::with_tls(
            builder.with_client_auth_cert(certs, key)?,
            &host,
            port,
        ))
    }

    /// A client with the given TLS config (no client certificate needed).
    pub fn with_tls(cfg: rustls::ClientConfig, host: &str, port: u16) -> Api {
        let mut h1 = cfg.clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut h2 = cfg;
        h2.alpn_protocols = vec![b"h2".to_vec()];
        Api {
            h1: TlsConnector::from(Arc::new(h1)),
            h2: TlsConnector::from(Arc::new(h2)),
            host: host.to_string(),
            port,
            shared: Default::default(),
            bearer: None,
        }
    }

    /// The same client sending `Authorization: Bearer <token>`.
    pub fn with_bearer(mut self, token: &str) -> Api {
        self.bearer = Some(token.to_string());
        self
    }

    /// One call; the raw body.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let code = resp.status().as_u16();
        Ok((code, resp.into_body().collect().await?.to_bytes()))
    }

    async fn tls(
        &self,
        connector: &TlsConnector,
    ) -> Result<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        let tls = connector
            .connect(ServerName::try_from(self.host.clone())?, tcp)
            .await?;
        Ok(TokioIo::new(tls))
    }

    /// The shared HTTP/2 connection, (re)opened when there is none or it has closed. The lock
    /// is held while connecting, so concurrent callers share one new connection.
    async fn sender(&self) -> Result<Sender> {
        let mut slot = self.shared.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        *slot = None;
        let (sender, conn) = http2::handshake(TokioExecutor::new(), self.tls(&self.h2).await?)
            .await
            .context("HTTP/2 handshake with the API server")?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "API server connection ended");
            }
        });
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// A PATCH of the given content type (e.g. `application/strategic-merge-patch+json`).
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Answer> {
        let mut req = self.request("PATCH", path, Some(body), true)?;
        req.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_str(content_type)?,
        );
        let resp = self.send_request(req, "PATCH", path).await?;
        let code = resp.status().as_u16();
        let raw = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            code,
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        })
    }

    /// One JSON call (PATCH bodies are merge patches).
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        let resp = self.send(method, path, body).await?;
        let code = resp.status().as_u16();
        let raw = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            code,
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        absolute: bool,
    ) -> Result<hyper::Request<Full<Bytes>>> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("serializes"))
            .unwrap_or_default();
        let uri = if absolute {
            format!("https://{}:{}{path}", self.host, self.port)
        } else {
            path.to_string()
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("accept", "application/json");
        if !absolute {
            req = req.header("host", &self.host);
        }
        if let Some(t) = &self.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            let ct = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            req = req.header("content-type", ct);
        }
        Ok(req.body(Full::new(Bytes::from(bytes)))?)
    }

    /// One request on the shared connection. A request the connection closed before sending
    /// is sent again once, on a new connection.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let req = self.request(method, path, body, true)?;
        self.send_request(req, method, path).await
    }

    async fn send_request(
        &self,
        mut req: hyper::Request<Full<Bytes>>,
        method: &str,
        path: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        for retried in [false, true] {
            let mut sender = self.sender().await?;
            if sender.ready().await.is_err() {
                // Closed meanwhile: the next sender() opens a new connection.
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !retried => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
        anyhow::bail!("{method} {path}: the API server connection closed")
    }

    /// Start a watch (`path` carries `watch=true`); events arrive as parsed JSON lines.
    pub async fn watch(&self, path: &str) -> Result<Watch> {
        let (mut sender, conn) = http1::handshake(self.tls(&self.h1).await?).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let resp = sender
            .send_request(self.request("GET", path, None, false)?)
            .await?;
        if resp.status() != 200 {
            let code = resp.status().as_u16();
            let raw = resp.into_body().collect().await?.to_bytes();
            anyhow::bail!("watch {path}: {code} {}", String::from_utf8_lossy(&raw));
        }
        Ok(Watch {
            body: resp.into_body(),
            buf: Vec::new(),
        })
    }
}

/// Accepts any server certificate: for HTTPS probes (the kubelet skips verification) and for
/// a joining node's first `GET /cacerts`, whose answer is checked against the token's hash.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client config that verifies no server certificate (see [`AnyCert`]).
pub fn unverified_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth()
}

/// The certificates of a PEM file as a root store.
fn read_roots(path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(path).context("reading the cluster CA")? {
        roots.add(c?)?;
    }
    Ok(roots)
}

/// A watch response body, split into JSON lines.
pub struct Watch {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event (`{"type": …, "object": …}`); None when the server ended the watch.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        match self.next_line().await? {
            Some(line) => Ok(Some(serde_json::from_slice(&line)?)),
            None => Ok(None),
        }
    }

    /// The next event as its raw JSON line, for callers that decode only the fields they
    /// need; None when the server ended the watch.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
