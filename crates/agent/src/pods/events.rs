//! Events as the kubelet records them (source kubelet on this node, reportingComponent
//! kubelet): repeats of the same reason and message on the same object bump `count` and
//! `lastTimestamp` of one Event instead of creating another, as client-go's correlator does.

use crate::api::Api;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The object an event is about.
#[derive(Clone)]
pub struct Involved {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.containers{name}` etc.; empty for the pod itself.
    pub field_path: String,
}

#[derive(Clone)]
pub struct Recorder {
    api: Api,
    node: String,
    seen: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl Recorder {
    pub fn new(api: Api, node: String) -> Recorder {
        Recorder {
            api,
            node,
            seen: Default::default(),
        }
    }

    /// Record an event without waiting for the API server.
    pub fn emit(&self, on: &Involved, warning: bool, reason: &str, message: &str) {
        let key = format!(
            "{}/{}/{}/{reason}/{message}",
            on.uid, on.field_path, on.name
        );
        let now = chrono::Utc::now();
        let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (name, count) = {
            let mut seen = self.seen.lock().expect("events lock");
            if seen.len() > 4096 {
                seen.clear();
            }
            let e = seen.entry(key).or_insert_with(|| {
                (
                    format!("{}.{:x}", on.name, now.timestamp_nanos_opt().unwrap_or(0)),
                    0,
                )
            });
            e.1 += 1;
            e.clone()
        };
        let api = self.api.clone();
        let ns = on.namespace.clone();
        let mut involved = json!({"kind": "Pod", "namespace": on.namespace, "name": on.name, "uid": on.uid, "apiVersion": "v1"});
        if !on.field_path.is_empty() {
            involved["fieldPath"] = json!(on.field_path);
        }
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message,
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": count,
            "type": if warning { "Warning" } else { "Normal" },
            "reportingComponent": "kubelet", "reportingInstance": self.node,
        });
        tokio::spawn(async move {
            let r = if count == 1 {
                api.call(
                    "POST",
                    &format!("/api/v1/namespaces/{ns}/events"),
                    Some(&event),
                )
                .await
            } else {
                let patch = json!({"count": count, "lastTimestamp": event["lastTimestamp"]});
                api.call(
                    "PATCH",
                    &format!("/api/v1/namespaces/{ns}/events/{name}"),
                    Some(&patch),
                )
                .await
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "recording event");
            }
        });
    }
}
