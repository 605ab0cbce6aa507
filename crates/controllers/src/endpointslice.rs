//! The EndpointSlice controller (kube's pkg/controller/endpointslice reconciler, v1.32): a
//! service's pods as discovery.k8s.io/v1 EndpointSlices grouped by the ports they resolve
//! to, at most `max` endpoints a slice, existing slices updated in place (changed endpoints
//! replaced, gone ones dropped, new ones filling the updated slices fullest first, then the
//! unchanged slice that fits best, then new slices), an empty placeholder slice when there
//! is nothing else, creates turned into updates of slices that would be deleted.

use crate::endpoints::{
    families, find_port, format_time, has_cluster_ip, hostname, is_ipv6, pod_ips,
    should_be_in_endpoints, HEADLESS, TRIGGER_TIME,
};
use crate::{deleting, labels_ref, name, namespace, owner_refs, pod, str_at, uid};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;

pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// kube-controller-manager's default --max-endpoints-per-slice.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What one sync writes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// New slices (generateName `<service>-`).
    pub create: Vec<Value>,
    /// Slices to PUT (they carry their resourceVersion).
    pub update: Vec<Value>,
    pub delete: Vec<Value>,
    /// Some pod's node is not known: its endpoint was left out; sync again later.
    pub missing_node: bool,
}

/// The slices of `slices` this controller manages for `svc` (by label), not being deleted.
pub fn slices_of<'a, S: Borrow<Value>>(svc: &Value, slices: &'a [S]) -> Vec<&'a Value> {
    slices
        .iter()
        .map(Borrow::borrow)
        .filter(|s| {
            let l = labels_ref(s);
            namespace(s) == namespace(svc)
                && l.get(SERVICE_NAME).and_then(Value::as_str) == Some(name(svc))
                && l.get(MANAGED_BY).and_then(Value::as_str) == Some(CONTROLLER_NAME)
                && !deleting(s)
        })
        .collect()
}

/// The service key (`ns/name`) of a slice this controller manages.
pub fn service_key(slice: &Value) -> Option<String> {
    let l = labels_ref(slice);
    if l.get(MANAGED_BY).and_then(Value::as_str) != Some(CONTROLLER_NAME) {
        return None;
    }
    let svc = l.get(SERVICE_NAME).and_then(Value::as_str)?;
    Some(format!("{}/{svc}", namespace(slice)))
}

fn owned_by(slice: &Value, svc: &Value) -> bool {
    owner_refs(slice)
        .iter()
        .any(|r| r["uid"] == uid(svc) && r["kind"] == "Service" && r["apiVersion"] == "v1")
}

fn arr<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// kube's getEndpointPorts: the service's ports resolved on `pod` (a port the pod lacks is
/// left out); none for a headless service without ports.
pub fn endpoint_ports(svc: &Value, p: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for sp in arr(&svc["spec"], "ports") {
        let Some(n) = find_port(p, sp) else { continue };
        let mut e = Map::new();
        e.insert("name".into(), json!(sp["name"].as_str().unwrap_or("")));
        e.insert(
            "protocol".into(),
            json!(sp["protocol"].as_str().unwrap_or("TCP")),
        );
        e.insert("port".into(), json!(n));
        if let Some(a) = sp["appProtocol"].as_str() {
            e.insert("appProtocol".into(), json!(a));
        }
        out.push(Value::Object(e));
    }
    out
}

/// The identity of a port set, whatever the order of its ports (kube's PortMapKey).
fn ports_key(ports: &[Value]) -> String {
    let mut v: Vec<String> = ports.iter().map(Value::to_string).collect();
    v.sort();
    v.join("\n")
}

/// The identity of an endpoint (kube's EndpointSet hash): addresses, hostname, pod.
fn endpoint_key(e: &Value) -> String {
    let mut a: Vec<&str> = arr(e, "addresses")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    a.sort();
    format!(
        "{}|{}|{}|{}",
        a.join(","),
        str_at(e, "/hostname"),
        str_at(e, "/targetRef/namespace"),
        str_at(e, "/targetRef/name")
    )
}

