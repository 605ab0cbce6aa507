//! Supervising containerd: the config this machine needs (cgroupfs, restrict_oom_score_adj,
//! Debian's CNI bin dir, the local sandbox image), started as a child with its state under the
//! data dir, stopped by PID when the agent stops.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The containerd config for a node whose state lives under `data_dir`.
pub fn config(data_dir: &Path) -> String {
    let d = data_dir.join("containerd");
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "crun"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
        root = d.join("root").display(),
        state = d.join("state").display(),
        sock = capstan_images::containerd_socket(data_dir).display(),
        pause = capstan_images::builtin::PAUSE_IMAGE,
        cni = data_dir.join("agent").join("cni").display(),
        certs = data_dir.join("agent").join("certs.d").display(),
    )
}

/// The cgroup mounts that make `/sys/fs/cgroup` show the hierarchies this process is in
/// (`/proc/self/cgroup`), as (fstype, options, directory under /sys/fs/cgroup; "" = itself):
/// a pure cgroup2 host → cgroup2 on /sys/fs/cgroup; otherwise a tmpfs there, each v1
/// hierarchy in the directory named after its controllers (`name=systemd` → `systemd`) and the
/// v2 one in `unified`. Pure.
pub fn cgroup_mounts(proc_self_cgroup: &str) -> Vec<(String, String, String)> {
    let lines: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, ctrl) = (parts.next()?, parts.next()?);
            parts.next()?;
            Some((id, ctrl))
        })
        .collect();
    let v1: Vec<&str> = lines
        .iter()
        .filter(|(id, c)| *id != "0" && !c.is_empty())
        .map(|(_, c)| *c)
        .collect();
    let v2 = lines.iter().any(|(id, c)| *id == "0" && c.is_empty());
    let own = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    if v1.is_empty() {
        return if v2 {
            vec![own("cgroup2", "rw", "")]
        } else {
            vec![]
        };
    }
    let mut out = vec![own("tmpfs", "rw,mode=755", "")];
    for c in v1 {
        let dir = c
            .split(',')
            .map(|p| p.strip_prefix("name=").unwrap_or(p))
            .collect::<Vec<_>>()
            .join(",");
        let opts = if c.split(',').all(|p| p.starts_with("name=")) {
            format!("rw,none,{c}")
        } else {
            format!("rw,{c}")
        };
        out.push(own("cgroup", &opts, &dir));
    }
    if v2 {
        out.push(own("cgroup2", "rw", "unified"));
    }
    out
}

/// Under `ip netns exec` /sys is a fresh sysfs of the network namespace, with nothing on
/// /sys/fs/cgroup (the command's mount namespace is private to it): runc then cannot place
/// containers. Mount the hierarchies this process is in again there (the same hierarchies,
/// only visible in that mount namespace). Nothing is done where /sys/fs/cgroup has entries.
pub fn ensure_cgroups_mounted() {
    let root = Path::new("/sys/fs/cgroup");
    if !root.is_dir() || std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some()) {
        return;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    tracing::info!(
        "/sys/fs/cgroup is empty (under `ip netns exec`?): mounting the cgroup hierarchies again"
    );
    for (fstype, opts, dir) in cgroup_mounts(&text) {
        let target = root.join(&dir);
        if let Err(e) = std::fs::create_dir_all(&target) {
            tracing::warn!(error = %e, dir = %target.display(), "creating a cgroup mount point");
            continue;
        }
        let out = std::process::Command::new("mount")
            .args(["-t", &fstype, "-o", &opts, &fstype])
            .arg(&target)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => tracing::warn!(
                fstype,
                opts,
                dir = %target.display(),
                error = %String::from_utf8_lossy(&o.stderr).trim(),
                "mounting a cgroup hierarchy"
            ),
            Err(e) => tracing::warn!(error = %e, "running mount"),
        }
    }
}

/// crun 1.8 refuses "hybrid" cgroup hosts where hugetlb sits on the cgroup2 mount
/// (HOST-NOTES); mounting hugetlb as a v1 hierarchy beside the others makes it accept them.
/// Only done when the other controllers are v1 mounts and hugetlb has none.
pub fn ensure_hugetlb_v1() {
    let root = Path::new("/sys/fs/cgroup");
    let hugetlb = root.join("hugetlb");
    if hugetlb.exists() || !root.join("memory").join("memory.limit_in_bytes").exists() {
        return;
    }
    if std::fs::create_dir(&hugetlb).is_err() {
        return;
    }
    let ok = std::process::Command::new("mount")
        .args(["-t", "cgroup", "-o", "hugetlb", "cgroup"])
        .arg(&hugetlb)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let _ = std::fs::remove_dir(&hugetlb);
        tracing::warn!(
            "could not mount the hugetlb cgroup; the crun runtime may refuse containers"
        );
    }
}

