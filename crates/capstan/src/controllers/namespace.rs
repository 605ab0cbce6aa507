//! The namespace controller's I/O edge (kube's namespace controller): namespaces with a
//! deletionTimestamp from the shared cache (its first list picks up those deleted while the
//! server was down) → a live GET → phase Terminating → discovery through the API (`/api/v1`,
//! `/apis` and every group version, preferred first) → per resource a DELETE of the
//! collection (propagation Background; pods are deleted gracefully, so their node agent stops
//! them) or of each object, then a list of what remains → the deletion conditions
//! (capstan_controllers::namespace) in status → once nothing is left, `kubernetes` removed
//! through `PUT namespaces/NAME/finalize`, after which the API server deletes the namespace.

use super::cache::{resource, Caches};
use super::queue::{drive, Queue};
use capstan_agent::api::{Answer, Api};
use capstan_controllers::namespace::{self as core, Gvr, Pass, Remaining};
use capstan_controllers::{name, uid};
use serde_json::{json, Value};
use std::time::Duration;

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "namespaces"));
}

pub async fn run(api: Api, caches: &Caches) {
    let namespaces = caches.get("namespaces").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new.filter(|n| capstan_controllers::deleting(n)) {
                q.add(name(ns).to_string());
            }
        });
    }
    namespaces.wait_synced().await;
    let all = {
        let namespaces = namespaces.clone();
        move || {
            namespaces
                .list(capstan_controllers::deleting)
                .iter()
                .map(|n| name(n).to_string())
                .collect()
        }
    };
    let api = &api;
    drive(queue, Duration::from_secs(300), all, |n| async move {
        sync(api, &n).await
    })
    .await;
}

fn message(a: &Answer) -> String {
    a.body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server responded with HTTP {}", a.code))
}