/// kube's podToEndpoint: the pod's addresses of `address_type`; serving is Ready,
/// terminating is being deleted, ready is serving and not terminating (always with
/// publishNotReadyAddresses).
pub fn pod_endpoint(p: &Value, zone: Option<&str>, svc: &Value, address_type: &str) -> Value {
    let serving = pod::ready(p);
    let terminating = deleting(p);
    let ready = svc["spec"]["publishNotReadyAddresses"] == true || (serving && !terminating);
    let v6 = address_type == "IPv6";
    let addresses: Vec<&str> = pod_ips(p)
        .into_iter()
        .filter(|ip| is_ipv6(ip) == v6)
        .collect();
    let mut e = json!({"addresses": addresses,
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating}});
    if let Some(h) = hostname(p, svc) {
        e["hostname"] = json!(h);
    }
    e["targetRef"] =
        json!({"kind": "Pod", "namespace": namespace(p), "name": name(p), "uid": uid(p)});
    let node = str_at(p, "/spec/nodeName");
    if !node.is_empty() {
        e["nodeName"] = json!(node);
    }
    if let Some(z) = zone.filter(|z| !z.is_empty()) {
        e["zone"] = json!(z);
    }
    e
}

fn reserved(label: &str) -> bool {
    label == SERVICE_NAME || label == MANAGED_BY || label == HEADLESS
}

/// kube's setEndpointSliceLabels: the service's labels plus the reserved ones; whether the
/// slice's non-reserved labels differ from the service's.
fn slice_labels(slice: Option<&Value>, svc: &Value) -> (Map<String, Value>, bool) {
    let strip = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| !reserved(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut labels = strip(labels_ref(svc));
    let changed = slice.is_some_and(|s| strip(labels_ref(s)) != labels);
    if !has_cluster_ip(svc) {
        labels.insert(HEADLESS.into(), json!(""));
    }
    labels.insert(SERVICE_NAME.into(), json!(name(svc)));
    labels.insert(MANAGED_BY.into(), json!(CONTROLLER_NAME));
    (labels, changed)
}

fn new_slice(svc: &Value, ports: &[Value], address_type: &str) -> Value {
    let (labels, _) = slice_labels(None, svc);
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": format!("{}-", name(svc)), "namespace": namespace(svc),
            "labels": labels,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name(svc),
                "uid": uid(svc), "controller": true, "blockOwnerDeletion": true}]},
        "addressType": address_type, "endpoints": [], "ports": ports})
}

/// kube's placeholderSliceCompare: same namespace, labels, address type, no endpoints and
/// no ports.
fn same_placeholder(a: &Value, b: &Value) -> bool {
    namespace(a) == namespace(b)
        && labels_ref(a) == labels_ref(b)
        && a["addressType"] == b["addressType"]
        && arr(a, "endpoints").is_empty()
        && arr(b, "endpoints").is_empty()
        && arr(a, "ports").is_empty()
        && arr(b, "ports").is_empty()
}

fn len(s: &Value) -> usize {
    arr(s, "endpoints").len()
}

