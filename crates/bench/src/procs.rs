//! The processes a benchmark run starts — etcd and `capstan server` — on loopback ports of
//! their own with data dirs in temp dirs; each is killed by PID and its temp dir removed when
//! its guard is dropped.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd the benchmark starts (Debian's etcd-server package).
const ETCD: &str = "/usr/bin/etcd";

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A child process killed (by PID, through `Child::kill`) and reaped on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A single-member etcd on loopback.
pub struct Etcd {
    // Field order matters: the process dies before its data dir is removed.
    child: Guard,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Etcd {
    pub fn start() -> Result<Etcd> {
        let dir = tempfile::Builder::new()
            .prefix("capstan-bench-etcd")
            .tempdir()?;
        let (cp, pp) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        let log = dir.path().join("etcd.log");
        let data = dir.path().join("data");
        let child = Command::new(ETCD)
            .arg("--data-dir")
            .arg(&data)
            .args(["--name", "bench", "--initial-cluster-state", "new"])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .args([
                "--listen-metrics-urls",
                &format!("http://127.0.0.1:{}", free_port()?),
            ])
            // 8 GiB: room for 100k pods and their history.
            .args(["--quota-backend-bytes", &(8u64 << 30).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {ETCD} (apt-get install etcd-server)"))?;
        let mut child = Guard(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
            if let Some(status) = child.0.try_wait()? {
                bail!("etcd exited ({status}):\n{}", log_tail(&log));
            }
            if Instant::now() > deadline {
                bail!("etcd did not listen within 30 s:\n{}", log_tail(&log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Etcd {
            child,
            _dir: dir,
            endpoint: format!("etcd://127.0.0.1:{cp}"),
        })
    }

    /// Resident set size of the etcd process, in KiB.
    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.child.0.id())
    }
}

/// `capstan server --disable-agent` on loopback.
pub struct Server {
    // Field order matters: the process dies before its data dir is removed.
    child: Guard,
    dir: tempfile::TempDir,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Start the server and wait until it has written its certificates (readiness is checked
    /// over HTTPS by the caller, with [`crate::client::Tls::wait_ready`]).
    pub fn start(bin: &Path, datastore: Option<&str>) -> Result<Server> {
        Self::start_with(bin, datastore, &[])
    }

    /// [`Server::start`] with extra flags.
    pub fn start_with(bin: &Path, datastore: Option<&str>, extra: &[&str]) -> Result<Server> {
        let dir = tempfile::Builder::new().prefix("capstan-bench").tempdir()?;
        let port = free_port()?;
        let log = dir.path().join("server.log");
        let data = dir.path().join("data");
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .env("CAPSTAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?);
        if let Some(ep) = datastore {
            cmd.args(["--datastore-endpoint", ep]);
        }
        cmd.args(extra);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut s = Server {
            child: Guard(child),
            dir,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let files = [
            "admin.kubeconfig",
            "tls/ca.crt",
            "tls/client-admin.crt",
            "tls/client-admin.key",
        ];
        while !files.iter().all(|f| data.join(f).exists()) {
            if let Some(status) = s.child.0.try_wait()? {
                bail!("capstan server exited ({status}):\n{}", s.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "capstan server wrote no certificates within 60 s:\n{}",
                    s.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of_pid(self.child.0.id())
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.child.0.id())
    }

    /// Peak resident set size (VmHWM) of the server process, in KiB.
    pub fn hwm_kb(&self) -> Result<u64> {
        hwm_kb(self.child.0.id())
    }

    /// The server's join token file (for `capstan agent`).
    pub fn token_file(&self) -> PathBuf {
        self.data_dir().join("token")
    }
}

/// `capstan agent --simulate N` joined to a [`Server`], its data dir in a temp dir.
pub struct Simulator {
    // Field order matters: the process dies before its data dir is removed.
    child: Guard,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Simulator {
    /// Start `nodes` simulated nodes named `<prefix>-<i>` with extra flags.
    pub fn start(
        bin: &Path,
        server: &Server,
        nodes: usize,
        prefix: &str,
        extra: &[&str],
    ) -> Result<Simulator> {
        let dir = tempfile::Builder::new()
            .prefix("capstan-bench-sim")
            .tempdir()?;
        let log = dir.path().join("simulator.log");
        let child = Command::new(bin)
            .arg("agent")
            .args(["--server", &format!("https://127.0.0.1:{}", server.port)])
            .arg("--token-file")
            .arg(server.token_file())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--simulate", &nodes.to_string()])
            .args(["--node-name-prefix", prefix])
            .args(extra)
            .env("CAPSTAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} agent --simulate", bin.display()))?;
        Ok(Simulator {
            child: Guard(child),
            _dir: dir,
            log,
        })
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Its exit status, when it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.0.try_wait().ok().flatten()
    }

    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.child.0.id())
    }

    pub fn hwm_kb(&self) -> Result<u64> {
        hwm_kb(self.child.0.id())
    }

    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of_pid(self.child.0.id())
    }
}

/// `capstan controller-manager` against a [`Server`] (started `--disable-controllers`).
pub struct ControllerManager {
    child: Guard,
    log: PathBuf,
}

impl ControllerManager {
    pub fn start(bin: &Path, server: &Server) -> Result<ControllerManager> {
        let log = server.dir.path().join("controller-manager.log");
        let child = Command::new(bin)
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(server.data_dir().join("admin.kubeconfig"))
            .env("CAPSTAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} controller-manager", bin.display()))?;
        Ok(ControllerManager {
            child: Guard(child),
            log,
        })
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.0.try_wait().ok().flatten()
    }

    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.child.0.id())
    }

    pub fn hwm_kb(&self) -> Result<u64> {
        hwm_kb(self.child.0.id())
    }

    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of_pid(self.child.0.id())
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    vm_rss_kb(&status).context("no VmRSS in /proc/PID/status")
}

/// VmHWM (peak RSS) of a process, in KiB.
pub fn hwm_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kb(&status, "VmHWM:").context("no VmHWM in /proc/PID/status")
}

/// CPU time (user + system) process `pid` has used so far, in seconds (0 when it is gone).
pub fn cpu_secs_of_pid(pid: u32) -> f64 {
    cpu_secs_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU time the whole machine has spent busy (not idle, not waiting for I/O) so far, in
/// seconds summed over all cores, from the `cpu` line of /proc/stat.
pub fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    machine_busy_of_stat(&stat)
}

fn machine_busy_of_stat(stat: &str) -> f64 {
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: f64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// CPU time (user + system) this process has used so far, in seconds.
pub fn own_cpu_secs() -> f64 {
    cpu_secs_of_stat(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// utime + stime from a `/proc/PID/stat` line, in seconds (100 clock ticks per second).
fn cpu_secs_of_stat(stat: &str) -> f64 {
    // The fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The `VmRSS:` figure of a `/proc/PID/status` text, in KiB.
fn vm_rss_kb(status: &str) -> Option<u64> {
    status_kb(status, "VmRSS:")
}

/// The `<key>` figure (e.g. `VmHWM:`) of a `/proc/PID/status` text, in KiB.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let stat = "4242 (capstan (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 130 0 0 20 0 9";
        assert_eq!(cpu_secs_of_stat(stat), 3.8);
        assert_eq!(cpu_secs_of_stat(""), 0.0);
        let machine = "cpu  100 5 50 900 20 3 2 0 0 0\ncpu0 50 2 25 450 10 1 1 0 0 0\n";
        assert_eq!(machine_busy_of_stat(machine), 1.6);
        assert_eq!(machine_busy_of_stat(""), 0.0);
        let cases = [
            (
                "Name:\tcapstan\nVmPeak:\t  9 kB\nVmRSS:\t   31744 kB\n",
                Some(31744),
            ),
            ("VmRSS: 12 kB", Some(12)),
            ("Name: x\n", None),
            ("VmRSS: lots kB", None),
        ];
        for (text, want) in cases {
            assert_eq!(vm_rss_kb(text), want, "{text:?}");
        }
        let status = "VmPeak:\t 9 kB\nVmHWM:\t   52000 kB\nVmRSS:\t   31744 kB\n";
        assert_eq!(status_kb(status, "VmHWM:"), Some(52000));
        assert_eq!(status_kb(status, "VmSwap:"), None);
    }
}
