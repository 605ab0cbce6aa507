//! Running the pods bound to this node. The manager lists and watches pods with
//! `spec.nodeName=<node>` and keeps one worker task per pod UID (`worker.rs`), handing it each
//! new version of the pod; sandboxes in CRI whose pod no longer exists are removed. Workers
//! are level-triggered: each pass compares the pod with what CRI reports and acts.
//!
//! CRI conventions (shared with the streaming server): sandboxes carry the labels
//! `io.kubernetes.pod.{name,namespace,uid}`, containers the same plus
//! `io.kubernetes.container.name`; a container's CRI `attempt` is its restart count, and one
//! previous run per container name is kept for `logs --previous`.

pub mod bandwidth;
pub mod cgroups;
mod drive;
pub mod env;
pub mod events;
pub mod eviction;
pub mod image;
pub mod probe;
pub mod spec;
mod start;
mod static_pods;
pub mod status;
pub mod volumes;
mod worker;

use crate::api::Api;
use crate::cri::{Images, Runtime};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What every worker shares.
pub struct Ctx {
    pub api: Api,
    pub rt: Runtime,
    pub images: Images,
    pub node: String,
    pub data_dir: PathBuf,
    pub host_ip: String,
    pub events: events::Recorder,
    pub node_cpu_milli: i128,
    pub node_memory: i128,
    /// The cluster DNS service IP, once cluster DNS exists (None: pods use the host's resolvers).
    pub cluster_dns: Option<String>,
    pub cluster_domain: String,
    /// The CRI runtime handler for pods without a RuntimeClass ("" = containerd's default).
    pub default_runtime: String,
    /// registries.yaml, rendered into containerd's certs.d before each pull.
    pub registries: Option<PathBuf>,
    /// Poked when the node's status should be reported now (pressure changed).
    pub node_changed: Arc<tokio::sync::Notify>,
}

/// A worker's inputs: the latest pod, and a poke when its containers changed state.
struct Handle {
    tx: watch::Sender<Option<Pod>>,
    poke: Arc<tokio::sync::Notify>,
}

type Workers = Arc<Mutex<HashMap<String, Handle>>>;

/// Hand `pod` to its worker, starting one if needed.
fn dispatch(ctx: &Arc<Ctx>, workers: &Workers, pod: Option<Pod>, uid: &str) {
    let mut map = workers.lock().expect("workers lock");
    if let Some(h) = map.get(uid) {
        if h.tx.send(pod.clone()).is_ok() {
            if pod.is_none() {
                map.remove(uid);
            }
            return;
        }
        map.remove(uid);
    }
    let Some(pod) = pod else { return };
    let (tx, rx) = watch::channel(Some(pod));
    let poke = Arc::new(tokio::sync::Notify::new());
    map.insert(
        uid.to_string(),
        Handle {
            tx,
            poke: poke.clone(),
        },
    );
    let w = worker::Worker::new(ctx.clone(), uid.to_string());
    let workers = workers.clone();
    let uid = uid.to_string();
    tokio::spawn(async move {
        w.run(rx, poke).await;
        let mut map = workers.lock().expect("workers lock");
        if map.get(&uid).is_some_and(|h| h.tx.is_closed()) {
            map.remove(&uid);
        }
    });
}

/// The pod lifecycle event generator: relist every container once a second and poke the
/// workers of pods whose containers changed state (the kubelet's PLEG), so an exit is acted
/// on within a second without every worker polling CRI.
async fn relist(ctx: Arc<Ctx>, workers: Workers) {
    let mut last: HashMap<String, (i32, String)> = HashMap::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut rt = ctx.rt.clone();
        let Ok(list) = rt
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
        else {
            continue;
        };
        let now: HashMap<String, (i32, String)> = list
            .into_inner()
            .containers
            .into_iter()
            .map(|c| {
                (
                    c.id,
                    (
                        c.state,
                        c.labels
                            .get(spec::LABEL_POD_UID)
                            .cloned()
                            .unwrap_or_default(),
                    ),
                )
            })
            .collect();
        let mut changed: HashSet<&str> = HashSet::new();
        for (id, (state, uid)) in &now {
            if last.get(id).map(|l| l.0) != Some(*state) {
                changed.insert(uid);
            }
        }
        for (id, (_, uid)) in &last {
            if !now.contains_key(id) {
                changed.insert(uid);
            }
        }
        if !changed.is_empty() {
            let map = workers.lock().expect("workers lock");
            for uid in changed {
                if let Some(h) = map.get(uid) {
                    h.poke.notify_one();
                }
            }
        }
        last = now;
    }
}

