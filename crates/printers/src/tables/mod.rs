//! Server-side printing: `meta.k8s.io/v1` `Table` responses for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Columns and cells follow kube-apiserver v1.32's `pkg/printers/internalversion/printers.go`,
//! printed with `Wide: true` as the server always does (kubectl hides priority-1 columns unless
//! `-o wide`). Kinds without a printer there (Role, ClusterRole, LimitRange, ...) get the
//! default table: `Name` and `Created At`.

mod columns;
mod core;
pub mod descriptions;
mod other;
mod pod;
mod util;
mod workloads;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub use pod::ready_status_restarts as pod_ready_status_restarts;

/// A `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnDefinition {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
}

/// Column definitions for `kind`, exactly as kube-apiserver's printers define them.
pub fn columns(kind: &str) -> Vec<ColumnDefinition> {
    columns::for_kind(kind).unwrap_or_else(columns::default_columns)
}

/// Whether kube-apiserver has a dedicated printer for `kind` (otherwise the default table is used).
pub fn has_printer(kind: &str) -> bool {
    columns::for_kind(kind).is_some()
}

/// One row's cells for one object of `kind`; `now` drives the AGE-style columns.
pub fn cells(kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let f: fn(&Value, DateTime<Utc>) -> Vec<Value> = match kind {
        "Pod" => pod::cells,
        "PodDisruptionBudget" => workloads::pod_disruption_budget,
        "ReplicationController" => workloads::replication_controller,
        "ReplicaSet" => workloads::replica_set,
        "DaemonSet" => workloads::daemon_set,
        "Job" => workloads::job,
        "CronJob" => workloads::cron_job,
        "Service" => core::service,
        "Ingress" => other::ingress,
        "IngressClass" => other::ingress_class,
        "StatefulSet" => workloads::stateful_set,
        "Endpoints" => core::endpoints,
        "Node" => core::node,
        "Event" => core::event,
        "Namespace" => core::namespace,
        "Secret" => core::secret,
        "ServiceAccount" => core::service_account,
        "PersistentVolume" => core::persistent_volume,
        "PersistentVolumeClaim" => core::persistent_volume_claim,
        "Deployment" => workloads::deployment,
        "HorizontalPodAutoscaler" => workloads::horizontal_pod_autoscaler,
        "ConfigMap" => core::config_map,
        "NetworkPolicy" => other::network_policy,
        "RoleBinding" | "ClusterRoleBinding" => other::role_binding,
        "Lease" => other::lease,
        "ControllerRevision" => workloads::controller_revision,
        "ResourceQuota" => core::resource_quota,
        "PriorityClass" => other::priority_class,
        "RuntimeClass" => other::runtime_class,
        "EndpointSlice" => other::endpoint_slice,
        "Scale" => workloads::scale,
        _ => default_cells,
    };
    f(obj, now)
}

/// The default table's cells: name and `creationTimestamp` as RFC 3339 UTC
/// (Go's zero time when unset).
fn default_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let created = util::time(obj, "/metadata/creationTimestamp")
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(util::name(obj)), json!(created)]
}

/// `row.object` for the requested `includeObject` policy: "None" → null, "Object" → the object,
/// anything else ("Metadata", the default) → a `PartialObjectMetadata`.
fn row_object(obj: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// Table rows (`{"cells": [...], "object": ...}`, plus `conditions` for finished pods).
pub fn rows(kind: &str, objs: &[&Value], include_object: &str, now: DateTime<Utc>) -> Vec<Value> {
    objs.iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells(kind, obj, now)));
            if kind == "Pod" {
                if let Some(c) = pod::conditions(obj) {
                    row.insert("conditions".into(), c);
                }
            }
            row.insert("object".into(), row_object(obj, include_object));
            Value::Object(row)
        })
        .collect()
}

/// A full `meta.k8s.io/v1` `Table` for objects of `kind`. `list_meta` becomes `metadata`
/// (`resourceVersion`, `continue`, ...).
pub fn table(
    kind: &str,
    objs: &[&Value],
    include_object: &str,
    list_meta: Value,
    now: DateTime<Utc>,
) -> Value {
    let metadata = if list_meta.is_null() {
        json!({})
    } else {
        list_meta
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(kind),
        "rows": rows(kind, objs, include_object, now),
    })
}

#[cfg(test)]
mod tests;
