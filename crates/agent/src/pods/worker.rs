//! One pod's worker: a level-triggered loop that makes CRI match the pod (volumes, sandbox,
//! init containers in order, app containers, restarts with back-off, probes), reports the
//! status, and on deletion stops everything within the grace period and deletes the pod.

use super::events::Involved;
use super::status::{self, Run};
use super::{env, spec, volumes, Ctx};
use crate::podstatus::RestartPolicy;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A CRI container of this pod with what the worker needs beyond its status.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub run: Run,
    pub created: bool,
    pub hash: String,
    pub sandbox: String,
}

pub(super) struct Worker {
    pub ctx: Arc<Ctx>,
    pub uid: String,
    /// Per container name: the attempt at which back-off counting restarted.
    pub backoff_base: HashMap<String, u32>,
    /// Per container name: a waiting reason the worker decided, until the next start.
    pub waiting: HashMap<String, (String, String)>,
    /// Per container name: no image pull before this instant (ImagePullBackOff).
    pub pull_backoff: HashMap<String, (Instant, u32)>,
    /// Probe states by (container id, kind).
    pub probes: HashMap<(String, &'static str), super::probe::ProbeState>,
    pub exited: HashMap<String, Run>,
    pub volumes: Option<(HashMap<String, PathBuf>, Instant)>,
    pub lookups: env::Lookups,
    pub last_status: Value,
    /// False once a CRI list failed in this pass: the runtime is away, so nothing is decided
    /// from its (empty) answers — no new sandbox, no status, no deletion.
    pub cri_ok: std::sync::atomic::AtomicBool,
    /// The uid of the API object the last status went to (a static pod's mirror can change).
    pub last_target: String,
    pub start_time: Option<String>,
    pub sandbox_ip: HashMap<String, String>,
}

pub(super) enum Flow {
    Again(Duration),
    Done,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A Go-style duration ("10s", "1m20s", "5m0s") as kubelet messages show it.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

impl Worker {
    pub fn new(ctx: Arc<Ctx>, uid: String) -> Worker {
        Worker {
            ctx,
            uid,
            backoff_base: HashMap::new(),
            waiting: HashMap::new(),
            pull_backoff: HashMap::new(),
            probes: HashMap::new(),
            exited: HashMap::new(),
            volumes: None,
            lookups: Default::default(),
            last_status: Value::Null,
            cri_ok: std::sync::atomic::AtomicBool::new(true),
            last_target: String::new(),
            start_time: None,
            sandbox_ip: HashMap::new(),
        }
    }

    pub async fn run(
        mut self,
        mut rx: watch::Receiver<Option<Pod>>,
        poke: Arc<tokio::sync::Notify>,
    ) {
        let mut closed = false;
        loop {
            let pod = rx.borrow_and_update().clone();
            let wait = match pod {
                None => {
                    // Gone from the API: stop and remove everything, retrying while the
                    // runtime is away.
                    for attempt in 0..120u32 {
                        self.kill_all(0, None).await;
                        if self.cleanup().await {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(
                            500 + 100 * attempt.min(20) as u64,
                        ))
                        .await;
                    }
                    return;
                }
                Some(p) => match self.sync(&p).await {
                    Flow::Done => return,
                    Flow::Again(d) => d,
                },
            };
            if closed {
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { closed = true; },
                _ = poke.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    pub fn involved(pod: &Pod, container: Option<&str>, init: bool) -> Involved {
        Involved {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: container
                .map(|c| {
                    format!(
                        "spec.{}{{{c}}}",
                        if init { "initContainers" } else { "containers" }
                    )
                })
                .unwrap_or_default(),
        }
    }

    pub fn pod_dir(&self) -> PathBuf {
        self.ctx.data_dir.join("agent").join("pods").join(&self.uid)
    }

    pub fn log_dir(&self, pod: &Pod) -> PathBuf {
        let m = &pod.metadata;
        self.ctx.data_dir.join("agent").join("logs").join(format!(
            "{}_{}_{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            self.uid
        ))
    }

    fn selector(&self) -> HashMap<String, String> {
        HashMap::from([(spec::LABEL_POD_UID.to_string(), self.uid.clone())])
    }

    /// This pod's sandboxes, newest first.
    pub async fn sandboxes(&self) -> Vec<cri::PodSandbox> {
        let mut rt = self.ctx.rt.clone();
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: self.selector(),
                ..Default::default()
            }),
        };
        let mut v = match rt.list_pod_sandbox(req).await {
            Ok(r) => r.into_inner().items,
            Err(e) => {
                tracing::warn!(error = %e, "ListPodSandbox");
                self.cri_ok
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                vec![]
            }
        };
        v.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        v
    }

