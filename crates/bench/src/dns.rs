//! `--dns`: the cluster DNS server of `capstan server` (`--cluster-dns-listen`) measured at
//! fixed query rates from an open-loop UDP client: a cluster name answered from memory
//! (`kubernetes.default.svc.cluster.local`), a name forwarded to an upstream resolver, and
//! that upstream queried directly (a minimal in-process responder on loopback: the cost the
//! forwarding path adds on top of a plain resolver), and — side by side, when Debian's
//! `dnsmasq` (package dnsmasq-base) is installed — dnsmasq answering the same cluster name
//! from a hosts file, the plain-forwarder peer. Per row: queries/s answered, lost queries,
//! p50/p99 latency.

use crate::procs;
use crate::stats::Summary;
use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Row {
    pub what: &'static str,
    pub rate: u32,
    pub sent: usize,
    pub answered: usize,
    pub qps: f64,
    pub lat: Summary,
}

/// A loopback resolver answering every question with A 192.0.2.7.
fn start_upstream() -> Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let addr = sock.local_addr()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::new();
            r.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_recursion_desired(true)
                .set_recursion_available(true);
            r.add_queries(q.queries().iter().cloned());
            if let Some(question) = q.queries().first() {
                let a = RData::A(A("192.0.2.7".parse().expect("an IP")));
                r.add_answer(Record::from_rdata(question.name().clone(), 30, a));
            }
            if let Ok(b) = r.to_vec() {
                let _ = sock.send_to(&b, peer);
            }
        }
    });
    Ok(addr)
}

/// dnsmasq on loopback answering `name` A `ip` from a hosts file (no upstream, no cache
/// misses), killed when dropped.
struct Dnsmasq {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dnsmasq(name: &str, ip: &str) -> Result<Option<Dnsmasq>> {
    let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(bin) = bin else {
        eprintln!("  dnsmasq not installed (apt-get install dnsmasq-base): its row is skipped");
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("{ip} {}\n", name.trim_end_matches('.')))?;
    let port = procs::free_port()?;
    let child = std::process::Command::new(bin)
        .args([
            "--no-daemon",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
        ])
        .args([
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .args(["--cache-size=10000", "--pid-file="])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting dnsmasq")?;
    let d = Dnsmasq {
        child,
        _dir: dir,
        addr: format!("127.0.0.1:{port}").parse()?,
    };
    wait_ready(d.addr, name)?;
    Ok(Some(d))
}

fn query_bytes(name: &str) -> Result<Vec<u8>> {
    let mut m = Message::new();
    m.set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    Ok(m.to_vec()?)
}

/// `rate` queries/s for `secs` to `target`, each with its own ID; replies matched by ID.
fn fixed_rate(
    target: SocketAddr,
    name: &str,
    rate: u32,
    secs: f64,
) -> Result<(usize, usize, f64, Summary)> {
    let n = ((rate as f64 * secs) as usize).min(65536);
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(target)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let recv = sock.try_clone()?;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let t0 = Instant::now();
    let s2 = sent.clone();
    let receiver = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(n);
        let mut buf = [0u8; 1500];
        let mut idle_since = None;
        let mut last = t0;
        while lat.len() < n {
            match recv.recv(&mut buf) {
                Ok(len) if len >= 12 => {
                    idle_since = None;
                    let id = u16::from_be_bytes([buf[0], buf[1]]) as usize;
                    let at = s2.get(id).map(|a| a.load(Ordering::Relaxed)).unwrap_or(0);
                    if at > 0 {
                        let now = t0.elapsed();
                        last = Instant::now();
                        lat.push(now.saturating_sub(Duration::from_nanos(at)));
                    }
                }
                _ => {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) && t0.elapsed().as_secs_f64() > secs
                    {
                        break;
                    }
                }
            }
        }
        (lat, last)
    });
    let mut bytes = query_bytes(name)?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for i in 0..n {
        let due = interval * i as u32;
        while t0.elapsed() < due {
            let left = due.saturating_sub(t0.elapsed());
            if left > Duration::from_micros(200) {
                std::thread::sleep(left - Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
        }
        bytes[..2].copy_from_slice(&(i as u16).to_be_bytes());
        sent[i].store(t0.elapsed().as_nanos().max(1) as u64, Ordering::Relaxed);
        let _ = sock.send(&bytes);
    }
    let (lat, last) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    let span = last.duration_since(t0).as_secs_f64().max(1e-9);
    let answered = lat.len();
    Ok((n, answered, answered as f64 / span, Summary::of(lat)))
}

fn wait_ready(dns: SocketAddr, name: &str) -> Result<()> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    let bytes = query_bytes(name)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        sock.send_to(&bytes, dns)?;
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if Message::from_vec(&buf[..n]).is_ok_and(|m| !m.answers().is_empty()) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("{dns} did not answer {name} within 30 s")
}

pub fn run(capstan: &Path, quick: bool) -> Result<Vec<Row>> {
    let upstream = start_upstream()?;
    let dns: SocketAddr = format!("127.0.0.1:{}", procs::free_port()?).parse()?;
    let (listen, up) = (dns.to_string(), upstream.to_string());
    let server = procs::Server::start_with(
        capstan,
        None,
        &[
            "--cluster-dns-listen",
            &listen,
            "--dns-upstream",
            &up,
            "--disable-controllers",
            "--disable-scheduler",
        ],
    )?;
    let cluster = "kubernetes.default.svc.cluster.local.";
    wait_ready(dns, cluster).with_context(|| server.log_tail())?;
    let rates: &[u32] = if quick {
        &[1000, 5000]
    } else {
        &[1000, 10_000, 30_000]
    };
    let secs = if quick { 1.0 } else { 3.0 };
    let mut rows = Vec::new();
    let dnsmasq = start_dnsmasq(cluster, "10.43.0.1")?;
    let mut targets = vec![
        ("cluster name (capstan)", dns, cluster),
        ("forwarded (capstan → upstream)", dns, "www.example.test."),
        ("upstream directly", upstream, "www.example.test."),
    ];
    if let Some(d) = &dnsmasq {
        targets.insert(1, ("cluster name (dnsmasq hosts)", d.addr, cluster));
    }
    for &(what, target, name) in &targets {
        for &rate in rates {
            let (sent, answered, qps, lat) = fixed_rate(target, name, rate, secs)?;
            eprintln!("  {what} @ {rate}/s: {answered}/{sent}, {}", lat.short());
            rows.push(Row {
                what,
                rate,
                sent,
                answered,
                qps,
                lat,
            });
        }
    }
    drop(server);
    Ok(rows)
}

pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<32} {:>8} {:>10} {:>8} {:>18}\n",
        "cluster DNS (UDP)", "rate/s", "answered/s", "lost", "p50 / p99 ms"
    );
    for r in rows {
        s += &format!(
            "{:<32} {:>8} {:>10.0} {:>8} {:>18}\n",
            r.what,
            r.rate,
            r.qps,
            r.sent - r.answered,
            r.lat.cell()
        );
    }
    s
}

pub fn json(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({"what": r.what, "rate": r.rate, "sent": r.sent,
                    "answered": r.answered, "qps": r.qps,
                    "p50_ms": r.lat.p50_ms(), "p99_ms": r.lat.p99_ms()})
            })
            .collect(),
    )
}
