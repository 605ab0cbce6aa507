//! One watch on all pods for the whole run (as scheduler_perf's throughput collector reads its
//! informer): for every pod, when it was first seen bound (spec.nodeName) and Running, on
//! which node; live and bound counts per namespace. Instants are taken when the event's line
//! is read. A watch that ends is resumed from its last resourceVersion; an ERROR (410)
//! relists, after which bind times of pods bound meanwhile are approximate (counted).

use anyhow::{bail, Result};
use capstan_agent::api::Api;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Obj,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Obj {
    metadata: Meta,
    spec: Spec,
    status: Status,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    name: String,
    namespace: String,
    resource_version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    node_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Status {
    phase: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct List {
    metadata: ListMeta,
    items: Vec<Obj>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// What the watch saw of one pod.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub bound: Option<Instant>,
    pub running: Option<Instant>,
    pub node: Option<Box<str>>,
}

#[derive(Default)]
pub struct State {
    /// By "namespace/name".
    pub pods: HashMap<String, Seen>,
    pub live: HashMap<String, usize>,
    pub bound: HashMap<String, usize>,
    pub relists: usize,
}

impl State {
    fn key(o: &Obj) -> String {
        format!("{}/{}", o.metadata.namespace, o.metadata.name)
    }

    fn upsert(&mut self, o: &Obj, now: Instant) {
        let key = Self::key(o);
        let seen = match self.pods.get_mut(&key) {
            Some(s) => s,
            None => {
                *self.live.entry(o.metadata.namespace.clone()).or_default() += 1;
                self.pods.entry(key).or_default()
            }
        };
        if seen.bound.is_none() && !o.spec.node_name.is_empty() {
            seen.bound = Some(now);
            seen.node = Some(o.spec.node_name.as_str().into());
            *self.bound.entry(o.metadata.namespace.clone()).or_default() += 1;
        }
        if seen.running.is_none() && o.status.phase == "Running" {
            seen.running = Some(now);
        }
    }

    fn remove(&mut self, o: &Obj) {
        if let Some(s) = self.pods.remove(&Self::key(o)) {
            if let Some(n) = self.live.get_mut(&o.metadata.namespace) {
                *n = n.saturating_sub(1);
            }
            if s.bound.is_some() {
                if let Some(n) = self.bound.get_mut(&o.metadata.namespace) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    /// Pods of `ns` bound so far.
    pub fn bound_in(&self, ns: &str) -> usize {
        self.bound.get(ns).copied().unwrap_or(0)
    }

    pub fn live_in(&self, ns: &str) -> usize {
        self.live.get(ns).copied().unwrap_or(0)
    }

    /// Pods of `ns` seen Running so far (a scan).
    pub fn running_in(&self, ns: &str) -> usize {
        let prefix = format!("{ns}/");
        self.pods
            .iter()
            .filter(|(k, s)| s.running.is_some() && k.starts_with(&prefix))
            .count()
    }

    pub fn get(&self, ns: &str, name: &str) -> Option<&Seen> {
        self.pods.get(&format!("{ns}/{name}"))
    }
}

/// The running watch.
pub struct Watcher {
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn list(api: &Api, state: &Arc<Mutex<State>>) -> Result<String> {
    let (code, body) = api.call_raw("GET", "/api/v1/pods", None).await?;
    if code != 200 {
        bail!("listing pods: HTTP {code}");
    }
    let l: List = serde_json::from_slice(&body)?;
    let now = Instant::now();
    let mut st = state.lock().expect("watch state");
    let old = std::mem::take(&mut st.pods);
    st.live.clear();
    st.bound.clear();
    for o in &l.items {
        let key = State::key(o);
        if let Some(s) = old.get(&key) {
            st.pods.insert(key, s.clone());
            *st.live.entry(o.metadata.namespace.clone()).or_default() += 1;
            if s.bound.is_some() {
                *st.bound.entry(o.metadata.namespace.clone()).or_default() += 1;
            }
        }
        st.upsert(o, now);
    }
    Ok(l.metadata.resource_version)
}

impl Watcher {
    pub async fn start(api: &Api) -> Result<Watcher> {
        let state: Arc<Mutex<State>> = Default::default();
        let rv = list(api, &state).await?;
        let (api, st) = (api.clone(), state.clone());
        let task = tokio::spawn(async move {
            let mut rv = rv;
            loop {
                let path = format!(
                    "/api/v1/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1800&resourceVersion={rv}"
                );
                let mut w = match api.watch(&path).await {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("  pod watch: {e:#}; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let mut relist = false;
                while let Ok(Some(line)) = w.next_line().await {
                    let now = Instant::now();
                    let ev: Event = match serde_json::from_slice(&line) {
                        Ok(e) => e,
                        Err(_) => {
                            // A Status (ERROR event) does not fit Obj.
                            relist = true;
                            break;
                        }
                    };
                    let mut s = st.lock().expect("watch state");
                    match ev.kind.as_str() {
                        "ADDED" | "MODIFIED" => s.upsert(&ev.object, now),
                        "DELETED" => s.remove(&ev.object),
                        "ERROR" => {
                            relist = true;
                            break;
                        }
                        _ => {}
                    }
                    if !ev.object.metadata.resource_version.is_empty() {
                        rv = ev.object.metadata.resource_version;
                    }
                }
                if relist {
                    st.lock().expect("watch state").relists += 1;
                    match list(&api, &st).await {
                        Ok(v) => rv = v,
                        Err(e) => eprintln!("  pod relist: {e:#}"),
                    }
                }
            }
        });
        Ok(Watcher { state, task })
    }

    /// Run `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().expect("watch state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ns: &str, name: &str, node: &str, phase: &str) -> Obj {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "3"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
            "status": {"phase": phase, "conditions": []}
        }))
        .unwrap()
    }

    #[test]
    fn counts_bound_running_and_deleted() {
        let mut s = State::default();
        let t0 = Instant::now();
        s.upsert(&obj("a", "p1", "", "Pending"), t0);
        s.upsert(&obj("a", "p2", "", "Pending"), t0);
        assert_eq!((s.live_in("a"), s.bound_in("a")), (2, 0));
        let t1 = Instant::now();
        s.upsert(&obj("a", "p1", "n1", "Pending"), t1);
        s.upsert(&obj("a", "p1", "n1", "Running"), Instant::now());
        s.upsert(&obj("a", "p1", "n1", "Running"), Instant::now());
        assert_eq!(s.bound_in("a"), 1);
        let p1 = s.get("a", "p1").unwrap();
        assert_eq!(p1.bound, Some(t1));
        assert!(p1.running.unwrap() >= t1);
        assert_eq!(p1.node.as_deref(), Some("n1"));
        s.remove(&obj("a", "p1", "n1", "Running"));
        s.remove(&obj("a", "p1", "n1", "Running"));
        assert_eq!((s.live_in("a"), s.bound_in("a")), (1, 0));
        assert_eq!(s.live_in("b"), 0);
        let ev: Event = serde_json::from_str(
            r#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"x","namespace":"n","resourceVersion":"9"},"spec":{"nodeName":"sim-1"},"status":{"phase":"Running","podIP":"1.2.3.4"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.object.spec.node_name, "sim-1");
        assert!(serde_json::from_str::<Event>(
            r#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":410}}"#
        )
        .is_err());
    }
}
