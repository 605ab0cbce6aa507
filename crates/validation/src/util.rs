//! Small accessors over `serde_json::Value` used by the validators and defaulters.

use serde_json::{Map, Value};

/// The string at `v[k]`, if it is one.
pub(crate) fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The string at `v[k]`, or "".
pub(crate) fn sd<'a>(v: &'a Value, k: &str) -> &'a str {
    s(v, k).unwrap_or("")
}

/// The array at `v[k]`, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `v[k]`, if it is one.
pub(crate) fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

/// The integer at `v[k]`, if it is one.
pub(crate) fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// Whether `v[k]` is present and not null.
pub(crate) fn has(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

/// `v[k]` or JSON null.
pub(crate) fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    v.get(k).unwrap_or(&NULL)
}

/// Mutable object at `v[k]`, created (replacing null or a non-object) when absent.
pub(crate) fn ensure_obj<'a>(v: &'a mut Value, k: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let m = v.as_object_mut().expect("object");
    let e = m
        .entry(k.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e
}

/// Sets `v[k] = val` when `v[k]` is absent or null. `v` must be an object (no-op otherwise).
pub(crate) fn set_default(v: &mut Value, k: &str, val: Value) {
    if let Some(m) = v.as_object_mut() {
        match m.get(k) {
            Some(x) if !x.is_null() => {}
            _ => {
                m.insert(k.to_string(), val);
            }
        }
    }
}

/// Whether `v` is an integer-or-string value holding a percentage ("25%").
pub(crate) fn is_percent(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
    })
}
