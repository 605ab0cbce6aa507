//! `metadata` validation for every kind (`ValidateObjectMeta`, `ValidateObjectMetaUpdate`),
//! plus the label, annotation and selector checks other validators reuse.

use std::collections::HashSet;

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::names::{is_dns1123_label, is_qualified_name, is_valid_label_value, NameRule};
use crate::util::{arr, get, obj, sd};

/// Kubernetes' `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateLabels`: keys are qualified names, values label values; errors sit on the map path.
pub(crate) fn validate_labels(labels: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = labels.as_object() else { return };
    for (k, v) in m {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), &msg));
        }
        let val = v.as_str().unwrap_or("");
        for msg in is_valid_label_value(val) {
            errs.push(FieldError::invalid(path, val, &msg));
        }
    }
}

/// `ValidateAnnotations`: keys (lower-cased) are qualified names; total size ≤ 256 KiB.
pub(crate) fn validate_annotations(ann: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = ann.as_object() else { return };
    let mut total = 0usize;
    for (k, v) in m {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_owner_references(refs: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut controllers = Vec::new();
    for r in refs {
        let api_version = sd(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if sd(r, "kind").is_empty() {
            errs.push(FieldError::invalid(
                child(path, "kind"),
                "",
                "kind must not be empty",
            ));
        }
        if sd(r, "name").is_empty() {
            errs.push(FieldError::invalid(
                child(path, "name"),
                "",
                "name must not be empty",
            ));
        }
        if sd(r, "uid").is_empty() {
            errs.push(FieldError::invalid(
                child(path, "uid"),
                "",
                "uid must not be empty",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers.push(format!("{}/{}", sd(r, "kind"), sd(r, "name")));
        }
    }
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            path,
            Value::Array(refs.to_vec()),
            &format!("Only one reference can have Controller set to true. Found \"true\" in references for {}", controllers.join(" and ")),
        ));
    }
}

fn validate_finalizers(fins: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let names: Vec<&str> = fins.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, &msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::from(names.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// `ValidateObjectMeta` for a top-level object. `meta` is the `metadata` value (may be null).
///
/// A missing name is accepted when `generateName` is set: the server generates the name.
pub(crate) fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    rule: NameRule,
    errs: &mut Vec<FieldError>,
) {
    let path = "metadata";
    let name = sd(meta, "name");
    let generate = sd(meta, "generateName");
    if !generate.is_empty() {
        for msg in rule.check(generate, true) {
            errs.push(FieldError::invalid(
                child(path, "generateName"),
                generate,
                &msg,
            ));
        }
    }
    if name.is_empty() {
        if generate.is_empty() {
            errs.push(FieldError::required(
                child(path, "name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid(child(path, "name"), name, &msg));
        }
    }
    let ns = sd(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in is_dns1123_label(ns) {
                errs.push(FieldError::invalid(child(path, "namespace"), ns, &msg));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta
        .get("deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
    {
        if g < 0 {
            errs.push(FieldError::invalid(
                child(path, "deletionGracePeriodSeconds"),
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    validate_labels(get(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(get(meta, "annotations"), &child(path, "annotations"), errs);
    validate_owner_references(
        arr(meta, "ownerReferences"),
        &child(path, "ownerReferences"),
        errs,
    );
    validate_finalizers(arr(meta, "finalizers"), &child(path, "finalizers"), errs);
}

/// `ValidateObjectMetaUpdate`: name, namespace, uid, creationTimestamp, deletionTimestamp and
/// deletionGracePeriodSeconds are immutable (`field is immutable`); no new finalizers once deleting.
///
/// resourceVersion and generation are the server's business (409 Conflict / copied from the old object).
pub(crate) fn validate_object_meta_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let path = "metadata";
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let n = get(new, f);
        let o = get(old, f);
        let blank = |v: &Value| v.is_null() || v.as_str() == Some("");
        // An update that omits uid keeps the old one (rest.BeforeUpdate).
        if f == "uid" && blank(n) {
            continue;
        }
        if !(blank(n) && blank(o)) && n != o {
            errs.push(FieldError::immutable(child(path, f), n.clone()));
        }
    }
    if !get(old, "deletionTimestamp").is_null() {
        let old_f: HashSet<&str> = arr(old, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let extra: Vec<&str> = arr(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|e| crate::errors::go_quote(e)).collect();
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                &format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}", list.join(", ")),
            ));
        }
    }
}

/// `ValidateLabelSelector` (metav1.LabelSelector): matchLabels and matchExpressions.
pub(crate) fn validate_label_selector(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if sel.is_null() {
        return;
    }
    validate_labels(get(sel, "matchLabels"), &child(path, "matchLabels"), errs);
    for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let op = sd(e, "operator");
        let nvals = arr(e, "values").len();
        match op {
            "In" | "NotIn" => {
                if nvals == 0 {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if nvals > 0 {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let k = sd(e, "key");
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(&p, "key"), k, &msg));
        }
    }
}

/// Whether a metav1.LabelSelector matches a label set (matchLabels and matchExpressions).
pub(crate) fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = obj(sel, "matchLabels") {
        if !ml.iter().all(|(k, v)| label(k) == v.as_str()) {
            return false;
        }
    }
    arr(sel, "matchExpressions").iter().all(|e| {
        let k = sd(e, "key");
        let vals: Vec<&str> = arr(e, "values").iter().filter_map(Value::as_str).collect();
        match (sd(e, "operator"), label(k)) {
            ("In", Some(v)) => vals.contains(&v),
            ("In", None) => false,
            ("NotIn", Some(v)) => !vals.contains(&v),
            ("NotIn", None) => true,
            ("Exists", l) => l.is_some(),
            ("DoesNotExist", l) => l.is_none(),
            _ => false,
        }
    })
}

/// Whether a selector selects nothing (no matchLabels, no matchExpressions).
pub(crate) fn selector_is_empty(sel: &Value) -> bool {
    obj(sel, "matchLabels").is_none_or(|m| m.is_empty()) && arr(sel, "matchExpressions").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(meta: Value, namespaced: bool, rule: NameRule) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        validate_object_meta(&meta, namespaced, rule, &mut errs);
        errs.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn object_meta_table() {
        let sub = NameRule::Dns1123Subdomain;
        let cases: Vec<(Value, bool, NameRule, Vec<&str>)> = vec![
            (
                json!({"name": "web", "namespace": "default"}),
                true,
                sub,
                vec![],
            ),
            (
                json!({"generateName": "docker-registry-1-", "namespace": "default"}),
                true,
                sub,
                vec![],
            ),
            (
                json!({"namespace": "default"}),
                true,
                sub,
                vec!["metadata.name"],
            ),
            (
                json!({"name": "Foo_Bar", "namespace": "default"}),
                true,
                sub,
                vec!["metadata.name"],
            ),
            (
                json!({"name": "web"}),
                true,
                sub,
                vec!["metadata.namespace"],
            ),
            (
                json!({"name": "web", "namespace": "x"}),
                false,
                sub,
                vec!["metadata.namespace"],
            ),
            (
                json!({"name": "a.b"}),
                false,
                NameRule::Dns1123Label,
                vec!["metadata.name"],
            ),
            (
                json!({"name": "system:aggregate-to-admin"}),
                false,
                NameRule::PathSegment,
                vec![],
            ),
            (
                json!({"name": "w", "namespace": "d", "labels": {"app": "x", "bad key!": "v", "k": "-v"}}),
                true,
                sub,
                vec!["metadata.labels", "metadata.labels"],
            ),
            (
                json!({"name": "w", "namespace": "d", "annotations": {"openshift.io/scc": "anyuid", "a/b/c": ""}}),
                true,
                sub,
                vec!["metadata.annotations"],
            ),
            (
                json!({"name": "w", "namespace": "d", "annotations": {"big": "x".repeat(300 * 1024)}}),
                true,
                sub,
                vec!["metadata.annotations"],
            ),
            (
                json!({"name": "w", "namespace": "d", "finalizers": ["kubernetes", "example.com/x", "bad/a/b"]}),
                true,
                sub,
                vec!["metadata.finalizers"],
            ),
            (
                json!({"name": "w", "namespace": "d", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u", "controller": true}]}),
                true,
                sub,
                vec![],
            ),
            (
                json!({"name": "w", "namespace": "d", "ownerReferences": [{"apiVersion": "", "kind": "ReplicaSet", "name": "r"}]}),
                true,
                sub,
                vec![
                    "metadata.ownerReferences.apiVersion",
                    "metadata.ownerReferences.uid",
                ],
            ),
        ];
        for (meta, ns, rule, want) in cases {
            let got = run(meta.clone(), ns, rule);
            let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields, want, "{meta}: {got:?}");
        }
        let got = run(json!({"namespace": "d"}), true, sub);
        assert_eq!(got[0].1, "Required value: name or generateName is required");
        let got = run(
            json!({"name": "w", "namespace": "d", "annotations": {"big": "x".repeat(300 * 1024)}}),
            true,
            sub,
        );
        assert_eq!(got[0].1, "Too long: may not be more than 262144 bytes");
    }

    #[test]
    fn meta_update() {
        let old = json!({"name": "a", "namespace": "d", "uid": "1", "creationTimestamp": "2020-01-01T00:00:00Z", "resourceVersion": "5"});
        let cases = vec![
            (
                json!({"name": "a", "namespace": "d", "uid": "1", "resourceVersion": "5", "creationTimestamp": "2020-01-01T00:00:00Z"}),
                vec![],
            ),
            (
                json!({"name": "a", "namespace": "d", "creationTimestamp": "2020-01-01T00:00:00Z"}),
                vec![],
            ),
            (
                json!({"name": "b", "namespace": "d", "uid": "2", "creationTimestamp": "2020-01-01T00:00:00Z"}),
                vec!["metadata.name", "metadata.uid"],
            ),
            (
                json!({"name": "a", "namespace": "d", "creationTimestamp": "2021-01-01T00:00:00Z"}),
                vec!["metadata.creationTimestamp"],
            ),
        ];
        for (new, want) in cases {
            let mut errs = Vec::new();
            validate_object_meta_update(&new, &old, &mut errs);
            let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, want, "{new}");
        }
        let mut errs = Vec::new();
        validate_object_meta_update(&json!({"name": "b"}), &json!({"name": "a"}), &mut errs);
        assert_eq!(errs[0].message, "Invalid value: \"b\": field is immutable");
    }

    #[test]
    fn selectors() {
        let labels = json!({"app": "web", "tier": "fe"});
        let cases = vec![
            (json!({"matchLabels": {"app": "web"}}), true),
            (json!({"matchLabels": {"app": "db"}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(selector_matches(&sel, &labels), want, "{sel}");
        }
        let mut errs = Vec::new();
        validate_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]}, {"key": "c", "operator": "Foo"}]}),
            "spec.selector",
            &mut errs,
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator"
            ]
        );
    }
}
