//! GET of one object and LIST of a collection, served from the store (single objects) and the
//! watch cache (lists).

use super::Req;
use crate::filter::Filter;
use crate::respond::{self, json_response};
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::watchcache::CachedObject;
use crate::{convert, ApiServer};
use base64::Engine;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Read one object in its storage form, straight from the store (consistent read).
pub async fn read_object(api: &ApiServer, req: &Req, name: &str) -> ApiResult<(Value, i64)> {
    let res = req.rr.resource.storage_resource();
    let key = res.key(req.namespace(), name);
    match api.store.get(&key).await? {
        Some(kv) => {
            let obj =
                crate::watchcache::decode_stored(&kv.value, kv.mod_revision).ok_or_else(|| {
                    ApiError::internal(format!("stored object {key} is not valid JSON"))
                })?;
            Ok((obj, kv.mod_revision))
        }
        None => Err(ApiError::not_found(
            req.rr.resource.group,
            req.rr.resource.plural,
            name,
        )),
    }
}

pub async fn get(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let (obj, _) = read_object(api, req, req.name()).await?;
    let obj = convert::from_storage(req.rr.resource, obj);
    Ok(render_one(req, obj))
}

/// Answer one object as JSON or as a one-row Table.
pub fn render_one(req: &Req, obj: Value) -> Response<Body> {
    render_one_code(req, obj, StatusCode::OK)
}

pub fn render_one_code(req: &Req, obj: Value, code: StatusCode) -> Response<Body> {
    if req.wants_table() {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        let t = capstan_printers::tables::table(
            req.rr.resource.kind,
            &[&obj],
            req.param("includeObject").unwrap_or("Metadata"),
            json!({"resourceVersion": rv}),
            chrono::Utc::now(),
        );
        return json_response(code, &t);
    }
    json_response(code, &obj)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: i64,
    start: String,
}

pub async fn list(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let res = req.rr.resource;
    let storage = res.storage_resource();
    let filter = Filter::from_req(req)?;
    let prefix = storage.prefix(req.namespace());
    let limit: usize = match req.param("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let cont = match req.param("continue").filter(|c| !c.is_empty()) {
        Some(c) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|b| serde_json::from_slice::<Continue>(&b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: illegal base64 data")
                })?;
            Some(raw)
        }
        None => None,
    };
    // Consistency: an unset resourceVersion is a consistent read (the cache must have caught up
    // with the store); "0" is any state; N means at least N.
    let rv = req.param("resourceVersion").unwrap_or("");
    let min_rev = match rv {
        "" if cont.is_none() => Some(api.store.current_revision().await?),
        "" | "0" => None,
        n => Some(
            n.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {n:?}")))?,
        ),
    };
    if let Some(min) = min_rev {
        if !api.cache.wait_for(min, Duration::from_secs(3)).await {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {min}, current: {}",
                api.cache.revision()
            )));
        }
    }
    let (items, revision) = api.cache.list(&prefix);
    let start = cont.as_ref().map(|c| c.start.clone());
    let mut selected: Vec<&CachedObject> = Vec::new();
    let mut next: Option<String> = None;
    for obj in items.iter() {
        if let Some(s) = &start {
            let key = storage.key(obj.namespace(), obj.name());
            if key.as_str() <= s.as_str() {
                continue;
            }
        }
        if !filter.matches(&obj.selectable) {
            continue;
        }
        if limit > 0 && selected.len() == limit {
            let last = selected.last().expect("limit > 0");
            next = Some(storage.key(last.namespace(), last.name()));
            break;
        }
        selected.push(obj);
    }
    let list_rv = cont.as_ref().map(|c| c.rv).unwrap_or(revision);
    let mut list_meta = json!({"resourceVersion": list_rv.to_string()});
    if let Some(start) = next {
        let token = serde_json::to_vec(&Continue { rv: list_rv, start }).expect("serializes");
        list_meta["continue"] =
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
    }
    // Served objects, parsed, for the paths that need whole values.
    let parsed = || -> Vec<Value> {
        selected
            .iter()
            .map(|o| convert::from_storage(res, o.value()))
            .collect()
    };
    if req.wants_table() {
        let values = parsed();
        let refs: Vec<&Value> = values.iter().collect();
        let t = capstan_printers::tables::table(
            res.kind,
            &refs,
            req.param("includeObject").unwrap_or("Metadata"),
            list_meta,
            chrono::Utc::now(),
        );
        return Ok(json_response(StatusCode::OK, &t));
    }
    if req.wants_metadata_only() {
        let items: Vec<Value> = parsed()
            .iter()
            .map(|o| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))}))
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items}),
        ));
    }
    // Write the list by concatenating the stored bytes (no parse, no Value).
    let size: usize = selected.iter().map(|o| o.raw.len() + 32).sum();
    let mut out = Vec::with_capacity(128 + size);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &format!("{}List", res.kind)).expect("writes");
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &res.api_version()).expect("writes");
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, &list_meta).expect("writes");
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in selected.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if res.storage_version {
            item.write_json(&mut out);
        } else {
            serde_json::to_writer(&mut out, &convert::from_storage(res, item.value()))
                .expect("writes");
        }
    }
    out.extend_from_slice(b"]}");
    Ok(respond::json_bytes(StatusCode::OK, out))
}
