//! The processes a benchmark run starts — etcd and `capstan server` — on loopback ports of
//! their own, killed by PID when dropped.

use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Etcd {
    pub fn start() -> Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let (cp, pp) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        let child = Command::new("etcd")
            .args(["--data-dir", dir.path().join("etcd").to_str().unwrap()])
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("default={peer}"),
                "--name",
                "default",
            ])
            .args(["--quota-backend-bytes", &(8u64 << 30).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting etcd (apt-get install etcd-server)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
            if Instant::now() > deadline {
                bail!("etcd did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Etcd {
            child,
            _dir: dir,
            endpoint: format!("etcd://127.0.0.1:{cp}"),
        })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Server {
    pub fn start(bin: &Path, datastore: Option<&str>) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .env("CAPSTAN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(ep) = datastore {
            cmd.args(["--datastore-endpoint", ep]);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let s = Server { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(s.dir.path().join("admin.kubeconfig").exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            if Instant::now() > deadline {
                bail!("capstan server did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        Ok(s)
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime and stime are the
        // 12th and 13th of them, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
