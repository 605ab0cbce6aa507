//! The StatefulSet controller's I/O edge: StatefulSets, pods, ControllerRevisions and
//! PersistentVolumeClaims from the shared caches → capstan_controllers::statefulset::reconcile
//! → writes in kube's order: adoption, the update revision (created, or an older equal one
//! renumbered; an AlreadyExists with other data bumps status.collisionCount), claims, pods
//! created and deleted, identity labels, history pruning, status. SuccessfulCreate /
//! SuccessfulDelete / RecreatingFailedPod events with kube's messages. Expectations (pod names
//! created, uids deleted) hold the next sync back until the pod cache has seen them.

use super::cache::{key, object_path, resource, Cache, Caches};
use super::expectations::{named, Expectations};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::statefulset::{self, revision, Plan, Why};
use capstan_controllers::{controller_ref, name, namespace, owner_refs, uid};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Controller {
    api: Api,
    sets: Arc<Cache>,
    pods: Arc<Cache>,
    revisions: Arc<Cache>,
    claims: Arc<Cache>,
    expect: Expectations,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("apps", "v1", "statefulsets")
}

fn revisions_res() -> &'static capstan_api::resources::Resource {
    resource("apps", "v1", "controllerrevisions")
}

fn claims_res() -> &'static capstan_api::resources::Resource {
    resource("", "v1", "persistentvolumeclaims")
}

pub fn register(caches: &mut Caches) {
    caches.want(res());
    caches.want(resource("", "v1", "pods"));
    caches.want(revisions_res());
    caches.want(claims_res());
}

/// Queue the StatefulSet controlling `obj`, if one does.
fn owner_key(obj: &Value) -> Option<String> {
    super::cache::controller_key(obj, "StatefulSet")
}

