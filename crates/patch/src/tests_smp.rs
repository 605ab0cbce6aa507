//! Table-driven strategic merge patch tests, many shaped like what kubectl sends.

use crate::{schema_for, strategic_merge_patch, PatchError};
use serde_json::{json, Value};

fn deploy(containers: Value) -> Value {
    json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web","tier":"fe"}},
        "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
            "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}},
            "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":containers}}}})
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

#[test]
fn deployment_patches_like_kubectl() {
    let live = deploy(json!([
        {"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}]},
        {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}
    ]));
    let schema = schema_for("apps/v1", "Deployment");
    // (name, patch, check on the result's containers)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "kubectl apply changing one image",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],
                "containers":[{"image":"nginx:1.26","name":"nginx"}]}}}}),
            json!([
                {"name":"nginx","image":"nginx:1.26","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}]},
                {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}
            ]),
        ),
        (
            "$patch delete on a container",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}),
            json!([{"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}]}]),
        ),
        (
            "apply inserting a container in the middle",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"new"},{"name":"sidecar"}],
                "containers":[{"name":"new","image":"redis"}]}}}}),
            json!([
                {"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}]},
                {"name":"new","image":"redis"},
                {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}
            ]),
        ),
        (
            "apply reordering without content change",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"nginx"}]}}}}),
            json!([
                {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
                {"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}]}
            ]),
        ),
        (
            "env merged by name, null deletes a nested field, new port first (Go order)",
            json!({"spec":{"template":{"spec":{"containers":[
                {"name":"sidecar","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]},
                {"name":"nginx","imagePullPolicy":null,"ports":[{"containerPort":443}]}]}}}}),
            json!([
                {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"3"},{"name":"C","value":"4"}]},
                {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":443},{"containerPort":80,"protocol":"TCP"}]}
            ]),
        ),
        (
            "kubectl apply removing a port and an env var of kept containers",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],
                "containers":[
                    {"$setElementOrder/ports":[],"name":"nginx","ports":[{"$patch":"delete","containerPort":80}]},
                    {"$setElementOrder/env":[{"name":"B"}],"name":"sidecar","env":[{"$patch":"delete","name":"A"}]}]}}}}),
            json!([
                {"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[]},
                {"name":"sidecar","image":"busybox","env":[{"name":"B","value":"2"}]}
            ]),
        ),
        (
            "$patch replace inside a list",
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"only","image":"x","bogus":null}]}}}}),
            json!([{"name":"only","image":"x"}]),
        ),
        (
            "an atomic list added to one container",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"nginx","args":["-v"]}]}}}}),
            json!([
                {"name":"nginx","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":80,"protocol":"TCP"}],"args":["-v"]},
                {"name":"sidecar","image":"busybox","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}
            ]),
        ),
    ];
    for (name, patch, want) in cases {
        let got =
            strategic_merge_patch(&live, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(containers(&got), &want, "{name}");
        assert_eq!(got["spec"]["replicas"], 2, "{name}");
    }
}