    /// This pod's containers by name, newest attempt first.
    pub async fn containers(&mut self) -> HashMap<String, Vec<Seen>> {
        let mut rt = self.ctx.rt.clone();
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                label_selector: self.selector(),
                ..Default::default()
            }),
        };
        let list = match rt.list_containers(req).await {
            Ok(r) => r.into_inner().containers,
            Err(e) => {
                tracing::warn!(error = %e, "ListContainers");
                self.cri_ok
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                vec![]
            }
        };
        let mut out: HashMap<String, Vec<Seen>> = HashMap::new();
        for c in list {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let attempt = c.metadata.as_ref().map_or(0, |m| m.attempt);
            let exited = c.state == cri::ContainerState::ContainerExited as i32;
            let run = match self.exited.get(&c.id) {
                Some(r) => r.clone(),
                None => {
                    let st = rt
                        .container_status(cri::ContainerStatusRequest {
                            container_id: c.id.clone(),
                            verbose: false,
                        })
                        .await
                        .ok()
                        .and_then(|r| r.into_inner().status);
                    let Some(st) = st else { continue };
                    let mut run = Run {
                        id: c.id.clone(),
                        attempt,
                        running: st.state == cri::ContainerState::ContainerRunning as i32,
                        exited: st.state == cri::ContainerState::ContainerExited as i32,
                        started_at: status::ts(st.started_at),
                        finished_at: status::ts(st.finished_at),
                        exit_code: st.exit_code,
                        reason: st.reason.clone(),
                        message: String::new(),
                        image_ref: st.image_ref.clone(),
                    };
                    if run.exited {
                        run.message = termination_message(&c, &st);
                        if run.reason.is_empty() || run.reason == "Unknown" {
                            run.reason =
                                crate::podstatus::terminated_reason(run.exit_code, false).into();
                        }
                        // containerd may learn of an OOM kill just after the exit: cache the
                        // status only once it has settled.
                        let settled = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
                            - st.finished_at
                            > 3_000_000_000;
                        if exited && settled {
                            self.exited.insert(c.id.clone(), run.clone());
                        }
                    }
                    run
                }
            };
            out.entry(name).or_default().push(Seen {
                created: c.state == cri::ContainerState::ContainerCreated as i32,
                hash: c
                    .annotations
                    .get(spec::ANNOTATION_HASH)
                    .cloned()
                    .unwrap_or_default(),
                sandbox: c.pod_sandbox_id.clone(),
                run,
            });
        }
        for v in out.values_mut() {
            v.sort_by_key(|s| std::cmp::Reverse(s.run.attempt));
        }
        out
    }

    /// Stop every running container (preStop hooks, then SIGTERM, SIGKILL after `grace`
    /// seconds), then the sandboxes.
    pub async fn kill_all(&mut self, grace: i64, pod: Option<&Pod>) {
        let conts = self.containers().await;
        let mut stops = Vec::new();
        for (name, runs) in &conts {
            for s in runs.iter().filter(|s| s.run.running || s.created) {
                let container = pod.and_then(|p| find_container(p, name));
                stops.push(self.stop_container(
                    pod,
                    container,
                    s.run.id.clone(),
                    grace,
                    "Stopping container",
                ));
            }
        }
        futures::future::join_all(stops).await;
        let mut rt = self.ctx.rt.clone();
        for sb in self.sandboxes().await {
            let _ = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
        }
    }

    /// Stop one container: its preStop hook (bounded by the grace period), then StopContainer
    /// with what is left of it.
    pub async fn stop_container(
        &self,
        pod: Option<&Pod>,
        c: Option<(&Container, bool)>,
        id: String,
        grace: i64,
        why: &str,
    ) {
        {
            let start = Instant::now();
            let mut rt = self.ctx.rt.clone();
            if let (Some(pod), Some((c, init))) = (pod, c) {
                let msg = if why == "Stopping container" {
                    format!("Stopping container {}", c.name)
                } else {
                    why.to_string()
                };
                self.ctx.events.emit(
                    &Self::involved(pod, Some(&c.name), init),
                    false,
                    "Killing",
                    &msg,
                );
                if let Some(h) = c
                    .lifecycle
                    .as_ref()
                    .and_then(|l| l.pre_stop.as_ref())
                    .and_then(super::probe::hook_handler)
                {
                    let ip = self.sandbox_ip.values().next().cloned().unwrap_or_default();
                    let limit = Duration::from_secs(grace.max(1) as u64);
                    if let Err(e) = super::probe::run(&mut rt, &id, c, &ip, h, limit).await {
                        self.ctx.events.emit(
                            &Self::involved(pod, Some(&c.name), init),
                            true,
                            "FailedPreStopHook",
                            &format!("PreStopHook failed: {e}"),
                        );
                    }
                }
            }
            let left = (grace - start.elapsed().as_secs() as i64).max(0);
            let _ = rt
                .stop_container(cri::StopContainerRequest {
                    container_id: id,
                    timeout: left,
                })
                .await;
        }
    }

    /// Remove sandboxes (with their containers), volumes, logs and cgroups of this pod.
    /// False when the runtime could not be asked (try again later).
    pub async fn cleanup(&mut self) -> bool {
        let mut rt = self.ctx.rt.clone();
        self.cri_ok
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let sandboxes = self.sandboxes().await;
        if !self.cri_ok.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        for sb in sandboxes {
            let _ = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
        }
        let dir = self.pod_dir();
        let _ = tokio::task::spawn_blocking(move || volumes::teardown(&dir)).await;
        let logs = self.ctx.data_dir.join("agent").join("logs");
        if let Ok(rd) = std::fs::read_dir(&logs) {
            for e in rd.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("_{}", self.uid))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        super::cgroups::remove_pod(&self.uid);
        true
    }

    async fn report(&mut self, pod: &Pod, status: Value) {
        let target = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::static_pods::MIRROR_UID))
            .cloned()
            .unwrap_or_else(|| self.uid.clone());
        if target != self.last_target {
            self.last_target = target;
            self.last_status = Value::Null;
        }
        if status == self.last_status {
            return;
        }
        let m = &pod.metadata;
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/status",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        );
        match self
            .ctx
            .api
            .call("PATCH", &path, Some(&json!({"status": status})))
            .await
        {
            Ok(a) if a.code == 200 => self.last_status = status,
            Ok(a) if a.code == 404 => {}
            Ok(a) => tracing::warn!(code = a.code, body = %a.body, "pod status update"),
            Err(e) => tracing::warn!(error = %e, "pod status update"),
        }
    }

    /// One pass of the loop.
    pub async fn sync(&mut self, pod: &Pod) -> Flow {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.finish_deletion(pod).await;
        }
        self.cri_ok
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let spec_ = pod.spec.clone().unwrap_or_default();
        let policy = RestartPolicy::parse(spec_.restart_policy.as_deref());
        let prev_phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if self.start_time.is_none() {
            self.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .or_else(|| Some(now()));
        }
        let mut wake = Duration::from_secs(10);
        let terminal = prev_phase == "Succeeded" || prev_phase == "Failed";
        let mut failure: Option<(String, String)> = None;
        // The kubelet's own admission: only the safe sysctls are allowed.
        if !terminal && self.sandbox_ip.is_empty() {
            if let Some(name) = spec::forbidden_sysctl(pod) {
                let msg = format!("Pod forbidden sysctl: \"{name}\" not allowlisted");
                self.ctx.events.emit(
                    &Self::involved(pod, None, false),
                    true,
                    "SysctlForbidden",
                    &msg,
                );
                failure = Some(("SysctlForbidden".into(), msg));
            }
        }
        if !terminal && failure.is_none() {
            if let Some(ads) = spec_.active_deadline_seconds {
                let started = self
                    .start_time
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                if let Some(t) = started {
                    let age = chrono::Utc::now().signed_duration_since(t).num_seconds();
                    if age >= ads {
                        let msg = "Pod was active on the node longer than the specified deadline";
                        self.ctx.events.emit(
                            &Self::involved(pod, None, false),
                            true,
                            "DeadlineExceeded",
                            msg,
                        );
                        self.kill_all(
                            spec_.termination_grace_period_seconds.unwrap_or(30),
                            Some(pod),
                        )
                        .await;
                        failure = Some(("DeadlineExceeded".into(), msg.into()));
                    } else {
                        wake = wake.min(Duration::from_secs((ads - age) as u64));
                    }
                }
            }
        }
        let mut sandbox: Option<(cri::PodSandboxConfig, String, String)> = None;
        if !terminal && failure.is_none() {
            match self.ensure_ready(pod).await {
                Ok(sb) => sandbox = Some(sb),
                Err(d) => wake = wake.min(d),
            }
        }
        let mut pod_failed = failure.is_some();
        if let Some((cfg, id, ip)) = &sandbox {
            let conts = self.containers().await;
            if !self.cri_ok.load(std::sync::atomic::Ordering::Relaxed) {
                return Flow::Again(Duration::from_secs(1));
            }
            let (d, failed) = self.drive(pod, policy, cfg, id, ip, &conts).await;
            wake = wake.min(d);
            pod_failed |= failed;
        }
        // Status from what CRI shows now.
        let conts = self.containers().await;
        if !self.cri_ok.load(std::sync::atomic::Ordering::Relaxed) {
            return Flow::Again(Duration::from_secs(1));
        }
        let (init_views, app_views, probe_wake) = self
            .views(pod, &conts, sandbox.as_ref().map(|s| s.2.as_str()))
            .await;
        wake = wake.min(probe_wake);
        let mut phase = status::phase(policy, &init_views, &app_views, &prev_phase).to_string();
        if pod_failed {
            phase = "Failed".into();
        }
        let sandbox_ready = sandbox.is_some() && !(phase == "Succeeded" || phase == "Failed");
        let settled = conts
            .values()
            .flatten()
            .all(|s| !s.run.exited || self.exited.contains_key(&s.run.id));
        if (phase == "Succeeded" || phase == "Failed") && !settled {
            // Let late runtime events (an OOM kill) land before the sandbox goes.
            wake = wake.min(Duration::from_secs(1));
        } else if phase == "Succeeded" || phase == "Failed" {
            // A finished pod keeps its containers (for logs) but not its sandbox.
            let mut rt = self.ctx.rt.clone();
            for s in conts.values().flatten().filter(|s| s.run.running) {
                let _ = rt
                    .stop_container(cri::StopContainerRequest {
                        container_id: s.run.id.clone(),
                        timeout: 0,
                    })
                    .await;
            }
            for sb in self.sandboxes().await {
                let _ = rt
                    .stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: sb.id.clone(),
                    })
                    .await;
            }
        }
        let previous_conditions: Vec<Value> = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| {
                c.iter()
                    .map(|c| serde_json::to_value(c).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let previous_conditions = if self.last_status.is_null() {
            previous_conditions
        } else {
            self.last_status["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let stamp = now();
        let init_done = init_views.iter().all(|v| {
            if v.sidecar {
                v.started
            } else {
                matches!(v.current.as_ref(), Some(r) if r.exited && r.exit_code == 0)
            }
        });
        let app_default = if init_done {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let ip = sandbox
            .as_ref()
            .map(|s| s.2.clone())
            .or_else(|| self.last_status["podIP"].as_str().map(String::from))
            .or_else(|| pod.status.as_ref().and_then(|s| s.pod_ip.clone()))
            .unwrap_or_default();
        let mut st = json!({
            "phase": phase,
            "conditions": status::conditions(sandbox_ready, &init_views, &app_views, &phase, &previous_conditions, &stamp),
            "hostIP": self.ctx.host_ip,
            "hostIPs": [{"ip": self.ctx.host_ip}],
            "startTime": self.start_time,
            "qosClass": spec::qos_class(pod),
            "containerStatuses": app_views.iter().map(|v| v.status(app_default)).collect::<Vec<_>>(),
        });
        if !init_views.is_empty() {
            st["initContainerStatuses"] = json!(init_views
                .iter()
                .map(|v| v.status("PodInitializing"))
                .collect::<Vec<_>>());
        }
        if !ip.is_empty() {
            st["podIP"] = json!(ip);
            st["podIPs"] = json!([{"ip": ip}]);
        }
        if let Some((reason, message)) = failure {
            st["reason"] = json!(reason);
            st["message"] = json!(message);
        }
        self.report(pod, st).await;
        Flow::Again(wake.max(Duration::from_millis(200)))
    }

    async fn finish_deletion(&mut self, pod: &Pod) -> Flow {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        self.kill_all(grace, Some(pod)).await;
        if !self.cleanup().await {
            return Flow::Again(Duration::from_secs(1));
        }
        let m = &pod.metadata;
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        );
        let body = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}});
        match self.ctx.api.call("DELETE", &path, Some(&body)).await {
            Ok(a) if a.code == 200 || a.code == 404 || a.code == 409 => Flow::Done,
            Ok(a) => {
                tracing::warn!(code = a.code, body = %a.body, "deleting pod");
                Flow::Again(Duration::from_secs(1))
            }
            Err(e) => {
                tracing::warn!(error = %e, "deleting pod");
                Flow::Again(Duration::from_secs(1))
            }
        }
    }

    /// Volumes and a ready sandbox; Err(retry delay) when the pod cannot start yet.
    async fn ensure_ready(
        &mut self,
        pod: &Pod,
    ) -> Result<(cri::PodSandboxConfig, String, String), Duration> {
        let refresh = self
            .volumes
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() > Duration::from_secs(30));
        if refresh {
            self.lookups = self.fetch_lookups(pod).await;
            let ip = self.sandbox_ip.values().next().cloned().unwrap_or_default();
            let rt = env::Runtime {
                pod_ip: &ip,
                host_ip: &self.ctx.host_ip,
                node_cpu_milli: self.ctx.node_cpu_milli,
                node_memory: self.ctx.node_memory,
            };
            match volumes::prepare(&self.pod_dir(), pod, &self.lookups, &rt) {
                Ok(v) => self.volumes = Some((v, Instant::now())),
                Err(msg) => {
                    self.ctx.events.emit(
                        &Self::involved(pod, None, false),
                        true,
                        "FailedMount",
                        &msg,
                    );
                    self.volumes = None;
                    return Err(Duration::from_secs(2));
                }
            }
        }
        self.ensure_sandbox(pod).await
    }

    pub(super) async fn fetch_lookups(&self, pod: &Pod) -> env::Lookups {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let spec_ = pod.spec.clone().unwrap_or_default();
        let mut secrets: Vec<String> = spec_
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        let mut cms: Vec<String> = Vec::new();
        for c in spec_
            .containers
            .iter()
            .chain(spec_.init_containers.iter().flatten())
        {
            for ef in c.env_from.iter().flatten() {
                secrets.extend(ef.secret_ref.as_ref().map(|r| r.name.clone()));
                cms.extend(ef.config_map_ref.as_ref().map(|r| r.name.clone()));
            }
            for e in c.env.iter().flatten() {
                if let Some(vf) = &e.value_from {
                    secrets.extend(vf.secret_key_ref.as_ref().map(|r| r.name.clone()));
                    cms.extend(vf.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                }
            }
        }
        for v in spec_.volumes.iter().flatten() {
            secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
            cms.extend(v.config_map.as_ref().map(|c| c.name.clone()));
            for s in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                secrets.extend(s.secret.as_ref().map(|r| r.name.clone()));
                cms.extend(s.config_map.as_ref().map(|r| r.name.clone()));
            }
        }
        secrets.sort();
        secrets.dedup();
        cms.sort();
        cms.dedup();
        let mut l = env::Lookups::default();
        for name in secrets {
            let a = self
                .ctx
                .api
                .call(
                    "GET",
                    &format!("/api/v1/namespaces/{ns}/secrets/{name}"),
                    None,
                )
                .await;
            let v = a
                .ok()
                .filter(|a| a.code == 200)
                .and_then(|a| serde_json::from_value(a.body).ok());
            l.secrets.insert(name, v);
        }
        for name in cms {
            let a = self
                .ctx
                .api
                .call(
                    "GET",
                    &format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
                    None,
                )
                .await;
            let v = a
                .ok()
                .filter(|a| a.code == 200)
                .and_then(|a| serde_json::from_value(a.body).ok());
            l.config_maps.insert(name, v);
        }
        l
    }

    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
    ) -> Result<(cri::PodSandboxConfig, String, String), Duration> {
        let sandboxes = self.sandboxes().await;
        if !self.cri_ok.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Duration::from_secs(1));
        }
        let attempt = sandboxes
            .first()
            .and_then(|s| s.metadata.as_ref())
            .map_or(0, |m| m.attempt);
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let dns = spec::dns_config(
            pod,
            &resolv,
            self.ctx.cluster_dns.as_deref(),
            &self.ctx.cluster_domain,
        );
        let log_dir = self.log_dir(pod);
        let _ = std::fs::create_dir_all(&log_dir);
        let mut rt = self.ctx.rt.clone();
        if let Some(sb) = sandboxes
            .first()
            .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
        {
            let cfg = spec::sandbox_config(pod, attempt, &log_dir.to_string_lossy(), dns);
            let ip = self.sandbox_ip_of(&sb.id, pod).await;
            return Ok((cfg, sb.id.clone(), ip));
        }
        let next_attempt = spec::next_sandbox_attempt(&sandboxes);
        if !sandboxes.is_empty() {
            self.ctx.events.emit(
                &Self::involved(pod, None, false),
                false,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            );
            self.kill_all(0, None).await;
            for sb in &sandboxes {
                let _ = rt
                    .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                        pod_sandbox_id: sb.id.clone(),
                    })
                    .await;
            }
        }
        let cfg = spec::sandbox_config(pod, next_attempt, &log_dir.to_string_lossy(), dns);
        // Host-network sandboxes get no CNI call, so containerd never reads the annotations.
        let checked = if spec::host_network(pod) {
            Ok(())
        } else {
            super::bandwidth::check(&cfg.annotations)
        };
        if let Err(why) = checked {
            self.ctx.events.emit(
                &Self::involved(pod, None, false),
                true,
                "FailedCreatePodSandBox",
                &format!("Failed to create pod sandbox: {why}"),
            );
            return Err(Duration::from_secs(10));
        }
        let handler = self.runtime_handler(pod).await;
        match rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: handler,
            })
            .await
        {
            Ok(r) => {
                let id = r.into_inner().pod_sandbox_id;
                let ip = self.sandbox_ip_of(&id, pod).await;
                Ok((cfg, id, ip))
            }
            Err(e) => {
                self.ctx.events.emit(
                    &Self::involved(pod, None, false),
                    true,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {}", e.message()),
                );
                Err(Duration::from_secs(5))
            }
        }
    }

    async fn runtime_handler(&self, pod: &Pod) -> String {
        let Some(rc) = pod.spec.as_ref().and_then(|s| s.runtime_class_name.clone()) else {
            return self.ctx.default_runtime.clone();
        };
        match self
            .ctx
            .api
            .call(
                "GET",
                &format!("/apis/node.k8s.io/v1/runtimeclasses/{rc}"),
                None,
            )
            .await
        {
            Ok(a) if a.code == 200 => a.body["handler"].as_str().unwrap_or("").to_string(),
            _ => self.ctx.default_runtime.clone(),
        }
    }

    async fn sandbox_ip_of(&mut self, id: &str, pod: &Pod) -> String {
        if let Some(ip) = self.sandbox_ip.get(id) {
            return ip.clone();
        }
        let host_net = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let ip = if host_net {
            self.ctx.host_ip.clone()
        } else {
            let mut rt = self.ctx.rt.clone();
            rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default()
        };
        self.sandbox_ip.clear();
        self.sandbox_ip.insert(id.to_string(), ip.clone());
        let hosts = etc_hosts(pod, &ip);
        let _ = std::fs::create_dir_all(self.pod_dir());
        let _ = std::fs::write(self.pod_dir().join("etc-hosts"), hosts);
        ip
    }
}

