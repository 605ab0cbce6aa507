//! Test harness: start the real `capstan` binary on loopback ports of its own (optionally on
//! a real etcd), and drive it with the real kubectl. Everything started is killed by PID when
//! the guard drops.
#![allow(dead_code)]

pub mod web;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running etcd from Debian's package, on ports of its own.
pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Etcd {
    /// None (with a notice) when etcd is not installed.
    pub fn start() -> Option<Etcd> {
        let bin = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let (cp, pp) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        let child = Command::new(bin)
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
            .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Etcd {
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

/// Which datastore a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// A running `capstan server`.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    pub etcd: Option<Etcd>,
    extra: Vec<String>,
    /// Whether the node agent runs (it starts its own containerd under the data dir).
    agent: bool,
    /// net.ipv4.ip_forward before an agent server started (the agent turns it on), restored on drop.
    ip_forward: Option<String>,
    /// `--bind-address` (127.0.0.1 unless started with [`Server::start_with_agent_bind`]).
    bind: String,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the command succeeded.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Panics unless the command failed; returns stderr.
    pub fn err(self) -> String {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded\nstdout:\n{}",
            self.stdout
        );
        self.stderr
    }
}

/// The cluster CIDR for this test process's agent servers (10.100.0.0/16 … 10.249.0.0/16).
pub fn cluster_cidr() -> String {
    format!("10.{}.0.0/16", 100 + std::process::id() % 150)
}

/// The CNI bridge of this test process's agent servers (removed when the server drops).
pub fn cni_bridge() -> String {
    format!("cst{}", std::process::id() % 100_000)
}

/// Whether this machine can run agent tests (root, containerd, runc, gcc, busybox-static, and
/// `extra` commands); prints a NOTICE naming what is missing otherwise.
pub fn agent_prerequisites(extra: &[&str]) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let mut missing: Vec<&str> = ["containerd", "ctr", "runc", "gcc"]
        .iter()
        .chain(extra)
        .copied()
        .filter(|b| !have(b))
        .collect();
    if !Path::new("/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    if !root {
        missing.push("root");
    }
    if !missing.is_empty() {
        eprintln!("NOTICE: agent tests need {missing:?}; skipped");
    }
    missing.is_empty()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_capstan")
}

impl Server {
    pub fn start() -> Server {
        Self::start_backend(Backend::Embedded, &[])
    }

    /// Start on `backend`; None when it is etcd and etcd is not installed.
    pub fn try_start(backend: Backend) -> Option<Server> {
        if backend == Backend::Etcd && Etcd::start().is_none() {
            eprintln!("NOTICE: /usr/bin/etcd not installed; etcd-backend test skipped");
            return None;
        }
        Some(Self::start_backend(backend, &[]))
    }

    pub fn start_backend(backend: Backend, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let etcd = if backend == Backend::Etcd {
            Some(Etcd::start().expect("etcd installed"))
        } else {
            None
        };
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(e) = &etcd {
            extra.push("--datastore-endpoint".into());
            extra.push(e.endpoint.clone());
        }
        let mut s = Server {
            child: None,
            kubeconfig: dir.path().join("admin.kubeconfig"),
            dir,
            port: free_port(),
            cache: tempfile::tempdir().unwrap(),
            etcd,
            extra,
            agent: false,
            ip_forward: None,
            bind: "127.0.0.1".into(),
        };
        s.spawn();
        s
    }

    /// A server that also runs its node agent (root and containerd needed), named `node`.
    pub fn start_with_agent(node: &str) -> Server {
        // The host's own disk may be nearly full on a test machine: only a memory threshold,
        // so node-pressure eviction does not empty the node under the tests.
        Self::start_with_agent_args(node, &["--eviction-hard", "memory.available<100Mi"])
    }

    /// An agent server with extra flags.
    pub fn start_with_agent_args(node: &str, args: &[&str]) -> Server {
        Self::start_with_agent_bind(node, "127.0.0.1", args)
    }

