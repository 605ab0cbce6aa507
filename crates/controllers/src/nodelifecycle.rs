//! Node lifecycle (kube's pkg/controller/nodelifecycle) and taint-based eviction
//! (pkg/controller/tainteviction): a node that stopped posting status gets its conditions set
//! Unknown; conditions become taints (NoSchedule always, NoExecute `not-ready`/`unreachable`
//! subject to the zone's disruption state); pods on a node with NoExecute taints they do not
//! tolerate are evicted, at once or after their tolerationSeconds.

use crate::{pod::toleration_matches, str_at};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const REGION: &str = "topology.kubernetes.io/region";

/// The condition → NoSchedule taint keys (kube's TaintNodesByCondition), `not-ready` and
/// `unreachable` aside.
const CONDITION_TAINTS: &[(&str, &str)] = &[
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "node.kubernetes.io/network-unavailable",
    ),
];
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The conditions a node that stopped posting status has set Unknown (kube's
/// tryUpdateNodeHealth).
const MONITORED: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Ready,
    NotReady,
    Unknown,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn conditions(node: &Value) -> &[Value] {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn condition_status<'a>(node: &'a Value, ty: &str) -> Option<&'a str> {
    conditions(node)
        .iter()
        .find(|c| c["type"] == ty)
        .and_then(|c| c["status"].as_str())
}

/// The node's health by its Ready condition (none yet: Unknown).
pub fn health(node: &Value) -> Health {
    match condition_status(node, "Ready") {
        Some("True") => Health::Ready,
        Some("False") => Health::NotReady,
        _ => Health::Unknown,
    }
}

