//! Cross-module tests of the generated documents: every served kind has a schema marked with its
//! GVK, every item path can be patched with `fieldValidation`, every `$ref` resolves, and the
//! discovery documents have the shapes kubectl reads.

use crate::*;
use capstan_api::resources::RESOURCES;
use serde_json::Value;

fn doc_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn doc(group: &str, version: &str) -> Value {
    openapi_v3_group_version(&doc_key(group, version))
        .expect("document")
        .0
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn has_gvk(schema: &Value, g: &str, v: &str, k: &str) -> bool {
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|x| x["group"] == g && x["version"] == v && x["kind"] == k)
        })
}

#[test]
fn every_served_kind_has_a_schema_with_its_gvk() {
    for r in RESOURCES {
        let d = doc(r.group, r.version);
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let found = schemas
            .values()
            .any(|s| has_gvk(s, r.group, r.version, r.kind));
        assert!(found, "{}/{} {}", r.group, r.version, r.kind);
        if r.verbs.contains(&"list") {
            let list = format!("{}List", r.kind);
            assert!(
                schemas
                    .values()
                    .any(|s| has_gvk(s, r.group, r.version, &list)),
                "{list}"
            );
        }
    }
}

#[test]
fn every_item_path_can_be_patched_with_field_validation() {
    for r in RESOURCES.iter().filter(|r| r.verbs.contains(&"patch")) {
        let d = doc(r.group, r.version);
        let root = if r.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let ns = if r.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let path = format!("{root}{ns}/{}/{{name}}", r.plural);
        let patch = &d["paths"][&path]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"], r.kind,
            "{path}"
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for want in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(names.contains(&want), "{path} lacks {want}");
        }
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
    }
}

#[test]
fn every_patch_operation_lists_field_validation() {
    // kubectl checks the first PATCH operation it finds for a GVK, in map order: all must qualify.
    for e in openapi_v3_index()["paths"].as_object().unwrap().keys() {
        let d = openapi_v3_group_version(e).unwrap().0;
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                if ["post", "put", "patch"].contains(&method.as_str())
                    && op["x-kubernetes-action"] != "connect"
                {
                    let has = op["parameters"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|p| p["name"] == "fieldValidation"));
                    assert!(has, "{method} {path}");
                }
            }
        }
    }
}

#[test]
fn every_ref_resolves_within_its_document() {
    let index = openapi_v3_index();
    for key in index["paths"].as_object().unwrap().keys() {
        let d = openapi_v3_group_version(key).unwrap().0;
        let mut refs = Vec::new();
        collect_refs(&d, &mut refs);
        assert!(!refs.is_empty(), "{key}");
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{key}: {r}"));
            assert!(d["components"]["schemas"].get(name).is_some(), "{key}: {r}");
        }
    }
}

#[test]
fn index_urls_carry_the_document_hash() {
    let index = openapi_v3_index();
    for key in [
        "api/v1",
        "apis/apps/v1",
        "apis/apps",
        "api",
        "apis",
        "apis/autoscaling/v2",
    ] {
        let url = index["paths"][key]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}"));
        let (_, hash) = openapi_v3_group_version_bytes(key).unwrap();
        assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
    }
    assert!(openapi_v3_group_version_bytes("apis/nope/v1").is_none());
    assert_eq!(
        openapi_v3_group_version_bytes("/openapi/v3/api/v1").map(|x| x.1),
        openapi_v3_group_version_bytes("api/v1").map(|x| x.1)
    );
}

