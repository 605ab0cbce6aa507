//! The disruption controller's I/O edge: PodDisruptionBudgets and the pods of their
//! namespace from the shared caches, expected pods from the pods' controllers (ReplicaSet —
//! or its Deployment —, ReplicationController, StatefulSet) → the status from
//! capstan_controllers::disruption, written with a resourceVersion precondition (the
//! Eviction API updates the same status).

use super::cache::{key, object_path, resource, Cache, Caches};
use super::queue::{drive, Queue};
use capstan_agent::api::Api;
use capstan_controllers::{controller_ref, disruption, name, namespace};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const SCALED: &[(&str, &str, &str)] = &[
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("", "v1", "replicationcontrollers"),
];

pub fn register(caches: &mut Caches) {
    caches.want(resource("policy", "v1", "poddisruptionbudgets"));
    caches.want(resource("", "v1", "pods"));
    for (g, v, p) in SCALED {
        caches.want(resource(g, v, p));
    }
}

struct Ctl {
    api: Api,
    pdbs: Arc<Cache>,
    pods: Arc<Cache>,
    caches: Caches,
}

pub async fn run(api: Api, caches: &Caches) {
    let pdbs = caches
        .get("poddisruptionbudgets")
        .expect("registered")
        .clone();
    let pods = caches.get("pods").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        pdbs.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    // Any change of a pod or a controller in a namespace may change its budgets.
    let mut watched = vec![pods.clone()];
    watched.extend(SCALED.iter().filter_map(|(_, _, p)| caches.get(p).cloned()));
    for c in &watched {
        let (q, pdbs2) = (queue.clone(), pdbs.clone());
        c.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                for b in pdbs2.in_namespace(namespace(o)) {
                    q.add(key(&b));
                }
            }
        });
    }
    for c in &watched {
        c.wait_synced().await;
    }
    pdbs.wait_synced().await;
    let ctl = Arc::new(Ctl {
        api,
        pdbs: pdbs.clone(),
        pods,
        caches: caches.clone(),
    });
    for b in pdbs.list(|_| true) {
        queue.add(key(&b));
    }
    let all = move || pdbs.keys();
    drive(queue, Duration::from_secs(30), all, |k| {
        let ctl = ctl.clone();
        async move { ctl.sync(&k).await }
    })
    .await;
}

impl Ctl {
    fn find(&self, plural: &str, ns: &str, r: &Value) -> Option<Value> {
        let o = self
            .caches
            .get(plural)?
            .get(&format!("{ns}/{}", r["name"].as_str().unwrap_or("")))?;
        (o["metadata"]["uid"] == r["uid"]).then_some(o)
    }

    /// The pod's controller with a scale: its uid and spec.replicas.
    fn scale(&self, pod: &Value) -> Result<(String, i64), String> {
        let ns = namespace(pod);
        let none = || format!("found no controllers for pod {:?}", name(pod));
        let r = controller_ref(pod).ok_or_else(none)?;
        let replicas = |o: &Value| {
            (
                o["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                o["spec"]["replicas"].as_i64().unwrap_or(1),
            )
        };
        let found = match r["kind"].as_str().unwrap_or("") {
            "ReplicaSet" => self.find("replicasets", ns, r).map(|rs| {
                match controller_ref(&rs).filter(|d| d["kind"] == "Deployment") {
                    Some(d) => self.find("deployments", ns, d).map(|d| replicas(&d)),
                    None => Some(replicas(&rs)),
                }
            }),
            "ReplicationController" => self
                .find("replicationcontrollers", ns, r)
                .map(|o| Some(replicas(&o))),
            "StatefulSet" => self.find("statefulsets", ns, r).map(|o| Some(replicas(&o))),
            _ => None,
        };
        found.flatten().ok_or_else(none)
    }

    async fn sync(&self, k: &str) -> Option<Duration> {
        let pdb = self.pdbs.get(k)?;
        let ns = namespace(&pdb).to_string();
        let pods = self.pods.in_namespace_shared(&ns);
        let want = disruption::status(&pdb, &pods, &|p| self.scale(p), chrono::Utc::now());
        // disruptedPods entries expire: look again.
        let again = want.get("disruptedPods").map(|_| Duration::from_secs(5));
        if !disruption::status_changed(&pdb, &want) {
            return again;
        }
        let mut obj = pdb.clone();
        obj["status"] = want;
        let res = resource("policy", "v1", "poddisruptionbudgets");
        let path = format!("{}/status", object_path(res, &ns, name(&pdb)));
        match self.api.call("PUT", &path, Some(&obj)).await {
            Ok(a) if a.code < 300 => again,
            Ok(a) => {
                tracing::debug!(code = a.code, body = %a.body, "PDB status refused");
                Some(Duration::from_millis(500))
            }
            Err(_) => Some(Duration::from_secs(1)),
        }
    }
}
