//! The simulated runtime: ONE list + watch of all pods; for every pod bound to a simulated node
//! the simulator reports what a kubelet would once the containers run (phase Running,
//! kubelet-like conditions and containerStatuses, a fake container ID, a pod IP from the node's
//! podCIDR), finishes deletions (DELETE with grace 0 and a uid precondition, as the real agent
//! does once its containers are stopped) and, for pods annotated
//! `sim.capstan.io/complete-after-seconds: "N"` whose restartPolicy is not Always, reports
//! Succeeded N seconds after the start — or, with `sim.capstan.io/exit-code: "C"` (C ≠ 0),
//! Failed (restartPolicy Never) or its containers restarted in place with restartCount + 1,
//! every N seconds (OnFailure), as a kubelet reports a container exiting C.
//!
//! [`Tracker`] is the pure bookkeeping (what each pod needs next, pod IPs) with table tests;
//! [`run`] drives it: the watch feeds it, a pool of workers (bounded: `--sim-concurrency`)
//! performs the writes, retrying with back-off; an ERROR or 410 relists.

use super::nodes::SimNode;
use capstan_agent::api::Api;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Annotation: report the pod Succeeded this many seconds after it started (restartPolicy
/// Never or OnFailure).
pub const COMPLETE_AFTER: &str = "sim.capstan.io/complete-after-seconds";
/// Annotation: the exit code the containers end with at that time (default 0).
pub const EXIT_CODE: &str = "sim.capstan.io/exit-code";

/// The fields of a pod (or, in an ERROR event, of a Status) the simulator reads.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PodLite {
    pub metadata: PodMeta,
    pub spec: PodSpecLite,
    pub status: PodStatusLite,
    /// A Status object's code (ERROR events).
    pub code: u16,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodMeta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub resource_version: String,
    pub deletion_timestamp: Option<String>,
    pub annotations: HashMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpecLite {
    pub node_name: String,
    pub restart_policy: String,
    pub containers: Vec<ContainerLite>,
    pub init_containers: Vec<ContainerLite>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerLite {
    pub name: String,
    pub image: String,
    /// "Always" marks a sidecar (restartable init container).
    pub restart_policy: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatusLite {
    pub phase: String,
    #[serde(rename = "podIP")]
    pub pod_ip: String,
    pub start_time: String,
    pub conditions: Vec<ConditionLite>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConditionLite {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub last_transition_time: String,
}

/// A watch event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub object: PodLite,
}

/// Decode a watch line. A Status object (ERROR events) does not fit [`PodLite`]; it is read
/// loosely for its code.
pub fn decode(line: &[u8]) -> Result<Event, String> {
    match serde_json::from_slice::<Event>(line) {
        Ok(e) => Ok(e),
        Err(e) => {
            let v: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            if v["type"] == "ERROR" {
                Ok(Event {
                    kind: "ERROR".into(),
                    object: PodLite {
                        code: v["object"]["code"].as_u64().unwrap_or(0) as u16,
                        ..Default::default()
                    },
                })
            } else {
                Err(e.to_string())
            }
        }
    }
}

/// What the simulator last reported for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Nothing,
    Running,
    Completed,
}

/// A write the simulator owes a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    Complete,
    Delete,
}

/// One pod bound to a simulated node.
#[derive(Debug, Clone)]
struct Tracked {
    namespace: String,
    name: String,
    node: usize,
    /// Offset of the pod IP in the node's podCIDR.
    ip: Option<u8>,
    containers: Vec<ContainerLite>,
    init: Vec<ContainerLite>,
    phase: String,
    deleting: bool,
    reported: Reported,
    started_at: Option<String>,
    scheduled_at: Option<String>,
    complete_after: Option<u64>,
    timer_set: bool,
    complete_due: bool,
    queued: bool,
    failures: u32,
    /// The exit code the containers end with, and whether they restart in place (OnFailure).
    exit_code: i64,
    on_failure: bool,
    restarts: u32,
}

/// What the driver should do after an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Enqueue(String),
    /// Mark the pod's completion due after this long.
    Timer(String, Duration),
}

/// A write to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub action: Action,
    pub uid: String,
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The pod is gone (404), or another uid holds its name (409 on delete).
    Gone,
    Failed,
}

/// The bookkeeping of the simulated runtime (pure: no I/O, time passed in).
pub struct Tracker {
    node_index: HashMap<String, usize>,
    pod_base: Vec<u32>,
    host_ip: Vec<String>,
    used: Vec<[u64; 4]>,
    pods: HashMap<String, Tracked>,
}

fn set(bits: &mut [u64; 4], i: u8, on: bool) {
    let (w, b) = ((i / 64) as usize, i % 64);
    if on {
        bits[w] |= 1 << b;
    } else {
        bits[w] &= !(1 << b);
    }
}

fn is_set(bits: &[u64; 4], i: u8) -> bool {
    bits[(i / 64) as usize] & (1 << (i % 64)) != 0
}

