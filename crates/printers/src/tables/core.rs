//! Core/v1 printers: Service, Endpoints, Node, Namespace, ConfigMap, Secret, ServiceAccount,
//! Event (core/v1 and events.k8s.io/v1 shapes), PersistentVolume(Claim), ResourceQuota.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::util::{
    access_modes, age, arr, b, format_labels, i, join_host_port, map, map_len, name, opt_s, s,
    since, time,
};
use crate::quantity::canonical_value;

/// `loadBalancerStatusStringer` (wide): sorted, de-duplicated ingress IPs or hostnames.
pub(crate) fn load_balancer_status(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|ing| {
            let ip = s(ing, "/ip");
            let host = s(ing, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn strings(v: &[Value]) -> Vec<&str> {
    v.iter().filter_map(Value::as_str).collect()
}

/// `getServiceExternalIP` (wide).
pub(crate) fn service_external_ip(svc: &Value) -> String {
    let external_ips = strings(arr(svc, "/spec/externalIPs"));
    match opt_s(svc, "/spec/type").unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_status(arr(svc, "/status/loadBalancer/ingress"));
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(','));
                }
                results.extend(external_ips);
                return results.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `makePortString`: "80/TCP", "80:30080/TCP", comma-joined.
pub(crate) fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = i(p, "/port");
            let proto = opt_s(p, "/protocol").unwrap_or("TCP");
            let node_port = i(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn service(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut internal_ip = s(obj, "/spec/clusterIPs/0");
    if internal_ip.is_empty() {
        internal_ip = s(obj, "/spec/clusterIP");
    }
    let internal_ip = if internal_ip.is_empty() {
        "<none>"
    } else {
        internal_ip
    };
    let mut ports = service_ports(arr(obj, "/spec/ports"));
    if ports.is_empty() {
        ports = "<none>".to_string();
    }
    vec![
        json!(name(obj)),
        json!(opt_s(obj, "/spec/type").unwrap_or("ClusterIP")),
        json!(internal_ip),
        json!(service_external_ip(obj)),
        json!(ports),
        json!(age(obj, now)),
        json!(format_labels(map(obj, "/spec/selector"))),
    ]
}

/// `formatEndpoints` with all ports: "10.0.0.1:80,10.0.0.2:80 + 1 more...", "<none>".
pub(crate) fn format_endpoints(obj: &Value) -> String {
    let subsets = arr(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(a, "/ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, "/ip"), i(p, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

pub(crate) fn endpoints(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(format_endpoints(obj)),
        json!(age(obj, now)),
    ]
}

/// The node STATUS cell: Ready / NotReady / Unknown, plus ",SchedulingDisabled".
pub(crate) fn node_status(obj: &Value) -> String {
    let mut status: Vec<String> = Vec::new();
    // The last condition of a type wins, as the Go map does.
    if let Some(c) = arr(obj, "/status/conditions")
        .iter()
        .rev()
        .find(|c| s(c, "/type") == "Ready")
    {
        if s(c, "/status") == "True" {
            status.push("Ready".into());
        } else {
            status.push("NotReady".into());
        }
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if b(obj, "/spec/unschedulable") {
        status.push("SchedulingDisabled".into());
    }
    status.join(",")
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role=<role>`.
pub(crate) fn node_roles(obj: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in map(obj, "/metadata/labels").into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.insert(v.to_string());
            }
        }
    }
    if roles.is_empty() {
        return "<none>".to_string();
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

fn node_address(obj: &Value, ty: &str) -> String {
    arr(obj, "/status/addresses")
        .iter()
        .find(|a| s(a, "/type") == ty)
        .map_or_else(|| "<none>".to_string(), |a| s(a, "/address").to_string())
}

pub(crate) fn node(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let or_unknown = |ptr: &str| {
        let v = s(obj, ptr);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        json!(name(obj)),
        json!(node_status(obj)),
        json!(node_roles(obj)),
        json!(age(obj, now)),
        json!(s(obj, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(obj, "InternalIP")),
        json!(node_address(obj, "ExternalIP")),
        json!(or_unknown("/status/nodeInfo/osImage")),
        json!(or_unknown("/status/nodeInfo/kernelVersion")),
        json!(or_unknown("/status/nodeInfo/containerRuntimeVersion")),
    ]
}

pub(crate) fn namespace(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(s(obj, "/status/phase")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn config_map(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(map_len(obj, "/data") + map_len(obj, "/binaryData")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn secret(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(s(obj, "/type")),
        json!(map_len(obj, "/data")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn service_account(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(arr(obj, "/secrets").len()),
        json!(age(obj, now)),
    ]
}

/// An Event in the internal (core/v1-like) field names, whichever API version it came from.
struct EventView<'a> {
    obj: &'a Value,
    events_api: bool,
}

impl<'a> EventView<'a> {
    fn new(obj: &'a Value) -> Self {
        let events_api = obj.get("involvedObject").is_none()
            && (obj.get("regarding").is_some()
                || obj.get("note").is_some()
                || s(obj, "/apiVersion").starts_with("events.k8s.io/"));
        EventView { obj, events_api }
    }

    fn field(&self, core: &str, events: &str) -> &'a str {
        s(self.obj, if self.events_api { events } else { core })
    }

    fn time(&self, core: &str, events: &str) -> Option<DateTime<Utc>> {
        time(self.obj, if self.events_api { events } else { core })
    }
}

pub(crate) fn event(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ev = EventView::new(obj);
    let first_ts = ev.time("/firstTimestamp", "/deprecatedFirstTimestamp");
    let first = match first_ts {
        Some(t) => since(Some(t), now),
        None => since(time(obj, "/eventTime"), now),
    };
    let mut last = match ev.time("/lastTimestamp", "/deprecatedLastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = i(
        obj,
        if ev.events_api {
            "/deprecatedCount"
        } else {
            "/count"
        },
    );
    if obj.get("series").is_some_and(|v| !v.is_null()) {
        last = since(time(obj, "/series/lastObservedTime"), now);
        count = i(obj, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = ev
        .field("/involvedObject/kind", "/regarding/kind")
        .to_lowercase();
    let obj_name = ev.field("/involvedObject/name", "/regarding/name");
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let component = ev.field("/source/component", "/deprecatedSource/component");
    let host = ev.field("/source/host", "/deprecatedSource/host");
    let reporting_controller = ev.field("/reportingComponent", "/reportingController");
    let reporting_instance = s(obj, "/reportingInstance");
    let component = if component.is_empty() {
        reporting_controller
    } else {
        component
    };
    let instance = if host.is_empty() {
        reporting_instance
    } else {
        host
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(obj, "/type")),
        json!(s(obj, "/reason")),
        json!(target),
        json!(ev.field("/involvedObject/fieldPath", "/regarding/fieldPath")),
        json!(source),
        json!(ev.field("/message", "/note").trim()),
        json!(first),
        json!(count),
        json!(name(obj)),
    ]
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// `GetPersistentVolume(Claim)Class`: the beta annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    if let Some(c) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
    {
        return c;
    }
    s(obj, "/spec/storageClassName")
}

pub(crate) fn persistent_volume(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = if obj.pointer("/spec/claimRef").is_some_and(|v| !v.is_null()) {
        format!(
            "{}/{}",
            s(obj, "/spec/claimRef/namespace"),
            s(obj, "/spec/claimRef/name")
        )
    } else {
        String::new()
    };
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        s(obj, "/status/phase")
    };
    vec![
        json!(name(obj)),
        json!(canonical_value(obj.pointer("/spec/capacity/storage")).unwrap_or_else(|| "0".into())),
        json!(access_modes(arr(obj, "/spec/accessModes"))),
        json!(s(obj, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(storage_class(obj)),
        json!(opt_s(obj, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(s(obj, "/status/reason")),
        json!(age(obj, now)),
        json!(opt_s(obj, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
}

pub(crate) fn persistent_volume_claim(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        s(obj, "/status/phase")
    };
    let volume = s(obj, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            canonical_value(obj.pointer("/status/capacity/storage")).unwrap_or_else(|| "0".into()),
            access_modes(arr(obj, "/status/accessModes")),
        )
    };
    vec![
        json!(name(obj)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(obj)),
        json!(opt_s(obj, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(age(obj, now)),
        json!(opt_s(obj, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
}

pub(crate) fn resource_quota(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut request: Vec<String> = Vec::new();
    let mut limit: Vec<String> = Vec::new();
    let hard = map(obj, "/status/hard");
    let mut names: Vec<&String> = hard.into_iter().flatten().map(|(k, _)| k).collect();
    names.sort();
    for res in names {
        let used = canonical_value(obj.pointer("/status/used").and_then(|u| u.get(res)))
            .unwrap_or_else(|| "0".into());
        let hard_q = canonical_value(hard.and_then(|h| h.get(res))).unwrap_or_else(|| "0".into());
        let entry = format!("{res}: {used}/{hard_q}");
        let pieces: Vec<&str> = res.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    vec![
        json!(name(obj)),
        json!(request.join(", ")),
        json!(limit.join(", ")),
        json!(age(obj, now)),
    ]
}
