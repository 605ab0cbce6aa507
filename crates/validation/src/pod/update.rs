//! `ValidatePodUpdate`: what may change in a Pod's spec after creation.

use serde_json::Value;

use crate::errors::{child, FieldError};
use crate::util::{arr, get, int};

type Errs = Vec<FieldError>;

/// Pod fields a user may change on update, as kube-apiserver lists them.
pub const POD_UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Recursively drops null-valued keys, so `{"a": null}` compares equal to `{}`.
pub(crate) fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// `ValidatePodUpdate`'s spec rules: only images, activeDeadlineSeconds (set or decrease),
/// added tolerations and a negative→1 terminationGracePeriodSeconds may change.
pub(crate) fn validate_pod_spec_update(new: &Value, old: &Value, errs: &mut Errs) {
    let path = "spec";
    let ns = get(new, "spec");
    let os = get(old, "spec");
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (None, Some(_)) => errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (Some(n), Some(o)) if n > o => errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            n,
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    // Build the old spec with the allowed changes applied; anything else that differs is forbidden.
    let mut munged = strip_nulls(os);
    let new_clean = strip_nulls(ns);
    for list in ["containers", "initContainers"] {
        if let (Some(m), Some(n)) = (
            munged.get_mut(list).and_then(Value::as_array_mut),
            new_clean.get(list).and_then(Value::as_array),
        ) {
            if m.len() == n.len() {
                for (mc, nc) in m.iter_mut().zip(n) {
                    if let (Some(mo), Some(img)) = (mc.as_object_mut(), nc.get("image")) {
                        mo.insert("image".into(), img.clone());
                    }
                }
            }
        }
    }
    let Some(mo) = munged.as_object_mut() else {
        return;
    };
    match new_clean.get("activeDeadlineSeconds") {
        Some(v) => mo.insert("activeDeadlineSeconds".into(), v.clone()),
        None => mo.remove("activeDeadlineSeconds"),
    };
    // Tolerations: only additions.
    let old_tols = arr(os, "tolerations")
        .iter()
        .map(strip_nulls)
        .collect::<Vec<_>>();
    let new_tols = arr(ns, "tolerations")
        .iter()
        .map(strip_nulls)
        .collect::<Vec<_>>();
    let only_added = old_tols.iter().all(|t| {
        new_tols.iter().any(|n| {
            let mut a = t.clone();
            let mut b = n.clone();
            // tolerationSeconds may change (it is the only mutable part of an existing toleration).
            if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object_mut()) {
                a.remove("tolerationSeconds");
                b.remove("tolerationSeconds");
            }
            a == b
        })
    });
    match new_clean.get("tolerations") {
        Some(v) => mo.insert("tolerations".into(), v.clone()),
        None => mo.remove("tolerations"),
    };
    if !only_added {
        errs.push(FieldError::forbidden(
            child(path, "tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    // schedulingGates: only removals (kube's validateSchedulingGates on update).
    let old_gates = arr(os, "schedulingGates");
    for g in arr(ns, "schedulingGates") {
        if !old_gates.contains(g) {
            let name = g.get("name").and_then(Value::as_str).unwrap_or_default();
            errs.push(FieldError::forbidden(
                child(path, "schedulingGates"),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    match new_clean.get("schedulingGates") {
        Some(v) => mo.insert("schedulingGates".into(), v.clone()),
        None => mo.remove("schedulingGates"),
    };
    if int(os, "terminationGracePeriodSeconds").is_some_and(|o| o < 0)
        && int(ns, "terminationGracePeriodSeconds") == Some(1)
    {
        mo.insert("terminationGracePeriodSeconds".into(), Value::from(1));
    }
    if munged != new_clean {
        let changed = changed_fields(&munged, &new_clean);
        let detail = format!(
            "pod updates may not change fields other than {POD_UPDATABLE_FIELDS}\n  changed: {}",
            changed.join(", ")
        );
        errs.push(FieldError::forbidden(path, &detail));
    }
}

fn changed_fields(a: &Value, b: &Value) -> Vec<String> {
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        return vec![];
    };
    let mut keys: Vec<&String> = am.keys().chain(bm.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| am.get(*k) != bm.get(*k))
        .map(|k| format!("spec.{k}"))
        .collect()
}
