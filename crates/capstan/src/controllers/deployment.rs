//! The Deployment controller's I/O edge: Deployments and ReplicaSets from the shared caches →
//! capstan_controllers::deployment::reconcile → adopt patches, the new ReplicaSet's create,
//! scale patches (with resourceVersion, so a stale cache never scales twice), history
//! deletes, the Deployment's revision annotation and status; ScalingReplicaSet events.

use super::cache::{key, object_path, resource, Caches};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::deployment;
use capstan_controllers::{controller_ref, name, namespace, owner_refs};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const COMPONENT: &str = "deployment-controller";

pub fn register(caches: &mut Caches) {
    caches.want(resource("apps", "v1", "deployments"));
    caches.want(resource("apps", "v1", "replicasets"));
}

pub async fn run(api: Api, caches: &Caches) {
    let deps = caches.get("deployments").expect("registered").clone();
    let rss = caches.get("replicasets").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        deps.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    {
        let (q, deps2) = (queue.clone(), deps.clone());
        rss.on_change(move |old, new| {
            for r in [old, new].into_iter().flatten() {
                match controller_ref(r) {
                    Some(c) if c["kind"] == "Deployment" => q.add(format!(
                        "{}/{}",
                        namespace(r),
                        c["name"].as_str().unwrap_or("")
                    )),
                    Some(_) => {}
                    None => {
                        for d in deps2.in_namespace(namespace(r)) {
                            q.add(key(&d));
                        }
                    }
                }
            }
        });
    }
    deps.wait_synced().await;
    rss.wait_synced().await;
    for d in deps.list(|_| true) {
        queue.add(key(&d));
    }
    let all = {
        let deps = deps.clone();
        move || deps.keys()
    };
    let api = Arc::new(api);
    drive(queue, Duration::from_secs(30), all, |k| {
        let (api, deps, rss) = (api.clone(), deps.clone(), rss.clone());
        async move {
            let d = deps.get(&k)?;
            sync(&api, &d, &rss.in_namespace(namespace(&d))).await
        }
    })
    .await;
}

async fn sync(api: &Api, d: &Value, rss: &[Value]) -> Option<Duration> {
    let ns = namespace(d).to_string();
    let plan = deployment::reconcile(d, rss, chrono::Utc::now());
    let rs_res = resource("apps", "v1", "replicasets");
    let d_res = resource("apps", "v1", "deployments");
    let mut again = plan.again;
    for r in &plan.adopt {
        let mut refs = owner_refs(r).to_vec();
        refs.push(deployment::owner_ref(d));
        writes::set_owner_refs(api, &object_path(rs_res, &ns, name(r)), r, refs).await;
        again = true;
    }
    let mut ok = true;
    if let Some(c) = &plan.create {
        let path = format!("/apis/apps/v1/namespaces/{ns}/replicasets");
        match api.call("POST", &path, Some(c)).await {
            Ok(a) if a.code < 300 => {}
            Ok(a) => {
                ok = false;
                tracing::debug!(code = a.code, body = %a.body, "deployment: create replica set");
            }
            Err(e) => {
                ok = false;
                tracing::debug!(error = %e, "deployment: create replica set");
            }
        }
        again = true;
    }
    for (r, patch) in &plan.update {
        if !writes::merge(api, &object_path(rs_res, &ns, name(r)), patch).await {
            ok = false;
        }
        again = true;
    }
    if ok {
        for e in &plan.events {
            event(api, d, "ScalingReplicaSet", e).await;
        }
    }
    for r in &plan.delete {
        writes::delete(
            api,
            &object_path(rs_res, &ns, name(r)),
            capstan_controllers::uid(r),
            Some("Background"),
        )
        .await;
    }
    let d_path = object_path(d_res, &ns, name(d));
    if let Some(a) = &plan.annotations {
        writes::merge(api, &d_path, &json!({"metadata": {"annotations": a}})).await;
    }
    if deployment::status_changed(d, &plan.status) {
        let patch = json!({"status": plan.status});
        if !writes::merge(api, &format!("{d_path}/status"), &patch).await {
            again = true;
        }
    }
    again.then_some(Duration::from_secs(1))
}

async fn event(api: &Api, d: &Value, reason: &str, msg: &str) {
    writes::event(
        api,
        d,
        ("Deployment", "apps/v1"),
        COMPONENT,
        false,
        reason,
        msg,
    )
    .await;
}
