//! Conversion between served versions and the storage version, for the resources served at
//! more than one group/version (autoscaling/v1 ↔ v2 HPAs, events.k8s.io/v1 ↔ core/v1 Events).
//! Pure functions over JSON.

use capstan_api::resources::Resource;
use serde_json::{json, Map, Value};

/// The object as served at `res` (from its storage form).
pub fn from_storage(res: &Resource, mut obj: Value) -> Value {
    if res.storage_version {
        return obj;
    }
    match (res.group, res.version) {
        ("autoscaling", "v1") => hpa_v2_to_v1(obj),
        ("events.k8s.io", "v1") => event_core_to_events(obj),
        _ => {
            crate::meta::set_type(&mut obj, &res.api_version(), res.kind);
            obj
        }
    }
}

/// The object in its storage form (from its form at `res`), with the storage version's
/// apiVersion and kind (callers have checked the type against `res` already).
pub fn to_storage(res: &Resource, obj: Value) -> Value {
    if res.storage_version {
        return obj;
    }
    match (res.group, res.version) {
        ("autoscaling", "v1") => hpa_v1_to_v2(obj),
        ("events.k8s.io", "v1") => event_events_to_core(obj),
        _ => obj,
    }
}

fn take(o: &mut Map<String, Value>, k: &str) -> Option<Value> {
    o.remove(k)
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    crate::meta::set_type(&mut obj, "autoscaling/v1", "HorizontalPodAutoscaler");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = take(spec, "metrics");
        spec.remove("behavior");
        if let Some(Value::Array(ms)) = metrics {
            for m in ms {
                if m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
                    && m.pointer("/resource/target/type").and_then(Value::as_str)
                        == Some("Utilization")
                {
                    if let Some(u) = m.pointer("/resource/target/averageUtilization") {
                        spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
                    }
                }
            }
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let metrics = take(status, "currentMetrics");
        status.remove("conditions");
        if let Some(Value::Array(ms)) = metrics {
            for m in ms {
                if m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu") {
                    if let Some(u) = m.pointer("/resource/current/averageUtilization") {
                        status.insert("currentCPUUtilizationPercentage".into(), u.clone());
                    }
                }
            }
        }
    }
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    crate::meta::set_type(&mut obj, "autoscaling/v2", "HorizontalPodAutoscaler");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(t) = take(spec, "targetCPUUtilizationPercentage") {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]),
            );
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(c) = take(status, "currentCPUUtilizationPercentage") {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
            );
        }
    }
    obj
}

/// Field renames between core/v1 Event (left) and events.k8s.io/v1 Event (right).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("count", "deprecatedCount"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
];

fn rename(obj: &mut Value, pairs: &[(&str, &str)], forward: bool) {
    if let Some(o) = obj.as_object_mut() {
        for (a, b) in pairs {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if let Some(v) = o.remove(*from) {
                o.insert(to.to_string(), v);
            }
        }
    }
}

fn event_core_to_events(mut obj: Value) -> Value {
    rename(&mut obj, EVENT_FIELDS, true);
    crate::meta::set_type(&mut obj, "events.k8s.io/v1", "Event");
    if let Some(o) = obj.as_object_mut() {
        if let Some(Value::Object(series)) = o.get_mut("series") {
            series.remove("state");
        }
        if o.get("eventTime").is_none_or(Value::is_null) {
            o.insert("eventTime".into(), Value::Null);
        }
    }
    obj
}

fn event_events_to_core(mut obj: Value) -> Value {
    rename(&mut obj, EVENT_FIELDS, false);
    crate::meta::set_type(&mut obj, "v1", "Event");
    if let Some(o) = obj.as_object_mut() {
        if o.get("eventTime").is_some_and(Value::is_null) {
            o.remove("eventTime");
        }
        // core/v1 consumers look at firstTimestamp/lastTimestamp/source; fill them from the new fields.
        if !o.contains_key("source") {
            if let Some(c) = o.get("reportingComponent").cloned() {
                let mut src = json!({"component": c});
                if let Some(h) = o.get("reportingInstance").cloned() {
                    src["host"] = h;
                }
                o.insert("source".into(), src);
            }
        }
        if !o.contains_key("count") {
            let c = o
                .get("series")
                .and_then(|s| s.get("count"))
                .cloned()
                .unwrap_or(json!(1));
            o.insert("count".into(), c);
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_api::resources::find;

    #[test]
    fn hpa_round_trips_cpu_target() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let obj = json!({"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},
            "spec":{"scaleTargetRef":{"kind":"Deployment","name":"web","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":5,"targetCPUUtilizationPercentage":50}});
        let stored = to_storage(v1, obj.clone());
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored.pointer("/spec/metrics/0/resource/target/averageUtilization"),
            Some(&json!(50))
        );
        assert_eq!(from_storage(v1, stored), obj);
    }

    #[test]
    fn events_rename_fields() {
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"kind":"Pod","name":"p"},"message":"hi","reason":"Created","count":2});
        let out = from_storage(ev, core);
        assert_eq!(out["apiVersion"], "events.k8s.io/v1");
        assert_eq!(out["note"], "hi");
        assert_eq!(out["regarding"]["name"], "p");
        assert_eq!(out["deprecatedCount"], 2);
    }
}
