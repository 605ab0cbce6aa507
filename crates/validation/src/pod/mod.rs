//! Pod spec validation (`ValidatePodSpec` and friends), used for Pods and for the pod
//! templates inside workloads; containers, scheduling constraints and the Pod update rules
//! (`ValidatePodUpdate`) live in the submodules.

mod container;
mod scheduling;
mod update;

pub use update::POD_UPDATABLE_FIELDS;
pub(crate) use update::{strip_nulls, validate_pod_spec_update};

use container::{validate_container, validate_pod_security_context};
use scheduling::{validate_affinity, validate_tolerations, validate_topology_spread};
use std::collections::HashSet;

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::meta::{validate_annotations, validate_labels};
use crate::names::{inclusive_range_error, is_dns1123_label, is_dns1123_subdomain};
use crate::quantity::Quantity;
use crate::util::{arr, get, has, int, s, sd};

type Errs = Vec<FieldError>;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

pub(super) fn nonneg(v: &Value, k: &str, path: &str, errs: &mut Errs) {
    if let Some(n) = int(v, k) {
        if n < 0 {
            errs.push(FieldError::invalid(
                child(path, k),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// `ValidatePodTemplateSpec`: template labels/annotations and the pod spec.
pub(crate) fn validate_pod_template(tpl: &Value, path: &str, errs: &mut Errs) {
    if tpl.is_null() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let meta = get(tpl, "metadata");
    let mp = child(path, "metadata");
    validate_labels(get(meta, "labels"), &child(&mp, "labels"), errs);
    validate_annotations(get(meta, "annotations"), &child(&mp, "annotations"), errs);
    validate_pod_spec(get(tpl, "spec"), &child(path, "spec"), errs);
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str, errs: &mut Errs) {
    let volumes = validate_volumes(arr(spec, "volumes"), &child(path, "volumes"), errs);
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(child(path, "containers"), ""));
    }
    let mut names = HashSet::new();
    let mut port_names = HashSet::new();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = index(&child(path, "initContainers"), i);
        validate_container(
            c,
            &p,
            true,
            &volumes,
            &mut names,
            &mut port_names,
            spec,
            errs,
        );
    }
    for (i, c) in containers.iter().enumerate() {
        let p = index(&child(path, "containers"), i);
        validate_container(
            c,
            &p,
            false,
            &volumes,
            &mut names,
            &mut port_names,
            spec,
            errs,
        );
    }
    match s(spec, "restartPolicy").unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "restartPolicy"), "")),
        p if !RESTART_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            p,
            RESTART_POLICIES,
        )),
        _ => {}
    }
    match s(spec, "dnsPolicy").unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "dnsPolicy"), "")),
        "None" if !has(spec, "dnsConfig") => errs.push(FieldError::required(
            child(path, "dnsConfig"),
            &format!("must provide `dnsConfig` when `dnsPolicy` is {}", "None"),
        )),
        p if !DNS_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "dnsPolicy"),
            p,
            DNS_POLICIES,
        )),
        _ => {}
    }
    validate_labels(
        get(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
        errs,
    );
    for f in ["serviceAccountName", "nodeName"] {
        if let Some(v) = s(spec, f).filter(|v| !v.is_empty()) {
            for msg in is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(child(path, f), v, &msg));
            }
        }
    }
    for f in ["hostname", "subdomain"] {
        if let Some(v) = s(spec, f).filter(|v| !v.is_empty()) {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, f), v, &msg));
            }
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                ads,
                &inclusive_range_error(1, i32::MAX.into()),
            ));
        }
    }
    if let Some(p) = s(spec, "preemptionPolicy") {
        if !["Never", "PreemptLowerPriority"].contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "preemptionPolicy"),
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    validate_pod_security_context(
        get(spec, "securityContext"),
        &child(path, "securityContext"),
        errs,
    );
    validate_tolerations(arr(spec, "tolerations"), &child(path, "tolerations"), errs);
    validate_affinity(get(spec, "affinity"), &child(path, "affinity"), errs);
    validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &child(path, "topologySpreadConstraints"),
        errs,
    );
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if sd(s, "name").is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(path, "imagePullSecrets"), i), "name"),
                "",
            ));
        }
    }
}

