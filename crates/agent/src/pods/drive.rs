//! What a worker does to containers in one pass: init containers in order (sidecars kept
//! running), then the app containers; starts, restarts per restart policy with the kubelet's
//! back-off, restarts on a changed spec or a failed liveness probe. Probes are run here too,
//! and the per-container views for the status are built from what CRI shows.

use super::probe::{self, ProbeState};
use super::status::View;
use super::worker::{go_duration, Seen, Worker};
use crate::podstatus::{backoff, RestartPolicy};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Seconds since an RFC 3339 timestamp (0 when absent).
fn since(ts: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .and_then(|t| chrono::Utc::now().signed_duration_since(t).to_std().ok())
        .unwrap_or_default()
}

fn pod_ref(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}

impl Worker {
    /// Returns when to look again and whether the pod has failed (an init container failed
    /// under restartPolicy Never).
    pub(super) async fn drive(
        &mut self,
        pod: &Pod,
        policy: RestartPolicy,
        sb_cfg: &cri::PodSandboxConfig,
        sb_id: &str,
        ip: &str,
        conts: &HashMap<String, Vec<Seen>>,
    ) -> (Duration, bool) {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut wake = Duration::from_secs(10);
        let latest = |name: &str| {
            conts
                .get(name)
                .and_then(|v| v.first())
                .filter(|s| s.sandbox == sb_id)
        };
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            match latest(&c.name) {
                None => {
                    self.start(pod, c, true, 0, sb_cfg, sb_id, ip).await;
                    return (Duration::from_millis(200), false);
                }
                Some(s) if s.created => {
                    self.start_created(pod, c, true, &s.run.id).await;
                    return (Duration::from_millis(200), false);
                }
                Some(s) if s.run.running => {
                    if sidecar && self.started(&s.run.id, c) {
                        continue;
                    }
                    return (Duration::from_millis(500), false);
                }
                Some(s) if s.run.exit_code == 0 && !sidecar => continue,
                Some(s) => {
                    if !sidecar && policy == RestartPolicy::Never {
                        return (wake, true);
                    }
                    let s = s.clone();
                    if let Some(d) = self.restart(pod, c, true, &s, sb_cfg, sb_id, ip).await {
                        wake = wake.min(d);
                    }
                    if !sidecar {
                        return (wake.min(Duration::from_millis(500)), false);
                    }
                }
            }
        }
        for c in &spec.containers {
            match latest(&c.name) {
                None => {
                    self.start(pod, c, false, 0, sb_cfg, sb_id, ip).await;
                    wake = wake.min(Duration::from_millis(200));
                }
                Some(s) if s.created => self.start_created(pod, c, false, &s.run.id).await,
                Some(s) if s.run.running => {
                    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
                    if s.hash != super::spec::container_hash(c) {
                        let why =
                            format!("Container {} definition changed, will be restarted", c.name);
                        self.stop_container(
                            Some(pod),
                            Some((c, false)),
                            s.run.id.clone(),
                            grace,
                            &why,
                        )
                        .await;
                        wake = Duration::from_millis(200);
                    } else if self
                        .probes
                        .get(&(s.run.id.clone(), "liveness"))
                        .and_then(|p| p.ok)
                        == Some(false)
                    {
                        let why = format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        );
                        self.probes.retain(|(id, _), _| id != &s.run.id);
                        self.stop_container(
                            Some(pod),
                            Some((c, false)),
                            s.run.id.clone(),
                            grace,
                            &why,
                        )
                        .await;
                        wake = Duration::from_millis(200);
                    }
                }
                Some(s) => {
                    if policy.restarts(s.run.exit_code) {
                        let s = s.clone();
                        if let Some(d) = self.restart(pod, c, false, &s, sb_cfg, sb_id, ip).await {
                            wake = wake.min(d);
                        }
                    }
                }
            }
        }
        (wake, false)
    }

    fn started(&self, id: &str, c: &Container) -> bool {
        c.startup_probe.is_none()
            || self
                .probes
                .get(&(id.to_string(), "startup"))
                .and_then(|p| p.ok)
                == Some(true)
    }

    /// Restart an exited container unless it is in back-off; returns when to look again.
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        s: &Seen,
        sb_cfg: &cri::PodSandboxConfig,
        sb_id: &str,
        ip: &str,
    ) -> Option<Duration> {
        let ran = since(&s.run.started_at).saturating_sub(since(&s.run.finished_at));
        if !s.run.started_at.is_empty() && ran >= Duration::from_secs(600) {
            self.backoff_base.insert(c.name.clone(), s.run.attempt);
        }
        let base = self
            .backoff_base
            .get(&c.name)
            .copied()
            .unwrap_or(0)
            .min(s.run.attempt);
        let n = s.run.attempt - base;
        let delay = if n == 0 {
            Duration::ZERO
        } else {
            backoff(n - 1)
        };
        let elapsed = since(&s.run.finished_at);
        if elapsed < delay {
            let msg = format!(
                "back-off {} restarting failed container={} pod={}",
                go_duration(delay),
                c.name,
                pod_ref(pod)
            );
            if self.waiting.get(&c.name).map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                self.ctx.events.emit(
                    &Self::involved(pod, Some(&c.name), init),
                    true,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        pod_ref(pod)
                    ),
                );
            }
            self.waiting
                .insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
            return Some(delay - elapsed);
        }
        self.start(pod, c, init, s.run.attempt + 1, sb_cfg, sb_id, ip)
            .await;
        Some(Duration::from_millis(200))
    }

    async fn start_created(&mut self, pod: &Pod, c: &Container, init: bool, id: &str) {
        let mut rt = self.ctx.rt.clone();
        if let Err(e) = rt
            .start_container(cri::StartContainerRequest {
                container_id: id.to_string(),
            })
            .await
        {
            self.fail(pod, c, init, "RunContainerError", e.message());
        }
    }

    pub(super) fn fail(&mut self, pod: &Pod, c: &Container, init: bool, reason: &str, msg: &str) {
        self.ctx.events.emit(
            &Self::involved(pod, Some(&c.name), init),
            true,
            "Failed",
            &format!("Error: {msg}"),
        );
        self.waiting
            .insert(c.name.clone(), (reason.to_string(), msg.to_string()));
    }

    /// Run the probes that are due; build the views of every container. Returns when the
    /// next probe is due.
    pub(super) async fn views(
        &mut self,
        pod: &Pod,
        conts: &HashMap<String, Vec<Seen>>,
        ip: Option<&str>,
    ) -> (Vec<View>, Vec<View>, Duration) {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut wake = Duration::from_secs(10);
        let views = |list: &[Container], init: bool| -> Vec<(Container, View)> {
            list.iter()
                .map(|c| {
                    let runs = conts.get(&c.name);
                    let image =
                        capstan_images::normalize_image(c.image.as_deref().unwrap_or_default());
                    let current = runs.and_then(|r| r.first()).map(|s| s.run.clone());
                    let previous = runs.and_then(|r| r.get(1)).map(|s| s.run.clone());
                    let _ = init;
                    (
                        c.clone(),
                        View {
                            name: c.name.clone(),
                            image,
                            current,
                            previous,
                            sidecar: init && c.restart_policy.as_deref() == Some("Always"),
                            ..Default::default()
                        },
                    )
                })
                .collect()
        };
        let mut init_v = views(spec.init_containers.as_deref().unwrap_or_default(), true);
        let mut app_v = views(&spec.containers, false);
        let now = Instant::now();
        let ip = ip.unwrap_or_default().to_string();
        for (c, v) in init_v.iter_mut().chain(app_v.iter_mut()) {
            let Some(cur) = v.current.clone() else {
                v.waiting = self.waiting.get(&c.name).cloned();
                continue;
            };
            // A decided waiting reason holds while the container is not running.
            if cur.running {
                self.waiting.remove(&c.name);
            } else {
                v.waiting = self.waiting.get(&c.name).cloned();
            }
            if !cur.running {
                continue;
            }
            let init = !app_contains(&spec.containers, &c.name);
            let is_regular_init = init && !v.sidecar;
            let mut started = true;
            if let Some(p) = c.startup_probe.as_ref().filter(|_| !is_regular_init) {
                started = self
                    .probe(pod, c, init, &cur.id, "startup", p, &ip, now, &mut wake)
                    .await
                    != Some(false)
                    && self
                        .probes
                        .get(&(cur.id.clone(), "startup"))
                        .and_then(|s| s.ok)
                        == Some(true);
                if self
                    .probes
                    .get(&(cur.id.clone(), "startup"))
                    .and_then(|s| s.ok)
                    == Some(false)
                {
                    // A failed startup probe kills the container like a liveness failure.
                    self.probes.insert(
                        (cur.id.clone(), "liveness"),
                        ProbeState {
                            next: now,
                            successes: 0,
                            failures: 0,
                            ok: Some(false),
                        },
                    );
                }
            }
            v.started = started;
            if !started || is_regular_init {
                v.ready = false;
                continue;
            }
            if let Some(p) = &c.liveness_probe {
                self.probe(pod, c, init, &cur.id, "liveness", p, &ip, now, &mut wake)
                    .await;
            }
            v.ready = match &c.readiness_probe {
                Some(p) => {
                    self.probe(pod, c, init, &cur.id, "readiness", p, &ip, now, &mut wake)
                        .await
                        == Some(true)
                }
                None => true,
            };
        }
        // Forget probe state of containers that are gone.
        let live: std::collections::HashSet<String> = conts
            .values()
            .flatten()
            .filter(|s| s.run.running)
            .map(|s| s.run.id.clone())
            .collect();
        self.probes.retain(|(id, _), _| live.contains(id));
        (
            init_v.into_iter().map(|x| x.1).collect(),
            app_v.into_iter().map(|x| x.1).collect(),
            wake,
        )
    }

    /// Run one probe if due; returns its verdict.
    #[allow(clippy::too_many_arguments)]
    async fn probe(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        id: &str,
        kind: &'static str,
        p: &k8s_openapi::api::core::v1::Probe,
        ip: &str,
        now: Instant,
        wake: &mut Duration,
    ) -> Option<bool> {
        let key = (id.to_string(), kind);
        let mut st = self
            .probes
            .remove(&key)
            .unwrap_or_else(|| ProbeState::new(now, p));
        if st.next <= now {
            if let Some(h) = probe::probe_handler(p) {
                let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
                let mut rt = self.ctx.rt.clone();
                let r = probe::run(&mut rt, id, c, ip, h, timeout).await;
                if let Err(msg) = &r {
                    let label = match kind {
                        "liveness" => "Liveness",
                        "readiness" => "Readiness",
                        _ => "Startup",
                    };
                    self.ctx.events.emit(
                        &Self::involved(pod, Some(&c.name), init),
                        true,
                        "Unhealthy",
                        &format!("{label} probe failed: {msg}"),
                    );
                }
                st.record(p, r.is_ok(), Instant::now());
            }
        }
        *wake = (*wake).min(st.next.saturating_duration_since(Instant::now()));
        let ok = st.ok;
        self.probes.insert(key, st);
        ok
    }
}

fn app_contains(list: &[Container], name: &str) -> bool {
    list.iter().any(|c| c.name == name)
}
