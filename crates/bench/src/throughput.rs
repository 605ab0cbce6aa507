//! `--proxy-throughput`: one TCP stream through a service VIP, userspace proxy against
//! nftables proxy against no proxy, in the same run. A sink in this process listens on the
//! node's advertised address (not loopback: DNAT to 127.0.0.1 needs route_localnet) and
//! answers each connection, after its EOF, with the byte count it read; a stream is timed
//! from connect to that answer, so nothing still in flight is counted. `capstan server` with
//! its node agent is started once per proxy mode (each with a table of its own), a
//! selector-less Service with a hand-written EndpointSlice pointing at the sink; each stream
//! through the VIP follows one straight to the sink's address (the direct row: both phases).
//! Needs root (the agent, nft).

use crate::client::Tls;
use crate::pods::node::NodeServer;
use anyhow::{bail, Context, Result};
use capstan_agent::api::Api;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The VIP of the sink's Service (in the bench's own service CIDR).
const VIP: &str = "10.99.0.99";
const SERVICE_CIDR: &str = "10.99.0.0/16";
const PORT: u16 = 9000;
const CHUNK: usize = 256 * 1024;

pub struct Row {
    pub what: &'static str,
    /// MB/s (10^6 bytes per second) of each run.
    pub runs: Vec<f64>,
}

impl Row {
    fn best(&self) -> f64 {
        self.runs.iter().copied().fold(0.0, f64::max)
    }

    fn median(&self) -> f64 {
        let mut v = self.runs.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
}

/// A sink on `ip` (a kernel-chosen port): reads each connection to EOF, answers the count.
fn start_sink(ip: Ipv4Addr) -> Result<SocketAddr> {
    let l = TcpListener::bind((ip, 0)).context("binding the sink")?;
    let addr = l.local_addr()?;
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut buf = vec![0u8; CHUNK];
                let mut n: u64 = 0;
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k as u64,
                    }
                }
                let _ = c.write_all(&n.to_be_bytes());
            });
        }
    });
    Ok(addr)
}

/// Stream `bytes` to `addr`; MB/s from connect to the sink's count.
fn stream(addr: SocketAddr, bytes: u64) -> Result<f64> {
    let t0 = Instant::now();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    let _ = c.set_nodelay(true);
    let buf = vec![0x5au8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let k = left.min(CHUNK as u64) as usize;
        c.write_all(&buf[..k])
            .with_context(|| format!("writing to {addr}"))?;
        left -= k as u64;
    }
    c.shutdown(std::net::Shutdown::Write)?;
    let mut count = [0u8; 8];
    c.read_exact(&mut count)
        .with_context(|| format!("reading the sink's count through {addr}"))?;
    let got = u64::from_be_bytes(count);
    if got != bytes {
        bail!("the sink read {got} bytes of {bytes} through {addr}");
    }
    Ok(bytes as f64 / t0.elapsed().as_secs_f64() / 1e6)
}

/// `n` streams through `vip`, each after one straight to `sink` (alternating, so drift on
/// the machine affects both alike): (through the VIP, direct).
fn runs(
    vip: SocketAddr,
    sink: SocketAddr,
    bytes: u64,
    n: usize,
    what: &str,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut out, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let d = stream(sink, bytes)?;
        let r = stream(vip, bytes)?;
        eprintln!("  {what}: {r:.0} MB/s (direct just before: {d:.0} MB/s)");
        out.push(r);
        direct.push(d);
    }
    Ok((out, direct))
}