fn ipv4(v: u32) -> String {
    std::net::Ipv4Addr::from(v).to_string()
}

fn finished(phase: &str) -> bool {
    phase == "Succeeded" || phase == "Failed"
}

impl Tracker {
    pub fn new(nodes: &[SimNode]) -> Tracker {
        Tracker {
            node_index: nodes.iter().map(|n| (n.name.clone(), n.index)).collect(),
            pod_base: nodes.iter().map(|n| n.pod_base).collect(),
            host_ip: nodes.iter().map(|n| n.internal_ip.clone()).collect(),
            used: vec![[0; 4]; nodes.len()],
            pods: HashMap::new(),
        }
    }

    /// Pods tracked (bound to a simulated node).
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    fn free_ip(&mut self, t: &Tracked) {
        if let Some(off) = t.ip {
            set(&mut self.used[t.node], off, false);
        }
    }

    /// The lowest free pod IP offset of node `n` (2 … 254).
    fn alloc_ip(&mut self, n: usize) -> Option<u8> {
        let off = (2u8..=254).find(|o| !is_set(&self.used[n], *o))?;
        set(&mut self.used[n], off, true);
        Some(off)
    }

    fn needs(t: &Tracked) -> Option<Action> {
        if t.deleting {
            return Some(Action::Delete);
        }
        if finished(&t.phase) || t.reported == Reported::Completed {
            return None;
        }
        if t.complete_due && t.reported == Reported::Running {
            return Some(Action::Complete);
        }
        if t.phase != "Running" && t.reported == Reported::Nothing {
            return Some(Action::Run);
        }
        None
    }

    fn enqueue_if_needed(uid: &str, t: &mut Tracked, out: &mut Vec<Effect>) {
        if !t.queued && Self::needs(t).is_some() {
            t.queued = true;
            out.push(Effect::Enqueue(uid.to_string()));
        }
    }

