//! Service, Secret, ConfigMap, Namespace, Node, Event validation tables.

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const INV: &str = "FieldValueInvalid";
const REQ: &str = "FieldValueRequired";
const NS: &str = "FieldValueNotSupported";
const DUP: &str = "FieldValueDuplicate";
const FORB: &str = "FieldValueForbidden";
const LONG: &str = "FieldValueTooLong";

fn svc(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn service_table() {
    let cases: Vec<Case> = vec![
        (
            "valid",
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]})),
            vec![],
        ),
        (
            "no ports",
            svc(json!({"selector": {"app": "web"}})),
            vec![("spec.ports", REQ)],
        ),
        (
            "headless no ports",
            svc(json!({"clusterIP": "None"})),
            vec![],
        ),
        (
            "external name",
            svc(json!({"type": "ExternalName", "externalName": "db.example.com"})),
            vec![],
        ),
        (
            "external name missing",
            svc(json!({"type": "ExternalName"})),
            vec![("spec.externalName", REQ)],
        ),
        (
            "port range",
            svc(json!({"ports": [{"port": 0}, {"port": 70000, "name": "b"}]})),
            // targetPort defaults to port, so it is reported too (as kube-apiserver does).
            vec![
                ("spec.ports[0].name", REQ),
                ("spec.ports[0].port", INV),
                ("spec.ports[0].targetPort", INV),
                ("spec.ports[1].port", INV),
                ("spec.ports[1].targetPort", INV),
            ],
        ),
        (
            "duplicate names",
            svc(json!({"ports": [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]})),
            vec![("spec.ports[1].name", DUP)],
        ),
        (
            "protocol",
            svc(json!({"ports": [{"port": 80, "protocol": "HTTP"}]})),
            vec![("spec.ports[0].protocol", NS)],
        ),
        (
            "type",
            svc(json!({"type": "Magic", "ports": [{"port": 80}]})),
            vec![("spec.type", NS)],
        ),
        (
            "target port name",
            svc(json!({"ports": [{"port": 80, "targetPort": "web_port"}]})),
            vec![("spec.ports[0].targetPort", INV)],
        ),
        (
            "headless nodeport",
            svc(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        (
            "nodePort on ClusterIP",
            svc(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
            vec![("spec.ports[0].nodePort", FORB)],
        ),
        (
            "nodePort range",
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]})),
            vec![("spec.ports[0].nodePort", INV)],
        ),
        (
            // The --service-node-port-range is the allocator's to check.
            "nodePort outside the default range",
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]})),
            vec![],
        ),
        (
            "duplicate port",
            svc(
                json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}, {"port": 80, "name": "c", "protocol": "UDP"}]}),
            ),
            vec![("spec.ports[1]", DUP)],
        ),
        (
            "duplicate nodePort",
            svc(
                json!({"type": "NodePort", "ports": [{"port": 80, "name": "a", "nodePort": 30080}, {"port": 81, "name": "b", "nodePort": 30080}]}),
            ),
            vec![("spec.ports[1].nodePort", DUP)],
        ),
        (
            "healthCheckNodePort without Local",
            svc(
                json!({"type": "LoadBalancer", "healthCheckNodePort": 30001, "ports": [{"port": 80}]}),
            ),
            vec![("spec.healthCheckNodePort", INV)],
        ),
        (
            "healthCheckNodePort ok",
            svc(
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30001, "ports": [{"port": 80}]}),
            ),
            vec![],
        ),
        (
            "SCTP",
            svc(json!({"ports": [{"port": 80, "protocol": "SCTP"}]})),
            vec![],
        ),
        (
            "nodePort ok",
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
            vec![],
        ),
        (
            "affinity",
            svc(json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]})),
            vec![("spec.sessionAffinity", NS)],
        ),
        (
            "bad cluster ip",
            svc(json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]})),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        (
            "etp on ClusterIP",
            svc(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]})),
            vec![("spec.externalTrafficPolicy", INV)],
        ),
        (
            "seed docker-registry",
            svc(
                json!({"selector": {"docker-registry": "default"}, "clusterIP": "172.30.136.123", "ports": [{"nodePort": 0, "port": 5000, "protocol": "TCP", "targetPort": 5000}]}),
            ),
            vec![],
        ),
        (
            "seed headless",
            svc(
                json!({"clusterIP": "None", "ports": [{"name": "web", "port": 5432, "protocol": "TCP", "targetPort": 8080}], "selector": {"name": "frontend"}, "sessionAffinity": "None", "type": "ClusterIP"}),
            ),
            vec![],
        ),
    ];
    run_table("v1", "Service", cases);
    // DNS-1035: names must start with a letter; the seeds' Tutorial_point_service is invalid.
    let mut s = svc(json!({"ports": [{"port": 80}]}));
    set(&mut s, "/metadata/name", json!("Tutorial_point_service"));
    assert_eq!(fields(&create("v1", "Service", s)), vec!["metadata.name"]);
    let mut s = svc(json!({"ports": [{"port": 80}]}));
    set(&mut s, "/metadata/name", json!("a".repeat(64)));
    let errs = create("v1", "Service", s);
    assert_eq!(
        errs[0].message.split(": ").nth(2),
        Some("must be no more than 63 characters")
    );
    // kube's exact messages.
    let msgs = |s: Value| -> Vec<String> {
        create("v1", "Service", s)
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    let mut s = svc(json!({"ports": [{"port": 80}]}));
    set(&mut s, "/metadata/name", json!("1web"));
    assert_eq!(msgs(s), vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]);
    assert_eq!(
        msgs(svc(json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}))),
        vec!["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]
    );
    assert_eq!(
        msgs(svc(
            json!({"ports": [{"port": 80}, {"port": 81, "name": "b"}]})
        )),
        vec!["spec.ports[0].name: Required value"]
    );
    assert_eq!(
        msgs(svc(json!({"ports": [{"port": 80, "protocol": "HTTP"}]}))),
        vec!["spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""]
    );
    assert_eq!(
        msgs(svc(json!({"ports": [{"port": 70000, "targetPort": 80}]}))),
        vec!["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"]
    );
    assert_eq!(
        msgs(svc(json!({"ports": [{"port": 80, "targetPort": "web_port"}]}))),
        vec!["spec.ports[0].targetPort: Invalid value: \"web_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]
    );
}

#[test]
fn service_update() {
    let old = svc(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}));
    assert!(update("v1", "Service", old.clone(), old.clone()).is_empty());
    let mut new = old.clone();
    set(&mut new, "/spec/clusterIP", json!("10.96.0.11"));
    set(&mut new, "/spec/clusterIPs", json!(["10.96.0.11"]));
    assert_eq!(
        fields(&update("v1", "Service", old.clone(), new)),
        vec!["spec.clusterIPs[0]"]
    );
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ty: Option<&str>, data: Value) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": data});
    if let Some(t) = ty {
        s["type"] = json!(t);
    }
    s
}

