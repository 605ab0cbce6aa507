//! Workload printers: ReplicationController, ReplicaSet, Deployment, DaemonSet, StatefulSet,
//! Job, CronJob, ControllerRevision, HorizontalPodAutoscaler, PodDisruptionBudget, Scale.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::util::{
    age, arr, containers, format_label_selector, format_labels, i, int_or_string, map, name, opt_i,
    opt_s, s, selector_string, since, time,
};
use crate::duration::human_duration;
use crate::quantity::canonical_value;

/// `spec.replicas`, defaulted to 1 as the v1 API defaults it.
fn desired(obj: &Value) -> i64 {
    opt_i(obj, "/spec/replicas").unwrap_or(1)
}

fn template_containers(obj: &Value, ptr: &str) -> (String, String) {
    containers(arr(obj, ptr))
}

pub(crate) fn replication_controller(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(desired(obj)),
        json!(i(obj, "/status/replicas")),
        json!(i(obj, "/status/readyReplicas")),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(format_labels(map(obj, "/spec/selector"))),
    ]
}

pub(crate) fn replica_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(desired(obj)),
        json!(i(obj, "/status/replicas")),
        json!(i(obj, "/status/readyReplicas")),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

pub(crate) fn deployment(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    let selector =
        selector_string(obj.pointer("/spec/selector")).unwrap_or_else(|| "<invalid>".into());
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            i(obj, "/status/readyReplicas"),
            desired(obj)
        )),
        json!(i(obj, "/status/updatedReplicas")),
        json!(i(obj, "/status/availableReplicas")),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(crate) fn daemon_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(i(obj, "/status/desiredNumberScheduled")),
        json!(i(obj, "/status/currentNumberScheduled")),
        json!(i(obj, "/status/numberReady")),
        json!(i(obj, "/status/updatedNumberScheduled")),
        json!(i(obj, "/status/numberAvailable")),
        json!(format_labels(map(obj, "/spec/template/spec/nodeSelector"))),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

pub(crate) fn stateful_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            i(obj, "/status/readyReplicas"),
            desired(obj)
        )),
        json!(age(obj, now)),
        json!(names),
        json!(images),
    ]
}

fn job_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == ty)
        .is_some_and(|c| s(c, "/status") == "True")
}

/// The Job STATUS cell (v1.32): Complete, Failed, Terminating, Suspended, FailureTarget, Running.
pub(crate) fn job_status(obj: &Value) -> &'static str {
    if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

