//! The CronJob controller's I/O edge (kube's cronjob_controllerv2): CronJobs and Jobs from
//! the shared caches → capstan_controllers::cronjob::reconcile → history-limit deletes, the
//! Replace policy's deletes (propagation Background), the Job create (AlreadyExists adopts a
//! Job we made but did not record), the status PUT (with the resourceVersion it was computed
//! from, so a stale cache cannot record a run twice); events SuccessfulCreate,
//! SuccessfulDelete, SawCompletedJob, MissSchedule, JobAlreadyActive, …. Each sync re-queues
//! the CronJob at its next due time (plus 100 ms); a schedule/timeZone change re-queues at the
//! new schedule's next time, any other change at once.

use super::cache::{collection, controller_key, key, object_path, resource, Cache, Caches};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::{controller_ref, cronjob, name, namespace, uid};
use capstan_validation::cron::Zone;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// After a failed write (kube's rate-limited retry).
const RETRY: Duration = Duration::from_secs(5);

pub struct Controller {
    api: Api,
    cronjobs: Arc<Cache>,
    jobs: Arc<Cache>,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("batch", "v1", "cronjobs")
}

fn jobs_res() -> &'static capstan_api::resources::Resource {
    resource("batch", "v1", "jobs")
}

pub fn register(caches: &mut Caches) {
    caches.want(res());
    caches.want(jobs_res());
}