#[test]
fn secret_table() {
    let cases: Vec<Case> = vec![
        (
            "opaque",
            secret(
                None,
                json!({"username": "dmFsdWUtMQ0K", "password": "dmFsdWUtMg0KDQo="}),
            ),
            vec![],
        ),
        (
            "bad key",
            secret(None, json!({"a b": b64("x")})),
            vec![("data[a b]", INV)],
        ),
        (
            "too big",
            secret(None, json!({"big": b64(&"x".repeat(1024 * 1024 + 1))})),
            vec![("data", LONG)],
        ),
        (
            "basic-auth ok",
            secret(
                Some("kubernetes.io/basic-auth"),
                json!({"username": b64("u")}),
            ),
            vec![],
        ),
        (
            "basic-auth empty",
            secret(Some("kubernetes.io/basic-auth"), json!({})),
            vec![("data[username]", REQ), ("data[password]", REQ)],
        ),
        (
            "ssh",
            secret(Some("kubernetes.io/ssh-auth"), json!({})),
            vec![("data[ssh-privatekey]", REQ)],
        ),
        (
            "tls",
            secret(Some("kubernetes.io/tls"), json!({"tls.crt": b64("c")})),
            vec![("data[tls.key]", REQ)],
        ),
        (
            "tls ok",
            secret(
                Some("kubernetes.io/tls"),
                json!({"tls.crt": b64("c"), "tls.key": b64("k")}),
            ),
            vec![],
        ),
        (
            "sa token",
            secret(Some("kubernetes.io/service-account-token"), json!({})),
            vec![(
                "metadata.annotations[kubernetes.io/service-account.name]",
                REQ,
            )],
        ),
        (
            "dockerconfigjson missing",
            secret(Some("kubernetes.io/dockerconfigjson"), json!({})),
            vec![("data[.dockerconfigjson]", REQ)],
        ),
        (
            "dockerconfigjson bad",
            secret(
                Some("kubernetes.io/dockerconfigjson"),
                json!({".dockerconfigjson": b64("{nope")}),
            ),
            vec![("data[.dockerconfigjson]", INV)],
        ),
        (
            "dockerconfigjson ok",
            secret(
                Some("kubernetes.io/dockerconfigjson"),
                json!({".dockerconfigjson": b64("{\"auths\":{}}")}),
            ),
            vec![],
        ),
        (
            "dockercfg",
            secret(Some("kubernetes.io/dockercfg"), json!({})),
            vec![("data[.dockercfg]", REQ)],
        ),
    ];
    run_table("v1", "Secret", cases);
    let errs = create(
        "v1",
        "Secret",
        secret(None, json!({"big": b64(&"x".repeat(1024 * 1024 + 1))})),
    );
    assert_eq!(
        errs[0].message,
        "Too long: may not be more than 1048576 bytes"
    );
}

