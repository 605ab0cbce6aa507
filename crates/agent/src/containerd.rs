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

/// A containerd an earlier agent started and left running (the agent was SIGKILLed): stopped
/// by its recorded PID, when that process is still a containerd on this data dir's config, so
/// two never share one state dir. Its shims, and so the containers, keep running.
async fn stop_stale(pid_file: &Path, cfg: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let ours = std::fs::read(proc_dir.join("cmdline")).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("containerd") && c.contains(&*cfg.to_string_lossy())
    });
    if !ours {
        return;
    }
    tracing::info!(pid, "stopping the containerd a previous agent left running");
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_dir.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
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
        let dir = data_dir.join("containerd");
        std::fs::create_dir_all(&dir)?;
        for d in [
            data_dir.join("agent").join("cni"),
            data_dir.join("agent").join("certs.d"),
        ] {
            std::fs::create_dir_all(d)?;
        }
        let cfg = dir.join("config.toml");
        stop_stale(&dir.join("containerd.pid"), &cfg).await;
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

#[cfg(test)]
mod tests {
    use super::*;

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
