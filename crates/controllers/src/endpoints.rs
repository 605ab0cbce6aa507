//! The Endpoints controller (kube's pkg/controller/endpoint, v1.32) and what it shares with
//! the EndpointSlice controller (kube's endpointslice util): which services a pod change
//! concerns, which pods a service's endpoints hold, target ports resolved per pod, hostnames,
//! the last-change trigger time, and the Endpoints object: subsets repacked into kube's
//! canonical form (addresses grouped by the ports they serve), ready and not-ready addresses,
//! the headless label, the over-capacity truncation at 1000 addresses.

use crate::{deleting, labels_ref, name, namespace, pod, str_at, time_at, uid};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

/// Label on the Endpoints and EndpointSlices of a service without a cluster IP.
pub const HEADLESS: &str = "service.kubernetes.io/headless";
/// Annotation with the time of the change that triggered the write.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Annotation on Endpoints truncated to [`MAX_CAPACITY`] addresses.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Most addresses one Endpoints object holds.
pub const MAX_CAPACITY: usize = 1000;

/// The service's selector as a plain map; None when it has none (its endpoints are
/// user-managed). An empty map is none too: the API stores `selector: {}` as absent.
pub fn service_selector(svc: &Value) -> Option<&Map<String, Value>> {
    svc.pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
}

/// Whether the controllers manage the service's endpoints: a selector, and not ExternalName.
pub fn managed(svc: &Value) -> bool {
    service_selector(svc).is_some() && str_at(svc, "/spec/type") != "ExternalName"
}

/// Whether the service's selector selects `pod` (same namespace, every label equal).
pub fn selects(svc: &Value, pod: &Value) -> bool {
    let Some(sel) = service_selector(svc) else {
        return false;
    };
    if namespace(svc) != namespace(pod) {
        return false;
    }
    let labels = labels_ref(pod);
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pods of `pods` the service selects.
pub fn selected<'a, P: Borrow<Value>>(svc: &Value, pods: &'a [P]) -> Vec<&'a Value> {
    pods.iter()
        .map(Borrow::borrow)
        .filter(|p| selects(svc, p))
        .collect()
}

/// Whether the service has a cluster IP (not headless).
pub fn has_cluster_ip(svc: &Value) -> bool {
    let ip = str_at(svc, "/spec/clusterIP");
    !ip.is_empty() && ip != "None"
}

/// kube's ShouldPodBeInEndpoints: not terminal, an IP, and (unless `include_terminating`)
/// not being deleted.
pub fn should_be_in_endpoints(p: &Value, include_terminating: bool) -> bool {
    if matches!(pod::phase(p), "Succeeded" | "Failed") {
        return false;
    }
    if str_at(p, "/status/podIP").is_empty() && pod_ips(p).is_empty() {
        return false;
    }
    include_terminating || !deleting(p)
}

/// The pod's IPs (status.podIPs, else status.podIP).
pub fn pod_ips(p: &Value) -> Vec<&str> {
    let ips: Vec<&str> = p
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|i| i["ip"].as_str()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        let ip = str_at(p, "/status/podIP");
        if !ip.is_empty() {
            return vec![ip];
        }
    }
    ips
}

pub fn is_ipv6(ip: &str) -> bool {
    ip.contains(':')
}

/// The IP families the service's endpoints are for: spec.ipFamilies, else the family of its
/// cluster IP, else IPv4 (this API server leaves ipFamilies unset on headless services, which
/// a single-stack IPv4 kube-apiserver sets to [IPv4]).
pub fn families(svc: &Value) -> Vec<&'static str> {
    let mut out = Vec::new();
    for f in svc
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = match f.as_str() {
            Some("IPv4") => "IPv4",
            Some("IPv6") => "IPv6",
            _ => continue,
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        let ip = str_at(svc, "/spec/clusterIP");
        out.push(if has_cluster_ip(svc) && is_ipv6(ip) {
            "IPv6"
        } else {
            "IPv4"
        });
    }
    out
}

/// kube's ShouldSetHostname: spec.hostname set and spec.subdomain the service's name.
pub fn hostname<'a>(p: &'a Value, svc: &Value) -> Option<&'a str> {
    let h = str_at(p, "/spec/hostname");
    (!h.is_empty() && str_at(p, "/spec/subdomain") == name(svc) && namespace(p) == namespace(svc))
        .then_some(h)
}

