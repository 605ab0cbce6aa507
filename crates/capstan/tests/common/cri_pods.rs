//! Pods started by hand through CRI on a test server's containerd, with the labels the pod
//! sync loop puts on sandboxes and containers (`io.kubernetes.pod.{name,namespace,uid}`,
//! `io.kubernetes.container.name`, metadata attempt = restart count), so the agent's kubelet
//! endpoints find them. Until the sync loop runs pods, the streaming tests use this. Every
//! sandbox started is stopped and removed (with its containers) on drop.

use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct CriPods {
    rt: tokio::runtime::Runtime,
    client: capstan_agent::cri::Runtime,
    log_root: PathBuf,
    sandboxes: Vec<String>,
}

/// A sandbox and the pod it stands for.
#[derive(Clone)]
pub struct Sandbox {
    pub id: String,
    pub config: cri::PodSandboxConfig,
}

fn labels(ns: &str, pod: &str, uid: &str) -> HashMap<String, String> {
    HashMap::from([
        ("io.kubernetes.pod.namespace".to_string(), ns.to_string()),
        ("io.kubernetes.pod.name".to_string(), pod.to_string()),
        ("io.kubernetes.pod.uid".to_string(), uid.to_string()),
    ])
}

impl CriPods {
    pub fn connect(socket: &Path, log_root: &Path) -> CriPods {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(capstan_agent::cri::connect(socket))
            .expect("CRI connect");
        CriPods {
            rt,
            client,
            log_root: log_root.to_path_buf(),
            sandboxes: Vec::new(),
        }
    }

    /// RunPodSandbox for pod `ns/name` with `uid` (its own network namespace, CNI).
    pub fn sandbox(&mut self, ns: &str, name: &str, uid: &str) -> Sandbox {
        let dir = self.log_root.join(format!("{ns}_{name}_{uid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: uid.into(),
                namespace: ns.into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: dir.to_string_lossy().into_owned(),
            labels: labels(ns, name, uid),
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .rt
            .block_on(self.client.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            }))
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        self.sandboxes.push(id.clone());
        Sandbox { id, config }
    }

    /// Create and start busybox container `name` (restart `attempt`) running `command`.
    pub fn container(
        &mut self,
        sb: &Sandbox,
        name: &str,
        attempt: u32,
        command: &[&str],
    ) -> String {
        let meta = sb.config.metadata.clone().unwrap();
        let mut labels = labels(&meta.namespace, &meta.name, &meta.uid);
        labels.insert("io.kubernetes.container.name".into(), name.into());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            image: Some(cri::ImageSpec {
                image: "docker.io/library/busybox:latest".into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            labels,
            log_path: format!("{name}/{attempt}.log"),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .rt
            .block_on(self.client.create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sb.id.clone(),
                config: Some(config),
                sandbox_config: Some(sb.config.clone()),
            }))
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        self.rt
            .block_on(self.client.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            }))
            .expect("StartContainer");
        id
    }

    /// Wait (bounded) until the container has exited.
    pub fn wait_exited(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self
                .rt
                .block_on(self.client.container_status(cri::ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                }))
                .expect("ContainerStatus")
                .into_inner()
                .status
                .unwrap();
            if s.state == cri::ContainerState::ContainerExited as i32 {
                return;
            }
            assert!(Instant::now() < deadline, "container {id} did not exit");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for CriPods {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.sandboxes) {
            let _ = self
                .rt
                .block_on(self.client.stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }));
            let _ = self.rt.block_on(
                self.client
                    .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id }),
            );
        }
    }
}
