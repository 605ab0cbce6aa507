//! What a service gets: kube's `patchAllocatedValues` and `dropTypeDependentFields` (before
//! validation, on updates) and the allocation itself (cluster IP from the service CIDR with
//! kube's static band kept for explicit requests, node ports, health-check node port).

use super::{Allocator, Item};
use crate::status::{ApiError, ApiResult};
use capstan_validation::FieldError;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::Ipv4Addr;

fn ty(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn needs_cluster_ip(svc: &Value) -> bool {
    ty(svc) != "ExternalName"
}

/// kube's needsNodePort: NodePort, or LoadBalancer unless allocateLoadBalancerNodePorts is
/// false.
fn needs_node_ports(svc: &Value) -> bool {
    match ty(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

fn needs_hc_node_port(svc: &Value) -> bool {
    ty(svc) == "LoadBalancer"
        && svc
            .pointer("/spec/externalTrafficPolicy")
            .and_then(Value::as_str)
            == Some("Local")
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn node_port(p: &Value) -> u64 {
    p.get("nodePort").and_then(Value::as_u64).unwrap_or(0)
}

fn ports(svc: &Value) -> Vec<Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn remove(svc: &mut Value, keys: &[&str]) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        for k in keys {
            spec.remove(*k);
        }
    }
}

/// On update, before validation: values the client left out are kept from the stored service
/// (cluster IPs, node ports matched by port name, the health-check node port), and values a
/// type change makes meaningless are dropped when the client left them as they were.
pub fn patch_allocated_values(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            let missing = match new.pointer(&format!("/spec/{k}")) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if missing {
                if let Some(v) = old.pointer(&format!("/spec/{k}")) {
                    new["spec"][k] = v.clone();
                }
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports = ports(old);
        let new_ports = ports(new);
        let used: HashSet<u64> = new_ports.iter().map(node_port).filter(|n| *n > 0).collect();
        for (i, p) in new_ports.iter().enumerate() {
            if node_port(p) != 0 {
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let was = old_ports
                .iter()
                .find(|o| o.get("name").and_then(Value::as_str).unwrap_or("") == name)
                .map(node_port)
                .unwrap_or(0);
            if was > 0 && !used.contains(&was) {
                new["spec"]["ports"][i]["nodePort"] = json!(was);
            }
        }
    }
    if needs_hc_node_port(old) && needs_hc_node_port(new) {
        let hc = new
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if hc == 0 {
            if let Some(v) = old.pointer("/spec/healthCheckNodePort") {
                new["spec"]["healthCheckNodePort"] = v.clone();
            }
        }
    }
    // dropTypeDependentFields.
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        let same = |k: &str| {
            let n = new.pointer(&format!("/spec/{k}"));
            n.is_none() || n == old.pointer(&format!("/spec/{k}"))
        };
        if same("clusterIP") && same("clusterIPs") {
            remove(
                new,
                &["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"],
            );
        }
    }
    if needs_node_ports(old) && !needs_node_ports(new) {
        let had: HashSet<u64> = ports(old).iter().map(node_port).collect();
        let n = ports(new).len();
        for i in 0..n {
            let np = node_port(&new["spec"]["ports"][i]);
            if np > 0 && had.contains(&np) {
                if let Some(p) = new["spec"]["ports"][i].as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    if needs_hc_node_port(old)
        && !needs_hc_node_port(new)
        && new.pointer("/spec/healthCheckNodePort") == old.pointer("/spec/healthCheckNodePort")
    {
        remove(new, &["healthCheckNodePort"]);
    }
    if ty(new) != "LoadBalancer" {
        remove(new, &["allocateLoadBalancerNodePorts", "loadBalancerClass"]);
    }
    if ty(new) != "LoadBalancer" && ty(new) != "NodePort" {
        remove(new, &["externalTrafficPolicy"]);
    }
}

/// kube's static band: the first min(max(16, size/16), 256) addresses are handed out only on
/// request while the rest has room (KEP-3070), so the 10th (the DNS service's) stays free.
fn static_band(size: u64) -> u64 {
    if size < 16 {
        0
    } else {
        (size / 16).clamp(16, 256)
    }
}

fn invalid_ips(r: &str, why: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: "spec.clusterIPs".into(),
        message: format!("Invalid value: []string{{{}}}: {why}", json!(r)),
    }
}

fn refuse(svc: &Value, errs: &[FieldError]) -> ApiError {
    let res = capstan_api::resources::find("", "v1", "services").expect("registered");
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    crate::codec::invalid(res, name, errs)
}

/// Allocate for `svc` (its old version given on updates); `taken` answers for everything
/// held by other services.
pub(super) fn assign(
    a: &Allocator,
    svc: &mut Value,
    old: Option<&Value>,
    taken: &dyn Fn(&Item) -> bool,
) -> ApiResult<()> {
    if needs_cluster_ip(svc) {
        assign_ip(a, svc, old, taken)?;
    }
    assign_ports(a, svc, taken)
}

fn assign_ip(
    a: &Allocator,
    svc: &mut Value,
    old: Option<&Value>,
    taken: &dyn Fn(&Item) -> bool,
) -> ApiResult<()> {
    let cidr = a.service_cidr;
    let old_ip = old
        .filter(|o| needs_cluster_ip(o))
        .map(|o| str_at(o, "/spec/clusterIP"))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let requested = Some(str_at(svc, "/spec/clusterIP"))
        .filter(|s| !s.is_empty())
        .or_else(|| Some(str_at(svc, "/spec/clusterIPs/0")).filter(|s| !s.is_empty()))
        .map(str::to_string);
    let ip = match (requested, old_ip) {
        (Some(r), Some(o)) if r == o => r,
        (None, Some(o)) => o,
        (Some(r), Some(_)) => {
            return Err(refuse(
                svc,
                &[FieldError::invalid(
                    "spec.clusterIPs[0]",
                    r.as_str(),
                    "may not change once set",
                )],
            ))
        }
        (Some(r), None) if r == "None" => r,
        (Some(r), None) => {
            let Ok(addr) = r.parse::<Ipv4Addr>() else {
                return Err(refuse(
                    svc,
                    &[invalid_ips(
                        &r,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )],
                ));
            };
            if !cidr.usable(addr) {
                return Err(refuse(svc, &[invalid_ips(&r, &format!(
                    "failed to allocate IP {r}: the provided IP ({r}) is not in the valid range. The range of valid IPs is {cidr}"
                ))]));
            }
            if taken(&Item::Ip(addr)) {
                return Err(refuse(
                    svc,
                    &[invalid_ips(
                        &r,
                        &format!("failed to allocate IP {r}: provided IP is already allocated"),
                    )],
                ));
            }
            r
        }
        (None, None) => match dynamic_ip(a, taken) {
            Some(ip) => ip.to_string(),
            None => {
                return Err(ApiError::internal(
                    "Internal error occurred: failed to allocate a serviceIP: range is full",
                ))
            }
        },
    };
    svc["spec"]["clusterIP"] = json!(ip);
    svc["spec"]["clusterIPs"] = json!([ip]);
    if svc.pointer("/spec/ipFamilies").is_none() {
        svc["spec"]["ipFamilies"] = json!(["IPv4"]);
    }
    if svc.pointer("/spec/ipFamilyPolicy").is_none() {
        svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    }
    Ok(())
}

/// A free address, from above the static band first (random start, then in order), then
/// from the band.
pub(super) fn dynamic_ip(a: &Allocator, taken: &dyn Fn(&Item) -> bool) -> Option<Ipv4Addr> {
    let cidr = a.service_cidr;
    let max = cidr.size().saturating_sub(2); // offsets 1..=max
    let band = static_band(max);
    let free = |o: u64| {
        let ip = cidr.nth(o as u32);
        (!taken(&Item::Ip(ip))).then_some(ip)
    };
    let scan = |lo: u64, hi: u64| -> Option<Ipv4Addr> {
        if lo > hi {
            return None;
        }
        let span = hi - lo + 1;
        let start = rand::random::<u64>() % span;
        (0..span).find_map(|k| free(lo + (start + k) % span))
    };
    scan(band + 1, max).or_else(|| scan(1, band.min(max)))
}

fn random_port(a: &Allocator, taken: &dyn Fn(&Item) -> bool, local: &HashSet<u16>) -> Option<u16> {
    let (lo, hi) = a.node_ports;
    let span = (hi - lo) as u32 + 1;
    let start = rand::random::<u32>() % span;
    (0..span)
        .map(|k| lo + ((start + k) % span) as u16)
        .find(|p| !local.contains(p) && !taken(&Item::Port(*p)))
}

fn assign_ports(a: &Allocator, svc: &mut Value, taken: &dyn Fn(&Item) -> bool) -> ApiResult<()> {
    let (lo, hi) = a.node_ports;
    let mut errs = Vec::new();
    let mut local = HashSet::new();
    let auto = needs_node_ports(svc);
    let mut check = |field: String, np: u64, prefix: &str, errs: &mut Vec<FieldError>| {
        if np < lo as u64 || np > hi as u64 {
            errs.push(FieldError::invalid(field, np, &format!(
                "{prefix}provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
            )));
            false
        } else if local.contains(&(np as u16)) || taken(&Item::Port(np as u16)) {
            errs.push(FieldError::invalid(
                field,
                np,
                &format!("{prefix}provided port is already allocated"),
            ));
            false
        } else {
            local.insert(np as u16);
            true
        }
    };
    let n = ports(svc).len();
    let mut missing = Vec::new();
    if matches!(ty(svc), "NodePort" | "LoadBalancer") {
        for i in 0..n {
            let np = node_port(&svc["spec"]["ports"][i]);
            if np > 0 {
                check(format!("spec.ports[{i}].nodePort"), np, "", &mut errs);
            } else if auto {
                missing.push(i);
            }
        }
    }
    let hc = svc
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut want_hc = false;
    if needs_hc_node_port(svc) {
        if hc > 0 {
            check(
                "spec.healthCheckNodePort".into(),
                hc,
                &format!("failed to allocate requested HealthCheck NodePort {hc}: "),
                &mut errs,
            );
        } else {
            want_hc = true;
        }
    }
    if !errs.is_empty() {
        return Err(refuse(svc, &errs));
    }
    let full = || {
        ApiError::internal("Internal error occurred: failed to allocate a nodePort: range is full")
    };
    for i in missing {
        let p = random_port(a, taken, &local).ok_or_else(full)?;
        local.insert(p);
        svc["spec"]["ports"][i]["nodePort"] = json!(p);
    }
    if want_hc {
        let p = random_port(a, taken, &local).ok_or_else(full)?;
        svc["spec"]["healthCheckNodePort"] = json!(p);
    }
    Ok(())
}