/// A containerd an earlier agent on this data dir started and left running (the agent was
/// killed): stop it by the PID it recorded, if that PID still runs containerd with this
/// config, so the new one owns the socket. Containers keep running in their shims.
async fn stop_previous(pid_file: &Path, cfg: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !cmdline.starts_with("containerd ") || !cmdline.contains(&*cfg.to_string_lossy()) {
        return;
    }
    tracing::info!(pid, "stopping the containerd a previous agent left running");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    // Gone, or a zombie nobody reaps yet.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    != Some("Z")
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// A containerd this agent started.
pub struct Containerd {
    child: Child,
    pub socket: PathBuf,
}

impl Containerd {
    /// Write the config and start containerd; wait (bounded) for its socket.
    pub async fn start(data_dir: &Path) -> Result<Containerd> {
        ensure_cgroups_mounted();
        if Path::new("/usr/bin/crun").exists() {
            ensure_hugetlb_v1();
        }
        let dir = data_dir.join("containerd");
        std::fs::create_dir_all(&dir)?;
        for d in [
            data_dir.join("agent").join("cni"),
            data_dir.join("agent").join("certs.d"),
        ] {
            std::fs::create_dir_all(d)?;
        }
        let cfg = dir.join("config.toml");
        stop_previous(&dir.join("containerd.pid"), &cfg).await;
        std::fs::write(&cfg, config(data_dir))?;
        let socket = capstan_images::containerd_socket(data_dir);
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("starting containerd (apt-get install containerd runc)")?;
        if let Some(pid) = child.id() {
            std::fs::write(dir.join("containerd.pid"), pid.to_string())?;
        }
        let mut c = Containerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.socket.exists() {
            if let Ok(Some(status)) = c.child.try_wait() {
                bail!(
                    "containerd exited ({status}); see {}",
                    dir.join("containerd.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("containerd did not create {}", c.socket.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(c)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stop containerd (SIGKILL to the PID we started; its shims keep running containers).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Keep a containerd we started running: when it exits, notify (the node reports NotReady),
/// start it again with back-off (1 s doubling to 30 s), notify again. On `stop`, stop it.
pub async fn supervise(
    mut c: Containerd,
    data_dir: PathBuf,
    changed: std::sync::Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            status = c.child.wait() => {
                tracing::warn!(status = ?status.ok(), "containerd exited; restarting it");
                changed.notify_one();
                let mut delay = Duration::from_secs(1);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = &mut stop => return,
                    }
                    match Containerd::start(&data_dir).await {
                        Ok(n) => {
                            tracing::info!(pid = n.pid(), "containerd restarted");
                            c = n;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "restarting containerd");
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                // Give it a moment to load its CNI config, then report.
                tokio::time::sleep(Duration::from_millis(500)).await;
                changed.notify_one();
            }
            _ = &mut stop => {
                c.stop().await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_mirror_proc_self_cgroup() {
        let own = |v: &[(&str, &str, &str)]| -> Mounts {
            v.iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect()
        };
        type Mounts = Vec<(String, String, String)>;
        let cases: &[(&str, Mounts)] = &[
            ("0::/user.slice\n", own(&[("cgroup2", "rw", "")])),
            (
                "10:hugetlb:/\n9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/\n0::/\n",
                own(&[
                    ("tmpfs", "rw,mode=755", ""),
                    ("cgroup", "rw,hugetlb", "hugetlb"),
                    ("cgroup", "rw,none,name=systemd", "systemd"),
                    ("cgroup", "rw,memory", "memory"),
                    ("cgroup", "rw,cpu,cpuacct", "cpu,cpuacct"),
                    ("cgroup2", "rw", "unified"),
                ]),
            ),
            (
                "3:pids:/\n",
                own(&[("tmpfs", "rw,mode=755", ""), ("cgroup", "rw,pids", "pids")]),
            ),
            ("", vec![]),
            ("garbage\n", vec![]),
        ];
        for (text, want) in cases {
            assert_eq!(&cgroup_mounts(text), want, "{text:?}");
        }
    }

    #[test]
    fn config_has_the_settings_this_machine_needs() {
        let c = config(Path::new("/data"));
        for needle in [
            "restrict_oom_score_adj = true",
            "SystemdCgroup = false",
            "bin_dir = \"/usr/lib/cni\"",
            "conf_dir = \"/data/agent/cni\"",
            "sandbox_image = \"registry.k8s.io/pause:3.10\"",
            "address = \"/data/containerd/containerd.sock\"",
            "config_path = \"/data/agent/certs.d\"",
        ] {
            assert!(c.contains(needle), "missing {needle}");
        }
    }
}
