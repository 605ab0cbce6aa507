//! Server-side apply and managedFields tracking tests.

use crate::{schema_for, server_side_apply, track_update, ApplyError};
use serde_json::{json, Value};

const T1: &str = "2024-01-01T00:00:00Z";
const T2: &str = "2024-01-02T00:00:00Z";

fn deploy(replicas: u64, image: &str) -> Value {
    json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},
        "spec":{"replicas":replicas,"selector":{"matchLabels":{"app":"web"}},
            "template":{"metadata":{"labels":{"app":"web"}},
                "spec":{"containers":[{"name":"nginx","image":image,"ports":[{"containerPort":80}]}]}}}})
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    &entry(obj, manager, operation)
        .unwrap_or_else(|| panic!("no entry {manager}/{operation} in {obj}"))["fieldsV1"]
}

#[test]
fn apply_creates_with_kubernetes_fields_v1() {
    let schema = schema_for("apps/v1", "Deployment");
    let obj = server_side_apply(
        None,
        &deploy(2, "nginx:1.25"),
        "kubectl",
        false,
        &schema,
        T1,
    )
    .unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    let e = entry(&obj, "kubectl", "Apply").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T1);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{
            "f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{
                ".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{
                    ".":{},"f:containerPort":{}}}}}}}}})
    );
}