fn push(s: &mut Value, e: Value) {
    match s.get_mut("endpoints").and_then(Value::as_array_mut) {
        Some(a) => a.push(e),
        None => s["endpoints"] = json!([e]),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Unchanged,
    Update,
    Delete,
}

type Changes = (Vec<Value>, Vec<Value>, Vec<Value>);

/// kube's reconcileByPortMapping for one port set: (create, update, delete).
fn by_port_mapping(
    svc: &Value,
    existing: &[&Value],
    mut desired: BTreeMap<String, Value>,
    ports: &[Value],
    address_type: &str,
    max: usize,
) -> Changes {
    // Unchanged slices stay borrowed: a sync copies only the slices it writes.
    let mut work: Vec<(Cow<Value>, State)> = Vec::new();
    // 1. Existing slices: drop what is no longer desired, replace what changed.
    for s in existing {
        let eps = arr(s, "endpoints");
        let mut kept = Vec::new();
        let mut updated = false;
        for e in eps {
            if let Some(got) = desired.remove(&endpoint_key(e)) {
                updated |= &got != e;
                kept.push(got);
            }
        }
        let (labels, labels_changed) = slice_labels(Some(s), svc);
        let with = |eps: Option<Vec<Value>>| {
            let mut c = (*s).clone();
            if let Some(eps) = eps {
                c["endpoints"] = Value::Array(eps);
            }
            c["metadata"]["labels"] = Value::Object(labels.clone());
            c
        };
        if updated || eps.len() != kept.len() {
            if kept.is_empty() {
                work.push((Cow::Borrowed(*s), State::Delete));
            } else {
                work.push((Cow::Owned(with(Some(kept))), State::Update));
            }
        } else if labels_changed {
            work.push((Cow::Owned(with(None)), State::Update));
        } else {
            work.push((Cow::Borrowed(*s), State::Unchanged));
        }
    }
    // 2. Fill the slices being updated anyway, fullest first.
    let mut updating: Vec<usize> = (0..work.len())
        .filter(|i| work[*i].1 == State::Update)
        .collect();
    updating.sort_by_key(|i| std::cmp::Reverse(len(&work[*i].0)));
    for i in updating {
        while len(&work[i].0) < max {
            let Some((_, e)) = desired.pop_first() else {
                break;
            };
            push(work[i].0.to_mut(), e);
        }
    }
    // 3. The rest into the unchanged slice it fits best, else into new slices.
    let mut create = Vec::new();
    while !desired.is_empty() {
        let mut fill = None;
        if desired.len() < max {
            // kube's getSliceToFill: the least room left after taking them all.
            let mut closest = max;
            for (i, (s, st)) in work.iter().enumerate() {
                if *st != State::Unchanged || len(s) + desired.len() > max {
                    continue;
                }
                let diff = max - (desired.len() + len(s));
                if diff < closest {
                    closest = diff;
                    fill = Some(i);
                }
            }
        }
        let target = match fill {
            Some(i) => {
                work[i].1 = State::Update;
                work[i].0.to_mut()
            }
            None => {
                create.push(new_slice(svc, ports, address_type));
                create.last_mut().expect("just pushed")
            }
        };
        while len(target) < max {
            let Some((_, e)) = desired.pop_first() else {
                break;
            };
            push(target, e);
        }
    }
    let (mut update, mut delete) = (Vec::new(), Vec::new());
    for (s, st) in work {
        match st {
            State::Update => update.push(s.into_owned()),
            State::Delete => delete.push(s.into_owned()),
            State::Unchanged => {}
        }
    }
    (create, update, delete)
}

/// kube's reconcileByAddressType.
fn by_address_type(
    svc: &Value,
    pods: &[&Value],
    existing: &[&Value],
    zone_of: &dyn Fn(&str) -> Option<Option<String>>,
    address_type: &str,
    max: usize,
    missing_node: &mut bool,
) -> Changes {
    let mut delete: Vec<Value> = Vec::new();
    let mut by_ports: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            by_ports
                .entry(ports_key(arr(s, "ports")))
                .or_default()
                .push(s);
        } else {
            delete.push((*s).clone());
        }
    }
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let mut desired: BTreeMap<String, (Vec<Value>, BTreeMap<String, Value>)> = BTreeMap::new();
    for p in pods {
        if !should_be_in_endpoints(p, true) {
            continue;
        }
        let ports = endpoint_ports(svc, p);
        let set = &mut desired
            .entry(ports_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()))
            .1;
        let zone = match zone_of(str_at(p, "/spec/nodeName")) {
            Some(z) => z,
            None if publish => None,
            None => {
                *missing_node = true;
                continue;
            }
        };
        let e = pod_endpoint(p, zone.as_deref(), svc, address_type);
        if !arr(&e, "addresses").is_empty() {
            set.insert(endpoint_key(&e), e);
        }
    }
    for (k, slices) in &by_ports {
        if !desired.contains_key(k) {
            delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }
    let (mut create, mut update) = (Vec::new(), Vec::new());
    for (k, (ports, set)) in desired {
        let none = Vec::new();
        let (c, u, d) = by_port_mapping(
            svc,
            by_ports.get(&k).unwrap_or(&none),
            set,
            &ports,
            address_type,
            max,
        );
        create.extend(c);
        update.extend(u);
        delete.extend(d);
    }
    // Nothing left: keep (or make) one empty placeholder slice.
    if existing.len() == delete.len() && create.is_empty() {
        let placeholder = new_slice(svc, &[], address_type);
        if delete.len() == 1 && same_placeholder(&delete[0], &placeholder) {
            delete.clear();
        } else {
            create.push(placeholder);
        }
    }
    finalize(svc, create, update, delete)
}