fn to_std(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

pub async fn run(api: Api, caches: &Caches) {
    let cronjobs = caches.get("cronjobs").expect("registered").clone();
    let jobs = caches.get("jobs").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        cronjobs.on_change(move |old, new| match (old, new) {
            (Some(o), Some(n))
                if o["spec"]["schedule"] != n["spec"]["schedule"]
                    || o["spec"]["timeZone"] != n["spec"]["timeZone"] =>
            {
                match cronjob::next_sync(n, chrono::Utc::now(), Zone::Local) {
                    Some(d) => q.add_after(key(n), to_std(d)),
                    None => q.add(key(n)),
                }
            }
            (_, Some(o)) | (Some(o), None) => q.add(key(o)),
            (None, None) => {}
        });
    }
    {
        let q = queue.clone();
        jobs.on_change(move |old, new| {
            for j in [old, new].into_iter().flatten() {
                if let Some(k) = controller_key(j, "CronJob") {
                    q.add(k);
                }
            }
        });
    }
    cronjobs.wait_synced().await;
    jobs.wait_synced().await;
    let c = Arc::new(Controller {
        api,
        cronjobs: cronjobs.clone(),
        jobs,
    });
    for k in cronjobs.keys() {
        queue.add(k);
    }
    let all = {
        let cronjobs = cronjobs.clone();
        move || cronjobs.keys()
    };
    // Due times come from each sync's own re-queue; the resync is only a safety net.
    drive(queue, Duration::from_secs(300), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    async fn sync(&self, k: &str) -> Option<Duration> {
        let mut cj = self.cronjobs.get(k)?;
        let ns = namespace(&cj).to_string();
        let all = self.jobs.in_namespace(&ns);
        let owned = cronjob::owned_jobs(&cj, &all);
        let cj_path = object_path(res(), &ns, name(&cj));
        // A running Job the cached status does not list: our own status write may not have
        // reached the cache yet, so read the CronJob itself.
        if !cronjob::unexpected(&cj, &owned).is_empty() {
            match self.api.call("GET", &cj_path, None).await {
                Ok(a) if a.code == 200 => cj = a.body,
                Ok(a) if a.code == 404 => return None,
                _ => return Some(RETRY),
            }
        }
        // An active Job the cache lacks may just not have arrived: ask the API.
        let mut gone = HashSet::new();
        for r in cronjob::unlisted_active(&cj, &owned) {
            let n = r["name"].as_str().unwrap_or("");
            let path = object_path(jobs_res(), &ns, n);
            match self.api.call("GET", &path, None).await {
                Ok(a) if a.code == 404 => {
                    gone.insert(r["uid"].as_str().unwrap_or("").to_string());
                }
                Ok(a) if a.code == 200 => {}
                _ => return Some(RETRY),
            }
        }
        let plan = cronjob::reconcile(&cj, &owned, &gone, chrono::Utc::now(), Zone::Local);
        for j in &plan.delete {
            self.delete_job(&cj, j).await;
        }
        for (warning, reason, msg) in &plan.events {
            self.event(&cj, *warning, reason, msg).await;
        }
        let mut status = plan.status;
        let mut again = plan.requeue.map(to_std);
        if let Some(create) = plan.create {
            match self.create(&cj, &mut status, &create).await {
                true => again = create.requeue.map(to_std),
                false => again = Some(RETRY),
            }
        }
        if cronjob::status_changed(&cj, &status) {
            let mut obj = cj.clone();
            obj["status"] = status;
            match self
                .api
                .call("PUT", &format!("{cj_path}/status"), Some(&obj))
                .await
            {
                Ok(a) if a.code < 300 => {}
                Ok(a) => {
                    tracing::debug!(code = a.code, body = %a.body, "CronJob status refused");
                    return Some(RETRY.min(Duration::from_secs(1)));
                }
                Err(_) => return Some(RETRY),
            }
        }
        again
    }

    /// Delete a Job (propagation Background); true when it is gone or going.
    async fn delete_job(&self, cj: &Value, j: &Value) -> bool {
        let path = object_path(jobs_res(), namespace(j), name(j));
        if writes::delete(&self.api, &path, uid(j), Some("Background")).await {
            let msg = format!("Deleted job {}", name(j));
            self.event(cj, false, "SuccessfulDelete", &msg).await;
            true
        } else {
            let msg = format!("Deleted job: could not delete job {}", name(j));
            self.event(cj, true, "FailedDelete", &msg).await;
            false
        }
    }

    /// Replace's deletes, then the Job; false when it should be tried again.
    async fn create(&self, cj: &Value, status: &mut Value, c: &cronjob::Create) -> bool {
        for r in &c.replace {
            let n = r["name"].as_str().unwrap_or("");
            let path = object_path(jobs_res(), namespace(cj), n);
            let job = match self.api.call("GET", &path, None).await {
                Ok(a) if a.code == 200 => a.body,
                Ok(a) => {
                    let msg = format!("Get job: {}", a.body["message"].as_str().unwrap_or(""));
                    self.event(cj, true, "FailedGet", &msg).await;
                    return false;
                }
                Err(e) => {
                    self.event(cj, true, "FailedGet", &format!("Get job: {e}"))
                        .await;
                    return false;
                }
            };
            if !self.delete_job(cj, &job).await {
                return false;
            }
            cronjob::remove_active(status, uid(&job));
        }
        let path = collection(jobs_res(), Some(namespace(cj)));
        let created = match self.api.call("POST", &path, Some(&c.job)).await {
            Ok(a) if a.code == 201 || a.code == 200 => {
                let msg = format!("Created job {}", name(&a.body));
                self.event(cj, false, "SuccessfulCreate", &msg).await;
                a.body
            }
            Ok(a) if a.code == 409 && a.body["reason"] == "AlreadyExists" => {
                // Created by an earlier sync whose status write was lost, or by someone else.
                let p = object_path(jobs_res(), namespace(cj), name(&c.job));
                let Ok(got) = self.api.call("GET", &p, None).await else {
                    return false;
                };
                let ours = controller_ref(&got.body).is_some_and(|r| r["uid"] == uid(cj));
                let listed = status["active"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r["uid"] == uid(&got.body)));
                if got.code != 200 || !ours || listed {
                    return true;
                }
                tracing::info!(job = name(&got.body), "CronJob's job already exists");
                got.body
            }
            Ok(a) => {
                let terminating = a.body["details"]["causes"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "NamespaceTerminating"));
                if !terminating {
                    let msg = a.body["message"].as_str().unwrap_or("").to_string();
                    self.event(
                        cj,
                        true,
                        "FailedCreate",
                        &format!("Error creating job: {msg}"),
                    )
                    .await;
                }
                return false;
            }
            Err(e) => {
                self.event(
                    cj,
                    true,
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                )
                .await;
                return false;
            }
        };
        cronjob::record_created(status, &created, c.scheduled);
        true
    }

    async fn event(&self, cj: &Value, warning: bool, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            cj,
            ("CronJob", "batch/v1"),
            "cronjob-controller",
            warning,
            reason,
            msg,
        )
        .await;
    }
}
