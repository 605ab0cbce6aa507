//! Subresources other than status: scale (autoscaling/v1 Scale), binding (sets spec.nodeName),
//! eviction (policy/v1 Eviction), and the review kinds that are answered, not stored.

use super::read::read_object;
use super::write::guaranteed_update;
use super::Req;
use crate::respond::json_response;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::{codec, meta, ApiServer};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// "app=web,tier=fe" from a LabelSelector object or an RC's plain selector map.
pub fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut parts = Vec::new();
    let labels = sel
        .get("matchLabels")
        .or(if sel.get("matchExpressions").is_none() {
            Some(sel)
        } else {
            None
        });
    if let Some(m) = labels.and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

fn scale_of(obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    let sel = obj.pointer("/spec/selector");
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(sel),
        }
    })
}

pub async fn scale(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    use crate::request::Verb;
    let res = req.rr.resource;
    match req.rr.verb {
        Verb::Get => {
            let (obj, _) = read_object(api, req, req.name()).await?;
            Ok(json_response(StatusCode::OK, &scale_of(&obj)))
        }
        Verb::Update | Verb::Patch => {
            let is_patch = req.rr.verb == Verb::Patch;
            let ct = req.content_type();
            let body = if is_patch {
                codec::decode_patch(req, &ct)?
            } else {
                codec::decode_body(req)?
            };
            if !is_patch {
                let kind = body.get("kind").and_then(Value::as_str).unwrap_or("Scale");
                if kind != "Scale" {
                    return Err(ApiError::bad_request(format!(
                        "the kind in the data ({kind}) does not match the expected kind (Scale)"
                    )));
                }
            }
            let precondition = if is_patch {
                None
            } else {
                body.pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let out = guaranteed_update(api, req, precondition.as_deref(), |old| {
                let current = scale_of(old);
                let desired = if is_patch {
                    match ct.as_str() {
                        "application/json-patch+json" => capstan_patch::json_patch(&current, &body),
                        _ => capstan_patch::json_merge_patch(&current, &body),
                    }
                    .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?
                } else {
                    body.clone()
                };
                let replicas = desired.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                match replicas.as_i64() {
                    Some(r) if r >= 0 && r <= i32::MAX as i64 => {}
                    _ => {
                        return Err(ApiError::invalid("Scale", "autoscaling", meta::name(old), format!(
                            "Scale.autoscaling \"{}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
                            meta::name(old)
                        ), vec![json!({"reason": "FieldValueInvalid", "field": "spec.replicas", "message": "Invalid value: must be greater than or equal to 0"})]));
                    }
                }
                let mut new = old.clone();
                new["spec"]["replicas"] = replicas;
                Ok(new)
            })
            .await?;
            let _ = res;
            Ok(json_response(StatusCode::OK, &scale_of(&out)))
        }
        _ => Err(ApiError::method_not_allowed(
            "the scale subresource supports get, update and patch",
        )),
    }
}

/// POST pods/NAME/binding: set spec.nodeName once.
pub async fn binding(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    if req.rr.verb != crate::request::Verb::Create {
        return Err(ApiError::method_not_allowed("binding supports create only"));
    }
    let body = codec::decode_body(req)?;
    let target = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if target.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            req.name(),
            format!(
                "Binding \"{}\" is invalid: target.name: Required value",
                req.name()
            ),
            vec![
                json!({"reason":"FieldValueRequired","message":"Required value","field":"target.name"}),
            ],
        ));
    }
    let name = req.name().to_string();
    // guaranteed_update on the pod (404 for a missing one; the subresource path must not strip
    // spec changes).
    let pod_req = Req {
        method: req.method.clone(),
        headers: req.headers.clone(),
        query: req.query.clone(),
        body: req.body.clone(),
        user: req.user.clone(),
        rr: crate::request::ResourceRequest {
            subresource: Some("binding".into()),
            ..req.rr.clone()
        },
        warnings: Default::default(),
        upgrade: Default::default(),
    };
    let t = target.clone();
    guaranteed_update(api, &pod_req, None, move |old| {
        if let Some(existing) = old.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict("", "pods", &name, &format!("pod {name} is already assigned to node \"{existing}\"")));
        }
        if old.pointer("/spec/schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty()) {
            return Err(ApiError::conflict("", "pods", &name, &format!("pod {name} has non-empty .spec.schedulingGates")));
        }
        if meta::deletion_timestamp(old).is_some() {
            return Err(ApiError::conflict("", "pods", &name, "pod is being deleted, cannot be assigned to a host"));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(t);
        let conds = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}));
        new["status"]["conditions"] = json!(conds);
        Ok(new)
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &crate::status::success_status(None),
    ))
}

/// POST pods/NAME/eviction: the pod's PodDisruptionBudget is consulted and charged
/// (`admission::check_eviction`), then the pod is deleted gracefully.
pub async fn eviction(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    if req.rr.verb != crate::request::Verb::Create {
        return Err(ApiError::method_not_allowed(
            "eviction supports create only",
        ));
    }
    let body = codec::decode_body(req)?;
    let mut opts = super::delete::DeleteOptions::default();
    if let Some(d) = body.get("deleteOptions") {
        opts.grace = d.get("gracePeriodSeconds").and_then(Value::as_i64);
    }
    let res = req.rr.resource;
    let name = req.name();
    crate::admission::check_eviction(api, req.namespace().unwrap_or(""), name).await?;
    super::delete::delete_one(api, res, res, req.namespace(), name, &opts).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &crate::status::success_status(None),
    ))
}

/// Review kinds: answered from the request's identity, never stored.
pub async fn review(_api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    if req.rr.verb != crate::request::Verb::Create {
        return Err(ApiError::method_not_allowed(format!(
            "{} supports create only",
            req.rr.resource.plural
        )));
    }
    let mut body = codec::decode_body(req)?;
    let res = req.rr.resource;
    codec::check_type(res, &mut body)?;
    let allowed = req.user.is_admin();
    match res.kind {
        "SelfSubjectAccessReview" | "SubjectAccessReview" => {
            body["status"] = if allowed {
                json!({"allowed": true, "reason": "the admin credential may do everything"})
            } else {
                json!({"allowed": false})
            };
        }
        "SelfSubjectReview" => {
            body["status"] =
                json!({"userInfo": {"username": req.user.name, "groups": req.user.groups}});
        }
        _ => return Err(ApiError::no_route()),
    }
    if body.get("metadata").is_none() {
        body["metadata"] = json!({});
    }
    Ok(json_response(StatusCode::CREATED, &body))
}
