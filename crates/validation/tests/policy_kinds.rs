//! PDB, PriorityClass, HPA (v1 and v2), Lease, EndpointSlice, NetworkPolicy, Ingress, Scale.

mod common;

use common::*;
use serde_json::{json, Value};

const INV: &str = "FieldValueInvalid";
const REQ: &str = "FieldValueRequired";
const NS: &str = "FieldValueNotSupported";
const FORB: &str = "FieldValueForbidden";

#[test]
fn pdb_table() {
    let pdb = |spec: Value| json!({"metadata": {"name": "my-pdb", "namespace": "d"}, "spec": spec});
    run_table(
        "policy/v1",
        "PodDisruptionBudget",
        vec![
            (
                "seed minAvailable",
                pdb(json!({"minAvailable": 2, "selector": {"matchLabels": {"foo": "bar"}}})),
                vec![],
            ),
            (
                "seed maxUnavailable",
                pdb(json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"foo": "bar"}}})),
                vec![],
            ),
            (
                "both",
                pdb(json!({"minAvailable": 1, "maxUnavailable": 1})),
                vec![("spec", INV)],
            ),
            (
                "negative",
                pdb(json!({"minAvailable": -1})),
                vec![("spec.minAvailable", INV)],
            ),
            (
                "bad percent",
                pdb(json!({"maxUnavailable": "half"})),
                vec![("spec.maxUnavailable", INV)],
            ),
            (
                "over 100%",
                pdb(json!({"maxUnavailable": "120%"})),
                vec![("spec.maxUnavailable", INV)],
            ),
            (
                "policy",
                pdb(json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"})),
                vec![("spec.unhealthyPodEvictionPolicy", NS)],
            ),
        ],
    );
}

#[test]
fn priority_class_table() {
    let pc = |name: &str, value: i64| json!({"metadata": {"name": name}, "value": value, "globalDefault": false, "description": "x"});
    run_table(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        vec![
            ("seed", pc("high-priority", 1_000_000), vec![]),
            ("too high", pc("high", 1_000_000_001), vec![("value", FORB)]),
            (
                "reserved prefix",
                pc("system-mine", 10),
                vec![("metadata.name", FORB)],
            ),
            (
                "system class",
                pc("system-cluster-critical", 2_000_000_000),
                vec![],
            ),
            (
                "bad policy",
                {
                    let mut p = pc("x", 1);
                    p["preemptionPolicy"] = json!("Sometimes");
                    p
                },
                vec![("preemptionPolicy", NS)],
            ),
        ],
    );
    let errs = update(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        pc("x", 1),
        pc("x", 2),
    );
    assert_eq!(fields(&errs), vec!["value"]);
    let errs = update(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        pc("x", 1),
        pc("y", 1),
    );
    assert_eq!(errs[0].message, "Invalid value: \"y\": field is immutable");
}

