//! Table-driven tests, one module per rule, on snapshots built from Node / Pod JSON.
#![allow(clippy::type_complexity, clippy::field_reassign_with_default)]

mod bench;
mod config;
mod filters;
mod interpod;
mod preemption;
mod schedule;
mod scores;
mod spread;

use crate::framework::Cycle;
use crate::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use std::sync::Arc;

/// Sets `path` (slash-separated) in `v` to `value`, creating objects on the way; a numeric
/// segment indexes an array.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if let Ok(idx) = p.parse::<usize>() {
            let arr = cur.as_array_mut().expect("array");
            while arr.len() <= idx {
                arr.push(json!({}));
            }
            if last {
                arr[idx] = value;
                return;
            }
            cur = &mut arr[idx];
        } else {
            if !cur.is_object() {
                *cur = json!({});
            }
            let o = cur.as_object_mut().expect("object");
            if last {
                o.insert(p.to_string(), value);
                return;
            }
            cur = o.entry(p.to_string()).or_insert(json!({}));
        }
    }
}

/// A node: 4 cpu, 8Gi, 110 pods, Ready, labelled with its hostname.
#[derive(Clone)]
pub(super) struct N(Value);

impl N {
    pub fn new(name: &str) -> N {
        N(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
    }
    pub fn alloc(mut self, k: &str, v: &str) -> N {
        self.0["status"]["allocatable"][k] = json!(v);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> N {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn taint(mut self, k: &str, v: &str, effect: &str) -> N {
        let t = &mut self.0["spec"]["taints"];
        if !t.is_array() {
            *t = json!([]);
        }
        t.as_array_mut()
            .unwrap()
            .push(json!({"key": k, "value": v, "effect": effect}));
        self
    }
    pub fn unschedulable(mut self) -> N {
        self.0["spec"]["unschedulable"] = json!(true);
        self
    }
    pub fn ready(mut self, status: &str) -> N {
        self.0["status"]["conditions"][0]["status"] = json!(status);
        self
    }
    pub fn image(mut self, names: &[&str], size: i64) -> N {
        let t = &mut self.0["status"]["images"];
        if !t.is_array() {
            *t = json!([]);
        }
        t.as_array_mut()
            .unwrap()
            .push(json!({"names": names, "sizeBytes": size}));
        self
    }
    pub fn build(&self) -> Node {
        serde_json::from_value(self.0.clone()).unwrap()
    }
}

/// A pod in "default" (uid = name) with one busybox container.
#[derive(Clone)]
pub(super) struct P(Value);

impl P {
    pub fn new(name: &str) -> P {
        P(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))
    }
    pub fn req(mut self, k: &str, v: &str) -> P {
        let c = &mut self.0["spec"]["containers"][0];
        if !c["resources"]["requests"].is_object() {
            set(c, "resources/requests", json!({}));
        }
        c["resources"]["requests"][k] = json!(v);
        self
    }
    pub fn cpu(self, v: &str) -> P {
        self.req("cpu", v)
    }
    pub fn labels(mut self, l: Value) -> P {
        self.0["metadata"]["labels"] = l;
        self
    }
    pub fn ns(mut self, ns: &str) -> P {
        self.0["metadata"]["namespace"] = json!(ns);
        self
    }
    pub fn priority(mut self, p: i32) -> P {
        self.0["spec"]["priority"] = json!(p);
        self
    }
    /// Sets a slash-separated path under spec.
    pub fn spec(mut self, path: &str, v: Value) -> P {
        set(&mut self.0, &format!("spec/{path}"), v);
        self
    }
    pub fn meta(mut self, path: &str, v: Value) -> P {
        set(&mut self.0, &format!("metadata/{path}"), v);
        self
    }
    pub fn status(mut self, path: &str, v: Value) -> P {
        set(&mut self.0, &format!("status/{path}"), v);
        self
    }
    pub fn pod(&self) -> Pod {
        serde_json::from_value(self.0.clone()).unwrap()
    }
    pub fn info(&self) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(self.pod())))
    }
}

/// A snapshot of `nodes` with `pods` bound (node name, pod).
pub(super) fn snap(nodes: &[N], pods: &[(&str, &P)]) -> Snapshot {
    let mut s = Snapshot::new();
    for n in nodes {
        s.upsert_node(&n.build());
    }
    for (node, p) in pods {
        s.add_pod(node, p.info());
    }
    s
}

/// The filters' verdict for `pod` on node `node` of `s`: Ok, or the reasons joined with ", ".
pub(super) fn filter_on(s: &Snapshot, pod: &P, node: &str) -> Result<(), String> {
    let info = pod.info();
    let profile = Profile::default();
    let mut c = Cycle::new(&info, s, &profile)?;
    c.filter(s.node(node).unwrap(), &[])
        .map_err(|f| f.reasons().collect::<Vec<_>>().join(", "))
}

/// The filters' verdict for `pod` alone on the node `n`.
pub(super) fn filter_one(n: &N, pod: &P) -> Result<(), String> {
    let s = snap(std::slice::from_ref(n), &[]);
    let name = s.nodes()[0].name.clone();
    filter_on(&s, pod, &name)
}

/// The node `schedule` picks, or its message.
pub(super) fn pick(s: &Snapshot, pod: &P) -> Result<String, String> {
    schedule(&pod.info(), s, &Profile::default(), 0)
        .map(|d| d.node)
        .map_err(|e| e.message())
}
