//! A StatefulSet pod's identity and storage (kube's stateful_set_utils): the name
//! `<set>-<ordinal>`, the pod-name / pod-index / controller-revision-hash labels, hostname and
//! subdomain, the claims `<template>-<set>-<ordinal>` from volumeClaimTemplates in the pod's
//! volumes, and the claims' ownerReferences under persistentVolumeClaimRetentionPolicy.

use crate::{labels, name, namespace, str_at, uid};
use serde_json::{json, Value};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// spec.ordinals.start (default 0).
pub fn start(sts: &Value) -> i64 {
    sts.pointer("/spec/ordinals/start")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn replicas(sts: &Value) -> i64 {
    sts.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The ordinal of `pod` when its name is `<set>-<n>` (kube's getParentNameAndOrdinal).
pub fn ordinal(sts: &Value, pod: &Value) -> Option<i64> {
    let rest = name(pod).strip_prefix(name(sts))?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

pub fn pod_name(sts: &Value, ordinal: i64) -> String {
    format!("{}-{ordinal}", name(sts))
}

pub fn revision_of(pod: &Value) -> &str {
    str_at(pod, "/metadata/labels/controller-revision-hash")
}

pub fn claim_name(sts: &Value, template: &Value, ordinal: i64) -> String {
    format!("{}-{}-{ordinal}", name(template), name(sts))
}

/// The pod for `ordinal` from `template` (the set's or a revision's), labelled with
/// `revision`.
pub fn new_pod(sts: &Value, template: &Value, ordinal: i64, revision: &str) -> Value {
    let n = pod_name(sts, ordinal);
    let owner = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name(sts),
        "uid": uid(sts), "controller": true, "blockOwnerDeletion": true});
    let mut meta = json!({"name": n, "generateName": format!("{}-", name(sts)),
        "namespace": namespace(sts), "ownerReferences": [owner]});
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template
            .pointer(&format!("/metadata/{k}"))
            .filter(|v| !v.is_null())
        {
            meta[k] = v.clone();
        }
    }
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    meta["labels"][POD_NAME_LABEL] = json!(n);
    meta["labels"][POD_INDEX_LABEL] = json!(ordinal.to_string());
    meta["labels"][REVISION_LABEL] = json!(revision);
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["hostname"] = json!(n);
    let svc = str_at(sts, "/spec/serviceName");
    if !svc.is_empty() {
        spec["subdomain"] = json!(svc);
    }
    let claims = claim_templates(sts);
    if !claims.is_empty() {
        let mut vols: Vec<Value> = claims
            .iter()
            .map(|c| {
                json!({"name": name(c), "persistentVolumeClaim":
                    {"claimName": claim_name(sts, c, ordinal)}})
            })
            .collect();
        for v in spec["volumes"].as_array().into_iter().flatten() {
            if !claims.iter().any(|c| name(c) == name_of(v)) {
                vols.push(v.clone());
            }
        }
        spec["volumes"] = json!(vols);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

fn name_of(v: &Value) -> &str {
    str_at(v, "/name")
}

/// The labels a pod lacks for its identity (kube's identityMatches, labels only: hostname and
/// subdomain are immutable once created), as a merge patch; None when it has them.
pub fn identity_patch(sts: &Value, pod: &Value, ordinal: i64) -> Option<Value> {
    let l = labels(pod);
    let n = pod_name(sts, ordinal);
    let idx = ordinal.to_string();
    if l.get(POD_NAME_LABEL).and_then(Value::as_str) == Some(&n)
        && l.get(POD_INDEX_LABEL).and_then(Value::as_str) == Some(&idx)
    {
        return None;
    }
    Some(json!({"metadata": {"labels": {POD_NAME_LABEL: n, POD_INDEX_LABEL: idx}}}))
}

pub fn claim_templates(sts: &Value) -> Vec<Value> {
    sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn policy(sts: &Value, when: &str) -> bool {
    str_at(
        sts,
        &format!("/spec/persistentVolumeClaimRetentionPolicy/{when}"),
    ) == "Delete"
}

/// The ownerReferences a claim of the pod at `ordinal` should carry (kube's
/// updateClaimOwnerRefForSetAndPod): the set's when whenDeleted is Delete (unless scaled down
/// with whenScaled Delete), the pod's when scaled down with whenScaled Delete; other owners
/// kept.
pub fn claim_owner_refs(
    sts: &Value,
    claim: &Value,
    pod: Option<&Value>,
    ordinal: i64,
) -> Vec<Value> {
    let scaled_down = ordinal < start(sts) || ordinal >= start(sts) + replicas(sts);
    let (del, scale) = (policy(sts, "whenDeleted"), policy(sts, "whenScaled"));
    let want_set = del && !(scale && scaled_down);
    let want_pod = scale && scaled_down && pod.is_some();
    let pod_uid = pod.map(uid).unwrap_or("");
    let mut refs: Vec<Value> = crate::owner_refs(claim)
        .iter()
        .filter(|r| r["uid"] != uid(sts) && (pod_uid.is_empty() || r["uid"] != pod_uid))
        .cloned()
        .collect();
    if want_set {
        refs.push(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name(sts),
            "uid": uid(sts)}),
        );
    }
    if let (true, Some(p)) = (want_pod, pod) {
        refs.push(json!({"apiVersion": "v1", "kind": "Pod", "name": name(p), "uid": uid(p)}));
    }
    refs
}

/// The claim for `template` of the pod at `ordinal` (labels: the template's plus the set
/// selector's matchLabels).
pub fn new_claim(sts: &Value, template: &Value, ordinal: i64) -> Value {
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(claim_name(sts, template, ordinal));
    meta["namespace"] = json!(namespace(sts));
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    for (k, v) in sts["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        meta["labels"][k] = v.clone();
    }
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": meta, "spec": template["spec"].clone()});
    let refs = claim_owner_refs(sts, &claim, None, ordinal);
    if !refs.is_empty() {
        claim["metadata"]["ownerReferences"] = json!(refs);
    }
    claim
}