#[test]
fn track_update_records_creates_and_moves_ownership() {
    let mut obj = deploy(2, "nginx:1.25");
    track_update(None, &mut obj, "kubectl-create", T1);
    assert_eq!(
        fields(&obj, "kubectl-create", "Update"),
        &json!({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{
            "f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{
                ".":{},"f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{
                    ".":{},"f:containerPort":{}}}}}}}}})
    );
    // kubectl edit changes the image: ownership of that one field moves.
    let old = obj.clone();
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    track_update(Some(&old), &mut obj, "kubectl-edit", T2);
    let edit = fields(&obj, "kubectl-edit", "Update");
    assert_eq!(
        edit,
        &json!({"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{"f:image":{}}}}}}})
    );
    let create = fields(&obj, "kubectl-create", "Update");
    assert!(
        create["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_none()
    );
    assert_eq!(entry(&obj, "kubectl-create", "Update").unwrap()["time"], T1);
    // A write that changes nothing leaves managedFields alone.
    let before = obj.clone();
    track_update(Some(&before), &mut obj, "someone", T2);
    assert_eq!(obj, before);
    // Removing a label drops it from its owner.
    let old = obj.clone();
    obj["metadata"]["labels"] = json!({"other":"x"});
    track_update(Some(&old), &mut obj, "kubectl-label", T2);
    // The labels map itself stays with its creator; only the removed key leaves.
    assert_eq!(
        fields(&obj, "kubectl-create", "Update")["f:metadata"],
        json!({"f:labels":{}})
    );
    assert_eq!(
        fields(&obj, "kubectl-label", "Update")["f:metadata"],
        json!({"f:labels":{"f:other":{}}})
    );
}

#[test]
fn apply_conflicts_force_and_sharing() {
    let schema = schema_for("apps/v1", "Deployment");
    let mut live = deploy(2, "nginx:1.25");
    track_update(None, &mut live, "kubectl-client-side-apply", T1);

    // (name, applied, force, expected error message or None)
    let cases: Vec<(&str, Value, bool, Option<&str>)> = vec![
        (
            "changing another manager's field conflicts",
            deploy(3, "nginx:1.25"),
            false,
            Some(r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#),
        ),
        (
            "two conflicting fields",
            deploy(3, "nginx:1.26"),
            false,
            Some(
                "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image",
            ),
        ),
        ("same values are shared, not conflicting", deploy(2, "nginx:1.25"), false, None),
        ("force takes ownership", deploy(3, "nginx:1.25"), true, None),
    ];
    for (name, applied, force, want) in cases {
        let got = server_side_apply(Some(&live), &applied, "kubectl", force, &schema, T2);
        match (got, want) {
            (Err(ApplyError::Conflicts { message, causes }), Some(w)) => {
                assert_eq!(message, w, "{name}");
                assert_eq!(causes[0]["type"], "FieldManagerConflict", "{name}");
                assert_eq!(causes[0]["field"], ".spec.replicas", "{name}");
                assert_eq!(
                    causes[0]["message"],
                    r#"conflict with "kubectl-client-side-apply" using apps/v1"#,
                    "{name}"
                );
            }
            (Ok(obj), None) => {
                assert_eq!(
                    obj["spec"]["replicas"], applied["spec"]["replicas"],
                    "{name}"
                );
                assert!(
                    fields(&obj, "kubectl", "Apply")["f:spec"]
                        .get("f:replicas")
                        .is_some(),
                    "{name}"
                );
                let csa = fields(&obj, "kubectl-client-side-apply", "Update");
                assert_eq!(csa["f:spec"].get("f:replicas").is_some(), !force, "{name}");
                assert_eq!(
                    obj["metadata"]["managedFields"][0]["operation"], "Apply",
                    "{name}: Apply entries first"
                );
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn apply_removes_fields_no_longer_applied() {
    let schema = schema_for("apps/v1", "Deployment");
    let mut first = deploy(2, "nginx:1.25");
    first["metadata"]["labels"]["extra"] = json!("yes");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name":"sidecar","image":"busybox"}));
    let live = server_side_apply(None, &first, "kubectl", false, &schema, T1).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let second = deploy(2, "nginx:1.25");
    let out = server_side_apply(Some(&live), &second, "kubectl", false, &schema, T2).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app":"web"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(fields(&out, "kubectl", "Apply")["f:metadata"]["f:labels"]
        .get("f:extra")
        .is_none());

    // A field another manager also owns survives.
    let mut shared = live.clone();
    let before = shared.clone();
    shared["metadata"]["labels"]["extra"] = json!("yes");
    shared["metadata"]["labels"]["mine"] = json!("1");
    track_update(Some(&before), &mut shared, "labeler", T1);
    let mut both =
        server_side_apply(Some(&shared), &first, "other-applier", false, &schema, T1).unwrap();
    both = server_side_apply(Some(&both), &second, "kubectl", false, &schema, T2).unwrap();
    assert_eq!(both["metadata"]["labels"]["extra"], "yes");
    assert_eq!(
        both["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn apply_edge_cases() {
    let schema = schema_for("apps/v1", "Deployment");
    // Objects created before tracking are owned by "before-first-apply".
    let live = deploy(2, "nginx:1.25");
    let err = server_side_apply(
        Some(&live),
        &deploy(5, "nginx:1.25"),
        "kubectl",
        false,
        &schema,
        T1,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"conflict with "before-first-apply" using apps/v1: .spec.replicas"#),
        "{err}"
    );

    let bad = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"x"}]}});
    let err =
        server_side_apply(None, &bad, "kubectl", false, &schema_for("v1", "Pod"), T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        ".spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
    );
    assert!(matches!(
        server_side_apply(None, &json!([1]), "m", false, &schema, T1),
        Err(ApplyError::Invalid(_))
    ));

    // Server-set fields are neither applied nor owned; status is ignored.
    let mut applied = deploy(1, "x");
    applied["metadata"]["resourceVersion"] = json!("5");
    applied["metadata"]["uid"] = json!("u");
    applied["status"] = json!({"replicas": 9});
    let obj = server_side_apply(None, &applied, "kubectl", false, &schema, T1).unwrap();
    assert!(obj.get("status").is_none());
    assert!(obj["metadata"].get("resourceVersion").is_none());
    let f = fields(&obj, "kubectl", "Apply");
    assert!(
        f.get("f:status").is_none()
            && f["f:metadata"].get("f:uid").is_none()
            && f["f:metadata"].get("f:name").is_none()
    );

    // Finalizers are a set: `v:` elements.
    let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","finalizers":["a/b"]},"data":{"k":"v"}});
    let obj = server_side_apply(None, &cm, "m", false, &schema_for("v1", "ConfigMap"), T1).unwrap();
    assert_eq!(
        fields(&obj, "m", "Apply"),
        &json!({"f:data":{"f:k":{}},"f:metadata":{"f:finalizers":{"v:\"a/b\"":{}}}})
    );
}

#[test]
fn status_subresource_apply_and_update() {
    let schema = schema_for("apps/v1", "Deployment");
    let live = server_side_apply(None, &deploy(2, "nginx"), "kubectl", false, &schema, T1).unwrap();
    let applied = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
        "spec":{"replicas":9},"status":{"conditions":[{"type":"Available","status":"True"}]}});
    let out = crate::server_side_apply_subresource(
        Some(&live),
        &applied,
        "ctrl",
        false,
        &schema,
        T2,
        Some("status"),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["replicas"], 2,
        "spec is not applied through status"
    );
    assert_eq!(out["status"]["conditions"][0]["type"], "Available");
    let e = entry(&out, "ctrl", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status":{"f:conditions":{"k:{\"type\":\"Available\"}":{".":{},"f:status":{},"f:type":{}}}}})
    );

    let mut new = out.clone();
    new["status"]["replicas"] = json!(2);
    crate::track_update_subresource(
        Some(&out),
        &mut new,
        "deployment-controller",
        T2,
        Some("status"),
    );
    let e = entry(&new, "deployment-controller", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status":{"f:replicas":{}}}));
}
