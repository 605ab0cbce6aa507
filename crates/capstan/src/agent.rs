//! `capstan agent`: a node agent for another node. On first start it pins the server's CA
//! against the join token's hash (`GET /cacerts` over unverified TLS, compared before the
//! secret is sent), fetches the node's credentials with the token
//! (`POST /capstan/v1/node-credentials`), stores them under `<data-dir>/tls`, then runs the
//! same agent as `capstan server` does in-process (containerd, CRI, Node, pods, kubelet
//! server), as a worker node. SIGTERM stops it and the containerd it started; containers keep
//! running and are adopted on the next start.

use crate::{pki, token};
use anyhow::{bail, Context, Result};
use capstan_agent::api::{Api, NODE_CLIENT_CERT, NODE_CLIENT_KEY};
use capstan_agent::kubelet::tls::{KUBELET_CERT, KUBELET_KEY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The server to join: https://HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// File holding the join token (the server's <data-dir>/token).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The join token itself (prefer --token-file: arguments are visible to other users).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Name of this node (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Directory for the node's credentials, containerd state, volumes and logs.
    #[arg(long, short = 'd')]
    pub data_dir: Option<PathBuf>,
    /// Port of the node's kubelet HTTPS server (logs, exec, attach, port-forward).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// A CRI socket to use instead of starting containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<PathBuf>,
    #[command(flatten)]
    pub node: crate::server::NodeFlags,
    /// Simulated nodes (`--simulate N` and the `--sim-*` flags) instead of a real node.
    #[command(flatten)]
    pub sim: crate::simulate::SimFlags,
}

pub fn default_data_dir() -> PathBuf {
    let server = crate::server::default_data_dir();
    let name = format!(
        "{}-agent",
        server.file_name().unwrap_or_default().to_string_lossy()
    );
    server.with_file_name(name)
}

/// `https://HOST:PORT[/]` → (host, port); IPv6 hosts in brackets; the port defaults to 6443.
pub fn parse_server(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("--server {url:?}: must start with https://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("--server {url:?}: must be https://HOST:PORT"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("--server {url:?}: unclosed ["))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("--server {url:?}: no host"));
    }
    let port = match port {
        None => 6443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("--server {url:?}: bad port {p:?}"))?,
    };
    Ok((host, port))
}

/// What a fetch was for; credentials are fetched again when it changes.
fn credentials_key(server: &str, node: &str, addresses: &[String]) -> Value {
    json!({"server": server, "nodeName": node, "addresses": addresses})
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Retry `f` while the server cannot be reached (bounded); other failures return at once.
async fn reachable<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline && is_connect_error(&e) => {
                tracing::warn!(error = format!("{e:#}"), "{what}: server not reachable yet");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_connect_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            )
        })
    })
}