/// kube's FindPort: the port a service port reaches on `pod` — a number as is, a name
/// looked up in the pod's container ports (and sidecars') with the service port's protocol.
pub fn find_port(p: &Value, svc_port: &Value) -> Option<i64> {
    let proto = svc_port["protocol"].as_str().unwrap_or("TCP");
    match &svc_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(want) => {
            let sidecars = p
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c["restartPolicy"] == "Always");
            let containers = p
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            containers
                .chain(sidecars)
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|cp| {
                    cp["name"].as_str() == Some(want.as_str())
                        && cp["protocol"].as_str().unwrap_or("TCP") == proto
                })
                .and_then(|cp| cp["containerPort"].as_i64())
        }
        // Defaulted to the port by the API server; absent only in hand-made objects.
        _ => svc_port["port"].as_i64(),
    }
}

fn service_ports(svc: &Value) -> &[Value] {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn ready_condition(p: &Value) -> Option<&Value> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// kube's podEndpointsChanged: (the pod's endpoint changed, its service membership may have).
pub fn pod_change(old: &Value, new: &Value) -> (bool, bool) {
    let labels_changed = labels_ref(old) != labels_ref(new)
        || str_at(old, "/spec/hostname") != str_at(new, "/spec/hostname")
        || str_at(old, "/spec/subdomain") != str_at(new, "/spec/subdomain");
    let changed = old.pointer("/metadata/deletionTimestamp")
        != new.pointer("/metadata/deletionTimestamp")
        || pod::ready(old) != pod::ready(new)
        || pod_ips(old) != pod_ips(new)
        || str_at(old, "/spec/nodeName") != str_at(new, "/spec/nodeName")
        || pod::phase(old) != pod::phase(new);
    (changed, labels_changed)
}

/// kube's GetServicesToUpdateOnPodChange: the keys (`ns/name`) of the services of `services`
/// (the pod's namespace's) to sync for a pod change; `old`/`new` None on add/delete.
pub fn services_for_pod_change<S: Borrow<Value>>(
    services: &[S],
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<String> {
    let of = |p: &Value| -> Vec<String> {
        services
            .iter()
            .map(Borrow::borrow)
            .filter(|s| selects(s, p))
            .map(|s| format!("{}/{}", namespace(s), name(s)))
            .collect()
    };
    match (old, new) {
        (None, Some(p)) | (Some(p), None) => of(p),
        (None, None) => Vec::new(),
        (Some(o), Some(n)) => {
            let rv = |p: &Value| str_at(p, "/metadata/resourceVersion").to_string();
            if rv(o) == rv(n) && !rv(n).is_empty() {
                return Vec::new();
            }
            let (changed, labels_changed) = pod_change(o, n);
            if !changed && !labels_changed {
                return Vec::new();
            }
            let mut keys = of(n);
            if labels_changed {
                let olds = of(o);
                if changed {
                    for k in olds {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                } else {
                    // Only the services the pod joined or left.
                    let both: Vec<String> =
                        keys.iter().filter(|k| olds.contains(k)).cloned().collect();
                    keys.retain(|k| !both.contains(k));
                    keys.extend(olds.into_iter().filter(|k| !both.contains(k)));
                }
            }
            keys
        }
    }
}

/// What the trigger-time tracker remembers of a service's last sync (kube's
/// TriggerTimeTracker state): its creation time and each selected pod's Ready transition.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TriggerState {
    service: Option<DateTime<Utc>>,
    pods: HashMap<String, DateTime<Utc>>,
}

/// kube's ComputeEndpointLastChangeTriggerTime over the service's selected pods: the
/// service's creation on its first sync, else the earliest trigger that changed since the
/// last (None: nothing changed). Returns the state to keep.
pub fn trigger_time(
    last: Option<&TriggerState>,
    svc: &Value,
    pods: &[&Value],
) -> (Option<DateTime<Utc>>, TriggerState) {
    let created = time_at(svc, "/metadata/creationTimestamp");
    let mut state = TriggerState {
        service: created,
        pods: HashMap::new(),
    };
    let mut min: Option<DateTime<Utc>> = None;
    let mut note = |t: DateTime<Utc>| min = Some(min.map_or(t, |m| m.min(t)));
    for p in pods {
        let Some(t) = ready_condition(p).and_then(|c| time_at(c, "/lastTransitionTime")) else {
            continue;
        };
        let before = last.and_then(|l| l.pods.get(name(p)));
        if before.is_none_or(|b| t > *b) {
            note(t);
        }
        state.pods.insert(name(p).to_string(), t);
    }
    if let Some(c) = created {
        if last.and_then(|l| l.service).is_none_or(|b| c > b) {
            note(c);
        }
    }
    match last {
        None => (created, state),
        Some(_) => (min, state),
    }
}

/// Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros.
pub fn format_time(t: DateTime<Utc>) -> String {
    let base = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return base;
    }
    let frac = format!("{nanos:09}");
    format!(
        "{}.{}Z",
        base.trim_end_matches('Z'),
        frac.trim_end_matches('0')
    )
}

fn target_ref(p: &Value) -> Value {
    json!({"kind": "Pod", "namespace": namespace(p), "name": name(p), "uid": uid(p)})
}

/// kube's podToEndpointAddressForService: the pod's IP of the service's family.
fn address(svc: &Value, p: &Value) -> Option<Value> {
    let v6 = families(svc)[0] == "IPv6";
    let ip = pod_ips(p).into_iter().find(|ip| is_ipv6(ip) == v6)?;
    let mut a = json!({"ip": ip});
    let node = str_at(p, "/spec/nodeName");
    if !node.is_empty() {
        a["nodeName"] = json!(node);
    }
    if let Some(h) = hostname(p, svc) {
        a["hostname"] = json!(h);
    }
    a["targetRef"] = target_ref(p);
    Some(a)
}

fn endpoint_port(svc_port: &Value, port: i64) -> Value {
    let mut p = Map::new();
    if let Some(n) = svc_port["name"].as_str().filter(|n| !n.is_empty()) {
        p.insert("name".into(), json!(n));
    }
    p.insert("port".into(), json!(port));
    p.insert(
        "protocol".into(),
        json!(svc_port["protocol"].as_str().unwrap_or("TCP")),
    );
    if let Some(a) = svc_port["appProtocol"].as_str() {
        p.insert("appProtocol".into(), json!(a));
    }
    Value::Object(p)
}

/// An address, whether ready, and the port it serves (None: a headless service's portless
/// address), before repacking.
type Entry = (Value, bool, Option<Value>);

/// An address's identity: (ip, target uid).
type AddrKey = (String, String);

fn address_key(a: &Value) -> AddrKey {
    (
        str_at(a, "/ip").to_string(),
        str_at(a, "/targetRef/uid").to_string(),
    )
}

/// kube's RepackSubsets: each distinct set of (address, ready) gets one subset with every
/// port it serves; an address not ready for a port is not ready there (not ready trumps).
fn repack(entries: Vec<Entry>) -> Vec<Value> {
    let mut addrs: HashMap<AddrKey, Value> = HashMap::new();
    // Port (canonical string; "" for none) → address key → ready.
    let mut by_port: BTreeMap<String, (Option<Value>, BTreeMap<AddrKey, bool>)> = BTreeMap::new();
    for (a, ready, port) in entries {
        let k = address_key(&a);
        addrs.entry(k.clone()).or_insert(a);
        let pk = port.as_ref().map(Value::to_string).unwrap_or_default();
        let set = &mut by_port
            .entry(pk)
            .or_insert_with(|| (port, BTreeMap::new()))
            .1;
        let r = set.entry(k).or_insert(ready);
        *r = *r && ready;
    }
    // The set of (address, ready) → the ports offered to it.
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<Value>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        let g = groups.entry(set.into_iter().collect()).or_default();
        if let Some(p) = port {
            g.push(p);
        }
    }
    let mut out: Vec<Value> = groups
        .into_iter()
        .map(|(set, ports)| {
            let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
            for (k, r) in set {
                let a = addrs[&k].clone();
                if r {
                    ready.push(a);
                } else {
                    not_ready.push(a);
                }
            }
            let mut s = Map::new();
            if !ready.is_empty() {
                s.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                s.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            if !ports.is_empty() {
                s.insert("ports".into(), Value::Array(ports));
            }
            Value::Object(s)
        })
        .collect();
    out.sort_by_cached_key(|s| s.to_string());
    out
}

/// The Endpoints subsets of `svc` over the pods it selects (kube's syncService).
pub fn subsets(svc: &Value, pods: &[&Value]) -> Vec<Value> {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let ports = service_ports(svc);
    let headless = str_at(svc, "/spec/clusterIP") == "None";
    let mut entries = Vec::new();
    for p in pods {
        if !should_be_in_endpoints(p, publish) {
            continue;
        }
        let Some(a) = address(svc, p) else { continue };
        let ready = publish || pod::ready(p);
        if ports.is_empty() {
            if headless {
                entries.push((a, ready, None));
            }
            continue;
        }
        for sp in ports {
            if let Some(n) = find_port(p, sp) {
                entries.push((a.clone(), ready, Some(endpoint_port(sp, n))));
            }
        }
    }
    repack(entries)
}

fn count(subsets: &[Value], field: &str) -> usize {
    subsets
        .iter()
        .map(|s| s[field].as_array().map_or(0, Vec::len))
        .sum()
}

/// kube's truncateEndpoints: at most [`MAX_CAPACITY`] addresses, not-ready ones dropped
/// first, each subset keeping its proportion; true when it truncated.
fn truncate(subsets: &mut [Value]) -> bool {
    let (ready, not_ready) = (
        count(subsets, "addresses"),
        count(subsets, "notReadyAddresses"),
    );
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let field = if truncate_ready {
        "addresses"
    } else {
        "notReadyAddresses"
    };
    let mut can_add = max;
    let n = subsets.len();
    for (i, s) in subsets.iter_mut().enumerate() {
        let in_subset = s[field].as_array().map_or(0, Vec::len);
        let mut keep = can_add;
        if i != n - 1 {
            keep = (in_subset as f64 / total as f64 * max as f64).ceil() as usize;
        }
        keep = keep.min(can_add);
        can_add -= keep;
        if let Some(a) = s.get_mut(field).and_then(Value::as_array_mut) {
            a.truncate(keep);
        }
        if truncate_ready {
            if let Some(o) = s.as_object_mut() {
                o.remove("notReadyAddresses");
            }
        }
    }
    true
}

fn subsets_of(ep: &Value) -> &[Value] {
    ep.get("subsets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The Endpoints object to write for `svc` (create when `current` is None, else update of
/// `current`), or None when `current` is up to date. `svc` must be [`managed`].
pub fn reconcile(
    svc: &Value,
    pods: &[&Value],
    current: Option<&Value>,
    trigger: Option<DateTime<Utc>>,
) -> Option<Value> {
    let want = subsets(svc, pods);
    let svc_labels = labels_ref(svc);
    if let Some(cur) = current {
        let mut cur_labels = labels_ref(cur).clone();
        cur_labels.remove(HEADLESS);
        let over = count(&want, "addresses") + count(&want, "notReadyAddresses") > MAX_CAPACITY;
        let capacity_ok = !over
            && cur
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(OVER_CAPACITY))
                .is_none();
        if subsets_of(cur) == want.as_slice() && &cur_labels == svc_labels && capacity_ok {
            return None;
        }
    }
    let mut ep = match current {
        Some(c) => c.clone(),
        None => json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name(svc), "namespace": namespace(svc)}}),
    };
    let mut labels = svc_labels.clone();
    if has_cluster_ip(svc) {
        labels.remove(HEADLESS);
    } else {
        labels.insert(HEADLESS.into(), json!(""));
    }
    let mut annotations = ep
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match trigger {
        Some(t) => annotations.insert(TRIGGER_TIME.into(), json!(format_time(t))),
        None => annotations.remove(TRIGGER_TIME),
    };
    let mut want = want;
    if truncate(&mut want) {
        annotations.insert(OVER_CAPACITY.into(), json!("truncated"));
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let meta = ep["metadata"].as_object_mut().expect("metadata object");
    meta.insert("labels".into(), Value::Object(labels));
    if annotations.is_empty() {
        meta.remove("annotations");
    } else {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if want.is_empty() {
        ep.as_object_mut().expect("object").remove("subsets");
    } else {
        ep["subsets"] = Value::Array(want);
    }
    Some(ep)
}

#[cfg(test)]
mod tests;