#[test]
fn maps_directives_and_primitive_lists() {
    let schema = schema_for("apps/v1", "Deployment");
    let live = deploy(json!([{"name":"a","image":"a"}]));
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "null deletes a label",
            json!({"metadata":{"labels":{"tier":null}}}),
            "/metadata/labels",
            json!({"app":"web"}),
        ),
        (
            "$patch replace on a map",
            json!({"metadata":{"labels":{"$patch":"replace","x":"y"}}}),
            "/metadata/labels",
            json!({"x":"y"}),
        ),
        (
            "$patch delete on a map",
            json!({"metadata":{"labels":{"$patch":"delete"}}}),
            "/metadata/labels",
            json!({}),
        ),
        (
            "$retainKeys switching the deployment strategy",
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}),
            "/spec/strategy",
            json!({"type":"Recreate"}),
        ),
        (
            "new map drops nulls and directives",
            json!({"metadata":{"annotations":{"a":"b","c":null}}}),
            "/metadata/annotations",
            json!({"a":"b"}),
        ),
        (
            "selector matchLabels merge",
            json!({"spec":{"selector":{"matchLabels":{"x":"1"}}}}),
            "/spec/selector/matchLabels",
            json!({"app":"web","x":"1"}),
        ),
        (
            "scalar replaces a map",
            json!({"spec":{"strategy":"x"}}),
            "/spec/strategy",
            json!("x"),
        ),
    ];
    for (name, patch, ptr, want) in cases {
        let got =
            strategic_merge_patch(&live, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(ptr), Some(&want), "{name}");
    }

    let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a","b"],
        "ownerReferences":[{"uid":"1","name":"rs"}]},
        "spec":{"tolerations":[{"key":"k1"},{"key":"k2"}],"containers":[{"name":"c","image":"i"}],
            "volumes":[{"name":"v","configMap":{"name":"cm"}}]}});
    let schema = schema_for("v1", "Pod");
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "finalizers merge as a set",
            json!({"metadata":{"finalizers":["b","c"]}}),
            "/metadata/finalizers",
            json!(["a", "b", "c"]),
        ),
        (
            "new finalizer goes first (Go order)",
            json!({"metadata":{"finalizers":["c"]}}),
            "/metadata/finalizers",
            json!(["c", "a", "b"]),
        ),
        (
            "$deleteFromPrimitiveList",
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}),
            "/metadata/finalizers",
            json!(["b"]),
        ),
        (
            "$setElementOrder on a primitive list",
            json!({"metadata":{"$setElementOrder/finalizers":["b","c","a"],"finalizers":["c"]}}),
            "/metadata/finalizers",
            json!(["b", "c", "a"]),
        ),
        (
            "tolerations are atomic",
            json!({"spec":{"tolerations":[{"key":"k3"}]}}),
            "/spec/tolerations",
            json!([{"key":"k3"}]),
        ),
        (
            "ownerReferences merge by uid",
            json!({"metadata":{"ownerReferences":[{"uid":"2","name":"other"}]}}),
            "/metadata/ownerReferences",
            json!([{"uid":"2","name":"other"},{"uid":"1","name":"rs"}]),
        ),
        (
            "volume source switch with $retainKeys",
            json!({"spec":{"$setElementOrder/volumes":[{"name":"v"}],
                "volumes":[{"$retainKeys":["name","secret"],"name":"v","secret":{"secretName":"s"},"configMap":null}]}}),
            "/spec/volumes",
            json!([{"name":"v","secret":{"secretName":"s"}}]),
        ),
        (
            "null deletes a list",
            json!({"spec":{"tolerations":null}}),
            "/spec/tolerations",
            Value::Null,
        ),
    ];
    for (name, patch, ptr, want) in cases {
        let got =
            strategic_merge_patch(&pod, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(ptr).unwrap_or(&Value::Null), &want, "{name}");
    }
}

#[test]
fn server_only_items_keep_their_place() {
    let schema = schema_for("v1", "Pod");
    let live = json!({"spec":{"containers":[{"name":"a"},{"name":"s"},{"name":"b"}]}});
    let patch = json!({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"b","image":"x"}]}});
    let got = strategic_merge_patch(&live, &patch, &schema).unwrap();
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name":"a"},{"name":"s"},{"name":"b","image":"x"}])
    );

    let svc = json!({"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}]}});
    let got = strategic_merge_patch(
        &svc,
        &json!({"spec":{"ports":[{"port":80,"targetPort":9090}]}}),
        &schema_for("v1", "Service"),
    )
    .unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port":80,"targetPort":9090},{"port":443}])
    );

    let cm = json!({"data":{"a":"1"},"spec":{"items":[1,2]}});
    let got = strategic_merge_patch(
        &cm,
        &json!({"data":{"b":"2"},"spec":{"items":[3]}}),
        &schema_for("example.com/v1", "Widget"),
    )
    .unwrap();
    assert_eq!(got, json!({"data":{"a":"1","b":"2"},"spec":{"items":[3]}}));
}

