//! Printers for discovery, networking, RBAC, coordination and scheduling kinds:
//! EndpointSlice, Ingress, IngressClass, NetworkPolicy, (Cluster)RoleBinding, Lease, PriorityClass.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::core::load_balancer_status;
use super::util::{age, arr, b, format_label_selector, i, list_with_more, name, opt_s, s};

pub(crate) fn endpoint_slice(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    const MAX: usize = 3;
    let ports: Vec<String> = arr(obj, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => opt_s(p, "/name").unwrap_or("*").to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr(obj, "/endpoints")
        .iter()
        .flat_map(|e| arr(e, "/addresses").iter())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    vec![
        json!(name(obj)),
        json!(s(obj, "/addressType")),
        json!(list_with_more(&ports, ports.len(), MAX)),
        json!(list_with_more(&addresses, addresses.len(), MAX)),
        json!(age(obj, now)),
    ]
}

/// `formatHosts`: up to three hosts, "*" when none.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = s(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

pub(crate) fn ingress(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = if arr(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(name(obj)),
        json!(opt_s(obj, "/spec/ingressClassName").unwrap_or("<none>")),
        json!(ingress_hosts(arr(obj, "/spec/rules"))),
        json!(load_balancer_status(arr(
            obj,
            "/status/loadBalancer/ingress"
        ))),
        json!(ports),
        json!(age(obj, now)),
    ]
}

pub(crate) fn ingress_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match obj.pointer("/spec/parameters").filter(|p| !p.is_null()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut out = s(p, "/kind").to_string();
            if let Some(group) = opt_s(p, "/apiGroup") {
                out = format!("{out}.{group}");
            }
            format!("{out}/{}", s(p, "/name"))
        }
    };
    vec![
        json!(name(obj)),
        json!(s(obj, "/spec/controller")),
        json!(parameters),
        json!(age(obj, now)),
    ]
}

pub(crate) fn network_policy(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // `&obj.Spec.PodSelector` is never nil: an absent selector is the empty one.
    let empty = json!({});
    let selector = obj
        .pointer("/spec/podSelector")
        .filter(|v| !v.is_null())
        .unwrap_or(&empty);
    vec![
        json!(name(obj)),
        json!(format_label_selector(Some(selector))),
        json!(age(obj, now)),
    ]
}

/// `rbac.SubjectsStrings`: users, groups and "namespace/name" service accounts.
fn subjects(obj: &Value) -> (String, String, String) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(obj, "/subjects") {
        match s(subject, "/kind") {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                s(subject, "/namespace"),
                s(subject, "/name")
            )),
            "User" => users.push(s(subject, "/name").to_string()),
            "Group" => groups.push(s(subject, "/name").to_string()),
            _ => {}
        }
    }
    (users.join(", "), groups.join(", "), sas.join(", "))
}

pub(crate) fn role_binding(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (users, groups, sas) = subjects(obj);
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            s(obj, "/roleRef/kind"),
            s(obj, "/roleRef/name")
        )),
        json!(age(obj, now)),
        json!(users),
        json!(groups),
        json!(sas),
    ]
}

pub(crate) fn lease(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(s(obj, "/spec/holderIdentity")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn runtime_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(s(obj, "/handler")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn priority_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(i(obj, "/value")),
        json!(b(obj, "/globalDefault")),
        json!(age(obj, now)),
        json!(s(obj, "/preemptionPolicy")),
    ]
}