    /// A pod as the API shows it now (ADDED, MODIFIED or listed).
    pub fn observe(&mut self, pod: &PodLite, now_unix: i64) -> Vec<Effect> {
        let mut out = Vec::new();
        let uid = pod.metadata.uid.clone();
        let Some(&node) = self.node_index.get(&pod.spec.node_name) else {
            // Not (or no longer) on a simulated node.
            if let Some(t) = self.pods.remove(&uid) {
                self.free_ip(&t);
            }
            return out;
        };
        if !self.pods.contains_key(&uid) {
            let complete_after = pod
                .metadata
                .annotations
                .get(COMPLETE_AFTER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|_| {
                    pod.spec.restart_policy != "Always" && !pod.spec.restart_policy.is_empty()
                });
            self.pods.insert(
                uid.clone(),
                Tracked {
                    namespace: pod.metadata.namespace.clone(),
                    name: pod.metadata.name.clone(),
                    node,
                    ip: None,
                    containers: pod.spec.containers.clone(),
                    init: pod.spec.init_containers.clone(),
                    phase: String::new(),
                    deleting: false,
                    reported: Reported::Nothing,
                    started_at: None,
                    scheduled_at: None,
                    complete_after,
                    timer_set: false,
                    complete_due: false,
                    queued: false,
                    failures: 0,
                    exit_code: pod
                        .metadata
                        .annotations
                        .get(EXIT_CODE)
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0),
                    on_failure: pod.spec.restart_policy == "OnFailure",
                    restarts: 0,
                },
            );
        }
        let base = self.pod_base[node];
        let ip_off = pod
            .status
            .pod_ip
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(u32::from)
            .filter(|ip| ip & !0xff == base)
            .map(|ip| (ip & 0xff) as u8)
            .filter(|o| (2..=254).contains(o));
        let t = self.pods.get_mut(&uid).expect("inserted above");
        t.phase = pod.status.phase.clone();
        t.deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(c) = pod
            .status
            .conditions
            .iter()
            .find(|c| c.kind == "PodScheduled" && c.status == "True")
        {
            t.scheduled_at = Some(c.last_transition_time.clone()).filter(|s| !s.is_empty());
        }
        if t.phase == "Running" || finished(&t.phase) {
            // Reported by us (or a previous run of us): keep its IP taken.
            if t.reported == Reported::Nothing {
                t.reported = if finished(&t.phase) {
                    Reported::Completed
                } else {
                    Reported::Running
                };
            }
            if t.started_at.is_none() && !pod.status.start_time.is_empty() {
                t.started_at = Some(pod.status.start_time.clone());
            }
            if t.ip.is_none() {
                if let Some(off) = ip_off {
                    t.ip = Some(off);
                    set(&mut self.used[node], off, true);
                }
            }
        }
        if finished(&t.phase) {
            t.containers = Vec::new();
            t.init = Vec::new();
        }
        if let (Some(secs), false, Reported::Running) = (t.complete_after, t.timer_set, t.reported)
        {
            t.timer_set = true;
            let started = t
                .started_at
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp())
                .unwrap_or(now_unix);
            let left = (started + secs as i64 - now_unix).max(0) as u64;
            out.push(Effect::Timer(uid.clone(), Duration::from_secs(left)));
        }
        Self::enqueue_if_needed(&uid, t, &mut out);
        out
    }

    /// A pod the API no longer has.
    pub fn forget(&mut self, uid: &str) {
        if let Some(t) = self.pods.remove(uid) {
            self.free_ip(&t);
        }
    }

    /// After a relist: forget every pod the list did not have.
    pub fn keep_only(&mut self, seen: &HashSet<String>) {
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for u in gone {
            self.forget(&u);
        }
    }

    /// A completion timer fired.
    pub fn complete_due(&mut self, uid: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(t) = self.pods.get_mut(uid) {
            t.complete_due = true;
            Self::enqueue_if_needed(uid, t, &mut out);
        }
        out
    }

    /// The write pod `uid` needs now (its queued mark cleared), or None.
    pub fn take_job(&mut self, uid: &str, now: &str) -> Option<Job> {
        let t = self.pods.get_mut(uid)?;
        t.queued = false;
        let action = Self::needs(t)?;
        let node = t.node;
        if action == Action::Run && t.ip.is_none() {
            let off = self.alloc_ip(node);
            self.pods.get_mut(uid)?.ip = off;
        }
        let t = self.pods.get(uid)?;
        let pod_path = format!("/api/v1/namespaces/{}/pods/{}", t.namespace, t.name);
        let info = PodInfo {
            uid,
            containers: &t.containers,
            init: &t.init,
            scheduled_at: t.scheduled_at.as_deref().unwrap_or(now),
        };
        let (method, path, body) = match action {
            Action::Delete => (
                "DELETE",
                pod_path,
                json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}),
            ),
            Action::Run => {
                let pod_ip = t.ip.map(|o| ipv4(self.pod_base[node] + o as u32));
                let status = running_status(&info, &self.host_ip[node], pod_ip.as_deref(), now);
                (
                    "PATCH",
                    format!("{pod_path}/status"),
                    json!({"metadata": {"uid": uid}, "status": status}),
                )
            }
            Action::Complete => {
                let started = t.started_at.as_deref().unwrap_or(now);
                let status = if t.exit_code == 0 {
                    succeeded_status(&info, started, now)
                } else if t.on_failure {
                    let pod_ip = t.ip.map(|o| ipv4(self.pod_base[node] + o as u32));
                    let mut s = running_status(&info, &self.host_ip[node], pod_ip.as_deref(), now);
                    restarted(&mut s, t.restarts + 1, t.exit_code, started, now);
                    s
                } else {
                    failed_status(&info, t.exit_code, started, now)
                };
                (
                    "PATCH",
                    format!("{pod_path}/status"),
                    json!({"metadata": {"uid": uid}, "status": status}),
                )
            }
        };
        if action == Action::Complete {
            let t = self.pods.get_mut(uid)?;
            if t.exit_code != 0 && t.on_failure {
                // Restarted in place: runs again, fails again after the same time. Taken now,
                // before the write, so the watch event of the write (which may come before
                // `finish`) arms the next timer.
                t.restarts += 1;
                t.started_at = Some(now.to_string());
                t.timer_set = false;
                t.complete_due = false;
            }
        }
        Some(Job {
            action,
            uid: uid.to_string(),
            method,
            path,
            body,
        })
    }

    /// Record how a job went; Some(delay) when it must be retried (and was queued again).
    pub fn finish(
        &mut self,
        job: &Job,
        outcome: Outcome,
        started: &str,
    ) -> Option<(String, Duration)> {
        let t = self.pods.get_mut(&job.uid)?;
        match (outcome, job.action) {
            (Outcome::Done, Action::Run) => {
                t.reported = Reported::Running;
                t.phase = "Running".into();
                t.started_at = Some(started.to_string());
                t.failures = 0;
                // The completion timer is set when the Running pod is observed.
                None
            }
            (Outcome::Done, Action::Complete) if t.exit_code != 0 && t.on_failure => None,
            (Outcome::Done, Action::Complete) => {
                t.reported = Reported::Completed;
                t.phase = if t.exit_code == 0 {
                    "Succeeded"
                } else {
                    "Failed"
                }
                .into();
                t.containers = Vec::new();
                t.init = Vec::new();
                None
            }
            (Outcome::Done | Outcome::Gone, Action::Delete) | (Outcome::Gone, _) => {
                let uid = job.uid.clone();
                self.forget(&uid);
                None
            }
            (Outcome::Failed, action) => {
                if action == Action::Complete && t.exit_code != 0 && t.on_failure {
                    // The restart was not reported: report it again.
                    t.restarts = t.restarts.saturating_sub(1);
                    t.complete_due = true;
                    t.timer_set = true;
                }
                t.failures += 1;
                let secs = (1u64 << t.failures.min(5)).min(30);
                if t.queued {
                    return None;
                }
                t.queued = true;
                Some((job.uid.clone(), Duration::from_millis(250 * secs)))
            }
        }
    }

    /// The IP (if any) assigned to pod `uid`.
    #[cfg(test)]
    pub fn pod_ip(&self, uid: &str) -> Option<String> {
        let t = self.pods.get(uid)?;
        t.ip.map(|o| ipv4(self.pod_base[t.node] + o as u32))
    }
}

