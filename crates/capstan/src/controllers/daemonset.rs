//! The DaemonSet controller's I/O edge: DaemonSets, nodes and pods from the shared caches →
//! capstan_controllers::daemonset::reconcile → pod creates (pinned to their node by node
//! affinity, bound by the scheduler) and deletes, status; SuccessfulCreate/SuccessfulDelete
//! events. Expectations (the nodes it created pods for, the uids it deleted) hold the next
//! sync back until the pod cache has seen them.

use super::cache::{key, object_path, resource, Cache, Caches};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::daemonset;
use capstan_controllers::{controller_ref, name, namespace, uid};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Expect {
    created: HashSet<String>,
    deleted: HashSet<String>,
    at: Option<Instant>,
}

pub struct Controller {
    api: Api,
    sets: Arc<Cache>,
    nodes: Arc<Cache>,
    pods: Arc<Cache>,
    expect: Mutex<HashMap<String, Expect>>,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("apps", "v1", "daemonsets")
}

pub fn register(caches: &mut Caches) {
    caches.want(res());
    caches.want(resource("", "v1", "nodes"));
    caches.want(resource("", "v1", "pods"));
}

pub async fn run(api: Api, caches: &Caches) {
    let sets = caches.get("daemonsets").expect("registered").clone();
    let nodes = caches.get("nodes").expect("registered").clone();
    let pods = caches.get("pods").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        sets.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    {
        let (q, sets2) = (queue.clone(), sets.clone());
        nodes.on_change(move |old, new| {
            // Only what decides eligibility: labels, taints, presence.
            let same = matches!((old, new), (Some(a), Some(b))
                if a["metadata"]["labels"] == b["metadata"]["labels"]
                    && a["spec"]["taints"] == b["spec"]["taints"]);
            if !same {
                for s in sets2.list(|_| true) {
                    q.add(key(&s));
                }
            }
        });
    }
    {
        let q = queue.clone();
        pods.on_change(move |old, new| {
            for p in [old, new].into_iter().flatten() {
                if let Some(r) = controller_ref(p).filter(|r| r["kind"] == "DaemonSet") {
                    q.add(format!(
                        "{}/{}",
                        namespace(p),
                        r["name"].as_str().unwrap_or("")
                    ));
                }
            }
        });
    }
    sets.wait_synced().await;
    nodes.wait_synced().await;
    pods.wait_synced().await;
    let c = Arc::new(Controller {
        api,
        sets: sets.clone(),
        nodes,
        pods,
        expect: Mutex::new(HashMap::new()),
    });
    for o in sets.list(|_| true) {
        queue.add(key(&o));
    }
    let all = {
        let sets = sets.clone();
        move || sets.list(|_| true).iter().map(key).collect()
    };
    drive(queue, Duration::from_secs(30), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    fn satisfied(&self, k: &str, ds_uid: &str, pods: &[Value]) -> bool {
        let mut g = self.expect.lock().unwrap();
        let Some(e) = g.get_mut(k) else { return true };
        e.created.retain(|n| {
            !pods.iter().any(|p| {
                controller_ref(p).is_some_and(|r| r["uid"] == ds_uid)
                    && daemonset::pod_node(p) == *n
            })
        });
        e.deleted.retain(|u| {
            pods.iter()
                .any(|p| uid(p) == u && !capstan_controllers::deleting(p))
        });
        let expired = e.at.is_some_and(|t| t.elapsed() > Duration::from_secs(60));
        if (e.created.is_empty() && e.deleted.is_empty()) || expired {
            g.remove(k);
            return true;
        }
        false
    }

    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(ds) = self.sets.get(k) else {
            self.expect.lock().unwrap().remove(k);
            return None;
        };
        let ns = namespace(&ds).to_string();
        let pods = self.pods.in_namespace(&ns);
        if !self.satisfied(k, uid(&ds), &pods) {
            return Some(Duration::from_secs(1));
        }
        let nodes = self.nodes.list(|_| true);
        let now = chrono::Utc::now();
        let plan = daemonset::reconcile(&ds, &nodes, &pods, now);
        let mut again = None;
        if !plan.create.is_empty() || !plan.delete.is_empty() {
            let mut g = self.expect.lock().unwrap();
            let e = g.entry(k.to_string()).or_default();
            e.at = Some(Instant::now());
            again = Some(Duration::from_secs(1));
        }
        let path = format!("/api/v1/namespaces/{ns}/pods");
        let creates = plan.create.iter().map(|node| {
            let pod = daemonset::pod_for_node(&ds, node);
            let path = path.clone();
            async move { (node, self.api.call("POST", &path, Some(&pod)).await) }
        });
        for (node, a) in futures::future::join_all(creates).await {
            match a {
                Ok(a) if a.code == 201 || a.code == 200 => {
                    self.expect
                        .lock()
                        .unwrap()
                        .entry(k.to_string())
                        .or_default()
                        .created
                        .insert(node.clone());
                    let msg = format!("Created pod: {}", name(&a.body));
                    self.event(&ds, false, "SuccessfulCreate", &msg).await;
                }
                Ok(a) => {
                    let msg = a.body["message"].as_str().unwrap_or("").to_string();
                    self.event(&ds, true, "FailedCreate", &format!("Error creating: {msg}"))
                        .await;
                }
                Err(e) => {
                    self.event(&ds, true, "FailedCreate", &format!("Error creating: {e}"))
                        .await;
                }
            }
        }
        let pods_res = resource("", "v1", "pods");
        let deletes = plan.delete.iter().map(|p| async move {
            let path = object_path(pods_res, namespace(p), name(p));
            (p, writes::delete(&self.api, &path, uid(p), None).await)
        });
        for (p, ok) in futures::future::join_all(deletes).await {
            if ok {
                self.expect
                    .lock()
                    .unwrap()
                    .entry(k.to_string())
                    .or_default()
                    .deleted
                    .insert(uid(p).to_string());
                let msg = format!("Deleted pod: {}", name(p));
                self.event(&ds, false, "SuccessfulDelete", &msg).await;
            }
        }
        if daemonset::status_changed(&ds, &plan.status) {
            let path = format!("{}/status", object_path(res(), &ns, name(&ds)));
            if !writes::merge(&self.api, &path, &json!({"status": plan.status})).await {
                again = Some(Duration::from_secs(1));
            }
        }
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if again.is_none()
            && min_ready > 0
            && plan.status["numberAvailable"] != plan.status["numberReady"]
        {
            again = Some(Duration::from_secs(1));
        }
        again
    }

    async fn event(&self, ds: &Value, warning: bool, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            ds,
            ("DaemonSet", "apps/v1"),
            "daemonset-controller",
            warning,
            reason,
            msg,
        )
        .await;
    }
}
