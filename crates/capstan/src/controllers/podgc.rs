//! The pod garbage collector's I/O edge (kube's podgc): every 20 s (and when a node leaves
//! the cache or leaves quarantine) over the shared pod and node caches —
//! terminated pods beyond `--terminated-pod-gc-threshold` deleted (evicted, then oldest);
//! pods on nodes missing for the 40 s quarantine (confirmed gone by a live GET) marked Failed
//! with DisruptionTarget/DeletionByPodGC and force-deleted; unscheduled pods being deleted
//! marked Failed and force-deleted. Force deletes carry the pod's uid as precondition.

use super::cache::{object_path, resource, Caches};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::podgc::{self as core, Quarantine};
use capstan_controllers::{name, namespace, uid};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "pods"));
    caches.want(resource("", "v1", "nodes"));
}

pub async fn run(api: Api, caches: &Caches, threshold: i64) {
    let pods = caches.get("pods").expect("registered").clone();
    let nodes = caches.get("nodes").expect("registered").clone();
    let wake = Arc::new(tokio::sync::Notify::new());
    {
        let wake = wake.clone();
        nodes.on_change(move |_, new| {
            if new.is_none() {
                wake.notify_one();
            }
        });
    }
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let mut quarantine = Quarantine::default();
    loop {
        let all = pods.list(|_| true);
        if threshold > 0 {
            let doomed = core::over_threshold(&all, threshold);
            if !doomed.is_empty() {
                tracing::info!(pods = doomed.len(), "garbage collecting terminated pods");
            }
            futures::future::join_all(doomed.into_iter().map(|p| mark_and_delete(&api, p, None)))
                .await;
        }
        let present: HashSet<String> = nodes
            .list(|_| true)
            .iter()
            .map(|n| name(n).to_string())
            .collect();
        let now = chrono::Utc::now();
        quarantine.observe(&core::missing_nodes(&all, &present), now);
        let mut gone = HashSet::new();
        for n in quarantine.expired(now) {
            match api.call("GET", &format!("/api/v1/nodes/{n}"), None).await {
                Ok(a) if a.code == 404 => {
                    gone.insert(n);
                }
                Ok(a) if a.code == 200 => {}
                Ok(a) => tracing::debug!(node = %n, code = a.code, "podgc node check"),
                Err(e) => tracing::debug!(node = %n, error = %e, "podgc node check"),
            }
        }
        let orphans = core::orphaned(&all, &gone);
        futures::future::join_all(orphans.into_iter().map(|p| {
            tracing::info!(pod = %format!("{}/{}", namespace(p), name(p)),
                node = p["spec"]["nodeName"].as_str().unwrap_or(""),
                "force deleting a pod of a node that no longer exists");
            mark_and_delete(&api, p, Some(core::orphan_condition()))
        }))
        .await;
        futures::future::join_all(
            core::unscheduled_terminating(&all)
                .into_iter()
                .map(|p| mark_and_delete(&api, p, None)),
        )
        .await;
        let mut sleep = Duration::from_secs(core::CHECK_PERIOD_SECS);
        if let Some(d) = quarantine.next_expiry(chrono::Utc::now()) {
            let d = d.to_std().unwrap_or_default() + Duration::from_millis(100);
            sleep = sleep.min(d.max(Duration::from_millis(500)));
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {
                // Let the pod cache catch up with what the node's removal changed.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// kube's markFailedAndDeletePodWithCondition: Failed (+ the condition) first for a pod that
/// has not terminated, then a delete with grace 0.
async fn mark_and_delete(api: &Api, p: &Value, condition: Option<(&str, &str)>) {
    let path = object_path(resource("", "v1", "pods"), namespace(p), name(p));
    if let Some(status) = core::failed_status(p, condition, chrono::Utc::now()) {
        let patch = json!({"metadata": {"uid": uid(p)}, "status": status});
        if !writes::merge(api, &format!("{path}/status"), &patch).await {
            return;
        }
    }
    writes::force_delete(api, &path, uid(p)).await;
}