#[test]
fn secret_normalize_and_update() {
    let mut s = json!({"metadata": {"name": "test-secret", "namespace": "my-namespace"}, "type": "Opaque",
        "data": {"username": "dmFsdWUtMQ0K"}, "stringData": {"hostname": "myapp.mydomain.com", "username": "u"}});
    capstan_validation::normalize_secret(&mut s);
    assert!(s.get("stringData").is_none());
    assert_eq!(s["data"]["hostname"], json!(b64("myapp.mydomain.com")));
    assert_eq!(s["data"]["username"], json!(b64("u")));
    assert!(create("v1", "Secret", s).is_empty());

    let old = secret(None, json!({"a": b64("1")}));
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/basic-auth");
    assert!(fields(&update("v1", "Secret", old.clone(), new)).contains(&"type".to_string()));
    let mut frozen = old.clone();
    frozen["immutable"] = json!(true);
    let mut changed = frozen.clone();
    changed["data"]["a"] = json!(b64("2"));
    assert_eq!(
        fields(&update("v1", "Secret", frozen.clone(), changed)),
        vec!["data"]
    );
    let mut unfrozen = frozen.clone();
    unfrozen["immutable"] = json!(false);
    assert_eq!(
        fields(&update("v1", "Secret", frozen, unfrozen)),
        vec!["immutable"]
    );
}

#[test]
fn configmap_table() {
    let cm = |data: Value| json!({"metadata": {"name": "c", "namespace": "d"}, "data": data});
    let cases: Vec<Case> = vec![
        (
            "ok",
            cm(json!({"game.properties": "x", "UI_KEY": "y"})),
            vec![],
        ),
        ("bad key", cm(json!({"a/b": "x"})), vec![("data[a/b]", INV)]),
        ("dot dot", cm(json!({"..x": "x"})), vec![("data[..x]", INV)]),
        (
            "too big",
            cm(json!({"a": "x".repeat(1024 * 1024 + 1)})),
            vec![("", LONG)],
        ),
        (
            "duplicate binary",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "x"}, "binaryData": {"a": b64("y")}}),
            vec![("binaryData[a]", INV)],
        ),
    ];
    run_table("v1", "ConfigMap", cases);
}

