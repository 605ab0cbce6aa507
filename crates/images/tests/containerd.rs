//! The built-in images, imported into a real containerd (started here on a temp dir with its
//! own socket), run: busybox prints and exits, pause starts and stops on SIGTERM. Runs only as
//! root with containerd, ctr, runc, gcc and busybox-static installed; prints a NOTICE otherwise.
//! Everything started is stopped by PID; leftover mounts under the temp dir are unmounted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("containerd")).unwrap();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = capstan_images::containerd_socket(d).display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !capstan_images::containerd_socket(d).exists() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        Containerd { child, dir }
    }

    fn socket(&self) -> PathBuf {
        capstan_images::containerd_socket(self.dir.path())
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Unmount anything containerd left under the temp dir, deepest first.
        let prefix = self.dir.path().to_string_lossy().to_string();
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
        // runc removes each container's cgroup; the empty per-namespace parents go too (rmdir
        // refuses a cgroup still in use, so a live node's are left alone).
        if let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in ctrls.flatten() {
                let _ = std::fs::remove_dir(c.path().join("k8s.io"));
            }
        }
        let _ = std::fs::remove_dir("/sys/fs/cgroup/k8s.io");
    }
}

#[test]
fn builtin_images_run_in_containerd() {
    let missing: Vec<&str> = ["containerd", "ctr", "runc", "gcc"]
        .into_iter()
        .filter(|b| !have(b))
        .collect();
    if !is_root() || !missing.is_empty() || !Path::new("/bin/busybox").exists() {
        eprintln!("NOTICE: needs root, containerd, ctr, runc, gcc and busybox-static (missing: {missing:?}); skipped");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    capstan_images::builtin::build_builtin(out.path()).unwrap();
    let c = Containerd::start();
    let imported = capstan_images::import_dir(&c.socket(), out.path()).unwrap();
    assert_eq!(imported.len(), 2);
    let refs: Vec<String> = capstan_images::list(&c.socket())
        .unwrap()
        .into_iter()
        .map(|i| i.reference)
        .collect();
    for want in [
        "registry.k8s.io/pause:3.10",
        "docker.io/library/busybox:latest",
        "docker.io/library/busybox:1.36",
    ] {
        assert!(refs.iter().any(|r| r == want), "{want} not in {refs:?}");
    }
    let run = c.ctr(&[
        "run",
        "--rm",
        "docker.io/library/busybox:latest",
        "capstan-images-t1",
        "sh",
        "-c",
        "echo hi; id -u; test -L /bin/ls && echo links",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "busybox run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout.lines().collect::<Vec<_>>(), vec!["hi", "0", "links"]);
    // pause runs until SIGTERM and then exits 0.
    let started = c.ctr(&[
        "run",
        "-d",
        "registry.k8s.io/pause:3.10",
        "capstan-images-p1",
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let tasks = String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout).to_string();
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with("capstan-images-p1") && l.contains("RUNNING")),
        "{tasks}"
    );
    c.ctr(&["task", "kill", "capstan-images-p1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout).to_string();
        if tasks
            .lines()
            .any(|l| l.starts_with("capstan-images-p1") && l.contains("STOPPED"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pause did not stop on SIGTERM: {tasks}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.ctr(&["task", "rm", "capstan-images-p1"]);
    c.ctr(&["container", "rm", "capstan-images-p1"]);
}
