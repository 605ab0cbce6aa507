//! What kube-apiserver's update path does to the incoming object before validating it
//! (`rest.BeforeUpdate` and the Service strategy's `patchAllocatedValues`): carry over the
//! values the server owns, so that clients may omit them.

use serde_json::Value;

use capstan_api::resources::Resource;

use crate::util::{get, s, sd};

fn needs_cluster_ip(svc: &Value) -> bool {
    sd(get(svc, "spec"), "type") != "ExternalName"
}

fn copy_if_missing(new: &mut Value, old: &Value, key: &str) {
    let empty = match new.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        _ => false,
    };
    if empty {
        if let (Some(m), Some(v)) = (new.as_object_mut(), old.get(key).filter(|v| !v.is_null())) {
            m.insert(key.to_string(), v.clone());
        }
    }
}

/// Prepares `new` for an update of `old`: keeps `metadata.uid` when omitted, ignores changes
/// to `metadata.creationTimestamp`, and for Services keeps the allocated clusterIP(s), node
/// ports and health-check node port when the client left them empty. Call before
/// [`crate::default_object`] and [`crate::validate`].
pub fn prepare_for_update(res: &Resource, new: &mut Value, old: &Value) {
    let old_meta = get(old, "metadata");
    if let Some(meta) = new.get_mut("metadata").filter(|m| m.is_object()) {
        copy_if_missing(meta, old_meta, "uid");
        if let Some(ts) = old_meta.get("creationTimestamp").filter(|t| !t.is_null()) {
            meta["creationTimestamp"] = ts.clone();
        }
    }
    if res.group.is_empty()
        && res.kind == "Service"
        && needs_cluster_ip(old)
        && needs_cluster_ip(new)
    {
        let os = get(old, "spec").clone();
        let Some(ns) = new.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        copy_if_missing(ns, &os, "clusterIP");
        copy_if_missing(ns, &os, "clusterIPs");
        copy_if_missing(ns, &os, "healthCheckNodePort");
        let old_ports: Vec<Value> = os
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = ns.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                let matching = old_ports.iter().find(|o| {
                    o.get("port") == p.get("port")
                        && s(o, "protocol").unwrap_or("TCP") == s(p, "protocol").unwrap_or("TCP")
                });
                if let Some(o) = matching {
                    copy_if_missing(p, o, "nodePort");
                }
            }
        }
    }
}
