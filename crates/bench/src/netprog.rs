//! `--netprog`: network programming latency of the nftables proxy (issue 6). A real
//! `capstan server` with its node agent (root, containerd; proxy table, bridge, service and
//! cluster CIDRs of its own) gets N selector-less ClusterIP services, each with a manual
//! EndpointSlice pointing at a TCP listener on the node's own address (not loopback). Then,
//! one change at a time, a random service's slice is switched to a second listener, and a probe
//! connects to the service's cluster IP every millisecond until the answer comes from the new
//! listener: the time from the API write to the first connection that reaches the new
//! endpoint is one sample. Measured at each size (1,000 then 10,000 services on the same
//! server), beside the time of a full ruleset rebuild (the proxy's pure generator over the
//! same objects listed from the API, then `nft -f` of that script into a scratch table).

use crate::client::{Conn, Tls};
use crate::pods::node::NodeServer;
use crate::stats::Summary;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TABLE: &str = "capstan-netprog";
const SCRATCH: &str = "capstan-netprog-rebuild";
const BRIDGE: &str = "cnetprog0";
const NS: &str = "default";
/// The service CIDR of the benchmark's server. It is routed to `lo` as local while the
/// benchmark runs, so a probe to a cluster IP the proxy has no rule for (yet) is refused here
/// instead of being routed out of the machine.
const SERVICE_CIDR: &str = "10.200.0.0/16";

pub struct Plan {
    pub sizes: Vec<usize>,
    pub changes: usize,
}

pub struct Row {
    pub services: usize,
    pub create_secs: f64,
    pub lat: Summary,
    pub timeouts: usize,
    pub gen: Summary,
    pub apply: Summary,
}

/// Why this benchmark cannot run here, if it cannot.
pub fn missing_prerequisites() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root {
        return Some("needs root".into());
    }
    for bin in ["nft", "containerd"] {
        let found = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{bin} is not installed"));
        }
    }
    None
}

/// The node's first global-scope IPv4 address (what the proxy's NodePorts answer on).
fn node_ip() -> Result<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .context("running ip")?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .context("this host has no global IPv4 address")
}

/// A listener on `ip` answering every connection with `tag` and closing it.
fn listener(ip: Ipv4Addr, tag: u8) -> Result<u16> {
    let l = TcpListener::bind((ip, 0))?;
    let port = l.local_addr()?.port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(&[tag]);
        }
    });
    Ok(port)
}

/// One connection to `vip:80`: the tag of the listener that answered.
fn probe(vip: Ipv4Addr) -> Option<u8> {
    let addr = (vip, 80).into();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    Some(b[0])
}

/// Probe every millisecond until `vip` answers `want`; the time since `t0`.
async fn until_tag(vip: Ipv4Addr, want: u8, t0: Instant, limit: Duration) -> Option<Duration> {
    loop {
        let got = tokio::task::spawn_blocking(move || probe(vip))
            .await
            .ok()
            .flatten();
        if got == Some(want) {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn slice(i: usize, ip: Ipv4Addr, port: u16) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("np-{i}"), "namespace": NS,
                     "labels": {"kubernetes.io/service-name": format!("np-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "p", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true},
                       "nodeName": crate::pods::node::NODE}],
    }))
    .expect("a JSON literal serializes")
}