fn uid_of(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Remove sandboxes whose pod is not among `known` (pods deleted while the agent was down).
async fn remove_orphans(ctx: &Arc<Ctx>, known: &HashSet<String>) {
    let mut rt = ctx.rt.clone();
    let Ok(list) = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
    else {
        return;
    };
    for sb in list.into_inner().items {
        let Some(uid) = sb.labels.get(spec::LABEL_POD_UID) else {
            continue;
        };
        if known.contains(uid) {
            continue;
        }
        tracing::info!(pod = %sb.labels.get(spec::LABEL_POD_NAME).cloned().unwrap_or_default(), %uid, "removing orphaned sandbox");
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sb.id.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sb.id.clone(),
            })
            .await;
        let dir = ctx.data_dir.join("agent").join("pods").join(uid);
        let _ = tokio::task::spawn_blocking(move || volumes::teardown(&dir)).await;
        cgroups::remove_pod(uid);
    }
}

fn is_mirror(v: &Value) -> bool {
    !v["metadata"]["annotations"][static_pods::MIRROR].is_null()
}

/// A mirror pod someone deleted: finish the deletion at once (the static pod keeps running
/// and gets a new mirror), as the kubelet does.
async fn delete_mirror(ctx: &Ctx, v: &Value) {
    if v["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}",
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    );
    let body = serde_json::json!({"gracePeriodSeconds": 0, "preconditions": {"uid": v["metadata"]["uid"]}});
    let _ = ctx.api.call("DELETE", &path, Some(&body)).await;
}

/// List and watch this node's pods forever, feeding the workers; with `manifests`, run the
/// static pods of that directory too.
pub async fn run(ctx: Arc<Ctx>, manifests: Option<PathBuf>) {
    let workers: Workers = Default::default();
    tokio::spawn(relist(ctx.clone(), workers.clone()));
    let static_uids: Arc<Mutex<HashSet<String>>> = Default::default();
    if let Some(dir) = manifests {
        tokio::spawn(static_pods::run(
            ctx.clone(),
            dir,
            workers.clone(),
            static_uids.clone(),
        ));
    }
    let base = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", ctx.node);
    loop {
        let list = match ctx.api.call("GET", &base, None).await {
            Ok(a) if a.code == 200 => a.body,
            Ok(a) => {
                tracing::warn!(code = a.code, "listing pods");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing pods");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut known: HashSet<String> = static_uids.lock().expect("static uids").clone();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            if is_mirror(&item) {
                delete_mirror(&ctx, &item).await;
                continue;
            }
            let uid = uid_of(&item);
            known.insert(uid.clone());
            if let Ok(p) = serde_json::from_value::<Pod>(item) {
                dispatch(&ctx, &workers, Some(p), &uid);
            }
        }
        let gone: Vec<String> = workers
            .lock()
            .expect("workers lock")
            .keys()
            .filter(|u| !known.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            dispatch(&ctx, &workers, None, &uid);
        }
        remove_orphans(&ctx, &known).await;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let path = format!(
            "{base}&watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=300"
        );
        let mut w = match ctx.api.watch(&path).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "watching pods");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match w.next().await {
                Ok(Some(ev)) => {
                    let kind = ev["type"].as_str().unwrap_or_default();
                    let obj = &ev["object"];
                    if is_mirror(obj) {
                        delete_mirror(&ctx, obj).await;
                        continue;
                    }
                    match kind {
                        "ADDED" | "MODIFIED" => {
                            let uid = uid_of(obj);
                            if let Ok(p) = serde_json::from_value::<Pod>(obj.clone()) {
                                dispatch(&ctx, &workers, Some(p), &uid);
                            }
                        }
                        "DELETED" => dispatch(&ctx, &workers, None, &uid_of(obj)),
                        "BOOKMARK" => {}
                        _ => break,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch ended");
                    break;
                }
            }
        }
    }
}