#[test]
fn namespace_node_event() {
    run_table(
        "v1",
        "Namespace",
        vec![
            ("ok", json!({"metadata": {"name": "team-a"}}), vec![]),
            (
                "subdomain is not a label",
                json!({"metadata": {"name": "team.a"}}),
                vec![("metadata.name", INV)],
            ),
            (
                "namespace set",
                json!({"metadata": {"name": "x", "namespace": "y"}}),
                vec![("metadata.namespace", FORB)],
            ),
            (
                "finalizer",
                json!({"metadata": {"name": "x"}, "spec": {"finalizers": ["custom"]}}),
                vec![("spec.finalizers", INV)],
            ),
        ],
    );
    run_table(
        "v1",
        "Node",
        vec![
            (
                "seed",
                json!({"metadata": {"name": "ip-10-0-131-14.ec2.internal", "labels": {"beta.kubernetes.io/os": "linux", "node-role.kubernetes.io/worker": "", "node.openshift.io/os_version": "4.1"}}}),
                vec![],
            ),
            (
                "taint effect",
                json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "Never"}]}}),
                vec![("spec.taints[0].effect", NS)],
            ),
            (
                "cidr",
                json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0"}}),
                vec![("spec.podCIDR", INV)],
            ),
        ],
    );
    run_table(
        "v1",
        "Event",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "web.1", "namespace": "d"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "d"}, "reason": "Started", "type": "Normal"}),
                vec![],
            ),
            (
                "no object",
                json!({"metadata": {"name": "web.1", "namespace": "d"}}),
                vec![("involvedObject", REQ)],
            ),
            (
                "ns mismatch",
                json!({"metadata": {"name": "e", "namespace": "d"}, "involvedObject": {"kind": "Pod", "name": "w", "namespace": "x"}}),
                vec![("involvedObject.namespace", INV)],
            ),
        ],
    );
    run_table(
        "events.k8s.io/v1",
        "Event",
        vec![
            (
                "ok",
                json!({"metadata": {"name": "e", "namespace": "d"}, "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "c", "reportingInstance": "i", "action": "a", "reason": "r", "type": "Normal"}),
                vec![],
            ),
            (
                "missing",
                json!({"metadata": {"name": "e", "namespace": "d"}, "type": "Info"}),
                vec![
                    ("eventTime", REQ),
                    ("reportingController", REQ),
                    ("reportingInstance", REQ),
                    ("action", REQ),
                    ("reason", REQ),
                    ("type", NS),
                ],
            ),
        ],
    );
}

#[test]
fn unknown_fields_and_types() {
    let r = res("v1", "Pod");
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"contianers": [], "containers": [{"name": "c", "image": "i", "imag": "x"}]}, "status": {"bogus": 1}});
    assert_eq!(
        capstan_validation::unknown_fields(r, &obj),
        vec![
            ".spec.contianers",
            ".spec.containers[0].imag",
            ".status.bogus"
        ]
    );
    assert_eq!(
        capstan_validation::strict_decoding_message(
            &capstan_validation::unknown_fields(r, &obj)[..1]
        ),
        "strict decoding error: unknown field \"spec.contianers\""
    );
    // Every served kind has a schema: a well-formed empty object has no unknown fields.
    for res in capstan_api::resources::RESOURCES {
        let obj =
            json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": {"name": "x"}});
        assert!(
            capstan_validation::unknown_fields(res, &obj).is_empty(),
            "{}",
            res.kind
        );
        let obj = json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": {"name": "x"}, "nonsense": 1});
        assert_eq!(
            capstan_validation::unknown_fields(res, &obj),
            vec![".nonsense"],
            "{}",
            res.kind
        );
    }
    let errs = capstan_validation::validate(r, &json!({"metadata": {"name": 5}}), None, None);
    assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
    assert_eq!(errs[0].field, "metadata.name");
    assert_eq!(errs[0].message, "Invalid value: 5: must be of type string");
}

#[test]
fn prepare_for_update_keeps_allocated_values() {
    let r = res("v1", "Service");
    let old = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
    // kubectl replace with the allocated values left out.
    let mut new = json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    capstan_validation::prepare_for_update(r, &mut new, &old);
    assert_eq!(new["metadata"]["uid"], "u1");
    assert_eq!(new["metadata"]["creationTimestamp"], "2024-01-01T00:00:00Z");
    assert_eq!(new["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    assert!(update("v1", "Service", old, new).is_empty());
}