/// Create services `from..to` (each with its slice) over 16 connections; their cluster IPs.
async fn create(
    tls: &Tls,
    from: usize,
    to: usize,
    ip: Ipv4Addr,
    port: u16,
) -> Result<Vec<Ipv4Addr>> {
    const CONNS: usize = 16;
    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = tls.connect().await?;
            let mut out = Vec::new();
            for i in (from + c..to).step_by(CONNS) {
                let svc = json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("np-{i}"), "namespace": NS},
                    "spec": {"ports": [{"name": "p", "port": 80, "protocol": "TCP"}]}});
                let body = conn
                    .call(
                        "POST",
                        &format!("/api/v1/namespaces/{NS}/services"),
                        Some(serde_json::to_vec(&svc)?),
                    )
                    .await?;
                let v: Value = serde_json::from_slice(&body)?;
                let vip: Ipv4Addr = v["spec"]["clusterIP"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .context("a service without a cluster IP")?;
                conn.call(
                    "POST",
                    &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"),
                    Some(slice(i, ip, port)),
                )
                .await?;
                out.push((i, vip));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(s.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// A full rebuild over what the API holds now: generation and `nft -f`, 3 times each.
async fn rebuild(conn: &mut Conn, ip: Ipv4Addr) -> Result<(Summary, Summary)> {
    let list = |b: bytes::Bytes| -> Result<Vec<Value>> {
        let v: Value = serde_json::from_slice(&b)?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    };
    let svcs = list(conn.call("GET", "/api/v1/services", None).await?)?;
    let sls = list(
        conn.call("GET", "/apis/discovery.k8s.io/v1/endpointslices", None)
            .await?,
    )?;
    tokio::task::spawn_blocking(move || {
        let (mut gen, mut apply) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let t = Instant::now();
            let script = capstan_agent::proxy::rules::ruleset(
                SCRATCH,
                crate::pods::node::NODE,
                &[ip.to_string()],
                &svcs,
                &sls,
            );
            gen.push(t.elapsed());
            let t = Instant::now();
            nft(&["-f", "-"], Some(&script))?;
            apply.push(t.elapsed());
        }
        nft(&["delete", "table", "ip", SCRATCH], None)?;
        Ok((Summary::of(gen), Summary::of(apply)))
    })
    .await?
}

pub fn run(rt: &tokio::runtime::Runtime, bin: &Path, plan: &Plan) -> Result<Vec<Row>> {
    if let Some(why) = missing_prerequisites() {
        bail!("the network programming benchmark cannot run here: {why}");
    }
    let ip = node_ip()?;
    let (port_a, port_b) = (listener(ip, b'A')?, listener(ip, b'B')?);
    let route = ["route", "add", "local", SERVICE_CIDR, "dev", "lo"];
    let out = Command::new("ip").args(route).output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        route.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let r = with_route(rt, bin, ip, port_a, port_b, plan);
    let _ = Command::new("ip")
        .args(["route", "del", "local", SERVICE_CIDR, "dev", "lo"])
        .status();
    r
}

fn with_route(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    ip: Ipv4Addr,
    port_a: u16,
    port_b: u16,
    plan: &Plan,
) -> Result<Vec<Row>> {
    let node = NodeServer::start_bare(
        bin,
        &[
            "--proxy-nft-table",
            TABLE,
            "--cni-bridge",
            BRIDGE,
            "--service-cidr",
            SERVICE_CIDR,
            "--cluster-cidr",
            "10.201.0.0/16",
            "--disable-scheduler",
            "--disable-controllers",
        ],
    )?;
    let r = rt.block_on(measure(&node, ip, port_a, port_b, plan));
    let r = r.with_context(|| format!("server log:\n{}", node.log_tail()));
    drop(node);
    // SIGTERM made the proxy delete its table; whatever is left goes here.
    let _ = nft(&["delete", "table", "ip", TABLE], None);
    let _ = nft(&["delete", "table", "ip", SCRATCH], None);
    let _ = Command::new("ip")
        .args(["link", "del", BRIDGE])
        .stderr(Stdio::null())
        .status();
    r
}

async fn measure(
    node: &NodeServer,
    ip: Ipv4Addr,
    port_a: u16,
    port_b: u16,
    plan: &Plan,
) -> Result<Vec<Row>> {
    let tls = Tls::from_data_dir(&node.data_dir(), node.port)?;
    tls.wait_ready(Duration::from_secs(60)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while nft(&["list", "table", "ip", TABLE], None).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the proxy made no table {TABLE} in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = tls.connect().await?;
    let mut vips: Vec<Ipv4Addr> = Vec::new();
    // The listener each service's slice points at now.
    let mut at_b: Vec<bool> = Vec::new();
    let mut rows = Vec::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for &size in &plan.sizes {
        if size <= vips.len() {
            continue;
        }
        let t = Instant::now();
        vips.extend(create(&tls, vips.len(), size, ip, port_a).await?);
        at_b.resize(vips.len(), false);
        let create_secs = t.elapsed().as_secs_f64();
        // The newest service live: the proxy has caught up.
        let last = *vips.last().expect("services were created");
        if until_tag(last, b'A', Instant::now(), Duration::from_secs(300))
            .await
            .is_none()
        {
            bail!("service {last} was not live within 300 s of its creation");
        }
        eprintln!(
            "  {size} services: created in {create_secs:.1} s, live {:.1} s after the first create",
            t.elapsed().as_secs_f64()
        );
        let mut lat = Vec::new();
        let mut timeouts = 0;
        for _ in 0..plan.changes {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng % vips.len() as u64) as usize;
            let (port, tag) = if at_b[i] {
                (port_a, b'A')
            } else {
                (port_b, b'B')
            };
            let t0 = Instant::now();
            conn.call(
                "PUT",
                &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/np-{i}"),
                Some(slice(i, ip, port)),
            )
            .await?;
            at_b[i] = !at_b[i];
            match until_tag(vips[i], tag, t0, Duration::from_secs(60)).await {
                Some(d) => lat.push(d),
                None => timeouts += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let lat = Summary::of(lat);
        let (gen, apply) = rebuild(&mut conn, ip).await?;
        eprintln!(
            "  {size} services: endpoint change → live {}, {timeouts} timeouts; full rebuild: generate {:.1} ms, nft -f {:.1} ms",
            lat.short(),
            gen.p50_ms(),
            apply.p50_ms()
        );
        rows.push(Row {
            services: size,
            create_secs,
            lat,
            timeouts,
            gen,
            apply,
        });
    }
    Ok(rows)
}

pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<34} {:>9} {:>10} {:>22} {:>9} {:>24}\n",
        "network programming (nftables)",
        "services",
        "create s",
        "change→live p50/p99 ms",
        "timeouts",
        "full rebuild gen/nft ms"
    );
    for r in rows {
        s += &format!(
            "{:<34} {:>9} {:>10.1} {:>22} {:>9} {:>24}\n",
            format!("endpoint change (n={})", r.lat.n()),
            r.services,
            r.create_secs,
            r.lat.cell(),
            r.timeouts,
            format!("{:.1} / {:.1}", r.gen.p50_ms(), r.apply.p50_ms()),
        );
    }
    s += "target: p99 ≤ 100 ms at 10,000 services (Kubernetes' SLO: 30 s)\n";
    s
}

pub fn json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({"services": r.services, "create_secs": r.create_secs,
                       "change_to_live": r.lat.json(), "timeouts": r.timeouts,
                       "rebuild_generate": r.gen.json(), "rebuild_nft_apply": r.apply.json()})
            })
            .collect(),
    )
}