/// Start a server in `mode`, point the Service at `sink`, measure through the VIP.
fn through_proxy(
    rt: &tokio::runtime::Runtime,
    capstan: &Path,
    mode: &str,
    sink: SocketAddr,
    bytes: u64,
    n: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let table = format!("cstbench{}", std::process::id() % 100_000);
    let node = NodeServer::start_with_args(
        capstan,
        "",
        &[
            "--proxy-mode",
            mode,
            "--proxy-nft-table",
            &table,
            "--service-cidr",
            SERVICE_CIDR,
            "--disable-controllers",
            "--disable-scheduler",
        ],
    )?;
    let r = rt
        .block_on(async {
            Tls::from_data_dir(&node.data_dir(), node.port)?
                .wait_ready(Duration::from_secs(60))
                .await?;
            let api = Api::from_data_dir(&node.data_dir(), "127.0.0.1", node.port)?;
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "sink", "namespace": "default"},
                "spec": {"clusterIP": VIP,
                         "ports": [{"name": "data", "port": PORT, "protocol": "TCP"}]}});
            let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "sink-manual", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "sink",
                                        "endpointslice.kubernetes.io/managed-by": "bench"}},
                "addressType": "IPv4",
                "ports": [{"name": "data", "port": sink.port(), "protocol": "TCP"}],
                "endpoints": [{"addresses": [sink.ip().to_string()],
                               "conditions": {"ready": true}}]});
            for (path, body) in [
                ("/api/v1/namespaces/default/services", &svc),
                (
                    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                    &slice,
                ),
            ] {
                let a = api.call("POST", path, Some(body)).await?;
                anyhow::ensure!(a.code == 201, "POST {path}: {} {}", a.code, a.body);
            }
            anyhow::Ok(())
        })
        .and_then(|()| {
            // The agent starts containerd first: wait for its proxy to carry the VIP.
            let vip: SocketAddr = format!("{VIP}:{PORT}").parse()?;
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                match stream(vip, 1 << 20) {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(e.context(format!("the {mode} proxy never carried {vip}")))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
            runs(vip, sink, bytes, n, mode)
        })
        .with_context(|| format!("{mode} proxy; server log:\n{}", node.log_tail()));
    drop(node);
    r
}

pub fn run(rt: &tokio::runtime::Runtime, capstan: &Path, quick: bool) -> Result<Vec<Row>> {
    if let Some(why) = crate::pods::missing_prerequisites() {
        bail!("the proxy throughput benchmark cannot run here: {why}");
    }
    let ip: Ipv4Addr = capstan_agent::internal_ip()
        .parse()
        .context("the node address")?;
    anyhow::ensure!(
        !ip.is_loopback(),
        "no global IPv4 address on this host: DNAT to loopback needs route_localnet"
    );
    let sink = start_sink(ip)?;
    let (bytes, n) = if quick {
        (256u64 << 20, 2)
    } else {
        (1u64 << 30, 3)
    };
    eprintln!("  sink on {sink}; {} MiB per stream", bytes >> 20);
    let (nft, mut direct) = through_proxy(rt, capstan, "nftables", sink, bytes, n)?;
    let (user, d2) = through_proxy(rt, capstan, "userspace", sink, bytes, n)?;
    direct.extend(d2);
    Ok(vec![
        Row {
            what: "direct (no proxy)",
            runs: direct,
        },
        Row {
            what: "nftables (kernel DNAT)",
            runs: nft,
        },
        Row {
            what: "userspace (agent copies)",
            runs: user,
        },
    ])
}

pub fn table(rows: &[Row], quick: bool) -> String {
    let mib = if quick { 256 } else { 1024 };
    let mut s = format!(
        "{:<34} {:>10} {:>12} {:>8}\n",
        format!("1 TCP stream via VIP ({mib} MiB)"),
        "best MB/s",
        "median MB/s",
        "runs"
    );
    for r in rows {
        s += &format!(
            "{:<34} {:>10.0} {:>12.0} {:>8}\n",
            r.what,
            r.best(),
            r.median(),
            r.runs.len()
        );
    }
    s
}

pub fn json(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                json!({"what": r.what, "runs_mb_s": r.runs, "best_mb_s": r.best(),
                            "median_mb_s": r.median()})
            })
            .collect(),
    )
}
