//! CREATE, UPDATE (PUT) and PATCH (JSON patch, merge patch, strategic merge patch and
//! server-side apply), including the status and finalize subresources.
//!
//! Every write goes: decode → convert to the storage version → defaults → admission →
//! validation → managedFields → compare-and-swap in the store.

use super::read::{read_object, render_one_code};
use super::Req;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::{admission, codec, convert, meta, ApiServer};
use capstan_api::resources::Resource;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Kinds whose spec changes bump metadata.generation.
fn tracks_generation(kind: &str) -> bool {
    !matches!(
        kind,
        "Pod"
            | "Event"
            | "Lease"
            | "ConfigMap"
            | "Secret"
            | "Endpoints"
            | "EndpointSlice"
            | "Node"
            | "Namespace"
            | "ServiceAccount"
            | "ControllerRevision"
            | "Role"
            | "RoleBinding"
            | "ClusterRole"
            | "ClusterRoleBinding"
    )
}

/// Kinds with a status subresource: writes to the main resource keep the stored status.
fn has_status(res: &Resource) -> bool {
    res.has_subresource("status")
}

/// The field manager for a write: ?fieldManager, else the user agent's program name.
fn manager(req: &Req) -> String {
    if let Some(m) = req.param("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = req.header("user-agent");
    let prog = ua.split('/').next().unwrap_or("").trim();
    if prog.is_empty() {
        "unknown".to_string()
    } else {
        prog.to_string()
    }
}

/// Decode the body into an object of the request's kind, converted to the storage version.
fn decode_object(req: &Req) -> ApiResult<Value> {
    let mut obj = codec::decode_body(req)?;
    let res = req.rr.resource;
    codec::check_type(res, &mut obj)?;
    codec::check_fields(req, res, &obj)?;
    let obj = convert::to_storage(res, obj);
    Ok(obj)
}

pub async fn create(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    if req.rr.name.is_some() && req.rr.subresource.is_none() {
        return Err(ApiError::method_not_allowed(
            "POST is not allowed on a named resource",
        ));
    }
    let obj = decode_object(req)?;
    let created = create_object(api, req, obj).await?;
    Ok(render_one_code(
        req,
        convert::from_storage(req.rr.resource, created),
        StatusCode::CREATED,
    ))
}

/// Create `obj` (storage form). Shared by POST and by server-side apply of an absent object.
pub async fn create_object(api: &Arc<ApiServer>, req: &Req, mut obj: Value) -> ApiResult<Value> {
    let res = req.rr.resource.storage_resource();
    let ns = req.namespace().map(str::to_string);
    {
        let m = meta::meta_mut(&mut obj);
        match (&ns, m.get("namespace").and_then(Value::as_str)) {
            (Some(url), Some(body)) if !body.is_empty() && body != url => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            (Some(url), _) => {
                m.insert("namespace".into(), json!(url));
            }
            (None, _) => {
                m.remove("namespace");
            }
        }
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::now()));
        if tracks_generation(res.kind) {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    let generate = meta::name(&obj).is_empty()
        && obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .is_some_and(|g| !g.is_empty());
    if generate {
        let base = obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        meta::meta_mut(&mut obj).insert(
            "name".into(),
            json!(format!("{base}{}", meta::random_suffix())),
        );
    }
    if let Some(status_less) = obj.as_object_mut() {
        if res.kind == "Pod" || res.kind == "Namespace" {
            status_less.remove("status");
        }
    }
    capstan_validation::normalize_secret(&mut obj);
    capstan_validation::default_object(res, &mut obj);
    if res.kind == "Job" {
        capstan_validation::job_generate_selector(&mut obj);
    }
    admission::admit_create(api, res, &mut obj).await?;
    let errs = capstan_validation::validate_semantics(res, &obj, None, None);
    if !errs.is_empty() {
        return Err(codec::invalid(res, meta::name(&obj), &errs));
    }
    // Released unless the create is stored (dry runs show what would be allocated).
    let ticket = if res.kind == "Service" {
        Some(admission::admit_service(api, &mut obj, None)?)
    } else {
        None
    };
    let now = meta::now();
    capstan_patch::track_update(None, &mut obj, &manager(req), &now);
    if req.dry_run() {
        return Ok(obj);
    }
    let mut attempts = 0;
    loop {
        let name = meta::name(&obj).to_string();
        let key = res.key(ns.as_deref(), &name);
        let bytes = codec::encode_stored(&obj);
        match api.store.create(&key, bytes).await {
            Ok(rev) => {
                if let Some(t) = ticket {
                    t.commit();
                }
                meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(rev.to_string()));
                admission::after_create(api, res, &obj).await;
                return Ok(obj);
            }
            Err(capstan_store::Error::KeyExists) if generate && attempts < 8 => {
                attempts += 1;
                let base = obj
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                meta::meta_mut(&mut obj).insert(
                    "name".into(),
                    json!(format!("{base}{}", meta::random_suffix())),
                );
            }
            Err(capstan_store::Error::KeyExists) => {
                return Err(ApiError::already_exists(
                    req.rr.resource.group,
                    req.rr.resource.plural,
                    &name,
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn update(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let obj = decode_object(req)?;
    let name = req.name().to_string();
    if meta::name(&obj) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&obj)
        )));
    }
    let precondition = meta::resource_version(&obj).map(str::to_string);
    let body = obj;
    let out = guaranteed_update(api, req, precondition.as_deref(), |_old| Ok(body.clone())).await?;
    Ok(render_one_code(
        req,
        convert::from_storage(req.rr.resource, out),
        StatusCode::OK,
    ))
}

pub async fn patch(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let ct = req.content_type();
    let patch_body = codec::decode_patch(req, &ct)?;
    let res = req.rr.resource;
    if ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor" {
        return apply(api, req, patch_body).await;
    }
    let precondition = patch_body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let out = guaranteed_update(api, req, precondition.as_deref(), |old| {
        let served = convert::from_storage(res, old.clone());
        let patched = match ct.as_str() {
            "application/json-patch+json" => capstan_patch::json_patch(&served, &patch_body),
            "application/merge-patch+json" => capstan_patch::json_merge_patch(&served, &patch_body),
            "application/strategic-merge-patch+json" => {
                let schema = capstan_patch::schema_for(&res.api_version(), res.kind);
                capstan_patch::strategic_merge_patch(&served, &patch_body, &schema)
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
        let mut patched = patched;
        codec::check_type(res, &mut patched)?;
        codec::check_fields(req, res, &patched)?;
        let stored = convert::to_storage(res, patched);
        Ok(stored)
    })
    .await?;
    Ok(render_one_code(
        req,
        convert::from_storage(res, out),
        StatusCode::OK,
    ))
}

async fn apply(api: &Arc<ApiServer>, req: &Req, applied: Value) -> ApiResult<Response<Body>> {
    let res = req.rr.resource;
    let force = req.flag("force");
    let Some(manager) = req
        .param("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
    else {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requires a non-empty fieldManager query parameter",
        ));
    };
    let mut applied = applied;
    codec::check_type(res, &mut applied)?;
    codec::check_fields(req, res, &applied)?;
    if meta::name(&applied) != req.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            meta::name(&applied),
            req.name()
        )));
    }
    let schema = capstan_patch::schema_for(&res.api_version(), res.kind);
    match read_object(api, req, req.name()).await {
        Err(e) if e.code == 404 && req.rr.subresource.is_none() => {
            let now = meta::now();
            let obj =
                capstan_patch::server_side_apply(None, &applied, &manager, force, &schema, &now)
                    .map_err(apply_error)?;
            let obj = convert::to_storage(res, obj);
            let created = create_object(api, req, obj).await?;
            Ok(render_one_code(
                req,
                convert::from_storage(res, created),
                StatusCode::CREATED,
            ))
        }
        Err(e) => Err(e),
        Ok(_) => {
            let out = guaranteed_update(api, req, None, |old| {
                let served = convert::from_storage(res, old.clone());
                let now = meta::now();
                let obj = capstan_patch::server_side_apply(
                    Some(&served),
                    &applied,
                    &manager,
                    force,
                    &schema,
                    &now,
                )
                .map_err(apply_error)?;
                let stored = convert::to_storage(res, obj);
                Ok(stored)
            })
            .await?;
            Ok(render_one_code(
                req,
                convert::from_storage(res, out),
                StatusCode::OK,
            ))
        }
    }
}

