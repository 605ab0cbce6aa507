//! Starting one container: the image (pull policy, credentials, ErrImagePull /
//! ImagePullBackOff), the runAsNonRoot check, env and mounts, CreateContainer and
//! StartContainer with the kubelet's events and waiting reasons, then the postStart hook.

use super::worker::Worker;
use super::{env, image, spec};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use std::time::Duration;
use tokio::time::Instant;

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        attempt: u32,
        sb_cfg: &cri::PodSandboxConfig,
        sb_id: &str,
        ip: &str,
    ) {
        let on = Self::involved(pod, Some(&c.name), init);
        let raw_image = c.image.clone().unwrap_or_default();
        let image_ref = capstan_images::normalize_image(&raw_image);
        // Image.
        let mut images = self.ctx.images.clone();
        let present = images
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image_ref.clone(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().image);
        let policy = image::pull_policy(&raw_image, c.image_pull_policy.as_deref()).to_string();
        let mut user = present
            .as_ref()
            .map(|i| (i.uid.as_ref().map(|u| u.value), i.username.clone()));
        if present.is_some() && policy != "Always" {
            self.ctx.events.emit(
                &on,
                false,
                "Pulled",
                &format!("Container image \"{raw_image}\" already present on machine"),
            );
        } else if policy == "Never" {
            let msg =
                format!("Container image \"{raw_image}\" is not present with pull policy of Never");
            self.ctx.events.emit(&on, true, "ErrImageNeverPull", &msg);
            self.waiting
                .insert(c.name.clone(), ("ErrImageNeverPull".into(), msg));
            return;
        } else {
            if let Some((until, _)) = self.pull_backoff.get(&c.name) {
                if Instant::now() < *until {
                    let msg = format!("Back-off pulling image \"{raw_image}\"");
                    if self.waiting.get(&c.name).map(|w| w.0.as_str()) != Some("ImagePullBackOff") {
                        self.ctx.events.emit(&on, false, "BackOff", &msg);
                    }
                    self.waiting
                        .insert(c.name.clone(), ("ImagePullBackOff".into(), msg));
                    return;
                }
            }
            self.ctx.events.emit(
                &on,
                false,
                "Pulling",
                &format!("Pulling image \"{raw_image}\""),
            );
            if let Some(file) = &self.ctx.registries {
                let certs = self.ctx.data_dir.join("agent").join("certs.d");
                if let Err(e) = crate::registries::apply(file, &certs) {
                    tracing::warn!(error = %e, "registries configuration");
                }
            }
            let secrets: Vec<Secret> = self.lookups.secrets.values().flatten().cloned().collect();
            let started = Instant::now();
            let req = cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image_ref.clone(),
                    ..Default::default()
                }),
                auth: image::auth_for(&image_ref, &secrets),
                sandbox_config: Some(sb_cfg.clone()),
            };
            match images.pull_image(req).await {
                Ok(_) => {
                    self.pull_backoff.remove(&c.name);
                    self.ctx.events.emit(
                        &on,
                        false,
                        "Pulled",
                        &format!(
                            "Successfully pulled image \"{raw_image}\" in {:.3}s",
                            started.elapsed().as_secs_f64()
                        ),
                    );
                    user = images
                        .image_status(cri::ImageStatusRequest {
                            image: Some(cri::ImageSpec {
                                image: image_ref.clone(),
                                ..Default::default()
                            }),
                            verbose: false,
                        })
                        .await
                        .ok()
                        .and_then(|r| r.into_inner().image)
                        .map(|i| (i.uid.map(|u| u.value), i.username));
                }
                Err(e) if present.is_some() && unreachable(e.message()) => {
                    // Air-gapped nodes: policy Always (`:latest`) cannot reach the registry,
                    // but the node has the image (imported): run it, and say so.
                    let msg = format!("Failed to pull image \"{raw_image}\": {}", e.message());
                    self.ctx.events.emit(&on, true, "Failed", &msg);
                    self.ctx.events.emit(
                        &on,
                        false,
                        "Pulled",
                        &format!("Container image \"{raw_image}\" already present on machine; the registry is unreachable, using it"),
                    );
                }
                Err(e) => {
                    let count = self.pull_backoff.get(&c.name).map_or(0, |b| b.1) + 1;
                    let delay = crate::podstatus::backoff(count - 1);
                    self.pull_backoff
                        .insert(c.name.clone(), (Instant::now() + delay, count));
                    let msg = format!("Failed to pull image \"{raw_image}\": {}", e.message());
                    self.ctx.events.emit(&on, true, "Failed", &msg);
                    self.ctx
                        .events
                        .emit(&on, true, "Failed", "Error: ErrImagePull");
                    self.waiting
                        .insert(c.name.clone(), ("ErrImagePull".into(), msg));
                    return;
                }
            }
        }
        // runAsNonRoot.
        if spec::run_as_non_root(pod, c) {
            let uid = spec::run_as_user(pod, c).or_else(|| user.as_ref().and_then(|u| u.0));
            let named = user.as_ref().map(|u| u.1.clone()).unwrap_or_default();
            let root = match uid {
                Some(0) => true,
                Some(_) => false,
                None => named.is_empty() || named == "root",
            };
            if root || (uid.is_none() && !named.is_empty()) {
                let msg = if root {
                    format!("container has runAsNonRoot and image will run as root (pod: \"{}\", container: {})", pod_id(pod), c.name)
                } else {
                    format!("container has runAsNonRoot and image has non-numeric user ({named}), cannot verify user is non-root (pod: \"{}\", container: {})", pod_id(pod), c.name)
                };
                self.fail(pod, c, init, "CreateContainerConfigError", &msg);
                return;
            }
        }
        // Env: fresh secrets and config maps for every start.
        self.lookups = self.fetch_lookups_pub(pod).await;
        let service_env = self.service_env(pod).await;
        let rt_facts = env::Runtime {
            pod_ip: ip,
            host_ip: &self.ctx.host_ip,
            node_cpu_milli: self.ctx.node_cpu_milli,
            node_memory: self.ctx.node_memory,
        };
        let envs = match env::container_env(pod, c, &self.lookups, &service_env, &rt_facts) {
            Ok(e) => e,
            Err(msg) => {
                self.fail(pod, c, init, "CreateContainerConfigError", &msg);
                return;
            }
        };
        let (command, args) = env::expand_command(c, &envs);
        // Mounts.
        let mut mounts = Vec::new();
        let vols = self
            .volumes
            .as_ref()
            .map(|v| v.0.clone())
            .unwrap_or_default();
        for vm in c.volume_mounts.iter().flatten() {
            let Some(host) = vols.get(&vm.name) else {
                self.fail(
                    pod,
                    c,
                    init,
                    "CreateContainerConfigError",
                    &format!(
                        "cannot find volume \"{}\" to mount into container \"{}\"",
                        vm.name, c.name
                    ),
                );
                return;
            };
            let mut host = host.clone();
            if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.split('/').any(|p| p == "..") {
                    self.fail(
                        pod,
                        c,
                        init,
                        "CreateContainerConfigError",
                        &format!("subPath {sub:?} must not contain '..'"),
                    );
                    return;
                }
                host = host.join(sub);
                if !host.exists() {
                    let _ = std::fs::create_dir_all(&host);
                }
            }
            let propagation = match vm.mount_propagation.as_deref() {
                Some("HostToContainer") => cri::MountPropagation::PropagationHostToContainer,
                Some("Bidirectional") => cri::MountPropagation::PropagationBidirectional,
                _ => cri::MountPropagation::PropagationPrivate,
            };
            mounts.push(cri::Mount {
                container_path: vm.mount_path.clone(),
                host_path: host.to_string_lossy().into_owned(),
                readonly: vm.read_only.unwrap_or(false),
                propagation: propagation as i32,
                ..Default::default()
            });
        }
        let host_net = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if !host_net && !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            mounts.push(cri::Mount {
                container_path: "/etc/hosts".into(),
                host_path: self
                    .pod_dir()
                    .join("etc-hosts")
                    .to_string_lossy()
                    .into_owned(),
                ..Default::default()
            });
        }
        let term_dir = self.pod_dir().join("containers").join(&c.name);
        let _ = std::fs::create_dir_all(&term_dir);
        let term_file = term_dir.join(format!("{attempt}"));
        let _ = std::fs::write(&term_file, b"");
        let term_path = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into());
        mounts.push(cri::Mount {
            container_path: term_path,
            host_path: term_file.to_string_lossy().into_owned(),
            ..Default::default()
        });
        let log_path = format!("{}/{attempt}.log", c.name);
        let mut cfg = spec::container_config(
            pod,
            c,
            attempt,
            spec::Resolved {
                image: image_ref.clone(),
                command,
                args,
                env: envs,
                mounts,
                log_path,
                termination_file: term_file.to_string_lossy().into_owned(),
                node_memory: self.ctx.node_memory,
            },
        );
        if c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") {
            cfg.annotations.insert(
                "capstan.io/termination-message-policy".into(),
                "FallbackToLogsOnError".into(),
            );
        }
        // Keep one previous run per container name (for `logs --previous`), remove older ones
        // (there are none before attempt 2: no CRI round trip on a pod's first start).
        let mut rt = self.ctx.rt.clone();
        let old = if attempt >= 2 {
            self.containers().await.remove(&c.name).unwrap_or_default()
        } else {
            Vec::new()
        };
        for s in old.iter().filter(|s| s.run.attempt + 1 < attempt) {
            let _ = rt
                .remove_container(cri::RemoveContainerRequest {
                    container_id: s.run.id.clone(),
                })
                .await;
            self.exited.remove(&s.run.id);
        }
        let id = match rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sb_id.to_string(),
                config: Some(cfg),
                sandbox_config: Some(sb_cfg.clone()),
            })
            .await
        {
            Ok(r) => r.into_inner().container_id,
            Err(e) => {
                self.fail(pod, c, init, "CreateContainerError", e.message());
                return;
            }
        };
        self.ctx.events.emit(
            &on,
            false,
            "Created",
            &format!("Created container {}", c.name),
        );
        if let Err(e) = rt
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            self.fail(pod, c, init, "RunContainerError", e.message());
            return;
        }
        self.waiting.remove(&c.name);
        self.ctx.events.emit(
            &on,
            false,
            "Started",
            &format!("Started container {}", c.name),
        );
        if let Some(h) = c
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
            .and_then(super::probe::hook_handler)
        {
            if let Err(e) = super::probe::run(&mut rt, &id, c, ip, h, Duration::from_secs(30)).await
            {
                self.ctx.events.emit(
                    &on,
                    true,
                    "FailedPostStartHook",
                    &format!("PostStartHook failed: {e}"),
                );
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                self.stop_container(
                    Some(pod),
                    Some((c, init)),
                    id,
                    grace,
                    &format!("FailedPostStartHook: {e}"),
                )
                .await;
            }
        }
    }

    pub(super) async fn fetch_lookups_pub(&self, pod: &Pod) -> env::Lookups {
        self.fetch_lookups(pod).await
    }

    /// Service link variables for the pod (enableServiceLinks, default true), plus the
    /// `kubernetes` service's always.
    async fn service_env(&self, pod: &Pod) -> Vec<(String, String)> {
        use k8s_openapi::api::core::v1::Service;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let list = |path: String| async move {
            match self.ctx.api.call("GET", &path, None).await {
                Ok(a) if a.code == 200 => a.body["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| serde_json::from_value::<Service>(v).ok())
                    .collect(),
                _ => Vec::<Service>::new(),
            }
        };
        let mut services: Vec<Service> = Vec::new();
        if links {
            services = list(format!("/api/v1/namespaces/{ns}/services")).await;
        }
        if !links || ns != "default" {
            services.extend(
                list("/api/v1/namespaces/default/services".into())
                    .await
                    .into_iter()
                    .filter(|s| s.metadata.name.as_deref() == Some("kubernetes")),
            );
        }
        env::service_env(&services)
    }
}

/// Whether a pull failed because the registry could not be reached at all (as opposed to
/// refusing: unauthorized, not found).
fn unreachable(msg: &str) -> bool {
    [
        "no such host",
        "connection refused",
        "i/o timeout",
        "network is unreachable",
        "dial tcp",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

fn pod_id(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}