/// What the status builders need of a pod.
pub struct PodInfo<'a> {
    pub uid: &'a str,
    pub containers: &'a [ContainerLite],
    pub init: &'a [ContainerLite],
    pub scheduled_at: &'a str,
}

fn condition(kind: &str, ok: bool, reason: &str, at: &str) -> Value {
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": at});
    if !ok && !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    c
}

/// `registry/repo@sha256:<digest of the reference>`: a stable fake image ID.
fn image_id(image: &str) -> String {
    use sha2::Digest;
    let full = capstan_images::normalize_image(image);
    let repo = match full.split_once('@') {
        Some((r, _)) => r.to_string(),
        None => {
            let slash = full.rfind('/').map_or(0, |i| i + 1);
            match full[slash..].rfind(':') {
                Some(c) => full[..slash + c].to_string(),
                None => full.clone(),
            }
        }
    };
    let d = sha2::Sha256::digest(full.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("{repo}@sha256:{hex}")
}

fn container_base(uid: &str, c: &ContainerLite) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(c.name));
    m.insert(
        "image".into(),
        json!(capstan_images::normalize_image(&c.image)),
    );
    m.insert("imageID".into(), json!(image_id(&c.image)));
    m.insert(
        "containerID".into(),
        json!(format!("sim://{uid}-{}", c.name)),
    );
    m.insert("lastState".into(), json!({}));
    m.insert("restartCount".into(), json!(0));
    m
}

fn running(uid: &str, c: &ContainerLite, at: &str) -> Value {
    let mut m = container_base(uid, c);
    m.insert("state".into(), json!({"running": {"startedAt": at}}));
    m.insert("ready".into(), json!(true));
    m.insert("started".into(), json!(true));
    Value::Object(m)
}

fn completed(uid: &str, c: &ContainerLite, from: &str, to: &str) -> Value {
    let mut m = container_base(uid, c);
    m.insert(
        "state".into(),
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": from,
            "finishedAt": to, "containerID": format!("sim://{uid}-{}", c.name)}}),
    );
    m.insert("ready".into(), json!(false));
    m.insert("started".into(), json!(false));
    Value::Object(m)
}

/// The status a kubelet reports once every container runs: phase Running, kube 1.32's
/// conditions all True, init containers completed (sidecars running), app containers running
/// and ready, hostIP and podIP.
pub fn running_status(p: &PodInfo, host_ip: &str, pod_ip: Option<&str>, now: &str) -> Value {
    let init: Vec<Value> = p
        .init
        .iter()
        .map(|c| {
            if c.restart_policy == "Always" {
                running(p.uid, c, now)
            } else {
                let mut v = completed(p.uid, c, now, now);
                v["ready"] = json!(true);
                v
            }
        })
        .collect();
    let mut s = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", true, "", now),
            condition("Initialized", true, "", now),
            condition("Ready", true, "", now),
            condition("ContainersReady", true, "", now),
            condition("PodScheduled", true, "", p.scheduled_at),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": now,
        "containerStatuses": p.containers.iter().map(|c| running(p.uid, c, now)).collect::<Vec<_>>(),
    });
    if !init.is_empty() {
        s["initContainerStatuses"] = json!(init);
    }
    if let Some(ip) = pod_ip {
        s["podIP"] = json!(ip);
        s["podIPs"] = json!([{"ip": ip}]);
    }
    s
}

/// Containers restarted in place after exiting `code`: restartCount and lastState.
fn restarted(s: &mut Value, restarts: u32, code: i64, from: &str, to: &str) {
    for c in s["containerStatuses"].as_array_mut().into_iter().flatten() {
        c["restartCount"] = json!(restarts);
        c["lastState"] = json!({"terminated": {"exitCode": code, "reason": "Error",
            "startedAt": from, "finishedAt": to, "containerID": c["containerID"].clone()}});
    }
}

/// The status of a pod whose containers exited `code` ≠ 0 with restartPolicy Never: Failed.
pub fn failed_status(p: &PodInfo, code: i64, started: &str, now: &str) -> Value {
    let mut s = succeeded_status(p, started, now);
    s["phase"] = json!("Failed");
    for c in s["containerStatuses"].as_array_mut().into_iter().flatten() {
        c["state"]["terminated"]["exitCode"] = json!(code);
        c["state"]["terminated"]["reason"] = json!("Error");
    }
    for c in s["conditions"].as_array_mut().into_iter().flatten() {
        if c["reason"] == "PodCompleted" {
            c["reason"] = json!("PodFailed");
        }
    }
    s
}

