//! DaemonSet (kube's pkg/controller/daemon): one pod per eligible node — nodes matching the
//! template's nodeSelector and required node affinity whose NoSchedule/NoExecute taints the
//! template (plus the daemon tolerations kube adds) tolerates; pods pinned with required
//! node affinity `matchFields metadata.name In [node]` for the scheduler to bind; extra and
//! misscheduled pods deleted; RollingUpdate within maxUnavailable, OnDelete; status.

use crate::{controller_ref, deleting, labels, name, pod, str_at, uid};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The label carrying the template's hash on a DaemonSet's pods.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// What one sync of a DaemonSet should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Nodes that get a new pod.
    pub create: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<Value>,
    /// The status to report.
    pub status: Value,
}

/// The tolerations kube adds to every daemon pod.
pub fn daemon_tolerations() -> Vec<Value> {
    let mut v = Vec::new();
    for k in ["not-ready", "unreachable"] {
        v.push(json!({"key": format!("node.kubernetes.io/{k}"), "operator": "Exists", "effect": "NoExecute"}));
    }
    for k in [
        "disk-pressure",
        "memory-pressure",
        "pid-pressure",
        "unschedulable",
    ] {
        v.push(json!({"key": format!("node.kubernetes.io/{k}"), "operator": "Exists", "effect": "NoSchedule"}));
    }
    v
}

pub fn template_hash(ds: &Value) -> String {
    crate::deployment::pod_template_hash(&ds["spec"]["template"], 0)
}

fn tolerates(tols: &[Value], taint: &Value) -> bool {
    tols.iter()
        .any(|t| crate::pod::toleration_matches(t, taint))
}

fn expr_matches(e: &Value, get: &dyn Fn(&str) -> Option<String>) -> bool {
    let got = get(str_at(e, "/key"));
    let vals: Vec<&str> = e["values"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match str_at(e, "/operator") {
        "In" => got.is_some_and(|g| vals.contains(&g.as_str())),
        "NotIn" => !got.is_some_and(|g| vals.contains(&g.as_str())),
        "Exists" => got.is_some(),
        "DoesNotExist" => got.is_none(),
        "Gt" | "Lt" => {
            let (Some(g), Some(v)) = (
                got.and_then(|g| g.parse::<i64>().ok()),
                vals.first().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if str_at(e, "/operator") == "Gt" {
                g > v
            } else {
                g < v
            }
        }
        _ => false,
    }
}

/// Whether `node` should run a pod of `ds` (kube's NodeShouldRunDaemonPod, without resources).
pub fn eligible(ds: &Value, node: &Value) -> bool {
    let spec = &ds["spec"]["template"]["spec"];
    let nl = labels(node);
    if let Some(sel) = spec["nodeSelector"].as_object() {
        if !sel.iter().all(|(k, v)| nl.get(k) == Some(v)) {
            return false;
        }
    }
    let label = |k: &str| nl.get(k).and_then(Value::as_str).map(str::to_string);
    let field = |k: &str| (k == "metadata.name").then(|| name(node).to_string());
    if let Some(terms) = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
    {
        let term_ok = |t: &Value| {
            let ex = t["matchExpressions"].as_array().cloned().unwrap_or_default();
            let fx = t["matchFields"].as_array().cloned().unwrap_or_default();
            (!ex.is_empty() || !fx.is_empty())
                && ex.iter().all(|e| expr_matches(e, &label))
                && fx.iter().all(|e| expr_matches(e, &field))
        };
        if !terms.iter().any(term_ok) {
            return false;
        }
    }
    let mut tols = spec["tolerations"].as_array().cloned().unwrap_or_default();
    tols.extend(daemon_tolerations());
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter(|t| matches!(str_at(t, "/effect"), "NoSchedule" | "NoExecute"))
                .all(|t| tolerates(&tols, t))
        })
        .unwrap_or(true)
}

/// The node a daemon pod is for: its nodeName, else its matchFields metadata.name.
pub fn pod_node(p: &Value) -> String {
    let n = str_at(p, "/spec/nodeName");
    if !n.is_empty() {
        return n.to_string();
    }
    p.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|t| t["matchFields"].as_array().cloned().unwrap_or_default())
        .find(|f| f["key"] == "metadata.name" && f["operator"] == "In")
        .and_then(|f| f["values"][0].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn owner_ref(ds: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name(ds), "uid": uid(ds),
        "controller": true, "blockOwnerDeletion": true})
}