#[test]
fn errors() {
    let schema = schema_for("v1", "Pod");
    let live = json!({"spec":{"containers":[{"name":"a"}]}});
    let cases: Vec<(Value, PatchError)> = vec![
        (
            json!([1]),
            PatchError::NotAnObject {
                kind: "strategic merge",
                got: "list",
            },
        ),
        (
            json!({"spec":{"containers":[{"image":"x"}]}}),
            PatchError::MissingMergeKey {
                key: "name".into(),
                path: ".spec.containers[0]".into(),
            },
        ),
        (
            json!({"spec":{"$patch":"frob"}}),
            PatchError::BadPatchType {
                directive: "\"frob\"".into(),
                path: ".spec".into(),
            },
        ),
        (
            json!({"spec":{"containers":[{"name":"a","$patch":"merge"}]}}),
            PatchError::MergeDirectiveInList {
                path: ".spec.containers".into(),
            },
        ),
        (
            json!({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"a"},{"name":"b"}]}}),
            PatchError::OrderMismatch {
                path: ".spec.containers".into(),
            },
        ),
        (
            json!({"spec":{"$retainKeys":"x"}}),
            PatchError::BadRetainKeys {
                path: ".spec".into(),
            },
        ),
        (
            json!({"spec":{"$retainKeys":["a"],"b":1}}),
            PatchError::BadRetainKeys {
                path: ".spec".into(),
            },
        ),
        (
            json!({"spec":{"containers":[{"name":"a"},"x"]}}),
            PatchError::MixedListTypes {
                path: ".spec.containers".into(),
            },
        ),
    ];
    for (patch, want) in cases {
        assert_eq!(
            strategic_merge_patch(&live, &patch, &schema),
            Err(want),
            "{patch}"
        );
    }
}

/// A tiny deterministic generator of JSON values, to check the engines never panic.
pub(crate) fn random_values(seed: u64, n: usize) -> Vec<Value> {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    const KEYS: &[&str] = &[
        "spec",
        "metadata",
        "containers",
        "name",
        "image",
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$deleteFromPrimitiveList/finalizers",
        "finalizers",
        "ports",
        "containerPort",
        "protocol",
        "template",
        "labels",
        "replace",
        "delete",
        "merge",
        "op",
        "path",
        "value",
        "from",
        "/spec",
        "/spec/containers/0",
        "add",
        "remove",
        "move",
        "copy",
        "test",
        "uid",
        "ownerReferences",
        "managedFields",
        "status",
        "apiVersion",
        "kind",
    ];
    fn gen(next: &mut impl FnMut() -> u64, depth: u32) -> Value {
        let r = next();
        match (r % 9, depth) {
            (0, _) => Value::Null,
            (1, _) => json!((r >> 3) & 1 == 1),
            (2, _) => json!(r % 100),
            (3 | 4, _) | (_, 0) => json!(KEYS[(r >> 8) as usize % KEYS.len()]),
            (5 | 6, _) => {
                let len = (r >> 16) % 4;
                Value::Array((0..len).map(|_| gen(next, depth - 1)).collect())
            }
            _ => {
                let len = (r >> 16) % 5;
                Value::Object(
                    (0..len)
                        .map(|_| {
                            let k = KEYS[(next() >> 8) as usize % KEYS.len()].to_string();
                            (k, gen(next, depth - 1))
                        })
                        .collect(),
                )
            }
        }
    }
    (0..n).map(|_| gen(&mut next, 6)).collect()
}

#[test]
fn never_panics_on_random_input() {
    let schemas = [
        schema_for("v1", "Pod"),
        schema_for("apps/v1", "Deployment"),
        schema_for("x/v1", "Y"),
    ];
    let values = random_values(0x9e37_79b9_7f4a_7c15, 600);
    for pair in values.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for s in &schemas {
            let _ = strategic_merge_patch(a, b, s);
            let _ = crate::server_side_apply(Some(a), b, "m", false, s, "2024-01-01T00:00:00Z");
            let _ = crate::server_side_apply(None, b, "m", true, s, "2024-01-01T00:00:00Z");
        }
        let _ = crate::json_patch(a, b);
        let _ = crate::json_merge_patch(a, b);
        let mut n = b.clone();
        crate::track_update(Some(a), &mut n, "m", "2024-01-01T00:00:00Z");
    }
}