#[test]
fn operations_follow_kube_naming() {
    let d = doc("", "v1");
    let p = &d["paths"];
    let cases = [
        (
            "/api/v1/namespaces/{namespace}/pods",
            "get",
            "listCoreV1NamespacedPod",
            "list",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods",
            "post",
            "createCoreV1NamespacedPod",
            "post",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods",
            "delete",
            "deleteCoreV1CollectionNamespacedPod",
            "deletecollection",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}",
            "get",
            "readCoreV1NamespacedPod",
            "get",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}",
            "put",
            "replaceCoreV1NamespacedPod",
            "put",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}",
            "delete",
            "deleteCoreV1NamespacedPod",
            "delete",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/status",
            "patch",
            "patchCoreV1NamespacedPodStatus",
            "patch",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "post",
            "createCoreV1NamespacedPodEviction",
            "post",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "post",
            "connectCoreV1PostNamespacedPodExec",
            "connect",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "get",
            "readCoreV1NamespacedPodLog",
            "get",
        ),
        (
            "/api/v1/pods",
            "get",
            "listCoreV1PodForAllNamespaces",
            "list",
        ),
        ("/api/v1/nodes/{name}", "get", "readCoreV1Node", "get"),
        (
            "/api/v1/namespaces/{name}/finalize",
            "put",
            "replaceCoreV1NamespaceFinalize",
            "put",
        ),
    ];
    for (path, method, id, action) in cases {
        let op = &p[path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        assert_eq!(op["x-kubernetes-action"], action, "{method} {path}");
    }
    let apps = doc("apps", "v1");
    let scale =
        &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(scale["operationId"], "patchAppsV1NamespacedDeploymentScale");
    assert_eq!(
        scale["x-kubernetes-group-version-kind"]["group"],
        "autoscaling"
    );
    assert!(has_gvk(
        &apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"],
        "autoscaling",
        "v1",
        "Scale"
    ));
}

