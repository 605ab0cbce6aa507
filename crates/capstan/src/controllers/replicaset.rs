//! The ReplicaSet and ReplicationController controllers' I/O edge: pods and RSs from the
//! shared caches → capstan_controllers::replicaset::reconcile → adopt/release patches,
//! creates in slow-start batches, deletes, status; SuccessfulCreate/SuccessfulDelete events.
//! Expectations (the names it created, the uids it deleted) hold the next sync back until
//! the pod cache has seen them, so a lagging cache never doubles a scale-up.

use super::cache::{key, object_path, resource, Cache, Caches};
use super::expectations::{named, Expectations};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::replicaset::{self, Kind};
use capstan_controllers::{controller_ref, name, namespace, owner_refs, uid};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Controller {
    api: Api,
    kind: Kind,
    component: &'static str,
    owners: Arc<Cache>,
    pods: Arc<Cache>,
    expect: Expectations,
}

pub fn register(caches: &mut Caches, kind: Kind) -> (Arc<Cache>, Arc<Cache>) {
    let owners = match kind {
        Kind::ReplicaSet => caches.want(resource("apps", "v1", "replicasets")),
        Kind::ReplicationController => caches.want(resource("", "v1", "replicationcontrollers")),
    };
    (owners, caches.want(resource("", "v1", "pods")))
}

pub async fn run(api: Api, caches: &Caches, kind: Kind) {
    let plural = match kind {
        Kind::ReplicaSet => "replicasets",
        Kind::ReplicationController => "replicationcontrollers",
    };
    let owners = caches.get(plural).expect("registered").clone();
    let pods = caches.get("pods").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        owners.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    {
        let (q, owners2) = (queue.clone(), owners.clone());
        pods.on_change(move |old, new| {
            for p in [old, new].into_iter().flatten() {
                match controller_ref(p) {
                    Some(r) if r["kind"] == kind.name() => q.add(format!(
                        "{}/{}",
                        namespace(p),
                        r["name"].as_str().unwrap_or("")
                    )),
                    Some(_) => {}
                    // An orphan may match any of the namespace's controllers.
                    None => {
                        for o in owners2.in_namespace(namespace(p)) {
                            q.add(key(&o));
                        }
                    }
                }
            }
        });
    }
    owners.wait_synced().await;
    pods.wait_synced().await;
    let c = Arc::new(Controller {
        api,
        kind,
        component: match kind {
            Kind::ReplicaSet => "replicaset-controller",
            Kind::ReplicationController => "replication-controller",
        },
        owners: owners.clone(),
        pods,
        expect: Expectations::default(),
    });
    for k in owners.keys() {
        queue.add(k);
    }
    let all = {
        let owners = owners.clone();
        move || owners.keys()
    };
    drive(queue, Duration::from_secs(30), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    fn res(&self) -> &'static capstan_api::resources::Resource {
        match self.kind {
            Kind::ReplicaSet => resource("apps", "v1", "replicasets"),
            Kind::ReplicationController => resource("", "v1", "replicationcontrollers"),
        }
    }

    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(rs) = self.owners.get(k) else {
            self.expect.forget(k);
            return None;
        };
        let ns = namespace(&rs).to_string();
        let pods = self.pods.in_namespace_shared(&ns);
        if !self.expect.satisfied(k, &pods, named) {
            return Some(Duration::from_secs(1));
        }
        let now = chrono::Utc::now();
        let plan = replicaset::reconcile(&rs, self.kind, &pods, now);
        let pods_res = resource("", "v1", "pods");
        let mine = replicaset::owner_ref(&rs, self.kind);
        for p in &plan.adopt {
            let mut refs = owner_refs(p).to_vec();
            refs.push(mine.clone());
            writes::set_owner_refs(&self.api, &object_path(pods_res, &ns, name(p)), p, refs).await;
        }
        for p in &plan.release {
            let refs: Vec<Value> = owner_refs(p)
                .iter()
                .filter(|r| r["uid"] != uid(&rs))
                .cloned()
                .collect();
            writes::set_owner_refs(&self.api, &object_path(pods_res, &ns, name(p)), p, refs).await;
        }
        let mut again = None;
        if plan.create > 0 {
            self.create(k, &rs, plan.create).await;
            again = Some(Duration::from_secs(1));
        }
        if !plan.delete.is_empty() {
            self.delete(k, &rs, &plan.delete).await;
        }
        if replicaset::status_changed(&rs, &plan.status) {
            let path = format!("{}/status", object_path(self.res(), &ns, name(&rs)));
            let patch = json!({"status": plan.status});
            if !writes::merge(&self.api, &path, &patch).await {
                again = Some(Duration::from_secs(1));
            }
        }
        // Pods becoming available after minReadySeconds change no pod: look again then.
        let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if again.is_none()
            && min_ready > 0
            && plan.status["availableReplicas"] != plan.status["readyReplicas"]
        {
            again = Some(Duration::from_secs(1));
        }
        again
    }

    async fn create(&self, k: &str, rs: &Value, n: usize) {
        let ns = namespace(rs);
        let path = format!("/api/v1/namespaces/{ns}/pods");
        let template = replicaset::pod_from_template(rs, self.kind);
        self.expect.begin(k);
        for batch in replicaset::slow_start_batches(n) {
            let calls = (0..batch).map(|_| self.api.call("POST", &path, Some(&template)));
            let answers = futures::future::join_all(calls).await;
            let mut failed = false;
            let mut events = Vec::new();
            for a in answers {
                match a {
                    Ok(a) if a.code == 201 || a.code == 200 => {
                        let pod_name = name(&a.body).to_string();
                        self.expect.created(k, &pod_name);
                        events.push((
                            false,
                            "SuccessfulCreate",
                            format!("Created pod: {pod_name}"),
                        ));
                    }
                    Ok(a) => {
                        failed = true;
                        let msg = a.body["message"].as_str().unwrap_or("").to_string();
                        events.push((true, "FailedCreate", format!("Error creating: {msg}")));
                    }
                    Err(e) => {
                        failed = true;
                        events.push((true, "FailedCreate", format!("Error creating: {e}")));
                    }
                }
            }
            // The batch's events together, not one round trip after another.
            futures::future::join_all(events.iter().map(|(w, r, m)| self.event(rs, *w, r, m)))
                .await;
            if failed {
                break;
            }
        }
    }

    async fn delete(&self, k: &str, rs: &Value, pods: &[Value]) {
        let pods_res = resource("", "v1", "pods");
        self.expect.begin(k);
        self.expect
            .deleted(k, pods.iter().map(|p| uid(p).to_string()));
        let calls = pods.iter().map(|p| async move {
            let path = object_path(pods_res, namespace(p), name(p));
            (p, writes::delete(&self.api, &path, uid(p), None).await)
        });
        let mut deleted = Vec::new();
        for (p, ok) in futures::future::join_all(calls).await {
            if ok {
                deleted.push(format!("Deleted pod: {}", name(p)));
            } else {
                self.expect.not_deleted(k, uid(p));
            }
        }
        futures::future::join_all(
            deleted
                .iter()
                .map(|m| self.event(rs, false, "SuccessfulDelete", m)),
        )
        .await;
    }

    async fn event(&self, rs: &Value, warning: bool, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            rs,
            (self.kind.name(), self.kind.api_version()),
            self.component,
            warning,
            reason,
            msg,
        )
        .await;
    }
}
