//! The scheduler's writes to the API server, each run as its own task so the scheduling
//! thread never waits on the network: bind (pods/binding + a Scheduled event), report a pod
//! unschedulable (PodScheduled=False, nominatedNodeName, FailedScheduling event), preempt a
//! victim (DisruptionTarget condition, graceful delete, Preempted event).

use capstan_agent::api::Api;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

const STRATEGIC: &str = "application/strategic-merge-patch+json";

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A core/v1 Event about `pod` from `component`.
pub fn event(pod: &Pod, component: &str, warning: bool, reason: &str, message: &str) -> Value {
    let t = chrono::Utc::now();
    let stamp = now();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", t.timestamp_nanos_opt().unwrap_or(0)), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": name, "uid": pod.metadata.uid,
            "apiVersion": "v1", "resourceVersion": pod.metadata.resource_version},
        "reason": reason, "message": message,
        "source": {"component": component},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "reportingComponent": component, "reportingInstance": component,
    })
}

async fn post_event(api: &Api, pod: &Pod, ev: Value) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Err(e) = api
        .call(
            "POST",
            &format!("/api/v1/namespaces/{ns}/events"),
            Some(&ev),
        )
        .await
    {
        tracing::debug!(error = %e, "scheduler event");
    }
}

fn pod_path(pod: &Pod) -> String {
    format!(
        "/api/v1/namespaces/{}/pods/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Bind `pod` to `node`; true when the API server accepted the binding.
pub async fn bind(api: &Api, component: &str, pod: &Pod, node: &str) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    match api
        .call(
            "POST",
            &format!("{}/binding", pod_path(pod)),
            Some(&binding),
        )
        .await
    {
        Ok(a) if a.code == 201 || a.code == 200 => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let msg = format!("Successfully assigned {ns}/{name} to {node}");
            post_event(api, pod, event(pod, component, false, "Scheduled", &msg)).await;
            true
        }
        Ok(a) => {
            tracing::debug!(code = a.code, pod = %name, body = %a.body, "binding refused");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, pod = %name, "binding");
            false
        }
    }
}

/// PodScheduled=False/Unschedulable with `message` (and nominatedNodeName when preempting),
/// plus a FailedScheduling event.
pub async fn unschedulable(
    api: &Api,
    component: &str,
    pod: &Pod,
    message: &str,
    nominated: Option<&str>,
) {
    let mut status = json!({"conditions": [{"type": "PodScheduled", "status": "False",
        "lastProbeTime": null, "lastTransitionTime": now(), "reason": "Unschedulable", "message": message}]});
    if let Some(n) = nominated {
        status["nominatedNodeName"] = json!(n);
    }
    let _ = api
        .patch(
            &format!("{}/status", pod_path(pod)),
            STRATEGIC,
            &json!({ "status": status }),
        )
        .await;
    post_event(
        api,
        pod,
        event(pod, component, true, "FailedScheduling", message),
    )
    .await;
}

/// PodScheduled=False/SchedulingGated: the pod waits for its schedulingGates to be removed.
pub async fn gated(api: &Api, pod: &Pod, message: &str) {
    let status = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
        "lastProbeTime": null, "lastTransitionTime": now(), "reason": "SchedulingGated", "message": message}]}});
    let _ = api
        .patch(&format!("{}/status", pod_path(pod)), STRATEGIC, &status)
        .await;
}

/// Clear a lower-priority pod's nomination (the preemptor's victims made room for it).
pub async fn clear_nomination(api: &Api, pod: &Pod) {
    let _ = api
        .patch(
            &format!("{}/status", pod_path(pod)),
            STRATEGIC,
            &json!({"status": {"nominatedNodeName": null}}),
        )
        .await;
}

/// Preempt `victim` for `preemptor`: the DisruptionTarget condition, a graceful delete (the
/// victim's own grace period; the uid precondition so a recreated pod is not hit) and a
/// Preempted event.
pub async fn preempt(api: &Api, component: &str, victim: &Pod, preemptor: &Pod, node: &str) {
    let cond = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
        "lastProbeTime": null, "lastTransitionTime": now(), "reason": "PreemptionByScheduler",
        "message": format!("{component}: preempting to accommodate a higher priority pod")}]}});
    let _ = api
        .patch(&format!("{}/status", pod_path(victim)), STRATEGIC, &cond)
        .await;
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1",
        "preconditions": {"uid": victim.metadata.uid}});
    match api.call("DELETE", &pod_path(victim), Some(&opts)).await {
        Ok(a) if a.code < 300 || a.code == 404 => {}
        Ok(a) => tracing::warn!(code = a.code, body = %a.body, "deleting a preemption victim"),
        Err(e) => tracing::warn!(error = %e, "deleting a preemption victim"),
    }
    let msg = format!(
        "Preempted by pod {} on node {node}",
        preemptor.metadata.uid.as_deref().unwrap_or_default()
    );
    post_event(
        api,
        victim,
        event(victim, component, false, "Preempted", &msg),
    )
    .await;
}
