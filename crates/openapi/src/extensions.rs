//! Kubernetes OpenAPI extensions that k8s-openapi's schemas lack: the strategic-merge-patch tags
//! (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`), server-side-apply list and map
//! markers (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`) and
//! kube's v3 shapes of the special string types.

use serde_json::{json, Map, Value};

/// The tags of one list-valued property.
#[derive(Debug, Clone, Copy)]
struct ListTags {
    schema: &'static str,
    property: &'static str,
    merge_key: Option<&'static str>,
    strategy: Option<&'static str>,
    list_type: Option<&'static str>,
    map_keys: &'static [&'static str],
}

const fn merged(
    schema: &'static str,
    property: &'static str,
    key: &'static str,
    map_keys: &'static [&'static str],
) -> ListTags {
    ListTags {
        schema,
        property,
        merge_key: Some(key),
        strategy: Some("merge"),
        list_type: Some("map"),
        map_keys,
    }
}

const fn retained(schema: &'static str, property: &'static str) -> ListTags {
    ListTags {
        strategy: Some("merge,retainKeys"),
        ..merged(schema, property, "name", &["name"])
    }
}

/// Merged by key for SMP, `+listType=atomic` for SSA.
const fn merged_atomic(
    schema: &'static str,
    property: &'static str,
    key: &'static str,
) -> ListTags {
    ListTags {
        list_type: Some("atomic"),
        map_keys: &[],
        ..merged(schema, property, key, &[])
    }
}

/// Primitive list merged as a set.
const fn set(schema: &'static str, property: &'static str) -> ListTags {
    ListTags {
        schema,
        property,
        merge_key: None,
        strategy: Some("merge"),
        list_type: Some("set"),
        map_keys: &[],
    }
}

/// Keyed for SSA only (no SMP tags).
const fn ssa_map(
    schema: &'static str,
    property: &'static str,
    map_keys: &'static [&'static str],
) -> ListTags {
    ListTags {
        schema,
        property,
        merge_key: None,
        strategy: None,
        list_type: Some("map"),
        map_keys,
    }
}

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];

macro_rules! core {
    ($n:literal) => {
        concat!("io.k8s.api.core.v1.", $n)
    };
}

/// The list tags of k8s.io/api v1.32 for the types Capstan serves.
static LIST_TAGS: &[ListTags] = &[
    merged(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        &["uid"],
    ),
    set(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    merged(core!("PodSpec"), "containers", "name", NAME),
    merged(core!("PodSpec"), "initContainers", "name", NAME),
    merged(core!("PodSpec"), "ephemeralContainers", "name", NAME),
    retained(core!("PodSpec"), "volumes"),
    merged(core!("PodSpec"), "imagePullSecrets", "name", NAME),
    merged(core!("PodSpec"), "hostAliases", "ip", &["ip"]),
    merged(
        core!("PodSpec"),
        "topologySpreadConstraints",
        "topologyKey",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    retained(core!("PodSpec"), "resourceClaims"),
    merged(core!("PodSpec"), "schedulingGates", "name", NAME),
    merged(
        core!("Container"),
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merged(core!("Container"), "env", "name", NAME),
    merged(
        core!("Container"),
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merged(
        core!("Container"),
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    merged(
        core!("EphemeralContainer"),
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merged(core!("EphemeralContainer"), "env", "name", NAME),
    merged(
        core!("EphemeralContainer"),
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merged(
        core!("EphemeralContainer"),
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    ssa_map(core!("ResourceRequirements"), "claims", NAME),
    merged(core!("PodStatus"), "conditions", "type", TYPE),
    merged(core!("PodStatus"), "podIPs", "ip", &["ip"]),
    merged(core!("PodStatus"), "hostIPs", "ip", &["ip"]),
    retained(core!("PodStatus"), "resourceClaimStatuses"),
    merged(core!("ServiceSpec"), "ports", "port", &["port", "protocol"]),
    merged(core!("ServiceStatus"), "conditions", "type", TYPE),
    merged(core!("NodeStatus"), "conditions", "type", TYPE),
    merged_atomic(core!("NodeStatus"), "addresses", "type"),
    set(core!("NodeSpec"), "podCIDRs"),
    merged(core!("NamespaceStatus"), "conditions", "type", TYPE),
    merged(
        core!("PersistentVolumeClaimStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merged(
        core!("ReplicationControllerStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merged_atomic(core!("ServiceAccount"), "secrets", "name"),
    merged(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merged(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merged(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merged(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merged_atomic("io.k8s.api.batch.v1.JobStatus", "conditions", "type"),
    merged(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merged(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "type",
        TYPE,
    ),
];

/// Types that server-side apply owns as one value (`x-kubernetes-map-type: atomic`).
static ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
];

/// Add the extensions above to the definitions present in `schemas`, and give the special
/// string types kube's v3 shapes.
pub fn apply(schemas: &mut Map<String, Value>) {
    for t in LIST_TAGS {
        let Some(prop) = schemas
            .get_mut(t.schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(t.property))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(k) = t.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), k.into());
        }
        if let Some(s) = t.strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), s.into());
        }
        if let Some(l) = t.list_type {
            prop.insert("x-kubernetes-list-type".into(), l.into());
        }
        if !t.map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(t.map_keys));
        }
    }
    for name in ATOMIC_STRUCTS {
        if let Some(s) = schemas.get_mut(*name).and_then(Value::as_object_mut) {
            s.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    if let Some(s) = schemas
        .get_mut("io.k8s.apimachinery.pkg.api.resource.Quantity")
        .and_then(Value::as_object_mut)
    {
        s.remove("x-kubernetes-int-or-string");
        s.insert(
            "oneOf".into(),
            json!([{"type": "string"}, {"type": "number"}]),
        );
    }
    if let Some(s) = schemas
        .get_mut("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
        .and_then(Value::as_object_mut)
    {
        s.insert("format".into(), "int-or-string".into());
        s.insert(
            "oneOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tagged_schema_name_is_kubernetes_style() {
        for t in LIST_TAGS {
            assert!(t.schema.starts_with("io.k8s."), "{}", t.schema);
            assert!(t.merge_key.is_some() || t.list_type.is_some());
        }
    }
}
