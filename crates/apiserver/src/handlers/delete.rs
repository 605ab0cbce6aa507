//! DELETE of one object and of a collection: preconditions, graceful deletion of bound pods,
//! finalizers (the object stays with a deletionTimestamp until they are gone), and namespace
//! termination (deletionTimestamp + phase Terminating; the namespace controller does the rest).

use super::read::render_one;
use super::Req;
use crate::filter::Filter;
use crate::respond::json_response;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::{codec, convert, meta, ApiServer};
use capstan_api::resources::Resource;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// The effective DeleteOptions from the body and the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

fn delete_options(req: &Req) -> ApiResult<DeleteOptions> {
    let mut o = DeleteOptions::default();
    if !req.body.is_empty() {
        let body: Value = if req.content_type() == "application/vnd.kubernetes.protobuf" {
            codec::decode_protobuf(&req.body)?
        } else {
            codec::parse_json(&req.body)?
        };
        o.grace = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && o.propagation.is_none()
        {
            o.propagation = Some("Orphan".into());
        }
        o.uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.resource_version = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.dry_run = body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    }
    if let Some(g) = req.param("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    if let Some(p) = req.param("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    if let Some(p) = &o.propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::invalid("DeleteOptions", "", "", format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ), vec![]));
        }
    }
    o.dry_run |= req.dry_run();
    Ok(o)
}

pub async fn delete(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let opts = delete_options(req)?;
    let res = req.rr.resource.storage_resource();
    let name = req.name().to_string();
    let (obj, code) = delete_one(api, res, req.rr.resource, req.namespace(), &name, &opts).await?;
    let out = convert::from_storage(req.rr.resource, obj);
    if code == StatusCode::OK {
        Ok(render_one(req, out))
    } else {
        Ok(json_response(code, &out))
    }
}

