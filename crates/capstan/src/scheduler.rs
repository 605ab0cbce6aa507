//! The scheduler loop of `capstan server` (`--disable-scheduler` to run none): lists and
//! watches nodes and pods, and on every change binds the pending pods of its schedulerName
//! (highest priority first, then oldest) through `pods/binding`, using the pure decision in
//! capstan-scheduler; a pod that fits nowhere gets PodScheduled=False/Unschedulable with
//! kube-scheduler's message and a FailedScheduling event. Preemption, pod (anti-)affinity,
//! topology spread and the preferred scores are not here yet (issue #4).

use capstan_agent::api::Api;
use capstan_scheduler::{schedule, NodeInfo};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub const DEFAULT_NAME: &str = "default-scheduler";

struct State {
    nodes: BTreeMap<String, Node>,
    pods: HashMap<String, Pod>,
    /// The Unschedulable message last reported per pod uid.
    reported: HashMap<String, String>,
}

fn key(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn finished(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn event(pod: &Pod, warning: bool, reason: &str, message: &str) -> Value {
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", now.timestamp_nanos_opt().unwrap_or(0)), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": name, "uid": pod.metadata.uid, "apiVersion": "v1"},
        "reason": reason, "message": message,
        "source": {"component": DEFAULT_NAME},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "reportingComponent": DEFAULT_NAME, "reportingInstance": DEFAULT_NAME,
    })
}

async fn pass(api: &Api, st: &mut State, name: &str) {
    let mut infos: BTreeMap<String, NodeInfo> = st
        .nodes
        .iter()
        .map(|(n, node)| (n.clone(), NodeInfo::from_node(node)))
        .collect();
    for p in st.pods.values() {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            if !finished(p) {
                if let Some(info) = infos.get_mut(n) {
                    info.add_pod(p);
                }
            }
        }
    }
    let mut pending: Vec<Pod> = st
        .pods
        .values()
        .filter(|p| {
            let spec = p.spec.as_ref();
            spec.and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
                && spec
                    .and_then(|s| s.scheduler_name.as_deref())
                    .unwrap_or(DEFAULT_NAME)
                    == name
                && p.metadata.deletion_timestamp.is_none()
                && !finished(p)
        })
        .cloned()
        .collect();
    pending.sort_by(|a, b| {
        let prio = |p: &Pod| p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        prio(b).cmp(&prio(a)).then(
            a.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        )
    });
    let nodes: Vec<NodeInfo> = infos.values().cloned().collect();
    let mut nodes = nodes;
    for pod in pending {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let pname = pod.metadata.name.clone().unwrap_or_default();
        match schedule(&pod, &nodes) {
            Ok(node) => {
                let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pname},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                let path = format!("/api/v1/namespaces/{ns}/pods/{pname}/binding");
                match api.call("POST", &path, Some(&binding)).await {
                    Ok(a) if a.code == 201 || a.code == 200 => {
                        let msg = format!("Successfully assigned {ns}/{pname} to {node}");
                        let _ = api
                            .call(
                                "POST",
                                &format!("/api/v1/namespaces/{ns}/events"),
                                Some(&event(&pod, false, "Scheduled", &msg)),
                            )
                            .await;
                        let mut bound = pod.clone();
                        bound.spec.get_or_insert_with(Default::default).node_name =
                            Some(node.clone());
                        if let Some(info) = nodes.iter_mut().find(|n| n.name == node) {
                            info.add_pod(&bound);
                        }
                        st.reported.remove(&key(&pod));
                        st.pods.insert(key(&pod), bound);
                    }
                    Ok(a) => tracing::debug!(code = a.code, pod = %pname, "binding"),
                    Err(e) => tracing::warn!(error = %e, pod = %pname, "binding"),
                }
            }
            Err(msg) => {
                if st.reported.get(&key(&pod)) == Some(&msg) {
                    continue;
                }
                let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                let status = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                    "lastTransitionTime": now, "reason": "Unschedulable", "message": msg}]}});
                let _ = api
                    .call(
                        "PATCH",
                        &format!("/api/v1/namespaces/{ns}/pods/{pname}/status"),
                        Some(&status),
                    )
                    .await;
                let _ = api
                    .call(
                        "POST",
                        &format!("/api/v1/namespaces/{ns}/events"),
                        Some(&event(&pod, true, "FailedScheduling", &msg)),
                    )
                    .await;
                st.reported.insert(key(&pod), msg);
            }
        }
    }
}

async fn list<T: serde::de::DeserializeOwned>(api: &Api, path: &str) -> Option<(Vec<T>, String)> {
    let a = api
        .call("GET", path, None)
        .await
        .ok()
        .filter(|a| a.code == 200)?;
    let rv = a.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let items = a.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Some((items, rv))
}

/// Schedule pods named for `name` forever.
pub async fn run(api: Api, name: String) {
    loop {
        let (Some((nodes, nrv)), Some((pods, prv))) = (
            list::<Node>(&api, "/api/v1/nodes").await,
            list::<Pod>(&api, "/api/v1/pods").await,
        ) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut st = State {
            nodes: nodes
                .into_iter()
                .map(|n| (n.metadata.name.clone().unwrap_or_default(), n))
                .collect(),
            pods: pods.into_iter().map(|p| (key(&p), p)).collect(),
            reported: HashMap::new(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(bool, Value)>(1024);
        for (is_node, path) in [
            (
                true,
                format!("/api/v1/nodes?watch=true&resourceVersion={nrv}"),
            ),
            (
                false,
                format!("/api/v1/pods?watch=true&resourceVersion={prv}"),
            ),
        ] {
            let (api, tx) = (api.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(mut w) = api.watch(&path).await else {
                    return;
                };
                while let Ok(Some(ev)) = w.next().await {
                    if tx.send((is_node, ev)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        pass(&api, &mut st, &name).await;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let Some((is_node, ev)) = ev else { break };
                    let kind = ev["type"].as_str().unwrap_or_default().to_string();
                    if kind == "ERROR" { break; }
                    if kind == "BOOKMARK" { continue; }
                    let deleted = kind == "DELETED";
                    if is_node {
                        if let Ok(n) = serde_json::from_value::<Node>(ev["object"].clone()) {
                            let k = n.metadata.name.clone().unwrap_or_default();
                            if deleted { st.nodes.remove(&k); } else { st.nodes.insert(k, n); }
                        }
                    } else if let Ok(p) = serde_json::from_value::<Pod>(ev["object"].clone()) {
                        if deleted { st.pods.remove(&key(&p)); st.reported.remove(&key(&p)); } else { st.pods.insert(key(&p), p); }
                    }
                    // Take whatever else is queued before deciding.
                    while let Ok((is_node, ev)) = rx.try_recv() {
                        let deleted = ev["type"] == "DELETED";
                        if is_node {
                            if let Ok(n) = serde_json::from_value::<Node>(ev["object"].clone()) {
                                let k = n.metadata.name.clone().unwrap_or_default();
                                if deleted { st.nodes.remove(&k); } else { st.nodes.insert(k, n); }
                            }
                        } else if let Ok(p) = serde_json::from_value::<Pod>(ev["object"].clone()) {
                            if deleted { st.pods.remove(&key(&p)); } else { st.pods.insert(key(&p), p); }
                        }
                    }
                }
                _ = tick.tick() => {}
            }
            pass(&api, &mut st, &name).await;
        }
    }
}