pub(crate) fn job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = i(obj, "/status/succeeded");
    let completions = match opt_i(obj, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = opt_i(obj, "/spec/parallelism").unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time(obj, "/status/startTime"),
        time(obj, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let (names, images) = template_containers(obj, "/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(job_status(obj)),
        json!(completions),
        json!(duration),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

pub(crate) fn cron_job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = match time(obj, "/status/lastScheduleTime") {
        Some(t) => since(Some(t), now),
        None => "<none>".to_string(),
    };
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (names, images) =
        template_containers(obj, "/spec/jobTemplate/spec/template/spec/containers");
    vec![
        json!(name(obj)),
        json!(s(obj, "/spec/schedule")),
        json!(opt_s(obj, "/spec/timeZone").unwrap_or("<none>")),
        json!(suspend),
        json!(arr(obj, "/status/active").len()),
        json!(last),
        json!(age(obj, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(
            obj.pointer("/spec/jobTemplate/spec/selector")
        )),
    ]
}

pub(crate) fn controller_revision(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let controller = arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let api_version = s(r, "/apiVersion");
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let kind = s(r, "/kind");
                let gk = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                if gk.is_empty() {
                    s(r, "/name").to_string()
                } else {
                    format!("{}/{}", gk.to_lowercase(), s(r, "/name"))
                }
            },
        );
    vec![
        json!(name(obj)),
        json!(controller),
        json!(i(obj, "/revision")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn pod_disruption_budget(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let field = |ptr: &str| {
        obj.pointer(ptr)
            .filter(|v| !v.is_null())
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        json!(name(obj)),
        json!(field("/spec/minAvailable")),
        json!(field("/spec/maxUnavailable")),
        json!(i(obj, "/status/disruptionsAllowed")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn scale(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(i(obj, "/spec/replicas")),
        json!(i(obj, "/status/replicas")),
        json!(age(obj, now)),
    ]
}

fn quantity(v: &Value, ptr: &str) -> String {
    canonical_value(v.pointer(ptr)).unwrap_or_else(|| "0".to_string())
}

fn percent(v: &Value, ptr: &str) -> Option<String> {
    opt_i(v, ptr).map(|p| format!("{p}%"))
}

/// `formatHPAMetrics` over autoscaling/v2 `spec.metrics` and `status.currentMetrics`.
pub(crate) fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let unknown = || "<unknown>".to_string();
    let mut list: Vec<String> = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        let status = statuses.get(idx);
        // The status entry for the same source type, when the controller has reported one.
        let st = |field: &str| status.and_then(|st| st.get(field)).filter(|v| !v.is_null());
        let entry = match s(spec, "/type") {
            "External" | "Object" => {
                let field = if s(spec, "/type") == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = &spec[field]["target"];
                if target.get("averageValue").is_some_and(|v| !v.is_null()) {
                    let current = st(field)
                        .and_then(|x| canonical_value(x.pointer("/current/averageValue")))
                        .unwrap_or_else(unknown);
                    format!("{current}/{} (avg)", quantity(target, "/averageValue"))
                } else {
                    let current = st(field)
                        .map(|x| quantity(x, "/current/value"))
                        .unwrap_or_else(unknown);
                    format!("{current}/{}", quantity(target, "/value"))
                }
            }
            "Pods" => {
                let current = st("pods")
                    .map(|x| quantity(x, "/current/averageValue"))
                    .unwrap_or_else(unknown);
                format!("{current}/{}", quantity(spec, "/pods/target/averageValue"))
            }
            "Resource" | "ContainerResource" => {
                let field = if s(spec, "/type") == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = &spec[field];
                let rname = s(src, "/name");
                if src
                    .pointer("/target/averageValue")
                    .is_some_and(|v| !v.is_null())
                {
                    let current = st(field)
                        .map(|x| quantity(x, "/current/averageValue"))
                        .unwrap_or_else(unknown);
                    format!(
                        "{rname}: {current}/{}",
                        quantity(src, "/target/averageValue")
                    )
                } else {
                    let current = st(field)
                        .and_then(|x| percent(x, "/current/averageUtilization"))
                        .unwrap_or_else(unknown);
                    let target = percent(src, "/target/averageUtilization")
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{rname}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

pub(crate) fn horizontal_pod_autoscaler(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(obj, "/spec/scaleTargetRef/kind"),
        s(obj, "/spec/scaleTargetRef/name")
    );
    let metrics = match opt_i(obj, "/spec/targetCPUUtilizationPercentage") {
        // autoscaling/v1 shape: converted to one cpu Resource metric.
        Some(target) if obj.pointer("/spec/metrics").is_none() => {
            let current = percent(obj, "/status/currentCPUUtilizationPercentage")
                .unwrap_or_else(|| "<unknown>".to_string());
            format!("cpu: {current}/{target}%")
        }
        _ => hpa_metrics(
            arr(obj, "/spec/metrics"),
            arr(obj, "/status/currentMetrics"),
        ),
    };
    let min_pods =
        opt_i(obj, "/spec/minReplicas").map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        json!(name(obj)),
        json!(reference),
        json!(metrics),
        json!(min_pods),
        json!(i(obj, "/spec/maxReplicas")),
        json!(i(obj, "/status/currentReplicas")),
        json!(age(obj, now)),
    ]
}