fn apply_error(e: capstan_patch::ApplyError) -> ApiError {
    match e {
        capstan_patch::ApplyError::Conflicts { message, causes } => {
            let mut err = ApiError::new(409, "Conflict", message);
            err.details = Some(json!({"causes": causes}));
            err
        }
        other => ApiError::new(422, "Invalid", other.to_string()),
    }
}

/// Read-modify-write with compare-and-swap, retried on conflicts when the client gave no
/// resourceVersion precondition. `mutate` gets the stored object and returns the desired one
/// (storage form); metadata the client may not change is restored here.
pub async fn guaranteed_update<F>(
    api: &Arc<ApiServer>,
    req: &Req,
    precondition: Option<&str>,
    mut mutate: F,
) -> ApiResult<Value>
where
    F: FnMut(&Value) -> ApiResult<Value>,
{
    let res = req.rr.resource.storage_resource();
    let name = req.name().to_string();
    let key = res.key(req.namespace(), &name);
    let sub = req.rr.subresource.as_deref();
    for _ in 0..16 {
        let (old, old_rev) = read_object(api, req, &name).await?;
        if let Some(p) = precondition {
            if p != old_rev.to_string() {
                return Err(ApiError::modified(
                    req.rr.resource.group,
                    req.rr.resource.plural,
                    &name,
                ));
            }
        }
        let desired = mutate(&old)?;
        let mut new = merge_for_subresource(res, sub, &old, desired);
        preserve_metadata(res, &old, &mut new);
        capstan_validation::prepare_for_update(res, &mut new, &old);
        capstan_validation::normalize_secret(&mut new);
        capstan_validation::default_object(res, &mut new);
        admission::admit_update(api, res, &old, &mut new).await?;
        // The scale and binding subresources change the main object; it is validated as such.
        let errs = match sub {
            Some("binding") => Vec::new(),
            Some("scale") => capstan_validation::validate_semantics(res, &new, Some(&old), None),
            _ => capstan_validation::validate_semantics(res, &new, Some(&old), sub),
        };
        if !errs.is_empty() {
            return Err(codec::invalid(res, &name, &errs));
        }
        // Released unless this write is stored (a conflict retries with a fresh one).
        let ticket = if res.kind == "Service" && sub.is_none() {
            Some(admission::admit_service(api, &mut new, Some(&old))?)
        } else {
            None
        };
        if tracks_generation(res.kind) && sub.is_none() && old.get("spec") != new.get("spec") {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta::meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        let now = meta::now();
        let mut cmp_old = old.clone();
        strip_volatile(&mut cmp_old);
        let mut cmp_new = new.clone();
        strip_volatile(&mut cmp_new);
        if cmp_old == cmp_new {
            return Ok(old);
        }
        capstan_patch::track_update(Some(&old), &mut new, &manager(req), &now);
        if req.dry_run() {
            return Ok(new);
        }
        // An object being deleted whose last finalizer was just removed goes away now (a
        // namespace once spec.finalizers is empty too: namespaces/finalize).
        let removed = meta::deletion_timestamp(&new).is_some()
            && meta::finalizers(&new).is_empty()
            && (res.kind != "Namespace" || meta::namespace_finalized(&new));
        let written = if removed {
            api.store
                .delete(&key, Some(old_rev))
                .await
                .map(|(rev, _)| rev)
        } else {
            api.store
                .update(&key, codec::encode_stored(&new), old_rev)
                .await
        };
        match written {
            Ok(rev) => {
                if let Some(t) = ticket {
                    t.commit();
                }
                if removed {
                    api.after_delete(res, &new).await;
                }
                meta::meta_mut(&mut new).insert("resourceVersion".into(), json!(rev.to_string()));
                return Ok(new);
            }
            Err(capstan_store::Error::Conflict { .. }) if precondition.is_none() => continue,
            Err(capstan_store::Error::Conflict { .. }) => {
                return Err(ApiError::modified(
                    req.rr.resource.group,
                    req.rr.resource.plural,
                    &name,
                ))
            }
            Err(capstan_store::Error::NotFound) => {
                return Err(ApiError::not_found(
                    req.rr.resource.group,
                    req.rr.resource.plural,
                    &name,
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::modified(
        req.rr.resource.group,
        req.rr.resource.plural,
        &name,
    ))
}

/// For the main resource, keep the stored status; for /status, take only the status; for
/// namespaces/finalize, take only spec.finalizers.
fn merge_for_subresource(res: &Resource, sub: Option<&str>, old: &Value, desired: Value) -> Value {
    match sub {
        None if has_status(res) => with_status_of(desired, old),
        None => desired,
        // kube-apiserver ignores metadata and spec changes on status writes.
        Some("status") => with_status_of(old.clone(), &desired),
        Some("finalize") => {
            let mut new = old.clone();
            new["spec"]["finalizers"] = desired
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            new
        }
        Some(_) => desired,
    }
}

/// `base` with the status of `from` (absent if `from` has none).
fn with_status_of(mut base: Value, from: &Value) -> Value {
    match from.get("status") {
        Some(s) => base["status"] = s.clone(),
        None => {
            if let Some(o) = base.as_object_mut() {
                o.remove("status");
            }
        }
    }
    base
}

/// Metadata set by the server that updates may not change.
fn preserve_metadata(_res: &Resource, old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta::meta_mut(new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old_meta.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    if !m.contains_key("managedFields") {
        if let Some(mf) = old_meta.get("managedFields") {
            m.insert("managedFields".into(), mf.clone());
        }
    }
}

/// Drop what differs between two writes of the same content.
fn strip_volatile(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
}