#[test]
fn schemas_carry_kubernetes_extensions() {
    let d = doc("", "v1");
    let s = &d["components"]["schemas"];
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        s["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );
    assert_eq!(
        s["io.k8s.api.core.v1.Container"]["properties"]["ports"]["x-kubernetes-list-map-keys"],
        serde_json::json!(["containerPort", "protocol"])
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
        "date-time"
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"],
        true
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    assert!(s["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"].is_array());
    assert!(s["io.k8s.api.core.v1.Pod"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("Pod is a collection of containers")));
    // Refs with siblings are wrapped in allOf, as kube does.
    let meta = &s["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(
        meta["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(meta["description"].is_string());
}

#[test]
fn legacy_discovery_lists_resources_and_subresources() {
    let core = api_resource_list("", "v1").unwrap();
    assert_eq!(core["groupVersion"], "v1");
    let find = |name: &str| {
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let pods = find("pods");
    assert_eq!(pods["shortNames"], serde_json::json!(["po"]));
    assert_eq!(pods["categories"], serde_json::json!(["all"]));
    assert_eq!(pods["singularName"], "pod");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["storageVersionHash"].as_str().map(str::len), Some(12));
    let cases: &[(&str, Option<&str>, &str, &[&str])] = &[
        ("pods/status", None, "Pod", &["get", "patch", "update"]),
        ("pods/eviction", Some("policy"), "Eviction", &["create"]),
        ("pods/binding", None, "Binding", &["create"]),
        ("pods/log", None, "Pod", &["get"]),
        ("pods/exec", None, "PodExecOptions", &["create", "get"]),
        (
            "serviceaccounts/token",
            Some("authentication.k8s.io"),
            "TokenRequest",
            &["create"],
        ),
        ("namespaces/finalize", None, "Namespace", &["update"]),
        (
            "services/proxy",
            None,
            "ServiceProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ),
    ];
    for (name, group, kind, verbs) in cases {
        let e = find(name);
        assert_eq!(e["kind"], *kind, "{name}");
        assert_eq!(e["verbs"], serde_json::json!(verbs), "{name}");
        assert_eq!(e["group"].as_str(), *group, "{name}");
        assert_eq!(e["singularName"], "", "{name}");
    }
    let reviews = api_resource_list("authorization.k8s.io", "v1").unwrap();
    assert!(reviews["resources"][0].get("storageVersionHash").is_none());
    assert_eq!(
        reviews["resources"][0]["verbs"],
        serde_json::json!(["create"])
    );
    let apps = api_resource_list("apps", "v1").unwrap();
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap()
        .clone();
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );
    assert!(api_resource_list("apps", "v2").is_none());
}

#[test]
fn group_documents() {
    let list = api_group_list();
    assert_eq!(list["kind"], "APIGroupList");
    let groups = list["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["name"] != ""));
    let autoscaling = groups.iter().find(|g| g["name"] == "autoscaling").unwrap();
    assert_eq!(
        autoscaling["preferredVersion"]["groupVersion"],
        "autoscaling/v2"
    );
    assert_eq!(autoscaling["versions"].as_array().unwrap().len(), 2);
    let apps = api_group("apps").unwrap();
    assert_eq!(
        (apps["kind"].as_str(), apps["name"].as_str()),
        (Some("APIGroup"), Some("apps"))
    );
    assert!(api_group("").is_none());
    assert!(api_group("nope").is_none());
    let v = core_versions_at("10.0.0.1:6443");
    assert_eq!(v["versions"], serde_json::json!(["v1"]));
    assert_eq!(
        v["serverAddressByClientCIDRs"][0]["serverAddress"],
        "10.0.0.1:6443"
    );
}

#[test]
fn aggregated_discovery_shapes() {
    let core = aggregated_discovery(true);
    assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = core["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0]["metadata"].get("name").is_none());
    let v1 = &items[0]["versions"][0];
    assert_eq!(v1["freshness"], "Current");
    let pods = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap();
    assert_eq!(pods["scope"], "Namespaced");
    assert_eq!(
        pods["responseKind"],
        serde_json::json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert_eq!(pods["singularResource"], "pod");
    let ev = pods["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subresource"] == "eviction")
        .unwrap();
    assert_eq!(ev["responseKind"]["group"], "policy");
    let apis = aggregated_discovery(false);
    let names: Vec<&str> = apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"apps") && !names.contains(&"metrics.k8s.io"));
    let nodes = &apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "scheduling.k8s.io")
        .unwrap()["versions"][0]["resources"][0];
    assert_eq!(nodes["scope"], "Cluster");
    let with = aggregated_discovery_with(false, Options { with_metrics: true });
    assert!(with["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["metadata"]["name"] == "metrics.k8s.io"));
    assert!(
        api_resource_list_with("metrics.k8s.io", "v1beta1", Options { with_metrics: true })
            .is_some()
    );
    assert!(api_resource_list("metrics.k8s.io", "v1beta1").is_none());
}

#[test]
fn v2_document_is_swagger_with_definitions_refs() {
    let doc: Value = serde_json::from_slice(openapi_v2_bytes().unwrap()).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().unwrap();
    for r in RESOURCES {
        assert!(
            defs.values()
                .any(|s| has_gvk(s, r.group, r.version, r.kind)),
            "{} {}",
            r.group,
            r.kind
        );
    }
    let delete_options = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"];
    assert!(
        has_gvk(delete_options, "apps", "v1", "DeleteOptions")
            && has_gvk(delete_options, "", "v1", "DeleteOptions")
    );
    assert_eq!(
        defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
            ["x-kubernetes-patch-merge-key"],
        "name"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(defs.contains_key(name), "{r}");
    }
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    let params = patch["parameters"].as_array().unwrap();
    assert_eq!(params[0]["in"], "body");
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["type"] == "string"));
    assert!(patch["consumes"]
        .as_array()
        .unwrap()
        .contains(&"application/strategic-merge-patch+json".into()));
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
}

/// Top-level fields of a protobuf message: (field number, payload of length-delimited fields).
fn proto_fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << shift;
            shift += 7;
            if x < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        match key & 7 {
            0 => {
                varint(&mut b);
                out.push((key >> 3, &[][..]));
            }
            2 => {
                let len = usize::try_from(varint(&mut b)).unwrap();
                out.push((key >> 3, &b[..len]));
                b = &b[len..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

#[test]
fn v2_protobuf_mirrors_the_json() {
    let json: Value = serde_json::from_slice(openapi_v2_bytes().unwrap()).unwrap();
    let pb = openapi_v2_protobuf_bytes();
    let fields = proto_fields(pb);
    assert_eq!(fields[0], (1, &b"2.0"[..]));
    let defs = fields.iter().find(|(n, _)| *n == 9).unwrap().1;
    assert_eq!(
        proto_fields(defs).len(),
        json["definitions"].as_object().unwrap().len()
    );
    let paths = fields.iter().find(|(n, _)| *n == 8).unwrap().1;
    assert_eq!(
        proto_fields(paths).len(),
        json["paths"].as_object().unwrap().len()
    );
    let (body, ct) =
        openapi_v2_for_accept("application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
    assert_eq!(
        (body.len(), ct),
        (pb.len(), OPENAPI_V2_PROTOBUF_CONTENT_TYPE)
    );
    assert_eq!(
        openapi_v2_for_accept("application/json").1,
        "application/json"
    );
}