/// A new pod for `node` (generateName `<name>-`, the hash label, the node affinity and the
/// daemon tolerations).
pub fn pod_for_node(ds: &Value, node: &str) -> Value {
    let t = &ds["spec"]["template"];
    let mut meta = json!({"generateName": format!("{}-", name(ds)),
        "namespace": crate::namespace(ds), "ownerReferences": [owner_ref(ds)]});
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = t
            .pointer(&format!("/metadata/{k}"))
            .filter(|v| !v.is_null())
        {
            meta[k] = v.clone();
        }
    }
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    meta["labels"][HASH_LABEL] = json!(template_hash(ds));
    let mut spec = t["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}]});
    let mut tols = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for d in daemon_tolerations() {
        if !tols
            .iter()
            .any(|t| t["key"] == d["key"] && t["effect"] == d["effect"])
        {
            tols.push(d);
        }
    }
    spec["tolerations"] = json!(tols);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

fn max_unavailable(ds: &Value, desired: i64) -> i64 {
    let v = ds
        .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
        .cloned()
        .unwrap_or(json!(1));
    let n = match &v {
        Value::Number(n) => n.as_i64().unwrap_or(1),
        Value::String(s) if s.ends_with('%') => {
            s[..s.len() - 1].parse::<i64>().unwrap_or(0) * desired / 100
        }
        Value::String(s) => s.parse().unwrap_or(1),
        _ => 1,
    };
    n.max(1)
}

/// One sync of `ds` against all nodes and the pods of its namespace.
pub fn reconcile<P: std::borrow::Borrow<Value>>(
    ds: &Value,
    nodes: &[Value],
    pods: &[P],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let me = uid(ds);
    let hash = template_hash(ds);
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let mut by_node: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in pods {
        let p = p.borrow();
        if controller_ref(p).is_some_and(|r| r["uid"] == me) && pod::active(p) {
            by_node.entry(pod_node(p)).or_default().push(p);
        }
    }
    let on_delete = str_at(ds, "/spec/updateStrategy/type") == "OnDelete";
    let (mut desired, mut current, mut mis, mut ready, mut avail, mut updated) = (0, 0, 0, 0, 0, 0);
    let mut old_available: Vec<&Value> = Vec::new();
    let mut unavailable = 0i64;
    for n in nodes {
        let node = name(n).to_string();
        let mut mine = by_node.remove(&node).unwrap_or_default();
        if eligible(ds, n) {
            desired += 1;
            if mine.is_empty() {
                plan.create.push(node);
                unavailable += 1;
                continue;
            }
            current += 1;
            // Keep the oldest; delete the rest.
            mine.sort_by_key(|p| crate::time_at(p, "/metadata/creationTimestamp"));
            for extra in &mine[1..] {
                plan.delete.push((*extra).clone());
            }
            let p = mine[0];
            let is_avail = pod::available(p, min_ready, now);
            ready += pod::ready(p) as i64;
            avail += is_avail as i64;
            let new = labels(p).get(HASH_LABEL).and_then(Value::as_str) == Some(hash.as_str());
            updated += new as i64;
            if !is_avail {
                unavailable += 1;
            }
            if !new && !on_delete {
                if is_avail {
                    old_available.push(p);
                } else {
                    plan.delete.push(p.clone());
                }
            }
        } else if !mine.is_empty() {
            mis += 1;
            plan.delete.extend(mine.into_iter().cloned());
        }
    }
    // Pods for nodes that are gone.
    for (_, ps) in by_node {
        plan.delete.extend(ps.into_iter().cloned());
    }
    if deleting(ds) {
        plan.create.clear();
        plan.delete.clear();
    }
    let budget = max_unavailable(ds, desired) - unavailable;
    if budget > 0 && !deleting(ds) {
        plan.delete
            .extend(old_available.into_iter().take(budget as usize).cloned());
    }
    plan.status = json!({"currentNumberScheduled": current, "numberMisscheduled": mis,
        "desiredNumberScheduled": desired, "numberReady": ready, "numberAvailable": avail,
        "numberUnavailable": (desired - avail).max(0), "updatedNumberScheduled": updated,
        "observedGeneration": ds.pointer("/metadata/generation").cloned().unwrap_or(json!(0))});
    plan
}

/// Whether the reported status differs from `want` (absent counters are zero).
pub fn status_changed(ds: &Value, want: &Value) -> bool {
    want.as_object()
        .into_iter()
        .flatten()
        .any(|(k, v)| ds["status"][k].as_i64().unwrap_or(0) != v.as_i64().unwrap_or(0))
}

#[cfg(test)]
mod tests;
