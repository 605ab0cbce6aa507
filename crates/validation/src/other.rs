//! Validation for the smaller kinds: PodDisruptionBudget, PriorityClass,
//! Namespace, Node, Lease, EndpointSlice, Event (core and events.k8s.io),
//! NetworkPolicy, Ingress and the Scale and Binding subresources.

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::meta::validate_label_selector;
use crate::names::{
    is_dns1123_label, is_dns1123_subdomain, is_ip, is_qualified_name, is_valid_label_value,
    is_valid_port_name, is_valid_port_num,
};
use crate::util::{arr, get, has, int, s, sd};
use crate::workloads::validate_int_or_percent;

type Errs = Vec<FieldError>;

/// Largest priority a user-defined PriorityClass may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

pub(crate) fn validate_pdb(pdb: &Value, errs: &mut Errs) {
    let spec = get(pdb, "spec");
    if has(spec, "minAvailable") && has(spec, "maxUnavailable") {
        errs.push(FieldError::invalid(
            "spec",
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    validate_int_or_percent(get(spec, "minAvailable"), "spec.minAvailable", errs);
    validate_int_or_percent(get(spec, "maxUnavailable"), "spec.maxUnavailable", errs);
    validate_label_selector(get(spec, "selector"), "spec.selector", errs);
    if let Some(p) = s(spec, "unhealthyPodEvictionPolicy") {
        if !["AlwaysAllow", "IfHealthyBudget"].contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
}

pub(crate) fn validate_priority_class(pc: &Value, errs: &mut Errs) {
    let name = sd(get(pc, "metadata"), "name");
    let value = int(pc, "value").unwrap_or(0);
    if let Some(&(_, v)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
        if v != value {
            errs.push(FieldError::forbidden(
                "metadata.name",
                &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
            ));
        }
    } else if name.starts_with("system-") {
        errs.push(FieldError::forbidden(
            "metadata.name",
            "priority class names with 'system-' prefix are reserved",
        ));
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    if let Some(p) = s(pc, "preemptionPolicy") {
        if !["Never", "PreemptLowerPriority"].contains(&p) {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
}

pub(crate) fn validate_priority_class_update(new: &Value, old: &Value, errs: &mut Errs) {
    if int(new, "value") != int(old, "value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    if get(new, "preemptionPolicy") != get(old, "preemptionPolicy") {
        errs.push(FieldError::immutable(
            "preemptionPolicy",
            get(new, "preemptionPolicy").clone(),
        ));
    }
}

pub(crate) fn validate_namespace(ns: &Value, errs: &mut Errs) {
    for f in arr(get(ns, "spec"), "finalizers") {
        let f = f.as_str().unwrap_or("");
        let msgs = is_qualified_name(f);
        if !msgs.is_empty() {
            for msg in msgs {
                errs.push(FieldError::invalid("spec.finalizers", f, &msg));
            }
        } else if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f) {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if let Some(p) = s(get(ns, "status"), "phase") {
        if !["Active", "Terminating"].contains(&p) {
            errs.push(FieldError::not_supported(
                "status.phase",
                p,
                &["Active", "Terminating"],
            ));
        }
    }
}

pub(crate) fn validate_node(node: &Value, errs: &mut Errs) {
    let spec = get(node, "spec");
    const EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = index("spec.taints", i);
        let k = sd(t, "key");
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(&p, "key"), k, &msg));
        }
        let v = sd(t, "value");
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(child(&p, "value"), v, &msg));
        }
        match sd(t, "effect") {
            "" => errs.push(FieldError::required(child(&p, "effect"), "")),
            e if !EFFECTS.contains(&e) => {
                errs.push(FieldError::not_supported(child(&p, "effect"), e, EFFECTS))
            }
            _ => {}
        }
    }
    for f in ["podCIDR"] {
        if let Some(c) = s(spec, f).filter(|c| !c.is_empty()) {
            if !is_cidr(c) {
                errs.push(FieldError::invalid(
                    child("spec", f),
                    c,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
}

fn is_cidr(c: &str) -> bool {
    c.split_once('/')
        .is_some_and(|(ip, bits)| is_ip(ip) && bits.parse::<u8>().is_ok_and(|b| b <= 128))
}

pub(crate) fn validate_lease(lease: &Value, errs: &mut Errs) {
    let spec = get(lease, "spec");
    if let Some(d) = int(spec, "leaseDurationSeconds").filter(|&d| d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int(spec, "leaseTransitions").filter(|&t| t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
}

pub(crate) fn validate_endpoint_slice(es: &Value, errs: &mut Errs) {
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    let at = sd(es, "addressType");
    if at.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&at) {
        errs.push(FieldError::not_supported("addressType", at, TYPES));
    }
    for (i, ep) in arr(es, "endpoints").iter().enumerate() {
        let p = index("endpoints", i);
        let addrs = arr(ep, "addresses");
        if addrs.is_empty() {
            errs.push(FieldError::required(
                child(&p, "addresses"),
                "must contain at least 1 address",
            ));
        } else if addrs.len() > 100 {
            errs.push(FieldError::invalid(
                child(&p, "addresses"),
                addrs.len() as i64,
                "must not contain more than 100 addresses",
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let ap = index(&child(&p, "addresses"), j);
            let ok = match at {
                "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => is_dns1123_subdomain(a).is_empty(),
            };
            if !ok {
                errs.push(FieldError::invalid(
                    ap,
                    a,
                    &format!("must be a valid {at} address"),
                ));
            }
        }
    }
    for (i, port) in arr(es, "ports").iter().enumerate() {
        let p = index("ports", i);
        if let Some(n) = s(port, "name").filter(|n| !n.is_empty()) {
            for msg in is_dns1123_label(n) {
                errs.push(FieldError::invalid(child(&p, "name"), n, &msg));
            }
        }
        if let Some(pr) = s(port, "protocol") {
            if !["SCTP", "TCP", "UDP"].contains(&pr) {
                errs.push(FieldError::not_supported(
                    child(&p, "protocol"),
                    pr,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
        }
        if let Some(n) = int(port, "port") {
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(child(&p, "port"), n, &msg));
            }
        }
    }
}

pub(crate) fn validate_core_event(ev: &Value, errs: &mut Errs) {
    let io = get(ev, "involvedObject");
    if io.is_null() || (sd(io, "kind").is_empty() && sd(io, "name").is_empty()) {
        errs.push(FieldError::required("involvedObject", ""));
    }
    let ns = sd(get(ev, "metadata"), "namespace");
    let ions = sd(io, "namespace");
    if !ions.is_empty() && ions != ns {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            ions,
            "does not match event.namespace",
        ));
    }
    if let Some(t) = s(ev, "type").filter(|t| !t.is_empty()) {
        if !["Normal", "Warning"].contains(&t) {
            errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"]));
        }
    }
}

pub(crate) fn validate_events_v1_event(ev: &Value, errs: &mut Errs) {
    if !has(ev, "eventTime") {
        errs.push(FieldError::required("eventTime", ""));
    }
    for f in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if sd(ev, f).is_empty() {
            errs.push(FieldError::required(f, ""));
        }
    }
    match sd(ev, "type") {
        "Normal" | "Warning" => {}
        t => errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"])),
    }
    if sd(ev, "note").len() > 1024 {
        errs.push(FieldError::too_long("note", 1024));
    }
}

pub(crate) fn validate_network_policy(np: &Value, errs: &mut Errs) {
    let spec = get(np, "spec");
    validate_label_selector(get(spec, "podSelector"), "spec.podSelector", errs);
    for (i, t) in arr(spec, "policyTypes").iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !["Ingress", "Egress"].contains(&t) {
            errs.push(FieldError::not_supported(
                index("spec.policyTypes", i),
                t,
                &["Egress", "Ingress"],
            ));
        }
    }
    for dir in ["ingress", "egress"] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            for (j, port) in arr(rule, "ports").iter().enumerate() {
                let p = index(&child(&index(&format!("spec.{dir}"), i), "ports"), j);
                if let Some(pr) = s(port, "protocol") {
                    if !["SCTP", "TCP", "UDP"].contains(&pr) {
                        errs.push(FieldError::not_supported(
                            child(&p, "protocol"),
                            pr,
                            &["SCTP", "TCP", "UDP"],
                        ));
                    }
                }
                match get(port, "port") {
                    Value::Number(n) => {
                        for msg in is_valid_port_num(n.as_i64().unwrap_or(0)) {
                            errs.push(FieldError::invalid(
                                child(&p, "port"),
                                n.as_i64().unwrap_or(0),
                                &msg,
                            ));
                        }
                    }
                    Value::String(n) => {
                        for msg in is_valid_port_name(n) {
                            errs.push(FieldError::invalid(child(&p, "port"), n.as_str(), &msg));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

pub(crate) fn validate_ingress(ing: &Value, errs: &mut Errs) {
    let spec = get(ing, "spec");
    const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
    for (i, rule) in arr(spec, "rules").iter().enumerate() {
        let rp = index("spec.rules", i);
        if let Some(h) = s(rule, "host").filter(|h| !h.is_empty()) {
            let bare = h.strip_prefix("*.").unwrap_or(h);
            for msg in is_dns1123_subdomain(bare) {
                errs.push(FieldError::invalid(child(&rp, "host"), h, &msg));
            }
        }
        for (j, p) in arr(get(rule, "http"), "paths").iter().enumerate() {
            let pp = index(&child(&rp, "http.paths"), j);
            match sd(p, "pathType") {
                "" => errs.push(FieldError::required(
                    child(&pp, "pathType"),
                    "pathType must be specified",
                )),
                t if !PATH_TYPES.contains(&t) => errs.push(FieldError::not_supported(
                    child(&pp, "pathType"),
                    t,
                    PATH_TYPES,
                )),
                "Exact" | "Prefix" => {
                    let path = sd(p, "path");
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            child(&pp, "path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                _ => {}
            }
            validate_ingress_backend(get(p, "backend"), &child(&pp, "backend"), errs);
        }
    }
    if has(spec, "defaultBackend") {
        validate_ingress_backend(get(spec, "defaultBackend"), "spec.defaultBackend", errs);
    }
}

fn validate_ingress_backend(b: &Value, path: &str, errs: &mut Errs) {
    let svc = get(b, "service");
    let res = get(b, "resource");
    match (svc.is_null(), res.is_null()) {
        (true, true) => errs.push(FieldError::invalid(
            path,
            "",
            "one backend (service or resource) must be specified",
        )),
        (false, false) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both service and resource backends",
        )),
        (false, true) => {
            let sp = child(path, "service");
            if sd(svc, "name").is_empty() {
                errs.push(FieldError::required(child(&sp, "name"), ""));
            }
            let port = get(svc, "port");
            match (
                int(port, "number"),
                s(port, "name").filter(|n| !n.is_empty()),
            ) {
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    child(&sp, "port"),
                    "",
                    "cannot set both port name & port number",
                )),
                (Some(n), None) => {
                    for msg in is_valid_port_num(n) {
                        errs.push(FieldError::invalid(child(&sp, "port.number"), n, &msg));
                    }
                }
                (None, Some(n)) => {
                    for msg in is_valid_port_name(n) {
                        errs.push(FieldError::invalid(child(&sp, "port.name"), n, &msg));
                    }
                }
                (None, None) => errs.push(FieldError::required(
                    child(&sp, "port"),
                    "port name or number is required",
                )),
            }
        }
        (true, false) => {}
    }
}

/// The Scale subresource body (autoscaling/v1 Scale).
pub(crate) fn validate_scale(scale: &Value, errs: &mut Errs) {
    if sd(get(scale, "metadata"), "name").is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    if let Some(r) = int(get(scale, "spec"), "replicas").filter(|&r| r < 0) {
        errs.push(FieldError::invalid(
            "spec.replicas",
            r,
            "must be greater than or equal to 0",
        ));
    }
}

/// EndpointSlice update: addressType is immutable.
pub(crate) fn validate_endpoint_slice_update(new: &Value, old: &Value, errs: &mut Errs) {
    if sd(new, "addressType") != sd(old, "addressType") {
        errs.push(FieldError::immutable("addressType", sd(new, "addressType")));
    }
}

/// `ValidatePodBinding`: the target must be a Node and named.
pub(crate) fn validate_binding(b: &Value, errs: &mut Errs) {
    let t = get(b, "target");
    let kind = sd(t, "kind");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported("target.kind", kind, &["Node"]));
    }
    if sd(t, "name").is_empty() {
        errs.push(FieldError::required("target.name", ""));
    }
}
