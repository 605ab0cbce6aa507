//! PersistentVolumeClaim, PersistentVolume, Endpoints, ResourceQuota and LimitRange basics.

use serde_json::Value;

use crate::errors::{child, index, key, FieldError};
use crate::names::{is_dns1123_label, is_ip, is_valid_port_num};
use crate::pod::strip_nulls;
use crate::quantity::{Quantity, QUANTITY_FORMAT_MSG};
use crate::util::{arr, get, obj, s, sd};

type Errs = Vec<FieldError>;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(spec: &Value, path: &str, errs: &mut Errs) {
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                child(path, "accessModes"),
                m,
                ACCESS_MODES,
            ));
        }
    }
}

fn validate_storage(q: Option<&Value>, path: &str, errs: &mut Errs) {
    match q {
        None => errs.push(FieldError::required(path, "")),
        Some(v) => {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            match Quantity::parse(&text) {
                Ok(q) if q.milli_value() <= 0 => errs.push(FieldError::invalid(
                    path,
                    text.as_str(),
                    "must be greater than zero",
                )),
                Ok(_) => {}
                Err(_) => errs.push(FieldError::type_invalid(
                    path,
                    text.as_str(),
                    QUANTITY_FORMAT_MSG,
                )),
            }
        }
    }
}

pub(crate) fn validate_pvc(pvc: &Value, errs: &mut Errs) {
    let spec = get(pvc, "spec");
    validate_access_modes(spec, "spec", errs);
    let requests = get(get(spec, "resources"), "requests");
    validate_storage(
        requests.get("storage"),
        &key("spec.resources", "storage"),
        errs,
    );
    if let Some(m) = s(spec, "volumeMode") {
        if !["Block", "Filesystem"].contains(&m) {
            errs.push(FieldError::not_supported(
                "spec.volumeMode",
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
}

/// PVC update: the spec is immutable except `resources.requests`, `volumeName` (when unset)
/// and `volumeAttributesClassName`.
pub(crate) fn validate_pvc_update(new: &Value, old: &Value, errs: &mut Errs) {
    let clean = |v: &Value, old_spec: &Value| {
        let mut v = strip_nulls(v);
        if let Some(m) = v.as_object_mut() {
            if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
                r.remove("requests");
            }
            m.remove("volumeAttributesClassName");
            if sd(old_spec, "volumeName").is_empty() {
                m.remove("volumeName");
            }
        }
        v
    };
    let os = get(old, "spec");
    if clean(get(new, "spec"), os) != clean(os, os) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

pub(crate) fn validate_pv(pv: &Value, errs: &mut Errs) {
    let spec = get(pv, "spec");
    validate_access_modes(spec, "spec", errs);
    validate_storage(
        get(spec, "capacity").get("storage"),
        &key("spec.capacity", "storage"),
        errs,
    );
    if let Some(p) = s(spec, "persistentVolumeReclaimPolicy") {
        if !["Delete", "Recycle", "Retain"].contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.persistentVolumeReclaimPolicy",
                p,
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }
}

pub(crate) fn validate_endpoints(ep: &Value, errs: &mut Errs) {
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let sp = index("subsets", i);
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(ss, list).iter().enumerate() {
                let ip = sd(a, "ip");
                if !is_ip(ip) {
                    errs.push(FieldError::invalid(
                        child(&index(&child(&sp, list), j), "ip"),
                        ip,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                }
            }
        }
        let ports = arr(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let pp = index(&child(&sp, "ports"), j);
            let name = sd(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(child(&pp, "name"), ""));
            } else if !name.is_empty() {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(child(&pp, "name"), name, &msg));
                }
            }
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            for msg in is_valid_port_num(port) {
                errs.push(FieldError::invalid(child(&pp, "port"), port, &msg));
            }
            if let Some(pr) = s(p, "protocol") {
                if !["SCTP", "TCP", "UDP"].contains(&pr) {
                    errs.push(FieldError::not_supported(
                        child(&pp, "protocol"),
                        pr,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
        }
    }
}

fn validate_quantities(m: &Value, path: &str, errs: &mut Errs) {
    let Some(m) = m.as_object() else { return };
    for (name, v) in m {
        let text = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        match Quantity::parse(&text) {
            Ok(q) if q.is_negative() => errs.push(FieldError::invalid(
                key(path, name),
                text.as_str(),
                "must be greater than or equal to 0",
            )),
            Ok(_) => {}
            Err(_) => errs.push(FieldError::type_invalid(
                key(path, name),
                text.as_str(),
                QUANTITY_FORMAT_MSG,
            )),
        }
    }
}

pub(crate) fn validate_resource_quota(rq: &Value, errs: &mut Errs) {
    validate_quantities(get(get(rq, "spec"), "hard"), "spec.hard", errs);
}

pub(crate) fn validate_limit_range(lr: &Value, errs: &mut Errs) {
    const TYPES: &[&str] = &["Container", "PersistentVolumeClaim", "Pod"];
    for (i, l) in arr(get(lr, "spec"), "limits").iter().enumerate() {
        let p = index("spec.limits", i);
        let t = sd(l, "type");
        if !TYPES.contains(&t) {
            errs.push(FieldError::not_supported(child(&p, "type"), t, TYPES));
        }
        for f in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if obj(l, f).is_some() {
                validate_quantities(get(l, f), &child(&p, f), errs);
            }
        }
    }
}
