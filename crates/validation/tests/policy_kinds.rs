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