    /// An agent server listening on `bind` (say 0.0.0.0, for agents in network namespaces;
    /// kubectl still talks to 127.0.0.1) with extra flags.
    pub fn start_with_agent_bind(node: &str, bind: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests").to_string_lossy().into_owned();
        let mut s = Server {
            child: None,
            kubeconfig: dir.path().join("admin.kubeconfig"),
            dir,
            port: free_port(),
            cache: tempfile::tempdir().unwrap(),
            etcd: None,
            // A port of its own: tests run several agents at once.
            extra: vec![
                "--node-name".into(),
                node.into(),
                "--kubelet-port".into(),
                free_port().to_string(),
                // Pod networks of concurrently running test processes share the host's bridge:
                // a cluster CIDR per process keeps their pod IPs apart.
                "--cluster-cidr".into(),
                cluster_cidr(),
                "--cni-bridge".into(),
                cni_bridge(),
                // Static pod manifests: <data dir>/manifests.
                "--pod-manifest-path".into(),
                manifests,
            ]
            .into_iter()
            .chain(args.iter().map(|a| a.to_string()))
            .collect(),
            agent: true,
            ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok(),
            bind: bind.into(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("server");
        if !self.agent {
            cmd.arg("--disable-agent");
        }
        let child = cmd
            .args(["--bind-address", &self.bind])
            .args(["--https-listen-port", &self.port.to_string()])
            .args(["--data-dir", self.dir.path().to_str().unwrap()])
            .args(&self.extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start capstan");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The `--kubelet-port` an agent server was started with.
    pub fn kubelet_port(&self) -> Option<u16> {
        let i = self.extra.iter().position(|a| a == "--kubelet-port")?;
        self.extra.get(i + 1)?.parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.kubeconfig.exists() {
                let out = Command::new("curl")
                    .args([
                        "-sk",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        &format!("https://127.0.0.1:{}/readyz", self.port),
                    ])
                    .output();
                if let Ok(o) = out {
                    if o.stdout == b"200" {
                        return;
                    }
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("capstan exited early ({status}):\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "capstan did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// kill -9 and start again on the same data dir.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// kill -9 and start again on the same data dir with other extra flags.
    pub fn restart_with(&mut self, extra: &[&str]) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The real kubectl (the dispatcher on PATH), with a fresh cache dir.
    /// Wait (bounded) until `total` nodes are Ready.
    pub fn wait_nodes_ready(&self, total: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let jsonpath = r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
            let out = self.kubectl(&["get", "nodes", "-o", jsonpath]);
            if out.stdout.lines().filter(|l| *l == "True").count() == total {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{total} nodes not Ready: {}",
                out.stdout
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_with("/usr/bin/kubectl", args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.kubectl_with("/usr/bin/kubectl", args, Some(stdin))
    }

    pub fn kubectl_with(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(bin);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        Out::from(child.wait_with_output().unwrap())
    }

    /// curl with the admin credential; returns (status, body).
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let tls = self.dir.path().join("tls");
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(tls.join("ca.crt"))
            .arg("--cert")
            .arg(tls.join("client-admin.crt"))
            .arg("--key")
            .arg(tls.join("client-admin.key"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Server {
    /// Build the built-in images (busybox, pause) once per test process and import them into
    /// this server's node.
    pub fn import_builtin_images(&self) {
        // The agent registers its Node once it talks to its containerd.
        eventually(60, || {
            (self
                .kubectl(&["get", "nodes", "-o", "name"])
                .stdout
                .contains("node/"))
            .then_some(())
        });
        import_builtin_images_into(self.dir.path());
    }
}

/// The built-in images (busybox.tar, pause.tar), built once per test process.
pub fn builtin_images() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("capstan-test-images-{}", std::process::id()));
        let out = Command::new(binary())
            .args(["images", "build-builtin", "--out"])
            .arg(&d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    })
}

impl Server {
    /// The node's containerd socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("containerd/containerd.sock")
    }

    /// CRI container IDs the node's containerd still has.
    pub fn node_containers(&self) -> Vec<String> {
        containers_at(&self.containerd_socket())
    }

    /// Delete every pod now and wait (bounded) until the agent has removed their containers.
    /// Workload controllers go first, so none recreates a pod while the server stops.
    pub fn remove_all_pods(&self) {
        let _ = self.kubectl(&[
            "delete",
            "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,replicationcontrollers",
            "--all",
            "-A",
            "--wait=false",
        ]);
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "--all",
            "-A",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !self.node_containers().is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.agent && self.child.is_some() && self.containerd_socket().exists() {
            // Pods first, so no container outlives the test.
            self.remove_all_pods();
        }
        if let Some(c) = self.child.take() {
            stop_child(c, self.agent);
        }
        if self.agent {
            kill_containerd_and_unmount(self.dir.path());
        }
        if self.agent {
            // The pod bridge this test's node made (its veths went with the sandboxes).
            let _ = Command::new("ip")
                .args(["link", "del", &cni_bridge()])
                .output();
        }
        if let Some(v) = &self.ip_forward {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", v.trim());
        }
    }
}

/// `capstan images import -d <data_dir> busybox.tar pause.tar`.
pub fn import_builtin_images_into(data_dir: &Path) {
    let dir = builtin_images();
    let out = Command::new(binary())
        .args(["images", "import", "-d"])
        .arg(data_dir)
        .arg(dir.join("busybox.tar"))
        .arg(dir.join("pause.tar"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CRI container IDs the containerd at `socket` has.
pub fn containers_at(socket: &Path) -> Vec<String> {
    let out = Command::new("ctr")
        .arg("-a")
        .arg(socket)
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .filter(|l| !l.is_empty())
            .collect(),
        _ => vec![],
    }
}

/// Stop a child by its PID: SIGTERM first when it runs an agent (which then stops the
/// containerd it started; bounded wait), then SIGKILL.
fn stop_child(mut c: Child, graceful: bool) -> Option<std::process::ExitStatus> {
    if graceful {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

/// Whatever is left of a node's containerd (by the PID it recorded) and its mounts.
fn kill_containerd_and_unmount(data_dir: &Path) {
    if let Some(pid) = containerd_pid(data_dir) {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    reap_leftover_shims(data_dir);
    let prefix = data_dir.to_string_lossy().to_string();
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
}

/// Containers that outlived the test's pod deletion (a controller recreating a pod while the
/// server stopped, say) keep running under containerd shims after containerd is gone. Kill, by
/// PID, every process under a shim of this data dir's containerd, then the shim, and delete
/// the pod network namespaces they were in (their veths go with them).
fn reap_leftover_shims(data_dir: &Path) {
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;
    let sock = data_dir
        .join("containerd/containerd.sock")
        .to_string_lossy()
        .to_string();
    let mut procs: Vec<(u32, u32, String)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: the comm may hold spaces, so split after its `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        procs.push((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    let shims: Vec<u32> = procs
        .iter()
        .filter(|(_, _, c)| {
            c.contains("containerd-shim") && c.contains(&format!("-address {sock}"))
        })
        .map(|(p, _, _)| *p)
        .collect();
    if shims.is_empty() {
        return;
    }
    let host_ns = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
    let mut victims: Vec<u32> = Vec::new();
    let mut frontier = shims.clone();
    while let Some(p) = frontier.pop() {
        for (c, pp, _) in &procs {
            if *pp == p && !victims.contains(c) {
                victims.push(*c);
                frontier.push(*c);
            }
        }
    }
    let netns: BTreeSet<u64> = victims
        .iter()
        .filter_map(|p| std::fs::metadata(format!("/proc/{p}/ns/net")).ok())
        .map(|m| m.ino())
        .filter(|i| Some(*i) != host_ns)
        .collect();
    for p in victims.iter().chain(&shims) {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    eprintln!(
        "NOTICE: reaped {} container processes under {} leftover shims of {}",
        victims.len(),
        shims.len(),
        data_dir.display()
    );
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if std::fs::metadata(e.path()).is_ok_and(|m| netns.contains(&m.ino())) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &e.file_name().to_string_lossy()])
                .status();
        }
    }
}

/// The PID of the node's containerd while it runs.
pub fn containerd_pid(data_dir: &Path) -> Option<String> {
    let pid = std::fs::read_to_string(data_dir.join("containerd/containerd.pid")).ok()?;
    let pid = pid.trim().to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("containerd")
        .then_some(pid)
}

/// A running `capstan agent` that joined a server: its own data dir, containerd and kubelet
/// port. Dropping it deletes the node's pods, SIGTERMs it, then kills what is left of its
/// containerd and unmounts under its data dir.
pub struct Agent {
    child: Option<Child>,
    /// The network namespace it runs in (`ip netns exec`), if not the host's.
    pub netns: Option<String>,
    pub dir: tempfile::TempDir,
    pub node: String,
    pub kubelet_port: u16,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Agent {
    /// The `capstan agent` command line joining `server` as `node` (token from the server's
    /// data dir unless `token_file` is given).
    pub fn command(
        server: &Server,
        node: &str,
        data_dir: &Path,
        kubelet_port: u16,
        token_file: Option<&Path>,
    ) -> Command {
        Self::command_in(server, None, node, data_dir, kubelet_port, token_file)
    }

    /// [`Agent::command`], run in a network namespace (`ip netns exec NETNS`, joining the
    /// server at `url`) when one is given.
    pub fn command_in(
        server: &Server,
        netns: Option<(&str, &str)>,
        node: &str,
        data_dir: &Path,
        kubelet_port: u16,
        token_file: Option<&Path>,
    ) -> Command {
        let token = token_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| server.dir.path().join("token"));
        let (mut cmd, url) = match netns {
            Some((ns, url)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, binary()]);
                (c, url.to_string())
            }
            None => (Command::new(binary()), server.url()),
        };
        cmd.arg("agent")
            .args(["--server", &url])
            .arg("--token-file")
            .arg(token)
            .args(["--node-name", node])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--kubelet-port", &kubelet_port.to_string()])
            // A bridge of its own (removed on drop), beside the server node's.
            .args(["--cni-bridge", &agent_bridge()]);
        cmd
    }

    /// Start an agent and wait (bounded) until its Node is Ready.
    pub fn start(server: &Server, node: &str) -> Agent {
        Self::start_in(server, None, node)
    }

    /// Start an agent in the network namespace `netns` (made by the caller) that reaches the
    /// server at `url`, and wait (bounded) until its Node is Ready. Its containerd, bridge,
    /// nftables tables and routes are that namespace's.
    pub fn start_in_netns(server: &Server, netns: &str, url: &str, node: &str) -> Agent {
        Self::start_in(server, Some((netns, url)), node)
    }

    fn start_in(server: &Server, netns: Option<(&str, &str)>, node: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let kubelet_port = free_port();
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let child = Self::command_in(server, netns, node, dir.path(), kubelet_port, None)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start capstan agent");
        let mut a = Agent {
            child: Some(child),
            netns: netns.map(|(ns, _)| ns.to_string()),
            dir,
            node: node.to_string(),
            kubelet_port,
            kubeconfig: server.kubeconfig.clone(),
            cache: tempfile::tempdir().unwrap(),
        };
        a.wait_ready();
        a
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Out {
        let out = Command::new("/usr/bin/kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        Out::from(out)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#;
        loop {
            let out = self.kubectl(&["get", "node", &self.node, "-o", jsonpath]);
            if out.code == 0 && out.stdout.trim() == "True" && self.containerd_socket().exists() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("capstan agent exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not become Ready:\n{}",
                self.node,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn import_builtin_images(&self) {
        import_builtin_images_into(self.dir.path());
    }

    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("containerd/containerd.sock")
    }

    pub fn node_containers(&self) -> Vec<String> {
        containers_at(&self.containerd_socket())
    }

    /// Delete this node's pods now and wait (bounded) until its containers are gone.
    pub fn remove_pods(&self) {
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "-A",
            "--field-selector",
            &format!("spec.nodeName={}", self.node),
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !self.node_containers().is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM the agent; its exit status if it stopped within the bound.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.child.take().and_then(|c| stop_child(c, true))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() && self.containerd_socket().exists() {
            self.remove_pods();
        }
        if let Some(c) = self.child.take() {
            stop_child(c, true);
        }
        kill_containerd_and_unmount(self.dir.path());
        let mut ip = Command::new("ip");
        if let Some(ns) = &self.netns {
            ip.args(["-n", ns]);
        }
        let _ = ip.args(["link", "del", &agent_bridge()]).output();
    }
}

/// The CNI bridge of this test process's joined agents.
pub fn agent_bridge() -> String {
    format!("{}b", cni_bridge())
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Retry `f` until it returns Some, for up to `secs`.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `capstan agent --simulate N` joined to a server (its own data dir for the
/// simulator's credential); SIGTERMed by PID on drop. Its nodes stay registered.
pub struct Simulator {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub count: usize,
}

impl Simulator {
    /// Start `count` simulated nodes named `<prefix>-<i>` with extra `--sim-*` flags.
    pub fn start(server: &Server, count: usize, prefix: &str, extra: &[&str]) -> Simulator {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("simulator.log")).unwrap();
        let child = Command::new(binary())
            .arg("agent")
            .args(["--server", &server.url()])
            .arg("--token-file")
            .arg(server.dir.path().join("token"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--simulate", &count.to_string()])
            .args(["--node-name-prefix", prefix])
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start capstan agent --simulate");
        Simulator {
            child: Some(child),
            dir,
            prefix: prefix.to_string(),
            count,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("simulator.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Whether the process has exited (its status), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM it; its exit status if it stopped within the bound.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.child.take().and_then(|c| stop_child(c, true))
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(c, true);
        }
    }
}
