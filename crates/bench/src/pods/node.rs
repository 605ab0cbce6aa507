//! `capstan server` with its node agent, for the pod benchmark: the built-in images queued for
//! the agent's first start, free ports, a temp data dir; on drop every pod and sandbox goes,
//! then the server (SIGTERM by PID, waited for), whatever is left of its containerd (by its
//! pid file), the mounts under the data dir, and net.ipv4.ip_forward is restored.

use crate::procs::{free_port, log_tail, rss_kb};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The node the benchmark's pods are bound to.
pub const NODE: &str = "bench-node";

/// The server's log filter: `CAPSTAN_BENCH_SERVER_LOG` (e.g. `info`, to profile), else warn.
/// With it set, the log is kept as [`KEPT_LOG`] when the run ends.
fn log_filter() -> String {
    std::env::var("CAPSTAN_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into())
}

/// Where the server log is kept when `CAPSTAN_BENCH_SERVER_LOG` is set.
pub const KEPT_LOG: &str = "/tmp/capstan-bench-pods-server.log";

pub struct NodeServer {
    child: Option<Child>,
    /// With `separate`: the `capstan agent` process running the node (the server runs with
    /// `--disable-agent`).
    agent: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    log: PathBuf,
    ip_forward: Option<String>,
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl NodeServer {
    /// Build the built-in images, queue them for the agent, start the server with its agent.
    /// Readiness (API and Node) is awaited by the caller.
    pub fn start(bin: &Path, runtime: &str) -> Result<NodeServer> {
        Self::start_mode(bin, runtime, false, true, &[])
    }

    /// The same node run by a separate `capstan agent` process joined with the server's token.
    pub fn start_separate(bin: &Path, runtime: &str) -> Result<NodeServer> {
        Self::start_mode(bin, runtime, true, true, &[])
    }

    /// [`NodeServer::start`] with extra `capstan server` flags.
    pub fn start_with_args(bin: &Path, runtime: &str, extra: &[&str]) -> Result<NodeServer> {
        Self::start_mode(bin, runtime, false, true, extra)
    }

    /// The server with its agent, no image queued (no pod will run), with extra flags.
    pub fn start_bare(bin: &Path, extra: &[&str]) -> Result<NodeServer> {
        Self::start_mode(bin, "", false, false, extra)
    }

    fn start_mode(
        bin: &Path,
        runtime: &str,
        separate: bool,
        with_images: bool,
        extra: &[&str],
    ) -> Result<NodeServer> {
        let dir = tempfile::Builder::new()
            .prefix("capstan-bench-pods")
            .tempdir()?;
        let data = dir.path().join("data");
        let images = dir.path().join("images");
        // containerd is not running yet: the tarballs are queued and the agent imports them
        // before it registers the node.
        let node_data = if separate {
            dir.path().join("agent")
        } else {
            data.clone()
        };
        if with_images {
            run(
                Command::new(bin)
                    .args(["images", "build-builtin", "--out"])
                    .arg(&images),
                "capstan images build-builtin",
            )?;
            run(
                Command::new(bin)
                    .args(["images", "import", "-d"])
                    .arg(&node_data)
                    .arg(images.join("busybox.tar"))
                    .arg(images.join("pause.tar")),
                "capstan images import",
            )?;
        }
        let port = free_port()?;
        let log = dir.path().join("server.log");
        let ip_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok();
        let kubelet_port = free_port()?.to_string();
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            .args(["--node-name", NODE])
            .args(["--kubelet-port", &kubelet_port])
            .args(["--default-runtime", runtime]);
        if separate {
            cmd.arg("--disable-agent");
        }
        cmd.args(extra);
        let child = cmd
            .arg("--data-dir")
            .arg(&data)
            .env("CAPSTAN_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut s = NodeServer {
            child: Some(child),
            agent: None,
            dir,
            port,
            log,
            ip_forward,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let files = ["tls/ca.crt", "tls/client-admin.crt", "tls/client-admin.key"];
        while !files.iter().all(|f| data.join(f).exists()) {
            if let Some(status) = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("capstan server exited ({status}):\n{}", s.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "capstan server wrote no certificates in 60 s:\n{}",
                    s.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if separate {
            while !data.join("token").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let agent = Command::new(bin)
                .args(["agent", "--server", &format!("https://127.0.0.1:{port}")])
                .arg("--token-file")
                .arg(data.join("token"))
                .arg("--data-dir")
                .arg(&node_data)
                .args(["--node-name", NODE])
                .args(["--kubelet-port", &kubelet_port])
                .args(["--default-runtime", runtime])
                .env("CAPSTAN_LOG", log_filter())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(dir_log(&s.log))?)
                .spawn()
                .context("starting capstan agent")?;
            s.agent = Some(agent);
        }
        Ok(s)
    }

    /// The data dir of the node (the agent's own with `separate`).
    fn node_dir(&self) -> PathBuf {
        if self.agent.is_some() {
            self.dir.path().join("agent")
        } else {
            self.data_dir()
        }
    }

    /// VmRSS of the separate agent process, in KiB.
    pub fn agent_rss_kb(&self) -> Option<u64> {
        rss_kb(self.agent.as_ref()?.id()).ok()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The node's containerd socket (the one the agent's CRI client uses).
    pub fn containerd_socket(&self) -> PathBuf {
        self.node_dir().join("containerd").join("containerd.sock")
    }

    fn containerd_pid(&self) -> Option<u32> {
        let p = self.node_dir().join("containerd").join("containerd.pid");
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// VmRSS of the server process (API server + agent), in KiB.
    pub fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.pid())
    }

    /// VmRSS of the node's containerd, in KiB.
    pub fn containerd_rss_kb(&self) -> Option<u64> {
        rss_kb(self.containerd_pid()?).ok()
    }

    /// VmRSS of every containerd shim started for this node's containerd (their parent is
    /// init or containerd; they are found by the socket path on their command line), in KiB.
    pub fn shims_rss_kb(&self) -> u64 {
        let want = self.containerd_socket().to_string_lossy().into_owned();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return 0;
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.starts_with("/usr/bin/containerd-shim") && cmd.contains(want.as_str())
            })
            .filter_map(|pid| rss_kb(pid).ok())
            .sum()
    }

    /// CPU seconds the server process used so far.
    pub fn cpu_secs(&self) -> f64 {
        crate::procs::cpu_secs_of_pid(self.pid())
    }

    /// CPU seconds the node's containerd used so far.
    pub fn containerd_cpu_secs(&self) -> f64 {
        self.containerd_pid()
            .map_or(0.0, crate::procs::cpu_secs_of_pid)
    }
}

/// The agent's log beside the server's.
fn dir_log(server_log: &Path) -> PathBuf {
    server_log.with_file_name("agent.log")
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        for mut c in self.agent.take().into_iter().chain(self.child.take()) {
            // SIGTERM: the agent stops the containerd it started; wait for that.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.containerd_pid() {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let prefix = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
        if std::env::var_os("CAPSTAN_BENCH_SERVER_LOG").is_some() {
            let _ = std::fs::copy(&self.log, KEPT_LOG);
        }
        if let Some(v) = &self.ip_forward {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", v.trim());
        }
    }
}
