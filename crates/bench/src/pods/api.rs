//! The Capstan path: pods POSTed to the API server and seen Running through a watch on their
//! namespace; deleted and seen gone (DELETED event, then no sandbox left in CRI).

use super::node::NODE;
use crate::client::{Conn, Tls};
use anyhow::{bail, Context, Result};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The namespace the benchmark's pods live in.
pub const NS: &str = "podbench";

/// A busybox pod bound to the bench node: `sleep 3600`, image already on the node.
pub fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "podbench"}},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "app", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]
            }]
        }
    }))
    .expect("a JSON literal serializes")
}

/// When the watch first showed a pod Running (every container running), and deleted.
#[derive(Default, Clone, Debug)]
struct Seen {
    running: Option<Instant>,
    deleted: Option<Instant>,
}

/// One watch on the namespace's pods, recording when each pod was first seen Running and
/// when it was seen DELETED (the instant its bytes were read).
pub struct Watcher {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    tick: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// Whether a pod object is Running with all its containers running.
fn is_running(pod: &Value) -> bool {
    let st = &pod["status"];
    let conts = st["containerStatuses"].as_array();
    st["phase"] == "Running"
        && conts
            .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["state"]["running"].is_object()))
}

impl Watcher {
    pub async fn start(tls: &Tls) -> Result<Watcher> {
        let mut conn = tls.connect().await?;
        let list = conn
            .call("GET", &format!("/api/v1/namespaces/{NS}/pods"), None)
            .await?;
        let list: Value = serde_json::from_slice(&list)?;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .context("LIST without resourceVersion")?
            .to_string();
        let path = format!(
            "/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={rv}&timeoutSeconds=3600"
        );
        let resp = conn.send("GET", &path, None).await?;
        anyhow::ensure!(resp.status() == 200, "watch: {}", resp.status());
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Default::default();
        let (tx, tick) = watch::channel(0u64);
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let _conn = conn;
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut n = 0u64;
            loop {
                let Some(frame) = body.frame().await else {
                    bail!("the pod watch ended");
                };
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    let obj = &ev["object"];
                    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                    let mut map = s.lock().expect("watch state");
                    let e = map.entry(name.to_string()).or_default();
                    match ev["type"].as_str() {
                        Some("ADDED" | "MODIFIED") if e.running.is_none() && is_running(obj) => {
                            e.running = Some(now)
                        }
                        Some("DELETED") => e.deleted = Some(now),
                        _ => {}
                    }
                }
                n += 1;
                let _ = tx.send(n);
            }
        });
        Ok(Watcher { seen, tick, task })
    }

    /// Wait (at most `limit`) until `pick` gives an instant for pod `name`.
    async fn wait(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        pick: fn(&Seen) -> Option<Instant>,
    ) -> Result<Instant> {
        let mut tick = self.tick.clone();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(t) = self
                .seen
                .lock()
                .expect("watch state")
                .get(name)
                .and_then(pick)
            {
                return Ok(t);
            }
            if self.task.is_finished() {
                bail!("the pod watch ended while waiting for {name} to be {what}");
            }
            match tokio::time::timeout_at(deadline, tick.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("the pod watch ended while waiting for {name} to be {what}"),
                Err(_) => bail!("pod {name} not {what} within {limit:?}"),
            }
        }
    }

    pub async fn running(&self, name: &str) -> Result<Instant> {
        self.wait(name, "Running", Duration::from_secs(60), |s| s.running)
            .await
    }

    pub async fn deleted(&self, name: &str) -> Result<Instant> {
        self.wait(name, "deleted", Duration::from_secs(60), |s| s.deleted)
            .await
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// POST one pod; returns its uid.
pub async fn create(conn: &mut Conn, name: &str) -> Result<String> {
    let body = conn
        .call(
            "POST",
            &format!("/api/v1/namespaces/{NS}/pods"),
            Some(pod(name)),
        )
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// DELETE one pod (its grace period is 0: it goes at once and the agent tears it down).
pub async fn delete(conn: &mut Conn, name: &str) -> Result<()> {
    conn.call(
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/pods/{name}"),
        None,
    )
    .await?;
    Ok(())
}

/// Create the namespace; wait (at most 60 s) for the node to be Ready.
pub async fn prepare(tls: &Tls) -> Result<()> {
    let mut conn = tls.connect().await?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
    conn.call("POST", "/api/v1/namespaces", Some(serde_json::to_vec(&ns)?))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("not registered");
    while Instant::now() < deadline {
        let r = conn
            .send("GET", &format!("/api/v1/nodes/{NODE}"), None)
            .await?;
        let code = r.status();
        let body = r.into_body().collect().await?.to_bytes();
        if code == 200 {
            let node: Value = serde_json::from_slice(&body)?;
            let ready = node["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            if ready["status"] == "True" {
                return Ok(());
            }
            last = ready.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {NODE} not Ready within 60 s: {last}")
}

/// Delete every pod of the namespace at once (cleanup).
pub async fn delete_all(tls: &Tls) -> Result<()> {
    let mut conn = tls.connect().await?;
    conn.call("DELETE", &format!("/api/v1/namespaces/{NS}/pods"), None)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_needs_every_container_running() {
        let cases = [
            (
                json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"running": {"startedAt": "x"}}}]}}),
                true,
            ),
            (
                json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"running": {}}}]}}),
                false,
            ),
            (
                json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}, {"state": {"waiting": {}}}]}}),
                false,
            ),
            (
                json!({"status": {"phase": "Running", "containerStatuses": []}}),
                false,
            ),
            (json!({"status": {"phase": "Running"}}), false),
            (json!({}), false),
        ];
        for (pod, want) in cases {
            assert_eq!(is_running(&pod), want, "{pod}");
        }
    }

    #[test]
    fn bench_pod() {
        let v: Value = serde_json::from_slice(&pod("p-1")).unwrap();
        assert_eq!(v["spec"]["nodeName"], NODE);
        assert_eq!(
            v["spec"]["containers"][0]["command"],
            json!(["sleep", "3600"])
        );
        assert_eq!(
            v["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }
}
