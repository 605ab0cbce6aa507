//! Workload validation: Deployment, ReplicaSet, ReplicationController, DaemonSet,
//! StatefulSet, Job and CronJob (spec rules, template rules, update immutability).

use serde_json::Value;

use crate::cron::{load_location, parse_schedule};
use crate::errors::{child, FieldError};
use crate::meta::{selector_is_empty, selector_matches, validate_label_selector, validate_labels};
use crate::pod::{strip_nulls, validate_pod_template};
use crate::util::{get, has, int, is_percent, obj, s, sd};

type Errs = Vec<FieldError>;

fn nonneg(spec: &Value, k: &str, path: &str, errs: &mut Errs) {
    if let Some(n) = int(spec, k).filter(|&n| n < 0) {
        errs.push(FieldError::invalid(
            child(path, k),
            n,
            "must be greater than or equal to 0",
        ));
    }
}

/// `ValidatePositiveIntOrPercent` + `IsNotMoreThan100Percent`.
pub(crate) fn validate_int_or_percent(v: &Value, path: &str, errs: &mut Errs) {
    match v {
        Value::Null => {}
        Value::Number(n) => {
            if n.as_i64().is_some_and(|n| n < 0) {
                errs.push(FieldError::invalid(
                    path,
                    v.clone(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        Value::String(st) => {
            if !is_percent(v) {
                errs.push(FieldError::invalid(path, st.as_str(), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
            } else if st
                .trim_end_matches('%')
                .parse::<u64>()
                .is_ok_and(|p| p > 100)
            {
                errs.push(FieldError::invalid(
                    path,
                    st.as_str(),
                    "must not be greater than 100%",
                ));
            }
        }
        _ => errs.push(FieldError::invalid(
            path,
            v.clone(),
            "must be an integer or percentage (e.g '5%')",
        )),
    }
}

fn is_zero(v: &Value) -> bool {
    v.as_i64() == Some(0) || v.as_str() == Some("0%") || v.is_null()
}

fn restart_policy_always(tpl: &Value, path: &str, errs: &mut Errs) {
    let p = sd(get(tpl, "spec"), "restartPolicy");
    if !p.is_empty() && p != "Always" {
        errs.push(FieldError::not_supported(
            child(path, "spec.restartPolicy"),
            p,
            &["Always"],
        ));
    }
    if has(get(tpl, "spec"), "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            child(path, "spec.activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

/// Selector + template rules shared by the apps/v1 kinds.
fn validate_selector_and_template(spec: &Value, kind: &str, errs: &mut Errs) {
    let sel = get(spec, "selector");
    if sel.is_null() {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        validate_label_selector(sel, "spec.selector", errs);
        if selector_is_empty(sel) {
            errs.push(FieldError::invalid(
                "spec.selector",
                sel.clone(),
                &format!("empty selector is invalid for {kind}"),
            ));
        }
    }
    let tpl = get(spec, "template");
    if tpl.is_null() {
        errs.push(FieldError::required("spec.template", ""));
        return;
    }
    let labels = get(get(tpl, "metadata"), "labels");
    if !sel.is_null() && !selector_is_empty(sel) && !selector_matches(sel, labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            labels.clone(),
            "`selector` does not match template `labels`",
        ));
    }
    validate_pod_template(tpl, "spec.template", errs);
    restart_policy_always(tpl, "spec.template", errs);
}

fn validate_rolling(ru: &Value, path: &str, errs: &mut Errs) {
    let mu = get(ru, "maxUnavailable");
    let ms = get(ru, "maxSurge");
    validate_int_or_percent(mu, &child(path, "maxUnavailable"), errs);
    validate_int_or_percent(ms, &child(path, "maxSurge"), errs);
    if !ru.is_null() && is_zero(mu) && is_zero(ms) && !(mu.is_null() && ms.is_null()) {
        errs.push(FieldError::invalid(
            child(path, "maxUnavailable"),
            mu.clone(),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

pub(crate) fn validate_deployment(d: &Value, errs: &mut Errs) {
    let spec = get(d, "spec");
    for k in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        nonneg(spec, k, "spec", errs);
    }
    validate_selector_and_template(spec, "deployment", errs);
    let strategy = get(spec, "strategy");
    match sd(strategy, "type") {
        "RollingUpdate" => validate_rolling(
            get(strategy, "rollingUpdate"),
            "spec.strategy.rollingUpdate",
            errs,
        ),
        "Recreate" => {
            if has(strategy, "rollingUpdate") {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "" => errs.push(FieldError::required("spec.strategy.type", "")),
        t => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            t,
            &["Recreate", "RollingUpdate"],
        )),
    }
    if let Some(pd) = int(spec, "progressDeadlineSeconds") {
        if pd <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pd,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

pub(crate) fn validate_replica_set(rs: &Value, errs: &mut Errs) {
    let spec = get(rs, "spec");
    nonneg(spec, "replicas", "spec", errs);
    nonneg(spec, "minReadySeconds", "spec", errs);
    validate_selector_and_template(spec, "replicaset", errs);
}

pub(crate) fn validate_daemon_set(ds: &Value, errs: &mut Errs) {
    let spec = get(ds, "spec");
    nonneg(spec, "minReadySeconds", "spec", errs);
    nonneg(spec, "revisionHistoryLimit", "spec", errs);
    validate_selector_and_template(spec, "daemonset", errs);
    let us = get(spec, "updateStrategy");
    match sd(us, "type") {
        "RollingUpdate" => validate_rolling(
            get(us, "rollingUpdate"),
            "spec.updateStrategy.rollingUpdate",
            errs,
        ),
        "OnDelete" => {}
        "" => errs.push(FieldError::required("spec.updateStrategy.type", "")),
        t => errs.push(FieldError::not_supported(
            "spec.updateStrategy.type",
            t,
            &["OnDelete", "RollingUpdate"],
        )),
    }
}

pub(crate) fn validate_stateful_set(sts: &Value, errs: &mut Errs) {
    let spec = get(sts, "spec");
    for k in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        nonneg(spec, k, "spec", errs);
    }
    match sd(spec, "podManagementPolicy") {
        "OrderedReady" | "Parallel" => {}
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        p => errs.push(FieldError::not_supported(
            "spec.podManagementPolicy",
            p,
            &["OrderedReady", "Parallel"],
        )),
    }
    let us = get(spec, "updateStrategy");
    match sd(us, "type") {
        "RollingUpdate" => nonneg(
            get(us, "rollingUpdate"),
            "partition",
            "spec.updateStrategy.rollingUpdate",
            errs,
        ),
        "OnDelete" => {
            if has(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    get(us, "rollingUpdate").clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        t => errs.push(FieldError::not_supported(
            "spec.updateStrategy.type",
            t,
            &["OnDelete", "RollingUpdate"],
        )),
    }
    let pol = get(spec, "persistentVolumeClaimRetentionPolicy");
    for f in ["whenDeleted", "whenScaled"] {
        if let Some(v) = s(pol, f) {
            if !["Retain", "Delete"].contains(&v) {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    // Mounts may name a volumeClaimTemplate: the controller adds those volumes to the pods.
    let claims: Vec<&str> = get(spec, "volumeClaimTemplates")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    if claims.is_empty() {
        validate_selector_and_template(spec, "statefulset", errs);
        return;
    }
    let mut with_claims = spec.clone();
    if let Some(ps) = with_claims
        .pointer_mut("/template/spec")
        .and_then(Value::as_object_mut)
    {
        let vols = ps
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(vols) = vols.as_array_mut() {
            for c in claims {
                if !vols.iter().any(|v| v["name"] == c) {
                    vols.push(serde_json::json!({"name": c,
                        "persistentVolumeClaim": {"claimName": c}}));
                }
            }
        }
    }
    validate_selector_and_template(&with_claims, "statefulset", errs);
}

pub(crate) fn validate_replication_controller(rc: &Value, errs: &mut Errs) {
    let spec = get(rc, "spec");
    nonneg(spec, "replicas", "spec", errs);
    nonneg(spec, "minReadySeconds", "spec", errs);
    let sel = get(spec, "selector");
    if obj(spec, "selector").is_none_or(|m| m.is_empty()) {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        validate_labels(sel, "spec.selector", errs);
    }
    let tpl = get(spec, "template");
    if tpl.is_null() {
        errs.push(FieldError::required("spec.template", ""));
        return;
    }
    let labels = get(get(tpl, "metadata"), "labels");
    if let Some(m) = obj(spec, "selector") {
        if !m.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels.clone(),
                "`selector` does not match template `labels`",
            ));
        }
    }
    validate_pod_template(tpl, "spec.template", errs);
    restart_policy_always(tpl, "spec.template", errs);
}

fn validate_job_spec(spec: &Value, path: &str, require_selector: bool, errs: &mut Errs) {
    for k in ["parallelism", "completions", "backoffLimit"] {
        nonneg(spec, k, path, errs);
    }
    if let Some(a) = int(spec, "activeDeadlineSeconds").filter(|&a| a <= 0) {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            a,
            "must be greater than 0",
        ));
    }
    let tpl = get(spec, "template");
    let tp = child(path, "template");
    let sel = get(spec, "selector");
    if sel.is_null() {
        if require_selector {
            errs.push(FieldError::required(child(path, "selector"), ""));
        }
    } else {
        validate_label_selector(sel, &child(path, "selector"), errs);
        let labels = get(get(tpl, "metadata"), "labels");
        if !selector_is_empty(sel) && !selector_matches(sel, labels) {
            errs.push(FieldError::invalid(
                child(&tp, "metadata.labels"),
                labels.clone(),
                "`selector` does not match template `labels`",
            ));
        }
    }
    match s(spec, "completionMode") {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if int(spec, "completions").is_none() {
                errs.push(FieldError::required(
                    child(path, "completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(m) => errs.push(FieldError::not_supported(
            child(path, "completionMode"),
            m,
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(p) = s(spec, "podReplacementPolicy") {
        if !["TerminatingOrFailed", "Failed"].contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    if tpl.is_null() {
        errs.push(FieldError::required(&tp, ""));
        return;
    }
    validate_pod_template(tpl, &tp, errs);
    let rp = sd(get(tpl, "spec"), "restartPolicy");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            child(&tp, "spec.restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        ));
    }
}

pub(crate) fn validate_job(job: &Value, errs: &mut Errs) {
    validate_job_spec(get(job, "spec"), "spec", true, errs);
}

pub(crate) fn validate_cron_job(cj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let name = sd(get(cj, "metadata"), "name");
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    let spec = get(cj, "spec");
    let old_spec = old.map(|o| get(o, "spec"));
    let sched = sd(spec, "schedule");
    let tz = spec.get("timeZone").and_then(Value::as_str);
    if sched.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        // An update may keep a TZ the old schedule already had (kube's allowTZInSchedule).
        let allow_tz = old_spec.is_some_and(|o| sd(o, "schedule").contains("TZ"));
        validate_schedule(sched, allow_tz, tz.is_some(), errs);
    }
    if old_spec.is_none_or(|o| o.get("timeZone").and_then(Value::as_str) != tz) {
        if let Some(tz) = tz {
            validate_time_zone(tz, errs);
        }
    }
    match sd(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        p => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            p,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for k in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        nonneg(spec, k, "spec", errs);
    }
    let jt = get(spec, "jobTemplate");
    let jmeta = get(jt, "metadata");
    validate_labels(
        get(jmeta, "labels"),
        "spec.jobTemplate.metadata.labels",
        errs,
    );
    validate_job_spec(get(jt, "spec"), "spec.jobTemplate.spec", false, errs);
}

/// kube's validateScheduleFormat: robfig's ParseStandard, then the TZ rules.
fn validate_schedule(sched: &str, allow_tz: bool, has_time_zone: bool, errs: &mut Errs) {
    if let Err(e) = parse_schedule(sched) {
        errs.push(FieldError::invalid("spec.schedule", sched, &e.to_string()));
    }
    if sched.contains("TZ") {
        if !allow_tz {
            errs.push(FieldError::invalid(
                "spec.schedule",
                sched,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if has_time_zone {
            errs.push(FieldError::invalid(
                "spec.schedule",
                sched,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
}

/// kube's validateTimeZone: an explicit IANA name that loads.
fn validate_time_zone(tz: &str, errs: &mut Errs) {
    const F: &str = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(F, tz, "unknown time zone"));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            F,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_location(tz) {
        errs.push(FieldError::invalid(F, tz, &e));
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    if !tz.split('/').all(part_ok) {
        errs.push(FieldError::invalid(
            F,
            tz,
            "must be a valid time zone name as defined in https://www.iana.org/time-zones",
        ));
    }
}

/// Update rules: apps/v1 selectors and Job selectors/templates are immutable; StatefulSet
/// spec changes are limited.
pub(crate) fn validate_workload_update(kind: &str, new: &Value, old: &Value, errs: &mut Errs) {
    let ns = get(new, "spec");
    let os = get(old, "spec");
    let changed = |k: &str| strip_nulls(get(ns, k)) != strip_nulls(get(os, k));
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" if changed("selector") => {
            errs.push(FieldError::immutable(
                "spec.selector",
                get(ns, "selector").clone(),
            ));
        }
        "Job" => {
            if changed("selector") {
                errs.push(FieldError::immutable(
                    "spec.selector",
                    get(ns, "selector").clone(),
                ));
            }
            if changed("completionMode") {
                errs.push(FieldError::immutable(
                    "spec.completionMode",
                    get(ns, "completionMode").clone(),
                ));
            }
            let suspended = os.get("suspend").and_then(Value::as_bool) == Some(true);
            if changed("template") && !suspended {
                errs.push(FieldError::immutable(
                    "spec.template",
                    get(ns, "template").clone(),
                ));
            }
        }
        _ => {}
    }
    if kind == "StatefulSet" {
        const MUTABLE: &[&str] = &[
            "replicas",
            "ordinals",
            "revisionHistoryLimit",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        ];
        let strip = |v: &Value| {
            let mut v = strip_nulls(v);
            if let Some(m) = v.as_object_mut() {
                for k in MUTABLE {
                    m.remove(*k);
                }
            }
            v
        };
        if strip(ns) != strip(os) {
            errs.push(FieldError::forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
        }
    }
}