/// The status of a pod whose containers all exited 0: phase Succeeded.
pub fn succeeded_status(p: &PodInfo, started: &str, now: &str) -> Value {
    let mut s = json!({
        "phase": "Succeeded",
        "conditions": [
            condition("PodReadyToStartContainers", false, "", now),
            condition("Initialized", true, "", started),
            condition("Ready", false, "PodCompleted", now),
            condition("ContainersReady", false, "PodCompleted", now),
            condition("PodScheduled", true, "", p.scheduled_at),
        ],
        "containerStatuses": p.containers.iter().map(|c| completed(p.uid, c, started, now)).collect::<Vec<_>>(),
    });
    if !p.init.is_empty() {
        s["initContainerStatuses"] = json!(p
            .init
            .iter()
            .map(|c| completed(p.uid, c, started, started))
            .collect::<Vec<_>>());
    }
    s
}

fn now() -> String {
    super::nodes::now()
}

type Queue = tokio::sync::mpsc::UnboundedSender<String>;

struct Shared {
    tracker: Mutex<Tracker>,
    queue: Queue,
}

impl Shared {
    fn apply(self: &Arc<Self>, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Enqueue(uid) => {
                    let _ = self.queue.send(uid);
                }
                Effect::Timer(uid, after) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let effects = me.tracker.lock().expect("tracker").complete_due(&uid);
                        me.apply(effects);
                    });
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PodList {
    metadata: super::nodes::ListMeta,
    items: Vec<PodLite>,
}

/// List every pod (paged) into the tracker; the list's resourceVersion.
async fn relist(api: &Api, shared: &Arc<Shared>) -> anyhow::Result<String> {
    let mut seen = HashSet::new();
    let mut cont = String::new();
    let mut rv = String::new();
    loop {
        let path = if cont.is_empty() {
            "/api/v1/pods?limit=500".to_string()
        } else {
            format!("/api/v1/pods?limit=500&continue={cont}")
        };
        let (code, body) = api.call_raw("GET", &path, None).await?;
        if code != 200 {
            anyhow::bail!(
                "listing pods: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: PodList = serde_json::from_slice(&body)?;
        if rv.is_empty() {
            rv = page.metadata.resource_version.clone();
        }
        let now_unix = chrono::Utc::now().timestamp();
        let mut effects = Vec::new();
        {
            let mut t = shared.tracker.lock().expect("tracker");
            for p in &page.items {
                seen.insert(p.metadata.uid.clone());
                effects.extend(t.observe(p, now_unix));
            }
        }
        shared.apply(effects);
        if page.metadata.cont.is_empty() {
            break;
        }
        cont = page.metadata.cont;
    }
    shared.tracker.lock().expect("tracker").keep_only(&seen);
    Ok(rv)
}

/// Watch from `rv` until the watch must be restarted from a list (Ok(None): ERROR/410) or
/// ends (Ok(Some(rv)): resume from there).
async fn watch_from(
    api: &Api,
    shared: &Arc<Shared>,
    mut rv: String,
) -> anyhow::Result<Option<String>> {
    let path = format!(
        "/api/v1/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion={rv}"
    );
    let mut w = api.watch(&path).await?;
    while let Some(line) = w.next_line().await? {
        let ev = match decode(&line) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable pod watch event");
                continue;
            }
        };
        match ev.kind.as_str() {
            "ERROR" => {
                tracing::info!(code = ev.object.code, "pod watch error; relisting");
                return Ok(None);
            }
            "BOOKMARK" => {}
            "DELETED" => shared
                .tracker
                .lock()
                .expect("tracker")
                .forget(&ev.object.metadata.uid),
            _ => {
                let effects = shared
                    .tracker
                    .lock()
                    .expect("tracker")
                    .observe(&ev.object, chrono::Utc::now().timestamp());
                shared.apply(effects);
            }
        }
        if !ev.object.metadata.resource_version.is_empty() {
            rv = ev.object.metadata.resource_version;
        }
    }
    Ok(Some(rv))
}

async fn perform(api: &Api, job: &Job) -> Outcome {
    match api.call(job.method, &job.path, Some(&job.body)).await {
        Ok(a) if a.code == 200 || a.code == 201 => Outcome::Done,
        Ok(a) if a.code == 404 => Outcome::Gone,
        // A delete whose uid precondition fails: the name belongs to a newer pod.
        Ok(a) if a.code == 409 && job.action == Action::Delete => Outcome::Gone,
        Ok(a) => {
            tracing::debug!(code = a.code, path = %job.path, body = %a.body, "pod write failed; retrying");
            Outcome::Failed
        }
        Err(e) => {
            tracing::debug!(error = format!("{e:#}"), path = %job.path, "pod write failed; retrying");
            Outcome::Failed
        }
    }
}

