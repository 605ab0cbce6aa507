//! Small accessors and formatters shared by the printers: JSON lookups with Go zero-value
//! defaults, timestamps, label/selector rendering and container layout.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::duration::human_duration;
use crate::selectors::LabelSelector;

/// String at a JSON pointer, "" when absent (Go's zero value).
pub(crate) fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Optional string at a JSON pointer (a Go `*string`).
pub(crate) fn opt_s<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.pointer(ptr).and_then(Value::as_str)
}

/// Integer at a JSON pointer, 0 when absent.
pub(crate) fn i(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// Optional integer (a Go `*int32`).
pub(crate) fn opt_i(obj: &Value, ptr: &str) -> Option<i64> {
    obj.pointer(ptr).and_then(Value::as_i64)
}

/// Boolean at a JSON pointer, false when absent.
pub(crate) fn b(obj: &Value, ptr: &str) -> bool {
    obj.pointer(ptr).and_then(Value::as_bool).unwrap_or(false)
}

/// Array at a JSON pointer, empty when absent.
pub(crate) fn arr<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Object at a JSON pointer.
pub(crate) fn map<'a>(obj: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    obj.pointer(ptr).and_then(Value::as_object)
}

/// Number of entries in a map field (0 when absent).
pub(crate) fn map_len(obj: &Value, ptr: &str) -> i64 {
    map(obj, ptr).map_or(0, |m| m.len() as i64)
}

/// A timestamp field (RFC 3339, with or without fractional seconds); `None` is Go's zero time.
pub(crate) fn time(obj: &Value, ptr: &str) -> Option<DateTime<Utc>> {
    let raw = opt_s(obj, ptr)?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `translateTimestampSince`: "<unknown>" for the zero time, else `HumanDuration(now - t)`.
pub(crate) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

/// AGE of an object: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, now: DateTime<Utc>) -> String {
    since(time(obj, "/metadata/creationTimestamp"), now)
}

pub(crate) fn name(obj: &Value) -> &str {
    s(obj, "/metadata/name")
}

/// `labels.FormatLabels`: sorted `k=v` joined by ",", "<none>" when empty.
pub(crate) fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&String, &str)> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `LabelSelectorAsSelector(sel).String()`; `None` when conversion fails.
pub(crate) fn selector_string(v: Option<&Value>) -> Option<String> {
    LabelSelector::from_json(v.unwrap_or(&Value::Null))
        .ok()
        .map(|s| s.to_string())
}

/// `metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid.
pub(crate) fn format_label_selector(v: Option<&Value>) -> String {
    match selector_string(v) {
        None => "<error>".to_string(),
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, each comma-joined.
pub(crate) fn containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `intstr.IntOrString.String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, comma-joined.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `listWithMoreString`: at most `max` entries, then " + N more...", "<unset>" when empty.
pub(crate) fn list_with_more(list: &[String], count: usize, max: usize) -> String {
    let shown = &list[..list.len().min(max)];
    let ret = shown.join(",");
    if count > max {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

/// `net.JoinHostPort`: IPv6 addresses get brackets.
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
