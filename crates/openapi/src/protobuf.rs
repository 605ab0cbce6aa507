//! Encoding of a Swagger 2.0 JSON document as gnostic's `openapi.v2.Document` protobuf
//! (github.com/google/gnostic openapiv2/OpenAPIv2.proto), the form kubectl requests from
//! `/openapi/v2`. Only the fields kube's documents use are encoded; vendor extensions travel as
//! `NamedAny{name, Any{yaml}}` with the value's JSON text (JSON is YAML).

use serde_json::Value;

/// A protobuf message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn str_of(&mut self, field: u32, v: &Value) {
        if let Some(s) = v.as_str() {
            self.string(field, s);
        }
    }

    fn strings(&mut self, field: u32, v: &Value) {
        for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool_of(&mut self, field: u32, v: &Value) {
        if v.as_bool() == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }
}

/// `NamedAny` entries for every `x-` key of `v`.
fn vendor_extensions(m: &mut Msg, field: u32, v: &Value) {
    for (k, x) in v.as_object().into_iter().flatten() {
        if k.starts_with("x-") {
            let mut any = Msg::default();
            any.string(2, &x.to_string());
            let mut named = Msg::default();
            named.string(1, k);
            named.msg(2, any);
            m.msg(field, named);
        }
    }
}

/// `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut d = Msg::default();
    d.str_of(1, &doc["swagger"]);
    let mut info = Msg::default();
    info.str_of(1, &doc["info"]["title"]);
    info.str_of(2, &doc["info"]["version"]);
    d.msg(2, info);
    let mut paths = Msg::default();
    for (name, item) in doc["paths"].as_object().into_iter().flatten() {
        let mut named = Msg::default();
        named.string(1, name);
        named.msg(2, path_item(item));
        paths.msg(2, named);
    }
    d.msg(8, paths);
    let mut defs = Msg::default();
    for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
        defs.msg(1, named_schema(name, s));
    }
    d.msg(9, defs);
    vendor_extensions(&mut d, 16, doc);
    d.0
}

fn named_schema(name: &str, s: &Value) -> Msg {
    let mut named = Msg::default();
    named.string(1, name);
    named.msg(2, schema(s));
    named
}

/// `openapi.v2.Schema`.
fn schema(s: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, &s["$ref"]);
    m.str_of(2, &s["format"]);
    m.str_of(3, &s["title"]);
    m.str_of(4, &s["description"]);
    m.strings(19, &s["required"]);
    for e in s["enum"].as_array().into_iter().flatten() {
        let mut any = Msg::default();
        any.string(2, &e.to_string());
        m.msg(20, any);
    }
    match &s["additionalProperties"] {
        Value::Object(_) => {
            let mut ap = Msg::default();
            ap.msg(1, schema(&s["additionalProperties"]));
            m.msg(21, ap);
        }
        Value::Bool(b) => {
            let mut ap = Msg::default();
            ap.key(2, 0);
            ap.varint(u64::from(*b));
            m.msg(21, ap);
        }
        _ => {}
    }
    match &s["type"] {
        Value::String(t) => {
            let mut ty = Msg::default();
            ty.string(1, t);
            m.msg(22, ty);
        }
        Value::Array(_) => {
            let mut ty = Msg::default();
            ty.strings(1, &s["type"]);
            m.msg(22, ty);
        }
        _ => {}
    }
    if s["items"].is_object() {
        let mut items = Msg::default();
        items.msg(1, schema(&s["items"]));
        m.msg(23, items);
    }
    for a in s["allOf"].as_array().into_iter().flatten() {
        m.msg(24, schema(a));
    }
    if let Some(props) = s["properties"].as_object() {
        let mut p = Msg::default();
        for (name, ps) in props {
            p.msg(1, named_schema(name, ps));
        }
        m.msg(25, p);
    }
    vendor_extensions(&mut m, 31, s);
    m
}

/// `openapi.v2.PathItem`.
fn path_item(item: &Value) -> Msg {
    let mut m = Msg::default();
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if item[method].is_object() {
            m.msg(field, operation(&item[method]));
        }
    }
    for p in item["parameters"].as_array().into_iter().flatten() {
        m.msg(9, parameters_item(p));
    }
    vendor_extensions(&mut m, 10, item);
    m
}

/// `openapi.v2.Operation`.
fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    m.strings(1, &op["tags"]);
    m.str_of(3, &op["description"]);
    m.str_of(5, &op["operationId"]);
    m.strings(6, &op["produces"]);
    m.strings(7, &op["consumes"]);
    for p in op["parameters"].as_array().into_iter().flatten() {
        m.msg(8, parameters_item(p));
    }
    let mut responses = Msg::default();
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        let mut resp = Msg::default();
        resp.str_of(1, &r["description"]);
        if r["schema"].is_object() {
            let mut item = Msg::default();
            item.msg(1, schema(&r["schema"]));
            resp.msg(2, item);
        }
        let mut value = Msg::default();
        value.msg(1, resp);
        let mut named = Msg::default();
        named.string(1, code);
        named.msg(2, value);
        responses.msg(1, named);
    }
    m.msg(9, responses);
    m.strings(10, &op["schemes"]);
    vendor_extensions(&mut m, 13, op);
    m
}

/// `openapi.v2.ParametersItem` holding a `Parameter` (body, query or path).
fn parameters_item(p: &Value) -> Msg {
    let mut param = Msg::default();
    match p["in"].as_str() {
        Some("body") => {
            let mut body = Msg::default();
            body.str_of(1, &p["description"]);
            body.str_of(2, &p["name"]);
            body.str_of(3, &p["in"]);
            body.bool_of(4, &p["required"]);
            if p["schema"].is_object() {
                body.msg(5, schema(&p["schema"]));
            }
            param.msg(1, body);
        }
        Some(kind @ ("query" | "path")) => {
            // Query and path sub-schemas share fields 1–4; `type` is 6 for query, 5 for path,
            // and `uniqueItems` 20 for query, 19 for path.
            let (ty, unique, oneof) = if kind == "query" {
                (6, 20, 3)
            } else {
                (5, 19, 4)
            };
            let mut sub = Msg::default();
            sub.bool_of(1, &p["required"]);
            sub.str_of(2, &p["in"]);
            sub.str_of(3, &p["description"]);
            sub.str_of(4, &p["name"]);
            sub.str_of(ty, &p["type"]);
            sub.bool_of(unique, &p["uniqueItems"]);
            let mut non_body = Msg::default();
            non_body.msg(oneof, sub);
            param.msg(2, non_body);
        }
        _ => {}
    }
    let mut item = Msg::default();
    item.msg(1, param);
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_varints_and_fields() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 1]),
            (300, &[0xac, 0x02]),
        ];
        for (v, want) in cases {
            let mut m = Msg::default();
            m.varint(*v);
            assert_eq!(m.0, *want, "{v}");
        }
        let doc = json!({"swagger": "2.0", "info": {"title": "K", "version": "v"}});
        let b = encode_document(&doc);
        // field 1 (swagger), wire type 2, length 3, "2.0"; then field 2 (info).
        assert_eq!(&b[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(b[5], 0x12);
    }
}
