//! The pod garbage collector's decisions (kube 1.32's pkg/controller/podgc): terminated pods
//! beyond the threshold (evicted first, then oldest), pods bound to nodes gone for the
//! quarantine, unscheduled pods being deleted; and the Failed status with the DisruptionTarget
//! condition set before a non-terminal pod is force-deleted.

use crate::{deleting, name, str_at, time_at};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

/// How long a node must be missing before its pods are deleted (kube's quarantineTime).
pub const QUARANTINE_SECS: i64 = 40;

/// How often the collector runs (kube's gcCheckPeriod).
pub const CHECK_PERIOD_SECS: u64 = 20;

/// Default `--terminated-pod-gc-threshold`.
pub const DEFAULT_THRESHOLD: i64 = 12500;

/// Neither Pending, Running nor Unknown (kube's isPodTerminated).
pub fn terminated(p: &Value) -> bool {
    !matches!(
        str_at(p, "/status/phase"),
        "Pending" | "Running" | "Unknown" | ""
    )
}

fn evicted(p: &Value) -> bool {
    str_at(p, "/status/phase") == "Failed" && str_at(p, "/status/reason") == "Evicted"
}

/// kube's byEvictionAndCreationTimestamp: evicted pods first, then oldest, then by name.
fn eviction_then_age(a: &Value, b: &Value) -> Ordering {
    let t = |p: &Value| time_at(p, "/metadata/creationTimestamp");
    evicted(b)
        .cmp(&evicted(a))
        .then_with(|| t(a).cmp(&t(b)))
        .then_with(|| name(a).cmp(name(b)))
}

/// The terminated pods to delete so that at most `threshold` remain (0 or less: none).
pub fn over_threshold(pods: &[Value], threshold: i64) -> Vec<&Value> {
    if threshold <= 0 {
        return Vec::new();
    }
    let mut done: Vec<&Value> = pods.iter().filter(|p| terminated(p)).collect();
    let excess = done.len() as i64 - threshold;
    if excess <= 0 {
        return Vec::new();
    }
    done.sort_by(|a, b| eviction_then_age(a, b));
    done.truncate(excess as usize);
    done
}

/// The nodes pods are bound to that are not in `nodes`.
pub fn missing_nodes(pods: &[Value], nodes: &HashSet<String>) -> BTreeSet<String> {
    pods.iter()
        .map(|p| str_at(p, "/spec/nodeName"))
        .filter(|n| !n.is_empty() && !nodes.contains(*n))
        .map(str::to_string)
        .collect()
}

/// Nodes missing since when (kube's delaying node queue): a node must stay missing for the
/// quarantine before it is confirmed gone.
#[derive(Debug, Default, Clone)]
pub struct Quarantine {
    since: HashMap<String, DateTime<Utc>>,
}

impl Quarantine {
    /// Record what is missing now; nodes back (or no longer referenced) leave the quarantine.
    pub fn observe(&mut self, missing: &BTreeSet<String>, now: DateTime<Utc>) {
        self.since.retain(|n, _| missing.contains(n));
        for n in missing {
            self.since.entry(n.clone()).or_insert(now);
        }
    }

    /// Nodes missing for the whole quarantine (to confirm with a live GET).
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<String> {
        let q = chrono::Duration::seconds(QUARANTINE_SECS);
        let mut v: Vec<String> = self
            .since
            .iter()
            .filter(|(_, t)| now - **t >= q)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// When the next node leaves quarantine, if any is in it.
    pub fn next_expiry(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        let q = chrono::Duration::seconds(QUARANTINE_SECS);
        self.since
            .values()
            .map(|t| (*t + q - now).max(chrono::Duration::zero()))
            .min()
    }
}

/// Pods bound to a node confirmed gone.
pub fn orphaned<'a>(pods: &'a [Value], gone: &HashSet<String>) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| gone.contains(str_at(p, "/spec/nodeName")))
        .collect()
}

/// Pods never scheduled that are being deleted (kube's gcUnscheduledTerminating).
pub fn unscheduled_terminating(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| deleting(p) && str_at(p, "/spec/nodeName").is_empty())
        .collect()
}

/// The condition orphaned pods get before their deletion.
pub fn orphan_condition() -> (&'static str, &'static str) {
    ("DeletionByPodGC", "PodGC: node no longer exists")
}

/// The status to write before a force delete (kube's markFailedAndDeletePodWithCondition):
/// None for a pod already terminal; else phase Failed and, when given, the DisruptionTarget
/// condition (reason, message) set as kube's UpdatePodCondition does (lastTransitionTime
/// moves only when the status changes).
pub fn failed_status(
    pod: &Value,
    condition: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Option<Value> {
    if terminated(pod) {
        return None;
    }
    let mut status = pod.get("status").cloned().unwrap_or_else(|| json!({}));
    status["phase"] = json!("Failed");
    if let Some((reason, message)) = condition {
        let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut conds = status["conditions"].as_array().cloned().unwrap_or_default();
        let new = json!({"type": "DisruptionTarget", "status": "True", "reason": reason,
            "message": message, "lastTransitionTime": stamp});
        match conds.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
            Some(c) => {
                let moved = c["status"] != "True";
                let t = if moved {
                    json!(stamp)
                } else {
                    c["lastTransitionTime"].clone()
                };
                *c = new;
                c["lastTransitionTime"] = t;
            }
            None => conds.push(new),
        }
        status["conditions"] = json!(conds);
    }
    Some(status)
}

#[cfg(test)]
mod tests;
