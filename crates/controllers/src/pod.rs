//! Pod predicates the controllers share (kube's controller_utils / podutil).

use crate::{deleting, str_at, time_at};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::cmp::Ordering;

pub fn phase(p: &Value) -> &str {
    str_at(p, "/status/phase")
}

/// Not terminated and not being deleted (kube's IsPodActive).
pub fn active(p: &Value) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed") && !deleting(p)
}

fn ready_condition(p: &Value) -> Option<&Value> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "Ready")
}

pub fn ready(p: &Value) -> bool {
    ready_condition(p).is_some_and(|c| c["status"] == "True")
}

/// Since when the pod has been Ready.
pub fn ready_since(p: &Value) -> Option<DateTime<Utc>> {
    let c = ready_condition(p).filter(|c| c["status"] == "True")?;
    time_at(c, "/lastTransitionTime")
}

/// Ready for at least `min_ready_seconds` (kube's IsPodAvailable).
pub fn available(p: &Value, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    if !ready(p) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(p).is_some_and(|t| t + chrono::Duration::seconds(min_ready_seconds) <= now)
}

fn restarts(p: &Value) -> i64 {
    p.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn phase_rank(p: &Value) -> u8 {
    match phase(p) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    }
}

/// kube's ActivePods ordering: the pods to delete first sort first — unassigned before
/// assigned, Pending before Unknown before Running, not ready before ready, ready for less
/// time before more, more restarts before fewer, newer before older.
pub fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let assigned = |p: &Value| !str_at(p, "/spec/nodeName").is_empty();
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(ready(a).cmp(&ready(b)))
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) if ready(a) && ready(b) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let t = |p: &Value| time_at(p, "/metadata/creationTimestamp");
            t(b).cmp(&t(a))
        })
}

/// Whether toleration `t` tolerates `taint` (kube's Toleration.ToleratesTaint).
pub fn toleration_matches(t: &Value, taint: &Value) -> bool {
    let te = str_at(t, "/effect");
    if !te.is_empty() && te != str_at(taint, "/effect") {
        return false;
    }
    let (tk, k) = (str_at(t, "/key"), str_at(taint, "/key"));
    match str_at(t, "/operator") {
        "Exists" => tk.is_empty() || tk == k,
        _ => tk == k && str_at(t, "/value") == str_at(taint, "/value"),
    }
}
