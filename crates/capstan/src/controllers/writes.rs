//! The controllers' writes: events about an object, deletes with a uid precondition and a
//! propagation policy, force deletes (grace 0), merge patches.

use capstan_agent::api::Api;
use capstan_controllers::{name, namespace, uid};
use serde_json::{json, Value};

/// A core/v1 Event about `obj` (kind/apiVersion given, lists strip them) from `component`.
pub async fn event(
    api: &Api,
    obj: &Value,
    (kind, api_version): (&str, &str),
    component: &str,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let t = chrono::Utc::now();
    let stamp = t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let ns = namespace(obj);
    let ns = if ns.is_empty() { "default" } else { ns };
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{:x}", name(obj), t.timestamp_nanos_opt().unwrap_or(0)), "namespace": ns},
        "involvedObject": {"kind": kind, "namespace": ns, "name": name(obj), "uid": uid(obj),
            "apiVersion": api_version, "resourceVersion": obj["metadata"]["resourceVersion"]},
        "reason": reason, "message": message,
        "source": {"component": component},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "reportingComponent": component, "reportingInstance": component,
    });
    if let Err(e) = api
        .call(
            "POST",
            &format!("/api/v1/namespaces/{ns}/events"),
            Some(&ev),
        )
        .await
    {
        tracing::debug!(error = %e, "controller event");
    }
}

/// DELETE `path` if it is still the object with `uid`; true when deleted, being deleted or
/// already gone.
pub async fn delete(api: &Api, path: &str, uid: &str, propagation: Option<&str>) -> bool {
    let mut opts =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}});
    if let Some(p) = propagation {
        opts["propagationPolicy"] = json!(p);
    }
    match api.call("DELETE", path, Some(&opts)).await {
        Ok(a) if a.code < 300 || a.code == 404 => true,
        Ok(a) => {
            tracing::debug!(code = a.code, %path, body = %a.body, "controller delete refused");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, %path, "controller delete");
            false
        }
    }
}

/// DELETE `path` with grace 0 (a force delete) if it is still the object with `uid`; true
/// when deleted or already gone.
pub async fn force_delete(api: &Api, path: &str, uid: &str) -> bool {
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
        "preconditions": {"uid": uid}});
    match api.call("DELETE", path, Some(&opts)).await {
        Ok(a) if a.code < 300 || a.code == 404 => true,
        Ok(a) => {
            tracing::debug!(code = a.code, %path, body = %a.body, "controller force delete refused");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, %path, "controller force delete");
            false
        }
    }
}

/// A JSON merge patch; true on success.
pub async fn merge(api: &Api, path: &str, patch: &Value) -> bool {
    match api.patch(path, "application/merge-patch+json", patch).await {
        Ok(a) if a.code < 300 => true,
        Ok(a) => {
            tracing::debug!(code = a.code, %path, body = %a.body, "controller patch refused");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, %path, "controller patch");
            false
        }
    }
}

/// Set `obj`'s ownerReferences to `refs`, if it is still the object with its uid and
/// resourceVersion (a merge patch replaces the whole list).
pub async fn set_owner_refs(api: &Api, path: &str, obj: &Value, refs: Vec<Value>) -> bool {
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid(obj),
        "resourceVersion": obj["metadata"]["resourceVersion"]}});
    merge(api, path, &patch).await
}
