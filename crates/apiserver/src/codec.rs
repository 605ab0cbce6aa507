//! Request body decoding (JSON, YAML, Kubernetes protobuf), type and field checks, and the
//! storage encoding.

use crate::handlers::Req;
use crate::status::{ApiError, ApiResult};
use bytes::Bytes;
use capstan_api::resources::{self, Resource};
use serde_json::{json, Value};

/// Decode a create/update body by its Content-Type.
pub fn decode_body(req: &Req) -> ApiResult<Value> {
    let ct = req.content_type();
    let body = &req.body;
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = match ct.as_str() {
        "" | "application/json" | "*/*" | "text/plain" => parse_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => decode_protobuf(body)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            json_type(&v)
        )));
    }
    Ok(v)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn parse_yaml(body: &[u8]) -> ApiResult<Value> {
    serde_yaml_ng::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}")))
}

/// Decode a PATCH body: JSON for the patch types, YAML or JSON for apply.
pub fn decode_patch(req: &Req, ct: &str) -> ApiResult<Value> {
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match ct {
        "application/json-patch+json" => {
            let v = parse_json(&req.body)?;
            if !v.is_array() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
                ));
            }
            Ok(v)
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let v = parse_json(&req.body)?;
            if !v.is_object() {
                return Err(ApiError::bad_request(format!(
                    "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_type(&v)
                )));
            }
            Ok(v)
        }
        "application/apply-patch+yaml" => {
            let v = parse_yaml(&req.body)?;
            if !v.is_object() {
                return Err(ApiError::bad_request("error decoding YAML: the apply configuration must be an object"));
            }
            Ok(v)
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the server does not support the patch type {other:?}: supported patch types are application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"),
        )),
    }
}

/// Check (and fill, when absent) apiVersion and kind against the endpoint.
pub fn check_type(res: &Resource, obj: &mut Value) -> ApiResult<()> {
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let want_av = res.api_version();
    // A body at another served version of the same resource is converted (e.g. an
    // autoscaling/v1 HPA PUT to the v2 endpoint is rejected by kube; we stay strict).
    if !av.is_empty() && av != want_av {
        if resources::find_kind(&av, &kind).is_none() && !kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "no kind \"{kind}\" is registered for version \"{av}\" in scheme \"k8s.io/apimachinery@v1.32.0/pkg/runtime/scheme.go:100\""
            )));
        }
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want_av})"
        )));
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.kind
        )));
    }
    crate::meta::set_type(obj, &want_av, res.kind);
    if let Some(m) = obj.get("metadata") {
        if !m.is_object() && !m.is_null() {
            return Err(ApiError::bad_request(
                "json: cannot unmarshal metadata into Go struct field of type v1.ObjectMeta",
            ));
        }
    }
    Ok(())
}

/// Type-check the object against its kind's schema (a body that does not decode is a 400, as
/// in kube-apiserver), then honour fieldValidation=Strict|Warn|Ignore for unknown fields.
pub fn check_fields(req: &Req, res: &Resource, obj: &Value) -> ApiResult<()> {
    let (types, unknown) = capstan_validation::check_object(res.group, res.version, res.kind, obj);
    if !types.is_empty() {
        return Err(ApiError::bad_request(
            capstan_validation::decode_error_message(res.kind, res.version, &types),
        ));
    }
    let mode = req.param("fieldValidation").unwrap_or("Warn");
    if mode.eq_ignore_ascii_case("Ignore") {
        return Ok(());
    }
    if unknown.is_empty() {
        return Ok(());
    }
    if mode.eq_ignore_ascii_case("Strict") {
        return Err(ApiError::bad_request(
            capstan_validation::strict_decoding_message(&unknown),
        ));
    }
    // Warn: kube-apiserver sends one Warning header per unknown field; the write goes on.
    for f in unknown {
        req.warn(format!("unknown field \"{}\"", f.trim_start_matches('.')));
    }
    Ok(())
}

/// The bytes stored for an object: JSON without resourceVersion (the store's mod revision is
/// the resourceVersion).
pub fn encode_stored(obj: &Value) -> Bytes {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    Bytes::from(serde_json::to_vec(&v).expect("Value serializes"))
}

/// 422 Invalid from field errors.
pub fn invalid(res: &Resource, name: &str, errs: &[capstan_validation::FieldError]) -> ApiError {
    let causes = errs
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
        .collect();
    ApiError::invalid(
        res.kind,
        res.group,
        name,
        capstan_validation::invalid_message(
            &capstan_validation::qualified_kind(res.group, res.kind),
            name,
            errs,
        ),
        causes,
    )
}

/// Decode a Kubernetes protobuf body (`k8s\0` envelope) into its JSON form.
pub fn decode_protobuf(body: &[u8]) -> ApiResult<Value> {
    capstan_wire::decode(body)
        .map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))
}