/// The container of `pod` named `name` and whether it is an init container.
pub fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, bool)> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .find(|c| c.name == name)
        .map(|c| (c, false))
        .or_else(|| {
            spec.init_containers
                .iter()
                .flatten()
                .find(|c| c.name == name)
                .map(|c| (c, true))
        })
}

fn termination_message(c: &cri::Container, st: &cri::ContainerStatus) -> String {
    if let Some(f) = c.annotations.get(spec::ANNOTATION_TERMINATION_FILE) {
        if let Ok(b) = std::fs::read(f) {
            let b = &b[..b.len().min(4096)];
            if !b.is_empty() {
                return String::from_utf8_lossy(b).into_owned();
            }
        }
    }
    if c.annotations
        .get("capstan.io/termination-message-policy")
        .map(String::as_str)
        == Some("FallbackToLogsOnError")
        && st.exit_code != 0
    {
        if let Ok(log) = std::fs::read_to_string(&st.log_path) {
            let text = crate::podstatus::render_cri_log(&log, false, None, Some(80));
            let start = text.len().saturating_sub(2048);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            return text[start..].to_string();
        }
    }
    String::new()
}

/// The pod's /etc/hosts, as the kubelet writes it.
pub fn etc_hosts(pod: &Pod, ip: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let name = spec
        .hostname
        .clone()
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    if !ip.is_empty() {
        match &spec.subdomain {
            Some(sub) if !sub.is_empty() => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                s.push_str(&format!(
                    "{ip}\t{name}.{sub}.{ns}.svc.cluster.local\t{name}\n"
                ));
            }
            _ => s.push_str(&format!("{ip}\t{name}\n")),
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            s.push_str(&format!(
                "{}\t{}\n",
                a.ip,
                a.hostnames.unwrap_or_default().join("\t")
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"containers": [], "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar"]}]}})).unwrap();
        let h = etc_hosts(&pod, "10.42.0.5");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.contains("\n10.42.0.5\tweb\n"));
        assert!(h.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar\n"));
    }

    #[test]
    fn go_durations() {
        for (s, want) in [(10, "10s"), (40, "40s"), (80, "1m20s"), (300, "5m0s")] {
            assert_eq!(go_duration(Duration::from_secs(s)), want);
        }
    }
}
