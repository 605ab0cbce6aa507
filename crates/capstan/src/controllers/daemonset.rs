//! The DaemonSet controller's I/O edge: DaemonSets, nodes and pods from the shared caches →
//! capstan_controllers::daemonset::reconcile → pod creates (pinned to their node by node
//! affinity, bound by the scheduler) and deletes, status; SuccessfulCreate/SuccessfulDelete
//! events. Expectations (the nodes it created pods for, the uids it deleted) hold the next
//! sync back until the pod cache has seen them.

use super::cache::{controller_key, key, object_path, resource, Cache, Caches};
use super::expectations::Expectations;
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::daemonset;
use capstan_controllers::{controller_ref, name, namespace, uid};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Controller {
    api: Api,
    sets: Arc<Cache>,
    nodes: Arc<Cache>,
    pods: Arc<Cache>,
    expect: Expectations,
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
                if let Some(k) = controller_key(p, "DaemonSet") {
                    q.add(k);
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
        expect: Expectations::default(),
    });
    for k in sets.keys() {
        queue.add(k);
    }
    let all = {
        let sets = sets.clone();
        move || sets.keys()
    };
    drive(queue, Duration::from_secs(30), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(ds) = self.sets.get(k) else {
            self.expect.forget(k);
            return None;
        };
        let ns = namespace(&ds).to_string();
        let pods = self.pods.in_namespace_shared(&ns);
        let ds_uid = uid(&ds).to_string();
        let seen = |p: &Value| {
            controller_ref(p)
                .is_some_and(|r| r["uid"] == ds_uid.as_str())
                .then(|| daemonset::pod_node(p))
        };
        if !self.expect.satisfied(k, &pods, seen) {
            return Some(Duration::from_secs(1));
        }
        let nodes = self.nodes.list(|_| true);
        let now = chrono::Utc::now();
        let plan = daemonset::reconcile(&ds, &nodes, &pods, now);
        let mut again = None;
        if !plan.create.is_empty() || !plan.delete.is_empty() {
            self.expect.begin(k);
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
                    self.expect.created(k, node);
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
                self.expect.deleted(k, [uid(p).to_string()]);
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
