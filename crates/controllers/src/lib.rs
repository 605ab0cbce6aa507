//! The controllers' decisions as pure functions over JSON values (objects as the API serves
//! them): given an object, the pods or dependents it owns and `now`, return what to do. The
//! I/O edge (caches, work queues, API writes) lives in `crates/capstan/src/controllers/`.
//!
//! * [`replicaset`]: ReplicaSet and ReplicationController (adopt, release, create, delete in
//!   kube's ActivePods order, status).
//! * [`daemonset`]: DaemonSet (a pod per eligible node, RollingUpdate and OnDelete, status).
//! * [`deployment`]: Deployment (its ReplicaSets by pod-template-hash, RollingUpdate and
//!   Recreate, revisions, history limit, status and conditions).
//! * [`gc`]: the garbage collector's decision for a dependent and for an owner being deleted
//!   with the `foregroundDeletion` or `orphan` finalizer.
//! * [`job`]: Job (completions, parallelism, backoff, deadline, Indexed, conditions, ttl).
//! * [`disruption`]: PodDisruptionBudget status.
//! * [`nodelifecycle`]: node health from heartbeats, condition taints, zone disruption, and
//!   the taint manager's NoExecute evictions.
//! * [`namespace`]: namespace deletion (content to empty, what remains, status conditions,
//!   the `kubernetes` finalizer).
//! * [`podgc`]: the pod garbage collector (terminated over threshold, orphaned, unscheduled
//!   terminating).
//! * [`cronjob`]: CronJob (a Job per due time of the schedule, deadlines, concurrency
//!   policies, history limits, status, the requeue at the next due time).
//! * [`servicelb`]: LoadBalancer ingress IPs from a pool (service-lb).
//! * [`statefulset`]: StatefulSet (ordered pods with stable names, ControllerRevisions,
//!   RollingUpdate with partition, OnDelete, claims, status).
//! * [`endpoints`]: Endpoints of a service with a selector (ready and not-ready addresses,
//!   target ports per pod, subsets repacked by port set), and what it shares with
//!   [`endpointslice`]: EndpointSlices (at most 100 endpoints each, updated in place,
//!   ready/serving/terminating conditions).

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod pod;
pub mod podgc;
pub mod replicaset;
pub mod servicelb;
pub mod statefulset;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Finalizer the API server adds for propagationPolicy=Foreground.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer the API server adds for propagationPolicy=Orphan.
pub const ORPHAN: &str = "orphan";

pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

pub fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name")
}

pub fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace")
}

pub fn uid(v: &Value) -> &str {
    str_at(v, "/metadata/uid")
}

pub fn time_at(v: &Value, ptr: &str) -> Option<DateTime<Utc>> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub fn deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

pub fn finalizers(v: &Value) -> Vec<&str> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub fn owner_refs(v: &Value) -> &[Value] {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The ownerReference with controller: true, if any.
pub fn controller_ref(v: &Value) -> Option<&Value> {
    owner_refs(v)
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// A label selector as JSON (`matchLabels`/`matchExpressions`; RC's plain map is given as
/// `{"matchLabels": map}` by the caller).
pub fn selector(v: &Value) -> Option<capstan_printers::LabelSelector> {
    capstan_printers::LabelSelector::from_json(v).ok()
}

/// The object's labels, borrowed (an empty map when it has none).
pub fn labels_ref(v: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

pub fn labels(v: &Value) -> serde_json::Map<String, Value> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}
