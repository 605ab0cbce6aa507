//! The Job controller's I/O edge: Jobs and pods from the shared caches →
//! capstan_controllers::job::reconcile → pod creates (in slow-start batches) and deletes,
//! status, the Job's own delete after ttlSecondsAfterFinished (propagation Background);
//! SuccessfulCreate/SuccessfulDelete/Completed/BackoffLimitExceeded/DeadlineExceeded events.
//! Expectations (the names it created, the uids it deleted) hold the next sync back until the
//! pod cache has seen them.

use super::cache::{controller_key, key, object_path, resource, Cache, Caches};
use super::expectations::{named, Expectations};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::{job, name, namespace, replicaset, uid};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Controller {
    api: Api,
    jobs: Arc<Cache>,
    pods: Arc<Cache>,
    expect: Expectations,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("batch", "v1", "jobs")
}

pub fn register(caches: &mut Caches) {
    caches.want(res());
    caches.want(resource("", "v1", "pods"));
}

pub async fn run(api: Api, caches: &Caches) {
    let jobs = caches.get("jobs").expect("registered").clone();
    let pods = caches.get("pods").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        jobs.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    {
        let q = queue.clone();
        pods.on_change(move |old, new| {
            for p in [old, new].into_iter().flatten() {
                if let Some(k) = controller_key(p, "Job") {
                    q.add(k);
                }
            }
        });
    }
    jobs.wait_synced().await;
    pods.wait_synced().await;
    let c = Arc::new(Controller {
        api,
        jobs: jobs.clone(),
        pods,
        expect: Expectations::default(),
    });
    for k in jobs.keys() {
        queue.add(k);
    }
    let all = {
        let jobs = jobs.clone();
        move || jobs.keys()
    };
    drive(queue, Duration::from_secs(30), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(j) = self.jobs.get(k) else {
            self.expect.forget(k);
            return None;
        };
        let ns = namespace(&j).to_string();
        let pods = self.pods.in_namespace_shared(&ns);
        if !self.expect.satisfied(k, &pods, named) {
            return Some(Duration::from_secs(1));
        }
        let plan = job::reconcile(&j, &pods, chrono::Utc::now());
        let path = object_path(res(), &ns, name(&j));
        if plan.delete_job {
            writes::delete(&self.api, &path, uid(&j), Some("Background")).await;
            return None;
        }
        let mut again = plan
            .requeue_secs
            .map(|s| Duration::from_secs(s.max(1) as u64));
        // Status first: a finished Job's conditions are written before its pods go.
        if job::status_changed(&j, &plan.status)
            && !writes::merge(
                &self.api,
                &format!("{path}/status"),
                &json!({"status": plan.status}),
            )
            .await
        {
            return Some(Duration::from_secs(1));
        }
        for (warning, reason, msg) in &plan.events {
            self.event(&j, *warning, reason, msg).await;
        }
        if !plan.create.is_empty() {
            self.create(k, &j, &plan.create).await;
            again = Some(Duration::from_secs(1));
        }
        if !plan.delete.is_empty() {
            let pods_res = resource("", "v1", "pods");
            self.expect.begin(k);
            self.expect
                .deleted(k, plan.delete.iter().map(|p| uid(p).to_string()));
            for p in &plan.delete {
                let pp = object_path(pods_res, namespace(p), name(p));
                if writes::delete(&self.api, &pp, uid(p), Some("Background")).await {
                    let msg = format!("Deleted pod: {}", name(p));
                    self.event(&j, false, "SuccessfulDelete", &msg).await;
                } else {
                    self.expect.not_deleted(k, uid(p));
                }
            }
        }
        again
    }

    async fn create(&self, k: &str, j: &Value, indexes: &[Option<i64>]) {
        let path = format!("/api/v1/namespaces/{}/pods", namespace(j));
        let mut rest = indexes;
        for batch in replicaset::slow_start_batches(indexes.len()) {
            let (now, later) = rest.split_at(batch);
            rest = later;
            let calls = now.iter().map(|i| {
                let pod = job::pod_from_template(j, *i);
                let path = path.clone();
                async move { self.api.call("POST", &path, Some(&pod)).await }
            });
            let mut failed = false;
            for a in futures::future::join_all(calls).await {
                match a {
                    Ok(a) if a.code == 201 || a.code == 200 => {
                        let n = name(&a.body).to_string();
                        self.expect.begin(k);
                        self.expect.created(k, &n);
                        self.event(j, false, "SuccessfulCreate", &format!("Created pod: {n}"))
                            .await;
                    }
                    Ok(a) => {
                        failed = true;
                        let msg = a.body["message"].as_str().unwrap_or("").to_string();
                        self.event(j, true, "FailedCreate", &format!("Error creating: {msg}"))
                            .await;
                    }
                    Err(e) => {
                        failed = true;
                        self.event(j, true, "FailedCreate", &format!("Error creating: {e}"))
                            .await;
                    }
                }
            }
            if failed {
                break;
            }
        }
    }

    async fn event(&self, j: &Value, warning: bool, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            j,
            ("Job", "batch/v1"),
            "job-controller",
            warning,
            reason,
            msg,
        )
        .await;
    }
}
