//! OpenAPI v2 (Swagger 2.0): one document for everything served, derived from the v3
//! group-version documents (refs moved to `#/definitions/`, request bodies turned into `body`
//! parameters, parameter schemas flattened, kube's v2 shapes of the special string types).
//! Built lazily on first request; kept as JSON and as gnostic protobuf bytes.

use crate::v3;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The v2 document as JSON bytes and as protobuf (`openapi.v2.Document`) bytes.
struct Built {
    json: Vec<u8>,
    protobuf: Vec<u8>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let doc = build();
        Built {
            json: serde_json::to_vec(&doc).unwrap_or_default(),
            protobuf: crate::protobuf::encode_document(&doc),
        }
    })
}

/// The Swagger 2.0 document as JSON.
pub fn json_bytes() -> &'static [u8] {
    &built().json
}

/// The Swagger 2.0 document as gnostic protobuf, what kubectl asks `/openapi/v2` for.
pub fn protobuf_bytes() -> &'static [u8] {
    &built().protobuf
}

/// Build the document from every group-version's v3 document.
pub fn build() -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for key in v3::group_version_keys() {
        let Some((doc, _)) = v3::group_version(&key) else {
            continue;
        };
        if let Some(ps) = doc["paths"].as_object() {
            for (path, item) in ps {
                paths.insert(path.clone(), path_item(item));
            }
        }
        if let Some(schemas) = doc["components"]["schemas"].as_object() {
            for (name, schema) in schemas {
                let s = convert_schema(schema);
                match definitions.get_mut(name) {
                    Some(existing) => merge_gvks(existing, &s),
                    None => {
                        definitions.insert(name.clone(), s);
                    }
                }
            }
        }
    }
    let mut names: Vec<String> = definitions.keys().cloned().collect();
    names.sort();
    let mut sorted = Map::new();
    for n in names {
        if let Some(v) = definitions.remove(&n) {
            sorted.insert(n, v);
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": v3::KUBERNETES_VERSION},
        "paths": paths,
        "definitions": sorted,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

/// A schema with kube's v2 spelling: `$ref` with siblings instead of `allOf: [$ref]`,
/// `#/definitions/` refs, and `type: string` for Quantity and IntOrString.
fn convert_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                match k.as_str() {
                    "$ref" => {
                        let r = x
                            .as_str()
                            .unwrap_or_default()
                            .replace("#/components/schemas/", "#/definitions/");
                        out.insert(k.clone(), r.into());
                    }
                    "allOf"
                        if x.as_array()
                            .is_some_and(|a| a.len() == 1 && a[0].get("$ref").is_some()) =>
                    {
                        out.insert("$ref".into(), convert_schema(&x[0])["$ref"].clone());
                    }
                    "oneOf" => {
                        out.insert("type".into(), "string".into());
                    }
                    "default" => {}
                    _ => {
                        out.insert(k.clone(), convert_schema(x));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert_schema).collect()),
        other => other.clone(),
    }
}

fn merge_gvks(existing: &mut Value, new: &Value) {
    let Some(add) = new["x-kubernetes-group-version-kind"].as_array() else {
        return;
    };
    let Some(obj) = existing.as_object_mut() else {
        return;
    };
    let arr = obj
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(a) = arr.as_array_mut() {
        for g in add {
            if !a.contains(g) {
                a.push(g.clone());
            }
        }
    }
}

fn parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for k in ["name", "in", "description", "required"] {
        if let Some(x) = p.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    if let Some(s) = p["schema"].as_object() {
        for (k, x) in s {
            out.insert(k.clone(), x.clone());
        }
    }
    Value::Object(out)
}

fn path_item(item: &Value) -> Value {
    let mut out = Map::new();
    let Some(m) = item.as_object() else {
        return Value::Object(out);
    };
    for (method, op) in m {
        if method == "parameters" {
            let ps: Vec<Value> = op
                .as_array()
                .map(|a| a.iter().map(parameter).collect())
                .unwrap_or_default();
            out.insert("parameters".into(), Value::Array(ps));
        } else {
            out.insert(method.clone(), operation(op));
        }
    }
    Value::Object(out)
}

fn operation(op: &Value) -> Value {
    let mut out = Map::new();
    for k in ["description", "consumes"] {
        if let Some(x) = op.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    let mut params: Vec<Value> = op["parameters"]
        .as_array()
        .map(|a| a.iter().map(parameter).collect())
        .unwrap_or_default();
    let mut produces: Vec<String> = Vec::new();
    if let Some(content) = op["requestBody"]["content"].as_object() {
        let consumes: Vec<Value> = content.keys().map(|k| Value::String(k.clone())).collect();
        out.insert("consumes".into(), Value::Array(consumes));
        if let Some(schema) = content
            .values()
            .next()
            .map(|c| convert_schema(&c["schema"]))
        {
            params.insert(
                0,
                json!({"name": "body", "in": "body", "required": true, "schema": schema}),
            );
        }
    }
    let mut responses = Map::new();
    if let Some(rs) = op["responses"].as_object() {
        for (code, r) in rs {
            let mut resp = Map::new();
            resp.insert("description".into(), r["description"].clone());
            if let Some(content) = r["content"].as_object() {
                for k in content.keys() {
                    if !produces.contains(k) {
                        produces.push(k.clone());
                    }
                }
                if let Some(c) = content.values().next() {
                    resp.insert("schema".into(), convert_schema(&c["schema"]));
                }
            }
            responses.insert(code.clone(), Value::Object(resp));
        }
    }
    out.insert("produces".into(), json!(produces));
    out.insert("schemes".into(), json!(["https"]));
    out.insert("tags".into(), op["tags"].clone());
    out.insert("operationId".into(), op["operationId"].clone());
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    out.insert("responses".into(), Value::Object(responses));
    for (k, x) in op.as_object().into_iter().flatten() {
        if k.starts_with("x-") {
            out.insert(k.clone(), x.clone());
        }
    }
    Value::Object(out)
}