/// Fetch the CA (pinned against the token) and the node's credentials; write them to `tls/`.
async fn fetch_credentials(
    tls: &Path,
    host: &str,
    port: u16,
    token: &token::Token,
    full_token: &str,
    node: &str,
    addresses: &[String],
) -> Result<String> {
    // Only for `GET /cacerts`: its answer is checked against the token's CA hash before
    // anything is trusted or sent.
    let anon = Api::with_tls(capstan_agent::api::unverified_tls(), host, port);
    let (code, ca) = reachable("fetching the cluster CA", || {
        anon.call_raw("GET", "/cacerts", None)
    })
    .await
    .with_context(|| format!("fetching the cluster CA from https://{host}:{port}/cacerts"))?;
    if code != 200 {
        bail!("fetching the cluster CA from https://{host}:{port}/cacerts: HTTP {code}");
    }
    token.verify_ca(&ca).map_err(anyhow::Error::msg)?;
    let ca_pem = String::from_utf8(ca.to_vec()).context("the CA is not PEM text")?;

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let verified = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let api = Api::with_tls(verified, host, port).with_bearer(full_token);
    let body = json!({"nodeName": node, "addresses": addresses});
    let answer = api
        .call(
            "POST",
            capstan_apiserver::join::CREDENTIALS_PATH,
            Some(&body),
        )
        .await
        .context("requesting the node's credentials")?;
    match answer.code {
        200 => {}
        401 => bail!(
            "the server refused the join token (401 Unauthorized): use the token in the server's <data-dir>/token"
        ),
        code => bail!(
            "requesting the node's credentials: HTTP {code}: {}",
            answer.body["message"].as_str().unwrap_or("")
        ),
    }
    let field = |k: &str| -> Result<String> {
        answer.body[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the server's answer lacks {k}"))
    };
    std::fs::create_dir_all(tls)?;
    pki::write_private(&tls.join(NODE_CLIENT_KEY), &field("clientKey")?)?;
    pki::write_private(&tls.join(NODE_CLIENT_CERT), &field("clientCert")?)?;
    pki::write_private(&tls.join(KUBELET_KEY), &field("servingKey")?)?;
    pki::write_private(&tls.join(KUBELET_CERT), &field("servingCert")?)?;
    pki::write_private(&tls.join("ca.crt"), &ca_pem)?;
    field("clusterCIDR")
}

/// The stored credentials, when they were fetched for the same server, node, addresses and CA.
fn stored_cluster_cidr(tls: &Path, key: &Value, token: &token::Token) -> Option<String> {
    let state: Value = serde_json::from_slice(&std::fs::read(tls.join("node.json")).ok()?).ok()?;
    let ca = std::fs::read(tls.join("ca.crt")).ok()?;
    let files = [NODE_CLIENT_CERT, NODE_CLIENT_KEY, KUBELET_CERT, KUBELET_KEY];
    (state["for"] == *key
        && token.verify_ca(&ca).is_ok()
        && files.iter().all(|f| tls.join(f).exists()))
    .then(|| state["clusterCIDR"].as_str().map(str::to_string))
    .flatten()
}

/// The join token of `--token` or `--token-file`, whole and parsed (its CA hash checked for
/// presence).
pub fn read_token(args: &AgentArgs) -> Result<(String, token::Token)> {
    let full_token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the join token from {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("--token-file (or --token) is required"),
    };
    let token = token::parse(&full_token).map_err(anyhow::Error::msg)?;
    if token.ca_hash.is_none() {
        token.verify_ca(b"").map_err(anyhow::Error::msg)?;
    }
    Ok((full_token, token))
}

/// The node's credentials under `tls`: the stored ones when they were fetched for the same
/// server, node, addresses and CA, otherwise fetched (and stored) now. Returns the cluster CIDR.
pub async fn credentials(
    server: &str,
    tls: &Path,
    (host, port): (&str, u16),
    (token, full_token): (&token::Token, &str),
    node: &str,
    addresses: &[String],
) -> Result<String> {
    let key = credentials_key(server, node, addresses);
    if let Some(c) = stored_cluster_cidr(tls, &key, token) {
        tracing::info!(dir = %tls.display(), "using the stored node credentials");
        return Ok(c);
    }
    let c = fetch_credentials(tls, host, port, token, full_token, node, addresses).await?;
    std::fs::write(
        tls.join("node.json"),
        serde_json::to_vec_pretty(&json!({"for": key, "clusterCIDR": c}))?,
    )?;
    tracing::info!(node = %node, server = %server, dir = %tls.display(), "node credentials fetched");
    Ok(c)
}

pub async fn run(args: AgentArgs) -> Result<()> {
    let shutdown = crate::server::shutdown_signal()?;
    if args.sim.simulate.is_some() {
        return crate::simulate::run(args, shutdown).await;
    }
    let (full_token, token) = read_token(&args)?;
    let (host, port) = parse_server(&args.server).map_err(anyhow::Error::msg)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let node = args.node_name.clone().unwrap_or(if hostname.is_empty() {
        "capstan-agent".into()
    } else {
        hostname.clone()
    });
    // The node is reached where it reaches the server from (a node in a network namespace of
    // its own, or with several interfaces), unless --node-ip says otherwise.
    let node_ip = match args.node.node_ip {
        Some(ip) => ip.to_string(),
        None => capstan_agent::source_ip_towards(&host).unwrap_or_else(capstan_agent::internal_ip),
    };
    let mut addresses = vec![node_ip.clone()];
    if !hostname.is_empty() && !addresses.contains(&hostname) {
        addresses.push(hostname);
    }
    let tls = data_dir.join("tls");
    let obtain = credentials(
        &args.server,
        &tls,
        (&host, port),
        (&token, &full_token),
        &node,
        &addresses,
    );
    tokio::pin!(shutdown);
    let cluster_cidr = tokio::select! {
        c = obtain => c?,
        _ = &mut shutdown => return Ok(()),
    };
    let mut cfg = capstan_agent::AgentConfig {
        data_dir,
        node_name: node,
        api_host: host,
        api_port: port,
        cluster_cidr,
        runtime_endpoint: args.container_runtime_endpoint.clone(),
        control_plane: false,
        kubelet_port: args.kubelet_port,
        node_ip: Some(node_ip),
        ..Default::default()
    };
    args.node.apply(&mut cfg)?;
    capstan_agent::run(cfg, shutdown).await?;
    tracing::info!("agent stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        type Case<'a> = (&'a str, Result<(&'a str, u16), &'a str>);
        let cases: &[Case] = &[
            ("https://10.0.0.1:6443", Ok(("10.0.0.1", 6443))),
            ("https://server.example:7443/", Ok(("server.example", 7443))),
            ("https://server", Ok(("server", 6443))),
            ("https://[fd00::1]:6443", Ok(("fd00::1", 6443))),
            ("https://[fd00::1]", Ok(("fd00::1", 6443))),
            ("http://10.0.0.1:6443", Err("must start with https://")),
            ("https://10.0.0.1:0", Err("bad port")),
            ("https://10.0.0.1:x", Err("bad port")),
            (
                "https://10.0.0.1:6443/api",
                Err("must be https://HOST:PORT"),
            ),
            ("https://:6443", Err("no host")),
            ("https://[fd00::1:6443", Err("unclosed [")),
        ];
        for (url, want) in cases {
            match (parse_server(url), want) {
                (Ok((h, p)), Ok((wh, wp))) => assert_eq!((h.as_str(), p), (*wh, *wp), "{url}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn default_data_dir_is_next_to_the_servers() {
        let d = default_data_dir();
        let s = crate::server::default_data_dir();
        assert_eq!(d.parent(), s.parent());
        assert!(d.to_string_lossy().ends_with("-agent"));
    }
}
