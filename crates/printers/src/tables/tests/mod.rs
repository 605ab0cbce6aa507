//! Table-driven tests for the printers: table shape, columns and default tables here;
//! per-kind cells in `pod` and `kinds`.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::*;

mod kinds;
mod pod;

pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn ago(d: Duration) -> String {
    (now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn cell_strings(kind: &str, obj: &Value) -> Vec<String> {
    cells(kind, obj, now())
        .into_iter()
        .map(|c| match c {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn every_served_kind_has_matching_columns_and_cells() {
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(Duration::minutes(5))}});
    for r in capstan_api::resources::RESOURCES {
        let cols = columns(r.kind);
        let cs = cells(r.kind, &obj, now());
        assert_eq!(cols.len(), cs.len(), "{}", r.kind);
        let t = table(
            r.kind,
            &[&obj],
            "Metadata",
            json!({"resourceVersion": "7"}),
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "x");
    }
}

#[test]
fn default_table_for_kinds_without_printer() {
    for kind in ["Role", "ClusterRole", "LimitRange"] {
        assert!(!has_printer(kind));
        let cols = columns(kind);
        assert_eq!(cols[0].name, "Name");
        assert_eq!(cols[1].name, "Created At");
        assert_eq!(cols[1].type_, "date");
    }
    let obj = json!({"metadata": {"name": "r", "creationTimestamp": "2023-05-06T07:08:09Z"}});
    assert_eq!(cell_strings("Role", &obj), ["r", "2023-05-06T07:08:09Z"]);
    let bare = json!({"metadata": {"name": "r"}});
    assert_eq!(cell_strings("Role", &bare)[1], "0001-01-01T00:00:00Z");
}

#[test]
fn column_definition_json() {
    let v = serde_json::to_value(&columns("Pod")[0]).unwrap();
    assert_eq!(v["name"], "Name");
    assert_eq!(v["type"], "string");
    assert_eq!(v["format"], "name");
    assert_eq!(v["priority"], 0);
    assert!(v["description"]
        .as_str()
        .unwrap()
        .starts_with("Name must be unique"));
    let names: Vec<String> = columns("Pod").into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
}

#[test]
fn include_object_policies() {
    let obj = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}});
    let none = table("ConfigMap", &[&obj], "None", json!({}), now());
    assert!(none["rows"][0]["object"].is_null());
    let full = table("ConfigMap", &[&obj], "Object", json!({}), now());
    assert_eq!(full["rows"][0]["object"], obj);
    let meta = table("ConfigMap", &[&obj], "", Value::Null, now());
    assert_eq!(meta["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(meta["metadata"], json!({}));
}
