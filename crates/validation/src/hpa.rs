//! HorizontalPodAutoscaler validation (autoscaling/v1 and v2): scale target, replica
//! bounds, metrics and scaling behavior.

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::names::is_path_segment_name;
use crate::util::{arr, get, has, int, s, sd};

type Errs = Vec<FieldError>;

fn validate_scale_target(r: &Value, path: &str, errs: &mut Errs) {
    let kind = sd(r, "kind");
    if kind.is_empty() {
        errs.push(FieldError::required(child(path, "kind"), ""));
    } else {
        for msg in is_path_segment_name(kind) {
            errs.push(FieldError::invalid(child(path, "kind"), kind, &msg));
        }
    }
    let name = sd(r, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        for msg in is_path_segment_name(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, &msg));
        }
    }
}

fn validate_replica_bounds(spec: &Value, errs: &mut Errs) {
    let min = int(spec, "minReplicas");
    if let Some(m) = min.filter(|&m| m < 1) {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            m,
            "must be greater than or equal to 1",
        ));
    }
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
}

fn validate_metric_target(t: &Value, path: &str, errs: &mut Errs) {
    const TYPES: &[&str] = &["AverageValue", "Utilization", "Value"];
    match sd(t, "type") {
        "" => errs.push(FieldError::required(
            child(path, "type"),
            "must specify a metric target type",
        )),
        ty if !TYPES.contains(&ty) => {
            errs.push(FieldError::not_supported(child(path, "type"), ty, TYPES))
        }
        "Utilization" => match int(t, "averageUtilization") {
            None => errs.push(FieldError::required(
                child(path, "averageUtilization"),
                "must set either a target value or averageUtilization",
            )),
            Some(u) if u <= 0 => errs.push(FieldError::invalid(
                child(path, "averageUtilization"),
                u,
                "must be greater than 0",
            )),
            _ => {}
        },
        "Value" if !has(t, "value") => errs.push(FieldError::required(
            child(path, "value"),
            "must set either a target value for metric or a per-pod target",
        )),
        "AverageValue" if !has(t, "averageValue") => errs.push(FieldError::required(
            child(path, "averageValue"),
            "must set either a target value for metric or a per-pod target",
        )),
        _ => {}
    }
}

pub(crate) fn validate_hpa(hpa: &Value, version: &str, errs: &mut Errs) {
    let spec = get(hpa, "spec");
    validate_scale_target(get(spec, "scaleTargetRef"), "spec.scaleTargetRef", errs);
    validate_replica_bounds(spec, errs);
    if version == "v1" {
        if let Some(t) = int(spec, "targetCPUUtilizationPercentage").filter(|&t| t < 1) {
            errs.push(FieldError::invalid(
                "spec.targetCPUUtilizationPercentage",
                t,
                "must be greater than or equal to 1",
            ));
        }
        return;
    }
    const TYPES: &[&str] = &[
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (i, m) in arr(spec, "metrics").iter().enumerate() {
        let p = index("spec.metrics", i);
        let ty = sd(m, "type");
        let sub = match ty {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            "" => {
                errs.push(FieldError::required(
                    child(&p, "type"),
                    "must specify a metric source type",
                ));
                continue;
            }
            other => {
                errs.push(FieldError::not_supported(child(&p, "type"), other, TYPES));
                continue;
            }
        };
        let src = get(m, sub);
        let sp = child(&p, sub);
        if src.is_null() {
            errs.push(FieldError::required(&sp, &format!("must populate information for the given metric source (only allowed when type is {ty})")));
            continue;
        }
        match sub {
            "resource" | "containerResource" => {
                if sd(src, "name").is_empty() {
                    errs.push(FieldError::required(
                        child(&sp, "name"),
                        "must specify a resource name",
                    ));
                }
                if sub == "containerResource" && sd(src, "container").is_empty() {
                    errs.push(FieldError::required(
                        child(&sp, "container"),
                        "must specify a container",
                    ));
                }
            }
            _ => {
                if sd(get(src, "metric"), "name").is_empty() {
                    errs.push(FieldError::required(
                        child(&child(&sp, "metric"), "name"),
                        "must specify a metric name",
                    ));
                }
            }
        }
        validate_metric_target(get(src, "target"), &child(&sp, "target"), errs);
    }
    let b = get(spec, "behavior");
    for dir in ["scaleUp", "scaleDown"] {
        let r = get(b, dir);
        let rp = format!("spec.behavior.{dir}");
        if let Some(w) = int(r, "stabilizationWindowSeconds").filter(|w| !(0..=3600).contains(w)) {
            errs.push(FieldError::invalid(
                child(&rp, "stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
        if let Some(sp) = s(r, "selectPolicy") {
            if !["Disabled", "Max", "Min"].contains(&sp) {
                errs.push(FieldError::not_supported(
                    child(&rp, "selectPolicy"),
                    sp,
                    &["Disabled", "Max", "Min"],
                ));
            }
        }
        for (i, pol) in arr(r, "policies").iter().enumerate() {
            let pp = index(&child(&rp, "policies"), i);
            if !["Pods", "Percent"].contains(&sd(pol, "type")) {
                errs.push(FieldError::not_supported(
                    child(&pp, "type"),
                    sd(pol, "type"),
                    &["Percent", "Pods"],
                ));
            }
            if int(pol, "value").unwrap_or(0) <= 0 {
                errs.push(FieldError::invalid(
                    child(&pp, "value"),
                    int(pol, "value").unwrap_or(0),
                    "must be greater than zero",
                ));
            }
            let period = int(pol, "periodSeconds").unwrap_or(0);
            if !(1..=1800).contains(&period) {
                errs.push(FieldError::invalid(
                    child(&pp, "periodSeconds"),
                    period,
                    "must be greater than zero and less than or equal to 1800",
                ));
            }
        }
    }
}
