//! ReplicaSet and ReplicationController (kube's pkg/controller/replicaset): which pods to
//! adopt and release, how many to create, which to delete, and the status to report.

use crate::{controller_ref, deleting, labels_ref, name, pod, selector, uid};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Most creates or deletes one sync does (kube's burstReplicas).
pub const BURST: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ReplicaSet,
    ReplicationController,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
        }
    }
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "apps/v1",
            Kind::ReplicationController => "v1",
        }
    }
}

/// What one sync of a ReplicaSet should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Orphans matching the selector: add this controller's ownerReference.
    pub adopt: Vec<Value>,
    /// Owned pods that no longer match: remove the ownerReference.
    pub release: Vec<Value>,
    /// How many pods to create from the template.
    pub create: usize,
    /// Pods to delete, in deletion order.
    pub delete: Vec<Value>,
    /// The status to report (compare with the object's before writing).
    pub status: Value,
}

fn label_selector(rs: &Value, kind: Kind) -> Option<capstan_printers::LabelSelector> {
    match kind {
        Kind::ReplicaSet => selector(&rs["spec"]["selector"]),
        Kind::ReplicationController => {
            let sel = match rs.pointer("/spec/selector") {
                Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
                _ => rs
                    .pointer("/spec/template/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({})),
            };
            selector(&json!({ "matchLabels": sel }))
        }
    }
}

pub fn replicas(rs: &Value) -> usize {
    rs.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize
}

/// The ownerReference a pod of `rs` carries.
pub fn owner_ref(rs: &Value, kind: Kind) -> Value {
    json!({"apiVersion": kind.api_version(), "kind": kind.name(), "name": name(rs),
        "uid": uid(rs), "controller": true, "blockOwnerDeletion": true})
}

/// A new pod from the template (kube's GetPodFromTemplate): generateName `<name>-`.
pub fn pod_from_template(rs: &Value, kind: Kind) -> Value {
    let t = &rs["spec"]["template"];
    let mut meta = json!({"generateName": format!("{}-", name(rs)),
        "namespace": crate::namespace(rs), "ownerReferences": [owner_ref(rs, kind)]});
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = t
            .pointer(&format!("/metadata/{k}"))
            .filter(|v| !v.is_null())
        {
            meta[k] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"].clone()})
}

/// Batch sizes for `n` creates: 1, 2, 4, … (kube's slowStartBatch), so a template the API
/// refuses costs one request, not `n`.
pub fn slow_start_batches(n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut left, mut size) = (n, 1);
    while left > 0 {
        let b = size.min(left);
        out.push(b);
        left -= b;
        size *= 2;
    }
    out
}

/// One sync of `rs` against the pods of its namespace.
/// (`pods` as values or shared: `Arc<Value>` from a cache.)
pub fn reconcile<P: std::borrow::Borrow<Value>>(
    rs: &Value,
    kind: Kind,
    pods: &[P],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let Some(sel) = label_selector(rs, kind) else {
        plan.status = rs["status"].clone();
        return plan;
    };
    let me = uid(rs);
    let mut owned: Vec<&Value> = Vec::new();
    for p in pods {
        let p = p.borrow();
        let matches = !sel.is_empty() && sel.matches(labels_ref(p));
        match controller_ref(p) {
            Some(r) if r["uid"] == me => {
                if matches {
                    owned.push(p);
                } else if !deleting(rs) {
                    plan.release.push(p.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches && !deleting(rs) && !deleting(p) && pod::active(p) {
                    plan.adopt.push(p.clone());
                    owned.push(p);
                }
            }
        }
    }
    let mut active: Vec<&Value> = owned.iter().copied().filter(|p| pod::active(p)).collect();
    let want = replicas(rs);
    if !deleting(rs) {
        if active.len() < want {
            plan.create = (want - active.len()).min(BURST);
        } else if active.len() > want {
            active.sort_by(|a, b| pod::deletion_order(a, b));
            let n = (active.len() - want).min(BURST);
            plan.delete = active[..n].iter().map(|p| (*p).clone()).collect();
        }
    }
    plan.status = status(rs, &owned, now);
    plan
}

fn status(rs: &Value, owned: &[&Value], now: DateTime<Utc>) -> Value {
    let min_ready = rs
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let template_labels = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let active: Vec<&&Value> = owned.iter().filter(|p| pod::active(p)).collect();
    let fully = active
        .iter()
        .filter(|p| {
            let l = labels_ref(p);
            template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| pod::ready(p)).count();
    let avail = active
        .iter()
        .filter(|p| pod::available(p, min_ready, now))
        .count();
    let mut s = json!({"replicas": active.len(), "fullyLabeledReplicas": fully,
        "readyReplicas": ready, "availableReplicas": avail,
        "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(0))});
    if let Some(c) = rs.pointer("/status/conditions").filter(|c| !c.is_null()) {
        s["conditions"] = c.clone();
    }
    s
}

/// Whether the reported status differs from `want` (absent counters are zero, as in Go).
pub fn status_changed(rs: &Value, want: &Value) -> bool {
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .any(|k| rs["status"][k].as_i64().unwrap_or(0) != want[k].as_i64().unwrap_or(0))
}

#[cfg(test)]
mod tests;