/// kube's finalize: a create becomes an update of a slice that would be deleted (same
/// address type, owned by this service); no creates for a service being deleted.
fn finalize(
    svc: &Value,
    mut create: Vec<Value>,
    mut update: Vec<Value>,
    mut delete: Vec<Value>,
) -> Changes {
    let mut i = 0;
    while i < delete.len() && !create.is_empty() {
        let old = &delete[i];
        let new = create.last().expect("not empty");
        if old["addressType"] == new["addressType"] && owned_by(old, svc) {
            let new = create.pop().expect("not empty");
            let mut s = delete.remove(i);
            for f in ["endpoints", "ports"] {
                s[f] = new[f].clone();
            }
            for f in ["labels", "ownerReferences"] {
                s["metadata"][f] = new["metadata"][f].clone();
            }
            if let Some(m) = s["metadata"].as_object_mut() {
                m.remove("annotations");
            }
            update.push(s);
        } else {
            i += 1;
        }
    }
    if deleting(svc) {
        create.clear();
    }
    (create, update, delete)
}

fn set_trigger(s: &mut Value, trigger: Option<DateTime<Utc>>) {
    let meta = s["metadata"].as_object_mut().expect("metadata object");
    let mut a = meta
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match trigger {
        Some(t) => a.insert(TRIGGER_TIME.into(), json!(format_time(t))),
        None => a.remove(TRIGGER_TIME),
    };
    if a.is_empty() {
        meta.remove("annotations");
    } else {
        meta.insert("annotations".into(), Value::Object(a));
    }
}

/// The writes that make `slices` (the service's, see [`slices_of`]) hold the endpoints of
/// `pods` (the pods it selects). `zone_of(node)` is the node's zone label (Some(None):
/// the node has none; None: no such node). `svc` must be
/// [`managed`](crate::endpoints::managed).
pub fn reconcile(
    svc: &Value,
    pods: &[&Value],
    slices: &[&Value],
    zone_of: &dyn Fn(&str) -> Option<Option<String>>,
    trigger: Option<DateTime<Utc>>,
    max: usize,
) -> Plan {
    let types = families(svc);
    let mut plan = Plan::default();
    for at in &types {
        let existing: Vec<&Value> = slices
            .iter()
            .copied()
            .filter(|s| s["addressType"] == *at)
            .collect();
        let (c, u, d) = by_address_type(
            svc,
            pods,
            &existing,
            zone_of,
            at,
            max.max(1),
            &mut plan.missing_node,
        );
        plan.create.extend(c);
        plan.update.extend(u);
        plan.delete.extend(d);
    }
    for s in &mut plan.create {
        set_trigger(s, trigger);
    }
    for s in &mut plan.update {
        set_trigger(s, trigger);
    }
    // Slices of an address type the service no longer has.
    plan.delete.extend(
        slices
            .iter()
            .filter(|s| !types.iter().any(|t| s["addressType"] == *t))
            .map(|s| (*s).clone()),
    );
    plan
}

#[cfg(test)]
mod tests;