fn validate_volumes(vols: &[Value], path: &str, errs: &mut Errs) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = index(path, i);
        let name = sd(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|k| has(v, k))
            .collect();
        match sources.as_slice() {
            [] => errs.push(FieldError::required(&p, "must specify a volume type")),
            [one] => validate_volume_source(one, get(v, one), &child(&p, one), errs),
            [_, second, ..] => errs.push(FieldError::forbidden(
                child(&p, second),
                "may not specify more than 1 volume type",
            )),
        }
    }
    names
}

fn validate_mode(v: &Value, k: &str, path: &str, errs: &mut Errs) {
    if let Some(m) = int(v, k) {
        if !(0..=0o777).contains(&m) {
            errs.push(FieldError::invalid(
                child(path, k),
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    }
}

fn validate_key_to_paths(items: &[Value], path: &str, errs: &mut Errs) {
    for (i, it) in items.iter().enumerate() {
        let p = index(path, i);
        if sd(it, "key").is_empty() {
            errs.push(FieldError::required(child(&p, "key"), ""));
        }
        let rel = sd(it, "path");
        if rel.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        } else if rel.starts_with('/') {
            errs.push(FieldError::invalid(
                child(&p, "path"),
                rel,
                "must be a relative path",
            ));
        } else if rel.split('/').any(|seg| seg == "..") {
            errs.push(FieldError::invalid(
                child(&p, "path"),
                rel,
                "must not contain '..'",
            ));
        }
        validate_mode(it, "mode", &p, errs);
    }
}

fn validate_volume_source(kind: &str, src: &Value, path: &str, errs: &mut Errs) {
    let required = |f: &str, errs: &mut Errs| {
        if sd(src, f).is_empty() {
            errs.push(FieldError::required(child(path, f), ""));
        }
    };
    match kind {
        "secret" => {
            required("secretName", errs);
            validate_mode(src, "defaultMode", path, errs);
            validate_key_to_paths(arr(src, "items"), &child(path, "items"), errs);
        }
        "configMap" => {
            required("name", errs);
            validate_mode(src, "defaultMode", path, errs);
            validate_key_to_paths(arr(src, "items"), &child(path, "items"), errs);
        }
        "hostPath" => {
            required("path", errs);
            const TYPES: &[&str] = &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if let Some(t) = s(src, "type") {
                if !TYPES.contains(&t) {
                    errs.push(FieldError::not_supported(child(path, "type"), t, TYPES));
                }
            }
        }
        "persistentVolumeClaim" => required("claimName", errs),
        "nfs" => {
            required("server", errs);
            required("path", errs);
        }
        "emptyDir" => {
            if let Some(m) = s(src, "medium") {
                if !["", "Memory", "HugePages"].contains(&m) && !m.starts_with("HugePages-") {
                    errs.push(FieldError::not_supported(
                        child(path, "medium"),
                        m,
                        &["", "Memory", "HugePages"],
                    ));
                }
            }
            if let Some(q) = s(src, "sizeLimit") {
                if Quantity::parse(q).is_ok_and(|q| q.is_negative()) {
                    errs.push(FieldError::invalid(
                        child(path, "sizeLimit"),
                        q,
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
        "downwardAPI" => validate_mode(src, "defaultMode", path, errs),
        "projected" => {
            validate_mode(src, "defaultMode", path, errs);
            for (i, source) in arr(src, "sources").iter().enumerate() {
                let p = index(&child(path, "sources"), i);
                let n = [
                    "secret",
                    "configMap",
                    "downwardAPI",
                    "serviceAccountToken",
                    "clusterTrustBundle",
                ]
                .iter()
                .filter(|k| has(source, k))
                .count();
                if n > 1 {
                    errs.push(FieldError::forbidden(
                        &p,
                        "may not specify more than 1 volume type per source",
                    ));
                }
            }
        }
        _ => {}
    }
}
