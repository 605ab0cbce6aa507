//! OpenAPI v3 documents, one per group-version (plus the small discovery documents kube also
//! lists), built lazily on first request and kept serialized with their content hash.

use crate::hash::content_hash;
use crate::kinds;
use crate::paths::{schema_ref, Built, Mark, PathsBuilder};
use capstan_api::resources;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// Kubernetes version the documents describe.
pub const KUBERNETES_VERSION: &str = "v1.32.0";

/// One document of the index: its key ("api/v1", "apis/apps") and its lazily built bytes + hash.
struct Entry {
    key: String,
    built: OnceLock<(Vec<u8>, String)>,
}

fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut keys = vec!["api".to_string(), "apis".to_string()];
        for (g, versions) in resources::groups() {
            if g.is_empty() {
                keys.extend(versions.iter().map(|v| format!("api/{v}")));
            } else {
                keys.push(format!("apis/{g}"));
                keys.extend(versions.iter().map(|v| format!("apis/{g}/{v}")));
            }
        }
        keys.into_iter()
            .map(|key| Entry {
                key,
                built: OnceLock::new(),
            })
            .collect()
    })
}

fn entry(key: &str) -> Option<&'static Entry> {
    let key = key.trim_matches('/');
    entries().iter().find(|e| e.key == key)
}

fn built(e: &'static Entry) -> &'static (Vec<u8>, String) {
    e.built.get_or_init(|| {
        let doc = build(&e.key).unwrap_or_else(|| json!({}));
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash = content_hash(&bytes);
        (bytes, hash)
    })
}

/// The keys of every document in the index ("api", "api/v1", "apis/apps", "apis/apps/v1", …).
pub fn group_version_keys() -> Vec<String> {
    entries().iter().map(|e| e.key.clone()).collect()
}

/// `GET /openapi/v3`: every document with its hash-versioned, server-relative URL.
/// Builds (once) every document that is not built yet, since the URLs carry content hashes.
pub fn index() -> Value {
    let mut paths = Map::new();
    for e in entries() {
        let (_, hash) = built(e);
        paths.insert(
            e.key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={hash}", e.key)}),
        );
    }
    json!({ "paths": paths })
}

/// The serialized document at `path` ("api/v1", "apis/apps/v1", leading '/' and an
/// "openapi/v3/" prefix tolerated) and its hash; `None` for unknown paths.
pub fn group_version_bytes(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("openapi/v3/").unwrap_or(path);
    let (bytes, hash) = built(entry(path)?);
    Some((bytes.as_slice(), hash.as_str()))
}

/// The document at `path` as a Value and its hash; `None` for unknown paths.
pub fn group_version(path: &str) -> Option<(Value, String)> {
    let (bytes, hash) = group_version_bytes(path)?;
    let v = serde_json::from_slice(bytes).ok()?;
    Some((v, hash.to_string()))
}

fn document(paths: Map<String, Value>, schemas: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}
            }
        }
    })
}

/// Build the document for `key`; `None` for keys outside the index.
pub fn build(key: &str) -> Option<Value> {
    let segs: Vec<&str> = key.split('/').collect();
    match segs.as_slice() {
        ["api"] => Some(discovery_doc(
            "/api/",
            "getCoreAPIVersions",
            "get available API versions",
            "APIVersions",
            "core",
        )),
        ["apis"] => Some(discovery_doc(
            "/apis/",
            "getAPIVersions",
            "get available API versions",
            "APIGroupList",
            "apis",
        )),
        ["apis", g] => {
            let (group, _) = resources::groups().into_iter().find(|(x, _)| x == g)?;
            let id = format!("get{}APIGroup", crate::paths::group_prefix(group));
            let tag = group.trim_end_matches(".k8s.io").to_string();
            Some(discovery_doc(
                &format!("/apis/{group}/"),
                &id,
                "get information of a group",
                "APIGroup",
                &tag,
            ))
        }
        ["api", v] => build_group_version("", v),
        ["apis", g, v] => build_group_version(g, v),
        _ => None,
    }
}

fn discovery_doc(path: &str, id: &str, description: &str, kind: &str, tag: &str) -> Value {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let name = kinds::add_kind(&mut gen, "", "v1", kind).unwrap_or_default();
    let schema = schema_ref(&name);
    let content = json!({
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
        "application/vnd.kubernetes.protobuf": {"schema": schema},
    });
    let mut paths = Map::new();
    paths.insert(
        path.to_string(),
        json!({"get": {
            "tags": [tag],
            "description": description,
            "operationId": id,
            "responses": {"200": {"description": "OK", "content": content}, "401": {"description": "Unauthorized"}},
        }}),
    );
    let schemas = finish_schemas(gen.take_definitions(true), &[]);
    document(paths, schemas)
}

fn build_group_version(group: &str, version: &str) -> Option<Value> {
    let r0 = resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version)?;
    let (group, version) = (r0.group, r0.version);
    let mut gen = SchemaSettings::openapi3().into_generator();
    let mut b = PathsBuilder::new(&mut gen, group, version);
    b.resource_list();
    for r in resources::in_group_version(group, version) {
        b.resource(r);
    }
    let Built {
        paths,
        mut marks,
        lists,
        common,
    } = b.finish();
    marks.push((
        common.delete_options.clone(),
        String::new(),
        "v1".into(),
        "DeleteOptions".into(),
    ));
    if !group.is_empty() {
        marks.push((
            common.delete_options.clone(),
            group.into(),
            version.into(),
            "DeleteOptions".into(),
        ));
    }
    for (g, v) in [("", "v1"), (group, version)] {
        let m = (
            common.watch_event.clone(),
            g.to_string(),
            v.to_string(),
            "WatchEvent".to_string(),
        );
        if !marks.contains(&m) {
            marks.push(m);
        }
    }
    marks.push((
        common.status.clone(),
        String::new(),
        "v1".into(),
        "Status".into(),
    ));
    let mut defs = gen.take_definitions(true);
    for (schema, kind) in lists {
        defs.insert(
            format!("{schema}List"),
            list_schema(&schema, kind, &common.list_meta),
        );
    }
    let schemas = finish_schemas(defs, &marks);
    Some(document(paths, schemas))
}

/// The `<Kind>List` schema kube generates for each listable kind.
fn list_schema(item: &str, kind: &str, list_meta: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
            "items": {"description": format!("List of {kind} objects."), "type": "array", "items": {"allOf": [schema_ref(item)], "default": {}}},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
            "metadata": {"allOf": [schema_ref(list_meta)], "default": {}, "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
        },
    })
}

/// Apply the Kubernetes extensions, the GVK marks, and sort the definitions by name.
fn finish_schemas(mut defs: Map<String, Value>, marks: &[Mark]) -> Map<String, Value> {
    crate::extensions::apply(&mut defs);
    for (name, g, v, k) in marks {
        let Some(obj) = defs.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        let gvk = json!({"group": g, "version": v, "kind": k});
        let arr = obj
            .entry("x-kubernetes-group-version-kind")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = arr.as_array_mut() {
            if !a.contains(&gvk) {
                a.push(gvk);
            }
        }
    }
    let mut names: Vec<String> = defs.keys().cloned().collect();
    names.sort();
    let mut out = Map::new();
    for n in names {
        if let Some(v) = defs.remove(&n) {
            out.insert(n, v);
        }
    }
    out
}
