//! Scheduling constraints in a pod spec: tolerations, node/pod affinity and topology
//! spread constraints.

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::meta::validate_label_selector;
use crate::names::{is_qualified_name, is_valid_label_value};
use crate::util::{arr, get, has, int, s, sd};

type Errs = Vec<FieldError>;

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tols: &[Value], path: &str, errs: &mut Errs) {
    const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
    for (i, t) in tols.iter().enumerate() {
        let p = index(path, i);
        let k = sd(t, "key");
        if !k.is_empty() {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid(child(&p, "key"), k, &msg));
            }
        }
        let op = sd(t, "operator");
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if has(t, "tolerationSeconds") && sd(t, "effect") != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                sd(t, "effect"),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let val = sd(t, "value");
        match op {
            "" | "Equal" => {
                for msg in is_valid_label_value(val) {
                    errs.push(FieldError::invalid(child(&p, "operator"), val, &msg));
                }
            }
            "Exists" => {
                if !val.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        val,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if let Some(e) = s(t, "effect").filter(|e| !e.is_empty()) {
            if !EFFECTS.contains(&e) {
                errs.push(FieldError::not_supported(child(&p, "effect"), e, EFFECTS));
            }
        }
    }
}

fn validate_node_selector_requirements(reqs: &[Value], path: &str, errs: &mut Errs) {
    for (i, r) in reqs.iter().enumerate() {
        let p = index(path, i);
        let vals = arr(r, "values");
        let op = sd(r, "operator");
        match op {
            "In" | "NotIn" => {
                if vals.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !vals.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            "Gt" | "Lt" => {
                if vals.len() != 1 {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                } else if let Some(v) = vals[0].as_str() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            index(&child(&p, "values"), 0),
                            v,
                            "must be an integer",
                        ));
                    }
                }
            }
            _ => errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let k = sd(r, "key");
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(&p, "key"), k, &msg));
        }
    }
}

fn validate_node_selector_term(term: &Value, path: &str, errs: &mut Errs) {
    validate_node_selector_requirements(
        arr(term, "matchExpressions"),
        &child(path, "matchExpressions"),
        errs,
    );
    for (i, r) in arr(term, "matchFields").iter().enumerate() {
        let p = index(&child(path, "matchFields"), i);
        if sd(r, "key") != "metadata.name" {
            errs.push(FieldError::invalid(
                child(&p, "key"),
                sd(r, "key"),
                "not a valid field selector key",
            ));
        }
        if !["In", "NotIn"].contains(&sd(r, "operator")) {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                sd(r, "operator"),
                "not a valid selector operator",
            ));
        }
        if arr(r, "values").len() != 1 {
            errs.push(FieldError::required(
                child(&p, "values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            ));
        }
    }
}

fn validate_weight(w: &Value, path: &str, errs: &mut Errs) {
    let n = int(w, "weight").unwrap_or(0);
    if !(1..=100).contains(&n) {
        errs.push(FieldError::invalid(
            child(path, "weight"),
            n,
            "must be in the range 1-100",
        ));
    }
}

fn validate_pod_affinity_term(t: &Value, path: &str, errs: &mut Errs) {
    validate_label_selector(get(t, "labelSelector"), &child(path, "labelSelector"), errs);
    validate_label_selector(
        get(t, "namespaceSelector"),
        &child(path, "namespaceSelector"),
        errs,
    );
    let tk = sd(t, "topologyKey");
    if tk.is_empty() {
        errs.push(FieldError::required(
            child(path, "topologyKey"),
            "can not be empty",
        ));
    } else {
        for msg in is_qualified_name(tk) {
            errs.push(FieldError::invalid(child(path, "topologyKey"), tk, &msg));
        }
    }
}

pub(super) fn validate_affinity(aff: &Value, path: &str, errs: &mut Errs) {
    if aff.is_null() {
        return;
    }
    let na = get(aff, "nodeAffinity");
    let nap = child(path, "nodeAffinity");
    if let Some(req) = na
        .get("requiredDuringSchedulingIgnoredDuringExecution")
        .filter(|v| !v.is_null())
    {
        let rp = child(&nap, "requiredDuringSchedulingIgnoredDuringExecution");
        let terms = arr(req, "nodeSelectorTerms");
        if terms.is_empty() {
            errs.push(FieldError::required(
                child(&rp, "nodeSelectorTerms"),
                "must have at least one node selector term",
            ));
        }
        for (i, t) in terms.iter().enumerate() {
            validate_node_selector_term(t, &index(&child(&rp, "nodeSelectorTerms"), i), errs);
        }
    }
    for (i, pref) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        let p = index(
            &child(&nap, "preferredDuringSchedulingIgnoredDuringExecution"),
            i,
        );
        validate_weight(pref, &p, errs);
        validate_node_selector_term(get(pref, "preference"), &child(&p, "preference"), errs);
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let pa = get(aff, kind);
        let pp = child(path, kind);
        for (i, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            validate_pod_affinity_term(
                t,
                &index(
                    &child(&pp, "requiredDuringSchedulingIgnoredDuringExecution"),
                    i,
                ),
                errs,
            );
        }
        for (i, w) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let p = index(
                &child(&pp, "preferredDuringSchedulingIgnoredDuringExecution"),
                i,
            );
            validate_weight(w, &p, errs);
            validate_pod_affinity_term(
                get(w, "podAffinityTerm"),
                &child(&p, "podAffinityTerm"),
                errs,
            );
        }
    }
}

pub(super) fn validate_topology_spread(cs: &[Value], path: &str, errs: &mut Errs) {
    const WHEN: &[&str] = &["DoNotSchedule", "ScheduleAnyway"];
    for (i, c) in cs.iter().enumerate() {
        let p = index(path, i);
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                child(&p, "maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        if sd(c, "topologyKey").is_empty() {
            errs.push(FieldError::required(
                child(&p, "topologyKey"),
                "can not be empty",
            ));
        }
        match sd(c, "whenUnsatisfiable") {
            "" => errs.push(FieldError::required(child(&p, "whenUnsatisfiable"), "")),
            w if !WHEN.contains(&w) => errs.push(FieldError::not_supported(
                child(&p, "whenUnsatisfiable"),
                w,
                WHEN,
            )),
            _ => {}
        }
    }
}