pub async fn run(api: Api, caches: &Caches) {
    let get = |p: &str| caches.get(p).expect("registered").clone();
    let (sets, pods) = (get("statefulsets"), get("pods"));
    let (revisions, claims) = (get("controllerrevisions"), get("persistentvolumeclaims"));
    let queue = Queue::new();
    {
        let q = queue.clone();
        sets.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    for dependents in [&pods, &revisions] {
        let q = queue.clone();
        dependents.on_change(move |old, new| {
            for o in [old, new].into_iter().flatten() {
                if let Some(k) = owner_key(o) {
                    q.add(k);
                }
            }
        });
    }
    for c in [&sets, &pods, &revisions, &claims] {
        c.wait_synced().await;
    }
    let c = Arc::new(Controller {
        api,
        sets: sets.clone(),
        pods,
        revisions,
        claims,
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

const SOON: Duration = Duration::from_millis(500);

impl Controller {
    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(sts) = self.sets.get(k) else {
            self.expect.forget(k);
            return None;
        };
        let ns = namespace(&sts).to_string();
        let pods = self.pods.in_namespace(&ns);
        if !self.expect.satisfied(k, &pods, named) {
            return Some(Duration::from_secs(1));
        }
        let revisions = self.revisions.in_namespace(&ns);
        let claims = self.claims.in_namespace(&ns);
        let plan = statefulset::reconcile(&sts, &pods, &revisions, &claims, chrono::Utc::now());
        if !plan.adopt.is_empty() || !plan.release.is_empty() {
            self.claim_pods(&sts, &plan).await;
            return Some(SOON);
        }
        if !self.revision(&sts, &plan).await {
            return Some(SOON);
        }
        let mut again = plan.requeue_after.map(|s| Duration::from_secs(s as u64));
        if !self.claims(&sts, &plan).await {
            return Some(Duration::from_secs(1));
        }
        if !plan.create.is_empty() || !plan.delete.is_empty() {
            self.expect.begin(k);
        }
        let pods_res = resource("", "v1", "pods");
        for p in &plan.create {
            let path = format!("/api/v1/namespaces/{ns}/pods");
            let n = name(p);
            match self.api.call("POST", &path, Some(p)).await {
                Ok(a) if a.code < 300 => {
                    self.expect.created(k, n);
                    let msg = format!("create Pod {n} in StatefulSet {} successful", name(&sts));
                    self.event(&sts, false, "SuccessfulCreate", &msg).await;
                }
                Ok(a) => {
                    let err = a.body["message"].as_str().unwrap_or("").to_string();
                    if a.code != 409 {
                        let msg = format!(
                            "create Pod {n} in StatefulSet {} failed error: {err}",
                            name(&sts)
                        );
                        self.event(&sts, true, "FailedCreate", &msg).await;
                    }
                    again = Some(Duration::from_secs(1));
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, pod = n, "statefulset create");
                    again = Some(Duration::from_secs(1));
                    break;
                }
            }
        }
        for (p, why) in &plan.delete {
            if *why == Why::Recreate {
                let failed = p["status"]["phase"] == "Failed";
                let (reason, what) = if failed {
                    ("RecreatingFailedPod", "failed")
                } else {
                    ("RecreatingTerminatedPod", "terminated")
                };
                let msg = format!(
                    "StatefulSet {ns}/{} is recreating {what} Pod {}",
                    name(&sts),
                    name(p)
                );
                self.event(&sts, failed, reason, &msg).await;
            }
            let path = object_path(pods_res, &ns, name(p));
            if writes::delete(&self.api, &path, uid(p), None).await {
                self.expect.deleted(k, [uid(p).to_string()]);
                let msg = format!(
                    "delete Pod {} in StatefulSet {} successful",
                    name(p),
                    name(&sts)
                );
                self.event(&sts, false, "SuccessfulDelete", &msg).await;
            } else {
                again = Some(Duration::from_secs(1));
            }
        }
        for (p, patch) in &plan.relabel {
            writes::merge(&self.api, &object_path(pods_res, &ns, name(p)), patch).await;
        }
        for r in &plan.prune {
            let path = object_path(revisions_res(), &ns, r);
            if let Err(e) = self.api.call("DELETE", &path, None).await {
                tracing::debug!(error = %e, revision = %r, "statefulset history");
            }
        }
        if statefulset::status_changed(&sts, &plan.status) {
            let path = format!("{}/status", object_path(res(), &ns, name(&sts)));
            if !writes::merge(&self.api, &path, &json!({"status": plan.status})).await {
                again = Some(Duration::from_secs(1));
            }
        }
        again
    }

    /// Adopt orphans (ownerReference added) and release pods that stopped matching.
    async fn claim_pods(&self, sts: &Value, plan: &Plan) {
        let pods_res = resource("", "v1", "pods");
        for p in &plan.adopt {
            let mut refs = owner_refs(p).to_vec();
            refs.push(revision::owner_ref(sts));
            let path = object_path(pods_res, namespace(p), name(p));
            writes::set_owner_refs(&self.api, &path, p, refs).await;
        }
        for p in &plan.release {
            let refs = owner_refs(p)
                .iter()
                .filter(|r| r["uid"] != uid(sts))
                .cloned()
                .collect();
            let path = object_path(pods_res, namespace(p), name(p));
            writes::set_owner_refs(&self.api, &path, p, refs).await;
        }
    }

    /// The update revision exists with its number; false to look again soon.
    async fn revision(&self, sts: &Value, plan: &Plan) -> bool {
        let ns = namespace(sts);
        if let Some((n, number)) = &plan.renumber_revision {
            let path = object_path(revisions_res(), ns, n);
            if !writes::merge(&self.api, &path, &json!({"revision": number})).await {
                return false;
            }
        }
        let Some(rev) = &plan.create_revision else {
            return true;
        };
        let path = format!("/apis/apps/v1/namespaces/{ns}/controllerrevisions");
        match self.api.call("POST", &path, Some(rev)).await {
            Ok(a) if a.code < 300 => true,
            Ok(a) if a.code == 409 => {
                let path = object_path(revisions_res(), ns, name(rev));
                let same = match self.api.call("GET", &path, None).await {
                    Ok(a) if a.code == 200 => {
                        a.body["data"] == rev["data"]
                            && controller_ref(&a.body).is_some_and(|r| r["uid"] == uid(sts))
                    }
                    _ => return false,
                };
                if !same {
                    // A hash collision: the next sync names the revision with a new count.
                    let count = sts["status"]["collisionCount"].as_i64().unwrap_or(0) + 1;
                    let path = format!("{}/status", object_path(res(), ns, name(sts)));
                    let patch = json!({"status": {"collisionCount": count}});
                    writes::merge(&self.api, &path, &patch).await;
                    return false;
                }
                true
            }
            Ok(a) => {
                tracing::debug!(code = a.code, body = %a.body, "statefulset revision refused");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "statefulset revision");
                false
            }
        }
    }

    /// Missing claims created, claim owners set; false when a claim could not be created.
    async fn claims(&self, sts: &Value, plan: &Plan) -> bool {
        let ns = namespace(sts);
        let mut ok = true;
        for c in &plan.create_claims {
            let path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims");
            let pod = statefulset::identity::claim_templates(sts)
                .iter()
                .find_map(|t| name(c).strip_prefix(&format!("{}-", name(t))))
                .unwrap_or("")
                .to_string();
            let what = format!("Claim {} Pod {pod} in StatefulSet {}", name(c), name(sts));
            match self.api.call("POST", &path, Some(c)).await {
                Ok(a) if a.code < 300 => {
                    let msg = format!("create {what} success");
                    self.event(sts, false, "SuccessfulCreate", &msg).await;
                }
                Ok(a) if a.code == 409 => {}
                Ok(a) => {
                    let err = a.body["message"].as_str().unwrap_or("").to_string();
                    let msg = format!("create {what} failed error: {err}");
                    self.event(sts, true, "FailedCreate", &msg).await;
                    ok = false;
                }
                Err(_) => ok = false,
            }
        }
        for (c, refs) in &plan.claim_refs {
            let path = object_path(claims_res(), ns, name(c));
            writes::set_owner_refs(&self.api, &path, c, refs.clone()).await;
        }
        ok
    }

    async fn event(&self, sts: &Value, warning: bool, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            sts,
            ("StatefulSet", "apps/v1"),
            "statefulset-controller",
            warning,
            reason,
            msg,
        )
        .await;
    }
}