/// One pass of kube's namespacedResourcesDeleter.Delete; when to look again.
async fn sync(api: &Api, ns_name: &str) -> Option<Duration> {
    let path = format!("/api/v1/namespaces/{ns_name}");
    let mut ns = match api.call("GET", &path, None).await {
        Ok(a) if a.code == 200 => a.body,
        Ok(a) if a.code == 404 => return None,
        Ok(a) => {
            tracing::debug!(namespace = ns_name, error = %message(&a), "namespace get");
            return Some(Duration::from_secs(5));
        }
        Err(e) => {
            tracing::debug!(namespace = ns_name, error = %e, "namespace get");
            return Some(Duration::from_secs(5));
        }
    };
    // Not being deleted (any more): nothing to do.
    let deleted_at = core::deleted_at(&ns)?;
    if ns["status"]["phase"] != "Terminating" {
        ns["status"]["phase"] = json!("Terminating");
        match api.call("PUT", &format!("{path}/status"), Some(&ns)).await {
            Ok(a) if a.code == 200 => ns = a.body,
            Ok(a) if a.code == 404 => return None,
            _ => return Some(Duration::from_secs(1)),
        }
    }
    if core::finalized(&ns) {
        // Finalized by us earlier, other finalizers gone since: the API server deletes a
        // namespace with no finalizers on its next DELETE.
        if core::spec_finalizers(&ns).is_empty() && capstan_controllers::finalizers(&ns).is_empty()
        {
            let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": {"uid": uid(&ns)}});
            let _ = api.call("DELETE", &path, Some(&opts)).await;
        }
        return None;
    }
    let pass = delete_all_content(api, ns_name, deleted_at).await;
    if let Some(conds) = core::conditions(&ns, &pass, &now()) {
        ns["status"]["conditions"] = json!(conds);
        match api.call("PUT", &format!("{path}/status"), Some(&ns)).await {
            Ok(a) if a.code == 200 => ns = a.body,
            Ok(a) => {
                tracing::debug!(namespace = ns_name, error = %message(&a), "namespace conditions")
            }
            Err(e) => tracing::debug!(namespace = ns_name, error = %e, "namespace conditions"),
        }
    }
    if !pass.done() {
        if pass.estimate > 0 {
            // kube's ResourcesRemainingError: look again after half the estimate.
            return Some(Duration::from_secs(pass.estimate as u64 / 2 + 1));
        }
        tracing::info!(namespace = ns_name, failing = ?pass.failing(), "namespace deletion");
        return Some(Duration::from_secs(5));
    }
    let body = core::finalize_body(&ns);
    match api
        .call("PUT", &format!("{path}/finalize"), Some(&body))
        .await
    {
        Ok(a) if a.code == 200 || a.code == 404 => None,
        Ok(a) => {
            tracing::debug!(namespace = ns_name, error = %message(&a), "namespace finalize");
            Some(Duration::from_secs(1))
        }
        Err(e) => {
            tracing::debug!(namespace = ns_name, error = %e, "namespace finalize");
            Some(Duration::from_secs(1))
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// ServerPreferredNamespacedResources through the API: the resource lists (preferred
/// version first per group) and the group versions that failed (`gv: error`); Err when the
/// group lists themselves could not be read.
async fn discover(api: &Api) -> Result<(Vec<Value>, Vec<String>), String> {
    let get = |p: String| async move {
        match api.call("GET", &p, None).await {
            Ok(a) if a.code == 200 => Ok(a.body),
            Ok(a) => Err(message(&a)),
            Err(e) => Err(e.to_string()),
        }
    };
    let core_versions = get("/api".into()).await?;
    let groups = get("/apis".into()).await?;
    let mut gvs: Vec<String> = core_versions["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for g in groups["groups"].as_array().into_iter().flatten() {
        let preferred = g["preferredVersion"]["groupVersion"].as_str().unwrap_or("");
        let mut vs: Vec<String> = g["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["groupVersion"].as_str().map(str::to_string))
            .collect();
        vs.sort_by_key(|v| v != preferred);
        gvs.extend(vs);
    }
    let fetched = futures::future::join_all(gvs.iter().map(|gv| {
        let p = if gv.contains('/') {
            format!("/apis/{gv}")
        } else {
            format!("/api/{gv}")
        };
        get(p)
    }))
    .await;
    let (mut lists, mut failed) = (Vec::new(), Vec::new());
    for (gv, r) in gvs.iter().zip(fetched) {
        match r {
            Ok(l) => lists.push(l),
            Err(e) => failed.push(format!("{gv}: {e}")),
        }
    }
    failed.sort();
    Ok((lists, failed))
}

/// kube's deleteAllContent: every deletable resource emptied, what remains counted.
async fn delete_all_content(
    api: &Api,
    ns: &str,
    deleted_at: chrono::DateTime<chrono::Utc>,
) -> Pass {
    let mut pass = Pass::default();
    let lists = match discover(api).await {
        Ok((lists, failed)) => {
            if !failed.is_empty() {
                pass.discovery_error = Some(core::discovery_message(&failed));
            }
            lists
        }
        Err(e) => {
            pass.discovery_error = Some(e);
            Vec::new()
        }
    };
    let gvrs = match core::deletable(&lists) {
        Ok(g) => g,
        Err(e) => {
            pass.group_version_error = Some(e);
            Vec::new()
        }
    };
    let outcomes =
        futures::future::join_all(gvrs.iter().map(|g| delete_resource(api, g, ns, deleted_at)))
            .await;
    for (g, o) in gvrs.iter().zip(outcomes) {
        pass.add(g, o);
    }
    pass
}

fn collection(g: &Gvr, ns: &str) -> String {
    if g.group.is_empty() {
        format!("/api/{}/namespaces/{ns}/{}", g.version, g.resource)
    } else {
        format!(
            "/apis/{}/{}/namespaces/{ns}/{}",
            g.group, g.version, g.resource
        )
    }
}

/// GET a collection: Ok(None) when listing is not supported there.
async fn list(api: &Api, path: &str) -> Result<Option<Vec<Value>>, String> {
    match api.call("GET", path, None).await {
        Ok(a) if a.code == 200 => Ok(Some(
            a.body["items"].as_array().cloned().unwrap_or_default(),
        )),
        Ok(a) if a.code == 404 || a.code == 405 => Ok(None),
        Ok(a) => Err(message(&a)),
        Err(e) => Err(e.to_string()),
    }
}

/// kube's deleteAllContentForGroupVersionResource.
async fn delete_resource(
    api: &Api,
    g: &Gvr,
    ns: &str,
    deleted_at: chrono::DateTime<chrono::Utc>,
) -> Result<Remaining, (Remaining, String)> {
    let path = collection(g, ns);
    let estimate = if g.group.is_empty() && g.resource == "pods" {
        match list(api, &path).await {
            Ok(Some(pods)) => core::pods_estimate(&pods, deleted_at, chrono::Utc::now()),
            _ => 0,
        }
    } else {
        0
    };
    let failed = |e: String| {
        (
            Remaining {
                estimate,
                ..Remaining::default()
            },
            e,
        )
    };
    let background = json!({"kind": "DeleteOptions", "apiVersion": "v1",
        "propagationPolicy": "Background"});
    let mut collection_deleted = false;
    if g.delete_collection {
        match api.call("DELETE", &path, Some(&background)).await {
            Ok(a) if a.code < 300 => collection_deleted = true,
            Ok(a) if a.code == 404 || a.code == 405 => {}
            Ok(a) => return Err(failed(message(&a))),
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    if !collection_deleted && g.list {
        let items = list(api, &path).await.map_err(failed)?.unwrap_or_default();
        for i in items {
            let mut opts = background.clone();
            opts["preconditions"] = json!({"uid": uid(&i)});
            match api
                .call("DELETE", &format!("{path}/{}", name(&i)), Some(&opts))
                .await
            {
                Ok(a) if a.code < 300 || a.code == 404 || a.code == 409 => {}
                Ok(a) => return Err(failed(message(&a))),
                Err(e) => return Err(failed(e.to_string())),
            }
        }
    }
    if !g.list {
        return Ok(Remaining {
            estimate,
            ..Remaining::default()
        });
    }
    match list(api, &path).await.map_err(failed)? {
        Some(items) => core::remaining(g, ns, &items, estimate),
        None => Ok(Remaining {
            estimate,
            ..Remaining::default()
        }),
    }
}
