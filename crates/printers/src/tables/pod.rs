//! Pod rows: kubectl's READY / STATUS / RESTARTS logic (`printPod` in kube-apiserver v1.32).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::util::{age, arr, b, i, name, opt_s, s, since, time};

fn is_restartable_init(spec_init: &[Value], container_name: &str) -> bool {
    spec_init
        .iter()
        .find(|c| s(c, "/name") == container_name)
        .is_some_and(|c| s(c, "/restartPolicy") == "Always")
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == ty)
        .is_some_and(|c| s(c, "/status") == "True")
}

fn has_pod_ready_condition(pod: &Value) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
}

/// The latest of `current` and the container's last termination time.
fn later(current: Option<DateTime<Utc>>, container: &Value) -> Option<DateTime<Utc>> {
    if container.pointer("/lastState/terminated").is_none() {
        return current;
    }
    match (current, time(container, "/lastState/terminated/finishedAt")) {
        (Some(c), Some(t)) if t > c => Some(t),
        (None, Some(t)) => Some(t),
        (c, _) => c,
    }
}

/// The pod's READY, STATUS and RESTARTS cells.
/// Public so other crates (e.g. `describe`-style output) can reuse kubectl's pod status logic.
pub fn ready_status_restarts(pod: &Value, now: DateTime<Utc>) -> (String, String, String) {
    let spec_init = arr(pod, "/spec/initContainers");
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total = arr(pod, "/spec/containers").len();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;

    let phase = s(pod, "/status/phase");
    let mut reason = phase.to_string();
    if let Some(r) = opt_s(pod, "/status/reason").filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    for c in arr(pod, "/status/conditions") {
        if s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    total += spec_init
        .iter()
        .filter(|c| s(c, "/restartPolicy") == "Always")
        .count();

    let init_statuses = arr(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (idx, container) in init_statuses.iter().enumerate() {
        restarts += i(container, "/restartCount");
        last_restart = later(last_restart, container);
        let restartable = is_restartable_init(spec_init, s(container, "/name"));
        if restartable {
            restartable_init_restarts += i(container, "/restartCount");
            last_restartable_init_restart = later(last_restartable_init_restart, container);
        }
        let terminated = container.pointer("/state/terminated");
        let waiting_reason = opt_s(container, "/state/waiting/reason").unwrap_or("");
        if terminated.is_some() && i(container, "/state/terminated/exitCode") == 0 {
            continue;
        } else if restartable && b(container, "/started") {
            if b(container, "/ready") {
                ready += 1;
            }
            continue;
        } else if terminated.is_some() {
            let treason = s(container, "/state/terminated/reason");
            reason = if treason.is_empty() {
                let signal = i(container, "/state/terminated/signal");
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!(
                        "Init:ExitCode:{}",
                        i(container, "/state/terminated/exitCode")
                    )
                }
            } else {
                format!("Init:{treason}")
            };
            initializing = true;
        } else if container.pointer("/state/waiting").is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
            initializing = true;
        } else {
            reason = format!("Init:{}/{}", idx, spec_init.len());
            initializing = true;
        }
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += i(container, "/restartCount");
            last_restart = later(last_restart, container);
            let waiting_reason = s(container, "/state/waiting/reason");
            let terminated = container.pointer("/state/terminated").is_some();
            let treason = s(container, "/state/terminated/reason");
            if container.pointer("/state/waiting").is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated && !treason.is_empty() {
                reason = treason.to_string();
            } else if terminated {
                let signal = i(container, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", i(container, "/state/terminated/exitCode"))
                };
            } else if b(container, "/ready") && container.pointer("/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_pod_ready_condition(pod) {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && s(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_str)
}

pub(crate) fn cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (ready, status, restarts) = ready_status_restarts(pod, now);
    let mut ip = s(pod, "/status/podIPs/0/ip");
    if ip.is_empty() {
        ip = s(pod, "/status/podIP");
    }
    let or_none = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };
    let gates = arr(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(pod, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = s(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| s(c, "/type") == ty)
                    .is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(name(pod)),
        json!(ready),
        json!(status),
        json!(restarts),
        json!(age(pod, now)),
        json!(or_none(ip)),
        json!(or_none(s(pod, "/spec/nodeName"))),
        json!(or_none(s(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

/// Row conditions: `Completed` for Succeeded and Failed pods (kubectl hides them with
/// `--show-all=false` in old versions; kept for fidelity).
pub(crate) fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match s(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}