/// Run the simulated runtime for `nodes` forever.
pub async fn run(api: Api, nodes: Arc<Vec<SimNode>>, concurrency: usize) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let shared = Arc::new(Shared {
        tracker: Mutex::new(Tracker::new(&nodes)),
        queue: tx,
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..concurrency.max(1) {
        let (api, shared, rx) = (api.clone(), shared.clone(), rx.clone());
        tokio::spawn(async move {
            loop {
                let Some(uid) = rx.lock().await.recv().await else {
                    return;
                };
                let stamp = now();
                let job = shared
                    .tracker
                    .lock()
                    .expect("tracker")
                    .take_job(&uid, &stamp);
                let Some(job) = job else { continue };
                let outcome = perform(&api, &job).await;
                let retry = shared
                    .tracker
                    .lock()
                    .expect("tracker")
                    .finish(&job, outcome, &stamp);
                if let Some((uid, after)) = retry {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = shared.queue.send(uid);
                    });
                }
            }
        });
    }
    loop {
        let rv = match relist(&api, &shared).await {
            Ok(rv) => rv,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "listing pods");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::debug!(
            pods = shared.tracker.lock().expect("tracker").len(),
            "pods listed"
        );
        let mut rv = Some(rv);
        while let Some(from) = rv.take() {
            match watch_from(&api, &shared, from.clone()).await {
                Ok(next) => rv = next,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "pod watch; relisting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<SimNode> {
        (0..2)
            .map(|i| SimNode {
                index: i,
                name: format!("sim-{i}"),
                internal_ip: format!("127.1.0.{}", i + 1),
                pod_cidr: format!("100.64.{i}.0/24"),
                pod_base: u32::from(std::net::Ipv4Addr::new(100, 64, i as u8, 0)),
                since: None,
                exists: false,
            })
            .collect()
    }

    fn pod(uid: &str, node: &str) -> PodLite {
        serde_json::from_value(json!({
            "metadata": {"name": format!("p-{uid}"), "namespace": "default", "uid": uid, "resourceVersion": "5"},
            "spec": {"nodeName": node, "restartPolicy": "Always",
                "containers": [{"name": "app", "image": "busybox:1.36"}],
                "initContainers": [{"name": "init", "image": "busybox"}, {"name": "side", "image": "envoy:1", "restartPolicy": "Always"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn enqueued(e: &[Effect]) -> Vec<&str> {
        e.iter()
            .filter_map(|e| match e {
                Effect::Enqueue(u) => Some(u.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn decodes_events_and_status_objects() {
        let ev = decode(
            br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired"}}"#,
        )
        .unwrap();
        assert_eq!((ev.kind.as_str(), ev.object.code), ("ERROR", 410));
        let ev = decode(
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"42"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.object.metadata.resource_version, "42");
        let ev = decode(
            br#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"p","uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z","annotations":{"a":"b"}},"spec":{"nodeName":"sim-0","containers":[{"name":"c","image":"i","ports":[{"containerPort":80}]}]},"status":{"phase":"Pending","qosClass":"Burstable"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.object.spec.node_name, "sim-0");
        assert!(ev.object.metadata.deletion_timestamp.is_some());
        assert_eq!(ev.object.spec.containers[0].name, "c");
        assert!(decode(br#"{"type":"ADDED","object":{"spec":{"containers":"x"}}}"#).is_err());
        assert!(decode(b"not json").is_err());
    }

    #[test]
    fn lifecycle_of_a_bound_pod() {
        let mut t = Tracker::new(&nodes());
        // Unbound and foreign pods are not ours.
        assert!(t.observe(&pod("u0", ""), 0).is_empty());
        assert!(t.observe(&pod("u0", "real-node"), 0).is_empty());
        assert_eq!(t.len(), 0);
        // Bound to sim-1: Run, queued once however many events arrive.
        let p = pod("u1", "sim-1");
        assert_eq!(enqueued(&t.observe(&p, 0)), vec!["u1"]);
        assert!(t.observe(&p, 0).is_empty());
        let job = t.take_job("u1", "2026-01-01T00:00:05Z").unwrap();
        assert_eq!(job.action, Action::Run);
        assert_eq!(job.method, "PATCH");
        assert_eq!(job.path, "/api/v1/namespaces/default/pods/p-u1/status");
        let s = &job.body["status"];
        assert_eq!(job.body["metadata"]["uid"], "u1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "100.64.1.2");
        assert_eq!(s["hostIP"], "127.1.0.2");
        assert_eq!(s["podIPs"], json!([{"ip": "100.64.1.2"}]));
        assert_eq!(s["startTime"], "2026-01-01T00:00:05Z");
        // A failure retries with back-off.
        let (uid, after) = t.finish(&job, Outcome::Failed, "x").unwrap();
        assert_eq!((uid.as_str(), after), ("u1", Duration::from_millis(500)));
        let job = t.take_job("u1", "2026-01-01T00:00:06Z").unwrap();
        assert_eq!(job.body["status"]["podIP"], "100.64.1.2", "the IP is kept");
        assert_eq!(t.finish(&job, Outcome::Done, "2026-01-01T00:00:06Z"), None);
        // Stale Pending events (before our write shows) do not run it again.
        assert!(t.observe(&p, 0).is_empty());
        // A second pod gets the next IP; a deleted pod frees its IP.
        let p2 = pod("u2", "sim-1");
        t.observe(&p2, 0);
        let j2 = t.take_job("u2", "t").unwrap();
        assert_eq!(j2.body["status"]["podIP"], "100.64.1.3");
        let mut gone = p.clone();
        gone.metadata.deletion_timestamp = Some("2026-01-01T00:01:00Z".into());
        gone.status.phase = "Running".into();
        assert_eq!(enqueued(&t.observe(&gone, 0)), vec!["u1"]);
        let del = t.take_job("u1", "t").unwrap();
        assert_eq!(
            (del.action, del.method, del.path.as_str()),
            (
                Action::Delete,
                "DELETE",
                "/api/v1/namespaces/default/pods/p-u1"
            )
        );
        assert_eq!(
            del.body,
            json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}})
        );
        t.finish(&del, Outcome::Done, "t");
        assert_eq!(t.pod_ip("u1"), None);
        let p3 = pod("u3", "sim-1");
        t.observe(&p3, 0);
        let j3 = t.take_job("u3", "t").unwrap();
        assert_eq!(j3.body["status"]["podIP"], "100.64.1.2", "freed IP reused");
        // Nothing owed: no job.
        t.finish(&j3, Outcome::Done, "t");
        assert!(t.take_job("u3", "t").is_none());
    }

    #[test]
    fn adopts_running_pods_after_a_restart() {
        let mut t = Tracker::new(&nodes());
        let mut p = pod("u1", "sim-0");
        p.status.phase = "Running".into();
        p.status.pod_ip = "100.64.0.2".into();
        assert!(t.observe(&p, 0).is_empty());
        assert_eq!(t.pod_ip("u1").as_deref(), Some("100.64.0.2"));
        t.observe(&pod("u2", "sim-0"), 0);
        let j = t.take_job("u2", "t").unwrap();
        assert_eq!(j.body["status"]["podIP"], "100.64.0.3");
        // A relist without u1 forgets it and frees its IP.
        t.keep_only(&HashSet::from(["u2".to_string()]));
        assert_eq!(t.len(), 1);
        t.observe(&pod("u4", "sim-0"), 0);
        let j = t.take_job("u4", "t").unwrap();
        assert_eq!(j.body["status"]["podIP"], "100.64.0.2");
        // A 404 forgets the pod.
        t.finish(&j, Outcome::Gone, "t");
        assert_eq!(t.pod_ip("u4"), None);
    }

    #[test]
    fn completes_annotated_pods() {
        let mut t = Tracker::new(&nodes());
        let mut p = pod("u1", "sim-0");
        p.spec.restart_policy = "Never".into();
        p.metadata
            .annotations
            .insert(COMPLETE_AFTER.into(), "30".into());
        t.observe(&p, 1000);
        let j = t.take_job("u1", "2026-01-01T00:00:00Z").unwrap();
        t.finish(&j, Outcome::Done, "2026-01-01T00:00:00Z");
        // Observed Running (our write): a timer for what is left of the 30 s.
        let mut running = p.clone();
        running.status.phase = "Running".into();
        running.status.start_time = "2026-01-01T00:00:00Z".into();
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let eff = t.observe(&running, start + 10);
        assert_eq!(
            eff,
            vec![Effect::Timer("u1".into(), Duration::from_secs(20))]
        );
        assert!(t.observe(&running, start + 11).is_empty(), "one timer");
        assert_eq!(enqueued(&t.complete_due("u1")), vec!["u1"]);
        let c = t.take_job("u1", "2026-01-01T00:00:30Z").unwrap();
        assert_eq!(c.action, Action::Complete);
        let s = &c.body["status"];
        assert_eq!(s["phase"], "Succeeded");
        let cs = &s["containerStatuses"][0];
        assert_eq!(cs["state"]["terminated"]["exitCode"], 0);
        assert_eq!(cs["state"]["terminated"]["reason"], "Completed");
        assert_eq!(
            cs["state"]["terminated"]["startedAt"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(cs["ready"], false);
        assert_eq!(s["conditions"][2]["reason"], "PodCompleted");
        t.finish(&c, Outcome::Done, "t");
        assert!(t.take_job("u1", "t").is_none());
        // restartPolicy Always ignores the annotation.
        let mut always = pod("u2", "sim-0");
        always
            .metadata
            .annotations
            .insert(COMPLETE_AFTER.into(), "1".into());
        always.status.phase = "Running".into();
        assert!(t.observe(&always, 0).is_empty());
    }

    #[test]
    fn failing_pods_fail_or_restart_in_place() {
        for (policy, want_phase, restarts) in
            [("Never", "Failed", None), ("OnFailure", "Running", Some(1))]
        {
            let mut t = Tracker::new(&nodes());
            let mut p = pod("u1", "sim-0");
            p.spec.restart_policy = policy.into();
            p.metadata
                .annotations
                .insert(COMPLETE_AFTER.into(), "5".into());
            p.metadata.annotations.insert(EXIT_CODE.into(), "3".into());
            t.observe(&p, 0);
            let j = t.take_job("u1", "2026-01-01T00:00:00Z").unwrap();
            t.finish(&j, Outcome::Done, "2026-01-01T00:00:00Z");
            let mut running = p.clone();
            running.status.phase = "Running".into();
            t.observe(&running, 0);
            t.complete_due("u1");
            let c = t.take_job("u1", "2026-01-01T00:00:05Z").unwrap();
            let s = &c.body["status"];
            assert_eq!(s["phase"], want_phase, "{policy}");
            let cs = &s["containerStatuses"][0];
            match restarts {
                None => assert_eq!(cs["state"]["terminated"]["exitCode"], 3),
                Some(n) => {
                    assert_eq!(cs["restartCount"], n);
                    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
                    assert!(cs["state"]["running"].is_object());
                }
            }
            // OnFailure runs again and fails again: a new timer once it is seen Running —
            // also when the write's watch event comes before the write's answer.
            let mut seen = running.clone();
            seen.status.phase = want_phase.into();
            let again = t.observe(&seen, 5);
            t.finish(&c, Outcome::Done, "2026-01-01T00:00:05Z");
            assert_eq!(again.is_empty(), restarts.is_none(), "{policy}: {again:?}");
        }
    }

    #[test]
    fn running_status_looks_like_a_kubelets() {
        let containers = vec![ContainerLite {
            name: "app".into(),
            image: "busybox:1.36".into(),
            restart_policy: String::new(),
        }];
        let init = vec![
            ContainerLite {
                name: "init".into(),
                image: "busybox".into(),
                restart_policy: String::new(),
            },
            ContainerLite {
                name: "side".into(),
                image: "envoy:1".into(),
                restart_policy: "Always".into(),
            },
        ];
        let info = PodInfo {
            uid: "u",
            containers: &containers,
            init: &init,
            scheduled_at: "2026-01-01T00:00:00Z",
        };
        let s = running_status(
            &info,
            "127.1.0.1",
            Some("100.64.0.2"),
            "2026-01-01T00:00:01Z",
        );
        let conds: Vec<(&str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            conds,
            vec![
                ("PodReadyToStartContainers", "True"),
                ("Initialized", "True"),
                ("Ready", "True"),
                ("ContainersReady", "True"),
                ("PodScheduled", "True"),
            ]
        );
        assert_eq!(
            s["conditions"][4]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        let c = &s["containerStatuses"][0];
        assert_eq!(c["name"], "app");
        assert_eq!(c["containerID"], "sim://u-app");
        assert_eq!(c["image"], "docker.io/library/busybox:1.36");
        let id = c["imageID"].as_str().unwrap();
        assert!(id.starts_with("docker.io/library/busybox@sha256:"), "{id}");
        assert_eq!(id.len(), "docker.io/library/busybox@sha256:".len() + 64);
        assert_eq!(c["state"]["running"]["startedAt"], "2026-01-01T00:00:01Z");
        assert_eq!((&c["ready"], &c["started"]), (&json!(true), &json!(true)));
        assert_eq!(c["restartCount"], 0);
        let i = &s["initContainerStatuses"];
        assert_eq!(i[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(i[0]["ready"], true);
        assert!(i[1]["state"]["running"].is_object(), "sidecar runs");
        let no_ip = running_status(&info, "127.1.0.1", None, "t");
        assert!(no_ip.get("podIP").is_none());
        assert_eq!(
            image_id("registry.example:5000/team/app@sha256:abc")
                .split('@')
                .next(),
            Some("registry.example:5000/team/app")
        );
    }

    #[test]
    fn a_node_runs_out_of_ips_at_253_pods() {
        let mut t = Tracker::new(&nodes());
        for i in 0..254 {
            let uid = format!("u{i}");
            t.observe(&pod(&uid, "sim-0"), 0);
            let j = t.take_job(&uid, "t").unwrap();
            let ip = j.body["status"]["podIP"].as_str().map(str::to_string);
            if i < 253 {
                assert_eq!(ip, Some(format!("100.64.0.{}", i + 2)));
            } else {
                assert_eq!(ip, None, "no IP left, reported without one");
            }
        }
    }
}