#[test]
fn hpa_table() {
    let hpa = |spec: Value| json!({"metadata": {"name": "cpu-autoscale", "namespace": "default"}, "spec": spec});
    let target = json!({"apiVersion": "v1", "kind": "ReplicationController", "name": "example"});
    run_table(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        vec![
            (
                "seed",
                hpa(
                    json!({"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}}]}),
                ),
                vec![],
            ),
            (
                "defaults metric",
                hpa(json!({"scaleTargetRef": target, "maxReplicas": 3})),
                vec![],
            ),
            (
                "no target",
                hpa(json!({"scaleTargetRef": {}, "maxReplicas": 3})),
                vec![
                    ("spec.scaleTargetRef.kind", REQ),
                    ("spec.scaleTargetRef.name", REQ),
                ],
            ),
            (
                "min zero",
                hpa(json!({"scaleTargetRef": target, "minReplicas": 0, "maxReplicas": 3})),
                vec![("spec.minReplicas", INV)],
            ),
            (
                "max below min",
                hpa(json!({"scaleTargetRef": target, "minReplicas": 5, "maxReplicas": 3})),
                vec![("spec.maxReplicas", INV)],
            ),
            (
                "metric type",
                hpa(
                    json!({"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Magic"}]}),
                ),
                vec![("spec.metrics[0].type", NS)],
            ),
            (
                "utilization missing",
                hpa(
                    json!({"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]}),
                ),
                vec![("spec.metrics[0].resource.target.averageUtilization", REQ)],
            ),
        ],
    );
    run_table(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        vec![(
            "seed v1",
            json!({"metadata": {"name": "image-registry", "namespace": "default"}, "spec": {"maxReplicas": 7, "minReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig", "name": "image-registry"}, "targetCPUUtilizationPercentage": 75},
            "status": {"currentReplicas": 5, "desiredReplicas": 0}}),
            vec![],
        )],
    );
}

#[test]
fn coordination_discovery_networking() {
    run_table(
        "coordination.k8s.io/v1",
        "Lease",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.000000Z"}}),
                vec![],
            ),
            (
                "duration",
                json!({"metadata": {"name": "n1", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}),
                vec![("spec.leaseDurationSeconds", INV)],
            ),
        ],
    );
    let es = |at: &str, addr: &str| {
        json!({"metadata": {"name": "web-abc", "namespace": "d"}, "addressType": at,
        "endpoints": [{"addresses": [addr]}], "ports": [{"name": "http", "port": 80}]})
    };
    run_table(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        vec![
            ("ok", es("IPv4", "10.0.0.1"), vec![]),
            ("type", es("IPv5", "10.0.0.1"), vec![("addressType", NS)]),
            (
                "address",
                es("IPv4", "fe80::1"),
                vec![("endpoints[0].addresses[0]", INV)],
            ),
        ],
    );
    assert_eq!(
        fields(&update(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            es("IPv4", "10.0.0.1"),
            es("IPv6", "fe80::1")
        )),
        vec!["addressType"]
    );
    run_table(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "deny", "namespace": "d"}, "spec": {"podSelector": {}}}),
                vec![],
            ),
            (
                "protocol",
                json!({"metadata": {"name": "np", "namespace": "d"}, "spec": {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP", "port": 80}]}]}}),
                vec![("spec.ingress[0].ports[0].protocol", NS)],
            ),
        ],
    );
    let ing = |path_type: &str| {
        json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": [
        {"path": "/", "pathType": path_type, "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    };
    run_table(
        "networking.k8s.io/v1",
        "Ingress",
        vec![
            ("ok", ing("Prefix"), vec![]),
            (
                "path type",
                ing("Glob"),
                vec![("spec.rules[0].http.paths[0].pathType", NS)],
            ),
        ],
    );
}

#[test]
fn scale_subresource() {
    let r = res("apps/v1", "Deployment");
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "d"}, "spec": {"replicas": -1}});
    let errs = capstan_validation::validate(r, &scale, None, Some("scale"));
    assert_eq!(fields(&errs), vec!["spec.replicas"]);
    let ok = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"replicas": 3}});
    assert!(capstan_validation::validate(r, &ok, None, Some("scale")).is_empty());
}

