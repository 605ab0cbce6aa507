//! The raw CRI path: what the agent does for a pod, issued directly by the bench to the same
//! containerd — RunPodSandbox, CreateContainer, StartContainer — with the configs built by the
//! agent's own pure builders (`capstan_agent::pods::spec`: same images, CNI network, cgroup
//! parent layout, DNS, security context), then StopPodSandbox + RemovePodSandbox.
//!
//! The sandboxes carry no `io.kubernetes.pod.uid` label, so the agent never treats them as
//! its own (its orphan sweep only removes sandboxes with that label).

use anyhow::{Context, Result};
use capstan_agent::cri::Runtime;
use capstan_agent::pods::{cgroups, spec};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The label that marks the bench's own sandboxes and containers.
pub const LABEL: &str = "capstan-bench.io/raw";
const NS: &str = "podbench-raw";

/// One raw pod's timings.
#[derive(Clone, Debug)]
pub struct Started {
    pub name: String,
    pub sandbox: String,
    pub uid: String,
    /// From RunPodSandbox sent to StartContainer answered.
    pub started: Duration,
    /// Until ContainerStatus said CONTAINER_RUNNING.
    pub running: Duration,
    pub at: Instant,
}

/// The Pod the configs are built from: the same container as the Capstan path's pod.
fn pod(name: &str, uid: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": uid},
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "app", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]
            }]
        }
    }))
    .expect("a valid pod")
}

/// Replace the agent's pod labels with the bench's own.
fn relabel(labels: &mut HashMap<String, String>) {
    labels.retain(|k, _| !k.starts_with("io.kubernetes."));
    labels.insert(LABEL.into(), "true".into());
}

/// Sandbox and container configs for raw pod `name` (uid `uid`), logs under `log_root`.
pub fn configs(
    name: &str,
    uid: &str,
    log_root: &Path,
) -> (cri::PodSandboxConfig, cri::ContainerConfig) {
    let p = pod(name, uid);
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = spec::dns_config(&p, &resolv, None, "cluster.local");
    let log_dir = log_root.join(name);
    let mut sb = spec::sandbox_config(&p, 0, &log_dir.to_string_lossy(), dns);
    relabel(&mut sb.labels);
    let c = &p.spec.as_ref().expect("spec").containers[0];
    let mut cc = spec::container_config(
        &p,
        c,
        0,
        spec::Resolved {
            image: capstan_images::normalize_image("busybox:1.36"),
            command: vec!["sleep".into(), "3600".into()],
            args: vec![],
            env: vec![],
            mounts: vec![],
            log_path: "app/0.log".into(),
            termination_file: String::new(),
            node_memory: 0,
        },
    );
    relabel(&mut cc.labels);
    (sb, cc)
}

/// Start raw pod `name`: sandbox, container, start; then ContainerStatus until RUNNING.
pub async fn start(
    mut rt: Runtime,
    handler: &str,
    name: &str,
    uid: &str,
    log_root: &Path,
) -> Result<Started> {
    let (sb_cfg, c_cfg) = configs(name, uid, log_root);
    let _ = std::fs::create_dir_all(log_root.join(name));
    let t0 = Instant::now();
    let sandbox = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sb_cfg.clone()),
            runtime_handler: handler.to_string(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(c_cfg),
            sandbox_config: Some(sb_cfg),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .context("StartContainer")?;
    let started = t0.elapsed();
    loop {
        let st = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .context("ContainerStatus")?
            .into_inner()
            .status
            .map_or(0, |s| s.state);
        if st == cri::ContainerState::ContainerRunning as i32 {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(60),
            "raw container {name} not running after 60 s (state {st})"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let at = Instant::now();
    Ok(Started {
        name: name.to_string(),
        sandbox,
        uid: uid.to_string(),
        started,
        running: at - t0,
        at,
    })
}

/// Stop and remove a raw pod (its container goes with the sandbox), its cgroup and logs.
pub async fn remove(mut rt: Runtime, s: &Started, log_root: &Path) -> Result<Duration> {
    let t0 = Instant::now();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: s.sandbox.clone(),
    })
    .await
    .context("StopPodSandbox")?;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: s.sandbox.clone(),
    })
    .await
    .context("RemovePodSandbox")?;
    let took = t0.elapsed();
    cgroups::remove_pod(&s.uid);
    let _ = std::fs::remove_dir_all(log_root.join(&s.name));
    Ok(took)
}

/// Remove every sandbox the bench made (cleanup after a failure).
pub async fn remove_all(rt: Runtime) {
    let filter = cri::PodSandboxFilter {
        label_selector: HashMap::from([(LABEL.to_string(), "true".to_string())]),
        ..Default::default()
    };
    remove_sandboxes(rt, Some(filter)).await
}

/// Remove every sandbox in CRI (last resort of the cleanup).
pub async fn remove_every_sandbox(rt: Runtime) {
    remove_sandboxes(rt, None).await
}

async fn remove_sandboxes(mut rt: Runtime, filter: Option<cri::PodSandboxFilter>) {
    let Ok(list) = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter })
        .await
    else {
        return;
    };
    for sb in list.into_inner().items {
        let id = sb.id.clone();
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await;
        if let Some(uid) = sb.metadata.map(|m| m.uid) {
            cgroups::remove_pod(&uid);
        }
    }
}

/// Sandboxes in CRI that belong to Capstan pod `uid` (0 once the agent has torn it down).
pub async fn sandboxes_of(rt: &mut Runtime, uid: &str) -> Result<usize> {
    let filter = cri::PodSandboxFilter {
        label_selector: HashMap::from([(spec::LABEL_POD_UID.to_string(), uid.to_string())]),
        ..Default::default()
    };
    Ok(rt
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await?
        .into_inner()
        .items
        .len())
}

/// Every sandbox in CRI.
pub async fn all_sandboxes(rt: &mut Runtime) -> Result<usize> {
    Ok(rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items
        .len())
}

/// A directory for the raw pods' logs.
pub fn log_root(data_dir: &Path) -> PathBuf {
    data_dir.join("bench-raw-logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_configs_match_the_agents_but_not_its_labels() {
        let (sb, c) = configs("raw-3", "u-3", Path::new("/logs"));
        let linux = sb.linux.as_ref().unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/besteffort/podu-3");
        assert_eq!(sb.log_directory, "/logs/raw-3");
        assert_eq!(sb.metadata.as_ref().unwrap().uid, "u-3");
        for labels in [&sb.labels, &c.labels] {
            assert_eq!(labels.get(LABEL).map(String::as_str), Some("true"));
            assert!(!labels.contains_key(spec::LABEL_POD_UID), "{labels:?}");
        }
        assert_eq!(c.command, ["sleep", "3600"]);
        assert_eq!(c.image.unwrap().image, "docker.io/library/busybox:1.36");
        assert_eq!(c.log_path, "app/0.log");
    }
}
