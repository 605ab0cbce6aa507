//! Service validation (`ValidateService`, `ValidateServiceUpdate`).

use std::collections::HashSet;

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::meta::validate_labels;
use crate::names::{
    is_dns1123_label, is_dns1123_subdomain, is_ip, is_valid_port_name, is_valid_port_num,
};
use crate::util::{arr, get, int, s, sd};

type Errs = Vec<FieldError>;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const FAMILIES: &[&str] = &["IPv4", "IPv6"];
/// The default `--service-node-port-range`.
pub const NODE_PORT_RANGE: (i64, i64) = (30000, 32767);

/// kube's `field.Duplicate(portPath, core.ServicePort{Protocol, Port})`, printed with Go's
/// `%#v` of the struct.
fn duplicate_port(field: &str, proto: &str, port: i64) -> FieldError {
    FieldError {
        reason: "FieldValueDuplicate",
        field: field.to_string(),
        message: format!(
            "Duplicate value: core.ServicePort{{Name:\"\", Protocol:\"{proto}\", AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
        ),
    }
}

/// Whether the Service is headless (`clusterIP: None`).
pub(crate) fn is_headless(spec: &Value) -> bool {
    s(spec, "clusterIP") == Some("None")
}

pub(crate) fn validate_service(svc: &Value, errs: &mut Errs) {
    let spec = get(svc, "spec");
    let path = "spec";
    let ty = s(spec, "type").unwrap_or("ClusterIP");
    if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(child(path, "type"), ty, TYPES));
    }
    let ports = arr(spec, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required(child(path, "ports"), ""));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index(&child(path, "ports"), i);
        let name = sd(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&pp, "name"), name, &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        for msg in is_valid_port_num(port) {
            errs.push(FieldError::invalid(child(&pp, "port"), port, &msg));
        }
        match s(p, "protocol").unwrap_or("") {
            "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => errs.push(FieldError::not_supported(
                child(&pp, "protocol"),
                pr,
                PROTOCOLS,
            )),
            _ => {}
        }
        match get(p, "targetPort") {
            Value::Number(n) => {
                let n = n.as_i64().unwrap_or(0);
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(child(&pp, "targetPort"), n, &msg));
                }
            }
            Value::String(t) => {
                for msg in is_valid_port_name(t) {
                    errs.push(FieldError::invalid(
                        child(&pp, "targetPort"),
                        t.as_str(),
                        &msg,
                    ));
                }
            }
            _ => {}
        }
        // The range is the allocator's (--service-node-port-range), checked there.
        if let Some(np) = int(p, "nodePort").filter(|&n| n != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    &format!("may not be used when `type` is '{ty}'"),
                ));
            } else {
                for msg in is_valid_port_num(np) {
                    errs.push(FieldError::invalid(child(&pp, "nodePort"), np, &msg));
                }
            }
        }
    }
    // Duplicate node ports (per protocol) and duplicate (protocol, port) pairs.
    let mut node_ports = HashSet::new();
    let mut pairs = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index(&child(path, "ports"), i);
        let proto = sd(p, "protocol");
        if let Some(np) = int(p, "nodePort").filter(|&n| n != 0) {
            if !node_ports.insert((proto.to_string(), np)) {
                errs.push(FieldError::duplicate(child(&pp, "nodePort"), np));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        if !pairs.insert((proto.to_string(), port)) {
            errs.push(duplicate_port(&pp, proto, port));
        }
    }
    if let Some(hc) = int(spec, "healthCheckNodePort").filter(|&n| n != 0) {
        let local = s(spec, "externalTrafficPolicy") == Some("Local");
        if ty != "LoadBalancer" || !local {
            errs.push(FieldError::invalid(
                child(path, "healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
        for msg in is_valid_port_num(hc) {
            errs.push(FieldError::invalid(
                child(path, "healthCheckNodePort"),
                hc,
                &msg,
            ));
        }
    }
    let cip = sd(spec, "clusterIP");
    if ty == "ExternalName" {
        let en = sd(spec, "externalName");
        if en.is_empty() {
            errs.push(FieldError::required(child(path, "externalName"), ""));
        } else {
            for msg in is_dns1123_subdomain(en.trim_end_matches('.')) {
                errs.push(FieldError::invalid(child(path, "externalName"), en, &msg));
            }
        }
        if !cip.is_empty() {
            errs.push(FieldError::forbidden(
                child(path, "clusterIPs"),
                "may not be set for ExternalName services",
            ));
        }
    } else {
        if cip == "None" && (ty == "NodePort" || ty == "LoadBalancer") {
            errs.push(FieldError::invalid(
                index(&child(path, "clusterIPs"), 0),
                "None",
                &format!("may not be set to 'None' for {ty} services"),
            ));
        }
        let ips: Vec<&str> = arr(spec, "clusterIPs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !cip.is_empty() && !ips.is_empty() && ips[0] != cip {
            errs.push(FieldError::invalid(
                child(path, "clusterIPs"),
                Value::from(ips.clone()),
                "element [0] must match clusterIP",
            ));
        }
        for (i, ip) in ips.iter().enumerate() {
            if *ip != "None" && !ip.is_empty() && !is_ip(ip) {
                errs.push(FieldError::invalid(
                    index(&child(path, "clusterIPs"), i),
                    *ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
        if ips.is_empty() && !cip.is_empty() && cip != "None" && !is_ip(cip) {
            errs.push(FieldError::invalid(
                child(path, "clusterIP"),
                cip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    match s(spec, "sessionAffinity").unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "sessionAffinity"), "")),
        a if !AFFINITIES.contains(&a) => errs.push(FieldError::not_supported(
            child(path, "sessionAffinity"),
            a,
            AFFINITIES,
        )),
        "ClientIP" => {
            let t = get(
                get(get(spec, "sessionAffinityConfig"), "clientIP"),
                "timeoutSeconds",
            );
            if let Some(t) = t.as_i64().filter(|t| !(1..=86400).contains(t)) {
                errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        _ => {}
    }
    if let Some(p) = s(spec, "externalTrafficPolicy").filter(|p| !p.is_empty()) {
        if ty != "NodePort" && ty != "LoadBalancer" {
            errs.push(FieldError::invalid(
                child(path, "externalTrafficPolicy"),
                p,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !TRAFFIC_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "externalTrafficPolicy"),
                p,
                TRAFFIC_POLICIES,
            ));
        }
    }
    if let Some(p) = s(spec, "internalTrafficPolicy") {
        if !TRAFFIC_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "internalTrafficPolicy"),
                p,
                TRAFFIC_POLICIES,
            ));
        }
    }
    if let Some(p) = s(spec, "ipFamilyPolicy") {
        if !FAMILY_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "ipFamilyPolicy"),
                p,
                FAMILY_POLICIES,
            ));
        }
    }
    let mut fams = HashSet::new();
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        let fp = index(&child(path, "ipFamilies"), i);
        if !FAMILIES.contains(&f) {
            errs.push(FieldError::not_supported(&fp, f, FAMILIES));
        } else if !fams.insert(f) {
            errs.push(FieldError::duplicate(&fp, f));
        }
    }
    validate_labels(get(spec, "selector"), &child(path, "selector"), errs);
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if !is_ip(ip) {
            errs.push(FieldError::invalid(
                index(&child(path, "externalIPs"), i),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
}

/// `ValidateServiceUpdate`: an allocated clusterIP cannot change or be unset (except when
/// switching to ExternalName, which releases it).
pub(crate) fn validate_service_update(new: &Value, old: &Value, errs: &mut Errs) {
    let ns = get(new, "spec");
    let os = get(old, "spec");
    let old_ip = sd(os, "clusterIP");
    let new_ip = sd(ns, "clusterIP");
    if s(ns, "type") == Some("ExternalName") || old_ip.is_empty() {
        return;
    }
    if new_ip.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            Value::Null,
            "primary clusterIP can not be unset",
        ));
    } else if new_ip != old_ip {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            new_ip,
            "may not change once set",
        ));
    }
}
