//! Small helpers over object metadata in JSON form.

use serde_json::{Map, Value};

pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str)
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

/// The metadata map, created if absent.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("object");
    if !o.get("metadata").is_some_and(Value::is_object) {
        o.insert("metadata".into(), Value::Object(Map::new()));
    }
    o.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata object")
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.pointer("/metadata/labels").and_then(Value::as_object)
}

/// A namespace's own finalizers (`spec.finalizers`, the namespace controller's `kubernetes`)
/// and metadata.finalizers are both empty.
pub fn namespace_finalized(obj: &Value) -> bool {
    finalizers(obj).is_empty()
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
}

/// RFC 3339 "now" with second precision, as metav1.Time serializes.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 with microseconds, as metav1.MicroTime serializes.
pub fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The object with kind/apiVersion set.
pub fn set_type(obj: &mut Value, api_version: &str, kind: &str) {
    if let Some(o) = obj.as_object_mut() {
        // Keep kind/apiVersion first in the output, as Kubernetes prints them.
        let rest: Map<String, Value> = std::mem::take(o)
            .into_iter()
            .filter(|(k, _)| k != "kind" && k != "apiVersion")
            .collect();
        o.insert("kind".into(), Value::String(kind.into()));
        o.insert("apiVersion".into(), Value::String(api_version.into()));
        o.extend(rest);
    }
}

/// A random 5-character suffix from kube's alphabet (no vowels, no confusable digits).
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
        .collect()
}