/// The conditions of a node whose agent stopped posting status (or never did): each
/// monitored condition Unknown, as kube writes them. None when they already are.
pub fn stale_conditions(node: &Value, now: DateTime<Utc>) -> Option<Vec<Value>> {
    let mut out = conditions(node).to_vec();
    let mut changed = false;
    for ty in MONITORED {
        match out.iter_mut().find(|c| c["type"] == *ty) {
            Some(c) if c["status"] != "Unknown" => {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(stamp(now));
                changed = true;
            }
            Some(_) => {}
            None => {
                out.push(json!({"type": ty, "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": node["metadata"]["creationTimestamp"],
                    "lastTransitionTime": stamp(now)}));
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// The NoSchedule taint keys the node's state calls for.
pub fn no_schedule_keys(node: &Value) -> Vec<&'static str> {
    let mut keys = Vec::new();
    match health(node) {
        Health::Ready => {}
        Health::NotReady => keys.push(NOT_READY),
        Health::Unknown => keys.push(UNREACHABLE),
    }
    for (ty, key) in CONDITION_TAINTS {
        if condition_status(node, ty) == Some("True") {
            keys.push(*key);
        }
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// The NoExecute taint key the node's health calls for.
pub fn no_execute_key(h: Health) -> Option<&'static str> {
    match h {
        Health::Ready => None,
        Health::NotReady => Some(NOT_READY),
        Health::Unknown => Some(UNREACHABLE),
    }
}

fn managed_no_schedule(key: &str) -> bool {
    key == NOT_READY
        || key == UNREACHABLE
        || key == UNSCHEDULABLE
        || CONDITION_TAINTS.iter().any(|(_, k)| *k == key)
}

pub fn taints(node: &Value) -> &[Value] {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Whether the node carries taint `key` with `effect`.
pub fn has_taint(node: &Value, key: &str, effect: &str) -> bool {
    taints(node)
        .iter()
        .any(|t| t["key"] == key && t["effect"] == effect)
}

/// The node's taints with the controller-managed ones replaced: NoSchedule by `no_schedule`,
/// the `not-ready`/`unreachable` NoExecute one by `no_execute` (added with timeAdded = now).
/// Other taints are kept as they are. None when nothing changes.
pub fn desired_taints(
    node: &Value,
    no_schedule: &[&str],
    no_execute: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Vec<Value>> {
    let old = taints(node);
    let mut out: Vec<Value> = old
        .iter()
        .filter(|t| {
            let (k, e) = (str_at(t, "/key"), str_at(t, "/effect"));
            match e {
                "NoSchedule" if managed_no_schedule(k) => no_schedule.contains(&k),
                "NoExecute" if k == NOT_READY || k == UNREACHABLE => no_execute == Some(k),
                _ => true,
            }
        })
        .cloned()
        .collect();
    for k in no_schedule {
        if !out
            .iter()
            .any(|t| t["key"] == *k && t["effect"] == "NoSchedule")
        {
            out.push(json!({"key": k, "effect": "NoSchedule"}));
        }
    }
    if let Some(k) = no_execute {
        if !out
            .iter()
            .any(|t| t["key"] == k && t["effect"] == "NoExecute")
        {
            out.push(json!({"key": k, "effect": "NoExecute", "timeAdded": stamp(now)}));
        }
    }
    (out.as_slice() != old).then_some(out)
}

/// The zone a node is in, for disruption accounting (region and zone labels).
pub fn zone(node: &Value) -> String {
    let l = |k: &str| {
        node.pointer("/metadata/labels")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (r, z) = (l(REGION), l(ZONE));
    if r.is_empty() && z.is_empty() {
        String::new()
    } else {
        format!("{r}:\0:{z}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// A zone's state from its ready and not-ready node counts (kube's ComputeZoneState).
pub fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= unhealthy_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Eviction-rate settings (kube-controller-manager's flags).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub primary: f64,
    pub secondary: f64,
    pub large_cluster_size: usize,
}

/// How many nodes per second a zone may have NoExecute-tainted (kube's
/// setLimiterInZone / ReducedQPSFunc).
pub fn zone_rate(state: ZoneState, zone_size: usize, r: Rates) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => r.primary,
        ZoneState::PartialDisruption if zone_size > r.large_cluster_size => r.secondary,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// What the taint manager does with a pod on a node with these taints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// No NoExecute taint, or all tolerated for ever.
    Keep,
    /// A NoExecute taint it does not tolerate.
    Now,
    /// All tolerated, the shortest tolerationSeconds being this.
    After(i64),
}

/// The taint manager's decision for a pod (kube's processPodOnNode): every NoExecute taint
/// must be tolerated; the pod stays for the least tolerationSeconds of the tolerations used.
pub fn pod_eviction(pod: &Value, node_taints: &[Value]) -> Eviction {
    let tols = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut min: Option<i64> = None;
    let mut any = false;
    for taint in node_taints.iter().filter(|t| t["effect"] == "NoExecute") {
        any = true;
        let used: Vec<&Value> = tols
            .iter()
            .filter(|t| toleration_matches(t, taint))
            .collect();
        if used.is_empty() {
            return Eviction::Now;
        }
        for t in used {
            if let Some(s) = t["tolerationSeconds"].as_i64() {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    match (any, min) {
        (false, _) | (true, None) => Eviction::Keep,
        (true, Some(s)) if s <= 0 => Eviction::Now,
        (true, Some(s)) => Eviction::After(s),
    }
}

/// The earliest timeAdded of the node's NoExecute taints.
pub fn no_execute_since(node_taints: &[Value]) -> Option<DateTime<Utc>> {
    node_taints
        .iter()
        .filter(|t| t["effect"] == "NoExecute")
        .filter_map(|t| crate::time_at(t, "/timeAdded"))
        .min()
}

/// The pod's conditions with Ready (and ContainersReady) set False, as kube's
/// MarkPodsNotReady writes them; None when it is not Ready.
pub fn pod_not_ready(pod: &Value, now: DateTime<Utc>) -> Option<Vec<Value>> {
    let mut conds = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for c in conds.iter_mut() {
        if c["type"] == "Ready" && c["status"] == "True" {
            c["status"] = json!("False");
            c["reason"] = json!("NodeNotReady");
            c["message"] = json!("");
            c["lastTransitionTime"] = json!(stamp(now));
            changed = true;
        }
    }
    changed.then_some(conds)
}

/// The pod's conditions with DisruptionTarget added, as the taint manager sets it before it
/// deletes the pod.
pub fn eviction_conditions(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut conds: Vec<Value> = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "DisruptionTarget")
        .collect();
    conds.push(json!({"type": "DisruptionTarget", "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": stamp(now)}));
    conds
}

#[cfg(test)]
mod tests;