/// Delete one object, honouring grace and finalizers. Returns the object as it stands after
/// the call (still present with a deletionTimestamp, or gone).
pub async fn delete_one(
    api: &Arc<ApiServer>,
    res: &'static Resource,
    served: &'static Resource,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<(Value, StatusCode)> {
    let key = res.key(ns, name);
    for _ in 0..16 {
        let Some(kv) = api.store.get(&key).await? else {
            return Err(ApiError::not_found(served.group, served.plural, name));
        };
        let rev = kv.mod_revision;
        let mut obj = crate::watchcache::decode_stored(&kv.value, rev)
            .ok_or_else(|| ApiError::internal("stored object is not valid JSON"))?;
        if let Some(uid) = &opts.uid {
            let have = meta::uid(&obj).unwrap_or("");
            if uid != have {
                return Err(ApiError::conflict(
                    served.group,
                    served.plural,
                    name,
                    &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
                ));
            }
        }
        if let Some(want) = &opts.resource_version {
            if *want != rev.to_string() {
                return Err(ApiError::conflict(served.group, served.plural, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
                )));
            }
        }
        let gc_finalizer = res.kind != "Namespace" && add_gc_finalizer(&mut obj, opts);
        let finalizers = meta::finalizers(&obj);
        let pending_grace = graceful_seconds(res, &obj, opts);
        let already = meta::deletion_timestamp(&obj).is_some();
        if res.kind == "Namespace" {
            if opts.dry_run {
                return Ok((obj, StatusCode::OK));
            }
            if !already {
                let m = meta::meta_mut(&mut obj);
                m.insert("deletionTimestamp".into(), json!(meta::now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                obj["status"]["phase"] = json!("Terminating");
                match api
                    .store
                    .update(&key, codec::encode_stored(&obj), rev)
                    .await
                {
                    Ok(r) => {
                        meta::meta_mut(&mut obj)
                            .insert("resourceVersion".into(), json!(r.to_string()));
                    }
                    Err(capstan_store::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // The namespace controller empties it and removes the `kubernetes` finalizer
            // (PUT namespaces/NAME/finalize, see write.rs); a later DELETE of a namespace
            // with no finalizers left removes it, as kube's namespace registry does.
            if !already || !meta::namespace_finalized(&obj) {
                return Ok((obj, StatusCode::OK));
            }
            match api.store.delete(&key, Some(rev)).await {
                Ok((r, _)) => {
                    meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(r.to_string()));
                    return Ok((obj, StatusCode::OK));
                }
                Err(capstan_store::Error::Conflict { .. }) => continue,
                Err(capstan_store::Error::NotFound) => {
                    return Err(ApiError::not_found(served.group, served.plural, name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !finalizers.is_empty() || pending_grace.is_some() {
            if opts.dry_run {
                return Ok((obj, StatusCode::OK));
            }
            // Stays until its finalizers are removed (or the node agent finishes the pod).
            let m = meta::meta_mut(&mut obj);
            let grace = pending_grace.unwrap_or(0);
            let deadline = chrono::Utc::now() + chrono::Duration::seconds(grace);
            let shorten = match m.get("deletionGracePeriodSeconds").and_then(Value::as_i64) {
                Some(existing) => grace < existing,
                None => true,
            };
            if !already || shorten || gc_finalizer {
                m.insert(
                    "deletionTimestamp".into(),
                    json!(deadline.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                match api
                    .store
                    .update(&key, codec::encode_stored(&obj), rev)
                    .await
                {
                    Ok(r) => {
                        meta::meta_mut(&mut obj)
                            .insert("resourceVersion".into(), json!(r.to_string()));
                    }
                    Err(capstan_store::Error::Conflict { .. }) => continue,
                    Err(capstan_store::Error::NotFound) => {
                        return Err(ApiError::not_found(served.group, served.plural, name))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok((obj, StatusCode::OK));
        }
        if opts.dry_run {
            return Ok((obj, StatusCode::OK));
        }
        match api.store.delete(&key, Some(rev)).await {
            Ok((r, _)) => {
                meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(r.to_string()));
                api.after_delete(res, &obj).await;
                return Ok((obj, StatusCode::OK));
            }
            Err(capstan_store::Error::Conflict { .. }) => continue,
            Err(capstan_store::Error::NotFound) => {
                return Err(ApiError::not_found(served.group, served.plural, name))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::modified(served.group, served.plural, name))
}

/// propagationPolicy Foreground / Orphan: the garbage collector's finalizer
/// (`foregroundDeletion` / `orphan`, the other one removed), as kube-apiserver adds it.
/// True when the finalizers changed.
fn add_gc_finalizer(obj: &mut Value, opts: &DeleteOptions) -> bool {
    let (add, drop) = match opts.propagation.as_deref() {
        Some("Foreground") => ("foregroundDeletion", "orphan"),
        Some("Orphan") => ("orphan", "foregroundDeletion"),
        _ => return false,
    };
    let mut f = meta::finalizers(obj);
    let before = f.clone();
    f.retain(|x| x != drop);
    if !f.iter().any(|x| x == add) {
        f.push(add.to_string());
    }
    if f == before {
        return false;
    }
    meta::meta_mut(obj).insert("finalizers".into(), json!(f));
    true
}

/// Pods bound to a node are deleted gracefully: the node agent stops the containers and then
/// deletes the pod with grace 0. Returns the grace period when the deletion must wait.
fn graceful_seconds(res: &Resource, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
    if res.kind != "Pod" {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = opts
        .grace
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    if grace <= 0 {
        None
    } else {
        Some(grace)
    }
}

pub async fn delete_collection(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let opts = delete_options(req)?;
    let res = req.rr.resource.storage_resource();
    let filter = Filter::from_req(req)?;
    let rev = api.store.current_revision().await?;
    api.cache
        .wait_for(rev, std::time::Duration::from_secs(3))
        .await;
    let (items, _) = api.cache.list(&res.prefix(req.namespace()));
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| filter.matches(&o.selectable)) {
        match delete_one(
            api,
            res,
            req.rr.resource,
            obj.namespace(),
            obj.name(),
            &opts,
        )
        .await
        {
            Ok((o, _)) => deleted.push(convert::from_storage(req.rr.resource, o)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let served = req.rr.resource;
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", served.kind), "apiVersion": served.api_version(), "metadata": {"resourceVersion": api.cache.revision().to_string()}, "items": deleted}),
    ))
}
