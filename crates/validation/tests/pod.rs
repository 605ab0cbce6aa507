//! Pod validation: create rules, defaults the validator relies on, and update rules.

mod common;

use common::*;
use serde_json::{json, Value};

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "name": "http"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    })
}

fn with(changes: &[(&str, Value)]) -> Value {
    let mut p = pod();
    for (ptr, v) in changes {
        set(&mut p, ptr, v.clone());
    }
    p
}

const INV: &str = "FieldValueInvalid";
const REQ: &str = "FieldValueRequired";
const NS: &str = "FieldValueNotSupported";
const DUP: &str = "FieldValueDuplicate";
const FORB: &str = "FieldValueForbidden";
const NF: &str = "FieldValueNotFound";
const TYPE: &str = "FieldValueTypeInvalid";

#[test]
fn pod_create_table() {
    let cases: Vec<Case> = vec![
        ("valid", pod(), vec![]),
        ("no containers", with(&[("/spec/containers", json!([]))]), vec![("spec.containers", REQ)]),
        ("no image", with(&[("/spec/containers/0/image", Value::Null)]), vec![("spec.containers[0].image", REQ)]),
        ("image whitespace", with(&[("/spec/containers/0/image", json!(" nginx"))]), vec![("spec.containers[0].image", INV)]),
        ("bad container name", with(&[("/spec/containers/0/name", json!("Web_1"))]), vec![("spec.containers[0].name", INV)]),
        (
            "duplicate container",
            with(&[("/spec/containers/1", json!({"name": "web", "image": "busybox"}))]),
            vec![("spec.containers[1].name", DUP)],
        ),
        ("port too big", with(&[("/spec/containers/0/ports/0/containerPort", json!(70000))]), vec![("spec.containers[0].ports[0].containerPort", INV)]),
        ("port protocol", with(&[("/spec/containers/0/ports/0/protocol", json!("HTTP"))]), vec![("spec.containers[0].ports[0].protocol", NS)]),
        ("port name", with(&[("/spec/containers/0/ports/0/name", json!("http_web"))]), vec![("spec.containers[0].ports[0].name", INV)]),
        ("restart policy", with(&[("/spec/restartPolicy", json!("Sometimes"))]), vec![("spec.restartPolicy", NS)]),
        ("dns policy", with(&[("/spec/dnsPolicy", json!("Cluster"))]), vec![("spec.dnsPolicy", NS)]),
        ("dns none needs config", with(&[("/spec/dnsPolicy", json!("None"))]), vec![("spec.dnsConfig", REQ)]),
        ("pull policy", with(&[("/spec/containers/0/imagePullPolicy", json!("Sometimes"))]), vec![("spec.containers[0].imagePullPolicy", NS)]),
        (
            "requests over limits",
            with(&[("/spec/containers/0/resources", json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}))]),
            vec![("spec.containers[0].resources.requests[cpu]", INV)],
        ),
        (
            "bad quantity",
            with(&[("/spec/containers/0/resources", json!({"limits": {"memory": "lots"}}))]),
            // Defaulting copied the limit into requests before the type check saw it.
            vec![("spec.containers[0].resources.limits[memory]", TYPE), ("spec.containers[0].resources.requests[memory]", TYPE)],
        ),
        (
            "nonstandard resource",
            with(&[("/spec/containers/0/resources", json!({"limits": {"gpu": "1"}}))]),
            vec![("spec.containers[0].resources.limits[gpu]", INV), ("spec.containers[0].resources.requests[gpu]", INV)],
        ),
        ("extended resource ok", with(&[("/spec/containers/0/resources", json!({"limits": {"nvidia.com/gpu": "1"}}))]), vec![]),
        ("duplicate volume", with(&[("/spec/volumes/1", json!({"name": "data", "emptyDir": {}}))]), vec![("spec.volumes[1].name", DUP)]),
        (
            "two volume sources",
            with(&[("/spec/volumes/0", json!({"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}))]),
            vec![("spec.volumes[0].emptyDir", FORB)],
        ),
        ("secret volume needs name", with(&[("/spec/volumes/0", json!({"name": "data", "secret": {}}))]), vec![("spec.volumes[0].secret.secretName", REQ)]),
        (
            "mount of missing volume",
            with(&[("/spec/containers/0/volumeMounts", json!([{"name": "nope", "mountPath": "/x"}]))]),
            vec![("spec.containers[0].volumeMounts[0].name", NF)],
        ),
        (
            "mount ok",
            with(&[("/spec/containers/0/volumeMounts", json!([{"name": "data", "mountPath": "/data"}]))]),
            vec![],
        ),
        ("env name", with(&[("/spec/containers/0/env", json!([{"name": "A=B", "value": "x"}]))]), vec![("spec.containers[0].env[0].name", INV)]),
        ("env relaxed ok", with(&[("/spec/containers/0/env", json!([{"name": "1st-var.x", "value": "x"}]))]), vec![]),
        (
            "env value and valueFrom",
            with(&[("/spec/containers/0/env", json!([{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]))]),
            vec![("spec.containers[0].env[0].valueFrom", INV)],
        ),
        (
            "probe without handler",
            with(&[("/spec/containers/0/livenessProbe", json!({"periodSeconds": 5}))]),
            vec![("spec.containers[0].livenessProbe", REQ)],
        ),
        (
            "liveness success threshold",
            with(&[("/spec/containers/0/livenessProbe", json!({"httpGet": {"port": 80}, "successThreshold": 2}))]),
            vec![("spec.containers[0].livenessProbe.successThreshold", INV)],
        ),
        (
            "readiness ok",
            with(&[("/spec/containers/0/readinessProbe", json!({"tcpSocket": {"port": "http"}, "successThreshold": 2}))]),
            vec![],
        ),
        (
            "toleration operator",
            with(&[("/spec/tolerations", json!([{"key": "k", "operator": "Maybe"}]))]),
            vec![("spec.tolerations[0].operator", NS)],
        ),
        (
            "toleration exists with value",
            with(&[("/spec/tolerations", json!([{"key": "k", "operator": "Exists", "value": "v"}]))]),
            vec![("spec.tolerations[0].operator", INV)],
        ),
        ("toleration all ok", with(&[("/spec/tolerations", json!([{"operator": "Exists"}]))]), vec![]),
        ("node selector", with(&[("/spec/nodeSelector", json!({"region": "east", "bad key": "x"}))]), vec![("spec.nodeSelector", INV)]),
        (
            "affinity In without values",
            with(&[(
                "/spec/affinity",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}}),
            )]),
            vec![("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", REQ)],
        ),
        (
            "affinity Gt non-integer",
            with(&[(
                "/spec/affinity",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["many"]}]}]}}}),
            )]),
            vec![("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]", INV)],
        ),
        (
            "affinity Exists with values",
            with(&[(
                "/spec/affinity",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists", "values": ["a"]}]}]}}}),
            )]),
            vec![("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", FORB)],
        ),
        (
            "pod anti-affinity needs topologyKey",
            with(&[(
                "/spec/affinity",
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}}}]}}),
            )]),
            vec![("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", REQ)],
        ),
        ("negative runAsUser", with(&[("/spec/securityContext", json!({"runAsUser": -1}))]), vec![("spec.securityContext.runAsUser", INV)]),
        ("active deadline zero", with(&[("/spec/activeDeadlineSeconds", json!(0))]), vec![("spec.activeDeadlineSeconds", INV)]),
        (
            "init container probe",
            with(&[("/spec/initContainers", json!([{"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}]))]),
            vec![("spec.initContainers[0].readinessProbe", FORB)],
        ),
        ("no name", with(&[("/metadata/name", Value::Null)]), vec![("metadata.name", REQ)]),
        ("generateName", with(&[("/metadata/name", Value::Null), ("/metadata/generateName", json!("web-"))]), vec![]),
        ("bad name", with(&[("/metadata/name", json!("Web_Pod"))]), vec![("metadata.name", INV)]),
        ("no namespace", with(&[("/metadata/namespace", Value::Null)]), vec![("metadata.namespace", REQ)]),
        ("type error", with(&[("/spec/containers/0/ports/0/containerPort", json!("eighty"))]), vec![("spec.containers[0].ports[0].containerPort", TYPE)]),
    ];
    run_table("v1", "Pod", cases);
}

#[test]
fn messages_match_kube() {
    let errs = create(
        "v1",
        "Pod",
        with(&[
            ("/spec/containers/0/image", Value::Null),
            ("/spec/restartPolicy", json!("Foo")),
        ]),
    );
    assert_eq!(
        capstan_validation::invalid_message("Pod", "web", &errs),
        "Pod \"web\" is invalid: [spec.containers[0].image: Required value, spec.restartPolicy: Unsupported value: \"Foo\": supported values: \"Always\", \"OnFailure\", \"Never\"]"
    );
    let errs = create(
        "v1",
        "Pod",
        with(&[("/spec/containers/0/ports/0/containerPort", json!(70000))]),
    );
    assert_eq!(
        errs[0].message,
        "Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    let errs = create("v1", "Pod", with(&[("/metadata/name", json!("Foo_Bar"))]));
    assert_eq!(errs[0].message, "Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    let errs = create(
        "v1",
        "Pod",
        with(&[("/spec/containers/1", json!({"name": "web", "image": "x"}))]),
    );
    assert_eq!(errs[0].message, "Duplicate value: \"web\"");
    let errs = create(
        "v1",
        "Pod",
        with(&[(
            "/spec/containers/0/resources",
            json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}),
        )]),
    );
    assert_eq!(
        errs[0].message,
        "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
    );
}

#[test]
fn pod_update_table() {
    let mut old = pod();
    set(&mut old, "/spec/activeDeadlineSeconds", json!(100));
    set(
        &mut old,
        "/spec/tolerations",
        json!([{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]),
    );
    set(&mut old, "/metadata/uid", json!("u1"));
    capstan_validation::default_object(res("v1", "Pod"), &mut old);
    let change = |changes: &[(&str, Value)]| {
        let mut p = old.clone();
        for (ptr, v) in changes {
            set(&mut p, ptr, v.clone());
        }
        p
    };
    let cases: Vec<Case> = vec![
        ("unchanged", change(&[]), vec![]),
        (
            "image",
            change(&[("/spec/containers/0/image", json!("nginx:1.26"))]),
            vec![],
        ),
        (
            "labels",
            change(&[("/metadata/labels/extra", json!("x"))]),
            vec![],
        ),
        (
            "decrease deadline",
            change(&[("/spec/activeDeadlineSeconds", json!(50))]),
            vec![],
        ),
        (
            "increase deadline",
            change(&[("/spec/activeDeadlineSeconds", json!(200))]),
            vec![("spec.activeDeadlineSeconds", INV)],
        ),
        (
            "unset deadline",
            change(&[("/spec/activeDeadlineSeconds", Value::Null)]),
            vec![("spec.activeDeadlineSeconds", INV)],
        ),
        (
            "add toleration",
            change(&[(
                "/spec/tolerations/1",
                json!({"key": "b", "operator": "Exists"}),
            )]),
            vec![],
        ),
        (
            "change tolerationSeconds",
            change(&[("/spec/tolerations/0/tolerationSeconds", json!(10))]),
            vec![],
        ),
        (
            "remove toleration",
            change(&[("/spec/tolerations", json!([]))]),
            vec![("spec.tolerations", FORB)],
        ),
        (
            "add scheduling gate",
            change(&[("/spec/schedulingGates", json!([{"name": "example.com/g"}]))]),
            vec![("spec.schedulingGates", FORB)],
        ),
        (
            "restart policy",
            change(&[("/spec/restartPolicy", json!("Never"))]),
            vec![("spec", FORB)],
        ),
        (
            "node name",
            change(&[("/spec/nodeName", json!("node-1"))]),
            vec![("spec", FORB)],
        ),
        (
            "port",
            change(&[("/spec/containers/0/ports/0/containerPort", json!(81))]),
            vec![("spec", FORB)],
        ),
        (
            "rename",
            change(&[("/metadata/name", json!("other"))]),
            vec![("metadata.name", INV)],
        ),
        (
            "uid",
            change(&[("/metadata/uid", json!("u2"))]),
            vec![("metadata.uid", INV)],
        ),
        (
            "clear image",
            change(&[("/spec/containers/0/image", json!(""))]),
            vec![("spec.containers[0].image", REQ)],
        ),
    ];
    for (name, new, want) in cases {
        let errs = update("v1", "Pod", old.clone(), new);
        let got: Vec<(String, String)> = errs
            .iter()
            .map(|e| (e.field.clone(), e.reason.to_string()))
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(f, r)| (f.to_string(), r.to_string()))
            .collect();
        assert_eq!(got, want, "case {name}: {errs:#?}");
    }
    let errs = update(
        "v1",
        "Pod",
        old.clone(),
        change(&[("/spec/restartPolicy", json!("Never"))]),
    );
    assert!(errs[0].message.starts_with(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
    ));
    assert!(errs[0].message.contains("spec.restartPolicy"));
    // Scheduling gates may be removed, one or all.
    let mut gated = old.clone();
    set(
        &mut gated,
        "/spec/schedulingGates",
        json!([{"name": "a"}, {"name": "b"}]),
    );
    for left in [json!([{"name": "b"}]), json!([])] {
        let mut new = gated.clone();
        set(&mut new, "/spec/schedulingGates", left.clone());
        assert!(update("v1", "Pod", gated.clone(), new).is_empty(), "{left}");
    }
}

#[test]
fn status_subresource_skips_spec_rules() {
    let r = res("v1", "Pod");
    let mut old = pod();
    capstan_validation::default_object(r, &mut old);
    let mut new = old.clone();
    set(&mut new, "/status", json!({"phase": "Running"}));
    set(&mut new, "/spec/nodeName", json!("n1"));
    assert!(capstan_validation::validate(r, &new, Some(&old), Some("status")).is_empty());
}