#[test]
fn rbac_names_are_path_segments() {
    let role = |name: &str| json!({"metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
    run_table(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        vec![
            ("colon ok", role("system:controller:job-controller"), vec![]),
            ("slash", role("a/b"), vec![("metadata.name", INV)]),
        ],
    );
}

#[test]
fn rbac_rules_and_bindings() {
    run_table(
        "rbac.authorization.k8s.io/v1",
        "Role",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
                vec![],
            ),
            (
                "no verbs",
                json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}),
                vec![("rules[0].verbs", REQ)],
            ),
            (
                "no groups",
                json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"resources": ["pods"], "verbs": ["get"]}]}),
                vec![("rules[0].apiGroups", REQ)],
            ),
            (
                "urls in role",
                json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
                vec![("rules[0].nonResourceURLs", INV)],
            ),
        ],
    );
    run_table(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        vec![(
            "urls ok",
            json!({"metadata": {"name": "r"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
            vec![],
        )],
    );
    let rb = |kind: &str, subject: serde_json::Value| {
        json!({"metadata": {"name": "b", "namespace": "d"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "view"}, "subjects": [subject]})
    };
    run_table(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        vec![
            (
                "ok",
                rb(
                    "ClusterRole",
                    json!({"kind": "ServiceAccount", "name": "default", "namespace": "d"}),
                ),
                vec![],
            ),
            (
                "user",
                rb(
                    "Role",
                    json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
                ),
                vec![],
            ),
            (
                "bad kind",
                rb("Policy", json!({"kind": "Robot", "name": "x"})),
                vec![("roleRef.kind", NS), ("subjects[0].kind", NS)],
            ),
        ],
    );
    let crb = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default"}]});
    run_table(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        vec![(
            "role in crb, sa without namespace",
            crb,
            vec![("roleRef.kind", NS), ("subjects[0].namespace", REQ)],
        )],
    );
    let old = rb(
        "ClusterRole",
        json!({"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}),
    );
    let mut new = old.clone();
    new["roleRef"]["name"] = json!("edit");
    assert_eq!(
        fields(&update(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            old,
            new
        )),
        vec!["roleRef"]
    );
}

#[test]
fn storage_and_quota() {
    let pvc = |spec: Value| json!({"metadata": {"name": "data", "namespace": "d"}, "spec": spec});
    run_table(
        "v1",
        "PersistentVolumeClaim",
        vec![
            (
                "ok",
                pvc(
                    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
                ),
                vec![],
            ),
            (
                "no modes",
                pvc(json!({"resources": {"requests": {"storage": "1Gi"}}})),
                vec![("spec.accessModes", REQ)],
            ),
            (
                "no storage",
                pvc(json!({"accessModes": ["ReadWriteOnce"]})),
                vec![("spec.resources[storage]", REQ)],
            ),
            (
                "bad mode",
                pvc(
                    json!({"accessModes": ["ReadSometimes"], "resources": {"requests": {"storage": "1Gi"}}}),
                ),
                vec![("spec.accessModes", NS)],
            ),
        ],
    );
    let old = pvc(
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
    );
    let grown = pvc(
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}),
    );
    assert!(update("v1", "PersistentVolumeClaim", old.clone(), grown).is_empty());
    let changed = pvc(
        json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}),
    );
    assert_eq!(
        fields(&update("v1", "PersistentVolumeClaim", old, changed)),
        vec!["spec"]
    );
    run_table(
        "v1",
        "PersistentVolume",
        vec![(
            "ok",
            json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data"}}}),
            vec![],
        )],
    );
    run_table(
        "v1",
        "Endpoints",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "web", "namespace": "d"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
                vec![],
            ),
            (
                "bad ip",
                json!({"metadata": {"name": "web", "namespace": "d"}, "subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]}),
                vec![("subsets[0].addresses[0].ip", INV)],
            ),
        ],
    );
    run_table(
        "v1",
        "ResourceQuota",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "10", "requests.cpu": "4"}}}),
                vec![],
            ),
            (
                "negative",
                json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "-1"}}}),
                vec![("spec.hard[pods]", INV)],
            ),
        ],
    );
    run_table(
        "v1",
        "LimitRange",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}),
                vec![],
            ),
            (
                "type",
                json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"limits": [{"type": "Node"}]}}),
                vec![("spec.limits[0].type", NS)],
            ),
        ],
    );
}

#[test]
fn binding_subresource() {
    let r = res("v1", "Pod");
    let ok = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web", "namespace": "d"}, "target": {"kind": "Node", "name": "n1"}});
    assert!(capstan_validation::validate(r, &ok, None, Some("binding")).is_empty());
    let bad = json!({"metadata": {"name": "web"}, "target": {"kind": "Pod"}});
    assert_eq!(
        fields(&capstan_validation::validate(
            r,
            &bad,
            None,
            Some("binding")
        )),
        vec!["target.kind", "target.name"]
    );
    assert_eq!(
        capstan_validation::subresource_kind("eviction"),
        Some(("policy", "v1", "Eviction"))
    );
    assert!(capstan_validation::unknown_fields_gvk("", "v1", "Binding", &ok).is_empty());
}
